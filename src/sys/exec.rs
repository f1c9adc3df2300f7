//! Replacing codex-as with the program the user asked for, so its exit status, signals, stdin,
//! stdout and terminal are the program's own with nothing in between.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::account::env::EnvPlan;
use crate::error::ExecError;

/// Runs `program args` in place of this process, with `plan` applied to the environment and, when
/// given, `cwd` as the working directory. Returns only when the program could not be started.
pub fn exec(program: &OsStr, args: &[OsString], plan: &EnvPlan, cwd: Option<&Path>) -> ExecError {
    if let Some(dir) = cwd {
        // Changing directory here rather than in the child keeps "no such folder" apart from
        // "no such program", which exec alone reports the same way.
        if let Err(source) = std::env::set_current_dir(dir) {
            return ExecError::Cwd {
                dir: dir.to_path_buf(),
                source,
            };
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    plan.apply(&mut cmd);
    let source = cmd.exec();
    let program = program.to_string_lossy().into_owned();
    match source.kind() {
        std::io::ErrorKind::NotFound => ExecError::NotFound { program },
        std::io::ErrorKind::PermissionDenied if std::path::Path::new(&program).is_dir() => {
            ExecError::IsDirectory { program }
        }
        std::io::ErrorKind::PermissionDenied => ExecError::NotExecutable { program },
        _ => ExecError::Other { program, source },
    }
}
