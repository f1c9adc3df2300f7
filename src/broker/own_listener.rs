//! A Codex listener that codex-as starts for an account home that has none: `codex app-server
//! --listen unix://`, at the home's standard path, so that a `codex` TUI started later attaches
//! to it (0.171's `daemon_auto_start` attaches to a listener of its home instead of starting a
//! daemon) and every front end of the account shares one app-server and one login refresh.
//!
//! It runs in a process group of its own and outlives the broker that started it: a broker that
//! stops while other clients (a TUI) are connected leaves it to them. A record in codex-as's
//! private runtime folder (`listener-<account key>.json`) says which process codex-as started,
//! so a later broker of the home knows it may stop it; codex-as never stops a listener it did
//! not start. It is stopped only when nobody else is connected to it (Linux counts the
//! connections to its socket; where that cannot be seen, it is left running, as Codex's own
//! daemon is), with Codex's graceful SIGTERM, which lets running turns end.
//!
//! A lock file (`listener-<account key>.lock`) orders the brokers of one home: finding or
//! starting the listener and connecting to it happen under it, and so do counting its clients
//! and stopping it, so a broker never joins a listener that another broker is stopping.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::lease::{self, Holder};
use super::listener::{self, Found};
use super::runtime_dir;
use crate::sys::fsutil;

/// How long a new listener may take to accept connections (the real one needs well under a
/// second; a loaded machine or a cold npm launcher more).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped listener may take to let its running turns end and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// The last lines of a listener's log that a failed start reports.
const LOG_TAIL_BYTES: u64 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start {codex}: {source}")]
    Spawn {
        codex: PathBuf,
        source: std::io::Error,
    },
    #[error("`codex app-server --listen unix://` exited ({status}) before listening{tail}")]
    Exited { status: String, tail: String },
    #[error("`codex app-server --listen unix://` did not listen within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What codex-as knows of a listener it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The canonical home it serves.
    pub home: PathBuf,
    /// The process serving the socket (the native app-server, behind npm's node launcher).
    pub server: Holder,
    /// The socket its standard path led to when it was recorded.
    pub socket: PathBuf,
    /// The home's login when it started (`identity::auth_fingerprint`): an app-server holds
    /// the login it started with, so after another `codex login` it serves the old one.
    pub login: Option<String>,
    /// Unix seconds.
    pub started_at: u64,
}

/// The files of one home's listener in codex-as's runtime folder.
#[derive(Debug, Clone)]
pub struct Files {
    record: PathBuf,
    lock: PathBuf,
    log: PathBuf,
}

impl Files {
    pub fn of(runtime: &Path, canonical_home: &Path) -> Files {
        let key = lease::account_key(canonical_home);
        Files {
            record: runtime.join(format!("listener-{key}.json")),
            lock: runtime.join(format!("listener-{key}.lock")),
            log: runtime.join(format!("listener-{key}.log")),
        }
    }

    /// Waits for this home's listener lock (finding, starting, counting and stopping happen
    /// under it). Released when dropped.
    pub fn lock(&self) -> std::io::Result<Flock<File>> {
        let file = runtime_dir::open_private_file(&self.lock, true)?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno.into())
    }

    /// The record, when it is there, this user's, and still describes the live process that
    /// serves `home` (`server_pid`, as the listener's socket names it).
    pub fn started_by_codex_as(&self, home: &Path, server_pid: u32) -> Option<Record> {
        let mut text = String::new();
        runtime_dir::open_private_file(&self.record, false)
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        let record: Record = serde_json::from_str(&text).ok()?;
        (record.home == home && record.server.pid == server_pid && record.server.is_alive())
            .then_some(record)
    }

    pub fn write(&self, record: &Record) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        fsutil::write_private_atomic(&self.record, &text)
    }

    pub fn forget(&self) {
        let _ = std::fs::remove_file(&self.record);
    }
}

/// Starts `codex app-server --listen unix://` for `home` (the broker's environment names it in
/// `CODEX_HOME`) and waits until its standard path leads to a socket this user may trust.
/// Returns that socket. Its output goes to the listener's log in the runtime folder.
pub async fn start(codex: &Path, home: &Path, files: &Files) -> Result<PathBuf, StartError> {
    let log = runtime_dir::open_private_file(&files.log, true)?;
    log.set_len(0)?;
    let mut cmd = std::process::Command::new(codex);
    cmd.args(["app-server", "--listen", "unix://"])
        .env("CODEX_HOME", home)
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // A process group of its own: no signal meant for the broker's group reaches a
        // listener that others may be using.
        .process_group(0);
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .map_err(|source| StartError::Spawn {
            codex: codex.to_path_buf(),
            source,
        })?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Found::Socket(socket) = listener::find(home)
            && tokio::net::UnixStream::connect(&socket).await.is_ok()
        {
            // The launcher is reaped by tokio once dropped; the listener lives on.
            return Ok(socket);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(&files.log);
            // Its last line goes to the broker's log; an empty listener log need not stay.
            let _ = std::fs::remove_file(&files.log);
            return Err(StartError::Exited {
                status: status.to_string(),
                tail,
            });
        }
        if Instant::now() >= deadline {
            // The whole group: npm's launcher and the app-server it runs.
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(StartError::Timeout(START_TIMEOUT));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The end of a failed listener's log, on one line, for the broker's log.
fn log_tail(path: &Path) -> String {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    last.map_or(String::new(), |l| format!(": {}", l.trim()))
}

/// How many connections to `socket` the listener holds besides `ours`, where the system shows
/// it (Linux: `/proc/net/unix`); None where it cannot be seen.
pub fn others_connected(socket: &Path, ours: usize) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    Some(connections_to(&table, socket).saturating_sub(ours))
}

/// Who besides codex-as's brokers uses the listener of `record`, in words (`brokers`, `doctor`).
pub fn others_in_words(record: &Record) -> String {
    match others_connected(&record.socket, 0) {
        Some(0) => "nobody uses it: `codex-as brokers stop` stops it".into(),
        Some(n) => format!("{n} other clients (a codex TUI?) use it"),
        None => "its other clients cannot be seen on this system".into(),
    }
}

/// The connected sockets bound to `socket` in a `/proc/net/unix` table: the listener's end of
/// each connection it accepted (it carries the listening socket's path; the listening socket
/// itself is not connected).
fn connections_to(table: &str, socket: &Path) -> usize {
    const CONNECTED: &str = "03";
    let Some(path) = socket.to_str() else {
        return 0;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path
            fields.len() == 8 && fields[5] == CONNECTED && fields[7] == path
        })
        .count()
}

/// What became of a listener codex-as started, when asked to stop it unless someone uses it.
#[derive(Debug)]
pub enum Outcome {
    Stopped,
    /// Left to its other clients (how many).
    Used(usize),
    /// Left running: its other clients cannot be seen on this system.
    Unseen,
    /// Left running: its lock could not be taken.
    Unlocked(std::io::Error),
}

impl Outcome {
    /// Why it was left running, in words (None when it was stopped).
    pub fn why_left(&self) -> Option<String> {
        match self {
            Outcome::Stopped => None,
            Outcome::Used(n) => Some(format!("left to its {n} other clients")),
            Outcome::Unseen => {
                Some("left running: its other clients cannot be seen on this system".into())
            }
            Outcome::Unlocked(e) => Some(format!("left running: cannot lock it: {e}")),
        }
    }
}

/// Stops the listener of `record` unless a client besides the caller's `ours` connections uses
/// it. Counted and stopped under the home's lock, so no broker joins in between; `leave` runs
/// after the count and before the stop (the caller's own connection closing).
pub async fn stop_unless_used(
    record: &Record,
    files: &Files,
    ours: usize,
    leave: impl std::future::Future<Output = ()>,
) -> Outcome {
    match files.lock() {
        Ok(_held) => stop_unless_used_locked(record, files, ours, leave).await,
        Err(e) => {
            leave.await;
            Outcome::Unlocked(e)
        }
    }
}

/// [`stop_unless_used`] for a caller that holds the home's listener lock.
pub async fn stop_unless_used_locked(
    record: &Record,
    files: &Files,
    ours: usize,
    leave: impl std::future::Future<Output = ()>,
) -> Outcome {
    let others = others_connected(&record.socket, ours);
    leave.await;
    match others {
        Some(0) => {
            stop(record, files).await;
            Outcome::Stopped
        }
        Some(n) => Outcome::Used(n),
        None => Outcome::Unseen,
    }
}

/// Every live listener codex-as recorded in `runtime`, with its files. A record is believed
/// only under the name its home gives it, so none can speak for another home.
fn recorded(runtime: &Path) -> Vec<(Record, Files)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(runtime).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with("listener-") && name.ends_with(".json")) {
            continue;
        }
        let mut text = String::new();
        let read = runtime_dir::open_private_file(&entry.path(), false)
            .and_then(|mut f| f.read_to_string(&mut text));
        let Ok(record) = read
            .map_err(drop)
            .and_then(|_| serde_json::from_str::<Record>(&text).map_err(drop))
        else {
            continue;
        };
        let files = Files::of(runtime, &record.home);
        if files.record == entry.path() && record.server.is_alive() {
            found.push((record, files));
        }
    }
    found
}

/// The live listeners codex-as recorded in `runtime` that no broker serves through: `served`
/// holds the app-server pids its brokers report. Left to their other clients (a TUI) when a
/// broker stopped, or left where those cannot be seen.
pub fn lone(runtime: &Path, served: &[u32]) -> Vec<(Record, Files)> {
    let mut found = recorded(runtime);
    found.retain(|(r, _)| !served.contains(&r.server.pid));
    found
}

/// Stops the listener codex-as started: Codex's SIGTERM lets running turns end, then it removes
/// its socket and exits. Waits for that (a second SIGTERM forces it past the time allowed).
async fn stop(record: &Record, files: &Files) {
    let Ok(pid) = i32::try_from(record.server.pid) else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let term = || nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if term().is_ok() {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while record.server.is_alive() {
            if Instant::now() >= deadline {
                let _ = term();
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    files.forget();
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
Num       RefCount Protocol Flags    Type St Inode Path
0000000017eeccda: 00000002 00000000 00010000 0001 01 7524478 /tmp/codex-daemon-0/abc
000000005e3d4dd3: 00000003 00000000 00000000 0001 03 7521053 /tmp/codex-daemon-0/abc
00000000a3549f6c: 00000003 00000000 00000000 0001 03 7521055 /tmp/codex-daemon-0/abc
00000000a3549f6d: 00000003 00000000 00000000 0001 03 7521056 /tmp/codex-daemon-0/abcd
00000000a3549f6e: 00000003 00000000 00000000 0001 03 7521057
";

    #[test]
    fn only_connected_ends_of_that_socket_count() {
        let socket = Path::new("/tmp/codex-daemon-0/abc");
        assert_eq!(connections_to(TABLE, socket), 2);
        assert_eq!(
            connections_to(TABLE, Path::new("/tmp/codex-daemon-0/abcd")),
            1
        );
        assert_eq!(connections_to(TABLE, Path::new("/tmp/other")), 0);
    }

    #[test]
    fn a_record_names_the_home_and_a_live_process_or_is_not_ours() {
        let d = tempfile::tempdir().unwrap();
        let files = Files::of(d.path(), Path::new("/h"));
        let me = std::process::id();
        let record = Record {
            home: PathBuf::from("/h"),
            server: Holder::of(me),
            socket: PathBuf::from("/s"),
            login: None,
            started_at: 1,
        };
        assert_eq!(files.started_by_codex_as(Path::new("/h"), me), None);
        files.write(&record).unwrap();
        assert_eq!(
            files.started_by_codex_as(Path::new("/h"), me),
            Some(record.clone())
        );
        assert_eq!(files.started_by_codex_as(Path::new("/other"), me), None);
        assert_eq!(files.started_by_codex_as(Path::new("/h"), me + 1), None);
        let gone = Record {
            server: Holder {
                pid: u32::MAX - 1,
                start_time: 0,
            },
            ..record
        };
        files.write(&gone).unwrap();
        assert_eq!(
            files.started_by_codex_as(Path::new("/h"), u32::MAX - 1),
            None
        );
        files.forget();
        assert_eq!(files.started_by_codex_as(Path::new("/h"), me), None);
    }
}
