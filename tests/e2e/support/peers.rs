//! The real things tests can run against, and how a test finds them.
//!
//! - `CODEX_AS_PEERS_DIR`: a folder of unmodified plugin checkouts named
//!   `codex-plugin-cc-VERSION` (CI: `../shared/peers`; relative paths are taken from the
//!   repository root). Every real-plugin scenario runs against [`CURRENT`]; the scenarios whose
//!   outcome depends on code that changed between versions run against each of [`VERSIONS`].
//! - `CODEX_AS_PLUGIN_VERSIONS`: a comma-separated subset of [`VERSIONS`] for the matrix (to
//!   iterate on one version); unset means all of them.
//! - `CODEX_PLUGIN_CC_DIR`: one checkout of openai/codex-plugin-cc, used as the current plugin
//!   (it wins over the peers folder's `CURRENT`).
//! - `CODEX_AS_REAL_CODEX`: one or more real Codex CLIs, `:`-separated; every real-codex check
//!   runs against each.
//!
//! Whatever is missing is a visible skip (a failure with CODEX_AS_STRICT=1).

use std::path::{Path, PathBuf};

use crate::skip;

use super::sandbox::fixtures;

/// The plugin release real-plugin scenarios always run against.
pub const CURRENT: &str = "1.0.5";

/// Every plugin version the version matrix covers: each release since 1.0.1, and PR #369's
/// patched plugin (its broker reports broker/status and codexHome, and shuts down ifIdle).
pub const VERSIONS: &[&str] = &["1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5", "pr369"];

/// A plugin under test: its version label ("fixture" for tests/fixtures/plugin) and its root
/// (the folder holding scripts/).
#[derive(Clone, Debug)]
pub struct Plugin {
    pub version: String,
    pub root: PathBuf,
}

impl Plugin {
    /// PR #369's patched plugin rather than a release.
    pub fn is_patched(&self) -> bool {
        self.version == "pr369"
    }

    /// 1.0.1 and 1.0.2 check the login by running `codex login status` in the account's home
    /// before every task (later versions ask the app-server's `account/read`): accounts that run
    /// tasks must be logged in for them, and the check leaves no trace in the app-server's log.
    pub fn checks_login_with_cli(&self) -> bool {
        matches!(self.version.as_str(), "1.0.1" | "1.0.2")
    }
}

fn plugin_root(checkout: &Path) -> Option<PathBuf> {
    let root = checkout.join("plugins/codex");
    root.join("scripts/codex-companion.mjs")
        .is_file()
        .then_some(root)
}

fn peers_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CODEX_AS_PEERS_DIR").filter(|v| !v.is_empty())?;
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
}

fn peer(version: &str) -> Option<Plugin> {
    let root = plugin_root(&peers_dir()?.join(format!("codex-plugin-cc-{version}")))?;
    Some(Plugin {
        version: version.to_owned(),
        root,
    })
}

/// The current real plugin, or a skip naming what to set.
pub fn current_plugin() -> Option<Plugin> {
    if let Some(dir) = std::env::var_os("CODEX_PLUGIN_CC_DIR").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        if let Some(root) = plugin_root(&dir) {
            return Some(Plugin {
                version: format!("{CURRENT} ({})", dir.display()),
                root,
            });
        }
        // Set but wrong is a mistake to fix, not something absent to skip.
        panic!(
            "CODEX_PLUGIN_CC_DIR={} is not a checkout of openai/codex-plugin-cc (no plugins/codex/scripts/codex-companion.mjs)",
            dir.display()
        );
    }
    if peers_dir().is_none() {
        skip!(
            "no real plugin: set CODEX_AS_PEERS_DIR (CI: ../shared/peers) or CODEX_PLUGIN_CC_DIR to a checkout of openai/codex-plugin-cc; the run against the real plugin {CURRENT} did not happen"
        );
        return None;
    }
    let found = peer(CURRENT);
    if found.is_none() {
        skip!(
            "CODEX_AS_PEERS_DIR has no codex-plugin-cc-{CURRENT}/plugins/codex; the run against the real plugin {CURRENT} did not happen"
        );
    }
    found
}

/// Every version of the matrix that is present; a skip for each one that is not.
pub fn plugin_versions() -> Vec<Plugin> {
    let mut out = Vec::new();
    if peers_dir().is_none() {
        skip!(
            "no real plugins: set CODEX_AS_PEERS_DIR (CI: ../shared/peers); the runs against plugin versions {} did not happen",
            VERSIONS.join(", ")
        );
        return out;
    }
    let chosen = std::env::var("CODEX_AS_PLUGIN_VERSIONS").unwrap_or_default();
    let chosen: Vec<&str> = chosen
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    for v in VERSIONS
        .iter()
        .filter(|v| chosen.is_empty() || chosen.contains(v))
    {
        match peer(v) {
            Some(p) => out.push(p),
            None => skip!(
                "CODEX_AS_PEERS_DIR has no codex-plugin-cc-{v}/plugins/codex; the run against plugin {v} did not happen"
            ),
        }
    }
    out
}

/// Whether node is installed; a skip otherwise.
pub fn have_node() -> bool {
    super::proc::have("node")
}

fn fixture_plugin() -> Plugin {
    let root = fixtures().join("plugin");
    assert!(
        root.join("scripts/codex-companion.mjs").is_file(),
        "the plugin fixture is missing from tests/fixtures/plugin"
    );
    Plugin {
        version: "fixture".to_owned(),
        root,
    }
}

/// Runs `test` against the fixture plugin and the current real plugin (nothing without node).
pub fn for_each_plugin(mut test: impl FnMut(&Plugin)) {
    if !have_node() {
        return;
    }
    eprintln!("-- against the fixture");
    test(&fixture_plugin());
    if let Some(real) = current_plugin() {
        eprintln!("-- against the real plugin {}", real.version);
        test(&real);
    }
}

/// Runs `test` against the fixture plugin and every version of the matrix: for scenarios whose
/// outcome depends on plugin code that changed between versions.
pub fn for_each_plugin_version(mut test: impl FnMut(&Plugin)) {
    if !have_node() {
        return;
    }
    eprintln!("-- against the fixture");
    test(&fixture_plugin());
    for real in plugin_versions() {
        eprintln!("-- against the real plugin {}", real.version);
        test(&real);
    }
}

/// The real Codex CLIs named by CODEX_AS_REAL_CODEX (`:`-separated), or a skip.
pub fn real_codexes() -> Vec<PathBuf> {
    let list = std::env::var_os("CODEX_AS_REAL_CODEX").unwrap_or_default();
    let all: Vec<PathBuf> = std::env::split_paths(&list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let found: Vec<PathBuf> = all.iter().filter(|p| p.is_file()).cloned().collect();
    for missing in all.iter().filter(|p| !p.is_file()) {
        skip!(
            "CODEX_AS_REAL_CODEX names {}, which is not a file; its real-codex run skipped",
            missing.display()
        );
    }
    if all.is_empty() {
        skip!(
            "CODEX_AS_REAL_CODEX is not set to the real codex CLI (npm @openai/codex; several may be given, :-separated); real-codex check did not run"
        );
    }
    found
}
