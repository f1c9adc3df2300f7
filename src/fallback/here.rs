//! The one account of a folder pinned to a list or `auto`, where only one can be used: a
//! program run with `codex-as -- CMD` there, what `which` and the status line show as in use,
//! the home a Claude Code session's own `codex` sees. A list gives its first account not known to
//! be unusable, `auto` the best by headroom: the account `codex-as work,personal ... --background`
//! would start on (`policy::Fallback::pick_first`), so every reader agrees.

use crate::account::spec::AccountSpec;
use crate::account::{Account, Accounts};
use crate::quota::survey::{self, Survey};
use crate::sys::clock::now;

use super::policy::Fallback;

/// How much to ask before choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readings {
    /// What is on disk only: for what runs often and must not start anything (the status line,
    /// `which`).
    OnDisk,
    /// A reading missing or older than `[quota] max_age` is asked for (a broker may start): for
    /// a choice something is about to run on.
    Fresh,
}

/// The account chosen, and the note saying what was passed over (None when nothing was).
#[derive(Debug)]
pub struct Chosen {
    pub account: Account,
    pub note: Option<String>,
}

/// The account `spec` gives among `route` (the folder's accounts, in the spec's order:
/// `account::directory::DirectoryAccount::route`). Nothing usable: the same error as a
/// `codex-as work,personal` run that finds nothing (exit 75).
pub fn one(
    accounts: &Accounts,
    spec: &AccountSpec,
    route: Vec<Account>,
    readings: Readings,
) -> anyhow::Result<Chosen> {
    let threshold = accounts.config.quota.threshold();
    let max_age = match readings {
        Readings::OnDisk => None,
        Readings::Fresh => Some(
            accounts
                .config
                .quota
                .max_age()
                .map_err(anyhow::Error::msg)?,
        ),
    };
    let t = now();
    let mut fallback = match spec {
        AccountSpec::Auto => {
            let surveys = survey::gather(accounts, route, max_age, t);
            Fallback::auto(&surveys, threshold, t)
        }
        AccountSpec::List(_) | AccountSpec::One(_) => Fallback::list(route),
    };
    let survey = |a: Account| {
        let mut s = Survey::of(a);
        if let Some(max_age) = max_age {
            s.refresh(accounts, t, max_age);
        }
        s
    };
    let Some(account) = fallback.pick_first(spec, survey, threshold, t) else {
        return Err(fallback.give_up());
    };
    let note = fallback.skipped_any().then(|| {
        let why = match spec {
            AccountSpec::Auto => "the best of 'auto' by headroom".to_string(),
            _ => format!("the first usable of '{spec}'"),
        };
        fallback.note(&account.name, &why)
    });
    Ok(Chosen { account, note })
}

/// The route's accounts in the order work should try them: a list's own; for `auto`, those it
/// would choose by headroom first, then the ones it skips now (logged out, at the threshold),
/// which a long session may still need once their window resets.
pub fn order(accounts: &Accounts, spec: &AccountSpec, route: Vec<Account>) -> Vec<Account> {
    if *spec != AccountSpec::Auto {
        return route;
    }
    let t = now();
    let surveys = survey::gather(accounts, route.clone(), None, t);
    let mut order = Fallback::auto(&surveys, accounts.config.quota.threshold(), t).order;
    for a in route {
        if !order.iter().any(|o| o.name == a.name) {
            order.push(a);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::config::Config;

    struct World {
        _d: tempfile::TempDir,
        accounts: Accounts,
    }

    /// alice logged out, bob and carol with an API key; no quota reading anywhere.
    fn world() -> World {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        for (name, auth) in [
            ("alice", None),
            ("bob", Some(r#"{"OPENAI_API_KEY":"sk-b"}"#)),
            ("carol", Some(r#"{"OPENAI_API_KEY":"sk-c"}"#)),
        ] {
            let h = home.join(format!(".codex-{name}"));
            std::fs::create_dir_all(&h).unwrap();
            if let Some(auth) = auth {
                std::fs::write(h.join("auth.json"), auth).unwrap();
            }
        }
        let accounts = Accounts::new(Config::default(), d.path().join("config.toml"), home);
        World { _d: d, accounts }
    }

    fn route(w: &World, names: &[&str]) -> Vec<Account> {
        names
            .iter()
            .map(|n| w.accounts.require(n).unwrap())
            .collect()
    }

    #[test]
    fn a_list_gives_its_first_usable_account_and_says_what_it_passed_over() {
        let w = world();
        let spec = AccountSpec::parse("carol,bob").unwrap();
        let c = one(
            &w.accounts,
            &spec,
            route(&w, &["carol", "bob"]),
            Readings::OnDisk,
        )
        .unwrap();
        assert_eq!((c.account.name.as_str(), c.note), ("carol", None));

        let spec = AccountSpec::parse("alice,bob,carol").unwrap();
        let c = one(
            &w.accounts,
            &spec,
            route(&w, &["alice", "bob", "carol"]),
            Readings::OnDisk,
        )
        .unwrap();
        assert_eq!(c.account.name, "bob", "alice is not logged in");
        assert_eq!(
            c.note.as_deref(),
            Some(
                "codex-as: ran as 'bob' (the first usable of 'alice,bob,carol'); skipped 'alice' (not logged in)"
            )
        );
    }

    #[test]
    fn auto_gives_the_best_and_nothing_usable_is_an_error() {
        let w = world();
        let c = one(
            &w.accounts,
            &AccountSpec::Auto,
            w.accounts.all(),
            Readings::OnDisk,
        )
        .unwrap();
        assert_ne!(c.account.name, "alice", "logged out");
        let all = order(&w.accounts, &AccountSpec::Auto, w.accounts.all());
        let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), w.accounts.all().len(), "{names:?}");
        assert_eq!(
            names.last(),
            Some(&"alice"),
            "the skipped come last: {names:?}"
        );
        let list = AccountSpec::parse("carol,alice").unwrap();
        let same = order(&w.accounts, &list, route(&w, &["carol", "alice"]));
        assert_eq!(same[0].name, "carol");
        let spec = AccountSpec::parse("alice").unwrap();
        let e = one(
            &w.accounts,
            &AccountSpec::List(vec!["alice".into()]),
            route(&w, &["alice"]),
            Readings::OnDisk,
        )
        .unwrap_err();
        assert!(e.to_string().contains("alice: not logged in"), "{e}");
        // A single account is itself, whatever its state: a pin never falls over.
        let c = one(&w.accounts, &spec, route(&w, &["alice"]), Readings::OnDisk).unwrap();
        assert_eq!(c.account.name, "alice");
    }
}
