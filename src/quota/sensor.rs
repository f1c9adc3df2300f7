//! Every codex-as broker is a quota sensor: the app-server tells its client the account's limits
//! as they change, and the broker keeps the latest per account (`quota::record`), so a call that
//! went through codex-as leaves an exact reading behind for `quota`, `auto` and `statusline`.
//!
//! What counts (app-server v2, Codex 0.169 and 0.171 alike):
//! - `account/rateLimits/updated` `{rateLimits: RateLimitSnapshot}`: sent after each model
//!   response and with a usage-limit failure (codex-rs core records the snapshot the 429 carried,
//!   then the app-server relays it); sparse, merged into what was known;
//! - an answer with the shape of `account/rateLimits/read` (`ordinaryUsageAllowed` included),
//!   whoever asked it;
//! - `turn/completed` failed with `codexErrorInfo: "usageLimitExceeded"`: the account is out.
//!
//! The broker knows nothing of quotas: `codex-as broker serve` (cmd/broker.rs) hands it a sensor
//! as its `Options::observer`, which it calls with every message the app-server sends
//! ([`Sensor::observe`]). The sensor never changes what is relayed, and a record it cannot write
//! is skipped silently (a reading is an optimisation, never a reason to disturb a turn).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Source;
use super::record::{LimitHit, Record, Store};
use super::snapshot::{self, Shape};
use crate::broker::protocol::{self, Message};

const UPDATED: &str = "account/rateLimits/updated";
const READ: &str = "account/rateLimits/read";
pub const FROM_LIMIT_FAILURE: &str = "usage-limit failure";
/// A snapshot seen this close before a usage-limit failure is the one the failure carried.
const SAME_FAILURE_SECONDS: i64 = 10;

pub struct Sensor {
    home: PathBuf,
    store: Option<Store>,
    record: Option<Record>,
    clock: fn() -> i64,
}

impl Sensor {
    /// A sensor for the account whose canonical home the broker serves; without a home (the
    /// default account before it exists) there is nothing to key a record by, and it stays off.
    pub fn for_home(home: &Path) -> Sensor {
        let store = (!home.as_os_str().is_empty()).then(Store::open).flatten();
        Sensor::with_store(home, store, crate::sys::clock::now)
    }

    pub fn with_store(home: &Path, store: Option<Store>, clock: fn() -> i64) -> Sensor {
        Sensor {
            home: home.to_path_buf(),
            store,
            record: None,
            clock,
        }
    }

    pub fn observe(&mut self, msg: &Message) {
        if self.store.is_none() {
            return;
        }
        let now = (self.clock)();
        match msg {
            Message::Notification { method, params } if method == UPDATED => {
                let from = Source::Broker {
                    from: UPDATED.into(),
                };
                let Some(r) = params
                    .as_ref()
                    .and_then(|p| p.get("rateLimits"))
                    .and_then(|s| snapshot::parse(s, Shape::Camel, now, from))
                else {
                    return;
                };
                self.change(|rec| rec.update(r));
            }
            Message::Notification { method, params }
                if method == protocol::TURN_COMPLETED
                    && crate::broker::protocol::is_usage_limit_turn(params.as_ref()) =>
            {
                let message = params
                    .as_ref()
                    .and_then(|p| p.pointer("/turn/error/message"))
                    .and_then(Value::as_str)
                    .map(String::from);
                self.change(|rec| {
                    if let Some(r) = rec.reading.as_mut()
                        && now - r.observed_at <= SAME_FAILURE_SECONDS
                    {
                        r.source = Source::Broker {
                            from: FROM_LIMIT_FAILURE.into(),
                        };
                    }
                    rec.limit_hit = Some(LimitHit { at: now, message });
                });
            }
            Message::Response {
                outcome: Ok(result),
                ..
            } if snapshot::is_read_result(result) => {
                let from = Source::Broker { from: READ.into() };
                if let Some(r) = snapshot::parse_read_result(result, now, from) {
                    self.change(|rec| rec.update(r));
                }
            }
            _ => {}
        }
    }

    fn change(&mut self, f: impl FnOnce(&mut Record)) {
        let Some(store) = &self.store else { return };
        let rec = self.record.get_or_insert_with(|| {
            store
                .load(&self.home)
                .unwrap_or_else(|| Record::new(&self.home))
        });
        f(rec);
        let _ = store.save(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clock() -> i64 {
        1_000
    }

    fn sensor(dir: &Path) -> (Sensor, Store) {
        let store = Store::at(dir.join("quota"));
        (
            Sensor::with_store(Path::new("/h/alice"), Some(store.clone()), clock),
            store,
        )
    }

    fn updated(used: f64) -> Message {
        Message::Notification {
            method: UPDATED.into(),
            params: Some(json!({"rateLimits": {"limitId": "codex", "limitName": null,
                "primary": {"usedPercent": used, "windowDurationMins": 300, "resetsAt": 5000},
                "secondary": null, "credits": {"hasCredits": false, "unlimited": false, "balance": null},
                "planType": "plus", "rateLimitReachedType": null, "spendControlReached": null}})),
        }
    }

    #[test]
    fn records_updates_reads_and_limit_failures() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, store) = sensor(d.path());
        s.observe(&Message::Notification {
            method: "item/completed".into(),
            params: Some(json!({})),
        });
        assert!(
            store.load(Path::new("/h/alice")).is_none(),
            "nothing to record yet"
        );

        s.observe(&updated(42.0));
        let r = store.load(Path::new("/h/alice")).unwrap().reading.unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 42.0);
        assert_eq!(
            r.source,
            Source::Broker {
                from: UPDATED.into()
            }
        );
        assert_eq!(r.observed_at, 1_000);

        s.observe(&Message::ok(
            json!(7),
            json!({"ordinaryUsageAllowed": false, "rateLimits": {"limitId": "codex",
                "primary": {"usedPercent": 43, "windowDurationMins": 300, "resetsAt": 5000}},
                "rateLimitsByLimitId": null}),
        ));
        let r = store.load(Path::new("/h/alice")).unwrap().reading.unwrap();
        assert_eq!(r.ordinary_usage_allowed, Some(false));
        assert_eq!(r.plan.as_deref(), Some("plus"), "kept from the update");

        s.observe(&Message::Notification {
            method: "turn/completed".into(),
            params: Some(json!({"threadId": "t", "turn": {"id": "u", "status": "failed",
                "error": {"message": "You've hit your usage limit.", "codexErrorInfo": "usageLimitExceeded"}}})),
        });
        let rec = store.load(Path::new("/h/alice")).unwrap();
        assert_eq!(rec.limit_hit.unwrap().at, 1_000);
        assert_eq!(
            rec.reading.unwrap().source,
            Source::Broker {
                from: FROM_LIMIT_FAILURE.into()
            }
        );
    }

    #[test]
    fn a_broker_without_a_store_or_home_records_nothing() {
        let mut s = Sensor::with_store(Path::new("/h"), None, clock);
        s.observe(&updated(1.0));
        assert!(s.record.is_none());
    }
}
