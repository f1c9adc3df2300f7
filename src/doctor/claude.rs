//! Claude Code: whether codex-as's hooks are installed (`codex-as claude hook` in a settings
//! file), in the user's settings and the project's, and whether the plugin they need is found.

use std::path::PathBuf;

use super::Report;

const HOOK_COMMAND: &str = "codex-as claude hook";

pub fn check(accounts: Option<&crate::account::Accounts>, report: &mut Report) {
    let mut files: Vec<PathBuf> = Vec::new();
    let user_dir = std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            crate::account::config::home_dir()
                .ok()
                .map(|h| h.join(".claude"))
        });
    if let Some(d) = user_dir {
        files.push(d.join("settings.json"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        let root = crate::plugin::workspace::workspace_root(&cwd);
        files.push(root.join(".claude/settings.local.json"));
        files.push(root.join(".claude/settings.json"));
    }
    let with_hooks: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(HOOK_COMMAND)))
        .map(|f| f.display().to_string())
        .collect();
    if with_hooks.is_empty() {
        report.note(
            "claude",
            "no codex-as hooks in Claude Code's settings (`codex-as claude install` adds them)",
        );
    } else {
        report.note(
            "claude",
            format!("codex-as hooks installed in {}", with_hooks.join(", ")),
        );
        // The hook refuses every session it cannot give the plugin to.
        if let Some(accounts) = accounts
            && let Err(e) =
                crate::plugin::locate::locate(None, &accounts.config, &accounts.home_dir)
        {
            report.finding(
                "claude",
                "Codex plugin",
                format!("codex-as hooks are installed but every Claude Code session's hook refuses to start: {e}"),
                "claude plugin install codex@openai-codex   # or /plugin install codex@openai-codex in Claude Code; or: codex-as claude uninstall",
            );
        }
    }
}
