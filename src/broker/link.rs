//! The broker's one upstream, whichever it is: the account's own Codex listener when one is up
//! at the home's standard path (so that the TUI, the plugin and codex-as share one app-server
//! and one login refresh), else codex-as's own `codex app-server` child. The rest of the broker
//! sends lines and reads [`Output`] the same way for both.

use std::path::Path;
use std::process::ExitStatus;

use tokio::sync::mpsc::Sender;
use tokio::sync::watch;

use super::BrokerError;
use super::app_server::{self, AppServer, Output};
use super::listener::{self, ConnectError, Found, Link};
use super::state::AppServerKind;

pub enum AppServerLink {
    Child(AppServer),
    Listener(Link),
}

impl AppServerLink {
    /// The account's listener when `home` has a trusted, live one; else a new child in `cwd`.
    /// Why a listener that is there was not used goes to the log.
    pub async fn open<E: Send + 'static>(
        codex: &Path,
        cwd: &Path,
        home: &Path,
        events: Sender<E>,
        wrap: fn(Output) -> E,
    ) -> Result<AppServerLink, BrokerError> {
        match listener::find(home) {
            Found::None => {}
            Found::Untrusted(why) => {
                eprintln!("codex-as broker: not using the Codex listener of this home: {why}");
            }
            Found::Socket(path) => match Link::connect(&path, events.clone(), wrap).await {
                Ok(link) => return Ok(AppServerLink::Listener(link)),
                Err(ConnectError::Absent(_)) => {}
                Err(e) => eprintln!("codex-as broker: not using the Codex listener: {e}"),
            },
        }
        AppServer::spawn(codex, cwd, events, wrap).map(AppServerLink::Child)
    }

    pub fn kind(&self) -> AppServerKind {
        match self {
            AppServerLink::Child(_) => AppServerKind::Child,
            AppServerLink::Listener(_) => AppServerKind::Listener,
        }
    }

    /// The app-server's process: the child, or the process serving the listener.
    pub fn pid(&self) -> u32 {
        match self {
            AppServerLink::Child(c) => c.pid(),
            AppServerLink::Listener(l) => l.pid(),
        }
    }

    pub fn send(&self, line: String) {
        match self {
            AppServerLink::Child(c) => c.send(line),
            AppServerLink::Listener(l) => l.send(line),
        }
    }

    /// True while the app-server keeps up with its input.
    pub fn gate(&self) -> watch::Receiver<bool> {
        match self {
            AppServerLink::Child(c) => c.gate(),
            AppServerLink::Listener(l) => l.gate(),
        }
    }

    /// Waits for the child to exit (cancel-safe). A listener's end shows only as its connection
    /// closing ([`Output::Closed`]), so this never returns for one.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            AppServerLink::Child(c) => c.wait().await,
            AppServerLink::Listener(_) => std::future::pending().await,
        }
    }

    /// How the upstream went away, after its output closed; `exit` is the child's status if it
    /// was already reaped.
    pub async fn gone(&mut self, exit: Option<ExitStatus>, grace: std::time::Duration) -> String {
        match self {
            AppServerLink::Child(c) => {
                let exit = match exit {
                    Some(s) => Some(s),
                    None => tokio::time::timeout(grace, c.wait())
                        .await
                        .ok()
                        .and_then(Result::ok),
                };
                app_server::describe_exit(exit)
            }
            AppServerLink::Listener(l) => format!(
                "the Codex app-server listening at {} closed the connection.",
                l.path().display()
            ),
        }
    }

    /// Ends the link: the child is stopped and reaped; a listener is only left (it serves
    /// others).
    pub async fn stop(self) -> Option<ExitStatus> {
        match self {
            AppServerLink::Child(c) => c.stop().await,
            AppServerLink::Listener(l) => {
                l.close().await;
                None
            }
        }
    }
}
