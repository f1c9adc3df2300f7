//! `codex-as completions SHELL`: the completion script alone, for a completions folder.

use std::io::Write;

use anyhow::Context;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::status;
use crate::shell;

pub fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    let text = shell::completion_script(Cli::command(), args.shell, true, None)
        .context("cannot render completion")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(status::OK)
}
