//! codex-as's own app-server broker: one warm `codex app-server` per (workspace, account),
//! shared by any number of clients over the plugin's wire protocol, with a life codex-as
//! controls (status, shutdown only when idle, exit when idle).
//!
//! - `protocol`: the JSON-RPC line types and the plugin's constants.
//! - `state`: every rule, as a pure state machine.
//! - `serve`: the event loop that feeds the state machine and carries out its actions.
//! - `app_server`: the child process. `endpoint`: the socket file. `lines`: line I/O.
//! - `client`: how codex-as itself talks to a broker (ours or the plugin's).

pub mod app_server;
pub mod client;
pub mod endpoint;
pub mod lines;
pub mod protocol;
pub mod serve;
pub mod state;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("unsupported broker endpoint {0:?}: expected unix:PATH")]
    Endpoint(String),
    #[error("cannot serve on {path}: {why}")]
    InUse { path: PathBuf, why: String },
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "codex not found on PATH: install it with `npm install -g @openai/codex` (or set CODEX_AS_CODEX to its path)"
    )]
    CodexNotFound,
    #[error("cannot start {program} app-server: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use {dir} as the working directory: {source}")]
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
