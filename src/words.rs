//! The words codex-as reads in command position, listed once: its own commands, the plugin
//! companion's, and the few other words no account may be named (`codex-as NAME ...` would be
//! ambiguous). The command line (`request`), account names (`account::names`), completion and
//! the run path all read these lists; a test in `request` keeps the first two equal to what clap
//! knows. A leaf module: everything may use it, it uses nothing.

/// codex-as's commands that `--help` lists.
pub const COMMANDS: &[&str] = &[
    "add",
    "remove",
    "list",
    "which",
    "pin",
    "claude",
    "login",
    "env",
    "brokers",
    "init",
    "use",
    "completions",
    "quota",
    "threads",
    "doctor",
    "statusline",
];

/// codex-as's commands that other codex-as processes run (hidden from `--help`).
pub const INTERNAL_COMMANDS: &[&str] = &["broker", "relay", "thread"];

/// `codex-as help [COMMAND]`, the same as `--help`; also a companion command of its own.
pub const HELP: &str = "help";

/// The word after an account name that runs the Codex TUI on a thread of any account
/// (`codex-as NAME resume ID`); offered by completion after one.
pub const RESUME: &str = "resume";

/// The account spec that picks an account by quota.
pub const AUTO: &str = "auto";

/// Kept free for a `codex-as version` to come (`--version` is clap's).
const VERSION: &str = "version";

/// The companion's commands people type (plugin 1.0.x); completion offers these.
pub const COMPANION: &[&str] = &[
    "setup",
    "review",
    "adversarial-review",
    "task",
    "transfer",
    "status",
    "result",
    "cancel",
];

/// The companion's commands the plugin runs itself: passed on, never offered.
pub const COMPANION_INTERNAL: &[&str] = &["task-worker", "task-resume-candidate", HELP];

/// The companion commands that start a turn (refused on an account that is not logged in).
pub const COMPANION_TURNS: &[&str] = &["task", "review", "adversarial-review"];

/// Whether `word` is one of codex-as's own commands, shown or internal.
pub fn is_command(word: &str) -> bool {
    COMMANDS.contains(&word) || INTERNAL_COMMANDS.contains(&word)
}

/// Whether `word` is a companion command, typed or internal (`help` included).
pub fn is_companion(word: &str) -> bool {
    COMPANION.contains(&word) || COMPANION_INTERNAL.contains(&word)
}

/// Why a word cannot be an account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// codex-as's own word: a command, `help`, `resume`, `auto`, `version`.
    CodexAs,
    /// A companion command: `codex-as task "..."` runs it as the folder's account.
    Companion,
}

pub fn taken(word: &str) -> Option<Taken> {
    if is_command(word) || [HELP, RESUME, AUTO, VERSION].contains(&word) {
        Some(Taken::CodexAs)
    } else if is_companion(word) {
        Some(Taken::Companion)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_word_means_two_things() {
        for w in COMMANDS.iter().chain(INTERNAL_COMMANDS) {
            assert!(!is_companion(w), "{w}");
            assert_ne!(*w, RESUME);
        }
        for w in COMPANION_TURNS {
            assert!(COMPANION.contains(w), "{w}");
        }
        assert_eq!(taken("help"), Some(Taken::CodexAs));
        assert_eq!(taken("task-worker"), Some(Taken::Companion));
        assert_eq!(taken("version"), Some(Taken::CodexAs));
        assert_eq!(taken("work"), None);
    }
}
