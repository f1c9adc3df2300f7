//! codex-as's own app-server broker: one warm `codex app-server` per account, shared by every
//! call of that account at once, in every workspace, over the plugin's wire protocol, with a
//! life codex-as controls (status, shutdown only when idle, exit when idle).
//!
//! - `protocol`: the JSON-RPC line types and the plugin's constants.
//! - `state`: every rule, as a pure state machine.
//! - `serve`: the event loop that feeds the state machine and carries out its actions.
//! - `link`: the one app-server the broker speaks to, behind one interface: the account's own
//!   Codex listener (`listener`) when one is up, else its own child (`app_server`).
//! - `endpoint`: the socket file. `lines`: line I/O.
//! - `presence`: the files that let clients find a broker, kept in place while it serves.
//! - `client`: how codex-as itself talks to a broker (ours or the plugin's), or to an app-server.
//! - `pool`: finding or starting the broker for an account (any workspace), for the companion.
//! - `registry`: records of the brokers codex-as started. `runtime_dir`: their private folder.
//! - `lease`: whether a Claude Code session holds the broker up.
//! - `report`: what `codex-as brokers` lists (ours and the plugin's) and its stop of ours.
//!
//! The server side is `state`, `serve`, `app_server`, `endpoint` and `presence` (it asks
//! `lease`), started only by `codex-as broker serve` (cmd/broker); the rest of codex-as uses
//! `client`, `pool`, `registry`, `protocol` and `lease`.
//!
//! Spawning one: `codex-as broker serve --endpoint unix:PATH --cwd DIR [--idle-exit 30m]
//! [--pid-file PATH] [--ready-fd N] [--max-clients 64]`, with the account's environment (CODEX_HOME decides the
//! account; CODEX_AS_CODEX overrides which `codex` runs). The broker writes `ready\n` to fd N once
//! it listens and its app-server has answered `initialize`, then closes it; end of file without
//! that line means it failed (one line on stderr says why, exit status non-zero). codex-as
//! starts it in the account's home: each thread names its own `cwd` (the companion always sends
//! one), and the real app-server takes the session file, AGENTS.md, project config, review
//! target and sandbox from the thread's `cwd`, not from its own folder.
//!
//! ## Sharing
//!
//! Any number of clients (`--max-clients`, 64 by default) use the one app-server at once; the
//! rules (who owns a thread and hears its events, what is `BUSY`, what a leaving client takes
//! with it, what quiet, unused and idle mean) are written out once, in the module docs of
//! `state`. What bounds a broker's cost is the event loop's (`serve`):
//! - Eight connections past `--max-clients` are held and told they are busy; past those,
//!   connections wait in the listen backlog (a place is taken before a connection is accepted)
//!   until one leaves. A failed accept pauses accepting a while, not serving.
//! - A client that stops reading is disconnected once 16 MiB wait for it, as if it had left; one
//!   that sends a line longer than 64 MiB is too, and the log says which and why.
//! - While 16 MiB wait for the app-server to read them, clients are read no further (their bytes
//!   wait in their sockets). A line longer than 64 MiB from the app-server is dropped and logged;
//!   the request it answered gets an error saying so.
//!
//! ## Codex's own listener
//!
//! When the account's home has a live Codex listener at its standard path
//! (`$CODEX_HOME/app-server-control/app-server-control.sock`: the daemon Codex's TUI starts, or
//! any `codex app-server --listen unix://` of that home), the broker serves its clients through
//! it instead of starting its own `codex app-server`, so that the TUI, the plugin and codex-as
//! share one process and one login refresh for the account. The socket is used only when it,
//! the folder it is in and the process behind it are this user's and closed to others; else, or
//! when nothing answers there, the broker starts its child as before (the log says why). A
//! listener whose `initialize` answer names another home than the broker's is refused, and the
//! broker fails to start saying so: its work would land in that home. The choice is made once,
//! at start (`link`); `broker/status` says which (`appServer`, `appServerUserAgent`). Threads
//! other clients have open on it (`thread/loaded/list` at start, `thread/started` after) count
//! as open: no newer copy of one is carried into the home under it.
//! Its clients keep speaking newline JSON; the broker speaks the listener's WebSocket framing
//! and initializes once, as with the child. What the listener does differently stays hidden:
//! - it tells every client of every thread (`thread/started`, status, `thread/closed`): only
//!   the broker's own clients' threads, and their sub-agents', reach them, as ever;
//! - it asks every subscribed client its approvals and takes any answer, a refusal included:
//!   the broker never answers a server request that is not for a thread of its clients (with
//!   a child it refuses those, so that turns never hang);
//! - any client may interrupt any turn: the broker forwards a `turn/interrupt` only for a turn
//!   one of its clients started;
//! - a turn outlives its client: a turn no client of the broker owns any more is interrupted,
//!   as with the child, and a broker that stops (a signal) interrupts its clients' running
//!   turns before it leaves. It never stops the listener: it closes its connection.
//!
//! ## Threads of other accounts
//!
//! A client's `thread/resume` of a thread whose newest copy is in another account's home (every
//! account codex-as knows, read at each request) is carried into the broker's home first, then
//! forwarded; a copy that cannot be (two copies that diverged, a failed write) gets an error
//! answer naming both files and never reaches the app-server. The first page of a `thread/list`
//! also shows the other accounts' threads that match its filters. The file work runs off the
//! event loop; that client's later lines wait for it, in order, and other clients go on
//! (`threads`). A newer copy is never carried under an app-server that has the thread open
//! (it would write its next turns to the replaced file): that resume is refused too. So that
//! threads do not stay open for the broker's whole life, a thread no client owns any more is
//! released (`thread/unsubscribe`; the app-server unloads it 60 s later).
//!
//! ## Idle, shutdown and being found
//!
//! Only an idle broker (no client connected, no request and no turn in flight, no lease held;
//! `state` words it exactly) stops, for any reason but a signal:
//! - `broker/shutdown {"ifIdle":true}` answers `{"shutdown":true,"busy":false}` and stops when
//!   idle (the asking client aside), else `{"shutdown":false,"busy":true}` and keeps serving.
//! - A plain `broker/shutdown` (what the plugin's SessionEnd sends to whatever endpoint its
//!   session had) answers the plugin's `{}` and stops only when idle, as above: it never fails
//!   another session's work.
//! - A shutdown is judged when it is acted on: connections already waiting in the listen backlog
//!   are accepted (and count) first, as far as there are places (with none left, the broker is
//!   not idle anyway), and one whose `deadlineMs` (unix milliseconds; codex-as's
//!   own clients set it to when they stop waiting) has passed is void
//!   (`{"shutdown":false,...,"expired":true}`): a broker that was stopped (SIGSTOP) or starved
//!   reads it after its sender reported it as hung and left alone.
//! - The idle exit (`--idle-exit`) happens after that long idle; a lease postpones it.
//! - Every 2 s the broker checks that it can be found: a socket file removed (the plugin's
//!   SessionEnd unlinks it; a cleaner may empty the runtime folder) is bound again, its folder
//!   re-created 0700, its pid file and codex-as's record of it restored. If another file took
//!   its path, it stops listening and exits once its clients are done.
//! - SIGTERM, SIGINT, SIGHUP stop it at once; requests in flight get an error and turns the
//!   failed-turn ending first.
//!
//! `broker/status` answers (`busy` is "not idle" as seen by the asker, who does not count;
//! `connections` counts the asker too, `clients` does not; `idleSeconds` is the time since the
//! last request or turn ended, 0 while one runs):
//!
//! ```json
//! {"busy":true,"broker":"codex-as","version":"0.1.0","pid":4745,"appServerPid":4746,
//!  "codexHome":"/home/u/.codex-work","auth":{"method":"api-key","fingerprint":"sha256:f941bea53e5f444a"},
//!  "startedAt":1795634918,"connections":3,"clients":2,"maxClients":64,"requestsInFlight":0,
//!  "threadsInFlight":2,"threads":["019a…","019b…"],"workspaces":["/home/u/src/api","/home/u/src/web"],
//!  "leaseHeld":false,"idleSeconds":0,"cwd":"/home/u/.codex-work",
//!  "endpoint":"unix:/tmp/codex-as-1000/x.sock","usageLimitHits":[{"pid":4801,
//!  "threadId":"019b…","turnId":"019c…","message":"You've hit your usage limit."}],
//!  "openThreads":["019a…","019b…"],"appServer":"child","appServerUserAgent":"Claude Code/0.171.0"}
//! ```

pub mod app_server;
pub mod client;
pub mod endpoint;
pub mod lease;
pub mod lines;
pub mod link;
pub mod listener;
pub mod own_listener;
pub mod pool;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod report;
pub mod runtime_dir;
pub mod serve;
pub mod state;
pub mod threads;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("unsupported broker endpoint {0:?}: expected unix:PATH")]
    Endpoint(String),
    #[error("cannot serve on {path}: {why}")]
    InUse { path: PathBuf, why: String },
    #[error("cannot listen on {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the pid file {path}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tool(#[from] crate::sys::tools::ToolError),
    #[error("cannot start {program} app-server")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use {dir} as the working directory")]
    Cwd {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--ready-fd {0}: not an open file descriptor")]
    ReadyFd(i32),
    #[error("{0}")]
    AppServer(String),
    #[error(transparent)]
    Io(std::io::Error),
}
