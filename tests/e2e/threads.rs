//! Threads across accounts: `codex-as threads` lists them, `codex-as thread carry` moves one,
//! and a carry killed at any moment never leaves a partial rollout behind.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Sandbox, files_under, fixtures, run};

const ID: &str = "01a2237f-d7da-7aa2-94b0-b297369516ed";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";
const REL: &str =
    "sessions/2026/11/28/rollout-2026-11-28T18-51-50-01a2237f-d7da-7aa2-94b0-b297369516ed.jsonl";

fn line(ordinal: usize, ty: &str, payload: Value) -> String {
    json!({"timestamp": "2026-11-28T18:51:50.633Z", "ordinal": ordinal, "type": ty, "payload": payload})
        .to_string()
        + "\n"
}

/// A thread of `turns` turns of ten records each (one of them encrypted reasoning), as lines.
fn big_thread(turns: usize) -> Vec<String> {
    let mut out = vec![line(
        0,
        "session_meta",
        json!({"id": ID, "cwd": "/w/big", "history_mode": "paginated"}),
    )];
    for t in 0..turns {
        let turn = format!("turn-{t}");
        let mut push = |ty: &str, p: Value| {
            let n = out.len();
            out.push(line(n, ty, p));
        };
        push(
            "event_msg",
            json!({"type": "task_started", "turn_id": turn}),
        );
        push(
            "response_item",
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("question {t}")}]}),
        );
        push(
            "response_item",
            json!({"type": "reasoning", "id": format!("rs_{t}"), "summary": [], "content": null, "encrypted_content": format!("gAAAA{}", "z".repeat(300))}),
        );
        for i in 0..6 {
            push(
                "response_item",
                json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": format!("answer {t}.{i} {}", "x".repeat(150))}]}),
            );
        }
        push(
            "event_msg",
            json!({"type": "task_complete", "turn_id": turn}),
        );
    }
    out
}

fn rollouts_in(home: &Path) -> Vec<PathBuf> {
    files_under(&home.join("sessions"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rollout-"))
        })
        .collect()
}

fn temps_in(home: &Path) -> usize {
    files_under(&home.join("sessions"))
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".codex-as-carry-"))
        })
        .count()
}

fn put(home: &Path, rel: &str, text: &str) {
    let p = home.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The real 0.171 rollout of the fixtures, decompressed.
fn real_rollout() -> String {
    use std::io::Read;
    let f = std::fs::File::open(fixtures().join("codex-rollouts/rollout-0.171.jsonl.zst")).unwrap();
    let mut out = String::new();
    ruzstd::decoding::StreamingDecoder::new(f)
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// A small xorshift generator: the kill points differ from run to run, and the seed is printed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn a_carry_killed_at_any_moment_leaves_nothing_partial_and_the_next_one_completes() {
    let sb = Sandbox::with_shell_accounts();
    let alice = sb.home().join("alice-home");
    let bob = sb.home().join(".codex-bob");
    let lines = big_thread(1000);
    assert_eq!(lines.len(), 10_001);
    put(&alice, REL, &lines.concat());
    let complete: String = lines
        .iter()
        .filter(|l| !l.contains("encrypted_content\":\"gAAAA"))
        .cloned()
        .collect();
    // Bob's old copy: the first half of the thread, as an earlier carry left it.
    let old: String = lines[..5001]
        .iter()
        .filter(|l| !l.contains("encrypted_content\":\"gAAAA"))
        .cloned()
        .collect();
    let alice_before = std::fs::read(alice.join(REL)).unwrap();

    let carry = || {
        let mut c = sb.codex_as();
        c.args(["thread", "carry", ID, "--from", "alice", "--to", "bob"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        c
    };
    // How long one carry takes here, and when it starts writing (its temp file appears), to
    // aim half the kills at the write itself.
    put(&bob, REL, &old);
    let start = Instant::now();
    let mut child = carry().spawn().unwrap();
    let mut writing = None;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if writing.is_none() && temps_in(&bob) > 0 {
            writing = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    };
    let took = start.elapsed();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(bob.join(REL)).unwrap(), complete);
    let writing = writing.unwrap_or(took * 3 / 4);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("one carry took {took:?}, writing from {writing:?}; kill seed {seed}");
    let mut rng = Rng(seed);
    let span = (took.as_micros() as u64 * 5 / 4).max(1000);
    let from = (writing.as_micros() as u64 * 9 / 10).min(span - 1);
    let (mut saw_old, mut saw_none, mut saw_complete, mut saw_temp) = (0, 0, 0, 0);
    for i in 0..40 {
        // Half the runs start from bob's old copy, half from nothing.
        let _ = std::fs::remove_file(bob.join(REL));
        let had_old = i % 2 == 0;
        if had_old {
            put(&bob, REL, &old);
        }
        let mut child = carry().spawn().unwrap();
        let delay = if i % 4 < 2 {
            from + rng.below(span - from)
        } else {
            rng.below(span)
        };
        std::thread::sleep(Duration::from_micros(delay));
        // SIGKILL (the carry may also have finished already).
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();

        let found = rollouts_in(&bob);
        assert!(found.len() <= 1, "run {i}: {found:?}");
        match found.first() {
            None => {
                assert!(!had_old, "run {i}: bob's old copy is gone");
                saw_none += 1;
            }
            Some(p) => {
                assert_eq!(p, &bob.join(REL), "run {i}");
                let now = std::fs::read_to_string(p).unwrap();
                if now == complete {
                    saw_complete += 1;
                } else {
                    assert!(
                        had_old && now == old,
                        "run {i}: bob's copy is partial ({} bytes)",
                        now.len()
                    );
                    saw_old += 1;
                }
            }
        }
        if temps_in(&bob) > 0 {
            saw_temp += 1;
        }
    }
    eprintln!(
        "after 40 kills: old copy {saw_old}, nothing {saw_none}, complete {saw_complete}, a temp file left {saw_temp}"
    );
    // The final carry completes and sweeps what killed ones left.
    let _ = std::fs::remove_file(bob.join(REL));
    put(&bob, REL, &old);
    let out = run(sb
        .codex_as()
        .args(["thread", "carry", ID, "--from", "alice", "--to", "bob"]));
    out.ok();
    assert!(out.stdout.contains("updated"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(bob.join(REL)).unwrap(), complete);
    assert_eq!(
        temps_in(&bob),
        0,
        "temp files of killed carries were not swept"
    );
    let mode = std::fs::metadata(bob.join(REL))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read(alice.join(REL)).unwrap(),
        alice_before,
        "alice's copy changed"
    );
}

#[test]
fn threads_lists_every_account_s_threads_and_carry_moves_one() {
    let sb = Sandbox::with_shell_accounts();
    let alice = sb.home().join("alice-home");
    let bob = sb.home().join(".codex-bob");
    put(&alice, REL, &real_rollout());
    let other = [
        line(0, "session_meta", json!({"id": OTHER, "cwd": "/w/other"})),
        line(1, "event_msg", json!({"type": "item_completed", "item": {"type": "UserMessage", "content": [{"type": "text", "text": "write the docs"}]}})),
    ]
    .concat()
    .replace("2026-11-28T18:51:50.633Z", "2026-11-29T08:00:00.000Z");
    put(
        &bob,
        &format!("sessions/2026/11/29/rollout-2026-11-29T08-00-00-{OTHER}.jsonl"),
        &other,
    );

    let out = run(sb.codex_as().args(["threads", "--json"]));
    out.ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let threads = doc["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "{doc}");
    assert_eq!(threads[0]["id"], OTHER);
    assert_eq!(threads[0]["accounts"], json!(["bob"]));
    assert_eq!(threads[0]["firstPrompt"], "write the docs");
    assert_eq!(threads[1]["id"], ID);
    assert_eq!(threads[1]["accounts"], json!(["alice"]));
    assert_eq!(threads[1]["newest"], "alice");
    assert_eq!(threads[1]["folder"], "/tmp/r12");
    assert_eq!(threads[1]["firstPrompt"], "say OK");
    assert_eq!(threads[1]["lastActivity"], "2026-11-28T18:51:50.759Z");
    for key in [
        "id",
        "accounts",
        "newest",
        "folder",
        "lastActivity",
        "firstPrompt",
        "path",
    ] {
        assert!(threads[1].get(key).is_some(), "{key} missing");
    }

    // Carried to bob without naming where from: the newest copy's account.
    let out = run(sb.codex_as().args(["thread", "carry", ID, "--to", "bob"]));
    out.ok();
    assert!(out.stdout.contains("copied in 'bob'"), "{}", out.stdout);
    assert_eq!(rollouts_in(&bob).len(), 2);
    let out = run(sb.codex_as().args(["threads", "--limit", "1"]));
    out.ok();
    let table: Vec<&str> = out.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("\n* holds the newest copy"),
        "{}",
        out.stdout
    );
    assert!(table[0].starts_with("THREAD") && table[0].contains("FIRST PROMPT"));
    assert!(
        table[1].contains(OTHER) && table[1].contains("bob*"),
        "{}",
        out.stdout
    );

    let out = run(sb
        .codex_as()
        .args(["thread", "carry", "../../etc", "--to", "bob"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("not a thread id"), "{}", out.stderr);
}

/// `codex app-server` on stdio, for a few calls that need no model.
struct AppServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    next: u64,
}

impl AppServer {
    fn start(sb: &Sandbox, codex: &Path, home: &Path) -> AppServer {
        let mut cmd = sb.command(codex);
        cmd.arg("app-server")
            .env("CODEX_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = AppServer {
            child,
            stdin,
            lines,
            next: 1,
        };
        let init = s.call(
            "initialize",
            json!({"clientInfo": {"name": "t", "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "{init}");
        s.send(json!({"method": "initialized"}));
        s
    }

    fn send(&mut self, v: Value) {
        use std::io::Write;
        writeln!(self.stdin, "{v}").unwrap();
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return v;
            }
        }
        panic!("no answer to {method}");
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// The real fixture's provider, so the real app-server accepts its threads (no model is asked).
const MOCK_PROVIDER: &str = "model = \"gpt-5.5\"\nmodel_provider = \"mock\"\n\n[model_providers.mock]\nname = \"mock\"\nbase_url = \"http://127.0.0.1:9/v1\"\nwire_api = \"responses\"\nrequires_openai_auth = true\nrequest_max_retries = 0\nstream_max_retries = 0\n";

/// A fork made by the real app-server names its parent with a byte offset (`history_base`);
/// carried to another account with the parent's encrypted reasoning left out, the real
/// app-server there resumes it with the inherited turn, which it could not with the offset
/// unchanged ("cutoff byte offset is past the source rollout").
#[test]
fn a_fork_carried_with_its_parent_resumes_on_the_real_app_server() {
    for codex in crate::support::real_codexes() {
        eprintln!("-- against {}", codex.display());
        let sb = Sandbox::with_shell_accounts();
        let alice = sb.home().join("alice-home");
        let bob = sb.home().join(".codex-bob");
        for h in [&alice, &bob] {
            put(h, "config.toml", MOCK_PROVIDER);
        }
        // The real 0.171 rollout with an encrypted reasoning item in its turn.
        let mut parent = String::new();
        for (n, l) in real_rollout().lines().enumerate() {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["ordinal"] = json!(parent.lines().count());
            parent += &(v.to_string() + "\n");
            if n == 9 {
                let r = json!({"timestamp": v["timestamp"], "ordinal": parent.lines().count(), "type": "response_item", "payload": {"type": "reasoning", "id": "rs_1", "summary": [], "content": null, "encrypted_content": format!("gAAAAB{}", "q".repeat(500))}});
                parent += &(r.to_string() + "\n");
            }
        }
        put(&alice, REL, &parent);

        let child = {
            let mut a = AppServer::start(&sb, &codex, &alice);
            let fork = a.call("thread/fork", json!({"threadId": ID}));
            fork["result"]["thread"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{fork}"))
                .to_string()
        };
        let out = run(sb
            .codex_as()
            .args(["thread", "carry", &child, "--from", "alice", "--to", "bob"]));
        out.ok();
        let parent_b = std::fs::read_to_string(bob.join(REL)).unwrap();
        assert!(
            !parent_b.contains("gAAAAB"),
            "the parent's encrypted reasoning was carried"
        );

        let mut b = AppServer::start(&sb, &codex, &bob);
        let p = b.call("thread/resume", json!({"threadId": ID}));
        assert!(p.get("result").is_some(), "{p}");
        let c = b.call("thread/resume", json!({"threadId": child}));
        assert!(
            c.get("result").is_some(),
            "the carried fork does not resume: {c}"
        );
        let turns = c["result"]["thread"]["turns"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(turns, 1, "the fork lost its inherited turn: {c}");
    }
}
