//! The Codex plugin for Claude Code, as codex-as finds and reads it (never writes it).

pub mod brokers;
pub mod locate;
pub mod workspace;
