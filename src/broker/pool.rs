//! One warm codex-as broker per account, whatever the workspace (each thread carries its own
//! working folder): find the live one that provably serves the account, or start exactly one,
//! never stopping anything that may be serving someone.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncBufReadExt;

use crate::account::env::EnvPlan;
use crate::account::identity;
use crate::account::{Account, Accounts};
use crate::broker::client::{self, ClientError, Status};
use crate::broker::registry::{Record, Registry};

/// How long an unused broker stays warm when the config's `[broker] idle_exit` says nothing.
pub const DEFAULT_IDLE_EXIT: &str = "30m";
/// How long a live broker may take to answer `broker/status` before it counts as hung.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Once a usable broker is found, the others are only looked at to clean up: a short wait, so
/// that a hung one costs every call little.
const CLEANUP_PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// A broker whose process is stopped (SIGSTOP, Ctrl-Z) cannot answer until it is continued:
/// it is still asked, in case its pid now names some other process, but only this long.
const STOPPED_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a new broker may take to listen with its app-server initialized.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Request<'a> {
    pub account: &'a str,
    /// Canonical home of the account.
    pub home: &'a Path,
    /// Canonical workspace root.
    pub workspace: &'a Path,
    pub plan: &'a EnvPlan,
    pub idle_exit: &'a str,
    /// `broker serve --app-server`: `listener` or `child`.
    pub app_server: &'a str,
}

/// What a probe found a broker to be.
enum Verdict {
    /// Serves this account with its current login: use it, busy or not (it serves every
    /// client at once; one past its client cap makes the companion fall back to its own
    /// app-server, which runs with the same CODEX_HOME).
    Usable,
    /// Serves this account's home with an older login.
    StaleLogin { busy: bool },
    /// Nothing listens: the broker is gone.
    Dead,
    /// Did not answer, or answered as someone else: leave it alone.
    Unknown,
}

fn judge(
    probe: &Result<Status, ClientError>,
    req: &Request<'_>,
    fingerprint: &Option<String>,
) -> Verdict {
    match probe {
        Ok(st) if !serves(st, req.home) => Verdict::Unknown,
        Ok(st) if &fingerprint_of(st) != fingerprint => Verdict::StaleLogin { busy: st.busy },
        Ok(_) => Verdict::Usable,
        Err(ClientError::NotRunning { .. }) => Verdict::Dead,
        Err(_) => Verdict::Unknown,
    }
}

/// Whether a broker's own status says it is codex-as's and runs on `home`.
pub fn serves(st: &Status, home: &Path) -> bool {
    st.is_codex_as() && st.codex_home.as_deref().map(Path::new) == Some(home)
}

pub fn fingerprint_of(st: &Status) -> Option<String> {
    st.auth.as_ref().and_then(|a| a.fingerprint.clone())
}

/// Whether the broker's account logged in again since it started: its home's login is no
/// longer the one it runs on.
pub fn login_replaced(st: &Status) -> bool {
    st.codex_home
        .as_deref()
        .is_some_and(|h| identity::auth_fingerprint(Path::new(h)) != fingerprint_of(st))
}

/// One of codex-as's brokers, as its answer to `broker/status` found it.
pub struct Probe {
    /// Its id in the registry.
    pub id: String,
    pub endpoint: String,
    pub answer: Result<Status, ClientError>,
}

impl Probe {
    pub async fn of(reg: &Registry, id: &str, timeout: Duration) -> Probe {
        let endpoint = format!("unix:{}", reg.socket_path(id).display());
        let timeout = if stopped_pid(reg, id).is_some() {
            timeout.min(STOPPED_PROBE_TIMEOUT)
        } else {
            timeout
        };
        let answer = client::status(&endpoint, timeout).await;
        Probe {
            id: id.to_string(),
            endpoint,
            answer,
        }
    }
}

/// The pid of broker `id` when its process is stopped (SIGSTOP, Ctrl-Z): hung until someone
/// sends it SIGCONT.
pub fn stopped_pid(reg: &Registry, id: &str) -> Option<u32> {
    reg.pid(id)
        .filter(|&pid| crate::sys::process::is_stopped(pid) == Some(true))
}

/// Every broker of codex-as's registry, each asked in turn how it is.
pub async fn probe_all(reg: &Registry, timeout: Duration) -> Vec<Probe> {
    let mut probes = Vec::new();
    for id in reg.ids() {
        probes.push(Probe::of(reg, &id, timeout).await);
    }
    probes
}

/// The endpoint of `account`'s broker, warm or started now, with the config's idle exit: what
/// every caller that needs the account's broker (the companion, the Claude Code hook, a live
/// quota read) asks for, so they all find and start brokers alike.
pub async fn ensure_for(
    accounts: &Accounts,
    account: &Account,
    workspace: &Path,
) -> anyhow::Result<String> {
    let idle_exit = accounts
        .config
        .broker
        .idle_exit
        .clone()
        .unwrap_or_else(|| DEFAULT_IDLE_EXIT.to_string());
    crate::sys::duration::parse(&idle_exit)
        .map_err(|e| anyhow!("broker.idle_exit in the config: {e}"))?;
    let app_server = match accounts.config.broker.app_server.as_deref() {
        None | Some("listener") => "listener",
        Some("child") => "child",
        Some(other) => {
            return Err(anyhow!(
                "broker.app_server in the config: {other:?} is not a choice: write \"listener\" or \"child\""
            ));
        }
    };
    let plan = EnvPlan::for_account(account);
    let home = account.canonical_home();
    let reg = Registry::open()?;
    ensure(
        &reg,
        &Request {
            account: &account.name,
            home: &home,
            workspace,
            plan: &plan,
            idle_exit: &idle_exit,
            app_server,
        },
    )
    .await
}

/// The endpoint of a broker serving `req.home` (for any workspace), started when none is live.
///
/// A broker can vanish while it starts: `brokers stop` may stop it the moment it is ready and
/// idle, someone may kill it, or remove the runtime folder under it. None of that is the
/// caller's problem: another one is started, a bounded number of times.
pub async fn ensure(reg: &Registry, req: &Request<'_>) -> anyhow::Result<String> {
    let key = Registry::key(req.home);
    let mut vanished = None;
    for _ in 0..START_ATTEMPTS {
        match ensure_once(reg, &key, req).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(Started::Vanished(why)) => vanished = Some(why),
            Err(Started::Failed(e)) => return Err(e),
        }
    }
    bail!(
        "the broker for '{}' vanished each of the {START_ATTEMPTS} times it was started (last: {}); is something stopping brokers in a loop?",
        req.account,
        vanished.unwrap_or_default()
    )
}

/// How many brokers one call may start before giving up on them vanishing.
const START_ATTEMPTS: usize = 5;

/// Why a start did not give a broker to use.
enum Started {
    /// It went away through no fault of its own (stopped, killed, its folder removed): another
    /// attempt may well work.
    Vanished(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Started {
    fn from(e: anyhow::Error) -> Self {
        Started::Failed(e)
    }
}

async fn ensure_once(reg: &Registry, key: &str, req: &Request<'_>) -> Result<String, Started> {
    let mut silent = Vec::new();
    if let Some(endpoint) = find(reg, key, req, &mut silent).await {
        return Ok(endpoint);
    }
    let lock = reg.lock(key).context("cannot lock the broker registry")?;
    // Someone may have started one while we waited for the lock. A broker that just let a
    // whole probe pass unanswered is only asked briefly again: a hung one costs one wait, not two.
    if let Some(endpoint) = find(reg, key, req, &mut silent).await {
        return Ok(endpoint);
    }
    let endpoint = start(reg, key, req).await?;
    drop(lock);
    Ok(endpoint)
}

/// The newest broker that serves `req` with its current login. Every other broker of the key is
/// looked at too, so that one left over from an older login is stopped as soon as it is idle,
/// not only when it happens to be the newest. The ids of brokers that did not answer in time are
/// added to `silent`; those already there are only asked briefly.
async fn find(
    reg: &Registry,
    key: &str,
    req: &Request<'_>,
    silent: &mut Vec<String>,
) -> Option<String> {
    let fingerprint = identity::auth_fingerprint(req.home);
    let mut found = None;
    for id in reg.ids_for_key(key) {
        let timeout = if found.is_none() && !silent.contains(&id) {
            PROBE_TIMEOUT
        } else {
            CLEANUP_PROBE_TIMEOUT
        };
        let Probe {
            endpoint,
            answer: probe,
            ..
        } = Probe::of(reg, &id, timeout).await;
        if matches!(probe, Err(ClientError::Timeout(_))) && !silent.contains(&id) {
            silent.push(id.clone());
        }
        match judge(&probe, req, &fingerprint) {
            Verdict::Usable if found.is_none() => {
                if let (Ok(st), None) = (&probe, reg.record(&id)) {
                    // The broker itself is the truth; a lost or corrupt record is rebuilt from it.
                    let _ = reg.save(&record(id, req, &endpoint, st));
                }
                found = Some(endpoint);
            }
            Verdict::StaleLogin { busy: false } => {
                // Atomic in our broker: refused if a client slipped in meanwhile.
                if let Ok(true) = client::shutdown_if_idle(&endpoint, PROBE_TIMEOUT).await {
                    reg.forget(&id);
                }
            }
            Verdict::Dead => reg.forget_if_dead(&id),
            Verdict::Usable | Verdict::StaleLogin { busy: true } | Verdict::Unknown => {}
        }
    }
    found
}

/// Starts a broker for `req`, waits until it is ready, checks that it serves `req.home`, and
/// records it.
async fn start(reg: &Registry, key: &str, req: &Request<'_>) -> Result<String, Started> {
    let id = Registry::new_id(key);
    let endpoint = format!("unix:{}", reg.socket_path(&id).display());
    let cmd = serve_command(reg, &id, &endpoint, req)?;
    // The runtime folder as it is once the log is open in it (opening it makes the folder again
    // when it was gone): another one in its place later means it was removed meanwhile.
    let folder = reg.identity();
    if let Err(why) = start_detached(cmd, START_TIMEOUT).await? {
        return Err(not_ready(reg, &id, req, why, folder));
    }
    let status = first_status(reg, &id, &endpoint, req).await?;
    reg.save(&record(id, req, &endpoint, &status))
        .context("cannot write the broker record")?;
    Ok(endpoint)
}

/// `codex-as broker serve` for `req`, its output going to the broker's log.
fn serve_command(
    reg: &Registry,
    id: &str,
    endpoint: &str,
    req: &Request<'_>,
) -> anyhow::Result<Command> {
    let log = reg
        .open_log(id)
        .with_context(|| format!("cannot create {}", reg.log_path(id).display()))?;
    let exe = std::env::current_exe().context("cannot find the codex-as executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("broker")
        .arg("serve")
        .arg("--endpoint")
        .arg(endpoint)
        // Not any workspace: the broker serves them all, and every thread the companion opens
        // names its own `cwd`. The account's home is a folder that outlives every workspace and
        // holds no project config (only a `thread/start` without a `cwd` would follow the
        // process's folder).
        .arg("--cwd")
        .arg(req.home)
        .arg("--idle-exit")
        .arg(req.idle_exit)
        .arg("--app-server")
        .arg(req.app_server)
        .arg("--pid-file")
        .arg(reg.pid_path(id))
        .current_dir(req.home)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the broker's log")?)
        .stderr(log);
    req.plan.apply(&mut cmd);
    Ok(cmd)
}

/// What a start that never said `ready` means: a failure to report, or a broker that vanished
/// (killed, or its runtime folder removed) and may be started again.
fn not_ready(
    reg: &Registry,
    id: &str,
    req: &Request<'_>,
    why: NotReady,
    folder: Option<(u64, u64)>,
) -> Started {
    let log_path = reg.log_path(id);
    match why {
        NotReady::Spawn(e) => {
            reg.forget(id);
            anyhow::Error::new(e)
                .context("cannot start a broker")
                .into()
        }
        NotReady::TimedOut => anyhow!(
            "the broker for '{}' did not become ready within {}s ({}); see {}",
            req.account,
            START_TIMEOUT.as_secs(),
            last_line(&log_path).as_deref().unwrap_or("no output"),
            log_path.display()
        )
        .into(),
        NotReady::Ended => {
            let said = last_line(&log_path);
            reg.forget(id);
            // Killed, or its folder removed under it (its log went with it): it said nothing.
            let killed = said
                .as_deref()
                .is_none_or(|l| l.contains("stopped by a signal"));
            if killed || reg.identity() != folder {
                return Started::Vanished(format!(
                    "it ended before it was ready: {}",
                    said.as_deref().unwrap_or("no output")
                ));
            }
            anyhow!(
                "the broker for '{}' failed to start: {}",
                req.account,
                said.as_deref().unwrap_or("no output")
            )
            .into()
        }
    }
}

/// The new broker's answer to its first `broker/status`, which must say it serves `req.home`.
async fn first_status(
    reg: &Registry,
    id: &str,
    endpoint: &str,
    req: &Request<'_>,
) -> Result<Status, Started> {
    let status = match client::status(endpoint, PROBE_TIMEOUT).await {
        Ok(st) => st,
        // Ready, then gone before its first question: stopped (an idle broker is fair game for
        // `brokers stop`), killed, or its socket removed with the folder.
        Err(e @ (ClientError::NotRunning { .. } | ClientError::Closed | ClientError::Io(_))) => {
            reg.forget(id);
            return Err(Started::Vanished(format!("it was gone once ready: {e}")));
        }
        // Hung (stopped with SIGSTOP, say): never used, never stopped; another starts beside it.
        Err(e @ ClientError::Timeout(_)) => {
            return Err(Started::Vanished(format!(
                "it stopped answering once ready: {e}"
            )));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!(
                    "the new broker for '{}' does not answer",
                    req.account
                ))
                .into());
        }
    };
    if !serves(&status, req.home) {
        return Err(anyhow!(
            "the new broker for '{}' reports another home ({:?}); refusing to use it",
            req.account,
            status.codex_home
        )
        .into());
    }
    Ok(status)
}

fn record(id: String, req: &Request<'_>, endpoint: &str, status: &Status) -> Record {
    Record {
        id,
        workspace: req.workspace.to_path_buf(),
        account: req.account.to_string(),
        codex_home: req.home.to_path_buf(),
        endpoint: endpoint.to_string(),
        pid: status.pid.unwrap_or(0),
        started_at: status.started_at.unwrap_or(0),
        auth_fingerprint: fingerprint_of(status),
    }
}

/// How a detached start ended without its `ready` line.
pub enum NotReady {
    /// It could not be started at all.
    Spawn(std::io::Error),
    /// It said nothing within the time given.
    TimedOut,
    /// It ended, or closed the pipe, without saying it.
    Ended,
}

/// Starts `cmd`, a codex-as subcommand that takes `--ready-fd N` (added here), detached (see
/// [`detach`]), and waits up to `limit` for the `ready` line it writes once it serves. The
/// outer error is this process failing to set that up.
pub async fn start_detached(
    mut cmd: Command,
    limit: Duration,
) -> anyhow::Result<Result<(), NotReady>> {
    let (ready_rx, ready_tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let ready_fd = std::os::fd::AsRawFd::as_raw_fd(&ready_tx);
    cmd.arg("--ready-fd").arg(ready_fd.to_string());
    detach(&mut cmd, ready_fd);
    let mut intermediate = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(Err(NotReady::Spawn(e))),
    };
    drop(ready_tx);
    // The intermediate process exits at once, leaving the server to init: reap it now.
    let _ = intermediate.wait();
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(ready_rx)
        .context("cannot read the readiness pipe")?;
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(receiver);
    Ok(
        match tokio::time::timeout(limit, reader.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 && line.starts_with("ready") => Ok(()),
            Err(_) => Err(NotReady::TimedOut),
            Ok(_) => Err(NotReady::Ended),
        },
    )
}

/// The broker must outlive codex-as and never be anyone's child: codex-as execs the companion
/// next, and node would not reap it. So the spawned process forks once more and exits, the
/// broker (its child) gets a session of its own, and readiness comes through an inherited pipe.
pub fn detach(cmd: &mut Command, ready_fd: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made (fork, _exit, setsid,
    // fcntl), and nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            match nix::unistd::fork()? {
                nix::unistd::ForkResult::Parent { .. } => nix::libc::_exit(0),
                nix::unistd::ForkResult::Child => {}
            }
            nix::unistd::setsid()?;
            // Only the broker inherits the ready pipe; everywhere else it is close-on-exec.
            if nix::libc::fcntl(ready_fd, nix::libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    /// A socket that takes connections and never answers, like a stopped broker's.
    fn silent_broker(reg: &Registry, id: &str, pid: u32) -> std::os::unix::net::UnixListener {
        let listener = std::os::unix::net::UnixListener::bind(reg.socket_path(id)).unwrap();
        crate::sys::fsutil::write_private_atomic(&reg.pid_path(id), format!("{pid}\n").as_bytes())
            .unwrap();
        listener
    }

    #[tokio::test]
    async fn a_stopped_broker_is_asked_only_briefly_and_a_running_one_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::at(dir.path());
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        let id = format!("{}-00000001", Registry::key(Path::new("/h")));
        let _listener = silent_broker(&reg, &id, pid);
        let long = Duration::from_millis(900);

        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
        let stopped = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            stopped_pid(&reg, &id) == Some(pid)
        });
        assert!(stopped, "the stopped process was not seen");
        let probe = Probe::of(&reg, &id, long).await;
        assert!(
            matches!(probe.answer, Err(ClientError::Timeout(t)) if t == STOPPED_PROBE_TIMEOUT),
            "{:?}",
            probe.answer.err()
        );

        kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
        let running = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            stopped_pid(&reg, &id).is_none()
        });
        assert!(running);
        let probe = Probe::of(&reg, &id, long).await;
        assert!(
            matches!(probe.answer, Err(ClientError::Timeout(t)) if t == long),
            "{:?}",
            probe.answer.err()
        );
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
}
