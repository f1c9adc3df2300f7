//! Benchmark: how long a turn that hits the usage limit waits before it runs on the next
//! account, against a plain `thread/resume` + `turn/start` of the same thread on a warm
//! app-server of that account. Run it with `bench/handover.sh`.
//!
//! Everything is real but the model: the real `codex app-server`, the built codex-as (its relay
//! `codex-as relay serve --route a,b` and the brokers it starts), and the local model stub
//! `tests/fixtures/model-stub.mjs`, whose request log timestamps both ends of every figure.
//!
//! - A thread of N items (items = `response_item` lines of its rollout: messages and
//!   reasoning) is one real turn run on account a, grown with turns of the same shape (fresh
//!   ids, ordinals, timestamps; reasoning encrypted for a's key). Each run gets a fresh copy
//!   under a new thread id, so no app-server has it loaded already.
//! - baseline: the thread as a carry leaves it in b's home (no encrypted reasoning), b's
//!   `codex app-server` (stdio, initialized) warm; from sending `thread/resume` to the stub
//!   receiving b's model request for the following `turn/start`.
//! - handover: the companion's requests through the relay; a's key is limited, so a's
//!   app-server gets HTTP 429 from the stub; from the stub answering that 429 to the stub
//!   receiving b's model request (the relay holds the failure back, carries the thread, resumes
//!   it on b through b's broker and starts the same turn there). "warm": b's broker is running;
//!   "cold": every codex-as broker was stopped before the run, so b's broker and its app-server
//!   start inside the measured span.
//! - broker hop / broker+carry: the baseline through b's codex-as broker instead of a plain
//!   app-server, the thread already in b's home / only in a's (the broker carries it in on
//!   `thread/resume`): what the broker and its carry add, without the failure and the relay.
//! - The kinds run interleaved (one of each, BENCH_RUNS times), so that the load of the machine
//!   weighs on each alike; the table shows medians. Nothing here is a test: timing depends on
//!   the machine.
//! - BENCH_TRACE=FILE runs the relay under strace and prints, per handover, when the relay
//!   started and finished the carry, sent b's `thread/resume`, then its `turn/start`.
//!
//! Environment: CODEX_AS_BIN (default target/release/codex-as), CODEX_AS_BENCH_CODEX or the
//! first path of CODEX_AS_REAL_CODEX (default `codex` on PATH), BENCH_RUNS (default 5),
//! BENCH_ITEMS (default 10,1000,10000), BENCH_TRACE, BENCH_KEEP=1 keeps the sandbox.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, String>;

const KEY_A: &str = "sk-bench-handover-a";
const KEY_B: &str = "sk-bench-handover-b";
const TURN_TIMEOUT: Duration = Duration::from_secs(300);

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fingerprint(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Milliseconds since the epoch of the stub's `new Date().toISOString()`.
fn iso_ms(s: &str) -> Option<f64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, mi, sec) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 86400 + h * 3600 + mi * 60) as f64 + sec) * 1000.0)
}

fn new_uuid() -> Res<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("uuid: {e}"))
}

/// A newline JSON-RPC peer: an app-server over stdio or a relay/broker over a unix socket.
struct Rpc {
    w: Box<dyn Write + Send>,
    rx: mpsc::Receiver<String>,
    next: u64,
    _child: Option<Guard>,
    /// Shut down on drop: the reader thread holds its own handle of the socket.
    sock: Option<UnixStream>,
}

impl Drop for Rpc {
    fn drop(&mut self) {
        if let Some(s) = &self.sock {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Rpc {
    fn over(r: impl Read + Send + 'static, w: Box<dyn Write + Send>, child: Option<Guard>) -> Rpc {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Rpc {
            w,
            rx,
            next: 0,
            _child: child,
            sock: None,
        }
    }

    fn app_server(codex: &Path, home: &Path, env: &Env) -> Res<Rpc> {
        let mut c = env.command(codex);
        c.arg("app-server")
            .env("CODEX_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c.spawn().map_err(|e| format!("codex app-server: {e}"))?;
        let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
            return Err("app-server pipes".into());
        };
        let mut rpc = Rpc::over(out, Box::new(inp), Some(Guard(child)));
        rpc.initialize()?;
        Ok(rpc)
    }

    fn socket(path: &Path) -> Res<Rpc> {
        let s = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let w = s.try_clone().map_err(|e| e.to_string())?;
        let keep = s.try_clone().map_err(|e| e.to_string())?;
        let mut rpc = Rpc::over(s, Box::new(w), None);
        rpc.sock = Some(keep);
        rpc.initialize()?;
        Ok(rpc)
    }

    fn initialize(&mut self) -> Res<()> {
        self.request(
            "initialize",
            json!({"clientInfo": {"name": "codex-as-bench", "title": "bench", "version": "0"}}),
        )?;
        self.send(&json!({"method": "initialized"}))
    }

    fn send(&mut self, v: &Value) -> Res<()> {
        writeln!(self.w, "{v}")
            .and_then(|_| self.w.flush())
            .map_err(|e| format!("send: {e}"))
    }

    fn recv(&mut self, deadline: Instant) -> Res<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self
            .rx
            .recv_timeout(left)
            .map_err(|e| format!("recv: {e}"))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad line {e}: {line}"))?;
        if v.get("method").is_some() && v.get("id").is_some() {
            // A server request (approval...): refused, as the e2e support does.
            let id = v["id"].clone();
            self.send(&json!({"id": id, "error": {"code": -32601, "message": "unsupported"}}))?;
        }
        Ok(v)
    }

    fn request(&mut self, method: &str, params: Value) -> Res<Value> {
        self.next += 1;
        let id = self.next;
        self.send(&json!({"id": id, "method": method, "params": params}))?;
        let deadline = Instant::now() + TURN_TIMEOUT;
        loop {
            let v = self.recv(deadline)?;
            if v.get("method").is_none() && v["id"] == json!(id) {
                if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// Waits for `turn/completed` and returns its turn.
    fn until_turn_completed(&mut self) -> Res<Value> {
        let deadline = Instant::now() + TURN_TIMEOUT;
        loop {
            let v = self.recv(deadline)?;
            if v["method"] == "turn/completed" {
                return Ok(v["params"]["turn"].clone());
            }
        }
    }
}

struct Env {
    root: PathBuf,
    path: String,
}

/// Stops what the bench started that outlives it on its own: the detached brokers (asked
/// first, then, as the e2e sandbox does, any process left with the sandbox's HOME, by pid).
struct Cleanup {
    env: Env,
    codex_as: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self
            .env
            .command(&self.codex_as)
            .args(["brokers", "stop", "--all", "--timeout", "10s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mark = format!("HOME={}", self.env.root.join("home").display());
        let me = std::process::id();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if pid as u32 == me {
                continue;
            }
            let Ok(environ) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            if environ.split(|b| *b == 0).any(|v| v == mark.as_bytes()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Env {
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        let r = &self.root;
        c.env_clear()
            .env("HOME", r.join("home"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_DATA_HOME", r.join("data"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_STATE_HOME", r.join("state"))
            .env("XDG_RUNTIME_DIR", r.join("run"))
            .env("CODEX_AS_RUNTIME_DIR", r.join("rt"))
            .env("TMPDIR", r.join("tmp"))
            .env("PATH", &self.path)
            .env("LANG", "C.UTF-8")
            .current_dir(r.join("ws"))
            .stdin(Stdio::null());
        c
    }

    fn home(&self, account: &str) -> PathBuf {
        self.root.join("home").join(format!(".codex-{account}"))
    }

    fn ws(&self) -> PathBuf {
        self.root.join("ws")
    }
}

/// The stub's request log, read from where the last look stopped.
struct Log {
    path: PathBuf,
    offset: u64,
}

struct Req {
    time: f64,
    key: String,
    body: Value,
}

impl Log {
    fn mark(&mut self) {
        self.offset = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
    }

    /// Model requests (POST .../responses) logged since the last mark.
    fn since_mark(&self) -> Res<Vec<Req>> {
        let mut f = std::fs::File::open(&self.path).map_err(|e| format!("stub log: {e}"))?;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        f.read_to_string(&mut text).map_err(|e| e.to_string())?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/responses"))
            })
            .filter_map(|v| {
                Some(Req {
                    time: iso_ms(v["time"].as_str()?)?,
                    key: v["key"].as_str()?.to_string(),
                    body: v["body"].clone(),
                })
            })
            .collect())
    }
}

fn input_len(body: &Value) -> usize {
    body["input"].as_array().map_or(0, Vec::len)
}

fn reasoning_of(body: &Value, fp: &str) -> usize {
    let tag = format!("stub-enc:{fp}:");
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["encrypted_content"]
                .as_str()
                .is_some_and(|e| e.starts_with(&tag))
        })
        .count()
}

fn write_home(home: &Path, url: &str, key: &str) -> Res<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(home).map_err(|e| e.to_string())?;
    let config = format!(
        "model = \"gpt-5.5\"\nmodel_provider = \"stub\"\n\n[model_providers.stub]\nname = \"stub\"\nbase_url = \"{url}\"\nwire_api = \"responses\"\nrequires_openai_auth = true\nrequest_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 20000\n"
    );
    let auth = format!("{{\n  \"auth_mode\": \"apikey\",\n  \"OPENAI_API_KEY\": \"{key}\"\n}}");
    for (name, text) in [("config.toml", config), ("auth.json", auth)] {
        let p = home.join(name);
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Every rollout under `dir`.
fn rollouts(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with("rollout-") {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `s[i..i+36]` is a UUID.
fn uuid_at(b: &[u8], i: usize) -> bool {
    if i + 36 > b.len() {
        return false;
    }
    (0..36).all(|k| match k {
        8 | 13 | 18 | 23 => b[i + k] == b'-',
        _ => b[i + k].is_ascii_hexdigit(),
    })
}

fn uuids_in(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if uuid_at(b, i) && (i == 0 || !b[i - 1].is_ascii_hexdigit()) {
            out.push(s[i..i + 36].to_string());
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

/// One real thread of account a, and how to make N-item copies of it.
struct Template {
    thread: String,
    /// Path of the rollout relative to the home.
    rel_dir: PathBuf,
    file_prefix: String,
    lines: Vec<String>,
    /// The lines of one turn that a grown thread repeats.
    turn: Vec<String>,
    user_text: String,
    end_ms: f64,
}

fn is_item(v: &Value) -> bool {
    v["type"] == "response_item"
}

fn is_reasoning(v: &Value) -> bool {
    is_item(v) && v["payload"]["type"] == "reasoning"
}

impl Template {
    fn from_rollout(home: &Path, path: &Path, thread: &str, user_text: &str) -> Res<Template> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).map_err(|e| format!("rollout line: {e}")))
            .collect::<Res<_>>()?;
        let start = parsed
            .iter()
            .position(|v| v["payload"]["type"] == "task_started")
            .ok_or("no task_started in the template")?;
        let end = parsed
            .iter()
            .rposition(|v| v["payload"]["type"] == "task_complete")
            .ok_or("no task_complete in the template")?;
        // A later turn of a thread repeats neither the instructions nor the context items.
        let turn = (start..=end)
            .filter(|&i| {
                let v = &parsed[i];
                let t = v["type"].as_str().unwrap_or("");
                let p = &v["payload"];
                let contextual = t == "response_item"
                    && p["type"] == "message"
                    && (p["role"] == "developer"
                        || p["content"][0]["text"]
                            .as_str()
                            .is_some_and(|s| s.starts_with('<')));
                !(contextual
                    || t == "world_state"
                    || (t == "event_msg" && p["type"] == "thread_settings_applied"))
            })
            .map(|i| lines[i].clone())
            .collect();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_prefix = name
            .strip_suffix(&format!("{thread}.jsonl"))
            .ok_or("unexpected rollout name")?
            .to_string();
        let rel_dir = path
            .parent()
            .and_then(|p| p.strip_prefix(home).ok())
            .ok_or("rollout outside the home")?
            .to_path_buf();
        let end_ms = parsed
            .last()
            .and_then(|v| iso_ms(v["timestamp"].as_str()?))
            .ok_or("no timestamp")?;
        Ok(Template {
            thread: thread.to_string(),
            rel_dir,
            file_prefix,
            lines,
            turn,
            user_text: user_text.to_string(),
            end_ms,
        })
    }

    /// A copy of the thread under a new id grown to at least `items` items; its rollout text
    /// (reasoning kept, or left out as a carry leaves it) and its item count.
    fn grow(&self, id: &str, items: usize, fp_a: &str) -> Res<Grown> {
        let mut out: Vec<Value> = Vec::new();
        for l in &self.lines {
            out.push(
                serde_json::from_str(&l.replace(&self.thread, id)).map_err(|e| e.to_string())?,
            );
        }
        let mut count = out.iter().filter(|v| is_item(v)).count();
        let mut seq = out
            .iter()
            .filter_map(|v| v["metadata"]["history_sequence"].as_i64())
            .max()
            .unwrap_or(0);
        let mut k = 0;
        let mut ms = self.end_ms;
        while count < items {
            k += 1;
            let block = self.turn.join("\n");
            let mut fresh: HashMap<String, String> = HashMap::new();
            for u in uuids_in(&block) {
                if u != self.thread && !fresh.contains_key(&u) {
                    fresh.insert(u, new_uuid()?);
                }
            }
            let mut block = block.replace(&self.thread, id);
            for (old, new) in &fresh {
                block = block.replace(old, new);
            }
            let block = block
                .replace(&self.user_text, &format!("history message {k}"))
                .replace("rs_stub_1", &format!("rs_bench_{k}"))
                .replace("msg_stub_1", &format!("msg_bench_{k}"))
                .replace("resp_stub_1", &format!("resp_bench_{k}"))
                .replace(
                    &format!("stub-enc:{fp_a}:1\""),
                    &format!("stub-enc:{fp_a}:h{k}\""),
                );
            ms += 1.0;
            let base_seq = seq;
            for l in block.lines() {
                let mut v: Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
                if let Some(h) = v["metadata"]["history_sequence"].as_i64() {
                    // The template's sequences start after its context items; keep their
                    // spacing, moved past everything before.
                    let new = base_seq + (h - 2);
                    if let Some(s) = v["metadata"]["sampled_through_sequence"].as_i64() {
                        v["metadata"]["sampled_through_sequence"] = json!(new - (h - s));
                    }
                    v["metadata"]["history_sequence"] = json!(new);
                    seq = seq.max(new);
                }
                v["timestamp"] = json!(iso(ms));
                if is_item(&v) {
                    count += 1;
                }
                out.push(v);
            }
        }
        for (i, v) in out.iter_mut().enumerate() {
            v["ordinal"] = json!(i);
        }
        let mut with = String::new();
        let mut without = String::new();
        for v in &out {
            let l = v.to_string();
            with.push_str(&l);
            with.push('\n');
            if !is_reasoning(v) {
                without.push_str(&l);
                without.push('\n');
            }
        }
        Ok(Grown {
            id: id.to_string(),
            rel: self.rel_dir.join(format!("{}{id}.jsonl", self.file_prefix)),
            with_reasoning: with,
            carried: without,
            items: count,
            turns: k + 1,
        })
    }
}

fn iso(ms: f64) -> String {
    let ms = ms.round() as i64;
    let (total, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let days = total.div_euclid(86400);
    let secs = total.rem_euclid(86400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

struct Grown {
    id: String,
    rel: PathBuf,
    with_reasoning: String,
    carried: String,
    items: usize,
    turns: usize,
}

impl Grown {
    fn put(&self, home: &Path, text: &str) -> Res<()> {
        let p = home.join(&self.rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

fn resume_params(id: &str, ws: &Path) -> Value {
    json!({"threadId": id, "cwd": ws, "model": null, "approvalPolicy": "never", "sandbox": "read-only"})
}

fn turn_params(id: &str, text: &str) -> Value {
    json!({"threadId": id, "input": [{"type": "text", "text": text, "text_elements": []}],
        "model": null, "effort": null, "outputSchema": null})
}

struct Bench {
    env: Env,
    codex: PathBuf,
    codex_as: PathBuf,
    log: Log,
    fp_a: String,
    fp_b: String,
    relay_sock: PathBuf,
    template: Template,
    /// Every handover made: (items, warm-up/warm/cold, a's 429, b's request), stub times in ms.
    handovers: Vec<(usize, &'static str, f64, f64)>,
}

/// One measured run: the span, and what the next account's model request held.
struct Span {
    ms: f64,
    input_items: usize,
}

impl Bench {
    /// Resume + turn on b's warm app-server of a thread already in b's home.
    fn baseline(&mut self, b: &mut Rpc, items: usize) -> Res<Span> {
        let g = self.template.grow(&new_uuid()?, items, &self.fp_a)?;
        g.put(&self.env.home("b"), &g.carried)?;
        self.log.mark();
        let t0 = now_ms();
        let resumed = b.request("thread/resume", resume_params(&g.id, &self.env.ws()))?;
        let turns = resumed["thread"]["turns"].as_array().map_or(0, Vec::len);
        if turns != g.turns {
            return Err(format!(
                "b resumed {turns} turns, the rollout has {}",
                g.turns
            ));
        }
        b.request("turn/start", turn_params(&g.id, "bench turn"))?;
        let done = b.until_turn_completed()?;
        if done["status"] != "completed" {
            return Err(format!("baseline turn: {done}"));
        }
        let reqs = self.log.since_mark()?;
        let r = reqs
            .iter()
            .find(|r| r.key == self.fp_b)
            .ok_or("no model request of b")?;
        Ok(Span {
            ms: r.time - t0,
            input_items: input_len(&r.body),
        })
    }

    /// The companion's resume + turn through the relay, a out of quota: from a's 429 to b's
    /// model request.
    fn handover(&mut self, items: usize, kind: &'static str) -> Res<Span> {
        let g = self.template.grow(&new_uuid()?, items, &self.fp_a)?;
        g.put(&self.env.home("a"), &g.with_reasoning)?;
        // The last run's usage-limit hit is recorded for a until its reset, and a route skips
        // an account known to be out: forget it, so the turn starts on a and finds out there
        // (the case being measured).
        let quota = self.env.root.join("rt/quota");
        for e in std::fs::read_dir(&quota).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        self.log.mark();
        let mut c = Rpc::socket(&self.relay_sock)?;
        let resumed = c.request("thread/resume", resume_params(&g.id, &self.env.ws()))?;
        if resumed["thread"]["id"] != json!(g.id) {
            return Err(format!("relay resume: {}", resumed["thread"]["id"]));
        }
        let started = c.request("turn/start", turn_params(&g.id, "bench turn"))?;
        let turn_id = started["turn"]["id"].clone();
        let done = c.until_turn_completed()?;
        if done["status"] != "completed" || done["id"] != turn_id {
            return Err(format!("handover turn: {done}"));
        }
        drop(c);
        let reqs = self.log.since_mark()?;
        let a = reqs
            .iter()
            .position(|r| r.key == self.fp_a)
            .ok_or("a was never asked: the relay did not start on a")?;
        let b = reqs[a..]
            .iter()
            .find(|r| r.key == self.fp_b)
            .ok_or("no model request of b after a's 429")?;
        if reasoning_of(&b.body, &self.fp_a) > 0 {
            return Err("b's request holds a's encrypted reasoning".into());
        }
        self.handovers.push((items, kind, reqs[a].time, b.time));
        Ok(Span {
            ms: b.time - reqs[a].time,
            input_items: input_len(&b.body),
        })
    }

    /// Resume + turn through b's codex-as broker, of a thread already in b's home (the broker's
    /// own cost) or only in a's (the broker carries it in first).
    fn via_broker(&mut self, items: usize, carried_in: bool) -> Res<Span> {
        let g = self.template.grow(&new_uuid()?, items, &self.fp_a)?;
        if carried_in {
            g.put(&self.env.home("b"), &g.carried)?;
        } else {
            g.put(&self.env.home("a"), &g.with_reasoning)?;
        }
        let sock = self.broker_socket("b")?;
        let mut c = Rpc::socket(&sock)?;
        self.log.mark();
        let t0 = now_ms();
        c.request("thread/resume", resume_params(&g.id, &self.env.ws()))?;
        c.request("turn/start", turn_params(&g.id, "bench turn"))?;
        let done = c.until_turn_completed()?;
        if done["status"] != "completed" {
            return Err(format!("turn via b's broker: {done}"));
        }
        let reqs = self.log.since_mark()?;
        let r = reqs
            .iter()
            .find(|r| r.key == self.fp_b)
            .ok_or("no model request of b")?;
        Ok(Span {
            ms: r.time - t0,
            input_items: input_len(&r.body),
        })
    }

    /// The socket of the running broker of `account` (from `codex-as brokers --json`).
    fn broker_socket(&self, account: &str) -> Res<PathBuf> {
        let out = self
            .env
            .command(&self.codex_as)
            .args(["brokers", "--json"])
            .output()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "brokers --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        let list = v.as_array().cloned().unwrap_or_default();
        list.iter()
            .filter(|b| b["owner"] == "codex-as" && b["account"] == account)
            .find_map(|b| {
                b["endpoint"]
                    .as_str()?
                    .strip_prefix("unix:")
                    .map(PathBuf::from)
            })
            .ok_or_else(|| format!("no broker of {account}: {v}"))
    }

    fn stop_brokers(&self) -> Res<()> {
        let out = self
            .env
            .command(&self.codex_as)
            .args(["brokers", "stop", "--all", "--timeout", "60s", "--json"])
            .output()
            .map_err(|e| e.to_string())?;
        let stopped = String::from_utf8_lossy(&out.stdout).into_owned();
        let t = Instant::now();
        // Stopped means gone: its socket no longer answers.
        loop {
            match self.broker_socket("b") {
                Err(_) => return Ok(()),
                Ok(sock) if UnixStream::connect(&sock).is_err() => return Ok(()),
                Ok(_) if t.elapsed() > Duration::from_secs(20) => {
                    return Err(format!(
                        "b's broker is still up after `brokers stop`: {stopped}"
                    ));
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Where each handover's time went, from the relay's strace next to the stub's clock: the
/// failure reaching the relay (a's app-server failing the turn, a's broker, the relay), the
/// carry, opening b's upstream (a broker start when cold), b's `thread/resume`, and b's
/// `turn/start` up to its model request.
fn breakdown(trace: &Path, handovers: &[(usize, &str, f64, f64)]) -> Res<()> {
    let text = std::fs::read_to_string(trace).map_err(|e| format!("trace: {e}"))?;
    let day = handovers
        .first()
        .map(|h| (h.2 / 86_400_000.0).floor() * 86_400_000.0)
        .unwrap_or(0.0);
    let events: Vec<(f64, &str)> = text
        .lines()
        .filter_map(|l| {
            let (time, call) = l.split_once(' ')?;
            let mut t = time.split(':');
            let (h, m, s) = (
                t.next()?.parse::<f64>().ok()?,
                t.next()?.parse::<f64>().ok()?,
                t.next()?.parse::<f64>().ok()?,
            );
            Some((day + ((h * 60.0 + m) * 60.0 + s) * 1000.0, call))
        })
        .collect();
    println!("where a handover's time goes (ms after a's 429; relay traced, so a little slower):");
    println!(
        "{:>6} | {:>7} | {:>11} | {:>10} | {:>14} | {:>15} | {:>11}",
        "items",
        "b",
        "carry start",
        "carry done",
        "resume sent b",
        "turn/start sent",
        "b's request"
    );
    for (items, kind, t_a, t_b) in handovers {
        let within: Vec<&(f64, &str)> = events
            .iter()
            .filter(|(t, _)| *t >= t_a - 5.0 && *t <= *t_b)
            .collect();
        let at = |pred: &dyn Fn(&str) -> bool| {
            within
                .iter()
                .find(|(_, c)| pred(c))
                .map_or(f64::NAN, |(t, _)| t - t_a)
        };
        let carry = at(&|c| c.starts_with("openat(") && c.contains("/.codex-a/sessions/2"));
        let carried = at(&|c| c.starts_with("rename(") && c.contains("/.codex-b/sessions/"));
        let resume = at(&|c| c.contains("method\\\":\\\"thread/resume"));
        let turn = at(&|c| c.contains("method\\\":\\\"turn/start"));
        println!(
            "{items:>6} | {kind:>7} | {carry:>11.0} | {carried:>10.0} | {resume:>14.0} | {turn:>15.0} | {:>11.0}",
            t_b - t_a
        );
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("handover bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let sizes: Vec<usize> = std::env::var("BENCH_ITEMS")
        .unwrap_or_else(|_| "10,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let codex_as = std::env::var_os("CODEX_AS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/release/codex-as"));
    let codex = std::env::var_os("CODEX_AS_BENCH_CODEX")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var("CODEX_AS_REAL_CODEX")
                .ok()
                .and_then(|v| v.split(':').find(|p| !p.is_empty()).map(PathBuf::from))
        })
        .or_else(|| which::which("codex").ok());
    let Some(codex) = codex else {
        eprintln!("SKIP: no codex (set CODEX_AS_REAL_CODEX to a real codex binary)");
        return Ok(());
    };
    let codex = std::path::absolute(&codex).unwrap_or(codex);
    let node = which::which("node").map_err(|_| "node is needed for the model stub")?;
    let sandbox = tempfile::Builder::new()
        .prefix("cxho")
        .tempdir_in("/tmp")
        .map_err(|e| e.to_string())?;
    let root = sandbox.path().to_path_buf();
    for d in [
        "home", "config", "data", "cache", "state", "run", "rt", "tmp", "ws", "bin", "stub",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        for d in ["run", "rt"] {
            let _ = std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o700));
        }
    }
    std::os::unix::fs::symlink(&codex, root.join("bin/codex")).map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}:{}",
        root.join("bin").display(),
        node.parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "/usr/local/bin:/usr/bin:/bin"
    );
    let env = Env {
        root: root.clone(),
        path,
    };
    let _cleanup = Cleanup {
        env: Env {
            root: root.clone(),
            path: env.path.clone(),
        },
        codex_as: codex_as.clone(),
    };

    // The model stub, its log the clock of every figure.
    let stub_dir = root.join("stub");
    let url_file = stub_dir.join("url");
    let log_path = stub_dir.join("requests.jsonl");
    let limited = stub_dir.join("limited");
    std::fs::write(&limited, "").map_err(|e| e.to_string())?;
    let mut stub = Command::new(&node);
    stub.arg(manifest.join("tests/fixtures/model-stub.mjs"))
        .args(["--port", "0", "--max-seconds", "7200"])
        .arg("--url-file")
        .arg(&url_file)
        .arg("--log")
        .arg(&log_path)
        .arg("--limited")
        .arg(&limited)
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let _stub = Guard(stub.spawn().map_err(|e| format!("model stub: {e}"))?);
    let t = Instant::now();
    let url = loop {
        if let Ok(u) = std::fs::read_to_string(&url_file)
            && !u.trim().is_empty()
        {
            break u.trim().to_string();
        }
        if t.elapsed() > Duration::from_secs(20) {
            return Err("the model stub did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    write_home(&env.home("a"), &url, KEY_A)?;
    write_home(&env.home("b"), &url, KEY_B)?;
    let (fp_a, fp_b) = (fingerprint(KEY_A), fingerprint(KEY_B));

    // One real turn on a: the template every thread is grown from.
    let text = "remember the word PAPAYA";
    let thread = {
        let mut a = Rpc::app_server(&codex, &env.home("a"), &env)?;
        let started = a.request("thread/start", json!({"cwd": env.ws()}))?;
        let id = started["thread"]["id"]
            .as_str()
            .ok_or("thread/start gave no id")?
            .to_string();
        a.request("turn/start", turn_params(&id, text))?;
        let done = a.until_turn_completed()?;
        if done["status"] != "completed" {
            return Err(format!("template turn: {done}"));
        }
        id
    };
    let rollout = rollouts(&env.home("a").join("sessions"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&thread))
        .ok_or("the template's rollout is missing")?;
    let template = Template::from_rollout(&env.home("a"), &rollout, &thread, text)?;
    std::fs::write(&limited, format!("{KEY_A}\n")).map_err(|e| e.to_string())?;

    // The relay of route a,b, as `codex-as a,b task` would start it (here in the foreground).
    let relay_sock = root.join("rt/bench-relay.sock");
    // BENCH_TRACE=FILE runs the relay (not the brokers it starts) under strace (file, socket and
    // write calls with their times): where a handover's time goes, read next to the stub's log.
    let mut relay = match std::env::var_os("BENCH_TRACE") {
        Some(out) => {
            let mut c =
                env.command(&which::which("strace").map_err(|_| "BENCH_TRACE needs strace")?);
            c.args(["-tt", "-s", "120", "-e"])
                .arg("trace=openat,rename,renameat,renameat2,connect,write,writev,sendto,sendmsg,fsync")
                .arg("-o")
                .arg(out)
                .arg(&codex_as);
            c
        }
        None => env.command(&codex_as),
    };
    relay
        .args([
            "relay",
            "serve",
            "--route",
            "a,b",
            "--idle-exit",
            "2h",
            "--endpoint",
        ])
        .arg(format!("unix:{}", relay_sock.display()))
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(root.join("relay.log"))
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        );
    let _relay = Guard(relay.spawn().map_err(|e| format!("relay: {e}"))?);
    let t = Instant::now();
    while UnixStream::connect(&relay_sock).is_err() {
        if t.elapsed() > Duration::from_secs(20) {
            return Err("the relay did not listen".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut bench = Bench {
        env,
        codex: codex.clone(),
        codex_as,
        log: Log {
            path: log_path,
            offset: 0,
        },
        fp_a,
        fp_b,
        relay_sock,
        template,
        handovers: Vec::new(),
    };
    println!(
        "codex: {} | runs: {runs} (median) | clock: the model stub's request log",
        codex.display()
    );
    let mut rows = Vec::new();
    for &n in &sizes {
        eprintln!("{n} items:");
        // Warm-up, not counted: b's broker has resumed one thread of this size.
        if let Err(e) = bench.handover(n, "warm-up") {
            eprintln!("  warm-up handover failed: {e}");
        }
        // Interleaved, so that the machine's load weighs on every kind alike.
        const KINDS: [&str; 5] = [
            "baseline",
            "handover (warm)",
            "b's broker, in b",
            "b's broker, in a",
            "handover (cold)",
        ];
        let mut spans: [Vec<f64>; 5] = Default::default();
        let (mut base_in, mut warm_in) = (0, 0);
        for _ in 0..runs {
            // A fresh app-server for the baseline each round, as b's broker gets one in every
            // cold run (an app-server keeps each thread it resumed loaded for a while, and a
            // long-lived one slows down with them); it resumes a small thread first, unmeasured.
            let mut b = Rpc::app_server(&bench.codex, &bench.env.home("b"), &bench.env)?;
            if let Err(e) = bench.baseline(&mut b, 10) {
                eprintln!("  warm-up of b's app-server failed: {e}");
            }
            for (k, name) in KINDS.iter().enumerate() {
                let got = match k {
                    0 => bench.baseline(&mut b, n),
                    1 => bench.handover(n, "warm"),
                    2 => bench.via_broker(n, true),
                    3 => bench.via_broker(n, false),
                    _ => bench
                        .stop_brokers()
                        .and_then(|()| bench.handover(n, "cold")),
                };
                match got {
                    Ok(s) => {
                        spans[k].push(s.ms);
                        match k {
                            0 => base_in = s.input_items,
                            1 => warm_in = s.input_items,
                            _ => {}
                        }
                    }
                    Err(e) => eprintln!("  {name}: run failed: {e}"),
                }
            }
        }
        for (name, v) in KINDS.iter().zip(&spans) {
            let shown: Vec<String> = v.iter().map(|m| format!("{m:.0}")).collect();
            eprintln!("  {name:<17} ms: {}", shown.join(" "));
        }
        let [base, warm, hop, broker, cold] = spans.map(median);
        if base_in == warm_in {
            eprintln!("  b's model request held {base_in} input items in both");
        } else {
            eprintln!(
                "  note: b's request held {base_in} items in the baseline, {warm_in} after the handover"
            );
        }
        let items = bench
            .template
            .grow("00000000-0000-0000-0000-000000000000", n, "x")?
            .items;
        rows.push((items, [base, warm, cold, hop, broker]));
    }
    println!(
        "{:>6} | {:>8} | {:>8} | {:>5} | {:>8} | {:>5} | {:>10} | {:>10}",
        "items", "baseline", "handover", "ratio", "cold", "ratio", "broker hop", "broker+carry"
    );
    for (items, [base, warm, cold, hop, broker]) in rows {
        println!(
            "{items:>6} | {base:>8.0} | {warm:>8.0} | {:>5.2} | {cold:>8.0} | {:>5.2} | {hop:>10.0} | {broker:>12.0}",
            warm / base,
            cold / base
        );
    }
    println!(
        "(ms, median; handover = a's 429 to b's model request; baseline = thread/resume sent to b's request; broker hop / broker+carry = the baseline through b's codex-as broker, the thread in b / only in a)"
    );
    if let Some(trace) = std::env::var_os("BENCH_TRACE") {
        breakdown(Path::new(&trace), &bench.handovers)?;
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = sandbox.keep();
        println!("sandbox kept: {}", kept.display());
    }
    Ok(())
}
