//! Homes Codex itself would misread: it expands command substitution found in CODEX_HOME
//! (Codex 0.169: `CODEX_HOME='/x/a$(touch PWNED)b' codex exec ...` runs `touch PWNED`), so a
//! home holding `$(` or a backtick would run code whenever Codex starts, whatever codex-as
//! quotes.

use std::path::Path;

/// Why Codex must never be given `home` as CODEX_HOME, if so. `doctor` and `list` use it to warn
/// about a configured home; `add`, `login` and name resolution refuse one.
pub fn home_is_unsafe(home: &Path) -> Option<&'static str> {
    let bytes = home.as_os_str().as_encoded_bytes();
    if bytes.windows(2).any(|w| w == b"$(") {
        Some("it contains `$(`, which Codex runs as a command when it reads CODEX_HOME")
    } else if bytes.contains(&b'`') {
        Some("it contains a backtick, which Codex runs as a command when it reads CODEX_HOME")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_substitution_is_unsafe_everything_else_is_not() {
        for bad in ["/x/a$(touch p)b", "/x/$(", "/x/`id`", "/x/a`b"] {
            assert!(home_is_unsafe(Path::new(bad)).is_some(), "{bad}");
        }
        assert!(home_is_unsafe(Path::new("/x/$(y")).unwrap().contains("$("));
        assert!(
            home_is_unsafe(Path::new("/x/`y"))
                .unwrap()
                .contains("backtick")
        );
        for ok in [
            "/home/u/.codex-work",
            "/x/dollar $HOME",
            "/x/${HOME}",
            "/x/$",
            "/x/(touch p)",
            "/x/a'; touch p; '",
            "/x/new\nline",
        ] {
            assert_eq!(home_is_unsafe(Path::new(ok)), None, "{ok:?}");
        }
    }
}
