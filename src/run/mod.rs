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
use crate::fallback::here::{self as folder, Readings};
use crate::fallback::policy::Route;
use args::{Mode, RunArgs};

pub fn run(mut args: RunArgs) -> anyhow::Result<u8> {
    if let Mode::Companion { args: cargs } = &args.mode
        && crate::plugin::help::wants_help(cargs)
    {
        let spec = args.spec.to_string();
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
                return advised::run(launch, &accounts, &account);
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
/// account of the folder it works in. A pin file or config entry naming an unusable account is
/// an error naming that file; nothing falls back to an account the folder did not name.
///
/// A folder on a list or `auto`: a companion command runs as that list exactly as `codex-as
/// work,personal task ...` does (fallback, handover); a program (`-- CMD`) runs on one account,
/// the first usable (`fallback::here`), as it would under `--background`.
pub fn run_here(mut args: RunArgs) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let accounts = Accounts::load()?;
    let chosen = directory::for_directory(&args.mode.work_dir(&here), &accounts)?;
    match (&chosen.spec, &args.mode) {
        (AccountSpec::One(_), _) => {
            let account = chosen.account(&accounts)?;
            args.spec = AccountSpec::One(account.name);
        }
        (_, Mode::Companion { .. }) => {
            // Checked here so that an unknown name is reported with the file that names it.
            chosen.route(&accounts)?;
            args.spec = chosen.spec.clone();
        }
        (_, Mode::Exec { .. }) => {
            let route = chosen.route(&accounts)?;
            let pick = folder::one(&accounts, &chosen.spec, route, Readings::Fresh)?;
            if let Some(note) = pick.note {
                eprintln!("{note}");
            }
            args.spec = AccountSpec::One(pick.account.name);
        }
    }
    // From here it is like any other run: the same preflight, the companion watched.
    run(args)
}
