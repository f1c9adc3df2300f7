//! How an account is logged in, read from its home without ever exposing a secret.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginState {
    /// `auth.json` holds an API key.
    ApiKey,
    /// `auth.json` holds ChatGPT tokens.
    Chatgpt,
    /// No `auth.json`, but `cli_auth_credentials_store` keeps credentials in the OS keyring,
    /// where codex-as does not look: the file cannot tell whether this account is logged in.
    Keyring,
    /// No credentials.
    LoggedOut,
    /// Logged in another way (agent identity, personal access token, host-provided).
    Other,
    /// `auth.json` exists but is not in a format codex-as knows.
    Unknown,
}

impl LoginState {
    pub fn describe(self) -> &'static str {
        match self {
            LoginState::ApiKey => "api key",
            LoginState::Chatgpt => "chatgpt",
            LoginState::Keyring => "keyring (not checked)",
            LoginState::LoggedOut => "not logged in",
            LoginState::Other => "other",
            LoginState::Unknown => "unknown",
        }
    }

    pub fn is_logged_in(self) -> bool {
        matches!(
            self,
            LoginState::ApiKey | LoginState::Chatgpt | LoginState::Other
        )
    }
}

/// Reads `HOME/auth.json` (and `config.toml` when there is none). Only the shape of the file is
/// looked at; no value is kept or returned.
pub fn read(home: &Path) -> LoginState {
    match std::fs::read(home.join("auth.json")) {
        Ok(bytes) => from_auth_json(&bytes),
        Err(_) if uses_keyring(home) => LoginState::Keyring,
        Err(_) => LoginState::LoggedOut,
    }
}

fn from_auth_json(bytes: &[u8]) -> LoginState {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(bytes) else {
        return LoginState::Unknown;
    };
    let has = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
    match map.get("auth_mode").and_then(|v| v.as_str()) {
        // Values of codex's AuthMode as written to disk.
        Some("apikey") | Some("bedrockApiKey") => return LoginState::ApiKey,
        Some(m) if m.starts_with("chatgpt") => return LoginState::Chatgpt,
        Some("agentIdentity") | Some("personalAccessToken") | Some("hostProvided") => {
            return LoginState::Other;
        }
        _ => {}
    }
    if has("tokens") {
        LoginState::Chatgpt
    } else if has("OPENAI_API_KEY") {
        LoginState::ApiKey
    } else {
        LoginState::LoggedOut
    }
}

fn uses_keyring(home: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(home.join("config.toml")) else {
        return false;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    matches!(
        table
            .get("cli_auth_credentials_store")
            .and_then(|v| v.as_str()),
        Some("keyring") | Some("auto")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(auth: Option<&str>, config: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        if let Some(a) = auth {
            std::fs::write(d.path().join("auth.json"), a).unwrap();
        }
        if let Some(c) = config {
            std::fs::write(d.path().join("config.toml"), c).unwrap();
        }
        d
    }

    #[test]
    fn tells_each_kind_of_login() {
        let cases = [
            (
                Some(r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-x"}"#),
                None,
                LoginState::ApiKey,
            ),
            (
                Some(r#"{"OPENAI_API_KEY":"sk-x","tokens":null}"#),
                None,
                LoginState::ApiKey,
            ),
            (
                Some(r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"x"}}"#),
                None,
                LoginState::Chatgpt,
            ),
            (
                Some(r#"{"auth_mode":"chatgpt"}"#),
                None,
                LoginState::Chatgpt,
            ),
            (Some("not json"), None, LoginState::Unknown),
            (
                None,
                Some("cli_auth_credentials_store = \"keyring\"\n"),
                LoginState::Keyring,
            ),
            (
                None,
                Some("cli_auth_credentials_store = \"file\"\n"),
                LoginState::LoggedOut,
            ),
            (None, None, LoginState::LoggedOut),
        ];
        for (auth, config, want) in cases {
            let d = home_with(auth, config);
            assert_eq!(read(d.path()), want, "{auth:?} {config:?}");
        }
    }
}
