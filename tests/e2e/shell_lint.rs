//! Every script codex-as prints, through each shell's own checkers: shellcheck and shfmt for bash,
//! `zsh -n`, `fish --no-execute` and fish_indent.

use std::io::Write;
use std::process::Stdio;

use crate::support::{BIN, Sandbox, have, init, run};

const VARIANTS: &[&[&str]] = &[
    &[],
    &["--shortcuts"],
    &["--no-completions"],
    &["--shortcuts", "--no-completions"],
];

/// Every script for `shell`: the init in each variant, and the standalone completion script.
fn scripts(sb: &Sandbox, shell: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = VARIANTS
        .iter()
        .map(|v| (format!("init {shell} {}", v.join(" ")), init(sb, shell, v)))
        .collect();
    let c = run(sb.command(BIN).args(["completions", shell]));
    c.ok();
    out.push((format!("completions {shell}"), c.stdout));
    out
}

/// Runs `program args` with `input` on stdin; returns (success, stdout + stderr).
fn check(sb: &Sandbox, program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = sb
        .command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A sandbox whose accounts give shortcuts to render, including a name with `.` and `_`.
fn sandbox() -> Sandbox {
    let sb = Sandbox::with_shell_accounts();
    std::fs::create_dir_all(sb.home.join(".codex-team.prod_2")).unwrap();
    sb
}

#[test]
fn bash_scripts_pass_shellcheck() {
    if !have("shellcheck") {
        return;
    }
    let sb = sandbox();
    for (what, text) in scripts(&sb, "bash") {
        let (ok, msg) = check(
            &sb,
            "shellcheck",
            &["--enable=all", "--shell=bash", "-"],
            &text,
        );
        assert!(ok && msg.is_empty(), "shellcheck on `{what}`:\n{msg}");
    }
}

#[test]
fn bash_scripts_are_shfmt_formatted() {
    if !have("shfmt") {
        return;
    }
    let sb = sandbox();
    for (what, text) in scripts(&sb, "bash") {
        let (ok, msg) = check(
            &sb,
            "shfmt",
            &["-d", "-i", "4", "-ci", "-ln", "bash", "-"],
            &text,
        );
        assert!(ok && msg.is_empty(), "shfmt -d on `{what}`:\n{msg}");
    }
}

#[test]
fn zsh_scripts_parse() {
    if !have("zsh") {
        return;
    }
    let sb = sandbox();
    for (what, text) in scripts(&sb, "zsh") {
        let (ok, msg) = check(&sb, "zsh", &["-n", "-f"], &text);
        assert!(ok && msg.is_empty(), "zsh -n on `{what}`:\n{msg}");
    }
}

#[test]
fn fish_scripts_parse_and_are_indented() {
    if !have("fish") {
        return;
    }
    let sb = sandbox();
    for (what, text) in scripts(&sb, "fish") {
        let (ok, msg) = check(&sb, "fish", &["--no-config", "--no-execute"], &text);
        assert!(
            ok && msg.is_empty(),
            "fish --no-execute on `{what}`:\n{msg}"
        );
        if !have("fish_indent") {
            continue;
        }
        // fish_indent also unquotes words that need no quotes; only its indentation is compared,
        // since every value is quoted on purpose.
        let (ok, indented) = check(&sb, "fish_indent", &[], &text);
        assert!(ok, "fish_indent on `{what}`: {indented}");
        let lead =
            |s: &str| -> Vec<usize> { s.lines().map(|l| l.len() - l.trim_start().len()).collect() };
        assert_eq!(
            lead(&text),
            lead(&indented),
            "fish_indent on `{what}`:\n{indented}"
        );
    }
}
