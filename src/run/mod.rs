//! The run path: `codex-as ACCOUNT ...` and the commands that name no account, as `request`
//! read them. One way through, each decision once: the accounts are loaded (once); a named word
//! close to a command is refused (`unknown`), a usage error in the words after it reported; a
//! command naming no account gets the folder's account (`account::directory`,
//! `fallback::here`); a companion `--help` is answered (`preflight`); then the spec routes it: a
//! pin is prepared (`resume`, `launch`, `companion`) and exec'd (a companion runs as a watched
//! child instead, `advised`), a list or `auto` goes through the fallback policy
//! (`fallback::policy`), attempt after attempt (`attempts`), each prepared the same way.

mod advised;
pub mod args;
mod attempts;
mod companion;
mod launch;
mod preflight;
mod resume;
mod unknown;

use anyhow::Context;

use crate::account::spec::AccountSpec;
use crate::account::{Accounts, directory};
use crate::error::UsageError;
use crate::fallback::here::{self as folder, Readings};
use crate::fallback::policy::Route;
use args::{Mode, RunArgs};

/// `codex-as ACCOUNT ...`: `word` is the account as typed, `args` what followed it.
pub fn as_named(word: &str, args: Result<RunArgs, UsageError>) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    unknown::check_word(word, &accounts)?;
    by_spec(&accounts, args?)
}

/// A command that named no account (`codex-as task ...`, `codex-as -- CMD`): it runs as the
/// account of the folder it works in.
pub fn as_folder_account(args: Result<RunArgs, UsageError>) -> anyhow::Result<u8> {
    let loaded = Accounts::load();
    let args = args.map_err(|e| name_the_folders_account(e, loaded.as_ref().ok()))?;
    let accounts = loaded?;
    let args = with_folder_account(&accounts, args)?;
    by_spec(&accounts, args)
}

/// A usage error's advice says "this folder's account": it names it, when the folder has one.
fn name_the_folders_account(e: UsageError, accounts: Option<&Accounts>) -> UsageError {
    let account = accounts.and_then(|accounts| {
        let cwd = std::env::current_dir().ok()?;
        directory::for_directory(&cwd, accounts)
            .ok()
            .map(|chosen| chosen.label())
    });
    match account {
        Some(name) => UsageError::new(format!("{e} (this folder's account is '{name}')")),
        None => e,
    }
}

/// `args` with the folder's account in place of the placeholder. A pin file or config entry
/// naming an unusable account is an error naming that file; nothing falls back to an account the
/// folder did not name.
///
/// A folder on a list or `auto`: a companion command runs as that list exactly as `codex-as
/// work,personal task ...` does (fallback, handover); a program (`-- CMD`) runs on one account,
/// the first usable (`fallback::here`), as it would under `--background`.
fn with_folder_account(accounts: &Accounts, mut args: RunArgs) -> anyhow::Result<RunArgs> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let chosen = directory::for_directory(&args.mode.work_dir(&here), accounts)?;
    match (&chosen.spec, &args.mode) {
        (AccountSpec::One(_), _) => {
            let account = chosen.account(accounts)?;
            args.spec = AccountSpec::One(account.name);
        }
        (_, Mode::Companion { .. }) => {
            // Checked here so that an unknown name is reported with the file that names it.
            chosen.route(accounts)?;
            args.spec = chosen.spec.clone();
        }
        (_, Mode::Exec { .. }) => {
            let route = chosen.route(accounts)?;
            let pick = folder::one(accounts, &chosen.spec, route, Readings::Fresh)?;
            if let Some(note) = pick.note {
                eprintln!("{note}");
            }
            args.spec = AccountSpec::One(pick.account.name);
        }
    }
    Ok(args)
}

/// From here a run is the same whoever named its account: a companion `--help` answered, then
/// a pin run as its one account, a list or `auto` attempt after attempt.
fn by_spec(accounts: &Accounts, mut args: RunArgs) -> anyhow::Result<u8> {
    if let Mode::Companion { args: cargs } = &args.mode
        && crate::plugin::help::wants_help(cargs)
    {
        let spec = args.spec.to_string();
        return preflight::companion_help(accounts, &spec, args.plugin_root.as_deref(), cargs);
    }
    match Route::of(&args.spec) {
        Route::Pin(name) => {
            let account = accounts.require(name)?;
            resume::prepare(accounts, &account, &mut args)?;
            if let Mode::Companion { args: cargs } = &args.mode {
                preflight::refuse_logged_out(&account, cargs)?;
            }
            let launch = launch::prepare(accounts, &account, None, &args)?;
            if launch.companion.is_some() {
                return advised::watch(launch, accounts, &account);
            }
            Err(launch.exec())
        }
        Route::Fallback if args.resume.is_some() => Err(UsageError::new(
            "`resume` runs the Codex TUI as one account: `codex-as NAME resume ...`",
        )
        .into()),
        Route::Fallback => attempts::in_turn(accounts, &args),
    }
}
