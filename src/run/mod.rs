//! The run path, one way through: `args` parses the command line and the account spec once;
//! the accounts are resolved; a pin is prepared (`launch`, `companion`) and exec'd, while a list
//! or `auto` goes through the fallback policy (`fallback::policy`), attempt after attempt
//! (`attempts`), each prepared the same way.

pub mod args;
mod attempts;
mod companion;
mod launch;

use crate::account::Accounts;
use crate::fallback::policy::Route;
use args::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    match Route::of(&args.spec) {
        Route::Pin(name) => {
            let account = accounts.require(name)?;
            Err(launch::prepare(&accounts, &account, &args)?.exec())
        }
        Route::Fallback => attempts::run(&accounts, &args),
    }
}
