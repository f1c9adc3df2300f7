//! `codex-as use NAME`: only a shell function can change its own shell's environment, so the
//! binary either prints the code for the init's function (hidden `--emit SHELL`) or explains how
//! to load the init.

use crate::cli::UseArgs;
use crate::error::{UsageError, status};
use crate::shell::{self, Shell};

pub fn run(args: UseArgs) -> anyhow::Result<u8> {
    let Some(shell) = args.emit else {
        eprintln!("codex-as: {}", needs_init(Shell::from_env()));
        return Ok(status::USAGE);
    };
    let name = match (&args.name, args.unset) {
        (_, true) => crate::account::DEFAULT.to_string(),
        (Some(name), false) => name.clone(),
        (None, false) => {
            return Err(UsageError::new(
                "give an account name (`codex-as use work`), or `--unset` for the default account",
            )
            .into());
        }
    };
    print!("{}", shell::env::for_account(&name, shell)?);
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
