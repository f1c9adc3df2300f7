//! Codex itself: on PATH and its version, accounts whose credentials live in the OS keyring,
//! and the per-home `codex app-server daemon` socket (live, stale, or in an unsafe folder).

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Report, q};
use crate::account::Accounts;
use crate::account::login_state::{self, LoginState};

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// `codex --version`, or None when it fails or takes too long (it is killed then).
fn version(codex: &Path) -> Option<String> {
    let mut child = Command::new(codex)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// Where a home's app-server control socket is (Codex 0.169 and later).
pub fn daemon_socket(home: &Path) -> std::path::PathBuf {
    home.join("app-server-control/app-server-control.sock")
}

fn check_daemon(name: &str, home: &Path, report: &mut Report) {
    let sock = daemon_socket(home);
    let Ok(link) = std::fs::symlink_metadata(&sock) else {
        return;
    };
    // On Linux the path is a link to /tmp/codex-daemon-UID/<hash>: its folder must be ours alone.
    if link.file_type().is_symlink()
        && let Ok(target) = std::fs::read_link(&sock)
        && let Some(dir) = target.parent()
        && let Ok(meta) = std::fs::symlink_metadata(dir)
        && let Some(reason) = crate::sys::fsutil::untrusted_reason(&meta)
    {
        report.finding(
            "codex",
            name,
            format!("its app-server daemon socket points into {}, and {reason}: another user could answer as this account", dir.display()),
            format!("rm {}   # and stop the daemon: codex-as {name} -- codex app-server daemon stop", q(&sock)),
        );
        return;
    }
    let is_socket = std::fs::metadata(&sock).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        report.note(
            "codex",
            format!(
                "{name}: a codex app-server daemon listens on {}",
                sock.display()
            ),
        );
    } else {
        report.finding(
            "codex",
            name,
            format!(
                "{} is left from an app-server daemon that is gone",
                sock.display()
            ),
            format!("rm {}", q(&sock)),
        );
    }
}

pub fn check(accounts: Option<&Accounts>, report: &mut Report) {
    match crate::sys::tools::codex() {
        Err(_) => report.finding(
            "codex",
            "codex",
            "codex is not on PATH: nothing can run as an account",
            "npm install -g @openai/codex",
        ),
        Ok(path) => match version(&path) {
            Some(v) => report.note("codex", format!("{v} at {}", path.display())),
            None => report.finding(
                "codex",
                path.display().to_string(),
                "`codex --version` fails: codex is installed but does not run",
                "npm install -g @openai/codex",
            ),
        },
    }
    let Some(accounts) = accounts else {
        return;
    };
    for a in accounts.all().into_iter().filter(|a| a.exists()) {
        let home = a.canonical_home();
        if login_state::read(&home) == LoginState::Keyring {
            report.note(
                "codex",
                format!("{}: cli_auth_credentials_store = keyring: its login is in the OS keyring, where codex-as does not look", a.name),
            );
        }
        check_daemon(&a.name, &home, report);
    }
}
