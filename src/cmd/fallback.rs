//! `codex-as alice,bob,carol ...` and `codex-as auto ...`: the same command on one account after
//! another, moving on only when an account's usage limit is reached. Everything else (success,
//! a failing review, bad arguments, a crash, an interrupt) ends the run as it is: retrying a
//! real failure elsewhere would only spend another account's quota on it.
//!
//! `auto` orders every account by quota headroom first (see `quota::choose`), skipping those not
//! logged in and those with a window at or above the threshold. A `--background` companion run
//! cannot be watched to its end, so it gets no fallback: the account is chosen before it starts
//! (by headroom for `auto`, the first not known to be exhausted for a list) and that is all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::account::env::EnvPlan;
use crate::account::{Account, Accounts};
use crate::broker::client;
use crate::error::{ExecError, UsageError};
use crate::fallback::child::{self, Ended};
use crate::fallback::{Exhausted, NoneUsable, jobs, landed};
use crate::quota::choose;
use crate::quota::survey::{self, Survey};
use crate::quota::{Reading, signals};
use crate::sys::clock::{format_utc, human_duration, now};

use super::quota::describe_skip;
use super::run::{Mode, RunArgs};

/// What the account part of `codex-as ACCOUNTS ...` names, when it is not one account.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `alice,bob,carol`: these, in this order.
    List(Vec<String>),
    /// `auto`: every account, best headroom first.
    Auto,
}

pub const AUTO: &str = "auto";

/// `None` for a single account name (a pin: never any fallback).
pub fn target(spec: &str) -> Result<Option<Target>, UsageError> {
    if spec == AUTO {
        return Ok(Some(Target::Auto));
    }
    if !spec.contains(',') {
        return Ok(None);
    }
    let mut names: Vec<String> = Vec::new();
    for raw in spec.split(',') {
        let name = raw.trim();
        if name.is_empty() {
            return Err(UsageError::new(format!(
                "account list '{spec}' has an empty name: write names separated by commas, e.g. alice,bob"
            )));
        }
        if name == AUTO {
            return Err(UsageError::new(
                "'auto' chooses among all accounts by itself: use it alone, not in a list",
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(UsageError::new(format!(
                "account '{name}' appears twice in '{spec}'"
            )));
        }
        names.push(name.to_string());
    }
    Ok(Some(Target::List(names)))
}

/// One line of the final note or of the all-exhausted message.
struct Skipped {
    name: String,
    why: String,
}

pub fn run(target: Target, args: RunArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let threshold = accounts.config.quota.threshold();
    let started = now();
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut quota_skips = 0;
    let order: Vec<Account> = match &target {
        Target::List(names) => names
            .iter()
            .map(|n| accounts.require(n))
            .collect::<Result<_, _>>()?,
        Target::Auto => {
            let max_age = accounts
                .config
                .quota
                .max_age()
                .map_err(anyhow::Error::msg)?;
            let surveys = survey::gather(&accounts, accounts.all(), Some(max_age), started);
            let choice = survey::choose_among(&surveys, threshold, started);
            for (i, skip) in &choice.skipped {
                if skip.is_quota() {
                    quota_skips += 1;
                }
                skipped.push(Skipped {
                    name: surveys[*i].account.name.clone(),
                    why: describe_skip(skip, started),
                });
            }
            choice
                .order
                .iter()
                .map(|i| surveys[*i].account.clone())
                .collect()
        }
    };

    // Two names for one home (a symlink, a config entry) are one account: trying it twice
    // would only spend a second turn on an account already known to be out.
    let mut order_homes: Vec<(PathBuf, String)> = Vec::new();
    let order: Vec<Account> = order
        .into_iter()
        .filter(|a| {
            let home = a.canonical_home();
            if let Some((_, first)) = order_homes.iter().find(|(h, _)| *h == home) {
                skipped.push(Skipped {
                    name: a.name.clone(),
                    why: format!("same home as '{first}'"),
                });
                return false;
            }
            order_homes.push((home, a.name.clone()));
            true
        })
        .collect();

    if let Mode::Companion { args: cargs } = &args.mode
        && is_background(cargs)
    {
        return background(
            &accounts,
            &target,
            order,
            skipped,
            quota_skips,
            &args,
            threshold,
        );
    }

    let everyone = accounts.all();
    for account in &order {
        // A Ctrl-C between attempts (while the next account's broker starts, say) is an
        // interrupt like any other: nothing more runs.
        if let Some(sig) = child::received() {
            eprintln!(
                "codex-as: interrupted (signal {sig}) before trying '{}'",
                account.name
            );
            return Ok(child::die_like(sig));
        }
        let before: Vec<(PathBuf, Option<PathBuf>)> = everyone
            .iter()
            .map(|a| {
                let h = a.canonical_home();
                let newest = landed::newest_rollout(&h);
                (h, newest)
            })
            .collect();
        let attempt = match attempt(&accounts, account, &args) {
            Ok(a) => a,
            Err(e) => {
                // Not a quota failure (no plugin, a broker that would not start, a command
                // that cannot run): it ends the run, but what was skipped is still said.
                if !skipped.is_empty() {
                    note(account, &skipped, "could not start");
                }
                return Err(e);
            }
        };
        let code = attempt.ended.status.code();
        if let Some(sig) = child::signal_of(&attempt.ended.status) {
            note(
                account,
                &skipped,
                &format!("killed by signal {sig}; no other account tried"),
            );
            return Ok(child::die_like(sig));
        }
        let code = code.map(|c| c.clamp(0, 255) as u8).unwrap_or(1);
        check_landed(account, &attempt.thread_ids, &before, &everyone);
        if code == 0 {
            note(account, &skipped, "");
            return Ok(0);
        }
        if child::received().is_some() {
            note(
                account,
                &skipped,
                &format!("interrupted (exit status {code}); no other account tried"),
            );
            return Ok(code);
        }
        let Some(message) = attempt.usage_limit else {
            note(
                account,
                &skipped,
                &format!(
                    "failed with exit status {code}, not for a usage limit: no other account tried"
                ),
            );
            return Ok(code);
        };
        quota_skips += 1;
        skipped.push(Skipped {
            name: account.name.clone(),
            why: exhausted_detail(account, &message, threshold),
        });
        if let Some(next) = order.iter().skip_while(|a| a.name != account.name).nth(1) {
            eprintln!(
                "codex-as: {}: usage limit reached; trying '{}'",
                account.name, next.name
            );
        }
    }
    let lines = skipped
        .into_iter()
        .map(|s| format!("{}: {}", s.name, s.why))
        .collect();
    if quota_skips > 0 {
        Err(Exhausted(lines).into())
    } else {
        Err(NoneUsable(lines).into())
    }
}

struct Attempt {
    ended: Ended,
    usage_limit: Option<String>,
    thread_ids: Vec<String>,
}

fn attempt(accounts: &Accounts, account: &Account, args: &RunArgs) -> anyhow::Result<Attempt> {
    match &args.mode {
        Mode::Companion { args: cargs } => {
            let p = super::companion::prepare(
                accounts,
                account,
                args.plugin_root.as_deref(),
                cargs.clone(),
            )?;
            let before = jobs::before(&p.state_dir);
            let mut cmd = Command::new(&p.program);
            cmd.args(&p.args);
            p.plan.apply(&mut cmd);
            let ended = child::run(cmd, &p.program.to_string_lossy(), None)?;
            let found = jobs::after(&before, Some(ended.pid));
            let usage_limit = if ended.status.success() {
                None
            } else {
                // The broker's structured record first (it knows the companion's pid); the job
                // record covers turns the companion ran on its own app-server.
                broker_usage_limit(&p.endpoint, ended.pid).or(found.usage_limit)
            };
            Ok(Attempt {
                usage_limit,
                thread_ids: found.thread_ids,
                ended,
            })
        }
        Mode::Exec { cwd, command } => {
            let plan = EnvPlan::for_account(account);
            let (program, rest) = command
                .split_first()
                .ok_or_else(|| UsageError::new("nothing to run"))?;
            let cmd = exec_command(program, rest, &plan, cwd.as_deref())?;
            // Codex prints a failed turn's error on stderr (`codex exec`: `ERROR: <message>`),
            // so that stream is relayed and matched line by line; stdout and stdin stay the
            // terminal's.
            let ended = child::run(
                cmd,
                &program.to_string_lossy(),
                Some(signals::is_usage_limit_line),
            )?;
            Ok(Attempt {
                usage_limit: ended
                    .stderr_matched
                    .clone()
                    .filter(|_| !ended.status.success()),
                thread_ids: Vec::new(),
                ended,
            })
        }
    }
}

/// The message of a usage-limit failure codex-as's broker saw for the companion `pid`.
fn broker_usage_limit(endpoint: &str, pid: u32) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let status = runtime
        .block_on(client::status(endpoint, Duration::from_secs(2)))
        .ok()?;
    status
        .usage_limit_hits
        .into_iter()
        .rev()
        .find(|h| h.pid == Some(pid))
        .map(|h| {
            h.message
                .unwrap_or_else(|| format!("codexErrorInfo: {}", signals::CODEX_ERROR_INFO))
        })
}

fn exec_command(
    program: &OsString,
    rest: &[OsString],
    plan: &EnvPlan,
    cwd: Option<&Path>,
) -> Result<Command, ExecError> {
    let mut cmd = Command::new(program);
    cmd.args(rest);
    plan.apply(&mut cmd);
    if let Some(dir) = cwd {
        // Checked here: spawn would report a missing folder as a missing program.
        if let Err(source) = std::fs::read_dir(dir) {
            return Err(ExecError::Cwd {
                dir: dir.to_path_buf(),
                source,
            });
        }
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// `--background` anywhere in a task or review's arguments (after the companion's one-argument
/// split, which it applies itself).
fn is_background(cargs: &[OsString]) -> bool {
    let words: Vec<String> = match cargs {
        [_, one] => crate::plugin::workspace::split_like_companion(&one.to_string_lossy()),
        _ => cargs
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    };
    words.iter().any(|w| w == "--background")
}

fn background(
    accounts: &Accounts,
    target: &Target,
    order: Vec<Account>,
    mut skipped: Vec<Skipped>,
    mut quota_skips: usize,
    args: &RunArgs,
    threshold: f64,
) -> anyhow::Result<u8> {
    let t = now();
    let chosen = match target {
        Target::Auto => order.into_iter().next(),
        Target::List(_) => {
            // The list's order, minus accounts already known to be unusable.
            let mut pick = None;
            let max_age = accounts
                .config
                .quota
                .max_age()
                .map_err(anyhow::Error::msg)?;
            for a in order {
                let mut s = Survey::of(a);
                // The pick is about to be made: a missing or old reading is asked for now.
                s.refresh(accounts, t, max_age);
                let c = s.candidate();
                let skip = choose::choose(&[c], threshold, t)
                    .skipped
                    .pop()
                    .map(|(_, k)| k);
                match skip {
                    None => {
                        pick = Some(s.account);
                        break;
                    }
                    Some(skip) => {
                        if skip.is_quota() {
                            quota_skips += 1;
                        }
                        skipped.push(Skipped {
                            name: s.account.name.clone(),
                            why: describe_skip(&skip, t),
                        });
                    }
                }
            }
            pick
        }
    };
    let Some(account) = chosen else {
        let lines = skipped
            .into_iter()
            .map(|s| format!("{}: {}", s.name, s.why))
            .collect();
        return Err(if quota_skips > 0 {
            Exhausted(lines).into()
        } else {
            NoneUsable(lines).into()
        });
    };
    note(
        &account,
        &skipped,
        "--background: chosen before start; a background job gets no fallback",
    );
    let Mode::Companion { args: cargs } = &args.mode else {
        return Err(UsageError::new("--background is for companion commands").into());
    };
    super::companion::run(
        accounts,
        &account,
        args.plugin_root.as_deref(),
        cargs.clone(),
    )
}

/// The one-line note: which account ran, which were skipped and why.
fn note(ran: &Account, skipped: &[Skipped], outcome: &str) {
    let mut line = format!("codex-as: ran as '{}'", ran.name);
    if !outcome.is_empty() {
        line.push_str(&format!(" ({outcome})"));
    }
    if !skipped.is_empty() {
        let list: Vec<String> = skipped
            .iter()
            .map(|s| format!("'{}' ({})", s.name, s.why))
            .collect();
        line.push_str(&format!("; skipped {}", list.join(", ")));
    }
    eprintln!("{line}");
}

/// "usage limit reached (try again at 3:15 PM; 5-hour window resets in 2h (…Z))".
fn exhausted_detail(account: &Account, message: &str, threshold: f64) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(hint) = signals::retry_hint(message) {
        parts.push(hint);
    }
    let t = now();
    if let Some(r) = Survey::of(account.clone()).reading() {
        parts.extend(resets(r, threshold, t));
    }
    if parts.is_empty() {
        parts.push("reset time unknown".into());
    }
    format!("usage limit reached ({})", parts.join("; "))
}

fn resets(r: &Reading, threshold: f64, t: i64) -> Vec<String> {
    [("5-hour", &r.primary), ("weekly", &r.secondary)]
        .into_iter()
        .filter_map(|(label, w)| {
            let w = w.as_ref()?;
            let at = w.resets_at.filter(|at| *at > t)?;
            (w.used_percent >= threshold).then(|| {
                format!(
                    "{label} window at {:.0}%, resets in {} ({})",
                    w.used_percent,
                    human_duration(at - t),
                    format_utc(at)
                )
            })
        })
        .collect()
}

/// Warns, loudly, when the attempt's work did not land in the chosen account's home.
fn check_landed(
    account: &Account,
    thread_ids: &[String],
    before: &[(PathBuf, Option<PathBuf>)],
    everyone: &[Account],
) {
    let home = account.canonical_home();
    for id in thread_ids {
        if landed::find_thread(&home, id).is_some() {
            continue;
        }
        let elsewhere = everyone
            .iter()
            .filter(|a| a.name != account.name)
            .find(|a| landed::find_thread(&a.canonical_home(), id).is_some());
        match elsewhere {
            Some(other) => eprintln!(
                "codex-as: WARNING: thread {id} ran as '{}', not '{}': its session file is in {}/sessions, not {}/sessions",
                other.name,
                account.name,
                other.canonical_home().display(),
                home.display()
            ),
            None => eprintln!(
                "codex-as: WARNING: thread {id} has no session file in '{}''s home ({}/sessions): check which account ran it",
                account.name,
                home.display()
            ),
        }
    }
    if !thread_ids.is_empty() {
        return;
    }
    let changed = |h: &Path, was: &Option<PathBuf>| &landed::newest_rollout(h) != was;
    let mine = before
        .iter()
        .find(|(h, _)| *h == home)
        .is_some_and(|(h, was)| changed(h, was));
    if mine {
        return;
    }
    for (h, was) in before {
        if *h != home && changed(h, was) {
            eprintln!(
                "codex-as: WARNING: during the run as '{}' a new session appeared in {}/sessions and none in {}/sessions: if this run started it, it ran as the wrong account",
                account.name,
                h.display(),
                home.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_auto_and_pins() {
        assert_eq!(target("alice").unwrap(), None);
        assert_eq!(target("auto").unwrap(), Some(Target::Auto));
        assert_eq!(
            target("alice,bob").unwrap(),
            Some(Target::List(vec!["alice".into(), "bob".into()]))
        );
        assert!(target("alice,,bob").is_err());
        assert!(target("alice,auto").is_err());
        assert!(target("alice,alice").is_err());
    }

    #[test]
    fn background_is_seen_through_the_one_argument_split() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_background(&os(&["task", "--background", "x"])));
        assert!(is_background(&os(&["task", "--background fix it"])));
        assert!(!is_background(&os(&["task", "--wait", "x"])));
        assert!(!is_background(&os(&["task", "say --background-ish"])));
    }
}
