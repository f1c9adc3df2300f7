//! One module per subcommand; each returns the exit status to end with. A run as an account
//! (`codex-as ACCOUNT ...`) is the run path's (`run`), with no adapter of its own.

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
mod statusline;
mod thread;
mod threads;
mod use_;
mod which;

use crate::cli::Command;
use crate::request::Request;

/// Carries out what the command line asked for: one of codex-as's commands here, a run as an
/// account on the run path.
pub fn dispatch(request: Request) -> anyhow::Result<u8> {
    let command = match request {
        Request::Command(c) => c,
        Request::Named { word, args } => return crate::run::as_named(&word, args),
        Request::Unnamed(args) => return crate::run::as_folder_account(args),
    };
    match command {
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
        Command::Threads(a) => threads::run(a),
        Command::Thread(c) => thread::run(c),
        Command::Doctor(a) => doctor::run(a),
        Command::Statusline(a) => statusline::run(a),
    }
}
