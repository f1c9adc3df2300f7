//! Every resume finds the thread, whichever account started it: a codex-as broker carries a
//! thread from another account's home into its own before its app-server resumes it, and its
//! `thread/list` shows the other accounts' threads too.
//!
//! Runs the real `codex app-server` (every CODEX_AS_REAL_CODEX) of two accounts, `a` and `b`,
//! against the local model stand-in (support::model_stub), with the plugin fixture and the real
//! plugin 1.0.5. The stand-in's request log is the evidence of what b's model call held.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::model_stub::{StubWorld as World, user_texts};
use crate::support::{Sandbox, files_under, for_each_plugin, real_codexes, stderr, stdout};

const KEY_A: &str = "sk-a-stub";
const KEY_B: &str = "sk-b-stub";

/// `codex-as ARGS` in the world's workspace, which must succeed.
fn run(w: &World, args: &[&str]) -> Output {
    let out = w.run(args);
    assert!(
        out.status.success(),
        "codex-as {args:?}: {} {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// The socket of `account`'s codex-as broker.
fn broker_socket(w: &World, account: &str) -> PathBuf {
    let out = run(w, &["brokers", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let home = w.home(account).display().to_string();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner"] == "codex-as" && r["codexHome"] == home.as_str())
        .unwrap_or_else(|| panic!("no broker of {account}: {rows}"))
        .clone();
    PathBuf::from(
        row["endpoint"]
            .as_str()
            .unwrap()
            .trim_start_matches("unix:"),
    )
}

/// The user texts of b's model requests, the last one.
fn last_user_texts(w: &World, key: &str) -> Vec<String> {
    let bodies = w.stub.turn_requests(key);
    let last = bodies.last().cloned().unwrap_or(Value::Null);
    user_texts(&last)
}

/// Every file under a home's `sessions/` with its bytes.
fn sessions_bytes(home: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(&home.join("sessions"))
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

/// The ids of a home's threads (main rollouts under `sessions/`).
fn thread_ids(home: &Path) -> Vec<String> {
    files_under(&home.join("sessions"))
        .iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_str()?;
            let stem = name.strip_suffix(".jsonl")?;
            Some(stem.get(stem.len().checked_sub(36)?..)?.to_string())
        })
        .collect()
}

struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
    next_id: u64,
}

impl Client {
    fn connect(sock: &Path) -> Client {
        let w = UnixStream::connect(sock).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut c = Client { r, w, next_id: 1 };
        c.call(
            "initialize",
            json!({"clientInfo": {"name": "test", "version": "0"}}),
        );
        c
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.pipeline(&[(method, params)]).remove(0)
    }

    /// Sends the requests in one write, without waiting between them; their answers in the
    /// order they came.
    fn pipeline(&mut self, requests: &[(&str, Value)]) -> Vec<Value> {
        let ids = self.send_all(requests);
        self.answers(&ids)
    }

    /// Sends the requests in one write; their ids.
    fn send_all(&mut self, requests: &[(&str, Value)]) -> Vec<Value> {
        let mut text = String::new();
        let mut ids = Vec::new();
        for (method, params) in requests {
            let id = self.next_id;
            self.next_id += 1;
            ids.push(json!(id));
            text.push_str(&format!(
                "{}\n",
                json!({"id": id, "method": method, "params": params})
            ));
        }
        self.w.write_all(text.as_bytes()).unwrap();
        ids
    }

    /// The answers to `ids`, in the order they came.
    fn answers(&mut self, ids: &[Value]) -> Vec<Value> {
        let mut answers = Vec::new();
        while answers.len() < ids.len() {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).unwrap();
            assert!(n > 0, "the broker closed the connection");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("method").is_none() && ids.contains(&v["id"]) {
                answers.push(v);
            }
        }
        answers
    }
}

#[test]
fn b_resumes_the_thread_a_started_and_lists_a_threads() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        for_each_plugin(|plugin| b_continues_a(&codex, &plugin.root));
    }
}

fn b_continues_a(codex: &Path, plugin: &Path) {
    let w = World::new(codex, plugin, [KEY_A, KEY_B]);
    let out = run(&w, &["a", "task", "remember the word PAPAYA"]);
    assert!(
        stdout(&out).contains("echo: remember the word PAPAYA"),
        "{}",
        stdout(&out)
    );
    let a_threads = thread_ids(&w.home("a"));
    assert_eq!(a_threads.len(), 1, "{a_threads:?}");
    let first = a_threads[0].clone();
    let a_before = sessions_bytes(&w.home("a"));

    // --resume-last on b: the companion finds a's thread (its job record) and resumes it on b.
    let out = run(&w, &["b", "task", "--resume-last", "what was the word?"]);
    assert!(
        stdout(&out).contains("echo: what was the word? (user turns seen: 2)"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    // b's model request holds a's earlier turn, once, then the new input.
    assert_eq!(
        last_user_texts(&w, KEY_B),
        ["remember the word PAPAYA", "what was the word?"]
    );
    assert!(
        thread_ids(&w.home("b")).contains(&first),
        "b's home holds the thread now"
    );
    assert_eq!(
        sessions_bytes(&w.home("a")),
        a_before,
        "a's files are untouched"
    );

    // A second thread on a, then b's broker: its thread/list shows it (the app-server's own
    // item shape, a's name for it), and thread/resume by id brings it over.
    // A second later, so that both sort keys tell the threads apart (they count seconds).
    std::thread::sleep(Duration::from_millis(1100));
    run(&w, &["a", "task", "--fresh", "the word is MANGO"]);
    let second = thread_ids(&w.home("a"))
        .into_iter()
        .find(|t| *t != first)
        .expect("a second thread on a");
    let a_before = sessions_bytes(&w.home("a"));
    let mut b = Client::connect(&broker_socket(&w, "b"));
    let list = b.call(
        "thread/list",
        json!({"cwd": w.ws, "limit": 20, "sortKey": "updated_at",
               "sourceKinds": ["vscode", "appServer"], "searchTerm": "Codex Companion Task"}),
    );
    let data = list["result"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = data.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "{list}");
    assert_eq!(
        data[0]["name"], "Codex Companion Task: the word is MANGO",
        "{list}"
    );
    // The same keys as the app-server's own item for the first thread (b holds that one).
    let keys = |t: &Value| {
        let mut k: Vec<String> = t.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&data[0]), keys(&data[1]), "{list}");
    let limited = b.call(
        "thread/list",
        json!({"cwd": w.ws, "limit": 1, "sortKey": "created_at", "sourceKinds": ["vscode"]}),
    );
    assert_eq!(
        limited["result"]["data"][0]["id"],
        second.as_str(),
        "{limited}"
    );
    assert_eq!(limited["result"]["data"].as_array().map(Vec::len), Some(1));

    // The turn is sent right behind the resume: it waits for the carry, and comes second. The
    // carry itself waits here for b's carry lock, held by the test: meanwhile b's broker serves
    // another client at once.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(w.home("b").join(".codex-as-threads.lock"))
        .unwrap();
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let ids = b.send_all(&[
        ("thread/resume", json!({"threadId": second, "cwd": w.ws})),
        (
            "turn/start",
            json!({"threadId": second, "input": [{"type": "text", "text": "and now?"}]}),
        ),
    ]);
    let mut other = Client::connect(&broker_socket(&w, "b"));
    let started = std::time::Instant::now();
    let status = other.call("broker/status", json!({}));
    assert!(status["result"]["pid"].is_u64(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !thread_ids(&w.home("b")).contains(&second),
        "the carry waits for the lock"
    );
    drop(lock);
    let answers = b.answers(&ids);
    let (resumed, turn) = (&answers[0], &answers[1]);
    assert_eq!(
        resumed["result"]["thread"]["id"],
        second.as_str(),
        "{resumed}"
    );
    assert!(turn.get("result").is_some(), "{turn}");
    assert!(thread_ids(&w.home("b")).contains(&second));
    assert!(
        crate::support::wait_until(30, || last_user_texts(&w, KEY_B)
            == ["the word is MANGO", "and now?"]),
        "{:?}",
        last_user_texts(&w, KEY_B)
    );
    assert_eq!(sessions_bytes(&w.home("a")), a_before);

    // a's copy of the first thread goes another way than b's: b's resume is refused with one
    // line naming both files, and b's app-server never sees it.
    let a_copy = files_under(&w.home("a").join("sessions"))
        .into_iter()
        .find(|f| f.to_string_lossy().ends_with(&format!("{first}.jsonl")))
        .unwrap();
    let mut text = std::fs::read_to_string(&a_copy).unwrap();
    text.push_str(&format!(
        "{}\n",
        json!({"timestamp": "2026-12-05T12:00:00.000Z", "type": "response_item",
               "payload": {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "elsewhere"}]}})
    ));
    std::fs::write(&a_copy, text).unwrap();
    let b_copy = |w: &World| {
        files_under(&w.home("b").join("sessions"))
            .into_iter()
            .find(|f| f.to_string_lossy().ends_with(&format!("{first}.jsonl")))
            .map(|f| std::fs::read(f).unwrap())
    };
    let b_before = b_copy(&w);
    let refused = b.call("thread/resume", json!({"threadId": first, "cwd": w.ws}));
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("diverged"), "{refused}");
    assert!(message.contains(&a_copy.display().to_string()), "{refused}");
    assert!(
        message.contains(&w.home("b").display().to_string()),
        "{refused}"
    );
    assert!(!message.contains('\n'));
    assert!(b_copy(&w) == b_before, "b's copy is left as it was");

    // This client opens b's copy (the same as a's again) and keeps it: b's app-server has it
    // open for as long as the client is there, whatever Codex's unload timer does.
    std::fs::write(&a_copy, b_before.clone().unwrap()).unwrap();
    let resumed = b.call("thread/resume", json!({"threadId": first, "cwd": w.ws}));
    assert!(resumed["error"].is_null(), "{resumed}");
    let status = b.call("broker/status", json!({}));
    assert!(
        status["result"]["openThreads"]
            .as_array()
            .is_some_and(|open| open.iter().any(|t| t == first.as_str())),
        "{status}"
    );
    // a's copy is now b's plus one more line: newer, but b's app-server has its own copy open,
    // so nothing is carried under it.
    let mut newer = b_before.clone().unwrap();
    newer.extend_from_slice(
        format!(
            "{}\n",
            json!({"timestamp": "2026-12-05T12:00:01.000Z", "type": "response_item",
                   "payload": {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "later on a"}]}})
        )
        .as_bytes(),
    );
    std::fs::write(&a_copy, newer).unwrap();
    let refused = b.call("thread/resume", json!({"threadId": first, "cwd": w.ws}));
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("open"), "{refused}");
    assert!(
        message.contains(&w.home("a").display().to_string()),
        "{refused}"
    );
    assert!(b_copy(&w) == b_before, "b's copy is left as it was");

    // A thread found nowhere goes to the app-server unchanged: its own error.
    let missing = b.call(
        "thread/resume",
        json!({"threadId": "01a245db-0000-7000-8000-000000000000"}),
    );
    assert!(
        missing["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no rollout found")),
        "{missing}"
    );
    drop(b);
    drop(other);
    let _ = run(&w, &["brokers", "stop", "--all", "--timeout", "10s"]);
}

// ---- `codex-as NAME resume [ID | --last]`: the Codex TUI on a thread of any account ----

/// A thread as Codex writes it: `session_meta`, then one user message, stamped `day`.
fn write_thread(home: &Path, id: &str, cwd: &Path, day: &str, prompt: &str) -> PathBuf {
    let dir = home.join(format!("sessions/2026/12/{day}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ts = format!("2026-12-{day}T10:00:00.000Z");
    let meta = json!({"timestamp": ts, "type": "session_meta", "payload": {"id": id,
        "session_id": id, "timestamp": ts, "cwd": cwd, "originator": "codex_cli_rs",
        "cli_version": "0.171.0", "source": "cli", "model_provider": "openai"}});
    let user = json!({"timestamp": ts, "type": "response_item", "payload": {"type": "message",
        "role": "user", "content": [{"type": "input_text", "text": prompt}]}});
    let path = dir.join(format!("rollout-2026-12-{day}T10-00-00-{id}.jsonl"));
    std::fs::write(&path, format!("{meta}\n{user}\n")).unwrap();
    // The file's time is the thread's last activity too.
    let touched = Command::new("touch").arg("-d").arg(&ts).arg(&path).status();
    assert!(touched.is_ok_and(|s| s.success()));
    path
}

#[test]
fn resume_carries_the_thread_into_the_accounts_home_and_runs_codex_resume() {
    let sb = Sandbox::new();
    // The TUI stand-in: says which home it runs in and with what arguments.
    sb.write_script(
        "codex",
        "#!/bin/sh\nprintf 'codex home=%s args=%s\\n' \"$CODEX_HOME\" \"$*\"\n",
    );
    let (a, b) = (sb.account_dir("a"), sb.account_dir("b"));
    let (a, b) = (
        std::fs::canonicalize(a).unwrap(),
        std::fs::canonicalize(b).unwrap(),
    );
    let ws = std::fs::canonicalize(sb.mkdir("ws")).unwrap();
    let elsewhere = std::fs::canonicalize(sb.mkdir("elsewhere")).unwrap();
    let old = "01a245db-7d73-78a1-b3c0-e8594d16e66b";
    let new = "01a245db-adb5-7303-9e06-2ebc504c1437";
    let other = "01a245dc-0000-7000-8000-000000000001";
    write_thread(&a, old, &ws, "01", "first");
    write_thread(&a, new, &ws, "03", "second");
    write_thread(&b, other, &elsewhere, "04", "not this folder");
    let a_before = sessions_bytes(&a);
    let run = |args: &[&str]| sb.codex_as().current_dir(&ws).args(args).output().unwrap();

    let out = run(&["b", "resume", old]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("codex home={} args=resume {old}\n", b.display())
    );
    assert!(thread_ids(&b).contains(&old.to_string()), "carried into b");

    // --last: the newest thread of this folder, whichever account holds it.
    let out = run(&["b", "resume", "--last"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("codex home={} args=resume {new}\n", b.display())
    );
    assert!(thread_ids(&b).contains(&new.to_string()));
    assert_eq!(sessions_bytes(&a), a_before, "a's files are untouched");

    // Back on a: b's copy of `new` is no newer, so nothing moves, and a's TUI runs.
    let out = run(&["a", "resume", new, "go on"]);
    assert_eq!(
        stdout(&out),
        format!("codex home={} args=resume {new} go on\n", a.display())
    );
    assert_eq!(sessions_bytes(&a), a_before);

    // A folder with no thread anywhere, and a list of accounts, are errors before any TUI.
    let out = sb
        .codex_as()
        .current_dir(sb.mkdir("empty"))
        .args(["b", "resume", "--last"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no thread of"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let out = run(&["a,b", "resume", old]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}
