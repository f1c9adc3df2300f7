//! Tests of the plugin fixture (`tests/fixtures/plugin`), the stand-in for the Codex plugin for
//! Claude Code 1.0.5 that codex-as's end-to-end tests run. They show that the fixture reproduces
//! the facts codex-as is built on (plugin-facts.md): the shared-broker account bug, the pinned
//! endpoint, the busy/unreachable fallback to a direct app-server, the patched broker of PR #369,
//! the state directory rules and background workers. A fixture that got these wrong would hide
//! bugs in codex-as, so each test checks the observable outcome, including which CODEX_HOME the
//! app-server itself reported (`servedBy` in $FIXTURE_LOG) and where session rollouts landed.
//!
//! Needs `node` (skipped with a message otherwise). `real_plugin_agrees_with_fixture` also runs
//! the same scenarios against the current real plugin (support/peers.rs) and compares.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::skip;
use crate::support::oracle::plugin_state_dir;
use crate::support::peers::current_plugin;
use crate::support::{Sandbox, files_under, fixtures, have_node, output_timeout, stdout};

/// Generous: one companion call takes well under a second here, but CI machines are slow.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables that would change what the companion, broker or fake codex do; every
/// run starts without them so that the developer's own environment cannot leak in.
const SCRUBBED: &[&str] = &[
    "CODEX_HOME",
    "CODEX_COMPANION_APP_SERVER_ENDPOINT",
    "CODEX_COMPANION_SESSION_ID",
    "CODEX_COMPANION_APP_SERVER_PID_FILE",
    "CODEX_COMPANION_APP_SERVER_LOG_FILE",
    "CLAUDE_PLUGIN_DATA",
    "TMP",
    "TEMP",
    "FIXTURE_LOG",
    "FIXTURE_BROKER_MODE",
    "FIXTURE_BROKER_HANG",
    "FIXTURE_BROKER_DIE_AFTER",
    "FAKE_CODEX_LOG",
    "FAKE_CODEX_STARTUP_MS",
    "FAKE_CODEX_USAGE_LIMIT",
];

/// The fixture tests' world in the shared sandbox: HOME, TMPDIR, two account homes (ha, hb) and
/// a workspace (ws); the brokers `start_broker` starts are the sandbox's to end.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    for sub in ["ha", "hb", "ws"] {
        sb.mkdir(sub);
    }
    sb
}

/// Running the plugin's scripts (fixture or real) under node in the sandbox.
trait PluginRuns {
    fn node_command(&self, script: &Path, cwd: &Path, env: &[(&str, &str)]) -> Command;
    fn companion_of(
        &self,
        plugin: &Path,
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> Output;
    fn companion(&self, args: &[&str], env: &[(&str, &str)]) -> Output;
    fn start_broker(&self, name: &str, env: &[(&str, &str)]) -> String;
    fn start_broker_of(&self, plugin: &Path, name: &str, env: &[(&str, &str)]) -> String;
    fn records(&self) -> Vec<Value>;
    fn last_record(&self, cmd: &str) -> Value;
    fn rollouts(&self, home: &str) -> usize;
}

impl PluginRuns for Sandbox {
    fn node_command(&self, script: &Path, cwd: &Path, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(script).current_dir(cwd);
        for var in SCRUBBED {
            cmd.env_remove(var);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![fixtures().join("fake-codex")];
        paths.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap())
            .env("HOME", self.at("home"))
            .env("TMPDIR", self.at("tmp"))
            .env("FIXTURE_LOG", self.at("fixture.log"));
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Run `node <plugin>/scripts/codex-companion.mjs args...` and wait for it (with a timeout).
    fn companion_of(
        &self,
        plugin: &Path,
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.node_command(&plugin.join("scripts/codex-companion.mjs"), cwd, env);
        cmd.args(args);
        output_timeout(cmd, CALL_TIMEOUT)
    }

    fn companion(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.companion_of(&fixtures().join("plugin"), args, &self.at("ws"), env)
    }

    /// Start a fixture broker by hand, as codex-as would for one account, and wait until it
    /// accepts connections. Returns its endpoint.
    fn start_broker(&self, name: &str, env: &[(&str, &str)]) -> String {
        self.start_broker_of(&fixtures().join("plugin"), name, env)
    }

    fn start_broker_of(&self, plugin: &Path, name: &str, env: &[(&str, &str)]) -> String {
        let dir = self.at(name);
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("b.sock");
        let mut cmd = self.node_command(
            &plugin.join("scripts/app-server-broker.mjs"),
            &self.at("ws"),
            env,
        );
        cmd.arg("serve")
            .arg("--endpoint")
            .arg(format!("unix:{}", socket.display()))
            .arg("--cwd")
            .arg(self.at("ws"))
            .arg("--pid-file")
            .arg(dir.join("broker.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn broker");
        self.adopt(child);
        wait_for(&format!("broker {name} to listen"), || {
            UnixStream::connect(&socket).is_ok()
        });
        format!("unix:{}", socket.display())
    }

    /// The JSON lines the fixture wrote to $FIXTURE_LOG.
    fn records(&self) -> Vec<Value> {
        fs::read_to_string(self.at("fixture.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("record is JSON"))
            .collect()
    }

    /// The last record for `cmd`.
    fn last_record(&self, cmd: &str) -> Value {
        self.records()
            .into_iter()
            .rev()
            .find(|r| r["cmd"] == cmd)
            .unwrap_or_else(|| panic!("no {cmd} record in {:?}", self.records()))
    }

    /// Session rollouts the fake codex wrote under an account home.
    fn rollouts(&self, home: &str) -> usize {
        files_under(&self.at(home).join("sessions"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .count()
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(25));
    }
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// For files another process may be rewriting right now (job records are written in place).
fn try_read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Whether a process exists (a zombie counts: it still holds its pid).
fn exists(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// A raw JSONL client for a broker socket, to hold it busy or ask it things directly.
struct Rpc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Rpc {
    fn connect(endpoint: &str) -> Rpc {
        let stream = UnixStream::connect(endpoint.trim_start_matches("unix:")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Rpc {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next_id: 1,
        }
    }

    /// Send a request and return its whole response ({result} or {error}), skipping
    /// notifications.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        writeln!(self.writer, "{line}").unwrap();
        loop {
            let mut buf = String::new();
            let n = self.reader.read_line(&mut buf).expect("read from broker");
            assert!(n > 0, "broker closed the connection during {method}");
            let msg: Value = serde_json::from_str(&buf).unwrap();
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    /// Own a stream on the broker: a turn that never completes until interrupted.
    fn hold_turn(&mut self) -> (String, String) {
        self.call("initialize", json!({}));
        let thread = self.call("thread/start", json!({}));
        let thread_id = thread["result"]["thread"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let turn = self.call(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "hold [[hang]]"}]}),
        );
        let turn_id = turn["result"]["turn"]["id"].as_str().unwrap().to_owned();
        (thread_id, turn_id)
    }
}

fn legacy_broker_json_keys() -> Vec<&'static str> {
    vec!["endpoint", "logFile", "pid", "pidFile", "sessionDir"]
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------

/// (1) The bug: a task for account B reuses the live broker that a task for A started.
#[test]
fn legacy_broker_serves_every_caller_with_the_first_account() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_a = sb.at("ha").to_string_lossy().into_owned();
    let home_b = sb.at("hb").to_string_lossy().into_owned();

    let first = sb.companion(&["task", "reply OK"], &[("CODEX_HOME", &home_a)]);
    assert_ok(&first);
    assert_eq!(stdout(&first), format!("done by {}\n", sb.canonical("ha")));
    let rec = sb.last_record("task");
    assert_eq!(rec["via"], "spawned-broker");
    assert_eq!(rec["servedBy"], sb.canonical("ha"));

    // broker.json: legacy format, session dir made by mkdtemp under TMPDIR.
    let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));
    let broker = read_json(&state.join("broker.json"));
    assert_eq!(sorted_keys(&broker), legacy_broker_json_keys());
    let session_dir = broker["sessionDir"].as_str().unwrap();
    assert!(
        session_dir.starts_with(&format!("{}/cxc-", sb.at("tmp").display())),
        "{session_dir}"
    );
    assert_eq!(
        broker["endpoint"],
        format!("unix:{session_dir}/broker.sock")
    );
    assert!(exists(broker["pid"].as_i64().unwrap() as i32));

    let second = sb.companion(&["task", "reply OK"], &[("CODEX_HOME", &home_b)]);
    assert_ok(&second);
    let rec = sb.last_record("task");
    assert_eq!(rec["callerCodexHome"], home_b.as_str());
    assert_eq!(rec["via"], "broker.json");
    assert_eq!(rec["endpoint"], broker["endpoint"]);
    assert_eq!(
        rec["servedBy"],
        sb.canonical("ha"),
        "the bug: B is served by A"
    );
    // As with the real plugin and codex: B's session rollout lands in A's home.
    assert_eq!(sb.rollouts("ha"), 2);
    assert_eq!(sb.rollouts("hb"), 0);

    // A failed turn (usage limit) prints the error and exits 1, and records it.
    let limited = sb.companion(&["task", "x [[usage-limit]]"], &[("CODEX_HOME", &home_b)]);
    assert_eq!(limited.status.code(), Some(1));
    assert!(stdout(&limited).starts_with("You've hit your usage limit."));
    let rec = sb.last_record("task");
    assert_eq!(rec["exit"], 1);
    let job = read_json(&state.join(format!("jobs/{}.json", rec["job"].as_str().unwrap())));
    assert_eq!(job["status"], "failed");
    assert_eq!(job["phase"], "failed");
    assert!(job["threadId"].as_str().is_some());
}

/// (2) A pinned endpoint serves everything, and broker.json is neither used nor written.
#[test]
fn pinned_endpoint_is_used_and_broker_json_left_alone() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_a = sb.at("ha").to_string_lossy().into_owned();
    let home_b = sb.at("hb").to_string_lossy().into_owned();

    // A live broker for A in broker.json: the trap a pinned call must not fall into.
    assert_ok(&sb.companion(&["task", "prime"], &[("CODEX_HOME", &home_a)]));
    let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));
    let broker_json = fs::read(state.join("broker.json")).unwrap();

    let endpoint = sb.start_broker("eb", &[("CODEX_HOME", &home_b)]);
    let env = [
        ("CODEX_HOME", home_b.as_str()),
        ("CODEX_COMPANION_APP_SERVER_ENDPOINT", endpoint.as_str()),
    ];
    assert_ok(&sb.companion(&["task", "reply OK"], &env));
    let rec = sb.last_record("task");
    assert_eq!(rec["via"], "endpoint");
    assert_eq!(rec["endpoint"], endpoint.as_str());
    assert_eq!(rec["servedBy"], sb.canonical("hb"));

    // setup's auth check and status's runtime line use the endpoint too.
    let setup = sb.companion(&["setup", "--json"], &env);
    assert_ok(&setup);
    let report: Value = serde_json::from_str(&stdout(&setup)).unwrap();
    assert_eq!(report["sessionRuntime"]["endpoint"], endpoint.as_str());
    let rec = sb.last_record("setup");
    assert_eq!(rec["via"], "endpoint");
    assert_eq!(rec["servedBy"], sb.canonical("hb"));
    assert_ok(&sb.companion(&["status"], &env));
    assert_eq!(sb.last_record("status")["endpoint"], endpoint.as_str());

    assert_eq!(fs::read(state.join("broker.json")).unwrap(), broker_json);
    assert_eq!(sb.rollouts("hb"), 1);
    assert_eq!(sb.rollouts("ha"), 1);

    // A workspace without broker.json does not get one.
    fs::create_dir_all(sb.at("ws2")).unwrap();
    let out = sb.companion_of(
        &fixtures().join("plugin"),
        &["task", "hi"],
        &sb.at("ws2"),
        &env,
    );
    assert_ok(&out);
    let state2 = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws2"));
    assert!(state2.join("state.json").exists());
    assert!(!state2.join("broker.json").exists());
}

/// (3) A busy or unreachable pinned broker: task falls back to a direct app-server, which runs
/// with the companion's own CODEX_HOME.
#[test]
fn busy_or_unreachable_endpoint_falls_back_to_direct() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_b = sb.at("hb").to_string_lossy().into_owned();
    let endpoint = sb.start_broker("eb", &[("CODEX_HOME", &home_b)]);

    let mut holder = Rpc::connect(&endpoint);
    let (thread_id, turn_id) = holder.hold_turn();
    // While another connection owns a stream, others get -32001...
    let mut other = Rpc::connect(&endpoint);
    other.call("initialize", json!({}));
    assert_eq!(
        other.call("thread/start", json!({}))["error"]["code"],
        -32001
    );
    // ...and a legacy broker answers broker/status with that same error when busy.
    assert_eq!(
        other.call("broker/status", json!({}))["error"]["code"],
        -32001
    );

    let env = [
        ("CODEX_HOME", home_b.as_str()),
        ("CODEX_COMPANION_APP_SERVER_ENDPOINT", endpoint.as_str()),
    ];
    assert_ok(&sb.companion(&["task", "while busy"], &env));
    let rec = sb.last_record("task");
    assert_eq!(rec["via"], "direct");
    assert_eq!(rec["fallback"]["reason"], "busy");
    assert_eq!(rec["fallback"]["from"], endpoint.as_str());
    assert_eq!(rec["servedBy"], sb.canonical("hb"));

    // turn/interrupt from another connection is let through and ends the stream.
    assert!(
        other
            .call(
                "turn/interrupt",
                json!({"threadId": thread_id, "turnId": turn_id})
            )
            .get("result")
            .is_some()
    );
    wait_for("the broker to become idle", || {
        // Idle legacy broker: broker/status is forwarded and codex rejects it (-32600).
        other.call("broker/status", json!({}))["error"]["code"] == -32600
    });
    assert_ok(&sb.companion(&["task", "after interrupt"], &env));
    assert_eq!(sb.last_record("task")["via"], "endpoint");

    // Missing socket (ENOENT) and a socket nobody listens on (ECONNREFUSED).
    let missing = format!("unix:{}", sb.at("nosuch.sock").display());
    let stale_path = sb.at("stale.sock");
    drop(UnixListener::bind(&stale_path).unwrap());
    let stale = format!("unix:{}", stale_path.display());
    for (target, reason) in [(&missing, "ENOENT"), (&stale, "ECONNREFUSED")] {
        let env = [
            ("CODEX_HOME", home_b.as_str()),
            ("CODEX_COMPANION_APP_SERVER_ENDPOINT", target.as_str()),
        ];
        assert_ok(&sb.companion(&["task", "hi"], &env));
        let rec = sb.last_record("task");
        assert_eq!(rec["via"], "direct", "{rec}");
        assert_eq!(rec["fallback"]["reason"], reason);
        assert_eq!(rec["servedBy"], sb.canonical("hb"));
    }
}

/// (4) Patched mode (PR #369): broker.json records the account, broker/status answers before the
/// busy gate, and shutdown with ifIdle refuses while busy.
#[test]
fn patched_broker_reports_account_and_status() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_a = sb.at("ha").to_string_lossy().into_owned();
    let env = [
        ("CODEX_HOME", home_a.as_str()),
        ("FIXTURE_BROKER_MODE", "patched"),
    ];
    assert_ok(&sb.companion(&["task", "hi"], &env));
    let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));
    let broker = read_json(&state.join("broker.json"));
    assert_eq!(broker["codexHome"], home_a.as_str());
    let endpoint = broker["endpoint"].as_str().unwrap().to_owned();
    let pid = broker["pid"].as_i64().unwrap() as i32;

    let mut probe = Rpc::connect(&endpoint);
    assert_eq!(
        probe.call("broker/status", json!({}))["result"]["busy"],
        false
    );
    let mut holder = Rpc::connect(&endpoint);
    holder.hold_turn();
    assert_eq!(
        probe.call("broker/status", json!({}))["result"]["busy"],
        true
    );
    let refused = probe.call("broker/shutdown", json!({"ifIdle": true}));
    assert_eq!(refused["result"], json!({"shutdown": false, "busy": true}));
    assert!(exists(pid));
    drop(holder); // closing the owning connection frees the broker
    wait_for("the broker to become idle", || {
        probe.call("broker/status", json!({}))["result"]["busy"] == false
    });
    let done = probe.call("broker/shutdown", json!({"ifIdle": true}));
    assert_eq!(done["result"]["shutdown"], true);
    wait_for("the broker to exit", || !exists(pid));

    // Unset CODEX_HOME (the default account) is recorded as "".
    fs::create_dir_all(sb.at("ws3")).unwrap();
    let out = sb.companion_of(
        &fixtures().join("plugin"),
        &["task", "hi"],
        &sb.at("ws3"),
        &[("FIXTURE_BROKER_MODE", "patched")],
    );
    assert_ok(&out);
    let state3 = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws3"));
    assert_eq!(read_json(&state3.join("broker.json"))["codexHome"], "");
    assert_eq!(sb.last_record("task")["callerCodexHome"], Value::Null);
}

/// (5) The one-argument quirk, --cwd forms and the state directory rules.
#[test]
fn arguments_and_state_dir_follow_the_plugin_rules() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let tmp_root = sb.at("tmp/codex-companion");

    // A git repository whose name needs slugging; commands aimed at a subdirectory of it.
    let repo = sb.at("My Repo!");
    fs::create_dir_all(repo.join("sub")).unwrap();
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(&repo)
        .status();
    if !git.is_ok_and(|s| s.success()) {
        skip!("git not available");
        return;
    }
    let repo_state = plugin_state_dir(&tmp_root, &repo);
    assert!(repo_state.to_string_lossy().contains("/My-Repo-"));
    let check = |out: Output, state: &Path, prompt: &str| {
        assert_ok(&out);
        let rec = sb.last_record("task");
        assert_eq!(rec["stateDir"], state.to_string_lossy().as_ref(), "{rec}");
        let job = read_json(&state.join(format!("jobs/{}.json", rec["job"].as_str().unwrap())));
        assert_eq!(job["summary"], prompt);
        assert_eq!(job["status"], "completed");
    };

    // One argument: the companion splits it itself (quotes honoured).
    let one = format!("--cwd '{}' reply OK", repo.join("sub").display());
    check(sb.companion(&["task", &one], &[]), &repo_state, "reply OK");
    // -C relative to the process's cwd, and --cwd=DIR.
    let out = sb.companion_of(
        &fixtures().join("plugin"),
        &["task", "-C", "sub", "x"],
        &repo,
        &[],
    );
    check(out, &repo_state, "x");
    let eq = format!("--cwd={}", repo.join("sub").display());
    check(sb.companion(&["task", &eq, "y"], &[]), &repo_state, "y");
    // Two arguments are not split: "--cwd ..." is then an unknown word of the prompt.
    let two = format!("--cwd {}", repo.display());
    let ws_state = plugin_state_dir(&tmp_root, &sb.at("ws"));
    check(
        sb.companion(&["task", &two, "z"], &[]),
        &ws_state,
        &format!("{two} z"),
    );

    // Not a repository: the cwd itself, slug from the path as given, hash from its realpath.
    fs::create_dir_all(sb.at("plain dir")).unwrap();
    std::os::unix::fs::symlink(sb.at("plain dir"), sb.at("lnk")).unwrap();
    let lnk = sb.at("lnk");
    let lnk_state = plugin_state_dir(&tmp_root, &lnk);
    assert!(
        lnk_state
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("lnk-")
    );
    let arg = format!("--cwd={}", lnk.display());
    check(sb.companion(&["task", &arg, "w"], &[]), &lnk_state, "w");

    // CLAUDE_PLUGIN_DATA moves the state root; TMPDIR's trailing slash does not matter.
    let data = sb.at("data");
    let data_str = data.to_string_lossy().into_owned();
    check(
        sb.companion(&["task", "v"], &[("CLAUDE_PLUGIN_DATA", &data_str)]),
        &plugin_state_dir(&data.join("state"), &sb.at("ws")),
        "v",
    );
    let slashed = format!("{}/", sb.at("tmp").display());
    check(
        sb.companion(&["task", "u"], &[("TMPDIR", &slashed)]),
        &ws_state,
        "u",
    );

    // No subcommand prints usage; an unknown one is an error (exit 1, message on stderr).
    let usage = sb.companion(&[], &[]);
    assert_ok(&usage);
    assert!(stdout(&usage).starts_with("Usage:"));
    let bad = sb.companion(&["frobnicate"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Unknown subcommand: frobnicate"));
}

/// (6) Background tasks: the worker inherits the environment (account, pinned endpoint) and
/// records its own line; status/result/cancel work on its job record.
#[test]
fn background_worker_inherits_environment_and_records() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_b = sb.at("hb").to_string_lossy().into_owned();
    let endpoint = sb.start_broker("eb", &[("CODEX_HOME", &home_b)]);
    let env = [
        ("CODEX_HOME", home_b.as_str()),
        ("CODEX_COMPANION_APP_SERVER_ENDPOINT", endpoint.as_str()),
    ];
    let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));

    let launch = sb.companion(
        &["task", "--background", "--json", "bg [[delay:200]]"],
        &env,
    );
    assert_ok(&launch);
    let payload: Value = serde_json::from_str(&stdout(&launch)).unwrap();
    let job_id = payload["jobId"].as_str().unwrap().to_owned();
    assert_eq!(payload["status"], "queued");
    let launcher = sb.last_record("task");
    assert_eq!(launcher["job"], job_id.as_str());
    assert_eq!(
        launcher["via"],
        Value::Null,
        "the launcher talks to no app-server"
    );

    let status = sb.companion(
        &[
            "status",
            &job_id,
            "--wait",
            "--json",
            "--poll-interval-ms",
            "100",
        ],
        &env,
    );
    assert_ok(&status);
    let snapshot: Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(snapshot["job"]["status"], "completed");
    wait_for("the worker's record", || {
        sb.records().iter().any(|r| r["cmd"] == "task-worker")
    });
    let worker = sb.last_record("task-worker");
    assert_eq!(worker["job"], job_id.as_str());
    assert_eq!(worker["callerCodexHome"], home_b.as_str());
    assert_eq!(worker["via"], "endpoint");
    assert_eq!(worker["servedBy"], sb.canonical("hb"));
    assert_eq!(worker["exit"], 0);
    let result = sb.companion(&["result", &job_id], &env);
    assert_ok(&result);
    assert!(stdout(&result).starts_with(&format!("done by {}\n", sb.canonical("hb"))));

    // cancel interrupts a running background turn through the endpoint.
    let launch = sb.companion(&["task", "--background", "--json", "[[hang]]"], &env);
    let job_id = serde_json::from_str::<Value>(&stdout(&launch)).unwrap()["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let job_file = state.join(format!("jobs/{job_id}.json"));
    wait_for("the worker's turn to start", || {
        try_read_json(&job_file).is_some_and(|j| j["turnId"].is_string())
    });
    let cancel = sb.companion(&["cancel", &job_id, "--json"], &env);
    assert_ok(&cancel);
    let report: Value = serde_json::from_str(&stdout(&cancel)).unwrap();
    assert_eq!(report["turnInterrupted"], true);
    assert_eq!(sb.last_record("cancel")["via"], "endpoint");
    assert_eq!(read_json(&job_file)["status"], "cancelled");
    let status = sb.companion(&["status", "--json"], &env);
    let status: Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["running"], json!([]));
    assert_eq!(status["latestFinished"]["status"], "cancelled");
    // The broker is free again: the next task is served through it, not directly.
    assert_ok(&sb.companion(&["task", "next"], &env));
    assert_eq!(sb.last_record("task")["via"], "endpoint");
}

/// The fake broker's failure modes: one that never answers, one that crashes.
#[test]
fn broker_failure_modes() {
    if !have_node() {
        return;
    }
    let sb = sandbox();
    let home_b = sb.at("hb").to_string_lossy().into_owned();

    let hung = sb.start_broker(
        "hang",
        &[("CODEX_HOME", &home_b), ("FIXTURE_BROKER_HANG", "1")],
    );
    let stream = UnixStream::connect(hung.trim_start_matches("unix:")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    writeln!(&stream, "{}", json!({"id": 1, "method": "initialize"})).unwrap();
    let mut line = String::new();
    assert!(BufReader::new(&stream).read_line(&mut line).is_err());

    // Dies right after answering the 4th request (initialize, thread/start, thread/name/set,
    // turn/start): the turn never completes, and the companion then exits 0 without output, as
    // the real 1.0.5 does when its broker or app-server dies mid-turn.
    let dying = sb.start_broker(
        "die",
        &[("CODEX_HOME", &home_b), ("FIXTURE_BROKER_DIE_AFTER", "4")],
    );
    let env = [
        ("CODEX_HOME", home_b.as_str()),
        ("CODEX_COMPANION_APP_SERVER_ENDPOINT", dying.as_str()),
    ];
    let out = sb.companion(&["task", "hi [[hang]]"], &env);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    // Its socket file is left behind: the next call is refused and falls back to direct.
    assert_ok(&sb.companion(&["task", "again"], &env));
    let rec = sb.last_record("task");
    assert_eq!(rec["fallback"]["reason"], "ECONNREFUSED");
    assert_eq!(rec["servedBy"], sb.canonical("hb"));
}

/// Run the same observation on the real plugin and on the fixture, side by side (each in its own
/// sandbox) to halve the wall time.
fn on_both<T: Send>(real: &Path, observe: impl Fn(&Path) -> T + Sync) -> (T, T) {
    let fixture = fixtures().join("plugin");
    thread::scope(|scope| {
        let from_real = scope.spawn(|| observe(real));
        let from_fixture = observe(&fixture);
        (from_real.join().expect("real plugin run"), from_fixture)
    })
}

/// The same scenarios against the current real plugin (support/peers.rs), with
/// the fake codex on PATH. Outputs, exit codes, rollout locations and file layout must agree.
#[test]
fn real_plugin_agrees_with_fixture() {
    if !have_node() {
        return;
    }
    let Some(real) = current_plugin() else {
        return;
    };
    let real = real.root;

    #[derive(Debug, PartialEq)]
    struct Observed {
        outputs: Vec<(Option<i32>, String)>,
        rollouts_a: usize,
        rollouts_b: usize,
        broker_keys: Vec<String>,
        state_files: Vec<String>,
    }

    let observe = |plugin: &Path| -> Observed {
        let sb = sandbox();
        let ha = sb.at("ha").to_string_lossy().into_owned();
        let hb = sb.at("hb").to_string_lossy().into_owned();
        let sub = sb.at("ws/sub");
        fs::create_dir_all(&sub).unwrap();
        let one_arg = format!("--cwd '{}' reply OK", sub.display());
        let mut outputs = Vec::new();
        let missing = sb.at("no-such-home").to_string_lossy().into_owned();
        let elsewhere = format!("--cwd={}", sb.at("ws/other").display());
        fs::create_dir_all(sb.at("ws/other")).unwrap();
        // (1) A starts the broker, B reuses it; a failed turn; the one-argument quirk (ws is no
        // repository, so sub is a workspace of its own: a second broker, started for B); a
        // CODEX_HOME that does not exist (the broker cannot start, nor can the direct retry).
        for (args, home) in [
            (vec!["task", "first"], &ha),
            (vec!["task", "second"], &hb),
            (vec!["task", "x [[usage-limit]]"], &hb),
            (vec!["task", one_arg.as_str()], &hb),
            (vec!["task", elsewhere.as_str(), "hi"], &missing),
        ] {
            let out = sb.companion_of(plugin, &args, &sb.at("ws"), &[("CODEX_HOME", home)]);
            // stderr without the progress lines, which differ in detail.
            let stderr: String = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.starts_with("[codex]"))
                .map(|l| format!("{l}\n"))
                .collect();
            let text = format!("{}{stderr}", stdout(&out))
                .replace(&sb.canonical("ha"), "<A>")
                .replace(&sb.canonical("hb"), "<B>")
                .replace(&missing, "<missing>");
            outputs.push((out.status.code(), text));
        }
        let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));
        let broker_keys = sorted_keys(&read_json(&state.join("broker.json")));
        // State dirs named as computed here independently, so both sides must match it.
        let name_of = |dir: &Path| {
            let state = plugin_state_dir(&sb.at("tmp/codex-companion"), dir);
            state.file_name().unwrap().to_string_lossy().into_owned()
        };
        let (ws_name, sub_name) = (name_of(&sb.at("ws")), name_of(&sub));
        let other_name = name_of(&sb.at("ws/other"));
        let mut state_files: Vec<String> = files_under(&sb.at("tmp/codex-companion"))
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(sb.at("tmp")).unwrap().to_string_lossy();
                let rel = rel
                    .replace(&ws_name, "<ws-state>")
                    .replace(&sub_name, "<sub-state>")
                    .replace(&other_name, "<other-state>");
                // Job ids are random: keep the shape only.
                rel.split("/task-").next().unwrap().to_owned()
                    + if rel.contains("/task-") {
                        if rel.ends_with(".log") {
                            "/task-*.log"
                        } else {
                            "/task-*.json"
                        }
                    } else {
                        ""
                    }
            })
            .collect();
        state_files.sort();
        Observed {
            outputs,
            rollouts_a: sb.rollouts("ha"),
            rollouts_b: sb.rollouts("hb"),
            broker_keys,
            state_files,
        }
    };

    let (from_real, from_fixture) = on_both(&real, observe);
    assert_eq!(from_real.rollouts_a, 3, "{from_real:?}");
    assert_eq!(from_fixture, from_real);

    // With a pinned endpoint (each plugin's own broker script, started for B as codex-as
    // would): setup, a task, the busy fallback, a background task and its cancel, a missing
    // endpoint with an app-server that dies mid-turn, and status. Every observation is a line.
    let observe_pinned = |plugin: &Path| -> Vec<String> {
        let sb = sandbox();
        let hb = sb.at("hb").to_string_lossy().into_owned();
        fs::write(
            sb.at("hb/auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
        )
        .unwrap();
        let endpoint = sb.start_broker_of(plugin, "eb", &[("CODEX_HOME", &hb)]);
        let env = [
            ("CODEX_HOME", hb.as_str()),
            ("CODEX_COMPANION_APP_SERVER_ENDPOINT", endpoint.as_str()),
        ];
        let normalize = |text: &str| text.replace(&sb.canonical("hb"), "<B>");
        let run = |args: &[&str], env: &[(&str, &str)]| {
            let out = sb.companion_of(plugin, args, &sb.at("ws"), env);
            (out.status.code(), normalize(&stdout(&out)))
        };
        let mut seen = Vec::new();

        let (code, text) = run(&["setup", "--json"], &env);
        let setup: Value = serde_json::from_str(&text).unwrap();
        seen.push(format!(
            "setup {code:?} ready={} loggedIn={} auth={} runtime={}",
            setup["ready"],
            setup["auth"]["loggedIn"],
            setup["auth"]["detail"],
            setup["sessionRuntime"]["label"]
        ));
        seen.push(format!("task {:?}", run(&["task", "reply"], &env)));
        seen.push(format!(
            "resume {:?}",
            run(&["task", "--resume-last"], &env)
        ));

        let mut holder = Rpc::connect(&endpoint);
        holder.hold_turn();
        seen.push(format!("busy task {:?}", run(&["task", "busy"], &env)));
        drop(holder);

        let (code, text) = run(&["task", "--background", "[[hang]]"], &env);
        let job_id = text
            .split_whitespace()
            .find(|w| w.starts_with("task-"))
            .unwrap()
            .trim_end_matches('.')
            .to_owned();
        seen.push(format!(
            "launch {code:?} {}",
            text.replace(&job_id, "<job>")
        ));
        let state = plugin_state_dir(&sb.at("tmp/codex-companion"), &sb.at("ws"));
        let job_file = state.join(format!("jobs/{job_id}.json"));
        wait_for("the background turn to start", || {
            try_read_json(&job_file).is_some_and(|j| j["turnId"].is_string())
        });
        let (code, text) = run(&["cancel", &job_id, "--json"], &env);
        seen.push(format!(
            "cancel {code:?} {}",
            text.replace(&job_id, "<job>")
        ));
        // Not compared: the job's final status. In 1.0.5 the interrupted worker and cancel race
        // to write it (either may win, in the job file or state.json); the fixture makes cancel
        // win, and `background_worker_inherits_environment_and_records` checks that.

        let missing = format!("unix:{}", sb.at("nosuch.sock").display());
        let direct_env = [
            ("CODEX_HOME", hb.as_str()),
            ("CODEX_COMPANION_APP_SERVER_ENDPOINT", missing.as_str()),
        ];
        seen.push(format!("direct {:?}", run(&["task", "ok"], &direct_env)));
        seen.push(format!(
            "direct dies {:?}",
            run(&["task", "x [[die]]"], &direct_env)
        ));

        let (code, text) = run(&["status", "--json"], &env);
        let status: Value = serde_json::from_str(&text).unwrap();
        seen.push(format!(
            "status {code:?} runtime={}",
            status["sessionRuntime"]["label"]
        ));
        seen.push(format!(
            "rollouts A={} B={}",
            sb.rollouts("ha"),
            sb.rollouts("hb")
        ));
        seen
    };
    let (from_real, from_fixture) = on_both(&real, observe_pinned);
    assert_eq!(from_fixture, from_real);
}
