//! A reading asked of a one-shot `codex app-server` of its own, run with the account's
//! environment (`account/rateLimits/read`, read by `quota::snapshot`): what `live` falls back to
//! when the account's warm broker is busy. Only a ChatGPT login has rate limits to read; Codex
//! refuses the call otherwise. The request goes from Codex to OpenAI as Codex's own would;
//! codex-as reads no credential itself.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use super::snapshot;
use super::{Reading, Source};
use crate::account::Account;
use crate::account::env::EnvPlan;
use crate::broker::client::{self, ClientError, Connection};
use crate::broker::protocol;

#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
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

pub fn read(account: &Account, timeout: Duration) -> Result<Reading, OneShotError> {
    let codex = crate::sys::tools::codex()?;
    let mut std_cmd = std::process::Command::new(&codex);
    std_cmd
        .arg("app-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    EnvPlan::for_account(account).apply(&mut std_cmd);
    let runtime = crate::sys::runtime::current_thread()
        .map_err(|e| OneShotError::Spawn(std::io::Error::other(e.to_string())))?;
    runtime.block_on(async {
        let mut child = Command::from(std_cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(OneShotError::Spawn)?;
        let result = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => {
                let mut conn = Connection::over(stdout, stdin);
                tokio::time::timeout(timeout, exchange(&mut conn, timeout))
                    .await
                    .unwrap_or(Err(OneShotError::Timeout(timeout)))
            }
            _ => Err(OneShotError::Closed),
        };
        let _ = child.kill().await;
        result
    })
}

/// `initialize`, `initialized`, then `account/rateLimits/read`, as the plugin's client would.
async fn exchange(
    conn: &mut Connection<tokio::process::ChildStdout, tokio::process::ChildStdin>,
    timeout: Duration,
) -> Result<Reading, OneShotError> {
    let failed = |e: ClientError| match e {
        ClientError::Rpc { message, .. } => OneShotError::Refused(message),
        ClientError::Timeout(_) => OneShotError::Timeout(timeout),
        _ => OneShotError::Closed,
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
    let source = Source::AppServer {
        via: Some("app-server".into()),
    };
    snapshot::parse_read_result(&result, crate::sys::clock::now(), source)
        .ok_or(OneShotError::NoLimits)
}
