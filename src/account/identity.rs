//! Who a Codex home is, as far as codex-as may tell: its canonical path, how it is logged in, and a
//! fingerprint of its credentials file that changes when the login changes but reveals nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::account::env::CODEX_HOME;
use crate::account::login_state::{self, LoginState};

/// `"sha256:"` + the first 16 hex digits of SHA-256 over `HOME/auth.json`'s bytes; None when the
/// file cannot be read. 64 bits tell two logins apart without letting anyone test a guessed key
/// against a cheap full hash.
pub fn auth_fingerprint(home: &Path) -> Option<String> {
    let bytes = std::fs::read(home.join("auth.json")).ok()?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("sha256:{hex}"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthIdentity {
    pub method: LoginState,
    pub fingerprint: Option<String>,
}

/// The account a process with this environment acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Canonical (symlinks resolved) when the folder exists.
    pub codex_home: PathBuf,
    pub auth: AuthIdentity,
}

impl Identity {
    pub fn of_home(home: &Path) -> Identity {
        let codex_home = crate::sys::fsutil::canonical(home);
        Identity {
            auth: AuthIdentity {
                method: login_state::read(&codex_home),
                fingerprint: auth_fingerprint(&codex_home),
            },
            codex_home,
        }
    }
}

/// The home Codex uses in this process's environment: `$CODEX_HOME` when set and non-empty, else
/// `~/.codex` (as Codex itself decides). None only when there is no home folder at all.
pub fn codex_home_from_env() -> Option<PathBuf> {
    match std::env::var_os(CODEX_HOME).filter(|v| !v.is_empty()) {
        Some(h) => Some(std::path::absolute(&h).unwrap_or_else(|_| PathBuf::from(h))),
        None => crate::account::config::home_dir()
            .ok()
            .map(|h| h.join(".codex")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_short_stable_and_secret_free() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(auth_fingerprint(d.path()), None);
        let auth = r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-secret"}"#;
        std::fs::write(d.path().join("auth.json"), auth).unwrap();
        let fp = auth_fingerprint(d.path()).unwrap();
        assert!(fp.starts_with("sha256:") && fp.len() == 7 + 16, "{fp}");
        assert!(!fp.contains("secret"));
        assert_eq!(auth_fingerprint(d.path()), Some(fp.clone()));
        std::fs::write(d.path().join("auth.json"), auth.replace("secret", "other")).unwrap();
        assert_ne!(auth_fingerprint(d.path()), Some(fp));
    }

    #[test]
    fn identity_serializes_as_the_status_expects() {
        let d = tempfile::tempdir().unwrap();
        let id = Identity::of_home(d.path());
        let v = serde_json::to_value(&id).unwrap();
        assert_eq!(v["auth"]["method"], "logged-out");
        assert_eq!(v["auth"]["fingerprint"], serde_json::Value::Null);
        assert_eq!(
            v["codexHome"].as_str().unwrap(),
            std::fs::canonicalize(d.path()).unwrap().to_str().unwrap()
        );
    }
}
