//! The identity variables Codex 0.171 reads are scrubbed like the others: a run as an account
//! never sees them, and with the real Codex 0.171 an inherited workload identity no longer
//! replaces the account's own login.

use crate::support::{Sandbox, stderr, stdout};

/// Added for Codex 0.171 (see /work/notes/issue12-research.md section 5).
const NEW: &[&str] = &[
    "OPENAI_IDENTITY_TOKEN_SOURCE",
    "SPIFFE_ENDPOINT_SOCKET",
    "OPENAI_SPIFFE_AUDIENCE",
    "OPENAI_SPIFFE_ID",
    "CODEX_APP_SERVER_LOGIN_ISSUER",
    "CODEX_APP_SERVER_LOGIN_CLIENT_ID",
    "CODEX_APP_SERVER_CHATGPT_BASE_URL",
    "CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL",
    "CODEX_AGENT_IDENTITY_JWKS_BASE_URL",
    "CODEX_CONNECTORS_TOKEN",
    "CODEX_CLOUD_TASKS_BASE_URL",
    "CODEX_EXEC_SERVER_URL",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
];

#[test]
fn a_run_as_an_account_never_sees_the_new_identity_variables() {
    let sb = Sandbox::new();
    sb.account_dir("alice");
    let mut cmd = sb.codex_as();
    cmd.args(["alice", "--", "env"]);
    for v in NEW {
        cmd.env(v, "inherited-value");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let env = stdout(&out);
    for v in NEW {
        assert!(!env.contains(&format!("{v}=")), "{v} reached the program");
    }
    // pass_env still keeps one when the account asks for it.
    sb.write_config(
        "[accounts.alice]\nhome = \"~/.codex-alice\"\npass_env = [\"OPENAI_SPIFFE_ID\"]\n",
    );
    let out = sb
        .codex_as()
        .args(["alice", "--", "env"])
        .env("OPENAI_SPIFFE_ID", "kept")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("OPENAI_SPIFFE_ID=kept"));
}

/// With every real Codex CLI of CODEX_AS_REAL_CODEX (0.169 ignores these variables; 0.171 lets
/// any of them replace the home's login), the account's own home is read.
#[test]
fn real_codex_reads_the_account_not_an_inherited_workload_identity() {
    for codex in crate::support::real_codexes() {
        let sb = Sandbox::new();
        sb.account_dir("alice");
        sb.with_codex(&codex);
        for v in [
            "OPENAI_IDENTITY_TOKEN_SOURCE",
            "OPENAI_SPIFFE_ID",
            "OPENAI_SPIFFE_AUDIENCE",
        ] {
            let out = sb
                .codex_as()
                .args(["alice", "--", "codex", "login", "status"])
                .env(v, "file")
                .output()
                .unwrap();
            let text = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                text.contains("Not logged in") && !text.contains("workload identity"),
                "{} {v}: {text}",
                codex.display()
            );
        }
    }
}
