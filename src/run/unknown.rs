//! A word in command position that is no account but is close to a codex-as command (`lsit`)
//! or to a companion command (`taks`) is refused before anything else, naming the command (and
//! an account, when one is close too). Words close to no command keep the account's own error.

use crate::account::spec::AUTO;
use crate::account::{AccountError, Accounts};
use crate::error::UsageError;
use crate::words;

pub fn check_word(word: &str, accounts: &Accounts) -> Result<(), UsageError> {
    if word.contains(',') || word == AUTO || word.starts_with('-') {
        return Ok(());
    }
    let Err(AccountError::Unknown { suggestion, .. }) = accounts.resolve(word) else {
        return Ok(());
    };
    let commands = words::COMMANDS;
    let companion = words::COMPANION;
    let Some(command) =
        crate::account::names::suggest(word, commands.iter().chain(companion).copied())
    else {
        return Ok(());
    };
    // `codex-as task ...` with no account runs as the folder's account.
    let what = if companion.contains(&command) && !commands.contains(&command) {
        format!("the companion command `codex-as {command} ...` (run as this folder's account)")
    } else {
        format!("the command `codex-as {command}`")
    };
    let account = suggestion
        .map(|a| format!(" or the account '{a}' (`codex-as {a} ...`)"))
        .unwrap_or_default();
    Err(UsageError::new(format!(
        "'{word}' is neither a command nor an account: did you mean {what}{account}? (`codex-as --help` lists the commands, `codex-as list` the accounts)"
    )))
}
