//! The plugin companion's job records (`<state dir>/jobs/<id>.json`), read after an attempt to
//! learn how its turn ended: the companion prints a failed turn's message on stdout and drops
//! the app-server's structured error, but it also writes the job's final record, with
//! `status: "failed"` and the message in `rendered` (or `errorMessage` when it threw). Reading
//! that file leaves the child's terminal alone (nothing is captured) and works whichever
//! app-server served the turn (the broker, or the companion's own when the broker was busy).
//!
//! A record belongs to this attempt when it appeared or changed while the attempt ran and is
//! not running under another process. A concurrent companion in the same workspace whose turn
//! fails with a usage limit during the attempt leaves the same trace (its pid is cleared when it
//! ends): that residual risk is documented in docs/fallback.md. For turns served by codex-as's
//! broker the broker's own record (by pid) is asked first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::quota::signals;

pub struct Before {
    dir: PathBuf,
    seen: HashMap<PathBuf, Option<SystemTime>>,
}

/// What the attempt's job records say.
#[derive(Debug, Default)]
pub struct Found {
    /// The usage-limit message of a failed job, when there is one.
    pub usage_limit: Option<String>,
    /// Threads the attempt's jobs ran (to check where their session files landed).
    pub thread_ids: Vec<String>,
}

fn records(dir: &Path) -> HashMap<PathBuf, Option<SystemTime>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect()
}

pub fn before(state_dir: &Path) -> Before {
    let dir = state_dir.join("jobs");
    Before {
        seen: records(&dir),
        dir,
    }
}

/// Reads the records that appeared or changed since `before`; `child_pid` is the companion's.
pub fn after(before: &Before, child_pid: Option<u32>) -> Found {
    let mut found = Found::default();
    for (path, modified) in records(&before.dir) {
        if before.seen.get(&path) == Some(&modified) {
            continue;
        }
        let Some(v) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        // A record still running under another process is someone else's job.
        if let (Some(pid), Some(mine)) = (v.get("pid").and_then(Value::as_u64), child_pid)
            && pid != u64::from(mine)
        {
            continue;
        }
        if let Some(t) = v.get("threadId").and_then(Value::as_str) {
            found.thread_ids.push(t.to_string());
        }
        if let Some(m) = usage_limit_of(&v)
            && found.usage_limit.is_none()
        {
            found.usage_limit = Some(m);
        }
    }
    found
}

/// The usage-limit message of a failed job record, if that is why it failed.
pub fn usage_limit_of(record: &Value) -> Option<String> {
    if record.get("status").and_then(Value::as_str) != Some("failed") {
        return None;
    }
    ["errorMessage", "rendered"]
        .iter()
        .filter_map(|k| record.get(*k).and_then(Value::as_str))
        .find(|t| signals::is_usage_limit_report(t))
        .map(|t| t.trim().lines().next().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_failed_records_with_the_message_first() {
        let limit = "You've hit your usage limit. Try again at 3:15 PM.\n";
        assert!(usage_limit_of(&json!({"status":"failed","rendered":limit})).is_some());
        assert!(usage_limit_of(&json!({"status":"failed","errorMessage":limit})).is_some());
        assert!(usage_limit_of(&json!({"status":"completed","rendered":limit})).is_none());
        assert!(
            usage_limit_of(&json!({"status":"failed","rendered":"fake codex: the turn failed\n"}))
                .is_none()
        );
        assert!(
            usage_limit_of(
                &json!({"status":"failed","rendered":"# Review\nYou've hit your usage limit\n"})
            )
            .is_none()
        );
    }

    #[test]
    fn sees_only_records_written_during_the_attempt() {
        let d = tempfile::tempdir().unwrap();
        let jobs = d.path().join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        let old =
            json!({"status":"failed","rendered":"You've hit your usage limit.","threadId":"t0"});
        std::fs::write(jobs.join("old.json"), old.to_string()).unwrap();
        let b = before(d.path());
        assert!(after(&b, None).usage_limit.is_none());
        let new = json!({"status":"failed","rendered":"You've hit your usage limit.","threadId":"t1","pid":null});
        std::fs::write(jobs.join("new.json"), new.to_string()).unwrap();
        let running = json!({"status":"running","pid":999_999,"threadId":"t2"});
        std::fs::write(jobs.join("other.json"), running.to_string()).unwrap();
        let f = after(&b, Some(1));
        assert_eq!(f.thread_ids, ["t1"]);
        assert_eq!(
            f.usage_limit.as_deref(),
            Some("You've hit your usage limit.")
        );
    }
}
