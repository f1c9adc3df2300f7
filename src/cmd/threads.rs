//! `codex-as threads [--json] [--limit N]`: recent Codex threads across every account's home.

use std::path::PathBuf;

use serde::Serialize;

use crate::account::{self, Accounts};
use crate::cli::ThreadsArgs;
use crate::error::status;
use crate::shell::quote;
use crate::sys::table::{Column, Table};
use crate::thread::catalog;

/// One thread of `codex-as threads --json`. Field names are a stable interface.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    /// Every account whose home holds a copy (accounts sharing a home all named).
    accounts: Vec<String>,
    /// The account holding the newest copy (the first of them when they share a home).
    newest: String,
    /// The folder the thread runs in (its cwd), when recorded.
    folder: Option<String>,
    /// The time of its last recorded line, RFC 3339 UTC.
    last_activity: Option<String>,
    first_prompt: Option<String>,
    /// The newest copy's rollout file.
    path: PathBuf,
}

#[derive(Debug, Serialize)]
struct Doc {
    threads: Vec<Row>,
}

const COLUMNS: [Column; 5] = [
    Column::new("THREAD"),
    Column::new("ACCOUNTS"),
    Column::new("LAST ACTIVITY").drop_rank(2),
    Column::new("FOLDER").drop_rank(1),
    Column::new("FIRST PROMPT"),
];

pub fn run(args: ThreadsArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    // Accounts sharing a home hold the same threads: one home, all their names.
    let mut homes: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for a in accounts.all() {
        match homes
            .iter_mut()
            .find(|(h, _)| account::same_home(h, &a.home))
        {
            Some((_, names)) => names.push(a.name),
            None => homes.push((a.home, vec![a.name])),
        }
    }
    let paths: Vec<&std::path::Path> = homes.iter().map(|(h, _)| h.as_path()).collect();
    let entries = catalog::list(&paths, args.limit)?;
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|e| {
            let mut names: Vec<String> = Vec::new();
            for h in &e.homes {
                names.extend(homes[*h].1.iter().cloned());
            }
            Row {
                id: e.id,
                accounts: names,
                newest: homes[e.newest].1.first().cloned().unwrap_or_default(),
                folder: e.cwd,
                last_activity: e.last_activity,
                first_prompt: e.first_prompt,
                path: e.rollout,
            }
        })
        .collect();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&Doc { threads: rows })?)?;
        return Ok(status::OK);
    }
    if rows.is_empty() {
        crate::outln!("no Codex threads in any account's home yet")?;
        return Ok(status::OK);
    }
    let table = Table::new(&COLUMNS).rows(rows.iter().map(cells));
    crate::out!("{}", table.render(crate::sys::term::width()))?;
    crate::outln!(
        "\n* holds the newest copy; `codex-as NAME resume ID` continues a thread as NAME, wherever it is"
    )?;
    Ok(status::OK)
}

fn cells(r: &Row) -> Vec<String> {
    // The newest copy's account first, marked: a run there resumes the thread as it is.
    let mut accounts = vec![format!("{}*", r.newest)];
    accounts.extend(r.accounts.iter().filter(|n| **n != r.newest).cloned());
    let when = r
        .last_activity
        .as_deref()
        .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
        .unwrap_or_default();
    let prompt = r
        .first_prompt
        .as_deref()
        .map(|p| quote::for_terminal_str(&p.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_default();
    vec![
        r.id.clone(),
        accounts.join(","),
        when,
        r.folder
            .as_deref()
            .map(quote::for_terminal_str)
            .unwrap_or_default(),
        prompt,
    ]
}
