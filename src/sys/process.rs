//! What the system says of another process: whether it is stopped (SIGSTOP, Ctrl-Z), and the
//! program name of a process (a shell's parent, say). Read-only; nothing here signals anyone.

/// Whether process `pid` is stopped, so that it cannot answer anything until it gets SIGCONT.
/// None when that cannot be told (no such process, no permission, no `ps`).
pub fn is_stopped(pid: u32) -> Option<bool> {
    state(pid).map(|s| matches!(s, 'T' | 't'))
}

/// The one-letter scheduler state of `pid` (`R`, `S`, `T`, `Z`...).
#[cfg(target_os = "linux")]
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_state(&stat)
}

#[cfg(not(target_os = "linux"))]
fn state(pid: u32) -> Option<char> {
    ps_field(pid, "stat=")?.chars().next()
}

/// The state letter of a `/proc/PID/stat` line: the first field after the command name, which
/// is in parentheses and may itself hold spaces and parentheses.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// The program name of `pid` (`bash`, `-zsh`, `fish`...), as the system shows it.
#[cfg(target_os = "linux")]
pub fn command_name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim_end_matches('\n');
    (!comm.is_empty()).then(|| comm.to_string())
}

#[cfg(not(target_os = "linux"))]
pub fn command_name(pid: u32) -> Option<String> {
    let comm = ps_field(pid, "comm=")?;
    // macOS gives the full path of the program.
    Some(comm.rsplit('/').next().unwrap_or(&comm).to_string())
}

#[cfg(not(target_os = "linux"))]
fn ps_field(pid: u32, field: &str) -> Option<String> {
    let out = std::process::Command::new("ps")
        .args(["-o", field, "-p", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    #[test]
    fn the_state_follows_the_command_name_whatever_it_holds() {
        assert_eq!(stat_state("42 (codex-as) S 1 2 3"), Some('S'));
        assert_eq!(stat_state("42 (a) b) (c) T 1 2"), Some('T'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn a_stopped_process_is_told_from_a_running_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let settled = |want: bool| {
            (0..100).any(|_| {
                let now = is_stopped(child.id()) == Some(want);
                if !now {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                now
            })
        };
        assert!(settled(false));
        kill(pid, Signal::SIGSTOP).unwrap();
        assert!(settled(true), "SIGSTOP not seen");
        kill(pid, Signal::SIGCONT).unwrap();
        assert!(settled(false), "SIGCONT not seen");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(is_stopped(child.id()), None, "a reaped process is unknown");
    }

    #[test]
    fn names_this_process() {
        let name = command_name(std::process::id()).unwrap();
        assert!(!name.is_empty());
        assert_eq!(command_name(0x7fff_fff0), None);
    }
}
