//! Named accounts and their Codex homes: resolving a name, listing them all, comparing homes.
//!
//! - `names`: which names are allowed. `spec`: `NAME`, `a,b,c` or `auto` on the command line.
//! - `config`: the config file. `env`: the environment a program gets as an account.
//! - `login_state`: how a home is logged in. `identity`: who a home is, for brokers.
//! - `directory`: which account a folder uses, and why. `pin_file`: the `.codex-account` file.

pub mod config;
pub mod config_check;
pub mod directory;
pub mod env;
pub mod home_safety;
pub mod identity;
pub mod login_state;
pub mod names;
pub mod new_home;
pub mod pin_file;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::sys::fsutil::canonical;
use config::Config;
pub use home_safety::home_is_unsafe;

/// The account that `codex` uses when CODEX_HOME is unset.
pub const DEFAULT: &str = "default";
/// Prefix of the conventional per-account home folders (`~/.codex-NAME`).
pub const CONVENTION_PREFIX: &str = ".codex-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    /// `~/.codex`, or the home the config gives `default`.
    Default,
    /// Named in the config file.
    Config,
    /// Found as `~/.codex-NAME`.
    Convention,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// The home as configured (tilde expanded), before canonicalisation.
    pub home: PathBuf,
    /// Where codex-as found the account (`list` shows it as its source).
    pub found_by: FoundBy,
    /// Inherited variables the config lets this account keep.
    pub pass_env: Vec<String>,
}

/// Something that is not a folder (a file, a link to one) where a home belongs: Codex cannot
/// use it, nor codex-as create the home there.
pub fn is_a_file(home: &Path) -> bool {
    std::fs::symlink_metadata(home).is_ok() && !home.is_dir()
}

impl Account {
    pub fn exists(&self) -> bool {
        self.home.is_dir()
    }

    /// The real path of the home (symlinks resolved), or the configured path when it is missing.
    pub fn canonical_home(&self) -> PathBuf {
        canonical(&self.home)
    }

    pub fn is_default_home(&self, accounts: &Accounts) -> bool {
        same_home(&self.home, &accounts.default_home)
    }
}

/// Two homes are the same account when they resolve to the same folder.
pub fn same_home(a: &Path, b: &Path) -> bool {
    canonical(a) == canonical(b)
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account name '{name}' {reason}")]
    InvalidName { name: String, reason: String },
    #[error("unknown account '{name}'{}: see `codex-as list`, or create it with `codex-as login {name}`", did_you_mean(.suggestion))]
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    #[error("account '{name}' has no home at {}: run `codex-as login {name}` to create it and log in", .home.display())]
    MissingHome { name: String, home: PathBuf },
    #[error("account '{name}': {} is a file, not a folder: an account's home is the folder Codex keeps its login in (move the file away, or `codex-as add {name} --home DIR` with a folder)", .home.display())]
    HomeIsAFile { name: String, home: PathBuf },
    #[error("account '{name}' is already configured with home {}: `codex-as remove {name}` first to change it", .home.display())]
    AlreadyConfigured { name: String, home: PathBuf },
    #[error("account '{name}' has home {}, which codex-as refuses: {reason}; move the home to a path without it (and `codex-as remove {name}`, then `codex-as add {name} --home NEWPATH`)", .home.display())]
    UnsafeHome {
        name: String,
        home: PathBuf,
        reason: &'static str,
    },
    #[error("account '{name}' is not in the config{}", not_configured_hint(.convention_home))]
    NotConfigured {
        name: String,
        convention_home: Option<PathBuf>,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

fn not_configured_hint(home: &Option<PathBuf>) -> String {
    match home {
        Some(h) => format!(
            ": it is found by convention at {}; codex-as never deletes a home, so rename or remove that folder yourself to forget it",
            h.display()
        ),
        None => ": see `codex-as list`".into(),
    }
}

/// Refuses a name no account may have (see [`names::check`]).
pub fn check_name(name: &str) -> Result<(), AccountError> {
    names::check(name).map_err(|reason| AccountError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

/// Every account codex-as knows: the default, the configured ones, and `~/.codex-NAME` folders.
pub struct Accounts {
    pub home_dir: PathBuf,
    pub default_home: PathBuf,
    pub config: Config,
    pub config_path: PathBuf,
}

impl Accounts {
    pub fn load() -> anyhow::Result<Self> {
        let home_dir = config::home_dir()?;
        let known = |name: &str| {
            name == DEFAULT
                || (names::check(name).is_ok()
                    && home_dir.join(format!("{CONVENTION_PREFIX}{name}")).is_dir())
        };
        let (config, config_path) = Config::load(&known)?;
        Ok(Self::new(config, config_path, home_dir))
    }

    pub fn new(config: Config, config_path: PathBuf, home_dir: PathBuf) -> Self {
        let default_home = config
            .accounts
            .get(DEFAULT)
            .and_then(|a| a.home.as_deref())
            .map(|h| config::expand_tilde(h, &home_dir))
            .unwrap_or_else(|| home_dir.join(".codex"));
        Self {
            home_dir,
            default_home,
            config,
            config_path,
        }
    }

    pub fn convention_home(&self, name: &str) -> PathBuf {
        self.home_dir.join(format!("{CONVENTION_PREFIX}{name}"))
    }

    fn configured(&self, name: &str) -> Option<Account> {
        let c = self.config.accounts.get(name)?;
        let home = match c.home.as_deref() {
            Some(h) => config::expand_tilde(h, &self.home_dir),
            None if name == DEFAULT => self.default_home.clone(),
            None => self.convention_home(name),
        };
        Some(Account {
            name: name.to_string(),
            home,
            found_by: if name == DEFAULT {
                FoundBy::Default
            } else {
                FoundBy::Config
            },
            pass_env: c.pass_env.clone(),
        })
    }

    /// Resolves a name the user typed. The home need not exist (see [`Accounts::require`]).
    pub fn resolve(&self, name: &str) -> Result<Account, AccountError> {
        let a = self.resolve_any(name)?;
        refuse_unsafe(a)
    }

    /// [`Accounts::resolve`] without the home safety check: for commands that only name or
    /// forget an account (`remove`), never for running Codex.
    pub fn resolve_any(&self, name: &str) -> Result<Account, AccountError> {
        check_name(name)?;
        if let Some(a) = self.configured(name) {
            return Ok(a);
        }
        if name == DEFAULT {
            return Ok(Account {
                name: DEFAULT.into(),
                home: self.default_home.clone(),
                found_by: FoundBy::Default,
                pass_env: Vec::new(),
            });
        }
        let home = self.convention_home(name);
        if home.is_dir() {
            return Ok(Account {
                name: name.to_string(),
                home,
                found_by: FoundBy::Convention,
                pass_env: Vec::new(),
            });
        }
        if names::check(name).is_ok() && is_a_file(&home) {
            return Err(AccountError::HomeIsAFile {
                name: name.to_string(),
                home,
            });
        }
        let all = self.all();
        let suggestion =
            names::suggest(name, all.iter().map(|a| a.name.as_str())).map(String::from);
        Err(AccountError::Unknown {
            name: name.to_string(),
            suggestion,
        })
    }

    /// Resolves a name whose home must exist, as Codex refuses a CODEX_HOME that does not.
    /// The default account is exempt: `codex` creates `~/.codex` itself.
    pub fn require(&self, name: &str) -> Result<Account, AccountError> {
        let a = self.resolve(name)?;
        if is_a_file(&a.home) {
            return Err(AccountError::HomeIsAFile {
                name: a.name,
                home: a.home,
            });
        }
        if !a.exists() && name != DEFAULT {
            return Err(AccountError::MissingHome {
                name: a.name,
                home: a.home,
            });
        }
        Ok(a)
    }

    /// The homes, canonical and each once, of every account whose home exists but the one at
    /// `own`: where else a thread of `own`'s may be.
    pub fn other_homes(&self, own: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for a in self.all() {
            let h = a.canonical_home();
            if a.exists() && !same_home(&h, own) && !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    /// The name of the account whose existing home is `home`, when there is one (the first, when
    /// several share it).
    pub fn name_of_home(&self, home: &Path) -> Option<String> {
        self.all()
            .into_iter()
            .find(|a| a.exists() && same_home(&a.home, home))
            .map(|a| a.name)
    }

    /// All accounts Codex may run as: those in the config's `order` (default first unless
    /// `order` places it), then the rest by name. Accounts whose home is unsafe (see [`home_is_unsafe`]) are left out.
    pub fn all(&self) -> Vec<Account> {
        self.all_with_unsafe()
            .into_iter()
            .filter(|a| home_is_unsafe(&a.home).is_none())
            .collect()
    }

    /// Every account, unsafe homes included: for listing and warning about them.
    pub fn all_with_unsafe(&self) -> Vec<Account> {
        let mut by_name: BTreeMap<String, Account> = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&self.home_dir) {
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let Some(name) = file_name
                    .to_str()
                    .and_then(|n| n.strip_prefix(CONVENTION_PREFIX))
                else {
                    continue;
                };
                if names::check(name).is_ok() && entry.path().is_dir() {
                    by_name.insert(
                        name.to_string(),
                        Account {
                            name: name.to_string(),
                            home: entry.path(),
                            found_by: FoundBy::Convention,
                            pass_env: Vec::new(),
                        },
                    );
                }
            }
        }
        for name in self.config.accounts.keys() {
            if let Some(a) = self
                .configured(name)
                .filter(|_| name != DEFAULT && names::check(name).is_ok())
            {
                by_name.insert(name.clone(), a);
            }
        }
        let mut out = Vec::with_capacity(by_name.len() + 1);
        let mut default = Some(self.configured(DEFAULT).unwrap_or(Account {
            name: DEFAULT.into(),
            home: self.default_home.clone(),
            found_by: FoundBy::Default,
            pass_env: Vec::new(),
        }));
        // The config's `order` first, default where it names it (`auto` tries them in this
        // order at equal headroom), then the rest by name; default leads when `order` omits it.
        if !self.config.order.iter().any(|n| n == DEFAULT) {
            out.extend(default.take());
        }
        for name in &self.config.order {
            if name == DEFAULT {
                out.extend(default.take());
            } else if let Some(a) = by_name.remove(name) {
                out.push(a);
            }
        }
        out.extend(by_name.into_values());
        out
    }
}

fn refuse_unsafe(a: Account) -> Result<Account, AccountError> {
    match home_is_unsafe(&a.home) {
        Some(reason) => Err(AccountError::UnsafeHome {
            name: a.name,
            home: a.home,
            reason,
        }),
        None => Ok(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(config: &str) -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        std::fs::create_dir_all(home.join(".codex-bob")).unwrap();
        std::fs::create_dir_all(home.join(".codex-bad name")).unwrap();
        let accounts = Accounts::new(
            Config::parse(config).unwrap(),
            dir.path().join("c.toml"),
            home,
        );
        (dir, accounts)
    }

    #[test]
    fn resolves_config_convention_and_default() {
        let (_d, a) = setup("order = [\"bob\"]\n[accounts.alice]\nhome = \"~/homes/a\"\n");
        assert_eq!(a.resolve("alice").unwrap().home, a.home_dir.join("homes/a"));
        assert_eq!(a.resolve("alice").unwrap().found_by, FoundBy::Config);
        assert_eq!(a.resolve("bob").unwrap().found_by, FoundBy::Convention);
        assert_eq!(
            a.resolve("default").unwrap().home,
            a.home_dir.join(".codex")
        );
        let names: Vec<_> = a.all().into_iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            ["default", "bob", "alice"],
            "order first, then by name"
        );
    }

    #[test]
    fn other_homes_name_each_existing_home_once_and_never_the_own() {
        // 'bobby' is bob's home under another name; 'gone' has no home.
        let (_d, a) = setup(
            "[accounts.bobby]\nhome = \"~/.codex-bob\"\n[accounts.gone]\nhome = \"~/nowhere\"\n",
        );
        let default = a.resolve("default").unwrap().canonical_home();
        let bob = a.resolve("bob").unwrap().canonical_home();
        assert_eq!(a.other_homes(&default), std::slice::from_ref(&bob));
        assert_eq!(a.other_homes(&bob), [default]);
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let (_d, a) = setup("");
        let e = a.resolve("bbo").unwrap_err().to_string();
        assert!(e.contains("did you mean 'bob'"), "{e}");
        assert!(matches!(
            a.resolve("a b"),
            Err(AccountError::InvalidName { .. })
        ));
    }

    #[test]
    fn missing_home_is_an_error_except_for_default() {
        let (_d, a) = setup("[accounts.carol]\n[accounts.default]\nhome = \"~/nowhere\"\n");
        assert!(matches!(
            a.require("carol"),
            Err(AccountError::MissingHome { .. })
        ));
        assert!(a.require("default").is_ok());
    }

    #[test]
    fn homes_codex_would_run_are_refused_and_left_out() {
        let (_d, a) = setup(
            "[accounts.evil]\nhome = \"/x/a$(touch p)b\"\n[accounts.tick]\nhome = \"/x/`id`\"\n",
        );
        for name in ["evil", "tick"] {
            let e = a.resolve(name).unwrap_err();
            assert!(matches!(e, AccountError::UnsafeHome { .. }), "{e}");
            assert!(e.to_string().contains("runs as a command"), "{e}");
            assert!(a.resolve_any(name).is_ok());
        }
        let all: Vec<_> = a.all().into_iter().map(|a| a.name).collect();
        assert!(!all.iter().any(|n| n == "evil" || n == "tick"), "{all:?}");
        assert_eq!(a.all_with_unsafe().len(), all.len() + 2);
    }

    #[test]
    fn symlinked_homes_are_the_same_account() {
        let (_d, a) = setup("");
        let link = a.home_dir.join("link");
        std::os::unix::fs::symlink(a.home_dir.join(".codex"), &link).unwrap();
        assert!(same_home(&link, &a.default_home));
        assert!(!same_home(&a.home_dir.join(".codex-bob"), &a.default_home));
    }
}
