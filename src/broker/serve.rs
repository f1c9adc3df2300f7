//! The event loop: the only place that does I/O for the broker. Every input becomes one call
//! into [`State`], whose actions are carried out before the next input is looked at; that is
//! what makes decisions such as the idle exit atomic with respect to clients.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::BrokerError;
use super::app_server::{self, AppServer, Output};
use super::endpoint;
use super::presence::{Files, close_listener, keep_findable};
use super::protocol::Message;
use super::protocol::{self as p};
use super::registry::Registry;
use super::state::{Action, ClientId, Facts, Limits, Phase, State, StopReason};
use super::threads::{self, Prepared};
use super::{lease, lines};
use crate::account::identity::{self, Identity};

pub struct Options {
    pub endpoint: String,
    pub cwd: PathBuf,
    pub idle_exit: Option<Duration>,
    pub pid_file: Option<PathBuf>,
    /// Clients served at once (see [`Limits`]).
    pub max_clients: usize,
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
    /// A duplicate of the socket, to ask the kernel whether the peer has hung up.
    peer: Option<OwnedFd>,
    /// Bytes queued for this client and not yet written to its socket.
    queued: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl ClientHandle {
    fn abort(self) {
        self.reader.abort();
        self.writer.abort();
    }

    /// Whether the other end has closed the connection (its end of file may still be on its
    /// way to the event loop).
    fn hung_up(&self) -> bool {
        let Some(fd) = &self.peer else { return false };
        let mut pfd = nix::libc::pollfd {
            fd: fd.as_raw_fd(),
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
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The most a client may have queued and unread. A client that stops reading is disconnected
/// when its queue would pass this, as if it had left (its own turn is interrupted): it must not
/// grow the broker's memory, and the other clients are served by their own writers meanwhile.
/// One message bigger than this (a long thread's history) still goes to a client whose queue
/// is empty.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// How often the broker checks that it can still be found (its socket file, its record) and
/// whether a lease holds it.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The I/O side of a running broker: everything the state machine's actions touch.
struct Io {
    clients: HashMap<ClientId, ClientHandle>,
    next_client: ClientId,
    events: UnboundedSender<Event>,
    app: AppServer,
    /// The home named by the environment, until the app-server names its own.
    home: PathBuf,
    ready_fd: Option<OwnedFd>,
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
                    let queued = c.queued.load(Ordering::Acquire);
                    if queued > 0 && queued + line.len() > MAX_QUEUED_BYTES {
                        eprintln!(
                            "codex-as broker: client {id} stopped reading ({queued} bytes unread); disconnecting it"
                        );
                        self.forget(id);
                        actions.extend(state.on_disconnect(id, Instant::now()));
                        continue;
                    }
                    c.queued.fetch_add(line.len(), Ordering::AcqRel);
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
                        self.home = home;
                    }
                    state.set_identity(Identity::of_home(&self.home));
                    signal_ready(self.ready_fd.take());
                    self.ready = true;
                }
                Action::Stop(reason) => return Some(reason),
            }
        }
        None
    }

    fn add_client(&mut self, state: &mut State, stream: UnixStream) {
        let id = self.next_client;
        self.next_client += 1;
        // Whose turn hit a usage limit is asked later by the client's pid (the fallback checks
        // the companion it started), so note it while the kernel can still tell.
        let pid = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|p| u32::try_from(p).ok());
        self.clients
            .insert(id, start_client(id, stream, self.events.clone()));
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
            let own = self.home.clone();
            let (method, params) = (method.clone(), params.clone());
            let events = self.events.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = threads::prepare(&own, &method, params.as_ref());
                let _ = events.send(Event::Prepared {
                    client: id,
                    line,
                    outcome,
                });
            });
            return Vec::new();
        }
        let mut actions = Vec::new();
        if matches!(&msg, Ok(Message::Request { method, .. }) if method == p::BROKER_SHUTDOWN) {
            // Judged against everything that is here now: queued clients count, clients that
            // already left do not.
            self.accept_queued(state, listener);
            actions = self.drop_hung_up(state, id);
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

    /// Connections waiting in the listen backlog, accepted now: a decision about the broker's
    /// life (a shutdown) must count clients that already connected, even if the event loop has
    /// not looked at them yet (after a SIGSTOP, say).
    fn accept_queued(&mut self, state: &mut State, listener: Option<&UnixListener>) {
        let Some(listener) = listener else { return };
        let flags =
            nix::sys::socket::SockFlag::SOCK_NONBLOCK | nix::sys::socket::SockFlag::SOCK_CLOEXEC;
        while let Ok(fd) = nix::sys::socket::accept4(listener.as_raw_fd(), flags) {
            // SAFETY: accept4 just returned this descriptor, owned by nobody else.
            let std_stream = unsafe {
                <std::os::unix::net::UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd)
            };
            if let Ok(stream) = UnixStream::from_std(std_stream) {
                self.add_client(state, stream);
            }
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
    let socket_path = endpoint::socket_path(&opts.endpoint)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(BrokerError::Io)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(BrokerError::Io)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(BrokerError::Io)?;

    let (bound_listener, bound) = endpoint::bind(&socket_path)?;
    let mut files = Files {
        socket: Some(bound),
        pid_file: None,
        record: None,
    };
    // Leases live in the runtime folder, named by the account's key (the socket's name).
    let runtime_dir = socket_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let account_key = socket_path
        .file_stem()
        .map(|s| Registry::key_of(&s.to_string_lossy()).to_string())
        .unwrap_or_default();
    let lease_held = || lease::held(&runtime_dir, &account_key);
    // Declared after `files` so that on an early return the listener closes before the socket
    // file is removed.
    let std_listener = bound_listener;
    if let Some(p) = &opts.pid_file {
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
                path: p.clone(),
                source,
            })?;
        files.pid_file = Some(p.clone());
    }
    std_listener
        .set_nonblocking(true)
        .map_err(BrokerError::Io)?;
    let mut listener = Some(UnixListener::from_std(std_listener).map_err(BrokerError::Io)?);

    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let app = AppServer::spawn(&opts.codex, &opts.cwd, events_tx.clone(), Event::AppServer)?;
    let home = identity::codex_home_from_env().unwrap_or_default();
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
    let mut io = Io {
        clients: HashMap::new(),
        next_client: 1,
        events: events_tx,
        app,
        home,
        ready_fd: opts.ready.take(),
        ready: false,
        held: HashMap::new(),
        lists: HashMap::new(),
    };

    let mut app_exit: Option<ExitStatus> = None;
    let mut app_waited = false;
    let mut exit_deadline: Option<tokio::time::Instant> = None;
    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut actions = first;
    let reason = loop {
        if let Some(reason) = io.carry_out(&mut state, std::mem::take(&mut actions)) {
            break reason;
        }
        let idle_deadline = match (opts.idle_exit, state.idle_since(), state.phase()) {
            (Some(after), Some(since), Phase::Serving) => {
                Some(tokio::time::Instant::from_std(since + after))
            }
            _ => None,
        };
        let accepting = state.phase() == Phase::Serving;
        let now = Instant::now;

        tokio::select! {
            biased;
            _ = sigterm.recv() => actions = state.on_stop(StopReason::Signal),
            _ = sigint.recv() => actions = state.on_stop(StopReason::Signal),
            _ = sighup.recv() => actions = state.on_stop(StopReason::Signal),
            Some(event) = events.recv() => match event {
                Event::ClientLine(id, line) => {
                    actions = io.client_line(&mut state, listener.as_ref(), &lease_held, id, line);
                }
                Event::Prepared { client, line, outcome } => {
                    actions = io.prepared(&mut state, listener.as_ref(), &lease_held, client, line, outcome);
                }
                Event::ClientClosed(id) => {
                    io.forget(id);
                    actions = state.on_disconnect(id, now());
                }
                Event::AppServer(Output::Line(line)) => match Message::parse(&line) {
                    Ok(msg) => {
                        if let Some(observe) = opts.observer.as_mut() {
                            observe(&msg);
                        }
                        actions = state.on_app_server_message(msg, now());
                    }
                    Err(why) => eprintln!("codex-as broker: ignoring a line from codex app-server: {why}"),
                },
                Event::AppServer(Output::Closed) => {
                    if !app_waited {
                        app_exit = tokio::time::timeout(EXIT_GRACE, io.app.wait())
                            .await
                            .ok()
                            .and_then(Result::ok);
                    }
                    actions = state.on_app_server_gone(app_server::describe_exit(app_exit));
                }
            },
            accepted = accept(listener.as_ref()), if accepting => match accepted {
                Ok(stream) => io.add_client(&mut state, stream),
                Err(e) => {
                    // Out of file descriptors, typically: let clients leave before retrying.
                    eprintln!("codex-as broker: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            exited = io.app.wait(), if !app_waited => {
                app_waited = true;
                app_exit = exited.ok();
                exit_deadline = Some(tokio::time::Instant::now() + EXIT_GRACE);
            }
            _ = sleep_until(exit_deadline), if exit_deadline.is_some() => {
                exit_deadline = None;
                actions = state.on_app_server_gone(app_server::describe_exit(app_exit));
            }
            _ = watch.tick() => {
                state.set_lease_held(lease_held());
                if state.phase() == Phase::Serving
                    && !keep_findable(&mut files, &mut listener, &opts.pid_file)
                {
                    // Another broker took our path: nobody can find this one any more, so it
                    // serves whoever is connected and stops.
                    for stream in close_listener(listener.take(), &mut files) {
                        io.add_client(&mut state, stream);
                    }
                    actions = state.begin_draining(now());
                }
            }
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                if lease_held() {
                    state.set_lease_held(true);
                    state.postpone_idle(now());
                    continue;
                }
                // Decided here, between two events: no client can be half-accepted. Clients that
                // connected in the meantime sit in the listen backlog; shutting the listener
                // refuses all later ones, and those already queued are served before stopping.
                for stream in close_listener(listener.take(), &mut files) {
                    io.add_client(&mut state, stream);
                }
                actions = state.begin_draining(now());
            }
        }
    };

    // Refuse newcomers first, so a successor broker can take the path at once.
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

async fn accept(listener: Option<&UnixListener>) -> std::io::Result<UnixStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn start_client(id: ClientId, stream: UnixStream, events: UnboundedSender<Event>) -> ClientHandle {
    let peer = std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned().ok();
    let (read, write) = stream.into_split();
    let (tx, rx): (UnboundedSender<String>, UnboundedReceiver<String>) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(lines::write_lines_counted(write, rx, queued.clone()));
    let reader = tokio::spawn(async move {
        let mut read = BufReader::new(read);
        while let Ok(Some(line)) = lines::read_line(&mut read).await {
            if line.trim().is_empty() {
                continue;
            }
            if events.send(Event::ClientLine(id, line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::ClientClosed(id));
    });
    ClientHandle {
        tx,
        peer,
        queued,
        writer,
        reader,
    }
}

/// Tells the spawner the broker is ready: one line, then end of file.
fn signal_ready(fd: Option<OwnedFd>) {
    if let Some(fd) = fd {
        let mut f = File::from(fd);
        let _ = f.write_all(b"ready\n");
    }
}

/// An absolute working directory for the app-server, checked to exist.
pub fn resolve_cwd(cwd: Option<&Path>) -> Result<PathBuf, BrokerError> {
    let raw = cwd.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::canonicalize(&raw).map_err(|source| BrokerError::Cwd { dir: raw, source })
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
