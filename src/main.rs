use std::process::ExitCode;

use clap::Parser;

mod account;
mod account_env;
mod cli;
mod cmd;
mod config;
mod error;
mod exec;
mod fsutil;
mod login_state;
mod names;
mod quote;
mod shell;

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
            ExitCode::from(error::exit_code(&e))
        }
    }
}
