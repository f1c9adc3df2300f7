use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use crate::account::Accounts;
use crate::cli::NameArg;
use crate::error::status;

pub fn run(args: NameArg) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let account = accounts.resolve(&args.name)?;
    if !account.exists() {
        eprintln!(
            "codex-as: note: {} does not exist yet (`codex-as login {}` creates it)",
            account.home.display(),
            account.name
        );
    }
    let mut out = std::io::stdout().lock();
    out.write_all(account.canonical_home().as_os_str().as_bytes())?;
    out.write_all(b"\n")?;
    Ok(status::OK)
}
