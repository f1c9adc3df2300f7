//! `codex-as brokers [list|stop] [--json]`: the brokers that keep accounts warm, and stopping
//! codex-as's own ones without ever interrupting work.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::account::Accounts;
use crate::broker::client::{self, ClientError};
use crate::broker::pool;
use crate::broker::registry::Registry;
use crate::cli::{BrokersAction, BrokersArgs, StopArgs};
use crate::error::status;
use crate::plugin::{self, roots::StateRoot};
use crate::sys::{clock, duration};

/// Seconds since the epoch as the records store them (a clock set before 1970 reads as 0).
fn clock_now() -> u64 {
    clock::now().max(0) as u64
}

/// What a broker was found doing. Its name in `--json` and the table is a stable interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum State {
    Idle,
    Busy,
    /// It did not answer in time.
    Hung,
    /// Idle, but its account logged in again since it started.
    StaleLogin,
    Stopped,
    /// Served by another user's process: nothing was sent to it.
    Refused,
    Unknown,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Busy => "busy",
            State::Hung => "hung",
            State::StaleLogin => "stale-login",
            State::Stopped => "stopped",
            State::Refused => "refused",
            State::Unknown => "unknown",
        }
    }

    /// Still running after a stop: busy, or not answering.
    fn left_running(self) -> bool {
        matches!(self, State::Busy | State::Hung)
    }

    /// Answering, so a stop can be asked of it.
    fn stoppable(self) -> bool {
        matches!(self, State::Idle | State::Busy | State::StaleLogin)
    }
}

/// One row of `codex-as brokers --json`. Field names are a stable interface.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    /// "codex-as" or "plugin".
    owner: &'static str,
    /// The account name whose home it serves, when known.
    account: Option<String>,
    codex_home: Option<PathBuf>,
    /// Where it was first started from (codex-as's brokers serve every workspace of their account).
    workspace: Option<PathBuf>,
    /// Ours: the working folders of the threads it has served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    workspaces: Vec<PathBuf>,
    /// Ours: clients connected (the listing's own probe aside).
    #[serde(skip_serializing_if = "Option::is_none")]
    clients: Option<u64>,
    /// Ours: threads with a turn running.
    #[serde(skip_serializing_if = "Option::is_none")]
    threads_in_flight: Option<u64>,
    /// Ours: what serves its clients, `listener` (the account's own Codex listener, shared with
    /// a TUI, say) or `child` (its own `codex app-server`), with that process and its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    app_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_server_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_server_version: Option<String>,
    /// The same in words, for the table.
    #[serde(skip)]
    app_server_words: Option<String>,
    pid: Option<u32>,
    endpoint: String,
    age_seconds: Option<u64>,
    idle_seconds: Option<u64>,
    state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// The plugin's: the state folder it was found under, and where that folder comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    state_root: Option<StateRoot>,
    #[serde(skip)]
    id: Option<String>,
}

pub fn run(args: BrokersArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let reg = Registry::open()?;
    let runtime = crate::sys::runtime::current_thread()?;
    match args.action.unwrap_or(BrokersAction::List) {
        BrokersAction::List => {
            let mut rows = runtime.block_on(own_rows(&reg, &accounts));
            note_listener_versions(&mut rows);
            rows.extend(plugin_rows(&accounts));
            print_rows(&rows, args.json, "no brokers")?;
        }
        BrokersAction::Stop(stop) => {
            let rows = runtime.block_on(stop_own(&reg, &accounts, &stop))?;
            print_rows(&rows, args.json, "no codex-as brokers to stop")?;
            let left = rows.iter().filter(|r| r.state.left_running()).count();
            // `--all` promised to stop everything of ours: say so when it could not.
            if stop.all && left > 0 {
                eprintln!(
                    "codex-as: {left} broker(s) still running (busy past --timeout, or not answering); nothing was interrupted"
                );
                return Ok(status::FAILURE);
            }
        }
    }
    Ok(status::OK)
}

/// A broker on a Codex listener of another version than the `codex` on PATH says so: that
/// listener (the TUI's daemon, say) was started by another Codex and keeps running it.
fn note_listener_versions(rows: &mut [Row]) {
    let on_listener = |r: &Row| r.app_server.as_deref() == Some("listener");
    if !rows
        .iter()
        .any(|r| on_listener(r) && r.app_server_version.is_some())
    {
        return;
    }
    let Some(on_path) = crate::sys::tools::codex()
        .ok()
        .and_then(|c| crate::sys::tools::version(&c))
    else {
        return;
    };
    let on_path = crate::sys::tools::version_number(&on_path);
    for r in rows.iter_mut().filter(|r| on_listener(r)) {
        if let Some(v) = r.app_server_version.as_deref()
            && v != on_path
        {
            let note = format!("its Codex listener runs {v}, the codex on PATH is {on_path}");
            r.note = Some(match r.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
    }
}

fn account_for(accounts: &Accounts, home: &std::path::Path) -> Option<String> {
    accounts
        .all()
        .into_iter()
        .find(|a| a.exists() && crate::account::same_home(&a.home, home))
        .map(|a| a.name)
}

async fn own_rows(reg: &Registry, accounts: &Accounts) -> Vec<Row> {
    let mut rows = Vec::new();
    for probe in pool::probe_all(reg, client::PROBE_TIMEOUT).await {
        let pool::Probe {
            id,
            endpoint,
            answer,
        } = probe;
        let record = reg.record(&id);
        let mut row = Row {
            owner: "codex-as",
            account: record.as_ref().map(|r| r.account.clone()),
            codex_home: record.as_ref().map(|r| r.codex_home.clone()),
            workspace: record.as_ref().map(|r| r.workspace.clone()),
            workspaces: Vec::new(),
            clients: None,
            threads_in_flight: None,
            app_server: None,
            app_server_pid: None,
            app_server_version: None,
            app_server_words: None,
            pid: record.as_ref().map(|r| r.pid),
            endpoint,
            age_seconds: record
                .as_ref()
                .map(|r| clock_now().saturating_sub(r.started_at)),
            idle_seconds: None,
            state: State::Unknown,
            note: None,
            state_root: None,
            id: Some(id.clone()),
        };
        match answer {
            Ok(st) => {
                let home = st.codex_home.as_deref().map(PathBuf::from);
                let stale = pool::login_replaced(&st);
                row.account = home
                    .as_deref()
                    .and_then(|h| account_for(accounts, h))
                    .or(row.account);
                row.codex_home = home.or(row.codex_home);
                row.workspaces = st.workspaces.iter().map(PathBuf::from).collect();
                row.clients = st.clients;
                row.threads_in_flight = st.threads_in_flight;
                row.app_server = st.app_server.clone();
                row.app_server_pid = st.app_server.as_ref().and(st.app_server_pid);
                row.app_server_version = st.app_server_version().map(str::to_string);
                row.app_server_words = st.app_server_words();
                row.pid = st.pid.or(row.pid);
                row.age_seconds = st
                    .started_at
                    .map(|t| clock_now().saturating_sub(t))
                    .or(row.age_seconds);
                row.idle_seconds = st.idle_seconds;
                row.state = if st.busy {
                    State::Busy
                } else if stale {
                    State::StaleLogin
                } else {
                    State::Idle
                };
                if stale && st.busy {
                    row.note = Some(
                        "its account logged in again since it started; replaced once idle".into(),
                    );
                }
            }
            Err(ClientError::NotRunning { .. }) => {
                // Gone without cleaning up (killed): nothing listens, so nothing is lost.
                reg.forget_if_dead(&id);
                continue;
            }
            Err(ClientError::Timeout(_)) => row.state = State::Hung,
            Err(e @ ClientError::Foreign { .. }) => {
                row.state = State::Refused;
                row.note = Some(e.to_string());
            }
            Err(e) => row.note = Some(e.to_string()),
        }
        rows.push(row);
    }
    rows
}

/// The plugin's live brokers under every state root, and what was refused (never contacted).
fn plugin_rows(accounts: &Accounts) -> Vec<Row> {
    let mut rows = Vec::new();
    for root in plugin::roots::all(&accounts.home_dir) {
        if let Some(reason) = &root.refused {
            rows.push(plugin_row(
                None,
                String::new(),
                None,
                State::Refused,
                format!(
                    "{}: the plugin's state folder cannot be trusted: {reason}",
                    root.path.display()
                ),
                &root,
            ));
            continue;
        }
        for b in plugin::brokers::scan(&root.path, &accounts.default_home) {
            if !b.alive && b.refused.is_none() {
                continue;
            }
            let (state, note) = match &b.refused {
                Some(r) => (State::Refused, format!("{}: {r}", b.state_dir.display())),
                None => (
                    State::Unknown,
                    format!(
                        "{} (account from {}); codex-as never stops the plugin's brokers",
                        b.state_dir.display(),
                        b.home_source
                    ),
                ),
            };
            let mut row = plugin_row(b.codex_home, b.endpoint, b.pid, state, note, &root);
            row.account = row
                .codex_home
                .as_deref()
                .and_then(|h| account_for(accounts, h));
            row.age_seconds = b.age_seconds;
            rows.push(row);
        }
    }
    rows
}

fn plugin_row(
    codex_home: Option<PathBuf>,
    endpoint: String,
    pid: Option<u32>,
    state: State,
    note: String,
    root: &StateRoot,
) -> Row {
    Row {
        owner: "plugin",
        account: None,
        codex_home,
        workspace: None,
        workspaces: Vec::new(),
        clients: None,
        threads_in_flight: None,
        app_server: None,
        app_server_pid: None,
        app_server_version: None,
        app_server_words: None,
        pid,
        endpoint,
        age_seconds: None,
        idle_seconds: None,
        state,
        note: Some(note),
        state_root: Some(root.clone()),
        id: None,
    }
}

async fn stop_own(
    reg: &Registry,
    accounts: &Accounts,
    args: &StopArgs,
) -> anyhow::Result<Vec<Row>> {
    let wait = duration::parse(&args.timeout)
        .map_err(|e| crate::error::UsageError::new(format!("--timeout: {e}")))?;
    let deadline = Instant::now() + wait;
    let mut rows = own_rows(reg, accounts).await;
    loop {
        let mut pending = false;
        for row in rows.iter_mut().filter(|r| r.state.stoppable()) {
            match client::shutdown_if_idle(&row.endpoint, client::PROBE_TIMEOUT).await {
                Ok(true) => {
                    row.state = State::Stopped;
                    row.note = None;
                    if let Some(id) = &row.id {
                        reg.forget(id);
                    }
                }
                Ok(false) => {
                    row.state = State::Busy;
                    pending = true;
                }
                Err(ClientError::NotRunning { .. }) => row.state = State::Stopped,
                Err(_) => row.state = State::Hung,
            }
        }
        if !pending || !args.all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for row in &mut rows {
        match row.state {
            State::Busy => {
                row.note = Some(if args.all {
                    "still busy at --timeout: left running".into()
                } else {
                    "busy: left running (`--all` waits for it to finish)".into()
                })
            }
            State::Hung => row.note = Some("did not answer: left alone".into()),
            _ => {}
        }
    }
    Ok(rows)
}

fn print_rows(rows: &[Row], json: bool, empty: &str) -> anyhow::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        crate::outln!("{empty}")?;
        return Ok(());
    }
    let fmt_secs = |s: Option<u64>| {
        s.map(|s| clock::human_duration(s as i64))
            .unwrap_or_else(|| "-".into())
    };
    let fmt_n = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    crate::outln!(
        "{:<9} {:<12} {:<12} {:>8} {:>7} {:>7} {:>6} {:>6}  WORKSPACES",
        "OWNER",
        "ACCOUNT",
        "STATE",
        "PID",
        "CLIENTS",
        "THREADS",
        "AGE",
        "IDLE"
    )?;
    for r in rows {
        let served: Vec<String> = if r.workspaces.is_empty() {
            r.workspace
                .as_deref()
                .map(crate::shell::quote::for_terminal)
                .into_iter()
                .collect()
        } else {
            r.workspaces
                .iter()
                .map(|w| crate::shell::quote::for_terminal(w))
                .collect()
        };
        crate::outln!(
            "{:<9} {:<12} {:<12} {:>8} {:>7} {:>7} {:>6} {:>6}  {}",
            r.owner,
            r.account.as_deref().unwrap_or("?"),
            r.state.name(),
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            fmt_n(r.clients),
            fmt_n(r.threads_in_flight),
            fmt_secs(r.age_seconds),
            fmt_secs(r.idle_seconds),
            if served.is_empty() {
                "-".to_string()
            } else {
                served.join(" ")
            },
        )?;
        if let Some(served) = &r.app_server_words {
            crate::outln!("          app-server: {served}")?;
        }
        if let Some(note) = &r.note {
            crate::outln!("          {note}")?;
        }
        if let Some(root) = &r.state_root {
            crate::outln!(
                "          found under {} ({})",
                crate::shell::quote::for_terminal(&root.path),
                root.origin.describe()
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_has_one_name_in_the_table_and_in_json() {
        use State::*;
        for s in [Idle, Busy, Hung, StaleLogin, Stopped, Refused, Unknown] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(StaleLogin.name(), "stale-login");
    }
}
