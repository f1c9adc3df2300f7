//! `codex-as alice,bob ...` and `codex-as auto ...`: fail over to the next account only when an
//! account's usage limit is reached, choose by quota headroom read from session files in Codex's
//! own format, and `codex-as quota --json`.
//!
//! Companion runs go through the plugin-compatible fixture (tests/fixtures/plugin, when present)
//! and the real plugin (support/peers.rs). The fake codex decides each account's fate from
//! files in its home: `.fake-usage-limit` (every turn fails with Codex's usage-limit error),
//! `.fake-fail` (an ordinary failure), `.fake-rate-limits` (a snapshot written after each turn).
//! Which home served each turn is read from the fake's own log (FAKE_CODEX_LOG).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Sandbox, stderr, stdout};
use serde_json::{Value, json};

const ALL_EXHAUSTED: i32 = 75;

struct World {
    sb: Sandbox,
    plugin: Option<PathBuf>,
    ws: PathBuf,
}

impl World {
    fn new(plugin: Option<&Path>) -> World {
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in ["alice", "bob", "carol"] {
            let d = sb.account_dir(a);
            std::fs::write(d.join("auth.json"), r#"{"auth_mode":"chatgpt"}"#).unwrap();
        }
        let ws = sb.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&ws)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git init");
        World {
            sb,
            plugin: plugin.map(Path::to_path_buf),
            ws: std::fs::canonicalize(ws).unwrap(),
        }
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    fn flag(&self, account: &str, name: &str) {
        std::fs::write(self.home(account).join(name), "").unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.sb.codex_as();
        if let Some(p) = &self.plugin {
            c.env("CODEX_AS_PLUGIN_ROOT", p);
        }
        c.env("CODEX_AS_RUNTIME_DIR", self.sb.path().join("rt"))
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .current_dir(&self.ws)
            .args(args);
        c.output().unwrap()
    }

    /// (home, status) of every finished turn, from the fake codex's log.
    fn turns(&self) -> Vec<(PathBuf, String)> {
        let text = std::fs::read_to_string(self.sb.path().join("codex.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["method"] == "turn/completed")
            .map(|v| {
                (
                    PathBuf::from(v["codexHome"].as_str().unwrap()),
                    v["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn quota(&self) -> Value {
        let out = self.run(&["quota", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn each_plugin(test: impl Fn(&World)) {
    crate::support::for_each_plugin(|p| test(&World::new(Some(&p.root))));
}

/// Against every plugin version of the matrix: how the companion reports a turn that hit the
/// usage limit goes through code that changed between versions.
fn each_plugin_version(test: impl Fn(&World)) {
    crate::support::for_each_plugin_version(|p| {
        let w = World::new(Some(&p.root));
        if p.checks_login_with_cli() {
            // A ChatGPT login `codex login status` accepts (the fake wants tokens).
            for a in ["alice", "bob", "carol"] {
                std::fs::write(
                    w.home(a).join("auth.json"),
                    r#"{"auth_mode":"chatgpt","tokens":{}}"#,
                )
                .unwrap();
            }
        }
        test(&w)
    });
}

/// Codex's `rate_limits` object as it writes it in rollouts.
fn rate_limits(primary: (f64, i64), secondary: (f64, i64)) -> Value {
    json!({
        "limit_id": "codex",
        "limit_name": null,
        "primary": {"used_percent": primary.0, "window_minutes": 300, "resets_at": primary.1},
        "secondary": {"used_percent": secondary.0, "window_minutes": 10080, "resets_at": secondary.1},
        "credits": {"has_credits": false, "unlimited": false, "balance": null},
        "plan_type": "plus",
        "rate_limit_reached_type": null
    })
}

/// A session file in Codex's real layout and format, ending with a token_count snapshot.
fn write_session(home: &Path, limits: &Value) -> PathBuf {
    let dir = home.join("sessions/2026/01/10");
    std::fs::create_dir_all(&dir).unwrap();
    let id = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let path = dir.join(format!("rollout-2026-01-10T12-00-00-{id}.jsonl"));
    let lines = [
        json!({"timestamp":"2026-01-10T12:00:00.000Z","type":"session_meta","payload":{"id":id,"timestamp":"2026-01-10T12:00:00.000Z","cwd":"/w","originator":"codex_cli_rs","cli_version":"0.169.0"}}),
        json!({"timestamp":"2026-01-10T12:00:01.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":limits}}),
        json!({"timestamp":"2026-01-10T12:00:02.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]}}),
        json!({"timestamp":"2026-01-10T12:00:03.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":5,"reasoning_output_tokens":0,"total_tokens":15}},"rate_limits":limits}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_names_for_one_home_are_tried_once() {
    each_plugin(|w| {
        std::os::unix::fs::symlink(w.home("alice"), w.sb.home().join(".codex-ali")).unwrap();
        w.flag("alice", ".fake-usage-limit");
        let out = w.run(&["ali,alice,bob", "task", "dup [[delay:10]]"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(
            w.turns(),
            [
                (w.home("alice"), "failed".to_string()),
                (w.home("bob"), "completed".to_string())
            ],
            "alice's home ran one turn, not two"
        );
        assert!(
            stderr(&out).contains("same home as 'ali'"),
            "{}",
            stderr(&out)
        );
    });
}

#[test]
fn an_exhausted_account_hands_the_task_to_the_next() {
    each_plugin_version(|w| {
        w.flag("alice", ".fake-usage-limit");
        let out = w.run(&["alice,bob", "task", "first [[delay:10]]"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains(&format!("done by {}", w.home("bob").display())),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            w.turns(),
            [
                (w.home("alice"), "failed".to_string()),
                (w.home("bob"), "completed".to_string())
            ]
        );
        let err = stderr(&out);
        assert!(err.contains("ran as 'bob'"), "{err}");
        assert!(
            err.contains("skipped 'alice' (usage limit reached"),
            "{err}"
        );
        assert!(
            !err.contains("WARNING"),
            "the session landed in bob's home: {err}"
        );

        // The structured signal: alice's broker saw the turn fail with usageLimitExceeded, and
        // knows which process's turn it was.
        let brokers: Value = serde_json::from_slice(&w.run(&["brokers", "--json"]).stdout).unwrap();
        let alice = brokers
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["owner"] == "codex-as" && b["account"] == "alice")
            .unwrap();
        let out = w.run(&[
            "broker",
            "status",
            "--endpoint",
            alice["endpoint"].as_str().unwrap(),
        ]);
        let st: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hits = st["usageLimitHits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{st}");
        assert!(hits[0]["pid"].as_u64().is_some(), "{st}");
        assert!(
            hits[0]["message"]
                .as_str()
                .unwrap()
                .starts_with("You've hit your usage limit"),
            "{st}"
        );
    });
}

#[test]
fn an_ordinary_failure_is_not_retried() {
    each_plugin(|w| {
        w.flag("alice", ".fake-fail");
        let out = w.run(&["alice,bob", "task", "second"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(w.turns(), [(w.home("alice"), "failed".to_string())]);
        assert!(
            stderr(&out).contains("not for a usage limit"),
            "{}",
            stderr(&out)
        );
    });
}

#[test]
fn a_pinned_account_never_fails_over() {
    each_plugin(|w| {
        w.flag("alice", ".fake-usage-limit");
        let out = w.run(&["alice", "task", "pinned"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(w.turns(), [(w.home("alice"), "failed".to_string())]);
    });
}

#[test]
fn all_exhausted_lists_each_account_and_its_reset() {
    each_plugin(|w| {
        let reset = crate::support::proc::unix_now() + 2 * 3600;
        for a in ["alice", "bob"] {
            w.flag(a, ".fake-usage-limit");
        }
        // After its failed turn, alice's snapshot says the 5-hour window is full.
        std::fs::write(
            w.home("alice").join(".fake-rate-limits"),
            rate_limits((100.0, reset), (40.0, reset + 86_400)).to_string(),
        )
        .unwrap();
        let out = w.run(&["alice,bob", "task", "third"]);
        assert_eq!(out.status.code(), Some(ALL_EXHAUSTED), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("every account is out of quota"), "{err}");
        let alice = err
            .lines()
            .find(|l| l.trim_start().starts_with("alice:"))
            .unwrap();
        assert!(alice.contains("5-hour window at 100%"), "{alice}");
        let iso = String::from_utf8(
            Command::new("date")
                .args(["-u", "-d", &format!("@{reset}"), "+%Y-%m-%dT%H:%M:%SZ"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(alice.contains(iso.trim()), "{alice} / {iso}");
        let bob = err
            .lines()
            .find(|l| l.trim_start().starts_with("bob:"))
            .unwrap();
        assert!(bob.contains("try again at 3:15 PM"), "{bob}");
        assert_eq!(w.turns().len(), 2);
    });
}

/// alice: weekly window at 97% (over the threshold); bob: 20% / 40%; carol: full, but both of
/// its windows have reset since; dave: room to spare, but not logged in.
fn quota_world(w: &World) {
    let now = crate::support::proc::unix_now();
    write_session(
        &w.home("alice"),
        &rate_limits((30.0, now + 3600), (97.0, now + 86_400)),
    );
    write_session(
        &w.home("bob"),
        &rate_limits((20.0, now + 3600), (40.0, now + 86_400)),
    );
    write_session(
        &w.home("carol"),
        &rate_limits((100.0, now - 60), (99.0, now - 10)),
    );
    let dave = w.sb.account_dir("dave");
    write_session(&dave, &rate_limits((0.0, now + 3600), (0.0, now + 86_400)));
}

#[test]
fn auto_picks_the_most_headroom_and_falls_back() {
    each_plugin(|w| {
        quota_world(w);
        let out = w.run(&["auto", "task", "auto-1"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(w.turns(), [(w.home("carol"), "completed".to_string())]);
        let err = stderr(&out);
        assert!(err.contains("ran as 'carol'"), "{err}");
        assert!(err.contains("'alice' (weekly window at 97%"), "{err}");
        assert!(err.contains("'dave' (not logged in)"), "{err}");

        // Like Codex, carol's failing turn records the snapshot that came with the error.
        w.flag("carol", ".fake-usage-limit");
        let reset = crate::support::proc::unix_now() + 3 * 3600;
        std::fs::write(
            w.home("carol").join(".fake-rate-limits"),
            rate_limits((100.0, reset), (60.0, reset + 86_400)).to_string(),
        )
        .unwrap();
        let out = w.run(&["auto", "task", "auto-2"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            w.turns()[1..],
            [
                (w.home("carol"), "failed".to_string()),
                (w.home("bob"), "completed".to_string())
            ]
        );

        // Next time carol is known to be out from its own session file: not even tried.
        let out = w.run(&["auto", "task", "auto-3"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(w.turns().len(), 4, "{:?}", w.turns());
        assert_eq!(w.turns()[3], (w.home("bob"), "completed".to_string()));
        assert!(
            stderr(&out).contains("'carol' (5-hour window at 100%"),
            "{}",
            stderr(&out)
        );
    });
}

#[test]
fn quota_json_explains_the_choice() {
    let w = World::new(None);
    quota_world(&w);
    let doc = w.quota();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["threshold"], 95.0);
    assert_eq!(doc["auto_order"], json!(["carol", "bob"]));
    let row = |name: &str| {
        doc["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let bob = row("bob");
    assert_eq!(bob["login"], "chatgpt");
    assert_eq!(bob["plan"], "plus");
    assert_eq!(bob["primary"]["used_percent"], 20.0);
    assert_eq!(bob["primary"]["window_minutes"], 300);
    assert_eq!(bob["secondary"]["used_percent"], 40.0);
    assert_eq!(bob["secondary"]["reset"], false);
    assert_eq!(bob["headroom_percent"], 60.0);
    assert_eq!(bob["auto_rank"], 2);
    assert_eq!(bob["source"]["kind"], "session-file");
    let src = PathBuf::from(bob["source"]["path"].as_str().unwrap());
    assert!(src.starts_with(w.home("bob").join("sessions")), "{src:?}");
    assert_eq!(
        bob["observed_at"], 1_768_046_403,
        "the last snapshot in the file (2026-01-10T12:00:03Z)"
    );
    assert!(bob["age_seconds"].as_i64().unwrap() > 0);
    let carol = row("carol");
    assert_eq!(carol["primary"]["used_percent"], 100.0);
    assert_eq!(carol["primary"]["effective_used_percent"], 0.0);
    assert_eq!(carol["primary"]["reset"], true);
    assert_eq!(carol["headroom_percent"], 100.0);
    assert_eq!(carol["auto_rank"], 1);
    let alice = row("alice");
    assert_eq!(alice["auto_rank"], Value::Null);
    assert_eq!(alice["auto_skip"]["reason"], "near-limit");
    assert_eq!(alice["auto_skip"]["window"], "secondary");
    let dave = row("dave");
    assert_eq!(dave["login"], "logged-out");
    assert_eq!(dave["auto_skip"]["reason"], "not-logged-in");
    let default = row("default");
    assert_eq!(default["primary"], Value::Null);
    assert_eq!(default["source"], Value::Null);

    let text = stdout(&w.run(&["quota"]));
    assert!(text.contains("ACCOUNT"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("alice") && l.contains("skip: weekly window at 97%")),
        "{text}"
    );
}

/// A command standing in for `codex exec`: it fails like Codex when its home is exhausted.
fn exec_script(w: &World) -> PathBuf {
    let p = w.sb.path().join("job.sh");
    std::fs::write(
        &p,
        "#!/bin/sh\n\
         echo \"work by $CODEX_AS_ACCOUNT\" >> \"$JOB_LOG\"\n\
         if [ -e \"$CODEX_HOME/.fake-usage-limit\" ]; then\n\
           echo \"ERROR: You've hit your usage limit. Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or try again at 4:05 PM.\" >&2; exit 1\n\
         fi\n\
         if [ -e \"$CODEX_HOME/.fake-fail\" ]; then echo 'ERROR: stream disconnected' >&2; exit 3; fi\n\
         echo \"ok from $CODEX_AS_ACCOUNT\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

fn exec_run(w: &World, accounts: &str, cmd: &[&str]) -> (Output, String) {
    let log = w.sb.path().join("job.log");
    let _ = std::fs::remove_file(&log);
    let mut c = w.sb.codex_as();
    c.env("JOB_LOG", &log).arg(accounts).arg("--").args(cmd);
    let out = c.output().unwrap();
    (out, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn exec_mode_fails_over_on_the_usage_limit_text_only() {
    let w = World::new(None);
    let script = exec_script(&w);
    let s = script.to_str().unwrap();
    w.flag("alice", ".fake-usage-limit");
    let (out, log) = exec_run(&w, "alice,bob,carol", &[s]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ok from bob\n");
    assert_eq!(log, "work by alice\nwork by bob\n");
    assert!(
        stderr(&out).contains("ERROR: You've hit your usage limit"),
        "relayed: {}",
        stderr(&out)
    );

    w.flag("bob", ".fake-fail");
    let (out, log) = exec_run(&w, "alice,bob,carol", &[s]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(log, "work by alice\nwork by bob\n", "carol is never tried");

    w.flag("bob", ".fake-usage-limit");
    std::fs::remove_file(w.home("bob").join(".fake-fail")).unwrap();
    w.flag("carol", ".fake-usage-limit");
    let (out, _) = exec_run(&w, "alice,bob,carol", &[s]);
    assert_eq!(out.status.code(), Some(ALL_EXHAUSTED), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("carol: usage limit reached (try again at 4:05 PM"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_interrupt_is_not_retried_and_ends_codex_as_the_same_way() {
    let w = World::new(None);
    let (out, log) = exec_run(
        &w,
        "alice,bob",
        &[
            "sh",
            "-c",
            "echo \"work by $CODEX_AS_ACCOUNT\" >> \"$JOB_LOG\"; kill -TERM $$",
        ],
    );
    assert_eq!(
        out.status.signal(),
        Some(15),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(log, "work by alice\n");
}

#[test]
fn work_that_lands_in_another_home_is_reported() {
    let w = World::new(None);
    let bob = w.home("bob");
    let (out, _) = exec_run(
        &w,
        "alice,bob",
        &[
            "sh",
            "-c",
            &format!(
                "mkdir -p {0}/sessions/2030/01/01 && : > {0}/sessions/2030/01/01/rollout-2030-01-01T00-00-00-x.jsonl",
                bob.display()
            ),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("WARNING: during the run as 'alice' a new session appeared in"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}/sessions", bob.display())),
        "{err}"
    );
}

#[test]
fn lists_are_checked_before_anything_runs() {
    let w = World::new(None);
    let (out, log) = exec_run(&w, "alice,bbo", &["sh", "-c", "echo ran >> \"$JOB_LOG\""]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean 'bob'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(log, "");
    let (out, _) = exec_run(&w, "alice,auto", &["true"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn quota_fresh_asks_each_chatgpt_accounts_app_server() {
    let w = World::new(None);
    quota_world(&w);
    let now = crate::support::proc::unix_now();
    // bob is a ChatGPT login whose app-server reports newer figures than its session file.
    std::fs::write(
        w.home("bob").join("auth.json"),
        r#"{"auth_mode":"chatgpt","tokens":{"id_token":"not-a-real-token"}}"#,
    )
    .unwrap();
    std::fs::write(
        w.home("bob").join(".fake-rate-limits"),
        rate_limits((3.0, now + 3600), (4.0, now + 86_400)).to_string(),
    )
    .unwrap();
    std::fs::write(
        w.home("carol").join("auth.json"),
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
    )
    .unwrap();
    let out = w.run(&["quota", "--json", "--fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| {
        doc["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let bob = row("bob");
    assert_eq!(bob["source"]["kind"], "app-server", "{bob}");
    assert_eq!(bob["primary"]["used_percent"], 3.0);
    assert_eq!(bob["secondary"]["window_minutes"], 10080);
    assert_eq!(bob["fresh_error"], Value::Null);
    let carol = row("carol");
    assert_eq!(
        carol["source"]["kind"], "session-file",
        "an API key has no rate limits to read"
    );
    assert!(
        carol["fresh_error"].as_str().unwrap().contains("ChatGPT"),
        "{carol}"
    );
    assert_eq!(doc["auto_order"], json!(["carol", "bob"]));
}

#[test]
fn a_signal_sent_to_codex_as_reaches_the_command_and_nothing_more_runs() {
    let w = World::new(None);
    let log = w.sb.path().join("job.log");
    let child =
        w.sb.codex_as()
            .env("JOB_LOG", &log)
            .args(["alice,bob", "--", "sh", "-c"])
            .arg("echo \"work by $CODEX_AS_ACCOUNT\" >> \"$JOB_LOG\"; exec sleep 30")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    assert!(
        crate::support::wait_until(20, || log.exists()),
        "the command started"
    );
    // SAFETY: kill(2) on the pid of a child we spawned.
    unsafe { kill(child.id() as i32, 15) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(15),
        "{:?} {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "work by alice\n");
    assert!(
        stderr(&out).contains("killed by signal 15"),
        "{}",
        stderr(&out)
    );
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn background_runs_are_placed_by_headroom_before_they_start() {
    each_plugin(|w| {
        quota_world(w);
        let out = w.run(&["auto", "task", "--background", "bg-job"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("ran as 'carol' (--background: chosen before start"),
            "{err}"
        );
        assert!(
            crate::support::wait_until(30, || !w.turns().is_empty()),
            "the background job ran"
        );
        assert_eq!(w.turns(), [(w.home("carol"), "completed".to_string())]);

        // A list keeps its order but passes over an account known to be over the threshold.
        let out = w.run(&["alice,bob", "task", "--background", "bg-job-2"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("ran as 'bob'"), "{}", stderr(&out));
        assert!(crate::support::wait_until(30, || w.turns().len() == 2));
        assert_eq!(w.turns()[1], (w.home("bob"), "completed".to_string()));
    });
}

#[test]
fn a_background_process_holding_stderr_does_not_stall_the_fallback() {
    let w = World::new(None);
    w.flag("alice", ".fake-usage-limit");
    let (out, log) = exec_run(
        &w,
        "alice,bob",
        &[
            "sh",
            "-c",
            "echo \"work by $CODEX_AS_ACCOUNT\" >> \"$JOB_LOG\"; sleep 3600 >/dev/null & \
             if [ -e \"$CODEX_HOME/.fake-usage-limit\" ]; then echo \"ERROR: You've hit your usage limit.\" >&2; exit 1; fi",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(log, "work by alice\nwork by bob\n");
}

/// A folder pinned to a list: a companion command that names no account runs as the list (the
/// usage limit hands it on), a program run with `--` runs on one account, the first usable.
#[test]
fn a_folder_pinned_to_a_list_runs_as_the_list() {
    each_plugin(|w| {
        let out = w.run(&["pin", "alice,", "bob"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(w.ws.join(".codex-account"))
                .unwrap()
                .lines()
                .last(),
            Some("alice,bob")
        );
        w.flag("alice", ".fake-usage-limit");
        let out = w.run(&["task", "pinned list [[delay:10]]"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(
            w.turns(),
            [
                (w.home("alice"), "failed".to_string()),
                (w.home("bob"), "completed".to_string())
            ]
        );
        assert!(stderr(&out).contains("ran as 'bob'"), "{}", stderr(&out));
    });
    let w = World::new(None);
    let out = w.run(&["pin", "alice,bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let probe = [
        "--",
        "sh",
        "-c",
        "printf '%s %s' \"$CODEX_AS_ACCOUNT\" \"$CODEX_HOME\"",
    ];
    let out = w.run(&probe);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("alice {}", w.home("alice").display()));
    assert_eq!(stderr(&out), "", "nothing passed over, nothing said");
    // Not logged in: passed over, and said so.
    std::fs::remove_file(w.home("alice").join("auth.json")).unwrap();
    let out = w.run(&probe);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("bob {}", w.home("bob").display()));
    assert!(
        stderr(&out).contains(
            "ran as 'bob' (the first usable of 'alice,bob'); skipped 'alice' (not logged in)"
        ),
        "{}",
        stderr(&out)
    );
    // An unknown name in the file is the file's mistake, named before anything runs.
    std::fs::write(w.ws.join(".codex-account"), "alice, bbo\n").unwrap();
    for args in [&probe[..], &["task", "never"]] {
        let out = w.run(args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("did you mean 'bob'"), "{err}");
        assert!(err.contains(".codex-account"), "{err}");
    }
    assert!(w.turns().is_empty());
}

/// `order` naming default last: `auto` tries the accounts in that order when nothing tells them
/// apart (no quota reading), default included, instead of default first.
#[test]
fn auto_follows_an_order_that_places_default() {
    let sb = Sandbox::new();
    for dir in [".codex", ".codex-work", ".codex-personal"] {
        let home = sb.home().join(dir);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
        )
        .unwrap();
    }
    sb.write_config("order = [\"work\", \"personal\", \"default\"]\n");
    let out = sb.run(&["quota", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["auto_order"], json!(["work", "personal", "default"]));
    let out = sb.run(&["auto", "--", "sh", "-c", "echo \"$CODEX_HOME\""]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let work = std::fs::canonicalize(sb.home().join(".codex-work")).unwrap();
    assert_eq!(
        std::fs::canonicalize(stdout(&out).trim()).unwrap(),
        work,
        "{}",
        stderr(&out)
    );
}
