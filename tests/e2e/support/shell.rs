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

/// `script` run by `shell` with no user files, unset variables an error (and pipefail in bash).
pub fn shell_cmd(sb: &Sandbox, shell: &str, script: &str) -> std::process::Command {
    let mut c = sb.command(shell);
    match shell {
        "bash" => c.args([
            "--noprofile",
            "--norc",
            "-u",
            "-o",
            "pipefail",
            "-c",
            script,
        ]),
        "zsh" => c.args(["-f", "-u", "-c", script]),
        "fish" => c.args(["--no-config", "--private", "-c", script]),
        _ => unreachable!(),
    };
    c
}
