//! A word in command position that is no account but is close to a codex-as command (`lsit`)
//! is refused before anything else, naming the command (and an account, when one is close
//! too). Words close to no command keep the account's own error.

use crate::account::spec::AUTO;
use crate::account::{AccountError, Accounts};
use crate::error::UsageError;

pub fn check_word(word: &str) -> anyhow::Result<()> {
    if word.contains(',') || word == AUTO || word.starts_with('-') {
        return Ok(());
    }
    let accounts = Accounts::load()?;
    let Err(AccountError::Unknown { suggestion, .. }) = accounts.resolve(word) else {
        return Ok(());
    };
    let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
    cli.build();
    let commands: Vec<&str> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name())
        .collect();
    let Some(command) = crate::account::names::suggest(word, commands.iter().copied()) else {
        return Ok(());
    };
    let account = suggestion
        .map(|a| format!(" or the account '{a}' (`codex-as {a} ...`)"))
        .unwrap_or_default();
    Err(UsageError::new(format!(
        "'{word}' is neither a command nor an account: did you mean the command `codex-as {command}`{account}? (`codex-as --help` lists the commands, `codex-as list` the accounts)"
    ))
    .into())
}
