//! Shell integration: `codex-as init SHELL` and the completion scripts, rendered from the
//! templates in `shell/` (compiled in by askama, so printing them costs no file reads).
//!
//! Completions are generated from the clap definition, so subcommands and flags added to the CLI
//! appear without editing a template; account names are read when the user presses TAB, by the
//! hidden `codex-as list --names`, so a new account shows up without re-sourcing anything.

pub mod env;
pub mod quote;
pub mod switch;

use askama::Template;
use clap::{ArgAction, ValueHint};

use crate::account::Accounts;

/// A shell codex-as prints code for. `init` and `completion` know bash, zsh and fish; `env`
/// quotes for any POSIX sh too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    /// Any POSIX sh (dash, ksh, busybox).
    Posix,
}

impl Shell {
    /// The shells with an init script and completion (POSIX sh has neither), as a clap parser
    /// of `bash|zsh|fish`.
    pub fn with_init() -> impl clap::builder::TypedValueParser<Value = Shell> {
        use clap::builder::TypedValueParser;
        clap::builder::PossibleValuesParser::new(["bash", "zsh", "fish"]).map(|s| {
            match s.as_str() {
                "zsh" => Shell::Zsh,
                "fish" => Shell::Fish,
                _ => Shell::Bash,
            }
        })
    }

    /// The user's shell from `$SHELL`, falling back to POSIX sh.
    pub fn from_env() -> Shell {
        std::env::var_os("SHELL")
            .and_then(|s| Shell::from_program(&s.to_string_lossy()))
            .unwrap_or(Shell::Posix)
    }

    /// The shell a program name or path stands for (`-bash` as a login shell shows itself,
    /// `/usr/bin/zsh`, `dash`), or None for a program that is no shell codex-as knows.
    pub fn from_program(name: &str) -> Option<Shell> {
        let base = name.rsplit('/').next().unwrap_or(name);
        match base.strip_prefix('-').unwrap_or(base) {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            "sh" | "dash" | "ash" | "ksh" | "mksh" | "oksh" | "pdksh" | "yash" | "posh"
            | "busybox" => Some(Shell::Posix),
            _ => None,
        }
    }

    /// The shell `codex-as env` writes code for when not told, and one line saying how it was
    /// chosen. The process that started codex-as comes first: it is the shell that will read
    /// the code (`eval "$(codex-as env work)"` runs it from a subshell of itself, `| source`
    /// from fish itself), whatever `$SHELL`, the login shell, says.
    pub fn detect() -> (Shell, String) {
        let parent = crate::sys::process::command_name(std::os::unix::process::parent_id());
        let var = std::env::var_os("SHELL");
        choose(parent.as_deref(), var.as_deref())
    }

    pub fn quote(self, value: &str) -> String {
        match self {
            Shell::Fish => quote::fish(value),
            Shell::Bash | Shell::Zsh | Shell::Posix => quote::posix(value),
        }
    }

    /// How the init and completion call codex-as: by `program`'s absolute path (so that
    /// `eval "$(~/.cargo/bin/codex-as init zsh)"` works before PATH has it), bare when it is
    /// plain, else quoted. A path that is not UTF-8 cannot be printed faithfully: plain
    /// `codex-as`, found on PATH, instead.
    pub fn program_word(self, program: &std::path::Path) -> String {
        let Some(p) = program.to_str().filter(|p| !p.is_empty()) else {
            return "codex-as".into();
        };
        let plain = quote::posix_if_needed(p);
        if plain == p { plain } else { self.quote(p) }
    }
}

impl std::fmt::Display for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Posix => "posix",
        })
    }
}

/// [`Shell::detect`] from the program name of the process that runs codex-as and `$SHELL`.
fn choose(parent: Option<&str>, shell_var: Option<&std::ffi::OsStr>) -> (Shell, String) {
    const CHOOSE: &str = "--shell SHELL to choose";
    if let Some(shell) = parent.and_then(Shell::from_program) {
        return (
            shell,
            format!(
                "{shell} code: codex-as runs under {} ({CHOOSE})",
                parent.unwrap_or_default()
            ),
        );
    }
    let ran_by = parent.map_or("an unknown process".to_string(), |p| p.to_string());
    let var = shell_var.map(|v| v.to_string_lossy().into_owned());
    match var.as_deref().and_then(Shell::from_program) {
        Some(shell) => (
            shell,
            format!(
                "{shell} code: from $SHELL, as {ran_by} that runs codex-as is no shell ({CHOOSE})"
            ),
        ),
        None => (
            Shell::Posix,
            format!(
                "posix code: neither {ran_by} that runs codex-as nor $SHELL is a known shell ({CHOOSE})"
            ),
        ),
    }
}

/// POSIX sh has no completion and no init script: the CLI only offers [`Shell::with_init`]'s.
fn no_init(shell: Shell) -> askama::Error {
    askama::Error::Custom(
        format!("{shell} has no init script or completion: use bash, zsh or fish").into(),
    )
}

/// One visible subcommand, as the completion templates need it. Every field is already quoted
/// for the target shell, because descriptions come from doc comments anyone may edit.
pub struct SubSpec {
    pub name_q: String,
    pub about_q: String,
    /// `name  -- about`, aligned, as zsh lists a match with its description.
    pub display_q: String,
    /// Space-separated flag specs: `--json`, `-h`, `--home=dir`, `--shell=bash|zsh|fish`.
    pub flags_q: String,
    /// Space-separated kinds of the positional arguments, in order: `account`, `dir`, `file`,
    /// `any`, or `a|b|c` (choices).
    pub positionals_q: String,
    /// What may follow `--`: `none`, `args` (files are completed) or `command` (a command line,
    /// completed as if typed alone; for an argument named COMMAND or hinted as a command).
    pub last: &'static str,
}

pub struct CompletionSpec {
    /// The word that runs codex-as (see [`Shell::program_word`]).
    pub program_q: String,
    pub subcommands: Vec<SubSpec>,
    /// Top-level flags, as `flags_q` above.
    pub flags_q: String,
    /// Companion words, each quoted.
    pub companion_q: Vec<String>,
}

fn value_kind(arg: &clap::Arg, subcommand: &str) -> String {
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !choices.is_empty() {
        return choices.join("|");
    }
    // The CLI names every account argument `name`; `add` takes a new name, so offering existing
    // ones there would only suggest mistakes.
    if arg.is_positional() && arg.get_id() == "name" {
        return if subcommand == "add" {
            "any"
        } else {
            "account"
        }
        .into();
    }
    let dir_named = arg
        .get_value_names()
        .is_some_and(|n| n.iter().any(|n| n.as_str() == "DIR"));
    match arg.get_value_hint() {
        ValueHint::DirPath => "dir".into(),
        _ if dir_named => "dir".into(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => "file".into(),
        _ => "any".into(),
    }
}

fn last_kind(cmd: &clap::Command) -> &'static str {
    let Some(arg) = cmd.get_arguments().find(|a| a.is_last_set()) else {
        return "none";
    };
    let named_command = arg
        .get_value_names()
        .is_some_and(|n| n.iter().any(|n| n.as_str() == "COMMAND"));
    match arg.get_value_hint() {
        ValueHint::CommandWithArguments | ValueHint::CommandName => "command",
        _ if named_command => "command",
        _ => "args",
    }
}

fn takes_value(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn flag_specs(cmd: &clap::Command, subcommand: &str) -> Vec<String> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        let suffix = if takes_value(arg) {
            format!("={}", value_kind(arg, subcommand))
        } else {
            String::new()
        };
        if let Some(longs) = arg.get_long_and_visible_aliases() {
            out.extend(longs.iter().map(|l| format!("--{l}{suffix}")));
        }
        if let Some(shorts) = arg.get_short_and_visible_aliases() {
            out.extend(shorts.iter().map(|s| format!("-{s}{suffix}")));
        }
    }
    out
}

impl CompletionSpec {
    /// From `cli`, the whole command line definition (`Cli::command()`).
    pub fn new(mut cli: clap::Command, shell: Shell) -> CompletionSpec {
        let q = shell;
        cli.build();
        let mut subcommands = Vec::new();
        let width = cli
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().len())
            .max()
            .unwrap_or(0);
        for sub in cli.get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            let name = sub.get_name().to_string();
            let mut positionals: Vec<String> = sub
                .get_arguments()
                .filter(|a| a.is_positional() && !a.is_last_set() && !a.is_hide_set())
                .map(|a| value_kind(a, &name))
                .collect();
            let mut flags = flag_specs(sub, &name);
            // A subcommand with its own subcommands (`brokers list|stop`): their names complete
            // as a first word, and their flags are offered after it (a union: the templates know
            // one level of subcommands).
            let nested: Vec<&clap::Command> =
                sub.get_subcommands().filter(|s| !s.is_hide_set()).collect();
            if !nested.is_empty() {
                let names: Vec<&str> = nested.iter().map(|n| n.get_name()).collect();
                positionals.insert(0, names.join("|"));
                for n in &nested {
                    for f in flag_specs(n, &name) {
                        if !flags.contains(&f) {
                            flags.push(f);
                        }
                    }
                }
            }
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            subcommands.push(SubSpec {
                name_q: q.quote(&name),
                about_q: q.quote(&about),
                flags_q: q.quote(&flags.join(" ")),
                positionals_q: q.quote(&positionals.join(" ")),
                display_q: q.quote(&format!("{name:width$}  -- {about}")),
                last: last_kind(sub),
            });
        }
        CompletionSpec {
            program_q: "codex-as".into(),
            subcommands,
            flags_q: q.quote(&flag_specs(&cli, "").join(" ")),
            companion_q: crate::words::COMPANION
                .iter()
                .chain(std::iter::once(&crate::words::RESUME))
                .map(|w| q.quote(w))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "complete.bash", escape = "none")]
pub struct BashCompletion<'a> {
    pub spec: &'a CompletionSpec,
}

#[derive(Template)]
#[template(path = "complete.zsh", escape = "none")]
pub struct ZshCompletion<'a> {
    pub spec: &'a CompletionSpec,
    /// As an autoloaded `_codex-as` file in `$fpath` (true), or inside the init (false).
    pub standalone: bool,
}

#[derive(Template)]
#[template(path = "complete.fish", escape = "none")]
pub struct FishCompletion<'a> {
    pub spec: &'a CompletionSpec,
}

/// The completion script; it runs `program` (for account names), or `codex-as` when `None`.
pub fn completion_script(
    cli: clap::Command,
    shell: Shell,
    standalone: bool,
    program: Option<&std::path::Path>,
) -> askama::Result<String> {
    let mut spec = CompletionSpec::new(cli, shell);
    if let Some(p) = program {
        spec.program_q = shell.program_word(p);
    }
    match shell {
        Shell::Bash => BashCompletion { spec: &spec }.render(),
        Shell::Zsh => ZshCompletion {
            spec: &spec,
            standalone,
        }
        .render(),
        Shell::Fish => FishCompletion { spec: &spec }.render(),
        Shell::Posix => Err(no_init(shell)),
    }
}

/// One `codex-NAME` shortcut function.
pub struct Shortcut {
    /// The function name. Only names that pass [`names::check`] get here, so it is a plain word
    /// (a function name cannot be quoted).
    pub function: String,
    /// The account name, quoted for the shell.
    pub account_q: String,
    /// A description (fish shows it), quoted.
    pub description_q: String,
}

/// What the init templates are rendered from.
pub struct InitOpts {
    /// The word that runs codex-as (see [`Shell::program_word`]).
    pub program_q: String,
    pub shortcuts: Vec<Shortcut>,
    /// The completion script to embed (empty with `--no-completions`).
    pub completion: String,
}

#[derive(Template)]
#[template(path = "init.bash", escape = "none")]
pub struct BashInit<'a> {
    pub opts: &'a InitOpts,
}

#[derive(Template)]
#[template(path = "init.zsh", escape = "none")]
pub struct ZshInit<'a> {
    pub opts: &'a InitOpts,
}

#[derive(Template)]
#[template(path = "init.fish", escape = "none")]
pub struct FishInit<'a> {
    pub opts: &'a InitOpts,
}

/// Shortcut functions for every known account. The prefix is checked like an account name
/// (it becomes part of a function name, which no shell lets us quote).
pub fn shortcuts(accounts: &Accounts, shell: Shell, prefix: &str) -> Vec<Shortcut> {
    accounts
        .all()
        .into_iter()
        // Names come from a file the user edits; `Accounts::all` already drops invalid ones, and
        // this keeps anything else out of a function name, which no shell lets us quote.
        .filter(|a| plain_word(&a.name) && plain_word(prefix))
        .map(|a| Shortcut {
            function: format!("{prefix}{}", a.name),
            account_q: shell.quote(&a.name),
            description_q: shell.quote(&format!("codex as the account {}", a.name)),
        })
        .collect()
}

/// Letters, digits, `.`, `_`, `-`: safe unquoted as (part of) a function name in every shell.
pub fn plain_word(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub fn render_init(shell: Shell, opts: &InitOpts) -> askama::Result<String> {
    match shell {
        Shell::Bash => BashInit { opts }.render(),
        Shell::Zsh => ZshInit { opts }.render(),
        Shell::Fish => FishInit { opts }.render(),
        Shell::Posix => Err(no_init(shell)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn sub<'a>(spec: &'a CompletionSpec, name: &str) -> &'a SubSpec {
        let q = quote::posix(name);
        spec.subcommands
            .iter()
            .find(|s| s.name_q == q)
            .unwrap_or_else(|| panic!("no subcommand {name}"))
    }

    #[test]
    fn spec_follows_the_clap_definition() {
        let spec = CompletionSpec::new(crate::cli::Cli::command(), Shell::Bash);
        assert_eq!(
            sub(&spec, "env").flags_q,
            "'--shell=bash|zsh|fish|posix --help -h'"
        );
        assert_eq!(sub(&spec, "env").positionals_q, "'account'");
        // `add` names a new account; `--home` takes a folder.
        assert_eq!(sub(&spec, "add").positionals_q, "'any'");
        assert!(sub(&spec, "add").flags_q.contains("--home=dir"));
        assert_eq!(sub(&spec, "login").last, "args");
        assert_eq!(sub(&spec, "env").last, "none");
        assert_eq!(sub(&spec, "init").positionals_q, "'bash|zsh|fish'");
        // Hidden flags stay out.
        assert!(!sub(&spec, "use").flags_q.contains("--emit"));
        assert!(!sub(&spec, "list").flags_q.contains("--names"));
        assert!(spec.flags_q.contains("--version"));
    }

    #[test]
    fn a_last_argument_named_command_completes_commands() {
        // As a future `codex-as auto -- COMMAND...` would declare it.
        let auto = clap::Command::new("auto").arg(
            clap::Arg::new("command")
                .last(true)
                .num_args(1..)
                .value_name("COMMAND"),
        );
        assert_eq!(last_kind(&auto), "command");
        let hinted = clap::Command::new("x").arg(
            clap::Arg::new("c")
                .last(true)
                .num_args(1..)
                .value_hint(ValueHint::CommandWithArguments),
        );
        assert_eq!(last_kind(&hinted), "command");
    }

    #[test]
    fn the_program_word_is_bare_only_when_plain() {
        use std::os::unix::ffi::OsStrExt;
        use std::path::Path;
        let plain = Path::new("/home/me/.cargo/bin/codex-as");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            assert_eq!(shell.program_word(plain), "/home/me/.cargo/bin/codex-as");
        }
        let odd = Path::new("/opt/it's {a} $dir/codex-as");
        assert_eq!(
            Shell::Bash.program_word(odd),
            "'/opt/it'\\''s {a} $dir/codex-as'"
        );
        assert_eq!(
            Shell::Fish.program_word(odd),
            "'/opt/it\\'s {a} $dir/codex-as'"
        );
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"/opt/\xff/codex-as"));
        assert_eq!(Shell::Zsh.program_word(not_utf8), "codex-as");
    }

    #[test]
    fn descriptions_are_quoted_per_shell() {
        let fish = CompletionSpec::new(crate::cli::Cli::command(), Shell::Fish);
        // "Print an account's home folder": fish escapes the quote with a backslash.
        assert!(
            fish.subcommands
                .iter()
                .any(|s| s.about_q.contains(r"account\'s"))
        );
        let zsh = CompletionSpec::new(crate::cli::Cli::command(), Shell::Zsh);
        assert!(
            zsh.subcommands
                .iter()
                .any(|s| s.about_q.contains(r"account'\''s"))
        );
    }

    #[test]
    fn env_trusts_the_shell_that_runs_it_before_shell() {
        let fish = Some(std::ffi::OsStr::new("/usr/bin/fish"));
        let (sh, how) = choose(Some("bash"), fish);
        assert_eq!(sh, Shell::Bash);
        assert!(
            how.starts_with("bash code: codex-as runs under bash"),
            "{how}"
        );
        assert_eq!(choose(Some("-zsh"), fish).0, Shell::Zsh);
        assert_eq!(choose(Some("dash"), fish).0, Shell::Posix);
        let (sh, how) = choose(Some("python3"), fish);
        assert_eq!(sh, Shell::Fish);
        assert!(
            how.contains("from $SHELL") && how.contains("python3"),
            "{how}"
        );
        let (sh, how) = choose(None, Some(std::ffi::OsStr::new("/bin/tcsh")));
        assert_eq!(sh, Shell::Posix);
        assert!(how.contains("neither"), "{how}");
    }

    #[test]
    fn shortcut_names_must_be_plain_words() {
        assert!(plain_word("codex-team.prod_2"));
        assert!(!plain_word("a b"));
        assert!(!plain_word("a$(x)"));
        assert!(!plain_word("é"));
    }
}
