//! The code `codex-as use` prints for the init's shell function: switch to an account, or with
//! `--unset` leave codex-as's accounts and put back the identity variables `use` removed.

use askama::Template;

use crate::account::env::{ACCOUNT_MARKER, CODEX_HOME, EnvPlan, IDENTITY_VARS};
use crate::shell::Shell;

/// What the `use` templates are rendered from. Names are codex-as's own constants (safe
/// unquoted); values are quoted for the target shell.
#[derive(Debug, Default)]
pub struct Switch {
    /// Identity variables this shell has: saved (unexported), then removed.
    pub save: Vec<&'static str>,
    /// Variables to remove (when present).
    pub unset: Vec<String>,
    /// Saved identity variables to put back (when saved).
    pub restore: Vec<&'static str>,
    /// (name, quoted value) to export.
    pub set: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "use.sh", escape = "none")]
struct PosixSwitch<'a> {
    save: &'a [&'static str],
    unset: &'a [String],
    restore: &'a [&'static str],
    set: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "use.fish", escape = "none")]
struct FishSwitch<'a> {
    save: &'a [&'static str],
    unset: &'a [String],
    restore: &'a [&'static str],
    set: &'a [(String, String)],
}

/// A value is not valid UTF-8; no shell can be given it safely through our quoting.
#[derive(Debug, thiserror::Error)]
#[error("{0} would not be valid UTF-8; shells cannot be given it safely (rename the folder)")]
pub struct NotUtf8(pub String);

impl Switch {
    /// Switching to an account: `present` says whether the shell has a variable (exported, so
    /// the binary sees it).
    pub fn to_account(
        plan: &EnvPlan,
        shell: Shell,
        present: impl Fn(&str) -> bool,
    ) -> Result<Switch, NotUtf8> {
        let mut sw = Switch::default();
        for name in &plan.unset {
            match IDENTITY_VARS.iter().find(|v| **v == name.as_str()) {
                Some(v) if present(v) => sw.save.push(v),
                Some(_) => {}
                None => sw.unset.push(name.clone()),
            }
        }
        for (name, value) in &plan.set {
            let value = value.to_str().ok_or_else(|| NotUtf8(name.clone()))?;
            sw.set.push((name.clone(), shell.quote(value)));
        }
        Ok(sw)
    }

    /// `use --unset`: no account any more, and the identity variables back as they were.
    pub fn leave() -> Switch {
        Switch {
            unset: vec![CODEX_HOME.to_string(), ACCOUNT_MARKER.to_string()],
            restore: IDENTITY_VARS.to_vec(),
            ..Switch::default()
        }
    }

    pub fn render(&self, shell: Shell) -> askama::Result<String> {
        match shell {
            Shell::Bash | Shell::Zsh | Shell::Posix => PosixSwitch {
                save: &self.save,
                unset: &self.unset,
                restore: &self.restore,
                set: &self.set,
            }
            .render(),
            Shell::Fish => FishSwitch {
                save: &self.save,
                unset: &self.unset,
                restore: &self.restore,
                set: &self.set,
            }
            .render(),
        }
    }

    /// The one line `use` prints on stderr when it removed identity variables, or None.
    pub fn notice(&self, account: &str) -> Option<String> {
        if self.save.is_empty() {
            return None;
        }
        let them = if self.save.len() == 1 { "it" } else { "them" };
        Some(format!(
            "removed {} from this shell: Codex would use {them} instead of {account}'s login; `codex-as use --unset` puts {them} back",
            self.save.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> EnvPlan {
        EnvPlan {
            set: vec![(CODEX_HOME.into(), "/h/it's".into())],
            unset: vec!["OPENAI_API_KEY".into(), "CODEX_API_KEY".into()],
        }
    }

    #[test]
    fn saves_only_what_the_shell_has() {
        let sw = Switch::to_account(&plan(), Shell::Bash, |v| v == "OPENAI_API_KEY").unwrap();
        assert_eq!(sw.save, ["OPENAI_API_KEY"]);
        let code = sw.render(Shell::Bash).unwrap();
        assert!(
            code.contains("__codex_as_saved_OPENAI_API_KEY=$OPENAI_API_KEY\nunset OPENAI_API_KEY")
        );
        assert!(!code.contains("CODEX_API_KEY"));
        assert!(code.contains(r"export CODEX_HOME='/h/it'\''s'"));
        assert!(
            sw.notice("work")
                .unwrap()
                .starts_with("removed OPENAI_API_KEY from")
        );
        let none = Switch::to_account(&plan(), Shell::Fish, |_| false).unwrap();
        assert_eq!(none.notice("work"), None);
        assert!(
            none.render(Shell::Fish)
                .unwrap()
                .contains(r"set -gx CODEX_HOME '/h/it\'s'")
        );
    }

    #[test]
    fn leaving_restores_every_identity_variable() {
        let code = Switch::leave().render(Shell::Fish).unwrap();
        for v in IDENTITY_VARS {
            assert!(code.contains(&format!("if set -q __codex_as_saved_{v}; set -gx {v} ")));
        }
        assert!(code.contains("if set -q CODEX_HOME; set -e CODEX_HOME; end"));
    }
}
