//! Records of the brokers codex-as started, in its private runtime folder.
//!
//! A broker's socket is the truth about whether it lives (and its `broker/status` about whom it
//! serves); a record only remembers what a hung or unreachable broker was, so that `brokers list`
//! can still say. Records are written atomically, so a crash leaves the old one or the new one.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::broker::runtime_dir::{self, RuntimeDirError};
use crate::sys::fsutil;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub workspace: PathBuf,
    pub account: String,
    pub codex_home: PathBuf,
    pub endpoint: String,
    pub pid: u32,
    pub started_at: u64,
    pub auth_fingerprint: Option<String>,
}

pub struct Registry {
    dir: PathBuf,
}

/// Holds the lock of one (workspace, home) key until dropped.
pub struct KeyLock {
    _file: File,
}

impl Registry {
    pub fn open() -> Result<Registry, RuntimeDirError> {
        Ok(Registry {
            dir: runtime_dir::ensure()?,
        })
    }

    /// A registry in `dir` as it is, for tests that set brokers up by hand.
    #[cfg(test)]
    pub fn at(dir: &Path) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
        }
    }

    /// 16 hex digits naming one account home: one broker serves every workspace of an
    /// account, since each thread carries its own working folder.
    pub fn key(home: &Path) -> String {
        let mut h = Sha256::new();
        h.update(b"account\0");
        h.update(home.as_os_str().as_encoded_bytes());
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The key part of a broker id (`<key>-<n>`).
    pub fn key_of(id: &str) -> &str {
        id.split('-').next().unwrap_or(id)
    }

    /// The record file that goes with a broker's socket file (same folder, same id).
    pub fn record_path_of_socket(socket: &Path) -> PathBuf {
        socket.with_extension("json")
    }

    pub fn new_id(key: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!(
            "{key}-{:08x}",
            (nanos as u32) ^ std::process::id().rotate_left(16)
        )
    }

    pub fn socket_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.sock"))
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }
    pub fn pid_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pid"))
    }
    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Runs `write`, and once more after making the folder again when it failed because the
    /// folder is gone (someone removed it mid-call): what is missing is recreated, never reported.
    fn in_dir<T>(&self, write: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
        runtime_dir::ensure_at(&self.dir)?;
        match write() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                runtime_dir::ensure_at(&self.dir)?;
                write()
            }
            other => other,
        }
    }

    /// Which folder is there now (device, inode), to tell whether it was removed or replaced
    /// meanwhile; None while it is missing.
    pub fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.dir)
            .ok()
            .map(|m| (m.dev(), m.ino()))
    }

    /// Serialises everyone who may start a broker for `key`, across processes.
    pub fn lock(&self, key: &str) -> std::io::Result<KeyLock> {
        let file = self.lock_file(key)?;
        file.lock()?;
        Ok(KeyLock { _file: file })
    }

    fn lock_file(&self, key: &str) -> std::io::Result<File> {
        let path = self.dir.join(format!("{key}.lock"));
        self.in_dir(|| match runtime_dir::open_private_file(&path, true) {
            // Planted while the folder was loose (a link, or someone else's file): the folder is
            // ours and private now, so the entry goes (unlinking never follows a link).
            Err(_) if planted(&path) => {
                std::fs::remove_file(&path)?;
                runtime_dir::open_private_file(&path, true)
            }
            other => other,
        })
    }

    /// The broker's log, appended to, 0600, never through a link.
    /// The runtime folder it keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn open_log(&self, id: &str) -> std::io::Result<File> {
        let path = self.log_path(id);
        self.in_dir(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
        })
    }

    /// Forgets `id` when nothing listens on its socket, checked while holding its key's lock so
    /// that a broker another process is starting right now (socket bound, not yet listening) is
    /// never mistaken for a dead one. Skipped when the lock is busy: the next look cleans up.
    pub fn forget_if_dead(&self, id: &str) {
        let Ok(file) = self.lock_file(Registry::key_of(id)) else {
            return;
        };
        if file.try_lock().is_err() {
            return;
        }
        match std::os::unix::net::UnixStream::connect(self.socket_path(id)) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                self.forget(id)
            }
            _ => {}
        }
    }

    /// The process id of broker `id`: from the pid file it wrote itself, else from its record.
    pub fn pid(&self, id: &str) -> Option<u32> {
        use std::io::Read;
        let mut text = String::new();
        runtime_dir::open_private_file(&self.pid_path(id), false)
            .and_then(|mut f| f.read_to_string(&mut text))
            .ok()
            .and_then(|_| text.trim().parse().ok())
            .or_else(|| self.record(id).map(|r| r.pid))
            .filter(|&pid| pid > 0)
    }

    pub fn save(&self, rec: &Record) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        let path = self.record_path(&rec.id);
        // A new file renamed over the old name: a planted link there is replaced, not followed.
        self.in_dir(|| fsutil::write_private_atomic(&path, &text))
    }

    /// Forgets a broker that is gone: its record, socket, pid and log files.
    pub fn forget(&self, id: &str) {
        for p in [
            self.record_path(id),
            self.socket_path(id),
            self.pid_path(id),
            self.log_path(id),
        ] {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Every broker id known here: from records and from sockets without one (a record lost
    /// or corrupted never hides a live broker).
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                // A link is nothing codex-as made: never probed, never read.
                if e.file_type().ok()?.is_symlink() {
                    return None;
                }
                let name = e.file_name().into_string().ok()?;
                let id = name
                    .strip_suffix(".json")
                    .or_else(|| name.strip_suffix(".sock"))?;
                valid_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn ids_for_key(&self, key: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .ids()
            .into_iter()
            .filter(|id| id.starts_with(key) && id.as_bytes().get(key.len()) == Some(&b'-'))
            .collect();
        // Newest first: the best candidate is the last one started.
        ids.sort_by_key(|id| std::cmp::Reverse(self.mtime(id)));
        ids
    }

    fn mtime(&self, id: &str) -> Option<std::time::SystemTime> {
        std::fs::symlink_metadata(self.record_path(id))
            .or_else(|_| std::fs::symlink_metadata(self.socket_path(id)))
            .and_then(|m| m.modified())
            .ok()
    }

    /// The record of `id`, or None when missing or unreadable (truncated, corrupt).
    pub fn record(&self, id: &str) -> Option<Record> {
        use std::io::Read;
        let mut file = runtime_dir::open_private_file(&self.record_path(id), false).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Whether `path` is a link, or a file someone else owns: nothing codex-as made.
fn planted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.file_type().is_symlink() || m.uid() != nix::unistd::getuid().as_raw())
}

fn valid_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let (Some(k), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    k.len() == 16 && !n.is_empty() && (k.chars().chain(n.chars())).all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> (tempfile::TempDir, Registry) {
        let d = tempfile::tempdir().unwrap();
        let r = Registry {
            dir: d.path().to_path_buf(),
        };
        (d, r)
    }

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            workspace: "/ws".into(),
            account: "a".into(),
            codex_home: "/h".into(),
            endpoint: "unix:/x.sock".into(),
            pid: 1,
            started_at: 2,
            auth_fingerprint: None,
        }
    }

    #[test]
    fn a_pid_comes_from_the_pid_file_before_the_record() {
        let (_d, r) = reg();
        let id = format!("{}-00000001", Registry::key(Path::new("/h")));
        assert_eq!(r.pid(&id), None);
        r.save(&record(&id)).unwrap();
        assert_eq!(r.pid(&id), Some(1));
        fsutil::write_private_atomic(&r.pid_path(&id), b"4242\n").unwrap();
        assert_eq!(r.pid(&id), Some(4242));
        fsutil::write_private_atomic(&r.pid_path(&id), b"nonsense").unwrap();
        assert_eq!(r.pid(&id), Some(1));
    }

    #[test]
    fn records_round_trip_and_corrupt_ones_read_as_none() {
        let (_d, r) = reg();
        let key = Registry::key(Path::new("/h"));
        let id = Registry::new_id(&key);
        r.save(&record(&id)).unwrap();
        assert_eq!(r.record(&id), Some(record(&id)));
        assert_eq!(r.ids_for_key(&key), vec![id.clone()]);
        std::fs::write(r.record_path(&id), "{\"id\":").unwrap();
        assert_eq!(r.record(&id), None);
        assert_eq!(
            r.ids(),
            vec![id.clone()],
            "still listed, so it can be cleaned up"
        );
        r.forget(&id);
        assert!(r.ids().is_empty());
    }

    #[test]
    fn only_a_socket_nobody_listens_on_is_forgotten() {
        let (_d, r) = reg();
        let key = Registry::key(Path::new("/h"));
        let live = format!("{key}-00000001");
        let dead = format!("{key}-00000002");
        let _listener = std::os::unix::net::UnixListener::bind(r.socket_path(&live)).unwrap();
        drop(std::os::unix::net::UnixListener::bind(r.socket_path(&dead)).unwrap());
        r.save(&record(&dead)).unwrap();
        let held = r.lock(&key).unwrap();
        r.forget_if_dead(&dead);
        assert_eq!(r.ids().len(), 2, "not while someone holds the key's lock");
        drop(held);
        r.forget_if_dead(&dead);
        r.forget_if_dead(&live);
        assert_eq!(r.ids(), vec![live]);
    }

    #[test]
    fn the_folder_removed_mid_call_is_made_again() {
        let d = tempfile::tempdir().unwrap();
        let r = Registry {
            dir: d.path().join("rt"),
        };
        let key = Registry::key(Path::new("/h"));
        let id = Registry::new_id(&key);
        for _ in 0..2 {
            let _ = std::fs::remove_dir_all(&r.dir);
            drop(r.lock(&key).unwrap());
            std::fs::remove_dir_all(&r.dir).unwrap();
            r.open_log(&id).unwrap();
            std::fs::remove_dir_all(&r.dir).unwrap();
            r.save(&record(&id)).unwrap();
            assert_eq!(r.record(&id), Some(record(&id)));
            let mode = std::fs::metadata(&r.dir).unwrap().permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o700
            );
        }
    }

    #[test]
    fn planted_links_are_neither_followed_nor_listed() {
        let (d, r) = reg();
        let outside = tempfile::tempdir().unwrap();
        let key = Registry::key(Path::new("/h"));
        let target = outside.path().join("created-through-link");
        std::os::unix::fs::symlink(&target, r.dir.join(format!("{key}.lock"))).unwrap();
        drop(r.lock(&key).unwrap());
        assert!(!target.exists(), "a linked lock is never followed");
        let lock = std::fs::symlink_metadata(r.dir.join(format!("{key}.lock"))).unwrap();
        assert!(lock.is_file(), "it was replaced by a lock of ours");
        let id = format!("{key}-00000001");
        let real = outside.path().join("rec.json");
        std::fs::write(&real, serde_json::to_vec(&record(&id)).unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, r.record_path(&id)).unwrap();
        assert_eq!(r.record(&id), None, "a linked record is not read");
        assert!(r.ids().is_empty(), "nor listed");
        drop(d);
    }

    #[test]
    fn a_socket_without_a_record_is_still_known() {
        let (_d, r) = reg();
        let key = Registry::key(Path::new("/h"));
        let id = format!("{key}-00000001");
        std::fs::write(r.socket_path(&id), "").unwrap();
        std::fs::write(r.dir.join("junk.sock"), "").unwrap();
        assert_eq!(r.ids(), vec![id]);
    }

    #[test]
    fn keys_differ_per_home() {
        let a = Registry::key(Path::new("/h1"));
        assert_ne!(a, Registry::key(Path::new("/h2")));
        assert_eq!(a, Registry::key(Path::new("/h1")));
        assert_eq!(a.len(), 16);
        let id = Registry::new_id(&a);
        assert_eq!(Registry::key_of(&id), a);
    }
}
