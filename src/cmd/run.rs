//! `codex-as ACCOUNT ...`: the run path, parsed here and carried out by `run`.

use std::ffi::OsString;

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    crate::run::run(crate::run::args::parse(raw)?)
}
