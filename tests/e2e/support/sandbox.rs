//! The one sandbox every end-to-end test runs in: a short private folder under /tmp holding its
//! own HOME, config, TMPDIR, XDG folders, runtime folder and PATH, so the built binary never sees
//! the developer's accounts. Dropping it ends every process the test started in it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::proc::{processes_mentioning, processes_with_env};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_codex-as");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The scripted fake Codex (its behaviour is chosen by markers in prompts and FAKE_CODEX_*).
pub fn fake_codex() -> PathBuf {
    fixtures().join("fake-codex/codex")
}

pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The sandbox folder (canonical, so paths compare equal to those codex-as prints).
    pub root: PathBuf,
    /// $HOME.
    pub home: PathBuf,
    /// The codex-as config file ($XDG_CONFIG_HOME/codex-as/config.toml).
    pub config: PathBuf,
    /// First on PATH: where a test puts its `codex`.
    pub bin: PathBuf,
    /// Processes a test started itself, ended and reaped on drop.
    children: Mutex<Vec<Child>>,
}

/// A TOML basic string: every value round-trips, whatever it contains.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        // Short path under /tmp: unix socket paths must stay under ~104 bytes.
        let dir = tempfile::Builder::new()
            .prefix("cxa")
            .tempdir_in("/tmp")
            .unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for d in [
            "home", "config", "tmp", "bin", "data", "cache", "state", "run",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(
            root.join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Sandbox {
            home: root.join("home"),
            config: root.join("config/codex-as/config.toml"),
            bin: root.join("bin"),
            root,
            dir,
            children: Mutex::new(Vec::new()),
        }
    }

    /// The shell tests' world: accounts `default` (~/.codex), `alice` (configured,
    /// ~/alice-home) and `bob` (~/.codex-bob), and a `codex` that prints its CODEX_HOME and
    /// arguments.
    pub fn with_shell_accounts() -> Sandbox {
        let sb = Sandbox::new();
        for d in [".codex", ".codex-bob", "alice-home"] {
            std::fs::create_dir_all(sb.home.join(d)).unwrap();
        }
        sb.write_script(
            "codex",
            "#!/bin/sh\nprintf 'codex home=%s args=%s\\n' \"$CODEX_HOME\" \"$*\"\n",
        );
        sb.write_accounts(&[("alice", "~/alice-home")]);
        sb
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
    /// A path inside the sandbox.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    /// A folder inside the sandbox, created if missing.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let d = self.at(rel);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
    pub fn home(&self) -> PathBuf {
        self.home.clone()
    }
    pub fn tmp(&self) -> PathBuf {
        self.at("tmp")
    }
    pub fn config_file(&self) -> PathBuf {
        self.config.clone()
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.bin.clone()
    }
    /// The canonical path of a home given relative to the sandbox HOME.
    pub fn home_path(&self, rel: &str) -> String {
        self.home.join(rel).to_str().unwrap().to_string()
    }
    /// The canonical path of something in the sandbox, as a string.
    pub fn canonical(&self, rel: &str) -> String {
        std::fs::canonicalize(self.at(rel))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// Creates `~/.codex-NAME` (a conventional account) and returns it.
    pub fn account_dir(&self, name: &str) -> PathBuf {
        let d = self.home.join(format!(".codex-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config.parent().unwrap()).unwrap();
        std::fs::write(&self.config, text).unwrap();
    }

    /// A config naming each (account, home).
    pub fn write_accounts(&self, accounts: &[(&str, &str)]) {
        let mut text = String::new();
        for (name, home) in accounts {
            text.push_str(&format!(
                "[accounts.{}]\nhome = {}\n",
                toml_str(name),
                toml_str(home)
            ));
        }
        self.write_config(&text);
    }

    /// An executable script in the sandbox's bin folder.
    pub fn write_script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    }

    /// Puts the fake codex on this sandbox's PATH.
    pub fn with_fake_codex(&self) {
        let link = self.bin.join("codex");
        if !link.exists() {
            std::os::unix::fs::symlink(fake_codex(), link).unwrap();
        }
    }

    /// Puts `codex` (a real Codex CLI) on this sandbox's PATH instead of any other.
    pub fn with_codex(&self, codex: &Path) {
        let link = self.bin.join("codex");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(codex, link).unwrap();
    }

    /// A command with a clean environment: only what the sandbox gives it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.at("config"))
            .env("XDG_DATA_HOME", self.at("data"))
            .env("XDG_CACHE_HOME", self.at("cache"))
            .env("XDG_STATE_HOME", self.at("state"))
            .env("XDG_RUNTIME_DIR", self.at("run"))
            .env("TMPDIR", self.tmp())
            .env("PATH", self.path_var())
            .env("TERM", "dumb")
            .env("LANG", "C.UTF-8")
            .current_dir(&self.root)
            .stdin(Stdio::null());
        c
    }

    pub fn path_var(&self) -> String {
        let bin_of_codex_as = Path::new(BIN).parent().unwrap();
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            self.bin.display(),
            bin_of_codex_as.display()
        )
    }

    pub fn codex_as(&self) -> Command {
        self.command(BIN)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.codex_as().args(args).output().unwrap()
    }

    /// Hands a process the test started to the sandbox, which ends it on drop.
    pub fn adopt(&self, child: Child) {
        self.children.lock().unwrap().push(child);
    }

    /// Files named `name` anywhere in the sandbox.
    pub fn find(&self, name: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            // Programs still running in the sandbox make and remove folders (temporary files,
            // a session's folder) while this walks: one gone by now is simply not there.
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if e.file_name() == name {
                    found.push(p.clone());
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                }
            }
        }
        found
    }

    /// Every process this test may have started: its own children, and processes (brokers,
    /// app-servers, background workers) that have this HOME or name this folder. Pid files are
    /// not trusted: a stale one may name someone else's process by now.
    fn leftovers(&self, children: &[Child]) -> Vec<i32> {
        let mut pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
        pids.extend(processes_with_env(&format!("HOME={}", self.home.display())));
        pids.extend(processes_mentioning(&self.root));
        pids.retain(|&p| p > 1 && p != std::process::id() as i32);
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for Sandbox {
    /// SIGTERM first, so brokers remove their sockets and reap their app-servers before the
    /// folder goes away, then SIGKILL whatever is left, twice (a dying broker's child may only
    /// show up once its parent is gone).
    fn drop(&mut self) {
        let mut children = std::mem::take(&mut *self.children.lock().unwrap());
        let pids = self.leftovers(&children);
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_millis(1000);
        while Instant::now() < deadline && pids.iter().any(|&p| super::alive(p as u32)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for _round in 0..2 {
            let pids = self.leftovers(&children);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for child in children.iter_mut() {
            let _ = child.wait();
        }
    }
}
