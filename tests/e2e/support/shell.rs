//! Helpers for driving the shell integration.

use super::proc::run;
use super::sandbox::{BIN, Sandbox};

/// The init for `shell`, as the binary prints it.
pub fn init(sb: &Sandbox, shell: &str, extra: &[&str]) -> String {
    let out = run(sb.command(BIN).arg("init").arg(shell).args(extra));
    out.ok();
    assert_eq!(out.stderr, "");
    out.stdout
}
