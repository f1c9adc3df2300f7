use std::process::ExitCode;

use clap::Parser;

mod account;
mod broker;
mod claude;
mod cli;
mod cmd;
mod doctor;
mod error;
mod exit;
mod fallback;
mod handover;
mod help;
#[cfg(test)]
mod manpage;
mod plugin;
mod quota;
mod run;
mod shell;
mod sys;
mod thread;
mod words;

fn main() -> ExitCode {
    let args = match help::rewrite(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("codex-as: {e}");
            return ExitCode::from(error::status::USAGE);
        }
    };
    let argv: Vec<std::ffi::OsString> = args.iter().skip(1).cloned().collect();
    if cmd::names_no_account(&argv) {
        return finish(cmd::run_as_directory_account(argv));
    }
    let cli = match cli::Cli::try_parse_from(args) {
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
        Err(e) if exit::is_closed_pipe(&e) => ExitCode::from(error::status::OK),
        Err(e) => {
            eprintln!("codex-as: {e:#}");
            ExitCode::from(exit::code(&e))
        }
    }
}
