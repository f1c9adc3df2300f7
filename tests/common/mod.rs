//! A sandbox for end-to-end tests: its own HOME, config, TMPDIR and PATH, so the built binary
//! never sees the developer's real accounts.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_codex-as");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub struct Sandbox {
    // Short path under /tmp: unix socket paths must stay under ~104 bytes.
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("cxa")
            .tempdir_in("/tmp")
            .unwrap();
        let s = Sandbox { root };
        for d in ["home", "config", "tmp", "bin"] {
            std::fs::create_dir_all(s.path().join(d)).unwrap();
        }
        s
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }
    pub fn config_file(&self) -> PathBuf {
        self.path().join("config/codex-as/config.toml")
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.path().join("bin")
    }

    /// Creates `~/.codex-NAME` (a conventional account) and returns it.
    pub fn account_dir(&self, name: &str) -> PathBuf {
        let d = self.home().join(format!(".codex-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn write_config(&self, text: &str) {
        let p = self.config_file();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Puts the fake codex on this sandbox's PATH.
    pub fn with_fake_codex(&self) {
        let link = self.bin_dir().join("codex");
        if !link.exists() {
            std::os::unix::fs::symlink(fixtures().join("fake-codex/codex"), link).unwrap();
        }
    }

    /// A command with a clean environment: only what the sandbox gives it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("TMPDIR", self.path().join("tmp"))
            .env("PATH", self.path_var())
            .env("LANG", "C.UTF-8")
            .current_dir(self.path())
            .stdin(Stdio::null());
        c
    }

    pub fn path_var(&self) -> String {
        let bin_of_codex_as = Path::new(BIN).parent().unwrap();
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            self.bin_dir().display(),
            bin_of_codex_as.display()
        )
    }

    pub fn codex_as(&self) -> Command {
        self.command(BIN)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.codex_as().args(args).output().unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Where a program is, if installed (real shells and tools are used when present).
pub fn installed(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl Drop for Sandbox {
    /// Ends every process started inside the sandbox (brokers, app-servers, companions,
    /// background workers), found by the HOME they inherited, so no test leaves one running.
    fn drop(&mut self) {
        let marker = format!("HOME={}", self.home().display());
        for _round in 0..2 {
            let pids = processes_with_env(&marker);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill(2) with a pid we just read; no memory is involved.
                unsafe {
                    libc_kill(pid, 9);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Pids of this user's processes whose environment holds `entry` exactly (Linux /proc).
pub fn processes_with_env(entry: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// True while a process exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `cond` every 20 ms up to `secs` seconds: for waiting on events that have no signal
/// (a process exiting on its own), never to measure speed.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

/// Says why a check did not run, past the test harness's output capture, so the line shows
/// even when the test passes.
pub fn skip(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The plugin roots to run companion scenarios against: the fixture in this repo, and the real
/// plugin when CODEX_PLUGIN_CC_DIR names a checkout of openai/codex-plugin-cc.
pub fn plugins() -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    let fixture = fixtures().join("plugin");
    if fixture.join("scripts/codex-companion.mjs").is_file() {
        out.push(("fixture", fixture));
    } else {
        skip("SKIP: the plugin fixture is missing");
    }
    match std::env::var_os("CODEX_PLUGIN_CC_DIR").map(PathBuf::from) {
        Some(d)
            if d.join("plugins/codex/scripts/codex-companion.mjs")
                .is_file() =>
        {
            out.push(("real plugin", d.join("plugins/codex")))
        }
        _ => skip(
            "SKIP: CODEX_PLUGIN_CC_DIR is not set to a checkout of openai/codex-plugin-cc; real-plugin runs skipped",
        ),
    }
    out
}

pub fn node_available() -> bool {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip("SKIP: node is not installed");
    }
    ok
}

/// Runs `test` once per available plugin root (nothing without node).
pub fn for_each_plugin(mut test: impl FnMut(&Path)) {
    if !node_available() {
        return;
    }
    for (name, root) in plugins() {
        eprintln!("-- against the {name}");
        test(&root);
    }
}

/// Runs `cmd` with `input` on its stdin (then closed) and collects its output.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
