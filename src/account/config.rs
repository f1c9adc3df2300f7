//! The user's config file: which accounts exist, where their homes are, and defaults.
//!
//! Read with serde so that a typo is an error that names the key; edited with `toml_edit` so that
//! `codex-as add`/`remove` keep the user's comments and layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::account::config_check::{self, Severity};
use crate::sys::fsutil;

/// Environment variable naming the config file, for tests and unusual setups.
pub const CONFIG_ENV: &str = "CODEX_AS_CONFIG";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default order of accounts for `auto` and lists.
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    #[serde(default)]
    pub plugin: PluginConfig,
    #[serde(default)]
    pub broker: BrokerConfig,
    #[serde(default)]
    pub quota: QuotaConfig,
    /// Problems that do not stop work (an `order` naming nobody, an unusable account name), as
    /// `line L, column C: key: what`: `list` shows them, `doctor` reports them.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Folders and the account each uses (`"~/work/acme" = "work"`), for projects that cannot
    /// carry a `.codex-account` file; see `account::directory`.
    #[serde(default)]
    pub directories: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The account's CODEX_HOME; `~/` is expanded. Default: `~/.codex-NAME`.
    pub home: Option<String>,
    /// Inherited variables this account may keep (by default codex-as drops the ones that would
    /// make Codex act as another identity).
    #[serde(default)]
    pub pass_env: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Root of the Codex plugin for Claude Code (the folder holding `scripts/codex-companion.mjs`).
    pub root: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// How long an unused codex-as broker stays warm, e.g. "30m", "2h", "90s".
    pub idle_exit: Option<String>,
    /// What a broker serves its clients through when the home has no Codex listener up:
    /// `"listener"` (the default: start one at the home's standard path, shared with a later
    /// `codex` TUI) or `"child"` (an app-server of the broker's own, as before Codex 0.169).
    pub app_server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// `auto` skips an account whose 5-hour or weekly window is at or above this percent.
    pub threshold: Option<f64>,
    /// How old the best reading may be before `auto` (or a list's first pick) asks the
    /// account's app-server, e.g. "5m", "90s"; "0" asks every time.
    pub max_age: Option<String>,
}

impl QuotaConfig {
    pub const DEFAULT_THRESHOLD: f64 = 95.0;
    pub const DEFAULT_MAX_AGE: &str = "5m";

    /// `max_age`, validated: a bad value is an error naming the key, never a silent default.
    pub fn max_age(&self) -> Result<std::time::Duration, String> {
        let raw = self.max_age.as_deref().unwrap_or(Self::DEFAULT_MAX_AGE);
        crate::sys::duration::parse(raw).map_err(|e| format!("quota.max_age in the config: {e}"))
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
            .filter(|t| t.is_finite())
            .map(|t| t.clamp(0.0, 100.0))
            .unwrap_or(Self::DEFAULT_THRESHOLD)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {message} (fix or move the file)")]
    Parse { path: PathBuf, message: String },
    #[error("{}", invalid_message(.path, .problems))]
    Invalid {
        path: PathBuf,
        /// One line per problem: `line L, column C: key: what is wrong`.
        problems: Vec<String>,
    },
    #[error("cannot write config {}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find your home folder: set HOME")]
    NoHome,
}

/// One problem on one line; several listed under one line naming the file.
fn invalid_message(path: &Path, problems: &[String]) -> String {
    match problems {
        [one] => format!(
            "config {}: {one} (fix it, or move the file away)",
            path.display()
        ),
        _ => format!(
            "config {} needs fixing (or move the file away):\n  {}",
            path.display(),
            problems.join("\n  ")
        ),
    }
}

/// Where the config file lives: `$CODEX_AS_CONFIG`, else the platform's config folder
/// (`$XDG_CONFIG_HOME/codex-as/config.toml` or `~/.config/codex-as/config.toml` on Linux).
pub fn path() -> Result<PathBuf, ConfigError> {
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = directories::BaseDirs::new().ok_or(ConfigError::NoHome)?;
    Ok(base.config_dir().join("codex-as").join("config.toml"))
}

/// `$CODEX_AS_CONFIG` when it names nothing: a typo, or a file not made yet. Commands still
/// work (with no configured account, as before any `add`), but not silently: see
/// [`warn_once_if_missing`].
pub fn explicit_but_missing() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty())?);
    (!p.exists() && std::fs::symlink_metadata(&p).is_err()).then_some(p)
}

/// Set once the missing explicit config was mentioned, or must not be (`add` creates it,
/// completion asks on every TAB).
static MISSING_SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keeps this process from warning about a missing `$CODEX_AS_CONFIG`.
pub fn expect_missing() {
    MISSING_SAID.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// One line on stderr, once per process, when `$CODEX_AS_CONFIG` names a file that does not
/// exist: every account it would configure is unknown meanwhile.
fn warn_once_if_missing() {
    if let Some(p) = explicit_but_missing()
        && !MISSING_SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!("{}", missing_message(&p));
    }
}

fn missing_message(path: &Path) -> String {
    format!(
        "codex-as: warning: {CONFIG_ENV} names {}, which does not exist: no account is configured (unset {CONFIG_ENV} for the usual config, or `codex-as add NAME` creates it)",
        path.display()
    )
}

/// The user's home folder (`$HOME` first, as every shell tool does).
pub fn home_dir() -> Result<PathBuf, ConfigError> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or(ConfigError::NoHome)
}

/// Expands a leading `~/` (or a lone `~`) against the home folder.
pub fn expand_tilde(raw: &str, home: &Path) -> PathBuf {
    if raw == "~" {
        home.to_path_buf()
    } else if let Some(rest) = raw.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(raw)
    }
}

impl Config {
    /// Loads the config; a missing file is an empty config. Every problem is checked at once:
    /// errors stop the command (all of them listed), warnings are kept in `warnings` (printing
    /// them on every command, completion included, would drown what the user asked for).
    /// `known_account` says whether a name the file does not configure is an account anyway.
    pub fn load(known_account: &dyn Fn(&str) -> bool) -> Result<(Config, PathBuf), ConfigError> {
        let path = path()?;
        let Some(text) = read_text(&path)? else {
            warn_once_if_missing();
            return Ok((Config::default(), path));
        };
        let (errors, warnings): (Vec<_>, Vec<_>) = config_check::check(&text, known_account)
            .into_iter()
            .partition(|f| f.severity == Severity::Error);
        if !errors.is_empty() {
            return Err(ConfigError::Invalid {
                path,
                problems: errors.iter().map(|f| f.to_string()).collect(),
            });
        }
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        config.warnings = warnings.iter().map(|w| w.to_string()).collect();
        Ok((config, path))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }
}

/// The config file's text, or None when there is no file.
pub fn read_text(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An edit of the config file that keeps everything the user wrote around it.
pub struct ConfigEdit {
    path: PathBuf,
    doc: toml_edit::DocumentMut,
}

impl ConfigEdit {
    pub fn open(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        // Refuse to edit a file we could not read as a config: rewriting it would lose what the
        // user meant.
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let doc = text
            .parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn set_account_home(&mut self, name: &str, home: &str) {
        let accounts = self.doc.entry("accounts").or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        });
        if let Some(accounts) = accounts.as_table_like_mut() {
            let entry = accounts
                .entry(name)
                .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
            if let Some(t) = entry.as_table_like_mut() {
                t.insert("home", toml_edit::value(home));
            }
        }
    }

    /// Removes the account's table and its place in `order`; false if it was not configured.
    pub fn remove_account(&mut self, name: &str) -> bool {
        let removed = self
            .doc
            .get_mut("accounts")
            .and_then(|a| a.as_table_like_mut())
            .and_then(|a| a.remove(name))
            .is_some();
        if let Some(order) = self.doc.get_mut("order").and_then(|o| o.as_array_mut()) {
            remove_keeping_comments(order, name);
        }
        removed
    }

    pub fn save(&self) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: self.path.clone(),
            source,
        };
        // A config kept as a link into a dotfiles repo (stow, chezmoi, home-manager) stays a
        // link: the new text replaces the file the link chain ends at, atomically there.
        let target = fsutil::link_target(&self.path).map_err(write_err)?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir).map_err(write_err)?;
        }
        fsutil::write_private_atomic(&target, self.doc.to_string().as_bytes()).map_err(write_err)
    }
}

/// Removes `name` from a TOML array. A comment written after an element is stored in front of
/// the next one, so the removed element's leading text (the previous element's comment) moves
/// to whatever follows it, and nobody's comment changes lines.
fn remove_keeping_comments(array: &mut toml_edit::Array, name: &str) {
    loop {
        let found = array.iter().position(|v| v.as_str() == Some(name));
        let Some(i) = found else {
            break;
        };
        let lead = array
            .get(i)
            .and_then(|v| v.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        array.remove(i);
        if !lead.contains('#') {
            continue;
        }
        if let Some(next) = array.get_mut(i) {
            next.decor_mut().set_prefix(lead);
        } else {
            let trailing = array.trailing().as_str().unwrap_or("").to_string();
            array.set_trailing(format!("{lead}{trailing}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(
            r#"
order = ["alice", "bob"]
[accounts.alice]
home = "~/x"
pass_env = ["OPENAI_API_KEY"]
[plugin]
root = "/p"
[broker]
idle_exit = "30m"
[quota]
threshold = 90
"#,
        )
        .unwrap();
        assert_eq!(c.order, ["alice", "bob"]);
        assert_eq!(c.accounts["alice"].home.as_deref(), Some("~/x"));
        assert_eq!(c.accounts["alice"].pass_env, ["OPENAI_API_KEY"]);
        assert_eq!(c.broker.idle_exit.as_deref(), Some("30m"));
        assert_eq!(c.plugin.root.as_deref(), Some("/p"));
        assert_eq!(c.quota.threshold(), 90.0);
        assert_eq!(Config::default().quota.threshold(), 95.0);
        assert_eq!(
            Config::default().quota.max_age(),
            Ok(std::time::Duration::from_secs(300))
        );
        let bad = QuotaConfig {
            max_age: Some("soon".into()),
            ..QuotaConfig::default()
        };
        assert!(bad.max_age().unwrap_err().contains("quota.max_age"));
    }

    #[test]
    fn a_typo_names_the_key() {
        let err = Config::parse("[accounts.a]\nhoem = \"/x\"\n").unwrap_err();
        assert!(err.contains("hoem"), "{err}");
    }

    #[test]
    fn edits_keep_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "# mine\norder = [\"a\", \"b\"]\n\n[accounts.a]\nhome = \"/a\" # note\n",
        )
        .unwrap();
        let mut e = ConfigEdit::open(&p).unwrap();
        e.set_account_home("b", "/b");
        e.save().unwrap();
        let mut e = ConfigEdit::open(&p).unwrap();
        assert!(e.remove_account("a"));
        assert!(!e.remove_account("zzz"));
        e.save().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("# mine"), "{text}");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.order, ["b"]);
        assert_eq!(c.accounts["b"].home.as_deref(), Some("/b"));
        assert!(!c.accounts.contains_key("a"));
    }

    #[test]
    fn removing_from_a_multiline_order_keeps_each_comment_on_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let text = "order = [\n  \"alice\",  # first\n  \"work\",   # the work one\n  \"bob\",    # last\n]\n[accounts.work]\nhome = \"/x\"\n";
        std::fs::write(&p, text).unwrap();
        let mut e = ConfigEdit::open(&p).unwrap();
        assert!(e.remove_account("work"));
        e.save().unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert!(after.contains("\"alice\",  # first\n"), "{after}");
        assert!(after.contains("\"bob\",    # last"), "{after}");
        assert!(!after.contains("work"), "{after}");
        assert_eq!(Config::parse(&after).unwrap().order, ["alice", "bob"]);
        let mut e = ConfigEdit::open(&p).unwrap();
        e.remove_account("bob");
        e.save().unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert!(after.contains("\"alice\",  # first\n"), "{after}");
        assert_eq!(Config::parse(&after).unwrap().order, ["alice"]);
    }

    #[test]
    fn a_linked_config_stays_a_link_through_a_chain() {
        let dir = tempfile::tempdir().unwrap();
        let dots = dir.path().join("dotfiles/codex-as");
        std::fs::create_dir_all(&dots).unwrap();
        let real = dots.join("config.toml");
        std::fs::write(
            &real,
            "[broker]\nidle_exit = \"1h\" # kept\n[accounts.a]\nhome = \"/a\"\n",
        )
        .unwrap();
        // config.toml -> mid.toml -> ../dotfiles/codex-as/config.toml (relative hops).
        let cfg = dir.path().join("cfg");
        std::fs::create_dir(&cfg).unwrap();
        std::os::unix::fs::symlink("../dotfiles/codex-as/config.toml", cfg.join("mid.toml"))
            .unwrap();
        std::os::unix::fs::symlink("mid.toml", cfg.join("config.toml")).unwrap();
        let p = cfg.join("config.toml");
        let mut e = ConfigEdit::open(&p).unwrap();
        e.set_account_home("b", "/b");
        e.save().unwrap();
        let mut e = ConfigEdit::open(&p).unwrap();
        assert!(e.remove_account("a"));
        e.save().unwrap();
        for link in [&p, &cfg.join("mid.toml")] {
            assert!(
                std::fs::symlink_metadata(link)
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{} is still a link",
                link.display()
            );
        }
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(text.contains("# kept"), "{text}");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.accounts["b"].home.as_deref(), Some("/b"));
        assert!(!c.accounts.contains_key("a"));
        let leftovers = std::fs::read_dir(&dots).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left beside the target");
    }

    #[test]
    fn tilde_expands_only_at_the_start() {
        let h = Path::new("/home/u");
        assert_eq!(expand_tilde("~/a", h), PathBuf::from("/home/u/a"));
        assert_eq!(expand_tilde("~", h), PathBuf::from("/home/u"));
        assert_eq!(expand_tilde("/x/~/a", h), PathBuf::from("/x/~/a"));
        assert_eq!(expand_tilde("~bob/a", h), PathBuf::from("~bob/a"));
    }
}
