//! `codex-as ACCOUNT ...`: the run path, parsed here and carried out by `run`.

use std::ffi::OsString;

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
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
    crate::run::run_here(crate::run::args::parse_unnamed(raw)?)
}
