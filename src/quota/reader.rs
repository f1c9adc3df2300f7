//! The newest rate-limit snapshot in a home's session files, by the snapshot's own timestamp,
//! found with bounded work whatever the size of the history.
//!
//! Codex writes `sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl` (local time in
//! the name, so names sort by start time) with one `{"timestamp","type","payload"}` object per
//! line. After each model response it records an `event_msg` whose payload type is
//! `token_count`, carrying `rate_limits` (`quota::snapshot` reads it; `null`, or an object with
//! no window, is no snapshot: openai/codex#14880). A usage-limit failure records the snapshot
//! that came with the error the same way, so an exhausted account shows as such here afterwards.
//!
//! A file's name says when its session started, not when it was last written: a resumed session
//! appends to its file in its ORIGINAL date folder. So candidates are ordered by modification
//! time: the rollouts of the newest day folders, walked newest first until `MAX_STATS` entries
//! have been looked at (a bounded readdir + stat, whatever the history), newest mtime first; a
//! file can hold no snapshot newer than its mtime, so the walk stops at the first file older than
//! the best snapshot found. Files are read backwards from their end.
//!
//! Compressed rollouts (`.jsonl.zst`: Codex compresses files untouched for 7 days, keeping their
//! mtime) cannot be read backwards: they are decompressed as a stream, bounded in size, keeping
//! the last snapshot. A `.zst` beside a plain `.jsonl` of the same name is ignored (Codex reads the
//! plain one).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::Value;

use super::snapshot::{self, Shape};
use super::{Reading, Source};
use crate::sys::clock::parse_rfc3339;

/// Files read at most per home: a recent session without a snapshot (interrupted before any
/// model response) is common, a long run of them is not.
pub const MAX_FILES: usize = 64;
/// Directory entries looked at (stat) at most per home, newest day folders first: about ten days
/// at 24 sessions a day (weeks of ordinary use), and a fixed cost however long the history is. A
/// session resumed from further back is seen through the broker's record or a live read.
pub const MAX_STATS: usize = 256;
/// Bytes read at most from the end of one file: the snapshot is written after each response,
/// so the last one sits near the end; a huge final tool output is not worth reading through.
pub const MAX_TAIL_BYTES: u64 = 4 << 20;
/// Bytes read at most per home: an API-key account never gets a snapshot, and its history must
/// not be read through for want of one.
pub const MAX_HOME_BYTES: u64 = 16 << 20;
/// A compressed rollout larger than this is not decompressed.
pub const MAX_ZST_BYTES: u64 = 2 << 20;
/// Decompressed bytes read at most from one compressed rollout.
pub const MAX_ZST_OUTPUT: u64 = 32 << 20;
const CHUNK: usize = 64 << 10;
/// Modification times are written after the line they follow; allow for coarse clocks.
const MTIME_SLACK: i64 = 2;

/// What a scan found, with how much it looked at (for `quota --json` and the benchmark).
#[derive(Debug, Default)]
pub struct Scan {
    pub reading: Option<Reading>,
    pub files_examined: usize,
    /// Compressed rollouts decompressed.
    pub compressed_read: usize,
    pub bytes_read: u64,
    /// Directory entries looked at.
    pub entries_seen: usize,
}

struct Candidate {
    path: PathBuf,
    mtime: i64,
    compressed: bool,
}

pub fn latest(home: &Path) -> Scan {
    let mut scan = Scan::default();
    let mut cands = candidates(home, &mut scan.entries_seen);
    // Newest first; plain files before compressed ones of the same age.
    cands.sort_by(|a, b| {
        b.mtime
            .cmp(&a.mtime)
            .then(a.compressed.cmp(&b.compressed))
            .then(b.path.cmp(&a.path))
    });
    for c in cands {
        if let Some(best) = &scan.reading
            && c.mtime + MTIME_SLACK < best.observed_at
        {
            break;
        }
        if scan.files_examined >= MAX_FILES || scan.bytes_read >= MAX_HOME_BYTES {
            break;
        }
        scan.files_examined += 1;
        let found = if c.compressed {
            scan.compressed_read += 1;
            let (found, read) = zst_snapshot(&c.path);
            scan.bytes_read += read;
            found
        } else {
            let budget = (MAX_HOME_BYTES - scan.bytes_read).min(MAX_TAIL_BYTES);
            let (found, read) = last_snapshot(&c.path, budget);
            scan.bytes_read += read;
            found
        };
        if let Some(r) = found
            && scan
                .reading
                .as_ref()
                .is_none_or(|best| r.observed_at > best.observed_at)
        {
            scan.reading = Some(r);
        }
    }
    scan
}

/// Rollout files of the newest day folders with their mtimes, at most `MAX_STATS` entries.
fn candidates(home: &Path, seen: &mut usize) -> Vec<Candidate> {
    let mut out = Vec::new();
    let sessions = home.join("sessions");
    for year in sorted_desc(&sessions, is_digits) {
        for month in sorted_desc(&year, is_digits) {
            for day in sorted_desc(&month, is_digits) {
                if *seen >= MAX_STATS {
                    return out;
                }
                let Ok(entries) = std::fs::read_dir(&day) else {
                    continue;
                };
                let mut plain: Vec<String> = Vec::new();
                let mut zst: Vec<Candidate> = Vec::new();
                for e in entries.flatten() {
                    if *seen >= MAX_STATS {
                        break;
                    }
                    *seen += 1;
                    let Ok(name) = e.file_name().into_string() else {
                        continue;
                    };
                    if !name.starts_with("rollout-") {
                        continue;
                    }
                    let compressed = name.ends_with(".jsonl.zst");
                    if !compressed && !name.ends_with(".jsonl") {
                        continue;
                    }
                    // DirEntry::metadata does not follow symlinks: a link is not a rollout.
                    let Ok(meta) = e.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs() as i64);
                    let c = Candidate {
                        path: day.join(&name),
                        mtime,
                        compressed,
                    };
                    if compressed {
                        zst.push(c);
                    } else {
                        plain.push(name);
                        out.push(c);
                    }
                }
                out.extend(zst.into_iter().filter(|c| {
                    let name = c.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let stem = name.strip_suffix(".zst").unwrap_or(name);
                    !plain.iter().any(|p| p == stem)
                }));
            }
        }
    }
    out
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

/// The last snapshot in a compressed rollout, decompressing it as a stream; also returns how
/// many compressed bytes it holds.
fn zst_snapshot(path: &Path) -> (Option<Reading>, u64) {
    let Ok(f) = File::open(path) else {
        return (None, 0);
    };
    let size = f.metadata().map_or(u64::MAX, |m| m.len());
    if size > MAX_ZST_BYTES {
        return (None, 0);
    }
    let Ok(decoder) = ruzstd::decoding::StreamingDecoder::new(f) else {
        return (None, size);
    };
    let mut lines = BufReader::new(decoder.take(MAX_ZST_OUTPUT));
    let mut last = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(r) = parse_line(line.trim_ascii_end(), path) {
                    last = Some(r);
                }
            }
        }
    }
    (last, size)
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
    let observed_at = v
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)?;
    let source = Source::SessionFile {
        path: path.to_path_buf(),
    };
    snapshot::parse(
        payload.get("rate_limits")?,
        Shape::Snake,
        observed_at,
        source,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Window;

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

    /// Sets a file's mtime to an RFC 3339 time, as Codex's last append would have.
    fn touch(p: &Path, when: &str) {
        let secs = parse_rfc3339(when).unwrap() as u64;
        let f = File::options().write(true).open(p).unwrap();
        f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/codex-rollouts");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn reads_real_0_169_and_0_171_lines() {
        for v in ["169", "171"] {
            let d = tempfile::tempdir().unwrap();
            let lines: Vec<String> = fixture(&format!("token_count.ok.{v}.jsonl"))
                .lines()
                .map(String::from)
                .collect();
            write(
                d.path(),
                "2026/11/28",
                "rollout-2026-11-28T18-51-50-a.jsonl",
                &lines,
            );
            let r = latest(d.path()).reading.unwrap();
            let p = r.primary.unwrap();
            assert_eq!((p.used_percent, p.window_minutes), (42.5, Some(300)), "{v}");
            assert_eq!(r.secondary.unwrap().used_percent, 17.0, "{v}");
            let c = r.credits.unwrap();
            assert_eq!((c.has_credits, c.balance.as_deref()), (true, Some("12.34")));
            assert_eq!(r.observed_at, parse_rfc3339(&lines[0][14..38]).unwrap());
        }
    }

    #[test]
    fn null_and_windowless_snapshots_are_passed_over_for_the_one_before() {
        let d = tempfile::tempdir().unwrap();
        let null_line = r#"{"timestamp":"2026-11-28T18:55:00Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":null}}"#;
        let lines = vec![
            fixture("token_count.ok.171.jsonl").trim().to_string(),
            fixture("token_count.no-headers.171.jsonl")
                .trim()
                .to_string(),
            null_line.to_string(),
        ];
        write(
            d.path(),
            "2026/11/28",
            "rollout-2026-11-28T18-51-50-a.jsonl",
            &lines,
        );
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 42.5);
    }

    #[test]
    fn a_usage_limit_failure_leaves_its_snapshot_with_the_reached_type() {
        let d = tempfile::tempdir().unwrap();
        let lines: Vec<String> = fixture("usage-limit-turn.171.jsonl")
            .lines()
            .map(String::from)
            .collect();
        write(
            d.path(),
            "2026/11/28",
            "rollout-2026-11-28T18-51-50-a.jsonl",
            &lines,
        );
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 100.0);
        assert_eq!(r.reached_type.as_deref(), Some("rate_limit_reached"));
    }

    #[test]
    fn a_weekly_only_snapshot_fills_the_weekly_slot() {
        let d = tempfile::tempdir().unwrap();
        let line = snapshot("2026-01-10T10:00:00Z", 30.0, 0.0)
            .replace(r#""window_minutes":300"#, r#""window_minutes":10080"#)
            .replace(
                r#""secondary":{"used_percent":0,"window_minutes":10080,"resets_at":1768400000}"#,
                r#""secondary":null"#,
            );
        write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T10-00-00-w.jsonl",
            &[line],
        );
        let r = latest(d.path()).reading.unwrap();
        assert!(r.primary.is_none());
        assert_eq!(r.secondary.unwrap().used_percent, 30.0);
    }

    #[test]
    fn a_resumed_session_in_an_old_folder_holds_the_newest_snapshot() {
        let d = tempfile::tempdir().unwrap();
        let newest_name = write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T10-00-00-new.jsonl",
            &[META.into(), snapshot("2026-01-10T10:00:05Z", 10.0, 10.0)],
        );
        touch(&newest_name, "2026-01-10T10:00:06Z");
        // Started two days earlier, resumed after the other session: appended in place.
        let resumed = write(
            d.path(),
            "2026/01/08",
            "rollout-2026-01-08T09-00-00-old.jsonl",
            &[
                META.into(),
                snapshot("2026-01-08T09:00:05Z", 1.0, 1.0),
                snapshot("2026-01-10T12:30:00Z", 77.0, 50.0),
            ],
        );
        touch(&resumed, "2026-01-10T12:30:01Z");
        // Older still, never touched since: not even opened.
        let cold = write(
            d.path(),
            "2026/01/09",
            "rollout-2026-01-09T09-00-00-cold.jsonl",
            &[snapshot("2026-01-09T09:00:05Z", 99.0, 99.0)],
        );
        touch(&cold, "2026-01-09T09:00:06Z");
        let scan = latest(d.path());
        let r = scan.reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 77.0);
        assert_eq!(r.source, Source::SessionFile { path: resumed });
        assert_eq!(
            scan.files_examined, 1,
            "the rest are older than the snapshot"
        );
    }

    #[test]
    fn compressed_rollouts_are_read_and_a_plain_sibling_wins() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("sessions/2026/11/28");
        std::fs::create_dir_all(&dir).unwrap();
        // A real 0.171 compressed rollout (its snapshot: 42.5% / 17%).
        let zst = dir.join("rollout-2026-11-28T18-51-50-z.jsonl.zst");
        std::fs::copy(format!("{FIXTURES}/rollout-0.171.jsonl.zst"), &zst).unwrap();
        touch(&zst, "2026-11-28T18:51:51Z");
        let scan = latest(d.path());
        assert_eq!(scan.compressed_read, 1);
        let r = scan.reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 42.5);
        assert_eq!(r.source, Source::SessionFile { path: zst.clone() });

        // One we compress ourselves, newer; and a .zst whose plain twin exists is ignored.
        let text = [
            META.to_string(),
            snapshot("2026-11-29T08:00:00Z", 64.0, 1.0),
        ]
        .join("\n");
        let packed = ruzstd::encoding::compress_to_vec(
            text.as_bytes(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mine = dir.join("rollout-2026-11-28T20-00-00-m.jsonl.zst");
        std::fs::write(&mine, &packed).unwrap();
        touch(&mine, "2026-11-29T08:00:01Z");
        let twin = write(
            d.path(),
            "2026/11/28",
            "rollout-2026-11-28T20-00-00-m.jsonl",
            &[META.into(), snapshot("2026-11-29T07:00:00Z", 5.0, 5.0)],
        );
        touch(&twin, "2026-11-29T07:00:01Z");
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(
            r.primary.unwrap().used_percent,
            5.0,
            "the plain twin is what Codex reads"
        );
        std::fs::remove_file(&twin).unwrap();
        let r = latest(d.path()).reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 64.0);
    }

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
        let empty = write(
            d.path(),
            "2026/01/10",
            "rollout-2026-01-10T11-00-00-c.jsonl",
            &[META.into()],
        );
        touch(&older, "2026-01-09T10:00:02Z");
        touch(&newer, "2026-01-10T10:00:05Z");
        touch(&empty, "2026-01-10T11:00:00Z");
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
        assert_eq!(scan.compressed_read, 1, "read, found to be no zstd frame");
        assert_eq!(scan.files_examined, 1);
    }

    #[test]
    fn work_is_bounded_by_the_file_cap() {
        let d = tempfile::tempdir().unwrap();
        // Explicit mtimes: written as they come, the last file could land in a later second
        // on a busy machine and be taken as the newest.
        for i in 0..(MAX_FILES + 10) {
            let p = write(
                d.path(),
                "2026/01/10",
                &format!("rollout-2026-01-10T10-00-{i:04}-a.jsonl"),
                &[META.into()],
            );
            touch(&p, "2026-01-10T11:00:00Z");
        }
        let old = write(
            d.path(),
            "2026/01/09",
            "rollout-2026-01-09T10-00-00-a.jsonl",
            &[snapshot("2026-01-09T10:00:01Z", 5.0, 5.0)],
        );
        touch(&old, "2026-01-09T10:00:01Z");
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
