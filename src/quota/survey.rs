//! What is known about each account's quota right now: login state and latest reading.

use crate::account::Account;
use crate::account::login_state::{self, LoginState};

use super::choose::{self, Candidate, Choice, Login};
use super::reader::{self, Scan};

pub struct Survey {
    pub account: Account,
    pub login: LoginState,
    pub scan: Scan,
}

impl Survey {
    pub fn of(account: Account) -> Survey {
        let (login, scan) = if account.exists() {
            let home = account.canonical_home();
            (login_state::read(&home), reader::latest(&home))
        } else {
            (LoginState::LoggedOut, Scan::default())
        };
        Survey {
            account,
            login,
            scan,
        }
    }

    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            login: login_of(self.login),
            reading: self.scan.reading.as_ref(),
        }
    }
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
