//! `codex-as NAME resume [ID | --last]`: the Codex TUI (`codex resume ID`, run as NAME) on a
//! thread of any account's home. The thread is carried into NAME's home first from the account
//! holding its newest copy, so that NAME's Codex finds it by id; `--last` is the most recent
//! thread of the folder across every account, as `codex resume --last` is within one home.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::{Mode, ResumeTarget, RunArgs};
use crate::account::{Account, Accounts};
use crate::thread::carry::{self, CarryOptions};
use crate::thread::{catalog, files};

/// How many recent threads `--last` looks through for the folder's.
const LAST_SCAN: usize = 10_000;

/// Carries the thread `args` resumes into `account`'s home and names it in the command.
pub fn prepare(accounts: &Accounts, account: &Account, args: &mut RunArgs) -> anyhow::Result<()> {
    let Some(target) = args.resume.clone() else {
        return Ok(());
    };
    let Mode::Exec { cwd, command } = &mut args.mode else {
        return Ok(());
    };
    let own = account.canonical_home();
    let homes = homes(accounts, &own);
    let refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let id = match target {
        ResumeTarget::Id(id) => id,
        ResumeTarget::Last => {
            let here = std::env::current_dir().context("cannot read the current folder")?;
            let folder = cwd.as_ref().map_or_else(|| here.clone(), |c| here.join(c));
            let folder = std::fs::canonicalize(&folder).unwrap_or(folder);
            let id = last_in(&refs, &folder)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no thread of {} in any account's home: start one with `codex-as {} -- codex`",
                    folder.display(),
                    account.name
                )
            })?;
            // `codex resume` then `--last`'s own arguments: the id goes first.
            command.insert(2, OsString::from(&id));
            id
        }
    };
    if !files::is_thread_id(&id) {
        // Codex's to judge (a thread name, say): nothing to carry.
        return Ok(());
    }
    bring(&id, &refs, &own)
}

/// Every account's home, `own` first.
fn homes(accounts: &Accounts, own: &Path) -> Vec<PathBuf> {
    let mut out = vec![own.to_path_buf()];
    out.extend(accounts.other_homes(own));
    out
}

/// The most recent thread whose folder is `folder`.
fn last_in(homes: &[&Path], folder: &Path) -> anyhow::Result<Option<String>> {
    let entries = catalog::list(homes, LAST_SCAN)?;
    Ok(entries
        .into_iter()
        .find(|e| e.cwd.as_deref().is_some_and(|c| Path::new(c) == folder))
        .map(|e| e.id))
}

/// Carries thread `id` into `homes[0]` when its newest copy is elsewhere.
fn bring(id: &str, homes: &[&Path], own: &Path) -> anyhow::Result<()> {
    let from = carry::newest_home(id, homes)
        .with_context(|| format!("cannot tell which account holds thread {id}"))?;
    match from {
        Some(from) if from != own => {
            carry::carry(id, from, own, &CarryOptions::default()).with_context(|| {
                format!(
                    "cannot bring thread {id} from {} into {}",
                    from.display(),
                    own.display()
                )
            })?;
            Ok(())
        }
        // Here already, or nowhere: `codex resume` says so itself.
        _ => Ok(()),
    }
}
