//! Where a companion command works: its cwd (from its own `--cwd`/`-C`), the workspace root, and
//! the plugin's state folder for it, computed by the plugin's own rules so codex-as and the
//! companion always agree.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// The companion's cwd: the last `--cwd DIR`, `--cwd=DIR`, `-C DIR` (or `--C`) before a `--`,
/// resolved against `base`. Exactly one argument after the subcommand is first split by the
/// companion itself (quotes and backslashes honoured), so the same is done here.
pub fn companion_cwd(args: &[OsString], base: &Path) -> PathBuf {
    let split;
    let args: Vec<String> = match args.split_first() {
        Some((_sub, [only])) => {
            split = split_like_companion(&only.to_string_lossy());
            split
        }
        Some((_sub, rest)) => rest
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        None => Vec::new(),
    };
    let mut cwd: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => break,
            "--cwd" | "-C" | "--C" => {
                if let Some(v) = it.next() {
                    cwd = Some(v.clone());
                }
            }
            _ => {
                if let Some(v) = a.strip_prefix("--cwd=").or_else(|| a.strip_prefix("--C=")) {
                    cwd = Some(v.to_string());
                }
            }
        }
    }
    match cwd {
        Some(c) => normalize(&base.join(c)),
        None => base.to_path_buf(),
    }
}

/// The companion's splitting of a single raw argument: whitespace separates, `'`/`"` group,
/// a backslash takes the next character literally (even inside quotes).
pub fn split_like_companion(raw: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut escaping = false;
    for c in raw.chars() {
        if escaping {
            current.push(c);
            escaping = false;
        } else if c == '\\' {
            escaping = true;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                current.push(c);
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else if c.is_whitespace() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if escaping {
        current.push('\\');
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Lexical `.`/`..` folding, as node's `path.resolve` does (no symlinks resolved).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `git rev-parse --show-toplevel` in `cwd`, else `cwd` itself: the plugin's workspace root.
pub fn workspace_root(cwd: &Path) -> PathBuf {
    let out = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let top = text.trim_end_matches('\n');
            if top.is_empty() {
                cwd.to_path_buf()
            } else {
                PathBuf::from(top)
            }
        }
        _ => cwd.to_path_buf(),
    }
}

/// The variable that names the plugin's data folder (its state is under `state/`).
pub const PLUGIN_DATA_ENV: &str = "CLAUDE_PLUGIN_DATA";

/// The plugin's state root: `$CLAUDE_PLUGIN_DATA/state`, else node's `os.tmpdir()`/codex-companion.
pub fn plugin_state_root() -> PathBuf {
    plugin_state_root_in(&|k| std::env::var(k).ok())
}

/// [`plugin_state_root`] for another process's environment (`var` reads one of its variables).
pub fn plugin_state_root_in(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(d) = var(PLUGIN_DATA_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("state");
    }
    node_tmpdir_in(var).join("codex-companion")
}

/// Node's `os.tmpdir()` on POSIX: the first non-empty of TMPDIR, TMP, TEMP, else /tmp, with one
/// trailing slash removed unless the value is `/`.
fn node_tmpdir_in(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let raw = ["TMPDIR", "TMP", "TEMP"]
        .iter()
        .filter_map(|k| var(k))
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    let trimmed = if raw.len() > 1 {
        raw.strip_suffix('/').unwrap_or(&raw)
    } else {
        &raw
    };
    PathBuf::from(trimmed)
}

/// `<state-root>/<slug>-<hash>` for a workspace root, as the plugin computes it.
pub fn plugin_state_dir(state_root: &Path, workspace: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    let base = workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = if base.is_empty() {
        "workspace".to_string()
    } else {
        base
    };
    let mut slug = String::new();
    let mut in_run = false;
    for c in base.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            slug.push(c);
            in_run = false;
        } else if !in_run {
            slug.push('-');
            in_run = true;
        }
    }
    let slug = slug.trim_matches('-');
    let slug = if slug.is_empty() { "workspace" } else { slug };
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    state_root.join(format!("{slug}-{hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_cwd_in_every_form() {
        let b = Path::new("/base");
        assert_eq!(
            companion_cwd(&os(&["task", "--cwd", "x", "hi"]), b),
            PathBuf::from("/base/x")
        );
        assert_eq!(
            companion_cwd(&os(&["task", "-C", "/abs", "hi"]), b),
            PathBuf::from("/abs")
        );
        assert_eq!(
            companion_cwd(&os(&["task", "--cwd=../y", "hi"]), b),
            PathBuf::from("/y")
        );
        assert_eq!(
            companion_cwd(&os(&["task", "hi", "--", "--cwd", "z"]), b),
            PathBuf::from("/base")
        );
        assert_eq!(
            companion_cwd(&os(&["task", "--cwd", "a", "--cwd", "b", "x"]), b),
            PathBuf::from("/base/b")
        );
        // One argument: the companion splits it itself.
        assert_eq!(
            companion_cwd(&os(&["task", "--cwd 'sp ace' hi"]), b),
            PathBuf::from("/base/sp ace")
        );
        assert_eq!(companion_cwd(&os(&["status"]), b), PathBuf::from("/base"));
    }

    #[test]
    fn splits_like_the_companion() {
        assert_eq!(
            split_like_companion(r#"--wait reply "a b" c\ d 'e\'f'"#),
            ["--wait", "reply", "a b", "c d", "e'f"]
        );
        assert_eq!(split_like_companion("  "), Vec::<String>::new());
        assert_eq!(split_like_companion("end\\"), ["end\\"]);
    }

    #[test]
    fn state_dir_matches_the_plugin_example() {
        // plugin-facts.md: workspace /tmp/real/ws gave ws-805b9dab23fefd31 (realpath hashed; a
        // path that does not exist is hashed as it is).
        let dir = plugin_state_dir(
            Path::new("/tmp/real/tmp/codex-companion"),
            Path::new("/tmp/real/ws"),
        );
        if !Path::new("/tmp/real/ws").exists() {
            assert_eq!(
                dir,
                PathBuf::from("/tmp/real/tmp/codex-companion/ws-805b9dab23fefd31")
            );
        }
    }

    #[test]
    fn slug_rules() {
        let d = plugin_state_dir(Path::new("/s"), Path::new("/x/My Repo!!(v2)"));
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("My-Repo-v2-"), "{name}");
        let d = plugin_state_dir(Path::new("/s"), Path::new("/x/***"));
        assert!(
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("workspace-")
        );
    }
}
