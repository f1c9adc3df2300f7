//! Finding the Codex plugin for Claude Code: the folder holding `scripts/codex-companion.mjs`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::account::config::{self, Config};

pub const COMPANION: &str = "scripts/codex-companion.mjs";

pub const ROOT_ENV: &str = "CODEX_AS_PLUGIN_ROOT";
const CLAUDE_ROOT_ENV: &str = "CLAUDE_PLUGIN_ROOT";
const PLUGIN_ID: &str = "codex@openai-codex";

#[derive(Debug, thiserror::Error)]
#[error(
    "the Codex plugin for Claude Code was not found (searched: {}); install it in Claude Code (`/plugin install codex@openai-codex`) or pass --plugin-root DIR / set {ROOT_ENV}",
    .searched.join("; ")
)]
pub struct NotFound {
    pub searched: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{} is not the Codex plugin: it has no {COMPANION} (from {from})", .root.display())]
pub struct NotAPlugin {
    pub root: PathBuf,
    pub from: String,
}

/// A plugin root and how it was found (for messages).
#[derive(Debug, Clone)]
pub struct Plugin {
    pub root: PathBuf,
}

impl Plugin {
    pub fn companion(&self) -> PathBuf {
        self.root.join(COMPANION)
    }
}

/// Looks in order: `--plugin-root`, `$CODEX_AS_PLUGIN_ROOT`, `$CLAUDE_PLUGIN_ROOT`, the config
/// file, then Claude Code's install records (newest version first). An explicit choice that is
/// not a plugin is an error rather than a reason to look elsewhere.
pub fn locate(explicit: Option<&Path>, config: &Config, home: &Path) -> anyhow::Result<Plugin> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let chosen = [
        (explicit.map(Path::to_path_buf), "--plugin-root"),
        (env(ROOT_ENV), ROOT_ENV),
        (env(CLAUDE_ROOT_ENV), CLAUDE_ROOT_ENV),
        (
            config
                .plugin
                .root
                .as_deref()
                .map(|r| config::expand_tilde(r, home)),
            "the config's plugin.root",
        ),
    ];
    for (root, from) in chosen {
        if let Some(root) = root {
            if root.join(COMPANION).is_file() {
                return Ok(Plugin { root });
            }
            return Err(NotAPlugin {
                root,
                from: from.to_string(),
            }
            .into());
        }
    }
    let plugins_dir = env("CLAUDE_CONFIG_DIR")
        .unwrap_or_else(|| home.join(".claude"))
        .join("plugins");
    let mut searched = vec![format!(
        "--plugin-root, {ROOT_ENV}, {CLAUDE_ROOT_ENV}, plugin.root in the config"
    )];
    let candidates = installed(&plugins_dir);
    searched.push(format!("{}", plugins_dir.display()));
    candidates
        .into_iter()
        .find(|root| root.join(COMPANION).is_file())
        .map(|root| Plugin { root })
        .ok_or_else(|| NotFound { searched }.into())
}

/// Claude Code's `installed_plugins.json`.
#[derive(Deserialize)]
struct InstalledPlugins {
    #[serde(default)]
    plugins: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Install {
    install_path: Option<PathBuf>,
    version: Option<String>,
}

/// Plugin roots that Claude Code installed, best first: the registry's entries and the versioned
/// cache copies by version (newest first), then the marketplace checkout.
fn installed(plugins_dir: &Path) -> Vec<PathBuf> {
    let mut versioned: Vec<(Vec<u64>, PathBuf)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(plugins_dir.join("installed_plugins.json"))
        && let Ok(reg) = serde_json::from_str::<InstalledPlugins>(&text)
        && let Some(entries) = reg.plugins.get(PLUGIN_ID)
    {
        // Version 1 of the registry held one object, version 2 a list.
        let list = match entries {
            serde_json::Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for e in list {
            if let Ok(Install {
                install_path: Some(p),
                version,
            }) = serde_json::from_value::<Install>(e)
            {
                versioned.push((parse_version(version.as_deref().unwrap_or("")), p));
            }
        }
    }
    if let Ok(markets) = std::fs::read_dir(plugins_dir.join("cache")) {
        for market in markets.flatten() {
            if let Ok(versions) = std::fs::read_dir(market.path().join("codex")) {
                for v in versions.flatten() {
                    let name = v.file_name().to_string_lossy().into_owned();
                    versioned.push((parse_version(&name), v.path()));
                }
            }
        }
    }
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    let mut out: Vec<PathBuf> = versioned.into_iter().map(|(_, p)| p).collect();
    out.push(plugins_dir.join("marketplaces/openai-codex/plugins/codex"));
    out
}

/// "1.0.10" sorts after "1.0.9"; anything unparsable sorts first.
fn parse_version(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map_while(|p| p.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_at(p: &Path) {
        std::fs::create_dir_all(p.join("scripts")).unwrap();
        std::fs::write(p.join(COMPANION), "").unwrap();
    }

    #[test]
    fn newest_cached_version_wins() {
        let d = tempfile::tempdir().unwrap();
        let plugins = d.path().join("plugins");
        for v in ["1.0.9", "1.0.10", "1.0.2"] {
            plugin_at(&plugins.join(format!("cache/openai-codex/codex/{v}")));
        }
        let found = installed(&plugins);
        assert!(found[0].ends_with("1.0.10"), "{found:?}");
        assert!(
            found
                .last()
                .unwrap()
                .ends_with("marketplaces/openai-codex/plugins/codex")
        );
    }

    #[test]
    fn registry_entries_are_read_in_both_formats() {
        let d = tempfile::tempdir().unwrap();
        let plugins = d.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let root = d.path().join("somewhere");
        let reg = format!(
            r#"{{"version":2,"plugins":{{"codex@openai-codex":[{{"installPath":"{}","version":"1.0.5"}}]}}}}"#,
            root.display()
        );
        std::fs::write(plugins.join("installed_plugins.json"), reg).unwrap();
        assert_eq!(installed(&plugins)[0], root);
        let reg1 = format!(
            r#"{{"plugins":{{"codex@openai-codex":{{"installPath":"{}"}}}}}}"#,
            root.display()
        );
        std::fs::write(plugins.join("installed_plugins.json"), reg1).unwrap();
        assert_eq!(installed(&plugins)[0], root);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.0.10") > parse_version("1.0.9"));
        assert!(parse_version("2") > parse_version("1.9.9"));
    }
}
