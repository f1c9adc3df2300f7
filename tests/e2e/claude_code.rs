//! Claude Code sessions on each project's account: codex-as's hook driven exactly as Claude Code
//! drives it (event JSON on stdin, a CLAUDE_ENV_FILE per hook), then each `/codex:*` command's
//! own line, taken from the real plugin's commands/*.md and agents/codex-rescue.md, run by bash
//! after sourcing the session's env files, as Claude Code runs Bash calls and `!` lines.
//!
//! Two projects on one machine: `pa` pinned to alice (API key login), `pb` pinned to bob
//! (ChatGPT login). The fake codex records the CODEX_HOME that served every request and writes
//! each thread's session file into the home that ran it: that is the evidence.
//!
//! Needs node and the real plugin 1.0.5 (support/peers.rs); a skip otherwise. One scenario goes
//! through the real Claude Code CLI, offline (CODEX_AS_CLAUDE_CODE; .ci/run installs it), and
//! one puts the real codex app-server behind the broker (CODEX_AS_REAL_CODEX), once with Codex's
//! own listener up for the account.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::skip;
use crate::support::model_stub::{plugin_jobs, user_texts};
use crate::support::peers::current_plugin;
use crate::support::{
    BIN, Sandbox, alive, have_node, output_with_stdin, processes_with_env, real_codexes, stderr,
    stdout, wait_until,
};

const SESSION_A: &str = "0a0a0a0a-0000-4000-8000-00000000000a";
const SESSION_B: &str = "0b0b0b0b-0000-4000-8000-00000000000b";

struct World {
    sb: Sandbox,
    plugin: PathBuf,
    pa: PathBuf,
    pb: PathBuf,
}

/// One Claude Code session: its id and the env files Claude Code would give each hook.
struct Session {
    id: &'static str,
    dir: PathBuf,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogLine {
    codex_home: PathBuf,
    method: String,
    #[serde(default)]
    text: Option<String>,
}

impl World {
    fn new() -> Option<World> {
        if !have_node() {
            return None;
        }
        let plugin = current_plugin()?.root;
        let sb = Sandbox::new();
        sb.with_fake_codex();
        let alice = sb.account_dir("alice");
        std::fs::write(
            alice.join("auth.json"),
            r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-alice-test"}"#,
        )
        .unwrap();
        let bob = sb.account_dir("bob");
        std::fs::write(
            bob.join("auth.json"),
            r#"{"auth_mode":"chatgpt","email":"bob@example.com","tokens":{"id_token":"x","access_token":"y","refresh_token":"z"}}"#,
        )
        .unwrap();
        let mut w = World {
            sb,
            plugin,
            pa: PathBuf::new(),
            pb: PathBuf::new(),
        };
        w.pa = w.project("pa", "alice");
        w.pb = w.project("pb", "bob");
        Some(w)
    }

    /// A git project with one commit and an uncommitted change (something to review), pinned.
    fn project(&self, name: &str, account: &str) -> PathBuf {
        let dir = self.sb.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(ok.status.success(), "git {args:?}: {}", stderr(&ok));
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "one\n").unwrap();
        git(&["add", "a.txt"]);
        git(&["commit", "-qm", "one"]);
        std::fs::write(dir.join("a.txt"), "two\n").unwrap();
        let out = self.cas_in(&dir, &["pin", account]);
        assert!(out.status.success(), "pin: {}", stderr(&out));
        dir
    }

    fn home(&self, account: &str) -> PathBuf {
        std::fs::canonicalize(self.sb.home().join(format!(".codex-{account}"))).unwrap()
    }

    fn runtime_dir(&self) -> PathBuf {
        self.sb.path().join("rt")
    }

    /// Claude Code's own environment, as its hooks and shells inherit it (no CLAUDE_PLUGIN_ROOT:
    /// Claude substitutes it into the text of commands instead).
    fn claude_env(&self, c: &mut Command) {
        c.env("CODEX_AS_PLUGIN_ROOT", &self.plugin)
            .env("CODEX_AS_RUNTIME_DIR", self.runtime_dir())
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .env("CLAUDECODE", "1");
    }

    fn cas_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = self.sb.codex_as();
        self.claude_env(&mut c);
        c.current_dir(dir).args(args).output().unwrap()
    }

    fn session(&self, id: &'static str) -> Session {
        let dir = self.sb.path().join("session-env").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        Session { id, dir }
    }

    /// Runs codex-as's hook for `event` as Claude Code does; returns its output.
    fn hook(&self, s: &Session, event: &str, cwd: &Path, extra: serde_json::Value) -> Output {
        self.hook_launched_with(s, event, cwd, extra, &[])
    }

    /// The same, with Claude Code launched with `launch_env` added to its environment.
    fn hook_launched_with(
        &self,
        s: &Session,
        event: &str,
        cwd: &Path,
        extra: serde_json::Value,
        launch_env: &[(&str, &str)],
    ) -> Output {
        let mut input = serde_json::json!({
            "session_id": s.id,
            "transcript_path": s.dir.join("transcript.jsonl"),
            "cwd": cwd,
            "hook_event_name": event,
        });
        if let (Some(obj), Some(more)) = (input.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        let mut c = self.sb.codex_as();
        self.claude_env(&mut c);
        c.envs(launch_env.iter().copied());
        c.current_dir(cwd).args(["claude", "hook"]);
        if let Some(file) = s.env_file_for(event) {
            if !file.exists() {
                std::fs::write(&file, "").unwrap();
            }
            c.env("CLAUDE_ENV_FILE", file);
        }
        let out = output_with_stdin(&mut c, input.to_string().as_bytes());
        assert!(out.status.success(), "hook {event}: {}", stderr(&out));
        out
    }

    /// The plugin's own lifecycle hook (hooks/hooks.json), which Claude Code runs beside ours.
    fn plugin_hook(&self, s: &Session, event: &str, cwd: &Path) {
        let input = serde_json::json!({
            "session_id": s.id,
            "transcript_path": s.dir.join("transcript.jsonl"),
            "cwd": cwd,
            "hook_event_name": event,
        });
        let mut c = self.sb.command("node");
        self.claude_env(&mut c);
        c.current_dir(cwd)
            .arg(self.plugin.join("scripts/session-lifecycle-hook.mjs"))
            .arg(event);
        if event == "SessionStart" {
            let file = s.dir.join("sessionstart-hook-1.sh");
            std::fs::write(&file, "").unwrap();
            c.env("CLAUDE_ENV_FILE", file);
        }
        let out = output_with_stdin(&mut c, input.to_string().as_bytes());
        assert!(
            out.status.success(),
            "plugin {event} hook: {}",
            stderr(&out)
        );
    }

    fn start(&self, s: &Session, cwd: &Path) {
        let out = self.hook(
            s,
            "SessionStart",
            cwd,
            serde_json::json!({"source": "startup"}),
        );
        assert_eq!(stdout(&out), "", "a good start is quiet");
        self.plugin_hook(s, "SessionStart", cwd);
    }

    fn end(&self, s: &Session, cwd: &Path) {
        self.plugin_hook(s, "SessionEnd", cwd);
        self.hook(s, "SessionEnd", cwd, serde_json::json!({"reason": "other"}));
    }

    /// The line of a command file that runs the companion (a `!` line or the one the model is
    /// told to run), with `${CLAUDE_PLUGIN_ROOT}` and `$ARGUMENTS` replaced in the text, as
    /// Claude Code does.
    fn line(&self, file: &str, subcommand: &str, arguments: &str) -> String {
        let text = std::fs::read_to_string(self.plugin.join(file)).unwrap();
        let head =
            format!("node \"${{CLAUDE_PLUGIN_ROOT}}/scripts/codex-companion.mjs\" {subcommand}");
        let start = text
            .find(&head)
            .unwrap_or_else(|| panic!("{file} has no `{head}` line"));
        let rest = &text[start..];
        let end = rest.find(['`', '\n']).unwrap_or(rest.len());
        // The agent's instructions end the command with a literal "...".
        let line = rest[..end].trim_end_matches(" ...");
        line.replace("${CLAUDE_PLUGIN_ROOT}", &self.plugin.to_string_lossy())
            .replace("$ARGUMENTS", arguments)
    }

    /// Runs `line` as Claude Code runs a Bash call or `!` line: bash, in `cwd`, after sourcing
    /// every env file of the session (SessionStart's in hook order, then CwdChanged's).
    fn bash(&self, s: &Session, cwd: &Path, line: &str) -> Output {
        let mut script = String::new();
        for f in [
            "sessionstart-hook-0.sh",
            "sessionstart-hook-1.sh",
            "cwdchanged-hook-0.sh",
        ] {
            let p = s.dir.join(f);
            if p.exists() {
                script.push_str(&format!(". '{}'\n", p.display()));
            }
        }
        script.push_str(line);
        let mut c = self.sb.command("bash");
        self.claude_env(&mut c);
        // Claude Code's launch environment may carry another account: it must not win.
        c.env("CODEX_HOME", self.sb.home().join(".codex-other"))
            .env("OPENAI_API_KEY", "sk-from-the-launch-environment")
            .current_dir(cwd)
            .arg("-c")
            .arg(script);
        c.output().unwrap()
    }

    fn log(&self) -> Vec<LogLine> {
        std::fs::read_to_string(self.sb.path().join("codex.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn served(&self, method: &str, tag: &str) -> Option<PathBuf> {
        self.log()
            .into_iter()
            .find(|l| l.method == method && l.text.as_deref().is_some_and(|t| t.contains(tag)))
            .map(|l| l.codex_home)
    }

    /// The homes whose app-servers served `method`, in the order they did.
    fn served_homes(&self, method: &str) -> Vec<PathBuf> {
        self.log()
            .into_iter()
            .filter(|l| l.method == method)
            .map(|l| l.codex_home)
            .collect()
    }

    /// Waits for a background job's request to reach an app-server (generous: every test of the
    /// binary runs at once, each with node processes).
    fn wait_served(&self, method: &str, tag: &str) -> PathBuf {
        if !wait_until(60, || self.served(method, tag).is_some()) {
            let jobs: Vec<String> = self
                .sb
                .find("jobs")
                .iter()
                .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    format!("{}:\n{text}", e.path().display())
                })
                .collect();
            panic!(
                "no {method} {tag} in {:?}\njob files:\n{}",
                self.log(),
                jobs.join("\n")
            );
        }
        self.served(method, tag).unwrap()
    }

    fn sessions_in(&self, account: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.home(account).join("sessions")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }

    fn project_of(&self, account: &str) -> &Path {
        if account == "alice" {
            &self.pa
        } else {
            &self.pb
        }
    }

    fn holders(&self, account: &str) -> usize {
        let out = self.cas_in(self.project_of(account), &["claude", "status"]);
        let text = stdout(&out);
        let prefix = format!("sessions holding {account}'s broker: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no holders line in {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    fn job_id(out: &Output) -> String {
        let text = stdout(out);
        text.split_whitespace()
            .find(|w| w.starts_with("task-") || w.starts_with("review-"))
            .map(|w| w.trim_end_matches('.').to_string())
            .unwrap_or_else(|| panic!("no job id in {text}{}", stderr(out)))
    }
}

impl Session {
    fn env_file_for(&self, event: &str) -> Option<PathBuf> {
        match event {
            "SessionStart" => Some(self.dir.join("sessionstart-hook-0.sh")),
            "CwdChanged" => Some(self.dir.join("cwdchanged-hook-0.sh")),
            _ => None,
        }
    }
}

/// Every /codex:* command, in two sessions at once, each on its project's account.
#[test]
fn every_codex_command_runs_on_the_projects_account() {
    let Some(w) = World::new() else { return };
    let (sa, sb) = (w.session(SESSION_A), w.session(SESSION_B));
    w.start(&sa, &w.pa);
    w.start(&sb, &w.pb);
    for (s, dir, account, login) in [
        (&sa, &w.pa, "alice", "\"authMethod\": \"apiKey\""),
        (&sb, &w.pb, "bob", "bob@example.com"),
    ] {
        let home = w.home(account);
        // /codex:setup: the model runs the line from commands/setup.md.
        let out = w.bash(s, dir, &w.line("commands/setup.md", "setup --json", ""));
        assert!(out.status.success(), "setup: {}", stderr(&out));
        assert!(stdout(&out).contains(login), "{account}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("\"loggedIn\": true"),
            "{}",
            stdout(&out)
        );

        // /codex:rescue: the subagent's one Bash call (agents/codex-rescue.md) with a task.
        let tag = format!("rescue-{account}");
        let other = if account == "alice" { "bob" } else { "alice" };
        let (mine, theirs) = (w.sessions_in(account).len(), w.sessions_in(other).len());
        let line = format!("{} \"{tag}\"", w.line("agents/codex-rescue.md", "task", ""));
        let out = w.bash(s, dir, &line);
        assert!(
            out.status.success(),
            "rescue: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(w.served("turn/start", &tag), Some(home.clone()), "{tag}");
        assert_eq!(
            w.sessions_in(account).len(),
            mine + 1,
            "the session file lands in {account}'s home"
        );
        assert_eq!(w.sessions_in(other).len(), theirs, "and not in {other}'s");

        // /codex:review: the line from commands/review.md, no arguments.
        let out = w.bash(s, dir, &w.line("commands/review.md", "review", ""));
        assert!(
            out.status.success(),
            "review: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let reviews: Vec<_> = w
            .log()
            .into_iter()
            .filter(|l| l.method == "review/start")
            .map(|l| l.codex_home)
            .collect();
        assert_eq!(reviews.last(), Some(&home), "review ran on {account}");

        // A background task, then /codex:status and /codex:cancel through their `!` lines.
        let tag = format!("background-{account} [[hang]]");
        let line = format!(
            "{} --background \"{tag}\"",
            w.line("agents/codex-rescue.md", "task", "")
        );
        let out = w.bash(s, dir, &line);
        assert!(
            out.status.success(),
            "background: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let job = World::job_id(&out);
        assert_eq!(
            w.wait_served("turn/start", &format!("background-{account}")),
            home
        );
        let out = w.bash(s, dir, &w.line("commands/status.md", "status", &job));
        assert!(
            stdout(&out).contains(&job),
            "status: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("running"), "status: {}", stdout(&out));
        let interrupts_before = w
            .log()
            .iter()
            .filter(|l| l.method == "turn/interrupt")
            .count();
        let out = w.bash(s, dir, &w.line("commands/cancel.md", "cancel", &job));
        assert!(
            out.status.success(),
            "cancel: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let interrupts = w.served_homes("turn/interrupt");
        assert!(
            interrupts.len() > interrupts_before,
            "cancel interrupted the turn"
        );
        assert_eq!(
            interrupts.last(),
            Some(&home),
            "cancel reached {account}'s app-server"
        );
    }
    // Nothing ran as the launch environment's account.
    assert!(
        w.log()
            .iter()
            .all(|l| !l.codex_home.ends_with(".codex-other")),
        "{:?}",
        w.log()
    );
    w.end(&sa, &w.pa);
    w.end(&sb, &w.pb);
}

/// Re-running SessionStart (resume, clear, compact) rewrites the same exports, reuses the same
/// broker and renews the same lease.
#[test]
fn a_rerun_session_start_changes_nothing() {
    let Some(w) = World::new() else { return };
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    let file = s.dir.join("sessionstart-hook-0.sh");
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(
        first.contains(&format!(
            "export CODEX_HOME='{}'",
            w.home("alice").display()
        )),
        "{first}"
    );
    let sockets = |w: &World| {
        let mut v: Vec<_> = std::fs::read_dir(w.runtime_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().ends_with(".sock"))
            .collect();
        v.sort();
        v
    };
    let before = sockets(&w);
    assert_eq!(before.len(), 1, "one broker for alice");
    let inits = |w: &World| w.log().iter().filter(|l| l.method == "initialize").count();
    let inits_before = inits(&w);
    for source in ["resume", "clear", "compact", "startup"] {
        let out = w.hook(
            &s,
            "SessionStart",
            &w.pa,
            serde_json::json!({"source": source}),
        );
        assert_eq!(stdout(&out), "");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first, "{source}");
    }
    assert_eq!(sockets(&w), before, "no new broker");
    assert_eq!(inits(&w), inits_before, "no new app-server");
    assert_eq!(w.holders("alice"), 1, "one lease, renewed");
}

/// A CwdChanged into the other project moves the session to that project's account.
#[test]
fn a_cwd_change_moves_the_session_to_the_other_account() {
    let Some(w) = World::new() else { return };
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    assert_eq!(w.holders("alice"), 1);
    let out = w.hook(
        &s,
        "CwdChanged",
        &w.pa,
        serde_json::json!({"old_cwd": w.pa, "new_cwd": w.pb}),
    );
    assert_eq!(stdout(&out), "");
    let line = format!(
        "{} \"moved-to-bob\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    let out = w.bash(&s, &w.pb, &line);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(w.served("turn/start", "moved-to-bob"), Some(w.home("bob")));
    assert_eq!(w.holders("bob"), 1, "the lease moved to bob");
    assert_eq!(w.holders("alice"), 0, "and left alice");
}

/// A `cd` from a project on one account into one pinned to a list moves the session to the
/// list's relay (its lease too), and back: the CwdChanged env file is rewritten each time.
#[test]
fn a_cwd_change_into_a_project_on_a_list_moves_the_session_to_its_relay() {
    let Some(w) = World::new() else { return };
    let list = w.project("pab", "bob, alice");
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    assert_eq!(w.holders("alice"), 1);
    let relay_holders = || {
        let status = stdout(&w.cas_in(&list, &["claude", "status"]));
        status
            .lines()
            .find_map(|l| l.strip_prefix("sessions holding the relay: "))
            .map(|n| n.trim().parse::<usize>().unwrap())
            .unwrap_or_else(|| panic!("no relay holders in {status}"))
    };
    let out = w.hook(
        &s,
        "CwdChanged",
        &w.pa,
        serde_json::json!({"old_cwd": w.pa, "new_cwd": list}),
    );
    assert_eq!(stdout(&out), "");
    let env = std::fs::read_to_string(s.dir.join("cwdchanged-hook-0.sh")).unwrap();
    assert_runs_as(&env, "bob,alice", &w.home("bob"));
    let line = format!(
        "{} \"moved-to-the-list\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    let out = w.bash(&s, &list, &line);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        w.served("turn/start", "moved-to-the-list"),
        Some(w.home("bob")),
        "the relay starts work on the list's first account"
    );
    assert_eq!(relay_holders(), 1, "the lease moved to the relay");
    assert_eq!(w.holders("alice"), 0, "and left alice's broker");

    let out = w.hook(
        &s,
        "CwdChanged",
        &list,
        serde_json::json!({"old_cwd": list, "new_cwd": w.pa}),
    );
    assert_eq!(stdout(&out), "");
    let env = std::fs::read_to_string(s.dir.join("cwdchanged-hook-0.sh")).unwrap();
    assert!(env.contains("export CODEX_AS_ACCOUNT='alice'\n"), "{env}");
    assert_eq!(relay_holders(), 0);
    assert_eq!(w.holders("alice"), 1);
    w.end(&s, &w.pa);
}

/// A Claude Code started with `codex-as bob -- claude` stays on bob in alice's project, and a
/// folder change does not move it: naming an account wins.
#[test]
fn a_session_launched_as_an_account_stays_on_it() {
    let Some(w) = World::new() else { return };
    let s = w.session(SESSION_A);
    let launched = [("CODEX_AS_ACCOUNT", "bob")];
    let out = w.hook_launched_with(
        &s,
        "SessionStart",
        &w.pa,
        serde_json::json!({"source": "startup"}),
        &launched,
    );
    assert_eq!(stdout(&out), "");
    let out = w.hook_launched_with(
        &s,
        "CwdChanged",
        &w.pa,
        serde_json::json!({"old_cwd": w.pa, "new_cwd": w.pb.join("..")}),
        &launched,
    );
    assert_eq!(stdout(&out), "");
    let line = format!(
        "{} \"launched-as-bob\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    let out = w.bash(&s, &w.pa, &line);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        w.served("turn/start", "launched-as-bob"),
        Some(w.home("bob"))
    );
}

/// One session ending (the plugin's SessionEnd and ours) while another session's turn runs on
/// the same broker leaves that turn running to completion, and the broker up.
#[test]
fn a_session_ending_leaves_another_sessions_turn_running() {
    let Some(w) = World::new() else { return };
    let (s1, s2) = (w.session(SESSION_A), w.session(SESSION_B));
    w.start(&s1, &w.pa);
    w.start(&s2, &w.pa);
    assert_eq!(w.holders("alice"), 2);
    let line = format!(
        "{} --background \"long-turn [[delay:2500]]\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    let out = w.bash(&s2, &w.pa, &line);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let job = World::job_id(&out);
    w.wait_served("turn/start", "long-turn");
    let brokers_before = processes_with_env(&format!("HOME={}", w.sb.home().display()))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("broker\0serve"))
        })
        .collect::<Vec<_>>();
    assert_eq!(brokers_before.len(), 1, "one broker serves both sessions");

    w.end(&s1, &w.pa);
    assert_eq!(w.holders("alice"), 1, "s1's lease is released, s2's kept");
    assert!(
        alive(brokers_before[0] as u32),
        "the broker survives s1's end"
    );
    let done = wait_until(60, || {
        w.log().iter().any(|l| l.method == "turn/completed")
            && stdout(&w.bash(&s2, &w.pa, &w.line("commands/status.md", "status", &job)))
                .contains("completed")
    });
    let status = w.bash(&s2, &w.pa, &w.line("commands/result.md", "result", &job));
    assert!(done, "s2's turn finished: {}", stdout(&status));
    assert!(
        stdout(&status).contains(&format!("done by {}", w.home("alice").display())),
        "{}",
        stdout(&status)
    );
    w.end(&s2, &w.pa);
    assert_eq!(w.holders("alice"), 0);
}

/// A pin naming an account codex-as does not know: the session is refused, visibly, and nothing
/// runs on the account Claude Code was started with.
#[test]
fn a_bad_pin_refuses_the_session_and_says_which_file_to_fix() {
    let Some(w) = World::new() else { return };
    let pin = w.pa.join(".codex-account");
    std::fs::write(&pin, "carol\n").unwrap();
    let s = w.session(SESSION_A);
    let out = w.hook(
        &s,
        "SessionStart",
        &w.pa,
        serde_json::json!({"source": "startup"}),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(
        msg.contains(&pin.display().to_string()) && msg.contains("carol"),
        "{msg}"
    );
    assert!(
        v["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap()
            .contains("carol")
    );
    w.plugin_hook(&s, "SessionStart", &w.pa);
    for (file, sub, args) in [
        ("commands/setup.md", "setup --json", ""),
        ("agents/codex-rescue.md", "task", "\"refused-task\""),
    ] {
        let line = format!("{} {args}", w.line(file, sub, ""));
        let out = w.bash(&s, &w.pa, &line);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("codex-as"), "{sub} says why: {all}");
    }
    assert_eq!(w.served("turn/start", "refused-task"), None);
    assert!(
        w.log()
            .iter()
            .all(|l| !l.codex_home.ends_with(".codex-other")),
        "nothing ran on the launch account: {:?}",
        w.log()
    );
    // The same pin makes `codex-as task` in the folder fail naming the file.
    let out = w.cas_in(&w.pa, &["task", "x"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&pin.display().to_string()),
        "{}",
        stderr(&out)
    );
}

/// With the real `codex app-server` behind the broker the hook starts: `/codex:setup` reports
/// the pinned account's login (as the real app-server reads it), though Claude Code was started
/// with another, logged-out CODEX_HOME.
#[test]
fn setup_reports_the_pinned_login_from_the_real_codex() {
    for real in real_codexes() {
        eprintln!("-- with {}", real.display());
        setup_with_codex(&real);
    }
}

fn setup_with_codex(real: &Path) {
    let Some(w) = World::new() else { return };
    w.sb.with_codex(real);
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    let out = w.bash(&s, &w.pa, &w.line("commands/setup.md", "setup --json", ""));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auth"]["loggedIn"], true, "{text}");
    assert_eq!(v["auth"]["authMethod"], "apiKey", "{text}");
    assert_eq!(v["sessionRuntime"]["mode"], "shared", "{text}");
    // The same line with Claude Code's own environment only: the launch account, logged out.
    let out = w.bash(
        &w.session(SESSION_B),
        &w.pa,
        &w.line("commands/setup.md", "setup --json", ""),
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["auth"]["loggedIn"], false, "{}", stdout(&out));
}

/// Without the plugin the session is refused too, and says so.
#[test]
fn a_missing_plugin_is_shown_not_ignored() {
    let Some(w) = World::new() else { return };
    let s = w.session(SESSION_A);
    let empty = w.sb.path().join("no-plugin");
    std::fs::create_dir(&empty).unwrap();
    let out = w.hook_launched_with(
        &s,
        "SessionStart",
        &w.pa,
        serde_json::json!({"source": "startup"}),
        &[("CODEX_AS_PLUGIN_ROOT", empty.to_str().unwrap())],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(msg.contains("is not the Codex plugin"), "{msg}");
    let env = std::fs::read_to_string(s.dir.join("sessionstart-hook-0.sh")).unwrap();
    assert!(
        env.contains("export CODEX_COMPANION_APP_SERVER_ENDPOINT='codex-as-refused: "),
        "{env}"
    );
}

/// `install` twice then `uninstall` gives the settings back, as JSON, in both scopes; status
/// reports what is installed, the folder's account and its broker.
#[test]
fn install_twice_then_uninstall_restores_the_settings() {
    let Some(w) = World::new() else { return };
    let user = w.sb.home().join(".claude/settings.json");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    let before = serde_json::json!({
        "model": "opus",
        "env": {"FOO": "bar"},
        "permissions": {"allow": ["Bash(git:*)"]},
        "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}
    });
    std::fs::write(&user, serde_json::to_string_pretty(&before).unwrap()).unwrap();
    let local = w.pa.join(".claude/settings.local.json");
    for (args, file) in [
        (vec!["claude", "install"], &user),
        (vec!["claude", "install", "--project"], &local),
    ] {
        let original = std::fs::read_to_string(file).ok();
        for _ in 0..2 {
            let out = w.cas_in(&w.pa, &args);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let installed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let text = installed.to_string();
        assert_eq!(text.matches("claude hook").count(), 3, "{text}");
        assert!(text.contains(&format!("{} claude hook", BIN)), "{text}");
        let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
        assert!(
            status.contains("SessionStart, CwdChanged, SessionEnd"),
            "{status}"
        );
        assert!(status.contains("account: alice"), "{status}");
        assert!(status.contains(".codex-account line"), "{status}");
        let mut un = args.clone();
        un[1] = "uninstall";
        let out = w.cas_in(&w.pa, &un);
        assert!(out.status.success(), "{}", stderr(&out));
        match original {
            Some(t) => {
                let after: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
                let expected: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(after, expected, "{}", file.display());
            }
            // What install created is removed, `.claude/` too.
            None => assert!(
                !file.parent().unwrap().exists(),
                "{} left behind",
                file.display()
            ),
        }
    }
    // A hook whose codex-as is gone is reported.
    std::fs::write(
        &user,
        r#"{"hooks":{"SessionEnd":[{"hooks":[{"type":"command","command":"/gone/codex-as claude hook"}]}]}}"#,
    )
    .unwrap();
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(
        status.contains("but /gone/codex-as does not exist"),
        "{status}"
    );
    // The broker line: down before any session, up after one starts here.
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(status.contains("broker: not running"), "{status}");
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(status.contains("broker: up at unix:"), "{status}");
}

/// A lease counts only while its Claude Code process lives.
#[test]
fn a_crashed_claude_code_holds_no_lease() {
    let Some(w) = World::new() else { return };
    let input = serde_json::json!({
        "session_id": SESSION_A, "cwd": w.pa, "hook_event_name": "SessionStart", "source": "startup"
    });
    let env_file = w.sb.path().join("crash-env.sh");
    std::fs::write(&env_file, "").unwrap();
    // A stand-in for Claude Code: a node process that runs the hook, then stays.
    let script = format!(
        "const r = require('child_process').spawnSync({bin:?}, ['claude', 'hook'], {{input: {input:?}, stdio: ['pipe', 'inherit', 'inherit']}}); console.log('hooked ' + r.status); setInterval(() => {{}}, 1000);",
        bin = BIN,
        input = input.to_string()
    );
    let mut c = w.sb.command("node");
    w.claude_env(&mut c);
    let mut child = c
        .current_dir(&w.pa)
        .env("CLAUDE_ENV_FILE", &env_file)
        .args(["-e", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "hooked 0");
    assert_eq!(w.holders("alice"), 1, "held while Claude Code lives");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(w.holders("alice"), 0, "a crashed Claude Code holds nothing");
}

/// `pin`, `which` with no name, and commands that name no account.
#[test]
fn the_folders_account_for_codex_as_commands() {
    let Some(w) = World::new() else { return };
    let out = w.cas_in(&w.pb, &["which"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("bob  "), "{text}");
    assert!(
        text.contains(&format!("{}/.codex-account line 2", w.pb.display())),
        "{text}"
    );
    let sub = w.pb.join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let run = |dir: &Path, args: &[&str]| {
        let out = w.cas_in(dir, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let probe = [
        "sh",
        "-c",
        "printf '%s %s' \"$CODEX_AS_ACCOUNT\" \"$CODEX_HOME\"",
    ];
    let mut args = vec!["--"];
    args.extend(probe);
    assert_eq!(run(&sub, &args), format!("bob {}", w.home("bob").display()));
    let mut named = vec!["alice", "--"];
    named.extend(probe);
    assert_eq!(
        run(&sub, &named),
        format!("alice {}", w.home("alice").display()),
        "naming an account always wins"
    );
    let mut cwd = vec!["--cwd", w.pa.to_str().unwrap(), "--"];
    cwd.extend(probe);
    assert_eq!(
        run(&sub, &cwd),
        format!("alice {}", w.home("alice").display())
    );
    // Claude Code's status line shows the folder's account from its JSON input.
    let mut c = w.sb.codex_as();
    w.claude_env(&mut c);
    c.current_dir(w.sb.path()).arg("statusline");
    let input = serde_json::json!({"cwd": sub, "workspace": {"current_dir": sub}});
    let out = output_with_stdin(&mut c, input.to_string().as_bytes());
    assert!(stdout(&out).starts_with("bob "), "{}", stdout(&out));
    // The config table maps a folder that has no pin file.
    let other = w.sb.path().join("vendor/lib");
    std::fs::create_dir_all(&other).unwrap();
    w.sb.write_config(&format!(
        "[directories]\n\"{}\" = \"bob\"\n",
        w.sb.path().join("vendor").display()
    ));
    assert_eq!(
        run(&other, &args),
        format!("bob {}", w.home("bob").display())
    );
    assert!(run(&other, &["which"]).contains("[directories]"));
    // Unpinning removes the file and says what the folder uses now.
    let text = run(&w.pb, &["pin", "--unset"]);
    assert!(text.contains("removed"), "{text}");
    assert!(!w.pb.join(".codex-account").exists());
    assert_eq!(run(&w.pb, &args), "default ", "no pin: the default account");
    let out = w.cas_in(&w.pb, &["pin", "--unset"]);
    assert_eq!(out.status.code(), Some(2), "nothing to remove");
    let out = w.cas_in(&w.pb, &["pin", "nobody"]);
    assert!(!out.status.success());
    assert!(
        !w.pb.join(".codex-account").exists(),
        "an unknown name is not pinned"
    );
}

/// The status line for `dir`, from Claude Code's JSON input.
fn statusline(w: &World, dir: &Path, extra: &[&str]) -> String {
    let mut c = w.sb.codex_as();
    w.claude_env(&mut c);
    c.current_dir(w.sb.path()).arg("statusline").args(extra);
    let input = serde_json::json!({"cwd": dir, "workspace": {"current_dir": dir}});
    let out = output_with_stdin(&mut c, input.to_string().as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// A project pinned to a list: `pin`, `which`, `claude status` and the status line show the list
/// and the account in use (no relay runs yet: its first usable account, said as such); a
/// session there carries the list and the route's first account's home.
#[test]
fn a_project_on_a_list_shows_the_list_and_the_account_in_use() {
    let Some(w) = World::new() else { return };
    let out = w.cas_in(&w.pa, &["pin", "alice, bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("now names 'alice,bob'\n"),
        "{}",
        stdout(&out)
    );
    let which = |dir: &Path| {
        let out = w.cas_in(dir, &["which"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let first_usable = "(no relay for 'alice,bob' is running; this is its first usable account, where work starts)";
    let text = which(&w.pa);
    assert!(text.starts_with("alice,bob  (a list: its first usable account, the next when one reaches its usage limit)\n"), "{text}");
    assert!(
        text.contains(&format!(
            "\n  in use: alice  {}  {first_usable}\n",
            w.home("alice").display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "chosen by: {}/.codex-account line 2",
            w.pa.display()
        )),
        "{text}"
    );
    let line = statusline(&w, &w.pa, &[]);
    assert!(
        line.starts_with("alice,bob → alice (first usable) · "),
        "{line}"
    );
    let line = statusline(&w, &w.pa, &["--short"]);
    assert!(line.starts_with("alice,bob → alice"), "{line}");
    assert!(!line.contains("first usable"), "{line}");
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(
        status.contains("account: alice,bob (sessions here hand a turn over to the next account when one reaches its usage limit)\n"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "in use: alice ({}): no relay",
            w.home("alice").display()
        )),
        "{status}"
    );

    // alice logged out: bob is where work would start.
    let auth = w.home("alice").join("auth.json");
    let saved = std::fs::read(&auth).unwrap();
    std::fs::remove_file(&auth).unwrap();
    assert!(which(&w.pa).contains("in use: bob  "), "{}", which(&w.pa));
    let line = statusline(&w, &w.pa, &[]);
    assert!(line.starts_with("alice,bob → bob (first usable)"), "{line}");
    std::fs::write(&auth, saved).unwrap();

    // An unknown name is the file's mistake, on every reader.
    std::fs::write(w.pa.join(".codex-account"), "alice, bbo\n").unwrap();
    let out = w.cas_in(&w.pa, &["which"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did you mean 'bob'"),
        "{}",
        stderr(&out)
    );
    let line = statusline(&w, &w.pa, &[]);
    assert!(
        line.starts_with("codex-as: ") && line.contains(".codex-account"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");

    let out = w.cas_in(&w.pa, &["pin", "auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = which(&w.pa);
    assert!(
        text.starts_with("auto  (auto: the account with the most quota left"),
        "{text}"
    );

    // A session in the folder: the list rides along, CODEX_HOME is the route's first account's.
    let out = w.cas_in(&w.pa, &["pin", "alice,bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    let env = std::fs::read_to_string(s.dir.join("sessionstart-hook-0.sh")).unwrap();
    assert_runs_as(&env, "alice,bob", &w.home("alice"));
    // The companion's endpoint is the route's relay, which the session holds.
    let endpoint = companion_endpoint(&env);
    let socket = endpoint.strip_prefix("unix:").unwrap();
    assert!(
        Path::new(socket)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("rl-"),
        "{endpoint}"
    );
    let mut c = w.sb.codex_as();
    w.claude_env(&mut c);
    let st = c
        .args(["broker", "status", "--endpoint", &endpoint])
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&st), stderr(&st)));
    assert_eq!(st["broker"], "codex-as-relay", "{st}");
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(
        status.contains(&format!("relay: up at {endpoint} (pid "))
            && status.contains(", route alice,bob)\n"),
        "{status}"
    );
    assert!(status.contains("sessions holding the relay: 1"), "{status}");
    let line = statusline(&w, &w.pa, &[]);
    assert!(line.starts_with("alice,bob → alice · "), "{line}");
    let out = w.bash(&s, &w.pa, "codex-as which");
    let text = stdout(&out);
    assert!(
        text.starts_with("alice,bob  (a list"),
        "{text}{}",
        stderr(&out)
    );
    assert!(
        text.contains("in use: alice  ")
            && text.contains("(the relay for 'alice,bob' starts work on it)"),
        "{text}"
    );
    assert!(
        text.contains("chosen by: CODEX_AS_ACCOUNT is set"),
        "{text}"
    );
    w.end(&s, &w.pa);
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(status.contains("sessions holding the relay: 0"), "{status}");
}

/// The relay a session on a list talks to stays up while the session lives, however long it
/// idles between two /codex commands (its `setup` and `cancel` do not fall back when the
/// endpoint is gone); once the session ends it exits idle like a broker.
#[test]
fn a_sessions_relay_outlives_its_idle_time_while_the_session_lives() {
    let Some(w) = World::new() else { return };
    w.sb.write_config("[broker]\nidle_exit = \"1s\"\n");
    let out = w.cas_in(&w.pa, &["pin", "alice,bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = w.session(SESSION_A);
    w.start(&s, &w.pa);
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    let pid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("relay: up at "))
        .and_then(|l| l.split("(pid ").nth(1))
        .and_then(|l| l.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no relay pid in {status}"));
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(alive(pid), "the relay exited under a live session");
    w.end(&s, &w.pa);
    assert!(
        wait_until(15, || !alive(pid)),
        "the relay stayed up after the session ended"
    );
}

/// The real Claude Code CLI, when installed (CODEX_AS_CLAUDE_CODE, else where .ci/run puts it).
fn real_claude_code() -> Option<PathBuf> {
    let explicit = std::env::var_os("CODEX_AS_CLAUDE_CODE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let cached = std::env::var_os("HOME").map(|h| {
        PathBuf::from(h).join(".cache/codex-as-ci/claude-code-2.1.332/node_modules/.bin/claude")
    });
    let found = explicit.or(cached).filter(|p| p.is_file());
    if found.is_none() {
        skip!(
            "Claude Code is not installed (set CODEX_AS_CLAUDE_CODE, or run .ci/run, which installs @anthropic-ai/claude-code); the run through the real Claude Code did not happen"
        );
    }
    found
}

/// Runs the real Claude Code in `dir` with the plugin from `--plugin-dir`, launched with another
/// account's CODEX_HOME, its model API at `api` (a port nobody listens on: it gives up at once),
/// and `args`; stream-json output. Fails the test when it does not exit within 90 s.
fn run_real_claude(w: &World, claude: &Path, dir: &Path, api: &str, args: &[&str]) -> Output {
    let mut c = w.sb.command(claude);
    w.claude_env(&mut c);
    c.current_dir(dir)
        .env("CODEX_HOME", w.sb.account_dir("other"))
        .env("ANTHROPIC_API_KEY", "dummy")
        .env("ANTHROPIC_BASE_URL", api)
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .arg("--plugin-dir")
        .arg(&w.plugin)
        .args(args)
        .args(["--output-format", "stream-json", "--verbose"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    let finished = wait_until(90, || {
        !alive(pid) || matches!(child.try_wait(), Ok(Some(_)))
    });
    if !finished {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(finished, "claude did not exit: {}", stderr(&out));
    out
}

/// `codex-as claude install` in the project pinned to alice (`pa`), a background job `TAG
/// [[hang]]` started there in the plugin state Claude Code gives a --plugin-dir plugin and seen
/// on alice's app-server, then the real Claude Code's `/codex:cancel JOB` in `pa`: its
/// stream-json output.
fn cancel_a_job_through_real_claude(w: &World, claude: &Path, tag: &str) -> String {
    let out = w.cas_in(&w.pa, &["claude", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plugin_data = w.sb.home().join(".claude/plugins/data/codex-inline");
    std::fs::create_dir_all(&plugin_data).unwrap();
    let mut c = w.sb.codex_as();
    w.claude_env(&mut c);
    let out = c
        .current_dir(&w.pa)
        .env("CLAUDE_PLUGIN_DATA", &plugin_data)
        .args(["task", "--background"])
        .arg(format!("{tag} [[hang]]"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let job = World::job_id(&out);
    assert_eq!(w.wait_served("turn/start", tag), w.home("alice"));

    let out = run_real_claude(
        w,
        claude,
        &w.pa,
        "http://127.0.0.1:9",
        &["-p", &format!("/codex:cancel {job}")],
    );
    stdout(&out)
}

/// Through the real Claude Code, offline: `codex-as claude install`, then `claude -p
/// "/codex:cancel JOB"` in the project pinned to alice, launched with another account's
/// CODEX_HOME. Claude Code runs our SessionStart hook, sources its env file for the command's
/// `!` line, and the real companion's cancel reaches alice's broker; SessionEnd releases the
/// lease. (No model is reachable: Claude Code gives up on the API at once and exits.)
#[test]
fn real_claude_code_runs_a_codex_command_on_the_projects_account() {
    let Some(w) = World::new() else { return };
    let Some(claude) = real_claude_code() else {
        return;
    };
    let stream = cancel_a_job_through_real_claude(&w, &claude, "real-claude-job");
    let hooks: Vec<serde_json::Value> = stream
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["subtype"] == "hook_response" && v["hook_event"] == "SessionStart")
        .collect();
    assert!(!hooks.is_empty(), "no SessionStart hook ran: {stream}");
    assert!(
        hooks
            .iter()
            .all(|h| h["exit_code"] == 0 && h["stdout"] == ""),
        "{hooks:?}"
    );
    let interrupts = w.served_homes("turn/interrupt");
    assert_eq!(
        interrupts,
        [w.home("alice")],
        "the `!` line's cancel reached alice's app-server: {stream}"
    );
    assert!(
        w.log()
            .iter()
            .all(|l| !l.codex_home.ends_with(".codex-other")),
        "{:?}",
        w.log()
    );
    assert_eq!(w.holders("alice"), 0, "SessionEnd released the lease");
}

/// Asserts that a hook's env file runs the companion as `accounts` (a route) with the route's
/// first account's `home` as CODEX_HOME.
fn assert_runs_as(env: &str, accounts: &str, home: &Path) {
    assert!(
        env.contains(&format!("export CODEX_AS_ACCOUNT='{accounts}'\n")),
        "{env}"
    );
    assert!(
        env.contains(&format!("export CODEX_HOME='{}'\n", home.display())),
        "the route's first account's home: {env}"
    );
}

/// The companion's endpoint a hook's env file exports.
fn companion_endpoint(env: &str) -> String {
    env.lines()
        .find_map(|l| l.strip_prefix("export CODEX_COMPANION_APP_SERVER_ENDPOINT="))
        .map(|v| v.trim_matches('\'').to_string())
        .unwrap_or_else(|| panic!("no endpoint in {env}"))
}

/// Claude Code's stored copies of the env files the hooks wrote (`~/.claude/session-env/`).
fn stored_env_files(w: &World) -> Vec<(PathBuf, String)> {
    crate::support::files_under(&w.sb.home().join(".claude/session-env"))
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect()
}

/// Through the real Claude Code, offline, in a project pinned to `alice, bob`: our SessionStart
/// hook gives the session the route's relay, and the `!` line of `/codex:cancel` reaches the
/// background job (started on the list, through the same relay) on alice's app-server.
#[test]
fn real_claude_code_in_a_project_on_a_list_talks_to_the_relay() {
    let Some(w) = World::new() else { return };
    let Some(claude) = real_claude_code() else {
        return;
    };
    let out = w.cas_in(&w.pa, &["pin", "alice, bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stream = cancel_a_job_through_real_claude(&w, &claude, "list-claude-job");
    let ours: Vec<(PathBuf, String)> = stored_env_files(&w)
        .into_iter()
        .filter(|(_, t)| t.contains("codex-as: this Claude Code session's Codex account"))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}\n{stream}");
    let env = &ours[0].1;
    let endpoint = companion_endpoint(env);
    let relay = w.runtime_dir().join("rl-");
    assert!(
        endpoint.starts_with(&format!("unix:{}", relay.display())),
        "the session's endpoint is the route's relay: {endpoint}"
    );
    assert_runs_as(env, "alice,bob", &w.home("alice"));
    let interrupts = w.served_homes("turn/interrupt");
    assert_eq!(
        interrupts,
        [w.home("alice")],
        "the `!` line's cancel went through the relay to alice's app-server: {stream}"
    );
    let status = stdout(&w.cas_in(&w.pa, &["claude", "status"]));
    assert!(
        status.contains(&format!("relay: up at {endpoint} ")),
        "{status}"
    );
    assert!(
        status.contains("sessions holding the relay: 0"),
        "SessionEnd released the lease: {status}"
    );
}

const KEY_A: &str = "sk-session-a";
const KEY_B: &str = "sk-session-b";

/// A Claude Code session in a project pinned to `a, b`, on the real `codex app-server` (every
/// version of CODEX_AS_REAL_CODEX) whose homes use the local model stub: `/codex:rescue` runs a
/// turn on a; a runs out; the rescue's follow-up (`--resume-last`, which the rescue agent adds
/// for "continue") finishes on b, on the same thread, with the earlier turn and the new input
/// in b's request once each, and the user told once, in the job's log `/codex:status` shows.
#[test]
fn a_session_on_a_list_finishes_rescue_on_the_next_account_when_the_first_runs_out() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::new() else { return };
        w.sb.with_codex(&codex);
        let stub = crate::support::ModelStub::start(&w.sb);
        stub.account_home(&w.sb.account_dir("a"), KEY_A);
        stub.account_home(&w.sb.account_dir("b"), KEY_B);
        let dir = w.project("pab", "a, b");
        let s = w.session(SESSION_A);
        w.start(&s, &dir);
        let rescue = |words: &str| {
            let line = format!("{} {words}", w.line("agents/codex-rescue.md", "task", ""));
            let out = w.bash(&s, &dir, &line);
            assert!(
                out.status.success(),
                "rescue {words}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            out
        };
        let out = rescue("\"remember the word PAPAYA\"");
        assert!(
            stdout(&out).contains("echo: remember the word PAPAYA"),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            stub.turn_requests(KEY_A).len(),
            1,
            "the first turn ran on a"
        );
        stub.set_limited(KEY_A, true);

        let out = rescue("--resume-last \"what was the word?\"");
        assert!(
            stdout(&out).contains("echo: what was the word? (user turns seen: 2)"),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let on_b = stub.turn_requests(KEY_B);
        assert_eq!(on_b.len(), 1, "b asked the model once");
        assert_eq!(
            user_texts(&on_b[0]),
            ["remember the word PAPAYA", "what was the word?"],
            "the earlier turn and the new input, each once"
        );
        assert_eq!(
            stub.turn_requests(KEY_A).len(),
            2,
            "a: the first turn, then the refused one"
        );

        // The plugin's job records: the follow-up kept the thread, and completed.
        let jobs = plugin_jobs(&w.sb);
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        assert_eq!(jobs[1]["threadId"], jobs[0]["threadId"], "{jobs:?}");
        assert_eq!(jobs[1]["status"], "completed", "{:?}", jobs[1]);
        let log = std::fs::read_to_string(jobs[1]["logFile"].as_str().unwrap()).unwrap();
        let notice =
            "codex-as: a: usage limit reached; the thread moved to 'b' and the turn goes on there";
        assert_eq!(log.matches(notice).count(), 1, "{log}");
        w.end(&s, &dir);
    }
}

/// The Anthropic API stand-in (tests/fixtures/anthropic-stub.mjs), killed with the sandbox.
struct AnthropicStub {
    url: String,
    script: PathBuf,
    log: PathBuf,
}

impl AnthropicStub {
    fn start(w: &World) -> AnthropicStub {
        let dir = w.sb.mkdir("anthropic-stub");
        let (url_file, script, log) = (
            dir.join("url"),
            dir.join("script.json"),
            dir.join("log.jsonl"),
        );
        std::fs::write(&script, "{}").unwrap();
        let child =
            w.sb.command("node")
                .arg(crate::support::fixtures().join("anthropic-stub.mjs"))
                .arg("--url-file")
                .arg(&url_file)
                .arg("--log")
                .arg(&log)
                .arg("--script")
                .arg(&script)
                .arg("--parent-pid")
                .arg(std::process::id().to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
        w.sb.adopt(child);
        assert!(
            wait_until(20, || url_file.exists()),
            "the Anthropic stub did not start"
        );
        AnthropicStub {
            url: std::fs::read_to_string(&url_file).unwrap(),
            script,
            log,
        }
    }

    /// What the main agent hands the rescue subagent, and the one command the subagent runs.
    fn script(&self, prompt: &str, bash: &str) {
        let v = serde_json::json!({"prompt": prompt, "bash": bash});
        std::fs::write(&self.script, v.to_string()).unwrap();
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Through the real Claude Code (offline: its model API is a local stand-in that makes the main
/// agent call the `codex:codex-rescue` subagent and the subagent make its one Bash call) in a
/// project pinned to `a, b`, on the real codex app-server whose homes use the model stub, with
/// a's key out of quota: `/codex:rescue`'s task finishes on b, and Claude Code gets its output.
#[test]
fn real_claude_code_rescue_finishes_on_b_when_a_is_out() {
    let Some(w) = World::new() else { return };
    let Some(claude) = real_claude_code() else {
        return;
    };
    let Some(codex) = real_codexes().into_iter().last() else {
        return;
    };
    w.sb.with_codex(&codex);
    let stub = crate::support::ModelStub::start(&w.sb);
    stub.account_home(&w.sb.account_dir("a"), KEY_A);
    stub.account_home(&w.sb.account_dir("b"), KEY_B);
    let dir = w.project("pab", "a, b");
    let out = w.cas_in(&dir, &["claude", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stub.set_limited(KEY_A, true);
    let anthropic = AnthropicStub::start(&w);
    let task = "find the flaky test";
    let bash = format!(
        "{} \"{task}\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    anthropic.script(&format!("--fresh {task}"), &bash);

    let out = run_real_claude(
        &w,
        &claude,
        &dir,
        &anthropic.url,
        &[
            "-p",
            &format!("/codex:rescue --fresh {task}"),
            "--allowedTools",
            "Bash(node:*)",
        ],
    );
    let stream = stdout(&out);
    let asked = anthropic.requests();
    // The subagent's Bash call ran: its tool result came back to the model.
    let results: Vec<String> = asked
        .iter()
        .flat_map(|r| {
            r["body"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].to_string())
        .collect();
    assert!(
        results.iter().any(|r| r.contains(&format!("echo: {task}"))),
        "no Codex answer came back to Claude Code: {results:?}\n{stream}\n{}",
        stderr(&out)
    );
    let on_b = stub.turn_requests(KEY_B);
    assert_eq!(on_b.len(), 1, "b ran the turn once: {stream}");
    assert_eq!(user_texts(&on_b[0]), [task], "its input once");
    assert_eq!(
        stub.turn_requests(KEY_A).len(),
        1,
        "a was asked once, and refused"
    );
    // The relay the session used says where the work went; a is known to be out, so new work
    // starts on b too.
    let out = w.cas_in(&dir, &["which"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("in use: b  {}  ", w.home("b").display())),
        "{text}{}",
        stderr(&out)
    );
    assert!(
        text.contains(
            "(the relay for 'a,b' starts work on it; it last moved a turn from 'a' to 'b')"
        ),
        "{text}"
    );
    let line = statusline(&w, &dir, &[]);
    assert!(line.starts_with("a,b → b · "), "{line}");
}

/// Through the real Claude Code (its model a local stand-in, as above) in a project pinned to
/// `a`, whose home has Codex's own listener up (what the 0.171 TUI's daemon is), on the real
/// codex app-server with the model stub: `/codex:rescue`'s task is served by that listener, and
/// the home never has a second app-server.
#[test]
fn real_claude_code_on_an_account_with_a_listener_lands_on_it() {
    for codex in real_codexes() {
        eprintln!("-- against {}", codex.display());
        let Some(w) = World::new() else { return };
        let Some(claude) = real_claude_code() else {
            return;
        };
        session_on_a_listener(&w, &claude, &codex);
    }
}

fn session_on_a_listener(w: &World, claude: &Path, codex: &Path) {
    w.sb.with_codex(codex);
    let stub = crate::support::ModelStub::start(&w.sb);
    stub.account_home(&w.sb.account_dir("a"), KEY_A);
    let home = w.home("a");
    let socket = crate::support::listener::start(&w.sb, codex, &home);
    let listener_pids = crate::support::listener::app_servers_of(&home);
    assert_eq!(listener_pids.len(), 1, "the listener: {listener_pids:?}");
    let dir = w.project("pl", "a");
    let out = w.cas_in(&dir, &["claude", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let anthropic = AnthropicStub::start(w);
    let task = "explain the listener";
    let bash = format!(
        "{} \"{task}\"",
        w.line("agents/codex-rescue.md", "task", "")
    );
    anthropic.script(&format!("--fresh {task}"), &bash);

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (out, most) = std::thread::scope(|s| {
        let most = s.spawn(|| {
            let mut most = Vec::new();
            loop {
                let last = stop.load(std::sync::atomic::Ordering::Relaxed);
                let pids = crate::support::listener::app_servers_of(&home);
                if pids.len() > most.len() {
                    most = pids;
                }
                if last {
                    return most;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = run_real_claude(
            w,
            claude,
            &dir,
            &anthropic.url,
            &[
                "-p",
                &format!("/codex:rescue --fresh {task}"),
                "--allowedTools",
                "Bash(node:*)",
            ],
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, most.join().unwrap())
    });
    let stream = stdout(&out);
    let answered = anthropic
        .requests()
        .iter()
        .flat_map(|r| {
            r["body"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .any(|b| {
            b["type"] == "tool_result"
                && b["content"].to_string().contains(&format!("echo: {task}"))
        });
    assert!(
        answered,
        "no Codex answer came back to Claude Code: {stream}\n{}",
        stderr(&out)
    );
    assert_eq!(stub.turn_requests(KEY_A).len(), 1, "a ran the turn once");
    assert_eq!(most, listener_pids, "one app-server for a's home all along");
    // The broker that served the session's companion did so through the listener.
    let out = w.cas_in(&dir, &["brokers", "--json"]);
    let rows: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let ours: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["owner"] == "codex-as" && r["account"] == "a")
        .collect();
    assert!(!ours.is_empty(), "{rows}");
    for row in ours {
        assert_eq!(row["appServer"], "listener", "{row}");
        assert_eq!(
            row["appServerPid"].as_i64(),
            Some(i64::from(listener_pids[0])),
            "{row}"
        );
    }
    let _ = std::fs::remove_file(&socket);
}
