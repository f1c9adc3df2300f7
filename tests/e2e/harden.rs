//! Issue 14: what a fault soak and a hostile local user found. Each test drives the built binary
//! with real processes (the plugin fixture's companion, the fake codex, codex-as's brokers, and
//! for the planted-state cases a process running as a second local user).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::skip;
use crate::support::oracle::broker_key;
use crate::support::{Sandbox, fixtures, have_node, installed, stderr, stdout, wait_until};

/// The second local user the planted-state tests act as; CI (.ci/run) creates it.
const PEER_USER: &str = "codexas-peer";

struct World {
    sb: Sandbox,
    ws: PathBuf,
    /// Set as CODEX_AS_RUNTIME_DIR, or None for the default ($TMPDIR/codex-as-UID).
    runtime: Option<PathBuf>,
}

impl World {
    fn new() -> Option<World> {
        if !have_node() {
            return None;
        }
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in ["alice", "bob"] {
            sb.account_dir(a);
        }
        let ws = sb.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&ws)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git init");
        let ws = std::fs::canonicalize(ws).unwrap();
        let runtime = Some(sb.path().join("rt"));
        Some(World { sb, ws, runtime })
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    fn cas(&self, args: &[&str]) -> Command {
        let mut c = self.sb.codex_as();
        c.env("CODEX_AS_PLUGIN_ROOT", fixtures().join("plugin"))
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .current_dir(&self.ws)
            .args(args);
        match &self.runtime {
            Some(rt) => c.env("CODEX_AS_RUNTIME_DIR", rt),
            // The default: $TMPDIR/codex-as-UID.
            None => c
                .env_remove("CODEX_AS_RUNTIME_DIR")
                .env_remove("XDG_RUNTIME_DIR"),
        };
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        common_output(self.cas(args))
    }

    /// `setup --json` as `account`: a call that needs a broker serving the account.
    fn setup_ok(&self, account: &str, what: &str) {
        let out = self.run(&[account, "setup", "--json"]);
        assert!(
            out.status.success(),
            "{what}: {account} setup failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

/// Output with a bound: a hung call fails the test instead of hanging it.
fn common_output(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..600 {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    out
}

/// Runs `work` over and over on a thread until the returned guard is dropped.
struct Looping {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Looping {
    fn start(mut work: impl FnMut() + Send + 'static) -> Looping {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::SeqCst) {
                work();
                n += 1;
            }
            n
        });
        Looping {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Looping {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// Item 3: `brokers stop` may stop a broker the moment it is ready and idle, before the caller
// that started it asked it anything. The caller starts another; it never fails for that.
#[test]
fn cold_starts_racing_brokers_stop_never_fail() {
    let Some(w) = World::new() else { return };
    // Several stoppers, and an app-server slow to start: their probes queue up while a new
    // broker initialises and are answered the moment it is ready, so their `broker/shutdown`
    // lands right where the caller asks its first question.
    let stoppers: Vec<Looping> = (0..3)
        .map(|_| {
            let mut c = w.cas(&["brokers", "stop"]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            Looping::start(move || {
                let _ = c.status();
            })
        })
        .collect();
    for i in 0..24 {
        let account = if i % 2 == 0 { "alice" } else { "bob" };
        let out = common_output({
            let mut c = w.cas(&[account, "setup", "--json"]);
            c.env("FAKE_CODEX_STARTUP_MS", "300");
            c
        });
        assert!(
            out.status.success(),
            "call {i}: {account} setup failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let stops: usize = stoppers.into_iter().map(Looping::finish).sum();
    assert!(stops > 5, "the stoppers ran {stops} times");
}

// Item 4 (client side): the runtime folder removed in the middle of calls is made again, and
// the calls carry on.
#[test]
fn the_runtime_folder_removed_mid_call_is_made_again() {
    let Some(w) = World::new() else { return };
    let rt = w.runtime.clone().unwrap();
    for i in 0..16u64 {
        let child = w
            .cas(&["alice", "setup", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // At a different moment of each call: before the lock, while the broker starts, after.
        std::thread::sleep(Duration::from_millis((i * 37) % 300));
        let _ = std::fs::remove_dir_all(&rt);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "call {i}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    w.setup_ok("alice", "after");
    let mode = std::fs::metadata(&rt).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// The uid and gid of the second local user, or None (with a visible skip) when the tests cannot
/// act as one.
fn peer_user() -> Option<(u32, u32)> {
    if !nix::unistd::getuid().is_root() {
        skip!("not root; the planted-state tests need to act as a second local user");
        return None;
    }
    if installed("setpriv").is_none() {
        skip!("setpriv is not installed; cannot act as a second local user");
        return None;
    }
    let Ok(Some(u)) = nix::unistd::User::from_name(PEER_USER) else {
        skip!(
            "no local user {PEER_USER} (`useradd --system {PEER_USER}` creates it; .ci/run does)"
        );
        return None;
    };
    let (uid, gid) = (u.uid.as_raw(), u.gid.as_raw());
    // The planted broker is a node script: node must be somewhere that user can run it.
    let node_runs = as_peer(uid, gid, "node")
        .args(["-e", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_runs {
        skip!("{PEER_USER} cannot run node (installed under a private folder?)");
        return None;
    }
    Some((uid, gid))
}

/// A command run as the second local user.
fn as_peer(uid: u32, gid: u32, program: &str) -> Command {
    // The test's own PATH decides which node (the other user gets a plain PATH).
    let program = match program {
        "node" => {
            installed("node").map_or_else(|| program.to_string(), |p| p.display().to_string())
        }
        _ => program.to_string(),
    };
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(&program)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null());
    c
}

/// A broker look-alike run by the other user: it records every connection and every byte it
/// is sent, and never answers.
const PLANTED_BROKER: &str = r#"
import net from 'node:net';
import fs from 'node:fs';
const [sock, log] = process.argv.slice(2);
net.createServer((c) => {
  fs.appendFileSync(log, 'connect\n');
  c.on('data', (d) => fs.appendFileSync(log, 'data ' + JSON.stringify(String(d)) + '\n'));
  c.on('error', () => {});
}).listen(sock, () => fs.appendFileSync(log, 'listening\n'));
"#;

struct Planted {
    server: Child,
    log: PathBuf,
    /// Where the planted lock link points: must never be created.
    target: PathBuf,
}

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Planted {
    fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("data"))
            .map(String::from)
            .collect()
    }
}

/// The victim's runtime folder left loose (TMPDIR and $TMPDIR/codex-as-UID both 1777), and the
/// other user plants there a listening socket named like alice's broker and a lock file that is
/// a link into one of the victim's private folders.
fn plant(w: &World, uid: u32, gid: u32) -> (PathBuf, Planted) {
    let root = w.sb.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = root.join("tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let me = nix::unistd::getuid().as_raw();
    let rt = tmp.join(format!("codex-as-{me}"));
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let private = root.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let evil = root.join("evil");
    std::fs::create_dir(&evil).unwrap();
    std::os::unix::fs::chown(&evil, Some(uid), Some(gid)).unwrap();
    let script = evil.join("broker.mjs");
    std::fs::write(&script, PLANTED_BROKER).unwrap();

    let key = broker_key(&w.home("alice"));
    let sock = rt.join(format!("{key}-0badf00d.sock"));
    let log = evil.join("received.log");
    let target = private.join("made-through-the-lock");
    let server = as_peer(uid, gid, "node")
        .arg(&script)
        .arg(&sock)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ln = as_peer(uid, gid, "ln")
        .arg("-s")
        .arg(&target)
        .arg(rt.join(format!("{key}.lock")))
        .status()
        .unwrap();
    assert!(ln.success(), "the other user plants the lock link");
    let planted = Planted {
        server,
        log,
        target,
    };
    assert!(
        wait_until(10, || std::fs::read_to_string(&planted.log)
            .is_ok_and(|l| l.contains("listening"))),
        "the planted broker listens"
    );
    (rt, planted)
}

// Item 5, loose folder: it was writable by others, so nothing in it is trusted.
#[test]
fn a_broker_planted_in_a_loose_runtime_folder_gets_nothing() {
    let Some((uid, gid)) = peer_user() else {
        return;
    };
    let Some(mut w) = World::new() else { return };
    w.runtime = None;
    let (rt, planted) = plant(&w, uid, gid);
    let out = w.run(&["alice", "setup", "--json"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received(), Vec::<String>::new(), "nothing was sent");
    assert!(!planted.target.exists(), "the lock link was never followed");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("writable by others"),
        "says why: {}",
        stderr(&out)
    );
    let mode = std::fs::symlink_metadata(&rt).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "a fresh private folder");
    for args in [&["brokers"][..], &["brokers", "stop", "--all"]] {
        let out = w.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received(), Vec::<String>::new(), "nothing was sent");
    assert!(!planted.target.exists(), "the lock link was never followed");
}

// Item 5, tightened folder: planted while loose, then made 0700 (as codex-as used to do, or the
// user by hand). The folder is ours now; what was planted in it still is not.
#[test]
fn a_broker_planted_before_the_folder_was_tightened_gets_nothing() {
    let Some((uid, gid)) = peer_user() else {
        return;
    };
    let Some(mut w) = World::new() else { return };
    w.runtime = None;
    let (rt, planted) = plant(&w, uid, gid);
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = w.run(&["alice", "setup", "--json"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received(), Vec::<String>::new(), "nothing was sent");
    assert!(!planted.target.exists(), "the lock link was never followed");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = w.run(&["brokers", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let refused: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "the planted one is shown refused: {rows}");
    assert!(
        refused[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains(&format!("uid {uid}"))),
        "{rows}"
    );
    let out = w.run(&["brokers", "stop", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received(), Vec::<String>::new(), "nothing was sent");
    assert!(!planted.target.exists(), "the lock link was never followed");
}

// Item 6: dotfiles managers keep config.toml as a link (often a chain of them).
#[test]
fn add_and_remove_keep_a_linked_config_a_link() {
    let s = Sandbox::new();
    let dots = s.path().join("dotfiles/codex-as");
    std::fs::create_dir_all(&dots).unwrap();
    let real = dots.join("config.toml");
    std::fs::write(&real, "# my accounts\norder = [\"work\"]\n").unwrap();
    let cfg = s.config_file();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    // config.toml -> stow.toml -> ../../dotfiles/codex-as/config.toml
    std::os::unix::fs::symlink(
        "../../dotfiles/codex-as/config.toml",
        cfg.with_file_name("stow.toml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("stow.toml", &cfg).unwrap();
    let out = s.run(&["add", "work", "--home", "/srv/work"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.run(&["add", "ci", "--home", "/srv/ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.run(&["remove", "ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for link in [&cfg, &cfg.with_file_name("stow.toml")] {
        let meta = std::fs::symlink_metadata(link).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "{} stays a link",
            link.display()
        );
    }
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.starts_with("# my accounts\n"), "{text}");
    assert!(
        text.contains("/srv/work") && !text.contains("/srv/ci"),
        "{text}"
    );
    let out = s.run(&["which", "work"]);
    assert_eq!(stdout(&out).trim(), "/srv/work");
}

// Item 7: Codex runs command substitution found in CODEX_HOME, so such a home is refused.
#[test]
fn homes_codex_would_run_are_refused_clearly() {
    let s = Sandbox::new();
    s.with_fake_codex();
    for (name, home) in [("subst", "a$(touch pwned)b"), ("tick", "a`touch pwned`b")] {
        let dir = s.path().join("homes").join(home);
        std::fs::create_dir_all(&dir).unwrap();
        let out = s.run(&["add", name, "--home", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("runs as a command"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
        assert!(!s.config_file().exists(), "nothing written");
    }
    // One configured before this release: refused wherever it would reach Codex, listed with a
    // warning.
    let dir = s.path().join("homes/a$(touch pwned)b");
    s.write_config(&format!(
        "[accounts.old]\nhome = {:?}\n",
        dir.to_str().unwrap()
    ));
    for args in [
        &["old", "--", "sh", "-c", "true"][..],
        &["login", "old"],
        &["env", "old"],
        &["which", "old"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("runs as a command"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = s.run(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: account 'old' is refused"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["list", "--names"]);
    assert!(!stdout(&out).contains("old"), "{}", stdout(&out));
    let pwned: Vec<_> = crate::support::proc::entries_under(s.path())
        .into_iter()
        .filter(|p| p.ends_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "{pwned:?}");
}
