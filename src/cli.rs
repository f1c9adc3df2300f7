//! codex-as's own commands as clap parses them, with the examples `--help` shows first. The
//! account forms (`codex-as ACCOUNT ...`) are no clap command: `request` sends them to
//! `run::args`, and `override_usage` shows them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::shell::Shell;

const EXAMPLES: &str = "\
Examples:
  codex-as login work                       create ~/.codex-work and log in to it
  codex-as work task \"fix the flaky test\"   the Claude Code plugin's companion as 'work'
                                            (also review, adversarial-review, transfer,
                                            setup, status, result, cancel)
  codex-as work -- codex exec 'fix the tests'
                                            run any program as the account 'work'
  codex-as work -- sh -c 'cd api && codex exec \"…\"'
                                            a compound command, all of it as 'work'
  codex-as work --cwd ~/src/api -- codex    change directory first
  codex-as work resume --last               the Codex TUI as 'work' on this folder's latest
                                            thread, whichever account started it
  codex-as pin work                         this folder (and below) uses 'work' ...
  codex-as task \"…\"                         ... so a command naming no account runs as it
  codex-as claude install                   Claude Code's /codex:* commands on each
                                            folder's account
  codex-as list                             accounts, homes, and how each is logged in
  codex-as doctor                           what is wrong with the setup, and the fix
  codex-as help login                       the same as `codex-as login --help`
  codex-as alice,bob task '…'               bob only if alice's usage limit is reached
  codex-as auto task '…'                    the account with the most quota left first
  eval \"$(codex-as env work)\"               switch this shell to 'work'
  eval \"$(codex-as init zsh)\"               in ~/.zshrc: `codex-as use NAME`, completion

Accounts: `default` is ~/.codex; NAME is ~/.codex-NAME unless the config file
(`codex-as list` prints its path) gives it another home. A command that names no
account runs as the folder's (`codex-as which` says which, and why).

Exit status: 0 ok, 1 failure, 2 usage error, 126/127 command not executable/not
found, 75 every account of a list or `auto` out of quota; when a command ran, its
own status (128+N if a signal N killed it).";

#[derive(Debug, Parser)]
#[command(
    name = "codex-as",
    version,
    about = "Run Codex, and anything else, as one of your Codex accounts",
    override_usage = "codex-as <ACCOUNT> [--cwd DIR] -- <PROGRAM> [ARGS]...\n       codex-as <ACCOUNT> [--plugin-root DIR] <COMPANION-COMMAND> [ARGS]...\n       codex-as <COMMAND>",
    after_help = EXAMPLES,
    subcommand_value_name = "COMMAND",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add an account to the config (its home defaults to ~/.codex-NAME)
    #[command(after_help = "Example:\n  codex-as add work --home ~/work/codex-home")]
    Add(AddArgs),
    /// Remove an account from the config (its home folder is never deleted)
    Remove(NameArg),
    /// List accounts: name, home, whether it exists, how it is logged in
    List(ListArgs),
    /// Print an account's home folder; with no name, which account this folder uses and why
    #[command(
        after_help = "Examples:\n  ls \"$(codex-as which work)\"/sessions\n  codex-as which            this folder's account, and the file or config line that chose it"
    )]
    Which(WhichArgs),
    /// Pin this folder (and below) to an account, a list or auto: writes ./.codex-account, meant to be committed
    #[command(
        after_help = "Examples:\n  codex-as pin work            then `codex-as task ...` here runs as 'work'\n  codex-as pin work,personal   ... as 'work', going on as 'personal' when work runs out\n  codex-as pin auto            ... as the account with the most quota left\n  codex-as pin --unset         remove ./.codex-account\n\nFor folders you cannot add a file to, map them in the config instead:\n  [directories]\n  \"~/work/acme\" = \"work\"\n  \"~/oss\" = \"work, personal\""
    )]
    Pin(PinArgs),
    /// Put Claude Code's /codex:* commands on each project's account (hooks in Claude's settings)
    #[command(subcommand, after_help = CLAUDE_EXAMPLES)]
    Claude(ClaudeCommand),
    /// Create an account's home when missing and run `codex login` as it
    #[command(
        after_help = "Examples:\n  codex-as login work\n  codex-as login work --copy-config\n  printenv KEY | codex-as login ci -- --with-api-key"
    )]
    Login(LoginArgs),
    /// Print shell code that switches the current shell to an account
    #[command(
        after_help = "Examples:\n  eval \"$(codex-as env work)\"\n  codex-as env work --shell fish | source"
    )]
    Env(EnvArgs),
    /// codex-as's own app-server broker (internal)
    #[command(hide = true, subcommand)]
    Broker(BrokerCommand),
    /// The relay that hands a job over to the next account of a list (internal)
    #[command(hide = true, subcommand)]
    Relay(RelayCommand),
    /// Show the brokers keeping accounts' app-servers warm, or stop codex-as's idle ones
    #[command(
        after_help = "Examples:\n  codex-as brokers\n  codex-as brokers stop            stop idle codex-as brokers now\n  codex-as brokers stop --all      also wait for busy ones to finish, then stop them"
    )]
    Brokers(BrokersArgs),
    /// Print the shell integration: `codex-as use`, completions, a prompt helper
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Switch this shell to an account (needs `codex-as init` loaded in the shell)
    #[command(
        after_help = "Examples:\n  codex-as use work\n  codex-as use --unset      unset CODEX_HOME, restore what `use` removed"
    )]
    Use(UseArgs),
    /// Print the completion script for a shell (`codex-as init` already loads it)
    #[command(
        after_help = "Examples:\n  codex-as completions zsh > ~/.zfunc/_codex-as\n  codex-as completions fish > ~/.config/fish/completions/codex-as.fish"
    )]
    Completions(CompletionsArgs),
    /// Each account's 5-hour and weekly usage, and the order `auto` would try them in
    #[command(
        after_help = "Examples:\n  codex-as quota\n  codex-as quota --json | jq '.accounts[] | {name, headroomPercent}'"
    )]
    Quota(QuotaArgs),
    /// Recent Codex threads across all accounts: id, the accounts holding it, folder, last activity
    #[command(
        after_help = "Examples:\n  codex-as threads\n  codex-as threads --json --limit 100 | jq '.threads[] | {id, accounts}'\n\nA thread moves to another account when a run there resumes it; the account holding\nits newest copy comes first."
    )]
    Threads(ThreadsArgs),
    /// Codex threads between accounts (internal)
    #[command(hide = true, subcommand)]
    Thread(ThreadCommand),
    /// Check the whole setup; for each problem, say what is wrong and the command that fixes it
    #[command(
        after_help = "Examples:\n  codex-as doctor\n  codex-as doctor --json | jq '.findings[] | .fix'\n\nExit status: 0 when nothing needs doing, 1 when something does."
    )]
    Doctor(DoctorArgs),
    /// One line for Claude Code's statusLine (reads its JSON on stdin): the folder's account and its quota
    #[command(after_help = STATUSLINE_EXAMPLES)]
    Statusline(StatuslineArgs),
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Account name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct WhichArgs {
    /// Account name [default: this folder's account]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Account name, list (work,personal) or auto
    #[arg(num_args = 1.., required_unless_present = "unset", conflicts_with = "unset")]
    pub name: Vec<String>,
    /// Remove this folder's .codex-account
    #[arg(long)]
    pub unset: bool,
}

const CLAUDE_EXAMPLES: &str = "\
Examples:
  codex-as claude install             hooks in ~/.claude/settings.json (all projects)
  codex-as claude install --project   hooks in this project's .claude/settings.local.json
  codex-as pin work                   this project's sessions then use 'work'
  codex-as claude status              what is installed, this folder's account, its broker
  codex-as claude uninstall           remove exactly the hooks install added";

#[derive(Debug, Subcommand)]
pub enum ClaudeCommand {
    /// Add codex-as's session hooks to Claude Code's settings (installing twice changes nothing)
    Install(ClaudeScope),
    /// Remove the hooks `install` added, and nothing else
    Uninstall(ClaudeScope),
    /// What is installed, which account this folder's sessions use, whether its broker is up
    Status,
    /// The hook Claude Code runs (event JSON on stdin)
    #[command(hide = true)]
    Hook,
}

#[derive(Debug, Args)]
pub struct ClaudeScope {
    /// This project's .claude/settings.local.json instead of the user's settings.json
    #[arg(long)]
    pub project: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Account name: letters, digits, '.', '_', '-'
    pub name: String,
    /// Its Codex home folder [default: ~/.codex-NAME]
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// Only the names, one a line, without reading login state (for shell completion)
    #[arg(long, hide = true, conflicts_with = "json")]
    pub names: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Machine-readable output: {"ok", "findings": [{area, subject, problem, fix}], "warnings" (the
    /// same shape; they leave "ok" and the exit status alone), "notes"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ThreadsArgs {
    /// Machine-readable output: {"threads": [{id, accounts, newest, folder, lastActivity, firstPrompt, path}]}
    #[arg(long)]
    pub json: bool,
    /// How many threads to show, most recently active first
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum ThreadCommand {
    /// Carry a thread from one account's home to another's, so a run there resumes it
    Carry(ThreadCarryArgs),
}

#[derive(Debug, Args)]
pub struct ThreadCarryArgs {
    /// The thread id
    pub id: String,
    /// The account holding it [default: the account holding its newest copy]
    #[arg(long, value_name = "NAME")]
    pub from: Option<String>,
    /// The account to carry it to
    #[arg(long, value_name = "NAME")]
    pub to: String,
    /// A failed turn left out of the copy (its input is replayed there)
    #[arg(long, value_name = "TURN_ID")]
    pub drop_turn: Option<String>,
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Machine-readable output (documented in docs/fallback.md)
    #[arg(long)]
    pub json: bool,
    /// Ask each ChatGPT-logged-in account's own app-server for a fresh reading
    #[arg(long)]
    pub fresh: bool,
}

const STATUSLINE_EXAMPLES: &str = "\
Examples:
  echo '{\"cwd\":\"/src/app\"}' | codex-as statusline
                                            work · 5h 42% · wk 17% · resets in 1h20m
  codex-as statusline --short </dev/null    work 5h 42% wk 17%

In ~/.claude/settings.json:
  \"statusLine\": {\"type\": \"command\", \"command\": \"codex-as statusline\"}";

#[derive(Debug, Args)]
pub struct StatuslineArgs {
    /// The prompt's short form: no reset time, no separators
    #[arg(long)]
    pub short: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Account name
    pub name: String,
    /// Seed a new home's config.toml with a copy of the default account's
    #[arg(long)]
    pub copy_config: bool,
    /// Arguments for `codex login`, after `--`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Account name
    pub name: String,
    /// Shell to quote for [default: the shell running codex-as, else $SHELL, else POSIX sh]
    #[arg(long, value_enum)]
    pub shell: Option<Shell>,
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Serve one `codex app-server` (the account of this environment) to many clients
    Serve(BrokerServeArgs),
    /// Print a broker's status as JSON
    Status(BrokerEndpointArgs),
    /// Stop a broker (with --if-idle: only when nobody is using it)
    Shutdown(BrokerShutdownArgs),
}

#[derive(Debug, Args)]
pub struct BrokerServeArgs {
    /// Where to listen: unix:PATH
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: String,
    /// Working directory of the app-server (the workspace)
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Exit after this long with no client and nothing in flight (500ms, 90s, 30m, 2h)
    #[arg(long, value_name = "DURATION", value_parser = crate::sys::duration::parse)]
    pub idle_exit: Option<std::time::Duration>,
    /// Write the broker's pid here (removed on exit)
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Inherited file descriptor to write "ready" to once clients can be served
    #[arg(long, value_name = "N")]
    pub ready_fd: Option<i32>,
    /// Clients served at once; the next ones are answered busy (-32001)
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_clients: u16,
    /// Without a Codex listener up for the home: start one (shared with a later TUI), or run
    /// an app-server child of the broker's own
    #[arg(long, value_enum, default_value_t = AppServerChoice::Listener)]
    pub app_server: AppServerChoice,
}

/// `broker serve --app-server` (and the config's `broker.app_server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AppServerChoice {
    Listener,
    Child,
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Relay companions to the accounts of a route, handing a turn over on a usage limit
    Serve(RelayServeArgs),
}

#[derive(Debug, Args)]
pub struct RelayServeArgs {
    /// The accounts, in order: a,b,c
    #[arg(long, value_name = "ACCOUNTS")]
    pub route: String,
    /// Where to listen: unix:PATH
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: String,
    /// Exit after this long with no client connected (500ms, 90s, 30m, 2h)
    #[arg(long, value_name = "DURATION", value_parser = crate::sys::duration::parse)]
    pub idle_exit: Option<std::time::Duration>,
    /// Inherited file descriptor to write "ready" to once clients can be served
    #[arg(long, value_name = "N")]
    pub ready_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct BrokerEndpointArgs {
    /// The broker's endpoint: unix:PATH
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: String,
    /// How long to wait for an answer
    #[arg(long, value_name = "DURATION", value_parser = crate::sys::duration::parse, default_value = "2s")]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct BrokerShutdownArgs {
    #[command(flatten)]
    pub target: BrokerEndpointArgs,
    /// Refuse (exit status 1) when the broker is busy
    #[arg(long)]
    pub if_idle: bool,
}

#[derive(Debug, Args)]
pub struct BrokersArgs {
    #[command(subcommand)]
    pub action: Option<BrokersAction>,
    /// Machine-readable output
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BrokersAction {
    /// List codex-as's brokers and the plugin's (the default)
    List,
    /// Stop codex-as's brokers that are idle; never the plugin's, never one at work
    Stop(StopArgs),
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Only idle brokers, now (the default)
    #[arg(long, conflicts_with = "all")]
    pub idle: bool,
    /// Also busy ones: wait for each to finish its work, then stop it (exit status 1 if any is
    /// still running at --timeout)
    #[arg(long)]
    pub all: bool,
    /// With --all, how long to wait for busy brokers (500ms, 90s, 30m, 2h)
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = crate::sys::duration::parse)]
    pub timeout: std::time::Duration,
}

const INIT_EXAMPLES: &str = "\
Examples:
  eval \"$(codex-as init zsh)\"                 in ~/.zshrc
  eval \"$(codex-as init bash --shortcuts)\"    in ~/.bashrc, with codex-NAME functions
  codex-as init fish | source                 in ~/.config/fish/config.fish

Supported shells: bash, zsh, fish.";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The shell to integrate with
    // Named by its values so that a missing SHELL error lists them too.
    #[arg(value_parser = Shell::with_init(), value_name = "bash|zsh|fish")]
    pub shell: Shell,
    /// Also define a `codex-NAME` function per account (`codex-NAME ARGS` runs `codex ARGS` as NAME)
    #[arg(long)]
    pub shortcuts: bool,
    /// Leave completion out (when it is installed from a file instead)
    #[arg(long)]
    pub no_completions: bool,
}

#[derive(Debug, Args)]
pub struct UseArgs {
    /// Account name (`default` is the account of ~/.codex)
    #[arg(conflicts_with = "unset")]
    pub name: Option<String>,
    /// Leave codex-as's accounts: unset CODEX_HOME and CODEX_AS_ACCOUNT, and put back the identity variables `use` removed
    #[arg(long)]
    pub unset: bool,
    /// Print the code that switches a shell (the init's `codex-as` function evaluates it)
    #[arg(long, hide = true, value_parser = Shell::with_init(), value_name = "SHELL")]
    pub emit: Option<Shell>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_parser = Shell::with_init(), value_name = "bash|zsh|fish")]
    pub shell: Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `words` is the list every other reader uses (account names, completion, the run path's
    /// "is this a command?"): it must be exactly what clap parses.
    #[test]
    fn the_word_lists_are_what_clap_knows() {
        let mut cli = super::Cli::command();
        cli.build();
        let names = |hidden: bool| -> Vec<String> {
            let mut v: Vec<String> = cli
                .get_subcommands()
                .filter(|s| s.is_hide_set() == hidden)
                .map(|s| s.get_name().to_string())
                .collect();
            v.sort();
            v
        };
        let sorted = |w: &[&str]| {
            let mut v: Vec<String> = w.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(names(false), sorted(crate::words::COMMANDS));
        assert_eq!(names(true), sorted(crate::words::INTERNAL_COMMANDS));
    }

    #[test]
    fn brokers_stop_timeout_is_a_duration_read_by_clap() {
        use clap::Parser;
        let timeout = |extra: &[&str]| {
            let args = ["codex-as", "brokers", "stop", "--all"].iter().chain(extra);
            super::Cli::try_parse_from(args).map(|cli| match cli.command {
                super::Command::Brokers(super::BrokersArgs {
                    action: Some(super::BrokersAction::Stop(s)),
                    ..
                }) => s.timeout,
                other => panic!("{other:?}"),
            })
        };
        let secs = std::time::Duration::from_secs;
        assert_eq!(timeout(&[]).unwrap(), secs(300));
        assert_eq!(timeout(&["--timeout", "90s"]).unwrap(), secs(90));
        assert_eq!(timeout(&["--timeout=2h"]).unwrap(), secs(7200));
        let e = timeout(&["--timeout", "5x"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        let text = e.to_string();
        assert!(
            text.contains("'--timeout <DURATION>'") && text.contains("invalid duration \"5x\""),
            "{text}"
        );
    }
}
