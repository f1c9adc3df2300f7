//! The relay process: listens on its private socket, serves each connection on its own task
//! (`conn`), tells its spawner when it is ready, and exits once idle for `idle_exit` (no client
//! connected, no lease held) or on SIGTERM/SIGINT/SIGHUP.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

use super::conn::{self, Shared};
use super::route::{self, Route};
use super::threads::Files;
use super::upstream::Brokers;
use crate::account::Accounts;
use crate::broker::{endpoint, lease};

pub struct Options {
    pub endpoint: String,
    pub route: Route,
    pub accounts: Accounts,
    pub idle_exit: Option<Duration>,
    /// Written `ready\n` once clients can be served, then closed.
    pub ready: Option<OwnedFd>,
}

/// The lease key of the relay of the route `route_key` (`broker::lease`): a Claude Code session
/// whose folder names the route holds it, so that the relay its env file names does not exit
/// idle between two plugin commands (the plugin's `setup` and `cancel` do not fall back when
/// their endpoint is gone, and its tasks would fall back to one account with no handover).
pub fn lease_key(route_key: &str) -> String {
    format!("rl-{route_key}")
}

/// How often the relay checks that its socket is still the one it bound.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

pub async fn serve(opts: Options) -> anyhow::Result<()> {
    let path = endpoint::socket_path(&opts.endpoint)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let (std_listener, bound) = endpoint::bind(&path)?;
    std_listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(std_listener)?;
    let key = opts.route.key();
    let runtime = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let lease = lease_key(&key);
    let shared = new_shared(opts.route, opts.accounts);
    if let Some(fd) = opts.ready {
        let mut f = File::from(fd);
        let _ = f.write_all(b"ready\n");
    }
    let open = Rc::new(RefCell::new(0usize));
    let mut idle_since = Some(tokio::time::Instant::now());
    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            warm_up(&shared);
            loop {
                let idle_deadline = match (opts.idle_exit, idle_since) {
                    (Some(after), Some(since)) => Some(since + after),
                    _ => None,
                };
                tokio::select! {
                    _ = sigterm.recv() => break,
                    _ = sigint.recv() => break,
                    _ = sighup.recv() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            *open.borrow_mut() += 1;
                            idle_since = None;
                            let (shared, key, open) = (shared.clone(), key.clone(), open.clone());
                            tokio::task::spawn_local(async move {
                                conn::serve(shared, key, stream).await;
                                *open.borrow_mut() -= 1;
                            });
                        }
                        Err(e) => {
                            eprintln!("codex-as relay: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    _ = watch.tick() => {
                        if *open.borrow() == 0 && idle_since.is_none() {
                            idle_since = Some(tokio::time::Instant::now());
                        }
                        if bound.state() != endpoint::PathState::Ours && *open.borrow() == 0 {
                            // Removed or taken: nobody can find this relay any more.
                            break;
                        }
                    }
                    _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                        if *open.borrow() == 0 && !lease::held(&runtime, &lease) {
                            break;
                        }
                        idle_since = None;
                    }
                }
            }
        })
        .await;
    drop(listener);
    bound.remove();
    Ok(())
}

/// What every connection of the relay shares: the route, its accounts' brokers, the thread
/// files, which accounts are usable now, and what happened.
fn new_shared(route: Route, accounts: Accounts) -> Rc<Shared> {
    let threshold = accounts.config.quota.threshold();
    let accounts_of_route = route.accounts.clone();
    Rc::new(Shared {
        route,
        upstream: Box::new(Brokers {
            workspace: accounts.home_dir.clone(),
            accounts,
        }),
        threads: Box::new(Files),
        usable: Box::new(move |i| {
            route::usable(&accounts_of_route[i], threshold, crate::sys::clock::now())
        }),
        hits: RefCell::new(VecDeque::new()),
        moves: RefCell::new(VecDeque::new()),
        busy: RefCell::new(0),
    })
}

/// Starts the brokers a connection starts on and hands over to first, so that neither a first
/// turn nor a handover waits for an app-server to start. Runs inside the relay's `LocalSet`.
fn warm_up(shared: &Rc<Shared>) {
    let warm: Vec<usize> = (0..shared.route.len())
        .filter(|i| (shared.usable)(*i))
        .take(2)
        .collect();
    for k in warm {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = shared.upstream.open(&shared.route.accounts[k]).await {
                eprintln!(
                    "codex-as relay: cannot warm up '{}': {e:#}",
                    shared.route.accounts[k].name
                );
            }
        });
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
