//! The event loop: the only place that does I/O for the broker. Every input becomes one call
//! into [`State`], whose actions are carried out before the next input is looked at; that is
//! what makes decisions such as the idle exit atomic with respect to clients.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::BrokerError;
use super::app_server::{self, AppServer, Output};
use super::endpoint::{self, BoundSocket};
use super::lines;
use super::protocol::Message;
use super::state::{Action, ClientId, Facts, Phase, State, StopReason};
use crate::identity::{self, Identity};

pub struct Options {
    pub endpoint: String,
    pub cwd: PathBuf,
    pub idle_exit: Option<Duration>,
    pub pid_file: Option<PathBuf>,
    pub codex: PathBuf,
    /// Written `ready\n` once clients can be served, then closed.
    pub ready: Option<OwnedFd>,
}

enum Event {
    ClientLine(ClientId, String),
    ClientClosed(ClientId),
    AppServer(Output),
}

struct ClientHandle {
    tx: UnboundedSender<String>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

/// Files to remove however the broker ends, early errors included.
struct Files {
    socket: Option<BoundSocket>,
    pid_file: Option<PathBuf>,
}

impl Files {
    fn remove_socket(&mut self) {
        if let Some(s) = self.socket.take() {
            s.remove();
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.remove_socket();
        if let Some(p) = self.pid_file.take() {
            let ours = format!("{}\n", std::process::id());
            if std::fs::read_to_string(&p).is_ok_and(|c| c == ours) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// How long a stopping broker gives clients to take their last answers.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// How long the app-server may keep stdout open after its process exited (a grandchild may hold
/// it); past that it counts as gone.
const EXIT_GRACE: Duration = Duration::from_secs(2);

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
    };
    // Declared after `files` so that on an early return the listener closes before the socket
    // file is removed.
    let std_listener = bound_listener;
    if let Some(p) = &opts.pid_file {
        crate::fsutil::write_private_atomic(p, format!("{}\n", std::process::id()).as_bytes())
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
    let mut app = AppServer::spawn(&opts.codex, &opts.cwd, events_tx.clone(), Event::AppServer)?;
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let home = identity::codex_home_from_env().unwrap_or_default();
    let facts = Facts {
        pid: std::process::id(),
        app_server_pid: app.pid(),
        started_at,
        cwd: opts.cwd.to_string_lossy().into_owned(),
        endpoint: opts.endpoint.clone(),
        identity: Identity::of_home(&home),
    };
    let (mut state, first) = State::new(facts, Instant::now());

    let mut clients: HashMap<ClientId, ClientHandle> = HashMap::new();
    let mut next_client: ClientId = 1;
    let mut app_exit: Option<std::process::ExitStatus> = None;
    let mut exit_deadline: Option<tokio::time::Instant> = None;
    let mut ready = false;

    let mut actions = first;
    let reason = 'serve: loop {
        for action in actions.drain(..) {
            match action {
                Action::ToClient(id, msg) => {
                    if let Some(c) = clients.get(&id) {
                        let _ = c.tx.send(msg.to_value().to_string());
                    }
                }
                Action::ToAppServer(msg) => app.send(msg.to_value().to_string()),
                Action::Ready(result) => {
                    // The app-server may have created a default home; it also says which one
                    // it uses, which is the most authoritative answer there is.
                    let reported = result
                        .get("codexHome")
                        .and_then(Value::as_str)
                        .map(PathBuf::from);
                    state.set_identity(Identity::of_home(reported.as_deref().unwrap_or(&home)));
                    signal_ready(opts.ready.take());
                    ready = true;
                }
                Action::Stop(reason) => break 'serve reason,
            }
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
                    actions = state.on_client_message(id, Message::parse(&line), now());
                }
                Event::ClientClosed(id) => {
                    clients.remove(&id);
                    actions = state.on_disconnect(id, now());
                }
                Event::AppServer(Output::Line(line)) => match Message::parse(&line) {
                    Ok(msg) => actions = state.on_app_server_message(msg, now()),
                    Err(why) => eprintln!("codex-as broker: ignoring a line from codex app-server: {why}"),
                },
                Event::AppServer(Output::Closed) => {
                    let status = match app_exit {
                        Some(s) => Some(s),
                        None => tokio::time::timeout(EXIT_GRACE, app.wait()).await.ok().and_then(Result::ok),
                    };
                    app_exit = status;
                    actions = state.on_app_server_gone(app_server::describe_exit(status));
                }
            },
            accepted = accept(listener.as_ref()), if accepting => {
                if let Ok(stream) = accepted {
                    let id = next_client;
                    next_client += 1;
                    let pid = stream.peer_cred().ok().and_then(|c| c.pid());
                    clients.insert(id, start_client(id, stream, events_tx.clone()));
                    state.on_connect(id, now());
                    if let Some(pid) = pid.and_then(|p| u32::try_from(p).ok()) {
                        state.set_peer_pid(id, pid);
                    }
                }
            }
            exited = app.wait(), if app_exit.is_none() => {
                app_exit = exited.ok();
                exit_deadline = Some(tokio::time::Instant::now() + EXIT_GRACE);
            }
            _ = sleep_until(exit_deadline), if exit_deadline.is_some() => {
                exit_deadline = None;
                actions = state.on_app_server_gone(app_server::describe_exit(app_exit));
            }
            _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                // Decided here, between two events: no client can be half-accepted. Clients that
                // connected in the meantime sit in the listen backlog; shutting the listener
                // refuses all later ones, and those already queued are served before stopping.
                let queued = close_listener(listener.take(), &mut files);
                for stream in queued {
                    let id = next_client;
                    next_client += 1;
                    clients.insert(id, start_client(id, stream, events_tx.clone()));
                    state.on_connect(id, now());
                }
                actions = state.begin_draining(now());
            }
        }
    };

    // Refuse newcomers first, so a successor broker can take the path at once.
    drop(close_listener(listener.take(), &mut files));
    files.remove_socket();
    let flush_deadline = tokio::time::Instant::now() + FLUSH_GRACE;
    for (_, c) in clients.drain() {
        drop(c.tx);
        c.reader.abort();
        if tokio::time::timeout_at(flush_deadline, c.writer)
            .await
            .is_err()
        {
            // A client that does not read its last answers does not hold the exit up.
        }
    }
    let status = app.stop().await.or(app_exit);
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

/// Stops the listener atomically (later connects are refused by the kernel), removes the socket
/// file, and returns the connections that were already queued.
fn close_listener(listener: Option<UnixListener>, files: &mut Files) -> Vec<UnixStream> {
    let Some(listener) = listener else {
        return Vec::new();
    };
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    files.remove_socket();
    let mut queued = Vec::new();
    if let Ok(std_listener) = listener.into_std() {
        while let Ok((s, _)) = std_listener.accept() {
            if s.set_nonblocking(true).is_ok() {
                if let Ok(s) = UnixStream::from_std(s) {
                    queued.push(s);
                }
            }
        }
    }
    queued
}

fn start_client(id: ClientId, stream: UnixStream, events: UnboundedSender<Event>) -> ClientHandle {
    let (read, write) = stream.into_split();
    let (tx, rx): (UnboundedSender<String>, UnboundedReceiver<String>) = mpsc::unbounded_channel();
    let writer = tokio::spawn(lines::write_lines(write, rx));
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
    ClientHandle { tx, writer, reader }
}

/// Tells the spawner the broker is ready: one line, then end of file.
fn signal_ready(fd: Option<OwnedFd>) {
    if let Some(fd) = fd {
        let mut f = File::from(fd);
        let _ = f.write_all(b"ready\n");
    }
}

/// The `codex` to run: `$CODEX_AS_CODEX` when set, else the first `codex` on PATH.
pub fn find_codex() -> Result<PathBuf, BrokerError> {
    if let Some(p) = std::env::var_os("CODEX_AS_CODEX").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    which::which("codex").map_err(|_| BrokerError::CodexNotFound)
}

/// An absolute working directory for the app-server, checked to exist.
pub fn resolve_cwd(cwd: Option<&Path>) -> Result<PathBuf, BrokerError> {
    let raw = cwd.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::canonicalize(&raw).map_err(|source| BrokerError::Cwd { dir: raw, source })
}
