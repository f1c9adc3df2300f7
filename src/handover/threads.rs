//! What the relay asks of the thread files: which route home holds a thread's newest copy, and
//! carrying a thread into another home without its failed turn. Behind a trait so the relay's
//! logic is tested without homes; [`Files`] is the real one, over `thread::carry`.

use std::path::{Path, PathBuf};

use crate::thread::carry::{self, CarryOptions};

pub trait Threads {
    /// The index in `homes` of the home holding the newest copy of thread `id`, if any does.
    fn newest_home(&self, id: &str, homes: &[PathBuf]) -> anyhow::Result<Option<usize>>;
    /// Makes `to` hold thread `id` as `from` has it, minus the turn `drop_turn`.
    fn carry(
        &self,
        id: &str,
        from: &Path,
        to: &Path,
        drop_turn: Option<&str>,
    ) -> anyhow::Result<()>;
}

/// The account homes' real files (`thread::carry`).
pub struct Files;

impl Threads for Files {
    fn newest_home(&self, id: &str, homes: &[PathBuf]) -> anyhow::Result<Option<usize>> {
        let refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
        let newest = carry::newest_home(id, &refs)?;
        Ok(newest.and_then(|n| refs.iter().position(|h| *h == n)))
    }

    fn carry(
        &self,
        id: &str,
        from: &Path,
        to: &Path,
        drop_turn: Option<&str>,
    ) -> anyhow::Result<()> {
        let opts = CarryOptions {
            drop_turn: drop_turn.map(str::to_string),
        };
        carry::carry(id, from, to, &opts)?;
        Ok(())
    }
}
