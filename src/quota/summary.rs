//! One short line about an account's quota, for Claude Code's status line and shell prompts:
//! `work · 5h 42% · wk 17% · resets in 1h20m` (the reset of the tighter window), or
//! `work 5h 42% wk 17%` in the prompt's short form.

use super::Reading;
use crate::sys::clock::human_duration;

/// A reading older than this says its age: it may be out of date.
const OLD_AFTER: i64 = 6 * 3600;

pub fn line(name: &str, reading: Option<&Reading>, now: i64, short: bool) -> String {
    let Some(r) = reading else {
        return if short {
            name.to_string()
        } else {
            format!("{name} · no quota reading yet")
        };
    };
    let sep = if short { " " } else { " · " };
    let mut parts = vec![name.to_string()];
    if r.usage_refused() {
        parts.push("not usable now (Codex)".into());
    }
    let pct = |label: &str, w: &Option<super::Window>| {
        w.as_ref()
            .map(|w| format!("{label} {:.0}%", w.effective_used(now)))
    };
    parts.extend(pct("5h", &r.primary));
    parts.extend(pct("wk", &r.secondary));
    if !short {
        // The window closest to its limit decides when there is room again.
        let tight = [&r.primary, &r.secondary]
            .into_iter()
            .flatten()
            .filter(|w| !w.has_reset(now))
            .max_by(|a, b| a.used_percent.total_cmp(&b.used_percent));
        if let Some(at) = tight.and_then(|w| w.resets_at) {
            parts.push(format!("resets in {}", human_duration(at - now)));
        }
        if now - r.observed_at > OLD_AFTER {
            parts.push(format!("as of {} ago", human_duration(now - r.observed_at)));
        }
    }
    parts.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Source, Window};

    fn r(p: Option<f64>, s: Option<f64>) -> Reading {
        let w = |u: f64, m: u64, at: i64| Window {
            used_percent: u,
            window_minutes: Some(m),
            resets_at: Some(at),
        };
        Reading::new(
            p.map(|u| w(u, 300, 1_000 + 4_800)),
            s.map(|u| w(u, 10_080, 1_000 + 200_000)),
            900,
            Source::Broker { from: "x".into() },
        )
    }

    #[test]
    fn says_both_windows_and_the_tighter_reset() {
        assert_eq!(
            line("work", Some(&r(Some(42.4), Some(17.0))), 1_000, false),
            "work · 5h 42% · wk 17% · resets in 1h20m"
        );
        assert_eq!(
            line("work", Some(&r(Some(10.0), Some(90.0))), 1_000, false),
            "work · 5h 10% · wk 90% · resets in 2d7h"
        );
        assert_eq!(
            line("work", Some(&r(Some(42.4), Some(17.0))), 1_000, true),
            "work 5h 42% wk 17%"
        );
    }

    #[test]
    fn weekly_only_refused_missing_and_old() {
        assert_eq!(
            line("t", Some(&r(None, Some(30.0))), 1_000, true),
            "t wk 30%"
        );
        let mut refused = r(Some(1.0), None);
        refused.ordinary_usage_allowed = Some(false);
        assert_eq!(
            line("t", Some(&refused), 1_000, true),
            "t not usable now (Codex) 5h 1%"
        );
        assert_eq!(line("t", None, 1_000, false), "t · no quota reading yet");
        let old = r(Some(5.0), None);
        assert!(line("t", Some(&old), 900 + 7 * 3600, false).ends_with("as of 7h00m ago"));
    }
}
