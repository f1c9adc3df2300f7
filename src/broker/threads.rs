//! The broker's view of threads kept in other accounts' homes, so that a client of one account's
//! broker finds every thread it may run here:
//! - `thread/resume` (or `thread/fork`) of a thread whose newest copy is in another account's home carries it into
//!   the broker's home first ([`prepare_resume`]); a copy that cannot be carried (two copies that
//!   diverged, a failed write) is refused with one line naming both homes, and the app-server
//!   never sees the request. A thread found nowhere is forwarded unchanged: the app-server's own
//!   error is the one clients know.
//! - `thread/list`: the app-server's answer plus the matching threads of the other homes
//!   ([`prepare_list`] reads them, [`merge_list`] merges them into the answer), in the
//!   app-server's own item shape (checked on 0.169.0 and 0.171.0), de-duplicated by id, sorted
//!   and limited as asked. Only a first page is merged into: a cursor is the app-server's own.
//!
//! The file work here blocks; the event loop runs it off its thread. The accounts are read at
//! every request, so one added or removed while the broker runs counts at once.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};

use crate::account::Accounts;
use crate::thread::carry::{self, CarryOptions};
use crate::thread::files::is_thread_id;

pub const THREAD_RESUME: &str = "thread/resume";
pub const THREAD_LIST: &str = "thread/list";
/// A fork names its source thread as a resume does, and needs it in the same home.
pub const THREAD_FORK: &str = "thread/fork";

/// What the broker does with a request once the file work for it is done.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    Forward,
    /// Answered with this error message; the app-server never sees the request.
    Refuse(String),
    /// Forwarded; these items of other homes are merged into its answer.
    List(Vec<Value>),
}

/// Whether a client request needs file work before it is forwarded.
pub fn needs_preparing(method: &str, params: Option<&Value>) -> bool {
    match method {
        // A `path` names the file itself: the app-server's to judge.
        THREAD_RESUME | THREAD_FORK => {
            params.and_then(|p| p.get("threadId")).is_some()
                && params
                    .and_then(|p| p.get("path"))
                    .is_none_or(Value::is_null)
        }
        THREAD_LIST => params
            .and_then(|p| p.get("cursor"))
            .is_none_or(Value::is_null),
        _ => false,
    }
}

/// The file work for a request [`needs_preparing`] said needs it. `loaded`: the broker's
/// app-server has the thread the request names open.
pub fn prepare(own: &Path, method: &str, params: Option<&Value>, loaded: bool) -> Prepared {
    let empty = json!({});
    let params = params.unwrap_or(&empty);
    match method {
        THREAD_RESUME | THREAD_FORK => match params.get("threadId").and_then(Value::as_str) {
            Some(id) => prepare_resume(own, &other_homes(own), id, loaded),
            None => Prepared::Forward,
        },
        THREAD_LIST => prepare_list(&other_homes(own), params),
        _ => Prepared::Forward,
    }
}

/// The homes of every account but the one at `own`, that exist (read afresh: accounts may
/// have been added since the broker started).
pub fn other_homes(own: &Path) -> Vec<PathBuf> {
    Accounts::load()
        .map(|accounts| accounts.other_homes(own))
        .unwrap_or_default()
}

/// Carries thread `id` into `own` when its newest copy is in one of `others`. Not under an
/// app-server that has the thread open (`loaded`): it keeps its own copy in memory and would
/// neither see the newer turns nor write its next ones to the new file, so that is refused.
pub fn prepare_resume(own: &Path, others: &[PathBuf], id: &str, loaded: bool) -> Prepared {
    if others.is_empty() || !is_thread_id(id) {
        return Prepared::Forward;
    }
    let mut homes: Vec<&Path> = vec![own];
    homes.extend(others.iter().map(PathBuf::as_path));
    let from = match carry::newest_home(id, &homes) {
        Ok(Some(from)) if from != own => from,
        Ok(_) => return Prepared::Forward,
        Err(e) => return Prepared::Refuse(one_line(&format!("codex-as: thread {id}: {e}"))),
    };
    if loaded {
        return Prepared::Refuse(one_line(&format!(
            "codex-as: thread {id}: a newer copy is in {}, but this account's Codex app-server has its older copy in {} open and would not see the newer turns; it lets go of a thread about a minute after its last client leaves: try again then",
            from.display(),
            own.display()
        )));
    }
    match carry::carry(id, from, own, &CarryOptions::default()) {
        Ok(_) => Prepared::Forward,
        Err(e) => Prepared::Refuse(one_line(&format!(
            "codex-as: cannot bring thread {id} from {} into {}: {e}",
            from.display(),
            own.display()
        ))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The threads of `homes` that `params` (a `thread/list` request) asks for, as list items.
pub fn prepare_list(homes: &[PathBuf], params: &Value) -> Prepared {
    let filter = ListFilter::of(params);
    let mut found: HashMap<String, Value> = HashMap::new();
    for home in homes {
        for item in home_threads(home, filter.archived) {
            if !filter.matches(&item) {
                continue;
            }
            let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            // The same thread in two homes: the copy touched last stands for it.
            let newer = found
                .get(&id)
                .is_none_or(|old| updated_at(&item) > updated_at(old));
            if newer {
                found.insert(id, item);
            }
        }
    }
    let mut items: Vec<Value> = found.into_values().collect();
    filter.sort(&mut items);
    if let Some(limit) = filter.limit {
        items.truncate(limit);
    }
    Prepared::List(items)
}

fn updated_at(item: &Value) -> i64 {
    item.get("updatedAt").and_then(Value::as_i64).unwrap_or(0)
}

/// The filters of a `thread/list` request that a thread read from files can be judged by.
#[derive(Debug, Default)]
pub struct ListFilter {
    cwds: Option<Vec<String>>,
    /// Source kinds; without any, the app-server lists the interactive ones.
    source_kinds: Vec<String>,
    search: Option<String>,
    archived: bool,
    providers: Vec<String>,
    included: Option<Vec<String>>,
    excluded: Vec<String>,
    pub limit: Option<usize>,
    sort_key: String,
    ascending: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl ListFilter {
    pub fn of(params: &Value) -> ListFilter {
        let get = |k: &str| params.get(k).filter(|v| !v.is_null());
        ListFilter {
            cwds: get("cwd").map(|v| strings(Some(v))),
            source_kinds: strings(get("sourceKinds")),
            search: get("searchTerm")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from),
            archived: get("archived").and_then(Value::as_bool).unwrap_or(false),
            providers: strings(get("modelProviders")),
            included: get("includedThreadIds").map(|v| strings(Some(v))),
            excluded: strings(get("excludedThreadIds")),
            limit: get("limit")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok()),
            sort_key: get("sortKey")
                .and_then(Value::as_str)
                .unwrap_or("created_at")
                .to_string(),
            ascending: get("sortDirection").and_then(Value::as_str) == Some("asc"),
        }
    }

    /// Whether a list item passes every filter, as the app-server judges it.
    pub fn matches(&self, item: &Value) -> bool {
        let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
        if let Some(cwds) = &self.cwds
            && !cwds.iter().any(|c| c == s("cwd"))
        {
            return false;
        }
        let kind = source_kind(item.get("source"));
        let kind_ok = if self.source_kinds.is_empty() {
            matches!(kind, "cli" | "vscode")
        } else {
            self.source_kinds.iter().any(|k| k == kind)
        };
        if !kind_ok {
            return false;
        }
        if let Some(term) = &self.search {
            // The app-server matches the thread's title: its name, else its first prompt.
            let title = item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_else(|| s("preview"));
            if !title.contains(term.as_str()) && !s("preview").contains(term.as_str()) {
                return false;
            }
        }
        if !self.providers.is_empty() && !self.providers.iter().any(|p| p == s("modelProvider")) {
            return false;
        }
        let id = s("id");
        if self
            .included
            .as_ref()
            .is_some_and(|i| !i.iter().any(|x| x == id))
        {
            return false;
        }
        !self.excluded.iter().any(|x| x == id)
    }

    fn sort_field(&self) -> Option<&'static str> {
        match self.sort_key.as_str() {
            "created_at" => Some("createdAt"),
            "updated_at" => Some("updatedAt"),
            "recency_at" => Some("recencyAt"),
            _ => None,
        }
    }

    /// Whether `a` comes strictly before `b` in this list's order (never, for a sort key
    /// threads from files lack).
    fn ranks_ahead(&self, a: &Value, b: &Value) -> bool {
        let Some(field) = self.sort_field() else {
            return false;
        };
        let key = |v: &Value| v.get(field).and_then(Value::as_i64).unwrap_or(0);
        if self.ascending {
            key(a) < key(b)
        } else {
            key(a) > key(b)
        }
    }

    /// Newest first unless asked otherwise; a key threads from files lack keeps the order.
    pub fn sort(&self, items: &mut [Value]) {
        let Some(field) = self.sort_field() else {
            return;
        };
        let key = |v: &Value| v.get(field).and_then(Value::as_i64).unwrap_or(0);
        if self.ascending {
            items.sort_by_key(key);
        } else {
            items.sort_by_key(|v| std::cmp::Reverse(key(v)));
        }
    }
}

/// The `ThreadSourceKind` of an item's v2 `source`.
fn source_kind(source: Option<&Value>) -> &str {
    match source {
        Some(Value::String(s)) => match s.as_str() {
            "cli" | "vscode" | "exec" | "appServer" => s.as_str(),
            _ => "unknown",
        },
        Some(Value::Object(o)) => match o.get("subAgent") {
            Some(Value::String(s)) if s == "review" => "subAgentReview",
            Some(Value::String(s)) if s == "compact" => "subAgentCompact",
            Some(Value::Object(k)) if k.contains_key("thread_spawn") => "subAgentThreadSpawn",
            Some(_) => "subAgentOther",
            None => "unknown",
        },
        _ => "unknown",
    }
}

/// A rollout's `session_meta.source` as the v2 protocol spells it.
fn v2_source(meta: Option<&Value>) -> Value {
    match meta {
        Some(Value::String(s)) => Value::String(
            match s.as_str() {
                "cli" | "vscode" | "exec" => s.as_str(),
                "mcp" => "appServer",
                _ => "unknown",
            }
            .to_string(),
        ),
        Some(Value::Object(o)) => match (o.get("subagent"), o.get("custom")) {
            (Some(sub), _) => json!({"subAgent": sub}),
            (None, Some(c)) => json!({"custom": c}),
            _ => json!("unknown"),
        },
        _ => json!("unknown"),
    }
}

/// The answer of a first `thread/list` page with `extra` merged in: one item per id (the
/// app-server's own wins), sorted and limited as `params` asks. When more pages follow (a
/// `nextCursor`), the app-server's own items all stay, since its cursor starts after the last
/// of them, and only threads that rank ahead of that last one join: the page may then be
/// longer than asked, but no thread is skipped by paging on.
pub fn merge_list(mut result: Value, extra: Vec<Value>, params: &Value) -> Value {
    if extra.is_empty() {
        return result;
    }
    let more = result.get("nextCursor").is_some_and(|c| !c.is_null());
    let Some(data) = result.get_mut("data").and_then(Value::as_array_mut) else {
        return result;
    };
    let filter = ListFilter::of(params);
    let known: HashSet<String> = data
        .iter()
        .filter_map(|t| t.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let last = data.last().cloned();
    data.extend(extra.into_iter().filter(|t| {
        let new = t
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !known.contains(id));
        let in_page = match (&last, more) {
            (Some(last), true) => filter.ranks_ahead(t, last),
            _ => true,
        };
        new && in_page
    }));
    filter.sort(data);
    if let Some(limit) = filter.limit
        && !more
    {
        data.truncate(limit);
    }
    result
}

/// How much of a rollout is read to describe it: its first lines hold all a list item needs.
const HEAD_BYTES: u64 = 1 << 20;
const HEAD_LINES: usize = 400;
/// The most rollout files looked at in one home for one list.
const MAX_FILES: usize = 5000;

/// Every thread of a home (its main rollouts under `sessions/`, or `archived_sessions/`), as
/// list items.
fn home_threads(home: &Path, archived: bool) -> Vec<Value> {
    let root = home.join(if archived {
        "archived_sessions"
    } else {
        "sessions"
    });
    let names = session_names(home);
    let mut files = Vec::new();
    collect_rollouts(&root, 0, &mut files);
    files.iter().filter_map(|f| describe(f, &names)).collect()
}

fn collect_rollouts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 4 || out.len() >= MAX_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() {
            collect_rollouts(&path, depth + 1, out);
        } else if kind.is_file() && rollout_id(&path).is_some() {
            out.push(path);
        }
        if out.len() >= MAX_FILES {
            return;
        }
    }
}

/// The thread id of a main rollout file (`rollout-<timestamp>-<id>.jsonl[.zst]`); None for
/// segments, temporary files and anything else.
pub fn rollout_id(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".jsonl")
        .or_else(|| name.strip_suffix(".jsonl.zst"))?;
    let rest = stem.strip_prefix("rollout-")?;
    let id = rest.get(rest.len().checked_sub(36)?..)?;
    is_thread_id(id).then_some(id)
}

/// `session_index.jsonl`: the names given to threads (`thread/name/set`), the last one winning.
fn session_names(home: &Path) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let Ok(f) = File::open(home.join("session_index.jsonl")) else {
        return names;
    };
    for line in BufReader::new(f.take(16 << 20)).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let (Some(id), Some(name)) = (
            v.get("id").and_then(Value::as_str),
            v.get("thread_name").and_then(Value::as_str),
        ) {
            names.insert(id.to_string(), name.to_string());
        }
    }
    names
}

fn head_reader(path: &Path) -> Option<Box<dyn BufRead>> {
    let f = File::open(path).ok()?;
    if path.extension().is_some_and(|e| e == "zst") {
        let d = ruzstd::decoding::StreamingDecoder::new(f).ok()?;
        Some(Box::new(BufReader::new(d.take(HEAD_BYTES))))
    } else {
        Some(Box::new(BufReader::new(f.take(HEAD_BYTES))))
    }
}

/// Text Codex puts in user messages that the user did not type.
fn is_context(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('<') || t.starts_with("# AGENTS.md")
}

/// What the first lines of a rollout say about its thread.
struct Head {
    /// `session_meta`'s payload.
    meta: Map<String, Value>,
    /// The first thing the user typed.
    preview: Option<String>,
    /// The model of its first turn.
    model: Option<String>,
}

fn read_head(path: &Path) -> Option<Head> {
    let mut meta: Option<Map<String, Value>> = None;
    let mut preview: Option<String> = None;
    let mut model: Option<String> = None;
    for line in head_reader(path)?.lines().take(HEAD_LINES) {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let payload = v.get("payload");
        match v.get("type").and_then(Value::as_str) {
            Some("session_meta") if meta.is_none() => {
                meta = payload.and_then(Value::as_object).cloned();
            }
            Some("turn_context") if model.is_none() => {
                model = payload
                    .and_then(|p| p.get("model"))
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            Some("response_item") if preview.is_none() => {
                preview = payload.and_then(typed_by_user);
            }
            _ => {}
        }
        if meta.is_some() && preview.is_some() && model.is_some() {
            break;
        }
    }
    Some(Head {
        meta: meta?,
        preview,
        model,
    })
}

/// The text of a user message the user typed (not context Codex added).
fn typed_by_user(item: &Value) -> Option<String> {
    if item.get("type").and_then(Value::as_str) != Some("message")
        || item.get("role").and_then(Value::as_str) != Some("user")
    {
        return None;
    }
    let text: String = item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    (!is_context(&text)).then_some(text)
}

/// A rollout as the app-server's `thread/list` shows a thread it has not loaded.
fn describe(path: &Path, names: &HashMap<String, String>) -> Option<Value> {
    let id = rollout_id(path)?.to_string();
    let Head {
        meta,
        preview,
        model,
    } = read_head(path)?;
    if meta.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return None;
    }
    let ms = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let created = meta
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(unix_seconds)
        .unwrap_or(0);
    let updated = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(created, |d| d.as_secs() as i64);
    let cwd = meta.get("cwd").and_then(Value::as_str).unwrap_or("");
    let roots = meta
        .get("runtime_workspace_roots")
        .cloned()
        .unwrap_or_else(|| json!([cwd]));
    Some(json!({
        "id": id,
        "environments": [{"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": roots}],
        "extra": null,
        "sessionId": meta.get("session_id").cloned().unwrap_or_else(|| json!(id)),
        "forkedFromId": ms("forked_from_id"),
        "attachedToThreadId": null,
        "parentThreadId": null,
        "preview": preview.unwrap_or_default(),
        "ephemeral": false,
        "section": null,
        "sectionEnteredAt": null,
        "projectId": null,
        "historyMode": meta.get("history_mode").cloned().unwrap_or_else(|| json!("paginated")),
        "modelProvider": ms("model_provider"),
        "model": model,
        "reasoningEffort": null,
        "createdAt": created,
        "updatedAt": updated,
        "recencyAt": updated,
        "status": {"type": "notLoaded"},
        "path": path.to_string_lossy(),
        "cwd": cwd,
        "cliVersion": ms("cli_version"),
        "originator": ms("originator"),
        "source": v2_source(meta.get("source")),
        "canAcceptDirectInput": null,
        "threadSource": null,
        "agentNickname": ms("agent_nickname"),
        "agentRole": ms("agent_role"),
        "gitInfo": null,
        "name": names.get(&id),
        "daybreakEnabled": null,
        "turns": [],
    }))
}

/// Unix seconds of an RFC 3339 UTC timestamp as Codex writes them (`2026-12-05T10:59:02.136Z`).
fn unix_seconds(ts: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "01a245db-7d73-78a1-b3c0-e8594d16e66b";
    const B: &str = "01a245db-adb5-7303-9e06-2ebc504c1437";

    fn item(id: &str, updated: i64) -> Value {
        json!({"id": id, "cwd": "/w", "source": "vscode", "name": null, "preview": "p",
               "createdAt": updated, "updatedAt": updated, "modelProvider": "openai"})
    }

    /// The ids of a list answer's items, in its order.
    fn ids(list: &Value) -> Vec<&str> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn reads_the_thread_id_of_main_rollouts_only() {
        let p = |s: &str| PathBuf::from(format!("/h/sessions/2026/12/05/{s}"));
        let main = format!("rollout-2026-12-05T10-59-02-{A}.jsonl");
        assert_eq!(rollout_id(&p(&main)), Some(A));
        let zst = format!("rollout-2026-12-05T10-59-02-{A}.jsonl.zst");
        assert_eq!(rollout_id(&p(&zst)), Some(A));
        let seg = format!("rollout-2026-12-05T10-59-02-{A}_1.jsonl");
        assert_eq!(rollout_id(&p(&seg)), None);
        assert_eq!(rollout_id(&p(&format!(".{main}.tmp"))), None);
        assert_eq!(rollout_id(&p("rollout-x.jsonl")), None);
    }

    #[test]
    fn only_thread_opening_by_id_and_first_list_pages_need_file_work() {
        let p = |v: Value| Some(v);
        assert!(needs_preparing(
            THREAD_RESUME,
            p(json!({"threadId": A})).as_ref()
        ));
        assert!(needs_preparing(
            THREAD_FORK,
            p(json!({"threadId": A})).as_ref()
        ));
        assert!(needs_preparing(
            THREAD_RESUME,
            p(json!({"threadId": A, "path": null})).as_ref()
        ));
        assert!(!needs_preparing(
            THREAD_RESUME,
            p(json!({"threadId": A, "path": "/x.jsonl"})).as_ref()
        ));
        assert!(!needs_preparing(THREAD_RESUME, p(json!({})).as_ref()));
        assert!(needs_preparing(THREAD_LIST, None));
        assert!(needs_preparing(
            THREAD_LIST,
            p(json!({"cursor": null})).as_ref()
        ));
        assert!(!needs_preparing(
            THREAD_LIST,
            p(json!({"cursor": "c"})).as_ref()
        ));
        assert!(!needs_preparing(
            "turn/start",
            p(json!({"threadId": A})).as_ref()
        ));
    }

    #[test]
    fn filters_like_the_app_server() {
        let companion = json!({"cwd": "/w", "limit": 20, "sortKey": "updated_at",
            "sourceKinds": ["appServer"], "searchTerm": "Codex Companion Task"});
        let mut t = item(A, 5);
        // Threads the app-server starts are recorded with source `vscode`: the companion's own
        // query does not match them on 0.169.0 or 0.171.0 either.
        assert!(!ListFilter::of(&companion).matches(&t));
        t["source"] = json!("appServer");
        assert!(!ListFilter::of(&companion).matches(&t), "no name yet");
        t["name"] = json!("Codex Companion Task: remember");
        assert!(ListFilter::of(&companion).matches(&t));
        t["cwd"] = json!("/other");
        assert!(!ListFilter::of(&companion).matches(&t));

        let t = item(A, 5);
        assert!(
            ListFilter::of(&json!({})).matches(&t),
            "interactive by default"
        );
        assert!(ListFilter::of(&json!({"cwd": ["/x", "/w"]})).matches(&t));
        assert!(ListFilter::of(&json!({"searchTerm": "p"})).matches(&t));
        assert!(!ListFilter::of(&json!({"searchTerm": "P"})).matches(&t));
        assert!(!ListFilter::of(&json!({"sourceKinds": ["cli"]})).matches(&t));
        assert!(!ListFilter::of(&json!({"modelProviders": ["stub"]})).matches(&t));
        assert!(!ListFilter::of(&json!({"excludedThreadIds": [A]})).matches(&t));
        assert!(!ListFilter::of(&json!({"includedThreadIds": [B]})).matches(&t));
    }

    #[test]
    fn merges_by_id_sorted_and_limited() {
        let ours = json!({"data": [item(A, 10)], "nextCursor": null});
        let mut theirs_a = item(A, 99);
        theirs_a["preview"] = json!("theirs");
        let merged = merge_list(
            ours.clone(),
            vec![theirs_a, item(B, 20)],
            &json!({"sortKey": "updated_at"}),
        );
        assert_eq!(ids(&merged), [B, A]);
        assert_eq!(
            merged["data"][1]["preview"], "p",
            "the app-server's own item wins"
        );
        let limited = merge_list(ours.clone(), vec![item(B, 1)], &json!({"limit": 1}));
        assert_eq!(limited["data"].as_array().unwrap().len(), 1);
        assert_eq!(limited["data"][0]["id"], A);
        let asc = merge_list(ours, vec![item(B, 20)], &json!({"sortDirection": "asc"}));
        assert_eq!(asc["data"][0]["id"], A);

        // More pages follow: the app-server's items all stay (its cursor starts after them),
        // and only threads ranking ahead of its last one join.
        let c = "01a245dc-0000-7000-8000-000000000001";
        let paged = json!({"data": [item(A, 10)], "nextCursor": "x"});
        let merged = merge_list(
            paged,
            vec![item(B, 20), item(c, 5)],
            &json!({"limit": 1, "sortKey": "updated_at"}),
        );
        assert_eq!(ids(&merged), [B, A]);
    }

    #[test]
    fn maps_rollout_sources_to_v2() {
        assert_eq!(v2_source(Some(&json!("vscode"))), json!("vscode"));
        assert_eq!(v2_source(Some(&json!("mcp"))), json!("appServer"));
        assert_eq!(
            source_kind(Some(&v2_source(Some(&json!({"subagent": "review"}))))),
            "subAgentReview"
        );
        assert_eq!(source_kind(Some(&json!({"custom": "x"}))), "unknown");
    }

    #[test]
    fn reads_codex_timestamps() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-12-05T10:59:02.136Z"),
            Some(1_796_468_342)
        );
        assert_eq!(unix_seconds("garbage"), None);
    }

    #[test]
    fn describes_a_rollout_of_the_real_app_server() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("sessions/2026/12/05");
        std::fs::create_dir_all(&day).unwrap();
        let meta = json!({"timestamp": "2026-12-05T10:59:02.157Z", "type": "session_meta",
            "payload": {"id": A, "session_id": A, "timestamp": "2026-12-05T10:59:02.136Z",
            "cwd": "/w", "originator": "Claude Code", "cli_version": "0.171.0",
            "source": "vscode", "model_provider": "stub"}});
        let ctx = json!({"type": "response_item", "payload": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "<environment_context>x"}]}});
        let user = json!({"type": "response_item", "payload": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "remember the word PAPAYA"}]}});
        let turn = json!({"type": "turn_context", "payload": {"model": "gpt-5"}});
        let text = format!("{meta}\n{ctx}\n{turn}\n{user}\n");
        let file = day.join(format!("rollout-2026-12-05T10-59-02-{A}.jsonl"));
        std::fs::write(&file, text).unwrap();
        std::fs::write(
            dir.path().join("session_index.jsonl"),
            format!("{{\"id\":\"{A}\",\"thread_name\":\"old\"}}\n{{\"id\":\"{A}\",\"thread_name\":\"Codex Companion Task: x\"}}\n"),
        )
        .unwrap();
        let items = home_threads(dir.path(), false);
        assert_eq!(items.len(), 1);
        let t = &items[0];
        assert_eq!(t["id"], A);
        assert_eq!(t["preview"], "remember the word PAPAYA");
        assert_eq!(t["name"], "Codex Companion Task: x");
        assert_eq!(t["createdAt"], 1_796_468_342);
        assert_eq!(t["model"], "gpt-5");
        assert_eq!(t["status"]["type"], "notLoaded");
        assert!(home_threads(dir.path(), true).is_empty());
        let Prepared::List(found) = prepare_list(
            &[dir.path().to_path_buf()],
            &json!({"searchTerm": "Codex Companion", "cwd": "/w"}),
        ) else {
            panic!("not a list")
        };
        assert_eq!(found.len(), 1);
    }

    /// A home holding thread A with `lines` after its `session_meta`.
    fn home_with(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let home = dir.join(name);
        let day = home.join("sessions/2026/12/05");
        std::fs::create_dir_all(&day).unwrap();
        let meta = json!({"timestamp": "2026-12-05T10:00:00.000Z", "type": "session_meta",
            "payload": {"id": A, "timestamp": "2026-12-05T10:00:00.000Z", "cwd": "/w",
            "source": "vscode"}});
        let mut text = format!("{meta}\n");
        for l in lines {
            let item = json!({"timestamp": "2026-12-05T10:00:01.000Z", "type": "response_item",
                "payload": {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": l}]}});
            text.push_str(&format!("{item}\n"));
        }
        let file = day.join(format!("rollout-2026-12-05T10-00-00-{A}.jsonl"));
        std::fs::write(file, text).unwrap();
        home
    }

    fn rollouts(home: &Path) -> Vec<Vec<u8>> {
        let day = home.join("sessions/2026/12/05");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(day)
            .map(|r| {
                r.flatten()
                    .map(|e| std::fs::read(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn a_resume_brings_the_newest_copy_in_and_refuses_diverged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        std::fs::create_dir_all(&own).unwrap();
        let other = home_with(dir.path(), "other", &["one", "two"]);
        let others = std::slice::from_ref(&other);
        let theirs = rollouts(&other);

        // Found nowhere, or not a thread id: the app-server answers.
        assert_eq!(prepare_resume(&own, others, B, false), Prepared::Forward);
        assert_eq!(
            prepare_resume(&own, others, "../x", false),
            Prepared::Forward
        );
        assert!(rollouts(&own).is_empty());

        // Only elsewhere: carried, then forwarded; the other home is left as it was.
        assert_eq!(prepare_resume(&own, others, A, false), Prepared::Forward);
        assert_eq!(rollouts(&own), theirs);
        assert_eq!(rollouts(&other), theirs);

        // Ours is newer (the other's is a prefix of it): nothing moves.
        let newer = home_with(dir.path(), "own2", &["one", "two", "three"]);
        let ours = rollouts(&newer);
        assert_eq!(prepare_resume(&newer, others, A, false), Prepared::Forward);
        assert_eq!(rollouts(&newer), ours);

        assert_eq!(prepare_resume(&newer, others, A, true), Prepared::Forward);

        // Our app-server has an older copy open: nothing is carried under it.
        let stale = home_with(dir.path(), "stale", &["one"]);
        let before = rollouts(&stale);
        let Prepared::Refuse(why) = prepare_resume(&stale, others, A, true) else {
            panic!("an open older copy must not be replaced");
        };
        assert!(why.contains(&other.display().to_string()), "{why}");
        assert!(why.contains(&stale.display().to_string()), "{why}");
        assert_eq!(rollouts(&stale), before);

        // Two copies that diverged: refused, one line naming both files.
        let forked = home_with(dir.path(), "forked", &["one", "else"]);
        let Prepared::Refuse(why) = prepare_resume(&forked, others, A, false) else {
            panic!("a diverged copy must be refused");
        };
        assert!(!why.contains('\n'), "{why}");
        assert!(why.contains(&forked.display().to_string()), "{why}");
        assert!(why.contains(&other.display().to_string()), "{why}");
        assert_eq!(rollouts(&other), theirs);
    }
}
