//! The relay that hands a running job over to the next account when its account runs out.
//!
//! A companion run on a list or `auto` (`codex-as a,b task ...`, `--background` included) and a
//! Claude Code session whose folder names a list talk to a relay instead of one account's
//! broker: `CODEX_COMPANION_APP_SERVER_ENDPOINT` names it. The relay is one detached process per
//! route (the ordered accounts), `codex-as relay serve --route a,b --endpoint unix:PATH`, on a
//! socket in codex-as's private runtime folder (`rl-<16 hex>.sock`, the hex naming the route's
//! names and homes), started and found like a broker (ready pipe, idle exit).
//!
//! - `route`: the route's accounts, which of them a connection starts on, and which is next
//!   when one runs out (the fallback's order, one try per home, the quota's skips).
//! - `rewrite`: the pure rules: which upstream messages are held back while a failed turn may
//!   still be handed over, and the id mapping that makes the turn on the next account look like
//!   the one the companion started.
//! - `upstream`: what the relay talks to for an account ([`upstream::Upstream`]); today that
//!   account's codex-as broker.
//! - `conn`: one client connection, relayed line by line; the handover itself.
//! - `serve`: the listener, idle exit, status; `spawn`: finding or starting the relay.
//! - `notice`: the one line that tells the user, and the job log it also goes to.
//!
//! On a handover the failed turn's `error` (and the `thread/status/changed` to `systemError`
//! before it, and the failed `turn/completed`) never reach the client; the thread is carried to
//! the next account's home without the failed turn (`thread::carry`), resumed there, and the
//! same `turn/start` (or `review/start`) params are sent again; the new turn's id is rewritten
//! to the original one in everything forwarded. When no account is left the failure goes
//! through unchanged, and the run's fallback reports every account out of quota.
//!
//! The notice: a relay is detached and must not hold anyone's terminal, so it writes the notice
//! into the plugin job's log (`<state dir>/jobs/<id>.log`, the job found by its thread id),
//! where `/codex:status` shows it, and records the handover by client pid in its status; a
//! foreground `codex-as a,b task` asks for it when its companion ends and prints it on stderr.

pub mod conn;
pub mod notice;
pub mod rewrite;
pub mod route;
pub mod serve;
pub mod spawn;
pub mod threads;
pub mod upstream;

use std::path::Path;

use crate::account::{Account, Accounts};

pub use spawn::{Report, report};

/// The endpoint of a running relay for `route`, started when none is live. `ws` is the
/// workspace the caller works in (the relay itself serves every workspace: each thread names
/// its own folder).
pub fn ensure(accounts: &Accounts, route: &[Account], ws: &Path) -> anyhow::Result<String> {
    crate::sys::runtime::current_thread()?.block_on(spawn::ensure(accounts, route, ws))
}
