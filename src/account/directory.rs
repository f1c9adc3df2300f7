//! Which account a folder uses, and why: the one rule every codex-as command that names no
//! account follows (`codex-as task`, `codex-as -- CMD`, `which`, the Claude Code hook, the
//! status line). What is found is an [`AccountSpec`]: one account, or, from a pin file, a
//! `[directories]` entry or a Claude Code session on one, a list (`work, personal`) or `auto`.
//! Choosing one account of a list needs the quota rules, so that is `fallback::here`'s job.
//!
//! In order:
//! 1. `CODEX_AS_ACCOUNT` in the environment: the process was started by `codex-as NAME -- ...`
//!    (a Claude Code session launched with `codex-as NAME -- claude`) or a shell switched with
//!    `codex-as use NAME`. Naming an account always wins over where you are.
//! 2. The nearer of the nearest `.codex-account` pin file (walking up from the folder) and the
//!    longest matching `[directories]` entry of the config, by folder depth. When both name the
//!    same folder, the config wins: it is your own file, the pin may be someone else's commit.
//! 3. `CODEX_HOME` from the environment, when it is one of the accounts' homes: what `codex`
//!    itself would use here (a home codex-as has no name for is an error, not a silent switch).
//! 4. The default account.

use std::fmt;
use std::path::{Path, PathBuf};

use super::config::{self, Config};
use super::env::ACCOUNT_MARKER;
use super::login_state::{self, LoginState};
use super::pin_file::{self, Pin, PinError};
use super::spec::AccountSpec;
use super::{Account, AccountError, Accounts, DEFAULT};
use crate::sys::fsutil;

/// Why a folder uses its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `CODEX_AS_ACCOUNT` was set in the environment.
    Session,
    /// A `.codex-account` file.
    PinFile { path: PathBuf, line: usize },
    /// A `[directories]` entry of the config file.
    Config { config: PathBuf, key: String },
    /// `CODEX_HOME` in the environment is this account's home.
    CodexHome { home: PathBuf },
    /// Nothing chose one.
    Default,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Session => write!(
                f,
                "{ACCOUNT_MARKER} is set in this environment (by `codex-as NAME -- ...`, `codex-as use NAME`, or codex-as's Claude Code hook)"
            ),
            Why::PinFile { path, line } => write!(f, "{} line {line}", path.display()),
            Why::Config { config, key } => {
                write!(f, "[directories] \"{key}\" in {}", config.display())
            }
            Why::CodexHome { home } => write!(
                f,
                "CODEX_HOME={} in this environment (no {} file above this folder, no [directories] entry)",
                home.display(),
                pin_file::FILE_NAME
            ),
            Why::Default => write!(
                f,
                "the default (no {} file above this folder, no [directories] entry in the config)",
                pin_file::FILE_NAME
            ),
        }
    }
}

impl Why {
    /// What to fix, once [`Why`]'s text has named it.
    fn what(&self) -> &'static str {
        match self {
            Why::PinFile { .. } => "that line",
            Why::Config { .. } => "that entry",
            Why::Session | Why::CodexHome { .. } | Why::Default => "it",
        }
    }

    /// The file a user edits to change the choice, if one made it.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Why::PinFile { path, .. } => Some(path),
            Why::Config { config, .. } => Some(config),
            Why::Session | Why::CodexHome { .. } | Why::Default => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAccount {
    pub spec: AccountSpec,
    pub why: Why,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(
        "{ACCOUNT_MARKER}={value:?} in the environment is not an account name ({reason}): unset it, or `codex-as use --unset`"
    )]
    BadSession { value: String, reason: String },
    #[error("[directories] \"{key}\" in {}: {reason}; fix the entry", .config.display())]
    BadEntry {
        config: PathBuf,
        key: String,
        reason: String,
    },
    // `why` names the file and line already: the fix points back at them.
    #[error("{why} names the account '{name}', which {problem}: fix {}{hint}", .why.what())]
    Unusable {
        name: String,
        why: Why,
        problem: String,
        hint: String,
    },
    #[error(
        "{why} names '{spec}', which is not one account: it is chosen among them where it runs"
    )]
    NotOne { spec: String, why: Why },
    /// An account no file chose (the session's, `CODEX_HOME`'s, the default) that cannot be
    /// used: said with where it came from, since there is no line to fix.
    #[error("{from}: {source}")]
    Unavailable {
        /// [`came_from`]'s words.
        from: String,
        source: AccountError,
    },
    #[error("CODEX_HOME={} in the environment is not the home of any codex-as account: add it (`codex-as add NAME --home {}`), pin this folder (`codex-as pin NAME`), or unset CODEX_HOME", .0.display(), .0.display())]
    UnknownCodexHome(PathBuf),
}

/// Where an account no file chose came from, to open [`DirectoryError::Unavailable`].
fn came_from(why: &Why, name: &str) -> String {
    match why {
        Why::Session => format!("{ACCOUNT_MARKER}={name} in the environment"),
        Why::CodexHome { home } => format!(
            "CODEX_HOME={} in the environment (the home of '{name}')",
            home.display()
        ),
        Why::Default => format!(
            "this folder uses the default account (no {} file above it, no [directories] entry)",
            pin_file::FILE_NAME
        ),
        Why::PinFile { .. } | Why::Config { .. } => format!("{why} names '{name}'"),
    }
}

/// The account `dir` uses, and why. Reads `CODEX_AS_ACCOUNT` from this process's environment.
pub fn for_directory(dir: &Path, accounts: &Accounts) -> Result<DirectoryAccount, DirectoryError> {
    let session = std::env::var(ACCOUNT_MARKER).ok().filter(|v| !v.is_empty());
    let codex_home = std::env::var_os(super::env::CODEX_HOME)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    resolve(dir, accounts, session.as_deref(), codex_home.as_deref())
}

/// [`for_directory`] with the environment's `CODEX_AS_ACCOUNT` and `CODEX_HOME` given.
pub fn resolve(
    dir: &Path,
    accounts: &Accounts,
    session: Option<&str>,
    codex_home: Option<&Path>,
) -> Result<DirectoryAccount, DirectoryError> {
    if let Some(value) = session {
        // A Claude Code session on a folder pinned to a list carries the list (see
        // `claude::hook`): `codex-as task` typed in that session runs as the list too.
        let bad = |reason: String| DirectoryError::BadSession {
            value: value.to_string(),
            reason,
        };
        let spec = AccountSpec::parse(value).map_err(|e| bad(e.0))?;
        for name in spec.names() {
            super::names::check(name).map_err(bad)?;
        }
        return Ok(DirectoryAccount {
            spec,
            why: Why::Session,
        });
    }
    let dir = fsutil::canonical(dir);
    let entry = config_entry(&dir, &accounts.config, &accounts.home_dir);
    let floor = entry.as_ref().map_or(0, |(depth, _, _)| *depth);
    if let Some(Pin { path, spec, line }) = pin_file::find_deeper_than(&dir, floor)? {
        return Ok(DirectoryAccount {
            spec,
            why: Why::PinFile { path, line },
        });
    }
    if let Some((_, key, value)) = entry {
        let spec = AccountSpec::parse(&value).map_err(|e| DirectoryError::BadEntry {
            config: accounts.config_path.clone(),
            key: key.clone(),
            reason: e.0,
        })?;
        return Ok(DirectoryAccount {
            spec,
            why: Why::Config {
                config: accounts.config_path.clone(),
                key,
            },
        });
    }
    if let Some(home) = codex_home {
        let account = accounts
            .all()
            .into_iter()
            .find(|a| super::same_home(&a.home, home))
            .ok_or_else(|| DirectoryError::UnknownCodexHome(home.to_path_buf()))?;
        return Ok(DirectoryAccount {
            spec: AccountSpec::One(account.name),
            why: Why::CodexHome {
                home: home.to_path_buf(),
            },
        });
    }
    Ok(DirectoryAccount {
        spec: AccountSpec::One(DEFAULT.into()),
        why: Why::Default,
    })
}

/// The `[directories]` entry with the longest folder that holds `dir`: (its depth, key, name).
fn config_entry(dir: &Path, config: &Config, home: &Path) -> Option<(usize, String, String)> {
    config
        .directories
        .iter()
        .filter_map(|(key, name)| {
            let folder = fsutil::canonical(&config::expand_tilde(key, home));
            dir.starts_with(&folder)
                .then(|| (folder.components().count(), key.clone(), name.clone()))
        })
        .max_by_key(|(depth, _, _)| *depth)
}

impl DirectoryAccount {
    /// The account, list or `auto` as the user wrote it (`work,personal`), for messages.
    pub fn label(&self) -> String {
        self.spec.to_string()
    }

    /// The account itself, ready to run as, when the folder names one. A pin or config entry
    /// naming an account that is unknown, has no home, or is logged out is an error naming the
    /// file to fix: running as any other account instead would be the silent switch codex-as
    /// exists to prevent. A list or `auto` is [`DirectoryAccount::route`]'s, then
    /// `fallback::here`'s.
    pub fn account(&self, accounts: &Accounts) -> Result<Account, DirectoryError> {
        match &self.spec {
            AccountSpec::One(name) => self.one(accounts, name),
            AccountSpec::List(_) | AccountSpec::Auto => Err(DirectoryError::NotOne {
                spec: self.label(),
                why: self.why.clone(),
            }),
        }
    }

    /// Every account the folder may run as, in the spec's order: one, a list's (each known and
    /// with a home, or an error naming the file, as for one), or for `auto` all of them. Whether
    /// each is logged in or has quota left is for the fallback rules to weigh, as for
    /// `codex-as work,personal ...`.
    pub fn route(&self, accounts: &Accounts) -> Result<Vec<Account>, DirectoryError> {
        match &self.spec {
            AccountSpec::One(name) => Ok(vec![self.one(accounts, name)?]),
            AccountSpec::List(names) => names
                .iter()
                .map(|name| self.member(accounts, name))
                .collect(),
            AccountSpec::Auto => Ok(accounts.all()),
        }
    }

    fn unusable(&self, name: &str, problem: String, hint: String) -> DirectoryError {
        DirectoryError::Unusable {
            name: name.to_string(),
            why: self.why.clone(),
            problem,
            hint,
        }
    }

    /// A name of the spec, known and with a home.
    fn member(&self, accounts: &Accounts, name: &str) -> Result<Account, DirectoryError> {
        match &self.why {
            Why::Session | Why::CodexHome { .. } | Why::Default => {
                accounts
                    .require(name)
                    .map_err(|source| DirectoryError::Unavailable {
                        from: came_from(&self.why, name),
                        source,
                    })
            }
            Why::PinFile { .. } | Why::Config { .. } => {
                let account = accounts.resolve(name).map_err(|e| match e {
                    AccountError::Unknown { suggestion, .. } => self.unusable(
                        name,
                        "codex-as does not know".into(),
                        match suggestion {
                            Some(s) => format!(" (did you mean '{s}'?)"),
                            None => format!(", or create the account with `codex-as login {name}`"),
                        },
                    ),
                    other => self.unusable(name, other.to_string(), String::new()),
                })?;
                if !account.exists() && name != DEFAULT {
                    return Err(self.unusable(
                        name,
                        format!("has no home at {}", account.home.display()),
                        format!(", or run `codex-as login {name}`"),
                    ));
                }
                Ok(account)
            }
        }
    }

    /// The one account named: a member that must also be logged in when a file chose it.
    fn one(&self, accounts: &Accounts, name: &str) -> Result<Account, DirectoryError> {
        let account = self.member(accounts, name)?;
        if matches!(self.why, Why::PinFile { .. } | Why::Config { .. })
            && account.exists()
            && login_state::read(&account.home) == LoginState::LoggedOut
        {
            return Err(self.unusable(
                name,
                "is not logged in".into(),
                format!(", or run `codex-as login {name}`"),
            ));
        }
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str) -> AccountSpec {
        AccountSpec::One(name.into())
    }

    struct World {
        _d: tempfile::TempDir,
        root: PathBuf,
        accounts: Accounts,
    }

    fn world(config: &str) -> World {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let home = root.join("home");
        for a in ["alice", "bob"] {
            let h = home.join(format!(".codex-{a}"));
            std::fs::create_dir_all(&h).unwrap();
            std::fs::write(h.join("auth.json"), r#"{"OPENAI_API_KEY":"sk-x"}"#).unwrap();
        }
        std::fs::create_dir_all(home.join(".codex-carol")).unwrap();
        std::fs::create_dir_all(root.join("src/acme/api/deep")).unwrap();
        let accounts = Accounts::new(
            Config::parse(config).unwrap(),
            root.join("config.toml"),
            home,
        );
        World {
            _d: d,
            root,
            accounts,
        }
    }

    #[test]
    fn nothing_chosen_is_the_default() {
        let w = world("");
        let a = resolve(&w.root.join("src"), &w.accounts, None, None).unwrap();
        assert_eq!((a.label().as_str(), a.why), ("default", Why::Default));
    }

    #[test]
    fn the_nearest_pin_wins_and_says_where_it_is() {
        let w = world("");
        pin_file::write(&w.root.join("src"), &one("alice")).unwrap();
        pin_file::write(&w.root.join("src/acme/api"), &one("bob")).unwrap();
        let a = resolve(&w.root.join("src/acme/api/deep"), &w.accounts, None, None).unwrap();
        assert_eq!(a.label(), "bob");
        assert_eq!(
            a.why.file(),
            Some(w.root.join("src/acme/api/.codex-account").as_path())
        );
        let a = resolve(&w.root.join("src/acme"), &w.accounts, None, None).unwrap();
        assert_eq!(a.label(), "alice");
    }

    #[test]
    fn the_nearer_of_pin_and_config_wins_config_on_a_tie() {
        let w = world("");
        let text = format!(
            "[directories]\n\"{0}/src/acme\" = \"bob\"\n\"{0}/src\" = \"carol\"\n",
            w.root.display()
        );
        let accounts = Accounts::new(
            Config::parse(&text).unwrap(),
            w.root.join("config.toml"),
            w.accounts.home_dir.clone(),
        );
        // The longest config prefix wins among config entries.
        let a = resolve(&w.root.join("src/acme/api"), &accounts, None, None).unwrap();
        assert_eq!(a.label(), "bob");
        assert!(matches!(&a.why, Why::Config { key, .. } if key.ends_with("/src/acme")));
        // A pin deeper than the entry wins.
        pin_file::write(&w.root.join("src/acme/api"), &one("alice")).unwrap();
        let a = resolve(&w.root.join("src/acme/api/deep"), &accounts, None, None).unwrap();
        assert_eq!(a.label(), "alice");
        // A pin in the same folder as an entry loses; one above it is not even read.
        pin_file::write(&w.root.join("src/acme"), &one("alice")).unwrap();
        std::fs::write(w.root.join("src/.codex-account"), "two\nnames\n").unwrap();
        let a = resolve(&w.root.join("src/acme"), &accounts, None, None).unwrap();
        assert_eq!(a.label(), "bob");
    }

    #[test]
    fn tilde_keys_and_symlinked_folders_compare_canonically() {
        let w = world("[directories]\n\"~/../src/acme\" = \"bob\"\n");
        let link = w.root.join("link");
        std::os::unix::fs::symlink(w.root.join("src/acme"), &link).unwrap();
        let a = resolve(&link.join("api"), &w.accounts, None, None).unwrap();
        assert_eq!(a.label(), "bob");
    }

    #[test]
    fn the_session_wins_over_everything() {
        let w = world("");
        pin_file::write(&w.root.join("src"), &one("alice")).unwrap();
        let a = resolve(&w.root.join("src"), &w.accounts, Some("bob"), None).unwrap();
        assert_eq!((a.label().as_str(), a.why), ("bob", Why::Session));
        assert!(resolve(&w.root, &w.accounts, Some("a b"), None).is_err());
    }

    #[test]
    fn codex_home_chooses_only_where_nothing_else_does() {
        let w = world("");
        let bob = w.accounts.home_dir.join(".codex-bob");
        let a = resolve(&w.root.join("src"), &w.accounts, None, Some(&bob)).unwrap();
        assert_eq!(a.label(), "bob");
        assert!(matches!(a.why, Why::CodexHome { .. }));
        pin_file::write(&w.root.join("src"), &one("alice")).unwrap();
        let a = resolve(&w.root.join("src"), &w.accounts, None, Some(&bob)).unwrap();
        assert_eq!(
            a.label(),
            "alice",
            "a pin wins over an inherited CODEX_HOME"
        );
        let e = resolve(&w.root, &w.accounts, None, Some(Path::new("/nowhere/x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the home of any codex-as account"), "{e}");
    }

    /// An account no file chose that cannot be used says where it came from: only the session's
    /// came from `CODEX_AS_ACCOUNT`.
    #[test]
    fn an_unusable_account_no_file_chose_says_where_it_came_from() {
        let w = world("");
        let e = resolve(&w.root, &w.accounts, Some("dave"), None)
            .unwrap()
            .account(&w.accounts)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("CODEX_AS_ACCOUNT=dave in the environment: unknown account 'dave'"),
            "{e}"
        );

        // The default home is a file.
        std::fs::write(w.accounts.home_dir.join(".codex"), "").unwrap();
        let e = resolve(&w.root, &w.accounts, None, None)
            .unwrap()
            .account(&w.accounts)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("this folder uses the default account (no .codex-account file above it, no [directories] entry): account 'default':"),
            "{e}"
        );
        assert!(!e.contains("environment"), "{e}");

        // CODEX_HOME is a configured account's home, which is a file.
        let file = w.root.join("eve-home");
        std::fs::write(&file, "").unwrap();
        let config = format!("[accounts.eve]\nhome = \"{}\"\n", file.display());
        let accounts = Accounts::new(
            Config::parse(&config).unwrap(),
            w.root.join("config.toml"),
            w.accounts.home_dir.clone(),
        );
        let chosen = resolve(&w.root, &accounts, None, Some(&file)).unwrap();
        assert!(matches!(chosen.why, Why::CodexHome { .. }), "{chosen:?}");
        let e = chosen.account(&accounts).unwrap_err().to_string();
        let want = format!(
            "CODEX_HOME={} in the environment (the home of 'eve'): account 'eve':",
            file.display()
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn unknown_or_logged_out_pins_name_the_file_to_fix() {
        let w = world("");
        let dir = w.root.join("src");
        pin_file::write(&dir, &one("alcie")).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        let e = d.account(&w.accounts).unwrap_err().to_string();
        let file = format!("{}/.codex-account", dir.display());
        assert_eq!(e.matches(&file).count(), 1, "the file named once: {e}");
        assert!(e.contains(&format!("{file} line ")), "{e}");
        assert!(e.contains("fix that line"), "{e}");
        assert!(e.contains("did you mean 'alice'"), "{e}");
        pin_file::write(&dir, &one("carol")).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        let e = d.account(&w.accounts).unwrap_err().to_string();
        assert!(e.contains("is not logged in"), "{e}");
        assert!(e.contains("codex-as login carol"), "{e}");
        pin_file::write(&dir, &one("bob")).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        assert_eq!(d.account(&w.accounts).unwrap().name, "bob");
    }

    #[test]
    fn a_list_or_auto_from_a_pin_an_entry_or_the_session() {
        let w = world("");
        let dir = w.root.join("src");
        let list = AccountSpec::parse("bob, alice").unwrap();
        pin_file::write(&dir, &list).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        assert_eq!(
            (d.spec.clone(), d.label()),
            (list.clone(), "bob,alice".into())
        );
        let route: Vec<String> = d
            .route(&w.accounts)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(route, ["bob", "alice"], "the list's order");
        // One account is chosen among them elsewhere (quota rules), never silently here.
        let e = d.account(&w.accounts).unwrap_err().to_string();
        assert!(
            e.contains("names 'bob,alice', which is not one account"),
            "{e}"
        );
        // A logged-out member is the fallback rules' to skip; an unknown one is the file's fault.
        pin_file::write(&dir, &AccountSpec::parse("carol,bob").unwrap()).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        assert_eq!(d.route(&w.accounts).unwrap().len(), 2);
        pin_file::write(&dir, &AccountSpec::parse("bob,alcie").unwrap()).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        let e = d.route(&w.accounts).unwrap_err().to_string();
        assert!(e.contains("names the account 'alcie'"), "{e}");
        assert!(e.contains("did you mean 'alice'"), "{e}");
        let file = format!("{}/.codex-account", dir.display());
        assert_eq!(e.matches(&file).count(), 1, "the file named once: {e}");
        assert!(e.contains(&format!("{file} line ")), "{e}");
        assert!(e.contains("fix that line"), "{e}");

        pin_file::write(&dir, &AccountSpec::Auto).unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        assert_eq!(d.spec, AccountSpec::Auto);
        assert_eq!(d.route(&w.accounts).unwrap().len(), w.accounts.all().len());

        let text = format!(
            "[directories]\n\"{0}/src/acme\" = \"alice, bob\"\n\"{0}/src/acme/api\" = \"alice,,bob\"\n",
            w.root.display()
        );
        let accounts = Accounts::new(
            Config::parse(&text).unwrap(),
            w.root.join("config.toml"),
            w.accounts.home_dir.clone(),
        );
        let d = resolve(&w.root.join("src/acme"), &accounts, None, None).unwrap();
        assert_eq!(d.label(), "alice,bob");
        assert!(matches!(d.why, Why::Config { .. }));
        let e = resolve(&w.root.join("src/acme/api"), &accounts, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/src/acme/api\" in"), "{e}");
        assert!(e.contains("empty name"), "{e}");

        // A session started on a list carries it.
        let d = resolve(&dir, &w.accounts, Some("alice,bob"), None).unwrap();
        assert_eq!((d.label(), d.why), ("alice,bob".into(), Why::Session));
        assert!(resolve(&dir, &w.accounts, Some("alice,a b"), None).is_err());
        assert!(resolve(&dir, &w.accounts, Some("alice,,bob"), None).is_err());
    }
}
