//! A thread's files in one home: `sessions/**/rollout-<timestamp>-<id>.jsonl` (or `.jsonl.zst`),
//! its segments `rollout-<timestamp>-<id>_<segment>.jsonl` (written by `thread/revert`), and the
//! threads its `session_meta` names as parents (`history_base.thread_id`, `forked_from_id`).
//! Codex finds a rollout by its file name anywhere under `sessions/`, so this does too.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::lines;

#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    #[error("not a thread id: {0:?}")]
    InvalidId(String),
    #[error("cannot read {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot decompress {}: {message}", .path.display())]
    Zstd { path: PathBuf, message: String },
}

/// A thread's files in one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadFiles {
    pub id: String,
    /// The main rollout (a `.jsonl` when the home holds both it and a `.jsonl.zst`).
    pub rollout: PathBuf,
    /// `_<segment>` files, sorted by name.
    pub segments: Vec<PathBuf>,
    /// Thread ids the main rollout names as parents (valid ids only, itself left out).
    pub parents: Vec<String>,
}

/// A Codex thread id: a UUID (`8-4-4-4-12` hex digits). Anything else, a path above all, is
/// refused before it reaches a file name.
pub fn is_thread_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn sessions_dir(home: &Path) -> PathBuf {
    home.join("sessions")
}

/// What a file name in `sessions/` is: (thread id, segment) for `rollout-<ts>-<id>.jsonl`,
/// `rollout-<ts>-<id>_<segment>.jsonl` and their `.zst` forms; None for anything else.
pub fn parse_name(name: &str) -> Option<(String, Option<String>)> {
    let core = name.strip_prefix("rollout-")?;
    let core = core
        .strip_suffix(".jsonl.zst")
        .or_else(|| core.strip_suffix(".jsonl"))?;
    let (head, segment) = match core.split_once('_') {
        Some((h, s)) => (h, Some(s)),
        None => (core, None),
    };
    if let Some(s) = segment
        && (s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return None;
    }
    let split = head.len().checked_sub(37)?;
    let (ts, id) = head.split_at(split);
    let id = id.strip_prefix('-')?;
    (!ts.is_empty() && is_thread_id(id)).then(|| (id.to_string(), segment.map(str::to_string)))
}

/// The name a rollout has uncompressed (`x.jsonl.zst` -> `x.jsonl`).
pub fn plain_name(name: &str) -> &str {
    name.strip_suffix(".zst").unwrap_or(name)
}

/// Calls `f` with every regular file under `dir` (symlinks neither followed nor reported); a
/// missing `dir` has none.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &str)) -> Result<(), ThreadError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ThreadError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, f)?;
        } else if kind.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            f(&path, name);
        }
    }
    Ok(())
}

/// The files of thread `id` in `home`, or None when it holds no main rollout for it.
pub fn find(home: &Path, id: &str) -> Result<Option<ThreadFiles>, ThreadError> {
    if !is_thread_id(id) {
        return Err(ThreadError::InvalidId(id.to_string()));
    }
    let id = id.to_ascii_lowercase();
    let mut mains = Vec::new();
    let mut segments = Vec::new();
    walk(&sessions_dir(home), &mut |path, name| {
        if let Some((found, segment)) = parse_name(name)
            && found.eq_ignore_ascii_case(&id)
        {
            match segment {
                None => mains.push(path.to_path_buf()),
                Some(_) => segments.push(path.to_path_buf()),
            }
        }
    })?;
    Ok(assemble(id, mains, segments))
}

/// Chooses the main rollout among candidates and reads the parents it names.
pub fn assemble(
    id: String,
    mut mains: Vec<PathBuf>,
    mut segments: Vec<PathBuf>,
) -> Option<ThreadFiles> {
    // A plain file wins over a compressed one (Codex appends to the plain one), then the newest
    // day folder.
    mains.sort_by_key(|p| (!lines::is_zst(p), p.clone()));
    let rollout = mains.pop()?;
    segments.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    segments.dedup_by(|a, b| {
        a.file_name().and_then(|n| n.to_str()).map(plain_name)
            == b.file_name().and_then(|n| n.to_str()).map(plain_name)
            && lines::is_zst(a)
    });
    let parents = first_line(&rollout)
        .ok()
        .and_then(|l| lines::session_meta(&l))
        .map(|m| lines::parent_ids(&m))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| is_thread_id(p) && !p.eq_ignore_ascii_case(&id))
        .map(|p| p.to_ascii_lowercase())
        .collect();
    Some(ThreadFiles {
        id,
        rollout,
        segments,
        parents,
    })
}

/// A rollout's first line (its `session_meta`), without reading the rest.
pub fn first_line(path: &Path) -> Result<Vec<u8>, ThreadError> {
    let io_err = |source| ThreadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    // session_meta carries the base instructions: tens of KB, never megabytes.
    const LIMIT: u64 = 4 << 20;
    let mut out = Vec::new();
    if lines::is_zst(path) {
        let decoder =
            ruzstd::decoding::StreamingDecoder::new(file).map_err(|e| ThreadError::Zstd {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        BufReader::new(decoder.take(LIMIT))
            .read_until(b'\n', &mut out)
            .map_err(io_err)?;
    } else {
        BufReader::new(file.take(LIMIT))
            .read_until(b'\n', &mut out)
            .map_err(io_err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a2237f-d7da-7aa2-94b0-b297369516ed";

    fn put(home: &Path, rel: &str, text: &str) -> PathBuf {
        let p = home.join("sessions").join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn meta(id: &str, extra: &str) -> String {
        format!(
            "{{\"timestamp\":\"t\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"{id}\"{extra}}}}}\n"
        )
    }

    #[test]
    fn thread_ids_are_uuids_and_nothing_path_like() {
        assert!(is_thread_id(ID));
        assert!(is_thread_id(&ID.to_uppercase()));
        for bad in [
            "",
            "../../etc/passwd",
            "01a2237f-d7da-7aa2-94b0-b297369516e/",
            "01a2237f-d7da-7aa2-94b0-b297369516edd",
            "01a2237f/d7da-7aa2-94b0-b297369516ed",
            "01a2237f-d7da-7aa2-94b0-b29736951.ed",
            "01a2237fd7da7aa294b0b297369516ed",
        ] {
            assert!(!is_thread_id(bad), "{bad}");
        }
        let home = tempfile::tempdir().unwrap();
        assert!(matches!(
            find(home.path(), "../sessions"),
            Err(ThreadError::InvalidId(_))
        ));
    }

    #[test]
    fn names_are_parsed_main_segment_and_compressed() {
        let n = format!("rollout-2026-11-28T18-51-50-{ID}.jsonl");
        assert_eq!(parse_name(&n), Some((ID.to_string(), None)));
        assert_eq!(
            parse_name(&format!("{n}.zst")),
            Some((ID.to_string(), None))
        );
        let s = format!("rollout-2026-11-28T18-51-50-{ID}_2.jsonl");
        assert_eq!(parse_name(&s), Some((ID.to_string(), Some("2".into()))));
        assert_eq!(
            parse_name(&format!("rollout-2026-11-28T18-51-50-{ID}_a/b.jsonl")),
            None
        );
        assert_eq!(parse_name(&format!("rollout-{ID}.jsonl")), None);
        assert_eq!(parse_name(&format!(".codex-as-carry-{n}.tmp")), None);
        assert_eq!(parse_name(&format!("{n}.tmp")), None);
    }

    #[test]
    fn find_gathers_main_segments_and_parents_in_any_folder() {
        let home = tempfile::tempdir().unwrap();
        let parent = "11111111-2222-3333-4444-555555555555";
        let fork = "66666666-2222-3333-4444-555555555555";
        let main = put(
            home.path(),
            &format!("2026/11/28/rollout-2026-11-28T18-51-50-{ID}.jsonl"),
            &meta(
                ID,
                &format!(
                    ",\"history_base\":{{\"thread_id\":\"{parent}\",\"end_ordinal_exclusive\":3}},\"forked_from_id\":\"{fork}\""
                ),
            ),
        );
        let seg = put(
            home.path(),
            &format!("2026/11/29/rollout-2026-11-28T18-51-50-{ID}_1.jsonl"),
            "",
        );
        put(
            home.path(),
            &format!("2026/11/28/rollout-2026-11-28T18-51-50-{parent}.jsonl"),
            "",
        );
        let f = find(home.path(), ID).unwrap().unwrap();
        assert_eq!(f.rollout, main);
        assert_eq!(f.segments, vec![seg]);
        assert_eq!(f.parents, vec![parent.to_string(), fork.to_string()]);
        assert!(
            find(home.path(), "77777777-2222-3333-4444-555555555555")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_plain_main_wins_over_its_compressed_copy_and_zst_is_read() {
        let home = tempfile::tempdir().unwrap();
        let name = format!("2026/11/28/rollout-2026-11-28T18-51-50-{ID}.jsonl");
        let zst = home.path().join("sessions").join(format!("{name}.zst"));
        fs::create_dir_all(zst.parent().unwrap()).unwrap();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/codex-rollouts/rollout-0.171.jsonl.zst"
        );
        fs::copy(fixture, &zst).unwrap();
        let f = find(home.path(), ID).unwrap().unwrap();
        assert_eq!(f.rollout, zst);
        assert!(lines::session_meta(&first_line(&zst).unwrap()).is_some());
        let plain = put(home.path(), &name, &meta(ID, ""));
        assert_eq!(find(home.path(), ID).unwrap().unwrap().rollout, plain);
    }

    #[test]
    fn symlinked_rollouts_are_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("x.jsonl");
        fs::write(&target, meta(ID, "")).unwrap();
        let day = home.path().join("sessions/2026/11/28");
        fs::create_dir_all(&day).unwrap();
        std::os::unix::fs::symlink(
            &target,
            day.join(format!("rollout-2026-11-28T18-51-50-{ID}.jsonl")),
        )
        .unwrap();
        assert!(find(home.path(), ID).unwrap().is_none());
    }
}
