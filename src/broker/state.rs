//! The broker's whole state and every rule about it, with no I/O: the event loop feeds it what
//! happened (a client connected, a line arrived, the app-server died...) and carries out the
//! actions it returns. One owner of the state means no locks, and every rule is testable here.
//!
//! Rules (those of the plugin's broker unless noted):
//! - One client at a time owns the app-server: while it has a request in flight, or a stream
//!   started by a streaming method until the matching `turn/completed`. Others get `BUSY`, except
//!   `turn/interrupt` while the owner only streams.
//! - Request ids are remapped to the broker's own counter, so clients never collide.
//! - Notifications go to the owner only.
//! - The app-server's requests to its client are refused with `METHOD_NOT_FOUND`.
//! - `broker/status` and `broker/shutdown` are answered before the busy gate.
//! - Ours: a client that disconnects mid-stream releases it, and the broker interrupts the
//!   abandoned turn and drops its remaining notifications, so the next owner never receives
//!   another client's stream and the account does not keep paying for a turn nobody reads.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use serde_json::{Value, json};

use super::protocol::{self as p, Message};
use crate::account::identity::Identity;

pub type ClientId = u64;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    ToClient(ClientId, Message),
    ToAppServer(Message),
    /// The app-server answered `initialize` (its result attached): accept clients from now on.
    Ready(Value),
    /// Leave the event loop. Error answers for everything in flight precede this action.
    Stop(StopReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    ShutdownRequested,
    Signal,
    IdleExit,
    /// The app-server exited or closed its output; the text says how.
    AppServerGone(String),
    /// The app-server refused `initialize`.
    InitFailed(String),
}

impl StopReason {
    /// What clients with a request in flight are told.
    fn message(&self) -> String {
        match self {
            StopReason::ShutdownRequested => {
                "codex-as broker is shutting down (broker/shutdown).".into()
            }
            StopReason::Signal => "codex-as broker is shutting down (signal).".into(),
            StopReason::IdleExit => "codex-as broker exited after being idle.".into(),
            StopReason::AppServerGone(d) | StopReason::InitFailed(d) => d.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the app-server's answer to `initialize`; clients are not accepted yet.
    Starting,
    Serving,
    /// The listener is closed: serve the clients already connected, then stop.
    Draining,
    Stopped,
}

/// What `broker/status` reports that does not change while the broker runs.
#[derive(Debug, Clone)]
pub struct Facts {
    pub pid: u32,
    pub app_server_pid: u32,
    /// Unix seconds.
    pub started_at: u64,
    pub cwd: String,
    pub endpoint: String,
    pub identity: Identity,
}

#[derive(Debug)]
enum Origin {
    Client {
        client: ClientId,
        id: Value,
        method: String,
        thread_id: Option<String>,
        /// False for an interrupt let through during another client's stream: it does not make
        /// its sender the owner.
        owns: bool,
    },
    Initialize,
    OrphanInterrupt,
}

#[derive(Debug)]
struct Owner {
    client: ClientId,
    in_flight: usize,
    streams: Vec<Stream>,
}

#[derive(Debug)]
struct Stream {
    /// The threads whose `turn/completed` ends this stream (empty: any).
    threads: Vec<String>,
    turn_id: Option<String>,
}

#[derive(Debug)]
pub struct State {
    phase: Phase,
    facts: Facts,
    clients: BTreeSet<ClientId>,
    owner: Option<Owner>,
    /// Requests sent to the app-server, by the id the broker gave them.
    pending: HashMap<u64, Origin>,
    next_id: u64,
    /// Threads whose owner disconnected mid-turn: their notifications go nowhere.
    orphan_threads: HashSet<String>,
    /// Since when no client is connected and nothing is in flight.
    idle_since: Option<Instant>,
    /// Since when nobody owns the app-server (None while busy).
    free_since: Option<Instant>,
    /// Process id of each client, when the socket told it (SO_PEERCRED).
    peer_pids: HashMap<ClientId, u32>,
    /// The latest turns that failed for the account's usage limit, newest last, for
    /// `broker/status`: codex-as's fallback asks after its companion exits, because the
    /// companion itself keeps only the message text.
    usage_limit_hits: VecDeque<Value>,
    out: Vec<Action>,
}

/// How many usage-limit failures `broker/status` remembers.
const USAGE_LIMIT_HITS: usize = 32;

impl State {
    /// A broker whose app-server was just spawned; the actions start its initialization.
    pub fn new(facts: Facts, now: Instant) -> (State, Vec<Action>) {
        let mut s = State {
            phase: Phase::Starting,
            facts,
            clients: BTreeSet::new(),
            owner: None,
            pending: HashMap::new(),
            next_id: 1,
            orphan_threads: HashSet::new(),
            idle_since: None,
            free_since: Some(now),
            peer_pids: HashMap::new(),
            usage_limit_hits: VecDeque::new(),
            out: Vec::new(),
        };
        s.send_upstream(Origin::Initialize, p::INITIALIZE, p::initialize_params());
        s.touch(now);
        let out = s.take();
        (s, out)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn busy(&self) -> bool {
        self.owner.is_some()
    }

    /// No client connected and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.clients.is_empty() && self.pending.is_empty()
    }

    pub fn idle_since(&self) -> Option<Instant> {
        self.idle_since
    }

    /// The identity is settled once the app-server has started (it may create the home).
    pub fn set_identity(&mut self, identity: Identity) {
        self.facts.identity = identity;
    }

    /// The process behind a client, as its socket reports it.
    pub fn set_peer_pid(&mut self, client: ClientId, pid: u32) {
        self.peer_pids.insert(client, pid);
    }

    pub fn on_connect(&mut self, client: ClientId, now: Instant) {
        self.clients.insert(client);
        self.touch(now);
    }

    /// The listener is closed: once the clients still connected are done, the broker stops.
    pub fn begin_draining(&mut self, now: Instant) -> Vec<Action> {
        if self.phase == Phase::Serving {
            self.phase = Phase::Draining;
        }
        self.check_drained();
        self.touch(now);
        self.take()
    }

    /// A line from a client, already parsed (or the reason it could not be).
    pub fn on_client_message(
        &mut self,
        client: ClientId,
        msg: Result<Message, String>,
        now: Instant,
    ) -> Vec<Action> {
        if self.accepts_clients() && self.clients.contains(&client) {
            match msg {
                Err(why) => self.send_to(client, Message::err(Value::Null, p::PARSE_ERROR, why)),
                Ok(Message::Request { id, method, params }) => {
                    self.client_request(client, id, method, params, now)
                }
                // `initialized`, other notifications and answers to requests the broker never
                // forwarded to clients: nothing to do, like the plugin's broker.
                Ok(_) => {}
            }
        }
        self.touch(now);
        self.take()
    }

    pub fn on_disconnect(&mut self, client: ClientId, now: Instant) -> Vec<Action> {
        self.clients.remove(&client);
        self.peer_pids.remove(&client);
        if let Some(owner) = self.owner.take_if(|o| o.client == client) {
            for stream in owner.streams {
                self.abandon(stream.threads, stream.turn_id);
            }
        }
        self.check_drained();
        self.touch(now);
        self.take()
    }

    /// A line from the app-server, already parsed (bad lines are the event loop's to log).
    pub fn on_app_server_message(&mut self, msg: Message, now: Instant) -> Vec<Action> {
        if self.phase != Phase::Stopped {
            match msg {
                Message::Request { id, method, .. } => {
                    let answer = Message::err(
                        id,
                        p::METHOD_NOT_FOUND,
                        format!("Unsupported server request: {method}"),
                    );
                    self.out.push(Action::ToAppServer(answer));
                }
                Message::Response { id, outcome } => self.app_server_response(id, outcome),
                Message::Notification { method, params } => self.notification(method, params),
            }
            self.check_drained();
        }
        self.touch(now);
        self.take()
    }

    pub fn on_app_server_gone(&mut self, how: String) -> Vec<Action> {
        if self.phase == Phase::Starting {
            self.stop(StopReason::InitFailed(how));
        } else {
            self.stop(StopReason::AppServerGone(how));
        }
        self.take()
    }

    /// A signal, or the idle deadline (the caller checked `is_idle` in the same loop turn).
    pub fn on_stop(&mut self, reason: StopReason) -> Vec<Action> {
        self.stop(reason);
        self.take()
    }

    pub fn status(&self, now: Instant) -> Value {
        let f = &self.facts;
        let idle_seconds = match self.free_since {
            Some(t) if self.owner.is_none() => now.saturating_duration_since(t).as_secs(),
            _ => 0,
        };
        json!({
            "busy": self.busy(),
            "broker": "codex-as",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": f.pid,
            "appServerPid": f.app_server_pid,
            "codexHome": f.identity.codex_home.to_string_lossy(),
            "auth": f.identity.auth,
            "startedAt": f.started_at,
            "connections": self.clients.len(),
            "idleSeconds": idle_seconds,
            "cwd": f.cwd,
            "endpoint": f.endpoint,
            "usageLimitHits": self.usage_limit_hits,
        })
    }

    // ---- rules ----

    fn accepts_clients(&self) -> bool {
        matches!(self.phase, Phase::Serving | Phase::Draining)
    }

    fn client_request(
        &mut self,
        client: ClientId,
        id: Value,
        method: String,
        params: Option<Value>,
        now: Instant,
    ) {
        match method.as_str() {
            p::INITIALIZE => {
                return self.send_to(client, Message::ok(id, p::client_initialize_result()));
            }
            p::BROKER_STATUS => {
                let status = self.status(now);
                return self.send_to(client, Message::ok(id, status));
            }
            p::BROKER_SHUTDOWN => {
                let if_idle = params
                    .as_ref()
                    .and_then(|p| p.get("ifIdle"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if if_idle && self.busy() {
                    let refusal = json!({"shutdown": false, "busy": true});
                    return self.send_to(client, Message::ok(id, refusal));
                }
                let answer = if if_idle {
                    json!({"shutdown": true, "busy": false})
                } else {
                    json!({})
                };
                self.send_to(client, Message::ok(id, answer));
                return self.stop(StopReason::ShutdownRequested);
            }
            _ => {}
        }

        let owns = match &self.owner {
            Some(o) if o.client != client => {
                let interrupt_allowed =
                    method == p::TURN_INTERRUPT && !o.streams.is_empty() && o.in_flight == 0;
                if !interrupt_allowed {
                    return self.send_to(client, Message::err(id, p::BUSY, p::BUSY_MESSAGE));
                }
                false
            }
            _ => true,
        };
        if owns {
            self.owner
                .get_or_insert(Owner {
                    client,
                    in_flight: 0,
                    streams: Vec::new(),
                })
                .in_flight += 1;
        }
        let thread_id = p::str_param(params.as_ref(), "threadId").map(str::to_string);
        let params = params.unwrap_or_else(|| json!({}));
        let origin = Origin::Client {
            client,
            id,
            method: method.clone(),
            thread_id,
            owns,
        };
        self.send_upstream(origin, &method, params);
    }

    fn app_server_response(&mut self, id: Value, outcome: Result<Value, Value>) {
        let Some(origin) = id.as_u64().and_then(|n| self.pending.remove(&n)) else {
            return;
        };
        match origin {
            Origin::Initialize => match outcome {
                Ok(result) if self.phase == Phase::Starting => {
                    self.phase = Phase::Serving;
                    self.out.push(Action::Ready(result));
                    self.out.push(Action::ToAppServer(Message::notification(
                        p::INITIALIZED,
                        json!({}),
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    let why = e.get("message").and_then(Value::as_str).unwrap_or("error");
                    self.stop(StopReason::InitFailed(format!(
                        "codex app-server refused initialize: {why}"
                    )));
                }
            },
            Origin::OrphanInterrupt => {}
            Origin::Client {
                client,
                id,
                method,
                thread_id,
                owns,
            } => {
                let connected = self.clients.contains(&client);
                let started_stream =
                    p::STREAMING_METHODS.contains(&method.as_str()) && outcome.is_ok();
                if started_stream {
                    let result = outcome.as_ref().ok();
                    let mut threads: Vec<String> = thread_id.into_iter().collect();
                    if let Some(review) = result
                        .and_then(|r| r.get("reviewThreadId"))
                        .and_then(Value::as_str)
                    {
                        threads.push(review.to_string());
                    }
                    let turn_id = result
                        .and_then(|r| r.pointer("/turn/id"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    match self.owner.as_mut() {
                        Some(o) if connected && o.client == client => {
                            for t in &threads {
                                self.orphan_threads.remove(t);
                            }
                            o.streams.push(Stream { threads, turn_id });
                        }
                        // Its client left before the turn even started.
                        _ => self.abandon(threads, turn_id),
                    }
                }
                if owns {
                    if let Some(o) = self.owner.as_mut().filter(|o| o.client == client) {
                        o.in_flight = o.in_flight.saturating_sub(1);
                    }
                    self.release_if_done();
                }
                if connected {
                    self.send_to(client, Message::Response { id, outcome });
                }
            }
        }
    }

    fn notification(&mut self, method: String, params: Option<Value>) {
        let thread = p::str_param(params.as_ref(), "threadId").map(str::to_string);
        if let Some(t) = &thread
            && self.orphan_threads.contains(t)
        {
            if method == p::TURN_COMPLETED {
                self.orphan_threads.remove(t);
            }
            return;
        }
        if let Some(client) = self.owner.as_ref().map(|o| o.client) {
            self.note_usage_limit(client, &method, params.as_ref());
        }
        let Some(owner) = self.owner.as_mut() else {
            return;
        };
        let target = owner.client;
        if method == p::TURN_COMPLETED && !owner.streams.is_empty() {
            match &thread {
                None => owner.streams.clear(),
                Some(t) => {
                    if let Some(i) = owner
                        .streams
                        .iter()
                        .position(|s| s.threads.is_empty() || s.threads.contains(t))
                    {
                        owner.streams.remove(i);
                    }
                }
            }
        }
        self.send_to(target, Message::Notification { method, params });
        self.release_if_done();
    }

    /// Remembers a turn that failed for the account's usage limit: app-server v2 `turn/completed`
    /// with `turn.status: "failed"` and `turn.error.codexErrorInfo: "usageLimitExceeded"`.
    fn note_usage_limit(&mut self, client: ClientId, method: &str, params: Option<&Value>) {
        if method != p::TURN_COMPLETED {
            return;
        }
        let Some(turn) = params.and_then(|v| v.get("turn")) else {
            return;
        };
        let error = turn.get("error");
        let info = error.and_then(|e| e.get("codexErrorInfo"));
        let is_limit = match info {
            Some(Value::String(s)) => s == p::USAGE_LIMIT_EXCEEDED,
            // Variants with data serialize as {"variant": {...}}.
            Some(Value::Object(m)) => m.contains_key(p::USAGE_LIMIT_EXCEEDED),
            _ => false,
        };
        if turn.get("status").and_then(Value::as_str) != Some("failed") || !is_limit {
            return;
        }
        if self.usage_limit_hits.len() >= USAGE_LIMIT_HITS {
            self.usage_limit_hits.pop_front();
        }
        self.usage_limit_hits.push_back(json!({
            "pid": self.peer_pids.get(&client),
            "threadId": p::str_param(params, "threadId"),
            "turnId": turn.get("id"),
            "message": error.and_then(|e| e.get("message")),
        }));
    }

    /// A turn whose client is gone: interrupt it and swallow what it still says.
    fn abandon(&mut self, threads: Vec<String>, turn_id: Option<String>) {
        if let (Some(thread), Some(turn)) = (threads.first(), turn_id) {
            let params = json!({"threadId": thread, "turnId": turn});
            self.send_upstream(Origin::OrphanInterrupt, p::TURN_INTERRUPT, params);
        }
        self.orphan_threads.extend(threads);
    }

    fn release_if_done(&mut self) {
        if self
            .owner
            .as_ref()
            .is_some_and(|o| o.in_flight == 0 && o.streams.is_empty())
        {
            self.owner = None;
        }
    }

    fn check_drained(&mut self) {
        if self.phase == Phase::Draining && self.is_idle() {
            self.stop(StopReason::IdleExit);
        }
    }

    fn stop(&mut self, reason: StopReason) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.phase = Phase::Stopped;
        let message = reason.message();
        let mut in_flight: Vec<(u64, ClientId, Value)> = self
            .pending
            .drain()
            .filter_map(|(n, o)| match o {
                Origin::Client { client, id, .. } => Some((n, client, id)),
                _ => None,
            })
            .collect();
        in_flight.sort_by_key(|(n, ..)| *n);
        for (_, client, id) in in_flight {
            if self.clients.contains(&client) {
                let answer = Message::err(id, p::SERVER_ERROR, message.clone());
                self.out.push(Action::ToClient(client, answer));
            }
        }
        // A client whose turn was already accepted waits for its stream, not for an answer: end
        // the stream as Codex ends a failed turn, so it reports a failure instead of seeing a
        // closed socket (on which the plugin's companion exits 0 with nothing said).
        if let Some(owner) = self.owner.take()
            && self.clients.contains(&owner.client)
        {
            for stream in owner.streams {
                for msg in failed_turn(&stream, &message) {
                    self.out.push(Action::ToClient(owner.client, msg));
                }
            }
        }
        self.out.push(Action::Stop(reason));
    }

    // ---- plumbing ----

    fn send_upstream(&mut self, origin: Origin, method: &str, params: Value) {
        let n = self.next_id;
        self.next_id += 1;
        self.pending.insert(n, origin);
        self.out
            .push(Action::ToAppServer(Message::request(n, method, params)));
    }

    fn send_to(&mut self, client: ClientId, msg: Message) {
        self.out.push(Action::ToClient(client, msg));
    }

    fn touch(&mut self, now: Instant) {
        self.idle_since = if self.is_idle() && self.phase != Phase::Starting {
            self.idle_since.or(Some(now))
        } else {
            None
        };
        self.free_since = match self.owner {
            Some(_) => None,
            None => self.free_since.or(Some(now)),
        };
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
}

/// The `error` notification and failed `turn/completed` that Codex sends when a turn fails, for
/// a stream the broker has to end itself. Nothing is sent for a stream whose turn is unknown.
fn failed_turn(stream: &Stream, message: &str) -> Vec<Message> {
    let (Some(turn_id), Some(thread)) = (&stream.turn_id, stream.threads.first()) else {
        return Vec::new();
    };
    let error = json!({"message": message, "codexErrorInfo": null, "additionalDetails": null});
    vec![
        Message::notification(
            "error",
            json!({"error": error, "willRetry": false, "threadId": thread, "turnId": turn_id}),
        ),
        Message::notification(
            p::TURN_COMPLETED,
            json!({"threadId": thread, "turn": {"id": turn_id, "items": [], "status": "failed", "error": error}}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::identity::AuthIdentity;
    use crate::account::login_state::LoginState;

    const A: ClientId = 1;
    const B: ClientId = 2;
    const C: ClientId = 3;

    fn facts() -> Facts {
        Facts {
            pid: 10,
            app_server_pid: 11,
            started_at: 1_700_000_000,
            cwd: "/w".into(),
            endpoint: "unix:/tmp/s".into(),
            identity: Identity {
                codex_home: "/h".into(),
                auth: AuthIdentity {
                    method: LoginState::ApiKey,
                    fingerprint: Some("sha256:0123456789abcdef".into()),
                },
            },
        }
    }

    /// A serving broker with clients A and B connected.
    fn serving() -> (State, Instant) {
        let t0 = Instant::now();
        let (mut s, first) = State::new(facts(), t0);
        assert_eq!(first.len(), 1);
        let out = s.on_app_server_message(Message::ok(json!(1), json!({})), t0);
        assert!(matches!(out[0], Action::Ready(_)));
        s.on_connect(A, t0);
        s.on_connect(B, t0);
        (s, t0)
    }

    fn req(id: u64, method: &str, params: Value) -> Result<Message, String> {
        Ok(Message::Request {
            id: json!(id),
            method: method.into(),
            params: Some(params),
        })
    }

    /// The (broker id, method) of each request sent to the app-server.
    fn upstream(actions: &[Action]) -> Vec<(u64, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ToAppServer(Message::Request { id, method, .. }) => {
                    Some((id.as_u64().unwrap(), method.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn only_upstream(actions: &[Action]) -> u64 {
        let ups = upstream(actions);
        assert_eq!(ups.len(), 1, "{actions:?}");
        ups[0].0
    }

    fn to(client: ClientId, actions: &[Action]) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::ToClient(c, m) if *c == client => Some(m.to_value()),
                _ => None,
            })
            .collect()
    }

    fn error_code(v: &Value) -> Option<i64> {
        v.pointer("/error/code").and_then(Value::as_i64)
    }

    fn note(method: &str, thread: &str) -> Message {
        Message::notification(method, json!({"threadId": thread}))
    }

    /// A starts a turn on thread `t` and the app-server accepts it.
    fn start_stream(s: &mut State, t0: Instant, client: ClientId, thread: &str) {
        let up = only_upstream(&s.on_client_message(
            client,
            req(50, "turn/start", json!({"threadId": thread})),
            t0,
        ));
        let result = json!({"turn": {"id": format!("turn-{thread}"), "status": "inProgress"}});
        let out = s.on_app_server_message(Message::ok(json!(up), result), t0);
        assert_eq!(to(client, &out)[0]["id"], 50);
    }

    #[test]
    fn initializes_its_app_server_like_the_plugin_then_accepts_clients() {
        let t0 = Instant::now();
        let (mut s, first) = State::new(facts(), t0);
        let Action::ToAppServer(Message::Request { method, params, .. }) = &first[0] else {
            panic!("{first:?}");
        };
        assert_eq!(method, "initialize");
        let params = params.as_ref().unwrap();
        assert_eq!(params["clientInfo"]["name"], "Claude Code");
        assert_eq!(
            params["capabilities"]["optOutNotificationMethods"][0],
            "item/agentMessage/delta"
        );
        assert_eq!(s.phase(), Phase::Starting);
        assert_eq!(s.idle_since(), None, "not idle before ready");
        let out = s.on_app_server_message(Message::ok(json!(1), json!({"codexHome": "/h"})), t0);
        assert!(matches!(out[0], Action::Ready(_)));
        assert!(
            matches!(&out[1], Action::ToAppServer(Message::Notification { method, .. }) if method == "initialized")
        );
        assert_eq!(s.phase(), Phase::Serving);
    }

    #[test]
    fn refused_initialize_stops_the_broker() {
        let t0 = Instant::now();
        let (mut s, _) = State::new(facts(), t0);
        let out = s.on_app_server_message(Message::err(json!(1), -32600, "nope"), t0);
        assert!(matches!(&out[0], Action::Stop(StopReason::InitFailed(m)) if m.contains("nope")));
    }

    #[test]
    fn answers_initialize_locally_and_swallows_initialized() {
        let (mut s, t0) = serving();
        let out = s.on_client_message(A, req(1, "initialize", json!({})), t0);
        assert_eq!(
            to(A, &out),
            [json!({"id": 1, "result": {"userAgent": "codex-companion-broker"}})]
        );
        let initialized = Ok(Message::notification("initialized", json!({})));
        assert!(s.on_client_message(A, initialized, t0).is_empty());
    }

    #[test]
    fn remaps_ids_so_clients_never_collide() {
        let (mut s, t0) = serving();
        let up_a = only_upstream(&s.on_client_message(A, req(1, "account/read", json!({})), t0));
        // A keeps ownership while its request is in flight; a second request of its own passes.
        let up_a2 = only_upstream(&s.on_client_message(A, req(1, "config/read", json!({})), t0));
        assert_ne!(up_a, up_a2);
        let out = s.on_app_server_message(Message::ok(json!(up_a2), json!("second")), t0);
        assert_eq!(to(A, &out), [json!({"id": 1, "result": "second"})]);
        assert!(s.busy(), "one request still in flight");
        let out = s.on_app_server_message(Message::ok(json!(up_a), json!("first")), t0);
        assert_eq!(to(A, &out), [json!({"id": 1, "result": "first"})]);
        assert!(!s.busy());
        let up_b = only_upstream(&s.on_client_message(B, req(1, "account/read", json!({})), t0));
        assert!(up_b != up_a && up_b != up_a2);
        let err = json!({"code": -32600, "message": "bad", "data": {"x": 1}});
        let out = s.on_app_server_message(
            Message::Response {
                id: json!(up_b),
                outcome: Err(err.clone()),
            },
            t0,
        );
        assert_eq!(to(B, &out), [json!({"id": 1, "error": err})]);
        assert!(to(A, &out).is_empty());
    }

    #[test]
    fn a_request_in_flight_makes_others_busy() {
        let (mut s, t0) = serving();
        let up = only_upstream(&s.on_client_message(A, req(1, "thread/start", json!({})), t0));
        for method in ["account/read", "turn/interrupt", "turn/start"] {
            let out = s.on_client_message(B, req(9, method, json!({"threadId": "t"})), t0);
            assert!(upstream(&out).is_empty(), "{method}");
            assert_eq!(error_code(&to(B, &out)[0]), Some(p::BUSY), "{method}");
        }
        s.on_app_server_message(Message::ok(json!(up), json!({})), t0);
        let out = s.on_client_message(B, req(9, "account/read", json!({})), t0);
        assert_eq!(upstream(&out).len(), 1);
    }

    #[test]
    fn a_stream_belongs_to_its_client_until_its_turn_completes() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        assert!(s.busy());
        let out = s.on_client_message(B, req(2, "account/read", json!({})), t0);
        assert_eq!(error_code(&to(B, &out)[0]), Some(p::BUSY));

        let out = s.on_app_server_message(note("item/completed", "t1"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(to(B, &out).is_empty(), "notifications go to the owner only");
        // Another thread's completion does not end A's stream.
        let out = s.on_app_server_message(note("turn/completed", "other"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(s.busy());
        let out = s.on_app_server_message(note("turn/completed", "t1"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(!s.busy());
        // Unowned notifications go nowhere.
        let out = s.on_app_server_message(note("item/completed", "t1"), t0);
        assert!(out.is_empty());
    }

    #[test]
    fn review_streams_end_on_their_review_thread_too() {
        let (mut s, t0) = serving();
        let up = only_upstream(&s.on_client_message(
            A,
            req(1, "review/start", json!({"threadId": "t"})),
            t0,
        ));
        s.on_app_server_message(
            Message::ok(
                json!(up),
                json!({"reviewThreadId": "r", "turn": {"id": "x"}}),
            ),
            t0,
        );
        assert!(s.busy());
        s.on_app_server_message(note("turn/completed", "r"), t0);
        assert!(!s.busy());
    }

    #[test]
    fn another_client_may_interrupt_a_stream_but_not_a_request() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        let params = json!({"threadId": "t1", "turnId": "turn-t1"});
        let out = s.on_client_message(B, req(7, "turn/interrupt", params.clone()), t0);
        let up = only_upstream(&out);
        let out = s.on_app_server_message(Message::ok(json!(up), json!({})), t0);
        assert_eq!(to(B, &out), [json!({"id": 7, "result": {}})]);
        assert!(s.busy(), "the interrupt does not make B the owner");
        let out = s.on_app_server_message(note("turn/completed", "t1"), t0);
        assert_eq!(to(A, &out).len(), 1, "the stream's end goes to A");
        assert!(to(B, &out).is_empty());
        assert!(!s.busy());

        // While A has a request in flight, even an interrupt is refused.
        start_stream(&mut s, t0, A, "t2");
        only_upstream(&s.on_client_message(A, req(8, "thread/read", json!({})), t0));
        let out = s.on_client_message(B, req(9, "turn/interrupt", params), t0);
        assert_eq!(error_code(&to(B, &out)[0]), Some(p::BUSY));
    }

    #[test]
    fn refuses_the_app_servers_requests() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        let ask = Message::Request {
            id: json!(5),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "t1"})),
        };
        let out = s.on_app_server_message(ask, t0);
        assert!(to(A, &out).is_empty(), "never reaches a client");
        let Action::ToAppServer(Message::Response {
            id,
            outcome: Err(e),
        }) = &out[0]
        else {
            panic!("{out:?}");
        };
        assert_eq!(id, &json!(5));
        assert_eq!(e["code"], p::METHOD_NOT_FOUND);
    }

    #[test]
    fn a_disconnect_mid_stream_releases_and_interrupts_the_abandoned_turn() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        let out = s.on_disconnect(A, t0);
        assert!(!s.busy());
        let ups = upstream(&out);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].1, "turn/interrupt");
        // B takes over at once and never sees A's leftovers.
        s.on_connect(C, t0);
        start_stream(&mut s, t0, B, "t2");
        let out = s.on_app_server_message(note("item/completed", "t1"), t0);
        assert!(out.is_empty());
        let out = s.on_app_server_message(note("turn/completed", "t1"), t0);
        assert!(out.is_empty());
        assert!(s.busy(), "B's stream is untouched");
        let out = s.on_app_server_message(note("item/completed", "t2"), t0);
        assert_eq!(to(B, &out).len(), 1);
    }

    #[test]
    fn a_turn_whose_client_left_before_it_started_is_interrupted() {
        let (mut s, t0) = serving();
        let up = only_upstream(&s.on_client_message(
            A,
            req(1, "turn/start", json!({"threadId": "t1"})),
            t0,
        ));
        s.on_disconnect(A, t0);
        assert!(!s.busy());
        let out = s.on_app_server_message(Message::ok(json!(up), json!({"turn": {"id": "u"}})), t0);
        assert_eq!(upstream(&out)[0].1, "turn/interrupt");
        assert!(!s.busy());
        assert!(out.iter().all(|a| !matches!(a, Action::ToClient(..))));
    }

    #[test]
    fn status_is_answered_before_the_busy_gate() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        let out = s.on_client_message(B, req(3, "broker/status", json!({})), t0);
        let st = &to(B, &out)[0]["result"];
        assert_eq!(st["busy"], true);
        assert_eq!(st["broker"], "codex-as");
        assert_eq!(st["pid"], 10);
        assert_eq!(st["appServerPid"], 11);
        assert_eq!(st["codexHome"], "/h");
        assert_eq!(st["auth"]["method"], "api-key");
        assert_eq!(st["auth"]["fingerprint"], "sha256:0123456789abcdef");
        assert_eq!(st["connections"], 2);
        assert_eq!(st["idleSeconds"], 0);
        assert_eq!(st["endpoint"], "unix:/tmp/s");
        s.on_app_server_message(note("turn/completed", "t1"), t0);
        let later = t0 + std::time::Duration::from_secs(5);
        let out = s.on_client_message(B, req(4, "broker/status", json!({})), later);
        assert_eq!(to(B, &out)[0]["result"]["busy"], false);
        assert_eq!(to(B, &out)[0]["result"]["idleSeconds"], 5);
    }

    #[test]
    fn status_remembers_who_hit_the_usage_limit() {
        let (mut s, t0) = serving();
        s.set_peer_pid(A, 4242);
        start_stream(&mut s, t0, A, "t1");
        let failed = |info: Value| {
            Message::notification(
                "turn/completed",
                json!({"threadId": "t1", "turn": {"id": "turn-t1", "status": "failed",
                    "error": {"message": "You've hit your usage limit.", "codexErrorInfo": info}}}),
            )
        };
        s.on_app_server_message(failed(json!("other")), t0);
        let out = s.on_client_message(B, req(3, "broker/status", json!({})), t0);
        assert_eq!(to(B, &out)[0]["result"]["usageLimitHits"], json!([]));
        start_stream(&mut s, t0, A, "t1");
        s.on_app_server_message(failed(json!("usageLimitExceeded")), t0);
        let out = s.on_client_message(B, req(4, "broker/status", json!({})), t0);
        let hits = &to(B, &out)[0]["result"]["usageLimitHits"];
        assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
        assert_eq!(hits[0]["pid"], 4242);
        assert_eq!(hits[0]["threadId"], "t1");
        assert_eq!(hits[0]["turnId"], "turn-t1");
        assert_eq!(hits[0]["message"], "You've hit your usage limit.");
    }

    #[test]
    fn shutdown_if_idle_refuses_while_busy_and_stops_when_idle() {
        let (mut s, t0) = serving();
        start_stream(&mut s, t0, A, "t1");
        let if_idle = json!({"ifIdle": true});
        let out = s.on_client_message(B, req(1, "broker/shutdown", if_idle.clone()), t0);
        assert_eq!(
            to(B, &out),
            [json!({"id": 1, "result": {"shutdown": false, "busy": true}})]
        );
        assert_eq!(s.phase(), Phase::Serving);
        s.on_app_server_message(note("turn/completed", "t1"), t0);
        let out = s.on_client_message(B, req(2, "broker/shutdown", if_idle), t0);
        assert_eq!(to(B, &out)[0]["result"]["shutdown"], true);
        assert_eq!(
            out.last(),
            Some(&Action::Stop(StopReason::ShutdownRequested))
        );
    }

    #[test]
    fn plain_shutdown_stops_even_when_busy_and_fails_what_is_in_flight() {
        let (mut s, t0) = serving();
        only_upstream(&s.on_client_message(A, req(1, "thread/start", json!({})), t0));
        let out = s.on_client_message(B, req(2, "broker/shutdown", json!({})), t0);
        assert_eq!(to(B, &out), [json!({"id": 2, "result": {}})]);
        assert_eq!(error_code(&to(A, &out)[0]), Some(p::SERVER_ERROR));
        assert_eq!(
            out.last(),
            Some(&Action::Stop(StopReason::ShutdownRequested))
        );
        assert_eq!(s.phase(), Phase::Stopped);
        assert!(
            s.on_client_message(B, req(3, "account/read", json!({})), t0)
                .is_empty()
        );
    }

    #[test]
    fn app_server_death_fails_requests_in_flight() {
        let (mut s, t0) = serving();
        only_upstream(&s.on_client_message(A, req(1, "turn/start", json!({})), t0));
        let out = s.on_app_server_gone("codex app-server exited unexpectedly (exit 3).".into());
        let answer = &to(A, &out)[0];
        assert_eq!(answer["id"], 1);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exit 3")
        );
        assert!(matches!(
            out.last(),
            Some(Action::Stop(StopReason::AppServerGone(_)))
        ));
    }

    #[test]
    fn idle_means_no_client_and_nothing_in_flight() {
        let (mut s, t0) = serving();
        assert_eq!(s.idle_since(), None);
        let up = only_upstream(&s.on_client_message(A, req(1, "account/read", json!({})), t0));
        s.on_disconnect(A, t0);
        s.on_disconnect(B, t0);
        assert_eq!(s.idle_since(), None, "A's request is still in flight");
        let t1 = t0 + std::time::Duration::from_millis(5);
        s.on_app_server_message(Message::ok(json!(up), json!({})), t1);
        assert_eq!(s.idle_since(), Some(t1));
        s.on_connect(C, t1);
        assert_eq!(s.idle_since(), None);
    }

    #[test]
    fn draining_serves_queued_clients_then_stops() {
        let (mut s, t0) = serving();
        s.on_disconnect(B, t0);
        assert!(s.begin_draining(t0).is_empty(), "A is still connected");
        assert_eq!(s.phase(), Phase::Draining);
        let up = only_upstream(&s.on_client_message(A, req(1, "account/read", json!({})), t0));
        let out = s.on_app_server_message(Message::ok(json!(up), json!({})), t0);
        assert_eq!(to(A, &out)[0]["id"], 1, "a drained client is fully served");
        let out = s.on_disconnect(A, t0);
        assert_eq!(out, [Action::Stop(StopReason::IdleExit)]);

        let (mut s, t0) = serving();
        s.on_disconnect(A, t0);
        s.on_disconnect(B, t0);
        assert_eq!(s.begin_draining(t0), [Action::Stop(StopReason::IdleExit)]);
    }

    #[test]
    fn malformed_lines_get_a_parse_error() {
        let (mut s, t0) = serving();
        let out = s.on_client_message(A, Err("Invalid JSON: x".into()), t0);
        assert_eq!(to(A, &out)[0]["id"], Value::Null);
        assert_eq!(error_code(&to(A, &out)[0]), Some(p::PARSE_ERROR));
    }
}
