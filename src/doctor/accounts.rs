//! Accounts: the config, each home (exists, private, logged in), two names on one home, and
//! homes whose path would run code if a careless script evaluated it.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Report, q};
use crate::account::config::{self, ConfigError};
use crate::account::config_check::{self, Severity};
use crate::account::login_state::{self, LoginState};
use crate::account::{Account, Accounts, DEFAULT, FoundBy};

/// Checks the config file, and loads the accounts when it can be read.
pub fn config(report: &mut Report) -> Option<Accounts> {
    let path = match config::path() {
        Ok(p) => p,
        Err(e) => {
            report.finding(
                "config",
                "HOME",
                e.to_string(),
                "export HOME=/path/to/your/home",
            );
            return None;
        }
    };
    if let Some(missing) = config::explicit_but_missing() {
        // Said here as a finding, not as a warning besides.
        config::expect_missing();
        report.finding(
            "config",
            config::CONFIG_ENV,
            format!(
                "it names {}, which does not exist: no account is configured",
                missing.display()
            ),
            format!(
                "unset {}   # or `codex-as add NAME` creates it",
                config::CONFIG_ENV
            ),
        );
    }
    let home_dir = config::home_dir().ok()?;
    if let Ok(Some(text)) = config::read_text(&path) {
        let known = |name: &str| {
            name == DEFAULT
                || home_dir
                    .join(format!("{}{name}", crate::account::CONVENTION_PREFIX))
                    .is_dir()
        };
        for f in config_check::check(&text, &known) {
            let what = if f.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            report.finding(
                "config",
                f.key.clone(),
                format!(
                    "{what} at line {}, column {}: {}",
                    f.line, f.column, f.message
                ),
                format!("edit {} (line {})", q(&path), f.line),
            );
        }
    }
    match Accounts::load() {
        Ok(a) => {
            report.note("config", format!("{}", path.display()));
            Some(a)
        }
        Err(e) => {
            // Already reported above when it is the config's content.
            if !e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ConfigError>(),
                    Some(ConfigError::Invalid { .. } | ConfigError::Parse { .. })
                )
            }) {
                report.finding(
                    "config",
                    path.display().to_string(),
                    format!("{e:#}"),
                    format!("check {}", q(&path)),
                );
            }
            None
        }
    }
}

/// Each account's home (usable, private, logged in), then the homes that have two names.
pub fn check(accounts: &Accounts, report: &mut Report) {
    // Unsafe homes too: they are what most needs saying.
    let all = accounts.all_with_unsafe();
    let mut by_home: BTreeMap<PathBuf, Vec<&Account>> = BTreeMap::new();
    for a in &all {
        if !home_usable(a, accounts, report) {
            // Nothing else about it matters until its home is there to check.
            continue;
        }
        let home = a.canonical_home();
        by_home.entry(home.clone()).or_default().push(a);
        home_private(&a.name, &home, report);
        logged_in(&a.name, &home, report);
    }
    shared_homes(by_home, report);
}

/// Whether `a`'s home is a folder codex can use (else the finding or note that says why not).
fn home_usable(a: &Account, accounts: &Accounts, report: &mut Report) -> bool {
    if let Some(reason) = crate::account::home_is_unsafe(&a.home) {
        let safe = accounts.convention_home(&a.name);
        report.finding(
            "accounts",
            a.name.clone(),
            format!("its home {} is refused: {reason}", a.home.display()),
            format!(
                "codex-as remove {name} && mv -- {} {} && codex-as add {name} --home {}",
                q(&a.home),
                q(&safe),
                q(&safe),
                name = a.name
            ),
        );
        return false;
    }
    if crate::account::is_a_file(&a.home) {
        report.finding(
            "accounts",
            a.name.clone(),
            format!(
                "its home {} is a file, not a folder: codex and `codex-as login` fail on it",
                a.home.display()
            ),
            format!("mv {} {}.bak", q(&a.home), q(&a.home)),
        );
        return false;
    }
    if !a.exists() {
        if a.name == DEFAULT {
            report.note(
                "accounts",
                format!(
                    "default: {} does not exist yet (codex creates it)",
                    a.home.display()
                ),
            );
        } else {
            report.finding(
                "accounts",
                a.name.clone(),
                format!("its home {} does not exist", a.home.display()),
                format!("codex-as login {}", a.name),
            );
        }
        return false;
    }
    true
}

/// The home is the user's and closed to others, and so is its `auth.json`.
fn home_private(name: &str, home: &Path, report: &mut Report) {
    if let Ok(meta) = std::fs::metadata(home) {
        let mode = meta.permissions().mode() & 0o777;
        if meta.uid() != nix::unistd::getuid().as_raw() {
            report.finding(
                "accounts",
                name,
                format!(
                    "its home {} is owned by uid {}, not you",
                    home.display(),
                    meta.uid()
                ),
                format!("sudo chown -R \"$(id -u)\" {}", q(home)),
            );
        } else if mode & 0o077 != 0 {
            report.finding(
                "accounts",
                name,
                format!("its home {} is open to other users (mode {mode:o}): sessions and logins are private", home.display()),
                format!("chmod 700 {}", q(home)),
            );
        }
    }
    let auth = home.join("auth.json");
    if let Ok(meta) = std::fs::metadata(&auth) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            report.finding(
                "accounts",
                name,
                format!(
                    "{} is readable or writable by other users (mode {mode:o})",
                    auth.display()
                ),
                format!("chmod 600 {}", q(&auth)),
            );
        }
    }
}

fn logged_in(name: &str, home: &Path, report: &mut Report) {
    match login_state::read(home) {
        LoginState::LoggedOut => report.finding(
            "accounts",
            name,
            "not logged in: a run as it cannot start a turn",
            format!("codex-as login {name}"),
        ),
        LoginState::Unknown => report.finding(
            "accounts",
            name,
            format!(
                "{} is in a format codex-as does not know",
                home.join("auth.json").display()
            ),
            format!("codex-as login {name}"),
        ),
        state => report.note(
            "accounts",
            format!("{name}: {} ({})", home.display(), state.describe()),
        ),
    }
}

/// Two names on one home: the second (and any later) one is a finding.
fn shared_homes(by_home: BTreeMap<PathBuf, Vec<&Account>>, report: &mut Report) {
    for (home, names) in by_home {
        let Some((first, rest)) = names.split_first() else {
            continue;
        };
        for other in rest {
            let fix = match other.found_by {
                FoundBy::Config => format!("codex-as remove {}", other.name),
                _ => format!("rm {}  # a second name for {}", q(&other.home), first.name),
            };
            report.finding(
                "accounts",
                other.name.clone(),
                format!(
                    "it is the same home as '{}' ({}): two names for one login",
                    first.name,
                    home.display()
                ),
                fix,
            );
        }
    }
}

/// This folder's account (a `.codex-account` pin or a `[directories]` entry): it must name a
/// known account that is logged in, or every `codex-as task` here fails.
pub fn check_folder(accounts: &Accounts, report: &mut Report) {
    use crate::account::directory::{self, Why};
    let Ok(here) = std::env::current_dir() else {
        return;
    };
    match directory::for_directory(&here, accounts) {
        // The shell check reports an inherited CODEX_HOME that is no account.
        Err(directory::DirectoryError::UnknownCodexHome(_)) => {}
        Err(e) => report.finding(
            "accounts",
            here.display().to_string(),
            format!("this folder's account cannot be used: {e}"),
            "codex-as pin NAME   # or fix the file it names; `codex-as list` shows the accounts",
        ),
        Ok(da) if da.spec.one().is_none() => {
            // A list or `auto`: every name must be an account with a home (an unknown one is the
            // file's mistake); those not logged in are only skipped, so that is a note.
            match da.route(accounts) {
                Err(e) => report.finding(
                    "accounts",
                    format!("{}", da.why),
                    format!("this folder's accounts cannot be used: {e}"),
                    "codex-as pin NAME[,NAME...]   # or fix the file it names; `codex-as list` shows the accounts",
                ),
                Ok(route) => {
                    let out: Vec<&str> = route
                        .iter()
                        .filter(|a| login_state::read(&a.canonical_home()) == LoginState::LoggedOut)
                        .map(|a| a.name.as_str())
                        .collect();
                    let mut note = format!("this folder uses '{}' ({})", da.label(), da.why);
                    if !out.is_empty() && out.len() == route.len() {
                        report.finding(
                            "accounts",
                            format!("{}", da.why),
                            format!(
                                "none of this folder's accounts '{}' is logged in: `codex-as task` here cannot start",
                                da.label()
                            ),
                            format!("codex-as login {}", out[0]),
                        );
                        return;
                    }
                    if !out.is_empty() {
                        note.push_str(&format!("; not logged in, so skipped: {}", out.join(", ")));
                    }
                    report.note("accounts", note);
                }
            }
        }
        Ok(da) => {
            let account = match da.account(accounts) {
                Ok(a) => a,
                Err(e) => {
                    report.finding(
                        "accounts",
                        format!("{}", da.why),
                        format!("this folder's account cannot be used: {e}"),
                        "codex-as pin NAME   # or fix the file it names; `codex-as list` shows the accounts",
                    );
                    return;
                }
            };
            if !matches!(da.why, Why::PinFile { .. } | Why::Config { .. }) {
                return;
            }
            let home = account.canonical_home();
            if !account.exists() || login_state::read(&home) == LoginState::LoggedOut {
                report.finding(
                    "accounts",
                    format!("{}", da.why),
                    format!(
                        "this folder's account '{}' is not logged in: `codex-as task` here cannot start",
                        account.name
                    ),
                    format!("codex-as login {}", account.name),
                );
            } else {
                report.note(
                    "accounts",
                    format!("this folder uses '{}' ({})", account.name, da.why),
                );
            }
        }
    }
}
