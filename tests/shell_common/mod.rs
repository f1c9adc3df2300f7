//! A sandbox for driving the built binary through real shells: its own HOME, config and PATH,
//! every process in its own process group (killed when it is done or times out).

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_codex-as");

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub config: PathBuf,
    /// Holds a fake `codex` that prints its CODEX_HOME and arguments.
    pub bin: PathBuf,
}

pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
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

impl Sandbox {
    /// Accounts: `default` (~/.codex), `alice` (configured, ~/alice-home), `bob` (~/.codex-bob).
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        // Canonical, so paths compare equal to the CODEX_HOME codex-as sets.
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        for d in [".codex", ".codex-bob", "alice-home"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let codex = bin.join("codex");
        std::fs::write(
            &codex,
            "#!/bin/sh\nprintf 'codex home=%s args=%s\\n' \"$CODEX_HOME\" \"$*\"\n",
        )
        .unwrap();
        let mut perm = std::fs::metadata(&codex).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&codex, perm).unwrap();
        let config = root.join("config.toml");
        let sb = Sandbox {
            dir,
            root,
            home,
            config,
            bin,
        };
        sb.write_config(&[("alice", "~/alice-home")]);
        sb
    }

    pub fn write_config(&self, accounts: &[(&str, &str)]) {
        let mut text = String::new();
        for (name, home) in accounts {
            text.push_str(&format!(
                "[accounts.{}]\nhome = {}\n",
                toml_str(name),
                toml_str(home)
            ));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn path_var(&self) -> String {
        let bin_dir = Path::new(BIN).parent().unwrap();
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            bin_dir.display(),
            self.bin.display()
        )
    }

    /// `program` with only the sandbox's environment, run from the sandbox root.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", self.path_var())
            .env("XDG_CONFIG_HOME", self.root.join("xdg"))
            .env("XDG_DATA_HOME", self.root.join("xdg-data"))
            .env("CODEX_AS_CONFIG", &self.config)
            .env("TERM", "dumb")
            .env("LANG", "C.UTF-8")
            .current_dir(&self.root)
            .stdin(Stdio::null());
        c
    }

    /// The canonical path of a home given relative to the sandbox HOME.
    pub fn home_path(&self, rel: &str) -> String {
        self.home.join(rel).to_str().unwrap().to_string()
    }

    /// Files named `name` anywhere in the sandbox.
    pub fn find(&self, name: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if e.file_name() == name {
                    found.push(p.clone());
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(p);
                }
            }
        }
        found
    }
}

/// Runs `cmd` in its own process group with a deadline; whatever it left behind is killed.
pub fn run(cmd: &mut Command) -> Out {
    run_timeout(cmd, Duration::from_secs(30))
}

pub fn run_timeout(cmd: &mut Command, limit: Duration) -> Out {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("timed out after {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Stray children (a zpty's shell) would keep the pipes open.
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    Out {
        status,
        stdout: String::from_utf8_lossy(&t1.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
    }
}

/// Whether `program` is installed; prints a visible SKIP line when it is not.
pub fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file());
    if !found {
        skip(&format!("SKIP: {program} is not installed"));
    }
    found
}

/// The init for `shell`, as the binary prints it.
pub fn init(sb: &Sandbox, shell: &str, extra: &[&str]) -> String {
    let out = run(sb.cmd(BIN).arg("init").arg(shell).args(extra));
    out.ok();
    assert_eq!(out.stderr, "");
    out.stdout
}

/// Says why a check did not run, past the test harness's output capture, so the line shows
/// even when the test passes.
pub fn skip(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
