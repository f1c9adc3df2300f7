//! codex-as's own brokers: a private runtime folder, records of brokers that are gone, brokers
//! that do not answer (stopped or hung), and brokers still running on a login their account has
//! since replaced.

use std::os::unix::fs::MetadataExt;

use super::{Report, q};
use crate::account::Accounts;
use crate::broker::client::{self, ClientError};
use crate::broker::registry::Registry;
use crate::broker::{pool, runtime_dir};

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
    for probe in rt.block_on(pool::probe_all(&reg, client::PROBE_TIMEOUT)) {
        let id = &probe.id;
        let account = reg
            .record(id)
            .map(|r| r.account)
            .unwrap_or_else(|| "?".into());
        match probe.answer {
            Ok(st) => {
                live += 1;
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
    let _ = accounts;
    report.note(
        "brokers",
        format!(
            "{live} codex-as broker(s) running; runtime folder {}",
            dir.display()
        ),
    );
}
