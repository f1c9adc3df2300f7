//! The run path, one way through: `args` parses the command line and the account spec once;
//! `preflight` answers a companion `--help` and refuses a turn on an account that is not logged
//! in; the accounts are resolved; a pin is prepared (`launch`, `companion`) and exec'd (the
//! companion runs as a watched child instead, `advised`), while a list or `auto` goes through
//! the fallback policy (`fallback::policy`), attempt after attempt (`attempts`), each prepared
//! the same way.

mod advised;
pub mod args;
mod attempts;
mod companion;
mod launch;
mod preflight;
mod resume;
pub mod unknown;

use anyhow::Context;

use crate::account::spec::AccountSpec;
use crate::account::{Accounts, directory};
use crate::fallback::policy::Route;
use args::{Mode, RunArgs};

pub fn run(mut args: RunArgs) -> anyhow::Result<u8> {
    if let Mode::Companion { args: cargs } = &args.mode
        && crate::plugin::help::wants_help(cargs)
    {
        let spec = match &args.spec {
            AccountSpec::One(n) => n.clone(),
            AccountSpec::List(names) => names.join(","),
            AccountSpec::Auto => crate::account::spec::AUTO.to_string(),
        };
        return preflight::companion_help(&spec, args.plugin_root.as_deref(), cargs);
    }
    let accounts = Accounts::load()?;
    match Route::of(&args.spec) {
        Route::Pin(name) => {
            let account = accounts.require(name)?;
            resume::prepare(&accounts, &account, &mut args)?;
            if let Mode::Companion { args: cargs } = &args.mode {
                preflight::refuse_logged_out(&account, cargs)?;
            }
            let launch = launch::prepare(&accounts, &account, None, &args)?;
            if launch.companion.is_some() {
                return advised::run(launch, &account.name);
            }
            Err(launch.exec())
        }
        Route::Fallback if args.resume.is_some() => Err(crate::error::UsageError::new(
            "`resume` runs the Codex TUI as one account: `codex-as NAME resume ...`",
        )
        .into()),
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
    // From here it is a pin like any other: the same preflight, and the companion watched.
    run(args)
}
