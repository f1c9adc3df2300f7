//! One module per subcommand; each returns the exit status to end with.

mod add;
mod broker;
mod brokers;
mod claude;
mod completions;
mod doctor;
mod env;
mod init;
mod list;
mod login;
mod pin;
mod quota;
mod relay;
mod remove;
mod run;
mod statusline;
mod use_;
mod which;

use crate::cli::{Cli, Command};

pub use run::{names_no_account, run_as_directory_account};

pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Add(a) => add::run(a),
        Command::Remove(a) => remove::run(a),
        Command::List(a) => list::run(a),
        Command::Which(a) => which::run(a),
        Command::Pin(a) => pin::run(a),
        Command::Claude(c) => claude::run(c),
        Command::Login(a) => login::run(a),
        Command::Env(a) => env::run(a),
        Command::Broker(c) => broker::run(c),
        Command::Relay(c) => relay::run(c),
        Command::Brokers(a) => brokers::run(a),
        Command::Init(a) => init::run(a),
        Command::Use(a) => use_::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Quota(a) => quota::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Statusline(a) => statusline::run(a),
        Command::Run(args) => run::run(args),
    }
}
