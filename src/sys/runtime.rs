//! The async runtime for the few places where async pays (broker I/O): one thread, built on
//! demand, so a command that needs none starts none.

use anyhow::Context;

/// A current-thread tokio runtime with I/O and timers.
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
