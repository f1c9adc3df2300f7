//! A real `codex app-server` on pipes, spoken to in its newline JSON-RPC: for tests that run
//! whole turns against the model stub (see [`super::model_stub`]).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::{Value, json};

use super::sandbox::Sandbox;

/// How long any one answer or notification may take before the test fails instead of hanging.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub struct AppServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    /// Notifications received while waiting for answers, oldest first, not yet taken.
    pub pending: Vec<Value>,
}

impl AppServer {
    /// Starts `codex app-server` with CODEX_HOME = `home` in the sandbox's environment, and
    /// initializes it as client `name`.
    pub fn start(sb: &Sandbox, codex: &Path, home: &Path, name: &str) -> AppServer {
        let mut cmd = sb.command(codex);
        cmd.arg("app-server")
            .env("CODEX_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", codex.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = AppServer {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            next_id: 1,
            pending: Vec::new(),
        };
        let init = server.call(
            "initialize",
            json!({"clientInfo": {"name": name, "title": name, "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "initialize: {init}");
        server.send(json!({"method": "initialized"}));
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("app-server stdin closed");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next line from the app-server; panics after [`HANG_GUARD`] or at end of output.
    pub fn recv(&mut self) -> Value {
        match self.lines.recv_timeout(HANG_GUARD) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("app-server wrote non-JSON {line:?}: {e}")),
            Err(RecvTimeoutError::Timeout) => panic!("app-server silent for {HANG_GUARD:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("app-server closed its output"),
        }
    }

    /// Sends a request and returns its whole answer (`result` or `error`); notifications that
    /// came first are kept in [`Self::pending`]. Server requests (approvals) are refused.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"id": id, "method": method, "params": params}));
        loop {
            let v = self.recv();
            if v.get("method").is_none() && v["id"] == id {
                return v;
            }
            self.keep(v);
        }
    }

    /// Like [`Self::call`], but panics on an error answer and returns `result`.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params);
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    fn keep(&mut self, v: Value) {
        if v.get("method").is_some() && v.get("id").is_some() {
            let id = v["id"].clone();
            self.send(json!({"id": id, "error": {"code": -32601, "message": "Unsupported server request"}}));
        }
        self.pending.push(v);
    }

    /// Reads until `turn/completed` for `turn_id`; returns every notification of that turn (the
    /// pending ones included), `turn/completed` last.
    pub fn until_turn_completed(&mut self, turn_id: &str) -> Vec<Value> {
        let mut got: Vec<Value> = std::mem::take(&mut self.pending);
        loop {
            if let Some(done) = got.iter().position(|v| {
                v["method"] == "turn/completed" && v["params"]["turn"]["id"] == turn_id
            }) {
                let rest = got.split_off(done + 1);
                self.pending = rest;
                return got;
            }
            let v = self.recv();
            if v.get("method").is_some() && v.get("id").is_some() {
                let id = v["id"].clone();
                self.send(json!({"id": id, "error": {"code": -32601, "message": "Unsupported server request"}}));
            }
            got.push(v);
        }
    }

    /// Starts a thread in `cwd`; returns the `thread/start` result.
    pub fn start_thread(&mut self, cwd: &Path) -> Value {
        self.ok("thread/start", json!({"cwd": cwd}))
    }

    /// Runs one text turn to its end: returns (the turn id, its notifications).
    pub fn turn(&mut self, thread_id: &str, text: &str) -> (String, Vec<Value>) {
        let started = self.ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": text}]}),
        );
        let turn_id = started["turn"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("turn/start answered {started}"))
            .to_owned();
        let events = self.until_turn_completed(&turn_id);
        (turn_id, events)
    }
}

/// The final `turn` object of a turn's notifications (from its `turn/completed`).
pub fn completed_turn(events: &[Value]) -> &Value {
    &events
        .iter()
        .rev()
        .find(|v| v["method"] == "turn/completed")
        .expect("no turn/completed")["params"]["turn"]
}

/// The agent's text in a turn's notifications (its `item/completed` agentMessage items, joined).
pub fn agent_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|v| {
            v["method"] == "item/completed" && v["params"]["item"]["type"] == "agentMessage"
        })
        .filter_map(|v| v["params"]["item"]["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for AppServer {
    /// Closing stdin ends the app-server; kill it if it lingers.
    fn drop(&mut self) {
        self.stdin.take();
        let pid = self.child.id();
        if !super::proc::wait_until(5, || !super::alive(pid)) {
            let _ = self.child.kill();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
