//! Which account a folder works as. Issue 10 brings per-folder accounts (a pin file found walking
//! up, or a config table mapping folders to accounts) and replaces the body of
//! [`for_directory`]; until then a folder's account is the shell's: `CODEX_AS_ACCOUNT` when it
//! names an account, else the account whose home `CODEX_HOME` points at, else `default`.

use std::path::Path;

use super::env::CODEX_HOME;
use super::{Account, Accounts, DEFAULT, FoundBy, same_home};

/// The marker `codex-as NAME -- CMD` and `codex-as use NAME` set.
pub const ACCOUNT_ENV: &str = "CODEX_AS_ACCOUNT";

/// The account work in `dir` runs as. Cheap: no network, no process.
pub fn for_directory(accounts: &Accounts, _dir: &Path) -> Option<Account> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let home = var(CODEX_HOME);
    if let Some(name) = var(ACCOUNT_ENV).and_then(|n| n.into_string().ok())
        && let Ok(a) = accounts.resolve(&name)
        && home.as_ref().is_none_or(|h| same_home(h.as_ref(), &a.home))
    {
        return Some(a);
    }
    match home {
        Some(h) => accounts
            .all()
            .into_iter()
            .find(|a| same_home(&a.home, h.as_ref()))
            .or_else(|| {
                // A home codex-as has no name for: still an account, named by its folder.
                let p = Path::new(&h);
                Some(Account {
                    name: p.file_name()?.to_string_lossy().into_owned(),
                    home: p.to_path_buf(),
                    found_by: FoundBy::Config,
                    pass_env: Vec::new(),
                })
            }),
        None => accounts.resolve(DEFAULT).ok(),
    }
}
