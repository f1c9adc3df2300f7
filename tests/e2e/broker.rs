//! End-to-end tests of `codex-as broker serve`, driven through its socket with the scripted fake
//! Codex (tests/fixtures/fake-codex/codex) behind it.
//!
//! Waiting is always for an event (the ready pipe, a line, an exit); the only bounds are hang
//! guards that turn a stuck broker into a failure instead of a stuck CI job.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::peers::{Plugin, plugin_versions};
use crate::support::{Sandbox, fake_codex, have_node, real_codexes};

const HANG_GUARD: Duration = Duration::from_secs(30);

struct Broker {
    child: Option<Child>,
    endpoint: String,
    sock: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
    /// What the ready pipe said before it closed ("ready\n", or "" when the broker failed).
    ready: String,
}

impl Drop for Broker {
    /// SIGTERM first, so the broker reaps its app-server before the sandbox is removed (a real
    /// Codex orphaned by SIGKILL keeps writing into it for a moment); SIGKILL if it lingers.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Broker {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn connect(&self) -> Client {
        Client::connect(&self.sock).unwrap()
    }

    /// Waits for the broker to exit on its own.
    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "broker did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Rows of the fake Codex's log: which app-server pid and home handled which method.
    fn served(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Asserts the broker left nothing behind: socket, pid file, app-server process.
    fn assert_cleaned_up(&self, app_server_pid: u64) {
        assert!(!self.sock.exists(), "socket left behind");
        assert!(!self.pid_file.exists(), "pid file left behind");
        assert!(
            !Path::new(&format!("/proc/{app_server_pid}")).exists(),
            "app-server {app_server_pid} not reaped"
        );
    }
}

/// Starts `codex-as broker serve` with CODEX_HOME=`home` and waits on its ready pipe.
fn start(sb: &Sandbox, home: &Path, extra: &[&str], env: &[(&str, &str)]) -> Broker {
    start_at(sb, &sb.at("s"), home, extra, env)
}

fn start_at(
    sb: &Sandbox,
    sock: &Path,
    home: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Broker {
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let write_raw = write_end.as_raw_fd();
    let endpoint = format!("unix:{}", sock.display());
    let pid_file = sock.with_extension("pid");
    let log = sb.at("log");
    static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stderr = sb.at(&format!("stderr-{n}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codex-as"));
    cmd.args(["broker", "serve", "--endpoint", &endpoint, "--cwd"])
        .arg(sb.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .args(["--ready-fd", &write_raw.to_string()])
        .args(extra)
        .env("CODEX_HOME", home)
        .env("CODEX_AS_CODEX", fake_codex())
        .env("FAKE_CODEX_LOG", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only fcntl between fork and exec, which is async-signal-safe. The pipe is
    // close-on-exec everywhere else so that no other test's child keeps it open.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::fcntl(write_raw, nix::libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(write_end);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = File::from(read_end).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let mut broker = Broker {
        child: Some(child),
        endpoint,
        sock: sock.to_path_buf(),
        pid_file,
        log,
        stderr,
        ready: String::new(),
    };
    broker.ready = rx
        .recv_timeout(HANG_GUARD)
        .expect("ready pipe neither written nor closed");
    broker
}

fn start_ready(sb: &Sandbox, home: &Path, extra: &[&str]) -> Broker {
    let b = start(sb, home, extra, &[]);
    assert_eq!(b.ready, "ready\n", "broker failed: {}", b.stderr());
    b
}

struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
    next_id: u64,
}

impl Client {
    fn connect(sock: &Path) -> io::Result<Client> {
        let w = UnixStream::connect(sock)?;
        w.set_read_timeout(Some(HANG_GUARD))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Client { r, w, next_id: 100 })
    }

    fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes()).unwrap();
    }

    /// The next line; None at end of file (the broker closed the connection).
    fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(&line).unwrap()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("reading from broker: {e}"),
        }
    }

    /// Sends a request with this id; returns the lines received before its answer, and the answer.
    fn request_id(&mut self, id: Value, method: &str, params: Value) -> (Vec<Value>, Value) {
        self.send(json!({"id": id, "method": method, "params": params}));
        let mut before = Vec::new();
        loop {
            let v = self.recv().expect("connection closed before the answer");
            if v.get("method").is_none() && v["id"] == id {
                return (before, v);
            }
            before.push(v);
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.request_id(json!(id), method, params).1
    }

    fn status(&mut self) -> Value {
        self.call("broker/status", json!({}))["result"].clone()
    }

    /// Reads until a `turn/completed` notification; returns everything read, it included.
    fn until_turn_completed(&mut self) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let v = self.recv().expect("connection closed mid-stream");
            let done = v["method"] == "turn/completed";
            got.push(v);
            if done {
                return got;
            }
        }
    }

    /// Waits until the broker reports a state (other clients' disconnects reach it
    /// asynchronously).
    fn wait_status(&mut self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let st = self.status();
            if ok(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "status never became {what}: {st}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn turn(thread: &str, prompt: &str) -> Value {
    json!({"threadId": thread, "input": [{"type": "text", "text": prompt}]})
}

fn code(v: &Value) -> Option<i64> {
    v.pointer("/error/code").and_then(Value::as_i64)
}

/// Starts a thread and a turn on it; returns the thread id.
fn start_turn(c: &mut Client, prompt: &str) -> String {
    let t = c.call("thread/start", json!({}));
    let thread = t["result"]["thread"]["id"].as_str().unwrap().to_string();
    let r = c.call("turn/start", turn(&thread, prompt));
    assert_eq!(r["result"]["turn"]["status"], "inProgress", "{r}");
    thread
}

#[test]
fn serves_requests_and_answers_initialize_itself() {
    let sb = Sandbox::new();
    let home = sb.mkdir("home");
    let b = start_ready(&sb, &home, &[]);
    assert!(b.sock.exists());
    let mode = std::fs::metadata(&b.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pid_text = std::fs::read_to_string(&b.pid_file).unwrap();
    assert_eq!(pid_text, format!("{}\n", b.pid()));
    let mode = std::fs::metadata(&b.pid_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut c = b.connect();
    let init = c.call("initialize", json!({"clientInfo": {"name": "x"}}));
    assert_eq!(init["result"]["userAgent"], "codex-companion-broker");
    c.send(json!({"method": "initialized", "params": {}}));
    let acct = c.call("account/read", json!({}));
    assert_eq!(acct["result"]["account"], Value::Null);
    let who = c.call("fake/whoami", json!({}));
    let served = b.served();
    // The broker initialized its app-server once; the client's initialize never reached it.
    let methods: Vec<&str> = served
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["initialize", "account/read", "fake/whoami"]);
    let canonical_home = std::fs::canonicalize(&home).unwrap();
    for row in &served {
        assert_eq!(row["pid"], who["result"]["pid"]);
        assert_eq!(row["codexHome"], canonical_home.to_str().unwrap());
    }
    // A malformed line gets a parse error, and the connection stays usable.
    c.w.write_all(b"{nope\n").unwrap();
    let bad = c.recv().unwrap();
    assert_eq!(code(&bad), Some(-32700));
    assert_eq!(bad["id"], Value::Null);
    assert_eq!(
        c.call("account/read", json!({}))["result"]["account"],
        Value::Null
    );
}

#[test]
fn status_reports_identity_without_secrets() {
    let sb = Sandbox::new();
    let real_home = sb.mkdir("real-home");
    std::fs::write(
        real_home.join("auth.json"),
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test-secret"}"#,
    )
    .unwrap();
    // Through a symlink: the status must name the canonical home.
    let link = sb.at("link-home");
    std::os::unix::fs::symlink(&real_home, &link).unwrap();
    let b = start_ready(&sb, &link, &[]);
    let mut c = b.connect();
    let raw = {
        c.send(json!({"id": 1, "method": "broker/status"}));
        c.recv().unwrap()
    };
    assert!(!raw.to_string().contains("sk-test-secret"));
    let st = &raw["result"];
    let who = c.call("fake/whoami", json!({}));
    assert_eq!(st["busy"], false);
    assert_eq!(st["broker"], "codex-as");
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(st["pid"], b.pid());
    assert_eq!(st["appServerPid"], who["result"]["pid"]);
    let canonical = std::fs::canonicalize(&real_home).unwrap();
    assert_eq!(st["codexHome"], canonical.to_str().unwrap());
    assert_eq!(st["auth"]["method"], "api-key");
    let fp = st["auth"]["fingerprint"].as_str().unwrap();
    assert!(fp.starts_with("sha256:") && fp.len() == 23, "{fp}");
    assert_eq!(st["connections"], 1);
    assert!(st["startedAt"].as_u64().unwrap() > 1_600_000_000);
    assert!(st["idleSeconds"].is_u64());
    assert_eq!(st["endpoint"], b.endpoint);
    assert_eq!(
        st["cwd"],
        std::fs::canonicalize(sb.path()).unwrap().to_str().unwrap()
    );

    // The CLI's own status command parses the same answer.
    let out = Command::new(env!("CARGO_BIN_EXE_codex-as"))
        .args(["broker", "status", "--endpoint", &b.endpoint])
        .output()
        .unwrap();
    assert!(out.status.success());
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["pid"], b.pid());
    assert_eq!(parsed["auth"]["fingerprint"], fp);
}

#[test]
fn clients_share_the_app_server_at_once_and_any_may_interrupt() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut other = b.connect();
    let thread = start_turn(&mut a, "[[hang]]");

    // A's turn runs; the other client is served at once, and hears nothing of A's thread.
    let (before, acct) = other.request_id(json!(1), "account/read", json!({}));
    assert!(acct.get("result").is_some(), "{acct}");
    assert!(before.is_empty(), "leaked to a non-owner: {before:?}");
    let st = other.status();
    assert_eq!(st["busy"], true);
    assert_eq!(st["clients"], 1);
    assert_eq!(st["threadsInFlight"], 1);
    assert_eq!(st["threads"], json!([thread]));
    // It may interrupt A's turn (the plugin's cancel runs in another process); the turn's end
    // goes to A only.
    let r = other.call("turn/interrupt", json!({"threadId": thread}));
    assert_eq!(r["result"], json!({}), "{r}");
    let stream = a.until_turn_completed();
    assert_eq!(
        stream.last().unwrap()["params"]["turn"]["status"],
        "interrupted"
    );
    let (before, _) = other.request_id(json!(2), "account/read", json!({}));
    assert!(before.is_empty(), "leaked to a non-owner: {before:?}");
}

#[test]
fn turns_of_two_clients_run_at_once_each_with_its_own_events() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut c = b.connect();
    let ta = start_turn(&mut a, "[[delay:300]] [[stream:3]] [[tag:A]]");
    let tc = start_turn(&mut c, "[[delay:300]] [[stream:3]] [[tag:C]]");
    for (client, thread, tag) in [(&mut a, &ta, "[A]"), (&mut c, &tc, "[C]")] {
        let stream = client.until_turn_completed();
        assert!(
            stream
                .iter()
                .all(|v| v["params"]["threadId"] == json!(thread)
                    || v["params"]["thread"]["id"] == json!(thread)),
            "another thread's events: {stream:?}"
        );
        let last_text = stream
            .iter()
            .rev()
            .find_map(|v| v["params"]["item"]["text"].as_str())
            .unwrap();
        assert!(last_text.ends_with(tag), "{last_text}");
    }
    // Both turns were running on the one app-server at the same time.
    let served = b.served();
    let pids: std::collections::BTreeSet<u64> =
        served.iter().filter_map(|r| r["pid"].as_u64()).collect();
    assert_eq!(pids.len(), 1, "{served:?}");
    let order: Vec<&str> = served
        .iter()
        .filter_map(|r| r["method"].as_str())
        .filter(|m| *m == "turn/start" || *m == "turn/completed")
        .collect();
    assert_eq!(
        order,
        [
            "turn/start",
            "turn/start",
            "turn/completed",
            "turn/completed"
        ]
    );
}

#[test]
fn notifications_go_to_the_owner_only() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut idle = b.connect();
    assert_eq!(idle.status()["connections"], 2);
    start_turn(&mut a, "[[stream:5]]");
    let stream = a.until_turn_completed();
    let parts = stream
        .iter()
        .filter(|v| v["method"] == "item/completed")
        .count();
    assert_eq!(
        parts, 6,
        "5 streamed items and the final message: {stream:?}"
    );
    let (before, _) = idle.request_id(json!(1), "account/read", json!({}));
    assert!(before.is_empty(), "leaked to a non-owner: {before:?}");
}

#[test]
fn request_ids_are_remapped_so_clients_never_collide() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let workers: Vec<_> = (0..6)
        .map(|n| {
            let sock = b.sock.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock).unwrap();
                let mut busy = 0;
                let mut served = 0;
                while served < 10 {
                    // Every client uses the same ids.
                    let (_, r) = c.request_id(json!(served), "fake/whoami", json!({}));
                    assert_eq!(r["id"], json!(served));
                    match code(&r) {
                        Some(-32001) => busy += 1,
                        None => served += 1,
                        other => panic!("client {n}: unexpected {other:?}: {r}"),
                    }
                }
                busy
            })
        })
        .collect();
    let busy: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!("60 requests served, {busy} busy answers on the way");
    let whoami = b
        .served()
        .iter()
        .filter(|r| r["method"] == "fake/whoami")
        .count();
    assert_eq!(whoami, 60);
}

#[test]
fn app_server_requests_go_to_the_threads_client_only() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut other = b.connect();
    other.call("account/read", json!({}));
    start_turn(&mut a, "[[server-request]]");
    let ask = loop {
        let v = a.recv().expect("closed");
        if v.get("id").is_some() && v.get("method").is_some() {
            break v;
        }
    };
    assert_eq!(ask["method"], "item/commandExecution/requestApproval");
    // Answered as the plugin's companion answers every server request.
    a.send(json!({"id": ask["id"], "error": {"code": -32601, "message": "Unsupported server request"}}));
    let stream = a.until_turn_completed();
    assert_eq!(
        stream.last().unwrap()["params"]["turn"]["status"],
        "completed"
    );
    let (before, _) = other.request_id(json!(5), "account/read", json!({}));
    assert!(before.is_empty(), "reached another client: {before:?}");
}

#[test]
fn app_server_requests_nobody_can_answer_are_refused_so_turns_never_hang() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    // A thread the client owns no more (another connection ran the turn, then left).
    let t = a.call("thread/start", json!({}));
    let thread = t["result"]["thread"]["id"].as_str().unwrap().to_string();
    let mut runner = b.connect();
    let r = runner.call(
        "turn/start",
        turn(&thread, "[[server-request]] [[delay:50]]"),
    );
    assert_eq!(r["result"]["turn"]["status"], "inProgress", "{r}");
    let ask = loop {
        let v = runner.recv().expect("closed");
        if v.get("id").is_some() && v.get("method").is_some() {
            break v;
        }
    };
    assert_eq!(ask["method"], "item/commandExecution/requestApproval");
    // The runner leaves without answering: the broker refuses for it; A still owns the thread
    // and hears the turn end.
    drop(runner);
    let stream = a.until_turn_completed();
    assert!(stream.iter().all(|v| v.get("id").is_none()), "{stream:?}");
}

#[test]
fn a_client_leaving_mid_turn_interrupts_only_its_own_turn() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut next = b.connect();
    let first = start_turn(&mut a, "[[hang]]");
    let second = start_turn(&mut next, "[[delay:400]] [[stream:2]]");
    drop(a);
    next.wait_status("A's turn ended", |st| {
        st["clients"] == 0 && st["threadsInFlight"] == 1 && st["threads"] == json!([second])
    });
    let stream = next.until_turn_completed();
    for v in &stream {
        assert_ne!(v["params"]["threadId"], first, "abandoned turn leaked: {v}");
    }
    assert_eq!(stream.last().unwrap()["params"]["threadId"], second);
    assert_eq!(
        stream.last().unwrap()["params"]["turn"]["status"],
        "completed"
    );
    let methods: Vec<Value> = b
        .served()
        .into_iter()
        .map(|r| r["method"].clone())
        .collect();
    assert!(
        methods.contains(&json!("turn/interrupt")),
        "the abandoned turn was not interrupted: {methods:?}"
    );
}

#[test]
fn app_server_death_mid_request_answers_an_error_and_exits_cleanly() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    let r = a.call("fake/die", json!({}));
    assert_eq!(code(&r), Some(-32000), "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("exited unexpectedly (exit 3)"), "{msg}");
    assert_eq!(a.recv(), None, "the broker closes the connection");
    let status = b.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(b.stderr().contains("exit 3"), "{}", b.stderr());
    b.assert_cleaned_up(app_pid);
}

#[test]
fn app_server_death_mid_turn_ends_the_stream() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut watcher = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    let thread = start_turn(&mut a, "[[die]]");
    // The owner's stream ends as a failed turn (an error, then turn/completed "failed"), so a
    // client reports the failure instead of a silent close; then the connection closes.
    let mut seen = Vec::new();
    while let Some(v) = a.recv() {
        seen.push(v);
    }
    let methods: Vec<&str> = seen.iter().filter_map(|v| v["method"].as_str()).collect();
    let tail = &methods[methods.len().saturating_sub(2)..];
    assert_eq!(tail, ["error", "turn/completed"], "{seen:?}");
    let done = seen.last().unwrap();
    assert_eq!(done["params"]["threadId"], json!(thread));
    assert_eq!(done["params"]["turn"]["status"], "failed");
    assert!(
        done["params"]["turn"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("app-server")),
        "{done}"
    );
    assert_eq!(watcher.recv(), None, "only the owner hears of its turn");
    assert_eq!(b.wait_exit().code(), Some(1));
    b.assert_cleaned_up(app_pid);
}

#[test]
fn shutdown_if_idle_is_refused_while_anyone_is_connected() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut admin = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    let thread = start_turn(&mut a, "[[hang]]");
    let r = admin.call("broker/shutdown", json!({"ifIdle": true}));
    assert_eq!(r["result"], json!({"shutdown": false, "busy": true}));
    // Still serving A; A between two requests still counts (issue 14, item 1).
    a.call("turn/interrupt", json!({"threadId": thread}));
    a.until_turn_completed();
    let r = admin.call("broker/shutdown", json!({"ifIdle": true}));
    assert_eq!(r["result"], json!({"shutdown": false, "busy": true}));
    let r = a.call("thread/start", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    drop(a);
    admin.wait_status("alone", |st| st["clients"] == 0);
    let r = admin.call("broker/shutdown", json!({"ifIdle": true}));
    assert_eq!(r["result"]["shutdown"], true, "{r}");
    assert_eq!(admin.recv(), None);
    assert_eq!(b.wait_exit().code(), Some(0));
    b.assert_cleaned_up(app_pid);
}

#[test]
fn plain_shutdown_answers_like_the_plugins_but_never_fails_work() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let mut admin = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    let thread = start_turn(&mut a, "[[hang]]");
    // What the plugin's SessionEnd sends.
    let r = admin.call("broker/shutdown", json!({}));
    assert_eq!(r["result"], json!({}));
    drop(admin);
    // A's turn goes on, and the broker serves A's next requests.
    let r = a.call("account/read", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    a.call("turn/interrupt", json!({"threadId": thread}));
    let stream = a.until_turn_completed();
    assert_eq!(
        stream.last().unwrap()["params"]["turn"]["status"],
        "interrupted"
    );
    drop(a);
    let mut admin = b.connect();
    admin.wait_status("alone", |st| st["clients"] == 0 && st["busy"] == false);
    let r = admin.call("broker/shutdown", json!({}));
    assert_eq!(r["result"], json!({}));
    assert_eq!(admin.recv(), None, "idle: it stops");
    assert_eq!(b.wait_exit().code(), Some(0));
    b.assert_cleaned_up(app_pid);
}

#[test]
fn shutdown_command_if_idle() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    let thread = start_turn(&mut a, "[[hang]]");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_codex-as"))
            .args(["broker", "shutdown", "--if-idle", "--endpoint", &b.endpoint])
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("busy"));
    a.call("turn/interrupt", json!({"threadId": thread}));
    a.until_turn_completed();
    drop(a);
    assert!(run().status.success());
    assert_eq!(b.wait_exit().code(), Some(0));
    b.assert_cleaned_up(app_pid);
}

#[test]
fn signals_stop_it_cleanly() {
    for sig in [nix::sys::signal::SIGTERM, nix::sys::signal::SIGINT] {
        let sb = Sandbox::new();
        let mut b = start_ready(&sb, &sb.mkdir("home"), &[]);
        let mut a = b.connect();
        let app_pid = a.status()["appServerPid"].as_u64().unwrap();
        start_turn(&mut a, "[[hang]]");
        let pid = nix::unistd::Pid::from_raw(b.pid() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
        while a.recv().is_some() {}
        assert_eq!(b.wait_exit().code(), Some(0), "{sig}");
        b.assert_cleaned_up(app_pid);
    }
}

#[test]
fn idle_exit_waits_for_clients_and_work() {
    let sb = Sandbox::new();
    let mut b = start_ready(&sb, &sb.mkdir("home"), &["--idle-exit", "100ms"]);
    let mut a = b.connect();
    let app_pid = a.status()["appServerPid"].as_u64().unwrap();
    // A connected client keeps it alive however long it stays quiet: it still answers after
    // several idle periods (the turn below takes 300ms).
    start_turn(&mut a, "[[delay:300]]");
    a.until_turn_completed();
    assert!(a.call("account/read", json!({})).get("result").is_some());
    drop(a);
    assert_eq!(b.wait_exit().code(), Some(0));
    b.assert_cleaned_up(app_pid);
}

/// The idle exit racing a client that connects at about the same moment: a client whose
/// connection was accepted must get its answer; being refused (or finding no socket) is fine.
#[test]
fn idle_exit_never_drops_a_client_it_accepted() {
    const ITERATIONS: usize = 240;
    const WORKERS: usize = 2;
    let results: Vec<(usize, usize)> = (0..WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                let (mut served, mut refused) = (0, 0);
                for i in 0..ITERATIONS / WORKERS {
                    let sb = Sandbox::new();
                    let mut b = start_ready(&sb, &sb.mkdir("home"), &["--idle-exit", "20ms"]);
                    // Spread the connect over the moment of the idle decision.
                    std::thread::sleep(Duration::from_micros(((i * 7 + w * 3) % 40) as u64 * 1000));
                    match Client::connect(&b.sock) {
                        Err(e) => {
                            assert!(
                                matches!(
                                    e.kind(),
                                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                                ),
                                "iteration {i}: {e}"
                            );
                            refused += 1;
                        }
                        Ok(mut c) => {
                            c.send(json!({"id": 1, "method": "fake/whoami", "params": {}}));
                            let answer = c.recv();
                            assert!(
                                answer.as_ref().is_some_and(|a| a["result"]["pid"].is_u64()),
                                "iteration {i}: an accepted client was dropped: {answer:?}"
                            );
                            served += 1;
                        }
                    }
                    assert_eq!(b.wait_exit().code(), Some(0), "iteration {i}");
                    assert!(!b.sock.exists() && !b.pid_file.exists());
                }
                (served, refused)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let served: usize = results.iter().map(|r| r.0).sum();
    let refused: usize = results.iter().map(|r| r.1).sum();
    eprintln!("{ITERATIONS} races: {served} clients served, {refused} refused, 0 dropped");
}

#[test]
fn refuses_a_live_socket_and_replaces_a_stale_one() {
    let sb = Sandbox::new();
    let home = sb.mkdir("home");
    let first = start_ready(&sb, &home, &[]);
    // A second broker on the same path fails before ready, and leaves the first alone.
    let mut second = start_at(&sb, &first.sock, &home, &[], &[]);
    assert_eq!(second.ready, "");
    assert_ne!(second.wait_exit().code(), Some(0));
    let err = second.stderr();
    assert!(err.contains("a broker is listening there"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(first.connect().status()["pid"], first.pid());
    drop(first);

    // A dead socket of ours (as a crash leaves) is replaced.
    let stale = sb.at("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let b = start_at(&sb, &stale, &home, &[], &[]);
    assert_eq!(b.ready, "ready\n", "{}", b.stderr());
    assert_eq!(b.connect().status()["busy"], false);

    // Something that is not a socket is never removed.
    let file = sb.at("file");
    std::fs::write(&file, "x").unwrap();
    let mut b = start_at(&sb, &file, &home, &[], &[]);
    assert_eq!(b.ready, "");
    assert_ne!(b.wait_exit().code(), Some(0));
    assert!(file.exists());
}

#[test]
fn fails_before_ready_with_one_line_when_codex_is_missing_or_broken() {
    let sb = Sandbox::new();
    let home = sb.mkdir("home");
    let missing = sb.at("no-such-codex");
    let mut b = start(
        &sb,
        &home,
        &[],
        &[("CODEX_AS_CODEX", missing.to_str().unwrap())],
    );
    assert_eq!(b.ready, "");
    assert_ne!(b.wait_exit().code(), Some(0));
    let err = b.stderr();
    assert!(
        err.contains("no-such-codex") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!b.sock.exists() && !b.pid_file.exists());

    // Not on PATH either.
    let sb = Sandbox::new();
    let mut b = start(
        &sb,
        &home,
        &[],
        &[("CODEX_AS_CODEX", ""), ("PATH", "/nonexistent")],
    );
    assert_eq!(b.ready, "");
    assert_ne!(b.wait_exit().code(), Some(0));
    assert!(b.stderr().contains("codex not found"), "{}", b.stderr());

    // An app-server that dies at start: Codex refuses a missing CODEX_HOME.
    let sb = Sandbox::new();
    let gone = sb.at("gone-home");
    let mut b = start(&sb, &gone, &[], &[]);
    assert_eq!(b.ready, "");
    assert_ne!(b.wait_exit().code(), Some(0));
    assert!(b.stderr().contains("exited unexpectedly"), "{}", b.stderr());
    assert!(!b.sock.exists() && !b.pid_file.exists());
}

#[test]
fn each_broker_serves_its_own_home() {
    let sb = Sandbox::new();
    let home_a = sb.mkdir("a");
    let home_b = sb.mkdir("b");
    std::fs::write(
        home_a.join("auth.json"),
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-a"}"#,
    )
    .unwrap();
    let a = start_at(&sb, &sb.at("sa"), &home_a, &[], &[]);
    let b = start_at(&sb, &sb.at("sb"), &home_b, &[], &[]);
    assert_eq!((a.ready.as_str(), b.ready.as_str()), ("ready\n", "ready\n"));
    let who_a = a.connect().call("account/read", json!({}));
    let who_b = b.connect().call("account/read", json!({}));
    assert_eq!(who_a["result"]["account"]["type"], "apiKey");
    assert_eq!(who_b["result"]["account"], Value::Null);
    assert_eq!(
        who_a["result"]["codexHome"],
        std::fs::canonicalize(&home_a).unwrap().to_str().unwrap()
    );
    assert_eq!(
        who_b["result"]["codexHome"],
        std::fs::canonicalize(&home_b).unwrap().to_str().unwrap()
    );
}

/// The real `codex app-server` (CODEX_AS_REAL_CODEX names the binary) behind two brokers, one
/// per home: each serves its own account.
#[test]
fn real_codex_serves_each_home_its_own_account() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let sb = Sandbox::new();
        let user_home = sb.mkdir("user");
        let tmp = sb.mkdir("tmp");
        let sandbox_env = |cmd: &mut Command| {
            cmd.env("HOME", &user_home).env("TMPDIR", &tmp);
        };
        let keyed = sb.mkdir("keyed");
        let logged_out = sb.mkdir("out");
        let mut login = Command::new(&codex);
        login
            .args(["login", "--with-api-key"])
            .env("CODEX_HOME", &keyed)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sandbox_env(&mut login);
        let mut child = login.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"sk-test-123")
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "codex login --with-api-key failed"
        );

        let env = [
            ("CODEX_AS_CODEX", codex.to_str().unwrap()),
            ("HOME", user_home.to_str().unwrap()),
            ("TMPDIR", tmp.to_str().unwrap()),
        ];
        let brokers = [
            (start_at(&sb, &sb.at("k"), &keyed, &[], &env), &keyed, true),
            (
                start_at(&sb, &sb.at("o"), &logged_out, &[], &env),
                &logged_out,
                false,
            ),
        ];
        // Both asked first, then both answers read: the two app-servers work at the same time.
        let mut clients: Vec<Client> = brokers
            .iter()
            .map(|(b, ..)| {
                assert_eq!(b.ready, "ready\n", "{}", b.stderr());
                let mut c = b.connect();
                let init = c.call(
                    "initialize",
                    json!({"clientInfo": {"name": "t", "version": "0"}}),
                );
                assert!(init.get("result").is_some(), "{init}");
                c.send(json!({"method": "initialized"}));
                c.send(json!({"id": 1, "method": "account/read", "params": {}}));
                c.send(json!({"id": 2, "method": "thread/start", "params": {}}));
                c
            })
            .collect();
        for ((_, home, has_key), c) in brokers.iter().zip(clients.iter_mut()) {
            let home = std::fs::canonicalize(home).unwrap();
            let mut answers = std::collections::HashMap::new();
            while answers.len() < 2 {
                let v = c.recv().expect("connection closed");
                if v.get("method").is_none() {
                    answers.insert(v["id"].as_u64().unwrap(), v);
                }
            }
            let account = &answers[&1]["result"]["account"];
            if *has_key {
                assert_eq!(account["type"], "apiKey", "{account}");
            } else {
                assert_eq!(account, &Value::Null);
            }
            let thread = &answers[&2]["result"]["thread"];
            let rollout = thread["path"].as_str().unwrap_or_default();
            assert!(
                rollout.starts_with(home.to_str().unwrap()),
                "thread of {} recorded at {rollout:?}",
                home.display()
            );
            // Codex records the broker's client identity, as it does for the plugin's broker.
            assert_eq!(thread["originator"], "Claude Code", "{thread}");
            let st = c.status();
            assert_eq!(st["codexHome"], home.to_str().unwrap());
            assert_eq!(
                st["auth"]["method"],
                if *has_key { "api-key" } else { "logged-out" }
            );
            assert_eq!(st["auth"]["fingerprint"].is_string(), *has_key);
            assert!(!st.to_string().contains("sk-test-123"));
        }
    }
}

/// The plugin's own companion (every version of the matrix, support/peers.rs) runs a task
/// through the broker without knowing it is not the plugin's, also while another client's turn
/// runs there (the plugin's own broker would answer busy, and the companion would start an
/// app-server of its own).
#[test]
fn plugin_companion_uses_it_unknowingly() {
    if !have_node() {
        return;
    }
    for plugin in plugin_versions() {
        eprintln!("-- against the real plugin {}", plugin.version);
        plugin_companion_uses_it_unknowingly_on(&plugin);
    }
}

fn plugin_companion_uses_it_unknowingly_on(plugin: &Plugin) {
    let companion = plugin.root.join("scripts/codex-companion.mjs");
    let sb = Sandbox::new();
    let home = sb.mkdir("home");
    let bin = sb.mkdir("bin");
    std::os::unix::fs::symlink(fake_codex(), bin.join("codex")).unwrap();
    let ws = sb.mkdir("ws");
    if plugin.checks_login_with_cli() {
        // Its task refuses to start unless `codex login status` succeeds in this home.
        std::fs::write(
            home.join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
        )
        .unwrap();
    }
    let b = start_ready(&sb, &home, &[]);
    let broker_app_pid = b.connect().status()["appServerPid"].clone();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_task = |prompt: &str| {
        let out = Command::new("node")
            .arg(&companion)
            .args(["task", "--wait", prompt])
            .current_dir(&ws)
            .env("PATH", &path)
            .env("HOME", sb.path())
            .env("TMPDIR", sb.mkdir("tmp"))
            .env("CLAUDE_PLUGIN_DATA", sb.mkdir("data"))
            .env("CODEX_HOME", &home)
            .env("CODEX_COMPANION_APP_SERVER_ENDPOINT", &b.endpoint)
            .env("FAKE_CODEX_LOG", &b.log)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let turn_pids = || -> Vec<Value> {
        b.served()
            .into_iter()
            .filter(|r| r["method"] == "turn/start")
            .map(|r| r["pid"].clone())
            .collect()
    };

    let out = run_task("say hi [[stream:2]]");
    assert!(out.contains("done by"), "{out}");
    assert_eq!(turn_pids(), std::slice::from_ref(&broker_app_pid));

    let mut owner = b.connect();
    start_turn(&mut owner, "[[hang]]");
    let out = run_task("while another turn runs");
    assert!(out.contains("done by"), "{out}");
    let pids = turn_pids();
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_eq!(
        pids[2], broker_app_pid,
        "the shared broker served the companion beside the other turn"
    );
}

/// `codex-as broker status` against the plugin's own (legacy) Node broker, idle then busy: the
/// client helpers must tell it apart from a broker that reports its status. Every release has
/// the same legacy broker; PR #369's reports its status, so it is not one.
#[test]
fn status_tells_a_legacy_plugin_broker() {
    if !have_node() {
        return;
    }
    for plugin in plugin_versions().into_iter().filter(|p| !p.is_patched()) {
        eprintln!("-- against the real plugin {}", plugin.version);
        status_tells_a_legacy_plugin_broker_on(&plugin);
    }
}

fn status_tells_a_legacy_plugin_broker_on(plugin: &Plugin) {
    let script = plugin.root.join("scripts/app-server-broker.mjs");
    let sb = Sandbox::new();
    let home = sb.mkdir("home");
    let bin = sb.mkdir("bin");
    std::os::unix::fs::symlink(fake_codex(), bin.join("codex")).unwrap();
    let sock = sb.at("s");
    let endpoint = format!("unix:{}", sock.display());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("node")
        .arg(&script)
        .args(["serve", "--endpoint", &endpoint, "--cwd"])
        .arg(sb.path())
        .env("PATH", &path)
        .env("CODEX_HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Broker {
        child: Some(child),
        endpoint: endpoint.clone(),
        sock: sock.clone(),
        pid_file: sb.at("none"),
        log: sb.at("log"),
        stderr: sb.at("none"),
        ready: String::new(),
    };
    // The plugin's broker has no readiness signal: like the plugin, wait for the socket.
    let deadline = Instant::now() + HANG_GUARD;
    let mut owner = loop {
        match Client::connect(&sock) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("plugin broker never listened: {e}"),
        }
    };
    let status = || {
        Command::new(env!("CARGO_BIN_EXE_codex-as"))
            .args(["broker", "status", "--endpoint", &endpoint])
            .output()
            .unwrap()
    };
    let out = status();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not report its status"), "{err}");
    start_turn(&mut owner, "[[hang]]");
    let out = status();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("busy"), "{err}");
}

/// Ready means ready: the ready line comes only after the app-server answered `initialize`, even
/// when it is slow to start, and clients that connect earlier simply wait.
#[test]
fn ready_only_after_the_app_server_is_initialized() {
    let sb = Sandbox::new();
    let b = start(
        &sb,
        &sb.mkdir("home"),
        &[],
        &[("FAKE_CODEX_STARTUP_MS", "400")],
    );
    assert_eq!(b.ready, "ready\n", "{}", b.stderr());
    let served = b.served();
    assert_eq!(
        served.first().map(|r| r["method"].clone()),
        Some(json!("initialize")),
        "ready before the app-server answered initialize"
    );
    assert_eq!(b.connect().status()["busy"], false);
}

#[test]
fn clients_past_the_cap_are_answered_busy_until_a_place_frees_up() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &["--max-clients", "1"]);
    let mut a = b.connect();
    assert!(a.call("account/read", json!({})).get("result").is_some());
    // Past the cap: busy for work, as the plugin's broker answers (a companion then runs its own
    // app-server on the same account), but status still answers.
    let mut over = b.connect();
    let r = over.call("account/read", json!({}));
    assert_eq!(code(&r), Some(-32001), "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Shared Codex broker is busy."), "{msg}");
    assert!(msg.contains("1 clients at most"), "{msg}");
    let st = over.status();
    assert_eq!(
        (st["maxClients"].clone(), st["connections"].clone()),
        (json!(1), json!(2))
    );
    drop(a);
    over.wait_status("A gone", |st| st["clients"] == 0);
    let mut next = b.connect();
    assert!(next.call("account/read", json!({})).get("result").is_some());
}

/// The descriptors a process has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A flood of idle connections costs the broker the clients it serves and a few spare places,
/// not a descriptor each: the rest wait in the listen backlog, and the clients it serves are
/// still answered.
#[test]
fn a_flood_of_idle_connections_waits_in_the_backlog() {
    const FLOOD: usize = 600;
    const MAX_CLIENTS: usize = 64;
    // The broker's SPARE_PLACES: connections past the cap that it holds to answer them busy.
    const SPARE: usize = 8;
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &["--max-clients", "64"]);
    let mut a = b.connect();
    assert_eq!(a.status()["connections"], 1);
    let quiet = open_fds(b.pid());
    let flood: Vec<UnixStream> = (0..FLOOD)
        .map(|_| UnixStream::connect(&b.sock).unwrap())
        .collect();
    let st = a.wait_status("full", |st| st["connections"] == MAX_CLIENTS + SPARE);
    // Whatever else it could still accept would have been by now.
    std::thread::sleep(Duration::from_millis(200));
    let fds = open_fds(b.pid());
    eprintln!(
        "{FLOOD} idle connections against --max-clients {MAX_CLIENTS}: {fds} descriptors open \
         ({quiet} with one client), {} connections held",
        st["connections"]
    );
    assert!(fds <= 2 * MAX_CLIENTS, "{fds} descriptors open");
    assert_eq!(a.status()["connections"], MAX_CLIENTS + SPARE);
    assert!(a.call("fake/whoami", json!({}))["result"]["pid"].is_u64());
    // The flood leaves; those that waited in the backlog are let in and go, and a newcomer is
    // served.
    drop(flood);
    a.wait_status("the flood gone", |st| st["clients"] == 0);
    assert!(b.connect().call("fake/whoami", json!({}))["result"]["pid"].is_u64());
}

/// A client that sends a line past the limit (64 MiB) is disconnected, and the log says which
/// and why; the others are served meanwhile.
#[test]
fn a_line_too_long_from_a_client_drops_it_and_says_why() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut other = b.connect();
    let mut hog = b.connect();
    let mut w = hog.w.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        (0..70).all(|_| w.write_all(&chunk).is_ok())
    });
    let mut calls = 0;
    while calls == 0 || !sender.is_finished() {
        assert!(other.call("fake/whoami", json!({}))["result"]["pid"].is_u64());
        calls += 1;
    }
    let sent_all = sender.join().unwrap();
    assert_eq!(hog.recv(), None, "the broker closed the connection");
    let log = b.stderr();
    assert!(
        log.contains("sent a line longer than 64 MiB (") && log.contains("disconnecting it"),
        "{log}"
    );
    eprintln!(
        "{calls} calls answered while 70 MiB were sent (all written: {sent_all}); log: {}",
        log.lines()
            .find(|l| l.contains("64 MiB"))
            .unwrap_or_default()
    );
    assert!(other.call("fake/whoami", json!({}))["result"]["pid"].is_u64());
}

/// A line past the limit from the app-server is dropped and said to be too long; a request
/// whose answer it was fails, and the broker goes on serving.
#[test]
fn a_line_too_long_from_the_app_server_fails_only_its_request() {
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut c = b.connect();
    let r = c.call("fake/huge", json!({}));
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("too long"), "{r}");
    assert!(
        b.stderr().contains("codex app-server sent a line too long"),
        "{}",
        b.stderr()
    );
    assert!(!b.stderr().contains("unexpectedly"), "{}", b.stderr());
    assert!(c.call("fake/whoami", json!({}))["result"]["pid"].is_u64());
}

/// Out of descriptors, the broker stops accepting for a while, longer each time accepting fails
/// again, and serves its clients meanwhile (it used to sleep in its event loop, stalling them);
/// once some leave, it accepts the others.
#[test]
fn out_of_descriptors_it_backs_off_and_serves_the_others() {
    const LIMIT: u64 = 40;
    let sb = Sandbox::new();
    let b = start_ready(&sb, &sb.mkdir("home"), &[]);
    let mut a = b.connect();
    assert_eq!(a.status()["connections"], 1);
    let limit = nix::libc::rlimit {
        rlim_cur: LIMIT,
        rlim_max: LIMIT,
    };
    // SAFETY: one rlimit owned by this frame, for a child of this process.
    let set = unsafe {
        nix::libc::prlimit(
            b.pid() as i32,
            nix::libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "{}", io::Error::last_os_error());
    let mut crowd: Vec<UnixStream> = (0..LIMIT)
        .map(|_| UnixStream::connect(&b.sock).unwrap())
        .collect();
    let deadline = Instant::now() + HANG_GUARD;
    while !b.stderr().contains("accept failed") {
        assert!(
            Instant::now() < deadline,
            "no accept failed: {}",
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    for _ in 0..30 {
        assert!(a.call("fake/whoami", json!({}))["result"]["pid"].is_u64());
    }
    let took = started.elapsed();
    eprintln!("30 calls answered in {took:?} while accepting failed");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let log = b.stderr();
    assert!(log.contains("accepting again in"), "{log}");
    // The first ones were accepted; the last ones still wait in the backlog.
    crowd.drain(..LIMIT as usize / 2);
    let st = a.wait_status("the others accepted", |st| {
        st["connections"] == 1 + LIMIT / 2
    });
    assert_eq!(st["clients"], LIMIT / 2);
}
