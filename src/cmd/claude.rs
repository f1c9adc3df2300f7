//! `codex-as claude install [--project] | uninstall [--project] | status`, and the hidden
//! `codex-as claude hook` that Claude Code runs.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::account::{Accounts, directory};
use crate::broker::client;
use crate::broker::lease;
use crate::broker::pool;
use crate::broker::registry::Registry;
use crate::claude::in_use::{self, How, InUse};
use crate::claude::{hook, settings};
use crate::cli::{ClaudeCommand, ClaudeScope};
use crate::error::status;
use crate::handover;
use crate::plugin::workspace;
use crate::sys::runtime;

pub fn run(cmd: ClaudeCommand) -> anyhow::Result<u8> {
    match cmd {
        ClaudeCommand::Install(scope) => install(&scope),
        ClaudeCommand::Uninstall(scope) => uninstall(&scope),
        ClaudeCommand::Status => show_status(),
        ClaudeCommand::Hook => {
            let outcome = hook::run()?;
            if let Some(json) = outcome.json() {
                crate::outln!("{json}")?;
            }
            Ok(status::OK)
        }
    }
}

fn here() -> anyhow::Result<PathBuf> {
    std::env::current_dir().context("cannot read the current folder")
}

fn target(scope: &ClaudeScope) -> anyhow::Result<PathBuf> {
    if scope.project {
        Ok(settings::project_path(&workspace::workspace_root(&here()?)))
    } else {
        Ok(settings::user_path(&crate::account::config::home_dir()?))
    }
}

fn install(scope: &ClaudeScope) -> anyhow::Result<u8> {
    let path = target(scope)?;
    // The path that survives an upgrade through the channel this codex-as came from.
    let exe = crate::sys::exe::stable_or_name();
    let mut value = settings::load(&path)?;
    if settings::install(&mut value, &settings::hook_command(&exe), &path)? {
        settings::save(&path, &value)?;
        crate::outln!("installed codex-as's session hooks in {}", path.display())?;
    } else {
        crate::outln!("codex-as's session hooks are already in {}", path.display())?;
    }
    crate::outln!(
        "New Claude Code sessions now run /codex:* commands as each folder's account (`codex-as pin NAME` in a project; `codex-as claude status` to check)."
    )?;
    let missing = match Accounts::load() {
        Ok(accounts) => plugin_missing(&accounts),
        Err(e) => Some(e),
    };
    if let Some(e) = missing {
        eprintln!(
            "codex-as: warning: until the Codex plugin is installed, the hook refuses every session: {e:#}"
        );
    }
    Ok(status::OK)
}

fn uninstall(scope: &ClaudeScope) -> anyhow::Result<u8> {
    let path = target(scope)?;
    let mut value = settings::load(&path)?;
    if settings::uninstall(&mut value) {
        // Nothing left but what install made: remove the file (and a project's `.claude/` left
        // empty) rather than leave `{}` behind for git to show.
        if value.as_object().is_some_and(|o| o.is_empty()) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot remove {}", path.display()))
                    );
                }
                _ => {}
            }
            if scope.project
                && let Some(dir) = path.parent()
            {
                let _ = std::fs::remove_dir(dir);
            }
        } else {
            settings::save(&path, &value)?;
        }
        crate::outln!("removed codex-as's session hooks from {}", path.display())?;
    } else {
        crate::outln!("codex-as's session hooks are not in {}", path.display())?;
    }
    Ok(status::OK)
}

fn show_status() -> anyhow::Result<u8> {
    let here = here()?;
    let accounts = Accounts::load()?;
    let project = workspace::workspace_root(&here);
    let files = [
        ("user", settings::user_path(&accounts.home_dir)),
        ("project", project.join(".claude").join("settings.json")),
        ("project (local)", settings::project_path(&project)),
    ];
    let mut any = false;
    crate::outln!("hooks:")?;
    for (label, path) in &files {
        match settings::load(path) {
            Ok(v) => {
                let found = settings::installed(&v);
                if found.is_empty() {
                    crate::outln!("  {label}: none in {}", path.display())?;
                } else {
                    any = true;
                    let events: Vec<&str> = found.iter().map(|(e, _)| e.as_str()).collect();
                    crate::outln!("  {label}: {} in {}", events.join(", "), path.display())?;
                    for program in missing_programs(&found) {
                        crate::outln!(
                            "    but {program} does not exist: sessions get no account; run `codex-as claude install{}` again",
                            if *label == "user" { "" } else { " --project" }
                        )?;
                    }
                }
            }
            Err(e) => crate::outln!("  {label}: {e}")?,
        }
    }
    if !any {
        crate::outln!("  not installed: `codex-as claude install` (or --project) to install them")?;
    }
    let missing = plugin_missing(&accounts);
    if any && let Some(e) = &missing {
        crate::outln!("plugin: the hooks refuse every session: {e:#}")?;
    }
    let chosen = match directory::for_directory(&here, &accounts) {
        Ok(c) => c,
        Err(e) => {
            crate::outln!("account: none usable here: {e}")?;
            return Ok(status::FAILURE);
        }
    };
    let now_on = match in_use::of(&accounts, &chosen) {
        Ok(a) => a,
        Err(e) => {
            crate::outln!(
                "account: '{}', but it cannot be used: {e:#}",
                chosen.label()
            )?;
            crate::outln!(
                "  sessions started here refuse to run /codex:* commands until this is fixed"
            )?;
            return Ok(status::FAILURE);
        }
    };
    let account = &now_on.account;
    let home = account.canonical_home();
    if now_on.how != How::Named {
        crate::outln!(
            "account: {} (sessions here hand a turn over to the next account when one reaches its usage limit)\n  in use: {} ({}): {}\n  chosen by: {}",
            chosen.label(),
            account.name,
            home.display(),
            now_on.describe(&chosen),
            chosen.why
        )?;
        return show_relay(&now_on);
    }
    crate::outln!(
        "account: {} ({})\n  chosen by: {}",
        account.name,
        home.display(),
        chosen.why
    )?;
    match broker_here(&home) {
        Some((endpoint, st)) => crate::outln!(
            "broker: up at {endpoint} (pid {}, {} client(s), {})",
            st.pid.map_or("?".into(), |p| p.to_string()),
            st.connections.map_or(0, |c| c.saturating_sub(1)),
            if st.busy { "busy" } else { "idle" }
        )?,
        None => crate::outln!("broker: not running (the next session start here starts it)")?,
    }
    if let Ok(runtime) = crate::broker::runtime_dir::ensure() {
        let n = lease::holders(&runtime, &lease::account_key(&home)).len();
        crate::outln!("sessions holding {}'s broker: {n}", account.name)?;
    }
    Ok(if any && missing.is_some() {
        status::FAILURE
    } else {
        status::OK
    })
}

/// Why the plugin the hook hands each session cannot be found, if so.
fn plugin_missing(accounts: &Accounts) -> Option<anyhow::Error> {
    crate::plugin::locate::locate(None, &accounts.config, &accounts.home_dir).err()
}

/// A folder on a list or `auto`: its sessions talk to the route's relay, not to one broker.
fn show_relay(now_on: &InUse) -> anyhow::Result<u8> {
    let How::Relay(relay) = &now_on.how else {
        crate::outln!("relay: not running (the next session start here starts it)")?;
        return Ok(status::OK);
    };
    crate::outln!(
        "relay: up at {} (pid {}, route {})",
        relay.endpoint,
        relay.pid.map_or("?".into(), |p| p.to_string()),
        relay.accounts.join(",")
    )?;
    if let Ok(runtime) = crate::broker::runtime_dir::ensure() {
        let n = lease::holders(&runtime, &handover::serve::lease_key(&relay.key)).len();
        crate::outln!("sessions holding the relay: {n}")?;
    }
    Ok(status::OK)
}

/// The codex-as programs the installed hooks run that are gone (moved, uninstalled).
fn missing_programs(found: &[(String, String)]) -> Vec<String> {
    let mut gone: Vec<String> = found
        .iter()
        .filter_map(|(_, command)| shell_words::split(command).ok()?.into_iter().next())
        .filter(|program| program.contains('/') && !Path::new(program).is_file())
        .collect();
    gone.sort();
    gone.dedup();
    gone
}

/// The live codex-as broker serving `home` (one per account serves every workspace), if any.
fn broker_here(home: &Path) -> Option<(String, client::Status)> {
    let reg = Registry::open().ok()?;
    let runtime = runtime::current_thread().ok()?;
    let key = Registry::key(home);
    runtime.block_on(async {
        for id in reg.ids_for_key(&key) {
            let probe = pool::Probe::of(&reg, &id, client::PROBE_TIMEOUT).await;
            if let Ok(st) = probe.answer
                && pool::serves(&st, home)
            {
                return Some((probe.endpoint, st));
            }
        }
        None
    })
}
