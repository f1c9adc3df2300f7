//! The Codex plugin for Claude Code, as codex-as finds and reads it (never writes it).

pub mod advice;
pub mod brokers;
pub mod help;
pub mod locate;
pub mod roots;
pub mod workspace;
