//! The environment a program gets when it runs as an account.

use std::ffi::OsString;
use std::process::Command;

use crate::account::spec::AccountSpec;
use crate::account::{Account, DEFAULT};

pub const CODEX_HOME: &str = "CODEX_HOME";
/// Marker for the account a process runs as (like aws-vault's AWS_VAULT).
pub const ACCOUNT_MARKER: &str = "CODEX_AS_ACCOUNT";

/// Inherited variables that would make Codex act as another identity, send it to another
/// account's backend or broker, or keep per-account state outside CODEX_HOME. They are dropped
/// unless the account's `pass_env` keeps them. Read from codex-rs and the plugin's companion.
pub const IDENTITY_VARS: &[&str] = &[
    // Credentials Codex uses in place of the home's auth.json (login/src/auth/manager.rs,
    // auth/workload_identity.rs). OPENAI_API_KEY: read directly by older releases, and by any
    // provider whose env_key names it.
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "CODEX_ACCESS_TOKEN",
    "OPENAI_FEDERATION_RULE_ID",
    "OPENAI_IDENTITY_TOKEN_FILE",
    "OPENAI_WORKLOAD_IDENTITY_CONTEXT",
    // Workload identity of Codex 0.171 (strings of the binary; any one of them makes
    // `codex login status` ask for a federation rule instead of reading the home).
    "OPENAI_IDENTITY_TOKEN_SOURCE",
    "SPIFFE_ENDPOINT_SOCKET",
    "OPENAI_SPIFFE_AUDIENCE",
    "OPENAI_SPIFFE_ID",
    // Other credentials Codex reads (connectors).
    "CODEX_CONNECTORS_TOKEN",
    // Where tokens are sent, and who is billed (auth refresh/revoke endpoints, openai provider).
    "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
    "CODEX_REVOKE_TOKEN_URL_OVERRIDE",
    "CODEX_AUTHAPI_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
    // The app-server's login backend and the agent-identity verifiers (0.169 and 0.171).
    "CODEX_APP_SERVER_LOGIN_ISSUER",
    "CODEX_APP_SERVER_LOGIN_CLIENT_ID",
    "CODEX_APP_SERVER_CHATGPT_BASE_URL",
    "CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL",
    "CODEX_AGENT_IDENTITY_JWKS_BASE_URL",
    "CODEX_CLOUD_TASKS_BASE_URL",
    // A remote executor, and the originator recorded for this account's requests.
    "CODEX_EXEC_SERVER_URL",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
    // Per-account state kept outside CODEX_HOME (thread index, memories).
    "CODEX_SQLITE_HOME",
    // The plugin companion's broker of another account, used instead of broker.json.
    "CODEX_COMPANION_APP_SERVER_ENDPOINT",
    "CODEX_COMPANION_APP_SERVER_PID_FILE",
    "CODEX_COMPANION_APP_SERVER_LOG_FILE",
];

/// What to change in an inherited environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPlan {
    /// Variables to set, in order.
    pub set: Vec<(String, OsString)>,
    /// Variables to remove.
    pub unset: Vec<String>,
}

impl EnvPlan {
    /// `CODEX_HOME` is the canonical home. The default account whose `~/.codex` does not exist
    /// yet gets no CODEX_HOME at all, so `codex` creates its default home as it does without us.
    pub fn for_account(account: &Account) -> EnvPlan {
        let mut set = Vec::new();
        let mut unset = Vec::new();
        if account.name == DEFAULT && !account.exists() {
            unset.push(CODEX_HOME.to_string());
        } else {
            set.push((
                CODEX_HOME.to_string(),
                account.canonical_home().into_os_string(),
            ));
        }
        set.push((ACCOUNT_MARKER.to_string(), account.name.clone().into()));
        unset.extend(
            IDENTITY_VARS
                .iter()
                .filter(|v| !account.pass_env.iter().any(|p| p == *v))
                .map(|v| v.to_string()),
        );
        EnvPlan { set, unset }
    }

    /// A Claude Code session on a list or `auto`: `first`'s environment, with `spec` as the
    /// marker, so that codex-as run inside the session (`which`, `codex-as task`) sees the list.
    pub fn for_route(first: &Account, spec: &AccountSpec) -> EnvPlan {
        let mut plan = EnvPlan::for_account(first);
        for (name, value) in plan.set.iter_mut() {
            if name == ACCOUNT_MARKER {
                *value = spec.to_string().into();
            }
        }
        plan
    }

    pub fn apply(&self, cmd: &mut Command) {
        for name in &self.unset {
            cmd.env_remove(name);
        }
        for (name, value) in &self.set {
            cmd.env(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::FoundBy;

    fn account(name: &str, home: &std::path::Path, pass: &[&str]) -> Account {
        Account {
            name: name.into(),
            home: home.to_path_buf(),
            found_by: FoundBy::Config,
            pass_env: pass.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn sets_canonical_home_and_drops_identity_vars() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let plan = EnvPlan::for_account(&account("alice", &link, &["OPENAI_API_KEY"]));
        assert_eq!(
            plan.set[0],
            (
                CODEX_HOME.to_string(),
                std::fs::canonicalize(&real).unwrap().into_os_string()
            )
        );
        assert_eq!(plan.set[1], (ACCOUNT_MARKER.to_string(), "alice".into()));
        assert!(plan.unset.contains(&"CODEX_API_KEY".to_string()));
        assert!(
            !plan.unset.contains(&"OPENAI_API_KEY".to_string()),
            "pass_env keeps it"
        );
    }

    #[test]
    fn a_route_marks_its_spec_on_the_first_accounts_home() {
        let d = tempfile::tempdir().unwrap();
        let spec = AccountSpec::parse("alice,bob").unwrap();
        let plan = EnvPlan::for_route(&account("alice", d.path(), &[]), &spec);
        let one = EnvPlan::for_account(&account("alice", d.path(), &[]));
        assert_eq!(plan.set[0], one.set[0]);
        assert_eq!(
            plan.set[1],
            (ACCOUNT_MARKER.to_string(), "alice,bob".into())
        );
        assert_eq!(plan.unset, one.unset);
    }

    #[test]
    fn fresh_default_account_leaves_codex_home_unset() {
        let d = tempfile::tempdir().unwrap();
        let plan = EnvPlan::for_account(&account(DEFAULT, &d.path().join("missing"), &[]));
        assert!(plan.unset.contains(&CODEX_HOME.to_string()));
        assert!(plan.set.iter().all(|(k, _)| k != CODEX_HOME));
    }
}
