//! `codex-as help [COMMAND [SUBCOMMAND]]`, the same as `--help`: clap's own help subcommand is
//! off (an account may be named anything but codex-as's words, and `help` is one of them), so the
//! words are turned into the `--help` form before clap reads them.

use std::ffi::OsString;

use crate::error::UsageError;
use crate::words;

/// `[codex-as, help, CMD...]` becomes `[codex-as, CMD..., --help]`; anything else is returned as
/// it is. A companion command asks for the companion's own help (it needs no account: the
/// default one is used, and nothing is started). An unknown word is refused with a suggestion.
pub fn rewrite(cli: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, UsageError> {
    if args.get(1).is_none_or(|a| a != words::HELP) {
        return Ok(args);
    }
    let mut out: Vec<OsString> = args[..1].to_vec();
    let words = &args[2..];
    let Some(first) = words.first() else {
        out.push("--help".into());
        return Ok(out);
    };
    let first = first.to_string_lossy();
    if let Some(sub) = cli.find_subcommand(first.as_ref()) {
        out.push(first.as_ref().into());
        // One level further (`help brokers stop`), when it names a subcommand of that command.
        if let Some(second) = words.get(1).map(|w| w.to_string_lossy())
            && sub.find_subcommand(second.as_ref()).is_some()
        {
            out.push(second.as_ref().into());
        }
        out.push("--help".into());
        return Ok(out);
    }
    if words::COMPANION.contains(&first.as_ref()) {
        out.extend([
            crate::account::DEFAULT.into(),
            first.as_ref().into(),
            "--help".into(),
        ]);
        return Ok(out);
    }
    let commands = words::COMMANDS.iter().chain(words::COMPANION).copied();
    let hint = crate::account::names::suggest(&first, commands)
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Err(UsageError::new(format!(
        "no help for '{first}'{hint}: `codex-as --help` lists the commands"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn help_words_become_the_help_flag() {
        let cli = <crate::cli::Cli as clap::CommandFactory>::command();
        let r = |v: &[&str]| rewrite(&cli, words(v)).map(|w| words_str(&w));
        assert_eq!(r(&["c", "help"]).unwrap(), ["c", "--help"]);
        assert_eq!(
            r(&["c", "help", "login"]).unwrap(),
            ["c", "login", "--help"]
        );
        assert_eq!(
            r(&["c", "help", "brokers", "stop"]).unwrap(),
            ["c", "brokers", "stop", "--help"]
        );
        assert_eq!(
            r(&["c", "help", "task"]).unwrap(),
            ["c", "default", "task", "--help"]
        );
        assert_eq!(r(&["c", "list"]).unwrap(), ["c", "list"]);
        assert_eq!(r(&["c", "alice", "help"]).unwrap(), ["c", "alice", "help"]);
        assert!(
            r(&["c", "help", "lsit"])
                .unwrap_err()
                .0
                .contains("did you mean 'list'")
        );
    }

    fn words_str(w: &[OsString]) -> Vec<String> {
        w.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }
}
