//! A pinned companion run as a child rather than exec'd: the companion's advice names plain
//! `codex` (`!codex login`, `codex resume ID`), which would act on the default account, so
//! codex-as says the codex-as form on stderr once it ends. Its stdout passes through byte for
//! byte (`--json` stays identical); signals are passed on and its exit status is returned.

use std::path::{Path, PathBuf};

use super::launch::Launch;
use crate::account::{Account, Accounts, login_state};
use crate::plugin::advice::{self, Advice, Resumer};
use crate::sys::supervise;
use crate::thread::carry;

pub fn watch(launch: Launch, accounts: &Accounts, account: &Account) -> anyhow::Result<u8> {
    let cmd = launch.command()?;
    let program = launch.program.to_string_lossy().into_owned();
    let (ended, lines) =
        supervise::wait_watching_stdout(cmd, &program, |l| !advice::scan(l).is_empty())?;
    let mut said = Vec::new();
    let in_claude_code = advice::in_claude_code();
    for a in lines.iter().flat_map(|l| advice::scan(l)) {
        if said.contains(&a) {
            continue;
        }
        let other;
        let resumer = match &a {
            Advice::Resume(id) if !logged_in(&account.home) => {
                other = resumer(accounts, account, id);
                other.as_deref().map_or(Resumer::Nobody, Resumer::Other)
            }
            _ => Resumer::Asked,
        };
        if let Some(hint) = advice::hint(&a, &account.name, &resumer, in_claude_code) {
            eprintln!("{hint}");
        }
        said.push(a);
    }
    Ok(ended.exit_like())
}

fn logged_in(home: &Path) -> bool {
    login_state::read(home).is_logged_in()
}

/// Another account that can resume thread `id`, `asked` being logged out: the one holding the
/// thread's newest copy when it is logged in (nothing to carry), else the first logged-in one.
fn resumer(accounts: &Accounts, asked: &Account, id: &str) -> Option<String> {
    let others: Vec<Account> = accounts
        .all()
        .into_iter()
        .filter(|a| a.name != asked.name && a.exists() && logged_in(&a.home))
        .collect();
    let homes: Vec<PathBuf> = others.iter().map(Account::canonical_home).collect();
    let refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let holder = carry::newest_home(id, &refs).ok().flatten();
    let holding = holder.and_then(|h| others.iter().zip(&refs).find(|(_, r)| **r == h));
    holding
        .map(|(a, _)| a)
        .or(others.first())
        .map(|a| a.name.clone())
}
