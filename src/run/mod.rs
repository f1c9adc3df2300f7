//! The run path, one way through: `args` parses the command line and the account spec once;
//! the accounts are resolved; a pin is prepared (`launch`, `companion`) and exec'd, while a list
//! or `auto` goes through the fallback policy (`fallback::policy`), attempt after attempt
//! (`attempts`), each prepared the same way.

pub mod args;
mod attempts;
mod companion;
mod launch;

use anyhow::Context;

use crate::account::spec::AccountSpec;
use crate::account::{Accounts, directory};
use crate::fallback::policy::Route;
use args::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    match Route::of(&args.spec) {
        Route::Pin(name) => {
            let account = accounts.require(name)?;
            Err(launch::prepare(&accounts, &account, &args)?.exec())
        }
        Route::Fallback => attempts::run(&accounts, &args),
    }
}

/// A command that named no account (`codex-as task ...`, `codex-as -- CMD`): it runs as the
/// account of the folder it works in, as a pin. A pin file or config entry naming an unusable
/// account is an error naming that file; nothing falls back to another account.
pub fn run_here(mut args: RunArgs) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let accounts = Accounts::load()?;
    let account =
        directory::for_directory(&args.mode.work_dir(&here), &accounts)?.account(&accounts)?;
    args.spec = AccountSpec::One(account.name.clone());
    Err(launch::prepare(&accounts, &account, &args)?.exec())
}
