//! What `codex-as brokers` reports: every broker that keeps an account warm (codex-as's own,
//! asked for their status; the plugin's, found in its state folders and never contacted), and
//! the stop of codex-as's own ones that never interrupts work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{self, ClientError};
use super::own_listener;
use super::pool;
use super::protocol::Status;
use super::registry::Registry;
use crate::account::Accounts;
use crate::plugin::{self, roots::StateRoot};
use crate::sys::clock;

/// Seconds since the epoch as the records store them (a clock set before 1970 reads as 0).
fn clock_now() -> u64 {
    clock::now().max(0) as u64
}

/// What a broker was found doing. Its name in `--json` and the table is a stable interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Idle,
    Busy,
    /// It did not answer in time.
    Hung,
    /// Idle, but its account logged in again since it started.
    StaleLogin,
    Stopped,
    /// Served by another user's process: nothing was sent to it.
    Refused,
    /// A listener codex-as started, up with no broker of codex-as's on it (its other clients
    /// use it, or they could not be seen).
    Listening,
    Unknown,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Busy => "busy",
            State::Hung => "hung",
            State::StaleLogin => "stale-login",
            State::Stopped => "stopped",
            State::Refused => "refused",
            State::Listening => "listening",
            State::Unknown => "unknown",
        }
    }

    /// Still running after a stop: busy, or not answering.
    pub fn left_running(self) -> bool {
        matches!(self, State::Busy | State::Hung)
    }

    /// Answering, so a stop can be asked of it.
    pub fn stoppable(self) -> bool {
        matches!(self, State::Idle | State::Busy | State::StaleLogin)
    }
}

/// One row of `codex-as brokers --json`. Field names are a stable interface.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// "codex-as" or "plugin" (a listener codex-as started, with no broker on it, is
    /// codex-as's: state `listening`).
    pub owner: &'static str,
    /// The account name whose home it serves, when known.
    pub account: Option<String>,
    pub codex_home: Option<PathBuf>,
    /// Where it was first started from (codex-as's brokers serve every workspace of their account).
    pub workspace: Option<PathBuf>,
    /// Ours: the working folders of the threads it has served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<PathBuf>,
    /// Ours: clients connected (the listing's own probe aside).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<u64>,
    /// Ours: threads with a turn running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads_in_flight: Option<u64>,
    /// Ours: what serves its clients, `listener` (the account's own Codex listener, shared with
    /// a TUI, say), `codex-as-listener` (one codex-as started) or `child` (its own `codex
    /// app-server`), with that process and its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_server_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_server_version: Option<String>,
    /// The same in words, for the table.
    #[serde(skip)]
    pub app_server_words: Option<String>,
    pub pid: Option<u32>,
    pub endpoint: String,
    pub age_seconds: Option<u64>,
    pub idle_seconds: Option<u64>,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The plugin's: the state folder it was found under, and where that folder comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_root: Option<StateRoot>,
    #[serde(skip)]
    id: Option<String>,
}

impl Row {
    /// A row that knows only who owns the broker, where it listens and its state.
    fn bare(owner: &'static str, endpoint: String, state: State) -> Row {
        Row {
            owner,
            account: None,
            codex_home: None,
            workspace: None,
            workspaces: Vec::new(),
            clients: None,
            threads_in_flight: None,
            app_server: None,
            app_server_pid: None,
            app_server_version: None,
            app_server_words: None,
            pid: None,
            endpoint,
            age_seconds: None,
            idle_seconds: None,
            state,
            note: None,
            state_root: None,
            id: None,
        }
    }

    /// The workspaces it served, or the one it was started from when it has not said.
    pub fn served(&self) -> Vec<&Path> {
        if self.workspaces.is_empty() {
            self.workspace.as_deref().into_iter().collect()
        } else {
            self.workspaces.iter().map(PathBuf::as_path).collect()
        }
    }
}

/// Every broker: codex-as's own first, then the plugin's.
pub async fn list(reg: &Registry, accounts: &Accounts) -> Vec<Row> {
    let mut rows = own(reg, accounts).await;
    rows.extend(lone_listeners(reg, accounts, &rows));
    note_listener_versions(&mut rows);
    rows.extend(plugin_rows(accounts));
    rows
}

/// A broker on a Codex listener of another version than the `codex` on PATH says so: that
/// listener (the TUI's daemon, say) was started by another Codex and keeps running it.
fn note_listener_versions(rows: &mut [Row]) {
    let on_listener = |r: &Row| {
        matches!(
            r.app_server.as_deref(),
            Some("listener" | "codex-as-listener")
        )
    };
    if !rows
        .iter()
        .any(|r| on_listener(r) && r.app_server_version.is_some())
    {
        return;
    }
    let Some(on_path) = crate::sys::tools::codex()
        .ok()
        .and_then(|c| crate::sys::tools::codex_version(&c))
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

/// codex-as's own brokers, each asked for its status; a record whose broker is gone is
/// forgotten.
async fn own(reg: &Registry, accounts: &Accounts) -> Vec<Row> {
    let mut rows = Vec::new();
    for probe in pool::probe_all(reg, client::PROBE_TIMEOUT).await {
        let mut row = Row::recorded(reg, &probe.id, probe.endpoint);
        match probe.answer {
            Ok(st) => row.answered(&st, accounts),
            Err(ClientError::NotRunning { .. }) => {
                // Gone without cleaning up (killed): nothing listens, so nothing is lost.
                reg.forget_if_dead(&probe.id);
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

/// The listeners codex-as started that no broker of its own (in `rows`) serves through.
fn lone_listeners(reg: &Registry, accounts: &Accounts, rows: &[Row]) -> Vec<Row> {
    own_listener::lone(reg.dir(), &served(rows))
        .iter()
        .map(|(record, _)| listening_row(accounts, record))
        .collect()
}

/// Stops each listener codex-as started that no broker serves through and nobody else uses.
async fn stop_lone_listeners(reg: &Registry, accounts: &Accounts, rows: &[Row]) -> Vec<Row> {
    let mut out = Vec::new();
    for (record, files) in own_listener::lone(reg.dir(), &served(rows)) {
        let mut row = listening_row(accounts, &record);
        let outcome = own_listener::stop_unless_used(&record, &files, 0, async {}).await;
        match outcome.why_left() {
            None => {
                row.state = State::Stopped;
                row.note = None;
            }
            Some(why) => row.note = Some(why),
        }
        out.push(row);
    }
    out
}

/// The app-servers codex-as's brokers in `rows` serve through.
fn served(rows: &[Row]) -> Vec<u32> {
    rows.iter().filter_map(|r| r.app_server_pid).collect()
}

/// A listener codex-as started, up with no broker on it, and who keeps it up.
fn listening_row(accounts: &Accounts, record: &own_listener::Record) -> Row {
    Row {
        account: accounts.name_of_home(&record.home),
        codex_home: Some(record.home.clone()),
        app_server: Some("codex-as-listener".into()),
        app_server_pid: Some(record.server.pid),
        app_server_words: Some(format!(
            "a Codex listener codex-as started for the account (pid {})",
            record.server.pid
        )),
        pid: Some(record.server.pid),
        age_seconds: Some(clock_now().saturating_sub(record.started_at)),
        note: Some(format!(
            "no broker; {}",
            own_listener::others_in_words(record)
        )),
        ..Row::bare(
            "codex-as",
            format!("unix:{}", record.socket.display()),
            State::Listening,
        )
    }
}

impl Row {
    /// One of ours as its registry record describes it, before it is asked anything.
    fn recorded(reg: &Registry, id: &str, endpoint: String) -> Row {
        let record = reg.record(id);
        Row {
            account: record.as_ref().map(|r| r.account.clone()),
            codex_home: record.as_ref().map(|r| r.codex_home.clone()),
            workspace: record.as_ref().map(|r| r.workspace.clone()),
            pid: record.as_ref().map(|r| r.pid),
            age_seconds: record
                .as_ref()
                .map(|r| clock_now().saturating_sub(r.started_at)),
            id: Some(id.to_string()),
            ..Row::bare("codex-as", endpoint, State::Unknown)
        }
    }

    /// What its answer to `broker/status` says, over what the record said.
    fn answered(&mut self, st: &Status, accounts: &Accounts) {
        let home = st.codex_home.as_deref().map(PathBuf::from);
        let stale = pool::login_replaced(st);
        self.account = home
            .as_deref()
            .and_then(|h| accounts.name_of_home(h))
            .or(self.account.take());
        self.codex_home = home.or(self.codex_home.take());
        self.workspaces = st.workspaces.iter().map(PathBuf::from).collect();
        self.clients = st.clients;
        self.threads_in_flight = st.threads_in_flight;
        self.app_server = st.app_server.clone();
        self.app_server_pid = st.app_server.as_ref().and(st.app_server_pid);
        self.app_server_version = st.app_server_version().map(str::to_string);
        self.app_server_words = st.app_server_words();
        self.pid = st.pid.or(self.pid);
        self.age_seconds = st
            .started_at
            .map(|t| clock_now().saturating_sub(t))
            .or(self.age_seconds);
        self.idle_seconds = st.idle_seconds;
        self.state = if st.busy {
            State::Busy
        } else if stale {
            State::StaleLogin
        } else {
            State::Idle
        };
        if stale && st.busy {
            self.note =
                Some("its account logged in again since it started; replaced once idle".into());
        }
    }
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
                .and_then(|h| accounts.name_of_home(h));
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
        codex_home,
        pid,
        note: Some(note),
        state_root: Some(root.clone()),
        ..Row::bare("plugin", endpoint, state)
    }
}

/// Stops each of codex-as's brokers that is idle; with `all`, waits up to `wait` for the busy
/// ones to finish and stops them then. A busy or hung broker is left running, never interrupted.
pub async fn stop(reg: &Registry, accounts: &Accounts, all: bool, wait: Duration) -> Vec<Row> {
    let deadline = Instant::now() + wait;
    let mut rows = own(reg, accounts).await;
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
        if !pending || !all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // After the brokers: one that stopped has already taken its listener along.
    let listeners = stop_lone_listeners(reg, accounts, &rows).await;
    rows.extend(listeners);
    for row in &mut rows {
        match row.state {
            State::Busy => {
                row.note = Some(if all {
                    "still busy at --timeout: left running".into()
                } else {
                    "busy: left running (`--all` waits for it to finish)".into()
                })
            }
            State::Hung => row.note = Some("did not answer: left alone".into()),
            _ => {}
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_has_one_name_in_the_table_and_in_json() {
        use State::*;
        for s in [
            Idle, Busy, Hung, StaleLogin, Stopped, Refused, Listening, Unknown,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(StaleLogin.name(), "stale-login");
    }
}
