//! Finding the programs codex-as runs on the user's behalf: `codex` (for the broker, `login` and
//! `quota --fresh`) and `node` (for the plugin's companion). One place, so that every caller
//! honours the same override.

use std::path::PathBuf;

/// Names the `codex` to run instead of the first one on PATH.
pub const CODEX_ENV: &str = "CODEX_AS_CODEX";

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "codex not found on PATH: install it with `npm install -g @openai/codex` (or set CODEX_AS_CODEX to its path)"
    )]
    CodexNotFound,
    #[error(
        "node is not on your PATH: the plugin's companion needs Node.js (install it, e.g. `apt install nodejs` or from nodejs.org)"
    )]
    NodeNotFound,
}

/// The `codex` to run: `$CODEX_AS_CODEX` when set, else the first `codex` on PATH.
pub fn codex() -> Result<PathBuf, ToolError> {
    if let Some(p) = std::env::var_os(CODEX_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    which::which("codex").map_err(|_| ToolError::CodexNotFound)
}

/// The `node` that runs the companion: the first on PATH, as Claude Code would find it.
pub fn node() -> Result<PathBuf, ToolError> {
    which::which("node").map_err(|_| ToolError::NodeNotFound)
}
