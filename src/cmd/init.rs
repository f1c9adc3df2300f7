//! `codex-as init SHELL`: the shell integration, printed for `eval`. It must stay cheap (it runs
//! in every new shell), so it reads the config only for `--shortcuts` and nothing else.

use std::io::Write;

use anyhow::Context;

use crate::account::Accounts;
use clap::CommandFactory;

use crate::cli::{Cli, InitArgs};
use crate::error::status;
use crate::shell::{self, InitOpts};

/// Shortcut functions are named PREFIX + account name.
const SHORTCUT_PREFIX: &str = "codex-";

pub fn run(args: InitArgs) -> anyhow::Result<u8> {
    // The functions call codex-as by the path this one was started by, as starship and mise do:
    // the init works before PATH has codex-as, and runs the same codex-as that printed it.
    let program = crate::sys::exe::stable_or_name();
    let shortcuts = if args.shortcuts {
        shell::shortcuts(&Accounts::load()?, args.shell, SHORTCUT_PREFIX)
    } else {
        Vec::new()
    };
    let completion = if args.no_completions {
        String::new()
    } else {
        shell::completion_script(Cli::command(), args.shell, false, Some(&program))
            .context("cannot render completion")?
    };
    let opts = InitOpts {
        program_q: args.shell.program_word(&program),
        shortcuts,
        completion,
    };
    let text = shell::render_init(args.shell, &opts).context("cannot render the init")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")?;
    Ok(status::OK)
}
