//! The account a folder's work is on right now, for `which`, `claude status` and the status
//! line: the one a pin names, or, for a folder on a list or `auto`, the account the handover
//! relay of that route starts work on when the relay runs (and the last account it moved work
//! to), else the one the route would start on (its first usable account), said as such.
//!
//! A relay starts each connection on its route's first usable account, by the same quota rules
//! as [`fallback::here`] (`handover::route::first`), and an account it moved work away from is
//! known to be out until its window resets: so its route order plus those rules say where new
//! work goes. Its status names its accounts and the handovers it made, not a current account.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::account::directory::DirectoryAccount;
use crate::account::spec::AccountSpec;
use crate::account::{Account, Accounts};
use crate::broker::{client, protocol, runtime_dir};
use crate::fallback::here::{self, Readings};
use crate::handover::route::Route;
use crate::handover::spawn::Handover;

/// How long a relay may take to say what it is: the status line runs on every refresh.
const ASK_TIMEOUT: Duration = Duration::from_millis(800);

/// How the account in use was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The folder names this one account.
    Named,
    /// The relay of the folder's route runs and starts work on it.
    Relay(Relay),
    /// No relay runs: the route's first usable account, where work would start.
    FirstUsable,
}

/// A running relay, as its status describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub endpoint: String,
    pub pid: Option<u32>,
    /// Its route's key (`handover::route::Route::key`).
    pub key: String,
    /// Its route, in order.
    pub accounts: Vec<String>,
    /// The last handover it made: (from, to).
    pub last_move: Option<(String, String)>,
}

#[derive(Debug)]
pub struct InUse {
    pub account: Account,
    pub how: How,
}

impl InUse {
    /// Words for `which` and `claude status`: why this account, of the folder's list.
    pub fn describe(&self, chosen: &DirectoryAccount) -> String {
        match &self.how {
            How::Named => String::new(),
            How::Relay(r) => {
                let mut s = format!("the relay for '{}' starts work on it", chosen.label());
                if let Some((from, to)) = &r.last_move {
                    s.push_str(&format!("; it last moved a turn from '{from}' to '{to}'"));
                }
                s
            }
            How::FirstUsable => format!(
                "no relay for '{}' is running; this is its first usable account, where work starts",
                chosen.label()
            ),
        }
    }

    /// The short tag the status line puts after the name.
    pub fn tag(&self) -> &'static str {
        match self.how {
            How::Named | How::Relay(_) => "",
            How::FirstUsable => " (first usable)",
        }
    }
}

/// The account `chosen` is on. Reads only what is on disk and a running relay's status: it runs
/// on every status line refresh, so it starts nothing.
pub fn of(accounts: &Accounts, chosen: &DirectoryAccount) -> anyhow::Result<InUse> {
    if chosen.spec.one().is_some() {
        return Ok(InUse {
            account: chosen.account(accounts)?,
            how: How::Named,
        });
    }
    let order = here::order(accounts, &chosen.spec, chosen.route(accounts)?);
    if let Some(relay) = find_relay(&order, chosen.spec == AccountSpec::Auto) {
        let relay_order: Vec<Account> = relay
            .accounts
            .iter()
            .filter_map(|n| order.iter().find(|a| a.name == *n).cloned())
            .collect();
        let list = AccountSpec::List(relay.accounts.clone());
        if let Ok(first) = here::one(accounts, &list, relay_order, Readings::OnDisk) {
            return Ok(InUse {
                account: first.account,
                how: How::Relay(relay),
            });
        }
    }
    let first = here::one(accounts, &chosen.spec, order, Readings::OnDisk)?;
    Ok(InUse {
        account: first.account,
        how: How::FirstUsable,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RelayStatus {
    broker: Option<String>,
    pid: Option<u32>,
    route: Option<String>,
    accounts: Vec<String>,
    handovers: Vec<Handover>,
}

/// The running relay of `order`: the one with its key, else, for `auto` (whose order follows
/// the quota, so a session started earlier may have another), one serving the same accounts.
fn find_relay(order: &[Account], any_order: bool) -> Option<Relay> {
    let route = Route::new(order.to_vec());
    if route.len() < 2 {
        return None;
    }
    let dir = runtime_dir::chosen();
    let key = route.key();
    let ours = dir.join(format!("rl-{key}.sock"));
    let mut candidates = vec![ours.clone()];
    if any_order {
        let mut others: Vec<_> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                *p != ours
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("rl-") && n.ends_with(".sock"))
            })
            .collect();
        others.sort();
        candidates.extend(others);
    }
    let mut want: Vec<&str> = route.accounts.iter().map(|a| a.name.as_str()).collect();
    want.sort_unstable();
    let rt = crate::sys::runtime::current_thread().ok()?;
    candidates.into_iter().find_map(|socket| {
        if !socket.exists() {
            return None;
        }
        let endpoint = format!("unix:{}", socket.display());
        let st = rt.block_on(ask(&endpoint))?;
        let mut names: Vec<&str> = st.accounts.iter().map(String::as_str).collect();
        names.sort_unstable();
        let same = st.route.as_deref() == Some(key.as_str()) || (any_order && names == want);
        same.then(|| Relay {
            endpoint,
            pid: st.pid,
            key: st.route.clone().unwrap_or_default(),
            last_move: st.handovers.last().map(|h| (h.from.clone(), h.to.clone())),
            accounts: st.accounts,
        })
    })
}

async fn ask(endpoint: &str) -> Option<RelayStatus> {
    let mut conn = client::connect(endpoint, ASK_TIMEOUT).await.ok()?;
    let v = client::request(&mut conn, protocol::BROKER_STATUS, json!({}), ASK_TIMEOUT)
        .await
        .ok()?;
    let st: RelayStatus = serde_json::from_value(v).ok()?;
    (st.broker.as_deref() == Some("codex-as-relay")).then_some(st)
}
