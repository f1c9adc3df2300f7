//! The event loop: the only place that does I/O for the broker. Every input becomes one call
//! into [`State`], whose actions are carried out before the next input is looked at; that is
//! what makes decisions such as the idle exit atomic with respect to clients.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{self, Receiver, Sender, UnboundedReceiver, UnboundedSender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use super::BrokerError;
use super::app_server::{self, Output};
use super::endpoint;
use super::lease;
use super::lines::{self, Backlog};
use super::link::{AppServerLink, Place, Prefer};
use super::presence::{Files, close_listener, keep_findable};
use super::protocol::{self as p, Message};
use super::registry::Registry;
use super::state::{Action, ClientId, Facts, Limits, Phase, State, StopReason};
use super::threads::{self, Prepared};
use crate::account::identity::{self, Identity};

pub struct Options {
    pub endpoint: String,
    pub cwd: PathBuf,
    pub idle_exit: Option<Duration>,
    pub pid_file: Option<PathBuf>,
    /// Clients served at once (see [`Limits`]).
    pub max_clients: usize,
    /// What to serve through when the home has no Codex listener up.
    pub app_server: Prefer,
    pub codex: PathBuf,
    /// Written `ready\n` once clients can be served, then closed.
    pub ready: Option<OwnedFd>,
    /// Shown every message the app-server sends, before it is relayed (codex-as's quota sensor).
    pub observer: Option<Observer>,
}

/// Something that watches the app-server's messages without changing them.
pub type Observer = Box<dyn FnMut(&Message) + Send>;

enum Event {
    ClientLine(ClientId, String),
    ClientClosed(ClientId),
    AppServer(Output),
    /// The file work for a client's request is done (see [`threads`]): `line` goes on.
    Prepared {
        client: ClientId,
        line: String,
        outcome: Prepared,
    },
}

struct ClientHandle {
    tx: UnboundedSender<String>,
    /// The socket, shared with the reader and writer tasks: to ask the kernel whether the peer
    /// has hung up without a descriptor of its own.
    stream: Arc<UnixStream>,
    /// The process behind it, as its socket reported it when it connected.
    pid: Option<u32>,
    /// Bytes queued for this client and not yet written to its socket.
    queued: Arc<Backlog>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    /// Its place among the connections the broker holds (see [`Places`]), given back with it.
    _place: OwnedSemaphorePermit,
}

impl ClientHandle {
    fn abort(self) {
        self.reader.abort();
        self.writer.abort();
    }

    /// Whether the other end has closed the connection (its end of file may still be on its
    /// way to the event loop).
    fn hung_up(&self) -> bool {
        let mut pfd = nix::libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events: nix::libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame, and a zero timeout.
        let n = unsafe { nix::libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & (nix::libc::POLLRDHUP | nix::libc::POLLHUP) != 0
    }
}

/// How long a stopping broker gives clients to take their last answers.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// How long the app-server may keep stdout open after its process exited (a grandchild may hold
/// it); past that it counts as gone.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The first and the longest wait after a failed accept (out of descriptors, typically), during
/// which the connected clients are served and may leave.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connections held past `--max-clients`: they get `BUSY` for work and answers to status and
/// shutdown, as every connection past the cap used to. Beyond them, connections wait in the
/// listen backlog, costing the broker nothing, until a place frees up.
pub const SPARE_PLACES: usize = 8;
/// Inputs (client lines, the app-server's lines) waiting for the event loop: a full queue stops
/// their readers, so the sockets and the app-server's pipe hold the rest.
const EVENT_QUEUE: usize = 64;
/// The most a client may have queued and unread. A client that stops reading is disconnected
/// when its queue would pass this, as if it had left (its own turn is interrupted): it must not
/// grow the broker's memory, and the other clients are served by their own writers meanwhile.
/// One message bigger than this (a long thread's history) still goes to a client whose queue
/// is empty.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// How often the broker checks that it can still be found (its socket file, its record) and
/// whether a lease holds it.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The connections a broker holds at most: `--max-clients` served, and [`SPARE_PLACES`] more
/// that are told it is busy. A place is taken before a connection is accepted, as mini-redis
/// does, so that a flood of connections waits in the kernel's listen backlog instead of costing
/// a descriptor each.
struct Places {
    max_clients: usize,
    served: Arc<Semaphore>,
    spare: Arc<Semaphore>,
}

impl Places {
    fn new(max_clients: usize) -> Places {
        Places {
            max_clients,
            served: Arc::new(Semaphore::new(max_clients)),
            spare: Arc::new(Semaphore::new(SPARE_PLACES)),
        }
    }

    fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        let served = self.served.clone().try_acquire_owned();
        served
            .or_else(|_| self.spare.clone().try_acquire_owned())
            .ok()
    }

    /// The next free place, a served one first (cancel-safe: a place not taken stays free).
    async fn take(&self) -> OwnedSemaphorePermit {
        if let Some(place) = self.try_take() {
            return place;
        }
        let taken = tokio::select! {
            biased;
            p = self.served.clone().acquire_owned() => p,
            p = self.spare.clone().acquire_owned() => p,
        };
        match taken {
            Ok(place) => place,
            // Never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Accepting again after a failure, later each time it fails again, without stopping the event
/// loop meanwhile.
struct Backoff {
    next: Duration,
    until: Option<tokio::time::Instant>,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: ACCEPT_BACKOFF,
            until: None,
        }
    }

    /// A failure: how long accepting pauses.
    fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.until = Some(tokio::time::Instant::now() + wait);
        self.next = (wait * 2).min(ACCEPT_BACKOFF_MAX);
        wait
    }

    fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF;
    }

    fn paused(&self) -> bool {
        self.until.is_some()
    }
}

/// The I/O side of a running broker: everything the state machine's actions touch.
struct Io {
    clients: HashMap<ClientId, ClientHandle>,
    next_client: ClientId,
    places: Places,
    events: Sender<Event>,
    app: AppServerLink,
    /// The home named by the environment, until the app-server names its own.
    home: PathBuf,
    ready_fd: ReadyPipe,
    ready: bool,
    /// Clients with file work running for one of their requests (a thread carried in from
    /// another home, say), and their lines that came after it: a client's requests keep their
    /// order, and every other client goes on meanwhile.
    held: HashMap<ClientId, VecDeque<String>>,
    /// Threads of other homes to merge into the answer to a client's `thread/list`, by the
    /// client and its request id, with the request's params.
    lists: HashMap<(ClientId, String), (Value, Vec<Value>)>,
}

impl Io {
    /// Carries out actions in order; Some(reason) when one of them stops the broker.
    fn carry_out(&mut self, state: &mut State, actions: Vec<Action>) -> Option<StopReason> {
        let mut actions = VecDeque::from(actions);
        while let Some(action) = actions.pop_front() {
            match action {
                Action::ToClient(id, mut msg) => {
                    let Some(c) = self.clients.get(&id) else {
                        continue;
                    };
                    if let Message::Response { id: rid, outcome } = &mut msg
                        && let Some((params, extra)) = self.lists.remove(&(id, rid.to_string()))
                        && let Ok(result) = outcome
                    {
                        *result = threads::merge_list(std::mem::take(result), extra, &params);
                    }
                    let line = msg.to_value().to_string();
                    let queued = c.queued.bytes();
                    if queued > 0 && queued + line.len() > MAX_QUEUED_BYTES {
                        eprintln!(
                            "codex-as broker: {} stopped reading ({queued} bytes unread); disconnecting it",
                            describe(id, c.pid)
                        );
                        self.forget(id);
                        actions.extend(state.on_disconnect(id, Instant::now()));
                        continue;
                    }
                    c.queued.add(line.len());
                    let _ = c.tx.send(line);
                }
                Action::ToAppServer(msg) => self.app.send(msg.to_value().to_string()),
                Action::Ready(result) => {
                    // The app-server may have just created a default home, and it says which
                    // home it uses: the most authoritative answer there is.
                    let reported = result
                        .get("codexHome")
                        .and_then(Value::as_str)
                        .map(PathBuf::from);
                    if let Some(home) = reported {
                        // A listener is found by a path inside the home, but any home's Codex
                        // could have been told to listen there: its work would land in that
                        // other home, under that other login.
                        if let AppServerLink::Listener(link) = &self.app
                            && !crate::account::same_home(&home, &self.home)
                        {
                            return Some(StopReason::InitFailed(format!(
                                "the Codex listener at {} serves {}, not this account's home {}: not using it",
                                link.path().display(),
                                home.display(),
                                self.home.display()
                            )));
                        }
                        self.home = home;
                    }
                    state.set_identity(Identity::of_home(&self.home));
                    self.ready_fd.signal();
                    self.ready = true;
                }
                Action::Stop(reason) => return Some(reason),
            }
        }
        None
    }

    fn add_client(&mut self, state: &mut State, stream: UnixStream, place: OwnedSemaphorePermit) {
        let id = self.next_client;
        self.next_client += 1;
        // Whose turn hit a usage limit is asked later by the client's pid (the fallback checks
        // the companion it started), so note it while the kernel can still tell.
        let pid = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|p| u32::try_from(p).ok());
        let gate = self.app.gate();
        let client = start_client(id, pid, stream, place, self.events.clone(), gate);
        self.clients.insert(id, client);
        state.on_connect(id, Instant::now());
        if let Some(pid) = pid {
            state.set_peer_pid(id, pid);
        }
    }

    /// Forgets clients that already hung up, except `asker`: a decision about the broker's life
    /// must not count a connection that is gone (a status probe just before a shutdown) only
    /// because its end of file has not reached the event loop yet.
    fn drop_hung_up(&mut self, state: &mut State, asker: ClientId) -> Vec<Action> {
        let gone: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(id, c)| **id != asker && c.hung_up())
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for id in gone {
            self.forget(id);
            actions.extend(state.on_disconnect(id, Instant::now()));
        }
        actions
    }

    /// A client that is gone: its connection, its held lines, its pending list merges.
    fn forget(&mut self, id: ClientId) {
        if let Some(c) = self.clients.remove(&id) {
            c.abort();
        }
        self.held.remove(&id);
        self.lists.retain(|(c, _), _| *c != id);
    }

    /// A line from a client: queued behind file work still running for that client, started
    /// on file work of its own (off the event loop), or handed to the state machine.
    fn client_line(
        &mut self,
        state: &mut State,
        listener: Option<&UnixListener>,
        lease_held: &dyn Fn() -> bool,
        id: ClientId,
        line: String,
    ) -> Vec<Action> {
        if let Some(queue) = self.held.get_mut(&id) {
            queue.push_back(line);
            return Vec::new();
        }
        let msg = Message::parse(&line);
        if let Ok(Message::Request { method, params, .. }) = &msg
            && self.ready
            && threads::needs_preparing(method, params.as_ref())
        {
            self.held.insert(id, VecDeque::new());
            let loaded =
                p::str_param(params.as_ref(), "threadId").is_some_and(|t| state.is_loaded(t));
            let own = self.home.clone();
            let (method, params) = (method.clone(), params.clone());
            let events = self.events.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = threads::prepare(&own, &method, params.as_ref(), loaded);
                let _ = events.blocking_send(Event::Prepared {
                    client: id,
                    line,
                    outcome,
                });
            });
            return Vec::new();
        }
        let mut actions = Vec::new();
        if line.contains(p::BROKER_SHUTDOWN) {
            actions = self.settle_for_shutdown(state, listener, id);
            state.set_lease_held(lease_held());
        }
        actions.extend(state.on_client_message(id, msg, Instant::now()));
        actions
    }

    /// The file work for a client's request is done: the request is answered or forwarded,
    /// then the client's lines that waited for it go on, in order.
    fn prepared(
        &mut self,
        state: &mut State,
        listener: Option<&UnixListener>,
        lease_held: &dyn Fn() -> bool,
        client: ClientId,
        line: String,
        outcome: Prepared,
    ) -> Vec<Action> {
        // A client that left meanwhile: nothing to answer (a carry already done stays done).
        let Some(mut queued) = self.held.remove(&client) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let msg = Message::parse(&line);
        match (outcome, &msg) {
            (Prepared::Refuse(why), Ok(Message::Request { id, .. })) => {
                actions.push(Action::ToClient(
                    client,
                    Message::err(id.clone(), p::SERVER_ERROR, why),
                ));
            }
            (Prepared::Refuse(_), _) => {}
            (Prepared::List(extra), Ok(Message::Request { id, params, .. })) => {
                let params = params.clone().unwrap_or(Value::Null);
                self.lists.insert((client, id.to_string()), (params, extra));
                actions.extend(state.on_client_message(client, msg, Instant::now()));
            }
            _ => actions.extend(state.on_client_message(client, msg, Instant::now())),
        }
        while let Some(next) = queued.pop_front() {
            actions.extend(self.client_line(state, listener, lease_held, client, next));
            if let Some(held) = self.held.get_mut(&client) {
                held.extend(queued.drain(..));
                break;
            }
        }
        actions
    }

    /// Connections waiting in the listen backlog, accepted now as far as there are places: a
    /// decision about the broker's life (a shutdown) must count clients that already connected,
    /// even if the event loop has not looked at them yet (after a SIGSTOP, say). With no place
    /// left, `--max-clients` and the spare places are taken, so the broker is not idle anyway.
    /// How many were accepted.
    fn accept_queued(&mut self, state: &mut State, listener: Option<&UnixListener>) -> usize {
        let Some(listener) = listener else { return 0 };
        let flags =
            nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC;
        let mut accepted = 0;
        while let Some(place) = self.places.try_take()
            && let Ok(fd) = nix::sys::socket::accept4(listener.as_raw_fd(), flags)
        {
            // SAFETY: accept4 just returned this descriptor, owned by nobody else.
            let std_stream = unsafe {
                <std::os::unix::net::UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd)
            };
            if let Ok(stream) = UnixStream::from_std(std_stream) {
                self.add_client(state, stream, place);
                accepted += 1;
            }
        }
        accepted
    }

    /// Judges a `broker/shutdown` against everything that is here now: queued clients count,
    /// clients that already left do not. Leavers free places for queued clients, so both are
    /// repeated until nothing changes.
    fn settle_for_shutdown(
        &mut self,
        state: &mut State,
        listener: Option<&UnixListener>,
        asker: ClientId,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        loop {
            actions.extend(self.drop_hung_up(state, asker));
            if self.accept_queued(state, listener) == 0 {
                return actions;
            }
        }
    }

    /// Connections that were queued when the listener closed: served as far as there are
    /// places; the others are refused (they connected past every limit).
    fn adopt(&mut self, state: &mut State, queued: Vec<UnixStream>) {
        let mut refused = 0;
        for stream in queued {
            match self.places.try_take() {
                Some(place) => self.add_client(state, stream, place),
                None => refused += 1,
            }
        }
        if refused > 0 {
            eprintln!(
                "codex-as broker: refused {refused} connections queued past the {} clients and {SPARE_PLACES} spare places it holds",
                self.places.max_clients
            );
        }
    }

    /// Gives clients a bounded time to take their last answers, then lets them go.
    async fn close_clients(&mut self) {
        let deadline = tokio::time::Instant::now() + FLUSH_GRACE;
        for (_, c) in self.clients.drain() {
            drop(c.tx);
            drop(c.queued);
            c.reader.abort();
            let _ = tokio::time::timeout_at(deadline, c.writer).await;
        }
    }
}

/// Runs the broker until it stops; Ok with the reason for a clean stop after it was ready.
pub async fn serve(mut opts: Options) -> Result<StopReason, BrokerError> {
    let ready_fd = ReadyPipe(opts.ready.take());
    let socket_path = endpoint::socket_path(&opts.endpoint)?;
    let mut signals = Signals::new()?;
    // `listener` is bound after `files`, so that on an early return it closes before the
    // socket file is removed.
    let (mut files, listener) = listen(&socket_path, opts.pid_file.as_deref())?;
    let mut listener = Some(listener);
    let lease = Lease::of_socket(&socket_path);
    let lease_held = || lease.held();

    let (events_tx, mut events): (Sender<Event>, Receiver<Event>) = mpsc::channel(EVENT_QUEUE);
    let (mut io, mut state, mut actions) = Io::start(&mut opts, ready_fd, events_tx).await?;
    let mut backoff = Backoff::new();
    let mut app_exit = AppExit::default();
    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        if let Some(reason) = io.carry_out(&mut state, std::mem::take(&mut actions)) {
            break reason;
        }
        let idle_deadline = match (opts.idle_exit, state.unused_since(), state.phase()) {
            (Some(after), Some(since), Phase::Serving) => {
                Some(tokio::time::Instant::from_std(since + after))
            }
            _ => None,
        };
        let accepting = state.phase() == Phase::Serving;

        tokio::select! {
            biased;
            () = signals.any() => actions = state.on_stop(StopReason::Signal),
            Some(event) = events.recv() => {
                let observer = opts.observer.as_mut();
                actions = io.on_event(&mut state, listener.as_ref(), &lease_held, observer, &mut app_exit, event).await;
            }
            accepted = accept(listener.as_ref(), &io.places), if accepting && !backoff.paused() => match accepted {
                Ok((stream, place)) => {
                    backoff.succeeded();
                    io.add_client(&mut state, stream, place);
                }
                Err(e) => {
                    // Out of file descriptors, typically: serve the others, who may leave.
                    let wait = backoff.failed();
                    eprintln!("codex-as broker: accept failed: {e}; accepting again in {wait:?}");
                }
            },
            _ = sleep_until(backoff.until), if backoff.paused() => backoff.until = None,
            exited = io.app.wait(), if !app_exit.waited => {
                app_exit.waited = true;
                app_exit.status = exited.ok();
                app_exit.deadline = Some(tokio::time::Instant::now() + EXIT_GRACE);
            }
            _ = sleep_until(app_exit.deadline), if app_exit.deadline.is_some() => {
                app_exit.deadline = None;
                actions = state.on_app_server_gone(app_server::describe_exit(app_exit.status));
            }
            _ = watch.tick() => {
                state.set_lease_held(lease_held());
                if state.phase() == Phase::Serving
                    && !keep_findable(&mut files, &mut listener, &opts.pid_file)
                {
                    // Another broker took our path: nobody can find this one any more, so it
                    // serves whoever is connected and stops.
                    actions = io.stop_accepting(&mut state, &mut listener, &mut files);
                }
            }
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                if lease_held() {
                    state.set_lease_held(true);
                    state.restart_unused_clock(Instant::now());
                    continue;
                }
                if io.app.held_by_others() {
                    // A TUI (say) uses the listener codex-as started: stay, to stop it once
                    // they are gone.
                    state.restart_unused_clock(Instant::now());
                    continue;
                }
                // Decided here, between two events: no client can be half-accepted. Clients that
                // connected in the meantime sit in the listen backlog; shutting the listener
                // refuses all later ones, and those already queued are served before stopping.
                actions = io.stop_accepting(&mut state, &mut listener, &mut files);
            }
        }
    };

    finish(reason, listener, files, io, app_exit.status).await
}

/// The signals that stop a broker (whatever it is doing: only an idle broker stops otherwise).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, BrokerError> {
        let on = |kind| signal(kind).map_err(BrokerError::Io);
        Ok(Signals {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// The next of them to come.
    async fn any(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// How the app-server's process ended, and when its closed output counts as it being gone.
#[derive(Default)]
struct AppExit {
    status: Option<ExitStatus>,
    /// Its process was reaped.
    waited: bool,
    /// Reaped while its output was still open: gone anyway at this time.
    deadline: Option<tokio::time::Instant>,
}

impl Io {
    /// Starts the app-server and the state machine: the I/O side, the state, and its first
    /// actions (the app-server's `initialize`).
    async fn start(
        opts: &mut Options,
        ready_fd: ReadyPipe,
        events: Sender<Event>,
    ) -> Result<(Io, State, Vec<Action>), BrokerError> {
        let home = identity::codex_home_from_env().unwrap_or_default();
        let runtime = endpoint::socket_path(&opts.endpoint)?;
        let place = Place {
            codex: &opts.codex,
            cwd: &opts.cwd,
            home: &home,
            runtime: runtime.parent().unwrap_or(Path::new("/")),
            prefer: opts.app_server,
        };
        let app = AppServerLink::open(&place, events.clone(), Event::AppServer).await?;
        let facts = Facts {
            pid: std::process::id(),
            app_server_pid: app.pid(),
            started_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            cwd: opts.cwd.to_string_lossy().into_owned(),
            endpoint: opts.endpoint.clone(),
            identity: Identity::of_home(&home),
        };
        let limits = Limits {
            max_clients: opts.max_clients,
        };
        let (mut state, first) = State::with_limits(facts, limits, Instant::now());
        state.set_app_server_kind(app.kind());
        let io = Io {
            clients: HashMap::new(),
            next_client: 1,
            places: Places::new(opts.max_clients),
            events,
            app,
            home,
            ready_fd,
            ready: false,
            held: HashMap::new(),
            lists: HashMap::new(),
        };
        Ok((io, state, first))
    }

    /// One input from a client, the file work for one, or the app-server, as the state
    /// machine's next actions.
    async fn on_event(
        &mut self,
        state: &mut State,
        listener: Option<&UnixListener>,
        lease_held: &dyn Fn() -> bool,
        observer: Option<&mut Observer>,
        app_exit: &mut AppExit,
        event: Event,
    ) -> Vec<Action> {
        match event {
            Event::ClientLine(id, line) => self.client_line(state, listener, lease_held, id, line),
            Event::Prepared {
                client,
                line,
                outcome,
            } => self.prepared(state, listener, lease_held, client, line, outcome),
            Event::ClientClosed(id) => {
                self.forget(id);
                state.on_disconnect(id, Instant::now())
            }
            Event::AppServer(Output::Line(line)) => app_server_line(state, observer, &line),
            Event::AppServer(Output::TooLong { read, head }) => {
                app_server_line_too_long(state, read, &head)
            }
            Event::AppServer(Output::Closed) => {
                let how = self.app.gone(app_exit.status, EXIT_GRACE).await;
                state.on_app_server_gone(how)
            }
        }
    }

    /// Closes the listener and drains: connections already queued are served as far as there
    /// are places, later ones are refused, and the broker stops once its work is done.
    fn stop_accepting(
        &mut self,
        state: &mut State,
        listener: &mut Option<UnixListener>,
        files: &mut Files,
    ) -> Vec<Action> {
        self.adopt(state, close_listener(listener.take(), files));
        state.begin_draining(Instant::now())
    }
}

/// Binds the socket (privately, never over a live broker's) and writes the pid file: the files
/// to remove however the broker ends, and the listener, not accepting yet.
fn listen(
    socket_path: &Path,
    pid_file: Option<&Path>,
) -> Result<(Files, UnixListener), BrokerError> {
    let (std_listener, bound) = endpoint::bind(socket_path)?;
    let mut files = Files {
        socket: Some(bound),
        pid_file: None,
        record: None,
    };
    // Dropped before `files` on an early return: the listener closes before the file goes.
    let std_listener = std_listener;
    if let Some(p) = pid_file {
        // Like the plugin's broker, create the folder when missing (privately).
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        parent
            .map_or(Ok(()), crate::sys::fsutil::create_private_dir)
            .and_then(|()| {
                crate::sys::fsutil::write_private_atomic(
                    p,
                    format!("{}\n", std::process::id()).as_bytes(),
                )
            })
            .map_err(|source| BrokerError::PidFile {
                path: p.to_path_buf(),
                source,
            })?;
        files.pid_file = Some(p.to_path_buf());
    }
    std_listener
        .set_nonblocking(true)
        .map_err(BrokerError::Io)?;
    let listener = UnixListener::from_std(std_listener).map_err(BrokerError::Io)?;
    Ok((files, listener))
}

/// Where a Claude Code session's lease on this broker would be: in the runtime folder, named
/// by the account's key (the socket's name).
struct Lease {
    runtime_dir: PathBuf,
    account_key: String,
}

impl Lease {
    fn of_socket(socket_path: &Path) -> Lease {
        Lease {
            runtime_dir: socket_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            account_key: socket_path
                .file_stem()
                .map(|s| Registry::key_of(&s.to_string_lossy()).to_string())
                .unwrap_or_default(),
        }
    }

    fn held(&self) -> bool {
        lease::held(&self.runtime_dir, &self.account_key)
    }
}

/// Stops a broker whose event loop ended: refuses newcomers first (so a successor can take the
/// path at once), lets clients take their last answers, stops the app-server. An error when it
/// never got ready, saying why.
async fn finish(
    reason: StopReason,
    mut listener: Option<UnixListener>,
    mut files: Files,
    mut io: Io,
    app_exit: Option<ExitStatus>,
) -> Result<StopReason, BrokerError> {
    drop(close_listener(listener.take(), &mut files));
    files.remove_socket();
    io.close_clients().await;
    let ready = io.ready;
    let status = io.app.stop().await.or(app_exit);
    drop(files);
    if !ready {
        let why = match reason {
            StopReason::InitFailed(why) | StopReason::AppServerGone(why) => why,
            StopReason::Signal => "stopped by a signal before it was ready".into(),
            _ => app_server::describe_exit(status),
        };
        return Err(BrokerError::AppServer(why));
    }
    Ok(reason)
}

/// A line from the app-server, shown to the observer and handed to the state machine.
fn app_server_line(state: &mut State, observer: Option<&mut Observer>, line: &str) -> Vec<Action> {
    match Message::parse(line) {
        Ok(msg) => {
            if let Some(observe) = observer {
                observe(&msg);
            }
            state.on_app_server_message(msg, Instant::now())
        }
        Err(why) => {
            eprintln!("codex-as broker: ignoring a line from codex app-server: {why}");
            Vec::new()
        }
    }
}

/// A line from the app-server past [`lines::MAX_LINE`], already dropped: said in the log, and
/// when it was an answer, its request fails instead of waiting forever.
fn app_server_line_too_long(state: &mut State, read: usize, head: &str) -> Vec<Action> {
    let mib = lines::MAX_LINE >> 20;
    eprintln!(
        "codex-as broker: codex app-server sent a line too long ({read} bytes, over {mib} MiB); dropped it"
    );
    let Some(id) = answer_id(head) else {
        return Vec::new();
    };
    let why = format!(
        "codex app-server's answer was too long for codex-as's broker ({read} bytes, over {mib} MiB)"
    );
    state.on_app_server_message(
        Message::err(json!(id), p::SERVER_ERROR, why),
        Instant::now(),
    )
}

/// The next connection, once it has a place (taking the place first is what keeps the
/// connections past the limits in the listen backlog).
async fn accept(
    listener: Option<&UnixListener>,
    places: &Places,
) -> std::io::Result<(UnixStream, OwnedSemaphorePermit)> {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    let place = places.take().await;
    l.accept().await.map(|(s, _)| (s, place))
}

/// The id of a JSON-RPC answer from how its line begins (`{"id":N,...`, as Codex writes them).
fn answer_id(head: &str) -> Option<u64> {
    let rest = head.strip_prefix("{\"id\":")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..digits].parse().ok()
}

/// A client as the log names it.
fn describe(id: ClientId, pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("client {id} (pid {pid})"),
        None => format!("client {id}"),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Starts the client's reader and writer. The reader reads a line only while the app-server
/// keeps up with its input (`gate`) and the event loop has room for it: otherwise the client's
/// bytes wait in its socket, and the client, not the broker, holds them.
fn start_client(
    id: ClientId,
    pid: Option<u32>,
    stream: UnixStream,
    place: OwnedSemaphorePermit,
    events: Sender<Event>,
    mut gate: watch::Receiver<bool>,
) -> ClientHandle {
    let stream = Arc::new(stream);
    let (tx, rx): (UnboundedSender<String>, UnboundedReceiver<String>) = mpsc::unbounded_channel();
    let queued = Backlog::new(MAX_QUEUED_BYTES);
    let writer = tokio::spawn(lines::write_lines(
        Shared(stream.clone()),
        rx,
        Some(queued.clone()),
    ));
    let read = Shared(stream.clone());
    let reader = tokio::spawn(async move {
        let mut read = BufReader::new(read);
        loop {
            // Closed only once the app-server is gone, when nothing waits for it any more.
            let _ = gate.wait_for(|open| *open).await;
            match lines::read_line(&mut read).await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => {
                    if events.send(Event::ClientLine(id, line)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(long) = lines::too_long(&e) {
                        let who = describe(id, pid);
                        eprintln!("codex-as broker: {who} sent {long}; disconnecting it");
                    }
                    break;
                }
            }
        }
        let _ = events.send(Event::ClientClosed(id)).await;
    });
    ClientHandle {
        tx,
        stream,
        pid,
        queued,
        writer,
        reader,
        _place: place,
    }
}

/// A client's socket shared by its reader and writer tasks and the event loop: one descriptor
/// per client (tokio's own split halves would leave the event loop none to poll).
struct Shared(Arc<UnixStream>);

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(data) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let done =
            nix::sys::socket::shutdown(self.0.as_raw_fd(), nix::sys::socket::Shutdown::Write);
        Poll::Ready(done.map_err(std::io::Error::from))
    }
}

/// The inherited readiness pipe `--ready-fd N` names, owned and kept from every child.
pub fn take_ready_fd(fd: i32) -> Result<OwnedFd, BrokerError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    if fd < 3 {
        return Err(BrokerError::ReadyFd(fd));
    }
    // SAFETY: nothing else in this process knows this descriptor: it was inherited for this
    // one purpose, and it is checked to be open before being owned.
    let owned = unsafe {
        use std::os::fd::FromRawFd;
        if nix::libc::fcntl(fd, nix::libc::F_GETFD) < 0 {
            return Err(BrokerError::ReadyFd(fd));
        }
        OwnedFd::from_raw_fd(fd)
    };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|_| BrokerError::ReadyFd(fd))?;
    Ok(owned)
}

/// The readiness pipe to the spawner: `ready` once the broker serves, then end of file. A broker
/// that never got ready leaves it open until the process exits: the spawner takes the end of
/// file as "failed, the log says why", and the reason is printed on the way out, after this is
/// dropped.
struct ReadyPipe(Option<OwnedFd>);

impl ReadyPipe {
    fn signal(&mut self) {
        if let Some(fd) = self.0.take() {
            let mut f = File::from(fd);
            let _ = f.write_all(b"ready\n");
        }
    }
}

impl Drop for ReadyPipe {
    fn drop(&mut self) {
        // Closed by the kernel at exit (close-on-exec keeps it from the app-server).
        if let Some(fd) = self.0.take() {
            std::mem::forget(fd);
        }
    }
}

/// An absolute working directory for the app-server, checked to exist.
pub fn resolve_cwd(cwd: Option<&Path>) -> Result<PathBuf, BrokerError> {
    let raw = cwd.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::canonicalize(&raw).map_err(|source| BrokerError::Cwd { dir: raw, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() {
        let mut b = Backoff::new();
        assert!(!b.paused());
        let waits: Vec<Duration> = (0..10).map(|_| b.failed()).collect();
        assert!(b.paused());
        assert_eq!(waits[0], ACCEPT_BACKOFF);
        assert_eq!(waits[1], ACCEPT_BACKOFF * 2);
        assert_eq!(waits[9], ACCEPT_BACKOFF_MAX);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        b.succeeded();
        assert_eq!(b.failed(), ACCEPT_BACKOFF);
    }

    #[test]
    fn an_answers_id_is_read_from_how_its_line_begins() {
        assert_eq!(answer_id(r#"{"id":42,"result":{"x""#), Some(42));
        assert_eq!(answer_id(r#"{"method":"item/completed","params""#), None);
        assert_eq!(answer_id(r#"{"id":"a","result""#), None);
        assert_eq!(
            answer_id(r#"{"id":12"#),
            None,
            "cut in the middle of the id"
        );
    }
}
