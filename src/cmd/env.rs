//! `codex-as env NAME [--shell SHELL]`: the account's environment as shell code to eval.

use crate::cli::EnvArgs;
use crate::error::status;
use crate::shell::{self, Shell};

pub fn run(args: EnvArgs) -> anyhow::Result<u8> {
    let shell = args.shell.unwrap_or_else(Shell::from_env);
    print!("{}", shell::env::for_account(&args.name, shell)?);
    Ok(status::OK)
}
