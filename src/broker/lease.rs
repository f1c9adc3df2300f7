//! Leases: a Claude Code session pinned to an account's broker holds one, so that the broker
//! does not exit idle under it (the plugin's `setup` and `cancel` do not fall back to a direct
//! app-server when a pinned broker is gone).
//!
//! A lease is a file `<runtime>/<account-key>.leases/<session>` holding the pid and start time of
//! the Claude Code process, 0600, written atomically (a rename, which never follows a symlink at
//! the target). It counts only while that process lives: a crashed Claude Code holds nothing,
//! and the stale file is removed by whoever looks next.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::broker::runtime_dir;
use crate::sys::fsutil;

const DIR_SUFFIX: &str = ".leases";

/// Who holds a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub pid: u32,
    /// Kernel start time of the process (clock ticks since boot on Linux; 0 where unknown), so
    /// that a recycled pid is not taken for the holder.
    pub start_time: u64,
}

/// The account's key: the registry's per-account key, which the broker passes to [`held`], so
/// a lease and the broker it keeps up always agree.
pub fn account_key(canonical_home: &Path) -> String {
    super::registry::Registry::key(canonical_home)
}

fn lease_dir(runtime: &Path, account_key: &str) -> PathBuf {
    runtime.join(format!("{account_key}{DIR_SUFFIX}"))
}

/// A session id as a file name: Claude's are UUIDs; anything else is hashed, so no id can name
/// a path outside the folder.
fn file_name(session: &str) -> String {
    let plain = !session.is_empty()
        && session.len() <= 128
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        session.to_string()
    } else {
        let h: String = Sha256::digest(session.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("h{h}")
    }
}

/// Whether any live session holds a lease on the account's broker. Called by the broker before it
/// exits idle. Stale leases (holder gone) are removed on the way.
pub fn held(runtime: &Path, account_key: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(lease_dir(runtime, account_key)) else {
        return false;
    };
    let mut any = false;
    for entry in entries.flatten().filter(|e| !is_temporary(e)) {
        let path = entry.path();
        match read(&path) {
            Some(holder) if holder.is_alive() => any = true,
            Some(_) => {
                let _ = std::fs::remove_file(&path);
            }
            // Unreadable or half-written by someone else: not ours to judge or remove.
            None => {}
        }
    }
    any
}

/// A lease being written (`.lease-*`), not one yet.
fn is_temporary(e: &std::fs::DirEntry) -> bool {
    e.file_name().as_encoded_bytes().starts_with(b".")
}

fn read(path: &Path) -> Option<Holder> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || fsutil::untrusted_reason(&meta).is_some() {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Takes (or renews) `session`'s lease on the account, and drops any lease the session held on
/// another account (a session moved by CwdChanged holds one broker only).
pub fn take(account_key: &str, session: &str, holder: Holder) -> std::io::Result<()> {
    let runtime = runtime_dir::ensure().map_err(std::io::Error::other)?;
    let dir = lease_dir(&runtime, account_key);
    runtime_dir::ensure_at(&dir).map_err(std::io::Error::other)?;
    let text = serde_json::to_vec(&holder).map_err(std::io::Error::other)?;
    write_atomic_unsynced(&dir.join(file_name(session)), &text)?;
    release_except(&runtime, session, Some(account_key));
    Ok(())
}

/// A rename into place, without fsync: a lease only matters while its Claude Code process runs,
/// which a power loss ends too, and the hook runs at every session start (fsync costs ms).
fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".lease-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Releases every lease `session` holds (SessionEnd).
pub fn release(session: &str) {
    if let Ok(runtime) = runtime_dir::ensure() {
        release_except(&runtime, session, None);
    }
}

fn release_except(runtime: &Path, session: &str, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return;
    };
    let name = file_name(session);
    for entry in entries.flatten() {
        let dir_name = entry.file_name();
        let Some(key) = dir_name.to_str().and_then(|n| n.strip_suffix(DIR_SUFFIX)) else {
            continue;
        };
        if Some(key) != keep {
            let _ = std::fs::remove_file(entry.path().join(&name));
        }
    }
}

/// The leases on an account, live ones only (for `claude status`).
pub fn holders(runtime: &Path, account_key: &str) -> Vec<Holder> {
    let Ok(entries) = std::fs::read_dir(lease_dir(runtime, account_key)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| !is_temporary(e))
        .filter_map(|e| read(&e.path()))
        .filter(Holder::is_alive)
        .collect()
}

impl Holder {
    pub fn of(pid: u32) -> Holder {
        Holder {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    pub fn is_alive(&self) -> bool {
        if self.pid == 0 || i32::try_from(self.pid).is_err() {
            return false;
        }
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        if nix::sys::signal::kill(pid, None).is_err_and(|e| e == nix::errno::Errno::ESRCH) {
            return false;
        }
        match (start_time(self.pid), self.start_time) {
            (Some(now), then) if then != 0 => now == then,
            _ => true,
        }
    }
}

/// A process's start time and parent, from /proc (Linux). Elsewhere: None, and the pid alone
/// identifies the holder.
fn stat(pid: u32) -> Option<(u32, u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the command: state(0) ppid(1) ... starttime(19).
    if fields.first() == Some(&"Z") {
        return None;
    }
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start, comm))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start, _)| start)
}

/// The Claude Code process that ran this hook: the nearest ancestor that is not a shell (Claude
/// runs a hook's command through `sh -c`, which may or may not exec it).
pub fn hook_owner() -> Holder {
    const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "fish", "ksh", "busybox"];
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..4 {
        match stat(pid) {
            Some((ppid, _, comm)) if SHELLS.contains(&comm.as_str()) && ppid > 1 => pid = ppid,
            _ => break,
        }
    }
    Holder::of(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_counts_a_dead_one_does_not_and_is_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let key = account_key(Path::new("/h/.codex-a"));
        let dir = lease_dir(d.path(), &key);
        fsutil::create_private_dir(&dir).unwrap();
        assert!(!held(d.path(), &key));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let live = Holder::of(child.id());
        assert_ne!(live.start_time, 0);
        fsutil::write_private_atomic(&dir.join("s1"), &serde_json::to_vec(&live).unwrap()).unwrap();
        assert!(held(d.path(), &key));
        // The same pid with another start time is a recycled pid, not the holder.
        let recycled = Holder {
            start_time: live.start_time + 1,
            ..live
        };
        assert!(!recycled.is_alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!held(d.path(), &key), "a crashed Claude Code holds nothing");
        assert!(!dir.join("s1").exists(), "the stale lease is removed");
    }

    #[test]
    fn odd_session_ids_stay_inside_the_folder() {
        assert_eq!(file_name("4f1c-aa_9"), "4f1c-aa_9");
        for bad in ["../x", "a/b", "", "."] {
            let n = file_name(bad);
            assert!(
                n.starts_with('h') && !n.contains('/') && n.len() == 33,
                "{n}"
            );
        }
    }

    #[test]
    fn keys_differ_per_home() {
        assert_ne!(account_key(Path::new("/a")), account_key(Path::new("/b")));
        assert_eq!(account_key(Path::new("/a")).len(), 16);
    }
}
