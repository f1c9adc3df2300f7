//! `codex-as claude hook`: what Claude Code runs at SessionStart, CwdChanged and SessionEnd.
//!
//! SessionStart (startup, resume, clear, compact) and CwdChanged: resolve the folder's account
//! (`account::directory`), make sure a codex-as broker serves it, take the session's lease on it,
//! and rewrite this hook's `CLAUDE_ENV_FILE` so every later Bash command and `!` line of the
//! session runs on that account, pinned to that broker. A folder on a list or `auto` gets the
//! handover relay of its route instead (`handover`), leased the same way: the session's turns
//! then go on on the next account when one runs out. SessionEnd: release the lease.
//!
//! Failures never leave the session on another account: the env file then holds exports that
//! make every plugin call fail with the reason, and the hook prints it for the user
//! (`systemMessage`) and for the model (`additionalContext`). The hook always exits 0: a failing
//! SessionStart hook blocks nothing in Claude Code, and its env file is applied either way.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::account::directory::{self, DirectoryAccount, Why};
use crate::account::env::EnvPlan;
use crate::account::{Account, Accounts};
use crate::broker::lease;
use crate::broker::pool as broker_pool;
use crate::claude::env_file;
use crate::fallback;
use crate::handover;
use crate::handover::route::Route;
use crate::plugin::{locate as plugin, workspace};
use crate::sys::{fsutil, runtime, tools};

/// The fields of Claude Code's hook input that matter here (the rest are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Input {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub hook_event_name: Option<String>,
    /// CwdChanged: the folder the session moved to (`cwd` is the old one in some releases).
    #[serde(default)]
    pub new_cwd: Option<PathBuf>,
}

/// What the hook tells Claude Code on stdout, if anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Quiet,
    /// A problem the user must see; printed as hook JSON.
    Problem {
        event: String,
        message: String,
    },
}

impl Outcome {
    pub fn json(&self) -> Option<String> {
        let Outcome::Problem { event, message } = self else {
            return None;
        };
        let mut v = serde_json::json!({ "systemMessage": format!("codex-as: {message}") });
        // Only an event Claude Code named may carry hook-specific output.
        if !event.is_empty() {
            v["hookSpecificOutput"] = serde_json::json!({
                "hookEventName": event,
                "additionalContext": format!(
                    "codex-as could not put this session's Codex plugin commands on the right account, so they will fail until this is fixed: {message}. Tell the user this if they use /codex commands."
                ),
            });
        }
        Some(v.to_string())
    }
}

pub fn run() -> anyhow::Result<Outcome> {
    let mut raw = String::new();
    let read = std::io::stdin()
        .read_to_string(&mut raw)
        .context("cannot read the hook input");
    let parsed = read.and_then(|_| {
        if raw.trim().is_empty() {
            Ok(Input::default())
        } else {
            serde_json::from_str::<Input>(&raw).context("the hook input is not Claude Code's JSON")
        }
    });
    match parsed {
        Ok(input) => handle(&input),
        Err(e) => {
            let env_file = std::env::var_os("CLAUDE_ENV_FILE").filter(|v| !v.is_empty());
            Ok(unreadable(
                &format!("{e:#}"),
                env_file.as_deref().map(Path::new),
            ))
        }
    }
}

/// Input that cannot be read: when this run was given an env file (SessionStart, CwdChanged),
/// the session is refused rather than left on the account Claude Code was started with.
fn unreadable(message: &str, env_path: Option<&Path>) -> Outcome {
    if let Some(path) = env_path {
        let text = env_file::render_refusal(message).unwrap_or_default();
        let _ = env_file::write(path, &text);
    }
    Outcome::Problem {
        event: String::new(),
        message: message.to_string(),
    }
}

pub fn handle(input: &Input) -> anyhow::Result<Outcome> {
    let event = input.hook_event_name.clone().unwrap_or_default();
    match event.as_str() {
        "SessionStart" | "CwdChanged" => Ok(start(input, &event)),
        "SessionEnd" => {
            if let Some(s) = input.session_id.as_deref() {
                lease::release(s);
            }
            Ok(Outcome::Quiet)
        }
        // Installed for other events by hand: nothing to do, and nothing to break.
        _ => Ok(Outcome::Quiet),
    }
}

fn start(input: &Input, event: &str) -> Outcome {
    let problem = |message: String| Outcome::Problem {
        event: event.to_string(),
        message,
    };
    let Some(env_path) = std::env::var_os("CLAUDE_ENV_FILE").filter(|v| !v.is_empty()) else {
        return problem(
            "Claude Code gave this hook no CLAUDE_ENV_FILE (it needs a release that supports it), so /codex commands are not on the folder's account".into(),
        );
    };
    let env_path = PathBuf::from(env_path);
    let dir = input
        .new_cwd
        .clone()
        .or_else(|| input.cwd.clone())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let (text, outcome) = match settle(&dir, input.session_id.as_deref()) {
        Ok(s) => match env_file::render_account(&s.plan, &s.endpoint, &s.why) {
            Ok(text) => (text, Outcome::Quiet),
            Err(e) => refusal(&format!("{e:#}"), &problem),
        },
        Err(e) => refusal(&format!("{e:#}"), &problem),
    };
    if let Err(e) = env_file::write(&env_path, &text) {
        return problem(format!(
            "cannot write {}: {e}; /codex commands in this session are not on the folder's account",
            env_path.display()
        ));
    }
    outcome
}

fn refusal(message: &str, problem: &dyn Fn(String) -> Outcome) -> (String, Outcome) {
    // The refusal is made of constant text and quoted values: it renders.
    let text = env_file::render_refusal(message).unwrap_or_default();
    (text, problem(message.to_string()))
}

/// A session settled on its account.
struct Settled {
    plan: EnvPlan,
    endpoint: String,
    why: String,
}

fn settle(dir: &Path, session: Option<&str>) -> anyhow::Result<Settled> {
    let accounts = Accounts::load()?;
    let chosen = directory::for_directory(dir, &accounts)?;
    if chosen.spec.one().is_none() {
        return settle_route(&accounts, &chosen, dir, session);
    }
    let account = chosen.account(&accounts)?;
    // A session's commands need the plugin; say so now rather than at the first /codex command.
    plugin::locate(None, &accounts.config, &accounts.home_dir)?;
    let endpoint = ensure_broker(&accounts, &account, dir)?;
    if let Some(session) = session {
        let key = lease::account_key(&account.canonical_home());
        lease::take(&key, session, lease::hook_owner())
            .context("cannot record this session's lease on the broker")?;
    }
    let why = match &chosen.why {
        Why::Session => format!("'{}', named when Claude Code was started", account.name),
        other => format!("'{}', chosen by {other}", account.name),
    };
    Ok(Settled {
        plan: EnvPlan::for_account(&account),
        endpoint,
        why,
    })
}

/// A folder on a list or `auto`: the session's plugin calls go to the handover relay for that
/// route, which runs each turn on the route's account and moves the thread on when one runs out,
/// exactly as `codex-as work,personal task ...` does.
fn settle_route(
    accounts: &Accounts,
    chosen: &DirectoryAccount,
    dir: &Path,
    session: Option<&str>,
) -> anyhow::Result<Settled> {
    let route = fallback::here::order(accounts, &chosen.spec, chosen.route(accounts)?);
    plugin::locate(None, &accounts.config, &accounts.home_dir)?;
    // CODEX_HOME is the route's first account's home (a list's first name, `auto`'s best by
    // headroom as the session starts), not whichever account the relay is on: turns reach
    // Codex through the relay, which picks the account for each connection and moves threads
    // between homes itself, so this home serves only what bypasses it (the companion's own
    // `codex app-server` when the relay is gone, `codex` typed in the session). That must be an
    // account of the route, never the one Claude Code was launched with; the first is where
    // the route begins, and a list's first stays the same at every session start (the env
    // file is rewritten on resume and compact) whatever the quota does meanwhile.
    let first = route
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("'{}' names no account to run as", chosen.label()))?;
    let relay = Route::new(route);
    let endpoint = if relay.len() > 1 {
        let ws = fsutil::canonical(&workspace::workspace_root(dir));
        tools::codex()?;
        handover::ensure(accounts, &relay.accounts, &ws)?
    } else {
        // Two names for one home: one account, no one to hand over to.
        ensure_broker(accounts, &first, dir)?
    };
    if let Some(session) = session {
        let key = if relay.len() > 1 {
            handover::serve::lease_key(&relay.key())
        } else {
            lease::account_key(&first.canonical_home())
        };
        lease::take(&key, session, lease::hook_owner())
            .context("cannot record this session's lease on its relay")?;
    }
    let names = chosen.label();
    let why = match &chosen.why {
        Why::Session => format!("'{names}', named when Claude Code was started"),
        other => format!("'{names}', chosen by {other}"),
    };
    Ok(Settled {
        plan: EnvPlan::for_route(&first, &chosen.spec),
        endpoint,
        why,
    })
}

/// The endpoint of a codex-as broker serving `account` for `dir`'s workspace (the existing
/// pool: reused when warm, started once when not).
pub fn ensure_broker(accounts: &Accounts, account: &Account, dir: &Path) -> anyhow::Result<String> {
    tools::codex()?;
    let ws = fsutil::canonical(&workspace::workspace_root(dir));
    runtime::current_thread()?.block_on(broker_pool::ensure_for(accounts, account, &ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_shown_to_the_user_and_the_model() {
        let o = Outcome::Problem {
            event: "SessionStart".into(),
            message: "x names 'carol'".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&o.json().unwrap()).unwrap();
        assert_eq!(v["systemMessage"], "codex-as: x names 'carol'");
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SessionStart");
        assert!(
            v["hookSpecificOutput"]["additionalContext"]
                .as_str()
                .unwrap()
                .contains("x names 'carol'")
        );
        assert_eq!(Outcome::Quiet.json(), None);
        let d = tempfile::tempdir().unwrap();
        let env = d.path().join("sessionstart-hook-0.sh");
        let o = unreadable("bad input", Some(&env));
        let v: serde_json::Value = serde_json::from_str(&o.json().unwrap()).unwrap();
        assert_eq!(v["systemMessage"], "codex-as: bad input");
        assert!(v.get("hookSpecificOutput").is_none());
        let text = std::fs::read_to_string(&env).unwrap();
        assert!(text.contains("codex-as-refused: bad input"), "{text}");
    }

    #[test]
    fn reads_both_cwd_fields() {
        let i: Input = serde_json::from_str(
            r#"{"session_id":"s","cwd":"/old","new_cwd":"/new","old_cwd":"/old","hook_event_name":"CwdChanged","extra":1}"#,
        )
        .unwrap();
        assert_eq!(i.new_cwd.as_deref(), Some(Path::new("/new")));
    }
}
