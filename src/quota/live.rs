//! A live reading, asked when a choice is about to be made on a reading that is missing or older
//! than `[quota] max_age`: `account/rateLimits/read` through the account's warm codex-as broker
//! for the current workspace (started when there is none, exactly as the companion path does, so
//! the next companion call finds it warm). The broker's sensor records the answer too.
//!
//! A busy broker (another client owns its app-server) is not waited for: a short-lived
//! `codex app-server` with the account's environment answers instead (`one_shot`). Only a ChatGPT
//! login has rate limits; Codex refuses the call for others ("codex account authentication
//! required to read rate limits"), and that refusal is the reading's error, said plainly.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::one_shot;
use super::snapshot;
use super::{Reading, Source};
use crate::account::{Account, Accounts};
use crate::broker::client::{self, ClientError};
use crate::broker::pool;
use crate::plugin::workspace;

const READ: &str = "account/rateLimits/read";

/// Reads one account's limits now. The error text is for people (one line, no secret).
pub fn read(accounts: &Accounts, account: &Account, timeout: Duration) -> anyhow::Result<Reading> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    let ws = crate::sys::fsutil::canonical(&workspace::workspace_root(&here));
    let runtime = crate::sys::runtime::current_thread()?;
    match runtime.block_on(through_broker(accounts, account, &ws, timeout)) {
        Ok(r) => Ok(r),
        Err(e) if is_busy(&e) => {
            one_shot::read(account, timeout).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(e) => Err(e),
    }
}

fn is_busy(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<ClientError>(), Some(ClientError::Busy))
}

async fn through_broker(
    accounts: &Accounts,
    account: &Account,
    ws: &Path,
    timeout: Duration,
) -> anyhow::Result<Reading> {
    crate::sys::tools::codex()?;
    let endpoint = pool::ensure_for(accounts, account, ws).await?;
    let mut conn = client::connect(&endpoint, timeout).await?;
    client::request(
        &mut conn,
        crate::broker::protocol::INITIALIZE,
        crate::broker::protocol::initialize_params(),
        timeout,
    )
    .await?;
    let result = match client::request(&mut conn, READ, json!(null), timeout).await {
        Ok(v) => v,
        Err(ClientError::Rpc { message, .. }) => {
            anyhow::bail!("codex refused: {message}")
        }
        Err(e) => return Err(e.into()),
    };
    let source = Source::AppServer {
        via: Some("broker".into()),
    };
    snapshot::parse_read_result(&result, crate::sys::clock::now(), source)
        .ok_or_else(|| anyhow::anyhow!("codex answered without rate limits"))
}
