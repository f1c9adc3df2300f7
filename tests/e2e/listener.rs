//! An account whose home has Codex's own listener up (what the 0.171 TUI's daemon is): codex-as
//! serves its companions through it, with the real plugin and the real `codex app-server`
//! (every version of `support::real_codexes()`), whose homes use the model stub. Exactly one
//! app-server serves the home through tasks (foreground, background, concurrent, cancelled),
//! status, setup and review, work lands in that home, and a TUI-like client on the same
//! listener keeps its own turn: never interrupted, never handed the companions' turns, and its
//! pending approval stays its own to answer (the listener asks every subscribed client and takes
//! the first answer, a refusal included).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::listener::{self, TuiClient};
use crate::support::model_stub::{StubWorld as World, holds};
use crate::support::{real_codexes, stderr, stdout, wait_until};

const KEY_A: &str = "sk-listener-a";
const KEY_B: &str = "sk-listener-b";
/// How long the TUI's turn runs (the stub pauses mid-answer): long enough that the companions'
/// work below happens while it runs.
const TUI_TURN_MS: u64 = 15_000;
/// How many tasks run at once on the listener (what the issue asks of one app-server per home).
const CONCURRENT: usize = 5;

/// codex-as's own brokers, as `brokers --json` lists them.
fn own_brokers(w: &World) -> Vec<Value> {
    let mut rows = crate::support::outputs::codex_as_rows(&w.run(&["brokers", "--json"]));
    // A listener codex-as started that no broker serves through is listed too; not a broker.
    rows.retain(|r| r["state"] != "listening");
    rows
}

/// `brokers stop`, and waits until codex-as's brokers are gone.
fn stop_brokers(w: &World) {
    let out = w.run(&["brokers", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(10, || own_brokers(w).is_empty()),
        "{:?}",
        own_brokers(w)
    );
}

/// `broker/status` of codex-as's broker for `home`.
fn broker_status(w: &World, home: &Path) -> Value {
    let home = home.to_string_lossy();
    for b in own_brokers(w) {
        let endpoint = b["endpoint"].as_str().unwrap().to_owned();
        let out = w.run(&["broker", "status", "--endpoint", &endpoint]);
        if !out.status.success() {
            continue;
        }
        let st: Value = serde_json::from_slice(&out.stdout).unwrap();
        if st["codexHome"].as_str() == Some(&*home) {
            return st;
        }
    }
    panic!("no codex-as broker serves {home}");
}

/// The app-servers of a home, sampled in the background from `start` to `one_all_along`.
struct Census {
    stop: Arc<AtomicBool>,
    most: std::thread::JoinHandle<(usize, String)>,
}

impl Census {
    fn start(home: &Path) -> Census {
        let stop = Arc::new(AtomicBool::new(false));
        let most = {
            let (home, stop) = (home.to_path_buf(), stop.clone());
            std::thread::spawn(move || count_while(&home, &stop))
        };
        Census { stop, most }
    }

    /// Fails unless exactly one app-server served the home all along.
    fn one_all_along(self, w: &World) {
        self.stop.store(true, Ordering::Relaxed);
        let (most, who) = self.most.join().unwrap();
        assert_eq!(
            most,
            1,
            "one app-server for a's home all along: {who}; {}",
            logs(w)
        );
    }
}

/// Samples how many app-servers serve `home` until `stop`: the most seen at once, and who they
/// were then (pid, parent and command line).
fn count_while(home: &Path, stop: &AtomicBool) -> (usize, String) {
    let mut most = (0, String::new());
    loop {
        let last = stop.load(Ordering::Relaxed);
        let pids = listener::app_servers_of(home);
        if pids.len() > most.0 {
            let who: Vec<String> = pids
                .iter()
                .map(|p| {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                    let ppid = stat
                        .rsplit(')')
                        .next()
                        .unwrap_or_default()
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let parent = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
                    format!(
                        "{p} (parent {ppid}: {})",
                        String::from_utf8_lossy(&parent).replace('\0', " ")
                    )
                })
                .collect();
            most = (pids.len(), who.join("; "));
        }
        if last {
            return most;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `codex --version`'s number.
fn version_of(codex: &Path) -> String {
    let out = std::process::Command::new(codex)
        .arg("--version")
        .output()
        .unwrap();
    stdout(&out)
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// `doctor --json`'s findings and notes of the brokers area, as text.
fn doctor_brokers(w: &World) -> (Vec<Value>, Vec<String>) {
    let out = w.run(&["doctor", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    let of = |key: &str| -> Vec<Value> {
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["area"] == "brokers")
            .cloned()
            .collect()
    };
    let notes = of("notes")
        .iter()
        .map(|n| n["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    (of("findings"), notes)
}

/// `brokers` and `doctor` say a's broker serves through the listener, with its pid and version;
/// with another Codex on PATH, both say the versions differ.
fn check_lists_and_doctor(w: &World, codex: &Path, listener_pid: i32, start: Start) {
    let version = version_of(codex);
    let own = own_brokers(w);
    let row = own
        .iter()
        .find(|r| r["account"] == "a")
        .unwrap_or_else(|| panic!("{own:?}"));
    assert_eq!(row["appServer"], start.kind(), "{row}");
    assert_eq!(
        row["appServerPid"].as_i64(),
        Some(i64::from(listener_pid)),
        "{row}"
    );
    assert_eq!(row["appServerVersion"], version.as_str(), "{row}");
    assert!(
        row.get("note").is_none(),
        "same version, nothing to say: {row}"
    );
    let table = stdout(&w.run(&["brokers"]));
    assert!(
        table.contains(&format!("app-server: {} for the account (shared with other clients) (pid {listener_pid}, {version})", start.words())),
        "{table}"
    );
    let (findings, notes) = doctor_brokers(w);
    assert!(findings.is_empty(), "{findings:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&format!("broker of 'a': app-server: {}", start.words()))),
        "{notes:?}"
    );

    let Some(other) = real_codexes()
        .into_iter()
        .find(|c| version_of(c) != version)
    else {
        return;
    };
    let other_version = version_of(&other);
    w.sb.with_codex(&other);
    let own = own_brokers(w);
    let row = own.iter().find(|r| r["account"] == "a").unwrap();
    let said = format!("its Codex listener runs {version}, the codex on PATH is {other_version}");
    assert_eq!(row["note"], said.as_str(), "{row}");
    let (findings, _) = doctor_brokers(w);
    assert!(
        findings.iter().any(|f| f["subject"] == "broker of 'a'"
            && f["problem"].as_str().is_some_and(|p| p.contains(&format!(
                "running {version}, and the codex on PATH is {other_version}"
            )))),
        "{findings:?}"
    );
    w.sb.with_codex(codex);
}

/// The brokers' logs, for a failure's message.
fn logs(w: &World) -> String {
    crate::support::outputs::logs_under(&w.sb.path().join("rt"))
}

/// A new git workspace `name` of the sandbox.
fn workspace(w: &World, name: &str) -> PathBuf {
    let ws = w.sb.mkdir(name);
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&ws)
        .status();
    assert!(git.is_ok_and(|s| s.success()), "git init");
    ws
}

/// `codex-as ARGS` in workspace `ws`, as [`World::run`] runs it in the world's own.
fn run_in(w: &World, ws: &Path, args: &[&str]) -> Output {
    w.sb.codex_as()
        .env("CODEX_AS_PLUGIN_ROOT", &w.plugin)
        .env("CODEX_AS_RUNTIME_DIR", w.sb.path().join("rt"))
        .current_dir(ws)
        .args(args)
        .output()
        .unwrap()
}

/// The thread of the completed task whose prompt contains `tag`, once its record says so.
fn thread_of(w: &World, tag: &str) -> String {
    // The plugin rewrites its records in place: one may be half written right now.
    assert!(
        wait_until(60, || job_with(w, tag).is_some()),
        "{tag}: {:?}",
        w.jobs()
    );
    let job = job_with(w, tag).unwrap();
    job["threadId"].as_str().unwrap().to_owned()
}

/// The job the companion recorded for a task whose prompt contains `tag`.
fn job_with(w: &World, tag: &str) -> Option<Value> {
    w.jobs().into_iter().find(|j| {
        j.to_string().contains(tag)
            && j["threadId"].as_str().is_some()
            && j["status"] == "completed"
    })
}

/// Who started the account's listener.
#[derive(Clone, Copy)]
enum Start {
    /// Up before codex-as came (the 0.171 TUI's daemon; the test starts it the same way).
    Tui,
    /// codex-as, because none was up (Codex 0.169 has no daemon); the TUI attaches to it.
    CodexAs,
}

impl Start {
    /// `appServer` in `broker/status` and `brokers --json`.
    fn kind(self) -> &'static str {
        match self {
            Start::Tui => "listener",
            Start::CodexAs => "codex-as-listener",
        }
    }

    /// How `brokers` and `doctor` name it.
    fn words(self) -> &'static str {
        match self {
            Start::Tui => "Codex's own listener",
            Start::CodexAs => "a Codex listener codex-as started",
        }
    }
}

#[test]
fn companions_share_the_accounts_listener_and_leave_its_other_client_alone() {
    share_the_listener(Start::Tui);
}

#[test]
fn companions_share_a_listener_codex_as_started_with_a_tui_that_attached_later() {
    share_the_listener(Start::CodexAs);
}

fn share_the_listener(start: Start) {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        let home_a = w.home("a");
        let socket = match start {
            Start::Tui => listener::start(&w.sb, &codex, &home_a),
            Start::CodexAs => {
                let out = w.run(&["a", "setup"]);
                assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
                std::fs::canonicalize(listener::standard_path(&home_a))
                    .unwrap_or_else(|e| panic!("codex-as started no listener: {e}"))
            }
        };
        let listener_pids = listener::app_servers_of(&home_a);
        assert_eq!(listener_pids.len(), 1, "the listener: {listener_pids:?}");

        // The TUI's own thread, with a turn that runs through everything below.
        let mut tui = TuiClient::connect(&socket, "codex-tui");
        let tui_thread = tui.ok("thread/start", json!({"cwd": w.ws}))["thread"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let text = format!("tui turn stub:sleep={TUI_TURN_MS}");
        let started = tui.ok(
            "turn/start",
            json!({"threadId": tui_thread, "input": [{"type": "text", "text": text}]}),
        );
        let tui_turn = started["turn"]["id"].as_str().unwrap().to_owned();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let done = done.clone();
            let turn = tui_turn.clone();
            std::thread::spawn(move || {
                let completed = tui.until_turn_completed(&turn);
                let at = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    tui.poll();
                }
                (tui, completed, at)
            })
        };

        let census = Census::start(&home_a);

        // Foreground, then in the background, then several at once.
        let out = w.run(&["a", "task", "foreground FG1"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("echo: foreground FG1"),
            "{}",
            stdout(&out)
        );
        let first_done = Instant::now();
        let mut threads = vec![("FG1".to_owned(), thread_of(&w, "FG1"))];
        let st = broker_status(&w, &home_a);
        assert_eq!(st["appServer"], start.kind(), "{st}");
        assert_eq!(
            st["appServerPid"].as_u64(),
            Some(listener_pids[0] as u64),
            "{st}"
        );
        // The TUI opened its thread before the broker connected: the broker knows it is open
        // (no newer copy of it may be carried into this home under the listener).
        assert!(
            st["openThreads"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == tui_thread.as_str()),
            "{st}"
        );
        check_lists_and_doctor(&w, &codex, listener_pids[0], start);
        for args in [&["a", "status"][..], &["a", "setup"]] {
            let out = w.run(args);
            assert!(
                out.status.success(),
                "{args:?}: {} {}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::fs::write(w.ws.join("notes.txt"), "a change to review\n").unwrap();
        let out = w.run(&["a", "review"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("echo:"), "{}", stdout(&out));

        let out = w.run(&["a", "task", "--background", "background BG1"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        threads.push(("BG1".to_owned(), thread_of(&w, "BG1")));

        // A background turn cancelled: the broker forwards the interrupt of its own turn.
        let out = w.run(&["a", "task", "--background", "long CANCEL1 stub:sleep=15000"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        let running = || {
            w.jobs().into_iter().find(|j| {
                j.to_string().contains("CANCEL1")
                    && j["status"] == "running"
                    && j["turnId"].as_str().is_some()
            })
        };
        assert!(wait_until(60, || running().is_some()), "{:?}", w.jobs());
        let job = running().unwrap();
        let out = w.run(&["a", "cancel", job["id"].as_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        let cancel: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
        assert_eq!(cancel["status"], "cancelled", "{cancel}");
        assert_eq!(cancel["turnInterrupted"], true, "{cancel}");

        let ok = Arc::new(AtomicUsize::new(0));
        let at_once = Instant::now();
        std::thread::scope(|s| {
            for n in 0..CONCURRENT {
                let (w, ok) = (&w, ok.clone());
                s.spawn(move || {
                    // A workspace each: companions of one workspace race on its job index
                    // (the plugin's own race, not codex-as's).
                    let ws = workspace(w, &format!("ws-cc{n}"));
                    // A pause mid-answer, so that the turns overlap on the listener.
                    let prompt = format!("concurrent CC{n} stub:sleep=2000");
                    let out = run_in(w, &ws, &["a", "task", &prompt]);
                    if out.status.success()
                        && stdout(&out).contains(&format!("echo: concurrent CC{n}"))
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("CC{n}: {} {}", stdout(&out), stderr(&out));
                    }
                });
            }
        });
        eprintln!(
            "{CONCURRENT} concurrent tasks: {:.1} s",
            at_once.elapsed().as_secs_f32()
        );
        assert_eq!(
            ok.load(Ordering::Relaxed),
            CONCURRENT,
            "every concurrent task answered"
        );
        census.one_all_along(&w);

        // Every companion thread landed in a's home; none in b's.
        for n in 0..CONCURRENT {
            let tag = format!("CC{n}");
            let thread = thread_of(&w, &tag);
            threads.push((tag, thread));
        }
        for (tag, thread) in &threads {
            assert!(holds(&home_a, thread), "{tag}: {thread} in a's home");
            assert!(!holds(&w.home("b"), thread), "{tag}: not in b's");
        }

        // The broker leaves; the listener and its TUI stay.
        stop_brokers(&w);
        assert_eq!(listener::app_servers_of(&home_a), listener_pids);

        done.store(true, Ordering::Relaxed);
        let (mut tui, completed, tui_done) = reader.join().unwrap_or_else(|_| {
            panic!(
                "the TUI client failed; its listener's log ends:\n{}",
                listener::log_tail(&home_a)
            )
        });
        assert!(
            first_done < tui_done,
            "the companions ran while the TUI's turn did"
        );
        assert_eq!(completed["turn"]["status"], "completed", "{completed}");
        let companion_threads: Vec<String> = threads.into_iter().map(|(_, t)| t).collect();
        assert_not_handed(&tui.seen, &companion_threads);
        // Its connection still works after the broker left.
        let read = tui.ok("thread/read", json!({"threadId": tui_thread}));
        assert_eq!(read["thread"]["id"], tui_thread.as_str(), "{read}");

        // b has no listener, and the config asks for no shared one: its broker runs its own
        // child, as before.
        w.sb.write_config("[broker]\napp_server = \"child\"\n");
        let out = w.run(&["b", "task", "on b"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(broker_status(&w, &w.home("b"))["appServer"], "child");
        // A listener that comes later makes two app-servers for b: doctor says so.
        let b_socket = listener::start(&w.sb, &codex, &w.home("b"));
        let (findings, _) = doctor_brokers(&w);
        assert!(
            findings.iter().any(|f| f["subject"] == "broker of 'b'"
                && f["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("next to the Codex listener"))),
            "{findings:?}"
        );
        let _ = std::fs::remove_file(&b_socket);
        let _ = std::fs::remove_file(&socket);
    }
}

/// Fails when `seen` (what a TUI client received) hands it one of `companion_threads`' turns,
/// items or server requests.
fn assert_not_handed(seen: &[(Instant, Value)], companion_threads: &[String]) {
    for (_, v) in seen {
        let method = v["method"].as_str().unwrap_or_default();
        let thread = v["params"]["threadId"].as_str().unwrap_or_default();
        let theirs = companion_threads.iter().any(|t| t == thread);
        assert!(
            !(theirs && (method.starts_with("turn/") || method.starts_with("item/"))),
            "the TUI was handed a companion's turn: {v}"
        );
        assert!(
            v.get("id").is_none() || v.get("method").is_none() || !theirs,
            "{v}"
        );
    }
}

/// How many log lines the listener of `home` wrote about `turn/interrupt` requests (each
/// request's lines name its method as `rpc.method="..."`, colour codes around the `=`).
fn interrupts_asked(home: &Path) -> usize {
    std::fs::read_to_string(listener::log_path(home))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("rpc.method") && l.contains(r#""turn/interrupt""#))
        .count()
}

#[test]
fn a_tui_clients_pending_approval_stays_its_own_while_companions_work() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let began = Instant::now();
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        let home_a = w.home("a");
        let socket = listener::start(&w.sb, &codex, &home_a);
        let listener_pids = listener::app_servers_of(&home_a);
        assert_eq!(listener_pids.len(), 1, "the listener: {listener_pids:?}");
        let census = Census::start(&home_a);

        // The TUI's thread asks before running anything not known safe; its turn's model calls
        // `touch`, so the turn waits on the TUI's user.
        let mut tui = TuiClient::connect(&socket, "codex-tui");
        let tui_thread = tui.ok(
            "thread/start",
            json!({"cwd": w.ws, "approvalPolicy": "untrusted"}),
        )["thread"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let touched = w.ws.join("tui-approved");
        let started = tui.ok(
            "turn/start",
            json!({
                "threadId": tui_thread,
                "input": [{"type": "text", "text": "tui turn stub:exec=tui-approved"}],
            }),
        );
        let tui_turn = started["turn"]["id"].as_str().unwrap().to_owned();
        let approval = tui.until("the TUI's approval request", |v| {
            v["method"] == "item/commandExecution/requestApproval"
                && v["params"]["threadId"] == tui_thread.as_str()
                && v.get("id").is_some()
        });
        let approval_id = approval["id"].clone();
        let item = approval["params"]["itemId"].as_str().unwrap().to_owned();
        let interrupts_before = interrupts_asked(&home_a);

        // The TUI reads on (its user has not decided) while the companions work.
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    tui.poll();
                }
                tui
            })
        };
        let out_bg = w.run(&["a", "task", "--background", "background APPROVAL-BG"]);
        assert!(
            out_bg.status.success(),
            "{} {}",
            stdout(&out_bg),
            stderr(&out_bg)
        );
        // In a workspace of its own: two companions of one workspace race on its job index
        // (the plugin's own race, not codex-as's).
        let ws_fg = workspace(&w, "ws-fg");
        let out_fg = run_in(&w, &ws_fg, &["a", "task", "foreground APPROVAL-FG"]);
        assert!(
            out_fg.status.success(),
            "{} {}",
            stdout(&out_fg),
            stderr(&out_fg)
        );
        assert!(
            stdout(&out_fg).contains("echo: foreground APPROVAL-FG"),
            "{}",
            stdout(&out_fg)
        );
        let threads: Vec<String> = ["APPROVAL-FG", "APPROVAL-BG"]
            .iter()
            .map(|tag| thread_of(&w, tag))
            .collect();
        for (tag, thread) in ["APPROVAL-FG", "APPROVAL-BG"].iter().zip(&threads) {
            assert!(holds(&home_a, thread), "{tag}: {thread} in a's home");
            assert!(!holds(&w.home("b"), thread), "{tag}: not in b's");
            assert_ne!(thread, &tui_thread, "{tag}");
        }
        let st = broker_status(&w, &home_a);
        assert_eq!(st["appServer"], "listener", "{st}");
        // The broker leaves too (it interrupts its own clients' turns on the way out, no other).
        stop_brokers(&w);
        done.store(true, Ordering::Relaxed);
        let mut tui = reader.join().unwrap_or_else(|_| {
            panic!(
                "the TUI client failed; its listener's log ends:\n{}",
                listener::log_tail(&home_a)
            )
        });
        tui.drain_for(Duration::from_millis(500));

        // Nobody answered the TUI's question, and its turn still waits on it.
        let resolved: Vec<&Value> = tui
            .seen
            .iter()
            .map(|(_, v)| v)
            .filter(|v| {
                v["method"] == "serverRequest/resolved" && v["params"]["requestId"] == approval_id
            })
            .collect();
        assert!(
            resolved.is_empty(),
            "the TUI's approval was answered by someone else: {resolved:?}"
        );
        let ended: Vec<&Value> = tui
            .seen
            .iter()
            .map(|(_, v)| v)
            .filter(|v| {
                (v["method"] == "turn/completed" && v["params"]["turn"]["id"] == tui_turn.as_str())
                    || (v["method"] == "item/completed"
                        && v["params"]["item"]["id"] == item.as_str())
            })
            .collect();
        assert!(ended.is_empty(), "the TUI's turn went on: {ended:?}");
        let status =
            tui.ok("thread/read", json!({"threadId": tui_thread}))["thread"]["status"].clone();
        assert_eq!(
            status,
            json!({"type": "active", "activeFlags": ["waitingOnApproval"]}),
            "the TUI's thread"
        );
        assert!(
            !touched.exists(),
            "nothing ran before the TUI's user said so"
        );
        assert_eq!(
            interrupts_asked(&home_a),
            interrupts_before,
            "nobody asked the listener to interrupt a turn"
        );

        // The companions never saw the TUI's thread or turn.
        let mut theirs = vec![
            stdout(&out_bg),
            stderr(&out_bg),
            stdout(&out_fg),
            stderr(&out_fg),
        ];
        theirs.extend(
            w.sb.find("jobs")
                .iter()
                .flat_map(|d| crate::support::files_under(d))
                .map(|p| std::fs::read_to_string(p).unwrap_or_default()),
        );
        for id in [&tui_thread, &tui_turn] {
            assert!(
                !theirs.iter().any(|t| t.contains(id.as_str())),
                "{id} in the companions' output or job records: {:?}",
                w.jobs()
            );
        }
        assert_not_handed(&tui.seen, &threads);

        // The TUI's user approves: the command runs and the turn ends as the model says.
        tui.answer(&approval_id, json!({"decision": "accept"}));
        let completed = tui.until_turn_completed(&tui_turn);
        assert_eq!(completed["turn"]["status"], "completed", "{completed}");
        let said = completed["turn"]["items"].to_string();
        assert!(
            said.contains("echo: tui turn stub:exec=tui-approved"),
            "{completed}"
        );
        let ran = tui.until("the approved command's end", |v| {
            v["method"] == "item/completed" && v["params"]["item"]["id"] == item.as_str()
        });
        assert_eq!(ran["params"]["item"]["status"], "completed", "{ran}");
        assert!(touched.exists(), "the approved command ran");
        assert_eq!(
            interrupts_asked(&home_a),
            interrupts_before,
            "nobody interrupted a turn"
        );

        census.one_all_along(&w);
        assert_eq!(listener::app_servers_of(&home_a), listener_pids);
        let _ = std::fs::remove_file(&socket);
        eprintln!(
            "-- {}: {:.1} s",
            codex.display(),
            began.elapsed().as_secs_f32()
        );
    }
}

#[test]
fn a_listener_of_another_home_at_an_accounts_path_is_never_used() {
    let Some(codex) = real_codexes().into_iter().next() else {
        return;
    };
    let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
        return;
    };
    let (home_a, home_b) = (w.home("a"), w.home("b"));
    // b's Codex told to listen at a's standard path.
    let socket = listener::start_at(&w.sb, &codex, &home_b, &listener::standard_path(&home_a));
    let out = w.run(&["a", "task", "where does this land"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{} {err}", stdout(&out));
    assert!(err.contains("not this account's home"), "{err}");
    assert!(
        w.stub.turn_requests(KEY_A).is_empty() && w.stub.turn_requests(KEY_B).is_empty(),
        "no turn ran anywhere: {:?}",
        w.stub.requests()
    );
    assert!(own_brokers(&w).is_empty(), "{:?}", own_brokers(&w));
    let _ = std::fs::remove_file(&socket);
}

/// Writes a stand-in for the daemon's package copy below `home`: `files` files of 100 kB.
fn fake_daemon_copy(home: &Path, files: usize) -> std::path::PathBuf {
    let dir = home.join("packages").join("app-server-daemon");
    for n in 0..files {
        let sub = dir.join(format!("lib{}", n % 4));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("part{n}")), vec![1u8; 100_000]).unwrap();
    }
    dir
}

/// `doctor --json`'s warnings of `account`, and its exit status with its number of findings.
fn doctor_warnings(w: &World, account: &str) -> ((Option<i32>, usize), Vec<Value>) {
    let out = w.run(&["doctor", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    let findings = doc["findings"].as_array().map_or(0, Vec::len);
    let warnings = doc["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .filter(|f| f["subject"] == account)
        .cloned()
        .collect();
    ((out.status.code(), findings), warnings)
}

#[test]
fn doctor_warns_about_the_daemons_package_copy_without_failing() {
    let Some(codex) = real_codexes().into_iter().next() else {
        return;
    };
    let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
        return;
    };
    let (home_a, home_b) = (w.home("a"), w.home("b"));
    // Private, as Codex makes them: a home in use that others may read is a finding of its own.
    for home in [&home_a, &home_b] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // A first doctor leaves the default account's home (~/.codex) behind, a finding from then
    // on: the baseline is taken after it.
    let _ = w.run(&["doctor"]);
    let (before, none) = doctor_warnings(&w, "a");
    assert!(none.is_empty(), "{none:?}");

    let copy_a = fake_daemon_copy(&home_a, 30);
    let copy_b = fake_daemon_copy(&home_b, 12);
    let (after, warned) = doctor_warnings(&w, "a");
    assert_eq!(
        after,
        before,
        "a warning is no finding: the exit status stays; {}",
        stdout(&w.run(&["doctor"]))
    );
    assert_eq!(warned.len(), 1, "{warned:?}");
    let problem = warned[0]["problem"].as_str().unwrap();
    assert!(problem.contains(&copy_a.display().to_string()), "{problem}");
    assert!(problem.contains(" 3 MB "), "{problem}");
    assert!(problem.contains("daemon"), "{problem}");
    let fix = warned[0]["fix"].as_str().unwrap();
    assert!(
        fix.contains("codex-as a -- codex features disable daemon_auto_start"),
        "{fix}"
    );
    assert!(!fix.contains("daemon stop"), "no daemon runs: {fix}");
    let (_, warned_b) = doctor_warnings(&w, "b");
    let problem_b = warned_b[0]["problem"].as_str().unwrap();
    assert!(
        problem_b.contains(&copy_b.display().to_string()) && problem_b.contains(" 1 MB "),
        "{problem_b}"
    );
    let text = stdout(&w.run(&["doctor"]));
    assert!(text.contains("2 warnings:"), "{text}");

    // With a listener up for a, deleting its copy is advised only after stopping it.
    let socket = listener::start(&w.sb, &codex, &home_a);
    let (_, warned) = doctor_warnings(&w, "a");
    let fix = warned[0]["fix"].as_str().unwrap();
    let stop = fix.find("codex-as a -- codex app-server daemon stop");
    assert!(
        stop.is_some_and(|s| fix.find("rm -rf").is_some_and(|rm| s < rm)),
        "{fix}"
    );
    let (_, warned_b) = doctor_warnings(&w, "b");
    assert!(
        !warned_b[0]["fix"].as_str().unwrap().contains("daemon stop"),
        "{warned_b:?}"
    );
    let _ = std::fs::remove_file(&socket);
}
