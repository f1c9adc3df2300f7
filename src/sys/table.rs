//! The one way codex-as draws a table: rows of cells under an optional header, each column as
//! wide as its widest cell (or its `min_width`), left- or right-aligned, with notes under a row
//! that stay outside the columns. Widths count characters, as `format!`'s padding does.
//!
//! Given a width, the table fits it: columns are dropped in order of importance (`drop_rank`),
//! and a line still too long is cut with an ellipsis. Without one (output to a file or pipe) it
//! is left whole.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub align: Align,
    /// The narrowest the column is drawn, so that a fixed layout stays put whatever the values.
    pub min_width: usize,
    /// Spaces before the column (none are drawn before the first one).
    pub gap: usize,
    /// Dropped first at the lowest value when the table must fit a width; 0 is never dropped.
    pub drop_rank: u8,
}

impl Column {
    /// A left-aligned column two spaces from the one before, never dropped.
    pub const fn new(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            min_width: 0,
            gap: 2,
            drop_rank: 0,
        }
    }

    pub const fn right(self) -> Column {
        Column {
            align: Align::Right,
            ..self
        }
    }

    pub const fn min_width(self, min_width: usize) -> Column {
        Column { min_width, ..self }
    }

    pub const fn gap(self, gap: usize) -> Column {
        Column { gap, ..self }
    }

    pub const fn drop_rank(self, drop_rank: u8) -> Column {
        Column { drop_rank, ..self }
    }
}

enum Line {
    Row(Vec<String>),
    /// Drawn as it is under the row before it: not measured, not padded.
    Note(String),
}

pub struct Table<'a> {
    columns: &'a [Column],
    header: bool,
    lines: Vec<Line>,
}

impl<'a> Table<'a> {
    /// An empty table with a header line.
    pub fn new(columns: &'a [Column]) -> Table<'a> {
        Table {
            columns,
            header: true,
            lines: Vec::new(),
        }
    }

    /// The same table with no header line (and headers left out of the widths).
    pub fn without_header(self) -> Table<'a> {
        Table {
            header: false,
            ..self
        }
    }

    /// A row; a cell missing at its end is drawn empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.lines.push(Line::Row(cells));
    }

    pub fn rows(mut self, rows: impl IntoIterator<Item = Vec<String>>) -> Table<'a> {
        self.lines.extend(rows.into_iter().map(Line::Row));
        self
    }

    /// A line under the last row, outside the columns.
    pub fn note(&mut self, text: String) {
        self.lines.push(Line::Note(text));
    }

    /// The table, one `\n`-ended line each (trailing spaces left out), fitted to `width` when
    /// one is given.
    pub fn render(&self, width: Option<usize>) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| self.column_width(c))
            .collect();
        let keep = self.columns_to_keep(&widths, width);
        let mut out = String::new();
        if self.header {
            let headers: Vec<&str> = self.columns.iter().map(|c| c.header).collect();
            out.push_str(&cut(&self.draw(&headers, &keep, &widths), width));
            out.push('\n');
        }
        for line in &self.lines {
            let text = match line {
                Line::Row(cells) => {
                    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                    self.draw(&cells, &keep, &widths)
                }
                Line::Note(text) => text.clone(),
            };
            out.push_str(&cut(&text, width));
            out.push('\n');
        }
        out
    }

    fn column_width(&self, c: usize) -> usize {
        let header = self.header.then(|| self.columns[c].header.chars().count());
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Row(cells) => Some(cells.get(c).map_or(0, |s| s.chars().count())),
                Line::Note(_) => None,
            })
            .chain(header)
            .chain([self.columns[c].min_width])
            .max()
            .unwrap_or(0)
    }

    /// The columns drawn: all of them, or at `width` those left once the least important ones
    /// (lowest `drop_rank` first) are gone or nothing more can go.
    fn columns_to_keep(&self, widths: &[usize], width: Option<usize>) -> Vec<usize> {
        let mut keep: Vec<usize> = (0..self.columns.len()).collect();
        let Some(max) = width else { return keep };
        let line_width = |keep: &[usize]| -> usize {
            keep.iter()
                .enumerate()
                .map(|(i, &c)| widths[c] + if i > 0 { self.columns[c].gap } else { 0 })
                .sum()
        };
        let mut ranks: Vec<u8> = self
            .columns
            .iter()
            .map(|c| c.drop_rank)
            .filter(|r| *r > 0)
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        for rank in ranks {
            if line_width(&keep) <= max {
                break;
            }
            keep.retain(|&c| self.columns[c].drop_rank != rank);
        }
        keep
    }

    fn draw(&self, cells: &[&str], keep: &[usize], widths: &[usize]) -> String {
        let mut line = String::new();
        for (i, &c) in keep.iter().enumerate() {
            let column = &self.columns[c];
            if i > 0 {
                line.push_str(&" ".repeat(column.gap));
            }
            let cell = cells.get(c).copied().unwrap_or("");
            let w = widths[c];
            match column.align {
                Align::Left => line.push_str(&format!("{cell:<w$}")),
                Align::Right => line.push_str(&format!("{cell:>w$}")),
            }
        }
        line.trim_end().to_string()
    }
}

/// `line` cut to `width` characters, its last one an ellipsis when anything was cut.
pub fn cut(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if line.chars().count() > w => {
            line.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
        }
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [
        Column::new("NAME"),
        Column::new("PLAN").drop_rank(1),
        Column::new("NOTE"),
    ];

    fn table(rows: &[&[&str]]) -> Table<'static> {
        Table::new(&COLUMNS).rows(
            rows.iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect()),
        )
    }

    #[test]
    fn drops_then_cuts_to_fit_and_leaves_wide_output_alone() {
        let t = table(&[&["alice", "plus", "a long note here"]]);
        let full = t.render(None);
        assert_eq!(full.lines().nth(1), Some("alice  plus  a long note here"));
        let fitted = t.render(Some(24));
        assert_eq!(fitted.lines().nth(1), Some("alice  a long note here"));
        let cut = t.render(Some(15));
        assert_eq!(cut.lines().nth(1), Some("alice  a long …"));
        assert!(cut.lines().all(|l| l.chars().count() <= 15));
    }

    #[test]
    fn widths_are_computed_once_over_the_header_and_every_row() {
        let t = table(&[&["al", "x", "n"], &["bobby", "", "note"]]);
        assert_eq!(
            t.render(None),
            "NAME   PLAN  NOTE\nal     x     n\nbobby        note\n"
        );
    }

    #[test]
    fn right_aligned_min_width_and_gaps_give_a_fixed_layout() {
        const FIXED: [Column; 3] = [
            Column::new("OWNER").min_width(7),
            Column::new("PID").right().min_width(6).gap(1),
            Column::new("WHERE"),
        ];
        let mut t = Table::new(&FIXED);
        t.row(vec!["me".into(), "42".into(), "/a".into()]);
        t.note("          a note under the row, not measured".into());
        t.row(vec!["somebody-long".into(), "1234567".into(), "/b".into()]);
        assert_eq!(
            t.render(None),
            "OWNER             PID  WHERE\n\
             me                 42  /a\n          \
             a note under the row, not measured\n\
             somebody-long 1234567  /b\n"
        );
    }

    #[test]
    fn without_a_header_the_headers_do_not_widen_columns() {
        const TWO: [Column; 2] = [Column::new("A-LONG-HEADER"), Column::new("B").gap(1)];
        let mut t = Table::new(&TWO).without_header();
        t.row(vec!["x".into(), "y".into()]);
        t.row(vec!["xyz".into()]);
        assert_eq!(t.render(None), "x   y\nxyz\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let t = table(&[&["zöé", "p", "n"], &["abcd", "p", "n"]]);
        let out = t.render(None);
        assert_eq!(out.lines().nth(1), Some("zöé   p     n"));
        assert_eq!(out.lines().nth(2), Some("abcd  p     n"));
    }

    #[test]
    fn notes_are_cut_to_the_width_too() {
        let mut t = table(&[&["a", "b", "c"]]);
        t.note("a note that is far too long".into());
        let out = t.render(Some(10));
        assert_eq!(out.lines().last(), Some("a note th…"));
        assert_eq!(cut("short", Some(10)), "short");
        assert_eq!(cut("short", None), "short");
    }
}
