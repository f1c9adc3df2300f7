//! The one place that maps an error reaching `main` to codex-as's exit status.

use crate::account::AccountError;
use crate::error::{ExecError, UsageError, status};
use crate::fallback::{Exhausted, NoneUsable};

/// Exit status for an error that reached `main`: the first typed error in the chain decides.
pub fn code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return status::USAGE;
        }
        // Every account skipped (none logged in, ...) is, as the README says, the same "ran out
        // of accounts" as every one out of quota.
        if cause.downcast_ref::<Exhausted>().is_some()
            || cause.downcast_ref::<NoneUsable>().is_some()
        {
            return status::ALL_EXHAUSTED;
        }
        if let Some(e) = cause.downcast_ref::<AccountError>() {
            return match e {
                AccountError::MissingHome { .. } => status::FAILURE,
                _ => status::USAGE,
            };
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
