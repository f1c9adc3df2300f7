//! The plugin's companion gives advice that names the plain `codex` command: "Run `!codex
//! login`", "Resume in Codex: codex resume <id>". Under codex-as that would act on the wrong
//! account (the default one), so codex-as says the codex-as form beside it, on stderr, leaving
//! the companion's stdout byte for byte as it was (scripts parse it, `--json` included).

/// Advice found in a line of the companion's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    /// "Run `!codex login`." (setup, when the account is not logged in).
    Login,
    /// "codex resume <thread id>" (task, result, status, transfer; text or JSON).
    Resume(String),
}

const LOGIN: &str = "!codex login";
const RESUME: &str = "codex resume ";

/// A Codex thread id as the companion prints it: letters, digits and dashes (a UUID).
fn thread_id(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(s.len());
    let id = &s[..end];
    (!id.is_empty()).then_some(id)
}

/// Every piece of advice in `line` (usually none).
pub fn scan(line: &str) -> Vec<Advice> {
    let mut found = Vec::new();
    if line.contains(LOGIN) {
        found.push(Advice::Login);
    }
    let mut rest = line;
    while let Some(at) = rest.find(RESUME) {
        let after = &rest[at + RESUME.len()..];
        // Not `codex-as NAME -- codex resume` (already ours) nor part of a longer word.
        let before = &rest[..at];
        let ours = before.trim_end().ends_with("--");
        let word_start = before
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '!'));
        if let Some(id) = thread_id(after)
            && !ours
            && word_start
        {
            let advice = Advice::Resume(id.to_string());
            if !found.contains(&advice) {
                found.push(advice);
            }
        }
        rest = after;
    }
    found
}

/// The codex-as form of `advice` for `account`, one line for stderr.
pub fn hint(advice: &Advice, account: &str) -> String {
    match advice {
        Advice::Login => format!(
            "codex-as: as '{account}', log in with `codex-as login {account}` (the plugin's `!codex login` would log in the default account)"
        ),
        Advice::Resume(id) => {
            // `resume` finds the thread in whichever account's home holds it (it may have moved).
            format!("codex-as: resume as '{account}': codex-as {account} resume {id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_plugins_advice_in_text_and_json() {
        assert_eq!(scan("- Run `!codex login`."), [Advice::Login]);
        let id = "019a1b2c-3d4e-7f00-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            scan(&format!("Resume in Codex: codex resume {id}")),
            [Advice::Resume(id.into())]
        );
        assert_eq!(
            scan(&format!("  \"resumeCommand\": \"codex resume {id}\",")),
            [Advice::Resume(id.into())]
        );
        assert_eq!(scan("nothing here"), []);
        assert_eq!(scan(&format!("codex-as a -- codex resume {id}")), []);
        assert_eq!(scan(&format!("codex-as a resume {id}")), []);
        assert_eq!(scan("mycodex resume x"), []);
        assert!(hint(&Advice::Login, "alice").contains("`codex-as login alice`"));
        assert!(
            hint(&Advice::Resume(id.into()), "alice")
                .ends_with(&format!("codex-as alice resume {id}"))
        );
    }
}
