//! The pure rules of a handover, over the upstream's JSON messages: which of them are held back
//! while a failed turn may still go on elsewhere ([`Watch`]), and the id mapping that makes the
//! turn on the next account look like the one the companion started ([`IdMap`]). The companion
//! only takes notifications whose `turnId` is the one its `turn/start` got.

use serde_json::Value;

use crate::broker::protocol;
use crate::broker::protocol::{TURN_COMPLETED, USAGE_LIMIT_EXCEEDED};

pub const ERROR: &str = "error";
pub const THREAD_STATUS_CHANGED: &str = "thread/status/changed";

fn method(msg: &Value) -> Option<&str> {
    msg.get("method").and_then(Value::as_str)
}

fn params(msg: &Value) -> Option<&Value> {
    msg.get("params")
}

/// `params.threadId`.
pub fn thread_id(msg: &Value) -> Option<&str> {
    params(msg)?.get("threadId")?.as_str()
}

/// `params.turnId`, else `params.turn.id` (how the companion reads a message's turn).
pub fn turn_id(msg: &Value) -> Option<&str> {
    let p = params(msg)?;
    p.get("turnId")
        .and_then(Value::as_str)
        .or_else(|| p.get("turn")?.get("id")?.as_str())
}

fn is_limit_info(info: Option<&Value>) -> bool {
    match info {
        Some(Value::String(s)) => s == USAGE_LIMIT_EXCEEDED,
        Some(Value::Object(m)) => m.contains_key(USAGE_LIMIT_EXCEEDED),
        _ => false,
    }
}

/// The message of an `error` notification that ends a turn for the usage limit (not one Codex
/// says it retries).
pub fn usage_limit_error(msg: &Value) -> Option<String> {
    if method(msg) != Some(ERROR) {
        return None;
    }
    let p = params(msg)?;
    if p.get("willRetry").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let err = p.get("error")?;
    is_limit_info(err.get("codexErrorInfo")).then(|| {
        err.get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    })
}

/// The message of a `turn/completed` that failed for the usage limit.
pub fn usage_limit_completion(msg: &Value) -> Option<String> {
    if method(msg) != Some(TURN_COMPLETED) || !protocol::is_usage_limit_turn(params(msg)) {
        return None;
    }
    Some(
        params(msg)?
            .get("turn")?
            .get("error")?
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

/// `thread/status/changed` to `systemError`: what a failing turn's thread goes to first.
pub fn is_system_error_status(msg: &Value) -> bool {
    method(msg) == Some(THREAD_STATUS_CHANGED)
        && params(msg)
            .and_then(|p| p.get("status"))
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            == Some("systemError")
}

/// What to do with one upstream message.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Send these to the client, in order (messages held back before it come first).
    Forward(Vec<Value>),
    /// Keep it back for now.
    Hold,
    /// The watched turn failed for the usage limit (its messages are held): hand it over, or
    /// [`Watch::release`] them when that cannot be done.
    HandOver { message: String },
}

/// Watches one turn (by its upstream ids) and holds back what a usage-limit failure sends,
/// until it is known whether the turn goes on elsewhere.
#[derive(Debug, Default)]
pub struct Watch {
    /// (thread, turn) whose failure would be handed over.
    turn: Option<(String, String)>,
    held: Vec<Value>,
    /// The usage-limit message, once its `error` was seen.
    limit: Option<String>,
}

impl Watch {
    /// Starts watching a turn just started (or restarted on another account).
    pub fn start(&mut self, thread: &str, turn: &str) {
        self.turn = Some((thread.to_string(), turn.to_string()));
        self.held.clear();
        self.limit = None;
    }

    pub fn watching(&self) -> Option<(&str, &str)> {
        self.turn.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// The held messages, when the failure goes through after all; the turn is over.
    pub fn release(&mut self) -> Vec<Value> {
        self.turn = None;
        self.limit = None;
        std::mem::take(&mut self.held)
    }

    pub fn on_upstream(&mut self, msg: Value) -> Verdict {
        let Some((thread, turn)) = &self.turn else {
            return Verdict::Forward(vec![msg]);
        };
        let ours_thread = thread_id(&msg) == Some(thread.as_str());
        let ours_turn = ours_thread && turn_id(&msg) == Some(turn.as_str());
        if ours_thread && self.limit.is_none() && is_system_error_status(&msg) {
            self.held.push(msg);
            return Verdict::Hold;
        }
        if ours_turn && let Some(m) = usage_limit_error(&msg) {
            self.limit = Some(m);
            self.held.push(msg);
            return Verdict::Hold;
        }
        if ours_turn && method(&msg) == Some(TURN_COMPLETED) {
            let failed = params(&msg)
                .and_then(|p| p.get("turn"))
                .and_then(|t| t.get("status"))
                .and_then(Value::as_str)
                == Some("failed");
            let limit = usage_limit_completion(&msg)
                .or_else(|| failed.then(|| self.limit.clone()).flatten());
            if let Some(message) = limit {
                self.held.push(msg);
                let message = if message.is_empty() {
                    self.limit.clone().unwrap_or_default()
                } else {
                    message
                };
                return Verdict::HandOver { message };
            }
            let mut out = self.release();
            out.push(msg);
            return Verdict::Forward(out);
        }
        if ours_thread && self.limit.is_none() && !self.held.is_empty() {
            // The status change was not a usage limit after all: it goes out first.
            let mut out = std::mem::take(&mut self.held);
            out.push(msg);
            return Verdict::Forward(out);
        }
        Verdict::Forward(vec![msg])
    }
}

/// Ids of the next account's turn (and detached review thread) mapped to the ones the
/// companion knows, both ways.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    /// (upstream id, client id), oldest first.
    pairs: Vec<(String, String)>,
}

impl IdMap {
    pub fn add(&mut self, upstream: &str, client: &str) {
        if upstream != client {
            self.pairs.push((upstream.to_string(), client.to_string()));
        }
    }

    /// The latest upstream id standing for the client's `id` (itself when none does).
    pub fn upstream_of(&self, id: &str) -> String {
        self.pairs
            .iter()
            .rev()
            .find(|(_, c)| c == id)
            .map_or_else(|| id.to_string(), |(up, _)| up.clone())
    }

    /// The client's id for the upstream `id` (itself when it is not mapped).
    pub fn client_of(&self, id: &str) -> String {
        self.pairs
            .iter()
            .find(|(up, _)| up == id)
            .map_or_else(|| id.to_string(), |(_, c)| c.clone())
    }

    /// Every string that is an upstream id becomes the client's id.
    pub fn to_client(&self, v: &mut Value) {
        if self.pairs.is_empty() {
            return;
        }
        replace(v, &|s| {
            self.pairs
                .iter()
                .find(|(up, _)| up == s)
                .map(|(_, c)| c.clone())
        });
    }

    /// Every client id becomes the latest upstream id standing for it (`turn/interrupt`).
    pub fn to_upstream(&self, v: &mut Value) {
        if self.pairs.is_empty() {
            return;
        }
        replace(v, &|s| {
            self.pairs
                .iter()
                .rev()
                .find(|(_, c)| c == s)
                .map(|(up, _)| up.clone())
        });
    }
}

/// Ids are whole string values (UUIDs): only an exact match is replaced, never a substring of
/// text the model wrote.
fn replace(v: &mut Value, swap: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = swap(s) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| replace(i, swap)),
        Value::Object(map) => map.values_mut().for_each(|i| replace(i, swap)),
        _ => {}
    }
}

/// `thread/resume` params for the next account, from the params that opened the thread there
/// first (`thread/start` or `thread/resume`): the settings both take, the thread's id, and no
/// history in the answer.
pub fn resume_params(open: Option<&Value>, thread: &str) -> Value {
    const SHARED: [&str; 11] = [
        "approvalPolicy",
        "approvalsReviewer",
        "baseInstructions",
        "config",
        "cwd",
        "developerInstructions",
        "model",
        "modelProvider",
        "personality",
        "sandbox",
        "serviceTier",
    ];
    let mut out = serde_json::Map::new();
    if let Some(Value::Object(p)) = open {
        for k in SHARED {
            if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    out.insert("threadId".into(), Value::String(thread.to_string()));
    // The relay only needs the thread loaded there; the history stays out of the answer (0.169
    // and 0.171 both take this).
    out.insert("excludeTurns".into(), Value::Bool(true));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: &str = "You've hit your usage limit. Try again at 3:15 PM.";

    fn status(thread: &str, kind: &str) -> Value {
        json!({"method": "thread/status/changed", "params": {"threadId": thread, "status": {"type": kind}}})
    }
    fn error(thread: &str, turn: &str, retry: bool) -> Value {
        json!({"method": "error", "params": {"threadId": thread, "turnId": turn, "willRetry": retry,
            "error": {"message": LIMIT, "codexErrorInfo": "usageLimitExceeded", "additionalDetails": null}}})
    }
    fn completed(thread: &str, turn: &str, status: &str, limit: bool) -> Value {
        let error =
            limit.then(|| json!({"message": LIMIT, "codexErrorInfo": "usageLimitExceeded"}));
        json!({"method": "turn/completed", "params": {"threadId": thread,
            "turn": {"id": turn, "status": status, "error": error, "items": []}}})
    }
    fn item(thread: &str, turn: &str) -> Value {
        json!({"method": "item/completed", "params": {"threadId": thread, "turnId": turn, "item": {"type": "agentMessage", "text": "hi"}}})
    }

    #[test]
    fn a_usage_limit_failure_is_held_whole_and_handed_over() {
        let mut w = Watch::default();
        w.start("th", "t1");
        assert_eq!(w.on_upstream(status("th", "systemError")), Verdict::Hold);
        // Thread-less news still goes out meanwhile.
        let rl = json!({"method": "account/rateLimits/updated", "params": {"rateLimits": {}}});
        assert_eq!(w.on_upstream(rl.clone()), Verdict::Forward(vec![rl]));
        assert_eq!(w.on_upstream(error("th", "t1", false)), Verdict::Hold);
        assert_eq!(
            w.on_upstream(completed("th", "t1", "failed", true)),
            Verdict::HandOver {
                message: LIMIT.into()
            }
        );
        // Could not hand over: everything held goes out, in order.
        let held = w.release();
        assert_eq!(
            held,
            vec![
                status("th", "systemError"),
                error("th", "t1", false),
                completed("th", "t1", "failed", true)
            ]
        );
        assert_eq!(w.watching(), None);
    }

    #[test]
    fn anything_else_goes_through_untouched() {
        let mut w = Watch::default();
        w.start("th", "t1");
        let it = item("th", "t1");
        assert_eq!(w.on_upstream(it.clone()), Verdict::Forward(vec![it]));
        // An error Codex retries is only news.
        let retry = error("th", "t1", true);
        assert_eq!(w.on_upstream(retry.clone()), Verdict::Forward(vec![retry]));
        // Another turn's limit is not ours.
        let other = error("th", "t0", false);
        assert_eq!(w.on_upstream(other.clone()), Verdict::Forward(vec![other]));
        // A system error that is no usage limit: the status goes out before what follows.
        assert_eq!(w.on_upstream(status("th", "systemError")), Verdict::Hold);
        let done = completed("th", "t1", "failed", false);
        assert_eq!(
            w.on_upstream(done.clone()),
            Verdict::Forward(vec![status("th", "systemError"), done])
        );
        assert_eq!(w.watching(), None, "the turn is over");
        let late = status("th", "systemError");
        assert_eq!(w.on_upstream(late.clone()), Verdict::Forward(vec![late]));
    }

    #[test]
    fn a_watch_holds_only_its_own_threads_failure_and_keeps_it_until_the_end() {
        let mut w = Watch::default();
        assert_eq!(w.watching(), None);
        w.start("th", "t1");
        assert_eq!(w.watching(), Some(("th", "t1")));
        assert_eq!(w.on_upstream(status("th", "systemError")), Verdict::Hold);
        // Another thread's failure is its own business, and does not let ours out early.
        let elsewhere = status("other", "systemError");
        assert_eq!(
            w.on_upstream(elsewhere.clone()),
            Verdict::Forward(vec![elsewhere])
        );
        assert_eq!(w.on_upstream(error("th", "t1", false)), Verdict::Hold);
        // Once the usage limit is known, the turn's other news goes out and the failure stays held.
        let it = item("th", "t1");
        assert_eq!(w.on_upstream(it.clone()), Verdict::Forward(vec![it]));
        // A plain failed completion after the limit's error is that limit.
        assert_eq!(
            w.on_upstream(completed("th", "t1", "failed", false)),
            Verdict::HandOver {
                message: LIMIT.into()
            }
        );
        assert_eq!(
            w.release(),
            vec![
                status("th", "systemError"),
                error("th", "t1", false),
                completed("th", "t1", "failed", false)
            ]
        );
    }

    #[test]
    fn a_status_that_was_no_usage_limit_goes_out_before_the_next_news() {
        let mut w = Watch::default();
        w.start("th", "t1");
        assert_eq!(w.on_upstream(status("th", "systemError")), Verdict::Hold);
        let it = item("th", "t1");
        assert_eq!(
            w.on_upstream(it.clone()),
            Verdict::Forward(vec![status("th", "systemError"), it])
        );
        assert_eq!(w.watching(), Some(("th", "t1")), "the turn goes on");
    }

    #[test]
    fn ids_map_both_ways_wherever_they_sit() {
        let mut m = IdMap::default();
        m.add("t2", "t1");
        m.add("same", "same");
        assert_eq!(m.client_of("t2"), "t1");
        assert_eq!(m.client_of("t9"), "t9");
        assert_eq!(m.upstream_of("t1"), "t2");
        assert_eq!(m.upstream_of("same"), "same");
        m.add("t3", "t1");
        assert_eq!(m.upstream_of("t1"), "t3", "the latest");
        assert_eq!(
            (m.client_of("t2"), m.client_of("t3")),
            ("t1".into(), "t1".into())
        );
        let mut v = json!({"turns": [{"id": "t2"}, "t3"]});
        m.to_client(&mut v);
        assert_eq!(v, json!({"turns": [{"id": "t1"}, "t1"]}));
        m.to_upstream(&mut v);
        assert_eq!(v, json!({"turns": [{"id": "t3"}, "t3"]}));
    }

    #[test]
    fn only_a_change_to_system_error_is_held() {
        let mut w = Watch::default();
        w.start("th", "t1");
        for kind in ["active", "idle"] {
            let s = status("th", kind);
            assert_eq!(w.on_upstream(s.clone()), Verdict::Forward(vec![s]));
        }
        // Another method carrying the same status shape is not a status change.
        let other = json!({"method": "thread/started", "params": {"threadId": "th", "status": {"type": "systemError"}}});
        assert!(!is_system_error_status(&other));
        assert!(is_system_error_status(&status("th", "systemError")));
    }

    #[test]
    fn only_a_usage_limit_error_is_held_in_either_of_its_forms() {
        let with_info = |info: Value| {
            json!({"method": "error", "params": {"threadId": "th", "turnId": "t1", "willRetry": false,
                "error": {"message": "boom", "codexErrorInfo": info}}})
        };
        let mut w = Watch::default();
        w.start("th", "t1");
        for info in [
            json!("internalServerError"),
            json!({"responseStreamDisconnected": {"httpStatusCode": 502}}),
            Value::Null,
        ] {
            let e = with_info(info);
            assert_eq!(w.on_upstream(e.clone()), Verdict::Forward(vec![e]));
        }
        // A variant with data arrives as an object keyed by its name.
        let limit = with_info(json!({"usageLimitExceeded": {"resetsAt": 1}}));
        assert_eq!(usage_limit_error(&limit).as_deref(), Some("boom"));
        assert_eq!(w.on_upstream(limit), Verdict::Hold);
    }

    #[test]
    fn a_completion_alone_that_says_usage_limit_is_enough() {
        let mut w = Watch::default();
        w.start("th", "t1");
        assert!(matches!(
            w.on_upstream(completed("th", "t1", "failed", true)),
            Verdict::HandOver { .. }
        ));
        w.start("th", "t2");
        let ok = completed("th", "t2", "completed", false);
        assert_eq!(w.on_upstream(ok.clone()), Verdict::Forward(vec![ok]));
    }

    #[test]
    fn the_new_turn_looks_like_the_original_both_ways() {
        let mut m = IdMap::default();
        m.add("t2", "t1");
        let mut msg = json!({"method": "turn/completed", "params": {"threadId": "th",
            "turn": {"id": "t2", "status": "completed", "items": [{"text": "t2 is here"}]}}});
        m.to_client(&mut msg);
        assert_eq!(msg["params"]["turn"]["id"], "t1");
        assert_eq!(
            msg["params"]["turn"]["items"][0]["text"], "t2 is here",
            "only whole ids"
        );
        let mut started =
            json!({"method": "turn/started", "params": {"threadId": "th", "turn": {"id": "t2"}}});
        m.to_client(&mut started);
        assert_eq!(turn_id(&started), Some("t1"));
        // A second handover maps its turn to the same original; interrupts reach the latest.
        m.add("t3", "t1");
        let mut err = error("th", "t3", false);
        m.to_client(&mut err);
        assert_eq!(turn_id(&err), Some("t1"));
        let mut interrupt = json!({"id": 9, "method": "turn/interrupt", "params": {"threadId": "th", "turnId": "t1"}});
        m.to_upstream(&mut interrupt);
        assert_eq!(interrupt["params"]["turnId"], "t3");
        assert_eq!(interrupt["id"], 9);
    }

    #[test]
    fn resume_params_keep_the_shared_settings_only() {
        let start = json!({"cwd": "/w", "model": null, "approvalPolicy": "never", "sandbox": "read-only",
            "ephemeral": false, "serviceName": "x", "threadSource": "y"});
        assert_eq!(
            resume_params(Some(&start), "th"),
            json!({"approvalPolicy": "never", "cwd": "/w", "sandbox": "read-only", "threadId": "th", "excludeTurns": true})
        );
        assert_eq!(
            resume_params(None, "th"),
            json!({"threadId": "th", "excludeTurns": true})
        );
    }
}
