//! How much of each account's usage windows is left, from what a codex-as broker saw, what Codex
//! wrote in the account's own home, and (when a choice needs it) its app-server; and how to
//! choose by it.
//!
//! - `sensor`: what a broker calls with every app-server message; keeps `record` up to date.
//! - `snapshot`: Codex's `RateLimitSnapshot`, in the app-server's camelCase and the rollout's
//!   snake_case shapes (0.169 and 0.171 alike).
//! - `record`: the latest snapshot a codex-as broker relayed, per account (the best reading).
//! - `reader`: the latest rate-limit snapshot in a home's session files, with bounded work.
//! - `live`: `account/rateLimits/read` through the account's warm broker, when the best reading
//!   is missing or old and a choice is about to be made.
//! - `choose`: ranking accounts by headroom (pure).
//! - `one_shot`: a reading asked of a short-lived app-server of its own (when the warm broker is
//!   busy); `live` is the reading through the warm broker that falls back to it.
//! - `signals`: recognising "usage limit reached" in what Codex and the companion report.
//! - `survey`: login state and the best reading of each account, gathered for a choice.
//! - `summary`: the one-line form for `statusline` and shell prompts.
//! - `report`: what `codex-as quota` shows: its `--json` document and its table.
//!
//! The calendar arithmetic the readings need is `sys::clock`.

pub mod choose;
pub mod live;
pub mod one_shot;
pub mod reader;
pub mod record;
pub mod report;
pub mod sensor;
pub mod signals;
pub mod snapshot;
pub mod summary;
pub mod survey;

use serde::{Deserialize, Serialize};

/// One usage window (Codex's `RateLimitWindow`), as last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Percent of the window used when the reading was taken.
    pub used_percent: f64,
    /// Length of the window (300 = the 5-hour window, 10080 = the weekly one).
    pub window_minutes: Option<u64>,
    /// When the window resets, Unix seconds (absent when Codex did not say).
    pub resets_at: Option<i64>,
}

impl Window {
    /// A window whose reset time has passed is empty, whatever it said before.
    pub fn has_reset(&self, now: i64) -> bool {
        self.resets_at.is_some_and(|r| r <= now)
    }

    /// What is used now: the reading, or 0 once the window has reset.
    pub fn effective_used(&self, now: i64) -> f64 {
        if self.has_reset(now) {
            0.0
        } else {
            self.used_percent
        }
    }
}

/// Where a reading came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A `token_count` event in one of the account's session files.
    SessionFile { path: std::path::PathBuf },
    /// What a codex-as broker relayed from the account's app-server and recorded; `from` says
    /// which message carried it (`account/rateLimits/updated`, `account/rateLimits/read`, or
    /// `usage-limit failure`).
    Broker { from: String },
    /// `account/rateLimits/read` asked by this command (`--fresh`, or a choice without a recent
    /// reading); `via` is `broker` (the account's warm broker) or `app-server` (one started
    /// for the question).
    AppServer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
}

impl Source {
    /// Short words for tables: "broker", "session file", "app-server".
    pub fn label(&self) -> &'static str {
        match self {
            Source::SessionFile { .. } => "session file",
            Source::Broker { .. } => "broker",
            Source::AppServer { .. } => "app-server",
        }
    }
}

/// Codex's `CreditsSnapshot`: prepaid credits that keep an account usable past its windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credits {
    pub has_credits: bool,
    pub unlimited: bool,
    /// A decimal string, as Codex gives it.
    pub balance: Option<String>,
}

/// The latest rate-limit snapshot known for one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// The 5-hour window (the short one).
    pub primary: Option<Window>,
    /// The weekly window. A weekly-only plan has this one alone, whichever slot Codex used.
    pub secondary: Option<Window>,
    /// `plus`, `pro`, `team`... as Codex reported it with the snapshot.
    pub plan: Option<String>,
    /// When the snapshot was taken, Unix seconds.
    pub observed_at: i64,
    pub source: Source,
    /// `ordinaryUsageAllowed` of `account/rateLimits/read`: false means Codex says the account
    /// may not be used, whatever its percentages; null/absent means Codex did not say.
    #[serde(default)]
    pub ordinary_usage_allowed: Option<bool>,
    #[serde(default)]
    pub credits: Option<Credits>,
    /// `rateLimitReachedType` (`rate_limit_reached`, `workspace_member_credits_depleted`, ...).
    #[serde(default)]
    pub reached_type: Option<String>,
    #[serde(default)]
    pub spend_control_reached: Option<bool>,
}

/// Windows at least this long are the weekly kind, whatever slot Codex put them in.
const LONG_WINDOW_MINUTES: u64 = 24 * 60;

impl Reading {
    /// A reading with windows and nothing else known yet.
    pub fn new(
        primary: Option<Window>,
        secondary: Option<Window>,
        observed_at: i64,
        source: Source,
    ) -> Reading {
        let mut r = Reading {
            primary,
            secondary,
            plan: None,
            observed_at,
            source,
            ordinary_usage_allowed: None,
            credits: None,
            reached_type: None,
            spend_control_reached: None,
        };
        r.sort_windows();
        r
    }

    /// Puts a lone long window in the weekly slot: plans with only a weekly window report it
    /// as `primary`, and calling it the 5-hour one would mislabel every table and message.
    pub fn sort_windows(&mut self) {
        let long = |w: &Option<Window>| {
            w.as_ref()
                .and_then(|w| w.window_minutes)
                .is_some_and(|m| m >= LONG_WINDOW_MINUTES)
        };
        if self.secondary.is_none() && long(&self.primary) {
            self.secondary = self.primary.take();
        }
    }

    /// Codex said the account may not be used now.
    pub fn usage_refused(&self) -> bool {
        self.ordinary_usage_allowed == Some(false)
    }
}
