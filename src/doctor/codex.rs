//! Codex itself: on PATH and its version, accounts whose credentials live in the OS keyring,
//! the per-home `codex app-server daemon` socket (live, stale, or in an unsafe folder), and the
//! daemon's package copy in a home.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::{Report, q};
use crate::account::Accounts;
use crate::account::login_state::{self, LoginState};

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
        Ok(path) => match crate::sys::tools::codex_version(&path) {
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
        let live = matches!(
            crate::broker::listener::find(&home),
            crate::broker::listener::Found::Socket(path)
                if std::os::unix::net::UnixStream::connect(&path).is_ok()
        );
        super::daemon_copy::check(&a.name, &home, live, report);
    }
}
