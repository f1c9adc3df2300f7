use std::process::ExitCode;

use clap::Parser;

mod account;
mod account_env;
mod broker;
mod broker_pool;
mod cli;
mod clock;
mod cmd;
mod config;
mod duration;
mod error;
mod exec;
mod fallback;
mod fsutil;
mod identity;
mod login_state;
mod names;
mod plugin;
mod plugin_brokers;
mod quota;
mod quote;
mod registry;
mod runtime_dir;
mod shell;
mod workspace;

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
