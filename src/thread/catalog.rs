//! Recent threads across homes: id, the homes holding a copy, folder (cwd), last activity and
//! first prompt, newest first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{self, ThreadError};
use super::lines::{self, Rollout};

/// One thread as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    /// The homes holding a copy, in the order they were given.
    pub homes: Vec<PathBuf>,
    /// The newest copy's main rollout.
    pub rollout: PathBuf,
    pub cwd: Option<String>,
    /// The newest line's `timestamp` (RFC 3339, UTC) of the newest copy.
    pub last_activity: Option<String>,
    pub first_prompt: Option<String>,
}

/// Threads of `homes`, newest first, at most `limit`.
pub fn list(homes: &[&Path], limit: usize) -> Result<Vec<Entry>, ThreadError> {
    // id -> (home index, main candidates, segments) per home.
    let mut found: BTreeMap<String, Vec<(usize, Vec<PathBuf>)>> = BTreeMap::new();
    for (h, home) in homes.iter().enumerate() {
        let mut here: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        files::walk(&files::sessions_dir(home), &mut |path, name| {
            if let Some((id, None)) = files::parse_name(name) {
                here.entry(id).or_default().push(path.to_path_buf());
            }
        })?;
        for (id, mains) in here {
            found.entry(id).or_default().push((h, mains));
        }
    }
    let mut out = Vec::new();
    for (id, copies) in found {
        let mut best: Option<(Summary, PathBuf)> = None;
        let mut holders = Vec::new();
        for (h, mains) in copies {
            holders.push(homes[h].to_path_buf());
            let Some(f) = files::assemble(id.clone(), mains, Vec::new()) else {
                continue;
            };
            let Ok(s) = summary(&f.rollout) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| s.lines > b.lines) {
                best = Some((s, f.rollout));
            }
        }
        let Some((s, rollout)) = best else {
            continue;
        };
        out.push(Entry {
            id,
            homes: holders,
            rollout,
            cwd: s.cwd,
            last_activity: s.last_activity,
            first_prompt: s.first_prompt,
        });
    }
    out.sort_by(|a, b| b.last_activity.cmp(&a.last_activity).then(a.id.cmp(&b.id)));
    out.truncate(limit);
    Ok(out)
}

struct Summary {
    lines: usize,
    cwd: Option<String>,
    last_activity: Option<String>,
    first_prompt: Option<String>,
}

fn summary(path: &Path) -> Result<Summary, ThreadError> {
    let r = Rollout::read(path)?;
    let cwd = lines::session_meta(r.line(0))
        .and_then(|m| m.get("cwd").and_then(Value::as_str).map(str::to_string));
    let last_activity = (0..r.len()).rev().find_map(|i| timestamp(r.line(i)));
    let first_prompt = (0..r.len()).find_map(|i| user_prompt(r.line(i)));
    Ok(Summary {
        lines: r.len(),
        cwd,
        last_activity,
        first_prompt,
    })
}

/// A line's `timestamp`, read from its start without parsing the rest.
fn timestamp(line: &[u8]) -> Option<String> {
    let key = br#""timestamp":""#;
    let at = lines::find(line.get(..64.min(line.len()))?, key)? + key.len();
    let rest = line.get(at..)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    String::from_utf8(rest.get(..end)?.to_vec()).ok()
}

/// The text of a `user_message` event (what the user typed, without the context Codex adds).
fn user_prompt(line: &[u8]) -> Option<String> {
    if !lines::contains(line, br#""type":"user_message""#) {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    let p = v.get("payload")?;
    (v.get("type")?.as_str()? == "event_msg" && p.get("type")?.as_str()? == "user_message")
        .then(|| p.get("message")?.as_str().map(str::to_string))
        .flatten()
}
