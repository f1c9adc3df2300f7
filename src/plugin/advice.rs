//! The plugin's companion gives advice that names the plain `codex` command: "Run `!codex
//! login`", "Resume in Codex: codex resume <id>". Under codex-as that would act on the wrong
//! account (the default one), so codex-as says the codex-as form beside it, on stderr, leaving
//! the companion's stdout byte for byte as it was (scripts parse it, `--json` included). Its
//! "Check /codex:status <job>" is a Claude Code command: from a shell, the codex-as form too.

/// Advice found in a line of the companion's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    /// "Run `!codex login`." (setup, when the account is not logged in).
    Login,
    /// "codex resume <thread id>" (task, result, status, transfer; text or JSON).
    Resume(String),
    /// "Check /codex:status <job id> for progress." (a task started in the background).
    Status(String),
}

const LOGIN: &str = "!codex login";
const RESUME: &str = "codex resume ";
const STATUS: &str = "Check /codex:status ";

/// Who a resume hint names, as the caller found the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumer<'a> {
    /// The account asked is logged in.
    Asked,
    /// The account asked is not; this one is.
    Other(&'a str),
    /// No account is logged in.
    Nobody,
}

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
    if let Some(at) = line.find(STATUS)
        && let Some(job) = thread_id(&line[at + STATUS.len()..])
    {
        found.push(Advice::Status(job.to_string()));
    }
    found
}

/// The codex-as form of `advice` for `account`, one line for stderr, or None when there is
/// nothing to add: the status advice is already right inside Claude Code (`in_claude_code`).
pub fn hint(
    advice: &Advice,
    account: &str,
    resumer: &Resumer<'_>,
    in_claude_code: bool,
) -> Option<String> {
    Some(match advice {
        Advice::Login => format!(
            "codex-as: as '{account}', log in with `codex-as login {account}` (the plugin's `!codex login` would log in the default account)"
        ),
        // `resume` carries the thread from whichever account's home holds it (it may have moved).
        Advice::Resume(id) => match resumer {
            Resumer::Asked => {
                format!("codex-as: resume as '{account}': codex-as {account} resume {id}")
            }
            Resumer::Other(other) => format!(
                "codex-as: '{account}' is not logged in; resume as '{other}': codex-as {other} resume {id}"
            ),
            Resumer::Nobody => format!(
                "codex-as: no account is logged in; to resume: codex-as login {account}, then codex-as {account} resume {id}"
            ),
        },
        Advice::Status(_) if in_claude_code => return None,
        Advice::Status(job) => {
            format!("codex-as: from a shell: codex-as {account} status {job}")
        }
    })
}

/// Whether codex-as runs inside Claude Code (its Bash tool, a hook): Claude Code marks every
/// process it starts with `CLAUDECODE`.
pub fn in_claude_code() -> bool {
    std::env::var_os("CLAUDECODE").is_some_and(|v| !v.is_empty())
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
        assert_eq!(
            scan(
                "Codex Task started in the background as task-mq1-ab2. Check /codex:status task-mq1-ab2 for progress."
            ),
            [Advice::Status("task-mq1-ab2".into())]
        );
        assert_eq!(
            scan("| `/codex:status task-x` |"),
            [],
            "a status table's actions"
        );
    }

    #[test]
    fn hints_name_an_account_that_can_act() {
        let h = |a: &Advice, r: Resumer<'_>, cc: bool| hint(a, "alice", &r, cc);
        let id = "019a1b2c";
        let resume = Advice::Resume(id.into());
        assert!(
            h(&Advice::Login, Resumer::Asked, false)
                .unwrap()
                .contains("`codex-as login alice`")
        );
        assert!(
            h(&resume, Resumer::Asked, false)
                .unwrap()
                .ends_with(&format!("codex-as alice resume {id}"))
        );
        let other = h(&resume, Resumer::Other("bob"), false).unwrap();
        assert!(
            other.ends_with(&format!("codex-as bob resume {id}")),
            "{other}"
        );
        assert!(other.contains("'alice' is not logged in"), "{other}");
        let nobody = h(&resume, Resumer::Nobody, false).unwrap();
        assert!(nobody.contains("codex-as login alice, then"), "{nobody}");
        let status = Advice::Status("task-1".into());
        assert_eq!(
            h(&status, Resumer::Asked, false).as_deref(),
            Some("codex-as: from a shell: codex-as alice status task-1")
        );
        assert_eq!(h(&status, Resumer::Asked, true), None, "inside Claude Code");
    }
}
