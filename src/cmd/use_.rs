//! `codex-as use NAME`: only a shell function can change its own shell's environment, so the
//! binary either prints the code for the init's function (hidden `--emit SHELL`) or explains how
//! to load the init.

use anyhow::Context;

use crate::account::Accounts;
use crate::account::env::EnvPlan;
use crate::cli::UseArgs;
use crate::error::{UsageError, status};
use crate::shell::Shell;
use crate::shell::switch::Switch;

pub fn run(args: UseArgs) -> anyhow::Result<u8> {
    let Some(shell) = args.emit else {
        eprintln!("codex-as: {}", needs_init(Shell::from_env()));
        return Ok(status::USAGE);
    };
    let code = if args.unset {
        Switch::leave()
    } else {
        let Some(name) = &args.name else {
            return Err(UsageError::new(
                "give an account name (`codex-as use work`), or `--unset` to leave codex-as's accounts",
            )
            .into());
        };
        let accounts = Accounts::load()?;
        let account = accounts.require(name)?;
        let sw = Switch::to_account(&EnvPlan::for_account(&account), shell, |v| {
            std::env::var_os(v).is_some()
        })
        .map_err(|e| UsageError::new(e.to_string()))?;
        if let Some(line) = sw.notice(&account.name) {
            eprintln!("codex-as: {line}");
        }
        sw
    };
    crate::out!(
        "{}",
        code.render(shell).context("cannot render the switch")?
    )?;
    Ok(status::OK)
}

/// One line telling the user how to load the init in their shell.
fn needs_init(shell: Shell) -> String {
    let how = match shell {
        Shell::Fish => "add `codex-as init fish | source` to ~/.config/fish/config.fish".to_string(),
        Shell::Zsh | Shell::Bash => {
            let rc = if shell == Shell::Zsh { "~/.zshrc" } else { "~/.bashrc" };
            format!("add `eval \"$(codex-as init {shell})\"` to {rc}")
        }
        Shell::Posix => {
            "add `eval \"$(codex-as init bash)\"` to ~/.bashrc (or `init zsh` to ~/.zshrc, `init fish | source` to fish's config.fish)".to_string()
        }
    };
    format!(
        "`codex-as use` changes the shell it runs in, so it needs the shell integration: {how}, then open a new shell (or, without it: eval \"$(codex-as env NAME)\")"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_per_shell() {
        assert!(needs_init(Shell::Zsh).contains("init zsh)\"` to ~/.zshrc"));
        assert!(needs_init(Shell::Fish).contains("init fish | source"));
        assert!(!needs_init(Shell::Bash).contains('\n'));
    }
}
