//! codex-as's private folder for broker sockets, records and logs.
//!
//! Unix socket paths are limited to about 104 bytes (macOS) and 108 (Linux), so the folder must
//! have a short path; and since a socket there decides which account serves a call, nobody but
//! this user may be able to write in it, nor ever have been able to.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
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
    #[error("{} is {kind}, not a folder: codex-as keeps its broker sockets in a private folder there (remove it, or set {ENV} to a private folder)", .path.display())]
    NotAFolder { path: PathBuf, kind: &'static str },
    #[error("cannot create {}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is too long for unix socket paths; set {ENV} to a shorter private folder", .path.display())]
    TooLong { path: PathBuf },
}

impl From<RuntimeDirError> for io::Error {
    fn from(e: RuntimeDirError) -> io::Error {
        io::Error::other(e)
    }
}

/// The folder, created 0700 if missing and checked to be this user's alone.
pub fn ensure() -> Result<PathBuf, RuntimeDirError> {
    let dir = choose();
    if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
        return Err(RuntimeDirError::TooLong { path: dir });
    }
    ensure_at(&dir)?;
    Ok(dir)
}

/// The folder [`ensure`] would use, without creating it (for `doctor`).
pub fn chosen() -> PathBuf {
    choose()
}

/// What would make [`ensure_at`] refuse `dir`, found without creating or changing anything (for
/// `doctor`). A folder others may write is not reported here: [`ensure_at`] replaces it.
pub fn diagnose(dir: &Path) -> Result<(), RuntimeDirError> {
    if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
        return Err(RuntimeDirError::TooLong {
            path: dir.to_path_buf(),
        });
    }
    // The nearest thing that exists must be a folder, or nothing can be made below it.
    for at in dir.ancestors() {
        if at.as_os_str().is_empty() {
            continue;
        }
        match std::fs::symlink_metadata(at) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(e) => {
                return Err(RuntimeDirError::Untrusted {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                });
            }
            Ok(meta) => {
                let ok = if at == dir {
                    meta.is_dir()
                } else {
                    std::fs::metadata(at).is_ok_and(|m| m.is_dir())
                };
                if !ok {
                    return Err(not_a_folder(at, &meta));
                }
                if at == dir
                    && let Some(reason) = fsutil::not_mine(&meta)
                {
                    return Err(RuntimeDirError::Untrusted {
                        path: dir.to_path_buf(),
                        reason,
                    });
                }
                break;
            }
        }
    }
    check_ancestors(dir)
}

fn not_a_folder(path: &Path, meta: &std::fs::Metadata) -> RuntimeDirError {
    RuntimeDirError::NotAFolder {
        path: path.to_path_buf(),
        kind: if meta.file_type().is_symlink() {
            "a symlink"
        } else if meta.is_file() {
            "a file"
        } else {
            "something else"
        },
    }
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

/// Makes `dir` a real folder (not a link), owned by this user, that nobody else can enter or
/// write, and that nobody else could write before: creates it when missing (it may have been
/// removed mid-call, so every writer calls this again on `NotFound`), and replaces one that was
/// writable by others (see [`move_aside`]).
pub fn ensure_at(dir: &Path) -> Result<(), RuntimeDirError> {
    let untrusted = |reason: String| RuntimeDirError::Untrusted {
        path: dir.to_path_buf(),
        reason,
    };
    check_ancestors(dir)?;
    // Rounds: a folder moved aside is made again, and one made again is checked again.
    for _ in 0..3 {
        let meta = match std::fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create(dir)?;
                continue;
            }
            Err(e) => {
                return Err(match diagnose(dir) {
                    Err(found @ RuntimeDirError::NotAFolder { .. }) => found,
                    _ => untrusted(e.to_string()),
                });
            }
        };
        if !meta.is_dir() {
            return Err(not_a_folder(dir, &meta));
        }
        if let Some(reason) = fsutil::not_mine(&meta) {
            return Err(untrusted(reason));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            move_aside(dir, mode)?;
            continue;
        }
        if mode & 0o077 != 0 {
            // Readable by others but never writable: nobody else could have put anything in
            // it, so tightening it is enough.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| untrusted(format!("mode {:o} and chmod failed: {e}", mode & 0o777)))?;
        }
        return Ok(());
    }
    Err(untrusted(
        "it keeps changing under codex-as (someone else is creating or replacing it)".into(),
    ))
}

/// A folder whose parent another user may rename things in can be swapped for theirs between
/// any check and any use: every folder above must belong to root or this user, and one that
/// everyone may write must be sticky (like /tmp), where only an entry's owner may rename it.
fn check_ancestors(dir: &Path) -> Result<(), RuntimeDirError> {
    let me = nix::unistd::getuid().as_raw();
    for above in dir.ancestors().skip(1) {
        if above.as_os_str().is_empty() {
            continue;
        }
        let Ok(meta) = std::fs::metadata(above) else {
            continue;
        };
        let mode = meta.mode();
        let why = if meta.uid() != 0 && meta.uid() != me {
            format!(
                "{} above it is owned by uid {}",
                above.display(),
                meta.uid()
            )
        } else if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            format!(
                "{} above it is writable by everyone and not sticky (mode {:o})",
                above.display(),
                mode & 0o7777
            )
        } else {
            continue;
        };
        return Err(RuntimeDirError::Untrusted {
            path: dir.to_path_buf(),
            reason: why,
        });
    }
    Ok(())
}

/// Creates the last component 0700 (its parents too, 0700, when missing). An existing one is
/// not an error: the caller checks whatever is there now.
fn create(dir: &Path) -> Result<(), RuntimeDirError> {
    let create_err = |source| RuntimeDirError::Create {
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
    {
        // A file where a folder above belongs: name it rather than "not a directory".
        return Err(match diagnose(dir) {
            Err(found @ RuntimeDirError::NotAFolder { .. }) => found,
            _ => create_err(e),
        });
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(create_err(e)),
        _ => Ok(()),
    }
}

/// A folder of ours that others could write (say `$TMPDIR` and the folder both left 1777) may
/// hold anything another user planted: a socket named like a broker's, a lock file that is a
/// symlink into one of our private folders. Tightening it would not make those ours, and cleaning
/// it entry by entry leaves a window (and, after a crash, a tight folder still holding them)
/// that the next call would trust. So the whole folder is renamed out of the way, in one step,
/// and a fresh one is made; nothing in the old one is read, followed or connected to.
fn move_aside(dir: &Path, mode: u32) -> Result<(), RuntimeDirError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let aside = dir.with_file_name(format!(
        ".{name}.untrusted-{}-{nanos:08x}",
        std::process::id()
    ));
    if let Err(e) = std::fs::rename(dir, &aside) {
        return Err(RuntimeDirError::Untrusted {
            path: dir.to_path_buf(),
            reason: format!(
                "it was writable by others (mode {mode:o}) and could not be moved aside: {e}"
            ),
        });
    }
    // Best effort: entries another user made inside their own subfolders may not go away.
    let _ = std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o700));
    let removed = std::fs::remove_dir_all(&aside).is_ok();
    eprintln!(
        "codex-as: warning: {} was writable by others (mode {mode:o}), so nothing in it is trusted: {}; a fresh private one replaces it",
        dir.display(),
        if removed {
            "removed it".to_string()
        } else {
            format!("moved it to {} (remove it yourself)", aside.display())
        }
    );
    Ok(())
}

/// Opens a file in the folder without following a symlink there, and refuses one that is not a
/// regular file of this user's: a lock or record another user planted is never used or written
/// through. `create` makes a missing one 0600.
pub fn open_private_file(path: &Path, create: bool) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).custom_flags(nix::libc::O_NOFOLLOW);
    if create {
        options.write(true).create(true).truncate(false).mode(0o600);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    let me = nix::unistd::getuid().as_raw();
    if !meta.is_file() || meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a regular file of yours (uid {}); refusing it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn readable_folder_is_tightened_symlink_refused() {
        let d = tempfile::tempdir().unwrap();
        let loose = d.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::write(loose.join("kept"), "").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_at(&loose).unwrap();
        assert_eq!(mode(&loose), 0o700);
        assert!(loose.join("kept").exists(), "nobody else could write there");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&loose, &link).unwrap();
        assert!(
            ensure_at(&link)
                .unwrap_err()
                .to_string()
                .contains("is a symlink, not a folder")
        );
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_named_as_such() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        for dir in [file.clone(), file.join("codex-as")] {
            let e = ensure_at(&dir).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{} is a file, not a folder", file.display())),
                "{e}"
            );
            assert!(!e.contains("plant"), "{e}");
            let e = diagnose(&dir).unwrap_err().to_string();
            assert!(e.contains("is a file, not a folder"), "{e}");
        }
        diagnose(&d.path().join("missing/codex-as")).unwrap();
    }

    #[test]
    fn writable_folder_is_replaced_without_following_anything_in_it() {
        let d = tempfile::tempdir().unwrap();
        let rt = d.path().join("rt");
        std::fs::create_dir(&rt).unwrap();
        let target = d.path().join("private-target");
        std::os::unix::fs::symlink(&target, rt.join("0123456789abcdef.lock")).unwrap();
        std::fs::write(rt.join("0123456789abcdef-00000001.json"), "{}").unwrap();
        std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_at(&rt).unwrap();
        assert_eq!(mode(&rt), 0o700);
        assert_eq!(std::fs::read_dir(&rt).unwrap().count(), 0, "nothing kept");
        assert!(!target.exists(), "the planted link was not followed");
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "the old folder is gone: {left:?}");
    }

    #[test]
    fn a_parent_anyone_can_rename_in_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_at(&open.join("rt")).unwrap_err().to_string();
        assert!(e.contains("not sticky"), "{e}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_at(&open.join("rt")).unwrap();
    }

    #[test]
    fn removed_folder_is_made_again_private() {
        let d = tempfile::tempdir().unwrap();
        let rt = d.path().join("a/rt");
        ensure_at(&rt).unwrap();
        std::fs::remove_dir(&rt).unwrap();
        ensure_at(&rt).unwrap();
        assert_eq!(mode(&rt), 0o700);
    }

    #[test]
    fn private_files_are_never_opened_through_links() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        let link = d.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_private_file(&link, true).is_err());
        assert!(!target.exists(), "O_NOFOLLOW: the target is never created");
        let f = d.path().join("y.lock");
        open_private_file(&f, true).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(open_private_file(&d.path().join("none"), false).is_err());
        // A folder is not a file.
        assert!(open_private_file(d.path(), false).is_err());
    }
}
