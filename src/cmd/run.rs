//! `codex-as ACCOUNT [--cwd DIR] -- COMMAND [ARGS]...` and `codex-as ACCOUNT <companion command>`;
//! `ACCOUNT` may also be a list (`a,b,c`) or `auto`, handed to `fallback`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::account::Accounts;
use crate::account::env::EnvPlan;
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

/// A word in command position that is no account but is close to a codex-as command (`lsit`)
/// is refused before anything else, naming the command (and an account, when one is close
/// too). Words close to no command keep the account's own error.
fn check_word(word: &str) -> anyhow::Result<()> {
    if word.contains(',') || word == super::fallback::AUTO || word.starts_with('-') {
        return Ok(());
    }
    let accounts = Accounts::load()?;
    let Err(crate::account::AccountError::Unknown { suggestion, .. }) = accounts.resolve(word)
    else {
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

pub fn run(raw: Vec<OsString>) -> anyhow::Result<u8> {
    if let Some(word) = raw.first().and_then(|w| w.to_str()) {
        check_word(word)?;
    }
    let args = parse(raw)?;
    if let Mode::Companion { args: cargs } = &args.mode
        && crate::plugin::help::wants_help(cargs)
    {
        return companion_help(&args.account, args.plugin_root.as_deref(), cargs);
    }
    if let Some(target) = super::fallback::target(&args.account)? {
        return super::fallback::run(target, args);
    }
    let accounts = Accounts::load()?;
    let account = accounts.require(&args.account)?;
    match args.mode {
        Mode::Companion {
            args: companion_args,
        } => {
            refuse_logged_out(&account, &companion_args)?;
            super::companion::run(
                &accounts,
                &account,
                args.plugin_root.as_deref(),
                companion_args,
            )
        }
        Mode::Exec { cwd, command } => {
            let plan = EnvPlan::for_account(&account);
            let (program, rest) = command
                .split_first()
                .ok_or_else(|| UsageError::new("nothing to run"))?;
            Err(exec::exec(program, rest, &plan, cwd.as_deref()).into())
        }
    }
}

/// Companion commands that start a turn: on an account that is not logged in, the turn can
/// only hang ("Reconnecting...") or fail after spending the time, so it is refused first.
const TURN_COMMANDS: &[&str] = &["task", "review", "adversarial-review"];

fn refuse_logged_out(
    account: &crate::account::Account,
    companion_args: &[OsString],
) -> anyhow::Result<()> {
    use crate::account::login_state::{self, LoginState};
    let starts_turn = companion_args
        .first()
        .is_some_and(|c| TURN_COMMANDS.iter().any(|t| c == *t));
    // Only a home that says so for sure: a keyring login cannot be seen from the file.
    if starts_turn && login_state::read(&account.canonical_home()) == LoginState::LoggedOut {
        anyhow::bail!(
            "account '{}' is not logged in: log in with `codex-as login {}`",
            account.name,
            account.name
        );
    }
    Ok(())
}

/// `codex-as SPEC <companion command> --help`: the companion's usage for that command, asked
/// of the companion itself (`help` starts no turn, no broker, no app-server).
fn companion_help(
    spec: &str,
    plugin_root: Option<&std::path::Path>,
    companion_args: &[OsString],
) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let plugin = plugin::locate(plugin_root, &accounts.config, &accounts.home_dir)?;
    let node = which::which("node").map_err(|_| {
        anyhow::anyhow!("node is not on your PATH: the plugin's companion needs Node.js")
    })?;
    let out = std::process::Command::new(node)
        .arg(plugin.companion())
        .arg("help")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run the plugin's companion: {e}"))?;
    let usage = String::from_utf8_lossy(&out.stdout);
    let command = companion_args
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::out!("{}", crate::plugin::help::usage_for(&usage, &command, spec))?;
    Ok(crate::error::status::OK)
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
