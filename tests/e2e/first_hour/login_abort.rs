//! An aborted `codex-as login NEW` (codex login fails or is interrupted) does not leave a new
//! empty account behind; a finished one keeps its home; an existing home is never touched.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Sandbox, stderr};

fn login(sb: &Sandbox, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = sb
        .codex_as()
        .arg("login")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_failed_login_removes_the_new_home_and_a_finished_one_keeps_it() {
    let sb = Sandbox::new();
    sb.with_fake_codex();
    // The fake refuses anything but `login status` and `--with-api-key`, with status 2.
    let out = login(&sb, &["newbie", "--", "--device-auth"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !sb.home().join(".codex-newbie").exists(),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("removed the new"), "{}", stderr(&out));

    let out = login(&sb, &["newbie", "--", "--with-api-key"], b"sk-new\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(sb.home().join(".codex-newbie/auth.json").is_file());

    // A home that existed before is never removed, whatever the login does.
    let out = login(&sb, &["newbie", "--", "--device-auth"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(sb.home().join(".codex-newbie/auth.json").is_file());
}

#[test]
fn an_interrupted_login_removes_the_new_home_and_dies_of_the_signal() {
    let sb = Sandbox::new();
    // A codex whose login waits (like a browser login) and leaves what Codex leaves.
    let codex = sb.bin_dir().join("codex");
    std::fs::write(
        &codex,
        "#!/bin/sh\nmkdir -p \"$CODEX_HOME/log\"; : > \"$CODEX_HOME/log/codex-login.log\"; : > \"$CODEX_HOME/auth.lock\"\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&codex, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let child = sb
        .codex_as()
        .args(["login", "waiting"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = sb.home().join(".codex-waiting/auth.lock");
    let start = Instant::now();
    while !lock.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lock.exists(), "the login started");
    // SAFETY: kill(2) on the child we started.
    unsafe { libc_kill(child.id() as i32, 15) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(15),
        "{}",
        stderr(&out)
    );
    assert!(
        !sb.home().join(".codex-waiting").exists(),
        "{}",
        stderr(&out)
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Offline, a real device login fails at once after writing its log, lock and helper files.
#[test]
fn a_real_codex_aborted_device_login_leaves_no_account() {
    for codex in crate::support::real_codexes() {
        let sb = Sandbox::new();
        sb.with_codex(&codex);
        let out = login(&sb, &["offline", "--", "--device-auth"], b"");
        assert_ne!(out.status.code(), Some(0));
        assert!(
            !sb.home().join(".codex-offline").exists(),
            "{}: {}",
            codex.display(),
            stderr(&out)
        );
    }
}
