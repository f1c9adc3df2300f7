use std::process::ExitCode;

use clap::Parser;

mod account;
mod broker;
mod cli;
mod cmd;
mod error;
mod exit;
mod fallback;
mod plugin;
mod quota;
mod run;
mod shell;
mod sys;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                error::status::USAGE
            } else {
                0
            });
        }
    };
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("codex-as: {e:#}");
            ExitCode::from(exit::code(&e))
        }
    }
}
