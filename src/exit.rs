//! The one place that maps an error reaching `main` to codex-as's exit status.

use crate::account::AccountError;
use crate::error::{ExecError, UsageError, status};
use crate::fallback::Exhausted;

/// Exit status for an error that reached `main`: the first typed error in the chain decides.
pub fn code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return status::USAGE;
        }
        if cause.downcast_ref::<Exhausted>().is_some() {
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
