//! The path to call this codex-as by from files and shells that outlive the process: Claude
//! Code's hook commands and the shell init.
//!
//! `current_exe` alone is not enough. It resolves symlinks, so for a package manager that links
//! a versioned folder into a `bin/` (Homebrew, a `~/.local/bin` link to an unpacked release) it
//! names the versioned file, which the next upgrade removes; and for npm it names the native
//! binary inside a platform package instead of the `codex-as` launcher in npm's global `bin/`,
//! which is the one path every npm upgrade keeps. So the path this process was started by is
//! preferred, as long as it still leads to this very file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Set by the npm launcher: its own path, as it was started (`<prefix>/bin/codex-as`).
pub const NPM_LAUNCHER_ENV: &str = "CODEX_AS_NPM_LAUNCHER";
/// Set by the npm launcher: the native binary it started. The launcher path is believed only when
/// this names the running binary, so a value inherited by some other codex-as is ignored.
pub const NPM_BINARY_ENV: &str = "CODEX_AS_NPM_BINARY";

/// This codex-as's stable absolute path (see the module docs); `None` when even `current_exe`
/// cannot be read, and callers then fall back to `codex-as` on PATH.
pub fn stable() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let argv0 = std::env::args_os().next();
    let launcher = std::env::var_os(NPM_LAUNCHER_ENV);
    let launched = std::env::var_os(NPM_BINARY_ENV);
    let cwd = std::env::current_dir().ok();
    Some(choose(
        &exe,
        launcher.as_deref().zip(launched.as_deref()),
        argv0.as_deref(),
        cwd.as_deref(),
        std::env::var_os("PATH").as_deref(),
    ))
}

/// The stable path, else plain `codex-as` (found on PATH).
pub fn stable_or_name() -> PathBuf {
    stable().unwrap_or_else(|| PathBuf::from("codex-as"))
}

fn choose(
    exe: &Path,
    npm: Option<(&OsStr, &OsStr)>,
    argv0: Option<&OsStr>,
    cwd: Option<&Path>,
    path_var: Option<&OsStr>,
) -> PathBuf {
    if let Some((launcher, binary)) = npm {
        let launcher = Path::new(launcher);
        if launcher.is_absolute()
            && launcher.file_name() == Some(OsStr::new("codex-as"))
            && launcher.is_file()
            && same_file(Path::new(binary), exe)
        {
            return launcher.to_path_buf();
        }
    }
    if let Some(started) = argv0.and_then(|a| started_as(a, cwd, path_var))
        && same_file(&started, exe)
    {
        return started;
    }
    exe.to_path_buf()
}

/// The absolute path argv[0] names: a path when it holds a `/` (made absolute against `cwd`,
/// `..` kept, since resolving it could cross a symlink), else the first match on PATH, as the
/// shell that started us would have found it.
fn started_as(argv0: &OsStr, cwd: Option<&Path>, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let argv0 = Path::new(argv0);
    if argv0.as_os_str().is_empty() {
        return None;
    }
    let absolute = |p: &Path| -> Option<PathBuf> {
        if p.is_absolute() {
            Some(p.to_path_buf())
        } else {
            cwd.map(|c| c.join(p))
        }
    };
    if argv0.components().count() > 1 || argv0.is_absolute() {
        return absolute(argv0).map(|p| p.components().collect());
    }
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .filter_map(|dir| absolute(&dir.join(argv0)))
        .find(|candidate| candidate.is_file())
        .map(|p| p.components().collect())
}

/// Whether two paths lead to one file (after symlinks).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Layout {
        _dir: tempfile::TempDir,
        root: PathBuf,
        real: PathBuf,
    }

    /// `versions/1.0/codex-as` (the real file), linked from `bin/codex-as`; an npm-like launcher
    /// at `npm/bin/codex-as`; an unrelated `other/codex-as`.
    fn layout() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in ["versions/1.0", "bin", "npm/bin", "other"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let real = root.join("versions/1.0/codex-as");
        std::fs::write(&real, "binary").unwrap();
        std::os::unix::fs::symlink(&real, root.join("bin/codex-as")).unwrap();
        std::fs::write(root.join("npm/bin/codex-as"), "launcher").unwrap();
        std::fs::write(root.join("other/codex-as"), "another").unwrap();
        Layout {
            _dir: dir,
            root,
            real,
        }
    }

    fn os(p: &Path) -> &OsStr {
        p.as_os_str()
    }

    #[test]
    fn a_link_on_path_is_kept_rather_than_the_versioned_file() {
        let l = layout();
        let path_var = std::env::join_paths([l.root.join("other"), l.root.join("bin")]).unwrap();
        // `other/codex-as` comes first on PATH but is another file: not ours.
        let got = choose(
            &l.real,
            None,
            Some(OsStr::new("codex-as")),
            None,
            Some(&path_var),
        );
        assert_eq!(got, l.real);
        let path_var = std::env::join_paths([l.root.join("bin"), l.root.join("other")]).unwrap();
        let got = choose(
            &l.real,
            None,
            Some(OsStr::new("codex-as")),
            None,
            Some(&path_var),
        );
        assert_eq!(got, l.root.join("bin/codex-as"));
    }

    #[test]
    fn a_relative_argv0_is_made_absolute_against_the_cwd() {
        let l = layout();
        let got = choose(
            &l.real,
            None,
            Some(OsStr::new("./bin/codex-as")),
            Some(&l.root),
            None,
        );
        assert_eq!(got, l.root.join("bin/codex-as"));
        assert!(got.is_absolute());
    }

    #[test]
    fn an_argv0_naming_another_file_falls_back_to_the_executable() {
        let l = layout();
        let other = l.root.join("other/codex-as");
        assert_eq!(choose(&l.real, None, Some(os(&other)), None, None), l.real);
        assert_eq!(choose(&l.real, None, None, None, None), l.real);
    }

    #[test]
    fn the_npm_launcher_is_used_only_when_it_started_this_binary() {
        let l = layout();
        let launcher = l.root.join("npm/bin/codex-as");
        let ours = (os(&launcher), os(&l.real));
        assert_eq!(choose(&l.real, Some(ours), None, None, None), launcher);
        // Inherited by another codex-as: the binary it names is not the running one.
        let other = l.root.join("other/codex-as");
        let inherited = (os(&launcher), os(&other));
        assert_eq!(choose(&l.real, Some(inherited), None, None, None), l.real);
        // A relative or missing launcher is not a path to write anywhere.
        let relative = (OsStr::new("npm/bin/codex-as"), os(&l.real));
        assert_eq!(choose(&l.real, Some(relative), None, None, None), l.real);
        let gone = l.root.join("gone/codex-as");
        assert_eq!(
            choose(&l.real, Some((os(&gone), os(&l.real))), None, None, None),
            l.real
        );
    }
}
