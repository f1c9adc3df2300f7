//! `codex-as quota [--json] [--fresh]`: each account's usage windows and what `auto` would do
//! with them (`quota::report`).

use crate::account::Accounts;
use crate::cli::QuotaArgs;
use crate::error::status;
use crate::quota::report;
use crate::sys::clock::now;

pub fn run(args: QuotaArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let report = report::gather(&accounts, args.fresh, now());
    if args.json {
        crate::outln!("{}", report.to_json()?)?;
    } else {
        crate::out!("{}", report.render(crate::sys::term::width()))?;
    }
    Ok(status::OK)
}
