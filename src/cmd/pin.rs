//! `codex-as pin NAME` / `codex-as pin --unset`: this folder's `.codex-account`.

use anyhow::Context;

use crate::account::pin_file::{self, Removed};
use crate::account::{Accounts, directory};
use crate::cli::PinArgs;
use crate::error::{UsageError, status};

pub fn run(args: PinArgs) -> anyhow::Result<u8> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let accounts = Accounts::load()?;
    let Some(name) = args.name.filter(|_| !args.unset) else {
        return match pin_file::remove(&here)? {
            Removed::Removed(pin) => {
                crate::outln!("removed {} (it named '{}')", pin.path.display(), pin.name)?;
                let now = directory::for_directory(&here, &accounts)?;
                crate::outln!("this folder now uses '{}': {}", now.name, now.why)?;
                Ok(status::OK)
            }
            Removed::NoFile => {
                let now = directory::for_directory(&here, &accounts)?;
                let hint = match now.why.file() {
                    Some(f) => format!(
                        "; this folder's account '{}' comes from {}",
                        now.name,
                        f.display()
                    ),
                    None => String::new(),
                };
                Err(UsageError::new(format!(
                    "there is no {} in {}{hint}",
                    pin_file::FILE_NAME,
                    here.display()
                ))
                .into())
            }
        };
    };
    // Pinning a name this machine does not know would only move the error to the next run.
    accounts.require(&name)?;
    let path = pin_file::write(&here, &name)?;
    crate::outln!("{} now names '{name}'", path.display())?;
    let now = directory::for_directory(&here, &accounts)?;
    if now.name != name {
        eprintln!(
            "codex-as: note: commands here still run as '{}': {}",
            now.name, now.why
        );
    }
    Ok(status::OK)
}
