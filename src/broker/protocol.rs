//! The wire format shared by the plugin's broker, ours and `codex app-server`: one JSON-RPC
//! object per line, without the `"jsonrpc"` member.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Another client owns the app-server (the plugin's `BROKER_BUSY_RPC_CODE`).
pub const BUSY: i64 = -32001;
/// What the plugin's broker answers the app-server's requests to its client with.
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const PARSE_ERROR: i64 = -32700;
/// The plugin's code for a request that failed without an error code of its own.
pub const SERVER_ERROR: i64 = -32000;

pub const BUSY_MESSAGE: &str = "Shared Codex broker is busy.";

/// Methods whose effect is tied to the app-server connection (handles, subscriptions, login
/// handoffs) or changes state every thread of the account shares (config, login, plugins). One
/// connection is shared by every client of a broker, so these are served only to a client that
/// is alone on it; everything else (everything the plugin's companion sends) is shared.
/// A trailing `/` matches every method under that prefix.
pub const EXCLUSIVE_METHODS: [&str; 23] = [
    "command/exec",
    "process/",
    "fs/watch",
    "fs/unwatch",
    "fuzzyFileSearch/session",
    "thread/search/stream",
    "thread/unsubscribe",
    "mcpServer/event/stream/",
    "account/login/",
    "account/logout",
    "config/value/write",
    "config/batchWrite",
    "modelProvider/",
    "experimentalFeature/enablement/set",
    "skills/config/write",
    "skills/extraRoots/set",
    "marketplace/",
    "plugin/install",
    "plugin/uninstall",
    "config/mcpServer/reload",
    "mcpServer/oauth/login",
    "windowsSandbox/setupStart",
    "externalAgentConfig/import",
];

/// Whether `method` cannot be shared with other clients (see [`EXCLUSIVE_METHODS`]).
pub fn is_exclusive(method: &str) -> bool {
    EXCLUSIVE_METHODS.iter().any(|m| {
        if m.ends_with('/') {
            method.starts_with(m)
        } else {
            method == *m || method.starts_with(&format!("{m}/"))
        }
    })
}

/// Methods whose success starts a stream of notifications that ends with `turn/completed`.
pub const STREAMING_METHODS: [&str; 3] = ["turn/start", "review/start", "thread/compact/start"];

pub const INITIALIZE: &str = "initialize";
pub const INITIALIZED: &str = "initialized";
pub const TURN_INTERRUPT: &str = "turn/interrupt";
pub const TURN_COMPLETED: &str = "turn/completed";
pub const THREAD_STARTED: &str = "thread/started";
/// The app-server unloaded a thread (60 s after its last subscriber left).
pub const THREAD_CLOSED: &str = "thread/closed";
pub const THREAD_UNSUBSCRIBE: &str = "thread/unsubscribe";
pub const THREAD_LOADED_LIST: &str = "thread/loaded/list";
/// Requests whose answer names a thread the asking client then owns.
pub const THREAD_OPENING_METHODS: [&str; 3] = ["thread/start", "thread/resume", "thread/fork"];
pub const BROKER_STATUS: &str = "broker/status";
pub const BROKER_SHUTDOWN: &str = "broker/shutdown";
pub const RATE_LIMITS_READ: &str = "account/rateLimits/read";

/// The `codexErrorInfo` of a turn error for every quota error of the account (app-server v2;
/// `quota::signals` lists where it comes from).
pub const USAGE_LIMIT_EXCEEDED: &str = "usageLimitExceeded";

/// True when a turn ended failed for the usage limit: app-server v2 `turn/completed` params with
/// `turn.status: "failed"` and `turn.error.codexErrorInfo: "usageLimitExceeded"` (variants with
/// data serialize as `{"usageLimitExceeded": {...}}`).
pub fn is_usage_limit_turn(params: Option<&Value>) -> bool {
    let Some(turn) = params.and_then(|v| v.get("turn")) else {
        return false;
    };
    let info = turn.get("error").and_then(|e| e.get("codexErrorInfo"));
    let is_limit = match info {
        Some(Value::String(s)) => s == USAGE_LIMIT_EXCEEDED,
        Some(Value::Object(m)) => m.contains_key(USAGE_LIMIT_EXCEEDED),
        _ => false,
    };
    is_limit && turn.get("status").and_then(Value::as_str) == Some("failed")
}

/// The answer of `broker/status`. codex-as's broker fills in every field; a broker patched
/// into the plugin sends some (`busy` at least), so each one it leaves out reads as None or
/// empty. One type for the writer and the readers: a key renamed here is renamed for both, and
/// the tests below hold it to the example in the module docs of `broker`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    /// "Not idle", as seen by the asker, who does not count.
    pub busy: bool,
    /// `"codex-as"` for ours.
    pub broker: Option<String>,
    pub version: Option<String>,
    pub pid: Option<u32>,
    pub app_server_pid: Option<u32>,
    pub codex_home: Option<String>,
    pub auth: Option<AuthStatus>,
    /// Unix seconds.
    pub started_at: Option<u64>,
    /// Every connection, the asker's included.
    pub connections: Option<u64>,
    /// Ours: clients connected besides the one asking.
    pub clients: Option<u64>,
    pub max_clients: Option<u64>,
    pub requests_in_flight: Option<u64>,
    /// Ours: threads with a turn running, and their ids.
    pub threads_in_flight: Option<u64>,
    pub threads: Vec<String>,
    /// Ours: the working folders of the threads it has served.
    pub workspaces: Vec<String>,
    pub lease_held: Option<bool>,
    /// Since the last request or turn ended; 0 while one runs.
    pub idle_seconds: Option<u64>,
    pub cwd: Option<String>,
    pub endpoint: Option<String>,
    /// Ours: the latest turns that failed for the account's usage limit, newest last.
    pub usage_limit_hits: Vec<UsageLimitHit>,
    /// Ours: the threads its app-server has open. A newer copy of one of them must not be
    /// carried into this home: the app-server would go on from the copy it holds in memory and
    /// write its next turns to the replaced file.
    pub open_threads: Vec<String>,
    /// Ours: `"child"` (its own `codex app-server`), `"listener"` (the account's Codex
    /// listener, shared with other clients such as a TUI) or `"codex-as-listener"` (such a
    /// listener that codex-as started, and stops once nobody uses it).
    pub app_server: Option<String>,
    /// Ours: the `userAgent` the app-server answered `initialize` with (it names its version;
    /// empty when it gave none).
    pub app_server_user_agent: Option<String>,
}

impl Status {
    pub fn is_codex_as(&self) -> bool {
        self.broker.as_deref() == Some("codex-as")
    }

    /// Whether a codex-as broker serves its clients through the account's Codex listener
    /// (shared with a TUI, say) rather than a child of its own.
    pub fn on_listener(&self) -> bool {
        matches!(
            self.app_server.as_deref(),
            Some("listener" | "codex-as-listener")
        )
    }

    /// The version of the app-server behind a codex-as broker, as its `userAgent` names it.
    pub fn app_server_version(&self) -> Option<&str> {
        version_in_user_agent(self.app_server_user_agent.as_deref()?)
    }

    /// What serves a codex-as broker's clients, in words (`brokers`, `doctor`); None for a
    /// broker that does not say (the plugin's, an older codex-as).
    pub fn app_server_words(&self) -> Option<String> {
        let what = match self.app_server.as_deref()? {
            "listener" => "Codex's own listener for the account (shared with other clients)",
            "codex-as-listener" => {
                "a Codex listener codex-as started for the account (shared with other clients)"
            }
            "child" => "its own codex app-server",
            other => other,
        };
        let mut details = Vec::new();
        if let Some(pid) = self.app_server_pid {
            details.push(format!("pid {pid}"));
        }
        if let Some(v) = self.app_server_version() {
            details.push(v.to_string());
        }
        Some(match details.is_empty() {
            true => what.to_string(),
            false => format!("{what} ({})", details.join(", ")),
        })
    }
}

/// The version in an app-server's `userAgent` (`ORIGINATOR/VERSION (OS; ARCH) ...`).
pub fn version_in_user_agent(user_agent: &str) -> Option<&str> {
    let head = user_agent.split(" (").next()?;
    let (_, version) = head.rsplit_once('/')?;
    let version = version.trim();
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(version)
}

/// A turn that failed with `codexErrorInfo: "usageLimitExceeded"`, as the broker saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageLimitHit {
    /// The client process whose turn it was.
    pub pid: Option<u32>,
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub message: Option<String>,
}

/// How the broker's account is logged in, without a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthStatus {
    pub method: Option<String>,
    pub fingerprint: Option<String>,
}

/// The plugin version whose client identity the broker presents to Codex. Codex records the
/// client name as a session's `originator`, so sessions run through codex-as look exactly like
/// the plugin's own.
pub const PLUGIN_VERSION: &str = "1.0.5";

/// `initialize` params exactly as the plugin's broker sends them; the opt-outs decide which
/// notifications reach clients at all.
pub fn initialize_params() -> Value {
    json!({
        "clientInfo": {"title": "Codex Plugin", "name": "Claude Code", "version": PLUGIN_VERSION},
        "capabilities": {
            "experimentalApi": false,
            "requestAttestation": false,
            "optOutNotificationMethods": [
                "item/agentMessage/delta",
                "item/reasoning/summaryTextDelta",
                "item/reasoning/summaryPartAdded",
                "item/reasoning/textDelta"
            ]
        }
    })
}

/// What the broker answers a client's `initialize` with (the plugin's broker says the same, and
/// companions never look further).
pub fn client_initialize_result() -> Value {
    json!({"userAgent": "codex-companion-broker"})
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// `Ok(result)` or `Err(error object)`, passed on verbatim.
    Response {
        id: Value,
        outcome: Result<Value, Value>,
    },
}

impl Message {
    /// Reads one line. The error text is what a peer is told about a malformed line.
    pub fn parse(line: &str) -> Result<Message, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("Invalid JSON: {e}"))?;
        let Value::Object(mut obj) = value else {
            return Err("Invalid JSON-RPC message: not an object".to_string());
        };
        let id = obj.remove("id");
        let method = match obj.remove("method") {
            Some(Value::String(m)) => Some(m),
            Some(_) => return Err("Invalid JSON-RPC message: method is not a string".to_string()),
            None => None,
        };
        let params = obj.remove("params");
        Ok(match (id, method) {
            (Some(id), Some(method)) => Message::Request { id, method, params },
            (None, Some(method)) => Message::Notification { method, params },
            (Some(id), None) => {
                let outcome = match obj.remove("error") {
                    Some(err) if !err.is_null() => Err(err),
                    // The plugin's client resolves a missing result as `{}`.
                    _ => Ok(obj.remove("result").unwrap_or_else(|| json!({}))),
                };
                Message::Response { id, outcome }
            }
            (None, None) => {
                return Err("Invalid JSON-RPC message: neither id nor method".to_string());
            }
        })
    }

    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        match self {
            Message::Request { id, method, params } => {
                obj.insert("id".into(), id.clone());
                obj.insert("method".into(), Value::String(method.clone()));
                if let Some(p) = params {
                    obj.insert("params".into(), p.clone());
                }
            }
            Message::Notification { method, params } => {
                obj.insert("method".into(), Value::String(method.clone()));
                if let Some(p) = params {
                    obj.insert("params".into(), p.clone());
                }
            }
            Message::Response { id, outcome } => {
                obj.insert("id".into(), id.clone());
                match outcome {
                    Ok(r) => obj.insert("result".into(), r.clone()),
                    Err(e) => obj.insert("error".into(), e.clone()),
                };
            }
        }
        Value::Object(obj)
    }

    pub fn ok(id: Value, result: Value) -> Message {
        Message::Response {
            id,
            outcome: Ok(result),
        }
    }

    pub fn err(id: Value, code: i64, message: impl Into<String>) -> Message {
        Message::Response {
            id,
            outcome: Err(json!({"code": code, "message": message.into()})),
        }
    }

    pub fn request(id: u64, method: &str, params: Value) -> Message {
        Message::Request {
            id: Value::from(id),
            method: method.to_string(),
            params: Some(params),
        }
    }

    pub fn notification(method: &str, params: Value) -> Message {
        Message::Notification {
            method: method.to_string(),
            params: Some(params),
        }
    }
}

/// The thread a notification or server request is about: `threadId` (v2), `conversationId`
/// (v1 approvals), or `thread.id` (`thread/started`). None for thread-less messages.
pub fn thread_of(params: Option<&Value>) -> Option<&str> {
    str_param(params, "threadId")
        .or_else(|| str_param(params, "conversationId"))
        .or_else(|| params?.pointer("/thread/id")?.as_str())
}

/// A string member of `params`, e.g. the thread a turn or notification belongs to.
pub fn str_param<'a>(params: Option<&'a Value>, key: &str) -> Option<&'a str> {
    params?.get(key)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_a_user_agent() {
        let ua = "Claude Code/0.171.0 (Debian 12.0.0; x86_64) xterm (Claude Code; 1.0.5)";
        assert_eq!(version_in_user_agent(ua), Some("0.171.0"));
        assert_eq!(
            version_in_user_agent("codex_cli_rs/0.169.0"),
            Some("0.169.0")
        );
        assert_eq!(version_in_user_agent(""), None);
        assert_eq!(version_in_user_agent("codex-companion-broker"), None);
        assert_eq!(version_in_user_agent("a/b (c/1.0)"), None);
    }

    #[test]
    fn what_serves_a_broker_is_said_with_its_pid_and_version() {
        let st = Status {
            app_server: Some("listener".into()),
            app_server_pid: Some(42),
            app_server_user_agent: Some("Claude Code/0.171.0 (Linux)".into()),
            ..Status::default()
        };
        assert!(st.on_listener());
        let words = st.app_server_words().unwrap();
        assert!(words.starts_with("Codex's own listener"), "{words}");
        assert!(words.ends_with("(pid 42, 0.171.0)"), "{words}");
        let child = Status {
            app_server: Some("child".into()),
            ..Status::default()
        };
        assert!(!child.on_listener());
        assert_eq!(
            child.app_server_words().unwrap(),
            "its own codex app-server"
        );
        assert_eq!(Status::default().app_server_words(), None);
    }

    /// The `broker/status` example of the module docs of `broker`.
    fn documented_status() -> Value {
        let docs = include_str!("mod.rs");
        let block: String = docs
            .lines()
            .skip_while(|l| *l != "//! ```json")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| l.trim_start_matches("//!"))
            .collect();
        serde_json::from_str(&block).unwrap()
    }

    #[test]
    fn status_reads_and_writes_every_documented_key() {
        let documented = documented_status();
        let status: Status = serde_json::from_value(documented.clone()).unwrap();
        // A key renamed or left out here reads as null and is written under another name.
        assert_eq!(serde_json::to_value(&status).unwrap(), documented);
        assert!(status.is_codex_as());
        assert_eq!(status.usage_limit_hits[0].turn_id.as_deref(), Some("019c…"));
    }

    #[test]
    fn a_plugin_brokers_status_may_say_only_busy() {
        let status: Status = serde_json::from_value(json!({"busy": true})).unwrap();
        assert!(status.busy && !status.is_codex_as());
        assert_eq!(status.pid, None);
    }

    #[test]
    fn usage_limit_turns_are_failed_turns_naming_the_limit() {
        let turn = |status: &str, info: Value| {
            json!({"threadId": "t", "turn": {"id": "u", "status": status,
                "error": {"message": "You've hit your usage limit.", "codexErrorInfo": info}}})
        };
        assert!(is_usage_limit_turn(Some(&turn(
            "failed",
            json!(USAGE_LIMIT_EXCEEDED)
        ))));
        assert!(is_usage_limit_turn(Some(&turn(
            "failed",
            json!({USAGE_LIMIT_EXCEEDED: {"resetsAt": 1}})
        ))));
        assert!(!is_usage_limit_turn(Some(&turn("failed", json!("other")))));
        assert!(!is_usage_limit_turn(Some(&turn(
            "completed",
            json!(USAGE_LIMIT_EXCEEDED)
        ))));
        assert!(!is_usage_limit_turn(Some(&json!({"threadId": "t"}))));
        assert!(!is_usage_limit_turn(None));
    }

    #[test]
    fn tells_requests_notifications_and_responses_apart() {
        let m = Message::parse(r#"{"id":7,"method":"turn/start","params":{"threadId":"t"}}"#);
        assert!(matches!(m, Ok(Message::Request { ref method, .. }) if method == "turn/start"));
        let m = Message::parse(r#"{"method":"initialized"}"#).unwrap();
        assert!(
            matches!(m, Message::Notification { ref method, params: None } if method == "initialized")
        );
        let m = Message::parse(r#"{"id":1,"result":{"a":1}}"#).unwrap();
        assert_eq!(m, Message::ok(json!(1), json!({"a": 1})));
        let m = Message::parse(r#"{"id":1}"#).unwrap();
        assert_eq!(m, Message::ok(json!(1), json!({})));
        let m = Message::parse(r#"{"id":"x","error":{"code":-1,"message":"no"}}"#).unwrap();
        assert_eq!(m, Message::err(json!("x"), -1, "no"));
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        for line in ["{", "[]", "3", r#"{"x":1}"#, r#"{"id":1,"method":5}"#] {
            assert!(Message::parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn only_connection_scoped_and_global_methods_are_exclusive() {
        for m in [
            "command/exec",
            "command/exec/write",
            "process/spawn",
            "account/login/start",
            "config/value/write",
            "thread/unsubscribe",
            "fs/watch",
        ] {
            assert!(is_exclusive(m), "{m}");
        }
        for m in [
            "thread/start",
            "turn/start",
            "turn/interrupt",
            "review/start",
            "account/read",
            "config/read",
            "thread/list",
            "thread/resume",
            "command/execute",
            "fs/readFile",
        ] {
            assert!(!is_exclusive(m), "{m}");
        }
    }

    #[test]
    fn finds_the_thread_of_any_message_shape() {
        assert_eq!(thread_of(Some(&json!({"threadId": "a"}))), Some("a"));
        assert_eq!(thread_of(Some(&json!({"conversationId": "b"}))), Some("b"));
        assert_eq!(thread_of(Some(&json!({"thread": {"id": "c"}}))), Some("c"));
        assert_eq!(thread_of(Some(&json!({"x": 1}))), None);
        assert_eq!(thread_of(None), None);
    }

    #[test]
    fn round_trips() {
        let m = Message::request(3, "account/read", json!({}));
        assert_eq!(Message::parse(&m.to_value().to_string()).unwrap(), m);
    }
}
