use std::path::Path;

use anyhow::Context;

use crate::account::config::ConfigEdit;
use crate::account::{self, AccountError, Accounts};
use crate::cli::AddArgs;
use crate::error::{UsageError, status};

pub fn run(args: AddArgs) -> anyhow::Result<u8> {
    account::check_name(&args.name)?;
    if args.name == account::DEFAULT {
        // One meaning everywhere: `default` is what `codex` uses without CODEX_HOME. A configured
        // home for it would make `which default` and a run disagree whenever it is missing.
        return Err(UsageError::new(
            "'default' is always ~/.codex, the home `codex` uses without CODEX_HOME: add the other folder under its own name (`codex-as add NAME --home DIR`)",
        )
        .into());
    }
    // A `$CODEX_AS_CONFIG` naming no file yet is the file this creates.
    crate::account::config::expect_missing();
    let accounts = Accounts::load()?;
    if let Some(existing) = accounts.config.accounts.get(&args.name) {
        let home = existing
            .home
            .as_deref()
            .map(|h| crate::account::config::expand_tilde(h, &accounts.home_dir))
            .unwrap_or_else(|| accounts.convention_home(&args.name));
        return Err(AccountError::AlreadyConfigured {
            name: args.name,
            home,
        }
        .into());
    }
    // `~/...` is kept as written (the config expands it, and it stays right if HOME moves); a
    // shell leaves `--home=~/x` unexpanded, so this is also what the user meant there.
    let (home, stored) = match args.home {
        Some(h) if h == Path::new("~") || h.starts_with("~/") => {
            let raw = h.to_string_lossy().into_owned();
            (
                crate::account::config::expand_tilde(&raw, &accounts.home_dir),
                raw,
            )
        }
        Some(h) => {
            let abs = if h.is_absolute() {
                h
            } else {
                std::env::current_dir()
                    .context("cannot resolve --home against the current folder")?
                    .join(h)
            };
            let text = abs.to_str().map(str::to_string).ok_or_else(|| {
                UsageError::new(format!(
                    "home {} is not valid UTF-8: the config file cannot hold it",
                    abs.display()
                ))
            })?;
            (abs, text)
        }
        None => {
            let home = accounts.convention_home(&args.name);
            let text = home.to_string_lossy().into_owned();
            (home, text)
        }
    };
    if let Some(reason) = account::home_is_unsafe(&home) {
        return Err(UsageError::new(format!(
            "refusing home {}: {reason}; pick a path without `$(` or backticks",
            home.display()
        ))
        .into());
    }
    if account::is_a_file(&home) {
        return Err(AccountError::HomeIsAFile {
            name: args.name,
            home,
        }
        .into());
    }
    if let Some(other) = accounts
        .all()
        .into_iter()
        .find(|a| a.name != args.name && a.exists() && account::same_home(&a.home, &home))
    {
        eprintln!(
            "codex-as: note: '{}' uses the same home ({}), so both names are one account",
            other.name,
            other.canonical_home().display()
        );
    }
    let mut edit = ConfigEdit::open(&accounts.config_path)?;
    edit.set_account_home(&args.name, &stored);
    edit.save()?;
    crate::outln!("added '{}' with home {}", args.name, home.display())?;
    if !home.is_dir() {
        eprintln!(
            "codex-as: {} does not exist yet: run `codex-as login {}` to create it and log in",
            home.display(),
            args.name
        );
    }
    Ok(status::OK)
}
