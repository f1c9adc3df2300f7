//! Choosing among accounts by quota headroom: a pure function of what is known, so that the
//! choice is testable and `codex-as quota` can show exactly why.
//!
//! Rules:
//! - An account that is not logged in is skipped.
//! - An account with a window (5-hour or weekly) at or above the threshold is skipped: starting
//!   work on it would likely fail part-way. A window whose reset time has passed counts as empty.
//! - The others are tried by headroom, the room left in the tighter of their two windows, most
//!   first; ties keep the given order (the config's `order`).
//! - An account Codex says may not be used (`ordinaryUsageAllowed: false`) is skipped, whatever
//!   its percentages: Codex tells clients not to infer recovery from them.
//! - An account whose broker saw a usage-limit failure after its latest reading is skipped for
//!   `LIMIT_HIT_HOLD` (or until a newer reading says otherwise): the failure is the newer news.
//! - An account with no reading at all (never used here, or its history is unreadable) is tried
//!   after those with a known headroom: unknown is not the same as empty.

use serde::Serialize;

use super::Reading;
use crate::sys::clock::{format_utc, human_duration};

/// Whether an account can be used at all, from its home's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    LoggedIn,
    LoggedOut,
    /// The credentials are where codex-as does not look (the OS keyring): try it.
    Unknown,
}

pub struct Candidate<'a> {
    pub login: Login,
    pub reading: Option<&'a Reading>,
    /// When a codex-as broker last saw this account fail for its usage limit.
    pub limit_hit_at: Option<i64>,
}

/// How long a usage-limit failure seen by a broker keeps an account out when no reading
/// taken since says how long the window has left.
pub const LIMIT_HIT_HOLD: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Primary,
    Secondary,
}

impl WindowKind {
    pub fn label(self) -> &'static str {
        match self {
            WindowKind::Primary => "5-hour",
            WindowKind::Secondary => "weekly",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "reason",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Skip {
    NotLoggedIn,
    /// Codex said `ordinaryUsageAllowed: false`.
    NotAllowed {
        /// `rateLimitReachedType` when Codex gave one.
        reached_type: Option<String>,
    },
    /// A codex-as broker saw a turn fail for the usage limit, after the latest reading.
    LimitReached {
        at: i64,
    },
    /// A window is at or above the threshold.
    NearLimit {
        window: WindowKind,
        used_percent: f64,
        resets_at: Option<i64>,
    },
}

impl Skip {
    /// Why the account is skipped, for people: "not logged in", "5-hour window at 97%, resets
    /// in 2h (...)".
    pub fn describe(&self, now: i64) -> String {
        match self {
            Skip::NotLoggedIn => "not logged in".into(),
            Skip::NotAllowed { reached_type } => {
                let why = reached_type
                    .as_deref()
                    .map(|t| format!(": {}", t.replace('_', " ")))
                    .unwrap_or_default();
                format!("Codex says it may not be used now{why}")
            }
            Skip::LimitReached { at } => format!(
                "usage limit reached {} ago (seen by its broker)",
                human_duration((now - at).max(0))
            ),
            Skip::NearLimit {
                window,
                used_percent,
                resets_at,
            } => {
                let when = resets_at
                    .map(|t| {
                        format!(
                            ", resets in {} ({})",
                            human_duration(t - now),
                            format_utc(t)
                        )
                    })
                    .unwrap_or_default();
                format!("{} window at {used_percent:.0}%{when}", window.label())
            }
        }
    }

    /// Whether it is skipped for its quota (not for being logged out, say): counts toward
    /// "every account is out" (75).
    pub fn is_quota(&self) -> bool {
        !matches!(self, Skip::NotLoggedIn)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    /// Indexes into the candidates, in the order to try them.
    pub order: Vec<usize>,
    /// Indexes of candidates not to try, and why.
    pub skipped: Vec<(usize, Skip)>,
}

/// Room left in the tighter window, in percent; None without a reading.
pub fn headroom(reading: Option<&Reading>, now: i64) -> Option<f64> {
    let r = reading?;
    let used = [&r.primary, &r.secondary]
        .into_iter()
        .flatten()
        .map(|w| w.effective_used(now))
        .fold(0.0_f64, f64::max);
    Some((100.0 - used).max(0.0))
}

/// The window at or above `threshold`, if any (the more used one when both are).
pub fn near_limit(reading: &Reading, threshold: f64, now: i64) -> Option<Skip> {
    [
        (WindowKind::Primary, &reading.primary),
        (WindowKind::Secondary, &reading.secondary),
    ]
    .into_iter()
    .filter_map(|(k, w)| w.as_ref().map(|w| (k, w)))
    .filter(|(_, w)| w.effective_used(now) >= threshold)
    .max_by(|a, b| a.1.used_percent.total_cmp(&b.1.used_percent))
    .map(|(window, w)| Skip::NearLimit {
        window,
        used_percent: w.used_percent,
        resets_at: w.resets_at,
    })
}

/// Why an account is not to be tried at all, if it is not: the skipping rules above.
pub fn skip_reason(candidate: &Candidate<'_>, threshold: f64, now: i64) -> Option<Skip> {
    if candidate.login == Login::LoggedOut {
        return Some(Skip::NotLoggedIn);
    }
    if let Some(r) = candidate.reading
        && r.usage_refused()
    {
        return Some(Skip::NotAllowed {
            reached_type: r.reached_type.clone(),
        });
    }
    // The window's own figures say when it resets: they come before a bare failure.
    if let Some(skip) = candidate
        .reading
        .and_then(|r| near_limit(r, threshold, now))
    {
        return Some(skip);
    }
    candidate
        .limit_hit_at
        .filter(|at| {
            candidate.reading.is_none_or(|r| r.observed_at <= *at) && now - at < LIMIT_HIT_HOLD
        })
        .map(|at| Skip::LimitReached { at })
}

pub fn choose(candidates: &[Candidate<'_>], threshold: f64, now: i64) -> Choice {
    let mut choice = Choice::default();
    let mut known: Vec<(usize, f64)> = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if let Some(skip) = skip_reason(c, threshold, now) {
            choice.skipped.push((i, skip));
            continue;
        }
        match c.reading {
            Some(r) => known.push((i, headroom(Some(r), now).unwrap_or(0.0))),
            None => unknown.push(i),
        }
    }
    // Stable: equal headroom keeps the configured order.
    known.sort_by(|a, b| b.1.total_cmp(&a.1));
    choice.order = known.into_iter().map(|(i, _)| i).chain(unknown).collect();
    choice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Source, Window};

    const NOW: i64 = 1_000_000;

    fn reading(p: f64, s: f64, resets_at: i64) -> Reading {
        let w = |used| Window {
            used_percent: used,
            window_minutes: Some(300),
            resets_at: Some(resets_at),
        };
        let mut r = Reading::new(Some(w(p)), None, NOW - 60, Source::AppServer { via: None });
        r.secondary = Some(w(s));
        r
    }

    fn cand(login: Login, reading: Option<&Reading>) -> Candidate<'_> {
        Candidate {
            login,
            reading,
            limit_hit_at: None,
        }
    }

    #[test]
    fn codex_refusal_wins_over_room_and_a_broker_seen_failure_holds() {
        let mut refused = reading(1.0, 1.0, NOW + 100);
        refused.ordinary_usage_allowed = Some(false);
        refused.reached_type = Some("workspace_member_usage_limit_reached".into());
        let mut allowed = reading(50.0, 50.0, NOW + 100);
        allowed.ordinary_usage_allowed = Some(true);
        let hit = reading(10.0, 10.0, NOW + 100);
        let cs = [
            cand(Login::LoggedIn, Some(&refused)),
            cand(Login::LoggedIn, Some(&allowed)),
            Candidate {
                limit_hit_at: Some(NOW - 30),
                ..cand(Login::LoggedIn, Some(&hit))
            },
            Candidate {
                limit_hit_at: Some(NOW - LIMIT_HIT_HOLD - 1),
                ..cand(Login::LoggedIn, None)
            },
        ];
        let got = choose(&cs, 95.0, NOW);
        assert_eq!(got.order, [1, 3]);
        assert_eq!(
            got.skipped,
            [
                (
                    0,
                    Skip::NotAllowed {
                        reached_type: Some("workspace_member_usage_limit_reached".into())
                    }
                ),
                (2, Skip::LimitReached { at: NOW - 30 })
            ]
        );
    }

    #[test]
    fn a_weekly_only_plan_is_ranked_by_its_one_window() {
        let mut weekly = reading(0.0, 0.0, NOW + 100);
        weekly.primary = None;
        weekly.secondary.as_mut().unwrap().used_percent = 96.0;
        let mut weekly_ok = weekly.clone();
        weekly_ok.secondary.as_mut().unwrap().used_percent = 40.0;
        let cs = [
            cand(Login::LoggedIn, Some(&weekly)),
            cand(Login::LoggedIn, Some(&weekly_ok)),
        ];
        let got = choose(&cs, 95.0, NOW);
        assert_eq!(got.order, [1]);
        assert!(matches!(
            got.skipped[0],
            (
                0,
                Skip::NearLimit {
                    window: WindowKind::Secondary,
                    ..
                }
            )
        ));
        assert_eq!(headroom(Some(&weekly_ok), NOW), Some(60.0));
    }

    #[test]
    fn most_room_in_the_tighter_window_first() {
        let a = reading(10.0, 80.0, NOW + 100); // room 20
        let b = reading(50.0, 50.0, NOW + 100); // room 50
        let c = reading(30.0, 5.0, NOW + 100); // room 70
        let cs = [
            cand(Login::LoggedIn, Some(&a)),
            cand(Login::LoggedIn, Some(&b)),
            cand(Login::Unknown, Some(&c)),
        ];
        let got = choose(&cs, 95.0, NOW);
        assert_eq!(got.order, [2, 1, 0]);
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn skips_logged_out_and_near_limit_and_tries_unknown_last() {
        let full = reading(96.0, 10.0, NOW + 100);
        let weekly = reading(10.0, 95.0, NOW + 100);
        let ok = reading(90.0, 90.0, NOW + 100);
        let cs = [
            cand(Login::LoggedOut, Some(&ok)),
            cand(Login::LoggedIn, None),
            cand(Login::LoggedIn, Some(&full)),
            cand(Login::LoggedIn, Some(&weekly)),
            cand(Login::LoggedIn, Some(&ok)),
        ];
        let got = choose(&cs, 95.0, NOW);
        assert_eq!(got.order, [4, 1]);
        assert_eq!(got.skipped[0], (0, Skip::NotLoggedIn));
        assert!(matches!(
            got.skipped[1],
            (
                2,
                Skip::NearLimit {
                    window: WindowKind::Primary,
                    ..
                }
            )
        ));
        assert!(matches!(
            got.skipped[2],
            (
                3,
                Skip::NearLimit {
                    window: WindowKind::Secondary,
                    ..
                }
            )
        ));
    }

    #[test]
    fn a_window_past_its_reset_is_empty() {
        let stale_full = reading(100.0, 100.0, NOW - 1);
        let half = reading(50.0, 50.0, NOW + 100);
        let cs = [
            cand(Login::LoggedIn, Some(&half)),
            cand(Login::LoggedIn, Some(&stale_full)),
        ];
        let got = choose(&cs, 95.0, NOW);
        assert_eq!(got.order, [1, 0], "the reset account has all its room back");
        assert_eq!(headroom(Some(&stale_full), NOW), Some(100.0));
    }

    #[test]
    fn ties_keep_the_given_order_and_threshold_is_inclusive() {
        let a = reading(20.0, 20.0, NOW + 100);
        let b = reading(20.0, 20.0, NOW + 100);
        let cs = [
            cand(Login::LoggedIn, Some(&a)),
            cand(Login::LoggedIn, Some(&b)),
        ];
        assert_eq!(choose(&cs, 95.0, NOW).order, [0, 1]);
        assert_eq!(choose(&cs, 20.0, NOW).order, Vec::<usize>::new());
    }
}
