//! A fresh reading asked of a short-lived `codex app-server` run with the account's environment
//! (`account/rateLimits/read`, read by `quota::snapshot`): what `live` falls back to when the
//! account's warm broker is busy or cannot be started.
//! Only a ChatGPT login has rate limits to read; Codex refuses the call otherwise. The request
//! goes from Codex to OpenAI as Codex's own would; codex-as reads no credential itself.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::snapshot;
use super::{Reading, Source};
use crate::account::Account;
use crate::account::env::EnvPlan;
use crate::broker::protocol;

#[derive(Debug, thiserror::Error)]
pub enum FreshError {
    #[error("{0}")]
    Codex(#[from] crate::broker::BrokerError),
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

const READ_ID: u64 = 2;

pub fn read(account: &Account, timeout: Duration) -> Result<Reading, FreshError> {
    let codex = crate::broker::serve::find_codex()?;
    let mut cmd = Command::new(&codex);
    cmd.arg("app-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    EnvPlan::for_account(account).apply(&mut cmd);
    let mut child = cmd.spawn().map_err(FreshError::Spawn)?;
    let result = exchange(&mut child, timeout);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn exchange(child: &mut std::process::Child, timeout: Duration) -> Result<Reading, FreshError> {
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(FreshError::Closed);
    };
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let msgs = [
        json!({"id": 1, "method": protocol::INITIALIZE, "params": protocol::initialize_params()}),
        json!({"method": protocol::INITIALIZED}),
        json!({"id": READ_ID, "method": "account/rateLimits/read", "params": null}),
    ];
    for m in msgs {
        writeln!(stdin, "{m}").map_err(|_| FreshError::Closed)?;
    }
    let _ = stdin.flush();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(FreshError::Timeout(timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(FreshError::Closed),
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("id").and_then(Value::as_u64) != Some(READ_ID) || v.get("method").is_some() {
            continue;
        }
        if let Some(e) = v.get("error") {
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("error");
            return Err(FreshError::Refused(msg.to_string()));
        }
        return snapshot::parse_read_result(
            v.get("result").unwrap_or(&Value::Null),
            crate::sys::clock::now(),
            Source::AppServer {
                via: Some("app-server".into()),
            },
        )
        .ok_or(FreshError::NoLimits);
    }
}
