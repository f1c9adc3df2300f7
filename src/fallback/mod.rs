//! Running one command on a list of accounts, or on the best one (`auto`), moving on only when
//! an account's usage limit is reached. The pieces: `policy` (every decision, pure), `jobs` (the companion's record of how its
//! turn ended), `landed` (which home a session was written to), `here` (the one account of a
//! folder pinned to a list or `auto` where only one can run). `run::attempts` drives them.

pub mod here;
pub mod jobs;
pub mod landed;
pub mod policy;

/// Why codex-as ran nothing more: every account is out of quota. Exit status 75 (EX_TEMPFAIL):
/// trying again later can work.
#[derive(Debug, thiserror::Error)]
#[error("every account is out of quota:\n{}", .0.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"))]
pub struct Exhausted(pub Vec<String>);

/// No account could even be tried (none logged in, say).
#[derive(Debug, thiserror::Error)]
#[error("no account to run as:\n{}", .0.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"))]
pub struct NoneUsable(pub Vec<String>);
