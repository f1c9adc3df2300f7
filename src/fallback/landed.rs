//! Where an attempt's sessions landed. A thread's rollout file is written under the home of the
//! app-server that ran it, so finding it under the chosen account's `sessions/` is the proof
//! that the account, and not another one, did the work (the unpatched plugin's broker reuse
//! once sent work to the wrong home without a word).

use std::path::{Path, PathBuf};

use crate::quota::reader;

/// Day folders searched for a thread: a run that began before midnight writes under the day it
/// began, so today's and a couple before are enough.
const DAYS: usize = 3;

/// The newest rollout file of a home, to notice a new one after an attempt.
pub fn newest_rollout(home: &Path) -> Option<PathBuf> {
    reader::day_dirs(home, DAYS)
        .iter()
        .find_map(|d| reader::rollouts(d).into_iter().next())
}

/// The rollout file of `thread_id` under `home`, if there is one.
pub fn find_thread(home: &Path, thread_id: &str) -> Option<PathBuf> {
    let plain = format!("-{thread_id}.jsonl");
    let compressed = format!("-{thread_id}.jsonl.zst");
    reader::day_dirs(home, DAYS).iter().find_map(|d| {
        reader::rollouts(d).into_iter().find(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&plain) || n.ends_with(&compressed))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_threads_and_the_newest_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(newest_rollout(d.path()), None);
        let day = d.path().join("sessions/2026/01/10");
        std::fs::create_dir_all(&day).unwrap();
        let a = day.join("rollout-2026-01-10T10-00-00-aaaa.jsonl");
        let b = day.join("rollout-2026-01-10T11-00-00-bbbb.jsonl");
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        assert_eq!(newest_rollout(d.path()), Some(b));
        assert_eq!(find_thread(d.path(), "aaaa"), Some(a));
        assert_eq!(find_thread(d.path(), "aa"), None);
    }
}
