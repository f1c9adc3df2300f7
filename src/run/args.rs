//! Parsing `codex-as ACCOUNT [--cwd DIR] -- COMMAND [ARGS]...` and `codex-as ACCOUNT <companion
//! command> [ARGS]...`: the first step of the run path. `ACCOUNT` becomes an [`AccountSpec`].

use std::ffi::OsString;
use std::path::PathBuf;

use crate::account::names;
use crate::account::spec::AccountSpec;
use crate::error::UsageError;
use crate::plugin::workspace;
use crate::words;

/// What follows the account name.
#[derive(Debug, PartialEq, Eq)]
pub struct RunArgs {
    pub spec: AccountSpec,
    pub plugin_root: Option<PathBuf>,
    pub mode: Mode,
    /// `resume [ID | --last]`: the thread to carry into the account's home before the mode's
    /// `codex resume` runs (see `run::resume`).
    pub resume: Option<ResumeTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeTarget {
    Id(String),
    /// The most recent thread of the folder across every account.
    Last,
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

impl Mode {
    /// `--background` anywhere in a companion task or review's arguments (after the
    /// companion's one-argument split, which it applies itself): such a job cannot be watched
    /// to its end.
    pub fn is_background(&self) -> bool {
        let Mode::Companion { args } = self else {
            return false;
        };
        let words: Vec<String> = match args.as_slice() {
            [_, one] => workspace::split_like_companion(&one.to_string_lossy()),
            _ => args
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        };
        words.iter().any(|w| w == "--background")
    }
}

impl Mode {
    /// The folder the command works in: `--cwd`, the companion's own `--cwd`/`-C`, else `here`.
    /// Its account is the one a command that names none runs as.
    pub fn work_dir(&self, here: &std::path::Path) -> PathBuf {
        match self {
            Mode::Exec { cwd: Some(c), .. } => here.join(c),
            Mode::Exec { cwd: None, .. } => here.to_path_buf(),
            Mode::Companion { args } => workspace::companion_cwd(args, here),
        }
    }
}

/// An option of the run path, given before the command (`--cwd DIR`, `--plugin-root=DIR`).
pub fn is_run_option(word: &str) -> bool {
    matches!(word, "--cwd" | "--plugin-root")
        || word.starts_with("--cwd=")
        || word.starts_with("--plugin-root=")
}

/// [`parse`] for words that name no account (`request` tells); the spec is a placeholder that
/// the run path replaces with the folder's account.
pub fn parse_unnamed(raw: Vec<OsString>) -> Result<RunArgs, UsageError> {
    let mut with_name = vec![OsString::from(crate::account::DEFAULT)];
    with_name.extend(raw);
    parse_as(with_name, true)
}

pub fn parse(raw: Vec<OsString>) -> Result<RunArgs, UsageError> {
    parse_as(raw, false)
}

/// `unnamed`: the account is the folder's, not the placeholder in `raw`, so advice names none.
fn parse_as(raw: Vec<OsString>, unnamed: bool) -> Result<RunArgs, UsageError> {
    let mut it = raw.into_iter();
    let account = it
        .next()
        .ok_or_else(|| UsageError::new("missing account name (see `codex-as --help`)"))?
        .into_string()
        .map_err(|n| UsageError::new(format!("account name {n:?} is not valid UTF-8")))?;
    let (cmd, who) = if unnamed {
        ("codex-as".to_string(), "this folder's account".to_string())
    } else {
        (format!("codex-as {account}"), format!("'{account}'"))
    };
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
                "nothing to run as {who}: give a companion command (`{cmd} task \"...\"`) or a program after `--` (`{cmd} -- codex`)"
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
                    "unknown option '{text}' for `{cmd}`: options of the command go after it (or after `--`)"
                )));
            }
            // codex-as's own word after an account: the Codex TUI on a thread of any home.
            words::RESUME => {
                let mut rest: Vec<OsString> = it.collect();
                let target = match rest.first().and_then(|a| a.to_str()) {
                    Some("--last") => {
                        rest.remove(0);
                        Some(ResumeTarget::Last)
                    }
                    Some(id) if !id.starts_with('-') => Some(ResumeTarget::Id(id.to_string())),
                    _ => None,
                };
                let mut command = vec![OsString::from("codex"), OsString::from(words::RESUME)];
                command.extend(rest);
                return Ok(RunArgs {
                    spec: AccountSpec::parse(&account)?,
                    plugin_root,
                    mode: Mode::Exec { cwd, command },
                    resume: target,
                });
            }
            _ if words::is_companion(&text) => {
                if cwd.is_some() {
                    return Err(UsageError::new(format!(
                        "--cwd is for `-- COMMAND`; give the companion its own: `{cmd} {text} --cwd DIR ...`"
                    )));
                }
                let mut args = vec![arg];
                args.extend(it);
                return Ok(RunArgs {
                    spec: AccountSpec::parse(&account)?,
                    plugin_root,
                    mode: Mode::Companion { args },
                    resume: None,
                });
            }
            _ => {
                let hint = names::suggest(&text, words::COMPANION.iter().copied())
                    .map(|c| format!("did you mean the companion command '{c}'? "))
                    .unwrap_or_default();
                return Err(UsageError::new(format!(
                    "'{text}' is not a companion command: {hint}to run a program as {who}, write `{cmd} -- {text} ...`"
                )));
            }
        }
    }
    let command: Vec<OsString> = it.collect();
    if command.is_empty() {
        return Err(UsageError::new(format!(
            "nothing to run after `--`: e.g. `{cmd} -- codex`"
        )));
    }
    Ok(RunArgs {
        spec: AccountSpec::parse(&account)?,
        plugin_root,
        mode: Mode::Exec { cwd, command },
        resume: None,
    })
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
    fn resume_is_the_codex_tui_on_a_thread_of_any_account() {
        let a = parse(os(&["w", "resume", "01a2-x", "go on"])).unwrap();
        assert_eq!(a.resume, Some(ResumeTarget::Id("01a2-x".into())));
        assert_eq!(a.mode, exec(None, &["codex", "resume", "01a2-x", "go on"]));
        let a = parse(os(&["w", "--cwd", "/p", "resume", "--last"])).unwrap();
        assert_eq!(a.resume, Some(ResumeTarget::Last));
        assert_eq!(a.mode, exec(Some("/p"), &["codex", "resume"]));
        let a = parse(os(&["w", "resume"])).unwrap();
        assert_eq!(a.resume, None, "codex's own picker");
        assert_eq!(a.mode, exec(None, &["codex", "resume"]));
        let a = parse_unnamed(os(&["resume", "--last"])).unwrap();
        assert_eq!(a.resume, Some(ResumeTarget::Last));
    }

    #[test]
    fn parses_options_before_the_separator() {
        let a = parse(os(&["w", "--cwd", "/x", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!(a.spec, AccountSpec::One("w".into()));
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
    fn an_unnamed_run_works_in_its_folder() {
        for option in ["--cwd", "--cwd=/x", "--plugin-root", "--plugin-root=/p"] {
            assert!(is_run_option(option), "{option}");
        }
        assert!(!is_run_option("--cwdx") && !is_run_option("--help"));
        let a = parse_unnamed(os(&["--cwd", "sub", "--", "x"])).unwrap();
        assert_eq!(
            a.mode.work_dir(std::path::Path::new("/p")),
            PathBuf::from("/p/sub")
        );
        let a = parse_unnamed(os(&["task", "--cwd", "/q", "hi"])).unwrap();
        assert_eq!(
            a.mode.work_dir(std::path::Path::new("/p")),
            PathBuf::from("/q")
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

    #[test]
    fn the_account_spec_is_parsed_once_after_the_arguments() {
        let a = parse(os(&["a,b", "--", "x"])).unwrap();
        assert_eq!(a.spec, AccountSpec::List(vec!["a".into(), "b".into()]));
        assert_eq!(
            parse(os(&["auto", "task", "x"])).unwrap().spec,
            AccountSpec::Auto
        );
        // A bad list is reported after what is missing, as before the spec had a type.
        assert!(
            parse(os(&["a,,b"]))
                .unwrap_err()
                .0
                .contains("nothing to run")
        );
        assert!(
            parse(os(&["a,,b", "--", "x"]))
                .unwrap_err()
                .0
                .contains("empty name")
        );
    }

    #[test]
    fn background_is_seen_through_the_one_argument_split() {
        let companion = |v: &[&str]| Mode::Companion { args: os(v) };
        assert!(companion(&["task", "--background", "x"]).is_background());
        assert!(companion(&["task", "--background fix it"]).is_background());
        assert!(!companion(&["task", "--wait", "x"]).is_background());
        assert!(!companion(&["task", "say --background-ish"]).is_background());
        assert!(!exec(None, &["x", "--background"]).is_background());
    }
}
