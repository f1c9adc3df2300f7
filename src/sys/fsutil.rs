//! Private files and folders, written so a crash never leaves a half-written one behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `contents` atomically: a 0600 temporary file in the same folder, synced,
/// then renamed over the target, so readers see the old file or the new one, never a mix.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".codex-as-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// How many links [`link_target`] follows before giving up, like the kernel's ELOOP limit.
const MAX_LINK_HOPS: usize = 40;

/// The path a chain of symlinks at `path` ends at (`path` itself when it is not a link, or does
/// not exist). Relative links are resolved against the folder of the link holding them.
pub fn link_target(path: &Path) -> io::Result<std::path::PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{}: more than {MAX_LINK_HOPS} symlinks in a row",
        path.display()
    )))
}

/// The real path of a file or folder, or the path itself when it cannot be resolved (it does
/// not exist).
pub fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Why a file or folder is not this user's own, if it is not.
pub fn not_mine(meta: &fs::Metadata) -> Option<String> {
    let me = nix::unistd::getuid().as_raw();
    (meta.uid() != me).then(|| format!("it is owned by uid {}, not you (uid {me})", meta.uid()))
}

/// Why a file or folder that another local user could have planted must not be trusted, if so.
pub fn untrusted_reason(meta: &fs::Metadata) -> Option<String> {
    if let Some(reason) = not_mine(meta) {
        return Some(reason);
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is writable by others (mode {:o})",
            meta.mode() & 0o777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        write_private_atomic(&p, b"one").unwrap();
        write_private_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn link_target_follows_chains_and_stops_at_loops() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("real"), "").unwrap();
        std::os::unix::fs::symlink("real", d.join("b")).unwrap();
        std::os::unix::fs::symlink(d.join("b"), d.join("a")).unwrap();
        assert_eq!(link_target(&d.join("a")).unwrap(), d.join("real"));
        assert_eq!(link_target(&d.join("real")).unwrap(), d.join("real"));
        // A dangling link names the file to create.
        std::os::unix::fs::symlink("new", d.join("dangling")).unwrap();
        assert_eq!(link_target(&d.join("dangling")).unwrap(), d.join("new"));
        std::os::unix::fs::symlink("loop2", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.join("loop2")).unwrap();
        assert!(link_target(&d.join("loop1")).is_err());
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        create_private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn world_writable_is_untrusted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w");
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        let why = untrusted_reason(&fs::metadata(&p).unwrap()).unwrap();
        assert!(why.contains("writable by others"), "{why}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(untrusted_reason(&fs::metadata(&p).unwrap()), None);
    }
}
