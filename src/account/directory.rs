//! Which account a folder uses, and why: the one rule every codex-as command that names no
//! account follows (`codex-as task`, `codex-as -- CMD`, `which`, the Claude Code hook, the
//! status line).
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
    pub name: String,
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
    #[error("{why} names the account '{name}', which {problem}: fix {file}{hint}", file = .why.file().map(|p| p.display().to_string()).unwrap_or_default())]
    Unusable {
        name: String,
        why: Why,
        problem: String,
        hint: String,
    },
    #[error("{ACCOUNT_MARKER}={name} in the environment: {source}")]
    SessionAccount { name: String, source: AccountError },
    #[error("CODEX_HOME={} in the environment is not the home of any codex-as account: add it (`codex-as add NAME --home {}`), pin this folder (`codex-as pin NAME`), or unset CODEX_HOME", .0.display(), .0.display())]
    UnknownCodexHome(PathBuf),
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
    if let Some(name) = session {
        super::names::check(name).map_err(|reason| DirectoryError::BadSession {
            value: name.to_string(),
            reason,
        })?;
        return Ok(DirectoryAccount {
            name: name.to_string(),
            why: Why::Session,
        });
    }
    let dir = fsutil::canonical(dir);
    let entry = config_entry(&dir, &accounts.config, &accounts.home_dir);
    let floor = entry.as_ref().map_or(0, |(depth, _, _)| *depth);
    if let Some(Pin { path, name, line }) = pin_file::find_deeper_than(&dir, floor)? {
        return Ok(DirectoryAccount {
            name,
            why: Why::PinFile { path, line },
        });
    }
    if let Some((_, key, name)) = entry {
        return Ok(DirectoryAccount {
            name,
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
            name: account.name,
            why: Why::CodexHome {
                home: home.to_path_buf(),
            },
        });
    }
    Ok(DirectoryAccount {
        name: DEFAULT.into(),
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
    /// The account itself, ready to run as. A pin or config entry naming an account that is
    /// unknown, has no home, or is logged out is an error naming the file to fix: running as
    /// any other account instead would be the silent switch codex-as exists to prevent.
    pub fn account(&self, accounts: &Accounts) -> Result<Account, DirectoryError> {
        match &self.why {
            Why::Session | Why::CodexHome { .. } => {
                accounts
                    .require(&self.name)
                    .map_err(|source| DirectoryError::SessionAccount {
                        name: self.name.clone(),
                        source,
                    })
            }
            Why::Default => {
                accounts
                    .require(DEFAULT)
                    .map_err(|source| DirectoryError::SessionAccount {
                        name: DEFAULT.into(),
                        source,
                    })
            }
            Why::PinFile { .. } | Why::Config { .. } => {
                let unusable = |problem: String, hint: String| DirectoryError::Unusable {
                    name: self.name.clone(),
                    why: self.why.clone(),
                    problem,
                    hint,
                };
                let account = accounts.resolve(&self.name).map_err(|e| match e {
                    AccountError::Unknown { suggestion, .. } => unusable(
                        "codex-as does not know".into(),
                        match suggestion {
                            Some(s) => format!(" (did you mean '{s}'?)"),
                            None => format!(
                                ", or create the account with `codex-as login {}`",
                                self.name
                            ),
                        },
                    ),
                    other => unusable(other.to_string(), String::new()),
                })?;
                if !account.exists() && self.name != DEFAULT {
                    return Err(unusable(
                        format!("has no home at {}", account.home.display()),
                        format!(", or run `codex-as login {}`", self.name),
                    ));
                }
                if account.exists() && login_state::read(&account.home) == LoginState::LoggedOut {
                    return Err(unusable(
                        "is not logged in".into(),
                        format!(", or run `codex-as login {}`", self.name),
                    ));
                }
                Ok(account)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!((a.name.as_str(), a.why), ("default", Why::Default));
    }

    #[test]
    fn the_nearest_pin_wins_and_says_where_it_is() {
        let w = world("");
        pin_file::write(&w.root.join("src"), "alice").unwrap();
        pin_file::write(&w.root.join("src/acme/api"), "bob").unwrap();
        let a = resolve(&w.root.join("src/acme/api/deep"), &w.accounts, None, None).unwrap();
        assert_eq!(a.name, "bob");
        assert_eq!(
            a.why.file(),
            Some(w.root.join("src/acme/api/.codex-account").as_path())
        );
        let a = resolve(&w.root.join("src/acme"), &w.accounts, None, None).unwrap();
        assert_eq!(a.name, "alice");
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
        assert_eq!(a.name, "bob");
        assert!(matches!(&a.why, Why::Config { key, .. } if key.ends_with("/src/acme")));
        // A pin deeper than the entry wins.
        pin_file::write(&w.root.join("src/acme/api"), "alice").unwrap();
        let a = resolve(&w.root.join("src/acme/api/deep"), &accounts, None, None).unwrap();
        assert_eq!(a.name, "alice");
        // A pin in the same folder as an entry loses; one above it is not even read.
        pin_file::write(&w.root.join("src/acme"), "alice").unwrap();
        std::fs::write(w.root.join("src/.codex-account"), "two\nnames\n").unwrap();
        let a = resolve(&w.root.join("src/acme"), &accounts, None, None).unwrap();
        assert_eq!(a.name, "bob");
    }

    #[test]
    fn tilde_keys_and_symlinked_folders_compare_canonically() {
        let w = world("[directories]\n\"~/../src/acme\" = \"bob\"\n");
        let link = w.root.join("link");
        std::os::unix::fs::symlink(w.root.join("src/acme"), &link).unwrap();
        let a = resolve(&link.join("api"), &w.accounts, None, None).unwrap();
        assert_eq!(a.name, "bob");
    }

    #[test]
    fn the_session_wins_over_everything() {
        let w = world("");
        pin_file::write(&w.root.join("src"), "alice").unwrap();
        let a = resolve(&w.root.join("src"), &w.accounts, Some("bob"), None).unwrap();
        assert_eq!((a.name.as_str(), a.why), ("bob", Why::Session));
        assert!(resolve(&w.root, &w.accounts, Some("a b"), None).is_err());
    }

    #[test]
    fn codex_home_chooses_only_where_nothing_else_does() {
        let w = world("");
        let bob = w.accounts.home_dir.join(".codex-bob");
        let a = resolve(&w.root.join("src"), &w.accounts, None, Some(&bob)).unwrap();
        assert_eq!(a.name, "bob");
        assert!(matches!(a.why, Why::CodexHome { .. }));
        pin_file::write(&w.root.join("src"), "alice").unwrap();
        let a = resolve(&w.root.join("src"), &w.accounts, None, Some(&bob)).unwrap();
        assert_eq!(a.name, "alice", "a pin wins over an inherited CODEX_HOME");
        let e = resolve(&w.root, &w.accounts, None, Some(Path::new("/nowhere/x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the home of any codex-as account"), "{e}");
    }

    #[test]
    fn unknown_or_logged_out_pins_name_the_file_to_fix() {
        let w = world("");
        let dir = w.root.join("src");
        pin_file::write(&dir, "alcie").unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        let e = d.account(&w.accounts).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}/.codex-account", dir.display())),
            "{e}"
        );
        assert!(e.contains("did you mean 'alice'"), "{e}");
        pin_file::write(&dir, "carol").unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        let e = d.account(&w.accounts).unwrap_err().to_string();
        assert!(e.contains("is not logged in"), "{e}");
        assert!(e.contains("codex-as login carol"), "{e}");
        pin_file::write(&dir, "bob").unwrap();
        let d = resolve(&dir, &w.accounts, None, None).unwrap();
        assert_eq!(d.account(&w.accounts).unwrap().name, "bob");
    }
}
