//! The last step before a program starts as an account: the plugin's companion (with its
//! broker) or the user's command, prepared the same way whether it then replaces codex-as (a
//! pin) or runs as a watched child (a fallback attempt).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use super::args::{Mode, RunArgs};
use super::companion;
use crate::account::env::EnvPlan;
use crate::account::{Account, Accounts};
use crate::error::ExecError;
use crate::sys::exec;

/// A program ready to start as an account.
pub struct Launch {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    pub plan: EnvPlan,
    /// Set for the companion: where its jobs are recorded, and the broker it is pinned to.
    pub companion: Option<CompanionRun>,
}

pub struct CompanionRun {
    /// The plugin's state folder for this workspace (where it keeps `jobs/`).
    pub state_dir: PathBuf,
    /// The codex-as broker the companion is pinned to, or the relay of its route.
    pub endpoint: String,
    /// Whether `endpoint` is a relay (`handover`).
    pub relay: bool,
}

/// `route`: the accounts a companion's turn may be handed over to, this one first (a list or
/// `auto`); None for a pin.
pub fn prepare(
    accounts: &Accounts,
    account: &Account,
    route: Option<&[Account]>,
    args: &RunArgs,
) -> anyhow::Result<Launch> {
    Ok(match &args.mode {
        Mode::Companion { args: cargs } => {
            let p = companion::prepare(
                accounts,
                account,
                route,
                args.plugin_root.as_deref(),
                cargs.clone(),
            )?;
            Launch {
                program: p.program.into_os_string(),
                args: p.args,
                cwd: None,
                plan: p.plan,
                companion: Some(CompanionRun {
                    state_dir: p.state_dir,
                    endpoint: p.endpoint,
                    relay: p.relay,
                }),
            }
        }
        Mode::Exec { cwd, command } => {
            let (program, rest) = command
                .split_first()
                .ok_or_else(|| crate::error::UsageError::new("nothing to run"))?;
            Launch {
                program: program.clone(),
                args: rest.to_vec(),
                cwd: cwd.clone(),
                plan: EnvPlan::for_account(account),
                companion: None,
            }
        }
    })
}

impl Launch {
    /// The program as a child to start (the working directory checked).
    pub fn command(&self) -> Result<Command, ExecError> {
        let mut cmd = exec::command(&self.program, &self.args, self.cwd.as_deref())?;
        self.plan.apply(&mut cmd);
        Ok(cmd)
    }

    /// Replaces codex-as with the program; returns only the reason it could not.
    pub fn exec(self) -> anyhow::Error {
        match self.command() {
            Ok(cmd) => exec::exec(cmd, &self.program).into(),
            Err(e) => e.into(),
        }
    }
}
