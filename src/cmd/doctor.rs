//! `codex-as doctor [--json]`: the whole setup checked; exit status 1 when something needs
//! action, whether or not anyone reads the report (`doctor | head -0`).

use crate::cli::DoctorArgs;
use crate::doctor;
use crate::error::status;

pub fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let report = doctor::examine();
    let written = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|text| Ok(crate::outln!("{text}")?))
    } else {
        crate::out!("{}", doctor::render(&report)).map_err(anyhow::Error::from)
    };
    if let Err(e) = written
        && !crate::exit::is_closed_pipe(&e)
    {
        return Err(e);
    }
    Ok(if report.ok {
        status::OK
    } else {
        status::FAILURE
    })
}
