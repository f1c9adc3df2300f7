//! The model stub drives the real `codex app-server` through whole turns offline: answers,
//! history sent back, and the usage-limit failure the real backend causes.

use serde_json::{Value, json};

use crate::support::app_server::{agent_text, completed_turn};
use crate::support::model_stub::fingerprint;
use crate::support::{AppServer, ModelStub, Sandbox, real_codexes};

fn user_texts(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .filter(|t| !t.trim_start().starts_with('<'))
        .collect()
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
