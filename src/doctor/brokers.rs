//! codex-as's own brokers: a private runtime folder, records of brokers that are gone, brokers
//! that do not answer (stopped or hung), and brokers still running on a login their account has
//! since replaced.

use std::os::unix::fs::MetadataExt;

use super::{Report, q};
use crate::account::Accounts;
use crate::broker::client::{self, ClientError};
use crate::broker::registry::Registry;
use crate::broker::{own_listener, pool, runtime_dir};

pub fn check(accounts: &Accounts, report: &mut Report) {
    let dir = runtime_dir::chosen();
    let elsewhere = format!("export {}=\"$HOME/.cache/codex-as-run\"", runtime_dir::ENV);
    // Read-only: runtime_dir::ensure_at would create the folder or tighten its mode itself.
    if let Err(e) = runtime_dir::diagnose(&dir) {
        let fix = match &e {
            runtime_dir::RuntimeDirError::NotAFolder { path, .. } if path == &dir => {
                format!("rm {}   # or: {elsewhere}", q(&dir))
            }
            _ => elsewhere,
        };
        report.finding(
            "brokers",
            dir.display().to_string(),
            format!("every command that needs a broker refuses its runtime folder: {e}"),
            fix,
        );
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(&dir) else {
        return;
    };
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        report.finding(
            "brokers",
            dir.display().to_string(),
            format!("codex-as's runtime folder must be private: it is open to other users (mode {mode:o})"),
            format!("chmod 700 {}", q(&dir)),
        );
        return;
    }
    let Ok(reg) = Registry::open() else {
        return;
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let mut live = 0;
    let mut on_path: Option<Option<String>> = None;
    let mut served = Vec::new();
    for probe in rt.block_on(pool::probe_all(&reg, client::PROBE_TIMEOUT)) {
        let id = &probe.id;
        let account = reg
            .record(id)
            .map(|r| r.account)
            .unwrap_or_else(|| "?".into());
        match probe.answer {
            Ok(st) => {
                live += 1;
                served.extend(st.app_server_pid);
                check_app_server(&account, &st, &mut on_path, report);
                if pool::login_replaced(&st) {
                    report.finding(
                        "brokers",
                        format!("broker of '{account}'"),
                        "it runs on a login its account has replaced since (codex-as starts a new one, this one waits to be stopped)",
                        "codex-as brokers stop",
                    );
                }
            }
            Err(ClientError::NotRunning { .. }) => report.finding(
                "brokers",
                format!("record {id}"),
                format!("a record of a broker of '{account}' that is gone"),
                "codex-as brokers   # listing forgets records of brokers that are gone",
            ),
            Err(ClientError::Timeout(waited)) => {
                let (problem, fix) = match pool::stopped_pid(&reg, id) {
                    Some(pid) => (
                        format!(
                            "it is stopped (pid {pid}, by SIGSTOP or Ctrl-Z) and answers nobody: calls for '{account}' pass it over for another broker"
                        ),
                        format!(
                            "kill -CONT {pid}   # resume it; `codex-as brokers stop` then stops it once idle"
                        ),
                    ),
                    None => (
                        format!(
                            "it did not answer within {}s (hung?): calls for '{account}' wait for it, then pass it over for another broker",
                            waited.as_secs_f32()
                        ),
                        match reg.pid(id) {
                            Some(pid) => format!(
                                "codex-as brokers   # look again; if it stays hung: kill {pid}"
                            ),
                            None => "codex-as brokers   # look again".to_string(),
                        },
                    ),
                };
                report.finding("brokers", format!("broker of '{account}'"), problem, fix);
            }
            Err(_) => {}
        }
    }
    lone_listeners(accounts, &reg, &served, report);
    report.note(
        "brokers",
        format!(
            "{live} codex-as broker(s) running; runtime folder {}",
            dir.display()
        ),
    );
}

/// A listener codex-as started that no broker serves through (`served`: the app-servers the
/// brokers use) is up for its other clients, or because they could not be seen: a note, with
/// how to stop it once nobody uses it.
fn lone_listeners(accounts: &Accounts, reg: &Registry, served: &[u32], report: &mut Report) {
    for (record, _) in own_listener::lone(reg.dir(), served) {
        let who = accounts
            .name_of_home(&record.home)
            .unwrap_or_else(|| record.home.display().to_string());
        let users = own_listener::others_in_words(&record);
        report.note(
            "brokers",
            format!(
                "a Codex listener codex-as started for '{who}' (pid {}) is up with no broker: {users}",
                record.server.pid
            ),
        );
    }
}

/// Which app-server serves a broker, and what is wrong with it: a listener of another version
/// than the `codex` on PATH (`on_path` is asked once, when first needed), or a child of its own
/// next to a Codex listener of the same home (two processes refreshing one login).
fn check_app_server(
    account: &str,
    st: &crate::broker::protocol::Status,
    on_path: &mut Option<Option<String>>,
    report: &mut Report,
) {
    let Some(words) = st.app_server_words() else {
        return;
    };
    report.note(
        "brokers",
        format!("broker of '{account}': app-server: {words}"),
    );
    let home = st.codex_home.as_deref().map(std::path::Path::new);
    if st.on_listener() {
        let Some(theirs) = st.app_server_version() else {
            return;
        };
        let ours = on_path.get_or_insert_with(|| {
            crate::sys::tools::codex()
                .ok()
                .and_then(|c| crate::sys::tools::codex_version(&c))
        });
        if let Some(ours) = ours.as_deref().map(crate::sys::tools::version_number)
            && ours != theirs
        {
            report.finding(
                "brokers",
                format!("broker of '{account}'"),
                format!("it serves through a Codex listener running {theirs}, and the codex on PATH is {ours}: that listener (the TUI's daemon, say) keeps running the other version"),
                format!("codex-as {account} -- codex app-server daemon version   # then restart that listener when no work runs on it"),
            );
        }
    } else if let Some(home) = home
        && let crate::broker::listener::Found::Socket(path) = crate::broker::listener::find(home)
        && std::os::unix::net::UnixStream::connect(&path).is_ok()
    {
        report.finding(
            "brokers",
            format!("broker of '{account}'"),
            "it runs its own codex app-server next to the Codex listener of the same home (the listener came later): two processes hold and refresh one login",
            "codex-as brokers stop   # the next broker serves through the listener",
        );
    }
}
