//! `codex-as ACCOUNT [--cwd DIR] -- COMMAND [ARGS]...`

use std::ffi::OsString;
use std::path::PathBuf;

use crate::account::Accounts;
use crate::account_env::EnvPlan;
use crate::error::UsageError;
use crate::exec;

/// What follows the account name.
#[derive(Debug, PartialEq, Eq)]
pub struct RunArgs {
    pub account: String,
    pub cwd: Option<PathBuf>,
    pub command: Vec<OsString>,
}

pub fn parse(raw: Vec<OsString>) -> Result<RunArgs, UsageError> {
    let mut it = raw.into_iter();
    let account = it
        .next()
        .ok_or_else(|| UsageError::new("missing account name (see `codex-as --help`)"))?
        .into_string()
        .map_err(|n| UsageError::new(format!("account name {n:?} is not valid UTF-8")))?;
    let mut cwd = None;
    loop {
        let Some(arg) = it.next() else {
            return Err(UsageError::new(format!(
                "nothing to run as '{account}': put a command after `--`, e.g. `codex-as {account} -- codex`"
            )));
        };
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--cwd" {
            let dir = it
                .next()
                .ok_or_else(|| UsageError::new("--cwd needs a folder, e.g. `--cwd ~/src/app`"))?;
            cwd = Some(PathBuf::from(dir));
        } else if let Some(dir) = text.strip_prefix("--cwd=") {
            cwd = Some(PathBuf::from(dir));
        } else if text.starts_with('-') {
            return Err(UsageError::new(format!(
                "unknown option '{text}' for `codex-as {account}`: options of the command go after `--`"
            )));
        } else {
            return Err(UsageError::new(format!(
                "'{text}' is not a codex-as command: to run it as '{account}', write `codex-as {account} -- {text} ...`"
            )));
        }
    }
    let command: Vec<OsString> = it.collect();
    if command.is_empty() {
        return Err(UsageError::new(format!(
            "nothing to run after `--`: e.g. `codex-as {account} -- codex`"
        )));
    }
    Ok(RunArgs {
        account,
        cwd,
        command,
    })
}

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    let args = parse(raw)?;
    let accounts = Accounts::load()?;
    let account = accounts.require(&args.account)?;
    let plan = EnvPlan::for_account(&account);
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| UsageError::new("nothing to run"))?;
    Err(exec::exec(program, rest, &plan, args.cwd.as_deref()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_options_before_the_separator() {
        let a = parse(os(&["w", "--cwd", "/x", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!(a.account, "w");
        assert_eq!(a.cwd, Some(PathBuf::from("/x")));
        assert_eq!(a.command, os(&["sh", "-c", "x"]));
        assert_eq!(
            parse(os(&["w", "--cwd=/y", "--", "a"])).unwrap().cwd,
            Some("/y".into())
        );
        // Everything after `--` belongs to the command, even `--` and `--cwd`.
        assert_eq!(
            parse(os(&["w", "--", "a", "--", "--cwd"])).unwrap().command,
            os(&["a", "--", "--cwd"])
        );
    }

    #[test]
    fn explains_what_is_missing() {
        assert!(parse(os(&["w"])).unwrap_err().0.contains("after `--`"));
        assert!(
            parse(os(&["w", "--"]))
                .unwrap_err()
                .0
                .contains("nothing to run")
        );
        assert!(
            parse(os(&["w", "--bogus", "--", "x"]))
                .unwrap_err()
                .0
                .contains("unknown option")
        );
        assert!(
            parse(os(&["w", "ls"]))
                .unwrap_err()
                .0
                .contains("codex-as w -- ls")
        );
    }
}
