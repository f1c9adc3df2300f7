//! `codex-as doctor`: checks the whole setup and says, for each problem found, what is wrong and
//! the exact command that fixes it. One module per area; each adds findings (something needs
//! action) and notes (what was seen, for the record) to one report.

mod accounts;
mod brokers;
mod claude;
mod codex;
mod daemon_copy;
mod plugin;
mod shell;

use serde::Serialize;

use crate::account::Accounts;
use crate::shell::quote;
use crate::sys::table::{Column, Table};

/// Something that needs action. Field names are a stable interface (`doctor --json`).
#[derive(Debug, Serialize)]
pub struct Finding {
    /// accounts, config, shell, plugin, brokers, claude, codex.
    pub area: &'static str,
    /// What it is about: an account name, a variable, a file.
    pub subject: String,
    /// What is wrong, in one sentence.
    pub problem: String,
    /// The command that fixes it.
    pub fix: String,
}

/// What was checked and seen, when nothing needs doing.
#[derive(Debug, Serialize)]
pub struct Note {
    pub area: &'static str,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub findings: Vec<Finding>,
    /// Worth knowing and acting on at leisure: they leave `ok` (and the exit status) alone.
    pub warnings: Vec<Finding>,
    pub notes: Vec<Note>,
}

impl Report {
    pub fn finding(
        &mut self,
        area: &'static str,
        subject: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            area,
            subject: subject.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn warning(
        &mut self,
        area: &'static str,
        subject: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.warnings.push(Finding {
            area,
            subject: subject.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn note(&mut self, area: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            area,
            message: message.into(),
        });
    }
}

/// A path quoted for the fix line (POSIX quoting reads the same in fish for plain paths).
pub fn q(path: &std::path::Path) -> String {
    quote::posix(&path.to_string_lossy())
}

/// Runs every check. A config that cannot be read stops only the checks that need accounts.
pub fn examine() -> Report {
    let mut report = Report::default();
    let accounts = accounts::config(&mut report);
    if let Some(accounts) = &accounts {
        accounts::check(accounts, &mut report);
        accounts::check_folder(accounts, &mut report);
    }
    shell::check(accounts.as_ref(), &mut report);
    codex::check(accounts.as_ref(), &mut report);
    if let Some(accounts) = &accounts {
        plugin::check(accounts, &mut report);
        brokers::check(accounts, &mut report);
    }
    claude::check(accounts.as_ref(), &mut report);
    report.ok = report.findings.is_empty();
    report
}

/// The notes under "Checked:": indented, the area then the message.
const NOTE_COLUMNS: [Column; 3] = [
    Column::new(""),
    Column::new("AREA").min_width(9),
    Column::new("MESSAGE").gap(1),
];

/// The report as people read it: findings first, each with its fix, then the notes.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.findings.is_empty() {
        out.push_str("No problem found.\n");
    } else {
        let n = report.findings.len();
        out.push_str(&format!(
            "{n} problem{} found:\n",
            if n == 1 { "" } else { "s" }
        ));
        for f in &report.findings {
            out.push_str(&format!(
                "\n[{}] {}: {}\n  fix: {}\n",
                f.area,
                quote::for_terminal_str(&f.subject),
                quote::for_terminal_str(&f.problem),
                quote::for_terminal_str(&f.fix)
            ));
        }
    }
    if !report.warnings.is_empty() {
        let n = report.warnings.len();
        out.push_str(&format!(
            "\n{n} warning{}:\n",
            if n == 1 { "" } else { "s" }
        ));
        for w in &report.warnings {
            out.push_str(&format!(
                "\n[{}] {}: {}\n  what to do: {}\n",
                w.area,
                quote::for_terminal_str(&w.subject),
                quote::for_terminal_str(&w.problem),
                quote::for_terminal_str(&w.fix)
            ));
        }
    }
    if !report.notes.is_empty() {
        out.push_str("\nChecked:\n");
        let mut notes = Table::new(&NOTE_COLUMNS).without_header();
        for n in &report.notes {
            notes.row(vec![
                String::new(),
                n.area.to_string(),
                quote::for_terminal_str(&n.message),
            ]);
        }
        out.push_str(&notes.render(None));
    }
    out
}

/// Whether `accounts` has an account whose home is `home`, and its name.
pub fn account_of(accounts: &Accounts, home: &std::path::Path) -> Option<String> {
    accounts.name_of_home(home)
}
