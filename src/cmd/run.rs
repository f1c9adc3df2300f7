//! `codex-as ACCOUNT ...`: the run path, parsed here and carried out by `run`.

use std::ffi::OsString;

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    if let Some(word) = raw.first().and_then(|w| w.to_str()) {
        crate::run::unknown::check_word(word)?;
    }
    crate::run::run(crate::run::args::parse(raw)?)
}
