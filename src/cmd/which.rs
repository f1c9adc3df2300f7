use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;

use crate::account::{Accounts, directory};
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
/// an unknown account) is still explained, then reported as the error it is everywhere else.
fn this_folder(accounts: &Accounts) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let chosen = directory::for_directory(&here, accounts)?;
    let account = chosen.account(accounts)?;
    crate::outln!(
        "{}  {}\n  chosen by: {}",
        account.name,
        account.canonical_home().display(),
        chosen.why
    )?;
    Ok(status::OK)
}
