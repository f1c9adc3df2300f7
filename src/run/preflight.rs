//! What the run path settles before anything starts: `--help` for a companion command (the
//! companion's usage, nothing started), and a turn on an account that is not logged in
//! (refused, since it could only hang).

use std::ffi::OsString;
use std::path::Path;

use crate::account::login_state::{self, LoginState};
use crate::account::{Account, Accounts};
use crate::plugin::locate as plugin;

/// On an account that is not logged in a turn can only hang ("Reconnecting...") or fail after
/// spending the time, so a companion command that starts one is refused first.
pub fn refuse_logged_out(account: &Account, companion_args: &[OsString]) -> anyhow::Result<()> {
    let starts_turn = companion_args
        .first()
        .is_some_and(|c| crate::words::COMPANION_TURNS.iter().any(|t| c == *t));
    // Only a home that says so for sure: a keyring login cannot be seen from the file.
    if starts_turn && login_state::read(&account.canonical_home()) == LoginState::LoggedOut {
        anyhow::bail!(
            "account '{}' is not logged in: log in with `codex-as login {}`",
            account.name,
            account.name
        );
    }
    Ok(())
}

/// `codex-as SPEC <companion command> --help`: the companion's usage for that command, asked
/// of the companion itself (`help` starts no turn, no broker, no app-server).
pub fn companion_help(
    accounts: &Accounts,
    spec: &str,
    plugin_root: Option<&Path>,
    companion_args: &[OsString],
) -> anyhow::Result<u8> {
    let plugin = plugin::locate(plugin_root, &accounts.config, &accounts.home_dir)?;
    let node = crate::sys::tools::node()?;
    let out = std::process::Command::new(node)
        .arg(plugin.companion())
        .arg("help")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run the plugin's companion: {e}"))?;
    let usage = String::from_utf8_lossy(&out.stdout);
    let command = companion_args
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::out!("{}", crate::plugin::help::usage_for(&usage, &command, spec))?;
    Ok(crate::error::status::OK)
}
