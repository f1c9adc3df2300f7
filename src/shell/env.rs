//! `codex-as env NAME`: shell code that gives the shell evaluating it an account's environment,
//! rendered from the `env.sh` and `env.fish` templates.

use askama::Template;

use crate::account::Accounts;
use crate::account::env::EnvPlan;
use crate::error::UsageError;

use super::Shell;

#[derive(Template)]
#[template(path = "env.sh", escape = "none")]
struct PosixEnv<'a> {
    how: &'a str,
    unset: &'a [String],
    set: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "env.fish", escape = "none")]
struct FishEnv<'a> {
    how: &'a str,
    unset: &'a [String],
    set: &'a [(String, String)],
}

/// Shell code that applies `plan` to the shell that evaluates it; `how` (one line, said in a
/// comment first) tells the reader which shell it is for and why.
pub fn render(plan: &EnvPlan, shell: Shell, how: &str) -> Result<String, UsageError> {
    let mut set = Vec::new();
    for (name, value) in &plan.set {
        let value = value.to_str().ok_or_else(|| {
            UsageError::new(format!(
                "{name} would not be valid UTF-8; shells cannot be given it safely (rename the folder)"
            ))
        })?;
        set.push((name.clone(), shell.quote(value)));
    }
    // A line break would end the comment and run the rest as code.
    let how = how.replace(['\n', '\r'], " ");
    let rendered = match shell {
        Shell::Fish => FishEnv {
            how: &how,
            unset: &plan.unset,
            set: &set,
        }
        .render(),
        Shell::Bash | Shell::Zsh | Shell::Posix => PosixEnv {
            how: &how,
            unset: &plan.unset,
            set: &set,
        }
        .render(),
    };
    let mut out = rendered.map_err(|e| UsageError::new(format!("cannot render the code: {e}")))?;
    out.push('\n');
    Ok(out)
}

/// The code that switches `shell` to the account `name` (its home must exist).
pub fn for_account(name: &str, shell: Shell, how: &str) -> anyhow::Result<String> {
    let accounts = Accounts::load()?;
    let account = accounts.require(name)?;
    Ok(render(&EnvPlan::for_account(&account), shell, how)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn plan() -> EnvPlan {
        EnvPlan {
            set: vec![("CODEX_HOME".into(), OsString::from("/h/it's"))],
            unset: vec!["OPENAI_API_KEY".into()],
        }
    }

    #[test]
    fn says_how_in_a_comment_and_quotes_per_shell() {
        let sh = render(&plan(), Shell::Bash, "bash code: from $SHELL").unwrap();
        assert!(sh.starts_with("# bash code: from $SHELL\n"), "{sh}");
        assert!(sh.contains("unset OPENAI_API_KEY;\n"), "{sh}");
        assert!(sh.contains("export CODEX_HOME='/h/it'\\''s';\n"), "{sh}");
        let fish = render(&plan(), Shell::Fish, "two\nlines").unwrap();
        assert!(fish.starts_with("# two lines\n"), "{fish}");
        assert!(
            fish.contains("if set -q OPENAI_API_KEY; set -e OPENAI_API_KEY; end\n"),
            "{fish}"
        );
        assert!(fish.contains("set -gx CODEX_HOME '/h/it\\'s'\n"), "{fish}");
    }
}
