//! `codex-as ACCOUNT [--cwd DIR] -- COMMAND [ARGS]...` and `codex-as ACCOUNT <companion command>`;
//! `ACCOUNT` may also be a list (`a,b,c`) or `auto`, handed to `fallback`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::account::directory;
use crate::account::env::EnvPlan;
use crate::account::{Account, Accounts};
use crate::error::UsageError;
use crate::plugin::locate as plugin;
use crate::sys::exec;

/// What follows the account name.
#[derive(Debug, PartialEq, Eq)]
pub struct RunArgs {
    pub account: String,
    pub plugin_root: Option<PathBuf>,
    pub mode: Mode,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-- COMMAND [ARGS]...`
    Exec {
        cwd: Option<PathBuf>,
        command: Vec<OsString>,
    },
    /// `SUBCOMMAND [ARGS]...` for the plugin's companion, passed on unchanged.
    Companion { args: Vec<OsString> },
}

pub fn parse(raw: Vec<OsString>) -> Result<RunArgs, UsageError> {
    let mut it = raw.into_iter();
    let account = it
        .next()
        .ok_or_else(|| UsageError::new("missing account name (see `codex-as --help`)"))?
        .into_string()
        .map_err(|n| UsageError::new(format!("account name {n:?} is not valid UTF-8")))?;
    let mut cwd = None;
    let mut plugin_root = None;
    let value = |it: &mut std::vec::IntoIter<OsString>, flag: &str| {
        it.next()
            .map(PathBuf::from)
            .ok_or_else(|| UsageError::new(format!("{flag} needs a folder")))
    };
    loop {
        let Some(arg) = it.next() else {
            return Err(UsageError::new(format!(
                "nothing to run as '{account}': give a companion command (`codex-as {account} task \"...\"`) or a program after `--` (`codex-as {account} -- codex`)"
            )));
        };
        let text = arg.to_string_lossy().into_owned();
        match text.as_str() {
            "--" => break,
            "--cwd" => cwd = Some(value(&mut it, "--cwd")?),
            "--plugin-root" => plugin_root = Some(value(&mut it, "--plugin-root")?),
            _ if text.starts_with("--cwd=") => cwd = Some(PathBuf::from(&text[6..])),
            _ if text.starts_with("--plugin-root=") => {
                plugin_root = Some(PathBuf::from(&text[14..]))
            }
            _ if text.starts_with('-') => {
                return Err(UsageError::new(format!(
                    "unknown option '{text}' for `codex-as {account}`: options of the command go after it (or after `--`)"
                )));
            }
            _ if plugin::COMMANDS.contains(&text.as_str())
                || plugin::INTERNAL_COMMANDS.contains(&text.as_str()) =>
            {
                if cwd.is_some() {
                    return Err(UsageError::new(format!(
                        "--cwd is for `-- COMMAND`; give the companion its own: `codex-as {account} {text} --cwd DIR ...`"
                    )));
                }
                let mut args = vec![arg];
                args.extend(it);
                return Ok(RunArgs {
                    account,
                    plugin_root,
                    mode: Mode::Companion { args },
                });
            }
            _ => {
                let hint = crate::account::names::suggest(&text, plugin::COMMANDS.iter().copied())
                    .map(|c| format!("did you mean the companion command '{c}'? "))
                    .unwrap_or_default();
                return Err(UsageError::new(format!(
                    "'{text}' is not a companion command: {hint}to run a program as '{account}', write `codex-as {account} -- {text} ...`"
                )));
            }
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
        plugin_root,
        mode: Mode::Exec { cwd, command },
    })
}

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    if names_no_account(&raw) {
        return run_as_directory_account(raw);
    }
    let args = parse(raw)?;
    if let Some(target) = super::fallback::target(&args.account)? {
        return super::fallback::run(target, args);
    }
    let accounts = Accounts::load()?;
    let account = accounts.require(&args.account)?;
    run_as(&accounts, &account, args)
}

/// `codex-as task ...`, `codex-as -- CMD`, `codex-as --cwd DIR -- CMD`: no account named, so
/// the folder's decides. (clap would swallow the leading `--` and refuse `--cwd`, so `main`
/// asks this first, with the raw arguments after the program name.)
pub fn names_no_account(raw: &[OsString]) -> bool {
    raw.first().and_then(|a| a.to_str()).is_some_and(|first| {
        matches!(first, "--" | "--cwd" | "--plugin-root")
            || first.starts_with("--cwd=")
            || first.starts_with("--plugin-root=")
            || plugin::COMMANDS.contains(&first)
            // `codex-as help` stays codex-as's own (an unknown-command error pointing at --help).
            || (plugin::INTERNAL_COMMANDS.contains(&first) && first != "help")
    })
}

/// Runs as the account of the folder the command works in (`--cwd`, the companion's own
/// `--cwd`, else here). A pin naming an unusable account is an error naming the pin file.
pub fn run_as_directory_account(raw: Vec<OsString>) -> anyhow::Result<u8> {
    let mut with_name = vec![OsString::from(crate::account::DEFAULT)];
    with_name.extend(raw);
    let mut args = parse(with_name)?;
    let here = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current folder: {e}"))?;
    let dir = match &args.mode {
        Mode::Exec { cwd: Some(c), .. } => here.join(c),
        Mode::Exec { cwd: None, .. } => here,
        Mode::Companion { args } => crate::plugin::workspace::companion_cwd(args, &here),
    };
    let accounts = Accounts::load()?;
    let account = directory::for_directory(&dir, &accounts)?.account(&accounts)?;
    args.account = account.name.clone();
    run_as(&accounts, &account, args)
}

fn run_as(accounts: &Accounts, account: &Account, args: RunArgs) -> anyhow::Result<u8> {
    match args.mode {
        Mode::Companion {
            args: companion_args,
        } => super::companion::run(
            accounts,
            account,
            args.plugin_root.as_deref(),
            companion_args,
        ),
        Mode::Exec { cwd, command } => {
            let plan = EnvPlan::for_account(account);
            let (program, rest) = command
                .split_first()
                .ok_or_else(|| UsageError::new("nothing to run"))?;
            Err(exec::exec(program, rest, &plan, cwd.as_deref()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn exec(cwd: Option<&str>, cmd: &[&str]) -> Mode {
        Mode::Exec {
            cwd: cwd.map(PathBuf::from),
            command: os(cmd),
        }
    }

    #[test]
    fn parses_options_before_the_separator() {
        let a = parse(os(&["w", "--cwd", "/x", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!(a.account, "w");
        assert_eq!(a.mode, exec(Some("/x"), &["sh", "-c", "x"]));
        let a = parse(os(&["w", "--cwd=/y", "--", "a"])).unwrap();
        assert_eq!(a.mode, exec(Some("/y"), &["a"]));
        // Everything after `--` belongs to the command, even `--` and `--cwd`.
        let a = parse(os(&["w", "--", "a", "--", "--cwd"])).unwrap();
        assert_eq!(a.mode, exec(None, &["a", "--", "--cwd"]));
    }

    #[test]
    fn companion_commands_pass_through_unchanged() {
        let a = parse(os(&[
            "w",
            "--plugin-root",
            "/p",
            "task",
            "--cwd",
            "x",
            "--",
            "hi",
        ]))
        .unwrap();
        assert_eq!(a.plugin_root, Some(PathBuf::from("/p")));
        let args = os(&["task", "--cwd", "x", "--", "hi"]);
        assert_eq!(a.mode, Mode::Companion { args });
        let e = parse(os(&["w", "--cwd", "x", "task"])).unwrap_err().0;
        assert!(e.contains("task --cwd"), "{e}");
        let e = parse(os(&["w", "taks"])).unwrap_err().0;
        assert!(
            e.contains("did you mean the companion command 'task'"),
            "{e}"
        );
    }

    #[test]
    fn knows_when_no_account_is_named() {
        for named in [
            &["work", "task"][..],
            &["help"],
            &["list"],
            &["a,b", "--", "x"],
        ] {
            assert!(!names_no_account(&os(named)), "{named:?}");
        }
        for unnamed in [
            &["task", "x"][..],
            &["--", "codex"],
            &["--cwd", "/x", "--", "y"],
            &["--cwd=/x", "--", "y"],
            &["task-resume-candidate", "--json"],
        ] {
            assert!(names_no_account(&os(unnamed)), "{unnamed:?}");
        }
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
            parse(os(&["w", "ls-files"]))
                .unwrap_err()
                .0
                .contains("codex-as w -- ls-files")
        );
    }
}
