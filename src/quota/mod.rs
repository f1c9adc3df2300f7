//! How much of each account's usage windows is left, read from what Codex already wrote in the
//! account's own home (and, on request, asked of its app-server), and how to choose by it.
//!
//! - `reader`: the latest rate-limit snapshot in a home's session files, with bounded work.
//! - `choose`: ranking accounts by headroom (pure).
//! - `fresh`: a reading asked of the account's own app-server (`--fresh`).
//! - `signals`: recognising "usage limit reached" in what Codex and the companion report.
//! - `survey`: login state and reading of each account, gathered for a choice.
//!
//! The calendar arithmetic the readings need is `sys::clock`.

pub mod choose;
pub mod fresh;
pub mod reader;
pub mod signals;
pub mod survey;

use serde::Serialize;

/// One usage window (Codex's `RateLimitWindow`), as last reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A `token_count` event in one of the account's session files.
    SessionFile { path: std::path::PathBuf },
    /// `account/rateLimits/read` through the account's own app-server (`--fresh`).
    AppServer,
}

/// The latest rate-limit snapshot known for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The 5-hour window.
    pub primary: Option<Window>,
    /// The weekly window.
    pub secondary: Option<Window>,
    /// `plus`, `pro`, `team`... as Codex reported it with the snapshot.
    pub plan: Option<String>,
    /// When the snapshot was taken, Unix seconds.
    pub observed_at: i64,
    pub source: Source,
}
