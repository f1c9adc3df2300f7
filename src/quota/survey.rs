//! What is known about each account's quota right now: login state and the best reading, best
//! source first: the broker's record (exact, relayed by a codex-as broker), the session files
//! (the newest snapshot Codex wrote), and, when a choice is about to be made on a reading that is
//! missing or older than `[quota] max_age`, a live `account/rateLimits/read` (`live`).
//!
//! Between the record and the session files the newer reading wins (a session run outside
//! codex-as after the last broker call is newer news); on a tie, the record.

use std::time::Duration;

use crate::account::login_state::{self, LoginState};
use crate::account::{Account, Accounts};

use super::Reading;
use super::choose::{self, Candidate, Choice, Login};
use super::reader::{self, Scan};
use super::record::{Record, Store};

/// How long a live reading may take (a cold broker start included).
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Survey {
    pub account: Account,
    pub login: LoginState,
    pub scan: Scan,
    pub record: Option<Record>,
    /// A reading asked of the app-server by this command.
    pub live: Option<Reading>,
    /// Why a live reading was wanted and not obtained.
    pub live_error: Option<String>,
}

impl Survey {
    pub fn of(account: Account) -> Survey {
        Survey::with_store(account, Store::open().as_ref())
    }

    pub fn with_store(account: Account, store: Option<&Store>) -> Survey {
        let (login, scan, record) = if account.exists() {
            let home = account.canonical_home();
            (
                login_state::read(&home),
                reader::latest(&home),
                store.and_then(|s| s.load(&home)),
            )
        } else {
            (LoginState::LoggedOut, Scan::default(), None)
        };
        Survey {
            account,
            login,
            scan,
            record,
            live: None,
            live_error: None,
        }
    }

    /// The best reading known.
    pub fn reading(&self) -> Option<&Reading> {
        if self.live.is_some() {
            return self.live.as_ref();
        }
        let rec = self.record.as_ref().and_then(|r| r.reading.as_ref());
        match (rec, self.scan.reading.as_ref()) {
            (Some(r), Some(s)) if s.observed_at > r.observed_at => Some(s),
            (Some(r), _) => Some(r),
            (None, s) => s,
        }
    }

    /// Missing or older than `max_age`, for an account that has limits to read.
    pub fn wants_live(&self, now: i64, max_age: Duration) -> bool {
        let readable = matches!(
            self.login,
            LoginState::Chatgpt | LoginState::Keyring | LoginState::Unknown
        );
        readable
            && self
                .reading()
                .is_none_or(|r| now - r.observed_at >= max_age.as_secs() as i64)
    }

    /// Asks the app-server when `wants_live`; a failure is kept, the other readings stay.
    pub fn refresh(&mut self, accounts: &Accounts, now: i64, max_age: Duration) {
        if !self.wants_live(now, max_age) {
            return;
        }
        match super::live::read(accounts, &self.account, LIVE_TIMEOUT) {
            Ok(r) => self.live = Some(r),
            Err(e) => self.live_error = Some(format!("{e:#}")),
        }
    }

    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            login: login_of(self.login),
            reading: self.reading(),
            limit_hit_at: self
                .record
                .as_ref()
                .and_then(|r| r.limit_hit.as_ref())
                .map(|h| h.at),
        }
    }
}

/// Surveys every account, refreshing in parallel those a choice needs a live reading for.
/// `live` is `[quota] max_age` (validated by the caller), or None for no live reading.
pub fn gather(
    accounts: &Accounts,
    list: Vec<Account>,
    live: Option<Duration>,
    now: i64,
) -> Vec<Survey> {
    let store = Store::open();
    let mut surveys: Vec<Survey> = list
        .into_iter()
        .map(|a| Survey::with_store(a, store.as_ref()))
        .collect();
    if let Some(max_age) = live {
        std::thread::scope(|scope| {
            for s in surveys.iter_mut() {
                scope.spawn(move || s.refresh(accounts, now, max_age));
            }
        });
    }
    surveys
}

pub fn login_of(state: LoginState) -> Login {
    if state == LoginState::LoggedOut {
        Login::LoggedOut
    } else if state.is_logged_in() {
        Login::LoggedIn
    } else {
        // Keyring or an unknown auth.json: the file cannot tell, so let Codex decide.
        Login::Unknown
    }
}

pub fn choose_among(surveys: &[Survey], threshold: f64, now: i64) -> Choice {
    let cands: Vec<Candidate<'_>> = surveys.iter().map(Survey::candidate).collect();
    choose::choose(&cands, threshold, now)
}
