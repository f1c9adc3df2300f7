//! `codex-as env NAME [--shell SHELL]`: the account's environment as shell code to eval.

use crate::cli::EnvArgs;
use crate::error::status;
use crate::shell::{self, Shell};

pub fn run(args: EnvArgs) -> anyhow::Result<u8> {
    let (shell, how) = match args.shell {
        Some(shell) => (shell, format!("{shell} code (--shell {shell})")),
        None => Shell::detect(),
    };
    crate::out!("{}", shell::env::for_account(&args.name, shell, &how)?)?;
    Ok(status::OK)
}
