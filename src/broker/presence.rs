//! The files that let clients find a broker (its socket, pid file and codex-as's record of it):
//! removing them however the broker ends, and keeping them in place while it serves, since
//! others may remove them (the plugin's SessionEnd unlinks the socket of the endpoint it was
//! given; a cleaner may empty the runtime folder).

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};

use super::BrokerError;
use super::endpoint::{self, BoundSocket, PathState};
use super::registry::Registry;

/// Files to remove however the broker ends, early errors included.
pub struct Files {
    pub socket: Option<BoundSocket>,
    pub pid_file: Option<PathBuf>,
    /// The record codex-as wrote for this broker, as last seen (to restore it if removed).
    pub record: Option<(PathBuf, Vec<u8>)>,
}

impl Files {
    pub fn remove_socket(&mut self) {
        if let Some(s) = self.socket.take() {
            s.remove();
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.remove_socket();
        if let Some(p) = self.pid_file.take() {
            let ours = format!("{}\n", std::process::id());
            if std::fs::read_to_string(&p).is_ok_and(|c| c == ours) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// Stops the listener atomically (later connects are refused by the kernel), removes the socket
/// file, and returns the connections that were already queued.
pub fn close_listener(listener: Option<UnixListener>, files: &mut Files) -> Vec<UnixStream> {
    let Some(listener) = listener else {
        return Vec::new();
    };
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    files.remove_socket();
    let mut queued = Vec::new();
    if let Ok(std_listener) = listener.into_std() {
        while let Ok((s, _)) = std_listener.accept() {
            if s.set_nonblocking(true).is_ok()
                && let Ok(s) = UnixStream::from_std(s)
            {
                queued.push(s);
            }
        }
    }
    queued
}

/// Keeps the broker findable where clients look for it: a socket file removed (the plugin's
/// SessionEnd unlinks the socket of the endpoint it was given; a cleaner empties the runtime
/// folder) is bound again, its folder re-created privately, its pid file and codex-as's record
/// of it restored. False when another file took the socket's path: this broker can no longer
/// be found and should stop once idle.
pub fn keep_findable(
    files: &mut Files,
    listener: &mut Option<UnixListener>,
    pid_file: &Option<PathBuf>,
) -> bool {
    let Some(socket) = &files.socket else {
        return true;
    };
    let path = socket.path().to_path_buf();
    match socket.state() {
        PathState::Taken => return false,
        PathState::Ours => {}
        PathState::Missing => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir
                && let Err(e) = super::runtime_dir::ensure_at(dir)
            {
                eprintln!(
                    "codex-as broker: my socket's folder is gone and cannot be re-created: {e}"
                );
                return true;
            }
            match endpoint::bind(&path) {
                Ok((std_listener, bound)) => {
                    let rebound = std_listener
                        .set_nonblocking(true)
                        .and_then(|()| UnixListener::from_std(std_listener));
                    match rebound {
                        Ok(l) => {
                            eprintln!(
                                "codex-as broker: my socket {} was removed; listening there again",
                                path.display()
                            );
                            *listener = Some(l);
                            files.socket = Some(bound);
                        }
                        Err(e) => eprintln!("codex-as broker: cannot listen again: {e}"),
                    }
                }
                Err(BrokerError::InUse { .. }) => return false,
                Err(e) => eprintln!("codex-as broker: cannot listen again: {e}"),
            }
        }
    }
    let pid_line = format!("{}\n", std::process::id());
    if let Some(p) = pid_file
        && std::fs::symlink_metadata(p).is_err()
    {
        let _ = crate::sys::fsutil::write_private_atomic(p, pid_line.as_bytes());
    }
    let record_path = Registry::record_path_of_socket(&path);
    match std::fs::read(&record_path) {
        // Remember it only when it is about this process.
        Ok(bytes) => {
            let ours = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("pid").and_then(Value::as_u64))
                == Some(u64::from(std::process::id()));
            if ours {
                files.record = Some((record_path, bytes));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some((p, bytes)) = &files.record
                && p == &record_path
            {
                let _ = crate::sys::fsutil::write_private_atomic(p, bytes);
            }
        }
        Err(_) => {}
    }
    true
}
