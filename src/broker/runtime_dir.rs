//! codex-as's private folder for broker sockets, records and logs.
//!
//! Unix socket paths are limited to about 104 bytes (macOS) and 108 (Linux), so the folder must
//! have a short path; and since a socket there decides which account serves a call, nobody but
//! this user may be able to write in it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sys::fsutil;

pub const ENV: &str = "CODEX_AS_RUNTIME_DIR";
/// Room left for a socket name inside the folder (`<16 hex>-<8 hex>.sock`).
const SOCKET_NAME_ROOM: usize = 32;
const MAX_SOCKET_PATH: usize = 103;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error("refusing {}: {reason}; another local user could plant a broker there (remove it, or set {ENV} to a private folder)", .path.display())]
    Untrusted { path: PathBuf, reason: String },
    #[error("cannot create {}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is too long for unix socket paths; set {ENV} to a shorter private folder", .path.display())]
    TooLong { path: PathBuf },
}

/// The folder, created 0700 if missing and checked to be this user's alone.
pub fn ensure() -> Result<PathBuf, RuntimeDirError> {
    let dir = choose();
    if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
        return Err(RuntimeDirError::TooLong { path: dir });
    }
    fsutil::create_private_dir(&dir).map_err(|source| RuntimeDirError::Create {
        path: dir.clone(),
        source,
    })?;
    check_private(&dir)?;
    Ok(dir)
}

fn choose() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env(ENV) {
        return d;
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        let candidate = d.join("codex-as");
        if candidate.as_os_str().len() + SOCKET_NAME_ROOM <= MAX_SOCKET_PATH {
            return candidate;
        }
    }
    let uid = nix::unistd::getuid().as_raw();
    let tmp = env("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp"));
    let candidate = tmp.join(format!("codex-as-{uid}"));
    if candidate.as_os_str().len() + SOCKET_NAME_ROOM <= MAX_SOCKET_PATH {
        candidate
    } else {
        PathBuf::from(format!("/tmp/codex-as-{uid}"))
    }
}

/// A real folder (not a link), owned by this user, that nobody else can enter or write.
pub fn check_private(dir: &Path) -> Result<(), RuntimeDirError> {
    let untrusted = |reason: String| RuntimeDirError::Untrusted {
        path: dir.to_path_buf(),
        reason,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| untrusted(e.to_string()))?;
    if !meta.is_dir() {
        return Err(untrusted("it is not a folder (a symlink or a file)".into()));
    }
    if let Some(reason) = fsutil::not_mine(&meta) {
        return Err(untrusted(reason));
    }
    if meta.mode() & 0o077 != 0 {
        // Ours but loose (an old umask, a manual mkdir): tightening it is safe only because
        // nothing in it is trusted until this check passes.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            untrusted(format!(
                "mode {:o} and chmod failed: {e}",
                meta.mode() & 0o777
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_own_folder_is_tightened_symlink_refused() {
        let d = tempfile::tempdir().unwrap();
        let loose = d.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
        check_private(&loose).unwrap();
        assert_eq!(std::fs::metadata(&loose).unwrap().mode() & 0o777, 0o700);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&loose, &link).unwrap();
        assert!(
            check_private(&link)
                .unwrap_err()
                .to_string()
                .contains("not a folder")
        );
    }
}
