//! The companion's first-hour edges: `--help` prints the companion's usage and starts nothing;
//! a turn on an account that is not logged in is refused before it starts; the plugin's advice
//! that names plain `codex` gets its codex-as form on stderr while stdout stays byte for byte
//! the companion's; `auto` with every account skipped exits 75.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{Sandbox, for_each_plugin, stderr, stdout};

const COMPANION: &[&str] = &[
    "task",
    "review",
    "adversarial-review",
    "transfer",
    "setup",
    "status",
    "result",
    "cancel",
];

struct World {
    sb: Sandbox,
    plugin: PathBuf,
    ws: PathBuf,
}

impl World {
    fn new(plugin: &Path) -> World {
        let sb = Sandbox::new();
        sb.with_fake_codex();
        for a in ["alice", "bob"] {
            let d = sb.account_dir(a);
            std::fs::write(
                d.join("auth.json"),
                format!(r#"{{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test-{a}"}}"#),
            )
            .unwrap();
        }
        let ws = sb.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        assert!(
            Command::new("git")
                .args(["init", "-q"])
                .current_dir(&ws)
                .status()
                .is_ok_and(|s| s.success())
        );
        World {
            sb,
            plugin: plugin.to_path_buf(),
            ws,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.sb
            .codex_as()
            .env("CODEX_AS_PLUGIN_ROOT", &self.plugin)
            .env("CODEX_AS_RUNTIME_DIR", self.sb.path().join("rt"))
            .env("FAKE_CODEX_LOG", self.sb.path().join("codex.log"))
            .current_dir(&self.ws)
            .args(args)
            .output()
            .unwrap()
    }

    /// Whatever reached a codex (the fake logs every request), and any broker socket.
    fn started_anything(&self) -> bool {
        let log = std::fs::read_to_string(self.sb.path().join("codex.log")).unwrap_or_default();
        let sockets = std::fs::read_dir(self.sb.path().join("rt"))
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        !log.is_empty() || sockets > 0
    }
}

#[test]
fn companion_help_prints_the_usage_and_starts_nothing() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        for cmd in COMPANION {
            for args in [
                vec!["alice", cmd, "--help"],
                vec!["alice", cmd, "-h"],
                vec!["alice,bob", cmd, "--help"],
                vec!["auto", cmd, "--help"],
                vec!["help", cmd],
            ] {
                let out = w.run(&args);
                assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
                let text = stdout(&out);
                assert!(text.contains(&format!(" {cmd}")), "{args:?}: {text}");
                assert!(!text.contains("node scripts/codex-companion.mjs"), "{text}");
                assert!(!w.started_anything(), "{args:?} started something");
            }
        }
        let out = w.run(&["alice", "task", "--help"]);
        assert!(
            stdout(&out).contains("codex-as alice task"),
            "{}",
            stdout(&out)
        );
    });
}

#[test]
fn a_turn_on_an_account_not_logged_in_is_refused_before_it_starts() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        std::fs::remove_file(w.sb.home().join(".codex-alice/auth.json")).unwrap();
        for cmd in ["task", "review", "adversarial-review"] {
            let out = w.run(&["alice", cmd, "do it"]);
            assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("log in with `codex-as login alice`"), "{err}");
            assert!(!w.started_anything(), "{cmd} started something");
        }
        // Asking is still allowed: setup says how the account stands.
        let out = w.run(&["alice", "setup", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    });
}

/// A companion that prints fixed bytes (advice included, a byte that is not UTF-8, no final
/// newline) and exits 3: what codex-as passes on must be exactly that.
fn scripted_plugin(sb: &Sandbox) -> PathBuf {
    let root = sb.path().join("scripted-plugin");
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::write(
        root.join("scripts/codex-companion.mjs"),
        r#"process.stdout.write(Buffer.from([0x7b, 0xff, 0x0a]));
process.stdout.write("- Run `!codex login`.\n");
process.stdout.write('{"resumeCommand": "codex resume 019a-thread-7"}\n');
process.stdout.write("Task started in the background as task-mq1-ab2. Check /codex:status task-mq1-ab2 for progress.\n");
process.stdout.write("Resume in Codex: codex resume 019a-thread-7");
process.exitCode = 3;
"#,
    )
    .unwrap();
    root
}

#[test]
fn the_plugins_advice_gets_its_codex_as_form_and_stdout_stays_byte_identical() {
    let sb = Sandbox::new();
    sb.with_fake_codex();
    sb.account_dir("alice");
    let plugin = scripted_plugin(&sb);
    let direct = sb
        .command("node")
        .arg(plugin.join("scripts/codex-companion.mjs"))
        .output()
        .unwrap();
    let out = sb
        .codex_as()
        .env("CODEX_AS_PLUGIN_ROOT", &plugin)
        .env("CODEX_AS_RUNTIME_DIR", sb.path().join("rt"))
        .args(["alice", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, direct.stdout, "stdout byte for byte");
    assert_eq!(out.status.code(), Some(3), "the companion's own status");
    let err = stderr(&out);
    assert!(err.contains("log in with `codex-as login alice`"), "{err}");
    assert!(err.contains("codex-as alice resume 019a-thread-7"), "{err}");
    assert_eq!(
        err.matches("alice resume 019a-thread-7").count(),
        1,
        "said once: {err}"
    );
}

#[test]
fn advice_names_an_account_that_can_act_and_the_shell_form_of_status() {
    let mut w = World::new(Path::new("/nonexistent"));
    w.plugin = scripted_plugin(&w.sb);
    let advice = |args: &[&str], claude_code: bool| {
        let mut cmd = w.sb.codex_as();
        cmd.env("CODEX_AS_PLUGIN_ROOT", &w.plugin)
            .env("CODEX_AS_RUNTIME_DIR", w.sb.path().join("rt"))
            .env_remove("CLAUDECODE")
            .current_dir(&w.ws)
            .args(args);
        if claude_code {
            cmd.env("CLAUDECODE", "1");
        }
        stderr(&cmd.output().unwrap())
    };
    let err = advice(&["alice", "status"], false);
    assert!(
        err.contains("resume as 'alice': codex-as alice resume 019a-thread-7"),
        "{err}"
    );
    assert!(
        err.contains("codex-as alice status task-mq1-ab2\n"),
        "{err}"
    );
    let err = advice(&["alice", "status"], true);
    assert!(
        !err.contains("status task-mq1-ab2"),
        "inside Claude Code: {err}"
    );

    // Logged out: the hint names an account that is logged in.
    std::fs::remove_file(w.sb.home().join(".codex-alice/auth.json")).unwrap();
    let err = advice(&["alice", "status"], false);
    assert!(err.contains("codex-as bob resume 019a-thread-7"), "{err}");
    assert!(!err.contains("codex-as alice resume"), "{err}");
    std::fs::remove_file(w.sb.home().join(".codex-bob/auth.json")).unwrap();
    let err = advice(&["alice", "status"], false);
    assert!(
        err.contains("no account is logged in; to resume: codex-as login alice, then codex-as alice resume 019a-thread-7"),
        "{err}"
    );
}

#[test]
fn a_background_task_says_how_to_check_it_from_the_shell() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        let out = w.run(&["alice", "task", "--background", "hello"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let job = job_of(&out);
        assert!(
            stderr(&out).contains(&format!("codex-as alice status {job}")),
            "{}",
            stderr(&out)
        );
        // Let it finish before the sandbox goes.
        let out = w.run(&["alice", "status", &job, "--wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    });
}

/// The job id in a companion's "started in the background as task-..." line.
fn job_of(out: &Output) -> String {
    crate::support::outputs::background_job_id(&format!("{}{}", stdout(out), stderr(out)))
}

#[test]
fn a_shell_and_claude_code_sessions_share_one_job_list_once_the_plugin_is_installed() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        let plugins = w.sb.home().join(".claude/plugins");
        let data = plugins.join("data/codex-openai-codex");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            plugins.join("installed_plugins.json"),
            r#"{"version":2,"plugins":{"codex@openai-codex":[{"installPath":"/nowhere","version":"1.0.5"}]}}"#,
        )
        .unwrap();
        // A session's Bash tool: what the plugin's SessionStart exported.
        let in_session = |args: &[&str]| {
            w.sb.codex_as()
                .env("CODEX_AS_PLUGIN_ROOT", &w.plugin)
                .env("CODEX_AS_RUNTIME_DIR", w.sb.path().join("rt"))
                .env("FAKE_CODEX_LOG", w.sb.path().join("codex.log"))
                .env("CLAUDE_PLUGIN_DATA", &data)
                .env("CODEX_COMPANION_SESSION_ID", "session-1")
                .current_dir(&w.ws)
                .args(args)
                .output()
                .unwrap()
        };
        let shell_job = job_of(&w.run(&["alice", "task", "--background", "from a shell"]));
        let session_job = job_of(&in_session(&[
            "alice",
            "task",
            "--background",
            "from a session",
        ]));
        for job in [&shell_job, &session_job] {
            let out = w.run(&["alice", "status", job, "--wait"]);
            assert_eq!(out.status.code(), Some(0), "{job}: {}", stderr(&out));
        }

        // The shell's list has both; the session finds the shell's job by its id.
        let out = w.run(&["alice", "status", "--all", "--json"]);
        let list = stdout(&out);
        assert!(
            list.contains(&shell_job) && list.contains(&session_job),
            "{list}"
        );
        let out = in_session(&["alice", "status", &shell_job, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains(&shell_job), "{}", stdout(&out));
        assert!(
            !w.sb.tmp().join("codex-companion").exists(),
            "the shell's job went to the temporary folder"
        );
    });
}

#[test]
fn without_claude_codes_plugin_a_shells_jobs_stay_in_the_temporary_folder() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        let job = job_of(&w.run(&["alice", "task", "--background", "from a shell"]));
        let out = w.run(&["alice", "status", &job, "--wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(w.sb.tmp().join("codex-companion").is_dir());
    });
}

#[test]
fn a_finished_task_says_how_to_resume_it_as_the_account() {
    for_each_plugin(|plugin| {
        let w = World::new(&plugin.root);
        let out = w.run(&["alice", "task", "hello"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = w.run(&["alice", "result"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("Resume in Codex: codex resume "))
        else {
            panic!("no resume line in {text}");
        };
        assert!(
            stderr(&out).contains(&format!("codex-as alice resume {id}")),
            "{}",
            stderr(&out)
        );
    });
}

#[test]
fn auto_with_every_account_skipped_exits_75() {
    let sb = Sandbox::new();
    sb.account_dir("alice");
    sb.account_dir("bob");
    let out = sb.run(&["auto", "--", "echo", "ran"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("alice: not logged in"),
        "{}",
        stderr(&out)
    );
}
