//! The report of `codex-as quota`: each account's usage windows from the best reading known (a
//! codex-as broker's record, the session files, or with `--fresh` the account's app-server now)
//! and what `auto` would do with them, as the `--json` document and as a table fitted to the
//! terminal.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::choose::{self, Skip};
use super::survey::{self, Survey};
use super::{Credits, Source, Window};
use crate::account::Accounts;
use crate::account::login_state::LoginState;
use crate::sys::clock::{format_utc, human_duration};
use crate::sys::table::{Column, Table, cut};

/// Version of the `--json` document; bumped only when a field changes meaning or goes away.
const SCHEMA: u32 = 1;

/// `codex-as quota --json`. Keys are camelCase, like `brokers --json` and Codex's app-server
/// (docs/fallback.md); the snake_case keys of the first release are emitted beside them until
/// the next one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    schema: u32,
    /// When the document was made, Unix seconds.
    now: i64,
    /// The `auto` threshold in percent.
    threshold: f64,
    /// Account names in the order `auto` would try them.
    auto_order: Vec<String>,
    accounts: Vec<Row>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: String,
    home: PathBuf,
    login: LoginState,
    plan: Option<String>,
    primary: Option<WindowRow>,
    secondary: Option<WindowRow>,
    observed_at: Option<i64>,
    age_seconds: Option<i64>,
    source: Option<Source>,
    headroom_percent: Option<f64>,
    /// Codex's `ordinaryUsageAllowed`, when it said.
    ordinary_usage_allowed: Option<bool>,
    credits: Option<Credits>,
    /// Codex's `rateLimitReachedType`.
    reached_type: Option<String>,
    /// When a codex-as broker last saw a turn fail for the usage limit.
    limit_hit_at: Option<i64>,
    /// Position in `autoOrder` (1 = first), or null when `auto` skips the account.
    auto_rank: Option<usize>,
    auto_skip: Option<Skip>,
    files_examined: usize,
    /// With `--fresh`: why no fresh reading was taken (the other readings are kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    fresh_error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowRow {
    used_percent: f64,
    /// 0 once the window has reset; what `auto` uses.
    effective_used_percent: f64,
    window_minutes: Option<u64>,
    resets_at: Option<i64>,
    /// True when `resetsAt` has passed: the reading is stale and the window empty.
    reset: bool,
}

fn window_row(w: &Option<Window>, now: i64) -> Option<WindowRow> {
    w.as_ref().map(|w| WindowRow {
        used_percent: w.used_percent,
        effective_used_percent: w.effective_used(now),
        window_minutes: w.window_minutes,
        resets_at: w.resets_at,
        reset: w.has_reset(now),
    })
}

/// Every account's reading as of `now`; with `fresh`, each account with limits to read is
/// asked now (max age 0).
pub fn gather(accounts: &Accounts, fresh: bool, now: i64) -> Report {
    let threshold = accounts.config.quota.threshold();
    let live = fresh.then_some(std::time::Duration::ZERO);
    let surveys = survey::gather(accounts, accounts.all(), live, now);
    let choice = survey::choose_among(&surveys, threshold, now);
    let rows: Vec<Row> = surveys
        .iter()
        .enumerate()
        .map(|(i, s)| row(s, i, &choice, now, fresh))
        .collect();
    Report {
        schema: SCHEMA,
        now,
        threshold,
        auto_order: choice
            .order
            .iter()
            .map(|i| surveys[*i].account.name.clone())
            .collect(),
        accounts: rows,
    }
}

impl Report {
    /// The `--json` document, legacy keys included.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut v = serde_json::to_value(self)?;
        add_legacy_keys(&mut v);
        serde_json::to_string_pretty(&v)
    }

    /// The table, fitted to `width`: the full one when it fits, else without UTC times, then
    /// without the columns that matter least (PLAN, LOGIN, the reset times, AGE, SOURCE); then
    /// a note per account with something more to say, and the footer.
    pub fn render(&self, width: Option<usize>) -> String {
        let full = Table::new(&COLUMNS).rows(self.cells(false)).render(None);
        let fits = |t: &str, w: usize| t.lines().all(|l| l.chars().count() <= w);
        let mut out = match width {
            Some(w) if !fits(&full, w) => Table::new(&COLUMNS).rows(self.cells(true)).render(width),
            _ => full,
        };
        for n in self.notes() {
            out.push_str(&cut(&n, width));
            out.push('\n');
        }
        let foot = format!(
            "`auto` skips a window at or above {:.0}%; `--fresh` asks Codex now; `--json` has it all.",
            self.threshold
        );
        out.push_str(&cut(&foot, width));
        out.push('\n');
        out
    }

    /// The table's cells; `compact` leaves out the UTC times (the durations stay).
    fn cells(&self, compact: bool) -> Vec<Vec<String>> {
        self.accounts
            .iter()
            .map(|r| {
                let auto = match (&r.auto_rank, &r.auto_skip) {
                    (Some(n), _) => format!("#{n}"),
                    (None, Some(s)) if compact => {
                        format!("skip: {}", without_utc(&s.describe(self.now)))
                    }
                    (None, Some(s)) => format!("skip: {}", s.describe(self.now)),
                    (None, None) => "-".into(),
                };
                vec![
                    r.name.clone(),
                    r.login.describe().into(),
                    r.plan.clone().unwrap_or_else(|| "-".into()),
                    pct(&r.primary),
                    resets(&r.primary, self.now, compact),
                    pct(&r.secondary),
                    resets(&r.secondary, self.now, compact),
                    r.age_seconds
                        .map(|a| format!("{} ago", human_duration(a)))
                        .unwrap_or_else(|| "no reading".into()),
                    r.source.as_ref().map_or("-", Source::label).to_string(),
                    auto,
                ]
            })
            .collect()
    }

    /// One line per account with credits, Codex's own word on its limit, or a failed fresh
    /// reading.
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        for r in &self.accounts {
            let mut parts: Vec<String> = Vec::new();
            if let Some(c) = &r.credits
                && (c.has_credits || c.unlimited)
            {
                parts.push(if c.unlimited {
                    "credits: unlimited".into()
                } else {
                    format!("credits: {}", c.balance.as_deref().unwrap_or("yes"))
                });
            }
            if let Some(t) = &r.reached_type {
                parts.push(format!("Codex reports {}", t.replace('_', " ")));
            }
            if let Some(e) = &r.fresh_error {
                parts.push(format!("no fresh reading: {e}"));
            }
            if !parts.is_empty() {
                notes.push(format!("{}: {}", r.name, parts.join("; ")));
            }
        }
        notes
    }
}

fn row(s: &Survey, i: usize, choice: &choose::Choice, now: i64, fresh: bool) -> Row {
    let r = s.reading();
    Row {
        name: s.account.name.clone(),
        home: s.account.canonical_home(),
        login: s.login,
        plan: r.and_then(|r| r.plan.clone()),
        primary: r.and_then(|r| window_row(&r.primary, now)),
        secondary: r.and_then(|r| window_row(&r.secondary, now)),
        observed_at: r.map(|r| r.observed_at),
        age_seconds: r.map(|r| (now - r.observed_at).max(0)),
        source: r.map(|r| r.source.clone()),
        headroom_percent: choose::headroom(r, now),
        ordinary_usage_allowed: r.and_then(|r| r.ordinary_usage_allowed),
        credits: r.and_then(|r| r.credits.clone()),
        reached_type: r.and_then(|r| r.reached_type.clone()),
        limit_hit_at: s
            .record
            .as_ref()
            .and_then(|r| r.limit_hit.as_ref())
            .map(|h| h.at),
        auto_rank: choice.order.iter().position(|j| *j == i).map(|p| p + 1),
        auto_skip: choice
            .skipped
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, s)| s.clone()),
        files_examined: s.scan.files_examined,
        fresh_error: if fresh {
            match (s.login, &s.live_error) {
                (_, Some(e)) => Some(e.clone()),
                (LoginState::ApiKey | LoginState::LoggedOut | LoginState::Other, _) => {
                    Some("rate limits are only readable for a ChatGPT login".into())
                }
                _ => None,
            }
        } else {
            None
        },
    }
}

/// Adds the snake_case spelling of every camelCase key (the first release's keys), so scripts
/// written against it keep working for one more release.
fn add_legacy_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let extra: Vec<(String, Value)> = map
                .iter()
                .filter(|(k, _)| k.chars().any(|c| c.is_ascii_uppercase()))
                .map(|(k, v)| (snake(k), v.clone()))
                .collect();
            for v in map.values_mut() {
                add_legacy_keys(v);
            }
            for (k, mut v) in extra {
                add_legacy_keys(&mut v);
                map.entry(k).or_insert(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(add_legacy_keys),
        _ => {}
    }
}

fn snake(k: &str) -> String {
    let mut out = String::with_capacity(k.len() + 4);
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn pct(w: &Option<WindowRow>) -> String {
    match w {
        None => "-".into(),
        Some(w) if w.reset => format!("0% (was {:.0}%)", w.used_percent),
        Some(w) => format!("{:.0}%", w.used_percent),
    }
}

fn resets(w: &Option<WindowRow>, now: i64, compact: bool) -> String {
    match w.as_ref().and_then(|w| w.resets_at.map(|t| (t, w.reset))) {
        None => "-".into(),
        Some((_, true)) => "reset".into(),
        Some((t, false)) if compact => format!("in {}", human_duration(t - now)),
        Some((t, false)) => format!("in {} ({})", human_duration(t - now), format_utc(t)),
    }
}

/// Drops the ` (2026-01-10T12:00:00Z)` times from a text, for a narrow terminal.
fn without_utc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (") {
        let tail = &rest[i + 2..];
        let is_time = tail.len() >= 21
            && tail.as_bytes()[20] == b')'
            && tail.as_bytes()[19] == b'Z'
            && tail.as_bytes()[10] == b'T';
        out.push_str(&rest[..i]);
        if is_time {
            rest = &tail[21..];
        } else {
            out.push_str(" (");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

const COLUMNS: [Column; 10] = [
    Column::new("ACCOUNT"),
    Column::new("LOGIN").drop_rank(2),
    Column::new("PLAN").drop_rank(1),
    Column::new("5H USED"),
    Column::new("5H RESETS").drop_rank(3),
    Column::new("WEEK USED"),
    Column::new("WEEK RESETS").drop_rank(4),
    Column::new("AGE").drop_rank(5),
    Column::new("SOURCE").drop_rank(6),
    Column::new("AUTO"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn narrow_tables_lose_utc_times_first() {
        assert_eq!(
            without_utc("weekly window at 97%, resets in 1d1h (2026-11-29T20:50:45Z)"),
            "weekly window at 97%, resets in 1d1h"
        );
        assert_eq!(without_utc("a (b) c"), "a (b) c");
        assert_eq!(without_utc("x (2026-11-29T20:50:45Z) y (z)"), "x y (z)");
    }

    #[test]
    fn legacy_keys_sit_beside_the_camel_case_ones() {
        let mut v = json!({"autoOrder": ["a"], "accounts": [{"ageSeconds": 3, "name": "a",
            "primary": {"usedPercent": 1.0}, "autoSkip": {"reason": "near-limit", "usedPercent": 2}}]});
        add_legacy_keys(&mut v);
        assert_eq!(v["auto_order"], json!(["a"]));
        assert_eq!(v["accounts"][0]["age_seconds"], json!(3));
        assert_eq!(v["accounts"][0]["primary"]["used_percent"], json!(1.0));
        assert_eq!(v["accounts"][0]["auto_skip"]["used_percent"], json!(2));
        assert_eq!(v["accounts"][0]["autoSkip"]["usedPercent"], json!(2));
        assert!(v["accounts"][0].get("name").is_some());
    }
}
