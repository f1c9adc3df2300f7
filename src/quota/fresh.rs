//! A fresh reading asked of the account's own app-server (`codex-as quota --fresh`): a
//! short-lived `codex app-server` runs with the account's environment, and answers
//! `account/rateLimits/read` (app-server v2: `{"rateLimits": {"primary": {"usedPercent",
//! "windowDurationMins", "resetsAt"}, "secondary": ..., "planType"}, "rateLimitsByLimitId"}`).
//! Only a ChatGPT login has rate limits to read; Codex refuses the call otherwise. The request
//! goes from Codex to OpenAI as Codex's own would; codex-as reads no credential itself.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::survey::Survey;
use super::{Reading, Source, Window};
use crate::account::Account;
use crate::account::env::EnvPlan;
use crate::account::login_state::LoginState;
use crate::broker::client::{self, ClientError, Connection};
use crate::broker::protocol;

#[derive(Debug, thiserror::Error)]
pub enum FreshError {
    #[error("{0}")]
    Codex(#[from] crate::sys::tools::ToolError),
    #[error("cannot start codex app-server: {0}")]
    Spawn(std::io::Error),
    #[error("codex app-server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("codex app-server exited before answering")]
    Closed,
    #[error("codex refused: {0}")]
    Refused(String),
    #[error("codex answered without rate limits")]
    NoLimits,
}

pub fn read(account: &Account, timeout: Duration) -> Result<Reading, FreshError> {
    let codex = crate::sys::tools::codex()?;
    let mut std_cmd = std::process::Command::new(&codex);
    std_cmd
        .arg("app-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    EnvPlan::for_account(account).apply(&mut std_cmd);
    let runtime = crate::sys::runtime::current_thread()
        .map_err(|e| FreshError::Spawn(std::io::Error::other(e.to_string())))?;
    runtime.block_on(async {
        let mut child = Command::from(std_cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(FreshError::Spawn)?;
        let result = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => {
                let mut conn = Connection::over(stdout, stdin);
                tokio::time::timeout(timeout, exchange(&mut conn, timeout))
                    .await
                    .unwrap_or(Err(FreshError::Timeout(timeout)))
            }
            _ => Err(FreshError::Closed),
        };
        let _ = child.kill().await;
        result
    })
}

/// How long one account's app-server may take to start and answer.
const FRESH_TIMEOUT: Duration = Duration::from_secs(20);

/// Replaces each ChatGPT account's reading with a fresh one from its app-server, all at once.
/// Returns, per survey, why no fresh reading was taken (None when one was).
pub fn refresh(surveys: &mut [Survey]) -> Vec<Option<String>> {
    // One thread each: every app-server takes a few seconds to start.
    std::thread::scope(|scope| {
        let handles: Vec<_> = surveys
            .iter()
            .map(|s| {
                let login = s.login;
                let account = s.account.clone();
                scope.spawn(move || match login {
                    LoginState::Chatgpt => read(&account, FRESH_TIMEOUT).map_err(|e| e.to_string()),
                    _ => Err("rate limits are only readable for a ChatGPT login".into()),
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(surveys.iter_mut())
            .map(|(h, s)| match h.join() {
                Ok(Ok(reading)) => {
                    s.scan.reading = Some(reading);
                    None
                }
                Ok(Err(e)) => Some(e),
                Err(_) => Some("the reading failed".into()),
            })
            .collect()
    })
}

/// `initialize`, `initialized`, then `account/rateLimits/read`, as the plugin's client would.
async fn exchange(
    conn: &mut Connection<tokio::process::ChildStdout, tokio::process::ChildStdin>,
    timeout: Duration,
) -> Result<Reading, FreshError> {
    let failed = |e: ClientError| match e {
        ClientError::Rpc { message, .. } => FreshError::Refused(message),
        ClientError::Timeout(_) => FreshError::Timeout(timeout),
        _ => FreshError::Closed,
    };
    let params = protocol::initialize_params();
    client::request(conn, protocol::INITIALIZE, params, timeout)
        .await
        .map_err(failed)?;
    client::notify(conn, protocol::INITIALIZED)
        .await
        .map_err(failed)?;
    let result = client::request(conn, protocol::RATE_LIMITS_READ, Value::Null, timeout)
        .await
        .map_err(failed)?;
    parse(&result, crate::sys::clock::now()).ok_or(FreshError::NoLimits)
}

/// The reading in an `account/rateLimits/read` result: the `codex` bucket when the
/// single-bucket view is empty.
pub fn parse(result: &Value, now: i64) -> Option<Reading> {
    let has_window = |s: &&Value| {
        s.get("primary").is_some_and(|p| !p.is_null())
            || s.get("secondary").is_some_and(|p| !p.is_null())
    };
    let snap = result.get("rateLimits").filter(has_window).or_else(|| {
        result
            .pointer("/rateLimitsByLimitId/codex")
            .filter(has_window)
    })?;
    let window = |k: &str| {
        let w = snap.get(k)?;
        Some(Window {
            used_percent: w.get("usedPercent")?.as_f64()?,
            window_minutes: w.get("windowDurationMins").and_then(Value::as_u64),
            resets_at: w.get("resetsAt").and_then(Value::as_i64),
        })
    };
    Some(Reading {
        primary: window("primary"),
        secondary: window("secondary"),
        plan: snap
            .get("planType")
            .and_then(Value::as_str)
            .map(String::from),
        observed_at: now,
        source: Source::AppServer,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_v2_answer() {
        let r = parse(
            &json!({"rateLimits": {"limitId": "codex", "primary": {"usedPercent": 12, "windowDurationMins": 300, "resetsAt": 99},
                    "secondary": null, "planType": "pro"}, "rateLimitsByLimitId": null}),
            5,
        )
        .unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 12.0);
        assert!(r.secondary.is_none());
        assert_eq!(r.plan.as_deref(), Some("pro"));
        assert_eq!(r.observed_at, 5);
        let r = parse(
            &json!({"rateLimits": {"primary": null, "secondary": null},
                    "rateLimitsByLimitId": {"codex": {"secondary": {"usedPercent": 70.5}}}}),
            5,
        )
        .unwrap();
        assert_eq!(r.secondary.unwrap().used_percent, 70.5);
        assert!(parse(&json!({}), 5).is_none());
    }
}
