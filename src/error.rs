//! Typed errors raised inside codex-as, and the one place that maps any error to an exit status.

use std::path::PathBuf;

/// Exit statuses codex-as itself uses (a command that ran returns its own status instead).
pub mod status {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    /// EX_TEMPFAIL: every account of a list or `auto` is out of quota; later may work.
    pub const ALL_EXHAUSTED: u8 = 75;
    /// Like a shell: the command exists but could not be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// Like a shell: the command was not found.
    pub const NOT_FOUND: u8 = 127;
}

/// A mistake in how codex-as was called: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// The program to run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{program}: command not found (check the name, or your PATH)")]
    NotFound { program: String },
    #[error("{program}: permission denied (is it executable?)")]
    NotExecutable { program: String },
    #[error("{program}: is a directory, not a program")]
    IsDirectory { program: String },
    #[error("cannot run {program}")]
    Other {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot change directory to {} (check --cwd)", .dir.display())]
    Cwd {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Exit status for an error that reached `main`: the first typed error in the chain decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return status::USAGE;
        }
        // Every account skipped (none logged in, ...) is, as the README says, the same "ran out
        // of accounts" as every one out of quota.
        if cause.downcast_ref::<crate::fallback::Exhausted>().is_some()
            || cause
                .downcast_ref::<crate::fallback::NoneUsable>()
                .is_some()
        {
            return status::ALL_EXHAUSTED;
        }
        if let Some(e) = cause.downcast_ref::<crate::account::AccountError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<ExecError>() {
            return match e {
                ExecError::NotFound { .. } => status::NOT_FOUND,
                ExecError::NotExecutable { .. } | ExecError::IsDirectory { .. } => {
                    status::NOT_EXECUTABLE
                }
                ExecError::Other { .. } | ExecError::Cwd { .. } => status::FAILURE,
            };
        }
    }
    status::FAILURE
}

/// The reader of our stdout has gone (`codex-as list | head -1`): nothing is wrong, and there
/// is nobody left to tell, so `main` ends quietly with status 0.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
