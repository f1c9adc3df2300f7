//! Claude Code: whether codex-as's hooks are installed (`codex-as claude hook` in a settings
//! file), in the user's settings and the project's; whether the codex-as they run is still there
//! and is this version; and whether the plugin they need is found.

use std::path::{Path, PathBuf};

use super::Report;
use crate::claude::settings;

/// What the hook commands of every codex-as version hold (with the program's path before it).
const HOOK_COMMAND: &str = "codex-as claude hook";

pub fn check(accounts: Option<&crate::account::Accounts>, report: &mut Report) {
    // (file, whether it is the user's own settings rather than a project's)
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if let Ok(home) = crate::account::config::home_dir() {
        files.push((settings::user_path(&home), true));
    }
    if let Ok(cwd) = std::env::current_dir() {
        let root = crate::plugin::workspace::workspace_root(&cwd);
        files.push((root.join(".claude/settings.local.json"), false));
        files.push((root.join(".claude/settings.json"), false));
    }
    let mut with_hooks: Vec<String> = Vec::new();
    for (file, user) in &files {
        let Ok(value) = settings::load(file) else {
            continue;
        };
        let found = settings::installed(&value);
        if found.is_empty() && !value.to_string().contains(HOOK_COMMAND) {
            continue;
        }
        with_hooks.push(file.display().to_string());
        check_programs(file, *user, &found, report);
    }
    if with_hooks.is_empty() {
        report.note(
            "claude",
            "no codex-as hooks in Claude Code's settings (`codex-as claude install` adds them)",
        );
        return;
    }
    report.note(
        "claude",
        format!("codex-as hooks installed in {}", with_hooks.join(", ")),
    );
    // The hook refuses every session it cannot give the plugin to.
    if let Some(accounts) = accounts
        && let Err(e) = crate::plugin::locate::locate(None, &accounts.config, &accounts.home_dir)
    {
        report.finding(
            "claude",
            "Codex plugin",
            format!("codex-as hooks are installed but every Claude Code session's hook refuses to start: {e}"),
            "claude plugin install codex@openai-codex   # or /plugin install codex@openai-codex in Claude Code; or: codex-as claude uninstall",
        );
    }
}

/// Each codex-as the hooks in `file` run: gone, or another version than this one. Only the
/// user's own settings are asked for a version: a project's settings come with the checkout, and
/// doctor runs nothing a repository names.
fn check_programs(file: &Path, user: bool, found: &[(String, String)], report: &mut Report) {
    let mut programs: Vec<String> = found
        .iter()
        .filter_map(|(_, command)| shell_words::split(command).ok()?.into_iter().next())
        .collect();
    programs.sort();
    programs.dedup();
    let fix = if user {
        "codex-as claude install"
    } else {
        "codex-as claude install --project"
    };
    let this = crate::sys::exe::stable_or_name();
    let mine = env!("CARGO_PKG_VERSION");
    for program in programs {
        let path = Path::new(&program);
        // A bare `codex-as` is whatever Claude Code finds on its PATH; nothing to check here.
        if !program.contains('/') {
            continue;
        }
        if !path.is_file() {
            report.finding(
                "claude",
                file.display().to_string(),
                format!(
                    "the hooks run {program}, which does not exist (moved or uninstalled): Claude Code sessions get no account"
                ),
                fix,
            );
            continue;
        }
        if same_program(path, &this) || !user {
            continue;
        }
        match version_of(path) {
            Some(v) if v == mine => {}
            Some(v) => report.finding(
                "claude",
                file.display().to_string(),
                format!(
                    "the hooks run {program}, codex-as {v}, not this codex-as {mine} ({})",
                    this.display()
                ),
                fix,
            ),
            None => report.finding(
                "claude",
                file.display().to_string(),
                format!("the hooks run {program}, which does not answer `--version` as codex-as"),
                fix,
            ),
        }
    }
}

/// Whether a hook's program is this codex-as: the same path, or the same file.
fn same_program(program: &Path, this: &Path) -> bool {
    if program == this {
        return true;
    }
    let exe = std::env::current_exe().ok();
    let a = std::fs::canonicalize(program).ok();
    a.is_some() && (a == std::fs::canonicalize(this).ok() || a == exe)
}

/// The version `PROGRAM --version` reports (`codex-as 1.2.3`), if it answers in time.
fn version_of(program: &Path) -> Option<String> {
    parse_version(&crate::sys::tools::version(program)?)
}

fn parse_version(out: &str) -> Option<String> {
    let v = out.trim().strip_prefix("codex-as ")?;
    (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_are_read_strictly() {
        assert_eq!(parse_version("codex-as 0.2.0\n").as_deref(), Some("0.2.0"));
        assert_eq!(parse_version("codex 0.2.0\n"), None);
        assert_eq!(parse_version("codex-as \n"), None);
        assert_eq!(parse_version("codex-as 1 2\n"), None);
    }

    #[test]
    fn a_program_is_asked_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("codex-as");
        std::fs::write(&script, "#!/bin/sh\necho codex-as 9.9.9\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(version_of(&script).as_deref(), Some("9.9.9"));
    }
}
