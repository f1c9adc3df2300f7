//! Codex's own multi-client app-server, as the TUI's daemon runs it: a real `codex app-server
//! --listen unix://` at a home's standard path, and a TUI-like client that speaks its protocol
//! (a WebSocket over the unix socket, one JSON-RPC message per text frame).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use super::app_server::HANG_GUARD;
use super::sandbox::Sandbox;

/// The standard listener path of a home (Codex's bare `unix://`).
pub fn standard_path(home: &Path) -> PathBuf {
    home.join("app-server-control")
        .join("app-server-control.sock")
}

/// Starts `codex app-server --listen unix://` for `home` (the sandbox ends it) and waits until it
/// accepts connections; returns the socket its standard path leads to.
pub fn start(sb: &Sandbox, codex: &Path, home: &Path) -> PathBuf {
    start_at(sb, codex, home, &standard_path(home))
}

/// Starts `codex app-server --listen unix://PATH` serving `home` at `path` (the sandbox ends it)
/// and waits until it accepts connections; returns the socket `path` leads to.
pub fn start_at(sb: &Sandbox, codex: &Path, home: &Path, path: &Path) -> PathBuf {
    let listen = if path == standard_path(home) {
        "unix://".to_owned()
    } else {
        format!("unix://{}", path.display())
    };
    let log = std::fs::File::create(log_path(home)).unwrap();
    let child = sb
        .command(codex)
        .args(["app-server", "--listen", &listen])
        .env("CODEX_HOME", home)
        .env("RUST_LOG", "codex_app_server=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", codex.display()));
    sb.adopt(child);
    assert!(
        super::wait_until(30, || UnixStream::connect(path).is_ok()),
        "no listener at {} within 30 s",
        path.display()
    );
    std::fs::canonicalize(path).unwrap()
}

/// Where the listener started for `home` logs (beside the home).
pub fn log_path(home: &Path) -> PathBuf {
    home.with_extension("listener.log")
}

/// The end of that log, for a failure's message.
pub fn log_tail(home: &Path) -> String {
    let text = std::fs::read_to_string(log_path(home)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Pids of the app-server processes serving `home` (the native `codex` binaries whose argv says
/// `app-server`, not `--help`, and whose CODEX_HOME is `home`; the node launcher in front of
/// each is not one).
pub fn app_servers_of(home: &Path) -> Vec<i32> {
    let found = app_server_like(home);
    // An app-server's own fork, before it execs a tool, still carries its command line.
    found
        .iter()
        .copied()
        .filter(|p| parent_of(*p).is_none_or(|pp| !found.contains(&pp)))
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn app_server_like(home: &Path) -> Vec<i32> {
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let argv: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let native = argv
                .first()
                .is_some_and(|a0| Path::new(&*String::from_utf8_lossy(a0)).ends_with("codex"));
            // `codex app-server --help` (asked by the companion's setup checks) serves nothing.
            if !native
                || !argv.contains(&b"app-server".as_slice())
                || argv.contains(&b"--help".as_slice())
            {
                return false;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                return false;
            };
            env.split(|b| *b == 0)
                .filter_map(|kv| kv.strip_prefix(b"CODEX_HOME="))
                .any(|h| {
                    let h = PathBuf::from(String::from_utf8_lossy(h).into_owned());
                    std::fs::canonicalize(&h).unwrap_or(h) == home
                })
        })
        .collect()
}

/// A client of a listener, as Codex's TUI is one.
pub struct TuiClient {
    ws: WebSocket<UnixStream>,
    next_id: u64,
    /// Every message received, in order, with when it came.
    pub seen: Vec<(Instant, Value)>,
}

impl TuiClient {
    /// Connects to the listener at `socket` and initializes as client `name`.
    pub fn connect(socket: &Path, name: &str) -> TuiClient {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (ws, _) = tungstenite::client::client("ws://localhost/rpc", stream)
            .unwrap_or_else(|e| panic!("WebSocket upgrade at {}: {e}", socket.display()));
        let mut c = TuiClient {
            ws,
            next_id: 1,
            seen: Vec::new(),
        };
        let init = c.call(
            "initialize",
            json!({"clientInfo": {"name": name, "title": name, "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "initialize: {init}");
        c.send(json!({"method": "initialized"}));
        c
    }

    pub fn send(&mut self, v: Value) {
        let mut sent = self.ws.send(Message::text(v.to_string()));
        // Interrupted by a signal: the frame is queued, and flushing again sends the rest.
        while let Err(tungstenite::Error::Io(e)) = &sent
            && e.kind() == std::io::ErrorKind::Interrupted
        {
            sent = self.ws.flush();
        }
        sent.unwrap();
    }

    /// The next message, or None when nothing came within the socket's read timeout.
    pub fn poll(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("listener sent non-JSON {t:?}: {e}"));
                self.seen.push((Instant::now(), v.clone()));
                Some(v)
            }
            Ok(_) => None,
            // A signal another test's handler caught interrupts the read: nothing lost, try again.
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                None
            }
            Err(e) => {
                let last: Vec<String> = self
                    .seen
                    .iter()
                    .rev()
                    .take(5)
                    .map(|(_, v)| v.to_string())
                    .collect();
                panic!("listener connection failed: {e}; last seen (newest first): {last:?}")
            }
        }
    }

    /// A request's whole answer; messages that came first are kept in [`Self::seen`]. Its own
    /// approvals stay unanswered: the TUI's user has not decided yet.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"id": id, "method": method, "params": params}));
        let deadline = Instant::now() + HANG_GUARD;
        while Instant::now() < deadline {
            if let Some(v) = self.poll()
                && v.get("method").is_none()
                && v["id"] == id
            {
                return v;
            }
        }
        panic!("no answer to {method} within {HANG_GUARD:?}");
    }

    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params);
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Reads until `turn/completed` of `turn_id` (or [`HANG_GUARD`]); its params.
    pub fn until_turn_completed(&mut self, turn_id: &str) -> Value {
        let done =
            |v: &Value| v["method"] == "turn/completed" && v["params"]["turn"]["id"] == turn_id;
        self.until(&format!("turn {turn_id} completed"), done)["params"].clone()
    }

    /// The first message, seen already or read now, that `pred` accepts; panics saying `what`
    /// did not come within [`HANG_GUARD`].
    pub fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some((_, v)) = self.seen.iter().find(|(_, v)| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + HANG_GUARD;
        while Instant::now() < deadline {
            if let Some(v) = self.poll()
                && pred(&v)
            {
                return v;
            }
        }
        panic!("{what}: not within {HANG_GUARD:?}");
    }

    /// Answers the server request `id` (an approval) with `result`, as the TUI's user does.
    pub fn answer(&mut self, id: &Value, result: Value) {
        self.send(json!({"id": id, "result": result}));
    }

    /// Reads whatever comes for `d`.
    pub fn drain_for(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.poll();
        }
    }
}
