//! Finding the relay of a route, or starting it: like a broker (`broker::pool`), a detached
//! `codex-as relay serve` whose readiness comes through an inherited pipe, on a socket in
//! codex-as's private runtime folder, one per route (its name is the route's key).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::route::Route;
use crate::account::{Account, Accounts};
use crate::broker::client::{self, ClientError, PROBE_TIMEOUT};
use crate::broker::registry::Registry;
use crate::broker::{pool, protocol, runtime_dir};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A handover a relay made, as its status reports it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Handover {
    pub pid: Option<u32>,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    /// The usage-limit message of the account that ran out.
    pub message: String,
    pub notice: String,
}

pub async fn ensure(accounts: &Accounts, route: &[Account], _ws: &Path) -> anyhow::Result<String> {
    let route = Route::new(route.to_vec());
    if route.is_empty() {
        bail!("a relay needs at least one account");
    }
    let key = route.key();
    let dir = runtime_dir::ensure()?;
    let name = format!("rl-{key}");
    let socket = dir.join(format!("{name}.sock"));
    let endpoint = format!("unix:{}", socket.display());
    if probe(&endpoint, &key).await? {
        return Ok(endpoint);
    }
    let reg = Registry::open()?;
    let _lock = reg.lock(&name).context("cannot lock the relay's start")?;
    if probe(&endpoint, &key).await? {
        return Ok(endpoint);
    }
    start(
        accounts,
        &route,
        &endpoint,
        &dir.join(format!("{name}.log")),
    )
    .await?;
    Ok(endpoint)
}

/// True when the relay of `key` answers there; false when nothing listens.
async fn probe(endpoint: &str, key: &str) -> anyhow::Result<bool> {
    let mut conn = match client::connect(endpoint, PROBE_TIMEOUT).await {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => return Ok(false),
        Err(e) => return Err(anyhow::Error::new(e).context("the relay's socket")),
    };
    let st = client::request(&mut conn, protocol::BROKER_STATUS, json!({}), PROBE_TIMEOUT)
        .await
        .context("the relay does not answer")?;
    if st.get("route").and_then(Value::as_str) != Some(key) {
        bail!("{endpoint} is not the relay of this route");
    }
    Ok(true)
}

async fn start(
    accounts: &Accounts,
    route: &Route,
    endpoint: &str,
    log_path: &Path,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let idle_exit = accounts
        .config
        .broker
        .idle_exit
        .clone()
        .unwrap_or_else(|| pool::DEFAULT_IDLE_EXIT.to_string());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the codex-as executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["relay", "serve", "--route"])
        .arg(route.names())
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--idle-exit")
        .arg(&idle_exit)
        .current_dir(&accounts.home_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the relay's log")?)
        .stderr(log);
    match pool::start_detached(cmd, START_TIMEOUT).await? {
        Ok(()) => Ok(()),
        Err(pool::NotReady::Spawn(e)) => {
            Err(anyhow::Error::new(e).context("cannot start the relay"))
        }
        Err(_) => Err(anyhow!(
            "the relay for {} failed to start: {}; see {}",
            route.names(),
            pool::last_line(log_path).as_deref().unwrap_or("no output"),
            log_path.display()
        )),
    }
}

/// What a relay did for one client process.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Its turns handed over, in order.
    pub handovers: Vec<Handover>,
    /// The account on which its last turn failed for the usage limit with nobody left to take
    /// it over (the failure went through to the client).
    pub failed_on: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Hit {
    pid: Option<u32>,
    account: String,
}

/// What the relay at `endpoint` did for the client process `pid` (empty when it cannot say).
pub fn report(endpoint: &str, pid: u32) -> Report {
    let Ok(rt) = crate::sys::runtime::current_thread() else {
        return Report::default();
    };
    let st = rt.block_on(async {
        let mut conn = client::connect(endpoint, PROBE_TIMEOUT).await.ok()?;
        client::request(&mut conn, protocol::BROKER_STATUS, json!({}), PROBE_TIMEOUT)
            .await
            .ok()
    });
    let Some(st) = st else {
        return Report::default();
    };
    let list = |key: &str| st.get(key).cloned().unwrap_or_else(|| json!([]));
    let handovers = serde_json::from_value::<Vec<Handover>>(list("handovers"))
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.pid == Some(pid))
        .collect();
    let failed_on = serde_json::from_value::<Vec<Hit>>(list("usageLimitHits"))
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|h| h.pid == Some(pid))
        .map(|h| h.account);
    Report {
        handovers,
        failed_on,
    }
}
