//! Independent oracles: what codex-as and the plugin must compute, worked out here from the
//! written facts (plugin-facts.md), never by calling into src/.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The plugin's state folder for a workspace: `<root>/<slug>-<first 16 hex of sha256(canonical
/// workspace)>`, the slug being the folder name with each run of other characters made one `-`.
pub fn plugin_state_dir(state_root: &Path, workspace: &Path) -> PathBuf {
    let base = workspace.file_name().unwrap().to_string_lossy();
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
    let canonical = std::fs::canonicalize(workspace).unwrap();
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    state_root.join(format!("{slug}-{}", &hash[..16]))
}

/// codex-as's broker key: the first 8 bytes of sha256("account" NUL home), in hex (one broker
/// per account, whatever the workspace).
pub fn broker_key(home: &Path) -> String {
    let mut h = Sha256::new();
    h.update(b"account\0");
    h.update(home.as_os_str().as_encoded_bytes());
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
