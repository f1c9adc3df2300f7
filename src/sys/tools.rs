//! Finding the programs codex-as runs on the user's behalf: `codex` (for the broker, `login` and
//! `quota --fresh`) and `node` (for the plugin's companion). One place, so that every caller
//! honours the same override.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// How long `PROGRAM --version` may take before it counts as failed.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The last line of `PROGRAM --version`, or None when it fails or takes too long (it is killed
/// then).
pub fn version(program: &Path) -> Option<String> {
    version_with(Command::new(program))
}

/// [`version`] of `codex`, run without side effects on any account: Codex makes `$CODEX_HOME/tmp/arg0-*`
/// at every start, which with CODEX_HOME unset creates `~/.codex` (world-readable, for an
/// account that may never have been used). It gets a scratch home of its own instead, removed
/// after.
pub fn codex_version(codex: &Path) -> Option<String> {
    let scratch = tempfile::Builder::new()
        .prefix("codex-as-version-")
        .tempdir()
        .ok()?;
    let mut cmd = Command::new(codex);
    cmd.env("CODEX_HOME", scratch.path());
    version_with(cmd)
}

fn version_with(mut cmd: Command) -> Option<String> {
    let mut child = cmd
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// The version number in what [`codex_version`] returned (`codex-cli 0.171.0` -> `0.171.0`).
pub fn version_number(line: &str) -> &str {
    line.split_whitespace().last().unwrap_or("")
}
