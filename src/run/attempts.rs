//! `codex-as alice,bob,carol ...` and `codex-as auto ...`: the same command on one account after
//! another, as `fallback::policy` decides. This module only carries the decisions out: it
//! gathers what the policy needs to know (surveys, how each attempt ended, the broker's and the
//! companion's records of a usage limit), runs each attempt as a watched child, and prints the
//! notes. A companion attempt talks to the relay of the accounts left (`handover`), which moves
//! a turn that runs out mid-way to the next account on the same thread; the attempt then covers
//! every account the relay went through, and the relay's notice is printed here. A
//! `--background` companion run cannot be watched to its end: its first account is chosen
//! before it starts, the relay hands it over later, and it is exec'd.

use std::path::{Path, PathBuf};

use super::args::RunArgs;
use super::launch::{self, Launch};
use crate::account::spec::AccountSpec;
use crate::account::{Account, Accounts};
use crate::broker::{client, protocol};
use crate::fallback::policy::{self, End, Fallback, Outcome, Step};
use crate::fallback::{jobs, landed};
use crate::handover;
use crate::quota::survey::{self, Survey};
use crate::quota::{choose, signals};
use crate::sys::clock::now;
use crate::sys::runtime;
use crate::sys::supervise::{self, Ended};

pub fn in_turn(accounts: &Accounts, args: &RunArgs) -> anyhow::Result<u8> {
    let threshold = accounts.config.quota.threshold();
    // Validated before anything runs: a choice about to be made asks afresh past this age.
    let max_age = accounts
        .config
        .quota
        .max_age()
        .map_err(anyhow::Error::msg)?;
    let mut fallback = in_order(accounts, &args.spec, threshold, max_age)?;
    if args.mode.is_background() {
        return Err(in_background(accounts, args, fallback, threshold, max_age)?.exec());
    }

    let everyone = accounts.all();
    // Accounts an attempt already used (itself, and those its relay went through).
    let mut done = vec![false; fallback.order.len()];
    while let Some(i) = done.iter().position(|d| !d) {
        let account = fallback.order[i].clone();
        // A Ctrl-C between attempts (while the next account's broker starts, say) is an
        // interrupt like any other: nothing more runs.
        if let Some(sig) = supervise::received() {
            eprintln!(
                "codex-as: interrupted (signal {sig}) before trying '{}'",
                account.name
            );
            return Ok(supervise::die_like(sig));
        }
        let before = newest_sessions(&everyone);
        let route: Vec<Account> = (i..done.len())
            .filter(|k| !done[*k])
            .map(|k| fallback.order[k].clone())
            .collect();
        let attempt = attempt(accounts, &account, &route, args).inspect_err(|_| {
            // Not a quota failure (no plugin, a broker that would not start, a command that
            // cannot run): it ends the run, but what was skipped is still said.
            if let Some(note) = fallback.could_not_start(&account.name) {
                eprintln!("{note}");
            }
        })?;
        done[i] = true;
        let i = follow_relay(&mut fallback, &mut done, i, &attempt.relay, threshold);
        let account = fallback.order[i].clone();
        let outcome = outcome(&account, &attempt, &before, &everyone);
        let out_of_quota = |message: &str| {
            let s = Survey::of(account.clone());
            policy::out_of_quota(message, s.reading(), threshold, now())
        };
        match fallback.after(i, outcome, out_of_quota) {
            Step::Stop { note, end } => {
                eprintln!("{note}");
                return Ok(match end {
                    End::Exit(code) => code,
                    End::Signal(sig) => supervise::die_like(sig),
                });
            }
            Step::Next { announce } => {
                if let Some(line) = announce {
                    eprintln!("{line}");
                }
            }
        }
    }
    Err(fallback.give_up())
}

/// The spec's accounts in the order to try them: a list's own, `auto`'s by headroom.
fn in_order(
    accounts: &Accounts,
    spec: &AccountSpec,
    threshold: f64,
    max_age: std::time::Duration,
) -> anyhow::Result<Fallback> {
    Ok(match spec {
        AccountSpec::List(names) => Fallback::list(
            names
                .iter()
                .map(|n| accounts.require(n))
                .collect::<Result<_, _>>()?,
        ),
        AccountSpec::Auto => {
            let started = now();
            let surveys = survey::gather(accounts, accounts.all(), Some(max_age), started);
            Fallback::auto(&surveys, threshold, started)
        }
        // Not routed here (a pin is exec'd), but as a list of one it would be the same.
        AccountSpec::One(name) => Fallback::list(vec![accounts.require(name)?]),
    })
}

/// A `--background` run, which cannot be watched to its end: its first account chosen now
/// (a missing or old reading asked for), the relay of the accounts after it handing it over
/// later. Returns it ready to exec.
fn in_background(
    accounts: &Accounts,
    args: &RunArgs,
    fallback: Fallback,
    threshold: f64,
    max_age: std::time::Duration,
) -> anyhow::Result<Launch> {
    let t = now();
    let fresh = |a: Account| {
        let mut s = Survey::of(a);
        s.refresh(accounts, t, max_age);
        s
    };
    let order = fallback.order.clone();
    let (account, note) = fallback.pick_before_start(&args.spec, fresh, threshold, t)?;
    eprintln!("{note}");
    let from = order
        .iter()
        .position(|a| a.name == account.name)
        .unwrap_or(0);
    launch::prepare(accounts, &account, Some(&order[from..]), args)
}

/// Each home's newest session file before an attempt, to tell where its work landed.
fn newest_sessions(everyone: &[Account]) -> Vec<(PathBuf, Option<PathBuf>)> {
    everyone
        .iter()
        .map(|a| {
            let h = a.canonical_home();
            let newest = landed::newest_rollout(&h);
            (h, newest)
        })
        .collect()
}

/// What the relay did with attempt `i`'s turns, told to the policy: the turn may have run
/// elsewhere, where the thread lived, and then on each account it was handed over to, every
/// one it left being out of quota. Those accounts are done; returns the one the attempt ended
/// on (`i` when the relay moved nothing).
fn follow_relay(
    fallback: &mut Fallback,
    done: &mut [bool],
    i: usize,
    relay: &handover::Report,
    threshold: f64,
) -> usize {
    let names: Vec<String> = fallback.order.iter().map(|a| a.name.clone()).collect();
    let position = |name: &str| names.iter().position(|n| n == name);
    let account = fallback.order[i].clone();
    let ran_first = relay
        .handovers
        .first()
        .map(|h| h.from.clone())
        .or_else(|| relay.failed_on.clone());
    if let Some(first) = ran_first.filter(|f| *f != account.name) {
        let s = Survey::of(account);
        let t = now();
        match choose::skip_reason(&s.candidate(), threshold, t) {
            Some(skip) => fallback.passed_over(i, skip.describe(t), skip.is_quota()),
            None => fallback.passed_over(i, format!("the thread was on '{first}'"), false),
        }
    }
    let mut last = i;
    for moved in &relay.handovers {
        eprintln!("{}", moved.notice);
        if let Some(from) = position(&moved.from) {
            done[from] = true;
            let s = Survey::of(fallback.order[from].clone());
            fallback.handed_over(
                from,
                policy::out_of_quota(&moved.message, s.reading(), threshold, now()),
            );
        }
        if let Some(to) = position(&moved.to) {
            done[to] = true;
            last = to;
        }
    }
    if let Some(k) = relay.failed_on.as_deref().and_then(position) {
        done[k] = true;
        last = k;
    }
    last
}

/// How the attempt ended on `account` (the last it ran on), for the policy; where its work
/// landed is checked when it exited.
fn outcome(
    account: &Account,
    attempt: &Attempt,
    before: &[(PathBuf, Option<PathBuf>)],
    everyone: &[Account],
) -> Outcome {
    if let Some(sig) = supervise::signal_of(&attempt.ended.status) {
        return Outcome::Killed(sig);
    }
    let code = attempt
        .ended
        .status
        .code()
        .map(|c| c.clamp(0, 255) as u8)
        .unwrap_or(1);
    check_landed(account, &attempt.thread_ids, before, everyone);
    Outcome::Exited {
        code,
        interrupted: code != 0 && supervise::received().is_some(),
        usage_limit: attempt.usage_limit.clone(),
    }
}

struct Attempt {
    ended: Ended,
    usage_limit: Option<String>,
    thread_ids: Vec<String>,
    /// What the relay did with the attempt's turns (nothing without a relay).
    relay: handover::Report,
}

fn attempt(
    accounts: &Accounts,
    account: &Account,
    route: &[Account],
    args: &RunArgs,
) -> anyhow::Result<Attempt> {
    let launch: Launch = launch::prepare(accounts, account, Some(route), args)?;
    let cmd = launch.command()?;
    let program = launch.program.to_string_lossy();
    match &launch.companion {
        Some(companion) => {
            let before = jobs::before(&companion.state_dir);
            let ended = supervise::wait(cmd, &program, None)?;
            let found = jobs::after(&before, Some(ended.pid));
            let usage_limit = if ended.status.success() {
                None
            } else {
                // The broker's structured record first (it knows the companion's pid); the job
                // record covers turns the companion ran on its own app-server.
                broker_usage_limit(&companion.endpoint, ended.pid).or(found.usage_limit)
            };
            let relay = if companion.relay {
                handover::report(&companion.endpoint, ended.pid)
            } else {
                handover::Report::default()
            };
            Ok(Attempt {
                usage_limit,
                thread_ids: found.thread_ids,
                ended,
                relay,
            })
        }
        None => {
            // Codex prints a failed turn's error on stderr (`codex exec`: `ERROR: <message>`),
            // so that stream is relayed and matched line by line; stdout and stdin stay the
            // terminal's.
            let ended = supervise::wait(cmd, &program, Some(signals::is_usage_limit_line))?;
            Ok(Attempt {
                usage_limit: ended
                    .stderr_matched
                    .clone()
                    .filter(|_| !ended.status.success()),
                thread_ids: Vec::new(),
                ended,
                relay: handover::Report::default(),
            })
        }
    }
}

/// The message of a usage-limit failure codex-as's broker saw for the companion `pid`.
fn broker_usage_limit(endpoint: &str, pid: u32) -> Option<String> {
    let runtime = runtime::current_thread().ok()?;
    let status = runtime
        .block_on(client::status(endpoint, client::PROBE_TIMEOUT))
        .ok()?;
    status
        .usage_limit_hits
        .into_iter()
        .rev()
        .find(|h| h.pid == Some(pid))
        .map(|h| {
            h.message
                .unwrap_or_else(|| format!("codexErrorInfo: {}", protocol::USAGE_LIMIT_EXCEEDED))
        })
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
