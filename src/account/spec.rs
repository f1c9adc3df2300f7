//! What the account part of `codex-as ACCOUNT ...` names: one account, a list to fall back
//! along, or `auto`. Parsed once, here, into a value the rest of the run path matches on.

use crate::error::UsageError;

/// The word that means "every account, best headroom first".
pub const AUTO: &str = crate::words::AUTO;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSpec {
    /// One account: a pin, never any fallback.
    One(String),
    /// `alice,bob,carol`: these, in this order.
    List(Vec<String>),
    /// `auto`: every account, best headroom first.
    Auto,
}

impl AccountSpec {
    pub fn parse(spec: &str) -> Result<AccountSpec, UsageError> {
        if spec == AUTO {
            return Ok(AccountSpec::Auto);
        }
        if !spec.contains(',') {
            return Ok(AccountSpec::One(spec.to_string()));
        }
        let mut names: Vec<String> = Vec::new();
        for raw in spec.split(',') {
            let name = raw.trim();
            if name.is_empty() {
                return Err(UsageError::new(format!(
                    "account list '{spec}' has an empty name: write names separated by commas, e.g. alice,bob"
                )));
            }
            if name == AUTO {
                return Err(UsageError::new(
                    "'auto' chooses among all accounts by itself: use it alone, not in a list",
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(UsageError::new(format!(
                    "account '{name}' appears twice in '{spec}'"
                )));
            }
            names.push(name.to_string());
        }
        Ok(AccountSpec::List(names))
    }

    /// The names it gives, in order (none for `auto`, which means every account).
    pub fn names(&self) -> Vec<&str> {
        match self {
            AccountSpec::One(n) => vec![n.as_str()],
            AccountSpec::List(names) => names.iter().map(String::as_str).collect(),
            AccountSpec::Auto => Vec::new(),
        }
    }

    /// The one account it names, when it names exactly one.
    pub fn one(&self) -> Option<&str> {
        match self {
            AccountSpec::One(n) => Some(n),
            AccountSpec::List(_) | AccountSpec::Auto => None,
        }
    }
}

/// As a user writes it on the command line (`alice`, `alice,bob`, `auto`): [`AccountSpec::parse`]
/// reads it back.
impl std::fmt::Display for AccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountSpec::One(n) => f.write_str(n),
            AccountSpec::List(names) => f.write_str(&names.join(",")),
            AccountSpec::Auto => f.write_str(AUTO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_auto_and_pins() {
        let parse = AccountSpec::parse;
        assert_eq!(parse("alice").unwrap(), AccountSpec::One("alice".into()));
        assert_eq!(parse("auto").unwrap(), AccountSpec::Auto);
        assert_eq!(
            parse("alice, bob").unwrap(),
            AccountSpec::List(vec!["alice".into(), "bob".into()])
        );
        assert_eq!(
            parse("alice,bob").unwrap(),
            parse(" alice ,bob ").unwrap(),
            "spaces around a name do not count"
        );
        assert!(parse("alice,,bob").unwrap_err().0.contains("empty name"));
        assert!(parse("alice,auto").unwrap_err().0.contains("use it alone"));
        assert!(
            parse("alice,alice")
                .unwrap_err()
                .0
                .contains("appears twice")
        );
    }

    #[test]
    fn displays_as_it_parses_back() {
        for (text, shown) in [
            ("alice", "alice"),
            ("alice, bob", "alice,bob"),
            ("auto", "auto"),
        ] {
            let spec = AccountSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), shown);
            assert_eq!(AccountSpec::parse(shown).unwrap(), spec);
        }
        let list = AccountSpec::parse("b,a").unwrap();
        assert_eq!((list.names(), list.one()), (vec!["b", "a"], None));
        assert_eq!(AccountSpec::Auto.names(), Vec::<&str>::new());
        assert_eq!(AccountSpec::parse("a").unwrap().one(), Some("a"));
    }
}
