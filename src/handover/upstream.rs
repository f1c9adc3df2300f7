//! What the relay talks to for an account: a line stream that speaks the app-server's JSON-RPC
//! for that account's home. Today that is the account's codex-as broker (shared, warm, with its
//! quota sensor); the handover logic only sees [`Upstream`] and [`Link`], so another kind of
//! upstream (Codex's own listener) needs no change to it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::sync::mpsc::{self, Receiver, UnboundedSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::account::{Account, Accounts};
use crate::broker::lines::Backlog;
use crate::broker::serve::MAX_QUEUED_BYTES;
use crate::broker::{endpoint, lines, pool, protocol};

/// How long the upstream may take to answer the relay's own `initialize`.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines read from an upstream and not yet taken by the relay: past this many its socket is
/// read no further, so a relay that cannot pass lines on holds them in the broker, which
/// bounds what waits for a client.
pub const LINK_QUEUE: usize = 64;

/// One open connection to an upstream: lines in, lines out. Dropping it closes the connection.
pub struct Link {
    pub rx: Receiver<String>,
    tx: UnboundedSender<String>,
    /// Bytes sent and not yet written to the upstream.
    unsent: Arc<Backlog>,
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
        rx: Receiver<String>,
        tx: UnboundedSender<String>,
        unsent: Arc<Backlog>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Link {
        Link {
            rx,
            tx,
            unsent,
            tasks,
        }
    }

    pub fn send(&self, msg: &Value) {
        let line = msg.to_string();
        self.unsent.add(line.len());
        let _ = self.tx.send(line);
    }

    /// True while what waits to be written to the upstream is under its limit: the relay reads
    /// its client only then.
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.unsent.gate()
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
    let (in_tx, in_rx) = mpsc::channel(LINK_QUEUE);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let unsent = Backlog::new(MAX_QUEUED_BYTES);
    let writer = tokio::task::spawn_local(lines::write_lines(write, out_rx, Some(unsent.clone())));
    let reader = tokio::task::spawn_local(async move {
        let mut r = BufReader::new(read);
        while let Ok(Some(line)) = lines::read_line(&mut r).await {
            if !line.trim().is_empty() && in_tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(Link::new(in_rx, out_tx, unsent, vec![writer, reader]))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixListener;

    use super::*;

    #[tokio::test]
    async fn a_link_reads_no_further_than_its_queue_and_loses_nothing() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("up.sock");
                let listener = UnixListener::bind(&path).unwrap();
                let lines = 50_000;
                let peer = tokio::task::spawn_local(async move {
                    let (mut s, _) = listener.accept().await.unwrap();
                    for i in 0..lines {
                        let line = format!("{{\"method\":\"n\",\"params\":{{\"i\":{i}}}}}\n");
                        if s.write_all(line.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
                let mut link = connect(&format!("unix:{}", path.display())).await.unwrap();
                // Let the peer write as much as the sockets take while nobody reads the link.
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                assert!(
                    link.rx.len() <= LINK_QUEUE,
                    "{} lines queued",
                    link.rx.len()
                );
                assert!(!peer.is_finished(), "the peer waits on a full socket");
                for i in 0..lines {
                    let line = link.rx.recv().await.unwrap();
                    let v: Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(v["params"]["i"], i, "in order, none lost");
                }
                peer.await.unwrap();
            })
            .await;
    }
}
