//! Preparing `codex-as NAME <companion command> [ARGS]...`: the plugin's companion, as NAME,
//! pinned to a broker that serves NAME's home (started here when none does).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::account::env::EnvPlan;
use crate::account::{Account, Accounts};
use crate::broker::pool;
use crate::handover;
use crate::plugin::{locate, roots, workspace};
use crate::sys::{fsutil, runtime, tools};

/// The variable that makes every companion path use one broker instead of broker.json.
pub const ENDPOINT_ENV: &str = "CODEX_COMPANION_APP_SERVER_ENDPOINT";

/// The companion ready to start as an account: its broker is up, its environment planned.
pub struct Prepared {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub plan: EnvPlan,
    /// The plugin's state folder for this workspace (where it keeps `jobs/`).
    pub state_dir: PathBuf,
    /// The codex-as broker the companion is pinned to, or the relay of its route.
    pub endpoint: String,
    pub relay: bool,
}

/// With a `route` of more than one account the companion talks to the route's relay, which
/// hands a turn that runs out of quota over to the next account (`handover`).
pub fn prepare(
    accounts: &Accounts,
    account: &Account,
    route: Option<&[Account]>,
    plugin_root: Option<&Path>,
    args: Vec<OsString>,
) -> anyhow::Result<Prepared> {
    let plugin = locate::locate(plugin_root, &accounts.config, &accounts.home_dir)?;
    let node = tools::node()?;
    // Checked here so a missing codex is one clear error, not a broker that failed to start.
    tools::codex()?;
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let cwd = workspace::companion_cwd(&args, &here);
    if !cwd.is_dir() {
        return Err(crate::error::UsageError::new(format!(
            "the companion's --cwd {} is not a folder",
            cwd.display()
        ))
        .into());
    }
    let ws = fsutil::canonical(&workspace::workspace_root(&cwd));
    // From a shell, the state of the plugin Claude Code runs: one job list for both (README).
    let data = roots::installed_plugin_data(&accounts.home_dir);
    let state_dir = check_plugin_state(&ws, data.as_deref())?;

    let relay = route.is_some_and(|r| r.len() > 1);
    let endpoint = match route {
        Some(r) if relay => handover::ensure(accounts, r, &ws)?,
        _ => runtime::current_thread()?.block_on(pool::ensure_for(accounts, account, &ws))?,
    };
    let mut plan = EnvPlan::for_account(account);
    plan.set
        .push((ENDPOINT_ENV.to_string(), endpoint.clone().into()));
    if let Some(data) = data {
        plan.set
            .push((workspace::PLUGIN_DATA_ENV.to_string(), data.into()));
    }
    let mut node_args: Vec<OsString> = vec![plugin.companion().into_os_string()];
    node_args.extend(args);
    Ok(Prepared {
        program: node,
        args: node_args,
        plan,
        state_dir,
        endpoint,
        relay,
    })
}

/// The plugin keeps jobs and broker.json under a shared temporary folder by default, where
/// another local user could plant them first. Refuse state we do not own; create the root
/// ourselves (private) when it does not exist yet, so nobody can. Returns the workspace's state
/// folder; `data` is the plugin data folder the companion is given, if any.
fn check_plugin_state(ws: &Path, data: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = data.map_or_else(workspace::plugin_state_root, |d| d.join("state"));
    if std::fs::symlink_metadata(&root).is_err() {
        fsutil::create_private_dir(&root).with_context(|| {
            format!("cannot create the plugin's state folder {}", root.display())
        })?;
    }
    let dir = workspace::plugin_state_dir(&root, ws);
    for p in [
        root.as_path(),
        dir.as_path(),
        &dir.join("broker.json"),
        &dir.join("state.json"),
    ] {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if let Some(reason) = fsutil::untrusted_reason(&meta) {
            anyhow::bail!(
                "refusing the plugin's state {}: {reason}; another local user could have planted it (remove it, or set TMPDIR or CLAUDE_PLUGIN_DATA to a private folder)",
                p.display()
            );
        }
    }
    Ok(dir)
}
