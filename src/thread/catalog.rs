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
    /// Indexes (into the `homes` given) of the homes holding a copy, in that order.
    pub homes: Vec<usize>,
    /// Index of the home holding the newest copy (the longest; the first one on a tie).
    pub newest: usize,
    /// The newest copy's main rollout.
    pub rollout: PathBuf,
    pub cwd: Option<String>,
    /// The `timestamp` of the newest copy's last line (RFC 3339, UTC).
    pub last_activity: Option<String>,
    /// What the user first typed in the thread.
    pub first_prompt: Option<String>,
}

/// A thread's copies: (index of the home, its main rollout there).
type Copies = Vec<(usize, PathBuf)>;

/// The threads of `homes`, most recently active first, at most `limit`. Each copy's last line
/// is read to rank them; only the listed threads' rollouts are read whole.
pub fn list(homes: &[&Path], limit: usize) -> Result<Vec<Entry>, ThreadError> {
    let mut found: BTreeMap<String, Copies> = BTreeMap::new();
    for (h, home) in homes.iter().enumerate() {
        let mut here: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        files::walk(&files::sessions_dir(home), &mut |path, name| {
            if let Some((id, None)) = files::parse_name(name) {
                here.entry(id).or_default().push(path.to_path_buf());
            }
        })?;
        for (id, mains) in here {
            if let Some(f) = files::assemble(id.clone(), mains, Vec::new()) {
                found.entry(id).or_default().push((h, f.rollout));
            }
        }
    }
    let mut ranked: Vec<(Option<String>, String, Copies)> = found
        .into_iter()
        .map(|(id, copies)| {
            let last = copies.iter().filter_map(|(_, p)| last_timestamp(p)).max();
            (last, id, copies)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for (_, id, copies) in ranked.into_iter().take(limit) {
        let holders = copies.iter().map(|(h, _)| *h).collect();
        let mut best: Option<(Summary, usize, PathBuf)> = None;
        for (h, rollout) in copies {
            let Ok(s) = summary(&rollout) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _, _)| s.lines > b.lines) {
                best = Some((s, h, rollout));
            }
        }
        let Some((s, newest, rollout)) = best else {
            continue;
        };
        out.push(Entry {
            id,
            homes: holders,
            newest,
            rollout,
            cwd: s.cwd,
            last_activity: s.last_activity,
            first_prompt: s.first_prompt,
        });
    }
    Ok(out)
}

/// The `timestamp` of a rollout's last complete line, reading only its end when it is plain.
fn last_timestamp(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 << 10;
    if !lines::is_zst(path) {
        let mut f = std::fs::File::open(path).ok()?;
        let len = f.metadata().ok()?.len();
        if len > TAIL {
            f.seek(SeekFrom::Start(len - TAIL)).ok()?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).ok()?;
            // The first line of the tail may be cut: only lines after a newline count.
            let start = buf.iter().position(|b| *b == b'\n')? + 1;
            let r = Rollout::from_bytes(buf.split_off(start));
            if let Some(t) = (0..r.len()).rev().find_map(|i| timestamp(r.line(i))) {
                return Some(t);
            }
        }
    }
    let r = Rollout::read(path).ok()?;
    (0..r.len()).rev().find_map(|i| timestamp(r.line(i)))
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
        lines: lines::kept(&r).lines.len(),
        cwd,
        last_activity,
        first_prompt,
    })
}

/// A line's top-level `timestamp`, read before its payload without parsing the line.
fn timestamp(line: &[u8]) -> Option<String> {
    let head = &line[..lines::find(line, br#""payload":"#).unwrap_or(line.len())];
    let key = br#""timestamp":""#;
    let at = lines::find(head, key)? + key.len();
    let rest = head.get(at..)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    String::from_utf8(rest.get(..end)?.to_vec()).ok()
}

/// What the user typed, from the line kinds Codex records it in: `item_completed` of a
/// `UserMessage` (0.169 and later), `user_message` (older), else a user `response_item`
/// message that is not context Codex adds (`<environment_context>` and the like).
fn user_prompt(line: &[u8]) -> Option<String> {
    let texts = |content: &Value, kind: &str| -> Option<String> {
        let parts: Vec<&str> = content
            .as_array()?
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n"))
    };
    if lines::contains(line, br#""type":"UserMessage""#) {
        let v: Value = serde_json::from_slice(line).ok()?;
        let item = v.get("payload")?.get("item")?;
        if item.get("type")?.as_str()? == "UserMessage" {
            return texts(item.get("content")?, "text");
        }
    } else if lines::contains(line, br#""type":"user_message""#) {
        let v: Value = serde_json::from_slice(line).ok()?;
        let p = v.get("payload")?;
        if p.get("type")?.as_str()? == "user_message" {
            return p.get("message")?.as_str().map(str::to_string);
        }
    } else if lines::contains(line, br#""role":"user""#) {
        let v: Value = serde_json::from_slice(line).ok()?;
        let p = v.get("payload")?;
        if v.get("type")?.as_str()? == "response_item" && p.get("type")?.as_str()? == "message" {
            return texts(p.get("content")?, "input_text").filter(|t| !t.starts_with('<'));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const A: &str = "01a2237f-d7da-7aa2-94b0-b297369516ed";
    const B: &str = "11111111-2222-3333-4444-555555555555";

    fn put(home: &Path, id: &str, text: &str) -> PathBuf {
        let p = home
            .join("sessions/2026/11/28")
            .join(format!("rollout-2026-11-28T18-51-50-{id}.jsonl"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn thread(id: &str, cwd: &str, prompt: &str, last: &str) -> String {
        format!(
            concat!(
                r#"{{"timestamp":"2026-11-28T10:00:00.000Z","ordinal":0,"type":"session_meta","payload":{{"id":"{id}","cwd":"{cwd}"}}}}"#,
                "\n",
                r#"{{"timestamp":"2026-11-28T10:00:01.000Z","ordinal":1,"type":"response_item","payload":{{"type":"message","role":"user","content":[{{"type":"input_text","text":"<environment_context>x</environment_context>"}}]}}}}"#,
                "\n",
                r#"{{"timestamp":"2026-11-28T10:00:02.000Z","ordinal":2,"type":"event_msg","payload":{{"type":"item_completed","item":{{"type":"UserMessage","content":[{{"type":"text","text":"{prompt}"}}]}}}}}}"#,
                "\n",
                r#"{{"timestamp":"{last}","ordinal":3,"type":"event_msg","payload":{{"type":"task_complete"}}}}"#,
                "\n"
            ),
            id = id,
            cwd = cwd,
            prompt = prompt,
            last = last
        )
    }

    #[test]
    fn threads_of_every_home_newest_first_with_their_holders() {
        let (h1, h2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let old = thread(A, "/w/a", "fix the bug", "2026-11-28T11:00:00.000Z");
        put(h1.path(), A, &old);
        // h2 holds a longer copy of A, and B.
        let newer = old.clone()
            + r#"{"timestamp":"2026-11-29T09:00:00.000Z","ordinal":4,"type":"event_msg","payload":{"type":"task_started"}}"#
            + "\n";
        put(h2.path(), A, &newer);
        put(
            h2.path(),
            B,
            &thread(B, "/w/b", "write docs", "2026-11-28T12:00:00.000Z"),
        );
        let list = list(&[h1.path(), h2.path()], 10).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, A);
        assert_eq!(list[0].homes, vec![0, 1]);
        assert_eq!(list[0].newest, 1);
        assert_eq!(
            list[0].last_activity.as_deref(),
            Some("2026-11-29T09:00:00.000Z")
        );
        assert_eq!(list[0].first_prompt.as_deref(), Some("fix the bug"));
        assert_eq!(list[0].cwd.as_deref(), Some("/w/a"));
        assert_eq!(list[1].id, B);
        assert_eq!(list[1].homes, vec![1]);
        assert_eq!(list[1].first_prompt.as_deref(), Some("write docs"));
    }

    #[test]
    fn the_limit_keeps_the_most_recently_active_whatever_was_written_last() {
        let h = tempfile::tempdir().unwrap();
        put(
            h.path(),
            B,
            &thread(B, "/w", "b", "2026-11-28T12:00:00.000Z"),
        );
        // Written last (as a carry does), but active earlier; and long enough that only its
        // tail is read.
        let mut a = thread(A, "/w", "a", "2026-11-28T09:00:00.000Z");
        let filler = format!(
            "{{\"timestamp\":\"2026-11-28T08:00:00.000Z\",\"type\":\"event_msg\",\"payload\":{{\"text\":\"{}\"}}}}\n",
            "y".repeat(1000)
        );
        a = a.replacen('\n', &format!("\n{}", filler.repeat(100)), 1);
        let path_a = put(h.path(), A, &a);
        assert!(fs::metadata(&path_a).unwrap().len() > 64 << 10);
        assert_eq!(
            last_timestamp(&path_a).as_deref(),
            Some("2026-11-28T09:00:00.000Z")
        );
        let list = list(&[h.path()], 1).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, B);
        assert_eq!(super::list(&[h.path()], 5).unwrap().len(), 2);
    }

    #[test]
    fn prompts_come_from_what_the_user_typed() {
        let old = br#"{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":"hi there"}}"#;
        assert_eq!(user_prompt(old).as_deref(), Some("hi there"));
        let context = br#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>"}]}}"#;
        assert_eq!(user_prompt(context), None);
        assert_eq!(
            timestamp(br#"{"timestamp":"2026-01-01T00:00:00Z","type":"x","payload":{}}"#)
                .as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            timestamp(br#"{"type":"x","payload":{"timestamp":"no"}}"#),
            None
        );
    }
}
