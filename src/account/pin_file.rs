//! The `.codex-account` pin file: which account a project uses, committed with it.
//!
//! The format is made to be edited by hand and to survive a commit: the first line that is not
//! blank and not a `#` comment is the account (trimmed): one name, a list to fall back along
//! (`work, personal`), or `auto`, as on the command line (`account::spec`). Any other such line
//! is an error naming the file and the line, so a merge that leaves two names is never
//! half-read.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::spec::AccountSpec;

pub const FILE_NAME: &str = ".codex-account";

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot read the pin file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: only one line may name the account (found {found:?} after {first:?}); keep one line (a list is written on one: `work, personal`), or delete the file with `codex-as pin --unset`", .path.display())]
    ExtraLine {
        path: PathBuf,
        line: usize,
        first: String,
        found: String,
    },
    #[error("{} names no account: write one account name in it, or delete it", .path.display())]
    Empty { path: PathBuf },
    #[error("{}: {reason}; fix the file", .path.display())]
    BadSpec { path: PathBuf, reason: String },
    #[error("{}: account name '{name}' {reason}; fix the file", .path.display())]
    BadName {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("refusing the pin file {}: {reason}; another local user could have chosen your account (fix its owner or mode, e.g. `chmod go-w`)", .path.display())]
    Untrusted { path: PathBuf, reason: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A pin file that was read: where it is and the account (or list, or `auto`) it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub path: PathBuf,
    pub spec: AccountSpec,
    /// 1-based line of the name, for messages.
    pub line: usize,
}

/// The nearest pin file at or above `dir` (which should be canonical), read and checked.
#[cfg(test)]
pub fn find(dir: &Path) -> Result<Option<Pin>, PinError> {
    find_deeper_than(dir, 0)
}

/// The nearest pin file at or above `dir` in a folder deeper than `floor` path components (a
/// config entry at that depth wins over anything above it, so those are not even read).
pub fn find_deeper_than(dir: &Path, floor: usize) -> Result<Option<Pin>, PinError> {
    for d in dir.ancestors() {
        if d.components().count() <= floor {
            break;
        }
        let path = d.join(FILE_NAME);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => return read(&path, &meta).map(Some),
            // A folder or anything else with that name is not a pin: keep walking.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(source) => return Err(PinError::Read { path, source }),
        }
    }
    Ok(None)
}

fn read(path: &Path, meta: &std::fs::Metadata) -> Result<Pin, PinError> {
    if let Some(reason) = untrusted(meta) {
        return Err(PinError::Untrusted {
            path: path.to_path_buf(),
            reason,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| PinError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Whether a pin file could have been written by someone else. Group write is accepted only for
/// the user's own primary group (user-private groups with umask 002 are common, and git checks
/// files out with that mode).
fn untrusted(meta: &std::fs::Metadata) -> Option<String> {
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid {
        return Some(format!(
            "it is owned by uid {}, not you (uid {uid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o002 != 0 {
        return Some(format!("anyone can write it (mode {mode:o})"));
    }
    if mode & 0o020 != 0 && meta.gid() != nix::unistd::getgid().as_raw() {
        return Some(format!("group {} can write it (mode {mode:o})", meta.gid()));
    }
    None
}

pub fn parse(path: &Path, text: &str) -> Result<Pin, PinError> {
    let mut found: Option<(usize, &str)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((_, first)) = found {
            return Err(PinError::ExtraLine {
                path: path.to_path_buf(),
                line: i + 1,
                first: first.to_string(),
                found: line.to_string(),
            });
        }
        found = Some((i + 1, line));
    }
    let (line, raw) = found.ok_or_else(|| PinError::Empty {
        path: path.to_path_buf(),
    })?;
    let spec = AccountSpec::parse(raw).map_err(|e| PinError::BadSpec {
        path: path.to_path_buf(),
        reason: e.0,
    })?;
    for name in spec.names() {
        crate::account::names::check(name).map_err(|reason| PinError::BadName {
            path: path.to_path_buf(),
            name: name.to_string(),
            reason,
        })?;
    }
    Ok(Pin {
        path: path.to_path_buf(),
        spec,
        line,
    })
}

/// The text `codex-as pin SPEC` writes.
pub fn render(spec: &AccountSpec) -> String {
    format!(
        "# The Codex account for this folder and below (codex-as: `codex-as which` explains).\n{spec}\n"
    )
}

/// Writes `dir/.codex-account` naming `spec`, atomically, mode 0644: it is meant to be committed.
pub fn write(dir: &Path, spec: &AccountSpec) -> Result<PathBuf, PinError> {
    let path = dir.join(FILE_NAME);
    let err = |source| PinError::Write {
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".codex-account.")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(render(spec).as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(path)
}

/// What `remove` found in a folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Removed(Pin),
    NoFile,
}

/// Removes `dir/.codex-account`, but only a file that reads as a pin: anything else with that
/// name is someone's, and an error says what is wrong with it instead.
pub fn remove(dir: &Path) -> Result<Removed, PinError> {
    let path = dir.join(FILE_NAME);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removed::NoFile),
        Err(source) => return Err(PinError::Read { path, source }),
    };
    if !meta.is_file() {
        return Err(PinError::Read {
            path,
            source: std::io::Error::other("not a regular file; remove it yourself"),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| PinError::Read {
        path: path.clone(),
        source,
    })?;
    let pin = parse(&path, &text)?;
    std::fs::remove_file(&path).map_err(|source| PinError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Removed::Removed(pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_name_and_skips_comments_and_blanks() {
        let p = Path::new("/x/.codex-account");
        let pin = parse(p, "# work projects\n\n  alice  \n# trailing comment\n").unwrap();
        assert_eq!(pin.spec, AccountSpec::One("alice".into()));
        assert_eq!(pin.line, 3);
    }

    #[test]
    fn a_list_or_auto_is_one_line() {
        let p = Path::new("/x/.codex-account");
        let list = AccountSpec::List(vec!["work".into(), "personal".into()]);
        for text in [
            "work, personal\n",
            "work,personal",
            "# both\n work ,personal \n",
        ] {
            assert_eq!(parse(p, text).unwrap().spec, list, "{text:?}");
        }
        assert_eq!(parse(p, "auto\n").unwrap().spec, AccountSpec::Auto);
        let e = parse(p, "work,,personal\n").unwrap_err().to_string();
        assert!(e.starts_with("/x/.codex-account: account list"), "{e}");
        assert!(e.contains("empty name"), "{e}");
        let e = parse(p, "work, auto\n").unwrap_err().to_string();
        assert!(e.contains("use it alone"), "{e}");
        let e = parse(p, "work, -x\n").unwrap_err().to_string();
        assert!(e.contains("account name '-x'"), "{e}");
        let e = parse(p, "work\npersonal\n").unwrap_err().to_string();
        assert!(e.contains("a list is written on one"), "{e}");
        // What `pin` writes reads back as the same spec.
        let back = parse(p, &render(&list)).unwrap();
        assert_eq!((back.spec, back.line), (list, 2));
    }

    #[test]
    fn a_second_name_is_an_error_naming_file_and_line() {
        let p = Path::new("/x/.codex-account");
        let e = parse(p, "alice\n\nbob\n").unwrap_err().to_string();
        assert!(e.contains("/x/.codex-account: line 3"), "{e}");
        assert!(e.contains("\"bob\""), "{e}");
        let e = parse(p, "# only a comment\n").unwrap_err().to_string();
        assert!(e.contains("names no account"), "{e}");
        let e = parse(p, "a b\n").unwrap_err().to_string();
        assert!(e.contains("/x/.codex-account"), "{e}");
    }

    #[test]
    fn write_then_find_from_below_then_remove() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let path = write(&root, &AccountSpec::One("bob".into())).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o644,
            "committable"
        );
        let pin = find(&deep).unwrap().unwrap();
        assert_eq!(
            (pin.spec.to_string().as_str(), pin.path.as_path()),
            ("bob", path.as_path())
        );
        assert_eq!(remove(&deep).unwrap(), Removed::NoFile);
        assert!(
            matches!(remove(&root).unwrap(), Removed::Removed(p) if p.spec.one() == Some("bob"))
        );
        assert_eq!(find(&deep).unwrap(), None);
    }

    #[test]
    fn remove_leaves_a_file_that_is_not_a_pin() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE_NAME), "alice\nbob\n").unwrap();
        assert!(remove(d.path()).is_err());
        assert!(d.path().join(FILE_NAME).exists());
    }

    #[test]
    fn a_world_writable_pin_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(FILE_NAME);
        std::fs::write(&p, "alice\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = find(d.path()).unwrap_err().to_string();
        assert!(e.contains("anyone can write it"), "{e}");
    }
}
