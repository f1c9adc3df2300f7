//! One client connection of the relay: the companion's JSON-RPC relayed line by line to the
//! upstream of the account the connection runs on, with the handover when a turn fails for the
//! usage limit and the route has a next usable account.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::sync::mpsc::{self, UnboundedSender};

use super::notice;
use super::rewrite::{self, IdMap, Verdict, Watch};
use super::route::{self, Route};
use super::threads::Threads;
use super::upstream::{LINK_QUEUE, Link, Upstream};
use crate::broker::lines::Backlog;
use crate::broker::serve::MAX_QUEUED_BYTES;
use crate::broker::{lines, protocol};

/// How long the next account may take to resume the thread, and to start the turn again.
const HANDOVER_STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// What the relay keeps of past events for its status.
const KEEP: usize = 64;

/// A turn that failed for the usage limit and went through to its client.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub pid: Option<u32>,
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub account: String,
    pub message: String,
}

/// A turn handed over from one account to the next.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    pub pid: Option<u32>,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    pub message: String,
    pub notice: String,
    pub at: i64,
    /// From the failure reaching the relay to the turn started on the next account.
    pub took_ms: u64,
}

/// What every connection of one relay shares.
pub struct Shared {
    pub route: Route,
    pub upstream: Box<dyn Upstream>,
    pub threads: Box<dyn Threads>,
    /// Whether route account `i` may take work now (quota, login).
    pub usable: Box<dyn Fn(usize) -> bool>,
    pub hits: RefCell<VecDeque<Hit>>,
    pub moves: RefCell<VecDeque<Moved>>,
    /// Connections with a turn in flight.
    pub busy: RefCell<usize>,
}

impl Shared {
    fn remember<T>(list: &RefCell<VecDeque<T>>, item: T) {
        let mut l = list.borrow_mut();
        if l.len() == KEEP {
            l.pop_front();
        }
        l.push_back(item);
    }

    /// `broker/status` of a relay: codex-as's own shape where it has one (`usageLimitHits`,
    /// read by the fallback after its companion ends), plus the handovers.
    pub fn status(&self, key: &str) -> Value {
        json!({
            "busy": *self.busy.borrow() > 0,
            "broker": "codex-as-relay",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "route": key,
            "accounts": self.route.accounts.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            "usageLimitHits": self.hits.borrow().iter().collect::<Vec<_>>(),
            "handovers": self.moves.borrow().iter().collect::<Vec<_>>(),
        })
    }
}

/// A request of the client's, forwarded, whose answer the relay needs to see.
enum Pending {
    /// `thread/start` or `thread/resume`: its params open the thread again elsewhere.
    Open { params: Value, start: bool },
    /// `turn/start` or `review/start`: replayed on the next account when it fails for the limit.
    Stream { method: String, params: Value },
}

/// The turn in flight on this connection, as the client knows it.
struct Turn {
    method: String,
    params: Value,
    /// The thread the turn runs on (`params.threadId`).
    thread: String,
    /// The turn id the client got.
    client_turn: String,
    /// The detached review thread the client got, when it is not `thread`.
    client_review_thread: Option<String>,
    /// Route accounts this turn ran on.
    tried: Vec<usize>,
}

struct Conn {
    shared: Rc<Shared>,
    key: String,
    pid: Option<u32>,
    to_client: UnboundedSender<String>,
    /// Bytes sent to the client and not yet written: past the limit the relay reads its
    /// upstream no further until the client catches up.
    unread: Arc<Backlog>,
    account: usize,
    link: Option<Link>,
    /// Upstream lines received during a handover, relayed next.
    backlog: VecDeque<String>,
    pending: HashMap<String, Pending>,
    /// The params that opened the connection's thread, and whether that was a `thread/start`
    /// of an ephemeral thread (no rollout: nothing to carry, a new one is started instead).
    open: Option<Value>,
    ephemeral: bool,
    turn: Option<Turn>,
    watch: Watch,
    map: IdMap,
    next_id: u64,
    /// The link to the account a failure would move on to, opened while the turn runs, so a
    /// handover does not wait for that account's broker to start.
    standby: Option<(usize, tokio::task::JoinHandle<anyhow::Result<Link>>)>,
    /// The turn the client was last told had started (its own id).
    started: std::cell::RefCell<Option<String>>,
}

/// Whether a broker's `broker/status` answer lists `thread` among the threads its app-server
/// has open (a broker that does not say is taken as having none open).
fn status_has_open(status: &Value, thread: &str) -> bool {
    status
        .get("openThreads")
        .and_then(Value::as_array)
        .is_some_and(|open| open.iter().any(|t| t.as_str() == Some(thread)))
}

pub async fn serve(shared: Rc<Shared>, key: String, stream: UnixStream) {
    let pid = stream
        .peer_cred()
        .ok()
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok());
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let unread = Backlog::new(MAX_QUEUED_BYTES);
    let writer = tokio::task::spawn_local(lines::write_lines(write, rx, Some(unread.clone())));
    let first = route::first(shared.route.len(), &*shared.usable);
    let mut c = Conn {
        shared,
        key,
        pid,
        to_client: tx,
        unread: unread.clone(),
        account: first,
        link: None,
        backlog: VecDeque::new(),
        pending: HashMap::new(),
        open: None,
        ephemeral: false,
        turn: None,
        watch: Watch::default(),
        map: IdMap::default(),
        next_id: 1,
        standby: None,
        started: std::cell::RefCell::new(None),
    };
    // Its own task: a line read half way is never lost to another branch of the select below
    // (read_line is not cancel safe), and a full queue stops the reading.
    let (client_tx, mut from_client) = mpsc::channel::<String>(LINK_QUEUE);
    let reader = tokio::task::spawn_local(async move {
        let mut r = BufReader::new(read);
        while let Ok(Some(line)) = lines::read_line(&mut r).await {
            if !line.trim().is_empty() && client_tx.send(line).await.is_err() {
                return;
            }
        }
    });
    loop {
        if let Some(line) = c.backlog.pop_front() {
            c.on_upstream(line).await;
            continue;
        }
        // Each side is read only while the other can take what it sends: what waits is bounded
        // on both sides, and the rest waits in the sockets.
        let mut client_gate = unread.gate();
        let mut upstream_gate = c.link.as_ref().map(Link::gate);
        let client_open = *client_gate.borrow_and_update();
        let upstream_open = upstream_gate
            .as_mut()
            .is_none_or(|g| *g.borrow_and_update());
        let from_upstream = async {
            match c.link.as_mut() {
                Some(l) if client_open => l.rx.recv().await,
                _ => std::future::pending().await,
            }
        };
        let reopened = async {
            match (&mut upstream_gate, upstream_open, client_open) {
                (Some(g), false, _) => {
                    let _ = g.changed().await;
                }
                (_, _, false) => {
                    let _ = client_gate.changed().await;
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = reopened => {}
            line = from_client.recv(), if upstream_open => match line {
                Some(l) => c.on_client(l).await,
                None => break,
            },
            line = from_upstream => match line {
                Some(l) => c.on_upstream(l).await,
                // The broker went away: so does this connection (the companion sees it end, as
                // it would with its broker).
                None => break,
            },
        }
    }
    reader.abort();
    c.set_turn(None);
    drop(c);
    let _ = writer.await;
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Conn {
    fn send_client(&self, msg: &Value) {
        // After a handover the next account announces the turn again, under the id the client
        // already saw start: a client is told once.
        if msg.get("method").and_then(Value::as_str) == Some("turn/started") {
            let turn = rewrite::turn_id(msg).map(str::to_string);
            if turn.is_some() && *self.started.borrow() == turn {
                return;
            }
            *self.started.borrow_mut() = turn;
        }
        let line = msg.to_string();
        self.unread.add(line.len());
        let _ = self.to_client.send(line);
    }

    fn answer(&self, id: Value, result: Value) {
        self.send_client(&json!({"id": id, "result": result}));
    }

    fn fail(&self, id: Value, message: String) {
        self.send_client(
            &json!({"id": id, "error": {"code": protocol::SERVER_ERROR, "message": message}}),
        );
    }

    fn set_turn(&mut self, turn: Option<Turn>) {
        let was = self.turn.is_some();
        self.turn = turn;
        let mut busy = self.shared.busy.borrow_mut();
        match (was, self.turn.is_some()) {
            (false, true) => *busy += 1,
            (true, false) => *busy = busy.saturating_sub(1),
            _ => {}
        }
    }

    fn account_name(&self, i: usize) -> String {
        self.shared.route.accounts[i].name.clone()
    }

    async fn ensure_link(&mut self) -> anyhow::Result<()> {
        if self.link.is_none() {
            let account = &self.shared.route.accounts[self.account];
            self.link = Some(self.shared.upstream.open(account).await?);
            self.warm_next();
        }
        Ok(())
    }

    async fn on_client(&mut self, line: String) {
        let Ok(mut msg) = serde_json::from_str::<Value>(&line) else {
            self.send_client(&json!({"id": null, "error": {"code": protocol::PARSE_ERROR, "message": "Invalid JSON"}}));
            return;
        };
        let method = msg
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        let id = msg.get("id").cloned();
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        match (method.as_deref(), id) {
            (Some(protocol::INITIALIZE), Some(id)) => {
                return self.answer(id, protocol::client_initialize_result());
            }
            (Some(protocol::INITIALIZED), None) => return,
            (Some(protocol::BROKER_STATUS), Some(id)) => {
                return self.answer(id, self.shared.status(&self.key));
            }
            // The relay lives by its idle exit; a session's end stops nobody else's work.
            (Some(protocol::BROKER_SHUTDOWN), Some(id)) => return self.answer(id, json!({})),
            (Some("thread/resume"), Some(id)) => {
                self.place_resume(&params);
                self.pending.insert(
                    id_key(&id),
                    Pending::Open {
                        params: params.clone(),
                        start: false,
                    },
                );
            }
            (Some("thread/start"), Some(id)) => {
                self.pending.insert(
                    id_key(&id),
                    Pending::Open {
                        params: params.clone(),
                        start: true,
                    },
                );
            }
            (Some(m @ ("turn/start" | "review/start")), Some(id)) => {
                self.pending.insert(
                    id_key(&id),
                    Pending::Stream {
                        method: m.to_string(),
                        params: params.clone(),
                    },
                );
            }
            _ => {}
        }
        if let Err(e) = self.ensure_link().await {
            let name = self.account_name(self.account);
            if let Some(id) = msg.get("id").cloned() {
                self.pending.remove(&id_key(&id));
                self.fail(id, format!("codex-as relay: account '{name}': {e:#}"));
            }
            return;
        }
        self.map.to_upstream(&mut msg);
        if let Some(link) = &self.link {
            link.send(&msg);
        }
    }

    /// A thread resumed here runs on the route account holding its newest copy (so later turns
    /// of a moved thread stay where it moved), unless this connection already runs a turn.
    fn place_resume(&mut self, params: &Value) {
        if self.turn.is_some() {
            return;
        }
        let Some(thread) = params.get("threadId").and_then(Value::as_str) else {
            return;
        };
        let newest = match self
            .shared
            .threads
            .newest_home(thread, self.shared.route.homes())
        {
            Ok(n) => n,
            Err(e) => {
                eprintln!("codex-as relay: where is thread {thread}? {e:#}");
                None
            }
        };
        let to = route::for_resume(newest, self.account, &*self.shared.usable);
        if to != self.account {
            self.account = to;
            self.link = None;
        }
    }

    async fn on_upstream(&mut self, line: String) {
        let Ok(mut msg) = serde_json::from_str::<Value>(&line) else {
            return;
        };
        let is_response = msg.get("method").is_none();
        if is_response {
            if let Some(id) = msg.get("id").cloned() {
                self.on_response(&id, &msg);
            }
            self.map.to_client(&mut msg);
            return self.send_client(&msg);
        }
        match self.watch.on_upstream(msg) {
            Verdict::Forward(out) => {
                for mut m in out {
                    self.after_forward(&m);
                    self.map.to_client(&mut m);
                    self.send_client(&m);
                }
            }
            Verdict::Hold => {}
            Verdict::HandOver { message } => {
                if let Err(e) = self.hand_over(&message).await {
                    eprintln!("codex-as relay: no handover: {e:#}");
                    self.let_failure_through(message);
                }
            }
        }
    }

    fn after_forward(&mut self, m: &Value) {
        if self.watch.watching().is_none()
            && m.get("method").and_then(Value::as_str) == Some(protocol::TURN_COMPLETED)
            && self.turn.is_some()
        {
            self.set_turn(None);
        }
    }

    fn let_failure_through(&mut self, message: String) {
        let held = self.watch.release();
        let (thread, turn) = held
            .last()
            .map(|m| {
                (
                    rewrite::thread_id(m).map(str::to_string),
                    rewrite::turn_id(m).map(str::to_string),
                )
            })
            .unwrap_or_default();
        Shared::remember(
            &self.shared.hits,
            Hit {
                pid: self.pid,
                thread_id: thread,
                turn_id: turn,
                account: self.account_name(self.account),
                message,
            },
        );
        for mut m in held {
            self.map.to_client(&mut m);
            self.send_client(&m);
        }
        self.set_turn(None);
    }

    fn on_response(&mut self, id: &Value, msg: &Value) {
        let Some(pending) = self.pending.remove(&id_key(id)) else {
            return;
        };
        let Some(result) = msg.get("result").filter(|_| msg.get("error").is_none()) else {
            return;
        };
        match pending {
            Pending::Open { params, start } => {
                if result
                    .pointer("/thread/id")
                    .and_then(Value::as_str)
                    .is_some()
                {
                    self.ephemeral =
                        start && params.get("ephemeral").and_then(Value::as_bool) == Some(true);
                    self.open = Some(params);
                }
            }
            Pending::Stream { method, params } => {
                let (Some(client_thread), Some(turn)) = (
                    params.get("threadId").and_then(Value::as_str),
                    result.pointer("/turn/id").and_then(Value::as_str),
                ) else {
                    return;
                };
                // The upstream's id for it (another one after a fresh-thread handover).
                let thread = &self.map.upstream_of(client_thread);
                let review = result
                    .get("reviewThreadId")
                    .and_then(Value::as_str)
                    .filter(|r| *r != thread)
                    .map(str::to_string);
                let watched = review.clone().unwrap_or_else(|| thread.to_string());
                self.watch.start(&watched, turn);
                self.set_turn(Some(Turn {
                    method,
                    thread: thread.to_string(),
                    params,
                    client_turn: turn.to_string(),
                    client_review_thread: review,
                    tried: vec![self.account],
                }));
                self.warm_next();
            }
        }
    }

    /// Opens the link a handover of the running turn would use, in the background.
    fn warm_next(&mut self) {
        let tried = self
            .turn
            .as_ref()
            .map_or_else(|| vec![self.account], |t| t.tried.clone());
        let shared = self.shared.clone();
        let next = route::next_after(shared.route.len(), self.account, &tried, &*shared.usable);
        match (next, &self.standby) {
            (Some(k), Some((s, _))) if *s == k => {}
            (Some(k), _) => {
                let task = tokio::task::spawn_local(async move {
                    shared.upstream.open(&shared.route.accounts[k]).await
                });
                self.standby = Some((k, task));
            }
            (None, _) => self.standby = None,
        }
    }

    /// The link to route account `k`: the one opened in advance, else a new one.
    async fn link_to(&mut self, k: usize) -> anyhow::Result<Link> {
        if let Some((s, task)) = self.standby.take()
            && s == k
            && let Ok(Ok(link)) = task.await
        {
            return Ok(link);
        }
        let shared = self.shared.clone();
        shared.upstream.open(&shared.route.accounts[k]).await
    }

    fn own_id(&mut self) -> String {
        self.next_id += 1;
        format!("codex-as-relay-{}", self.next_id)
    }

    /// The watched turn failed for the usage limit: carry its thread to the next account,
    /// resume it there and start the same turn again, its ids mapped to the client's.
    async fn hand_over(&mut self, message: &str) -> anyhow::Result<()> {
        let began = std::time::Instant::now();
        // When each step ended, for the relay's log.
        let mut steps: Vec<(&str, std::time::Duration)> = Vec::new();
        let Some(turn) = &self.turn else {
            anyhow::bail!("no turn of this connection is in flight");
        };
        let Some(next) = route::next_after(
            self.shared.route.len(),
            self.account,
            &turn.tried,
            &*self.shared.usable,
        ) else {
            anyhow::bail!("no usable account is left on the route");
        };
        let thread = turn.thread.clone();
        let mut backlog = Vec::new();
        let mut link = if self.ephemeral {
            self.start_afresh(next, &thread, &mut backlog).await?
        } else {
            let link = self.carry_and_resume(next, &thread, &mut backlog, &mut steps, began);
            link.await?
        };
        // Whatever the resume itself announced is about the thread's state there, not news
        // for a client whose turn is still running.
        backlog.clear();
        steps.push(("open", began.elapsed()));
        let review = self
            .restart_turn(&mut link, next, &thread, &mut backlog)
            .await?;
        let from_name = self.account_name(self.account);
        let to_name = self.account_name(next);
        self.account = next;
        self.link = Some(link);
        self.warm_next();
        self.backlog.extend(backlog);
        let took_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        let timing: Vec<String> = steps
            .iter()
            .map(|(step, at)| format!("{step} {}ms", at.as_millis()))
            .collect();
        eprintln!(
            "codex-as relay: handover done in {took_ms}ms ({}, turn started)",
            timing.join(", ")
        );
        self.announce(&thread, from_name, to_name, review, message, took_ms);
        Ok(())
    }

    /// Nothing on disk to carry (the companion's reviews): the same thread is started afresh on
    /// account `next`, under the ids the client knows.
    async fn start_afresh(
        &mut self,
        next: usize,
        thread: &str,
        backlog: &mut Vec<String>,
    ) -> anyhow::Result<Link> {
        let mut link = self.link_to(next).await?;
        let params = self.open.clone().unwrap_or_else(|| json!({}));
        let sid = self.own_id();
        let started = link
            .request(&sid, "thread/start", params, HANDOVER_STEP_TIMEOUT, backlog)
            .await?;
        let Some(new_thread) = started.pointer("/thread/id").and_then(Value::as_str) else {
            anyhow::bail!("thread/start on the next account gave no thread id");
        };
        let client_thread = self.map.client_of(thread);
        self.map.add(new_thread, &client_thread);
        Ok(link)
    }

    /// The thread's files carried into account `next`'s home (unless its app-server has an
    /// older copy open) and resumed there.
    async fn carry_and_resume(
        &mut self,
        next: usize,
        thread: &str,
        backlog: &mut Vec<String>,
        steps: &mut Vec<(&str, std::time::Duration)>,
        began: std::time::Instant,
    ) -> anyhow::Result<Link> {
        let shared = self.shared.clone();
        let failed_turn = self
            .watch
            .watching()
            .map(|(_, turn)| turn.to_string())
            .unwrap_or_default();
        // A turn on the thread itself (a task, an inline review) left its failed input in the
        // rollout; a detached review's failure is in the review thread, not carried.
        let detached_review = self
            .turn
            .as_ref()
            .is_some_and(|t| t.client_review_thread.is_some());
        let drop_turn = (!detached_review).then_some(failed_turn);
        let from = shared.route.home(self.account).to_path_buf();
        let to: PathBuf = shared.route.home(next).to_path_buf();
        let mut link = self.link_to(next).await?;
        steps.push(("link", began.elapsed()));
        // An app-server that still has an older copy of the thread open (it ran there before)
        // would go on from that copy and write to the file the carry replaces.
        let sid = self.own_id();
        let status = link
            .request(
                &sid,
                "broker/status",
                json!({}),
                HANDOVER_STEP_TIMEOUT,
                backlog,
            )
            .await?;
        if status_has_open(&status, thread) {
            anyhow::bail!(
                "'{}' has thread {thread} open from an earlier turn there; not carrying a newer copy under it",
                self.account_name(next)
            );
        }
        shared
            .threads
            .carry(thread, &from, &to, drop_turn.as_deref())?;
        steps.push(("carry", began.elapsed()));
        let resume = rewrite::resume_params(self.open.as_ref(), thread);
        let rid = self.own_id();
        link.request(
            &rid,
            "thread/resume",
            resume,
            HANDOVER_STEP_TIMEOUT,
            backlog,
        )
        .await?;
        Ok(link)
    }

    /// The turn started again over `link` (on account `next`), its new ids mapped to the
    /// client's and watched; whether it is a review.
    async fn restart_turn(
        &mut self,
        link: &mut Link,
        next: usize,
        thread: &str,
        backlog: &mut Vec<String>,
    ) -> anyhow::Result<bool> {
        let (method, mut params) = match &self.turn {
            Some(t) => (t.method.clone(), t.params.clone()),
            None => anyhow::bail!("the turn ended meanwhile"),
        };
        self.map.to_upstream(&mut params);
        let sid = self.own_id();
        let result = link
            .request(&sid, &method, params, HANDOVER_STEP_TIMEOUT, backlog)
            .await?;
        let Some(new_turn) = result.pointer("/turn/id").and_then(Value::as_str) else {
            anyhow::bail!("{method} on the next account gave no turn id");
        };
        let Some(turn) = self.turn.as_mut() else {
            anyhow::bail!("the turn ended meanwhile");
        };
        self.map.add(new_turn, &turn.client_turn);
        // The thread the turn runs on there (another id after a fresh start).
        let source = self.map.upstream_of(&self.map.client_of(thread));
        let new_review = result.get("reviewThreadId").and_then(Value::as_str);
        let watched = match (new_review, &turn.client_review_thread) {
            (Some(r), Some(orig)) => {
                self.map.add(r, orig);
                r.to_string()
            }
            _ => source.clone(),
        };
        turn.thread = source;
        turn.tried.push(next);
        let review = turn.method == "review/start";
        self.watch.start(&watched, new_turn);
        Ok(review)
    }

    /// The notice of a handover: on the relay's stderr, in the job's log, and kept for
    /// `relay status`.
    fn announce(
        &self,
        thread: &str,
        from_name: String,
        to_name: String,
        review: bool,
        message: &str,
        took_ms: u64,
    ) {
        let client_thread = self.map.client_of(thread);
        let line = notice::text(&from_name, &to_name, review);
        eprintln!("{line}");
        let cwd = self
            .open
            .as_ref()
            .and_then(|p| p.get("cwd"))
            .and_then(Value::as_str)
            .map(PathBuf::from);
        if let Some(log) = cwd.and_then(|c| notice::job_log(self.pid, &c, &client_thread))
            && let Err(e) = notice::append(&log, &line)
        {
            eprintln!("codex-as relay: cannot write to {}: {e}", log.display());
        }
        Shared::remember(
            &self.shared.moves,
            Moved {
                pid: self.pid,
                thread_id: client_thread,
                from: from_name,
                to: to_name,
                message: message.to_string(),
                notice: line,
                at: crate::sys::clock::now(),
                took_ms,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};
    use std::rc::Rc;

    use serde_json::{Value, json};
    use tokio::io::{AsyncWriteExt, BufReader};
    use tokio::sync::mpsc;

    use super::*;
    use crate::account::{Account, FoundBy};
    use crate::handover::upstream::{Link, Opening};

    /// A scripted app-server per account: account 0 runs out on its first turn, the others
    /// finish theirs. Every request it gets is logged as (account, method, params).
    struct Script {
        log: Rc<RefCell<Vec<(String, String, Value)>>>,
        out_of_quota: Vec<&'static str>,
        /// Accounts whose broker says its app-server has the thread open.
        thread_open: Vec<&'static str>,
    }

    impl Upstream for Script {
        fn open<'a>(&'a self, account: &'a Account) -> Opening<'a> {
            let name = account.name.clone();
            let log = self.log.clone();
            let out = self.out_of_quota.contains(&name.as_str());
            let open = self.thread_open.contains(&name.as_str());
            Box::pin(async move {
                let (to_up, mut up_rx) = mpsc::unbounded_channel::<String>();
                let (up_tx, from_up) = mpsc::channel::<String>(LINK_QUEUE);
                let task = tokio::task::spawn_local(async move {
                    let mut turns = 0;
                    while let Some(line) = up_rx.recv().await {
                        let v: Value = serde_json::from_str(&line).unwrap();
                        let Some(method) = v["method"].as_str() else {
                            continue;
                        };
                        log.borrow_mut().push((
                            name.clone(),
                            method.to_string(),
                            v["params"].clone(),
                        ));
                        let id = v["id"].clone();
                        let send = |m: Value| up_tx.try_send(m.to_string()).unwrap();
                        match method {
                            "initialize" => send(json!({"id": id, "result": {}})),
                            "broker/status" => {
                                let open: Vec<&str> = if open { vec!["th"] } else { vec![] };
                                send(
                                    json!({"id": id, "result": {"busy": false, "openThreads": open}}),
                                )
                            }
                            "thread/start" | "thread/resume" => {
                                // An ephemeral thread gets an id of this app-server's own.
                                let th = if v["params"]["ephemeral"] == true {
                                    format!("{name}-th")
                                } else {
                                    "th".to_string()
                                };
                                send(json!({"id": id, "result": {"thread": {"id": th}}}))
                            }
                            "turn/start" | "review/start" => {
                                turns += 1;
                                let th = v["params"]["threadId"].as_str().unwrap().to_string();
                                let turn = format!("{name}-turn{turns}");
                                let mut result =
                                    json!({"turn": {"id": turn, "status": "inProgress"}});
                                if method == "review/start" {
                                    result["reviewThreadId"] = json!(th);
                                }
                                send(json!({"id": id, "result": result}));
                                send(
                                    json!({"method": "turn/started", "params": {"threadId": th, "turn": {"id": turn}}}),
                                );
                                let limit = json!({"message": "You've hit your usage limit.", "codexErrorInfo": "usageLimitExceeded"});
                                if out {
                                    send(
                                        json!({"method": "thread/status/changed", "params": {"threadId": th, "status": {"type": "systemError"}}}),
                                    );
                                    send(
                                        json!({"method": "error", "params": {"threadId": th, "turnId": turn, "willRetry": false, "error": limit}}),
                                    );
                                    send(
                                        json!({"method": "turn/completed", "params": {"threadId": th,
                                        "turn": {"id": turn, "status": "failed", "error": limit}}}),
                                    );
                                } else {
                                    send(
                                        json!({"method": "item/completed", "params": {"threadId": th, "turnId": turn,
                                        "item": {"type": "agentMessage", "text": format!("done by {name}")}}}),
                                    );
                                    send(
                                        json!({"method": "turn/completed", "params": {"threadId": th,
                                        "turn": {"id": turn, "status": "completed"}}}),
                                    );
                                }
                            }
                            _ => send(json!({"id": id, "result": {}})),
                        }
                    }
                });
                Ok(Link::new(
                    from_up,
                    to_up,
                    Backlog::new(MAX_QUEUED_BYTES),
                    vec![task],
                ))
            })
        }
    }

    /// (thread, from, to, drop_turn) of each carry asked for.
    type Carry = (String, PathBuf, PathBuf, Option<String>);

    #[derive(Default)]
    struct Carried(RefCell<Vec<Carry>>);

    impl Threads for Rc<Carried> {
        fn newest_home(&self, _id: &str, _homes: &[PathBuf]) -> anyhow::Result<Option<usize>> {
            Ok(None)
        }
        fn carry(
            &self,
            id: &str,
            from: &Path,
            to: &Path,
            drop_turn: Option<&str>,
        ) -> anyhow::Result<()> {
            self.0.borrow_mut().push((
                id.into(),
                from.into(),
                to.into(),
                drop_turn.map(String::from),
            ));
            Ok(())
        }
    }

    fn account(name: &str) -> Account {
        Account {
            name: name.into(),
            home: PathBuf::from(format!("/nonexistent/relay-conn/{name}")),
            found_by: FoundBy::Convention,
            pass_env: Vec::new(),
        }
    }

    type Exchange = (
        Vec<Value>,
        Vec<(String, String, Value)>,
        Rc<Carried>,
        Rc<Shared>,
    );

    /// Runs one companion-like exchange (initialize, thread/start, turn/start) through a relay
    /// connection and returns every message the client got up to its turn's completion.
    async fn one_turn(
        names: &[&str],
        out_of_quota: Vec<&'static str>,
        thread_open: Vec<&'static str>,
    ) -> Exchange {
        one_exchange(
            names,
            out_of_quota,
            thread_open,
            json!({"cwd": "/w", "ephemeral": false}),
            json!({"id": 3, "method": "turn/start", "params": {"threadId": "th", "input": [{"type": "text", "text": "hi"}]}}),
        )
        .await
    }

    async fn one_exchange(
        names: &[&str],
        out_of_quota: Vec<&'static str>,
        thread_open: Vec<&'static str>,
        start: Value,
        stream: Value,
    ) -> Exchange {
        let log = Rc::new(RefCell::new(Vec::new()));
        let carried = Rc::new(Carried::default());
        let shared = Rc::new(Shared {
            route: Route::new(names.iter().map(|n| account(n)).collect()),
            upstream: Box::new(Script {
                log: log.clone(),
                out_of_quota,
                thread_open,
            }),
            threads: Box::new(carried.clone()),
            usable: Box::new(|_| true),
            hits: RefCell::default(),
            moves: RefCell::default(),
            busy: RefCell::new(0),
        });
        let (client, server) = UnixStream::pair().unwrap();
        tokio::task::spawn_local(serve(shared.clone(), "k".into(), server));
        let (r, mut w) = client.into_split();
        let mut r = BufReader::new(r);
        for m in [
            json!({"id": 1, "method": "initialize", "params": {}}),
            json!({"method": "initialized"}),
            json!({"id": 2, "method": "thread/start", "params": start}),
            stream,
        ] {
            w.write_all(format!("{m}\n").as_bytes()).await.unwrap();
        }
        let mut got = Vec::new();
        while let Some(line) = lines::read_line(&mut r).await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap();
            let done = v["method"] == "turn/completed";
            got.push(v);
            if done {
                break;
            }
        }
        let log = log.borrow().clone();
        (got, log, carried, shared)
    }

    /// The methods the upstream of `account` was called with, in order.
    fn calls_on<'a>(log: &'a [(String, String, Value)], account: &str) -> Vec<&'a str> {
        log.iter()
            .filter(|(n, _, _)| n == account)
            .map(|(_, m, _)| m.as_str())
            .collect()
    }

    fn methods(got: &[Value]) -> Vec<String> {
        got.iter()
            .map(|v| {
                v["method"]
                    .as_str()
                    .map_or_else(|| format!("answer {}", v["id"]), String::from)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_turn_that_runs_out_finishes_on_the_next_account_under_its_own_id() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (got, log, carried, shared) = one_turn(&["a", "b"], vec!["a"], Vec::new()).await;
                assert_eq!(
                    methods(&got),
                    [
                        "answer 1",
                        "answer 2",
                        "answer 3",
                        "turn/started",
                        "item/completed",
                        "turn/completed"
                    ],
                    "no error, no failed completion, no systemError: {got:?}"
                );
                // Every turn notification carries the id the client's turn/start got.
                for v in &got[3..] {
                    assert_eq!(rewrite::turn_id(v), Some("a-turn1"), "{v}");
                }
                assert_eq!(got[5]["params"]["turn"]["status"], "completed");
                assert_eq!(got[4]["params"]["item"]["text"], "done by b");
                // The thread moved without the failed turn, was resumed on b with the start's
                // settings, and the same input was sent once there.
                assert_eq!(
                    carried.0.borrow().clone(),
                    [(
                        "th".to_string(),
                        PathBuf::from("/nonexistent/relay-conn/a"),
                        PathBuf::from("/nonexistent/relay-conn/b"),
                        Some("a-turn1".to_string())
                    )]
                );
                let on_b: Vec<_> = log.iter().filter(|(n, _, _)| n == "b").collect();
                let calls = calls_on(&log, "b");
                assert_eq!(calls, ["broker/status", "thread/resume", "turn/start"]);
                assert_eq!(
                    on_b[1].2,
                    json!({"cwd": "/w", "threadId": "th", "excludeTurns": true})
                );
                assert_eq!(on_b[2].2["input"][0]["text"], "hi");
                let moved = shared.moves.borrow();
                assert_eq!(moved.len(), 1);
                assert_eq!(
                    moved[0].notice,
                    "codex-as: a: usage limit reached; the thread moved to 'b' and the turn goes on there"
                );
                assert!(shared.hits.borrow().is_empty());
                assert_eq!(*shared.busy.borrow(), 0);
            })
            .await;
    }

    #[tokio::test]
    async fn with_nobody_left_the_failure_goes_through_whole() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (got, _, _, shared) = one_turn(&["a", "b"], vec!["a", "b"], Vec::new()).await;
                assert_eq!(
                    methods(&got),
                    [
                        "answer 1",
                        "answer 2",
                        "answer 3",
                        "turn/started",
                        "thread/status/changed",
                        "error",
                        "turn/completed"
                    ]
                );
                for v in &got[3..] {
                    if let Some(t) = rewrite::turn_id(v) {
                        assert_eq!(t, "a-turn1", "{v}");
                    }
                }
                assert_eq!(got[6]["params"]["turn"]["status"], "failed");
                let hits = shared.hits.borrow();
                assert_eq!(hits.len(), 1);
                assert_eq!(hits[0].account, "b");
                assert_eq!(shared.moves.borrow().len(), 1, "a to b, then nothing");
            })
            .await;
    }

    #[tokio::test]
    async fn no_newer_copy_is_carried_under_an_app_server_that_has_the_thread_open() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (got, log, carried, shared) = one_turn(&["a", "b"], vec!["a"], vec!["b"]).await;
                assert!(carried.0.borrow().is_empty(), "nothing carried into b");
                assert_eq!(
                    calls_on(&log, "b"),
                    ["broker/status"],
                    "no resume, no turn on b"
                );
                // The failure reaches the client whole, so the run's fallback can answer.
                assert_eq!(got.last().unwrap()["params"]["turn"]["status"], "failed");
                assert!(got.iter().any(|v| v["method"] == "error"), "{got:?}");
                assert!(shared.moves.borrow().is_empty());
            })
            .await;
    }

    #[tokio::test]
    async fn a_review_on_an_ephemeral_thread_starts_again_on_the_next_account() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (got, log, carried, _) = one_exchange(
                    &["a", "b"],
                    vec!["a"],
                    Vec::new(),
                    json!({"cwd": "/w", "sandbox": "read-only", "ephemeral": true}),
                    json!({"id": 3, "method": "review/start", "params": {"threadId": "a-th", "delivery": "inline", "target": {"type": "uncommittedChanges"}}}),
                )
                .await;
                assert!(carried.0.borrow().is_empty(), "nothing on disk to carry");
                let on_b: Vec<_> = log.iter().filter(|(n, _, _)| n == "b").collect();
                let calls = calls_on(&log, "b");
                assert_eq!(calls, ["thread/start", "review/start"]);
                assert_eq!(on_b[0].2["ephemeral"], true);
                assert_eq!(on_b[1].2["threadId"], "b-th", "the new thread there");
                assert_eq!(on_b[1].2["target"]["type"], "uncommittedChanges");
                for v in &got[3..] {
                    assert_eq!(rewrite::thread_id(v), Some("a-th"), "{v}");
                    assert_eq!(rewrite::turn_id(v), Some("a-turn1"), "{v}");
                }
                assert_eq!(got.last().unwrap()["params"]["turn"]["status"], "completed");
                assert!(got.iter().all(|v| v["method"] != "error"), "{got:?}");
            })
            .await;
    }
}
