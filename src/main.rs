use std::process::ExitCode;

use clap::Parser;

mod account;
mod broker;
mod claude;
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
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if cmd::names_no_account(&argv) {
        return finish(cmd::run_as_directory_account(argv));
    }
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
    finish(cmd::dispatch(cli))
}

fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("codex-as: {e:#}");
            ExitCode::from(exit::code(&e))
        }
    }
}
