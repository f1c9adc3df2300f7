//! `codex-as relay ...`: the relay that hands a job over to the next account (internal; started
//! by `handover::ensure`).

use crate::account::Accounts;
use crate::broker::serve::take_ready_fd;
use crate::cli::{RelayCommand, RelayServeArgs};
use crate::error::{UsageError, status};
use crate::handover::route::Route;
use crate::handover::serve::{self, Options};

pub fn run(cmd: RelayCommand) -> anyhow::Result<u8> {
    match cmd {
        RelayCommand::Serve(args) => serve_cmd(args),
    }
}

fn serve_cmd(args: RelayServeArgs) -> anyhow::Result<u8> {
    // First of all, so that no child (a broker it starts) inherits the ready pipe.
    let ready = args.ready_fd.map(take_ready_fd).transpose()?;
    if !args.endpoint.starts_with("unix:") || args.endpoint.len() <= "unix:".len() {
        return Err(UsageError::new(format!(
            "--endpoint {:?}: expected unix:PATH",
            args.endpoint
        ))
        .into());
    }
    let accounts = Accounts::load()?;
    let route = args
        .route
        .split(',')
        .map(|n| accounts.require(n.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = Options {
        endpoint: args.endpoint,
        route: Route::new(route),
        accounts,
        idle_exit: args.idle_exit,
        ready,
    };
    crate::sys::runtime::current_thread()?.block_on(serve::serve(opts))?;
    Ok(status::OK)
}
