//! codex-as's own app-server broker: one warm `codex app-server` per (workspace, account),
//! shared by any number of clients over the plugin's wire protocol, with a life codex-as
//! controls (status, shutdown only when idle, exit when idle).
//!
//! - `protocol`: the JSON-RPC line types and the plugin's constants.
//! - `state`: every rule, as a pure state machine.
//! - `serve`: the event loop that feeds the state machine and carries out its actions.
//! - `app_server`: the child process. `endpoint`: the socket file. `lines`: line I/O.
//! - `client`: how codex-as itself talks to a broker (ours or the plugin's).
//!
//! Spawning one: `codex-as broker serve --endpoint unix:PATH --cwd DIR [--idle-exit 30m]
//! [--pid-file PATH] [--ready-fd N]`, with the account's environment (CODEX_HOME decides the
//! account; CODEX_AS_CODEX overrides which `codex` runs). The broker writes `ready\n` to fd N once
//! it listens and its app-server has answered `initialize`, then closes it; end of file without
//! that line means it failed (one line on stderr says why, exit status non-zero).
//!
//! `broker/status` answers, busy or not (`connections` counts the asking client too;
//! `idleSeconds` is the time since anyone last owned the app-server, 0 while busy):
//!
//! ```json
//! {"busy":false,"broker":"codex-as","version":"0.1.0","pid":4745,"appServerPid":4746,
//!  "codexHome":"/home/u/.codex-work","auth":{"method":"api-key","fingerprint":"sha256:f941bea53e5f444a"},
//!  "startedAt":1795634918,"connections":1,"idleSeconds":12,"cwd":"/home/u/src/api",
//!  "endpoint":"unix:/tmp/codex-as-1000/x.sock"}
//! ```
//!
//! `broker/shutdown` with `{"ifIdle":true}` answers `{"shutdown":false,"busy":true}` and keeps
//! serving when busy, else `{"shutdown":true,"busy":false}` and stops; without it, `{}` and stops
//! at once like the plugin's broker. Either way requests in flight get an error before their
//! connections close.

pub mod app_server;
pub mod client;
pub mod endpoint;
pub mod lease;
pub mod lines;
pub mod pool;
pub mod protocol;
pub mod registry;
pub mod runtime_dir;
pub mod serve;
pub mod state;

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
    #[error(
        "codex not found on PATH: install it with `npm install -g @openai/codex` (or set CODEX_AS_CODEX to its path)"
    )]
    CodexNotFound,
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
