//! The broker's whole state and every rule about it, with no I/O: the event loop feeds it what
//! happened (a client connected, a line arrived, the app-server died...) and carries out the
//! actions it returns. One owner of the state means no locks, and every rule is testable here.
//!
//! The rules, written here only (the module docs of `broker` give the wire view):
//! - Any number of clients share the one app-server at once, up to `--max-clients`; those
//!   connected past it get `BUSY` for everything but status and shutdown, so a companion falls
//!   back to its own app-server on the same account. Each client's request ids are remapped to
//!   the broker's own counter and mapped back on the answer.
//! - A thread belongs to the clients that opened it (`thread/start`, `thread/resume`,
//!   `thread/fork`), started a turn or review on it, or own its parent (sub-agent threads). Its
//!   notifications and server requests go to those clients only; a thread nobody owns is silent.
//! - Thread-less notifications go to every client with work in flight (a request or a turn),
//!   as the plugin's broker sends them to its one owner; with none, they are dropped.
//! - Server requests go to the client running the thread's turn (else another owner); with no
//!   owner connected they get the plugin broker's refusal, `METHOD_NOT_FOUND`, except on a
//!   shared listener ([`AppServerKind::Listener`]), where they are another client's to answer
//!   and get nothing from the broker.
//! - `turn/interrupt` from any client is forwarded (`cancel` runs in another process than the
//!   task it stops); on a shared listener, only for a turn one of the broker's clients started.
//!   Only [`p::EXCLUSIVE_METHODS`] get `BUSY`, unless their client is alone.
//! - A client that disconnects takes only its own work with it: a turn no connected client owns
//!   any more is interrupted (nobody can read it, and the account would keep paying for it);
//!   every other client's threads are untouched.
//! - If the app-server dies, every request in flight gets an error and every client with a turn
//!   running the failed-turn ending (an `error`, then `turn/completed` with status `failed`).
//!   A broker that stops with turns running on a shared listener interrupts them first (a
//!   child's would end with it).
//! - `broker/shutdown`, with or without `ifIdle`, stops only an idle broker (the asking client
//!   aside), judged when it is acted on; one past its `deadlineMs` is void.
//!
//! Four words for how much goes on, each with one meaning:
//! - **quiet**: no request and no turn in flight, clients connected or not. `idleSeconds` in
//!   `broker/status` counts from then.
//! - **alone** (for a client): quiet, and no other client connected. What an exclusive method
//!   needs.
//! - **unused**: quiet, and no client connected at all. `--idle-exit` counts from then (and
//!   stops the broker only if no lease holds it: the event loop asks); a draining broker stops
//!   once unused.
//! - **idle** (for the asker): alone, and no lease held. `busy` in `broker/status` is its
//!   opposite, and `broker/shutdown` stops only an idle broker.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// What clients with work in flight are told.
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

/// Which app-server the broker serves its clients through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppServerKind {
    /// Its own `codex app-server` child: nobody else talks to it.
    #[default]
    Child,
    /// The account's own Codex listener, shared with other clients (a TUI): their threads,
    /// turns and approvals are theirs, and the listener outlives the broker.
    Listener,
    /// A listener codex-as started for the home, shared like any other; stopped when its
    /// last broker leaves and nobody else is connected to it.
    OwnListener,
}

impl AppServerKind {
    /// As `broker/status` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppServerKind::Child => "child",
            AppServerKind::Listener => "listener",
            AppServerKind::OwnListener => "codex-as-listener",
        }
    }
}

/// Bounds that keep one broker's cost fixed however many clients come.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients served at once; the next ones (a few: the event loop holds no more) get `BUSY`
    /// for every request but status and shutdown, so a companion falls back to its own
    /// app-server (same account).
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_clients: 64 }
    }
}

/// How many distinct workspaces `broker/status` remembers having served.
const WORKSPACES_REMEMBERED: usize = 64;
/// How many usage-limit failures `broker/status` remembers.
const USAGE_LIMIT_HITS: usize = 32;

#[derive(Debug)]
enum Origin {
    Client {
        client: ClientId,
        id: Value,
        method: String,
        thread: Option<String>,
        cwd: Option<String>,
        exclusive: bool,
    },
    Initialize,
    /// The broker's own interrupt of a turn nobody owns any more.
    OrphanInterrupt,
    /// The broker's own `thread/unsubscribe` of a thread no client owns any more.
    Release,
    /// The broker's own `thread/loaded/list` on a shared listener: threads other clients opened
    /// before it connected are open too.
    LoadedList,
}

#[derive(Debug, Default)]
struct Client {
    peer_pid: Option<u32>,
    /// Connected past the cap: answered `BUSY` for everything but status and shutdown.
    over_cap: bool,
    /// Requests of this client the app-server has not answered yet.
    in_flight: usize,
}

#[derive(Debug, Default)]
struct Thread {
    owners: BTreeSet<ClientId>,
    /// The turn running on it (a streaming request was accepted), until its `turn/completed`.
    turn: Option<Turn>,
}

#[derive(Debug, Clone)]
struct Turn {
    /// None until known (a compaction's answer may not name it).
    id: Option<String>,
    /// Who started it: its server requests go there first.
    starter: ClientId,
}

#[derive(Debug)]
pub struct State {
    phase: Phase,
    facts: Facts,
    limits: Limits,
    clients: BTreeMap<ClientId, Client>,
    threads: HashMap<String, Thread>,
    /// Requests sent to the app-server, by the id the broker gave them.
    pending: HashMap<u64, Origin>,
    next_id: u64,
    /// Server requests handed to a client: the id the client saw -> (client, the app-server's id).
    server_requests: HashMap<u64, (ClientId, Value)>,
    next_server_request: u64,
    /// A client running an exclusive request: everyone else's requests wait as `BUSY`.
    exclusive: Option<ClientId>,
    /// Since when the broker is unused (see the module docs).
    unused_since: Option<Instant>,
    /// Since when the broker is quiet (None while it is not).
    quiet_since: Option<Instant>,
    /// Wall clock at `clock_base`, to judge `deadlineMs` by the monotonic clock.
    wall_base_ms: u64,
    clock_base: Instant,
    /// Whether a Claude Code session's lease holds the broker up; refreshed by the event loop.
    lease_held: bool,
    workspaces: BTreeSet<String>,
    /// Threads the app-server has open (opened through it, until its `thread/closed`): its
    /// copy of one is in memory, so a newer copy carried under it would not be seen.
    loaded: HashSet<String>,
    /// The latest turns that failed for the account's usage limit, newest last, for
    /// `broker/status`: codex-as's fallback asks after its companion exits, because the
    /// companion itself keeps only the message text.
    usage_limit_hits: VecDeque<p::UsageLimitHit>,
    app_server: AppServerKind,
    /// What the app-server said it is (`userAgent` of its `initialize` answer).
    user_agent: Option<String>,
    out: Vec<Action>,
}

impl State {
    #[cfg(test)]
    pub fn new(facts: Facts, now: Instant) -> (State, Vec<Action>) {
        State::with_limits(facts, Limits::default(), now)
    }

    /// A broker whose app-server was just spawned; the actions start its initialization.
    pub fn with_limits(facts: Facts, limits: Limits, now: Instant) -> (State, Vec<Action>) {
        let wall_base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut s = State {
            phase: Phase::Starting,
            facts,
            limits,
            clients: BTreeMap::new(),
            threads: HashMap::new(),
            pending: HashMap::new(),
            next_id: 1,
            server_requests: HashMap::new(),
            next_server_request: 1,
            exclusive: None,
            unused_since: None,
            quiet_since: Some(now),
            wall_base_ms,
            clock_base: now,
            lease_held: false,
            workspaces: BTreeSet::new(),
            loaded: HashSet::new(),
            usage_limit_hits: VecDeque::new(),
            app_server: AppServerKind::Child,
            user_agent: None,
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

    /// Whether the app-server has thread `id` open (see `loaded`).
    pub fn is_loaded(&self, id: &str) -> bool {
        self.loaded.contains(id)
    }

    fn is_quiet(&self) -> bool {
        !self.requests_in_flight() && self.turns_in_flight() == 0
    }

    /// Quiet, and no client but `asker` (if any) connected.
    fn alone(&self, asker: Option<ClientId>) -> bool {
        let others = self.clients.keys().any(|c| Some(*c) != asker);
        !others && self.is_quiet()
    }

    /// What `busy: false` and a granted shutdown mean: alone, and no lease holds the broker.
    fn idle_for(&self, asker: Option<ClientId>) -> bool {
        self.alone(asker) && !self.lease_held
    }

    /// Quiet, and no client connected (leases are the event loop's to check).
    pub fn is_unused(&self) -> bool {
        self.clients.is_empty() && self.is_quiet()
    }

    pub fn unused_since(&self) -> Option<Instant> {
        self.unused_since
    }

    /// The `--idle-exit` deadline passed while a lease holds the broker: count unused time from
    /// `now` again.
    pub fn restart_unused_clock(&mut self, now: Instant) {
        if self.unused_since.is_some() {
            self.unused_since = Some(now);
        }
    }

    pub fn set_lease_held(&mut self, held: bool) {
        self.lease_held = held;
    }

    /// Requests the app-server has not answered, but the broker's own releases: nobody waits
    /// for those, and a broker that stops before their answer loses nothing.
    fn requests_in_flight(&self) -> bool {
        self.pending
            .values()
            .any(|o| !matches!(o, Origin::Release | Origin::LoadedList))
    }

    fn turns_in_flight(&self) -> usize {
        self.threads.values().filter(|t| t.turn.is_some()).count()
    }

    /// Which app-server the broker speaks to; set before its first line arrives.
    pub fn set_app_server_kind(&mut self, kind: AppServerKind) {
        self.app_server = kind;
    }

    fn shares_app_server(&self) -> bool {
        matches!(
            self.app_server,
            AppServerKind::Listener | AppServerKind::OwnListener
        )
    }

    /// The identity is settled once the app-server has started (it may create the home).
    pub fn set_identity(&mut self, identity: Identity) {
        self.facts.identity = identity;
    }

    /// The process behind a client, as its socket reports it.
    pub fn set_peer_pid(&mut self, client: ClientId, pid: u32) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.peer_pid = Some(pid);
        }
    }

    pub fn on_connect(&mut self, client: ClientId, now: Instant) {
        let over_cap =
            self.clients.values().filter(|c| !c.over_cap).count() >= self.limits.max_clients;
        self.clients.insert(
            client,
            Client {
                over_cap,
                ..Client::default()
            },
        );
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
        if self.accepts_clients() && self.clients.contains_key(&client) {
            match msg {
                Err(why) => self.send_to(client, Message::err(Value::Null, p::PARSE_ERROR, why)),
                Ok(Message::Request { id, method, params }) => {
                    self.client_request(client, id, method, params, now)
                }
                Ok(Message::Response { id, outcome }) => self.client_answer(client, id, outcome),
                // `initialized` and other notifications: nothing to do, like the plugin's broker.
                Ok(Message::Notification { .. }) => {}
            }
        }
        self.touch(now);
        self.take()
    }

    pub fn on_disconnect(&mut self, client: ClientId, now: Instant) -> Vec<Action> {
        if self.clients.remove(&client).is_some() {
            if self.exclusive == Some(client) {
                self.exclusive = None;
            }
            // Questions it will never answer: refuse them as the plugin's broker would have.
            let unanswered: Vec<u64> = self
                .server_requests
                .iter()
                .filter(|(_, (c, _))| *c == client)
                .map(|(n, _)| *n)
                .collect();
            for n in unanswered {
                if let Some((_, app_id)) = self.server_requests.remove(&n) {
                    self.refuse_server_request(app_id, "the client that owned the thread left");
                }
            }
            let mut abandoned = Vec::new();
            let mut released = Vec::new();
            self.threads.retain(|id, t| {
                t.owners.remove(&client);
                if !t.owners.is_empty() {
                    return true;
                }
                match &t.turn {
                    Some(turn) => {
                        abandoned.push((id.clone(), turn.id.clone()));
                        true
                    }
                    None => {
                        released.push(id.clone());
                        false
                    }
                }
            });
            abandoned.sort();
            for (thread, turn) in abandoned {
                self.interrupt_orphan(&thread, turn);
            }
            released.sort();
            for thread in released {
                self.release(&thread);
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
                Message::Request { id, method, params } => self.server_request(id, method, params),
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

    /// A signal, or the `--idle-exit` deadline (the caller checked `is_unused` in the same loop
    /// turn).
    pub fn on_stop(&mut self, reason: StopReason) -> Vec<Action> {
        self.stop(reason);
        self.take()
    }

    /// `broker/status` as `asker` sees it (None: from outside any client).
    pub fn status(&self, asker: Option<ClientId>, now: Instant) -> p::Status {
        let f = &self.facts;
        // The wire's `idleSeconds` is quiet time (see the module docs).
        let quiet_seconds = match self.quiet_since {
            Some(t) => now.saturating_duration_since(t).as_secs(),
            None => 0,
        };
        let others = self.clients.keys().filter(|c| Some(**c) != asker).count();
        let mut threads: Vec<String> = self
            .threads
            .iter()
            .filter(|(_, t)| t.turn.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        threads.sort();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let requests = self
            .pending
            .values()
            .filter(|o| matches!(o, Origin::Client { .. }))
            .count();
        let method = serde_json::to_value(f.identity.auth.method)
            .ok()
            .and_then(|m| m.as_str().map(str::to_string));
        p::Status {
            busy: !self.idle_for(asker),
            broker: Some("codex-as".into()),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            pid: Some(f.pid),
            app_server_pid: Some(f.app_server_pid),
            codex_home: Some(f.identity.codex_home.to_string_lossy().into_owned()),
            auth: Some(p::AuthStatus {
                method,
                fingerprint: f.identity.auth.fingerprint.clone(),
            }),
            started_at: Some(f.started_at),
            connections: Some(count(self.clients.len())),
            clients: Some(count(others)),
            max_clients: Some(count(self.limits.max_clients)),
            requests_in_flight: Some(count(requests)),
            threads_in_flight: Some(count(threads.len())),
            threads,
            workspaces: self.workspaces.iter().cloned().collect(),
            lease_held: Some(self.lease_held),
            idle_seconds: Some(quiet_seconds),
            cwd: Some(f.cwd.clone()),
            endpoint: Some(f.endpoint.clone()),
            usage_limit_hits: self.usage_limit_hits.iter().cloned().collect(),
            app_server: Some(self.app_server.as_str().into()),
            app_server_user_agent: Some(self.user_agent.clone().unwrap_or_default()),
            open_threads: {
                let mut open: Vec<String> = self.loaded.iter().cloned().collect();
                open.sort();
                open
            },
        }
    }

    // ---- rules ----

    fn accepts_clients(&self) -> bool {
        matches!(self.phase, Phase::Serving | Phase::Draining)
    }

    fn wall_ms(&self, now: Instant) -> u64 {
        self.wall_base_ms + now.saturating_duration_since(self.clock_base).as_millis() as u64
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
                let status = serde_json::to_value(self.status(Some(client), now));
                return self.send_to(client, Message::ok(id, status.unwrap_or_default()));
            }
            p::BROKER_SHUTDOWN => return self.shutdown_request(client, id, params.as_ref(), now),
            _ => {}
        }
        let over_cap = self.clients.get(&client).is_some_and(|c| c.over_cap);
        if over_cap {
            let why = format!(
                "{} (it serves {} clients at most)",
                p::BUSY_MESSAGE,
                self.limits.max_clients
            );
            return self.send_to(client, Message::err(id, p::BUSY, why));
        }
        if method == p::TURN_INTERRUPT
            && self.shares_app_server()
            && !self.runs_our_turn(params.as_ref())
        {
            let why = "codex-as's broker interrupts only turns its own clients started; this one is another client's of the shared Codex app-server (or not running)";
            return self.send_to(client, Message::err(id, p::SERVER_ERROR, why));
        }
        let exclusive = p::is_exclusive(&method);
        let blocked = match self.exclusive {
            Some(holder) => holder != client,
            None => exclusive && !self.alone(Some(client)),
        };
        if blocked {
            return self.send_to(client, Message::err(id, p::BUSY, p::BUSY_MESSAGE));
        }
        if exclusive {
            self.exclusive = Some(client);
        }
        if let Some(c) = self.clients.get_mut(&client) {
            c.in_flight += 1;
        }
        let thread = p::str_param(params.as_ref(), "threadId").map(str::to_string);
        let cwd = p::str_param(params.as_ref(), "cwd").map(str::to_string);
        if let Some(t) = &thread
            && p::STREAMING_METHODS.contains(&method.as_str())
        {
            // Whoever runs a turn on a thread reads it, even without having opened it here.
            self.threads
                .entry(t.clone())
                .or_default()
                .owners
                .insert(client);
        }
        let params = params.unwrap_or_else(|| json!({}));
        let origin = Origin::Client {
            client,
            id,
            method: method.clone(),
            thread,
            cwd,
            exclusive,
        };
        self.send_upstream(origin, &method, params);
    }

    /// `broker/shutdown`, judged now against the state now. A request past its `deadlineMs`
    /// (unix milliseconds, set by codex-as's own clients) was given up by its sender: a broker
    /// that was stopped (SIGSTOP) or starved reads it late, when the sender already reported
    /// the broker as hung and left it alone, so it is void. Without `ifIdle` (the plugin's
    /// SessionEnd sends it plain) the answer is the plugin's `{}`, and the broker still stops
    /// only when idle: it serves other sessions' work.
    fn shutdown_request(
        &mut self,
        client: ClientId,
        id: Value,
        params: Option<&Value>,
        now: Instant,
    ) {
        let if_idle = params
            .and_then(|p| p.get("ifIdle"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let deadline = params
            .and_then(|p| p.get("deadlineMs"))
            .and_then(Value::as_u64);
        let expired = deadline.is_some_and(|d| self.wall_ms(now) > d);
        let idle = self.idle_for(Some(client));
        let stop = idle && !expired;
        let answer = match (if_idle, expired) {
            (false, _) => json!({}),
            (true, true) => json!({"shutdown": false, "busy": !idle, "expired": true}),
            (true, false) => json!({"shutdown": stop, "busy": !idle}),
        };
        self.send_to(client, Message::ok(id, answer));
        if stop {
            self.stop(StopReason::ShutdownRequested);
        }
    }

    /// A client's answer to a server request the broker handed it.
    fn client_answer(&mut self, client: ClientId, id: Value, outcome: Result<Value, Value>) {
        let Some(n) = id.as_u64() else { return };
        if self
            .server_requests
            .get(&n)
            .is_some_and(|(c, _)| *c == client)
            && let Some((_, app_id)) = self.server_requests.remove(&n)
        {
            self.out.push(Action::ToAppServer(Message::Response {
                id: app_id,
                outcome,
            }));
        }
    }

    fn server_request(&mut self, id: Value, method: String, params: Option<Value>) {
        let target = p::thread_of(params.as_ref())
            .and_then(|t| self.threads.get(t))
            .and_then(|t| {
                let starter = t.turn.as_ref().map(|turn| turn.starter);
                starter
                    .filter(|s| t.owners.contains(s))
                    .or_else(|| t.owners.iter().next().copied())
            })
            .filter(|c| self.clients.contains_key(c));
        let Some(client) = target else {
            if self.shares_app_server() {
                // Another client's question (a TUI's approval): an answer from here, even a
                // refusal, would be taken as theirs.
                return;
            }
            return self
                .refuse_server_request(id, &format!("Unsupported server request: {method}"));
        };
        let n = self.next_server_request;
        self.next_server_request += 1;
        self.server_requests.insert(n, (client, id));
        self.send_to(
            client,
            Message::Request {
                id: Value::from(n),
                method,
                params,
            },
        );
    }

    fn refuse_server_request(&mut self, id: Value, message: &str) {
        let message = if message.starts_with("Unsupported") {
            message.to_string()
        } else {
            format!("Unsupported server request: {message}")
        };
        self.out.push(Action::ToAppServer(Message::err(
            id,
            p::METHOD_NOT_FOUND,
            message,
        )));
    }

    fn app_server_response(&mut self, id: Value, outcome: Result<Value, Value>) {
        let Some(origin) = id.as_u64().and_then(|n| self.pending.remove(&n)) else {
            return;
        };
        match origin {
            Origin::Initialize => match outcome {
                Ok(result) if self.phase == Phase::Starting => {
                    self.phase = Phase::Serving;
                    self.user_agent = result
                        .get("userAgent")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    self.out.push(Action::Ready(result));
                    self.out.push(Action::ToAppServer(Message::notification(
                        p::INITIALIZED,
                        json!({}),
                    )));
                    if self.shares_app_server() {
                        self.send_upstream(Origin::LoadedList, p::THREAD_LOADED_LIST, json!({}));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let why = e.get("message").and_then(Value::as_str).unwrap_or("error");
                    self.stop(StopReason::InitFailed(format!(
                        "codex app-server refused initialize: {why}"
                    )));
                }
            },
            Origin::OrphanInterrupt | Origin::Release => {}
            Origin::LoadedList => {
                let ids = outcome.ok();
                let ids = ids
                    .as_ref()
                    .and_then(|r| r.get("data"))
                    .and_then(Value::as_array);
                for id in ids.into_iter().flatten().filter_map(Value::as_str) {
                    self.loaded.insert(id.to_string());
                }
            }
            Origin::Client {
                client,
                id,
                method,
                thread,
                cwd,
                exclusive,
            } => {
                if exclusive && self.exclusive == Some(client) {
                    self.exclusive = None;
                }
                let connected = match self.clients.get_mut(&client) {
                    Some(c) => {
                        c.in_flight = c.in_flight.saturating_sub(1);
                        true
                    }
                    None => false,
                };
                if let Ok(result) = &outcome {
                    self.learn(client, connected, &method, thread, cwd, result);
                }
                if connected {
                    self.send_to(client, Message::Response { id, outcome });
                }
            }
        }
    }

    /// What a successful answer teaches: who owns which thread, which turn runs where.
    fn learn(
        &mut self,
        client: ClientId,
        connected: bool,
        method: &str,
        thread: Option<String>,
        cwd: Option<String>,
        result: &Value,
    ) {
        if p::THREAD_OPENING_METHODS.contains(&method) {
            let Some(opened) = result.pointer("/thread/id").and_then(Value::as_str) else {
                return;
            };
            self.loaded.insert(opened.to_string());
            let cwd = result
                .get("cwd")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(cwd);
            if let Some(cwd) = cwd
                && (self.workspaces.len() < WORKSPACES_REMEMBERED || self.workspaces.contains(&cwd))
            {
                self.workspaces.insert(cwd);
            }
            if connected {
                let t = self.threads.entry(opened.to_string()).or_default();
                t.owners.insert(client);
            } else if self.threads.get(opened).is_none_or(|t| t.owners.is_empty()) {
                // Its client left before the answer: nobody will use it.
                self.release(opened);
            }
            return;
        }
        if !p::STREAMING_METHODS.contains(&method) {
            return;
        }
        let Some(thread) = thread else { return };
        let turn_id = result
            .pointer("/turn/id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let turn = Turn {
            id: turn_id.clone(),
            starter: client,
        };
        // A detached review runs its turn on a thread of its own: its events and its
        // `turn/completed` name that thread only, so the turn is marked there and not on the
        // thread it was asked on (which would otherwise wait for an end that never comes, and
        // the broker would never be quiet again).
        let review = result
            .get("reviewThreadId")
            .and_then(Value::as_str)
            .filter(|r| *r != thread)
            .map(str::to_string);
        let owners = self
            .threads
            .get(&thread)
            .map(|t| t.owners.clone())
            .unwrap_or_default();
        let runs_on = review.unwrap_or_else(|| thread.clone());
        if !connected && let Some(t) = self.threads.get_mut(&thread) {
            t.owners.remove(&client);
        }
        let entry = self.threads.entry(runs_on.clone()).or_default();
        entry.owners.extend(owners.iter().copied());
        entry.turn = Some(turn);
        if !connected {
            entry.owners.remove(&client);
        }
        if entry.owners.is_empty() {
            // Its client left before the turn even started.
            self.interrupt_orphan(&runs_on, turn_id);
        }
    }

    fn notification(&mut self, method: String, params: Option<Value>) {
        let Some(thread) = p::thread_of(params.as_ref()).map(str::to_string) else {
            // Thread-less: to whoever has work in flight, as the plugin's broker does.
            let targets: Vec<ClientId> = self
                .clients
                .iter()
                .filter(|(id, c)| c.in_flight > 0 || self.runs_a_turn(**id))
                .map(|(id, _)| *id)
                .collect();
            for c in targets {
                self.send_to(
                    c,
                    Message::Notification {
                        method: method.clone(),
                        params: params.clone(),
                    },
                );
            }
            return;
        };
        if method == p::THREAD_CLOSED {
            self.loaded.remove(&thread);
        } else if method == p::THREAD_STARTED {
            self.loaded.insert(thread.clone());
        }
        if method == p::THREAD_STARTED && !self.threads.contains_key(&thread) {
            // A sub-agent's (or fork's) thread belongs to the owners of the thread it came from.
            let parent = ["parentThreadId", "forkedFromId"]
                .iter()
                .find_map(|k| params.as_ref()?.pointer(&format!("/thread/{k}"))?.as_str())
                .and_then(|parent| self.threads.get(parent))
                .map(|t| t.owners.clone());
            if let Some(owners) = parent.filter(|o| !o.is_empty()) {
                self.threads.entry(thread.clone()).or_default().owners = owners;
            }
        }
        let Some(t) = self.threads.get_mut(&thread) else {
            return;
        };
        let owners: Vec<ClientId> = t.owners.iter().copied().collect();
        if method == p::TURN_COMPLETED {
            let ended = params
                .as_ref()
                .and_then(|p| p.pointer("/turn/id"))
                .and_then(Value::as_str);
            let matches = match (&t.turn, ended) {
                (
                    Some(Turn {
                        id: Some(running), ..
                    }),
                    Some(ended),
                ) => running == ended,
                _ => true,
            };
            if matches {
                let starter = t.turn.take().map(|turn| turn.starter);
                if let Some(starter) = starter {
                    self.note_usage_limit(starter, &thread, params.as_ref());
                }
                if owners.is_empty() {
                    self.threads.remove(&thread);
                    self.release(&thread);
                }
            }
        }
        for c in owners {
            self.send_to(
                c,
                Message::Notification {
                    method: method.clone(),
                    params: params.clone(),
                },
            );
        }
    }

    /// Whether the turn a `turn/interrupt` names runs on a thread one of the broker's clients
    /// started it on (its id matching, when both are known).
    fn runs_our_turn(&self, params: Option<&Value>) -> bool {
        let Some(turn) = p::str_param(params, "threadId")
            .and_then(|t| self.threads.get(t))
            .and_then(|t| t.turn.as_ref())
        else {
            return false;
        };
        match (&turn.id, p::str_param(params, "turnId")) {
            (Some(ours), Some(asked)) => ours == asked,
            _ => true,
        }
    }

    fn runs_a_turn(&self, client: ClientId) -> bool {
        self.threads
            .values()
            .any(|t| t.turn.is_some() && t.owners.contains(&client))
    }

    /// Remembers a turn that failed for the account's usage limit.
    fn note_usage_limit(&mut self, client: ClientId, thread: &str, params: Option<&Value>) {
        if !p::is_usage_limit_turn(params) {
            return;
        }
        let turn = params.and_then(|v| v.get("turn"));
        let text = |pointer: &str| {
            turn.and_then(|t| t.pointer(pointer))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if self.usage_limit_hits.len() >= USAGE_LIMIT_HITS {
            self.usage_limit_hits.pop_front();
        }
        self.usage_limit_hits.push_back(p::UsageLimitHit {
            pid: self.clients.get(&client).and_then(|c| c.peer_pid),
            thread_id: Some(thread.to_string()),
            turn_id: text("/id"),
            message: text("/error/message"),
        });
    }

    /// A turn no connected client owns: stop it. Its thread stays known (owned by nobody, so
    /// silent) until its `turn/completed`.
    /// Lets the app-server unload a thread no client owns any more (60 s later it says
    /// `thread/closed`): the broker's one connection would otherwise keep every thread it ever
    /// opened loaded, and a newer copy of it from another account could never be carried in.
    fn release(&mut self, thread: &str) {
        if self.loaded.contains(thread) {
            let params = json!({"threadId": thread});
            self.send_upstream(Origin::Release, p::THREAD_UNSUBSCRIBE, params);
        }
    }

    fn interrupt_orphan(&mut self, thread: &str, turn: Option<String>) {
        if let Some(turn) = turn {
            let params = json!({"threadId": thread, "turnId": turn});
            self.send_upstream(Origin::OrphanInterrupt, p::TURN_INTERRUPT, params);
        }
    }

    fn check_drained(&mut self) {
        if self.phase == Phase::Draining && self.is_unused() {
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
            if self.clients.contains_key(&client) {
                let answer = Message::err(id, p::SERVER_ERROR, message.clone());
                self.out.push(Action::ToClient(client, answer));
            }
        }
        // A client whose turn was already accepted waits for its stream, not for an answer: end
        // every running turn as Codex ends a failed one, for each of its clients, so each
        // reports a failure instead of seeing a closed socket (on which the plugin's companion
        // exits 0 with nothing said).
        let mut running: Vec<(String, Thread)> = self.threads.drain().collect();
        running.sort_by(|a, b| a.0.cmp(&b.0));
        let upstream_alive = !matches!(
            reason,
            StopReason::AppServerGone(_) | StopReason::InitFailed(_)
        );
        for (thread, t) in running {
            let Some(Turn {
                id: Some(turn_id), ..
            }) = &t.turn
            else {
                continue;
            };
            if self.shares_app_server() && upstream_alive {
                // A child dies with the broker and its turns with it; a listener would run
                // this turn on, for nobody, at the account's cost.
                let params = json!({"threadId": thread, "turnId": turn_id});
                self.send_upstream(Origin::OrphanInterrupt, p::TURN_INTERRUPT, params);
            }
            for c in &t.owners {
                if self.clients.contains_key(c) {
                    for msg in failed_turn(&thread, turn_id, &message) {
                        self.out.push(Action::ToClient(*c, msg));
                    }
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
        self.unused_since = if self.is_unused() && self.phase != Phase::Starting {
            self.unused_since.or(Some(now))
        } else {
            None
        };
        self.quiet_since = if self.is_quiet() {
            self.quiet_since.or(Some(now))
        } else {
            None
        };
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
}

/// How long a `broker/shutdown` sent by codex-as stays valid: past it, its sender has given up.
pub fn shutdown_deadline_ms(timeout: Duration) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d + timeout).as_millis() as u64)
}

/// The `error` notification and failed `turn/completed` that Codex sends when a turn fails, for
/// a turn the broker has to end itself.
fn failed_turn(thread: &str, turn_id: &str, message: &str) -> Vec<Message> {
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

    fn turn_completed(thread: &str, turn: &str) -> Message {
        Message::notification(
            "turn/completed",
            json!({"threadId": thread, "turn": {"id": turn, "status": "completed"}}),
        )
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
    fn knows_which_threads_its_app_server_has_open() {
        let (mut s, t0) = serving();
        let up = only_upstream(&s.on_client_message(
            A,
            req(3, "thread/resume", json!({"threadId": "t1"})),
            t0,
        ));
        assert!(!s.is_loaded("t1"), "not before the app-server opened it");
        s.on_app_server_message(Message::ok(json!(up), json!({"thread": {"id": "t1"}})), t0);
        assert!(s.is_loaded("t1"));
        // Its last client leaves: the broker lets the app-server unload it; it stays open
        // until the app-server says it closed.
        let out = s.on_disconnect(A, t0);
        assert_eq!(
            upstream(&out)
                .iter()
                .map(|u| u.1.as_str())
                .collect::<Vec<_>>(),
            ["thread/unsubscribe"]
        );
        assert!(s.is_loaded("t1"));
        let up = only_upstream(&out);
        let out = s.on_app_server_message(
            Message::ok(json!(up), json!({"status": "unsubscribed"})),
            t0,
        );
        assert!(to(B, &out).is_empty(), "the broker's own request");
        s.on_app_server_message(note("thread/closed", "t1"), t0);
        assert!(!s.is_loaded("t1"));
        s.on_app_server_message(
            Message::notification("thread/started", json!({"thread": {"id": "t2"}})),
            t0,
        );
        assert!(s.is_loaded("t2"));
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
        assert_eq!(s.unused_since(), None, "not unused before ready");
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

    /// A opens thread `t` (the app-server answers with it).
    fn open_thread(s: &mut State, t0: Instant, client: ClientId, thread: &str, cwd: &str) {
        let up = only_upstream(&s.on_client_message(
            client,
            req(40, "thread/start", json!({"cwd": cwd})),
            t0,
        ));
        let out = s.on_app_server_message(
            Message::ok(json!(up), json!({"thread": {"id": thread}, "cwd": cwd})),
            t0,
        );
        assert_eq!(to(client, &out)[0]["result"]["thread"]["id"], thread);
    }

    fn status_of(s: &mut State, client: ClientId, t: Instant) -> Value {
        let out = s.on_client_message(client, req(99, "broker/status", json!({})), t);
        to(client, &out)[0]["result"].clone()
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
    fn remaps_ids_so_concurrent_clients_never_collide() {
        let (mut s, t0) = serving();
        let up_a = only_upstream(&s.on_client_message(A, req(1, "account/read", json!({})), t0));
        let up_b = only_upstream(&s.on_client_message(B, req(1, "account/read", json!({})), t0));
        let up_a2 = only_upstream(&s.on_client_message(A, req(2, "config/read", json!({})), t0));
        assert!(up_a != up_b && up_a != up_a2 && up_b != up_a2);
        let out = s.on_app_server_message(Message::ok(json!(up_b), json!("for b")), t0);
        assert_eq!(to(B, &out), [json!({"id": 1, "result": "for b"})]);
        assert!(to(A, &out).is_empty());
        let err = json!({"code": -32600, "message": "bad", "data": {"x": 1}});
        let out = s.on_app_server_message(
            Message::Response {
                id: json!(up_a2),
                outcome: Err(err.clone()),
            },
            t0,
        );
        assert_eq!(to(A, &out), [json!({"id": 2, "error": err})]);
        let out = s.on_app_server_message(Message::ok(json!(up_a), json!("for a")), t0);
        assert_eq!(to(A, &out), [json!({"id": 1, "result": "for a"})]);
    }

    #[test]
    fn turns_of_different_clients_run_at_once_and_each_hears_only_its_own() {
        let (mut s, t0) = serving();
        s.on_connect(C, t0);
        open_thread(&mut s, t0, A, "ta", "/w/a");
        open_thread(&mut s, t0, B, "tb", "/w/b");
        start_stream(&mut s, t0, A, "ta");
        start_stream(&mut s, t0, B, "tb");
        let out = s.on_app_server_message(note("item/completed", "ta"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(to(B, &out).is_empty());
        let out = s.on_app_server_message(note("item/completed", "tb"), t0);
        assert_eq!(to(B, &out).len(), 1);
        assert!(to(A, &out).is_empty());
        // Another client's thread/started is never shown to A (the companion would adopt it).
        let out = s.on_app_server_message(
            Message::notification("thread/started", json!({"thread": {"id": "tb"}})),
            t0,
        );
        assert!(to(A, &out).is_empty());
        assert_eq!(to(B, &out).len(), 1);
        // Unknown threads go nowhere.
        assert!(
            s.on_app_server_message(note("item/completed", "zz"), t0)
                .is_empty()
        );
        let st = status_of(&mut s, C, t0);
        assert_eq!(st["threadsInFlight"], 2);
        assert_eq!(st["busy"], true);
        assert_eq!(st["workspaces"], json!(["/w/a", "/w/b"]));
        let out = s.on_app_server_message(turn_completed("ta", "turn-ta"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert_eq!(status_of(&mut s, C, t0)["threadsInFlight"], 1);
    }

    #[test]
    fn a_sub_agent_thread_belongs_to_the_owners_of_its_parent() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "ta", "/w");
        start_stream(&mut s, t0, A, "ta");
        let started = json!({"thread": {"id": "child", "parentThreadId": "ta"}});
        let out = s.on_app_server_message(Message::notification("thread/started", started), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(to(B, &out).is_empty());
        let out = s.on_app_server_message(note("item/completed", "child"), t0);
        assert_eq!(to(A, &out).len(), 1);
    }

    #[test]
    fn thread_less_notifications_go_to_clients_with_work_in_flight() {
        let (mut s, t0) = serving();
        s.on_connect(C, t0);
        open_thread(&mut s, t0, A, "ta", "/w");
        start_stream(&mut s, t0, A, "ta");
        only_upstream(&s.on_client_message(B, req(1, "account/read", json!({})), t0));
        let out = s.on_app_server_message(
            Message::notification("account/rateLimits/updated", json!({"rateLimits": {}})),
            t0,
        );
        assert_eq!(to(A, &out).len(), 1);
        assert_eq!(to(B, &out).len(), 1);
        assert!(to(C, &out).is_empty(), "C has nothing in flight");
    }

    #[test]
    fn any_client_may_interrupt_any_turn_and_its_owner_hears_the_end() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        // A request of A's in flight does not block B's interrupt either.
        only_upstream(&s.on_client_message(A, req(8, "thread/read", json!({})), t0));
        let params = json!({"threadId": "t1", "turnId": "turn-t1"});
        let up = only_upstream(&s.on_client_message(B, req(7, "turn/interrupt", params), t0));
        let out = s.on_app_server_message(Message::ok(json!(up), json!({})), t0);
        assert_eq!(to(B, &out), [json!({"id": 7, "result": {}})]);
        let out = s.on_app_server_message(turn_completed("t1", "turn-t1"), t0);
        assert_eq!(to(A, &out).len(), 1, "the end goes to A");
        assert!(to(B, &out).is_empty());
    }

    #[test]
    fn server_requests_go_to_the_threads_client_and_answers_come_back() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let ask = Message::Request {
            id: json!(0),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "t1"})),
        };
        let out = s.on_app_server_message(ask.clone(), t0);
        assert!(to(B, &out).is_empty());
        let got = &to(A, &out)[0];
        assert_eq!(got["method"], "item/commandExecution/requestApproval");
        let answer = Message::err(got["id"].clone(), p::METHOD_NOT_FOUND, "no");
        let out = s.on_client_message(A, Ok(answer), t0);
        let Action::ToAppServer(Message::Response {
            id,
            outcome: Err(e),
        }) = &out[0]
        else {
            panic!("{out:?}");
        };
        assert_eq!((id, &e["message"]), (&json!(0), &json!("no")));

        // Unowned thread, or thread-less: refused as the plugin's broker does.
        for params in [json!({"threadId": "nobody"}), json!({})] {
            let ask = Message::Request {
                id: json!(1),
                method: "attestation/generate".into(),
                params: Some(params),
            };
            let out = s.on_app_server_message(ask, t0);
            let Action::ToAppServer(Message::Response {
                outcome: Err(e), ..
            }) = &out[0]
            else {
                panic!("{out:?}");
            };
            assert_eq!(e["code"], p::METHOD_NOT_FOUND);
            assert_eq!(
                e["message"],
                "Unsupported server request: attestation/generate"
            );
        }
        // A question its client leaves without answering is refused for it.
        s.on_app_server_message(ask, t0);
        let out = s.on_disconnect(A, t0);
        assert!(out.iter().any(|a| matches!(a,
            Action::ToAppServer(Message::Response { id, outcome: Err(e) })
                if id == &json!(0) && e["code"] == p::METHOD_NOT_FOUND)));
    }

    #[test]
    fn a_disconnect_interrupts_only_the_leavers_turn() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "ta", "/w");
        open_thread(&mut s, t0, B, "tb", "/w");
        start_stream(&mut s, t0, A, "ta");
        start_stream(&mut s, t0, B, "tb");
        let out = s.on_disconnect(A, t0);
        let ups = upstream(&out);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].1, "turn/interrupt");
        let Action::ToAppServer(Message::Request { params, .. }) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(params.as_ref().unwrap()["threadId"], "ta");
        assert!(out.iter().all(|a| !matches!(a, Action::ToClient(..))));
        // A's leftovers reach nobody; B's turn goes on.
        assert!(
            s.on_app_server_message(note("item/completed", "ta"), t0)
                .is_empty()
        );
        // Its turn ended, nobody owns it: the broker only lets the app-server unload it.
        let out = s.on_app_server_message(turn_completed("ta", "turn-ta"), t0);
        assert!(out.iter().all(|a| !matches!(a, Action::ToClient(..))));
        let ups = upstream(&out);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].1, "thread/unsubscribe");
        let out = s.on_app_server_message(note("item/completed", "tb"), t0);
        assert_eq!(to(B, &out).len(), 1);
        assert_eq!(status_of(&mut s, B, t0)["threadsInFlight"], 1);
    }

    #[test]
    fn a_turn_whose_client_left_before_it_started_is_interrupted() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        let up = only_upstream(&s.on_client_message(
            A,
            req(1, "turn/start", json!({"threadId": "t1"})),
            t0,
        ));
        s.on_disconnect(A, t0);
        let out = s.on_app_server_message(Message::ok(json!(up), json!({"turn": {"id": "u"}})), t0);
        assert_eq!(upstream(&out)[0].1, "turn/interrupt");
        assert!(out.iter().all(|a| !matches!(a, Action::ToClient(..))));
    }

    #[test]
    fn only_exclusive_methods_are_busy_and_only_when_shared() {
        let (mut s, t0) = serving();
        let out = s.on_client_message(A, req(1, "command/exec", json!({})), t0);
        assert_eq!(error_code(&to(A, &out)[0]), Some(p::BUSY), "B is connected");
        s.on_disconnect(B, t0);
        let up = only_upstream(&s.on_client_message(A, req(2, "command/exec", json!({})), t0));
        s.on_connect(C, t0);
        let out = s.on_client_message(C, req(3, "thread/start", json!({})), t0);
        assert_eq!(error_code(&to(C, &out)[0]), Some(p::BUSY), "while it runs");
        s.on_app_server_message(Message::ok(json!(up), json!({})), t0);
        let out = s.on_client_message(C, req(4, "thread/start", json!({})), t0);
        assert_eq!(upstream(&out).len(), 1);
    }

    #[test]
    fn clients_past_the_cap_are_busy_but_may_ask_status() {
        let t0 = Instant::now();
        let (mut s, _) = State::with_limits(facts(), Limits { max_clients: 2 }, t0);
        s.on_app_server_message(Message::ok(json!(1), json!({})), t0);
        for c in [A, B, C] {
            s.on_connect(c, t0);
        }
        assert_eq!(
            upstream(&s.on_client_message(B, req(1, "account/read", json!({})), t0)).len(),
            1
        );
        let out = s.on_client_message(C, req(1, "account/read", json!({})), t0);
        assert_eq!(error_code(&to(C, &out)[0]), Some(p::BUSY));
        assert!(
            to(C, &out)[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2 clients")
        );
        assert_eq!(status_of(&mut s, C, t0)["connections"], 3);
        // A place frees up for the next one to connect.
        s.on_disconnect(A, t0);
        s.on_connect(4, t0);
        assert_eq!(
            upstream(&s.on_client_message(4, req(1, "account/read", json!({})), t0)).len(),
            1
        );
    }

    #[test]
    fn status_counts_clients_and_threads() {
        let (mut s, t0) = serving();
        s.set_peer_pid(A, 4242);
        let st = status_of(&mut s, B, t0);
        assert_eq!(st["broker"], "codex-as");
        assert_eq!(st["pid"], 10);
        assert_eq!(st["appServerPid"], 11);
        assert_eq!(st["codexHome"], "/h");
        assert_eq!(st["auth"]["fingerprint"], "sha256:0123456789abcdef");
        assert_eq!(st["connections"], 2);
        assert_eq!(st["clients"], 1, "the asker aside");
        assert_eq!(st["busy"], true, "A is connected");
        assert_eq!(st["endpoint"], "unix:/tmp/s");
        let unset: Vec<&String> = st
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k)
            .collect();
        assert!(unset.is_empty(), "ours fills in every field: {unset:?}");
        s.on_disconnect(A, t0);
        let later = t0 + Duration::from_secs(5);
        let st = status_of(&mut s, B, later);
        assert_eq!(st["busy"], false);
        assert_eq!(st["idleSeconds"], 5);
        s.set_lease_held(true);
        assert_eq!(
            status_of(&mut s, B, later)["busy"],
            true,
            "a lease holds it"
        );
    }

    #[test]
    fn status_remembers_who_hit_the_usage_limit() {
        let (mut s, t0) = serving();
        s.set_peer_pid(A, 4242);
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let failed = |info: Value| {
            Message::notification(
                "turn/completed",
                json!({"threadId": "t1", "turn": {"id": "turn-t1", "status": "failed",
                    "error": {"message": "You've hit your usage limit.", "codexErrorInfo": info}}}),
            )
        };
        s.on_app_server_message(failed(json!("other")), t0);
        assert_eq!(status_of(&mut s, B, t0)["usageLimitHits"], json!([]));
        start_stream(&mut s, t0, A, "t1");
        s.on_app_server_message(failed(json!("usageLimitExceeded")), t0);
        let hits = status_of(&mut s, B, t0)["usageLimitHits"].clone();
        assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
        assert_eq!(hits[0]["pid"], 4242);
        assert_eq!(hits[0]["threadId"], "t1");
        assert_eq!(hits[0]["turnId"], "turn-t1");
        assert_eq!(hits[0]["message"], "You've hit your usage limit.");
    }

    #[test]
    fn shutdown_if_idle_counts_every_connected_client() {
        let (mut s, t0) = serving();
        let if_idle = json!({"ifIdle": true});
        // A is connected between two requests: that is not idle.
        s.on_client_message(A, req(1, "initialize", json!({})), t0);
        let out = s.on_client_message(B, req(1, "broker/shutdown", if_idle.clone()), t0);
        assert_eq!(
            to(B, &out),
            [json!({"id": 1, "result": {"shutdown": false, "busy": true}})]
        );
        assert_eq!(s.phase(), Phase::Serving);
        s.on_disconnect(A, t0);
        s.set_lease_held(true);
        let out = s.on_client_message(B, req(2, "broker/shutdown", if_idle.clone()), t0);
        assert_eq!(
            to(B, &out)[0]["result"]["shutdown"],
            false,
            "a lease holds it"
        );
        s.set_lease_held(false);
        let out = s.on_client_message(B, req(3, "broker/shutdown", if_idle), t0);
        assert_eq!(to(B, &out)[0]["result"]["shutdown"], true);
        assert_eq!(
            out.last(),
            Some(&Action::Stop(StopReason::ShutdownRequested))
        );
    }

    #[test]
    fn a_shutdown_past_its_deadline_is_void() {
        let (mut s, t0) = serving();
        s.on_disconnect(A, t0);
        let sent = s.wall_ms(t0);
        // Read 10 s late, as after a SIGSTOP: its sender gave up long ago.
        let late = t0 + Duration::from_secs(10);
        let params = json!({"ifIdle": true, "deadlineMs": sent + 2000});
        let out = s.on_client_message(B, req(1, "broker/shutdown", params.clone()), late);
        assert_eq!(
            to(B, &out),
            [json!({"id": 1, "result": {"shutdown": false, "busy": false, "expired": true}})]
        );
        assert_eq!(s.phase(), Phase::Serving);
        let out = s.on_client_message(
            B,
            req(2, "broker/shutdown", params),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(to(B, &out)[0]["result"]["shutdown"], true, "in time");
    }

    #[test]
    fn a_shutdown_is_void_only_past_its_deadline() {
        let (mut s, t0) = serving();
        s.on_disconnect(A, t0);
        let params = json!({"ifIdle": true, "deadlineMs": s.wall_ms(t0)});
        let late = t0 + Duration::from_millis(1);
        let out = s.on_client_message(B, req(1, "broker/shutdown", params.clone()), late);
        assert_eq!(
            to(B, &out)[0]["result"]["expired"],
            true,
            "a millisecond past it"
        );
        let out = s.on_client_message(B, req(2, "broker/shutdown", params), t0);
        assert_eq!(to(B, &out)[0]["result"]["shutdown"], true, "at it");
    }

    #[test]
    fn a_plain_shutdown_never_fails_anyones_work() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let out = s.on_client_message(B, req(2, "broker/shutdown", json!({})), t0);
        assert_eq!(
            to(B, &out),
            [json!({"id": 2, "result": {}})],
            "the plugin's answer"
        );
        assert!(to(A, &out).is_empty());
        assert_eq!(s.phase(), Phase::Serving);
        s.on_app_server_message(turn_completed("t1", "turn-t1"), t0);
        s.on_disconnect(A, t0);
        let out = s.on_client_message(B, req(3, "broker/shutdown", json!({})), t0);
        assert_eq!(to(B, &out), [json!({"id": 3, "result": {}})]);
        assert_eq!(
            out.last(),
            Some(&Action::Stop(StopReason::ShutdownRequested))
        );
    }

    #[test]
    fn app_server_death_fails_every_clients_work() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "ta", "/w");
        open_thread(&mut s, t0, B, "tb", "/w");
        start_stream(&mut s, t0, A, "ta");
        start_stream(&mut s, t0, B, "tb");
        only_upstream(&s.on_client_message(A, req(1, "thread/read", json!({})), t0));
        let out = s.on_app_server_gone("codex app-server exited unexpectedly (exit 3).".into());
        let a = to(A, &out);
        assert_eq!(a[0]["id"], 1);
        assert!(
            a[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exit 3")
        );
        for (c, thread) in [(A, "ta"), (B, "tb")] {
            let ended: Vec<Value> = to(c, &out)
                .into_iter()
                .filter(|m| m["method"] == "turn/completed")
                .collect();
            assert_eq!(ended.len(), 1, "{c}");
            assert_eq!(ended[0]["params"]["threadId"], thread);
            assert_eq!(ended[0]["params"]["turn"]["status"], "failed");
        }
        assert!(matches!(
            out.last(),
            Some(Action::Stop(StopReason::AppServerGone(_)))
        ));
    }

    #[test]
    fn unused_means_no_client_and_nothing_in_flight() {
        let (mut s, t0) = serving();
        assert_eq!(s.unused_since(), None);
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let up = only_upstream(&s.on_client_message(B, req(1, "account/read", json!({})), t0));
        s.on_disconnect(B, t0);
        let interrupt = only_upstream(&s.on_disconnect(A, t0));
        assert_eq!(
            s.unused_since(),
            None,
            "B's request and A's interrupted turn are in flight"
        );
        let t1 = t0 + Duration::from_millis(5);
        s.on_app_server_message(Message::ok(json!(up), json!({})), t1);
        s.on_app_server_message(Message::ok(json!(interrupt), json!({})), t1);
        assert_eq!(s.unused_since(), None, "A's turn has not ended yet");
        s.on_app_server_message(turn_completed("t1", "turn-t1"), t1);
        assert_eq!(s.unused_since(), Some(t1));
        s.on_connect(C, t1);
        assert_eq!(s.unused_since(), None);
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
    }

    #[test]
    fn a_detached_review_runs_on_its_own_thread_and_ends_there() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        let up = only_upstream(&s.on_client_message(
            A,
            req(
                5,
                "review/start",
                json!({"threadId": "t1", "delivery": "detached"}),
            ),
            t0,
        ));
        let result =
            json!({"turn": {"id": "rv-turn", "status": "inProgress"}, "reviewThreadId": "rv"});
        let out = s.on_app_server_message(Message::ok(json!(up), result), t0);
        assert_eq!(to(A, &out)[0]["id"], 5);
        // The review thread is A's: its events reach A, and nobody else.
        let out = s.on_app_server_message(note("item/completed", "rv"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert!(to(B, &out).is_empty());
        assert_eq!(status_of(&mut s, B, t0)["threads"], json!(["rv"]));
        // Its end names the review thread only; then nothing runs any more.
        let out = s.on_app_server_message(turn_completed("rv", "rv-turn"), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert_eq!(status_of(&mut s, B, t0)["threadsInFlight"], 0);
        s.on_disconnect(A, t0);
        assert_eq!(status_of(&mut s, B, t0)["busy"], false);
    }

    #[test]
    fn a_fork_belongs_to_the_owners_of_the_thread_it_came_from() {
        let (mut s, t0) = serving();
        s.on_connect(C, t0);
        open_thread(&mut s, t0, A, "t1", "/w");
        // B resumes it too: both own it, C does not.
        let up = only_upstream(&s.on_client_message(
            B,
            req(3, "thread/resume", json!({"threadId": "t1"})),
            t0,
        ));
        s.on_app_server_message(Message::ok(json!(up), json!({"thread": {"id": "t1"}})), t0);
        let started = json!({"thread": {"id": "f1", "forkedFromId": "t1"}});
        let out = s.on_app_server_message(Message::notification("thread/started", started), t0);
        assert_eq!(to(A, &out).len(), 1);
        assert_eq!(to(B, &out).len(), 1);
        assert!(to(C, &out).is_empty());
        let out = s.on_app_server_message(note("item/completed", "f1"), t0);
        assert_eq!((to(A, &out).len(), to(B, &out).len()), (1, 1));
        assert!(to(C, &out).is_empty());
    }

    #[test]
    fn a_stale_turn_completed_does_not_end_the_running_turn() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let out = s.on_app_server_message(turn_completed("t1", "an-older-turn"), t0);
        assert_eq!(to(A, &out).len(), 1, "still passed on to its owner");
        let st = status_of(&mut s, B, t0);
        assert_eq!(st["threadsInFlight"], 1, "{st}");
        assert_eq!(st["threads"], json!(["t1"]));
        s.on_app_server_message(turn_completed("t1", "turn-t1"), t0);
        assert_eq!(status_of(&mut s, B, t0)["threadsInFlight"], 0);
    }

    #[test]
    fn server_requests_go_to_the_client_running_the_turn_not_any_owner() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        // B (a later id than A) owns it too and runs the turn.
        start_stream(&mut s, t0, B, "t1");
        let ask = Message::Request {
            id: json!("app-1"),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "t1"})),
        };
        let out = s.on_app_server_message(ask, t0);
        assert!(to(A, &out).is_empty(), "{out:?}");
        assert_eq!(to(B, &out).len(), 1);
        // Its turn over, the thread's other owner is asked.
        s.on_app_server_message(turn_completed("t1", "turn-t1"), t0);
        let ask = Message::Request {
            id: json!("app-2"),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "t1"})),
        };
        let out = s.on_app_server_message(ask, t0);
        assert_eq!(to(A, &out).len(), 1, "{out:?}");
    }

    #[test]
    fn two_outstanding_server_requests_never_share_an_id() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let ask = |id: &str| Message::Request {
            id: json!(id),
            method: "item/fileChange/requestApproval".into(),
            params: Some(json!({"threadId": "t1"})),
        };
        let first = to(A, &s.on_app_server_message(ask("app-1"), t0))[0]["id"].clone();
        let second = to(A, &s.on_app_server_message(ask("app-2"), t0))[0]["id"].clone();
        assert_ne!(first, second);
        // Each answer reaches the app-server under the id of its own question.
        for (seen, app_id, answer) in [(&second, "app-2", "two"), (&first, "app-1", "one")] {
            let out = s.on_client_message(A, Ok(Message::ok(seen.clone(), json!(answer))), t0);
            assert_eq!(
                out,
                [Action::ToAppServer(Message::ok(
                    json!(app_id),
                    json!(answer)
                ))]
            );
        }
    }

    #[test]
    fn an_exclusive_holder_that_leaves_frees_everyone_else() {
        let (mut s, t0) = serving();
        s.on_disconnect(B, t0);
        // A, alone, runs an exclusive request that the app-server never answers.
        only_upstream(&s.on_client_message(A, req(1, "command/exec", json!({})), t0));
        s.on_connect(C, t0);
        let out = s.on_client_message(C, req(1, "account/read", json!({})), t0);
        assert_eq!(
            error_code(&to(C, &out)[0]),
            Some(p::BUSY),
            "while A holds it"
        );
        s.on_disconnect(A, t0);
        let out = s.on_client_message(C, req(2, "account/read", json!({})), t0);
        assert_eq!(upstream(&out).len(), 1, "{out:?}");
    }

    #[test]
    fn an_ordinary_answer_does_not_release_the_exclusive_lock() {
        let (mut s, t0) = serving();
        s.on_disconnect(B, t0);
        let exec = only_upstream(&s.on_client_message(A, req(1, "command/exec", json!({})), t0));
        // The holder's own ordinary request goes through, and is answered first.
        let read = only_upstream(&s.on_client_message(A, req(2, "account/read", json!({})), t0));
        s.on_app_server_message(Message::ok(json!(read), json!({})), t0);
        s.on_connect(C, t0);
        let out = s.on_client_message(C, req(1, "account/read", json!({})), t0);
        assert_eq!(
            error_code(&to(C, &out)[0]),
            Some(p::BUSY),
            "A still holds it"
        );
        s.on_app_server_message(Message::ok(json!(exec), json!({})), t0);
        let out = s.on_client_message(C, req(2, "account/read", json!({})), t0);
        assert_eq!(upstream(&out).len(), 1, "{out:?}");
    }

    #[test]
    fn quiet_time_counts_from_when_work_ended_not_from_the_last_event() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        let t1 = t0 + Duration::from_secs(1);
        s.on_app_server_message(turn_completed("t1", "turn-t1"), t1);
        // Events that start no work do not make the broker any less quiet.
        let t2 = t0 + Duration::from_secs(3);
        s.on_app_server_message(note("thread/closed", "t1"), t2);
        s.on_client_message(A, Ok(Message::notification("initialized", json!({}))), t2);
        s.on_connect(C, t2);
        let st = status_of(&mut s, B, t0 + Duration::from_secs(6));
        assert_eq!(st["idleSeconds"], 5, "{st}");
        // Unused time (for `--idle-exit`) counts from the last client leaving.
        for c in [A, B, C] {
            s.on_disconnect(c, t2);
        }
        s.on_app_server_message(note("thread/closed", "t9"), t0 + Duration::from_secs(4));
        assert_eq!(s.unused_since(), Some(t2));
    }

    #[test]
    fn a_held_lease_restarts_the_unused_clock_only_while_unused() {
        let (mut s, t0) = serving();
        let t5 = t0 + Duration::from_secs(5);
        s.restart_unused_clock(t5);
        assert_eq!(s.unused_since(), None, "clients are connected");
        s.on_disconnect(A, t0);
        s.on_disconnect(B, t0);
        assert_eq!(s.unused_since(), Some(t0));
        s.restart_unused_clock(t5);
        assert_eq!(s.unused_since(), Some(t5));
    }

    #[test]
    fn the_brokers_own_release_is_not_work_in_flight() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        s.on_disconnect(B, t0);
        let out = s.on_disconnect(A, t0);
        assert_eq!(upstream(&out)[0].1, "thread/unsubscribe");
        assert_eq!(s.unused_since(), Some(t0), "nobody waits for its answer");
        // A client's request is, even once its client left.
        s.on_connect(C, t0);
        only_upstream(&s.on_client_message(C, req(1, "account/read", json!({})), t0));
        s.on_disconnect(C, t0);
        assert_eq!(s.unused_since(), None);
    }

    #[test]
    fn status_reports_the_identity_settled_after_start() {
        let (mut s, t0) = serving();
        s.set_identity(Identity {
            codex_home: "/settled".into(),
            auth: AuthIdentity {
                method: LoginState::Chatgpt,
                fingerprint: Some("sha256:fedcba9876543210".into()),
            },
        });
        let st = status_of(&mut s, A, t0);
        assert_eq!(st["codexHome"], "/settled");
        assert_eq!(
            st["auth"],
            json!({"method": "chatgpt", "fingerprint": "sha256:fedcba9876543210"})
        );
    }

    /// `brokers`, `doctor` and the tests read which app-server serves a broker from its status.
    #[test]
    fn status_names_the_app_server_it_serves_through() {
        let (mut s, t0) = serving();
        assert_eq!(status_of(&mut s, A, t0)["appServer"], "child");
        let (mut s, t0) = on_listener();
        assert_eq!(status_of(&mut s, A, t0)["appServer"], "listener");
    }

    #[test]
    fn status_counts_every_other_client() {
        let (mut s, t0) = serving();
        s.on_connect(C, t0);
        let st = status_of(&mut s, C, t0);
        assert_eq!((&st["connections"], &st["clients"]), (&json!(3), &json!(2)));
        // Asked from outside any client, every client is another.
        assert_eq!(s.status(None, t0).clients, Some(3));
    }

    #[test]
    fn lines_are_served_only_from_connected_clients_of_a_ready_broker() {
        let t0 = Instant::now();
        let (mut s, _) = State::new(facts(), t0);
        s.on_connect(A, t0);
        let read = || req(1, "account/read", json!({}));
        assert!(s.on_client_message(A, read(), t0).is_empty(), "starting");
        s.on_app_server_message(Message::ok(json!(1), json!({})), t0);
        s.on_connect(B, t0);
        assert_eq!(upstream(&s.on_client_message(B, read(), t0)).len(), 1);
        // A line read before its client's disconnect was handled is dropped with it.
        s.on_disconnect(A, t0);
        assert!(s.on_client_message(A, read(), t0).is_empty(), "gone");
        s.on_stop(StopReason::Signal);
        assert!(s.on_client_message(B, read(), t0).is_empty(), "stopped");
    }

    #[test]
    fn a_signal_fails_the_work_in_flight_then_stops() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        start_stream(&mut s, t0, A, "t1");
        only_upstream(&s.on_client_message(B, req(4, "account/read", json!({})), t0));
        let out = s.on_stop(StopReason::Signal);
        let b = to(B, &out);
        assert_eq!(b.len(), 1, "{out:?}");
        assert_eq!(b[0]["id"], 4);
        assert_eq!(
            b[0]["error"]["message"],
            "codex-as broker is shutting down (signal)."
        );
        let ended: Vec<Value> = to(A, &out)
            .into_iter()
            .filter(|m| m["method"] == "turn/completed")
            .collect();
        assert_eq!(ended.len(), 1, "{out:?}");
        assert_eq!(ended[0]["params"]["turn"]["status"], "failed");
        assert_eq!(out.last(), Some(&Action::Stop(StopReason::Signal)));
        assert_eq!(s.phase(), Phase::Stopped);
        assert!(s.on_stop(StopReason::Signal).is_empty(), "stops once");
    }

    #[test]
    fn status_remembers_64_workspaces_and_still_the_ones_it_knows() {
        let (mut s, t0) = serving();
        for i in 0..64 {
            open_thread(&mut s, t0, A, &format!("t{i}"), &format!("/w/{i:02}"));
        }
        open_thread(&mut s, t0, A, "t64", "/w/64");
        open_thread(&mut s, t0, A, "again", "/w/00");
        let ws = status_of(&mut s, B, t0)["workspaces"].clone();
        let ws: Vec<&str> = ws
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(ws.len(), 64);
        assert!(ws.contains(&"/w/00") && ws.contains(&"/w/63"));
        assert!(!ws.contains(&"/w/64"));
    }

    #[test]
    fn status_keeps_the_latest_32_usage_limit_hits() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        for i in 0..33 {
            start_stream(&mut s, t0, A, "t1");
            let params = json!({"threadId": "t1", "turn": {"id": "turn-t1", "status": "failed",
                "error": {"message": format!("limit {i}"), "codexErrorInfo": "usageLimitExceeded"}}});
            s.on_app_server_message(Message::notification("turn/completed", params), t0);
        }
        let hits = status_of(&mut s, B, t0)["usageLimitHits"].clone();
        let messages: Vec<&str> = hits
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["message"].as_str())
            .collect();
        assert_eq!(messages.len(), 32);
        assert_eq!((messages[0], messages[31]), ("limit 1", "limit 32"));
    }

    #[test]
    fn a_fork_its_client_already_opened_is_not_shown_to_the_parents_owner() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        let up = only_upstream(&s.on_client_message(
            B,
            req(3, "thread/fork", json!({"threadId": "t1"})),
            t0,
        ));
        let fork = json!({"thread": {"id": "f1", "forkedFromId": "t1"}});
        s.on_app_server_message(Message::ok(json!(up), fork.clone()), t0);
        // A's companion would adopt a thread/started it is shown.
        let out = s.on_app_server_message(Message::notification("thread/started", fork), t0);
        assert_eq!(to(B, &out).len(), 1);
        assert!(to(A, &out).is_empty(), "{out:?}");
    }

    #[test]
    fn a_detached_review_leaves_the_thread_it_was_asked_on_to_its_owner() {
        let (mut s, t0) = serving();
        open_thread(&mut s, t0, A, "t1", "/w");
        let params = json!({"threadId": "t1", "delivery": "detached"});
        let up = only_upstream(&s.on_client_message(A, req(5, "review/start", params), t0));
        let result = json!({"turn": {"id": "rv-turn"}, "reviewThreadId": "rv"});
        s.on_app_server_message(Message::ok(json!(up), result), t0);
        let out = s.on_app_server_message(note("thread/name/updated", "t1"), t0);
        assert_eq!(to(A, &out).len(), 1, "{out:?}");
    }

    #[test]
    fn a_shutdown_deadline_is_the_timeout_from_now_in_unix_milliseconds() {
        let unix_ms = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let before = unix_ms();
        let deadline = shutdown_deadline_ms(Duration::from_secs(10));
        let after = unix_ms();
        assert!(
            (before + 10_000..=after + 10_000).contains(&deadline),
            "{before} {deadline} {after}"
        );
    }

    #[test]
    fn malformed_lines_get_a_parse_error() {
        let (mut s, t0) = serving();
        let out = s.on_client_message(A, Err("Invalid JSON: x".into()), t0);
        assert_eq!(to(A, &out)[0]["id"], Value::Null);
        assert_eq!(error_code(&to(A, &out)[0]), Some(p::PARSE_ERROR));
    }

    /// A broker on the account's shared listener, clients A and B connected.
    fn on_listener() -> (State, Instant) {
        let (mut s, t0) = serving();
        s.set_app_server_kind(AppServerKind::Listener);
        (s, t0)
    }

    #[test]
    fn on_a_listener_another_clients_approval_is_neither_forwarded_nor_answered() {
        let (mut s, t0) = on_listener();
        let ask = Message::Request {
            id: json!(900),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "tui-thread", "turnId": "x"})),
        };
        let out = s.on_app_server_message(ask.clone(), t0);
        assert!(out.is_empty(), "{out:?}");
        // The same question on a child, where nobody else could answer it, is refused.
        let (mut child, t0) = serving();
        let out = child.on_app_server_message(ask, t0);
        assert!(
            matches!(&out[..], [Action::ToAppServer(Message::Response { outcome: Err(e), .. })]
                if e["code"] == p::METHOD_NOT_FOUND),
            "{out:?}"
        );
    }

    #[test]
    fn on_a_listener_an_approval_on_our_thread_still_reaches_its_client() {
        let (mut s, t0) = on_listener();
        start_stream(&mut s, t0, A, "t1");
        let ask = Message::Request {
            id: json!(901),
            method: "item/commandExecution/requestApproval".into(),
            params: Some(json!({"threadId": "t1", "turnId": "turn-t1"})),
        };
        let out = s.on_app_server_message(ask, t0);
        assert_eq!(to(A, &out).len(), 1, "{out:?}");
    }

    #[test]
    fn on_a_listener_only_turns_our_clients_started_are_interrupted() {
        let (mut s, t0) = on_listener();
        start_stream(&mut s, t0, A, "t1");
        let theirs = req(
            7,
            "turn/interrupt",
            json!({"threadId": "tui", "turnId": "u1"}),
        );
        let out = s.on_client_message(B, theirs, t0);
        assert!(upstream(&out).is_empty(), "{out:?}");
        assert_eq!(error_code(&to(B, &out)[0]), Some(p::SERVER_ERROR));
        // Another turn id on our thread is not ours either.
        let other = req(
            8,
            "turn/interrupt",
            json!({"threadId": "t1", "turnId": "u2"}),
        );
        assert!(upstream(&s.on_client_message(B, other, t0)).is_empty());
        // Ours, from any client of the broker (`cancel` runs in another process), goes on.
        let ours = req(
            9,
            "turn/interrupt",
            json!({"threadId": "t1", "turnId": "turn-t1"}),
        );
        assert_eq!(upstream(&s.on_client_message(B, ours, t0)).len(), 1);
    }

    #[test]
    fn on_a_listener_other_clients_threads_are_not_heard() {
        let (mut s, t0) = on_listener();
        for m in [
            Message::notification(
                "thread/started",
                json!({"thread": {"id": "tui", "parentThreadId": null}}),
            ),
            note("thread/status/changed", "tui"),
            note("thread/closed", "tui"),
        ] {
            let out = s.on_app_server_message(m, t0);
            assert!(to(A, &out).is_empty() && to(B, &out).is_empty(), "{out:?}");
        }
    }

    #[test]
    fn a_broker_leaving_a_listener_interrupts_its_own_running_turns_only() {
        let (mut s, t0) = on_listener();
        start_stream(&mut s, t0, A, "t1");
        let out = s.on_stop(StopReason::Signal);
        let ups: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::ToAppServer(Message::Request { method, params, .. }) => {
                    Some((method.clone(), params.clone().unwrap_or_default()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ups.len(), 1, "{out:?}");
        assert_eq!(ups[0].0, "turn/interrupt");
        assert_eq!(ups[0].1["turnId"], "turn-t1");
        // A listener that is gone is not written to.
        let (mut s, t0) = on_listener();
        start_stream(&mut s, t0, A, "t1");
        assert!(upstream(&s.on_app_server_gone("closed".into())).is_empty());
        // A child dies with the broker: nothing is sent to it.
        let (mut child, t0) = serving();
        start_stream(&mut child, t0, A, "t1");
        assert!(upstream(&child.on_stop(StopReason::Signal)).is_empty());
    }

    #[test]
    fn on_a_listener_threads_others_opened_before_it_connected_count_as_open() {
        let t0 = Instant::now();
        let (mut s, _) = State::new(facts(), t0);
        s.set_app_server_kind(AppServerKind::Listener);
        let out = s.on_app_server_message(Message::ok(json!(1), json!({})), t0);
        let ups = upstream(&out);
        assert_eq!(ups.len(), 1, "{out:?}");
        assert_eq!(ups[0].1, "thread/loaded/list");
        s.on_connect(A, t0);
        assert!(s.is_quiet(), "nobody waits for that answer");
        let answer = json!({"data": ["tui-1", "tui-2"], "nextCursor": null});
        s.on_app_server_message(Message::ok(json!(ups[0].0), answer), t0);
        assert!(s.is_loaded("tui-1") && s.is_loaded("tui-2"));
        assert!(!s.is_loaded("other"));
        // A child has nothing open that the broker did not open itself.
        let (mut child, _) = State::new(facts(), t0);
        let out = child.on_app_server_message(Message::ok(json!(1), json!({})), t0);
        assert!(upstream(&out).is_empty(), "{out:?}");
    }
}
