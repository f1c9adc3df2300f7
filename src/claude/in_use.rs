//! The account a folder's work is on right now, for `which`, `claude status` and the status
//! line: the one a pin names, or, for a folder on a list or `auto`, the account the handover
//! relay serving that route is on when it can tell, else the one the route would start on (its
//! first usable account), said as such.

use std::path::Path;

use crate::account::directory::DirectoryAccount;
use crate::account::{Account, Accounts};
use crate::fallback::here::{self, Readings};

/// How the account in use was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The folder names this one account.
    Named,
    /// The relay serving the folder's route is on it.
    Relay,
    /// No relay says: the route's first usable account, where work would start.
    FirstUsable,
}

#[derive(Debug)]
pub struct InUse {
    pub account: Account,
    pub how: How,
}

impl InUse {
    /// Words for `which` and `claude status`: why this account, of the folder's list.
    pub fn describe(&self, chosen: &DirectoryAccount) -> String {
        match self.how {
            How::Named => String::new(),
            How::Relay => format!("the relay for '{}' is on it", chosen.label()),
            How::FirstUsable => format!(
                "no relay for '{}' is running; this is its first usable account, where work starts",
                chosen.label()
            ),
        }
    }

    /// The short tag the status line puts after the name.
    pub fn tag(&self) -> &'static str {
        match self.how {
            How::Named | How::Relay => "",
            How::FirstUsable => " (first usable)",
        }
    }
}

/// The account `chosen` is on. Reads only what is on disk and the relay's answer: it runs on
/// every status line refresh.
pub fn of(accounts: &Accounts, chosen: &DirectoryAccount, dir: &Path) -> anyhow::Result<InUse> {
    if chosen.spec.one().is_some() {
        return Ok(InUse {
            account: chosen.account(accounts)?,
            how: How::Named,
        });
    }
    let route = chosen.route(accounts)?;
    if let Some(account) = relay_account(accounts, &route, dir) {
        return Ok(InUse {
            account,
            how: How::Relay,
        });
    }
    let order = here::order(accounts, &chosen.spec, route);
    let first = here::one(accounts, &chosen.spec, order, Readings::OnDisk)?;
    Ok(InUse {
        account: first.account,
        how: How::FirstUsable,
    })
}

/// The account the relay serving `route` runs on, when one is running and says.
fn relay_account(_accounts: &Accounts, _route: &[Account], _dir: &Path) -> Option<Account> {
    None
}
