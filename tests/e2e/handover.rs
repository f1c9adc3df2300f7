//! A usage limit in the middle of a turn is handed over, not failed: the real plugin 1.0.5 and
//! the real `codex app-server` (every version of `support::real_codexes()`), whose account
//! homes use the local model stub; one account's key is made to hit the usage limit mid-thread.

use serde_json::Value;

use crate::support::model_stub::{StubWorld as World, fingerprint, holds, user_texts};
use crate::support::{real_codexes, stderr, stdout, wait_until};

const KEY_A: &str = "sk-handover-a";
const KEY_B: &str = "sk-handover-b";
const NOTICE: &str =
    "codex-as: a: usage limit reached; the thread moved to 'b' and the turn goes on there";

/// Encrypted reasoning another key made, in a request.
fn foreign_reasoning(body: &Value, of_key: &str) -> Vec<String> {
    let tag = format!("stub-enc:{}:", fingerprint(of_key));
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "reasoning")
        .filter_map(|i| i["encrypted_content"].as_str())
        .filter(|e| e.starts_with(&tag))
        .map(str::to_owned)
        .collect()
}

/// a's thread with one turn, then a runs out.
fn thread_on_a_then_a_is_out(w: &World) -> String {
    let out = w.run(&["a", "task", "remember the word PAPAYA"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("echo: remember the word PAPAYA"),
        "{}",
        stdout(&out)
    );
    let jobs = w.jobs();
    let thread = jobs.last().unwrap()["threadId"]
        .as_str()
        .unwrap()
        .to_string();
    w.stub.set_limited(KEY_A, true);
    thread
}

/// b's last request holds the earlier turn and the new input once each, and nothing of a's
/// encrypted reasoning.
fn check_b_request(w: &World, new_input: &str) {
    let bodies = w.stub.turn_requests(KEY_B);
    assert_eq!(bodies.len(), 1, "b asked the model once: {bodies:?}");
    assert_eq!(
        user_texts(&bodies[0]),
        ["remember the word PAPAYA", new_input],
        "earlier turn and new input, each once"
    );
    assert_eq!(foreign_reasoning(&bodies[0], KEY_A), Vec::<String>::new());
    let on_a = w.stub.turn_requests(KEY_A);
    assert_eq!(on_a.len(), 2, "a: the first turn, then the one refused");
}

#[test]
fn a_turn_that_hits_the_limit_goes_on_on_the_next_account() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        let thread = thread_on_a_then_a_is_out(&w);

        let out = w.run(&["a,b", "task", "--resume-last", "what was the word?"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{} {err}", stdout(&out));
        assert!(
            stdout(&out).contains("echo: what was the word? (user turns seen: 2)"),
            "{}",
            stdout(&out)
        );
        assert_eq!(err.matches(NOTICE).count(), 1, "one notice: {err}");
        assert!(err.contains("ran as 'b'"), "{err}");
        assert!(!err.contains("WARNING"), "{err}");
        check_b_request(&w, "what was the word?");

        // The companion's job record keeps the thread; the thread now lives in b's home too.
        let jobs = w.jobs();
        let last = jobs.last().unwrap();
        assert_eq!(last["threadId"], thread.as_str(), "{last}");
        assert_eq!(last["status"], "completed", "{last}");
        assert!(
            holds(&w.home("b"), &thread),
            "the thread was carried into b's home"
        );

        // Later turns of the moved thread stay on b, even with a usable again.
        w.stub.set_limited(KEY_A, false);
        let out = w.run(&["a,b", "task", "--resume-last", "and now?"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("usage limit"), "{}", stderr(&out));
        assert_eq!(
            w.stub.turn_requests(KEY_B).len(),
            2,
            "the next turn ran on b"
        );
        assert_eq!(w.stub.turn_requests(KEY_A).len(), 2, "and not on a");

        // Every account out: the failure reaches the companion, and the answer is the
        // fallback's own, naming each account.
        w.stub.set_limited(KEY_A, true);
        w.stub.set_limited(KEY_B, true);
        let out = w.run(&["a,b", "task", "--resume-last", "anyone?"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(75), "{} {err}", stdout(&out));
        assert!(err.contains("every account is out of quota"), "{err}");
        for name in ["a", "b"] {
            assert!(
                err.lines().any(|l| l
                    .trim_start()
                    .starts_with(&format!("{name}: usage limit reached"))),
                "{err}"
            );
        }
        let on_b = w.stub.turn_requests(KEY_B);
        let asked = on_b
            .iter()
            .filter(|b| user_texts(b).last().map(String::as_str) == Some("anyone?"));
        assert_eq!(asked.count(), 1, "b was asked once, not once per attempt");
    }
}

#[test]
fn a_background_task_that_hits_the_limit_goes_on_on_the_next_account() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        let thread = thread_on_a_then_a_is_out(&w);

        let out = w.run(&[
            "a,b",
            "task",
            "--background",
            "--resume-last",
            "the word again?",
        ]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        // Found by the id the start printed, not by counting records: the real plugin rewrites
        // its job index in place, and a worker's write that meets another's can drop an older
        // job's record (its race, not codex-as's). A record half written right now is left out
        // of a read, so the one read that saw the job end is the one checked.
        let text = stdout(&out);
        let id = crate::support::outputs::background_job_id(&text);
        let ended = std::cell::RefCell::new(None);
        let done = || {
            let job = w.jobs().into_iter().find(|j| j["id"] == id.as_str());
            let over = job
                .as_ref()
                .is_some_and(|j| j["status"] == "completed" || j["status"] == "failed");
            if over {
                *ended.borrow_mut() = job;
            }
            over
        };
        assert!(
            wait_until(60, done),
            "the background job {id} ended: {:?}\nthe start said: {text} {}\njob logs:\n{}",
            w.jobs(),
            stderr(&out),
            job_logs(&w)
        );
        let job = ended.into_inner().unwrap();
        let job = &job;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["threadId"], thread.as_str(), "{job}");
        check_b_request(&w, "the word again?");
        // The notice is in the job's log, where /codex:status shows it, once.
        let log = std::fs::read_to_string(job["logFile"].as_str().unwrap()).unwrap();
        assert_eq!(log.matches(NOTICE).count(), 1, "{log}");
    }
}

#[test]
fn a_review_that_hits_the_limit_starts_again_on_the_next_account() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::with_current_plugin(&codex, [KEY_A, KEY_B]) else {
            return;
        };
        std::fs::write(w.ws.join("notes.txt"), "a change to review\n").unwrap();
        w.stub.set_limited(KEY_A, true);
        let out = w.run(&["a,b", "review"]);
        let err = stderr(&out);
        assert!(out.status.success(), "{} {err}", stdout(&out));
        let notice = "codex-as: a: usage limit reached; the thread moved to 'b' and the review starts again there";
        assert_eq!(err.matches(notice).count(), 1, "one notice: {err}");
        assert_eq!(w.stub.turn_requests(KEY_A).len(), 1, "a refused it once");
        assert_eq!(w.stub.turn_requests(KEY_B).len(), 1, "b reviewed once");
        assert!(
            stdout(&out).contains("echo:"),
            "b's review reached the companion: {}",
            stdout(&out)
        );
    }
}

/// Every job log of the plugin in the sandbox, for a failure's message.
fn job_logs(w: &World) -> String {
    w.sb.find("jobs")
        .iter()
        .map(|d| crate::support::outputs::logs_under(d))
        .collect::<Vec<_>>()
        .join("\n")
}
