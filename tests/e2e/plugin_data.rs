//! The plugin's brokers that a Claude Code session started: the plugin keeps their state in
//! Claude Code's data folder for it (`<config>/plugins/data/<plugin data>/state/`), and
//! `brokers` and `doctor` run from an ordinary shell find them there, saying where, and refuse
//! such a folder that another user could have written.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;

use crate::skip;
use crate::support::oracle::plugin_state_dir;
use crate::support::{Sandbox, stderr, stdout};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

struct World {
    sb: Sandbox,
    /// The workspace codex-as is run in (not a git repository: the plugin takes the folder).
    ws: PathBuf,
    /// A Claude Code config folder of its own (CLAUDE_CONFIG_DIR).
    cfg: PathBuf,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in ["alice", "bob"] {
            let home = sb.account_dir(a);
            chmod(&home, 0o700);
            let auth = home.join("auth.json");
            std::fs::write(
                &auth,
                r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
            )
            .unwrap();
            chmod(&auth, 0o600);
        }
        let ws = std::fs::canonicalize(sb.mkdir("ws")).unwrap();
        let cfg = sb.mkdir("claude-config");
        let run = sb.mkdir("run");
        chmod(&run, 0o700);
        World { sb, ws, cfg }
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    /// codex-as from an ordinary shell in the workspace, on alice, with Claude Code's config in
    /// `cfg` (None: the default ~/.claude).
    fn cas(&self, cfg: Option<&Path>, args: &[&str]) -> Command {
        let mut c = self.sb.codex_as();
        c.current_dir(&self.ws)
            .env("CODEX_HOME", self.home("alice"))
            .env("CODEX_AS_RUNTIME_DIR", self.sb.path().join("run"))
            .env("SHELL", "/bin/bash")
            .args(args);
        if let Some(cfg) = cfg {
            c.env("CLAUDE_CONFIG_DIR", cfg);
        }
        c
    }

    fn brokers_json(&self, cfg: Option<&Path>) -> Vec<Value> {
        let out = self.cas(cfg, &["brokers", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
            .as_array()
            .unwrap()
            .clone()
    }

    fn brokers_table(&self, cfg: Option<&Path>) -> String {
        let out = self.cas(cfg, &["brokers"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    }

    /// `doctor --json`'s findings of the plugin area.
    fn plugin_findings(&self, cfg: Option<&Path>) -> Vec<Value> {
        let out = self.cas(cfg, &["doctor", "--json"]).output().unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["area"] == "plugin")
            .cloned()
            .collect()
    }

    /// A live broker stand-in whose environment says it serves `account`, as the plugin's own
    /// broker process inherits CODEX_HOME from the session that started it.
    fn live_broker(&self, account: &str) -> Child {
        self.sb
            .command("sleep")
            .arg("60")
            .env("CODEX_HOME", self.home(account))
            .spawn()
            .unwrap()
    }

    /// This workspace's broker.json in `<plugins>/data/<data>/state/`, as plugin 1.0.5 writes it
    /// (legacy keys, no account) in folders made the way Claude Code and the plugin make them
    /// (mkdir under umask 022). Returns the state root.
    fn plant(&self, plugins: &Path, data: &str, broker: &Child) -> PathBuf {
        let root = plugins.join("data").join(data).join("state");
        let state = plugin_state_dir(&root, &self.ws);
        std::fs::create_dir_all(&state).unwrap();
        for d in [
            plugins.to_path_buf(),
            plugins.join("data"),
            plugins.join("data").join(data),
        ] {
            chmod(&d, 0o755);
        }
        chmod(&root, 0o755);
        chmod(&state, 0o755);
        let session = self.sb.mkdir(&format!("tmp/cxc-{data}"));
        let json = serde_json::json!({
            "endpoint": format!("unix:{}", session.join("broker.sock").display()),
            "pid": broker.id(),
            "pidFile": session.join("broker.pid"),
            "logFile": session.join("broker.log"),
            "sessionDir": session,
        });
        let file = state.join("broker.json");
        std::fs::write(&file, format!("{json:#}\n")).unwrap();
        chmod(&file, 0o644);
        root
    }
}

fn plugin_rows(rows: &[Value]) -> Vec<&Value> {
    rows.iter().filter(|r| r["owner"] == "plugin").collect()
}

#[test]
fn a_broker_a_claude_code_session_started_is_listed_and_reported() {
    let w = World::new();
    let mut inline = w.live_broker("bob");
    let mut market = w.live_broker("bob");
    let inline_root = w.plant(&w.cfg.join("plugins"), "codex-inline", &inline);
    let default_plugins = w.sb.home().join(".claude/plugins");
    let market_root = w.plant(&default_plugins, "codex-openai-codex", &market);

    let rows = w.brokers_json(Some(&w.cfg));
    let table = w.brokers_table(Some(&w.cfg));
    let findings = w.plugin_findings(Some(&w.cfg));
    // Claude Code's default config folder when CLAUDE_CONFIG_DIR is not set.
    let default_rows = w.brokers_json(None);
    let default_findings = w.plugin_findings(None);
    for c in [&mut inline, &mut market] {
        let _ = c.kill();
        let _ = c.wait();
    }

    let found = plugin_rows(&rows);
    assert_eq!(found.len(), 1, "{rows:#?}");
    let row = found[0];
    assert_eq!(row["pid"], inline.id(), "{row:#}");
    assert_eq!(row["account"], "bob", "{row:#}");
    assert_eq!(row["stateRoot"]["path"], inline_root.display().to_string());
    assert_eq!(row["stateRoot"]["source"], "claude-code");
    assert_eq!(row["stateRoot"]["pluginData"], "codex-inline");
    assert!(
        row["note"]
            .as_str()
            .is_some_and(|n| n.contains("(account from process environment)")),
        "{row:#}"
    );
    assert!(
        table.contains(&format!(
            "found under {} (Claude Code's data folder of plugin codex-inline)",
            inline_root.display()
        )),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("plugin")
            && l.contains("bob")
            && l.contains(&inline.id().to_string())),
        "{table}"
    );

    assert_eq!(findings.len(), 1, "{findings:#?}");
    let problem = findings[0]["problem"].as_str().unwrap();
    assert!(problem.contains("serves 'bob'"), "{problem}");
    assert!(problem.contains("plugin codex-inline"), "{problem}");
    assert!(
        findings[0]["fix"]
            .as_str()
            .unwrap()
            .starts_with("codex-as alice task"),
        "{findings:#?}"
    );

    let found = plugin_rows(&default_rows);
    assert_eq!(found.len(), 1, "{default_rows:#?}");
    assert_eq!(found[0]["pid"], market.id());
    assert_eq!(
        found[0]["stateRoot"]["path"],
        market_root.display().to_string()
    );
    assert_eq!(found[0]["stateRoot"]["pluginData"], "codex-openai-codex");
    assert_eq!(default_findings.len(), 1, "{default_findings:#?}");
    assert!(
        default_findings[0]["problem"]
            .as_str()
            .unwrap()
            .contains("plugin codex-openai-codex"),
        "{default_findings:#?}"
    );
}

/// A data folder writable by others, and one owned by another user (when the test can make
/// one): refused, and the broker recorded in it is neither listed nor reported as serving anyone.
#[test]
fn a_data_folder_another_user_could_have_written_is_refused() {
    let w = World::new();
    let mut broker = w.live_broker("bob");
    let plugins = w.cfg.join("plugins");
    let loose = w.plant(&plugins, "codex-loose", &broker);
    chmod(&loose, 0o777);
    let mut cases = vec![(loose, "writable by others".to_string(), "chmod 700")];
    let peer = if nix::unistd::getuid().is_root() {
        nix::unistd::User::from_name("codexas-peer").ok().flatten()
    } else {
        None
    };
    match peer {
        Some(u) => {
            let theirs = w.plant(&plugins, "codex-theirs", &broker);
            std::os::unix::fs::chown(theirs.parent().unwrap(), Some(u.uid.as_raw()), None).unwrap();
            cases.push((theirs, format!("owned by uid {}", u.uid), "mv"));
        }
        None => {
            skip!(
                "not root, or no local user codexas-peer: cannot make a folder another user owns"
            );
        }
    }

    let rows = w.brokers_json(Some(&w.cfg));
    let findings = w.plugin_findings(Some(&w.cfg));
    let _ = broker.kill();
    let _ = broker.wait();

    let found = plugin_rows(&rows);
    assert_eq!(found.len(), cases.len(), "{rows:#?}");
    assert!(
        found
            .iter()
            .all(|r| r["state"] == "refused" && r["pid"].is_null() && r["account"].is_null()),
        "{rows:#?}"
    );
    assert_eq!(findings.len(), cases.len(), "{findings:#?}");
    for (root, why, fix) in &cases {
        let row = found
            .iter()
            .find(|r| r["stateRoot"]["path"] == root.display().to_string())
            .unwrap_or_else(|| panic!("{} not listed: {rows:#?}", root.display()));
        let reason = row["stateRoot"]["refused"].as_str().unwrap_or_default();
        assert!(reason.contains(why.as_str()), "{row:#}");
        let finding = findings
            .iter()
            .find(|f| f["subject"] == root.display().to_string())
            .unwrap_or_else(|| panic!("{} not reported: {findings:#?}", root.display()));
        assert!(
            finding["problem"].as_str().unwrap().contains(why.as_str()),
            "{finding:#}"
        );
        assert!(
            finding["fix"].as_str().unwrap().starts_with(fix),
            "{finding:#}"
        );
    }
    assert!(
        !findings
            .iter()
            .any(|f| f["problem"].as_str().unwrap_or_default().contains("serves")),
        "{findings:#?}"
    );
}
