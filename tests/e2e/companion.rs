//! `codex-as NAME <companion command>`: every call reaches a broker on NAME's home, brokers are
//! reused per account, and nothing serving anyone else is ever stopped.
//!
//! Runs against the plugin-compatible fixture in tests/fixtures/plugin and the real plugin
//! (support/peers.rs: the current release always, every version for `each_plugin_version`).
//! The fake codex records which home served each request (FAKE_CODEX_LOG): that, not anything a
//! broker claims, is the evidence.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::skip;
use crate::support::oracle::{broker_key, plugin_state_dir};
use crate::support::{Sandbox, alive, fixtures, stderr, stdout, wait_until};

struct World {
    sb: Sandbox,
    plugin: PathBuf,
    ws: PathBuf,
    /// The plugin's version ("fixture" for tests/fixtures/plugin; "" when not told).
    version: String,
    /// The plugin checks logins with `codex login status` (support::peers::Plugin).
    cli_login: bool,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogLine {
    pid: u32,
    codex_home: PathBuf,
    method: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl World {
    fn new(plugin: &Path) -> World {
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in ["alice", "bob", "carol"] {
            // Logged in: a turn on an account that is not is refused before it starts.
            let d = sb.account_dir(a);
            std::fs::write(
                d.join("auth.json"),
                format!(r#"{{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test-{a}"}}"#),
            )
            .unwrap();
        }
        let ws = sb.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&ws)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git init");
        let ws = std::fs::canonicalize(ws).unwrap();
        World {
            sb,
            plugin: plugin.to_path_buf(),
            ws,
            version: String::new(),
            cli_login: false,
        }
    }

    /// An API key in every account's home, for plugins that refuse tasks without a login.
    fn log_in_everyone(&self) {
        for a in ["alice", "bob", "carol"] {
            std::fs::write(
                self.home(a).join("auth.json"),
                format!(r#"{{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test-{a}"}}"#),
            )
            .unwrap();
        }
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    fn runtime_dir(&self) -> PathBuf {
        self.sb.path().join("rt")
    }

    fn env(&self, c: &mut Command) {
        c.env("CODEX_AS_PLUGIN_ROOT", &self.plugin)
            .env("CODEX_AS_RUNTIME_DIR", self.runtime_dir())
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .current_dir(&self.ws);
    }

    fn cas(&self, args: &[&str]) -> Command {
        let mut c = self.sb.codex_as();
        self.env(&mut c);
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cas(args).output().unwrap()
    }

    /// The companion run directly, without codex-as, as Claude Code's slash commands do.
    fn companion(&self, codex_home: &Path, args: &[&str]) -> Command {
        let mut c = self.sb.command("node");
        self.env(&mut c);
        c.env("CODEX_HOME", codex_home)
            .arg(self.plugin.join("scripts/codex-companion.mjs"))
            .args(args);
        c
    }

    fn log(&self) -> Vec<LogLine> {
        let text = std::fs::read_to_string(self.sb.path().join("codex.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn find_turn(&self, tag: &str) -> Option<LogLine> {
        self.log().into_iter().find(|l| {
            l.method == "turn/start" && l.text.as_deref().is_some_and(|t| t.contains(tag))
        })
    }

    /// The log line of the turn whose prompt contains `tag`.
    fn turn(&self, tag: &str) -> LogLine {
        self.find_turn(tag)
            .unwrap_or_else(|| panic!("no turn {tag} in {:?}", self.log()))
    }

    /// Waits for a turn started by a process running in the background to reach its app-server
    /// (a detached node worker; slow to start on a loaded machine).
    fn wait_for_turn(&self, tag: &str) -> LogLine {
        assert!(
            wait_until(60, || self.find_turn(tag).is_some()),
            "no turn {tag} in {:?}",
            self.log()
        );
        self.turn(tag)
    }

    fn brokers(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["brokers", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows.as_array().unwrap().clone()
    }

    fn own_brokers(&self) -> Vec<serde_json::Value> {
        self.brokers()
            .into_iter()
            .filter(|r| r["owner"] == "codex-as")
            .collect()
    }

    /// Pids of `codex-as broker serve` processes started in this sandbox.
    fn broker_processes(&self) -> Vec<i32> {
        crate::support::processes_with_env(&format!("HOME={}", self.sb.home().display()))
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.len() > 2
                    && args[0].ends_with(b"codex-as")
                    && args[1] == b"broker"
                    && args[2] == b"serve"
            })
            .filter(|pid| alive(*pid as u32))
            .collect()
    }

    fn task(&self, account: &str, tag: &str) -> Output {
        let out = self.run(&[account, "task", tag]);
        assert!(
            out.status.success(),
            "{account} task {tag}: {} {}",
            stdout(&out),
            stderr(&out)
        );
        out
    }
}

/// Runs a scenario against the fixture and the current real plugin.
fn each_plugin(test: impl Fn(&World)) {
    crate::support::for_each_plugin(|p| test(&World::new(&p.root)));
}

/// Runs a scenario against the fixture and every plugin version of the matrix: for scenarios
/// that go through plugin code that changed between versions (support/peers.rs).
fn each_plugin_version(test: impl Fn(&World)) {
    crate::support::for_each_plugin_version(|p| {
        let mut w = World::new(&p.root);
        if p.checks_login_with_cli() {
            w.log_in_everyone();
        }
        w.cli_login = p.checks_login_with_cli();
        w.version = p.version.clone();
        test(&w)
    });
}

#[test]
fn each_call_runs_on_its_account_and_a_b_a_b_costs_two_brokers() {
    each_plugin_version(|w| {
        for (i, account) in ["alice", "bob", "alice", "bob"].iter().enumerate() {
            let tag = format!("call-{i}-{account}");
            let out = w.task(account, &tag);
            let home = w.home(account);
            assert!(
                stdout(&out).contains(&format!("done by {}", home.display())),
                "{}",
                stdout(&out)
            );
            assert_eq!(w.turn(&tag).codex_home, home, "{tag}");
        }
        let servers: BTreeSet<u32> = w
            .log()
            .iter()
            .filter(|l| l.method == "turn/start")
            .map(|l| l.pid)
            .collect();
        assert_eq!(
            servers.len(),
            2,
            "two app-servers, one per account: {:?}",
            w.log()
        );
        let own = w.own_brokers();
        assert_eq!(own.len(), 2, "{own:?}");
        assert_eq!(w.broker_processes().len(), 2);
        let accounts: BTreeSet<String> = own
            .iter()
            .map(|r| r["account"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            accounts,
            BTreeSet::from(["alice".to_string(), "bob".to_string()])
        );
    });
}

#[test]
fn twenty_concurrent_calls_over_three_accounts_start_three_brokers() {
    each_plugin(|w| {
        let accounts = ["alice", "bob", "carol"];
        let children: Vec<_> = (0..20)
            .map(|i| {
                let account = accounts[i % 3];
                // Each call in a workspace of its own: the real plugin 1.0.5 keeps one job
                // index per workspace and races on it (concurrent companions unlink each
                // other's job files and crash), whoever serves them. Brokers are per account,
                // so these 20 cold calls still race for the same three brokers.
                let ws = w.sb.path().join(format!("ws-{i}"));
                std::fs::create_dir_all(&ws).unwrap();
                let child = w
                    .cas(&[account, "task", &format!("job-{i}-{account} [[delay:50]]")])
                    .current_dir(&ws)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (i, account, child)
            })
            .collect();
        for (i, account, child) in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "job {i}: {}", stderr(&out));
            let home = w.home(account);
            assert!(
                stdout(&out).contains(&format!("done by {}", home.display())),
                "job {i}: {}",
                stdout(&out)
            );
            assert_eq!(
                w.turn(&format!("job-{i}-")).codex_home,
                home,
                "job {i} ran on {account}"
            );
        }
        assert_eq!(
            w.broker_processes().len(),
            3,
            "exactly one broker per account"
        );
        let own = w.own_brokers();
        assert_eq!(own.len(), 3, "{own:?}");
        let records = std::fs::read_dir(w.runtime_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count();
        assert_eq!(records, 3, "one record per broker, none lost");
    });
}

#[test]
fn the_plugins_busy_broker_of_another_account_is_left_alone() {
    each_plugin_version(|w| {
        // Claude Code's own broker for this workspace, started as bob and kept busy.
        let bob = w.home("bob");
        let mut bob_task = w
            .companion(&bob, &["task", "bob-long [[delay:2500]]"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        w.wait_for_turn("bob-long");
        let plugin_broker: Vec<_> = w
            .brokers()
            .into_iter()
            .filter(|r| r["owner"] == "plugin")
            .collect();
        assert_eq!(plugin_broker.len(), 1, "{plugin_broker:?}");
        // Whose it is: PR #369's broker.json names its home; a legacy broker's environment does.
        assert_eq!(plugin_broker[0]["account"], "bob", "{plugin_broker:?}");
        let source = if w.version == "pr369" {
            "(account from broker.json)"
        } else {
            "(account from process environment)"
        };
        assert!(
            plugin_broker[0]["note"]
                .as_str()
                .is_some_and(|n| n.contains(source)),
            "{plugin_broker:?}"
        );
        let plugin_pid = plugin_broker[0]["pid"].as_u64().unwrap() as u32;

        w.task("alice", "alice-meanwhile");
        assert_eq!(w.turn("alice-meanwhile").codex_home, w.home("alice"));

        let mut out = String::new();
        bob_task
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(
            bob_task.wait().unwrap().success(),
            "bob's task finished normally: {out}"
        );
        assert!(out.contains(&format!("done by {}", bob.display())), "{out}");
        let bob_done = w
            .log()
            .into_iter()
            .find(|l| l.method == "turn/completed" && l.codex_home == bob);
        assert_eq!(
            bob_done.and_then(|l| l.status).as_deref(),
            Some("completed"),
            "never interrupted"
        );
        assert!(alive(plugin_pid), "the plugin's broker still runs");

        // Stopping codex-as's brokers never touches the plugin's.
        let out = w.run(&["brokers", "stop"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            alive(plugin_pid),
            "brokers stop left the plugin's broker alone"
        );
        assert!(
            w.broker_processes().is_empty() || wait_until(10, || w.broker_processes().is_empty())
        );
    });
}

#[test]
fn a_hung_broker_is_never_treated_as_idle_or_stopped() {
    each_plugin(|w| {
        // A broker that accepts connections and never answers, where alice's would be.
        std::fs::create_dir_all(w.runtime_dir()).unwrap();
        std::fs::set_permissions(w.runtime_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = broker_key(&w.home("alice"));
        let sock = w.runtime_dir().join(format!("{key}-0000abcd.sock"));
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let hold = std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in listener.incoming().take(8).flatten() {
                held.push(c);
            }
        });
        w.task("alice", "despite-hung");
        assert_eq!(w.turn("despite-hung").codex_home, w.home("alice"));
        assert!(sock.exists(), "the hung broker's socket is left in place");

        let out = w.run(&["brokers", "stop", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hung: Vec<_> = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "hung")
            .collect();
        assert_eq!(hung.len(), 1, "{rows}");
        assert!(sock.exists());
        drop(hold);
    });
}

#[test]
fn a_broker_whose_login_changed_is_not_used_and_is_replaced_when_idle() {
    each_plugin(|w| {
        w.task("alice", "before-login");
        let first = w.turn("before-login").pid;
        let old_broker = w.own_brokers()[0]["pid"].as_u64().unwrap() as u32;
        std::fs::write(
            w.home("alice").join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-new"}"#,
        )
        .unwrap();
        w.task("alice", "after-login");
        let second = w.turn("after-login");
        assert_ne!(second.pid, first, "a new app-server for the new login");
        assert_eq!(second.codex_home, w.home("alice"));
        assert!(
            wait_until(10, || !alive(old_broker)),
            "the idle stale broker was stopped"
        );
        assert_eq!(w.own_brokers().len(), 1);
    });
}

#[test]
fn a_stale_broker_busy_at_relogin_is_retired_by_a_later_call() {
    each_plugin(|w| {
        let mut long = w
            .cas(&["alice", "task", "long-old [[delay:1500]]"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        w.wait_for_turn("long-old");
        let old_broker = w.own_brokers()[0]["pid"].as_u64().unwrap() as u32;
        std::fs::write(
            w.home("alice").join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-new"}"#,
        )
        .unwrap();
        w.task("alice", "new-login");
        assert!(alive(old_broker), "busy: left to finish its turn");
        assert!(
            long.wait().unwrap().success(),
            "the old turn finished normally"
        );
        w.task("alice", "later");
        assert!(
            wait_until(10, || !alive(old_broker)),
            "the old login's broker was stopped once idle"
        );
        assert_eq!(w.own_brokers().len(), 1);
    });
}

#[test]
fn an_app_server_dying_mid_turn_is_a_reported_failure() {
    each_plugin_version(|w| {
        let out = w.run(&["alice", "task", "dies [[die]]"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} {}",
            stdout(&out),
            stderr(&out)
        );
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            said.contains("app-server"),
            "the failure is explained: {said}"
        );
        // The next call gets a fresh broker and works.
        w.task("alice", "after-death");
        assert_eq!(w.turn("after-death").codex_home, w.home("alice"));
    });
}

#[test]
fn brokers_stop_all_waits_for_work_and_never_interrupts_it() {
    each_plugin(|w| {
        let mut long = w
            .cas(&["alice", "task", "stop-all [[delay:2000]]"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        w.wait_for_turn("stop-all");
        let pid = w.own_brokers()[0]["pid"].as_u64().unwrap() as u32;
        let out = w.run(&["brokers", "stop", "--all", "--timeout", "200ms"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "still busy at --timeout: {}",
            stderr(&out)
        );
        assert!(alive(pid));
        let out = w.run(&["brokers", "stop", "--all", "--timeout", "30s"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!alive(pid) || wait_until(5, || !alive(pid)));
        let mut text = String::new();
        long.stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(long.wait().unwrap().success(), "the turn finished: {text}");
        let done = w.log().into_iter().find(|l| l.method == "turn/completed");
        assert_eq!(done.and_then(|l| l.status).as_deref(), Some("completed"));
    });
}

#[test]
fn corrupt_or_lost_records_are_rebuilt_without_a_second_broker() {
    each_plugin(|w| {
        w.task("alice", "first");
        let pid = w.turn("first").pid;
        let record = std::fs::read_dir(w.runtime_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json"))
            .unwrap();
        std::fs::write(&record, "{\"id\": \"trunc").unwrap();
        w.task("alice", "second");
        assert_eq!(w.turn("second").pid, pid, "the live broker was reused");
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "record rebuilt: {text}"
        );
        std::fs::remove_file(&record).unwrap();
        w.task("alice", "third");
        assert_eq!(w.turn("third").pid, pid);
        assert!(record.exists(), "a lost record is rebuilt too");
        assert_eq!(w.broker_processes().len(), 1);
    });
}

#[test]
fn state_another_user_could_have_written_is_refused() {
    each_plugin(|w| {
        // Ours but loose: tightened, and the call goes on.
        std::fs::create_dir_all(w.runtime_dir()).unwrap();
        std::fs::set_permissions(w.runtime_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        w.task("alice", "loose-dir");
        assert_eq!(
            std::fs::metadata(w.runtime_dir())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );

        // The plugin's state folder for this workspace, writable by anyone: refused, nothing run.
        let state = plugin_state_dir(&w.sb.path().join("tmp/codex-companion"), &w.ws);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let before = w.log().len();
        let out = w.run(&["alice", "task", "must-not-run"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("writable by others"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).trim().lines().count(), 1);
        assert_eq!(w.log().len(), before, "nothing ran");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();

        // A runtime folder, or a broker.json, owned by someone else (needs root to set up).
        if nix_is_root() {
            let planted = state.join("broker.json");
            std::fs::write(&planted, r#"{"endpoint":"unix:/tmp/planted.sock","pid":1}"#).unwrap();
            std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
            let out = w.run(&["alice", "task", "must-not-run-either"]);
            assert_eq!(out.status.code(), Some(1));
            assert!(
                stderr(&out).contains("owned by uid 65534"),
                "{}",
                stderr(&out)
            );
            assert_eq!(w.log().len(), before, "nothing ran");
            std::fs::remove_file(&planted).unwrap();

            let rt = w.sb.path().join("rt-foreign");
            std::fs::create_dir(&rt).unwrap();
            std::os::unix::fs::chown(&rt, Some(65534), Some(65534)).unwrap();
            let out = w
                .cas(&["alice", "task", "foreign"])
                .env("CODEX_AS_RUNTIME_DIR", &rt)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1));
            assert!(
                stderr(&out).contains("owned by uid 65534"),
                "{}",
                stderr(&out)
            );
        } else {
            skip!("not root; cannot create a folder owned by another user");
        }
    });
}

#[test]
fn background_task_status_and_cancel_use_the_accounts_broker() {
    each_plugin_version(|w| {
        let out = w.run(&["bob", "task", "--background", "bg-bob [[hang]]"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        w.wait_for_turn("bg-bob");
        assert_eq!(
            w.turn("bg-bob").codex_home,
            w.home("bob"),
            "the detached worker ran as bob"
        );
        let out = w.run(&["bob", "status"]);
        assert!(out.status.success(), "{}", stderr(&out));
        // Asked until listed: the plugin rewrites its job index in place, and a read that
        // meets the worker's write sees none.
        let listed = || job_id(&stdout(&w.run(&["bob", "status", "--json"])));
        assert!(
            wait_until(20, || listed().is_some()),
            "a job id in status --json"
        );
        let job = listed().expect("a job id in status --json");
        let out = w.run(&["bob", "cancel", &job]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        let interrupts: Vec<_> = w
            .log()
            .into_iter()
            .filter(|l| l.method == "turn/interrupt")
            .collect();
        assert!(!interrupts.is_empty(), "cancel interrupted the turn");
        assert!(
            interrupts.iter().all(|l| l.codex_home == w.home("bob")),
            "{interrupts:?}"
        );
    });
}

#[test]
fn setup_sees_each_accounts_own_login() {
    each_plugin_version(|w| {
        std::fs::write(
            w.home("alice").join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-a"}"#,
        )
        .unwrap();
        let _ = std::fs::remove_file(w.home("bob").join("auth.json"));
        let alice = w.run(&["alice", "setup", "--json"]);
        let bob = w.run(&["bob", "setup", "--json"]);
        let logged_in = |o: &Output| {
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)));
            find_key(&v, "loggedIn")
        };
        assert_eq!(logged_in(&alice), Some(true), "{}", stdout(&alice));
        assert_eq!(logged_in(&bob), Some(false), "{}", stdout(&bob));
        if w.cli_login {
            // `codex login status` ran in each home: no app-server read to check.
            return;
        }
        let reads: BTreeMap<PathBuf, usize> = w
            .log()
            .into_iter()
            .filter(|l| l.method == "account/read")
            .fold(BTreeMap::new(), |mut m, l| {
                *m.entry(l.codex_home).or_default() += 1;
                m
            });
        assert!(
            reads.contains_key(&w.home("alice")) && reads.contains_key(&w.home("bob")),
            "{reads:?}"
        );
    });
}

#[test]
fn missing_plugin_node_or_codex_is_one_clear_error() {
    if !crate::support::have_node() {
        return;
    }
    let w = World::new(Path::new("/nonexistent"));
    let out = w
        .cas(&["alice", "task", "x"])
        .env_remove("CODEX_AS_PLUGIN_ROOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("was not found") && err.contains(".claude/plugins"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Claude Code's install location is found without any setting.
    let cache =
        w.sb.home()
            .join(".claude/plugins/cache/openai-codex/codex/1.0.5");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(fixtures().join("plugin"), &cache).unwrap();
    if fixtures()
        .join("plugin/scripts/codex-companion.mjs")
        .is_file()
    {
        let out = w
            .cas(&["alice", "task", "found-it"])
            .env_remove("CODEX_AS_PLUGIN_ROOT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let out = w
        .cas(&["alice", "task", "x"])
        .env("CODEX_AS_PLUGIN_ROOT", w.sb.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not the Codex plugin"),
        "{}",
        stderr(&out)
    );

    let w = World::new(&fixtures().join("plugin"));
    std::fs::remove_file(w.sb.bin_dir().join("codex")).unwrap();
    let out = w
        .cas(&["alice", "task", "x"])
        .env(
            "PATH",
            format!(
                "{}:/usr/bin:/bin",
                Path::new(crate::support::BIN).parent().unwrap().display()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("npm install -g @openai/codex"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn idle_brokers_go_away_by_themselves() {
    each_plugin(|w| {
        // Long enough that the broker is still there to be listed after a slow task (the real
        // plugin on a loaded CI machine), short enough to watch it go.
        w.sb.write_config("[broker]\nidle_exit = \"3s\"\n");
        w.task("alice", "then-idle");
        // The turn's app-server is the broker's child, and the broker's process is found by
        // its command line: neither depends on catching the broker before its 3 s are up.
        let app_server = w.turn("then-idle").pid;
        assert!(
            wait_until(15, || w.broker_processes().is_empty() && !alive(app_server)),
            "the broker and its app-server exited after the idle time: {:?}",
            w.broker_processes()
        );
        assert!(wait_until(5, || w.own_brokers().is_empty()));
    });
}

/// With the real Codex CLI, when installed: the account seen through the broker is the home's own.
#[test]
fn real_codex_app_server_serves_each_accounts_login() {
    for codex in crate::support::real_codexes() {
        eprintln!("-- against {}", codex.display());
        each_plugin(|w| {
            w.sb.with_codex(&codex);
            // Logged out for real (World::new logs everyone in with a stand-in key).
            let _ = std::fs::remove_file(w.home("bob").join("auth.json"));
            let _ = std::fs::remove_file(w.home("alice").join("auth.json"));
            let login = crate::support::output_with_stdin(
                w.sb.codex_as()
                    .args(["alice", "--", "codex", "login", "--with-api-key"]),
                b"sk-test-not-real\n",
            );
            assert!(login.status.success(), "{}", stderr(&login));
            let alice = w.run(&["alice", "setup", "--json"]);
            let bob = w.run(&["bob", "setup", "--json"]);
            let v = |o: &Output| {
                serde_json::from_slice::<serde_json::Value>(&o.stdout)
                    .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(o), stderr(o)))
            };
            assert_eq!(
                find_key(&v(&alice), "loggedIn"),
                Some(true),
                "{}",
                stdout(&alice)
            );
            assert_eq!(
                find_key(&v(&bob), "loggedIn"),
                Some(false),
                "{}",
                stdout(&bob)
            );
            let homes: BTreeSet<String> = w
                .own_brokers()
                .iter()
                .map(|r| r["codexHome"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                homes,
                BTreeSet::from([
                    w.home("alice").display().to_string(),
                    w.home("bob").display().to_string()
                ])
            );
        });
    }
}

fn find_key(v: &serde_json::Value, key: &str) -> Option<bool> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_bool())
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn job_id(status_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(status_json).ok()?;
    fn find(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("status").and_then(|s| s.as_str()) == Some("running")
                    && let Some(id) = m.get("id").and_then(|i| i.as_str())
                {
                    return Some(id.to_string());
                }
                m.values().find_map(find)
            }
            serde_json::Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    find(&v)
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
