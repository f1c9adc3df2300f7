//! `codex-as quota [--json] [--fresh]`: each account's usage windows, as last reported by Codex
//! in the account's own session files (or, with `--fresh`, by its app-server now), and what
//! `auto` would do with them.

use std::path::PathBuf;

use serde::Serialize;

use crate::account::Accounts;
use crate::account::login_state::LoginState;
use crate::cli::QuotaArgs;
use crate::error::status;
use crate::quota::choose::{self, Skip};
use crate::quota::fresh;
use crate::quota::survey::{self, Survey};
use crate::quota::{Source, Window};
use crate::sys::clock::{format_utc, human_duration, now};

/// Version of the `--json` document; bumped only when a field changes meaning or goes away.
const SCHEMA: u32 = 1;

/// `codex-as quota --json`. Field names are a stable interface (docs/fallback.md).
#[derive(Debug, Serialize)]
struct Doc {
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
    /// Position in `auto_order` (1 = first), or null when `auto` skips the account.
    auto_rank: Option<usize>,
    auto_skip: Option<Skip>,
    files_examined: usize,
    /// With `--fresh`: why no fresh reading was taken (the session-file reading is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    fresh_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct WindowRow {
    used_percent: f64,
    /// 0 once the window has reset; what `auto` uses.
    effective_used_percent: f64,
    window_minutes: Option<u64>,
    resets_at: Option<i64>,
    /// True when `resets_at` has passed: the reading is stale and the window empty.
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

pub fn run(args: QuotaArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let threshold = accounts.config.quota.threshold();
    let now = now();
    let mut surveys: Vec<Survey> = accounts.all().into_iter().map(Survey::of).collect();
    let fresh_errors: Vec<Option<String>> = if args.fresh {
        fresh::refresh(&mut surveys)
    } else {
        vec![None; surveys.len()]
    };
    let choice = survey::choose_among(&surveys, threshold, now);
    let rows: Vec<Row> = surveys
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let r = s.scan.reading.as_ref();
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
                auto_rank: choice.order.iter().position(|j| *j == i).map(|p| p + 1),
                auto_skip: choice
                    .skipped
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, s)| s.clone()),
                files_examined: s.scan.files_examined,
                fresh_error: fresh_errors[i].clone(),
            }
        })
        .collect();
    let doc = Doc {
        schema: SCHEMA,
        now,
        threshold,
        auto_order: choice
            .order
            .iter()
            .map(|i| surveys[*i].account.name.clone())
            .collect(),
        accounts: rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", table(&doc));
    }
    Ok(status::OK)
}

fn pct(w: &Option<WindowRow>) -> String {
    match w {
        None => "-".into(),
        Some(w) if w.reset => format!("0% (was {:.0}%)", w.used_percent),
        Some(w) => format!("{:.0}%", w.used_percent),
    }
}

fn resets(w: &Option<WindowRow>, now: i64) -> String {
    match w.as_ref().and_then(|w| w.resets_at.map(|t| (t, w.reset))) {
        None => "-".into(),
        Some((_, true)) => "reset".into(),
        Some((t, false)) => format!("in {} ({})", human_duration(t - now), format_utc(t)),
    }
}

fn table(doc: &Doc) -> String {
    let mut rows = vec![
        [
            "ACCOUNT",
            "LOGIN",
            "PLAN",
            "5H USED",
            "5H RESETS",
            "WEEK USED",
            "WEEK RESETS",
            "AGE",
            "SOURCE",
            "AUTO",
        ]
        .map(String::from),
    ];
    for r in &doc.accounts {
        let auto = match (&r.auto_rank, &r.auto_skip) {
            (Some(n), _) => format!("#{n}"),
            (None, Some(s)) => format!("skip: {}", s.describe(doc.now)),
            (None, None) => "-".into(),
        };
        rows.push([
            r.name.clone(),
            r.login.describe().into(),
            r.plan.clone().unwrap_or_else(|| "-".into()),
            pct(&r.primary),
            resets(&r.primary, doc.now),
            pct(&r.secondary),
            resets(&r.secondary, doc.now),
            r.age_seconds
                .map(|a| format!("{} ago", human_duration(a)))
                .unwrap_or_else(|| "no reading".into()),
            match &r.source {
                Some(Source::SessionFile { .. }) => "session file".into(),
                Some(Source::AppServer) => "app-server".into(),
                None => "-".into(),
            },
            auto,
        ]);
    }
    let widths: Vec<usize> = (0..10)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    // A fresh reading that failed leaves the session-file one in the table: say so, per account.
    for r in &doc.accounts {
        if let Some(e) = &r.fresh_error {
            out.push_str(&format!("{}: no fresh reading: {e}\n", r.name));
        }
    }
    out.push_str(&format!(
        "Readings come from each account's latest session file (`--json` shows which; `--fresh` asks Codex); `auto` skips a window at or above {:.0}%.\n",
        doc.threshold
    ));
    out
}
