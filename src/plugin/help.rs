//! `codex-as NAME <companion command> --help`: the companion's own usage, printed without
//! starting anything. The companion has one usage text for all its commands (`help`), and
//! reads `task --help` as a prompt, so codex-as asks for the usage itself and shows the lines of
//! the command asked about, as they are spelled through codex-as.

use std::ffi::OsString;

/// How the companion's usage spells itself, replaced by the codex-as form.
const COMPANION_INVOCATION: &str = "node scripts/codex-companion.mjs";

/// Whether the companion arguments (`task ...`) ask for help: `--help` or `-h` as a word of
/// their own, before any `--`.
pub fn wants_help(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

/// The usage lines of `command` from the companion's `usage`, spelled `codex-as ACCOUNT
/// command ...`; the whole usage when no line names the command (a changed format).
pub fn usage_for(usage: &str, command: &str, account: &str) -> String {
    let ours = format!("codex-as {account}");
    let prefix = format!("{COMPANION_INVOCATION} {command}");
    let lines: Vec<String> = usage
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t == prefix || t.starts_with(&format!("{prefix} "))
        })
        .map(|l| {
            format!(
                "  {}",
                l.trim_start().replacen(COMPANION_INVOCATION, &ours, 1)
            )
        })
        .collect();
    if lines.is_empty() {
        return usage.replace(COMPANION_INVOCATION, &ours);
    }
    format!(
        "Usage (the Claude Code plugin's companion, as '{account}'):\n{}\n",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn help_is_a_word_of_its_own_before_the_separator() {
        assert!(wants_help(&os(&["task", "--help"])));
        assert!(wants_help(&os(&["review", "--base", "main", "-h"])));
        assert!(!wants_help(&os(&["task", "explain --help"])));
        assert!(!wants_help(&os(&["task", "--", "--help"])));
        assert!(
            !wants_help(&os(&["--help"])),
            "the command word itself is not an argument"
        );
    }

    #[test]
    fn keeps_the_lines_of_the_command_in_the_codex_as_form() {
        let usage = "Usage:\n  node scripts/codex-companion.mjs setup [--json]\n  node scripts/codex-companion.mjs review [--wait]\n  node scripts/codex-companion.mjs adversarial-review [--wait] [focus]\n";
        assert_eq!(
            usage_for(usage, "review", "alice"),
            "Usage (the Claude Code plugin's companion, as 'alice'):\n  codex-as alice review [--wait]\n"
        );
        assert!(usage_for(usage, "transfer", "a").contains("codex-as a setup [--json]"));
    }
}
