//! Talking to a broker from codex-as itself: ours, or the plugin's (legacy or patched by PR
//! #369), which answer `broker/status` differently; the errors tell those cases apart. The same
//! JSON-RPC line client talks to a `codex app-server` over its stdio (`quota --fresh`).

use std::io;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

use super::endpoint;
use super::lines;
pub use super::protocol::Status;
use super::protocol::{self as p, Message};

/// How long codex-as waits for a broker's `broker/status` (or shutdown answer) before it calls
/// the broker hung and leaves it alone. Starting or reusing one for a run waits longer
/// (`pool`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unsupported broker endpoint {0:?}: expected unix:PATH")]
    Endpoint(String),
    /// The socket is missing or nothing listens on it: no broker runs there.
    #[error("no broker at {endpoint}")]
    NotRunning {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// No answer in time. A broker that does not answer must be treated as busy.
    #[error("the broker did not answer within {0:?}")]
    Timeout(Duration),
    /// Error -32001: another client owns the broker (a legacy broker answers status this way).
    #[error("the broker is busy")]
    Busy,
    /// It answered `broker/status`, but not with a status: a legacy plugin broker forwarding
    /// the call to its app-server, which does not know it.
    #[error("the broker does not report its status (a legacy plugin broker?): {detail}")]
    NotStatus { detail: String },
    #[error("{method} failed: {message} (code {code})")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    /// The socket is served by another user's process: nothing is sent to it.
    #[error(
        "refusing {endpoint}: it is served by uid {uid}, not you (uid {me}); another local user may have planted it"
    )]
    Foreign { endpoint: String, uid: u32, me: u32 },
    #[error("the broker closed the connection before answering")]
    Closed,
    #[error("broker connection: {0}")]
    Io(#[source] io::Error),
}

/// One JSON-RPC line connection: a broker's socket by default, or any pair of streams.
pub struct Connection<R = OwnedReadHalf, W = OwnedWriteHalf> {
    reader: BufReader<R>,
    writer: W,
    next_id: u64,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    /// Talks over `reader` and `writer` (an app-server's stdout and stdin, say).
    pub fn over(reader: R, writer: W) -> Self {
        Connection {
            reader: BufReader::new(reader),
            writer,
            next_id: 1,
        }
    }
}

pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Connection, ClientError> {
    connect_by(endpoint, Instant::now() + timeout, timeout).await
}

async fn connect_by(
    endpoint: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<Connection, ClientError> {
    let path =
        endpoint::socket_path(endpoint).map_err(|_| ClientError::Endpoint(endpoint.into()))?;
    let stream = match timeout_at(deadline, UnixStream::connect(&path)).await {
        Err(_) => return Err(ClientError::Timeout(timeout)),
        Ok(Ok(s)) => s,
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning {
                endpoint: endpoint.into(),
                source: e,
            });
        }
        Ok(Err(e)) => return Err(ClientError::Io(e)),
    };
    // The socket's file proves nothing (a link, or a file planted while its folder was loose):
    // the kernel's word on who listens does. Checked before a single byte is sent.
    let uid = stream.peer_cred().map_err(ClientError::Io)?.uid();
    let me = nix::unistd::getuid().as_raw();
    if uid != me {
        return Err(ClientError::Foreign {
            endpoint: endpoint.into(),
            uid,
            me,
        });
    }
    let (read, writer) = stream.into_split();
    Ok(Connection::over(read, writer))
}

/// Sends one request and waits for its answer, skipping notifications meanwhile.
pub async fn request<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    conn: &mut Connection<R, W>,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, ClientError> {
    request_by(conn, method, params, Instant::now() + timeout, timeout).await
}

/// Sends a notification (no answer comes).
pub async fn notify<R, W: AsyncWrite + Unpin>(
    conn: &mut Connection<R, W>,
    method: &str,
) -> Result<(), ClientError> {
    let mut line = Message::Notification {
        method: method.to_string(),
        params: None,
    }
    .to_value()
    .to_string();
    line.push('\n');
    conn.writer
        .write_all(line.as_bytes())
        .await
        .map_err(ClientError::Io)
}

async fn request_by<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    conn: &mut Connection<R, W>,
    method: &str,
    params: Value,
    deadline: Instant,
    timeout: Duration,
) -> Result<Value, ClientError> {
    let id = conn.next_id;
    conn.next_id += 1;
    let mut line = Message::request(id, method, params).to_value().to_string();
    line.push('\n');
    let exchange = async {
        conn.writer
            .write_all(line.as_bytes())
            .await
            .map_err(ClientError::Io)?;
        loop {
            let Some(line) = lines::read_line(&mut conn.reader)
                .await
                .map_err(ClientError::Io)?
            else {
                return Err(ClientError::Closed);
            };
            match Message::parse(&line) {
                Ok(Message::Response { id: got, outcome }) if got == json!(id) => {
                    return outcome.map_err(|e| rpc_error(method, &e));
                }
                _ => continue,
            }
        }
    };
    timeout_at(deadline, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

fn rpc_error(method: &str, e: &Value) -> ClientError {
    let code = e
        .get("code")
        .and_then(Value::as_i64)
        .unwrap_or(p::SERVER_ERROR);
    if code == p::BUSY {
        return ClientError::Busy;
    }
    ClientError::Rpc {
        method: method.into(),
        code,
        message: e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
    }
}

/// Asks a broker who and how busy it is. `Busy` and `Timeout` both mean "in use"; `NotStatus`
/// means a legacy plugin broker that happens to be idle.
pub async fn status(endpoint: &str, timeout: Duration) -> Result<Status, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut conn = connect_by(endpoint, deadline, timeout).await?;
    let result = match request_by(&mut conn, p::BROKER_STATUS, json!({}), deadline, timeout).await {
        Err(ClientError::Rpc { code, message, .. }) => {
            return Err(ClientError::NotStatus {
                detail: format!("error {code}: {message}"),
            });
        }
        other => other?,
    };
    if result.get("busy").and_then(Value::as_bool).is_none() {
        return Err(ClientError::NotStatus {
            detail: "the answer has no \"busy\" field".into(),
        });
    }
    serde_json::from_value(result).map_err(|e| ClientError::NotStatus {
        detail: e.to_string(),
    })
}

/// Stops a broker unless it is busy: Ok(true) when it agreed, Ok(false) when it refused because
/// it is busy. After agreeing, waits (within `timeout`) until the broker has closed the
/// connection. A LEGACY broker ignores `ifIdle` and always stops, even mid-turn: check `status`
/// first and never call this on one.
pub async fn shutdown_if_idle(endpoint: &str, timeout: Duration) -> Result<bool, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut conn = connect_by(endpoint, deadline, timeout).await?;
    // Past its deadline the broker ignores it: if the broker is too slow to answer in time (hung,
    // stopped), the caller reports it as left alone, and it must stay so.
    let params =
        json!({"ifIdle": true, "deadlineMs": crate::broker::state::shutdown_deadline_ms(timeout)});
    let result = request_by(&mut conn, p::BROKER_SHUTDOWN, params, deadline, timeout).await?;
    let agreed = result
        .get("shutdown")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if agreed {
        let until_closed =
            async { while let Ok(Some(_)) = lines::read_line(&mut conn.reader).await {} };
        let _ = timeout_at(deadline, until_closed).await;
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A one-connection broker that answers each request with `answer(request)` (None: never
    /// answers), after an unrelated notification.
    fn scripted(
        answer: impl Fn(&Value) -> Option<Value> + Send + 'static,
    ) -> (tempfile::TempDir, String) {
        let dir = tempfile::Builder::new()
            .prefix("cxc")
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            while let Ok(Some(line)) = lines::read_line(&mut r).await {
                let req: Value = serde_json::from_str(&line).unwrap();
                // A notification first: clients must skip it.
                let note = json!({"method": "noise", "params": {}});
                w.write_all(format!("{note}\n").as_bytes()).await.unwrap();
                match answer(&req) {
                    Some(mut a) => {
                        a["id"] = req["id"].clone();
                        w.write_all(format!("{a}\n").as_bytes()).await.unwrap();
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        });
        (dir, format!("unix:{}", path.display()))
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reads_our_status_and_a_patched_plugins() {
        let (_d, ep) = scripted(|_| {
            Some(
                json!({"result": {"busy": true, "broker": "codex-as", "pid": 4,
                "auth": {"method": "api-key", "fingerprint": null}, "future": 1}}),
            )
        });
        let st = status(&ep, T).await.unwrap();
        assert!(st.busy && st.is_codex_as());
        assert_eq!(st.pid, Some(4));
        assert_eq!(st.auth.unwrap().method.as_deref(), Some("api-key"));

        let (_d, ep) = scripted(|_| Some(json!({"result": {"busy": false}})));
        let st = status(&ep, T).await.unwrap();
        assert!(!st.busy && !st.is_codex_as());
    }

    #[tokio::test]
    async fn tells_legacy_busy_and_idle_brokers_apart() {
        let (_d, ep) = scripted(|_| {
            Some(json!({"error": {"code": -32001, "message": "Shared Codex broker is busy."}}))
        });
        assert!(matches!(status(&ep, T).await, Err(ClientError::Busy)));

        // An idle legacy broker forwards the call to Codex, which does not know it.
        let (_d, ep) = scripted(|_| {
            Some(
                json!({"error": {"code": -32600, "message": "Invalid request: unknown variant `broker/status`"}}),
            )
        });
        assert!(matches!(
            status(&ep, T).await,
            Err(ClientError::NotStatus { .. })
        ));
        let (_d, ep) = scripted(|_| Some(json!({"result": {"account": null}})));
        assert!(matches!(
            status(&ep, T).await,
            Err(ClientError::NotStatus { .. })
        ));
    }

    #[tokio::test]
    async fn missing_socket_silence_and_bad_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let ep = format!("unix:{}", dir.path().join("none").display());
        assert!(matches!(
            status(&ep, T).await,
            Err(ClientError::NotRunning { .. })
        ));
        // A socket file nobody listens on any more.
        let dead = dir.path().join("dead");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        let ep = format!("unix:{}", dead.display());
        assert!(matches!(
            status(&ep, T).await,
            Err(ClientError::NotRunning { .. })
        ));
        let (_d, ep) = scripted(|_| None);
        let short = Duration::from_millis(50);
        assert!(matches!(
            status(&ep, short).await,
            Err(ClientError::Timeout(_))
        ));
        assert!(matches!(
            status("tcp:1", T).await,
            Err(ClientError::Endpoint(_))
        ));
    }

    #[tokio::test]
    async fn shutdown_if_idle_reports_refusal_and_consent() {
        let (_d, ep) = scripted(|req| {
            assert_eq!(req["method"], "broker/shutdown");
            assert_eq!(req["params"]["ifIdle"], true);
            Some(json!({"result": {"shutdown": false, "busy": true}}))
        });
        assert!(!shutdown_if_idle(&ep, T).await.unwrap());
        let (_d, ep) = scripted(|_| Some(json!({"result": {"shutdown": true, "busy": false}})));
        // The scripted broker keeps the connection open: the wait for it to close is bounded.
        assert!(
            shutdown_if_idle(&ep, Duration::from_millis(100))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn request_returns_results_and_rpc_errors() {
        let (_d, ep) = scripted(|req| match req["method"].as_str() {
            Some("ok") => Some(json!({"result": {"x": 1}})),
            _ => Some(json!({"error": {"code": -32600, "message": "nope"}})),
        });
        let mut c = connect(&ep, T).await.unwrap();
        assert_eq!(
            request(&mut c, "ok", json!({}), T).await.unwrap(),
            json!({"x": 1})
        );
        let e = request(&mut c, "bad", json!({}), T).await.unwrap_err();
        assert!(matches!(e, ClientError::Rpc { code: -32600, .. }), "{e}");
    }
}
