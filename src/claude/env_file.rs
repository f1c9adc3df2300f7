//! What the session hook writes to `CLAUDE_ENV_FILE`: bash code Claude Code sources before every
//! later Bash command and `!` line of the session (rendered from shell/claude-env.bash).
//!
//! Claude Code gives each hook a file of its own and reuses it on resume without truncating it,
//! so the hook rewrites its whole file each time: re-running it changes nothing.

use std::io::Write;
use std::path::Path;

use askama::Template;

use crate::account::env::{ACCOUNT_MARKER, CODEX_HOME, EnvPlan, IDENTITY_VARS};
use crate::shell::quote;

pub const ENDPOINT_ENV: &str = "CODEX_COMPANION_APP_SERVER_ENDPOINT";

#[derive(Template)]
#[template(path = "claude-env.bash", escape = "none")]
struct ClaudeEnv {
    /// One line, quoted as a comment can't be: only plain characters are kept.
    why_q: String,
    exports: Vec<(String, String)>,
    unsets: Vec<String>,
}

/// Names bash accepts in `export`/`unset` (every name here is ours, but the template must not
/// depend on that).
fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The exports that put the session on the account of `plan`, pinned to `endpoint`.
pub fn render_account(plan: &EnvPlan, endpoint: &str, why: &str) -> anyhow::Result<String> {
    let mut exports = Vec::new();
    for (name, value) in &plan.set {
        let value = value.to_str().ok_or_else(|| {
            anyhow::anyhow!("{name} would not be valid UTF-8; bash cannot be given it safely (rename the folder)")
        })?;
        exports.push((name.clone(), quote::posix(value)));
    }
    exports.push((ENDPOINT_ENV.to_string(), quote::posix(endpoint)));
    let unsets = plan
        .unset
        .iter()
        .filter(|n| n.as_str() != ENDPOINT_ENV)
        .cloned()
        .collect();
    render(ClaudeEnv {
        why_q: comment(why),
        exports,
        unsets,
    })
}

/// The exports of a session whose account could not be settled: every plugin call and every
/// `codex` fails, and says why, instead of running on whatever account Claude Code was started
/// with. `CODEX_HOME` names a folder that does not exist (Codex refuses it, printing the path),
/// and the endpoint is one the companion refuses ("Unsupported broker endpoint: ..."), so it
/// cannot fall back to a direct app-server either.
pub fn render_refusal(reason: &str) -> anyhow::Result<String> {
    let short: String = comment(reason).chars().take(300).collect();
    let home = format!("/codex-as refused this session: {short} (see codex-as claude status)");
    let endpoint = format!("codex-as-refused: {short} (see `codex-as claude status`)");
    render(ClaudeEnv {
        why_q: "refused".into(),
        exports: vec![
            (CODEX_HOME.to_string(), quote::posix(&home)),
            (ENDPOINT_ENV.to_string(), quote::posix(&endpoint)),
        ],
        unsets: std::iter::once(ACCOUNT_MARKER)
            .chain(IDENTITY_VARS.iter().copied().filter(|n| *n != ENDPOINT_ENV))
            .map(String::from)
            .collect(),
    })
}

fn render(mut env: ClaudeEnv) -> anyhow::Result<String> {
    env.exports.retain(|(n, _)| plain_name(n));
    env.unsets.retain(|n| plain_name(n));
    Ok(env.render()?)
}

/// Replaces the hook's env file with `text` (in place: the file is Claude Code's, and which
/// file it is matters to it, so no rename).
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    // No fsync: Claude Code reads the file right after the hook, from the page cache.
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn bash_env(script: &str, probe: &str) -> String {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{script}\n{probe}"))
            .env("OPENAI_API_KEY", "sk-inherited")
            .env("CODEX_COMPANION_SESSION_ID", "plugin-own")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn exports_survive_hostile_values_and_unset_identity_vars() {
        let nasty = "/h/it's $(touch /tmp/pwned) `x` \\ \"q\"";
        let plan = EnvPlan {
            set: vec![
                (CODEX_HOME.into(), OsString::from(nasty)),
                (ACCOUNT_MARKER.into(), OsString::from("alice")),
            ],
            unset: IDENTITY_VARS.iter().map(|s| s.to_string()).collect(),
        };
        let text =
            render_account(&plan, "unix:/r/a b.sock", "pinned by\n/x/.codex-account").unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            1,
            "{text}"
        );
        let got = bash_env(
            &text,
            "printf '%s|%s|%s|%s|%s' \"$CODEX_HOME\" \"$CODEX_AS_ACCOUNT\" \"$CODEX_COMPANION_APP_SERVER_ENDPOINT\" \"${OPENAI_API_KEY-unset}\" \"$CODEX_COMPANION_SESSION_ID\"",
        );
        assert_eq!(
            got,
            format!("{nasty}|alice|unix:/r/a b.sock|unset|plugin-own"),
            "the plugin's own variables are never touched"
        );
    }

    #[test]
    fn a_refusal_leaves_no_usable_account() {
        let text = render_refusal("/p/.codex-account names 'carol', unknown; it's\nbad").unwrap();
        let got = bash_env(
            &text,
            "printf '%s|%s|%s' \"$CODEX_HOME\" \"$CODEX_COMPANION_APP_SERVER_ENDPOINT\" \"${OPENAI_API_KEY-unset}\"",
        );
        let parts: Vec<&str> = got.split('|').collect();
        assert!(
            parts[0].starts_with("/codex-as refused this session: /p/.codex-account"),
            "{got}"
        );
        assert!(!Path::new(parts[0]).exists());
        assert!(parts[1].starts_with("codex-as-refused: "), "{got}");
        assert_eq!(parts[2], "unset");
    }

    #[test]
    fn rewriting_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sessionstart-hook-0.sh");
        std::fs::write(&p, "export OLD=1\nexport OLD=1\n").unwrap();
        write(&p, "export A='1'\n").unwrap();
        write(&p, "export A='1'\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "export A='1'\n");
    }
}
