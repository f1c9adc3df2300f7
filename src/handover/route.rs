//! A relay's route: the accounts it may run a connection's work on, in order, and the choices
//! made over it (where a connection starts, where a thread lives, who is next). The choices are
//! pure over what is already known, so every rule is unit-tested; the quota facts come from
//! `quota::choose` through [`usable`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::fallback::policy::Fallback;
use crate::quota::choose;
use crate::quota::survey::Survey;

#[derive(Debug, Clone)]
pub struct Route {
    /// One account per home (the fallback's rule: two names for one home are one account).
    pub accounts: Vec<Account>,
    homes: Vec<PathBuf>,
}

impl Route {
    pub fn new(accounts: Vec<Account>) -> Route {
        let accounts = Fallback::list(accounts).order;
        let homes = accounts.iter().map(Account::canonical_home).collect();
        Route { accounts, homes }
    }

    /// 16 hex digits naming the route: its names and homes, in order. A relay serves exactly
    /// one route; another order, or a name moved to another home, is another relay.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"relay\0");
        for (a, home) in self.accounts.iter().zip(&self.homes) {
            h.update(a.name.as_bytes());
            h.update(b"\0");
            h.update(home.as_os_str().as_encoded_bytes());
            h.update(b"\0");
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The names, as `--route` takes them.
    pub fn names(&self) -> String {
        self.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn homes(&self) -> &[PathBuf] {
        &self.homes
    }

    pub fn home(&self, i: usize) -> &Path {
        &self.homes[i]
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// Whether the account may take work now: logged in, not known to be out of quota or at the
/// threshold (the skips of `auto` and of a background pick).
pub fn usable(account: &Account, threshold: f64, now: i64) -> bool {
    let s = Survey::of(account.clone());
    choose::skip_reason(&s.candidate(), threshold, now).is_none()
}

/// Where a new connection starts: the first usable account, else the first (its failure then
/// says why, as a pinned run would).
pub fn first(n: usize, usable: impl Fn(usize) -> bool) -> usize {
    (0..n).find(|i| usable(*i)).unwrap_or(0)
}

/// Where a resumed thread runs: the route account whose home holds its newest copy, when that
/// account is usable; else `current` (the broker there carries the thread in on resume).
pub fn for_resume(newest: Option<usize>, current: usize, usable: impl Fn(usize) -> bool) -> usize {
    match newest {
        Some(i) if usable(i) => i,
        _ => current,
    }
}

/// The account a failed turn moves on to: the next in route order after `current` (then,
/// wrapping round, those before it: a thread that lived on a later account may go back to an
/// earlier one that was never tried), never one already tried for this turn, never one known
/// to be unusable.
pub fn next_after(
    n: usize,
    current: usize,
    tried: &[usize],
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    (current + 1..n)
        .chain(0..current.min(n))
        .find(|i| !tried.contains(i) && usable(*i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::FoundBy;

    fn account(name: &str, home: &str) -> Account {
        Account {
            name: name.into(),
            home: PathBuf::from(home),
            found_by: FoundBy::Convention,
            pass_env: Vec::new(),
        }
    }

    #[test]
    fn the_next_account_keeps_the_order_and_skips_the_tried_and_the_unusable() {
        let all = |_: usize| true;
        assert_eq!(next_after(3, 0, &[0], all), Some(1));
        assert_eq!(next_after(3, 1, &[0, 1], all), Some(2));
        assert_eq!(next_after(3, 2, &[0, 1, 2], all), None);
        assert_eq!(next_after(3, 0, &[0, 1], all), Some(2));
        assert_eq!(next_after(3, 0, &[0], |i| i != 1), Some(2));
        assert_eq!(next_after(3, 0, &[0], |i| i == 0), None);
        // Round to the start only for accounts this turn never ran on.
        assert_eq!(next_after(3, 1, &[1], all), Some(2));
        assert_eq!(next_after(2, 1, &[1], all), Some(0));
        assert_eq!(next_after(2, 1, &[0, 1], all), None);
        assert_eq!(next_after(3, 2, &[2], |i| i != 0), Some(1));
    }

    #[test]
    fn the_account_a_turn_failed_on_is_never_next_listed_as_tried_or_not() {
        assert_eq!(next_after(3, 0, &[], |_| true), Some(1));
        assert_eq!(next_after(1, 0, &[], |_| true), None);
    }

    #[test]
    fn a_route_holds_its_homes_in_its_order() {
        let r = Route::new(vec![
            account("a", "/nonexistent/relay/a"),
            account("b", "/nonexistent/relay/b"),
        ]);
        assert_eq!(
            r.homes(),
            [
                PathBuf::from("/nonexistent/relay/a"),
                PathBuf::from("/nonexistent/relay/b")
            ]
        );
        assert_eq!(r.home(1), Path::new("/nonexistent/relay/b"));
        assert_eq!((r.len(), r.is_empty()), (2, false));
        let none = Route::new(Vec::new());
        assert_eq!((none.len(), none.is_empty()), (0, true));
    }

    #[test]
    fn a_connection_starts_on_the_first_usable_and_a_thread_where_it_is_newest() {
        assert_eq!(first(3, |i| i > 0), 1);
        assert_eq!(first(3, |_| false), 0, "nothing usable: the first says why");
        assert_eq!(for_resume(Some(2), 0, |_| true), 2);
        assert_eq!(for_resume(Some(2), 0, |i| i != 2), 0, "newest home is out");
        assert_eq!(for_resume(None, 1, |_| true), 1);
    }

    #[test]
    fn a_route_is_one_account_per_home_and_its_key_names_order_and_homes() {
        let r = Route::new(vec![
            account("a", "/nonexistent/relay/a"),
            account("b", "/nonexistent/relay/b"),
            account("again", "/nonexistent/relay/a"),
        ]);
        assert_eq!(r.names(), "a,b");
        let swapped = Route::new(vec![
            account("b", "/nonexistent/relay/b"),
            account("a", "/nonexistent/relay/a"),
        ]);
        assert_ne!(r.key(), swapped.key());
        let moved = Route::new(vec![
            account("a", "/nonexistent/relay/a2"),
            account("b", "/nonexistent/relay/b"),
        ]);
        assert_ne!(r.key(), moved.key());
        assert_eq!(r.key().len(), 16);
        assert_eq!(r.key(), Route::new(r.accounts.clone()).key());
    }
}
