//! Leases that keep a broker up while no client is connected (issue 10: a Claude Code session
//! takes one at SessionStart and releases it at SessionEnd, so the broker its commands are pinned
//! to outlives the gaps between them). Leases are files in the runtime folder; this module is
//! the one place the broker asks about them.

use std::path::Path;

/// Whether a lease holds the broker of `account_key` (the registry key of the account's home)
/// up. The broker asks before an idle exit and before granting a shutdown; while it says true,
/// neither happens.
///
/// TODO(issue 10): read the lease files in `runtime_dir` (a lease whose session is gone must
/// not count, so a crashed Claude Code cannot hold a broker forever). Until then no lease is
/// ever held.
pub fn held(runtime_dir: &Path, account_key: &str) -> bool {
    let _ = (runtime_dir, account_key);
    false
}
