//! Every folder the plugin may keep its state in for this user. A companion started from this
//! shell uses `$CLAUDE_PLUGIN_DATA/state` or `$TMPDIR/codex-companion`, but inside a Claude Code
//! session the plugin's SessionStart points it at Claude Code's data folder for the plugin, so
//! brokers started by a session are only found by looking there too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::workspace;
use crate::sys::fsutil;

/// Claude Code names a plugin's data folder after its id (`codex@openai-codex`,
/// `codex@inline` for `--plugin-dir`) with every character outside `[a-zA-Z0-9_-]` made `-`.
const DATA_PREFIX: &str = "codex-";

/// Where a state root comes from. Its `--json` shape is a stable interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum Origin {
    /// What this shell's environment picks (CLAUDE_PLUGIN_DATA, else the temporary folder).
    Environment,
    /// `<Claude Code's plugins folder>/data/<plugin data>/state`.
    #[serde(rename_all = "camelCase")]
    ClaudeCode { plugin_data: String },
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Environment => "this shell's environment".into(),
            Origin::ClaudeCode { plugin_data } => {
                format!("Claude Code's data folder of plugin {plugin_data}")
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StateRoot {
    pub path: PathBuf,
    #[serde(flatten)]
    pub origin: Origin,
    /// Set when the folder must not be trusted: nothing under it is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The environment's root first, then Claude Code's codex data folders by name.
pub fn all(home: &Path) -> Vec<StateRoot> {
    all_in(&|k| std::env::var(k).ok(), home)
}

/// [`all`] with the environment read through `var`.
pub fn all_in(var: &dyn Fn(&str) -> Option<String>, home: &Path) -> Vec<StateRoot> {
    let env_root = workspace::plugin_state_root_in(var);
    let mut out = vec![StateRoot {
        refused: std::fs::symlink_metadata(&env_root)
            .ok()
            .and_then(|m| refusal(&m)),
        path: env_root,
        origin: Origin::Environment,
    }];
    let data = claude_plugins_dir(var, home).join("data");
    let parent_refused = match std::fs::symlink_metadata(&data) {
        Ok(m) => refusal(&m).map(|r| format!("{}: {r}", data.display())),
        Err(_) => return out,
    };
    let Ok(entries) = std::fs::read_dir(&data) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(DATA_PREFIX))
        .collect();
    names.sort();
    let seen: Vec<PathBuf> = out.iter().map(|r| fsutil::canonical(&r.path)).collect();
    for name in names {
        let folder = data.join(&name);
        let state = folder.join("state");
        let Ok(state_meta) = std::fs::symlink_metadata(&state) else {
            continue;
        };
        if seen.contains(&fsutil::canonical(&state)) {
            continue;
        }
        let refused = parent_refused
            .clone()
            .or_else(|| {
                std::fs::symlink_metadata(&folder)
                    .ok()
                    .and_then(|m| refusal(&m))
                    .map(|r| format!("{}: {r}", folder.display()))
            })
            .or_else(|| refusal(&state_meta));
        out.push(StateRoot {
            path: state,
            origin: Origin::ClaudeCode { plugin_data: name },
            refused,
        });
    }
    out
}

/// The data folder Claude Code keeps for the Codex plugin it has installed
/// (`codex@openai-codex` has `data/codex-openai-codex`), for a companion started from a shell:
/// with `CLAUDE_PLUGIN_DATA` set to it, as the plugin's SessionStart sets it in a session, the
/// shell's jobs and the sessions' are one list. None when this environment already names a
/// data folder (inside a session), when no Codex plugin is installed, or when Claude Code has
/// not made its folder yet or it cannot be trusted: then the companion keeps its state where
/// it always did.
pub fn installed_plugin_data(home: &Path) -> Option<PathBuf> {
    installed_plugin_data_in(&|k| std::env::var(k).ok(), home)
}

/// [`installed_plugin_data`] with the environment read through `var`.
pub fn installed_plugin_data_in(
    var: &dyn Fn(&str) -> Option<String>,
    home: &Path,
) -> Option<PathBuf> {
    if var(workspace::PLUGIN_DATA_ENV).is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let plugins = claude_plugins_dir(var, home);
    let text = std::fs::read_to_string(plugins.join("installed_plugins.json")).ok()?;
    let registry: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut ids: Vec<&String> = registry
        .get("plugins")?
        .as_object()?
        .keys()
        .filter(|id| id.starts_with("codex@"))
        .collect();
    // The official marketplace's first, then by name: the same choice every time.
    ids.sort_by_key(|id| (id.as_str() != "codex@openai-codex", *id));
    let data = plugins.join("data");
    if std::fs::symlink_metadata(&data)
        .ok()
        .and_then(|m| refusal(&m))
        .is_some()
    {
        return None;
    }
    ids.into_iter()
        .map(|id| data.join(data_name(id)))
        .find(|folder| {
            std::fs::symlink_metadata(folder)
                .ok()
                .is_some_and(|m| refusal(&m).is_none())
        })
}

/// The folder name Claude Code gives a plugin's data: its id with every character outside
/// `[a-zA-Z0-9_-]` made `-`.
fn data_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Claude Code's plugins folder: CLAUDE_CODE_PLUGIN_CACHE_DIR, else `plugins` in its config
/// folder (CLAUDE_CONFIG_DIR, else ~/.claude).
fn claude_plugins_dir(var: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    if let Some(d) = var("CLAUDE_CODE_PLUGIN_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    var("CLAUDE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".claude"))
        .join("plugins")
}

/// Why a state folder must not be trusted: another user's, writable by others, or not a folder
/// (a symlink could lead anywhere).
fn refusal(meta: &std::fs::Metadata) -> Option<String> {
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link, not a folder".into());
    }
    if !meta.is_dir() {
        return Some(format!(
            "it is not a folder (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    fsutil::untrusted_reason(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_shell_uses_the_installed_plugins_data_folder_once_claude_code_made_it() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cfg");
        let plugins = cfg.join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let data_var = std::cell::RefCell::new(None::<String>);
        let env = |k: &str| match k {
            "CLAUDE_CONFIG_DIR" => Some(cfg.display().to_string()),
            "CLAUDE_PLUGIN_DATA" => data_var.borrow().clone(),
            _ => None,
        };
        let found = || installed_plugin_data_in(&env, Path::new("/nohome"));
        assert_eq!(found(), None, "nothing installed");
        std::fs::write(
            plugins.join("installed_plugins.json"),
            r#"{"version":2,"plugins":{"other@x":[],"codex@openai-codex":[{"installPath":"/p"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            found(),
            None,
            "installed, no session has made its folder yet"
        );
        let folder = plugins.join("data/codex-openai-codex");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(found(), Some(folder.clone()));
        *data_var.borrow_mut() = Some("/in/a/session".into());
        assert_eq!(
            found(),
            None,
            "a session's own data folder is left as it is"
        );
        *data_var.borrow_mut() = None;
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(found(), None, "open to everyone: not trusted");
        assert_eq!(data_name("codex@my.market"), "codex-my-market");
    }

    #[test]
    fn finds_every_codex_data_folder_and_refuses_loose_ones() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cfg");
        let mk = |name: &str, mode: u32| {
            let s = cfg.join("plugins/data").join(name).join("state");
            std::fs::create_dir_all(&s).unwrap();
            std::fs::set_permissions(&s, std::fs::Permissions::from_mode(mode)).unwrap();
            s
        };
        let inline = mk("codex-inline", 0o755);
        let market = mk("codex-openai-codex", 0o700);
        let loose = mk("codex-loose", 0o777);
        mk("other-plugin", 0o700);
        std::fs::create_dir_all(cfg.join("plugins/data/codex-nostate")).unwrap();
        std::os::unix::fs::symlink(
            market.parent().unwrap(),
            cfg.join("plugins/data/codex-link"),
        )
        .unwrap();
        let tmp = d.path().join("tmp");
        let env = |k: &str| match k {
            "CLAUDE_CONFIG_DIR" => Some(cfg.display().to_string()),
            "TMPDIR" => Some(tmp.display().to_string()),
            _ => None,
        };
        let roots = all_in(&env, Path::new("/nohome"));
        let found: Vec<(&Path, &Origin, bool)> = roots
            .iter()
            .map(|r| (r.path.as_path(), &r.origin, r.refused.is_some()))
            .collect();
        let cc = |n: &str| Origin::ClaudeCode {
            plugin_data: n.into(),
        };
        let tmp_root = tmp.join("codex-companion");
        let link_state = cfg.join("plugins/data/codex-link/state");
        assert_eq!(
            found,
            vec![
                (tmp_root.as_path(), &Origin::Environment, false),
                (inline.as_path(), &cc("codex-inline"), false),
                (link_state.as_path(), &cc("codex-link"), true),
                (loose.as_path(), &cc("codex-loose"), true),
                (market.as_path(), &cc("codex-openai-codex"), false),
            ]
        );
        assert!(
            roots[2]
                .refused
                .as_deref()
                .unwrap()
                .contains("symbolic link")
        );
        assert!(
            roots[3]
                .refused
                .as_deref()
                .unwrap()
                .contains("writable by others")
        );

        // Inside a session the environment's root is one of them: listed once.
        let in_session = |k: &str| match k {
            "CLAUDE_PLUGIN_DATA" => {
                Some(cfg.join("plugins/data/codex-inline").display().to_string())
            }
            other => env(other),
        };
        let roots = all_in(&in_session, Path::new("/nohome"));
        assert_eq!(roots[0].path, inline);
        assert_eq!(roots.iter().filter(|r| r.path == inline).count(), 1);
        assert_eq!(roots.len(), 4);

        // A loose data folder: every codex folder in it is refused.
        std::fs::set_permissions(
            cfg.join("plugins/data"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let roots = all_in(&env, Path::new("/nohome"));
        assert!(roots[1..].iter().all(|r| r.refused.is_some()), "{roots:?}");
    }

    #[test]
    fn plugins_folder_follows_claude_codes_variables() {
        let none = |_: &str| None;
        assert_eq!(
            claude_plugins_dir(&none, Path::new("/h")),
            PathBuf::from("/h/.claude/plugins")
        );
        let cfg = |k: &str| (k == "CLAUDE_CONFIG_DIR").then(|| "/c".to_string());
        assert_eq!(
            claude_plugins_dir(&cfg, Path::new("/h")),
            PathBuf::from("/c/plugins")
        );
        let cache = |k: &str| match k {
            "CLAUDE_CODE_PLUGIN_CACHE_DIR" => Some("/p".to_string()),
            _ => Some("/c".to_string()),
        };
        assert_eq!(
            claude_plugins_dir(&cache, Path::new("/h")),
            PathBuf::from("/p")
        );
    }
}
