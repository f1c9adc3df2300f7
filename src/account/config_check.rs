//! Checking the config file as a whole when it is read: every problem at once, each naming its
//! key with the line and column where it is, so one edit fixes them all.
//!
//! serde stops at the first mistake and says nothing about values it accepts but codex-as
//! cannot use (a threshold of 120, an `idle_exit` of "5 mins"), so the document is walked here,
//! with the positions `toml_edit` keeps.

use std::fmt;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

use crate::account::spec::AccountSpec;
use crate::account::{DEFAULT, names};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// codex-as cannot act on the file as written: the command stops.
    Error,
    /// Worth fixing, but a typo here must not stop work (an `order` naming nobody).
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Dotted key: `broker.idle_exit`, `accounts.work.home`.
    pub key: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}: {}",
            self.line, self.column, self.key, self.message
        )
    }
}

const TOP: &[&str] = &[
    "order",
    "accounts",
    "plugin",
    "broker",
    "quota",
    "directories",
];
const ACCOUNT: &[&str] = &["home", "pass_env"];
const PLUGIN: &[&str] = &["root"];
const BROKER: &[&str] = &["idle_exit", "app_server"];
const QUOTA: &[&str] = &["threshold", "max_age"];

struct Walk<'a> {
    text: &'a str,
    found: Vec<Finding>,
}

impl Walk<'_> {
    fn at(&mut self, severity: Severity, key: &str, span: Option<Range<usize>>, message: String) {
        let offset = span.map(|s| s.start).unwrap_or(0).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        self.found.push(Finding {
            severity,
            key: key.to_string(),
            line,
            column,
            message,
        });
    }

    fn error(&mut self, key: &str, span: Option<Range<usize>>, message: String) {
        self.at(Severity::Error, key, span, message);
    }

    /// Unknown keys of `table`, each an error listing the known ones.
    fn known_keys(&mut self, table: &dyn toml_edit::TableLike, prefix: &str, known: &[&str]) {
        for (k, _) in table.iter() {
            if !known.contains(&k) {
                let span = table.key(k).and_then(|key| key.span());
                let hint = names::suggest(k, known.iter().copied())
                    .map(|s| format!("did you mean '{s}'? "))
                    .unwrap_or_default();
                self.error(
                    &join(prefix, k),
                    span,
                    format!("unknown key: {hint}known keys here: {}", known.join(", ")),
                );
            }
        }
    }

    /// A sub-table such as `[broker]`; anything else is an error.
    fn table<'t>(&mut self, root: &'t Table, key: &str) -> Option<&'t dyn toml_edit::TableLike> {
        let item = root.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                self.error(key, item.span(), format!("must be a table (`[{key}]`)"));
                None
            }
        }
    }

    fn string<'i>(&mut self, key: &str, item: &'i Item) -> Option<&'i str> {
        let s = item.as_str();
        if s.is_none() {
            self.error(key, item.span(), "must be a string (in quotes)".into());
        }
        s
    }

    fn strings<'i>(&mut self, key: &str, item: &'i Item) -> Vec<(&'i str, Option<Range<usize>>)> {
        let Some(array) = item.as_array() else {
            self.error(
                key,
                item.span(),
                "must be a list of strings: [\"a\", \"b\"]".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in array.iter() {
            match v {
                Value::String(s) => out.push((s.value().as_str(), v.span())),
                _ => self.error(
                    key,
                    v.span(),
                    "must be a list of strings: [\"a\", \"b\"]".into(),
                ),
            }
        }
        out
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Every problem of the config `text`. `known_account` says whether a name not configured in
/// the file is an account anyway (`default`, `~/.codex-NAME`), for `order`. A file that is not TOML at all
/// gives one finding: where the syntax breaks.
pub fn check(text: &str, known_account: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut w = Walk {
        text,
        found: Vec::new(),
    };
    let doc = match toml_edit::Document::parse(text) {
        Ok(d) => d,
        Err(e) => {
            w.error("(syntax)", e.span(), e.message().trim().to_string());
            return w.found;
        }
    };
    let root: &Table = doc.as_table();
    let configured = root.get("accounts").and_then(|a| a.as_table_like());
    let is_account =
        |name: &str| known_account(name) || configured.is_some_and(|a| a.contains_key(name));
    w.known_keys(root, "", TOP);
    w.order(root, &is_account);
    w.accounts(root);
    w.directories(root, &is_account);
    w.plugin(root);
    w.broker(root);
    w.quota(root);
    w.found
}

/// One section of the file each.
impl Walk<'_> {
    fn order(&mut self, root: &Table, is_account: &dyn Fn(&str) -> bool) {
        let Some(item) = root.get("order") else {
            return;
        };
        for (name, span) in self.strings("order", item) {
            if !is_account(name) {
                self.at(
                    Severity::Warning,
                    "order",
                    span,
                    format!("'{name}' is not an account (see `codex-as list`); it is ignored"),
                );
            }
        }
    }

    fn accounts(&mut self, root: &Table) {
        let Some(accounts) = self.table(root, "accounts") else {
            return;
        };
        for (name, item) in accounts.iter() {
            let key = format!("accounts.{name}");
            let span = accounts.key(name).and_then(|k| k.span());
            // An unusable name is left out of every list (as before this check), so it warns
            // rather than stopping every command.
            if let Err(reason) = names::check(name) {
                self.at(
                    Severity::Warning,
                    &key,
                    span.clone(),
                    format!("account name '{name}' {reason}; this account is ignored"),
                );
            }
            let Some(account) = item.as_table_like() else {
                self.error(
                    &key,
                    item.span().or(span),
                    format!("must be a table (`[{key}]`)"),
                );
                continue;
            };
            self.known_keys(account, &key, ACCOUNT);
            if let Some(home) = account.get("home") {
                let home_key = format!("{key}.home");
                if self.string(&home_key, home).is_some() && name == DEFAULT {
                    self.error(
                        &home_key,
                        home.span(),
                        "the default account is ~/.codex, the home `codex` uses without CODEX_HOME; give this folder its own name ([accounts.NAME])".into(),
                    );
                }
            }
            if let Some(pass) = account.get("pass_env") {
                self.strings(&format!("{key}.pass_env"), pass);
            }
        }
    }

    /// `[directories]`: folder = account, list (`"work, personal"`) or `auto`. A name that is no
    /// account is only a warning here: the folder's commands say it loudly when they run there.
    fn directories(&mut self, root: &Table, is_account: &dyn Fn(&str) -> bool) {
        let Some(dirs) = self.table(root, "directories") else {
            return;
        };
        for (folder, item) in dirs.iter() {
            let key = format!("directories.{folder}");
            let Some(value) = self.string(&key, item) else {
                continue;
            };
            let spec = match AccountSpec::parse(value) {
                Ok(spec) => spec,
                Err(e) => {
                    self.at(Severity::Warning, &key, item.span(), e.0);
                    continue;
                }
            };
            for name in spec.names() {
                if !is_account(name) {
                    self.at(
                        Severity::Warning,
                        &key,
                        item.span(),
                        format!("'{name}' is not an account (see `codex-as list`)"),
                    );
                }
            }
        }
    }

    fn plugin(&mut self, root: &Table) {
        if let Some(plugin) = self.table(root, "plugin") {
            self.known_keys(plugin, "plugin", PLUGIN);
            if let Some(root_item) = plugin.get("root") {
                self.string("plugin.root", root_item);
            }
        }
    }

    fn broker(&mut self, root: &Table) {
        if let Some(broker) = self.table(root, "broker") {
            self.known_keys(broker, "broker", BROKER);
            if let Some(item) = broker.get("idle_exit") {
                self.duration("broker.idle_exit", item, "(\"30m\", \"2h\")");
            }
            if let Some(item) = broker.get("app_server")
                && let Some(s) = self.string("broker.app_server", item)
                && !matches!(s, "listener" | "child")
            {
                self.error(
                    "broker.app_server",
                    item.span(),
                    format!("{s:?} is not a choice: write \"listener\" or \"child\""),
                );
            }
        }
    }

    fn quota(&mut self, root: &Table) {
        let Some(quota) = self.table(root, "quota") else {
            return;
        };
        self.known_keys(quota, "quota", QUOTA);
        if let Some(item) = quota.get("max_age") {
            self.duration("quota.max_age", item, "(\"10m\", \"1h\")");
        }
        if let Some(item) = quota.get("threshold") {
            let n = item
                .as_float()
                .or_else(|| item.as_integer().map(|i| i as f64));
            match n {
                Some(n) if (0.0..=100.0).contains(&n) => {}
                Some(n) => self.error(
                    "quota.threshold",
                    item.span(),
                    format!("{n} is outside 0-100 (a percentage of a usage window)"),
                ),
                None => self.error(
                    "quota.threshold",
                    item.span(),
                    "must be a number from 0 to 100".into(),
                ),
            }
        }
    }

    /// A string `sys::duration` reads; `examples` are shown when it is not one.
    fn duration(&mut self, key: &str, item: &Item, examples: &str) {
        if let Some(s) = self.string(key, item)
            && crate::sys::duration::parse(s).is_err()
        {
            self.error(
                key,
                item.span(),
                format!(
                    "{s:?} is not a duration: write a whole number with ms, s, m or h {examples}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, usize, usize, Severity)> {
        check(text, &|n| n == DEFAULT)
            .into_iter()
            .map(|f| (f.key, f.line, f.column, f.severity))
            .collect()
    }

    #[test]
    fn every_problem_at_once_with_its_position() {
        let text = "order = [\"work\", \"wrok\"]\n\
                    [broker]\nidle_exit = \"5 mins\"\n\
                    [quota]\nthreshold = 120\n\
                    [accounts.work]\nhom = \"~/w\"\n";
        assert_eq!(
            keys(text),
            [
                ("order".into(), 1, 18, Severity::Warning),
                ("accounts.work.hom".into(), 7, 1, Severity::Error),
                ("broker.idle_exit".into(), 3, 13, Severity::Error),
                ("quota.threshold".into(), 5, 13, Severity::Error),
            ]
        );
    }

    #[test]
    fn the_brokers_app_server_is_listener_or_child() {
        assert_eq!(keys("[broker]\napp_server = \"listener\"\n"), []);
        assert_eq!(keys("[broker]\napp_server = \"child\"\n"), []);
        assert_eq!(
            keys("[broker]\napp_server = \"daemon\"\n"),
            [("broker.app_server".into(), 2, 14, Severity::Error)]
        );
        assert_eq!(
            keys("[broker]\napp_server = 1\n"),
            [("broker.app_server".into(), 2, 14, Severity::Error)]
        );
    }

    #[test]
    fn a_good_config_has_no_finding() {
        let text = "order = [\"work\"]\n[accounts.work]\nhome = \"~/w\"\npass_env = [\"OPENAI_API_KEY\"]\n\
                    [plugin]\nroot = \"/p\"\n[broker]\nidle_exit = \"30m\"\n[quota]\nthreshold = 95\nmax_age = \"15m\"\n";
        assert_eq!(keys(text), []);
        assert_eq!(keys("[quota]\nthreshold = 99.5\n"), []);
    }

    #[test]
    fn the_readmes_example_config_has_no_finding() {
        // The README shows every key: a key added to the config but not here is caught.
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n").map(|i| i + 8).unwrap_or(0);
        let end = readme[start..]
            .find("```")
            .map(|i| start + i)
            .unwrap_or(start);
        let example = &readme[start..end];
        assert!(example.contains("[quota]"), "{example}");
        let found = check(example, &|_| true);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn directories_take_a_list_or_auto_and_name_each_unknown_account() {
        let text = "[directories]\n\"/a\" = \"default, wrok\"\n\"/b\" = \"auto\"\n\"/c\" = \"default,default\"\n\"/d\" = \"default\"\n";
        let found = check(text, &|n| n == DEFAULT);
        let got: Vec<(String, usize, String)> = found
            .iter()
            .map(|f| (f.key.clone(), f.line, f.message.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "directories./a".into(),
                    2,
                    "'wrok' is not an account (see `codex-as list`)".into()
                ),
                (
                    "directories./c".into(),
                    4,
                    "account 'default' appears twice in 'default,default'".into()
                ),
            ]
        );
        assert!(found.iter().all(|f| f.severity == Severity::Warning));
    }

    #[test]
    fn syntax_types_and_the_default_home() {
        let syntax = keys("[broker\n");
        assert_eq!(syntax.len(), 1);
        assert_eq!((syntax[0].1, syntax[0].3), (1, Severity::Error));
        assert_eq!(
            keys("[accounts.default]\nhome = \"~/x\"\n"),
            [("accounts.default.home".into(), 2, 8, Severity::Error)]
        );
        assert_eq!(
            keys("order = \"work\"\nbroker = 3\n[quota]\nthreshold = \"high\"\n"),
            [
                ("order".into(), 1, 9, Severity::Error),
                ("broker".into(), 2, 10, Severity::Error),
                ("quota.threshold".into(), 4, 13, Severity::Error),
            ]
        );
        assert_eq!(keys("[accounts.\"a b\"]\n")[0].0, "accounts.a b");
    }
}
