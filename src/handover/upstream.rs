//! What the relay talks to for an account: a line stream that speaks the app-server's JSON-RPC
//! for that account's home. Today that is the account's codex-as broker (shared, warm, with its
//! quota sensor); the handover logic only sees [`Upstream`] and [`Link`], so another kind of
//! upstream (Codex's own listener) needs no change to it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::account::{Account, Accounts};
use crate::broker::{endpoint, lines, pool, protocol};

/// How long the upstream may take to answer the relay's own `initialize`.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// One open connection to an upstream: lines in, lines out. Dropping it closes the connection.
pub struct Link {
    pub rx: UnboundedReceiver<String>,
    tx: UnboundedSender<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Link {
    /// A link over any pair of line channels (the tasks behind them are aborted on drop).
    pub fn new(
        rx: UnboundedReceiver<String>,
        tx: UnboundedSender<String>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Link {
        Link { rx, tx, tasks }
    }

    pub fn send(&self, msg: &Value) {
        let _ = self.tx.send(msg.to_string());
    }

    /// Sends a request of the relay's own and waits for its answer. Other lines that arrive
    /// meanwhile are kept, in order, in `backlog` for the caller to relay.
    pub async fn request(
        &mut self,
        id: &str,
        method: &str,
        params: Value,
        timeout: Duration,
        backlog: &mut Vec<String>,
    ) -> anyhow::Result<Value> {
        self.send(&json!({"id": id, "method": method, "params": params}));
        let wait = async {
            while let Some(line) = self.rx.recv().await {
                let v: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v.get("id").and_then(Value::as_str) == Some(id) && v.get("method").is_none() {
                    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                        let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                        bail!("{method} failed: {msg}");
                    }
                    return Ok(v.get("result").cloned().unwrap_or_else(|| json!({})));
                }
                backlog.push(line);
            }
            bail!("the upstream closed the connection before answering {method}")
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow!("{method}: no answer within {}s", timeout.as_secs()))?
    }

    /// The client handshake every app-server connection needs, as the plugin's broker does it.
    pub async fn initialize(&mut self) -> anyhow::Result<()> {
        let mut ignored = Vec::new();
        self.request(
            "codex-as-relay-init",
            protocol::INITIALIZE,
            protocol::initialize_params(),
            INIT_TIMEOUT,
            &mut ignored,
        )
        .await?;
        self.send(&json!({"method": protocol::INITIALIZED}));
        Ok(())
    }
}

pub type Opening<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Link>> + 'a>>;

/// Opens an initialized link to an account's app-server.
pub trait Upstream {
    fn open<'a>(&'a self, account: &'a Account) -> Opening<'a>;
}

/// The account's codex-as broker, found or started as the companion's would be.
pub struct Brokers {
    pub accounts: Accounts,
    /// The folder brokers are recorded under (any: a broker serves every workspace).
    pub workspace: PathBuf,
}

impl Upstream for Brokers {
    fn open<'a>(&'a self, account: &'a Account) -> Opening<'a> {
        Box::pin(async move {
            let ep = pool::ensure_for(&self.accounts, account, &self.workspace).await?;
            let mut link = connect(&ep)
                .await
                .with_context(|| format!("cannot reach the broker of '{}'", account.name))?;
            link.initialize().await?;
            Ok(link)
        })
    }
}

/// A link over a unix socket that this user's process serves (checked before a byte is sent).
pub async fn connect(ep: &str) -> anyhow::Result<Link> {
    let path = endpoint::socket_path(ep)?;
    let stream = UnixStream::connect(&path)
        .await
        .with_context(|| format!("cannot connect to {ep}"))?;
    let uid = stream.peer_cred()?.uid();
    if uid != nix::unistd::getuid().as_raw() {
        bail!("refusing {ep}: it is served by uid {uid}, not you");
    }
    let (read, write) = stream.into_split();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let writer = tokio::task::spawn_local(lines::write_lines(write, out_rx, None));
    let reader = tokio::task::spawn_local(async move {
        let mut r = BufReader::new(read);
        while let Ok(Some(line)) = lines::read_line(&mut r).await {
            if !line.trim().is_empty() && in_tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok(Link::new(in_rx, out_tx, vec![writer, reader]))
}
