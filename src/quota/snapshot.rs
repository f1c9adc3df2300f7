//! Codex's `RateLimitSnapshot`, read from either of the two shapes it travels in:
//!
//! - the app-server v2 protocol (camelCase): `account/rateLimits/read` answers
//!   `{ordinaryUsageAllowed, rateLimits: Snapshot, rateLimitsByLimitId: {id: Snapshot}|null, ...}`
//!   and `account/rateLimits/updated` carries `{rateLimits: Snapshot}`, where Snapshot is
//!   `{limitId, limitName, primary, secondary: {usedPercent, windowDurationMins, resetsAt}|null,
//!   credits: {hasCredits, unlimited, balance}|null, planType, rateLimitReachedType,
//!   spendControlReached, individualLimit, normalModelSlug}` (identical in 0.169.0 and 0.171.0,
//!   from `codex app-server generate-ts`);
//! - the rollout's `token_count` event (snake_case): `rate_limits: {limit_id, primary:
//!   {used_percent, window_minutes, resets_at}, credits: {has_credits, ...}, plan_type,
//!   rate_limit_reached_type, ...}`, or `null` (openai/codex#14880); releases before `resets_at`
//!   wrote `resets_in_seconds`, relative to the line's timestamp.
//!
//! Only the `codex` bucket is the account's Codex quota; other limit ids (per-model buckets) are
//! not read as it.

use serde_json::Value;

use super::{Credits, Reading, Source, Window};

#[derive(Clone, Copy)]
pub enum Shape {
    /// App-server v2.
    Camel,
    /// Rollout files.
    Snake,
}

struct Keys {
    limit_id: &'static str,
    used: &'static str,
    minutes: &'static str,
    resets: &'static str,
    plan: &'static str,
    has_credits: &'static str,
    reached: &'static str,
    spend: &'static str,
}

const CAMEL: Keys = Keys {
    limit_id: "limitId",
    used: "usedPercent",
    minutes: "windowDurationMins",
    resets: "resetsAt",
    plan: "planType",
    has_credits: "hasCredits",
    reached: "rateLimitReachedType",
    spend: "spendControlReached",
};

const SNAKE: Keys = Keys {
    limit_id: "limit_id",
    used: "used_percent",
    minutes: "window_minutes",
    resets: "resets_at",
    plan: "plan_type",
    has_credits: "has_credits",
    reached: "rate_limit_reached_type",
    spend: "spend_control_reached",
};

/// The limit id of the account's Codex quota.
pub const CODEX_LIMIT_ID: &str = "codex";

/// A snapshot object as a reading; None when it is not the Codex bucket or has no window.
pub fn parse(snap: &Value, shape: Shape, observed_at: i64, source: Source) -> Option<Reading> {
    let k = match shape {
        Shape::Camel => &CAMEL,
        Shape::Snake => &SNAKE,
    };
    if !snap.is_object() {
        return None;
    }
    if let Some(id) = snap.get(k.limit_id).and_then(Value::as_str)
        && id != CODEX_LIMIT_ID
    {
        return None;
    }
    let window = |key: &str| -> Option<Window> {
        let w = snap.get(key).filter(|w| w.is_object())?;
        // Codex writes 0..=100; anything below 0 would only inflate an account's headroom.
        let used_percent = w.get(k.used)?.as_f64()?.max(0.0);
        let resets_at = w.get(k.resets).and_then(Value::as_i64).or_else(|| {
            w.get("resets_in_seconds")
                .and_then(Value::as_i64)
                .map(|s| observed_at + s)
        });
        Some(Window {
            used_percent,
            window_minutes: w.get(k.minutes).and_then(Value::as_u64),
            resets_at,
        })
    };
    let (primary, secondary) = (window("primary"), window("secondary"));
    if primary.is_none() && secondary.is_none() {
        return None;
    }
    let mut r = Reading::new(primary, secondary, observed_at, source);
    r.plan = snap.get(k.plan).and_then(Value::as_str).map(String::from);
    r.credits = snap.get("credits").and_then(|c| {
        Some(Credits {
            has_credits: c.get(k.has_credits)?.as_bool()?,
            unlimited: c.get("unlimited").and_then(Value::as_bool).unwrap_or(false),
            balance: c.get("balance").and_then(Value::as_str).map(String::from),
        })
    });
    r.reached_type = snap
        .get(k.reached)
        .and_then(Value::as_str)
        .map(String::from);
    r.spend_control_reached = snap.get(k.spend).and_then(Value::as_bool);
    Some(r)
}

/// The reading in an `account/rateLimits/read` result: the single-bucket view, or the `codex`
/// bucket when that view is empty; with `ordinaryUsageAllowed`.
pub fn parse_read_result(result: &Value, observed_at: i64, source: Source) -> Option<Reading> {
    let single = result
        .get("rateLimits")
        .and_then(|s| parse(s, Shape::Camel, observed_at, source.clone()));
    let mut r = single.or_else(|| {
        parse(
            result.pointer("/rateLimitsByLimitId/codex")?,
            Shape::Camel,
            observed_at,
            source,
        )
    })?;
    r.ordinary_usage_allowed = result.get("ordinaryUsageAllowed").and_then(Value::as_bool);
    Some(r)
}

/// True when a JSON-RPC result has the shape of an `account/rateLimits/read` answer (a broker
/// sees answers without their method).
pub fn is_read_result(result: &Value) -> bool {
    result.get("rateLimits").is_some_and(Value::is_object)
        && result.as_object().is_some_and(|o| {
            o.contains_key("rateLimitsByLimitId") || o.contains_key("ordinaryUsageAllowed")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src() -> Source {
        Source::AppServer { via: None }
    }

    #[test]
    fn reads_the_v2_answer_of_0_171_with_credits_and_permission() {
        let r = parse_read_result(
            &json!({"ordinaryUsageAllowed": false,
                    "rateLimits": {"limitId": "codex", "limitName": null, "normalModelSlug": null,
                        "primary": {"usedPercent": 12, "windowDurationMins": 300, "resetsAt": 99},
                        "secondary": {"usedPercent": 40.5, "windowDurationMins": 10080, "resetsAt": 999},
                        "credits": {"hasCredits": true, "unlimited": false, "balance": "12.50"},
                        "individualLimit": null, "spendControlReached": false, "planType": "pro",
                        "rateLimitReachedType": "workspace_member_credits_depleted"},
                    "rateLimitsByLimitId": null, "rateLimitResetCredits": null, "accountId": null,
                    "rateLimitUpsell": null}),
            5,
            src(),
        )
        .unwrap();
        assert_eq!(r.primary.as_ref().unwrap().used_percent, 12.0);
        assert_eq!(r.secondary.as_ref().unwrap().resets_at, Some(999));
        assert_eq!(r.plan.as_deref(), Some("pro"));
        assert_eq!(r.ordinary_usage_allowed, Some(false));
        assert!(r.usage_refused());
        assert_eq!(
            r.credits.as_ref().unwrap().balance.as_deref(),
            Some("12.50")
        );
        assert_eq!(
            r.reached_type.as_deref(),
            Some("workspace_member_credits_depleted")
        );
        assert_eq!(r.spend_control_reached, Some(false));
        assert_eq!(r.observed_at, 5);
    }

    #[test]
    fn an_empty_single_view_falls_back_to_the_codex_bucket() {
        let r = parse_read_result(
            &json!({"rateLimits": {"primary": null, "secondary": null},
                    "rateLimitsByLimitId": {"codex": {"secondary": {"usedPercent": 70.5}}}}),
            5,
            src(),
        )
        .unwrap();
        assert_eq!(r.secondary.unwrap().used_percent, 70.5);
        assert_eq!(r.ordinary_usage_allowed, None, "0.169 may not say");
        assert!(parse_read_result(&json!({}), 5, src()).is_none());
    }

    #[test]
    fn a_lone_weekly_window_is_the_weekly_one() {
        let r = parse(
            &json!({"limit_id": "codex", "primary": {"used_percent": 30.0, "window_minutes": 10080, "resets_at": 7},
                    "secondary": null, "plan_type": "team"}),
            Shape::Snake,
            1,
            src(),
        )
        .unwrap();
        assert!(r.primary.is_none());
        assert_eq!(r.secondary.unwrap().used_percent, 30.0);
    }

    #[test]
    fn other_buckets_and_empty_snapshots_are_not_readings() {
        let w = json!({"usedPercent": 1.0});
        assert!(
            parse(
                &json!({"limitId": "gpt-5-pro", "primary": w}),
                Shape::Camel,
                1,
                src()
            )
            .is_none()
        );
        assert!(
            parse(
                &json!({"limitId": "codex", "primary": null}),
                Shape::Camel,
                1,
                src()
            )
            .is_none()
        );
        assert!(parse(&Value::Null, Shape::Camel, 1, src()).is_none());
        assert!(parse(&json!({"primary": w}), Shape::Camel, 1, src()).is_some());
    }

    #[test]
    fn recognises_read_answers_only() {
        assert!(is_read_result(
            &json!({"rateLimits": {"primary": null}, "rateLimitsByLimitId": null})
        ));
        assert!(!is_read_result(&json!({"rateLimits": {"primary": null}})));
        assert!(!is_read_result(&json!({"thread": {}})));
    }
}
