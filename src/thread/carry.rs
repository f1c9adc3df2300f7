//! Carrying a thread from home A to home B, so that B's `codex app-server` resumes it by id.
//!
//! Every file of the thread (parents it names first, then its segments, then its main rollout)
//! is written into B's `sessions/` at the path it has in A (or where B already keeps its copy),
//! each one atomically: a temporary file in the same folder whose name Codex never takes for a
//! rollout, synced, renamed over the target. A SIGKILL at any moment therefore leaves B with
//! its old copy or the complete new one, and the next carry into B sweeps the temporary files
//! a killed one left. A's files are only read.
//!
//! What is copied: A's complete lines without its encrypted reasoning (bound to A's account),
//! and without the turn `drop_turn` names (from its start line to the end: its input is
//! replayed on B). Copies are compared line by line after that, ignoring on both sides a last
//! turn that failed on a usage limit (a handover drops it): B's copy a prefix of A's is brought
//! up to date, A's a prefix of B's is already current, anything else diverged and is refused.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use super::files::{self, ThreadError, ThreadFiles};
use super::lines::{self, Rollout};

/// How a carry treats the copy.
#[derive(Debug, Clone, Default)]
pub struct CarryOptions {
    /// A failed turn (by turn id) left out of the copy, from the line that starts it to the end:
    /// its input is replayed on B.
    pub drop_turn: Option<String>,
}

/// What a carry did to B's main rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// B had no copy.
    Copied,
    /// B's copy was an older prefix of A's and was brought up to date.
    Updated,
    /// B's copy already held everything A's does.
    AlreadyCurrent,
}

#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error(transparent)]
    Thread(#[from] ThreadError),
    #[error("thread {id} is not in {}", .home.display())]
    NotFound { id: String, home: PathBuf },
    #[error("thread {id} has no turn {turn} in {}", .path.display())]
    TurnNotFound {
        id: String,
        turn: String,
        path: PathBuf,
    },
    #[error(
        "the copies of this thread diverged, neither holds all of the other: {} and {}",
        .ours.display(),
        .theirs.display()
    )]
    Diverged { ours: PathBuf, theirs: PathBuf },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Name prefix of the temporary files a carry writes; never a `rollout-` name.
const TMP_PREFIX: &str = ".codex-as-carry-";
const TMP_SUFFIX: &str = ".tmp";
/// The lock file serialising carries into one home (in the home, beside `sessions/`).
pub const LOCK_FILE: &str = ".codex-as-threads.lock";

/// Carries thread `id` from home `from` to home `to`.
pub fn carry(id: &str, from: &Path, to: &Path, opts: &CarryOptions) -> Result<Carried, CarryError> {
    let src = files::find(from, id)?.ok_or_else(|| CarryError::NotFound {
        id: id.to_string(),
        home: from.to_path_buf(),
    })?;
    if same_dir(from, to) {
        return Ok(Carried::AlreadyCurrent);
    }
    let _lock = lock_home(to)?;
    sweep(to)?;

    let mut jobs = Vec::new();
    let mut seen = HashSet::from([src.id.clone()]);
    parent_jobs(from, to, &src, &mut seen, &mut jobs)?;
    let theirs = files::find(to, &src.id)?;
    jobs.extend(segment_jobs(from, to, &src, theirs.as_ref()));
    let main_job = Job {
        dest: dest_for(
            from,
            to,
            &src.rollout,
            theirs.as_ref().map(|t| t.rollout.as_path()),
        ),
        existing: theirs.map(|t| t.rollout),
        source: src.rollout.clone(),
        drop_turn: opts.drop_turn.clone(),
        id: src.id.clone(),
    };
    for job in &jobs {
        settle(job, to)?;
    }
    settle(&main_job, to)
}

/// Of `homes`, the one holding the newest copy of thread `id` (the copy every other one is a
/// prefix of, compared like a carry does); the first such home on a tie; None when no home
/// holds it. Copies that diverged are an error naming both.
pub fn newest_home<'a>(id: &str, homes: &[&'a Path]) -> Result<Option<&'a Path>, CarryError> {
    let mut best: Option<(&'a Path, PathBuf, Vec<Vec<u8>>)> = None;
    for &home in homes {
        let Some(f) = files::find(home, id)? else {
            continue;
        };
        let copy = compared_lines(&Rollout::read(&f.rollout)?);
        match &best {
            None => best = Some((home, f.rollout, copy)),
            Some((_, path, lines)) => {
                let n = copy.len().min(lines.len());
                if copy[..n] != lines[..n] {
                    return Err(CarryError::Diverged {
                        ours: path.clone(),
                        theirs: f.rollout,
                    });
                }
                if copy.len() > lines.len() {
                    best = Some((home, f.rollout, copy));
                }
            }
        }
    }
    Ok(best.map(|(home, _, _)| home))
}

/// Removes the temporary files carries into `home` left when they were killed. Only safe
/// under the home's lock (no carry is running then); returns how many were removed.
pub fn sweep(home: &Path) -> Result<usize, CarryError> {
    let mut stale = Vec::new();
    files::walk(&files::sessions_dir(home), &mut |path, name| {
        if name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX) {
            stale.push(path.to_path_buf());
        }
    })?;
    for path in &stale {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CarryError::Write {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Ok(stale.len())
}

/// Takes the lock serialising carries into `home` (blocking until the carry holding it ends).
pub fn lock_home(home: &Path) -> Result<Flock<File>, CarryError> {
    let path = home.join(LOCK_FILE);
    let lock_err = |source| CarryError::Lock {
        path: path.clone(),
        source,
    };
    crate::sys::fsutil::create_private_dir(home).map_err(lock_err)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(lock_err)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| lock_err(errno.into()))
}

/// One file to bring into B.
struct Job {
    id: String,
    source: PathBuf,
    /// Where the copy goes (always a plain `.jsonl`).
    dest: PathBuf,
    /// B's copy now, if any (maybe a `.jsonl.zst`).
    existing: Option<PathBuf>,
    drop_turn: Option<String>,
}

/// Jobs for the parents `f` names, recursively, deepest first; a parent A does not hold is
/// left to B (Codex in A could not use it either).
fn parent_jobs(
    from: &Path,
    to: &Path,
    f: &ThreadFiles,
    seen: &mut HashSet<String>,
    jobs: &mut Vec<Job>,
) -> Result<(), CarryError> {
    for parent in &f.parents {
        if !seen.insert(parent.clone()) {
            continue;
        }
        let Some(pf) = files::find(from, parent)? else {
            continue;
        };
        parent_jobs(from, to, &pf, seen, jobs)?;
        let theirs = files::find(to, parent)?;
        jobs.extend(segment_jobs(from, to, &pf, theirs.as_ref()));
        jobs.push(Job {
            id: pf.id.clone(),
            dest: dest_for(
                from,
                to,
                &pf.rollout,
                theirs.as_ref().map(|t| t.rollout.as_path()),
            ),
            existing: theirs.map(|t| t.rollout),
            source: pf.rollout.clone(),
            drop_turn: None,
        });
    }
    Ok(())
}

fn segment_jobs(from: &Path, to: &Path, f: &ThreadFiles, theirs: Option<&ThreadFiles>) -> Vec<Job> {
    f.segments
        .iter()
        .map(|seg| {
            let existing = theirs.and_then(|t| {
                t.segments
                    .iter()
                    .find(|s| plain_file_name(s) == plain_file_name(seg))
                    .cloned()
            });
            Job {
                id: f.id.clone(),
                dest: dest_for(from, to, seg, existing.as_deref()),
                existing,
                source: seg.clone(),
                drop_turn: None,
            }
        })
        .collect()
}

fn plain_file_name(p: &Path) -> Option<&str> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(files::plain_name)
}

/// Where B's copy of `source` goes: beside B's existing copy, else at the path `source` has
/// under A's `sessions/`; always the plain `.jsonl` name.
fn dest_for(from: &Path, to: &Path, source: &Path, existing: Option<&Path>) -> PathBuf {
    let name = plain_file_name(source).unwrap_or_default();
    if let Some(dir) = existing.and_then(Path::parent) {
        return dir.join(name);
    }
    let rel_dir = source
        .parent()
        .and_then(|d| d.strip_prefix(files::sessions_dir(from)).ok())
        .unwrap_or(Path::new(""));
    files::sessions_dir(to).join(rel_dir).join(name)
}

/// Lines of a copy as compared between homes: encrypted reasoning and a trailing
/// usage-limit-failed turn left out, `history_base` offsets blanked.
fn compared_lines(r: &Rollout) -> Vec<Vec<u8>> {
    let k = lines::kept(r);
    let end = k.failed_tail.unwrap_or(k.lines.len());
    k.lines[..end]
        .iter()
        .map(|i| lines::comparable(r.line(*i)).into_owned())
        .collect()
}

/// Brings one file of the thread into B (whose parents are already there); returns what
/// happened to it.
fn settle(job: &Job, to: &Path) -> Result<Carried, CarryError> {
    let src = Rollout::read(&job.source)?;
    let k = lines::kept(&src);
    let mut out = k.lines.clone();
    let mut compared = k.failed_tail.unwrap_or(out.len());
    if let Some(turn) = &job.drop_turn {
        let at = turn_position(&src, &k, turn).ok_or_else(|| CarryError::TurnNotFound {
            id: job.id.clone(),
            turn: turn.clone(),
            path: job.source.clone(),
        })?;
        out.truncate(at);
        compared = compared.min(at);
    }
    let first = rebased_meta(&src, to)?;
    let line = |i: usize| match (&first, i) {
        (Some(f), 0) => f.as_slice(),
        _ => src.line(i),
    };
    let Some(existing) = &job.existing else {
        write_atomic(&job.dest, &[], out.iter().map(|i| line(*i)))?;
        return Ok(Carried::Copied);
    };
    let dst = Rollout::read(existing)?;
    let dk = lines::kept(&dst);
    let theirs = &dk.lines[..dk.failed_tail.unwrap_or(dk.lines.len())];
    let ours = &out[..compared];
    let n = ours.len().min(theirs.len());
    let same = ours[..n]
        .iter()
        .zip(&theirs[..n])
        .all(|(o, t)| lines::comparable(line(*o)) == lines::comparable(dst.line(*t)));
    if !same {
        return Err(CarryError::Diverged {
            ours: existing.clone(),
            theirs: job.source.clone(),
        });
    }
    if ours.len() <= theirs.len() {
        return Ok(Carried::AlreadyCurrent);
    }
    // B's copy keeps its own bytes (its own reasoning, the offsets B's app-server indexed) up to
    // the last line both hold; A's newer lines follow, as if B had appended them.
    let keep = theirs
        .last()
        .and_then(|t| dst.lines.get(*t))
        .map_or(0, |r| r.end);
    write_atomic(
        &job.dest,
        &dst.bytes[..keep],
        out[n..].iter().map(|i| line(*i)),
    )?;
    if *existing != job.dest {
        // B's compressed copy, superseded by the plain one just written.
        let _ = fs::remove_file(existing);
    }
    Ok(Carried::Updated)
}

/// The source's `session_meta` line with its `history_base.end_byte_offset` placed in B's copy
/// of the parent: the parent there may lack lines (encrypted reasoning) or keep B's own, so
/// the cutoff is found again by ordinal, as Codex itself does. None when nothing changes.
fn rebased_meta(src: &Rollout, to: &Path) -> Result<Option<Vec<u8>>, CarryError> {
    let first = src.line(0);
    let Some(meta) = lines::session_meta(first) else {
        return Ok(None);
    };
    let Some(base) = meta.get("history_base") else {
        return Ok(None);
    };
    let (Some(parent), Some(end)) = (
        base.get("thread_id").and_then(|v| v.as_str()),
        base.get("end_ordinal_exclusive").and_then(|v| v.as_u64()),
    ) else {
        return Ok(None);
    };
    if !files::is_thread_id(parent) {
        return Ok(None);
    }
    let Some(pf) = files::find(to, parent)? else {
        return Ok(None);
    };
    // Codex ignores the byte offset into a compressed parent.
    if lines::is_zst(&pf.rollout) {
        return Ok(None);
    }
    let offset = lines::offset_for_ordinal(&Rollout::read(&pf.rollout)?, end);
    Ok(lines::with_base_offset(first, offset).filter(|l| l.as_slice() != first))
}

/// Position among the kept lines where turn `turn` starts: its `task_started` line, else (a
/// Codex whose start line names no turn) the first line mentioning the turn id.
fn turn_position(src: &Rollout, k: &lines::Kept, turn: &str) -> Option<usize> {
    if turn.is_empty() {
        return None;
    }
    if let Some((at, _)) = k.starts.iter().find(|(_, id)| id == turn) {
        return Some(*at);
    }
    let first = k
        .lines
        .iter()
        .position(|i| lines::contains(src.line(*i), turn.as_bytes()))?;
    // Back to the start line of the turn that mention belongs to, if it has one.
    Some(
        k.starts
            .iter()
            .rev()
            .find(|(at, id)| *at <= first && id.is_empty())
            .map_or(first, |(at, _)| *at),
    )
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `prefix` then `lines` to `dest` atomically, mode 0600, creating missing folders
/// 0700.
fn write_atomic<'a>(
    dest: &Path,
    prefix: &[u8],
    lines: impl Iterator<Item = &'a [u8]>,
) -> Result<(), CarryError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CarryError::Write { path, source }
    };
    let dir = dest.parent().unwrap_or(Path::new("."));
    crate::sys::fsutil::create_private_dir(dir).map_err(write_err(dir))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{nanos}-{}{TMP_SUFFIX}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(prefix)?;
        for line in lines {
            w.write_all(line)?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, dest)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err(dest))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    pub const ID: &str = "01a2237f-d7da-7aa2-94b0-b297369516ed";
    const DAY: &str = "2026/11/28";

    fn rel(id: &str) -> String {
        format!("{DAY}/rollout-2026-11-28T18-51-50-{id}.jsonl")
    }

    fn line(ty: &str, payload: serde_json::Value) -> String {
        json!({"timestamp": "2026-11-28T18:51:50.633Z", "type": ty, "payload": payload}).to_string()
            + "\n"
    }

    fn meta(id: &str, extra: serde_json::Value) -> String {
        let mut p = json!({"id": id, "cwd": "/tmp/w", "cli_version": "0.171.0"});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        line("session_meta", p)
    }

    /// A turn: start, user message, encrypted reasoning, answer, and its end (failed on a usage
    /// limit when `failed`).
    fn turn(turn: &str, text: &str, failed: bool) -> String {
        let mut s = line(
            "event_msg",
            json!({"type": "task_started", "turn_id": turn}),
        );
        s += &line(
            "response_item",
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
        );
        if failed {
            s += &line(
                "event_msg",
                json!({"type": "task_complete", "turn_id": turn, "error": {"message": "limit", "codex_error_info": "usage_limit_exceeded"}}),
            );
            return s;
        }
        s += &line(
            "response_item",
            json!({"type": "reasoning", "summary": [], "content": null, "encrypted_content": format!("gAAA-{turn}")}),
        );
        s += &line(
            "response_item",
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": format!("re: {text}")}]}),
        );
        s + &line(
            "event_msg",
            json!({"type": "task_complete", "turn_id": turn}),
        )
    }

    fn put(home: &Path, rel: &str, text: &str) -> PathBuf {
        let p = home.join("sessions").join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn read(home: &Path, rel: &str) -> String {
        fs::read_to_string(home.join("sessions").join(rel)).unwrap()
    }

    /// Every file under `dir` with its bytes, mode and modification time.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, std::time::SystemTime)> {
        let mut out = BTreeMap::new();
        files::walk(dir, &mut |p, _| {
            let m = fs::metadata(p).unwrap();
            out.insert(
                p.to_path_buf(),
                (
                    fs::read(p).unwrap(),
                    m.permissions().mode(),
                    m.modified().unwrap(),
                ),
            );
        })
        .unwrap();
        out
    }

    fn no_drop() -> CarryOptions {
        CarryOptions::default()
    }

    fn homes() -> (tempfile::TempDir, tempfile::TempDir) {
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
    }

    #[test]
    fn every_file_is_copied_at_its_path_and_a_is_left_untouched() {
        let (a, b) = homes();
        let parent = "11111111-2222-3333-4444-555555555555";
        let grand = "22222222-2222-3333-4444-555555555555";
        put(
            a.path(),
            &rel(grand),
            &(meta(grand, json!({})) + &turn("g1", "grand", false)),
        );
        put(
            a.path(),
            &format!("2026/11/20/rollout-2026-11-20T10-00-00-{parent}.jsonl"),
            &(meta(parent, json!({"forked_from_id": grand})) + &turn("p1", "parent", false)),
        );
        let main = meta(
            ID,
            json!({"history_base": {"thread_id": parent, "end_ordinal_exclusive": 3}}),
        ) + &turn("t1", "one", false);
        put(a.path(), &rel(ID), &main);
        let seg = format!("{DAY}/rollout-2026-11-28T18-51-50-{ID}_1.jsonl");
        put(
            a.path(),
            &seg,
            &(meta(ID, json!({})) + &turn("s1", "seg", false)),
        );
        let before = snapshot(a.path());

        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::Copied
        );

        assert_eq!(snapshot(a.path()), before, "A's files changed");
        for r in [
            rel(ID),
            seg,
            rel(grand),
            format!("2026/11/20/rollout-2026-11-20T10-00-00-{parent}.jsonl"),
        ] {
            let p = b.path().join("sessions").join(&r);
            let mode = fs::metadata(&p)
                .unwrap_or_else(|_| panic!("{r} missing in B"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{r}");
        }
        for d in [
            "sessions/2026",
            "sessions/2026/11",
            "sessions/2026/11/28",
            "sessions/2026/11/20",
        ] {
            let mode = fs::metadata(b.path().join(d)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        let f = files::find(b.path(), ID).unwrap().unwrap();
        assert_eq!(f.parents, vec![parent.to_string()]);
    }

    #[test]
    fn encrypted_reasoning_is_left_out_and_everything_else_kept_in_order() {
        let (a, b) = homes();
        let plain_reasoning = line(
            "response_item",
            json!({"type": "reasoning", "summary": [], "encrypted_content": null}),
        );
        let text = meta(ID, json!({}))
            + &turn("t1", "one", false)
            + &plain_reasoning
            + &turn("t2", "two", false);
        put(a.path(), &rel(ID), &text);
        carry(ID, a.path(), b.path(), &no_drop()).unwrap();
        let copy = read(b.path(), &rel(ID));
        let expected: String = text
            .split_inclusive('\n')
            .filter(|l| !l.contains("gAAA-"))
            .collect();
        assert!(!copy.contains("encrypted_content\":\"gAAA"));
        assert_eq!(copy, expected);
        assert!(copy.contains(&plain_reasoning));
    }

    #[test]
    fn drop_turn_leaves_out_the_failed_turn_from_its_start_line() {
        let (a, b) = homes();
        let head = meta(ID, json!({})) + &turn("t1", "one", false);
        put(
            a.path(),
            &rel(ID),
            &(head.clone() + &turn("t2", "two", true)),
        );
        let opts = CarryOptions {
            drop_turn: Some("t2".into()),
        };
        assert_eq!(
            carry(ID, a.path(), b.path(), &opts).unwrap(),
            Carried::Copied
        );
        let copy = read(b.path(), &rel(ID));
        let expected: String = head
            .split_inclusive('\n')
            .filter(|l| !l.contains("gAAA-"))
            .collect();
        assert_eq!(copy, expected);
        assert!(!copy.contains("two"));

        let missing = CarryOptions {
            drop_turn: Some("t9".into()),
        };
        let b2 = tempfile::tempdir().unwrap();
        assert!(matches!(
            carry(ID, a.path(), b2.path(), &missing),
            Err(CarryError::TurnNotFound { .. })
        ));
        assert!(files::find(b2.path(), ID).unwrap().is_none());
    }

    #[test]
    fn an_older_prefix_in_b_is_updated_and_a_newer_one_left_alone() {
        let (a, b) = homes();
        let one = meta(ID, json!({})) + &turn("t1", "one", false);
        let path_a = put(a.path(), &rel(ID), &one);
        carry(ID, a.path(), b.path(), &no_drop()).unwrap();
        let two = one.clone() + &turn("t2", "two", false);
        fs::write(&path_a, &two).unwrap();
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::Updated
        );
        assert!(read(b.path(), &rel(ID)).contains("re: two"));
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::AlreadyCurrent
        );

        // B goes on with the thread; A's copy is now its prefix.
        let path_b = b.path().join("sessions").join(rel(ID));
        let newer = read(b.path(), &rel(ID)) + &turn("t3", "three", false);
        fs::write(&path_b, &newer).unwrap();
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::AlreadyCurrent
        );
        assert_eq!(read(b.path(), &rel(ID)), newer);
        // And back: A is brought up to date from B.
        assert_eq!(
            carry(ID, b.path(), a.path(), &no_drop()).unwrap(),
            Carried::Updated
        );
        assert!(read(a.path(), &rel(ID)).contains("three"));
    }

    #[test]
    fn diverged_copies_are_refused_naming_both_paths() {
        let (a, b) = homes();
        let one = meta(ID, json!({})) + &turn("t1", "one", false);
        let path_a = put(
            a.path(),
            &rel(ID),
            &(one.clone() + &turn("t2", "two in A", false)),
        );
        let theirs = one + &turn("t2b", "two in B", false);
        let path_b = put(b.path(), &rel(ID), &theirs);
        match carry(ID, a.path(), b.path(), &no_drop()) {
            Err(CarryError::Diverged { ours, theirs }) => {
                assert_eq!(ours, path_b);
                assert_eq!(theirs, path_a);
            }
            other => panic!("{other:?}"),
        }
        let msg = carry(ID, a.path(), b.path(), &no_drop())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&path_a.display().to_string())
                && msg.contains(&path_b.display().to_string()),
            "{msg}"
        );
        assert_eq!(read(b.path(), &rel(ID)), theirs);
    }

    #[test]
    fn a_trailing_usage_limit_turn_is_ignored_when_comparing() {
        let (a, b) = homes();
        let one = meta(ID, json!({})) + &turn("t1", "one", false);
        put(
            a.path(),
            &rel(ID),
            &(one.clone() + &turn("t2", "two", true)),
        );
        let opts = CarryOptions {
            drop_turn: Some("t2".into()),
        };
        carry(ID, a.path(), b.path(), &opts).unwrap();
        // B replays the input as a new turn.
        let path_b = b.path().join("sessions").join(rel(ID));
        let replayed = read(b.path(), &rel(ID)) + &turn("t3", "two", false);
        fs::write(&path_b, &replayed).unwrap();
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::AlreadyCurrent
        );
        assert_eq!(
            carry(ID, a.path(), b.path(), &opts).unwrap(),
            Carried::AlreadyCurrent
        );
        assert_eq!(read(b.path(), &rel(ID)), replayed);
        // Back to A: A keeps its own lines (its reasoning included) up to the failed turn, which
        // gives way to B's replayed one (without B's reasoning).
        assert_eq!(
            carry(ID, b.path(), a.path(), &no_drop()).unwrap(),
            Carried::Updated
        );
        let t3: String = turn("t3", "two", false)
            .split_inclusive('\n')
            .filter(|l| !l.contains("gAAA-"))
            .collect();
        assert_eq!(read(a.path(), &rel(ID)), one + &t3);
    }

    #[test]
    fn an_update_appends_to_b_s_own_bytes() {
        let (a, b) = homes();
        let one = meta(ID, json!({})) + &turn("t1", "one", false);
        // B's copy holds its own encrypted reasoning (B produced those turns).
        put(b.path(), &rel(ID), &one);
        let stripped: String = one
            .split_inclusive('\n')
            .filter(|l| !l.contains("gAAA-"))
            .collect();
        put(a.path(), &rel(ID), &(stripped + &turn("t2", "two", false)));
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::Updated
        );
        let copy = read(b.path(), &rel(ID));
        assert!(copy.starts_with(&one), "B's own bytes were not kept");
        assert!(copy.contains("re: two") && !copy.contains("gAAA-t2"));
    }

    #[test]
    fn a_history_base_offset_is_placed_in_b_s_copy_of_the_parent() {
        let (a, b) = homes();
        let parent = "11111111-2222-3333-4444-555555555555";
        let mut p = meta(parent, json!({"history_mode": "paginated"}));
        for (o, l) in turn("p1", "parent", false)
            .split_inclusive('\n')
            .enumerate()
        {
            // Paginated records carry an ordinal before their payload.
            p += &l.replacen(r#""type""#, &format!(r#""ordinal":{},"type""#, o + 1), 1);
        }
        let parent_a = put(a.path(), &rel(parent), &p);
        let r = Rollout::read(&parent_a).unwrap();
        // The child inherits the parent's first turn: ordinals 1..=5 (the reasoning is 3).
        let end_a = lines::offset_for_ordinal(&r, 6);
        assert_eq!(end_a, r.bytes.len() as u64);
        let child = meta(
            ID,
            json!({"history_mode": "paginated", "history_base": {"thread_id": parent, "end_ordinal_exclusive": 6, "end_byte_offset": end_a}}),
        ) + &turn("c1", "child", false);
        put(a.path(), &rel(ID), &child);
        carry(ID, a.path(), b.path(), &no_drop()).unwrap();
        let parent_b = fs::read(b.path().join("sessions").join(rel(parent))).unwrap();
        assert!(
            parent_b.len() < p.len(),
            "the parent's reasoning was not left out"
        );
        let copy = read(b.path(), &rel(ID));
        let meta_b = lines::session_meta(copy.lines().next().unwrap().as_bytes()).unwrap();
        assert_eq!(
            meta_b["history_base"]["end_byte_offset"],
            json!(parent_b.len())
        );
        assert_eq!(meta_b["history_base"]["end_ordinal_exclusive"], json!(6));
        // Carrying again finds B current, and newest_home sees no divergence.
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::AlreadyCurrent
        );
        assert_eq!(
            newest_home(ID, &[a.path(), b.path()]).unwrap(),
            Some(a.path())
        );
    }

    fn fixture_zst() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/codex-rollouts/rollout-0.171.jsonl.zst")
    }

    #[test]
    fn a_compressed_source_is_written_plain() {
        let (a, b) = homes();
        let dst = a.path().join("sessions").join(format!("{}.zst", rel(ID)));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(fixture_zst(), &dst).unwrap();
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::Copied
        );
        let plain = lines::read_bytes(&fixture_zst()).unwrap();
        assert_eq!(read(b.path(), &rel(ID)).as_bytes(), &plain[..]);
        assert!(
            !b.path()
                .join("sessions")
                .join(format!("{}.zst", rel(ID)))
                .exists()
        );
    }

    #[test]
    fn a_compressed_copy_in_b_is_read_and_replaced_by_a_plain_one() {
        let (a, b) = homes();
        let zst_b = b.path().join("sessions").join(format!("{}.zst", rel(ID)));
        fs::create_dir_all(zst_b.parent().unwrap()).unwrap();
        fs::copy(fixture_zst(), &zst_b).unwrap();
        let plain = String::from_utf8(lines::read_bytes(&fixture_zst()).unwrap()).unwrap();
        // Same content in A: B is current and its compressed file stays as it is.
        let path_a = put(a.path(), &rel(ID), &plain);
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::AlreadyCurrent
        );
        assert!(zst_b.exists() && !b.path().join("sessions").join(rel(ID)).exists());
        // A went on: B's compressed copy is an older prefix.
        let longer = plain.clone() + &turn("t2", "two", false);
        fs::write(&path_a, &longer).unwrap();
        assert_eq!(
            carry(ID, a.path(), b.path(), &no_drop()).unwrap(),
            Carried::Updated
        );
        assert!(!zst_b.exists(), "B's superseded .zst is still there");
        let copy = read(b.path(), &rel(ID));
        assert!(copy.starts_with(&plain) && copy.contains("re: two"));
    }

    #[test]
    fn stale_temp_files_are_swept_and_never_taken_for_a_rollout() {
        let (a, b) = homes();
        put(
            a.path(),
            &rel(ID),
            &(meta(ID, json!({})) + &turn("t1", "one", false)),
        );
        let stale = put(
            b.path(),
            &format!("{DAY}/{TMP_PREFIX}123-4-5{TMP_SUFFIX}"),
            "{\"partial\"",
        );
        let other = put(b.path(), &format!("{DAY}/notes.tmp"), "");
        assert!(files::parse_name(&format!("{TMP_PREFIX}123-4-5{TMP_SUFFIX}")).is_none());
        carry(ID, a.path(), b.path(), &no_drop()).unwrap();
        assert!(!stale.exists(), "stale temp file left");
        assert!(other.exists(), "a file that is not ours was removed");
        let mut left = Vec::new();
        files::walk(&b.path().join("sessions"), &mut |_, n| {
            left.push(n.to_string())
        })
        .unwrap();
        assert!(left.iter().all(|n| !n.starts_with(TMP_PREFIX)), "{left:?}");
    }

    #[test]
    fn carries_into_one_home_wait_for_its_lock() {
        let (a, b) = homes();
        put(
            a.path(),
            &rel(ID),
            &(meta(ID, json!({})) + &turn("t1", "one", false)),
        );
        let held = lock_home(b.path()).unwrap();
        let (from, to) = (a.path().to_path_buf(), b.path().to_path_buf());
        let worker = std::thread::spawn(move || carry(ID, &from, &to, &CarryOptions::default()));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!worker.is_finished(), "the carry did not wait for the lock");
        assert!(files::find(b.path(), ID).unwrap().is_none());
        drop(held);
        assert_eq!(worker.join().unwrap().unwrap(), Carried::Copied);
        let mode = fs::metadata(b.path().join(LOCK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_path_like_id_is_an_error_not_a_path() {
        let (a, b) = homes();
        for bad in [
            "../x",
            "/etc/passwd",
            "01a2237f-d7da-7aa2-94b0-b297369516ed/..",
        ] {
            assert!(matches!(
                carry(bad, a.path(), b.path(), &no_drop()),
                Err(CarryError::Thread(ThreadError::InvalidId(_)))
            ));
        }
        assert!(matches!(
            carry(ID, a.path(), b.path(), &no_drop()),
            Err(CarryError::NotFound { .. })
        ));
        assert!(!b.path().join("sessions").exists());
    }

    #[test]
    fn newest_home_is_the_one_every_other_copy_is_a_prefix_of() {
        let (a, b) = homes();
        let c = tempfile::tempdir().unwrap();
        let one = meta(ID, json!({})) + &turn("t1", "one", false);
        put(a.path(), &rel(ID), &one);
        put(
            b.path(),
            &rel(ID),
            &(one.clone() + &turn("t2", "two", false)),
        );
        let homes = [a.path(), b.path(), c.path()];
        assert_eq!(newest_home(ID, &homes).unwrap(), Some(b.path()));
        assert_eq!(
            newest_home(ID, &[a.path(), c.path()]).unwrap(),
            Some(a.path())
        );
        assert_eq!(newest_home(ID, &[c.path()]).unwrap(), None);
        put(c.path(), &rel(ID), &(one + &turn("t2x", "other", false)));
        assert!(matches!(
            newest_home(ID, &homes),
            Err(CarryError::Diverged { .. })
        ));
    }

    /// A thread of `items` response items in turns of ten.
    pub fn big_thread(items: usize) -> String {
        let mut s = meta(ID, json!({}));
        for t in 0..items.div_ceil(10) {
            s += &line(
                "event_msg",
                json!({"type": "task_started", "turn_id": format!("turn-{t}")}),
            );
            for i in 0..10 {
                s += &line(
                    "response_item",
                    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": format!("item {t}.{i} {}", "x".repeat(200))}]}),
                );
            }
            s += &line(
                "event_msg",
                json!({"type": "task_complete", "turn_id": format!("turn-{t}")}),
            );
        }
        s
    }

    #[test]
    fn a_ten_thousand_item_thread_carries_quickly() {
        let (a, b) = homes();
        put(a.path(), &rel(ID), &big_thread(10_000));
        let start = std::time::Instant::now();
        carry(ID, a.path(), b.path(), &no_drop()).unwrap();
        let took = start.elapsed();
        assert_eq!(read(b.path(), &rel(ID)), read(a.path(), &rel(ID)));
        // Unoptimised test builds are several times slower than a release build.
        let limit = if cfg!(debug_assertions) { 5_000 } else { 1_000 };
        assert!(took.as_millis() < limit, "{took:?}");
    }
}
