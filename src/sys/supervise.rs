//! A program run as codex-as's child instead of exec'd, when codex-as must see how it ended: a
//! fallback attempt (to decide whether to try the next account), a pinned companion (to say its
//! advice in codex-as's form), a `login` that created a home (to undo it). The child keeps the
//! terminal: it inherits stdin and
//! stdout (and stderr unless a relay is asked for) and stays in codex-as's process group, so a
//! Ctrl-C from the terminal reaches it directly. Signals sent to codex-as itself by another
//! process (`kill`, a supervisor's SIGTERM) are passed on to the child.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::ExecError;
use crate::sys::exec;

/// Pid of the running child (0: none), read by the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The last signal codex-as received while a child ran (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// A signal sent by a process that has not been passed on yet: one that came while no child's
/// pid was known (between spawn and recording the pid) must still reach the child. Whoever
/// swaps it out, the handler or `spawn_tracked`, passes it on, so it is delivered exactly once.
static PENDING: AtomicI32 = AtomicI32::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// How long the stderr relay may lag behind the child's exit.
const RELAY_GRACE: Duration = Duration::from_millis(500);

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

extern "C" fn on_signal(sig: i32, info: *mut nix::libc::siginfo_t, _: *mut std::ffi::c_void) {
    RECEIVED.store(sig, Ordering::SeqCst);
    // A signal the terminal generated (si_code > 0, e.g. SI_KERNEL for Ctrl-C) already went to
    // the whole foreground group, child included: sending it again would make it a double
    // Ctrl-C, which some programs take as "abort now". One sent by a process (si_code <= 0:
    // SI_USER, SI_QUEUE) was meant for codex-as alone and is passed on.
    // SAFETY: the kernel hands a valid siginfo_t to an SA_SIGINFO handler.
    let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    if !from_process {
        return;
    }
    PENDING.store(sig, Ordering::SeqCst);
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        pass_pending(pid);
    }
}

/// Sends the pending signal, if any, to `pid`. Async-signal-safe: atomics and kill(2) only.
fn pass_pending(pid: i32) {
    let sig = PENDING.swap(0, Ordering::SeqCst);
    if sig != 0 {
        // SAFETY: kill(2) is async-signal-safe and touches no memory.
        unsafe {
            nix::libc::kill(pid, sig);
        }
    }
}

fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler only uses atomics and kill(2), both async-signal-safe.
        let _ = unsafe { signal::sigaction(sig, &action) };
    }
}

/// The signal codex-as received while a child ran, if any: the user wants to stop.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// How a child ended.
pub struct Ended {
    pub status: ExitStatus,
    pub pid: u32,
    /// With a relay: whether a line of the child's stderr matched.
    pub stderr_matched: Option<String>,
}

impl Ended {
    /// codex-as's exit status for a run that ends as the child did: the same status, or the
    /// same signal ([`die_like`]).
    pub fn exit_like(&self) -> u8 {
        match signal_of(&self.status) {
            Some(sig) => die_like(sig),
            None => self
                .status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(crate::error::status::FAILURE),
        }
    }
}

/// Starts `cmd` and waits for it to end. With `relay`, the child's stderr goes through codex-as, line
/// by line as it comes, and each line is offered to `relay` (the first line it accepts is kept).
pub fn wait(
    mut cmd: Command,
    program: &str,
    relay: Option<fn(&str) -> bool>,
) -> Result<Ended, ExecError> {
    install();
    cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit());
    cmd.stderr(if relay.is_some() {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    let mut child = spawn_tracked(&mut cmd, program)?;
    let pid = child.id();
    // What the relay matched so far, and a signal that it reached the end of the stream.
    let matched: Arc<Mutex<Option<String>>> = Arc::default();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let relaying = match (relay, child.stderr.take()) {
        (Some(matches), Some(err)) => {
            let matched = Arc::clone(&matched);
            std::thread::spawn(move || {
                let mut out = std::io::stderr();
                let mut r = BufReader::new(err);
                let mut line = Vec::new();
                // Byte lines: a program's output need not be UTF-8, and must pass through intact.
                while let Ok(n) = r.read_until(b'\n', &mut line) {
                    if n == 0 {
                        break;
                    }
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                    let text = String::from_utf8_lossy(&line);
                    if matches(text.trim_end())
                        && let Ok(mut m) = matched.lock()
                        && m.is_none()
                    {
                        *m = Some(text.trim().to_string());
                    }
                    line.clear();
                }
                let _ = done_tx.send(());
            });
            true
        }
        _ => false,
    };
    let status = wait_tracked(&mut child, program)?;
    if relaying {
        // The stream ends when the last process holding it exits: usually the child, but a
        // background process it left behind may keep it open for hours. Its last lines get a
        // moment to arrive; after that the relay carries on alone and the verdict is made.
        let _ = done_rx.recv_timeout(RELAY_GRACE);
    }
    let stderr_matched = matched.lock().ok().and_then(|m| m.clone());
    Ok(Ended {
        status,
        pid,
        stderr_matched,
    })
}

/// Starts the child and records its pid for the signal handler.
fn spawn_tracked(cmd: &mut Command, program: &str) -> Result<Child, ExecError> {
    let child = cmd
        .spawn()
        .map_err(|source| exec::start_error(program, source))?;
    let pid = child.id() as i32;
    CHILD.store(pid, Ordering::SeqCst);
    // A signal that came between spawn and the store above found no pid to pass on to.
    pass_pending(pid);
    Ok(child)
}

/// Waits for the child (through signals codex-as receives meanwhile), then forgets its pid.
fn wait_tracked(child: &mut Child, program: &str) -> Result<ExitStatus, ExecError> {
    let status = loop {
        match child.wait() {
            Ok(s) => break Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(ExecError::Other {
                    program: program.to_string(),
                    source: e,
                });
            }
        }
    };
    CHILD.store(0, Ordering::SeqCst);
    status
}

/// Ends codex-as the way the child ended when a signal killed it, so a shell or supervisor
/// sees the same thing: default action restored, the signal raised on itself. Returns the
/// shell's 128+N for the rare signal whose default action does not end a process.
pub fn die_like(sig: i32) -> u8 {
    if let Ok(s) = Signal::try_from(sig) {
        // SAFETY: restoring the default disposition has no handler to be unsafe about.
        let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
        let mut set = SigSet::empty();
        set.add(s);
        let _ = set.thread_unblock();
        let _ = signal::raise(s);
    }
    128u8.saturating_add(sig as u8)
}

pub fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

/// Longest line kept whole for `keep`: a longer one is offered in pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// Like [`wait`] without a relay, but the child's stdout goes through codex-as: passed on byte
/// for byte as it comes (nothing added, nothing held back), each line offered to `keep`; the
/// lines it accepts are returned. When codex-as's own stdout is closed, the pipe is closed too,
/// so the child sees what it would have seen writing there itself.
pub fn wait_watching_stdout(
    mut cmd: Command,
    program: &str,
    keep: fn(&str) -> bool,
) -> Result<(Ended, Vec<String>), ExecError> {
    install();
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn_tracked(&mut cmd, program)?;
    let pid = child.id();
    let (kept_tx, kept_rx) = mpsc::channel::<Vec<String>>();
    if let Some(mut from) = child.stdout.take() {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut to = std::io::stdout().lock();
            let mut buf = vec![0u8; 16 * 1024];
            let mut line: Vec<u8> = Vec::new();
            let mut kept = Vec::new();
            let offer = |line: &[u8], kept: &mut Vec<String>| {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end();
                if keep(text) {
                    kept.push(text.to_string());
                }
            };
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    // Our reader has gone: dropping `from` closes the pipe for the child too.
                    break;
                }
                for &b in &buf[..n] {
                    line.push(b);
                    if b == b'\n' || line.len() >= MAX_LINE {
                        offer(&line, &mut kept);
                        line.clear();
                    }
                }
            }
            if !line.is_empty() {
                offer(&line, &mut kept);
            }
            let _ = kept_tx.send(kept);
        });
    }
    let status = wait_tracked(&mut child, program)?;
    // A background process the child left behind may hold the pipe open: its last lines get a
    // moment, then the relay carries on alone.
    let kept = kept_rx.recv_timeout(RELAY_GRACE).unwrap_or_default();
    Ok((
        Ended {
            status,
            pid,
            stderr_matched: None,
        },
        kept,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A signal sent to codex-as after the child was spawned but before its pid was recorded
    /// (here: before `wait` even starts) must still reach the child, not be lost.
    #[test]
    fn a_signal_that_comes_before_the_pid_is_known_reaches_the_child() {
        // As the kernel would call the handler for a kill(2) from another process.
        on_signal(
            nix::libc::SIGTERM,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let started = std::time::Instant::now();
        let ended = wait(cmd, "sleep", None).unwrap();
        assert_eq!(ended.status.signal(), Some(nix::libc::SIGTERM));
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(PENDING.load(Ordering::SeqCst), 0);
    }
}
