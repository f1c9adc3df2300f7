//! `codex-as ACCOUNT ...`: the run path, parsed here and carried out by `run`.

use std::ffi::OsString;

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    if let Some(word) = raw.first().and_then(|w| w.to_str()) {
        crate::run::unknown::check_word(word)?;
    }
    crate::run::run(crate::run::args::parse(raw)?)
}

/// `codex-as task ...`, `codex-as -- CMD`, `codex-as --cwd DIR -- CMD`: no account named. (clap
/// would swallow the leading `--` and refuse `--cwd`, so `main` asks this first, with the raw
/// arguments after the program name.)
pub fn names_no_account(raw: &[OsString]) -> bool {
    crate::run::args::names_no_account(raw)
}

/// Runs such a command as the account of the folder it works in.
pub fn run_as_directory_account(raw: Vec<OsString>) -> anyhow::Result<u8> {
    let args = crate::run::args::parse_unnamed(raw).map_err(|e| {
        // The advice says "this folder's account": name it, when this folder has one.
        let account = crate::account::Accounts::load().ok().and_then(|accounts| {
            let cwd = std::env::current_dir().ok()?;
            crate::account::directory::for_directory(&cwd, &accounts)
                .ok()
                .map(|chosen| chosen.label())
        });
        match account {
            Some(name) => {
                crate::error::UsageError::new(format!("{e} (this folder's account is '{name}')"))
            }
            None => e,
        }
    })?;
    crate::run::run_here(args)
}
