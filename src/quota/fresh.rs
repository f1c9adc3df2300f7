//! A fresh reading asked of the account's own app-server (`codex-as quota --fresh`): a
//! short-lived `codex app-server` runs with the account's environment, and answers
//! `account/rateLimits/read` (app-server v2: `{"rateLimits": {"primary": {"usedPercent",
//! "windowDurationMins", "resetsAt"}, "secondary": ..., "planType"}, "rateLimitsByLimitId"}`).
//! Only a ChatGPT login has rate limits to read; Codex refuses the call otherwise. The request
//! goes from Codex to OpenAI as Codex's own would; codex-as reads no credential itself.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Reading, Source, Window};
use crate::account::Account;
use crate::account::env::EnvPlan;
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

const READ_ID: u64 = 2;

pub fn read(account: &Account, timeout: Duration) -> Result<Reading, FreshError> {
    let codex = crate::sys::tools::codex()?;
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
        json!({"id": READ_ID, "method": protocol::RATE_LIMITS_READ, "params": null}),
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
        return parse(
            v.get("result").unwrap_or(&Value::Null),
            crate::sys::clock::now(),
        )
        .ok_or(FreshError::NoLimits);
    }
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
