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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};

use super::protocol::{self as p, Message};
use crate::identity::Identity;

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
    out: Vec<Action>,
}

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
                Err(why) => self.to_client(client, Message::err(Value::Null, p::PARSE_ERROR, why)),
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
        if self.owner.as_ref().is_some_and(|o| o.client == client) {
            if let Some(owner) = self.owner.take() {
                for stream in owner.streams {
                    self.abandon(stream.threads, stream.turn_id);
                }
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
                return self.to_client(client, Message::ok(id, p::client_initialize_result()));
            }
            p::BROKER_STATUS => {
                let status = self.status(now);
                return self.to_client(client, Message::ok(id, status));
            }
            p::BROKER_SHUTDOWN => {
                let if_idle = params
                    .as_ref()
                    .and_then(|p| p.get("ifIdle"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if if_idle && self.busy() {
                    let refusal = json!({"shutdown": false, "busy": true});
                    return self.to_client(client, Message::ok(id, refusal));
                }
                let answer = if if_idle {
                    json!({"shutdown": true, "busy": false})
                } else {
                    json!({})
                };
                self.to_client(client, Message::ok(id, answer));
                return self.stop(StopReason::ShutdownRequested);
            }
            _ => {}
        }

        let owns = match &self.owner {
            Some(o) if o.client != client => {
                let interrupt_allowed =
                    method == p::TURN_INTERRUPT && !o.streams.is_empty() && o.in_flight == 0;
                if !interrupt_allowed {
                    return self.to_client(client, Message::err(id, p::BUSY, p::BUSY_MESSAGE));
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
                    self.to_client(client, Message::Response { id, outcome });
                }
            }
        }
    }

    fn notification(&mut self, method: String, params: Option<Value>) {
        let thread = p::str_param(params.as_ref(), "threadId").map(str::to_string);
        if let Some(t) = &thread {
            if self.orphan_threads.contains(t) {
                if method == p::TURN_COMPLETED {
                    self.orphan_threads.remove(t);
                }
                return;
            }
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
        self.to_client(target, Message::Notification { method, params });
        self.release_if_done();
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
        self.owner = None;
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

    fn to_client(&mut self, client: ClientId, msg: Message) {
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
