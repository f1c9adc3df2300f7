//! The latest rate-limit snapshot in a home's session files, found with bounded work whatever
//! the size of the history: day folders newest first, files newest first, each read backwards
//! from its end, stopping at the first file that has a snapshot.
//!
//! Codex writes `sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl` (local time in
//! the name, so names sort by start time) with one `{"timestamp","type","payload"}` object per
//! line. After each model response it records an `event_msg` whose payload type is
//! `token_count`, carrying `rate_limits.primary/secondary` = `{used_percent, window_minutes,
//! resets_at}` (Unix seconds); releases before resets_at wrote `resets_in_seconds`, relative to
//! the line's timestamp. When a turn fails for the usage limit, Codex records the snapshot that
//! came with the error the same way (codex-rs core: `UsageLimitReached` ->
//! `update_rate_limits`), so an exhausted account shows as such here afterwards. Newer releases
//! may compress rollouts (`.jsonl.zst`): those are counted and skipped, never decompressed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Reading, Source, Window};
use crate::sys::clock::parse_rfc3339;

/// Files examined at most per home: a recent session without a snapshot (interrupted before
/// any model response) is common, a long run of them is not.
pub const MAX_FILES: usize = 64;
/// Bytes read at most from the end of one file: the snapshot is written after each response,
/// so the last one sits near the end; a huge final tool output is not worth reading through.
pub const MAX_TAIL_BYTES: u64 = 4 << 20;
/// Bytes read at most per home: an API-key account never gets a snapshot, and its history must
/// not be read through for want of one.
pub const MAX_HOME_BYTES: u64 = 16 << 20;
const CHUNK: usize = 64 << 10;

/// What a scan found, with how much it looked at (for `quota --json` and the benchmark).
#[derive(Debug, Default)]
pub struct Scan {
    pub reading: Option<Reading>,
    pub files_examined: usize,
    /// Compressed rollouts seen and skipped.
    pub compressed_skipped: usize,
    pub bytes_read: u64,
}

pub fn latest(home: &Path) -> Scan {
    let mut scan = Scan::default();
    let sessions = home.join("sessions");
    'years: for year in sorted_desc(&sessions, is_digits) {
        for month in sorted_desc(&year, is_digits) {
            for day in sorted_desc(&month, is_digits) {
                for file in sorted_desc(&day, |n| n.starts_with("rollout-")) {
                    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.ends_with(".jsonl.zst") {
                        scan.compressed_skipped += 1;
                        continue;
                    }
                    if !name.ends_with(".jsonl") {
                        continue;
                    }
                    if scan.files_examined >= MAX_FILES {
                        break 'years;
                    }
                    if scan.bytes_read >= MAX_HOME_BYTES {
                        break 'years;
                    }
                    scan.files_examined += 1;
                    let budget = (MAX_HOME_BYTES - scan.bytes_read).min(MAX_TAIL_BYTES);
                    let (found, read) = last_snapshot(&file, budget);
                    scan.bytes_read += read;
                    if let Some(r) = found {
                        scan.reading = Some(r);
                        break 'years;
                    }
                }
            }
        }
    }
    scan
}

/// Day folders of `sessions/`, newest first, at most `limit` of them.
pub fn day_dirs(home: &Path, limit: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for year in sorted_desc(&home.join("sessions"), is_digits) {
        for month in sorted_desc(&year, is_digits) {
            for day in sorted_desc(&month, is_digits) {
                if out.len() >= limit {
                    return out;
                }
                out.push(day);
            }
        }
    }
    out
}

/// Rollout files of one day folder, newest first.
pub fn rollouts(day: &Path) -> Vec<PathBuf> {
    sorted_desc(day, |n| n.starts_with("rollout-"))
}

fn is_digits(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

/// Entries of `dir` whose names pass `keep`, newest (greatest name) first. A missing or
/// unreadable folder has none.
fn sorted_desc(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| keep(n))
        .collect();
    // Zero-padded names sort like the dates they are.
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// The last `token_count` line with rate limits in a file, reading backwards from its end, at
/// most `budget` bytes; also returns how many bytes were read.
pub fn last_snapshot(path: &Path, budget: u64) -> (Option<Reading>, u64) {
    let mut read = 0;
    let found = tail_snapshot(path, budget, &mut read);
    (found, read)
}

fn tail_snapshot(path: &Path, budget: u64, read: &mut u64) -> Option<Reading> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let floor = len.saturating_sub(budget);
    let mut pos = len;
    // Bytes after `pos` not yet split into lines (the start of a line cut by the chunk).
    let mut carry: Vec<u8> = Vec::new();
    while pos > floor {
        let size = (pos - floor).min(CHUNK as u64) as usize;
        pos -= size as u64;
        let mut buf = vec![0u8; size];
        f.seek(SeekFrom::Start(pos)).ok()?;
        f.read_exact(&mut buf).ok()?;
        *read += size as u64;
        buf.extend_from_slice(&carry);
        // Every complete line in `buf` except possibly the first, which may continue earlier.
        let mut end = buf.len();
        while let Some(nl) = buf[..end].iter().rposition(|b| *b == b'\n') {
            if let Some(r) = parse_line(&buf[nl + 1..end], path) {
                return Some(r);
            }
            end = nl;
        }
        buf.truncate(end);
        carry = buf;
    }
    if pos == 0 {
        return parse_line(&carry, path);
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn parse_line(line: &[u8], path: &Path) -> Option<Reading> {
    // Cheap filter first: most lines are not snapshots, and some are megabytes long.
    if !contains(line, b"token_count") || !contains(line, b"rate_limits") {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    if v.get("type")?.as_str()? != "event_msg" {
        return None;
    }
    let payload = v.get("payload")?;
    if payload.get("type")?.as_str()? != "token_count" {
        return None;
    }
    let limits = payload.get("rate_limits").filter(|l| l.is_object())?;
    let observed_at = v
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)?;
    let window = |key: &str| window(limits.get(key)?, observed_at);
    let primary = window("primary");
    let secondary = window("secondary");
    if primary.is_none() && secondary.is_none() {
        return None;
    }
    Some(Reading {
        primary,
        secondary,
        plan: limits
            .get("plan_type")
            .and_then(Value::as_str)
            .map(String::from),
        observed_at,
        source: Source::SessionFile {
            path: path.to_path_buf(),
        },
    })
}

fn window(w: &Value, observed_at: i64) -> Option<Window> {
    // Codex writes 0..=100; anything below 0 would only inflate an account's headroom.
    let used_percent = w.get("used_percent")?.as_f64()?.max(0.0);
    let resets_at = w.get("resets_at").and_then(Value::as_i64).or_else(|| {
        w.get("resets_in_seconds")
            .and_then(Value::as_i64)
            .map(|s| observed_at + s)
    });
    Some(Window {
        used_percent,
        window_minutes: w.get("window_minutes").and_then(Value::as_u64),
        resets_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(ts: &str, primary: f64, secondary: f64) -> String {
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":null,"rate_limits":{{"limit_id":"codex","limit_name":null,"primary":{{"used_percent":{primary},"window_minutes":300,"resets_at":1768050000}},"secondary":{{"used_percent":{secondary},"window_minutes":10080,"resets_at":1768400000}},"credits":null,"plan_type":"plus","rate_limit_reached_type":null}}}}}}"#
        )
    }

    fn write(home: &Path, day: &str, name: &str, lines: &[String]) -> PathBuf {
        let dir = home.join("sessions").join(day);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    const META: &str =
        r#"{"timestamp":"2026-01-10T11:00:00Z","type":"session_meta","payload":{"id":"x"}}"#;

    #[test]
    fn a_negative_used_percent_counts_as_zero() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T10-00-00-n.jsonl",
            &[META.into(), snapshot("2026-01-10T10:00:00Z", -5.0, 40.0)],
        );
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 0.0);
    }

    #[test]
    fn takes_the_last_snapshot_of_the_newest_file_that_has_one() {
        let d = tempfile::tempdir().unwrap();
        let older = write(
            d.path(),
            "2026/01/09",
            "rollout-2026-01-09T10-00-00-a.jsonl",
            &[META.into(), snapshot("2026-01-09T10:00:01Z", 90.0, 90.0)],
        );
        let newer = write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T10-00-00-b.jsonl",
            &[
                META.into(),
                snapshot("2026-01-10T10:00:01Z", 10.0, 20.0),
                r#"{"timestamp":"2026-01-10T10:00:02Z","type":"response_item","payload":{}}"#
                    .into(),
                snapshot("2026-01-10T10:00:03Z", 12.5, 40.0),
                r#"{"timestamp":"2026-01-10T10:00:04Z","type":"response_item","payload":{}}"#
                    .into(),
            ],
        );
        // Newest of all, but never got a response: skipped for the one before it.
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T11-00-00-c.jsonl",
            &[META.into()],
        );
        let scan = latest(d.path());
        let r = scan.reading.unwrap();
        assert_eq!(r.primary.as_ref().unwrap().used_percent, 12.5);
        assert_eq!(r.secondary.as_ref().unwrap().used_percent, 40.0);
        assert_eq!(r.secondary.as_ref().unwrap().window_minutes, Some(10080));
        assert_eq!(r.plan.as_deref(), Some("plus"));
        assert_eq!(
            r.observed_at,
            parse_rfc3339("2026-01-10T10:00:03Z").unwrap()
        );
        assert_eq!(r.source, Source::SessionFile { path: newer });
        assert_eq!(scan.files_examined, 2);
        let _ = older;
    }

    #[test]
    fn reads_across_chunk_boundaries() {
        let d = tempfile::tempdir().unwrap();
        let filler = format!(
            r#"{{"timestamp":"2026-01-10T10:00:02Z","type":"response_item","payload":{{"text":"{}"}}}}"#,
            "x".repeat(CHUNK - 100)
        );
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T10-00-00-b.jsonl",
            &[
                META.into(),
                snapshot("2026-01-10T10:00:01Z", 33.0, 1.0),
                filler.clone(),
                filler,
            ],
        );
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 33.0);
    }

    #[test]
    fn older_releases_gave_seconds_until_reset() {
        let d = tempfile::tempdir().unwrap();
        let line = r#"{"timestamp":"2026-01-10T12:00:00Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":50.0,"window_minutes":300,"resets_in_seconds":600},"secondary":null}}}"#;
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T12-00-00-a.jsonl",
            &[line.into()],
        );
        let r = latest(d.path()).reading.unwrap();
        let p = r.primary.unwrap();
        assert_eq!(
            p.resets_at,
            Some(parse_rfc3339("2026-01-10T12:10:00Z").unwrap())
        );
        assert!(r.secondary.is_none());
        assert!(r.plan.is_none());
    }

    #[test]
    fn nothing_to_read_is_no_reading() {
        let d = tempfile::tempdir().unwrap();
        assert!(latest(d.path()).reading.is_none());
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T12-00-00-a.jsonl.zst",
            &["?".into()],
        );
        write(
            d.path(),
            "2026/01/10",
            "notes.txt",
            &[snapshot("2026-01-10T10:00:01Z", 1.0, 1.0)],
        );
        let scan = latest(d.path());
        assert!(scan.reading.is_none());
        assert_eq!(scan.compressed_skipped, 1);
        assert_eq!(scan.files_examined, 0);
    }

    #[test]
    fn work_is_bounded_by_the_file_cap() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..(MAX_FILES + 10) {
            write(
                d.path(),
                "2026/01/10",
                &format!("rollout-2026-01-10T10-00-{i:04}-a.jsonl"),
                &[META.into()],
            );
        }
        write(
            d.path(),
            "2026/01/09",
            "rollout-2026-01-09T10-00-00-a.jsonl",
            &[snapshot("2026-01-09T10:00:01Z", 5.0, 5.0)],
        );
        let scan = latest(d.path());
        assert!(scan.reading.is_none(), "the old snapshot is beyond the cap");
        assert_eq!(scan.files_examined, MAX_FILES);
    }

    #[test]
    fn work_is_bounded_by_the_byte_budget() {
        let d = tempfile::tempdir().unwrap();
        // Big sessions without a snapshot (an API-key account's, say).
        let big = format!(
            r#"{{"timestamp":"2026-01-10T10:00:02Z","type":"response_item","payload":{{"text":"{}"}}}}"#,
            "x".repeat(1 << 20)
        );
        for i in 0..20 {
            let lines: Vec<String> = (0..3).map(|_| big.clone()).collect();
            write(
                d.path(),
                "2026/01/10",
                &format!("rollout-2026-01-10T10-00-{i:04}-a.jsonl"),
                &lines,
            );
        }
        let scan = latest(d.path());
        assert!(scan.reading.is_none());
        assert!(scan.bytes_read <= MAX_HOME_BYTES, "{}", scan.bytes_read);
        assert!(scan.files_examined < 20, "{}", scan.files_examined);
    }

    #[test]
    fn windows_past_their_reset_are_empty() {
        let w = Window {
            used_percent: 99.0,
            window_minutes: Some(300),
            resets_at: Some(100),
        };
        assert_eq!(w.effective_used(99), 99.0);
        assert_eq!(w.effective_used(100), 0.0);
        let w = Window {
            resets_at: None,
            ..w
        };
        assert_eq!(w.effective_used(1_000_000), 99.0);
    }
}
