//! The broker's one upstream, whichever it is: the account's own Codex listener when one is up
//! at the home's standard path (so that the TUI, the plugin and codex-as share one app-server
//! and one login refresh), else codex-as's own `codex app-server` child. The rest of the broker
//! sends lines and reads [`Output`] the same way for both.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::Sender;
use tokio::sync::watch;

use super::BrokerError;
use super::app_server::{self, AppServer, Output};
use super::lease::Holder;
use super::listener::{self, ConnectError, Found, Link};
use super::own_listener::{self, Record};
use super::state::AppServerKind;
use crate::account::identity;
use crate::sys::fsutil;

/// What a broker serves through when its home has no Codex listener up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// Start one at the home's standard path (shared with a later `codex` TUI).
    Listener,
    /// An app-server child of the broker's own.
    Child,
}

pub enum AppServerLink {
    Child(AppServer),
    /// A listener someone else started (the TUI's daemon): never stopped by codex-as.
    Listener(Link),
    /// A listener codex-as started: stopped when its last broker leaves and nobody else is
    /// connected to it.
    OwnListener(Link, Box<Owned>),
}

/// What was found at a home's standard listener path.
enum Joined {
    /// A listener to serve through.
    Link(AppServerLink),
    /// One that must not be used, and why.
    Refused(String),
    /// None (or none any more).
    Nothing,
}

/// What stopping a listener codex-as started needs.
pub struct Owned {
    record: Record,
    files: own_listener::Files,
}

/// Where a broker's upstream is opened: the account's home, codex-as's runtime folder (for a
/// listener's record and lock), and the `codex` to run.
pub struct Place<'a> {
    pub codex: &'a Path,
    /// The child's working folder.
    pub cwd: &'a Path,
    pub home: &'a Path,
    pub runtime: &'a Path,
    pub prefer: Prefer,
}

impl AppServerLink {
    /// The account's listener when `home` has a trusted, live one; else, as `prefer` says, a
    /// listener codex-as starts, or a new child in `cwd`. Why a listener was not used (or could
    /// not be started) goes to the log, and the child serves instead.
    pub async fn open<E: Send + 'static>(
        at: &Place<'_>,
        events: Sender<E>,
        wrap: fn(Output) -> E,
    ) -> Result<AppServerLink, BrokerError> {
        let child = |events| AppServer::spawn(at.codex, at.cwd, events, wrap).map(Self::Child);
        let home = fsutil::canonical(at.home);
        let files = own_listener::Files::of(at.runtime, &home);
        // Under the home's listener lock: no broker joins a listener another is stopping.
        let _lock = match files.lock() {
            Ok(lock) => lock,
            Err(e) => {
                eprintln!(
                    "codex-as broker: cannot lock the listener of this home ({e}); running its own app-server"
                );
                return child(events);
            }
        };
        match Self::join(at.home, &home, &files, events.clone(), wrap).await {
            Joined::Link(link) => return Ok(link),
            Joined::Refused(why) => {
                eprintln!("codex-as broker: {why}; running its own app-server");
                return child(events);
            }
            Joined::Nothing => {}
        }
        if at.prefer == Prefer::Listener {
            match own_listener::start(at.codex, at.home, &files).await {
                Ok(path) => match Link::connect(&path, events.clone(), wrap).await {
                    Ok(link) => return Ok(Self::started(link, &home, &path, files)),
                    Err(e) => eprintln!(
                        "codex-as broker: cannot use the listener it started ({e}); running its own app-server"
                    ),
                },
                // The child cannot be spawned either: its own error says it once.
                Err(own_listener::StartError::Spawn { .. }) => {}
                Err(e) => eprintln!(
                    "codex-as broker: no listener for this home ({e}); running its own app-server"
                ),
            }
        }
        child(events)
    }

    /// The listener up at `home`'s standard path, when there is one to use: codex-as's own when
    /// its record says so. One codex-as started before the home logged in again serves the old
    /// login: it is stopped when nobody else uses it (and there is nothing to join), else
    /// refused. `canonical` is the home's canonical path.
    async fn join<E: Send + 'static>(
        home: &Path,
        canonical: &Path,
        files: &own_listener::Files,
        events: Sender<E>,
        wrap: fn(Output) -> E,
    ) -> Joined {
        let path = match listener::find(home) {
            Found::None => return Joined::Nothing,
            Found::Untrusted(why) => {
                return Joined::Refused(format!(
                    "not using the Codex listener of this home: {why}"
                ));
            }
            Found::Socket(path) => path,
        };
        let link = match Link::connect(&path, events, wrap).await {
            Ok(link) => link,
            Err(ConnectError::Absent(_)) => return Joined::Nothing,
            Err(e) => return Joined::Refused(format!("not using the Codex listener: {e}")),
        };
        let Some(record) = files.started_by_codex_as(canonical, link.pid()) else {
            return Joined::Link(AppServerLink::Listener(link));
        };
        if record.login == identity::auth_fingerprint(canonical) {
            let files = files.clone();
            return Joined::Link(AppServerLink::OwnListener(
                link,
                Box::new(Owned { record, files }),
            ));
        }
        let outcome = own_listener::stop_unless_used_locked(&record, files, 1, link.close()).await;
        match outcome.why_left() {
            None => Joined::Nothing,
            Some(why) => Joined::Refused(format!(
                "the listener codex-as started serves the login this home had before; it is {why}"
            )),
        }
    }

    /// The listener codex-as just started, recorded as its own.
    fn started(
        link: Link,
        home: &Path,
        socket: &Path,
        files: own_listener::Files,
    ) -> AppServerLink {
        let record = Record {
            home: home.to_path_buf(),
            server: Holder::of(link.pid()),
            socket: PathBuf::from(socket),
            login: identity::auth_fingerprint(home),
            started_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        if let Err(e) = files.write(&record) {
            // Unrecorded, it is treated as anyone's listener: left running, never stopped.
            eprintln!("codex-as broker: cannot record the listener it started: {e}");
            return AppServerLink::Listener(link);
        }
        AppServerLink::OwnListener(link, Box::new(Owned { record, files }))
    }

    /// Whether a listener codex-as started has clients besides this broker (a TUI): the broker
    /// then stays, to stop it once they are gone. False where that cannot be seen.
    pub fn held_by_others(&self) -> bool {
        match self {
            AppServerLink::OwnListener(_, own) => {
                own_listener::others_connected(&own.record.socket, 1).is_some_and(|n| n > 0)
            }
            _ => false,
        }
    }

    pub fn kind(&self) -> AppServerKind {
        match self {
            AppServerLink::Child(_) => AppServerKind::Child,
            AppServerLink::Listener(_) => AppServerKind::Listener,
            AppServerLink::OwnListener(..) => AppServerKind::OwnListener,
        }
    }

    /// The app-server's process: the child, or the process serving the listener.
    pub fn pid(&self) -> u32 {
        match self {
            AppServerLink::Child(c) => c.pid(),
            AppServerLink::Listener(l) | AppServerLink::OwnListener(l, _) => l.pid(),
        }
    }

    pub fn send(&self, line: String) {
        match self {
            AppServerLink::Child(c) => c.send(line),
            AppServerLink::Listener(l) | AppServerLink::OwnListener(l, _) => l.send(line),
        }
    }

    /// True while the app-server keeps up with its input.
    pub fn gate(&self) -> watch::Receiver<bool> {
        match self {
            AppServerLink::Child(c) => c.gate(),
            AppServerLink::Listener(l) | AppServerLink::OwnListener(l, _) => l.gate(),
        }
    }

    /// Waits for the child to exit (cancel-safe). A listener's end shows only as its connection
    /// closing ([`Output::Closed`]), so this never returns for one.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            AppServerLink::Child(c) => c.wait().await,
            AppServerLink::Listener(_) | AppServerLink::OwnListener(..) => {
                std::future::pending().await
            }
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
            AppServerLink::Listener(l) | AppServerLink::OwnListener(l, _) => format!(
                "the Codex app-server listening at {} closed the connection.",
                l.path().display()
            ),
        }
    }

    /// Ends the link: the child is stopped and reaped; a listener is only left (it serves
    /// others), except one codex-as started that nobody else is connected to, which is stopped.
    pub async fn stop(self) -> Option<ExitStatus> {
        match self {
            AppServerLink::Child(c) => c.stop().await,
            AppServerLink::Listener(l) => {
                l.close().await;
                None
            }
            AppServerLink::OwnListener(l, own) => {
                // Counted with this broker's own connection still there.
                let outcome =
                    own_listener::stop_unless_used(&own.record, &own.files, 1, l.close()).await;
                if let Some(why) = outcome.why_left() {
                    eprintln!("codex-as broker: the listener it started is {why}");
                }
                None
            }
        }
    }
}
