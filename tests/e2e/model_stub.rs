//! The model stub drives the real `codex app-server` through whole turns offline: answers,
//! history sent back, and the usage-limit failure the real backend causes.

use serde_json::{Value, json};

use crate::support::app_server::{agent_text, completed_turn};
use crate::support::model_stub::{fingerprint, user_texts};
use crate::support::{AppServer, ModelStub, Sandbox, real_codexes};

fn is_reasoning(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .is_ok_and(|v| v["type"] == "response_item" && v["payload"]["type"] == "reasoning")
}

/// The rollout's lines without those of turn `turn_id` (from its task_started to its
/// task_complete), newline-terminated.
fn without_turn(rollout: &str, turn_id: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in rollout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let event = |kind: &str| {
            v["type"] == "event_msg"
                && v["payload"]["type"] == kind
                && v["payload"]["turn_id"] == turn_id
        };
        if event("task_started") {
            inside = true;
        }
        if !inside {
            out.push_str(line);
            out.push('\n');
        }
        if event("task_complete") {
            inside = false;
        }
    }
    out
}

/// Writes `text` at `rel` inside `home`.
fn put(home: &std::path::Path, rel: &std::path::Path, text: &str) {
    let to = home.join(rel);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(&to, text).unwrap();
}

#[test]
fn real_codex_runs_turns_against_the_stub_and_fails_on_its_usage_limit() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let sb = Sandbox::new();
        let stub = ModelStub::start(&sb);
        let home = sb.mkdir("alice");
        let key = "sk-alice-stub";
        stub.account_home(&home, key);
        let work = sb.mkdir("work");

        let mut server = AppServer::start(&sb, &codex, &home, "stub-test");
        let thread = server.start_thread(&work);
        let thread_id = thread["thread"]["id"].as_str().unwrap().to_owned();

        let (first, events) = server.turn(&thread_id, "the word is apple");
        let turn = completed_turn(&events);
        assert_eq!(turn["status"], "completed", "{turn}");
        assert_eq!(
            agent_text(&events),
            "echo: the word is apple (user turns seen: 1)"
        );

        let (_, events) = server.turn(&thread_id, "what was the word?");
        assert_eq!(completed_turn(&events)["status"], "completed");
        assert_eq!(
            agent_text(&events),
            "echo: what was the word? (user turns seen: 2)"
        );
        let bodies = stub.turn_requests(key);
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        assert_eq!(
            user_texts(&bodies[1]),
            ["the word is apple", "what was the word?"]
        );
        // Codex asks for encrypted reasoning and sends the first answer's back, tagged with
        // the key that made it.
        assert!(
            bodies[0]["include"]
                .as_array()
                .is_some_and(|i| i.contains(&json!("reasoning.encrypted_content"))),
            "{}",
            bodies[0]["include"]
        );
        let sent_back: Vec<&Value> = bodies[1]["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "reasoning")
            .collect();
        assert_eq!(sent_back.len(), 1, "{sent_back:?}");
        assert!(
            sent_back[0]["encrypted_content"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("stub-enc:{}:", fingerprint(key)))),
            "{}",
            sent_back[0]
        );
        // The stub never records the key itself.
        let log = std::fs::read_to_string(stub.log_path()).unwrap();
        assert!(!log.contains(key));

        let listed = server.ok("thread/list", json!({}));
        let items = listed["data"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{listed}");
        assert_eq!(items[0]["id"], thread_id.as_str());
        assert_eq!(items[0]["preview"], "the word is apple");
        eprintln!("thread/list answered {listed}");

        stub.set_limited(key, true);
        let (failed, events) = server.turn(&thread_id, "this one hits the limit");
        assert_ne!(failed, first);
        let error = events
            .iter()
            .find(|v| v["method"] == "error")
            .unwrap_or_else(|| panic!("no error notification in {events:?}"));
        assert_eq!(
            error["params"]["error"]["codexErrorInfo"],
            "usageLimitExceeded"
        );
        assert_eq!(error["params"]["willRetry"], false);
        assert_eq!(error["params"]["turnId"], failed.as_str());
        let turn = completed_turn(&events);
        assert_eq!(turn["status"], "failed", "{turn}");
        assert_eq!(turn["error"]["codexErrorInfo"], "usageLimitExceeded");

        // Served again once the limit is lifted: the thread is still usable.
        stub.set_limited(key, false);
        let (_, events) = server.turn(&thread_id, "and now?");
        assert_eq!(completed_turn(&events)["status"], "completed");
        assert_eq!(agent_text(&events), "echo: and now? (user turns seen: 4)");
        drop(server);
        drop(stub);
    }
}

/// A rollout copied into another account's home resumes there, but the copy must leave out the
/// first account's encrypted reasoning: the model refuses it under another key (the stub, like
/// the real backend, answers invalid_encrypted_content) and Codex does not retry without it.
#[test]
fn real_codex_resumes_a_copied_thread_only_without_foreign_reasoning() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let sb = Sandbox::new();
        let stub = ModelStub::start(&sb);
        let work = sb.mkdir("work");
        let homes = ["a", "b", "c"].map(|n| sb.mkdir(n));
        let keys = ["sk-a", "sk-b", "sk-c"];
        for (home, key) in homes.iter().zip(keys) {
            stub.account_home(home, key);
        }

        let mut a = AppServer::start(&sb, &codex, &homes[0], "stub-test");
        let thread = a.start_thread(&work);
        let thread_id = thread["thread"]["id"].as_str().unwrap().to_owned();
        let rollout = std::path::PathBuf::from(thread["thread"]["path"].as_str().unwrap());
        let (_, events) = a.turn(&thread_id, "the word is apple");
        assert_eq!(completed_turn(&events)["status"], "completed");
        drop(a);

        let original = std::fs::read_to_string(&rollout).unwrap();
        let rel = rollout.strip_prefix(&homes[0]).unwrap();
        assert!(original.lines().any(is_reasoning), "{original}");
        let stripped: String = original
            .lines()
            .filter(|l| !is_reasoning(l))
            .map(|l| format!("{l}\n"))
            .collect();
        put(&homes[1], rel, &original);
        put(&homes[2], rel, &stripped);

        // As is: resumable, but its next turn fails on the foreign reasoning.
        let mut b = AppServer::start(&sb, &codex, &homes[1], "stub-test");
        let resumed = b.ok("thread/resume", json!({"threadId": thread_id}));
        assert_eq!(
            resumed["thread"]["path"].as_str(),
            homes[1].join(rel).to_str()
        );
        let (_, events) = b.turn(&thread_id, "on b");
        let turn = completed_turn(&events);
        assert_eq!(turn["status"], "failed", "{turn}");
        assert!(
            turn["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("invalid_encrypted_content")),
            "{turn}"
        );
        drop(b);

        // Without the reasoning: the turn runs on the new account with the whole history.
        let mut c = AppServer::start(&sb, &codex, &homes[2], "stub-test");
        c.ok("thread/resume", json!({"threadId": thread_id}));
        let (_, events) = c.turn(&thread_id, "on c");
        assert_eq!(completed_turn(&events)["status"], "completed");
        assert_eq!(agent_text(&events), "echo: on c (user turns seen: 2)");
        let sent = stub.turn_requests(keys[2]);
        assert_eq!(sent.len(), 1);
        assert_eq!(user_texts(&sent[0]), ["the word is apple", "on c"]);
        drop(c);
        // The original was never written.
        assert_eq!(std::fs::read_to_string(&rollout).unwrap(), original);
    }
}

/// A turn that failed on the usage limit is recorded with its input: a copy for the next account
/// that leaves that turn out lets its input be sent again there without the model seeing it
/// twice.
#[test]
fn real_codex_replays_a_failed_turn_once_on_a_copy_without_it() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let sb = Sandbox::new();
        let stub = ModelStub::start(&sb);
        let work = sb.mkdir("work");
        let accounts = stub.accounts(&sb, &["alice", "bob"]);
        let homes = [&accounts[0].home, &accounts[1].home];
        let keys = [accounts[0].key.as_str(), accounts[1].key.as_str()];

        let mut a = AppServer::start(&sb, &codex, homes[0], "stub-test");
        let thread = a.start_thread(&work);
        let thread_id = thread["thread"]["id"].as_str().unwrap().to_owned();
        let rollout = std::path::PathBuf::from(thread["thread"]["path"].as_str().unwrap());
        a.turn(&thread_id, "the word is apple");
        stub.set_limited(keys[0], true);
        let (failed, events) = a.turn(&thread_id, "replay me");
        assert_eq!(completed_turn(&events)["status"], "failed");
        drop(a);

        let original = std::fs::read_to_string(&rollout).unwrap();
        assert!(
            original.contains("replay me"),
            "the failed input is recorded"
        );
        let copy: String = without_turn(&original, &failed)
            .lines()
            .filter(|l| !is_reasoning(l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(!copy.contains("replay me"));
        put(homes[1], rollout.strip_prefix(homes[0]).unwrap(), &copy);

        let mut b = AppServer::start(&sb, &codex, homes[1], "stub-test");
        let resumed = b.ok("thread/resume", json!({"threadId": thread_id}));
        let turns = resumed["thread"]["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 1, "{resumed}");
        let (_, events) = b.turn(&thread_id, "replay me");
        assert_eq!(completed_turn(&events)["status"], "completed");
        let sent = stub.turn_requests(keys[1]);
        assert_eq!(user_texts(&sent[0]), ["the word is apple", "replay me"]);
        drop(b);
    }
}

/// One HTTP/1.1 exchange with the stub: (status, body).
fn http(url: &str, method: &str, path: &str, key: Option<&str>, body: &Value) -> (u16, String) {
    use std::io::{Read, Write};
    let hostport = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let mut conn = std::net::TcpStream::connect(hostport).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let body = body.to_string();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The stub on its own (node only): answers, records without keys, limits, and refuses
/// reasoning made under another key.
#[test]
fn stub_answers_records_limits_and_guards_reasoning() {
    if !crate::support::have_node() {
        return;
    }
    let sb = Sandbox::new();
    let stub = ModelStub::start(&sb);
    let path = "/v1/responses";
    let turn = |text: &str| {
        json!({"model": "m", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        ]})
    };
    let (status, body) = http(stub.url(), "POST", path, Some("sk-one"), &turn("hi"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("event: response.completed"), "{body}");
    assert!(body.contains("echo: hi (user turns seen: 1)"), "{body}");
    let tag = format!("stub-enc:{}:", fingerprint("sk-one"));
    assert!(body.contains(&tag), "{body}");

    let logged = stub.requests();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["key"], fingerprint("sk-one").as_str());
    assert_eq!(logged[0]["path"], path);
    assert_eq!(logged[0]["body"], turn("hi"));
    assert!(
        !std::fs::read_to_string(stub.log_path())
            .unwrap()
            .contains("sk-one")
    );

    stub.set_limited("sk-one", true);
    let (status, body) = http(stub.url(), "POST", path, Some("sk-one"), &turn("again"));
    assert_eq!(status, 429);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "usage_limit_reached");
    assert!(error["error"]["resets_at"].as_i64().unwrap() > crate::support::proc::unix_now());
    let (status, _) = http(stub.url(), "POST", path, Some("sk-two"), &turn("other key"));
    assert_eq!(status, 200, "only the listed key is limited");
    stub.set_limited("sk-one", false);
    let (status, _) = http(stub.url(), "POST", path, Some("sk-one"), &turn("lifted"));
    assert_eq!(status, 200);

    let mut with_reasoning = turn("next");
    with_reasoning["input"].as_array_mut().unwrap().push(
        json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": format!("{tag}1")}),
    );
    let (status, _) = http(stub.url(), "POST", path, Some("sk-one"), &with_reasoning);
    assert_eq!(status, 200, "its own reasoning is accepted");
    let (status, body) = http(stub.url(), "POST", path, Some("sk-two"), &with_reasoning);
    assert_eq!(status, 400);
    assert!(body.contains("invalid_encrypted_content"), "{body}");

    let (status, _) = http(
        stub.url(),
        "POST",
        path,
        Some("sk-one"),
        &turn("x stub:http=503"),
    );
    assert_eq!(status, 503);

    // `stub:exec=NAME`: Codex's shell tool called, then, with its output in, the echo.
    let (status, body) = http(
        stub.url(),
        "POST",
        path,
        Some("sk-one"),
        &turn("x stub:exec=made"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"exec_command""#), "{body}");
    assert!(body.contains(r#"touch made"#), "{body}");
    assert!(!body.contains("echo:"), "{body}");
    let mut ran = turn("x stub:exec=made");
    ran["input"].as_array_mut().unwrap().extend([
        json!({"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"}),
        json!({"type": "function_call_output", "call_id": "c1", "output": "done"}),
    ]);
    let (status, body) = http(stub.url(), "POST", path, Some("sk-one"), &ran);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("echo: x stub:exec=made"), "{body}");
    assert!(!body.contains("exec_command"), "{body}");
    assert_eq!(stub.requests().len(), 9);

    let pid = stub.pid();
    drop(stub);
    assert!(!crate::support::alive(pid));
}
