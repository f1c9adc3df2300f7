use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;

use crate::account::spec::AccountSpec;
use crate::account::{Accounts, directory};
use crate::claude::in_use::{self, How};
use crate::cli::WhichArgs;
use crate::error::status;

pub fn run(args: WhichArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let Some(name) = args.name else {
        return this_folder(&accounts);
    };
    let account = accounts.resolve(&name)?;
    if !account.exists() {
        eprintln!(
            "codex-as: note: {} does not exist yet (`codex-as login {}` creates it)",
            account.home.display(),
            account.name
        );
    }
    let mut out = std::io::stdout().lock();
    out.write_all(account.canonical_home().as_os_str().as_bytes())?;
    out.write_all(b"\n")?;
    Ok(status::OK)
}

/// `codex-as which`: the account, its home, and what chose it. An unusable choice (a pin naming
/// an unknown account) is still explained, then reported as the error it is everywhere else. A
/// folder on a list or `auto` shows it, then the account in use and how that is known.
fn this_folder(accounts: &Accounts) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let chosen = directory::for_directory(&here, accounts)?;
    let now = in_use::of(accounts, &chosen)?;
    let account = &now.account;
    if now.how == How::Named {
        crate::outln!(
            "{}  {}\n  chosen by: {}",
            account.name,
            account.canonical_home().display(),
            chosen.why
        )?;
        return Ok(status::OK);
    }
    crate::outln!(
        "{}  ({})\n  in use: {}  {}  ({})\n  chosen by: {}",
        chosen.label(),
        route_words(&chosen.spec),
        account.name,
        account.canonical_home().display(),
        now.describe(&chosen),
        chosen.why
    )?;
    Ok(status::OK)
}

/// What a list or `auto` does, in a few words.
fn route_words(spec: &AccountSpec) -> &'static str {
    match spec {
        AccountSpec::Auto => {
            "auto: the account with the most quota left, the next when it reaches its usage limit"
        }
        _ => "a list: its first usable account, the next when one reaches its usage limit",
    }
}
