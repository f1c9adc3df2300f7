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
