//! The local model stand-in (tests/fixtures/model-stub.mjs): a Responses API on 127.0.0.1 that
//! lets the real `codex app-server` run whole turns offline. It answers each turn with
//! `echo: <last user text> (user turns seen: N)` and a `reasoning` item whose encrypted content
//! names the caller's key ([`fingerprint`]), records every request, and answers HTTP 429
//! usage_limit_reached for keys marked limited.
//!
//! A home made with [`ModelStub::account_home`] talks to the stub with an API-key login, the way
//! `codex login --with-api-key` leaves it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::sandbox::{Sandbox, fixtures, toml_str};

/// The model every stub-backed home asks for: one both Codex 0.169 and 0.171 know, so they send
/// their reasoning settings and ask for `reasoning.encrypted_content`.
pub const MODEL: &str = "gpt-5.5";

/// The provider name stub-backed homes use.
pub const PROVIDER: &str = "stub";

static STUBS: AtomicUsize = AtomicUsize::new(0);

/// The short fingerprint the stub records instead of a key (first 12 hex of its SHA-256).
pub fn fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// A running stub; the node process ends when this is dropped (or when the test process dies:
/// it watches its stdin and the parent pid).
pub struct ModelStub {
    child: Child,
    // Held open only so the stub sees end-of-file when we go away.
    _stdin: Option<ChildStdin>,
    url: String,
    /// The folder holding the request log and the limited-keys file.
    pub dir: PathBuf,
}

impl ModelStub {
    /// Starts a stub whose files live in a fresh folder of the sandbox.
    pub fn start(sb: &Sandbox) -> ModelStub {
        let n = STUBS.fetch_add(1, Ordering::Relaxed);
        let dir = sb.mkdir(&format!("model-stub-{n}"));
        Self::start_in(&dir)
    }

    /// Starts a stub whose files live in `dir`.
    pub fn start_in(dir: &Path) -> ModelStub {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new("node")
            .arg(fixtures().join("model-stub.mjs"))
            .arg("--log")
            .arg(dir.join("requests.jsonl"))
            .arg("--limited")
            .arg(dir.join("limited"))
            .args(["--parent-pid", &std::process::id().to_string()])
            .args(["--max-seconds", "900"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node for the model stub: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the model stub did not say where it listens within 20 s");
            }
        };
        let Some(url) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the model stub's first line is {line:?}, not `listening URL`");
        };
        ModelStub {
            _stdin: child.stdin.take(),
            url: url.to_owned(),
            dir: dir.to_owned(),
            child,
        }
    }

    /// The provider's `base_url` (ends in `/v1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("requests.jsonl")
    }

    /// Every request so far, oldest first: `{n, time, method, path, key, body}` where `key` is
    /// the [`fingerprint`] of the bearer key and `body` the parsed JSON body.
    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The bodies of the model requests (`POST .../responses`) made with `key`, oldest first.
    pub fn turn_requests(&self, key: &str) -> Vec<Value> {
        let fp = fingerprint(key);
        self.requests()
            .into_iter()
            .filter(|r| {
                r["method"] == "POST"
                    && r["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/responses"))
                    && r["key"] == fp.as_str()
            })
            .map(|r| r["body"].clone())
            .collect()
    }

    /// From now on, model requests with `key` get HTTP 429 usage_limit_reached (or, with
    /// `false`, are served again). Takes effect with the next request.
    pub fn set_limited(&self, key: &str, limited: bool) {
        let path = self.dir.join("limited");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let mut keys: Vec<&str> = old.lines().filter(|k| *k != key).collect();
        if limited {
            keys.push(key);
        }
        let mut text = keys.join("\n");
        text.push('\n');
        // Atomic, so the stub never reads half a list.
        let tmp = self.dir.join("limited.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// config.toml text that points a Codex home at this stub (no retries, so a 429 fails the
    /// turn at once).
    pub fn config_toml(&self) -> String {
        format!(
            "model = {model}\nmodel_provider = {provider}\n\n[model_providers.{provider_key}]\nname = {provider}\nbase_url = {url}\nwire_api = \"responses\"\nrequires_openai_auth = true\nrequest_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 20000\n",
            model = toml_str(MODEL),
            provider = toml_str(PROVIDER),
            provider_key = PROVIDER,
            url = toml_str(&self.url),
        )
    }

    /// Makes `home` (created if missing) an account home served by this stub: its config.toml
    /// names the stub, its auth.json holds `key` as `codex login --with-api-key` writes it.
    pub fn account_home(&self, home: &Path, key: &str) {
        std::fs::create_dir_all(home).unwrap();
        write_private(&home.join("config.toml"), &self.config_toml());
        write_api_key_login(home, key);
    }
}

/// An account of the sandbox whose home the stub serves.
#[derive(Clone, Debug)]
pub struct StubAccount {
    pub name: String,
    /// `~/.codex-NAME` (a conventional account: codex-as finds it without a config entry).
    pub home: PathBuf,
    /// `sk-NAME`: its requests show in the stub's log as `fingerprint(key)`.
    pub key: String,
}

impl ModelStub {
    /// Conventional accounts `~/.codex-NAME`, each logged in with key `sk-NAME` and served by
    /// this stub.
    pub fn accounts(&self, sb: &Sandbox, names: &[&str]) -> Vec<StubAccount> {
        names
            .iter()
            .map(|name| {
                let home = sb.account_dir(name);
                let key = format!("sk-{name}");
                self.account_home(&home, &key);
                StubAccount {
                    name: (*name).to_owned(),
                    home,
                    key,
                }
            })
            .collect()
    }
}

/// What people typed, in a request to the model: the user messages' texts, without the
/// `<...>` context blocks Codex adds.
pub fn user_texts(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .filter(|t| !t.trim_start().starts_with('<'))
        .collect()
}

/// Companion runs across two stub-served accounts: a sandbox running `codex`, accounts `a` and
/// `b` (`~/.codex-a`, `~/.codex-b`) logged in with the two keys, a plugin, and a git workspace
/// the runs start in.
pub struct StubWorld {
    // Dropped before the stub: the sandbox's processes end while their model still answers.
    pub sb: Sandbox,
    pub stub: ModelStub,
    pub plugin: PathBuf,
    /// The workspace, canonical (the path the plugin and Codex record).
    pub ws: PathBuf,
}

impl StubWorld {
    /// The world of a run on accounts `a` and `b` (API keys `keys`) with the current real plugin
    /// (None when there is none: a skip).
    pub fn with_current_plugin(codex: &Path, keys: [&str; 2]) -> Option<StubWorld> {
        let plugin = super::peers::current_plugin()?;
        Some(StubWorld::new(codex, &plugin.root, keys))
    }

    pub fn new(codex: &Path, plugin: &Path, [key_a, key_b]: [&str; 2]) -> StubWorld {
        let sb = Sandbox::new();
        sb.with_codex(codex);
        let stub = ModelStub::start(&sb);
        stub.account_home(&sb.account_dir("a"), key_a);
        stub.account_home(&sb.account_dir("b"), key_b);
        let ws = sb.mkdir("ws");
        let git = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&ws)
            .status();
        assert!(git.is_ok_and(|s| s.success()), "git init");
        StubWorld {
            ws: std::fs::canonicalize(&ws).unwrap(),
            sb,
            stub,
            plugin: plugin.to_path_buf(),
        }
    }

    /// The home of `account`, canonical.
    pub fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    /// `codex-as ARGS` in the workspace with the world's plugin and its own runtime folder,
    /// whatever its exit.
    pub fn run(&self, args: &[&str]) -> Output {
        self.sb
            .codex_as()
            .env("CODEX_AS_PLUGIN_ROOT", &self.plugin)
            .env("CODEX_AS_RUNTIME_DIR", self.sb.path().join("rt"))
            .current_dir(&self.ws)
            .args(args)
            .output()
            .unwrap()
    }

    /// The plugin's job records in the sandbox, oldest first.
    pub fn jobs(&self) -> Vec<Value> {
        plugin_jobs(&self.sb)
    }
}

/// The plugin's job records in `sb`, oldest first.
pub fn plugin_jobs(sb: &Sandbox) -> Vec<Value> {
    let mut jobs: Vec<Value> = sb
        .find("jobs")
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // The plugin writes its records in place: one may be half written right now.
        .filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok())
        .collect();
    jobs.sort_by_key(|j| j["createdAt"].as_str().unwrap_or_default().to_string());
    jobs
}

/// auth.json exactly as `codex login --with-api-key` leaves it (0.169 and 0.171): pretty
/// printed, no trailing newline, mode 0600.
pub fn write_api_key_login(home: &Path, key: &str) {
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "auth_mode": "apikey",
        "OPENAI_API_KEY": key,
    }))
    .unwrap();
    write_private(&home.join("auth.json"), &text);
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for ModelStub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `home` has a rollout of `thread`.
pub fn holds(home: &Path, thread: &str) -> bool {
    let mut stack = vec![home.join("sessions")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.starts_with("rollout-") && name.contains(thread) {
                return true;
            }
        }
    }
    false
}
