//! The shell doctor runs in: inherited CODEX_HOME and identity variables, aliases in rc files
//! that set CODEX_HOME, and whether the init is loaded from the shell's rc file.

use std::path::{Path, PathBuf};

use super::{Report, account_of, q};
use crate::account::Accounts;
use crate::account::env::{CODEX_HOME, IDENTITY_VARS};
use crate::shell::Shell;

fn unset(shell: Shell, var: &str) -> String {
    match shell {
        Shell::Fish => format!("set -e {var}"),
        _ => format!("unset {var}"),
    }
}

/// The rc files each shell reads, the first being where the init belongs.
fn rc_files(shell: Shell, home: &Path) -> Vec<PathBuf> {
    let zdot = std::env::var_os("ZDOTDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.to_path_buf());
    let fish_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("fish");
    match shell {
        Shell::Bash => [".bashrc", ".bash_profile", ".bash_aliases", ".profile"]
            .iter()
            .map(|f| home.join(f))
            .collect(),
        Shell::Zsh => [".zshrc", ".zshenv", ".zprofile"]
            .iter()
            .map(|f| zdot.join(f))
            .collect(),
        Shell::Fish => {
            let mut files = vec![fish_dir.join("config.fish")];
            if let Ok(entries) = std::fs::read_dir(fish_dir.join("conf.d")) {
                let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                more.sort();
                files.extend(more);
            }
            files
        }
        Shell::Posix => vec![home.join(".profile")],
    }
}

/// An alias (or fish abbreviation) whose expansion sets CODEX_HOME.
fn is_codex_home_alias(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("alias ") || t.starts_with("abbr ")) && t.contains("CODEX_HOME=")
}

pub fn check(accounts: Option<&Accounts>, report: &mut Report) {
    let shell = Shell::from_env();
    if let Some(home) = std::env::var_os(CODEX_HOME).filter(|v| !v.is_empty()) {
        let home = PathBuf::from(home);
        match accounts.and_then(|a| account_of(a, &home)) {
            Some(name) => report.note("shell", format!("CODEX_HOME is account '{name}'")),
            None if !home.is_dir() => report.finding(
                "shell",
                CODEX_HOME,
                format!("CODEX_HOME={} is inherited and does not exist: codex refuses to start", home.display()),
                unset(shell, CODEX_HOME),
            ),
            None => report.finding(
                "shell",
                CODEX_HOME,
                format!("CODEX_HOME={} is inherited and is no codex-as account: codex here runs on that folder", home.display()),
                format!("{}   # or: codex-as add NAME --home {}", unset(shell, CODEX_HOME), q(&home)),
            ),
        }
    }
    for var in IDENTITY_VARS {
        if std::env::var_os(var).is_some() {
            report.finding(
                "shell",
                *var,
                format!("{var} is set in this shell: codex run outside codex-as acts on it instead of the account's login (codex-as removes it from its runs)"),
                unset(shell, var),
            );
        }
    }
    let Ok(home) = crate::account::config::home_dir() else {
        return;
    };
    let files = rc_files(shell, &home);
    let mut init_loaded = false;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if line.contains("codex-as init") {
                init_loaded = true;
            }
            if is_codex_home_alias(line) {
                report.finding(
                    "shell",
                    format!("{}:{}", file.display(), i + 1),
                    "an alias sets CODEX_HOME: it exists only in interactive shells and applies to the first command only",
                    format!(
                        "sed -i.bak '{}d' {}   # then: codex-as init {} --shortcuts gives a codex-NAME function per account",
                        i + 1,
                        q(file),
                        if shell == Shell::Posix { Shell::Bash } else { shell }
                    ),
                );
            }
        }
    }
    let Some(rc) = files.first() else {
        return;
    };
    match shell {
        Shell::Posix => report.note(
            "shell",
            "SHELL is not bash, zsh or fish: no shell integration checked",
        ),
        _ if init_loaded => report.note(
            "shell",
            format!("the {shell} integration is loaded from {}", rc.display()),
        ),
        // Optional: every command works without it, so it is a note, not a problem.
        Shell::Fish => report.note(
            "shell",
            format!(
                "the fish integration is not loaded (optional; it gives `codex-as use` and completion): echo 'codex-as init fish | source' >> {}",
                q(rc)
            ),
        ),
        _ => report.note(
            "shell",
            format!(
                "the {shell} integration is not loaded (optional; it gives `codex-as use` and completion): echo 'eval \"$(codex-as init {shell})\"' >> {}",
                q(rc)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_aliases_that_set_codex_home() {
        assert!(is_codex_home_alias(
            "alias codex-work='CODEX_HOME=~/.codex-work codex'"
        ));
        assert!(is_codex_home_alias("  abbr -a cw CODEX_HOME=~/.w codex"));
        assert!(!is_codex_home_alias("export CODEX_HOME=~/.codex-work"));
        assert!(!is_codex_home_alias("alias ll='ls -l'"));
    }
}
