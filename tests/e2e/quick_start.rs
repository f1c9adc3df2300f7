//! The README's quick start: `examples/demo.sh` must work on a fresh machine, as people run it
//! first (it broke once when logged-out accounts started being refused).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::skip;
use crate::support::proc::{processes_mentioning, run_timeout, wait_until};
use crate::support::{BIN, have_node};

#[test]
fn the_demo_serves_two_accounts_falls_back_and_leaves_nothing_running() {
    if !have_node() {
        skip!("node is not installed");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_timeout(
        Command::new("sh")
            .arg(repo.join("examples/demo.sh"))
            // The built binary: the demo would otherwise build a release binary of its own.
            .env("CODEX_AS", BIN)
            .env_remove("CODEX_PLUGIN_CC_DIR"),
        Duration::from_secs(120),
    );
    out.ok();
    let text = &out.stdout;
    let demo: PathBuf = text
        .lines()
        .find_map(|l| l.split("config: ").nth(1))
        .map(|c| Path::new(c.trim()).parent().unwrap().to_path_buf())
        .unwrap_or_else(|| panic!("the demo did not print its config path:\n{text}"));
    let alice = demo.join("home/.codex-alice");
    let bob = demo.join("home/.codex-bob");
    assert!(
        text.contains(&format!(
            "alice's task answered: done by {}",
            alice.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("bob's task answered:   done by {}", bob.display())),
        "{text}"
    );
    assert!(
        text.contains("codex-as: ran as 'bob'; skipped 'alice' (usage limit reached"),
        "{text}"
    );
    // Its clean-up stops the brokers it started and removes its folder.
    assert!(
        wait_until(10, || processes_mentioning(&demo).is_empty()),
        "left running: {:?}",
        processes_mentioning(&demo)
    );
    assert!(!demo.exists(), "{} was left behind", demo.display());
}

#[test]
fn the_demo_says_it_is_building_and_lets_cargo_show_its_progress() {
    let sb = crate::support::Sandbox::new();
    // A cargo that notes how it was asked, then fails: the demo stops right there.
    let log = sb.path().join("cargo.args");
    sb.write_script(
        "cargo",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > '{}'\nexit 3\n",
            log.display()
        ),
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_timeout(
        sb.command("sh").arg(repo.join("examples/demo.sh")),
        Duration::from_secs(30),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stderr.contains("demo: building codex-as"),
        "{}",
        out.stderr
    );
    let args = std::fs::read_to_string(&log).unwrap();
    assert!(args.starts_with("build --release"), "{args}");
    assert!(!args.contains("--quiet"), "its progress hidden: {args}");
}
