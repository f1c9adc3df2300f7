//! Codex threads in account homes: finding one's files, carrying it from one home to another so
//! that home's `codex app-server` resumes it by id, and listing recent threads across homes.
//! Pure file work on `CODEX_HOME/sessions/`; knows nothing of accounts or brokers (callers hand
//! it home paths).
//!
//! - `files`: a thread's files in one home (main rollout, `_<segment>` files, parents it names);
//!   thread ids validated so an id is never a path.
//! - `lines`: a rollout's complete lines (plain or `.jsonl.zst`) and the few line kinds that
//!   matter here (encrypted reasoning, turn starts, usage-limit failures), recognised without
//!   parsing the JSON of other lines.
//! - `carry`: the copy from home A to home B: atomic per file, A never written, encrypted
//!   reasoning left out, prefix rules between copies, a per-home lock, stale temp files swept.
//! - `catalog`: recent threads across homes, newest first.

pub mod carry;
pub mod catalog;
pub mod files;
pub mod lines;
