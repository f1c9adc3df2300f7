//! Quoting values for the shells whose code codex-as prints. Fish is not POSIX: inside its single
//! quotes only `\\` and `\'` are special, and `'\''` would not work there.

/// Single-quoted for any POSIX shell: every byte is literal, `'` is closed, escaped, reopened.
pub fn posix(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The value bare when every character is plain (letters, digits, `/._-+,:@%=`), else
/// [`posix`]-quoted: for commands a person reads back, such as a hook line in a settings file.
pub fn posix_if_needed(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        value.to_string()
    } else {
        posix(value)
    }
}

/// Single-quoted for fish.
pub fn fish(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A path for a table on a terminal: control characters (a newline in a folder name) escaped,
/// so one row stays one line.
pub fn for_terminal(p: &std::path::Path) -> String {
    p.to_string_lossy()
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_quoting() {
        assert_eq!(posix("a b"), "'a b'");
        assert_eq!(posix("it's"), r"'it'\''s'");
        assert_eq!(posix("$(x)`y`\\"), r"'$(x)`y`\'");
    }

    #[test]
    fn fish_quoting() {
        assert_eq!(fish("it's"), r"'it\'s'");
        assert_eq!(fish(r"a\b"), r"'a\\b'");
        assert_eq!(fish("$x"), "'$x'");
    }
}
