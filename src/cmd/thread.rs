//! `codex-as thread carry ID --from NAME --to NAME`: carries a thread between accounts' homes
//! (what a broker or the relay does on its own; hidden, for tests and for repairing by hand).

use std::path::Path;

use crate::account::Accounts;
use crate::cli::{ThreadCarryArgs, ThreadCommand};
use crate::error::status;
use crate::thread::carry::{self, Carried, CarryOptions};

pub fn run(c: ThreadCommand) -> anyhow::Result<u8> {
    match c {
        ThreadCommand::Carry(a) => carry_one(a),
    }
}

fn carry_one(a: ThreadCarryArgs) -> anyhow::Result<u8> {
    let accounts = Accounts::load()?;
    let to = accounts.require(&a.to)?;
    let from = match &a.from {
        Some(name) => accounts.require(name)?.home,
        None => {
            let all = accounts.all();
            let homes: Vec<&Path> = all.iter().map(|x| x.home.as_path()).collect();
            carry::newest_home(&a.id, &homes)?
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow::anyhow!("no account's home holds thread {}", a.id))?
        }
    };
    let opts = CarryOptions {
        drop_turn: a.drop_turn,
    };
    let done = carry::carry(&a.id, &from, &to.home, &opts)?;
    let what = match done {
        Carried::Copied => "copied",
        Carried::Updated => "updated",
        Carried::AlreadyCurrent => "already current",
    };
    crate::outln!("{}: {what} in '{}'", a.id, to.name)?;
    Ok(status::OK)
}
