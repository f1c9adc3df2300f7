//! What tests read back from codex-as and the companion: `brokers --json` rows, the job id a
//! background start prints, and the logs of a folder for a failure's message.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::{files_under, stderr};

/// codex-as's rows in the output of `brokers --json`: its brokers, and the listeners it started
/// that no broker serves through (state `listening`).
pub fn codex_as_rows(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", stderr(out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["owner"] == "codex-as")
        .cloned()
        .collect()
}

/// The job id in a companion's "... started in the background as ID. Check ..." line.
pub fn background_job_id(stdout: &str) -> String {
    stdout
        .split("in the background as ")
        .nth(1)
        .and_then(|rest| rest.split(['.', ' ', '\n']).next())
        .unwrap_or_else(|| panic!("no job id in {stdout}"))
        .to_string()
}

/// Every `.log` file under `dir`, each after a `== PATH` line.
pub fn logs_under(dir: &Path) -> String {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            format!("== {}\n{text}", p.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}
