//! The one line that tells the user a turn went on elsewhere, and where it is written for a
//! relay nobody's terminal is attached to: the plugin job's log, next to the job record that
//! holds the thread (`<state dir>/jobs/<id>.json` names its `logFile`), which `/codex:status`
//! and `status` show. A foreground run prints it on its own stderr (`run::attempts`).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::plugin::workspace;

/// "codex-as: alice: usage limit reached; the thread moved to 'bob' and the turn goes on there"
pub fn text(from: &str, to: &str, review: bool) -> String {
    let goes_on = if review {
        "the review starts again there"
    } else {
        "the turn goes on there"
    };
    format!("codex-as: {from}: usage limit reached; the thread moved to '{to}' and {goes_on}")
}

/// The environment of process `pid` (Linux: /proc), when it can be read; the plugin's state
/// folder depends on the companion's CLAUDE_PLUGIN_DATA and TMPDIR, not the relay's.
fn environ_of(pid: u32) -> Option<HashMap<String, String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// The log of the running job of `thread` in the plugin's state folder of `cwd`'s workspace,
/// as the companion `pid` sees that folder.
pub fn job_log(pid: Option<u32>, cwd: &Path, thread: &str) -> Option<PathBuf> {
    let env = pid.and_then(environ_of);
    let var = |k: &str| match &env {
        Some(e) => e.get(k).cloned(),
        None => std::env::var(k).ok(),
    };
    let root = workspace::plugin_state_root_in(&var);
    let ws = workspace::workspace_root(cwd);
    let jobs = workspace::plugin_state_dir(&root, &ws).join("jobs");
    job_log_in(&jobs, thread)
}

/// The newest running job record of `thread` in `jobs`, and its log (which must be in `jobs`).
pub fn job_log_in(jobs: &Path, thread: &str) -> Option<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(jobs).ok()?.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(rec) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let running = rec.get("status").and_then(Value::as_str) == Some("running");
        if !running || rec.get("threadId").and_then(Value::as_str) != Some(thread) {
            continue;
        }
        let Some(log) = rec
            .get("logFile")
            .and_then(Value::as_str)
            .map(PathBuf::from)
        else {
            continue;
        };
        if log.parent() != Some(jobs) {
            continue;
        }
        let at = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(t, _)| at > *t) {
            best = Some((at, log));
        }
    }
    best.map(|(_, p)| p)
}

/// Appends the line the way the plugin writes its own (`[<ISO time>] <message>`), to a log
/// file that exists and is not a link.
pub fn append(log: &Path, line: &str) -> std::io::Result<()> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let at = crate::sys::clock::format_utc(crate::sys::clock::now());
    let at = at.replace('Z', &format!(".{ms:03}Z"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(log)?;
    f.write_all(format!("[{at}] {line}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_both_accounts() {
        assert_eq!(
            text("alice", "bob", false),
            "codex-as: alice: usage limit reached; the thread moved to 'bob' and the turn goes on there"
        );
        assert!(text("a", "b", true).ends_with("the review starts again there"));
    }

    #[test]
    fn the_running_job_of_the_thread_gets_the_line() {
        let d = tempfile::tempdir().unwrap();
        let jobs = d.path().join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        let log = jobs.join("task-1.log");
        std::fs::write(&log, "").unwrap();
        let rec = |status: &str, thread: &str, log: &Path| {
            serde_json::json!({"id": "x", "status": status, "threadId": thread, "logFile": log})
                .to_string()
        };
        std::fs::write(jobs.join("task-0.json"), rec("failed", "th", &log)).unwrap();
        std::fs::write(jobs.join("task-2.json"), rec("running", "other", &log)).unwrap();
        std::fs::write(
            jobs.join("task-3.json"),
            rec("running", "th", Path::new("/etc/passwd")),
        )
        .unwrap();
        assert_eq!(job_log_in(&jobs, "th"), None);
        std::fs::write(jobs.join("task-1.json"), rec("running", "th", &log)).unwrap();
        assert_eq!(job_log_in(&jobs, "th"), Some(log.clone()));
        append(&log, &text("a", "b", false)).unwrap();
        let got = std::fs::read_to_string(&log).unwrap();
        assert!(
            got.starts_with('[') && got.contains("Z] codex-as: a: usage limit reached"),
            "{got}"
        );
    }
}
