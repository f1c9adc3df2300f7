use std::process::ExitCode;

use clap::Parser;

mod account;
mod broker;
mod cli;
mod cmd;
mod doctor;
mod error;
mod fallback;
#[cfg(test)]
mod manpage;
mod plugin;
mod quota;
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
        Err(e) if error::is_closed_pipe(&e) => ExitCode::from(error::status::OK),
        Err(e) => {
            eprintln!("codex-as: {e:#}");
            ExitCode::from(error::exit_code(&e))
        }
    }
}
