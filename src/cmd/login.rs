//! `codex-as login NAME [--copy-config] [-- ARGS]`

use std::ffi::OsString;

use anyhow::{Context, bail};

use crate::account::env::EnvPlan;
use crate::account::{Account, AccountError, Accounts, DEFAULT, FoundBy, new_home};
use crate::cli::LoginArgs;
use crate::error::UsageError;
use crate::sys::{exec, fsutil};

pub fn run(args: LoginArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let account = match accounts.resolve(&args.name) {
        Ok(a) => a,
        // A new name becomes a conventional account: its home is ~/.codex-NAME.
        Err(AccountError::Unknown { name, .. }) => Account {
            home: accounts.convention_home(&name),
            name,
            found_by: FoundBy::Convention,
            pass_env: Vec::new(),
        },
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = crate::account::home_is_unsafe(&account.home) {
        return Err(AccountError::UnsafeHome {
            name: account.name,
            home: account.home,
            reason,
        }
        .into());
    }
    if crate::account::is_a_file(&account.home) {
        return Err(AccountError::HomeIsAFile {
            name: account.name,
            home: account.home,
        }
        .into());
    }
    let codex = crate::sys::tools::codex()?;
    let source_config = accounts.default_home.join("config.toml");
    if args.copy_config {
        if account.name == DEFAULT || account.is_default_home(&accounts) {
            return Err(UsageError::new(
                "--copy-config copies the default account's config.toml into another account: this is the default account",
            )
            .into());
        }
        if !source_config.is_file() {
            bail!(
                "--copy-config: the default account has no config.toml at {} to copy",
                source_config.display()
            );
        }
    }
    // `login NAME -- status` only asks: an account without a home is simply not logged in, and
    // asking must not create anything.
    if !account.exists() && args.args.first().is_some_and(|a| a == "status") {
        crate::outln!("Not logged in ('{}' has no home yet)", account.name)?;
        return Ok(crate::error::status::FAILURE);
    }
    let created = !account.exists();
    if created {
        fsutil::create_private_dir(&account.home)
            .with_context(|| format!("cannot create {}", account.home.display()))?;
        eprintln!(
            "codex-as: created {} for '{}'",
            account.home.display(),
            account.name
        );
    }
    let copied = if args.copy_config {
        copy_config(&source_config, &account)?
    } else {
        None
    };
    let mut login_args: Vec<OsString> = vec!["login".into()];
    login_args.extend(args.args);
    let plan = EnvPlan::for_account(&account);
    let mut cmd = exec::command(codex.as_os_str(), &login_args, None)?;
    plan.apply(&mut cmd);
    if !created {
        return Err(exec::exec(cmd, codex.as_os_str()).into());
    }
    // A new home is undone when the login does not happen, so codex login runs as a child
    // (signals passed on, the terminal its own) and codex-as looks at how it ended.
    let ended = crate::sys::supervise::wait(cmd, &codex.to_string_lossy(), None)?;
    if ended.status.success() {
        return Ok(crate::error::status::OK);
    }
    if new_home::remove_if_unused(&account.home, copied.as_deref()) {
        eprintln!(
            "codex-as: the login did not finish; removed the new {} (nothing was logged in)",
            account.home.display()
        );
    }
    Ok(ended.exit_like())
}

/// A copy, never a link: Codex rewrites config.toml in place, and a link would carry one account's
/// settings into the other. An existing config.toml is left as it is. Returns what was copied.
fn copy_config(source: &std::path::Path, account: &Account) -> anyhow::Result<Option<Vec<u8>>> {
    let target = account.home.join("config.toml");
    if target.symlink_metadata().is_ok() {
        eprintln!(
            "codex-as: {} already exists; left unchanged (--copy-config only seeds a missing one)",
            target.display()
        );
        return Ok(None);
    }
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    fsutil::write_private_atomic(&target, &bytes)
        .with_context(|| format!("cannot write {}", target.display()))?;
    eprintln!(
        "codex-as: copied {} to {}",
        source.display(),
        target.display()
    );
    Ok(Some(bytes))
}
