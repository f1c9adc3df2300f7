//! A home with no Codex listener up gets one that codex-as starts, at the home's standard path
//! (Codex 0.169 has no daemon of its own; a later 0.171 TUI attaches to it instead of starting
//! one). Real `codex app-server` of every version of `support::real_codexes()`, homes on the
//! model stub, the real plugin: exactly one app-server serves the home, another client of the
//! listener (TUI-like) keeps the broker from stopping it, and it goes once nobody uses it. Where
//! a listener cannot work (a Codex that has none, or the config says `child`) the broker's own
//! child serves, as before.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::listener::{TuiClient, app_servers_of, standard_path};
use crate::support::model_stub::StubWorld as World;
use crate::support::outputs::{codex_as_rows, logs_under};
use crate::support::{Sandbox, alive, real_codexes, stderr, stdout, wait_until};

const KEY_A: &str = "sk-own-listener-a";
const KEY_B: &str = "sk-own-listener-b";

fn own_brokers(run: impl Fn(&[&str]) -> std::process::Output) -> Vec<Value> {
    codex_as_rows(&run(&["brokers", "--json"]))
}

#[test]
fn a_home_without_a_listener_gets_one_that_a_tui_shares_and_it_goes_when_unused() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        w.sb.write_config("[broker]\nidle_exit = \"2s\"\n");
        let home = w.home("a");
        let rt = w.sb.path().join("rt");
        assert!(!standard_path(&home).exists(), "no listener before");

        let out = w.run(&["a", "task", "hello FIRST"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("echo: hello FIRST"),
            "{}",
            stdout(&out)
        );

        // The broker serves through a listener it started, at the home's standard path: the
        // one app-server of the home.
        let brokers = own_brokers(|a| w.run(a));
        assert_eq!(brokers.len(), 1, "{brokers:?}");
        assert_eq!(brokers[0]["appServer"], "codex-as-listener", "{brokers:?}");
        let broker_pid = brokers[0]["pid"].as_u64().unwrap() as u32;
        let servers = app_servers_of(&home);
        assert_eq!(servers.len(), 1, "one app-server for the home: {servers:?}");
        assert_eq!(
            brokers[0]["appServerPid"].as_u64(),
            Some(servers[0] as u64),
            "{brokers:?}"
        );
        let socket = std::fs::canonicalize(standard_path(&home))
            .unwrap_or_else(|e| panic!("the standard path leads to a socket: {e}"));

        // A TUI-like client attaches to it, as a later `codex` TUI would, and works there.
        let mut tui = TuiClient::connect(&socket, "codex-tui");
        let thread = tui.ok("thread/start", json!({"cwd": w.ws}))["thread"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let turn = tui.ok(
            "turn/start",
            json!({"threadId": thread, "input": [{"type": "text", "text": "tui ONE"}]}),
        );
        let done = tui.until_turn_completed(turn["turn"]["id"].as_str().unwrap());
        assert_eq!(done["turn"]["status"], "completed", "{done}");

        // Past the broker's idle time, the listener stays for its other client, and so does
        // the broker that will stop it.
        tui.drain_for(Duration::from_secs(5));
        assert!(alive(broker_pid), "the broker waits for the TUI to leave");
        assert_eq!(app_servers_of(&home), servers, "the listener is still up");
        let turn = tui.ok(
            "turn/start",
            json!({"threadId": thread, "input": [{"type": "text", "text": "tui TWO"}]}),
        );
        let done = tui.until_turn_completed(turn["turn"]["id"].as_str().unwrap());
        assert_eq!(done["turn"]["status"], "completed", "{done}");
        // And a companion still lands on it meanwhile.
        let out = w.run(&["a", "task", "hello SECOND"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(app_servers_of(&home), servers, "still the one app-server");

        // The TUI leaves: the broker goes after its idle time, and takes the listener along.
        drop(tui);
        assert!(
            wait_until(30, || !alive(broker_pid)
                && app_servers_of(&home).is_empty()),
            "broker alive: {}, app-servers: {:?}\n{}",
            alive(broker_pid),
            app_servers_of(&home),
            logs_under(&rt)
        );
        assert!(
            std::fs::canonicalize(standard_path(&home)).is_err(),
            "the standard path leads nowhere"
        );
        assert!(own_brokers(|a| w.run(a)).is_empty());

        // The next call starts a new one: nothing stale is in the way.
        let out = w.run(&["a", "task", "hello THIRD"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(app_servers_of(&home).len(), 1);
        assert_eq!(
            own_brokers(|a| w.run(a))[0]["appServer"],
            "codex-as-listener"
        );
    }
}

#[test]
fn a_broker_stopped_while_a_tui_is_attached_leaves_it_the_listener() {
    let Some(codex) = real_codexes().into_iter().next_back() else {
        return;
    };
    let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
        return;
    };
    let home = w.home("a");
    let out = w.run(&["a", "setup"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let servers = app_servers_of(&home);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let socket = std::fs::canonicalize(standard_path(&home)).unwrap();
    let mut tui = TuiClient::connect(&socket, "codex-tui");

    // `brokers stop` stops the idle broker, never the listener its TUI uses.
    let out = w.run(&["brokers", "stop"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert!(wait_until(10, || own_brokers(|a| w.run(a))
        .iter()
        .all(|r| r["state"] == "listening")));
    assert_eq!(app_servers_of(&home), servers, "the TUI keeps its listener");
    let thread = tui.ok("thread/start", json!({"cwd": w.ws}));
    assert!(thread["thread"]["id"].is_string(), "{thread}");
    // `brokers` still shows it, as codex-as's, and who keeps it up.
    let out = w.run(&["brokers", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lone: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "listening")
        .collect();
    assert_eq!(lone.len(), 1, "{rows}");
    assert_eq!(lone[0]["owner"], "codex-as");
    assert_eq!(lone[0]["account"], "a");
    assert_eq!(lone[0]["pid"].as_u64(), Some(servers[0] as u64), "{rows}");
    assert!(
        lone[0]["note"]
            .as_str()
            .unwrap()
            .contains("1 other clients"),
        "{rows}"
    );
    // And so does `doctor`, as a note (nothing is wrong).
    let doctor = w.run(&["doctor", "--json"]);
    let said = stdout(&doctor);
    assert!(
        said.contains("a Codex listener codex-as started for 'a'")
            && said.contains("is up with no broker: 1 other clients"),
        "{said}"
    );
    // `brokers stop` leaves it to the TUI.
    let out = w.run(&["brokers", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(app_servers_of(&home), servers, "still the TUI's");

    // A later broker joins it and knows codex-as started it.
    let out = w.run(&["a", "task", "again LATER"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let brokers = own_brokers(|a| w.run(a));
    assert_eq!(brokers[0]["appServer"], "codex-as-listener", "{brokers:?}");
    assert_eq!(app_servers_of(&home), servers, "the same one app-server");
    // That broker stops while the TUI is still there; once the TUI has gone, `brokers stop`
    // stops the listener nobody uses any more.
    let out = w.run(&["brokers", "stop"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert!(wait_until(10, || own_brokers(|a| w.run(a))
        .iter()
        .all(|r| r["state"] == "listening")));
    assert_eq!(app_servers_of(&home), servers, "left to the TUI again");
    drop(tui);
    let out = w.run(&["brokers", "stop", "--json"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "stopped" && r["appServer"] == "codex-as-listener"),
        "{rows}"
    );
    assert!(
        wait_until(30, || app_servers_of(&home).is_empty()),
        "stopped once nobody used it: {:?}",
        app_servers_of(&home)
    );
    assert!(own_brokers(|a| w.run(a)).is_empty());
}

#[test]
fn where_a_listener_cannot_work_the_brokers_own_child_serves() {
    // A Codex without `--listen` (the fake one refuses it, as one before 0.169 does).
    let sb = Sandbox::new();
    sb.with_fake_codex();
    crate::support::model_stub::write_api_key_login(&sb.account_dir("alice"), "sk-test-alice");
    let ws = sb.mkdir("ws");
    let rt = sb.path().join("rt");
    let run = |args: &[&str]| {
        sb.codex_as()
            .env(
                "CODEX_AS_PLUGIN_ROOT",
                crate::support::fixtures().join("plugin"),
            )
            .env("CODEX_AS_RUNTIME_DIR", &rt)
            .current_dir(&ws)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["alice", "task", "hi"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let brokers = own_brokers(run);
    assert_eq!(brokers[0]["appServer"], "child", "{brokers:?}");
    let logs = logs_under(&rt);
    assert!(
        logs.contains("no listener for this home") && logs.contains("--listen"),
        "the log says why: {logs}"
    );

    // A real Codex, told so by the config.
    let Some(codex) = real_codexes().into_iter().next() else {
        return;
    };
    let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
        return;
    };
    w.sb.write_config("[broker]\napp_server = \"child\"\n");
    let out = w.run(&["a", "task", "as a child"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let brokers = own_brokers(|a| w.run(a));
    assert_eq!(brokers[0]["appServer"], "child", "{brokers:?}");
    assert!(!standard_path(&w.home("a")).exists(), "no listener started");
    assert_eq!(app_servers_of(&w.home("a")).len(), 1);
    // A choice that is neither is refused before anything runs.
    w.sb.write_config("[broker]\napp_server = \"daemon\"\n");
    let out = w.run(&["a", "task", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("broker.app_server") && stderr(&out).contains("\"listener\""),
        "{}",
        stderr(&out)
    );
}

/// A listener holds the login it started with: after the home logs in again, the next call's
/// turn goes out with the new login, never the old one, and the old listener is not left behind.
#[test]
fn after_another_login_no_turn_goes_out_with_the_old_one() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        let home = w.home("a");
        let out = w.run(&["a", "task", "before RELOGIN"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        let first = app_servers_of(&home);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(w.stub.turn_requests(KEY_A).len(), 1);

        // A TUI keeps the listener up, so it is still there when the home logs in again, with
        // another key (a stand-in for another account's login).
        let socket = std::fs::canonicalize(standard_path(&home)).unwrap();
        let mut tui = TuiClient::connect(&socket, "codex-tui");
        crate::support::model_stub::write_api_key_login(&home, "sk-own-listener-new");
        let out = w.run(&["a", "task", "after RELOGIN"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(
            w.stub.turn_requests(KEY_A).len(),
            1,
            "nothing more went out with the old login"
        );
        let new = w.stub.turn_requests("sk-own-listener-new");
        assert_eq!(
            new.len(),
            1,
            "the turn went out with the new login: {new:?}"
        );
        assert!(new[0].to_string().contains("after RELOGIN"));
        let brokers = own_brokers(|a| w.run(a));
        assert!(
            brokers.iter().any(|b| b["appServer"] == "child"),
            "the old listener is its TUI's; the new login runs in a child meanwhile: {brokers:?}"
        );
        // The TUI leaves: the old listener goes, and the next call gets one with the new login.
        tui.drain_for(Duration::from_millis(100));
        drop(tui);
        let out = w.run(&["brokers", "stop"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(wait_until(30, || app_servers_of(&home).is_empty()));
        let out = w.run(&["a", "task", "later RELOGIN"]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(w.stub.turn_requests("sk-own-listener-new").len(), 2);
        assert_eq!(
            own_brokers(|a| w.run(a))[0]["appServer"],
            "codex-as-listener"
        );
        // One app-server for the home, not the old one.
        assert!(
            wait_until(30, || {
                let now = app_servers_of(&home);
                now.len() == 1 && now != first
            }),
            "{:?} (first {first:?})",
            app_servers_of(&home)
        );
    }
}
