//! `codex-as doctor [--json]`: the whole setup checked; exit status 1 when something needs
//! action.

use crate::cli::DoctorArgs;
use crate::doctor;
use crate::error::status;

pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let report = doctor::examine();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{}", doctor::render(&report))?;
    }
    Ok(if report.ok {
        status::OK
    } else {
        status::FAILURE
    })
}
