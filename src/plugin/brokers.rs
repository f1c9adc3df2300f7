//! The plugin's own brokers (broker.json in its state folders), seen read-only: codex-as lists
//! them but never stops, reuses or writes them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sys::fsutil;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BrokerJson {
    endpoint: String,
    pid: Option<u32>,
    /// Present in brokers of the patched plugin (PR #369); "" means the default account.
    codex_home: Option<String>,
}

#[derive(Debug)]
pub struct PluginBroker {
    /// `<slug>-<hash>`: which workspace it belongs to.
    pub state_dir: PathBuf,
    pub endpoint: String,
    pub pid: Option<u32>,
    pub alive: bool,
    /// The home it serves, when provable: the patched file's field, or its process environment.
    pub codex_home: Option<PathBuf>,
    /// How the home was known ("broker.json", "process environment"), or why not.
    pub home_source: String,
    pub age_seconds: Option<u64>,
    /// Set when the file must not be trusted (owned by another user, writable by others).
    pub refused: Option<String>,
}

/// Every broker.json under the plugin's state root.
pub fn scan(state_root: &Path, default_home: &Path) -> Vec<PluginBroker> {
    let Ok(entries) = std::fs::read_dir(state_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file = entry.path().join("broker.json");
        let Ok(meta) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        let age_seconds = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .map(|d| d.as_secs());
        let refused = fsutil::untrusted_reason(&meta).or_else(|| {
            std::fs::symlink_metadata(entry.path())
                .ok()
                .and_then(|m| fsutil::untrusted_reason(&m))
        });
        let parsed = if refused.is_none() {
            std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<BrokerJson>(&b).ok())
        } else {
            None
        };
        let Some(b) = parsed else {
            out.push(PluginBroker {
                state_dir: entry.path(),
                endpoint: String::new(),
                pid: None,
                alive: false,
                codex_home: None,
                home_source: "unreadable".into(),
                age_seconds,
                refused: refused.or_else(|| Some("not a valid broker.json".into())),
            });
            continue;
        };
        let alive = b.pid.is_some_and(pid_alive);
        let (codex_home, home_source) = match (&b.codex_home, b.pid) {
            (Some(h), _) if h.is_empty() => {
                (Some(default_home.to_path_buf()), "broker.json".into())
            }
            (Some(h), _) => (Some(PathBuf::from(h)), "broker.json".into()),
            (None, Some(pid)) if alive => match home_from_process(pid, default_home) {
                Some(h) => (Some(h), "process environment".into()),
                None => (None, "unknown (legacy broker.json)".into()),
            },
            _ => (None, "unknown (legacy broker.json)".into()),
        };
        out.push(PluginBroker {
            state_dir: entry.path(),
            endpoint: b.endpoint,
            pid: b.pid,
            alive,
            codex_home: codex_home.map(|h| fsutil::canonical(&h)),
            home_source,
            age_seconds,
            refused: None,
        });
    }
    out
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// CODEX_HOME from `/proc/PID/environ` (Linux; same user only, as the kernel enforces).
fn home_from_process(pid: u32, default_home: &Path) -> Option<PathBuf> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let home = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"CODEX_HOME="))
        .filter(|v| !v.is_empty());
    Some(match home {
        Some(h) => PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(h)),
        None => default_home.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_patched_and_legacy_files_and_refuses_writable_ones() {
        let d = tempfile::tempdir().unwrap();
        let mk = |name: &str, body: &str| {
            let dir = d.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("broker.json"), body).unwrap();
            dir
        };
        mk(
            "a-1",
            r#"{"endpoint":"unix:/x","pid":999999999,"codexHome":"/h/a"}"#,
        );
        mk(
            "b-2",
            r#"{"endpoint":"unix:/y","pid":999999999,"codexHome":""}"#,
        );
        mk(
            "c-3",
            &format!(r#"{{"endpoint":"unix:/z","pid":{}}}"#, std::process::id()),
        );
        let bad = mk("d-4", r#"{"endpoint":"unix:/w","pid":1}"#);
        std::fs::set_permissions(
            bad.join("broker.json"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        mk("e-5", "{trunc");
        let mut found = scan(d.path(), Path::new("/def"));
        found.sort_by(|a, b| a.state_dir.cmp(&b.state_dir));
        assert_eq!(found[0].codex_home, Some(PathBuf::from("/h/a")));
        assert!(!found[0].alive);
        assert_eq!(
            found[1].codex_home,
            Some(PathBuf::from("/def")),
            "\"\" is the default account"
        );
        assert!(found[2].alive);
        assert_eq!(found[2].home_source, "process environment");
        assert!(found[3].refused.as_deref().unwrap().contains("writable"));
        assert!(found[4].refused.is_some());
    }
}
