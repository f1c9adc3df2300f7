//! A table that fits a width: columns are given in order of importance to drop, and the last
//! column is cut with an ellipsis when dropping is not enough.

pub struct Column {
    pub header: &'static str,
    /// Dropped first at the lowest value; 0 is never dropped.
    pub drop_rank: u8,
}

const GAP: usize = 2;

pub fn render(columns: &[Column], rows: &[Vec<String>], width: Option<usize>) -> String {
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    let column_width = |c: usize| -> usize {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([columns[c].header.chars().count()])
            .max()
            .unwrap_or(0)
    };
    let line_width = |keep: &[usize]| -> usize {
        keep.iter().map(|&c| column_width(c)).sum::<usize>() + GAP * keep.len().saturating_sub(1)
    };
    if let Some(max) = width {
        let mut ranks: Vec<u8> = columns
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
            keep.retain(|&c| columns[c].drop_rank != rank);
        }
    }
    let widths: Vec<usize> = keep.iter().map(|&c| column_width(c)).collect();
    let mut out = String::new();
    let header: Vec<String> = keep
        .iter()
        .map(|&c| columns[c].header.to_string())
        .collect();
    for cells in std::iter::once(header).chain(
        rows.iter()
            .map(|r| keep.iter().map(|&c| r[c].clone()).collect()),
    ) {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str(&" ".repeat(GAP));
            }
            line.push_str(&format!("{cell:<w$}"));
        }
        let mut line = line.trim_end().to_string();
        if let Some(max) = width
            && line.chars().count() > max
        {
            line = line.chars().take(max.saturating_sub(1)).collect::<String>() + "…";
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column {
                header: "NAME",
                drop_rank: 0,
            },
            Column {
                header: "PLAN",
                drop_rank: 1,
            },
            Column {
                header: "NOTE",
                drop_rank: 0,
            },
        ]
    }

    #[test]
    fn drops_then_cuts_to_fit_and_leaves_wide_output_alone() {
        let rows = vec![vec![
            "alice".into(),
            "plus".into(),
            "a long note here".into(),
        ]];
        let full = render(&cols(), &rows, None);
        assert_eq!(full.lines().nth(1), Some("alice  plus  a long note here"));
        let fitted = render(&cols(), &rows, Some(24));
        assert_eq!(fitted.lines().nth(1), Some("alice  a long note here"));
        let cut = render(&cols(), &rows, Some(15));
        assert_eq!(cut.lines().nth(1), Some("alice  a long …"));
        assert!(cut.lines().all(|l| l.chars().count() <= 15));
    }
}
