//! Claude Code: codex-as's hooks in its settings, and what they do in a session, so that every
//! `/codex:*` command of the unmodified plugin runs on the project's account.
//!
//! - `settings`: installing and removing the hooks in a settings.json, keeping everything else.
//! - `hook`: the hook itself (SessionStart, CwdChanged, SessionEnd).
//! - `env_file`: the bash exports the hook leaves for the session.

pub mod env_file;
pub mod hook;
pub mod settings;
