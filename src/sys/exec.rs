//! Starting the program the user asked for, one way for both uses: replacing codex-as with it
//! (so its exit status, signals, stdin, stdout and terminal are the program's own with nothing
//! in between), or as a child that codex-as watches (the fallback). Both check `--cwd` and
//! explain a failed start the same way.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::error::ExecError;

/// `program args`, to run in `cwd` when given. The folder is checked here, the way chdir(2)
/// will judge it, because spawn and exec report a missing folder exactly like a missing program.
pub fn command(
    program: &OsStr,
    args: &[OsString],
    cwd: Option<&Path>,
) -> Result<Command, ExecError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = cwd {
        check_cwd(dir).map_err(|source| ExecError::Cwd {
            dir: dir.to_path_buf(),
            source,
        })?;
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// Whether chdir(2) into `dir` would succeed: it exists, is a folder, and may be entered.
fn check_cwd(dir: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::from_raw_os_error(nix::libc::ENOTDIR));
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).map_err(io::Error::from)
}

/// Runs `cmd` in place of this process. Returns only when it could not be started.
pub fn exec(mut cmd: Command, program: &OsStr) -> ExecError {
    let source = cmd.exec();
    start_error(&program.to_string_lossy(), source)
}

/// Why `program` could not be started, from the error exec or spawn gave.
pub fn start_error(program: &str, source: io::Error) -> ExecError {
    let program = program.to_string();
    match source.kind() {
        io::ErrorKind::NotFound => ExecError::NotFound { program },
        io::ErrorKind::PermissionDenied if Path::new(&program).is_dir() => {
            ExecError::IsDirectory { program }
        }
        io::ErrorKind::PermissionDenied => ExecError::NotExecutable { program },
        _ => ExecError::Other { program, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_cwd_is_not_a_missing_program() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let sh = OsStr::new("sh");
        for bad in [dir.path().join("missing"), file] {
            match command(sh, &[], Some(&bad)) {
                Err(ExecError::Cwd { dir, .. }) => assert_eq!(dir, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(command(sh, &[], Some(dir.path())).is_ok());
    }

    #[test]
    fn start_errors_say_what_went_wrong() {
        let not_found = io::Error::from(io::ErrorKind::NotFound);
        assert!(matches!(
            start_error("nope", not_found),
            ExecError::NotFound { .. }
        ));
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_string_lossy().into_owned();
        assert!(matches!(
            start_error(&d, denied()),
            ExecError::IsDirectory { .. }
        ));
        assert!(matches!(
            start_error("/no/such/file", denied()),
            ExecError::NotExecutable { .. }
        ));
    }
}
