//! Claude Code's settings files, and codex-as's hooks in them.
//!
//! Install adds one hook entry per event, each in a matcher group of its own, so that uninstall
//! can remove exactly those (and the groups, event lists and `hooks` table that become empty) and
//! leave every other setting as it was. Ours are recognised by their command: a `codex-as`
//! program followed by `claude hook` (other tools, e.g. `codex-as doctor`, look for that string).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::sys::fsutil;

/// The events the hook handles, with the matcher of each group (SessionStart: every source).
pub const EVENTS: &[(&str, Option<&str>)] = &[
    ("SessionStart", Some("startup|resume|clear|compact")),
    ("CwdChanged", None),
    ("SessionEnd", None),
];
/// Seconds Claude Code waits for the hook: a cold broker start waits for codex app-server.
pub const TIMEOUT_SECS: u64 = 30;
/// What identifies our hook's command (with the program's path before it).
pub const HOOK_ARGS: &str = "claude hook";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid JSON ({message}): fix it first; codex-as will not rewrite a file it cannot read", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{} {what}: fix it first; codex-as will not rewrite a file it cannot read", .path.display())]
    Shape { path: PathBuf, what: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The user's settings: `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`.
pub fn user_path(home: &Path) -> PathBuf {
    match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("settings.json"),
        None => home.join(".claude").join("settings.json"),
    }
}

/// A project's local settings (not committed by Claude Code's own .gitignore advice).
pub fn project_path(project: &Path) -> PathBuf {
    project.join(".claude").join("settings.local.json")
}

/// The hook command for the codex-as at `exe`, quoted only when the path needs it.
pub fn hook_command(exe: &Path) -> String {
    let path = exe.to_string_lossy();
    format!(
        "{} {HOOK_ARGS}",
        crate::shell::quote::posix_if_needed(&path)
    )
}

/// Whether a hook command is codex-as's: its program is a `codex-as` and its arguments are
/// exactly `claude hook`.
pub fn is_ours(command: &str) -> bool {
    let Ok(words) = shell_words::split(command) else {
        return false;
    };
    matches!(words.as_slice(), [program, a, b]
        if Path::new(program).file_name().is_some_and(|n| n == "codex-as")
            && a == "claude" && b == "hook")
}

/// The settings file as JSON (`{}` when it does not exist).
pub fn load(path: &Path) -> Result<Value, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(json!({})),
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(SettingsError::Shape {
            path: path.to_path_buf(),
            what: "is not a JSON object".into(),
        });
    }
    Ok(value)
}

/// Writes the settings atomically, keeping the file's mode when it exists (0600 when new). A
/// settings file that is a symlink (dotfiles) is written where it points, and stays a link.
pub fn save(path: &Path, value: &Value) -> Result<(), SettingsError> {
    let target = std::fs::canonicalize(path).ok();
    let path = target.as_deref().unwrap_or(path);
    let err = |source| SettingsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir).map_err(err)?;
    }
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| err(std::io::Error::other(e)))?;
    text.push('\n');
    let mode = std::fs::metadata(path).ok().map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    fsutil::write_private_atomic(path, text.as_bytes()).map_err(err)?;
    if let Some(mode) = mode.filter(|m| *m != 0o600) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    Ok(())
}

fn shape(path: &Path, what: &str) -> SettingsError {
    SettingsError::Shape {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// The hook groups of one event, checked to be a list.
fn groups_mut<'a>(
    hooks: &'a mut Map<String, Value>,
    event: &str,
    path: &Path,
) -> Result<&'a mut Vec<Value>, SettingsError> {
    hooks
        .entry(event)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| shape(path, &format!("has hooks.{event} that is not a list")))
}

/// Our hook entries found in the settings: (event, command).
pub fn installed(settings: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(hooks) = settings.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for (event, groups) in hooks {
        for group in groups.as_array().into_iter().flatten() {
            for hook in group
                .get("hooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(cmd) = hook.get("command").and_then(Value::as_str)
                    && is_ours(cmd)
                {
                    out.push((event.clone(), cmd.to_string()));
                }
            }
        }
    }
    out
}

/// Adds our hooks; true when anything changed. An entry of ours with an older command (codex-as
/// moved) is replaced in place; an event that already has ours is left alone.
pub fn install(settings: &mut Value, command: &str, path: &Path) -> Result<bool, SettingsError> {
    let root = settings
        .as_object_mut()
        .ok_or_else(|| shape(path, "is not a JSON object"))?;
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| shape(path, "has a `hooks` that is not an object"))?;
    let mut changed = false;
    for (event, matcher) in EVENTS {
        let groups = groups_mut(hooks, event, path)?;
        let mut found = false;
        for group in groups.iter_mut() {
            for hook in group
                .get_mut("hooks")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let Some(cmd) = hook.get("command").and_then(Value::as_str) else {
                    continue;
                };
                if is_ours(cmd) {
                    found = true;
                    if cmd != command {
                        hook["command"] = json!(command);
                        changed = true;
                    }
                }
            }
        }
        if !found {
            let entry = json!({"type": "command", "command": command, "timeout": TIMEOUT_SECS});
            let group = match matcher {
                Some(m) => json!({"matcher": m, "hooks": [entry]}),
                None => json!({"hooks": [entry]}),
            };
            groups.push(group);
            changed = true;
        }
    }
    Ok(changed)
}

/// Removes our hooks, and each group, event list and `hooks` table left empty by that (only
/// those: an empty list the user wrote stays); true when anything changed.
pub fn uninstall(settings: &mut Value) -> bool {
    let Some(root) = settings.as_object_mut() else {
        return false;
    };
    let Some(hooks) = root.get_mut("hooks").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    let events: Vec<String> = hooks.keys().cloned().collect();
    for event in events {
        let Some(groups) = hooks.get_mut(&event).and_then(Value::as_array_mut) else {
            continue;
        };
        let before_groups = groups.len();
        groups.retain_mut(|group| {
            let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
                return true;
            };
            let before = list.len();
            list.retain(|h| {
                !h.get("command")
                    .and_then(Value::as_str)
                    .is_some_and(is_ours)
            });
            if list.len() == before {
                return true;
            }
            changed = true;
            !list.is_empty()
        });
        if groups.is_empty() && before_groups > 0 {
            hooks.remove(&event);
        }
    }
    if changed && hooks.is_empty() {
        root.remove("hooks");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "/usr/local/bin/codex-as claude hook";

    fn theirs() -> Value {
        json!({
            "model": "opus",
            "env": {"FOO": "1"},
            "hooks": {
                "SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}],
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint"}]}]
            },
            "permissions": {"allow": ["Bash(git:*)"]}
        })
    }

    #[test]
    fn install_twice_then_uninstall_gives_back_the_same_json() {
        for before in [theirs(), json!({}), json!({"hooks": {"Stop": []}})] {
            let mut s = before.clone();
            assert!(install(&mut s, CMD, Path::new("s")).unwrap());
            let once = s.clone();
            assert!(!install(&mut s, CMD, Path::new("s")).unwrap(), "idempotent");
            assert_eq!(s, once);
            let ours = installed(&s);
            assert_eq!(ours.len(), EVENTS.len(), "{ours:?}");
            assert!(uninstall(&mut s));
            assert_eq!(s, before);
            assert!(!uninstall(&mut s));
        }
    }

    #[test]
    fn a_moved_codex_as_is_updated_not_duplicated() {
        let mut s = theirs();
        install(&mut s, "/old/codex-as claude hook", Path::new("s")).unwrap();
        assert!(install(&mut s, CMD, Path::new("s")).unwrap());
        let ours = installed(&s);
        assert_eq!(ours.len(), EVENTS.len());
        assert!(ours.iter().all(|(_, c)| c == CMD), "{ours:?}");
    }

    #[test]
    fn recognises_only_our_command() {
        assert!(is_ours(CMD));
        assert!(is_ours("'/my dir/codex-as' claude hook"));
        assert!(!is_ours("codex-as claude hook --extra"));
        assert!(!is_ours("not-codex-as claude hook"));
        assert!(!is_ours("echo codex-as claude hook"));
        assert_eq!(
            hook_command(Path::new("/my dir/codex-as")),
            "'/my dir/codex-as' claude hook"
        );
        assert_eq!(
            hook_command(Path::new("/bin/codex-as")),
            "/bin/codex-as claude hook"
        );
    }

    #[test]
    fn a_symlinked_settings_file_stays_a_link() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("dotfiles.json");
        std::fs::write(&real, r#"{"model":"opus"}"#).unwrap();
        let link = d.path().join("settings.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut v = load(&link).unwrap();
        install(&mut v, CMD, &link).unwrap();
        save(&link, &v).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(installed(&load(&real).unwrap()).len(), EVENTS.len());
    }

    #[test]
    fn refuses_shapes_it_cannot_edit_safely() {
        let mut s = json!({"hooks": []});
        assert!(install(&mut s, CMD, Path::new("s")).is_err());
        let mut s = json!({"hooks": {"SessionStart": {}}});
        assert!(install(&mut s, CMD, Path::new("s")).is_err());
    }
}
