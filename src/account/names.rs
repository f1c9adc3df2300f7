//! Account names: what is allowed, and "did you mean" for near misses.

use crate::words::{self, Taken};

pub const MAX_LEN: usize = 64;

/// Why a name is refused, phrased to complete "account name 'x' ...".
pub fn check(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("is empty: give a name such as 'work' or 'alice'".into());
    };
    if name.len() > MAX_LEN {
        return Err(format!(
            "is {} characters long: the limit is {MAX_LEN}",
            name.chars().count()
        ));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "starts with {first:?}: a name must start with an ASCII letter or digit"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains {bad:?}: use only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    match words::taken(name) {
        Some(Taken::CodexAs) => return Err("is a codex-as command: pick another name".into()),
        Some(Taken::Companion) => {
            return Err("is a companion command (`codex-as task ...`): pick another name".into());
        }
        None => {}
    }
    Ok(())
}

/// The closest candidate to an unknown name, when it is close enough to be a likely typo:
/// at most one edit (a transposition counts as one) per three characters, or a shared prefix.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(name, c), c))
        .filter(|(d, c)| *d <= allowed || (name.len() >= 3 && c.starts_with(name)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "alice",
            "work-2",
            "a",
            "0day",
            "team.prod",
            "x_y",
            &"a".repeat(64),
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_each_rule_with_its_reason() {
        assert!(check("").unwrap_err().contains("empty"));
        assert!(check(&"a".repeat(65)).unwrap_err().contains("limit is 64"));
        assert!(check("-x").unwrap_err().contains("start with"));
        assert!(check(".x").unwrap_err().contains("start with"));
        assert!(check("a b").unwrap_err().contains("' '"));
        assert!(check("a/b").unwrap_err().contains("'/'"));
        assert!(check("é").unwrap_err().contains("start with"));
        assert!(check("list").unwrap_err().contains("codex-as command"));
    }

    #[test]
    fn suggests_only_near_misses() {
        let names = ["alice", "bob", "default"];
        assert_eq!(suggest("alcie", names), Some("alice"));
        assert_eq!(suggest("defualt", names), Some("default"));
        assert_eq!(suggest("bbo", names), Some("bob"));
        assert_eq!(suggest("ali", names), Some("alice"));
        assert_eq!(suggest("zzz", names), None);
        assert_eq!(suggest("carol", names), None);
    }
}
