//! Small system helpers with no knowledge of accounts, brokers or the plugin.
//!
//! - `clock`: UTC calendar arithmetic. `duration`: `30m`-style durations.
//! - `exe`: the stable path to call this codex-as by from hooks and shells.
//! - `exec`: starting a program (in place of codex-as or as a child), `--cwd` checked.
//! - `fsutil`: private files and folders, ownership checks, canonical paths.
//! - `runtime`: the current-thread tokio runtime. `tools`: finding `codex` and `node`.
//! - `process`: another process's state (stopped or not) and program name.
//! - `supervise`: a program as a watched child, signals passed on, ended like it.

pub mod clock;
pub mod duration;
pub mod exe;
pub mod exec;
pub mod fsutil;
pub mod out;
pub mod process;
pub mod runtime;
pub mod supervise;
pub mod table;
pub mod term;
pub mod tools;
