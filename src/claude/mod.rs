//! Claude Code: codex-as's hooks in its settings, and what they do in a session, so that every
//! `/codex:*` command of the unmodified plugin runs on the project's account.
//!
//! - `settings`: installing and removing the hooks in a settings.json, keeping everything else.
//! - `hook`: the hook itself (SessionStart, CwdChanged, SessionEnd).
//! - `env_file`: the bash exports the hook leaves for the session.
//! - `in_use`: the account a folder on a list or `auto` is on now (`which`, `status`, the status
//!   line).

pub mod env_file;
pub mod hook;
pub mod in_use;
pub mod settings;
