//! A pinned companion run as a child rather than exec'd: the companion's advice names plain
//! `codex` (`!codex login`, `codex resume ID`), which would act on the default account, so
//! codex-as says the codex-as form on stderr once it ends. Its stdout passes through byte for
//! byte (`--json` stays identical); signals are passed on and its exit status is returned.

use super::launch::Launch;
use crate::plugin::advice;
use crate::sys::supervise;

pub fn watch(launch: Launch, account: &str) -> anyhow::Result<u8> {
    let cmd = launch.command()?;
    let program = launch.program.to_string_lossy().into_owned();
    let (ended, lines) =
        supervise::wait_watching_stdout(cmd, &program, |l| !advice::scan(l).is_empty())?;
    let mut said = Vec::new();
    for a in lines.iter().flat_map(|l| advice::scan(l)) {
        if !said.contains(&a) {
            eprintln!("{}", advice::hint(&a, account));
            said.push(a);
        }
    }
    Ok(ended.exit_like())
}
