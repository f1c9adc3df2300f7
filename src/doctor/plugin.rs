//! The Claude Code plugin: where it is and which version, its state folder, and a plugin broker
//! of this workspace that serves another account than this shell's CODEX_HOME (the bug codex-as
//! exists for: /codex:* commands from Claude Code here would run on that account).

use std::path::{Path, PathBuf};

use super::{Report, account_of, q};
use crate::account::Accounts;
use crate::plugin::roots::{self, Origin, StateRoot};
use crate::plugin::{brokers, locate, workspace};

fn version(root: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join(".claude-plugin/plugin.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

pub fn check(accounts: &Accounts, report: &mut Report) {
    match locate::locate(None, &accounts.config, &accounts.home_dir) {
        Ok(p) => report.note(
            "plugin",
            format!(
                "{} at {}",
                version(&p.root).map(|v| format!("version {v}")).unwrap_or_else(|| "unknown version".into()),
                p.root.display()
            ),
        ),
        Err(e) if e.downcast_ref::<locate::NotAPlugin>().is_some() => report.finding(
            "plugin",
            "plugin root",
            format!("{e}"),
            "codex-as list   # then fix plugin.root in the config, or unset CODEX_AS_PLUGIN_ROOT / CLAUDE_PLUGIN_ROOT",
        ),
        Err(_) => report.note("plugin", "the Claude Code plugin is not installed (needed only for `codex-as NAME task ...`)"),
    }
    let caller: PathBuf = crate::account::identity::codex_home_from_env()
        .unwrap_or_else(|| accounts.default_home.clone());
    let caller_name = account_of(accounts, &caller);
    let workspace = std::env::current_dir()
        .map(|cwd| workspace::workspace_root(&cwd))
        .ok();
    for root in roots::all(&accounts.home_dir) {
        check_root(
            accounts,
            &root,
            workspace.as_deref(),
            &caller,
            caller_name.as_deref(),
            report,
        );
    }
}

/// One state root: whether it can be trusted, then its plugin brokers (a record that cannot be
/// trusted, and this workspace's broker serving another account than the caller's).
fn check_root(
    accounts: &Accounts,
    root: &StateRoot,
    workspace: Option<&Path>,
    caller: &Path,
    caller_name: Option<&str>,
    report: &mut Report,
) {
    let found_under = match &root.origin {
        Origin::Environment => String::new(),
        other => format!(" (found under {})", other.describe()),
    };
    match &root.refused {
        Some(reason) => {
            report.finding(
                "plugin",
                root.path.display().to_string(),
                format!("the plugin's state folder cannot be trusted: {reason}{found_under}"),
                if reason.contains("writable by others") {
                    format!("chmod 700 {}", q(&root.path))
                } else {
                    format!("mv {} {}.untrusted", q(&root.path), q(&root.path))
                },
            );
            return;
        }
        None if root.path.exists() => report.note(
            "plugin",
            format!("state folder {}{found_under}", root.path.display()),
        ),
        None => return,
    }
    let here = workspace.map(|w| workspace::plugin_state_dir(&root.path, w));
    for b in brokers::scan(&root.path, &accounts.default_home) {
        if let Some(reason) = &b.refused {
            report.finding(
                "plugin",
                b.state_dir.join("broker.json").display().to_string(),
                format!("a plugin broker record that cannot be trusted: {reason}{found_under}"),
                format!("rm -r {}", q(&b.state_dir)),
            );
            continue;
        }
        if !b.alive || here.as_deref() != Some(b.state_dir.as_path()) {
            continue;
        }
        let Some(served) = &b.codex_home else {
            continue;
        };
        if crate::account::same_home(served, caller) {
            continue;
        }
        let served_name =
            account_of(accounts, served).unwrap_or_else(|| served.display().to_string());
        let me = caller_name.unwrap_or("NAME");
        report.finding(
            "plugin",
            format!("broker pid {}", b.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())),
            format!(
                "the plugin's broker for this workspace serves '{served_name}', not this shell's account ({}): /codex:* commands from Claude Code here run as '{served_name}'{found_under}",
                caller.display()
            ),
            format!("codex-as {me} task \"...\"   # runs on {me}'s own broker; the plugin's is never stopped"),
        );
    }
}
