//! Typed errors shared across codex-as, and its exit statuses (`exit` maps an error to one).

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
