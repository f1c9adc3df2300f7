//! Recognising "this account's usage limit is reached" in what Codex and the plugin's
//! companion report, and nothing else: a real failure retried on another account wastes that
//! account's quota, so every match here is narrow and anchored.
//!
//! The signals, and where each comes from (Codex CLI 0.169.0, codex-rs; plugin 1.0.5):
//! - App-server v2 `codexErrorInfo: "usageLimitExceeded"` on the `error` notification and on
//!   `turn/completed`'s `turn.error`: codex-rs app-server-protocol maps `CodexErr::
//!   UsageLimitReached` (HTTP 429 `usage_limit_reached`), `UsageNotIncluded` (`usage_not_included`)
//!   and `QuotaExceeded` (stream `insufficient_quota`) to it. The companion drops this field, so
//!   it is only seen by whoever holds the app-server connection: codex-as's broker records each
//!   such `turn/completed` with the client's pid and reports it in `broker/status`
//!   (`usageLimitHits`); the fallback asks after the companion exits.
//! - The display texts of those errors (codex-rs core `error.rs`), which become the turn error's
//!   `message`, `codex exec`'s `ERROR: ...` line on stderr and the TUI's `■ ...` line:
//!   - "You've hit your usage limit..." (UsageLimitReached, every plan variant: "Upgrade to
//!     Pro...", "To get more access now, send a request to your admin...", "...try again at
//!     3:15 PM.");
//!   - "Your workspace is out of credits..." / "You're out of credits..." and "You hit your
//!     spend cap..." (workspace credit and spend-control variants of UsageLimitReached);
//!   - "Quota exceeded. Check your plan and billing details." (QuotaExceeded);
//!   - "To use Codex with your ChatGPT plan, upgrade to Plus..." (UsageNotIncluded: this
//!     account's plan has no Codex usage; another account's may).
//! - The companion's job record `<state dir>/jobs/<id>.json` (plugin `lib/tracked-jobs.mjs`,
//!   `runTrackedJob`): `status: "failed"`, and `rendered` = the turn error's message when Codex
//!   gave no final message (`renderTaskResult`: `failureMessage = result.error?.message ??
//!   result.stderr`), or `errorMessage` when the run threw. The same text is what the companion
//!   prints on stdout, whether it used the broker or its own directly spawned app-server.

// Whether a turn failed for the usage limit is part of the wire format:
// `broker::protocol::is_usage_limit_turn`, used by codex-as's broker and the quota sensor alike.

/// How the texts of Codex's quota errors begin.
pub const MESSAGE_PREFIXES: &[&str] = &[
    "You've hit your usage limit",
    "Your workspace is out of credits",
    "You're out of credits",
    "You hit your spend cap",
    "Quota exceeded. Check your plan and billing details",
    "To use Codex with your ChatGPT plan, upgrade to Plus",
];

/// What front-ends put before an error text on its line: `codex exec`'s `ERROR: `, the TUI's
/// `■ `, the companion's nothing.
const LINE_MARKERS: &[&str] = &["ERROR: ", "Error: ", "error: ", "■ "];

/// True when the message itself is one of Codex's quota errors (it must begin with one).
pub fn is_usage_limit_message(message: &str) -> bool {
    let m = message.trim_start();
    let m = LINE_MARKERS
        .iter()
        .find_map(|p| m.strip_prefix(p))
        .unwrap_or(m)
        .trim_start();
    // Curly apostrophes appear when a message is retyped or re-rendered.
    let m = m.replace('\u{2019}', "'");
    MESSAGE_PREFIXES.iter().any(|p| m.starts_with(p))
}

/// True when one line of a program's output reports a quota error.
pub fn is_usage_limit_line(line: &str) -> bool {
    is_usage_limit_message(line)
}

/// True when the first meaningful line of a failure text reports a quota error: the companion's
/// rendered failure is the error message alone, so a report that merely mentions one further
/// down is not a match.
pub fn is_usage_limit_report(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(is_usage_limit_message)
}

/// The reset hint in a usage-limit message ("try again at 3:15 PM."), for the final note.
pub fn retry_hint(message: &str) -> Option<String> {
    // ASCII lowering keeps byte offsets, so `i` indexes `message` too.
    let i = message.to_ascii_lowercase().find("try again")?;
    let hint = message[i..].lines().next()?.trim().trim_end_matches('.');
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_codex_quota_texts() {
        for m in [
            "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at 3:15 PM.",
            "You've hit your usage limit. To get more access now, send a request to your admin or try again in 3 days 6 hours 57 minutes.",
            "ERROR: You've hit your usage limit. Try again later.",
            "■ You\u{2019}ve hit your usage limit.",
            "Your workspace is out of credits. Add credits to continue.",
            "You hit your spend cap set in your workspace. Increase your spend cap to continue.",
            "Quota exceeded. Check your plan and billing details.",
            "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.",
        ] {
            assert!(is_usage_limit_message(m), "{m}");
        }
    }

    #[test]
    fn ignores_other_failures_and_mere_mentions() {
        for m in [
            "fake codex: the turn failed",
            "stream disconnected before completion",
            "Rate limit reached for requests",
            "The review found: handle the case where you've hit your usage limit",
            "I fixed the message \"You've hit your usage limit\" in src/errors.rs",
            "",
        ] {
            assert!(!is_usage_limit_message(m), "{m}");
        }
        assert!(!is_usage_limit_report(
            "# Review\n\nYou've hit your usage limit is shown twice.\n"
        ));
        assert!(is_usage_limit_report(
            "\nYou've hit your usage limit. Try again later.\n"
        ));
    }

    #[test]
    fn finds_the_retry_hint() {
        assert_eq!(
            retry_hint("You've hit your usage limit. Visit x or try again at 3:15 PM.").as_deref(),
            Some("try again at 3:15 PM")
        );
        assert_eq!(
            retry_hint("ERROR: You've hit your usage limit. Try again later.").as_deref(),
            Some("Try again later")
        );
        assert_eq!(retry_hint("Quota exceeded."), None);
    }
}
