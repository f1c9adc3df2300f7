//! What the user asked for, read once from the command line into a [`Request`] that every path
//! reads. Clap parses codex-as's own commands (`cli`); the account forms clap cannot express go
//! through one parser (`run::args`). The first word decides which, here and nowhere else:
//!
//! - `help [COMMAND]` is first turned into the `--help` form (`help`);
//! - nothing, one of codex-as's commands (`words`), or an option of codex-as itself (`--help`,
//!   `--version`, a mistyped one): clap, which answers help, version and its usage errors itself;
//! - `--`, an option of the run path (`--cwd`, `--plugin-root`), a companion command or `resume`:
//!   a run as the folder's account ([`Request::Unnamed`]);
//! - any other word: an account, a list or `auto` ([`Request::Named`]).
//!
//! Nothing here reads the accounts or the disk: whether the named word is an account, and how a
//! usage error after it is reported, is for the run path (`run::as_named`,
//! `run::as_folder_account`), which loads the accounts once.

mod help;

use std::ffi::{OsStr, OsString};

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::error::{UsageError, status};
use crate::run::args::{self, RunArgs};
use crate::words;

pub enum Request {
    /// One of codex-as's own commands (`list`, `login work`, `brokers stop`), as clap read it.
    Command(Command),
    /// `codex-as ACCOUNT ...`: a program or companion command as the account, list or `auto`
    /// named by `word`. The words after it, parsed; a usage error among them is reported once
    /// `word` is known not to be a mistyped command.
    Named {
        word: String,
        args: Result<RunArgs, UsageError>,
    },
    /// `codex-as task ...`, `codex-as -- CMD`, `codex-as --cwd DIR -- CMD`: the same, as the
    /// account of the folder the command works in (the spec in `RunArgs` is a placeholder).
    Unnamed(Result<RunArgs, UsageError>),
}

/// What is answered without doing anything: clap's help, version or usage error, or `help WORD`
/// for a word that is no command.
pub enum Answer {
    Clap(clap::Error),
    Usage(UsageError),
}

impl Answer {
    /// Prints the answer where it belongs; returns the exit status.
    pub fn print(&self) -> u8 {
        match self {
            Answer::Clap(e) => {
                let _ = e.print();
                if e.use_stderr() {
                    status::USAGE
                } else {
                    status::OK
                }
            }
            Answer::Usage(e) => {
                eprintln!("codex-as: {e}");
                status::USAGE
            }
        }
    }
}

/// The request `args` (the program name first, as `std::env::args_os` gives it) makes.
pub fn read(args: Vec<OsString>) -> Result<Request, Answer> {
    let mut cli = Cli::command();
    let args = help::rewrite(&cli, args).map_err(Answer::Usage)?;
    let words: Vec<OsString> = args.iter().skip(1).cloned().collect();
    match form(words.first().map(OsString::as_os_str)) {
        Form::Clap => {
            let matches = cli.try_get_matches_from_mut(args).map_err(Answer::Clap)?;
            let parsed =
                Cli::from_arg_matches(&matches).map_err(|e| Answer::Clap(e.format(&mut cli)))?;
            Ok(Request::Command(parsed.command))
        }
        Form::Unnamed => Ok(Request::Unnamed(args::parse_unnamed(words))),
        Form::Named => {
            let word = words
                .first()
                .map(|w| w.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Request::Named {
                word,
                args: args::parse(words),
            })
        }
    }
}

/// Who reads the words, by the first of them.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Clap,
    Unnamed,
    Named,
}

fn form(first: Option<&OsStr>) -> Form {
    let Some(first) = first else {
        return Form::Clap;
    };
    let Some(first) = first.to_str() else {
        // Not a command, not an option: the parser says the account name is not UTF-8.
        return Form::Named;
    };
    if first == "--"
        || args::is_run_option(first)
        || first == words::RESUME
        // (`help` is one too, but a first `help` was rewritten by `help::rewrite`.)
        || words::is_companion(first)
    {
        Form::Unnamed
    } else if words::is_command(first) || (first.starts_with('-') && first != "-") {
        Form::Clap
    } else {
        Form::Named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_of(word: &str) -> Form {
        form(Some(OsStr::new(word)))
    }

    #[test]
    fn the_first_word_says_who_reads_the_rest() {
        assert_eq!(form(None), Form::Clap);
        for clap in ["list", "brokers", "broker", "--help", "-V", "--bogus"] {
            assert_eq!(form_of(clap), Form::Clap, "{clap}");
        }
        for unnamed in [
            "task",
            "--",
            "--cwd",
            "--cwd=/x",
            "--plugin-root",
            "--plugin-root=/p",
            "resume",
            "task-resume-candidate",
        ] {
            assert_eq!(form_of(unnamed), Form::Unnamed, "{unnamed}");
        }
        for named in ["work", "a,b", "auto", "-", "lsit", "version", "default"] {
            assert_eq!(form_of(named), Form::Named, "{named}");
        }
    }

    fn read_words(v: &[&str]) -> Result<Request, Answer> {
        read(
            std::iter::once("codex-as")
                .chain(v.iter().copied())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn each_form_becomes_its_request() {
        assert!(matches!(
            read_words(&["list", "--json"]),
            Ok(Request::Command(Command::List(a))) if a.json
        ));
        let Ok(Request::Named { word, args }) = read_words(&["a,b", "task", "x"]) else {
            panic!("not named");
        };
        assert_eq!(word, "a,b");
        assert_eq!(args.unwrap().spec.to_string(), "a,b");
        let Ok(Request::Unnamed(args)) = read_words(&["--cwd", "sub", "--", "x"]) else {
            panic!("not unnamed");
        };
        assert_eq!(
            args.unwrap().mode.work_dir(std::path::Path::new("/p")),
            std::path::PathBuf::from("/p/sub")
        );
        // A usage error after a named word waits for the word to be judged.
        assert!(matches!(
            read_words(&["lsit"]),
            Ok(Request::Named { args: Err(_), .. })
        ));
        assert!(matches!(read_words(&["--version"]), Err(Answer::Clap(_))));
        assert!(matches!(
            read_words(&["help", "lsit"]),
            Err(Answer::Usage(_))
        ));
        // `help task` asks the companion, as the default account.
        assert!(matches!(
            read_words(&["help", "task"]),
            Ok(Request::Named { word, .. }) if word == "default"
        ));
    }
}
