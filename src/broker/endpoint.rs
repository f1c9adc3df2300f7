//! The broker's Unix socket: parsing `unix:PATH`, binding it privately without stealing a live
//! broker's path, and removing it only while it is still ours.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::BrokerError;

/// The socket path of a `unix:PATH` endpoint (the only kind codex-as serves).
pub fn socket_path(endpoint: &str) -> Result<PathBuf, BrokerError> {
    match endpoint.strip_prefix("unix:") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(BrokerError::Endpoint(endpoint.to_string())),
    }
}

/// A socket file this process created. A successor may bind the same path once this one is
/// closed (and the inode number may even be reused), so removal checks both.
#[derive(Debug)]
pub struct BoundSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// What became of a bound socket's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathState {
    /// Still the file this process bound.
    Ours,
    /// Nothing there (removed, or its folder removed): clients cannot find the broker.
    Missing,
    /// Another file took the path (a successor broker): this one can no longer be found.
    Taken,
}

impl BoundSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path still leads to this socket.
    pub fn state(&self) -> PathState {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => PathState::Ours,
            Ok(_) => PathState::Taken,
            Err(_) => PathState::Missing,
        }
    }

    /// Removes the socket file if it is still the one this process bound and nothing listens
    /// on it (call it after closing or shutting down the listener).
    pub fn remove(&self) {
        let Ok(m) = std::fs::symlink_metadata(&self.path) else {
            return;
        };
        if m.dev() != self.dev || m.ino() != self.ino {
            return;
        }
        if let Err(e) = UnixStream::connect(&self.path)
            && e.kind() == io::ErrorKind::ConnectionRefused
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `path` with mode 0600. An existing path is refused when something listens there or it
/// is not a socket of ours; a dead socket of ours (left by a crash) is replaced.
pub fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), BrokerError> {
    clear_stale(path)?;
    // umask is process-wide, but nothing else creates files at this point of start-up, and it
    // leaves no window in which the socket is reachable with wider permissions.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|source| BrokerError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = std::fs::symlink_metadata(path).map_err(|source| BrokerError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let socket = BoundSocket {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((listener, socket))
}

fn clear_stale(path: &Path) -> Result<(), BrokerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BrokerError::Bind {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let in_use = |why: &str| BrokerError::InUse {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use("it exists and is not a socket"));
    }
    if crate::sys::fsutil::not_mine(&meta).is_some() {
        return Err(in_use("it belongs to another user"));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(in_use("a broker is listening there")),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|source| BrokerError::Bind {
                path: path.to_path_buf(),
                source,
            }),
        Err(_) => Err(in_use("it cannot be probed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_unix_endpoints_only() {
        assert_eq!(
            socket_path("unix:/tmp/x.sock").unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        for bad in ["unix:", "/tmp/x.sock", "pipe:\\\\.\\pipe\\x"] {
            assert!(socket_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binds_privately_refuses_live_and_replaces_stale() {
        let d = tempfile::Builder::new()
            .prefix("cxb")
            .tempdir_in("/tmp")
            .unwrap();
        let path = d.path().join("s");
        let (live, sock) = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(bind(&path), Err(BrokerError::InUse { .. })));
        drop(live);
        // Nothing listens any more: a stale socket of ours is replaced.
        let (_again, sock2) = bind(&path).unwrap();
        // Removing through the first handle must not touch the live successor, even when the
        // file system reused the inode number.
        sock.remove();
        assert!(path.exists());
        drop(_again);
        sock2.remove();
        assert!(!path.exists());

        std::fs::write(&path, "x").unwrap();
        assert!(matches!(bind(&path), Err(BrokerError::InUse { .. })));
    }

    #[test]
    fn tells_a_removed_or_taken_path_from_its_own() {
        let d = tempfile::Builder::new()
            .prefix("cxb")
            .tempdir_in("/tmp")
            .unwrap();
        let path = d.path().join("s");
        let (_l, sock) = bind(&path).unwrap();
        assert_eq!(sock.state(), PathState::Ours);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(sock.state(), PathState::Missing);
        std::fs::write(&path, "x").unwrap();
        assert_eq!(sock.state(), PathState::Taken);
    }
}
