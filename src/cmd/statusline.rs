//! `codex-as statusline [--short]`: one line for Claude Code's `statusLine` setting (or a shell
//! prompt): the directory's account and its quota, from what is already on disk (the broker's
//! record and the session files). No network, no broker, no process: it runs on every refresh.
//! A folder on a list or `auto` shows it and the account in use: `work,personal → personal`.
//!
//! Claude Code passes a JSON object on stdin; the directory is `workspace.current_dir`, else
//! `cwd`, else `workspace.project_dir`, else the current folder (stdin may also be empty or a
//! terminal, as in a prompt).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use serde_json::Value;

use crate::account::Accounts;
use crate::account::directory;
use crate::claude::in_use::{self, How};
use crate::cli::StatuslineArgs;
use crate::error::status;
use crate::quota::summary;
use crate::quota::survey::Survey;
use crate::sys::clock::now;

/// Claude Code's input is a few kilobytes; more is not read.
const MAX_INPUT: u64 = 1 << 20;

pub fn run(args: StatuslineArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let dir = input_dir().unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let found = directory::for_directory(&dir, &accounts)
        .map_err(anyhow::Error::from)
        .and_then(|d| Ok((in_use::of(&accounts, &d)?, d)));
    let (now_on, chosen) = match found {
        Ok(found) => found,
        Err(e) => {
            // A pin naming an unknown account, say: shown where the account would be (one line),
            // never a failed status line.
            let e = format!("{e:#}").replace('\n', " ");
            crate::outln!("codex-as: {e}")?;
            return Ok(status::OK);
        }
    };
    let name = match now_on.how {
        How::Named => now_on.account.name.clone(),
        _ => format!(
            "{} → {}{}",
            chosen.label(),
            now_on.account.name,
            if args.short { "" } else { now_on.tag() }
        ),
    };
    let s = Survey::of(now_on.account);
    crate::outln!("{}", summary::line(&name, s.reading(), now(), args.short))?;
    Ok(status::OK)
}

fn input_dir() -> Option<PathBuf> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let mut raw = Vec::new();
    stdin.lock().take(MAX_INPUT).read_to_end(&mut raw).ok()?;
    dir_of(&serde_json::from_slice(&raw).ok()?)
}

fn dir_of(v: &Value) -> Option<PathBuf> {
    ["/workspace/current_dir", "/cwd", "/workspace/project_dir"]
        .into_iter()
        .find_map(|p| {
            v.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_claude_codes_current_dir_first() {
        let v = json!({"cwd": "/a", "workspace": {"current_dir": "/b", "project_dir": "/c"}});
        assert_eq!(dir_of(&v), Some(PathBuf::from("/b")));
        assert_eq!(dir_of(&json!({"cwd": "/a"})), Some(PathBuf::from("/a")));
        assert_eq!(
            dir_of(&json!({"workspace": {"project_dir": "/c"}})),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(dir_of(&json!({"model": {}})), None);
    }
}
