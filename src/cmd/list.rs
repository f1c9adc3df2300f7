use std::path::PathBuf;

use serde::Serialize;

use crate::account::env::CODEX_HOME;
use crate::account::login_state::{self, LoginState};
use crate::account::{self, Accounts, FoundBy, config};
use crate::cli::ListArgs;
use crate::error::status;
use crate::shell::quote;
use crate::sys::table::{Column, Table};

/// One row of `codex-as list --json`. Field names are a stable interface.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// Canonical home (symlinks resolved) when it exists, else the configured path.
    home: PathBuf,
    exists: bool,
    login: LoginState,
    /// True for the account `codex` uses when CODEX_HOME is unset (and any name sharing its home).
    default: bool,
    /// True for the account this shell's CODEX_HOME points at (the default one when unset).
    current: bool,
    source: FoundBy,
}

/// The mark of the current account, then the account.
const COLUMNS: [Column; 4] = [
    Column::new("").min_width(1),
    Column::new("NAME").gap(1),
    Column::new("HOME"),
    Column::new("LOGIN"),
];

pub fn run(args: ListArgs) -> anyhow::Result<u8> {
    if args.names {
        // Completion, on every TAB: never a warning in the middle of the command line.
        config::expect_missing();
    }
    let accounts = Accounts::load()?;
    if args.names {
        // Completion runs this on every TAB: names only, no login state, no canonicalisation.
        let mut out = String::new();
        for a in accounts.all() {
            out.push_str(&a.name);
            out.push('\n');
        }
        crate::out!("{out}")?;
        return Ok(status::OK);
    }
    for w in &accounts.config.warnings {
        eprintln!(
            "codex-as: warning: config {}: {w}",
            quote::for_terminal(&accounts.config_path)
        );
    }
    // Listed, but said loudly: Codex would run the command in such a home's path.
    for a in accounts.all_with_unsafe() {
        if let Some(reason) = account::home_is_unsafe(&a.home) {
            eprintln!(
                "codex-as: warning: account '{}' is refused: its home {} is unsafe: {reason}",
                a.name,
                quote::for_terminal(&a.home)
            );
        }
    }
    let shell_home = std::env::var_os(CODEX_HOME)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let current_home = shell_home
        .clone()
        .unwrap_or_else(|| accounts.default_home.clone());
    let rows: Vec<Row> = accounts
        .all_with_unsafe()
        .into_iter()
        .map(|a| {
            let exists = a.exists();
            Row {
                login: if exists {
                    login_state::read(&a.home)
                } else {
                    LoginState::LoggedOut
                },
                default: a.is_default_home(&accounts),
                current: account::same_home(&a.home, &current_home),
                home: a.canonical_home(),
                exists,
                source: a.found_by,
                name: a.name,
            }
        })
        .collect();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(status::OK);
    }
    let mut table = Table::new(&COLUMNS);
    for r in &rows {
        let login = if r.exists {
            r.login.describe()
        } else if account::is_a_file(&r.home) {
            "(a file, not a folder: move it away)"
        } else {
            "(no home: `codex-as login` creates it)"
        };
        let same = if r.default && r.name != account::DEFAULT {
            "  (same home as default)"
        } else {
            ""
        };
        table.row(vec![
            if r.current { "*" } else { "" }.into(),
            r.name.clone(),
            quote::for_terminal(&r.home),
            format!("{login}{same}"),
        ]);
    }
    crate::out!("{}", table.render(None))?;
    crate::outln!("\n{}", legend(shell_home.is_some(), &accounts.config_path))?;
    Ok(status::OK)
}

/// The line under the table: what `*` means here, and the config file, or that there is none.
fn legend(codex_home_set: bool, config: &std::path::Path) -> String {
    let current = if codex_home_set {
        "* current account (CODEX_HOME)"
    } else {
        "* current account (CODEX_HOME is unset: the default)"
    };
    let path = quote::for_terminal(config);
    if config.exists() {
        format!("{current}   config: {path}")
    } else {
        format!("{current}   config: none yet ({path}; `codex-as add` writes it)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_says_what_current_means_and_whether_a_config_exists() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.toml");
        let line = legend(false, &missing);
        assert!(line.contains("CODEX_HOME is unset: the default"), "{line}");
        assert!(line.contains("config: none yet ("), "{line}");
        std::fs::write(&missing, "").unwrap();
        let line = legend(true, &missing);
        assert!(
            line.starts_with("* current account (CODEX_HOME)   config: "),
            "{line}"
        );
        assert!(line.ends_with("config.toml"), "{line}");
    }
}
