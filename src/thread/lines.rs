//! A rollout's lines, and the few kinds of line that carrying a thread cares about.
//!
//! Codex writes each line as compact JSON (`{"timestamp":..,"type":..,"payload":{..}}`), so a
//! marker such as `"type":"reasoning"` can only appear unescaped where it is a real key and
//! value: inside a string it would read `\"type\":\"reasoning\"`. A line is parsed only when
//! its text carries such a marker, which keeps a carry of a large thread fast.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use super::files::ThreadError;

/// A rollout read into memory: its bytes and the ranges of its complete lines (each with its
/// `\n`). A last line without `\n` is a write in progress and is left out.
pub struct Rollout {
    pub bytes: Vec<u8>,
    pub lines: Vec<Range<usize>>,
}

impl Rollout {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', &bytes) {
            lines.push(start..i + 1);
            start = i + 1;
        }
        Self { bytes, lines }
    }

    pub fn read(path: &Path) -> Result<Self, ThreadError> {
        Ok(Self::from_bytes(read_bytes(path)?))
    }

    pub fn line(&self, i: usize) -> &[u8] {
        self.lines
            .get(i)
            .map_or(&[][..], |r| &self.bytes[r.clone()])
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }
}

/// Whether a file name is a compressed rollout (one zstd frame of the `.jsonl`).
pub fn is_zst(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// A rollout's bytes, decompressed when it is a `.jsonl.zst`.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ThreadError> {
    let io_err = |source| ThreadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut out = Vec::new();
    if is_zst(path) {
        let mut decoder =
            ruzstd::decoding::StreamingDecoder::new(&mut file).map_err(|e| ThreadError::Zstd {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        decoder
            .read_to_end(&mut out)
            .map_err(|e| ThreadError::Zstd {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    } else {
        file.read_to_end(&mut out).map_err(io_err)?;
    }
    Ok(out)
}

/// `needle` in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

fn parse(line: &[u8]) -> Option<Value> {
    serde_json::from_slice(line).ok()
}

fn payload<'a>(v: &'a Value, line_type: &str) -> Option<&'a Value> {
    (v.get("type")?.as_str()? == line_type)
        .then(|| v.get("payload"))
        .flatten()
}

/// A `response_item` `reasoning` carrying `encrypted_content`: bound to the account that
/// produced it, so it is left out of a copy made for another account.
pub fn is_encrypted_reasoning(line: &[u8]) -> bool {
    if !contains(line, br#""type":"reasoning""#) || !contains(line, br#""encrypted_content""#) {
        return false;
    }
    let Some(v) = parse(line) else {
        return false;
    };
    payload(&v, "response_item").is_some_and(|p| {
        p.get("type").and_then(Value::as_str) == Some("reasoning")
            && p.get("encrypted_content").is_some_and(|c| !c.is_null())
    })
}

/// The turn id of a line that starts a turn (`event_msg` `task_started`); `Some("")` for a start
/// that names no turn (older Codex).
pub fn turn_start(line: &[u8]) -> Option<String> {
    if !contains(line, br#""type":"task_started""#) {
        return None;
    }
    let v = parse(line)?;
    let p = payload(&v, "event_msg")?;
    if p.get("type")?.as_str()? != "task_started" {
        return None;
    }
    let id = p
        .get("turn_id")
        .or_else(|| p.get("turn_attribution")?.get("turn_id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(id.to_string())
}

/// The turn id of a line that ends a turn failed on a usage limit (`task_complete` whose
/// `error.codex_error_info` is `usage_limit_exceeded`).
pub fn usage_limit_end(line: &[u8]) -> Option<String> {
    if !contains(line, br#""type":"task_complete""#) || !contains(line, b"usage_limit_exceeded") {
        return None;
    }
    let v = parse(line)?;
    let p = payload(&v, "event_msg")?;
    if p.get("type")?.as_str()? != "task_complete"
        || p.get("error")?.get("codex_error_info")?.as_str()? != "usage_limit_exceeded"
    {
        return None;
    }
    Some(
        p.get("turn_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

/// The `session_meta` payload of a rollout's first line.
pub fn session_meta(line: &[u8]) -> Option<Value> {
    if !contains(line, br#""type":"session_meta""#) {
        return None;
    }
    let mut v = parse(line)?;
    payload(&v, "session_meta")?;
    v.get_mut("payload").map(Value::take)
}

/// The thread ids a `session_meta` payload names as parents: `history_base.thread_id` (the
/// rollout its history continues) and `forked_from_id`.
pub fn parent_ids(meta: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let base = meta.get("history_base").and_then(|b| b.get("thread_id"));
    for v in [base, meta.get("forked_from_id")].into_iter().flatten() {
        if let Some(s) = v.as_str()
            && !out.iter().any(|o| o == s)
        {
            out.push(s.to_string());
        }
    }
    out
}

/// A line's top-level `ordinal` (paginated rollouts number their records), read before its
/// `payload` without parsing the line.
pub fn ordinal(line: &[u8]) -> Option<u64> {
    let head = &line[..find(line, br#""payload":"#).unwrap_or(line.len())];
    let key = br#""ordinal":"#;
    let at = find(head, key)? + key.len();
    let digits = head.get(at..)?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

/// Where `history_base.end_byte_offset`'s digits sit in a `session_meta` line.
fn base_offset_digits(line: &[u8]) -> Option<Range<usize>> {
    let base = find(line, br#""history_base":{"#)?;
    let close = base + line.get(base..)?.iter().position(|b| *b == b'}')?;
    let key = br#""end_byte_offset":"#;
    let at = base + find(line.get(base..close)?, key)? + key.len();
    let len = line
        .get(at..close)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (len > 0).then_some(at..at + len)
}

/// The `session_meta` line with `history_base.end_byte_offset` set to `offset`, written in
/// place so the rest of the line keeps its bytes; None when the line has no such field.
pub fn with_base_offset(line: &[u8], offset: u64) -> Option<Vec<u8>> {
    let digits = base_offset_digits(line)?;
    let mut out = Vec::with_capacity(line.len() + 8);
    out.extend_from_slice(&line[..digits.start]);
    out.extend_from_slice(offset.to_string().as_bytes());
    out.extend_from_slice(&line[digits.end..]);
    Some(out)
}

/// A line as copies are compared: a `history_base.end_byte_offset` depends on the home's copy
/// of the parent (whose encrypted reasoning may have been left out), so it is blanked.
pub fn comparable(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match base_offset_digits(line) {
        Some(d) => {
            let mut out = line[..d.start].to_vec();
            out.extend_from_slice(&line[d.end..]);
            std::borrow::Cow::Owned(out)
        }
        None => std::borrow::Cow::Borrowed(line),
    }
}

/// The byte offset in `r` where the first record with an ordinal at or past `end` starts (the
/// end of the file when none does): how Codex places a `history_base` cutoff by ordinal.
pub fn offset_for_ordinal(r: &Rollout, end: u64) -> u64 {
    r.lines
        .iter()
        .find(|l| ordinal(&r.bytes[(*l).clone()]).is_some_and(|o| o >= end))
        .map_or(r.bytes.len(), |l| l.start) as u64
}

/// The line kinds of a rollout a carry needs: the lines kept (encrypted reasoning left out),
/// where each turn starts among them, and whether the last turn failed on a usage limit.
pub struct Kept {
    /// Indexes into `Rollout::lines` of the lines kept, in order.
    pub lines: Vec<usize>,
    /// (position in `lines`, turn id) of each turn start.
    pub starts: Vec<(usize, String)>,
    /// Position in `lines` where a trailing usage-limit-failed turn starts.
    pub failed_tail: Option<usize>,
}

pub fn kept(r: &Rollout) -> Kept {
    let mut lines = Vec::with_capacity(r.len());
    let mut starts = Vec::new();
    let mut failed_tail = None;
    for i in 0..r.len() {
        let line = r.line(i);
        if is_encrypted_reasoning(line) {
            continue;
        }
        let pos = lines.len();
        if let Some(turn) = turn_start(line) {
            starts.push((pos, turn));
            failed_tail = None;
        } else if let Some(turn) = usage_limit_end(line) {
            failed_tail = match starts.last() {
                Some((at, id)) if id.is_empty() || turn.is_empty() || *id == turn => Some(*at),
                _ => None,
            };
        } else if failed_tail.is_some() && !is_trailer(line) {
            // Something after the failure (a new turn's items without a start line): the
            // failed turn is no longer the last one.
            failed_tail = None;
        }
        lines.push(i);
    }
    Kept {
        lines,
        starts,
        failed_tail,
    }
}

/// Lines Codex may write after a turn ended without starting another one.
fn is_trailer(line: &[u8]) -> bool {
    contains(line, br#""type":"token_count""#)
        || contains(line, br#""type":"thread_status""#)
        || contains(line, br#""type":"token_usage_record""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONING: &str = r#"{"timestamp":"t","ordinal":3,"type":"response_item","payload":{"type":"reasoning","summary":[],"content":null,"encrypted_content":"gAAAA"}}"#;

    #[test]
    fn encrypted_reasoning_is_recognised_and_a_quoted_one_is_not() {
        assert!(is_encrypted_reasoning(REASONING.as_bytes()));
        let plain = REASONING.replace(
            r#""encrypted_content":"gAAAA""#,
            r#""encrypted_content":null"#,
        );
        assert!(!is_encrypted_reasoning(plain.as_bytes()));
        let quoted = r#"{"type":"response_item","payload":{"type":"message","content":[{"type":"input_text","text":"{\"type\":\"reasoning\",\"encrypted_content\":\"x\"}"}]}}"#;
        assert!(!is_encrypted_reasoning(quoted.as_bytes()));
    }

    #[test]
    fn turn_start_and_usage_limit_end_read_real_lines() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/codex-rollouts");
        let r = Rollout::read(&Path::new(dir).join("rollout-0.171.jsonl.zst")).unwrap();
        assert_eq!(r.len(), 14);
        assert_eq!(
            turn_start(r.line(1)).as_deref(),
            Some("01a2237f-d7e6-7ee2-ba9c-3d697401fc01")
        );
        assert!(
            (0..r.len())
                .filter(|i| *i != 1)
                .all(|i| turn_start(r.line(i)).is_none())
        );
        for v in ["169", "171"] {
            let text =
                std::fs::read_to_string(format!("{dir}/usage-limit-turn.{v}.jsonl")).unwrap();
            let last = text.lines().last().unwrap();
            assert!(
                usage_limit_end(last.as_bytes()).is_some_and(|t| !t.is_empty()),
                "{v}"
            );
        }
        assert!(usage_limit_end(r.line(13)).is_none());
    }

    #[test]
    fn ordinals_are_read_before_the_payload_only() {
        assert_eq!(
            ordinal(br#"{"timestamp":"t","ordinal":42,"type":"x","payload":{}}"#),
            Some(42)
        );
        assert_eq!(
            ordinal(br#"{"timestamp":"t","type":"x","payload":{"ordinal":7}}"#),
            None
        );
        let r = Rollout::from_bytes(
            b"{\"ordinal\":0,\"payload\":1}\n{\"ordinal\":2,\"payload\":1}\n{\"ordinal\":5,\"payload\":1}\n".to_vec(),
        );
        assert_eq!(offset_for_ordinal(&r, 1), r.lines[1].start as u64);
        assert_eq!(offset_for_ordinal(&r, 3), r.lines[2].start as u64);
        assert_eq!(offset_for_ordinal(&r, 9), r.bytes.len() as u64);
    }

    #[test]
    fn history_base_offsets_are_rewritten_in_place_and_blanked_for_comparison() {
        let line = br#"{"type":"session_meta","payload":{"id":"x","history_base":{"thread_id":"p","end_ordinal_exclusive":3,"end_byte_offset":1234},"end_byte_offset":9}}"#;
        let out = with_base_offset(line, 77).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            String::from_utf8(line.to_vec())
                .unwrap()
                .replace(":1234}", ":77}")
        );
        assert_eq!(comparable(line), comparable(&out));
        assert_ne!(comparable(line).as_ref(), &line[..]);
        assert!(with_base_offset(br#"{"payload":{"end_byte_offset":5}}"#, 1).is_none());
    }

    #[test]
    fn a_last_line_without_newline_is_left_out() {
        let r = Rollout::from_bytes(b"{\"a\":1}\n{\"b\":".to_vec());
        assert_eq!(r.len(), 1);
        assert_eq!(r.line(0), b"{\"a\":1}\n");
    }

    fn event(payload: &str) -> String {
        format!(r#"{{"timestamp":"t","type":"event_msg","payload":{payload}}}"#)
    }

    fn started(turn: &str) -> String {
        event(&format!(r#"{{"type":"task_started","turn_id":"{turn}"}}"#))
    }

    fn out_of_quota(turn: &str) -> String {
        event(&format!(
            r#"{{"type":"task_complete","turn_id":"{turn}","last_agent_message":null,"error":{{"message":"You've hit your usage limit.","codex_error_info":"usage_limit_exceeded"}}}}"#
        ))
    }

    fn item(text: &str) -> String {
        format!(
            r#"{{"timestamp":"t","type":"response_item","payload":{{"type":"message","role":"assistant","content":[{{"type":"output_text","text":"{text}"}}]}}}}"#
        )
    }

    fn rollout(lines: &[String]) -> Rollout {
        Rollout::from_bytes(
            lines
                .iter()
                .flat_map(|l| format!("{l}\n").into_bytes())
                .collect(),
        )
    }

    #[test]
    fn a_turn_that_only_mentions_the_usage_limit_did_not_end_on_it() {
        let done = event(
            r#"{"type":"task_complete","turn_id":"a","last_agent_message":"usage_limit_exceeded is what Codex says","error":null}"#,
        );
        assert_eq!(usage_limit_end(done.as_bytes()), None);
        let other = event(
            r#"{"type":"task_complete","turn_id":"a","error":{"message":"see usage_limit_exceeded","codex_error_info":"other"}}"#,
        );
        assert_eq!(usage_limit_end(other.as_bytes()), None);
        assert_eq!(
            usage_limit_end(out_of_quota("a").as_bytes()).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn kept_leaves_out_encrypted_reasoning_and_finds_a_trailing_usage_limit_turn() {
        let meta = r#"{"timestamp":"t","type":"session_meta","payload":{"id":"x"}}"#.to_string();
        let mut lines = vec![
            meta,
            started("a"),
            REASONING.to_string(),
            item("one"),
            started("b"),
            item("two"),
            out_of_quota("b"),
        ];
        let k = kept(&rollout(&lines));
        assert_eq!(k.lines, [0, 1, 3, 4, 5, 6]);
        assert_eq!(k.starts, [(1, "a".to_string()), (3, "b".to_string())]);
        assert_eq!(k.failed_tail, Some(3));
        // What Codex writes after a turn ended still leaves it the last one.
        for trailer in [
            event(r#"{"type":"token_count","info":null}"#),
            event(r#"{"type":"thread_status","status":"idle"}"#),
            r#"{"timestamp":"t","type":"token_usage_record","payload":{}}"#.to_string(),
        ] {
            lines.push(trailer);
            assert_eq!(kept(&rollout(&lines)).failed_tail, Some(3), "{lines:?}");
        }
        // Anything else after it (a turn's items without a start line) makes it not the last.
        lines.push(item("three"));
        assert_eq!(kept(&rollout(&lines)).failed_tail, None);
    }

    #[test]
    fn a_usage_limit_end_belongs_to_the_last_start_unless_ids_differ() {
        let tail = |start: &str, end: &str| {
            kept(&rollout(&[
                started("a"),
                item("x"),
                started(start),
                out_of_quota(end),
            ]))
            .failed_tail
        };
        assert_eq!(tail("b", "b"), Some(2));
        assert_eq!(tail("b", "a"), None, "another turn's end");
        // Older Codex names no turn on one side or the other: the last start is the turn.
        assert_eq!(tail("", "b"), Some(2));
        assert_eq!(tail("b", ""), Some(2));
        // No start at all: nothing to drop.
        assert_eq!(
            kept(&rollout(&[item("x"), out_of_quota("b")])).failed_tail,
            None
        );
    }

    #[test]
    fn a_history_base_without_an_offset_is_not_rewritten() {
        let line = br#"{"type":"session_meta","payload":{"history_base":{"thread_id":"p","end_byte_offset":null}}}"#;
        assert!(with_base_offset(line, 77).is_none());
        assert_eq!(comparable(line).as_ref(), &line[..]);
    }

    #[test]
    fn comparable_keeps_every_byte_but_the_offset() {
        let a = br#"{"type":"session_meta","payload":{"history_base":{"thread_id":"p","end_byte_offset":12}},"x":1}"#;
        let b = br#"{"type":"session_meta","payload":{"history_base":{"thread_id":"p","end_byte_offset":12}},"x":2}"#;
        assert_ne!(comparable(a), comparable(b));
        assert_eq!(
            comparable(a).as_ref(),
            &br#"{"type":"session_meta","payload":{"history_base":{"thread_id":"p","end_byte_offset":}},"x":1}"#[..]
        );
        let plain = item("hello");
        assert_eq!(comparable(plain.as_bytes()).as_ref(), plain.as_bytes());
    }

    #[test]
    fn parents_are_named_once_each_base_first() {
        let meta = serde_json::json!({"history_base": {"thread_id": "p"}, "forked_from_id": "f"});
        assert_eq!(parent_ids(&meta), ["p", "f"]);
        let same = serde_json::json!({"history_base": {"thread_id": "p"}, "forked_from_id": "p"});
        assert_eq!(parent_ids(&same), ["p"]);
        assert!(parent_ids(&serde_json::json!({"id": "x"})).is_empty());
    }

    #[test]
    fn find_handles_repeated_first_bytes() {
        assert_eq!(find(b"aaab", b"ab"), Some(2));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"abc", b""), None);
    }
}
