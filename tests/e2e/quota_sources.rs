//! Where quota readings come from (issue 12): a codex-as broker's record of what the app-server
//! relayed, session files in Codex's real formats, and a live `account/rateLimits/read` when
//! `auto` is about to choose without a recent reading; Codex's `ordinaryUsageAllowed`;
//! weekly-only plans; `codex-as statusline`; `quota` fitted to COLUMNS.
//!
//! The fake codex (tests/fixtures/fake-codex) sends `account/rateLimits/updated` with the
//! snapshot in `.fake-rate-limits-v2` after each turn, and answers `account/rateLimits/read`
//! with it (ChatGPT logins); `.fake-ordinary-usage-allowed` sets the read's permission.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::skip;
use crate::support::{Sandbox, stderr, stdout};
use serde_json::{Value, json};

const CHATGPT: &str = r#"{"auth_mode":"chatgpt","tokens":{"id_token":"not-a-real-token"}}"#;

struct World {
    sb: Sandbox,
    ws: PathBuf,
}

impl World {
    fn new(accounts: &[&str]) -> World {
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in accounts {
            std::fs::write(sb.account_dir(a).join("auth.json"), CHATGPT).unwrap();
        }
        let ws = sb.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&ws)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git init");
        World {
            ws: std::fs::canonicalize(ws).unwrap(),
            sb,
        }
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.sb.codex_as();
        c.env("CODEX_AS_RUNTIME_DIR", self.sb.path().join("rt"))
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .current_dir(&self.ws)
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn quota(&self) -> Value {
        let out = self.run(&["quota", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `account/rateLimits/read` requests each home's app-server answered.
    fn reads(&self, account: &str) -> usize {
        let home = self.home(account);
        std::fs::read_to_string(self.sb.path().join("codex.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["method"] == "account/rateLimits/read" && v["codexHome"] == json!(home))
            .count()
    }

    /// The app-server's camelCase snapshot, as 0.169 and 0.171 send it.
    fn v2(&self, account: &str, snap: &Value) {
        std::fs::write(
            self.home(account).join(".fake-rate-limits-v2"),
            snap.to_string(),
        )
        .unwrap();
    }
}

fn row(doc: &Value, name: &str) -> Value {
    doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {doc}"))
        .clone()
}

fn snapshot(primary: Option<(f64, u64)>, secondary: Option<(f64, u64)>) -> Value {
    let now = crate::support::proc::unix_now();
    let w = |(used, mins): (f64, u64)| json!({"usedPercent": used, "windowDurationMins": mins, "resetsAt": now + 3600});
    json!({"limitId": "codex", "limitName": null, "normalModelSlug": null,
           "primary": primary.map(w), "secondary": secondary.map(w),
           "credits": {"hasCredits": true, "unlimited": false, "balance": "12.34"},
           "individualLimit": null, "spendControlReached": null, "planType": null,
           "rateLimitReachedType": null})
}

/// The exit line of `auto -- sh -c ...`: which account ran.
fn ran_as(out: &Output) -> String {
    stdout(out).trim().to_string()
}

#[test]
fn a_broker_that_relayed_a_rate_limit_notification_leaves_the_reading_quota_shows() {
    crate::support::for_each_plugin(|plugin| {
        let w = World::new(&["alice"]);
        let mut snap = snapshot(Some((33.0, 300)), Some((12.0, 10080)));
        snap["rateLimitReachedType"] = json!("rate_limit_reached");
        w.v2("alice", &snap);
        let out = w
            .cmd(&["alice", "task", "relay [[delay:10]]"])
            .env("CODEX_AS_PLUGIN_ROOT", &plugin.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));

        let doc = w.quota();
        let alice = row(&doc, "alice");
        assert_eq!(
            alice["source"],
            json!({"kind": "broker", "from": "account/rateLimits/updated"}),
            "{alice}"
        );
        assert_eq!(alice["primary"]["usedPercent"], 33.0);
        assert_eq!(alice["secondary"]["windowMinutes"], 10080);
        assert_eq!(alice["credits"]["balance"], "12.34");
        assert_eq!(alice["reachedType"], "rate_limit_reached");
        assert!(alice["ageSeconds"].as_i64().unwrap() < 60, "{alice}");
        // The first release's keys, kept for one more.
        assert_eq!(alice["primary"]["used_percent"], 33.0);

        // The record is private and the table says where the reading came from.
        let dir = w.sb.path().join("rt/quota");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for f in std::fs::read_dir(&dir).unwrap().flatten() {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
        }
        let table = stdout(&w.run(&["quota"]));
        let line = table.lines().find(|l| l.starts_with("alice")).unwrap();
        assert!(line.contains("broker"), "{table}");
        assert!(table.contains("credits: 12.34"), "{table}");
        assert!(
            table.contains("Codex reports rate limit reached"),
            "{table}"
        );
    });
}

#[test]
fn with_no_reading_auto_asks_each_app_server_once_and_uses_the_answers() {
    let w = World::new(&["alice", "bob"]);
    w.v2("alice", &snapshot(Some((80.0, 300)), Some((10.0, 10080))));
    w.v2("bob", &snapshot(Some((15.0, 300)), Some((20.0, 10080))));
    let doc = w.quota();
    assert_eq!(row(&doc, "bob")["source"], Value::Null, "no reading yet");

    let out = w.run(&["auto", "--", "sh", "-c", "echo $CODEX_AS_ACCOUNT"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ran_as(&out), "bob", "{}", stderr(&out));
    assert_eq!((w.reads("alice"), w.reads("bob")), (1, 1));

    // Asked through the account's warm broker: its record now holds the answer, so a second
    // choice within `max_age` asks nobody.
    let doc = w.quota();
    let bob = row(&doc, "bob");
    assert_eq!(bob["source"]["kind"], "broker", "{bob}");
    assert_eq!(bob["source"]["from"], "account/rateLimits/read");
    assert_eq!(doc["autoOrder"], json!(["bob", "alice"]));
    let out = w.run(&["auto", "--", "sh", "-c", "echo $CODEX_AS_ACCOUNT"]);
    assert_eq!(ran_as(&out), "bob");
    assert_eq!(
        (w.reads("alice"), w.reads("bob")),
        (1, 1),
        "nothing asked twice"
    );

    // With max_age 0 every choice asks again.
    w.sb.write_config("[quota]\nmax_age = \"0\"\n");
    let out = w.run(&["auto", "--", "sh", "-c", "echo $CODEX_AS_ACCOUNT"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!((w.reads("alice"), w.reads("bob")), (2, 2));
}

#[test]
fn an_account_codex_says_may_not_be_used_is_skipped_whatever_its_percentages() {
    let w = World::new(&["alice", "bob"]);
    let mut snap = snapshot(Some((1.0, 300)), Some((1.0, 10080)));
    snap["rateLimitReachedType"] = json!("workspace_member_usage_limit_reached");
    w.v2("alice", &snap);
    std::fs::write(
        w.home("alice").join(".fake-ordinary-usage-allowed"),
        "false",
    )
    .unwrap();
    w.v2("bob", &snapshot(Some((60.0, 300)), Some((70.0, 10080))));
    let out = w.run(&["auto", "--", "sh", "-c", "echo $CODEX_AS_ACCOUNT"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ran_as(&out), "bob");
    let err = stderr(&out);
    assert!(
        err.contains(
            "'alice' (Codex says it may not be used now: workspace member usage limit reached)"
        ),
        "{err}"
    );
    let alice = row(&w.quota(), "alice");
    assert_eq!(alice["ordinaryUsageAllowed"], false);
    assert_eq!(alice["autoSkip"]["reason"], "not-allowed");

    // Alone, it is not tried at all: every account is out (75).
    std::fs::remove_dir_all(w.home("bob")).unwrap();
    let out = w.run(&["auto", "--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
}

#[test]
fn a_weekly_only_plan_shows_and_counts_its_one_window_as_weekly() {
    let w = World::new(&["alice", "bob"]);
    // Codex reports a lone weekly window as `primary`.
    w.v2("alice", &snapshot(Some((97.0, 10080)), None));
    w.v2("bob", &snapshot(Some((50.0, 10080)), None));
    let out = w.run(&["auto", "--", "sh", "-c", "echo $CODEX_AS_ACCOUNT"]);
    assert_eq!(ran_as(&out), "bob", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'alice' (weekly window at 97%"),
        "{}",
        stderr(&out)
    );
    let alice = row(&w.quota(), "alice");
    assert_eq!(alice["primary"], Value::Null, "{alice}");
    assert_eq!(alice["secondary"]["usedPercent"], 97.0);
    let table = stdout(&w.run(&["quota"]));
    let line = table.lines().find(|l| l.starts_with("alice")).unwrap();
    assert!(line.contains("97%") && line.contains(" - "), "{table}");
}

/// Session files in Codex's real formats: the newest snapshot wins by its own timestamp, even
/// in a resumed file in an old date folder or a compressed rollout.
#[test]
fn session_files_in_codex_formats_and_the_newest_snapshot_wins() {
    let w = World::new(&["alice"]);
    let fixtures = crate::support::fixtures().join("codex-rollouts");
    let home = w.home("alice");
    let put = |day: &str, name: &str, text: &str, mtime: i64| -> PathBuf {
        let d = home.join("sessions").join(day);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64))
            .unwrap();
        p
    };
    let line = |ts: &str, used: f64| {
        let real = std::fs::read_to_string(fixtures.join("token_count.ok.171.jsonl")).unwrap();
        let mut v: Value = serde_json::from_str(real.trim()).unwrap();
        v["timestamp"] = json!(ts);
        v["payload"]["rate_limits"]["primary"]["used_percent"] = json!(used);
        format!("{v}\n")
    };
    let t = |s: &str| {
        // Seconds of a 2026-11-28 UTC time of day.
        1_795_824_000
            + s.split(':')
                .fold(0, |acc, p| acc * 60 + p.parse::<i64>().unwrap())
    };
    // The newest by name: a 0.169 line, then a `rate_limits: null` line after it.
    let real169 = std::fs::read_to_string(fixtures.join("token_count.ok.169.jsonl"))
        .unwrap()
        .replace("2026-11-28T18:51:50.015Z", "2026-11-28T18:59:00.000Z");
    assert!(
        real169.contains("18:59:00"),
        "the 0.169 sample's timestamp moved"
    );
    let null_line = r#"{"timestamp":"2026-11-28T19:00:00.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":null}}"#;
    put(
        "2026/11/28",
        "rollout-2026-11-28T18-51-50-new.jsonl",
        &format!("{real169}{null_line}\n"),
        t("19:00:01"),
    );
    // A compressed rollout (real 0.171 output), cold.
    let zst = home.join("sessions/2026/11/20/rollout-2026-11-20T10-00-00-z.jsonl.zst");
    std::fs::create_dir_all(zst.parent().unwrap()).unwrap();
    std::fs::copy(fixtures.join("rollout-0.171.jsonl.zst"), &zst).unwrap();
    // Codex keeps the original's mtime; its snapshot is from 18:51:50.
    std::fs::File::options()
        .write(true)
        .open(&zst)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t("18:51:51") as u64))
        .unwrap();
    let resumed = put(
        "2026/11/01",
        "rollout-2026-11-01T09-00-00-old.jsonl",
        &(line("2026-11-01T09:00:05.000Z", 3.0) + &line("2026-11-28T20:15:00.000Z", 61.0)),
        t("20:15:01"),
    );
    let alice = row(&w.quota(), "alice");
    assert_eq!(alice["primary"]["usedPercent"], 61.0, "{alice}");
    assert_eq!(alice["source"]["path"], json!(resumed));

    // Without the resumed file, the 0.169 line (18:59) is the newest; the `null` line after it
    // is passed over, and the older compressed rollout is not even opened.
    std::fs::remove_file(&resumed).unwrap();
    let alice = row(&w.quota(), "alice");
    assert_eq!(alice["primary"]["usedPercent"], 42.5, "{alice}");
    assert!(
        alice["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("-new.jsonl"),
        "{alice}"
    );
    assert_eq!(alice["filesExamined"], 1, "{alice}");

    // Only the compressed rollout left: it is read.
    std::fs::remove_dir_all(home.join("sessions/2026/11/28")).unwrap();
    let alice = row(&w.quota(), "alice");
    assert_eq!(alice["source"]["path"], json!(zst), "{alice}");
    assert_eq!(alice["credits"]["balance"], "12.34");
}

#[test]
fn statusline_prints_the_folders_account_and_its_quota_from_disk() {
    let w = World::new(&["alice"]);
    let mut cmd = w.cmd(&["statusline"]);
    cmd.env("CODEX_AS_ACCOUNT", "alice")
        .env("CODEX_HOME", w.home("alice"));
    let input = json!({"session_id": "s", "cwd": w.ws, "workspace": {"current_dir": w.ws, "project_dir": w.ws},
                       "model": {"id": "claude", "display_name": "Claude"}});
    let out = crate::support::output_with_stdin(&mut cmd, input.to_string().as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "alice · no quota reading yet\n");

    // After a choice asked alice's app-server (through its broker), the record is there.
    w.v2("alice", &snapshot(Some((42.0, 300)), Some((17.0, 10080))));
    let out = w.run(&["alice", "--", "true"]);
    assert!(out.status.success());
    let out = w.run(&["quota", "--fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = crate::support::output_with_stdin(&mut cmd, input.to_string().as_bytes());
    let line = stdout(&out);
    assert!(
        line.starts_with("alice · 5h 42% · wk 17% · resets in "),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);

    // The prompt's short form, with no input at all.
    let out = w
        .cmd(&["statusline", "--short"])
        .env("CODEX_HOME", w.home("alice"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "alice 5h 42% wk 17%\n");

    // Garbage on stdin is no reason to fail a status line.
    let out = crate::support::output_with_stdin(&mut cmd, b"not json");
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("alice · 5h 42%"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn quota_fits_its_table_to_columns() {
    let w = World::new(&["alice", "bob"]);
    w.v2("alice", &snapshot(Some((42.0, 300)), Some((17.0, 10080))));
    assert!(w.run(&["quota", "--fresh"]).status.success());
    let wide = stdout(&w.cmd(&["quota"]).env("COLUMNS", "400").output().unwrap());
    assert!(wide.lines().next().unwrap().contains("SOURCE"), "{wide}");
    for cols in [100usize, 72, 50] {
        let out = w
            .cmd(&["quota"])
            .env("COLUMNS", cols.to_string())
            .output()
            .unwrap();
        let text = stdout(&out);
        for l in text.lines() {
            assert!(l.chars().count() <= cols, "{cols}: {l:?}\n{text}");
        }
        let alice = text.lines().find(|l| l.starts_with("alice")).unwrap();
        assert!(
            alice.contains("42%") && alice.contains("17%"),
            "{cols}: {text}"
        );
    }
}

#[test]
fn a_bad_max_age_is_one_clear_error() {
    let w = World::new(&["alice"]);
    w.sb.write_config("[quota]\nmax_age = \"soon\"\n");
    let out = w.run(&["auto", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("quota.max_age") && err.contains("\"soon\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The real Codex (CODEX_AS_REAL_CODEX): an account whose credentials live in the keyring (none
/// there, offline) is asked through a real `codex app-server` behind codex-as's broker, and the
/// auth error it answers is said plainly.
#[test]
fn real_codex_refuses_the_read_and_the_reading_says_so() {
    for codex in crate::support::real_codexes() {
        eprintln!("-- against {}", codex.display());
        real_codex_refusal(&codex);
    }
}

fn real_codex_refusal(codex: &Path) {
    let w = World::new(&[]);
    let home = w.sb.account_dir("kr");
    // Credentials in the keyring: codex-as cannot see them, so it asks Codex, which (offline,
    // with an empty keyring) finds no ChatGPT login.
    std::fs::write(
        home.join("config.toml"),
        "cli_auth_credentials_store = \"keyring\"\n",
    )
    .unwrap();
    w.sb.with_codex(codex);
    let out = w.run(&["quota", "--json", "--fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kr = row(&doc, "kr");
    let err = kr["freshError"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("authentication required to read rate limits"),
        "{kr}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `codex_as_prompt --quota` from `codex-as init`, in real bash, zsh and fish.
#[test]
fn the_shell_prompt_helper_prints_the_short_form() {
    let w = World::new(&["alice"]);
    w.v2("alice", &snapshot(Some((42.0, 300)), Some((17.0, 10080))));
    assert!(w.run(&["quota", "--fresh"]).status.success());
    for shell in ["bash", "zsh", "fish"] {
        if !crate::support::have(shell) {
            skip!("{shell} is not installed; its prompt helper is untested");
            continue;
        }
        let script = match shell {
            "fish" => "codex-as init fish | source; codex_as_prompt --quota".to_string(),
            _ => format!("eval \"$(codex-as init {shell})\"; codex_as_prompt --quota"),
        };
        let mut c = w.sb.command(shell);
        match shell {
            "bash" => c.args(["--noprofile", "--norc", "-u", "-c", &script]),
            "zsh" => c.args(["-f", "-u", "-c", &script]),
            _ => c.args(["--no-config", "--private", "-c", &script]),
        };
        let out = c
            .env("CODEX_AS_RUNTIME_DIR", w.sb.path().join("rt"))
            .env("CODEX_HOME", w.home("alice"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert_eq!(stdout(&out), "alice 5h 42% wk 17%\n", "{shell}");
    }
}
