//! The fallback policy, as pure decisions over what is already known (accounts, their login and
//! quota readings, how an attempt ended): no process, file or clock is touched here, so every
//! rule is unit-tested. `run::attempts` carries the decisions out.
//!
//! - A pin (`codex-as NAME`) never falls back: it is exec'd, not watched ([`Route`]).
//! - A list keeps its order; `auto` orders every account by headroom and skips those not logged
//!   in or at the threshold (`quota::choose`).
//! - Two names for one home are one account: it is tried once, under its first name.
//! - Only a usage limit moves on to the next account. Success, a failure, a signal or an
//!   interrupt ends the run as it is: retrying a real failure elsewhere would only spend another
//!   account's quota on it.
//! - When nothing is left: exit 75 ([`Exhausted`]) when any account was out of quota, else
//!   "no account to run as" ([`NoneUsable`]).
//! - `--background` is not watched: the account is chosen before start (the first by headroom
//!   for `auto`, the first of a list not known to be unusable); the accounts after it take over
//!   through the relay (`handover`) when it runs out mid-turn.

use std::path::PathBuf;

use super::{Exhausted, NoneUsable};
use crate::account::Account;
use crate::account::spec::AccountSpec;
use crate::quota::choose;
use crate::quota::survey::{self, Survey};
use crate::quota::{Reading, signals};
use crate::sys::clock::{format_utc, human_duration};

/// How a spec runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// One account, exec'd in place of codex-as: nothing is watched, nothing else is tried.
    Pin(&'a str),
    /// Attempts as children, moving on when a usage limit is reached.
    Fallback,
}

impl<'a> Route<'a> {
    pub fn of(spec: &'a AccountSpec) -> Route<'a> {
        match spec {
            AccountSpec::One(name) => Route::Pin(name),
            AccountSpec::List(_) | AccountSpec::Auto => Route::Fallback,
        }
    }
}

/// An account not tried, and why (for the final note or the all-exhausted message).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub name: String,
    pub why: String,
    /// Already told, in the handover's own notice: the closing note does not say it again.
    pub told: bool,
}

/// How an attempt ended, as far as the policy cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A signal killed it.
    Killed(i32),
    Exited {
        code: u8,
        /// codex-as itself received a signal while it ran: the user wants to stop.
        interrupted: bool,
        /// The usage-limit message, when it failed for the account's usage limit.
        usage_limit: Option<String>,
    },
}

/// How codex-as ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exit(u8),
    /// The way the child did: killed by this signal.
    Signal(i32),
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Stop: print `note`, end as `end`.
    Stop { note: String, end: End },
    /// The account is out of quota: print `announce` when there is one, try the next account.
    Next { announce: Option<String> },
}

/// The accounts to try, in order, and what was skipped on the way.
#[derive(Debug)]
pub struct Fallback {
    pub order: Vec<Account>,
    skipped: Vec<Skipped>,
    /// How many were skipped for their quota: any, and running out is "try later" (75).
    quota_skips: usize,
}

impl Fallback {
    /// A list: its accounts in its order.
    pub fn list(accounts: Vec<Account>) -> Fallback {
        Fallback {
            order: accounts,
            skipped: Vec::new(),
            quota_skips: 0,
        }
        .one_per_home()
    }

    /// `auto`: every account, by headroom, minus those `quota::choose` skips.
    pub fn auto(surveys: &[Survey], threshold: f64, now: i64) -> Fallback {
        let choice = survey::choose_among(surveys, threshold, now);
        let mut f = Fallback {
            order: choice
                .order
                .iter()
                .map(|i| surveys[*i].account.clone())
                .collect(),
            skipped: Vec::new(),
            quota_skips: 0,
        };
        for (i, skip) in &choice.skipped {
            f.skip(
                &surveys[*i].account.name,
                skip.describe(now),
                skip.is_quota(),
            );
        }
        f.one_per_home()
    }

    fn skip(&mut self, name: &str, why: String, quota: bool) {
        if quota {
            self.quota_skips += 1;
        }
        self.skipped.push(Skipped {
            name: name.to_string(),
            why,
            told: false,
        });
    }

    /// Two names for one home (a symlink, a config entry) are one account: trying it twice
    /// would only spend a second turn on an account already known to be out.
    fn one_per_home(mut self) -> Fallback {
        let mut homes: Vec<(PathBuf, String)> = Vec::new();
        let mut kept = Vec::new();
        for a in std::mem::take(&mut self.order) {
            let home = a.canonical_home();
            if let Some((_, first)) = homes.iter().find(|(h, _)| *h == home) {
                let why = format!("same home as '{first}'");
                self.skip(&a.name, why, false);
                continue;
            }
            homes.push((home, a.name.clone()));
            kept.push(a);
        }
        self.order = kept;
        self
    }

    /// The one-line note: which account ran, which were skipped and why.
    pub fn note(&self, ran: &str, outcome: &str) -> String {
        let mut line = format!("codex-as: ran as '{ran}'");
        if !outcome.is_empty() {
            line.push_str(&format!(" ({outcome})"));
        }
        if self.skipped.iter().any(|s| !s.told) {
            let list: Vec<String> = self
                .skipped
                .iter()
                .filter(|s| !s.told)
                .map(|s| format!("'{}' ({})", s.name, s.why))
                .collect();
            line.push_str(&format!("; skipped {}", list.join(", ")));
        }
        line
    }

    /// The note for an attempt that could not even start (it ends the run), when there is
    /// something to say.
    pub fn could_not_start(&self, name: &str) -> Option<String> {
        (!self.skipped.is_empty()).then(|| self.note(name, "could not start"))
    }

    /// After the attempt on `order[i]`. `out_of_quota` words why the account is out, from its
    /// usage-limit message (asked only then: it reads the account's latest reading).
    pub fn after(
        &mut self,
        i: usize,
        outcome: Outcome,
        out_of_quota: impl FnOnce(&str) -> String,
    ) -> Step {
        let name = self.order[i].name.clone();
        let stop = |f: &Self, outcome: &str, end: End| Step::Stop {
            note: f.note(&name, outcome),
            end,
        };
        let (code, interrupted, usage_limit) = match outcome {
            Outcome::Killed(sig) => {
                let why = format!("killed by signal {sig}; no other account tried");
                return stop(self, &why, End::Signal(sig));
            }
            Outcome::Exited {
                code,
                interrupted,
                usage_limit,
            } => (code, interrupted, usage_limit),
        };
        if code == 0 {
            return stop(self, "", End::Exit(0));
        }
        if interrupted {
            let why = format!("interrupted (exit status {code}); no other account tried");
            return stop(self, &why, End::Exit(code));
        }
        let Some(message) = usage_limit else {
            let why = format!(
                "failed with exit status {code}, not for a usage limit: no other account tried"
            );
            return stop(self, &why, End::Exit(code));
        };
        self.skip(&name, out_of_quota(&message), true);
        Step::Next {
            announce: self.order.get(i + 1).map(|next| {
                format!(
                    "codex-as: {name}: usage limit reached; trying '{}'",
                    next.name
                )
            }),
        }
    }

    /// A relay handed the turn of `order[i]` over to the next account when `order[i]` ran out
    /// (`handover`): it counts as out of quota, as a failed attempt would.
    pub fn handed_over(&mut self, i: usize, why: String) {
        let name = self.order[i].name.clone();
        self.skip(&name, why, true);
        if let Some(last) = self.skipped.last_mut() {
            last.told = true;
        }
    }

    /// `order[i]` was not run at all (its relay ran the thread where it lived): said in the
    /// notes like any skip.
    pub fn passed_over(&mut self, i: usize, why: String, quota: bool) {
        let name = self.order[i].name.clone();
        self.skip(&name, why, quota);
    }

    /// Nothing (more) to try: every account out of quota (exit 75) when any was, else none
    /// usable at all.
    pub fn give_up(self) -> anyhow::Error {
        let lines = self
            .skipped
            .into_iter()
            .map(|s| format!("{}: {}", s.name, s.why))
            .collect();
        if self.quota_skips > 0 {
            Exhausted(lines).into()
        } else {
            NoneUsable(lines).into()
        }
    }

    /// `--background`: one account chosen before start, and the note that says so.
    pub fn pick_before_start(
        mut self,
        spec: &AccountSpec,
        survey: impl FnMut(Account) -> Survey,
        threshold: f64,
        now: i64,
    ) -> Result<(Account, String), anyhow::Error> {
        let Some(account) = self.pick_first(spec, survey, threshold, now) else {
            return Err(self.give_up());
        };
        let note = self.note(
            &account.name,
            "--background: chosen before start; a usage limit hands the job over to the next account",
        );
        Ok((account, note))
    }

    /// One account, chosen before anything runs: `auto` takes the first by headroom; a list the
    /// first not known to be unusable, each surveyed by `survey` only until one is found (those
    /// passed over are recorded as skipped). None when nothing is left ([`Fallback::give_up`]).
    pub fn pick_first(
        &mut self,
        spec: &AccountSpec,
        mut survey: impl FnMut(Account) -> Survey,
        threshold: f64,
        now: i64,
    ) -> Option<Account> {
        let order = std::mem::take(&mut self.order);
        match spec {
            AccountSpec::List(_) => {
                for a in order {
                    let s = survey(a);
                    match choose::skip_reason(&s.candidate(), threshold, now) {
                        None => return Some(s.account),
                        Some(skip) => {
                            self.skip(&s.account.name, skip.describe(now), skip.is_quota())
                        }
                    }
                }
                None
            }
            AccountSpec::Auto | AccountSpec::One(_) => order.into_iter().next(),
        }
    }

    /// Whether any account was passed over (for a note worth printing).
    pub fn skipped_any(&self) -> bool {
        !self.skipped.is_empty()
    }
}

/// Why an account is out, for the note: "usage limit reached (try again at 3:15 PM; 5-hour
/// window at 100%, resets in 2h (…Z))", from its usage-limit message and latest reading.
pub fn out_of_quota(message: &str, reading: Option<&Reading>, threshold: f64, now: i64) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(hint) = signals::retry_hint(message) {
        parts.push(hint);
    }
    if let Some(r) = reading {
        parts.extend(reset_notes(r, threshold, now));
    }
    if parts.is_empty() {
        parts.push("reset time unknown".into());
    }
    format!("usage limit reached ({})", parts.join("; "))
}

fn reset_notes(r: &Reading, threshold: f64, t: i64) -> Vec<String> {
    [("5-hour", &r.primary), ("weekly", &r.secondary)]
        .into_iter()
        .filter_map(|(label, w)| {
            let w = w.as_ref()?;
            let at = w.resets_at.filter(|at| *at > t)?;
            (w.used_percent >= threshold).then(|| {
                format!(
                    "{label} window at {:.0}%, resets in {} ({})",
                    w.used_percent,
                    human_duration(at - t),
                    format_utc(at)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::path::Path;

    use super::*;
    use crate::account::FoundBy;
    use crate::account::login_state::LoginState;
    use crate::quota::reader::Scan;
    use crate::quota::{Source, Window};

    const NOW: i64 = 1_800_000_000;
    const THRESHOLD: f64 = 95.0;

    fn account(name: &str, home: &Path) -> Account {
        Account {
            name: name.into(),
            home: home.to_path_buf(),
            found_by: FoundBy::Convention,
            pass_env: Vec::new(),
        }
    }

    /// Homes that do not exist: canonical as written, so no two collide by accident.
    fn accounts(names: &[&str]) -> Vec<Account> {
        names
            .iter()
            .map(|n| account(n, &Path::new("/nonexistent/codex-as-policy").join(n)))
            .collect()
    }

    fn reading(primary: f64, resets_in: i64) -> Reading {
        let w = Window {
            used_percent: primary,
            window_minutes: Some(300),
            resets_at: Some(NOW + resets_in),
        };
        Reading::new(Some(w), None, NOW - 60, Source::AppServer { via: None })
    }

    fn survey(a: Account, login: LoginState, reading: Option<Reading>) -> Survey {
        Survey {
            account: a,
            login,
            scan: Scan {
                reading,
                ..Scan::default()
            },
            record: None,
            live: None,
            live_error: None,
        }
    }

    fn names(f: &Fallback) -> Vec<&str> {
        f.order.iter().map(|a| a.name.as_str()).collect()
    }

    fn failed(code: u8, usage_limit: Option<&str>) -> Outcome {
        Outcome::Exited {
            code,
            interrupted: false,
            usage_limit: usage_limit.map(String::from),
        }
    }

    const LIMIT: &str = "You've hit your usage limit. Try again at 3:15 PM.";

    #[test]
    fn a_handover_already_told_is_not_said_again_but_still_counts_as_out_of_quota() {
        let mut f = Fallback::list(accounts(&["alice", "bob", "carol"]));
        f.handed_over(0, "usage limit reached".into());
        assert_eq!(f.note("bob", ""), "codex-as: ran as 'bob'");
        f.passed_over(2, "not logged in".into(), false);
        assert_eq!(
            f.note("bob", ""),
            "codex-as: ran as 'bob'; skipped 'carol' (not logged in)"
        );
        // Nothing left: the answer names every account, the one handed over included.
        let err = f.give_up().to_string();
        assert!(err.contains("alice: usage limit reached"), "{err}");
        assert!(err.contains("carol: not logged in"), "{err}");
    }

    #[test]
    fn skipped_any_says_whether_an_account_was_passed_over() {
        let mut f = Fallback::list(accounts(&["alice", "bob"]));
        assert!(!f.skipped_any());
        f.passed_over(1, "not logged in".into(), false);
        assert!(f.skipped_any());
        let mut f = Fallback::list(accounts(&["alice", "bob"]));
        f.handed_over(0, "usage limit reached".into());
        assert!(f.skipped_any(), "a handover already told still counts");
    }

    #[test]
    fn a_pin_never_fails_over() {
        let pin = AccountSpec::parse("alice").unwrap();
        assert_eq!(Route::of(&pin), Route::Pin("alice"));
        for spec in ["alice,bob", "auto"] {
            let spec = AccountSpec::parse(spec).unwrap();
            assert_eq!(Route::of(&spec), Route::Fallback);
        }
    }

    #[test]
    fn a_list_keeps_its_order_and_auto_goes_by_headroom() {
        let list = Fallback::list(accounts(&["carol", "alice", "bob"]));
        assert_eq!(names(&list), ["carol", "alice", "bob"]);
        assert_eq!(list.could_not_start("carol"), None, "nothing to add");

        let a = accounts(&["default", "full", "roomy", "half", "fresh", "keyring"]);
        let surveys = [
            survey(a[0].clone(), LoginState::LoggedOut, None),
            survey(a[1].clone(), LoginState::Chatgpt, Some(reading(97.0, 7200))),
            survey(a[2].clone(), LoginState::Chatgpt, Some(reading(10.0, 7200))),
            survey(a[3].clone(), LoginState::ApiKey, Some(reading(50.0, 7200))),
            // Never used here: tried after those with a known headroom.
            survey(a[4].clone(), LoginState::Chatgpt, None),
            // The keyring cannot be read: let Codex decide.
            survey(a[5].clone(), LoginState::Keyring, Some(reading(20.0, 7200))),
        ];
        let auto = Fallback::auto(&surveys, THRESHOLD, NOW);
        assert_eq!(names(&auto), ["roomy", "keyring", "half", "fresh"]);
        let note = auto.note("roomy", "");
        assert!(
            note.starts_with("codex-as: ran as 'roomy'; skipped 'default' (not logged in), 'full' (5-hour window at 97%, resets in 2h"),
            "{note}"
        );
    }

    #[test]
    fn one_home_is_tried_once_under_its_first_name() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let list = Fallback::list(vec![
            account("work", &home),
            account("alias", &link),
            account("bob", &other),
            account("again", &home),
        ]);
        assert_eq!(names(&list), ["work", "bob"]);
        let note = list.note("work", "");
        assert!(
            note.ends_with("skipped 'alias' (same home as 'work'), 'again' (same home as 'work')"),
            "{note}"
        );
        // Skipping a duplicate is not running out of quota.
        let err = list.give_up();
        assert!(err.downcast_ref::<NoneUsable>().is_some(), "{err}");
    }

    #[test]
    fn only_a_usage_limit_moves_on() {
        let mut f = Fallback::list(accounts(&["alice", "bob"]));
        let never = |_: &str| -> String { panic!("asked why an account is out, but none is") };
        let stop = |v: Step| match v {
            Step::Stop { note, end } => (note, end),
            other => panic!("expected a stop, got {other:?}"),
        };
        let (note, end) = stop(f.after(0, failed(0, None), never));
        assert_eq!(
            (note.as_str(), end),
            ("codex-as: ran as 'alice'", End::Exit(0))
        );
        let (note, end) = stop(f.after(0, failed(3, None), never));
        assert_eq!(end, End::Exit(3));
        assert!(
            note.contains(
                "failed with exit status 3, not for a usage limit: no other account tried"
            ),
            "{note}"
        );
        // Even a usage-limit message does not move on when the user interrupted the run.
        let interrupted = Outcome::Exited {
            code: 130,
            interrupted: true,
            usage_limit: Some(LIMIT.into()),
        };
        let (note, end) = stop(f.after(0, interrupted, never));
        assert_eq!(end, End::Exit(130));
        assert!(note.contains("interrupted (exit status 130)"), "{note}");
        let (note, end) = stop(f.after(0, Outcome::Killed(9), never));
        assert_eq!(end, End::Signal(9));
        assert!(
            note.contains("killed by signal 9; no other account tried"),
            "{note}"
        );
    }

    #[test]
    fn every_account_out_of_quota_exits_75() {
        let mut f = Fallback::list(accounts(&["alice", "bob"]));
        let v = f.after(0, failed(1, Some(LIMIT)), |m| format!("out: {m}"));
        assert_eq!(
            v,
            Step::Next {
                announce: Some("codex-as: alice: usage limit reached; trying 'bob'".into())
            }
        );
        let v = f.after(1, failed(1, Some(LIMIT)), |_| "out too".into());
        assert_eq!(v, Step::Next { announce: None });
        let err = f.give_up();
        assert_eq!(crate::exit::code(&err), 75);
        assert_eq!(
            err.to_string(),
            format!("every account is out of quota:\n  alice: out: {LIMIT}\n  bob: out too")
        );
    }

    #[test]
    fn nobody_usable_is_not_out_of_quota_but_still_ends_with_75() {
        let a = accounts(&["default", "bob"]);
        let surveys = [
            survey(a[0].clone(), LoginState::LoggedOut, None),
            survey(a[1].clone(), LoginState::LoggedOut, None),
        ];
        let f = Fallback::auto(&surveys, THRESHOLD, NOW);
        assert!(f.order.is_empty());
        assert_eq!(
            f.could_not_start("x").as_deref(),
            Some(
                "codex-as: ran as 'x' (could not start); skipped 'default' (not logged in), 'bob' (not logged in)"
            )
        );
        let err = f.give_up();
        // The README's 75: every account of a list or `auto` skipped, whatever the reason.
        assert_eq!(crate::exit::code(&err), 75);
        assert!(
            err.to_string()
                .starts_with("no account to run as:\n  default: not logged in")
        );
    }

    #[test]
    fn a_background_job_takes_the_first_usable_of_a_list() {
        let a = accounts(&["out", "full", "ok", "never"]);
        let facts = |acc: Account| match acc.name.as_str() {
            "out" => survey(acc, LoginState::LoggedOut, None),
            "full" => survey(acc, LoginState::Chatgpt, Some(reading(99.0, 60))),
            _ => survey(acc, LoginState::Chatgpt, None),
        };
        let asked = Cell::new(0);
        let spec = AccountSpec::List(a.iter().map(|x| x.name.clone()).collect());
        let (chosen, note) = Fallback::list(a.clone())
            .pick_before_start(
                &spec,
                |acc| {
                    asked.set(asked.get() + 1);
                    facts(acc)
                },
                THRESHOLD,
                NOW,
            )
            .unwrap();
        assert_eq!(chosen.name, "ok");
        assert_eq!(
            asked.get(),
            3,
            "accounts after the chosen one are not surveyed"
        );
        assert!(
            note.starts_with("codex-as: ran as 'ok' (--background: chosen before start; a usage limit hands the job over to the next account); skipped 'out' (not logged in), 'full' (5-hour window at 99%"),
            "{note}"
        );
        // All unusable, one for its quota: out of quota (75), as for a watched run.
        let err = Fallback::list(a[..2].to_vec())
            .pick_before_start(&spec, facts, THRESHOLD, NOW)
            .unwrap_err();
        assert_eq!(crate::exit::code(&err), 75);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "every account is out of quota:\n  out: not logged in\n  full: 5-hour window at 99%"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_background_job_on_auto_takes_the_most_headroom() {
        let a = accounts(&["half", "roomy", "busy"]);
        let surveys = [
            survey(a[0].clone(), LoginState::Chatgpt, Some(reading(50.0, 7200))),
            survey(a[1].clone(), LoginState::Chatgpt, Some(reading(10.0, 7200))),
            survey(a[2].clone(), LoginState::Chatgpt, Some(reading(80.0, 7200))),
        ];
        let unasked = |_: Account| -> Survey { panic!("auto was surveyed already") };
        let (chosen, note) = Fallback::auto(&surveys, THRESHOLD, NOW)
            .pick_before_start(&AccountSpec::Auto, unasked, THRESHOLD, NOW)
            .unwrap();
        assert_eq!(chosen.name, "roomy");
        assert_eq!(
            note,
            "codex-as: ran as 'roomy' (--background: chosen before start; a usage limit hands the job over to the next account)"
        );
    }

    #[test]
    fn auto_with_every_account_at_its_quota_says_so() {
        let a = accounts(&["alice", "bob"]);
        let surveys = [
            survey(a[0].clone(), LoginState::Chatgpt, Some(reading(97.0, 7200))),
            survey(
                a[1].clone(),
                LoginState::Chatgpt,
                Some(reading(100.0, 3600)),
            ),
        ];
        let f = Fallback::auto(&surveys, THRESHOLD, NOW);
        assert!(f.order.is_empty());
        let err = f.give_up();
        assert_eq!(crate::exit::code(&err), 75);
        assert_eq!(
            err.to_string(),
            format!(
                "every account is out of quota:\n  alice: 5-hour window at 97%, resets in 2h00m ({})\n  bob: 5-hour window at 100%, resets in 1h00m ({})",
                format_utc(NOW + 7200),
                format_utc(NOW + 3600)
            )
        );
    }

    #[test]
    fn out_of_quota_says_when_to_try_again() {
        let r = reading(100.0, 7200);
        assert_eq!(
            out_of_quota(LIMIT, Some(&r), THRESHOLD, NOW),
            format!(
                "usage limit reached (Try again at 3:15 PM; 5-hour window at 100%, resets in 2h00m ({}))",
                format_utc(NOW + 7200)
            )
        );
        // A window below the threshold, or already reset, says nothing about when.
        let low = reading(40.0, 7200);
        let reset = reading(100.0, -5);
        let resetting_now = reading(100.0, 0);
        for r in [Some(&low), Some(&reset), Some(&resetting_now), None] {
            assert_eq!(
                out_of_quota("quota exceeded", r, THRESHOLD, NOW),
                "usage limit reached (reset time unknown)"
            );
        }
    }
}
