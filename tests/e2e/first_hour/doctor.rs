//! `codex-as doctor` against a healthy sandbox (no finding, exit 0) and against the same sandbox
//! with one problem planted at a time (exactly one finding, exit 1, its fix printed).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};

use crate::support::{Sandbox, stderr, stdout};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A logged-in home, private as `codex-as login` makes it.
fn logged_in_home(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    chmod(dir, 0o700);
    let auth = dir.join("auth.json");
    std::fs::write(
        &auth,
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test"}"#,
    )
    .unwrap();
    chmod(&auth, 0o600);
}

/// default and alice logged in, the bash init in ~/.bashrc, codex on PATH, a private runtime
/// folder: nothing to report.
fn healthy() -> Sandbox {
    let sb = Sandbox::new();
    logged_in_home(&sb.home().join(".codex"));
    logged_in_home(&sb.home().join(".codex-alice"));
    std::fs::write(
        sb.home().join(".bashrc"),
        "eval \"$(codex-as init bash)\"\n",
    )
    .unwrap();
    sb.with_fake_codex();
    let run = sb.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    chmod(&run, 0o700);
    sb
}

fn doctor(sb: &Sandbox, json: bool) -> Command {
    let mut c = sb.codex_as();
    c.arg("doctor")
        .env("SHELL", "/bin/bash")
        .env("CODEX_AS_RUNTIME_DIR", sb.path().join("run"));
    if json {
        c.arg("--json");
    }
    c
}

fn findings(sb: &Sandbox, env: &[(&str, &str)]) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = doctor(sb, true).envs(env.iter().copied()).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    assert_eq!(doc["ok"].as_bool(), Some(out.status.code() == Some(0)));
    let text = doctor(sb, false)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        doc["findings"].as_array().unwrap().clone(),
        stdout(&text),
    )
}

#[test]
fn a_healthy_setup_has_no_finding() {
    let sb = healthy();
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(0), 0), "{found:?}\n{text}");
    assert!(text.starts_with("No problem found.\n"), "{text}");
    // What was seen is still said.
    assert!(
        text.contains("alice:") && text.contains("(api key)"),
        "{text}"
    );
    assert!(text.contains("the bash integration is loaded"), "{text}");
}

fn home_of(sb: &Sandbox, rel: &str) -> String {
    std::fs::canonicalize(sb.home().join(rel))
        .unwrap()
        .display()
        .to_string()
}

fn live_process(sb: &Sandbox) -> Child {
    sb.command("sleep").arg("60").spawn().unwrap()
}

#[test]
fn each_planted_problem_is_one_finding_with_its_fix() {
    struct Case {
        name: &'static str,
        env: Vec<(&'static str, String)>,
        area: &'static str,
        fix: String,
    }
    type Plant = Box<dyn Fn(&Sandbox) -> Case>;
    let cases: Vec<Plant> = vec![
        Box::new(|sb| {
            // This folder's pin names no account.
            std::fs::write(sb.path().join(".codex-account"), "nobody\n").unwrap();
            Case {
                name: "pin naming nobody",
                env: vec![],
                area: "accounts",
                fix: "codex-as pin NAME".into(),
            }
        }),
        Box::new(|sb| {
            chmod(&sb.home().join(".codex-alice"), 0o755);
            Case {
                name: "home mode",
                env: vec![],
                area: "accounts",
                fix: format!("chmod 700 '{}'", home_of(sb, ".codex-alice")),
            }
        }),
        Box::new(|sb| {
            chmod(&sb.home().join(".codex-alice/auth.json"), 0o644);
            Case {
                name: "auth.json mode",
                env: vec![],
                area: "accounts",
                fix: format!("chmod 600 '{}/auth.json'", home_of(sb, ".codex-alice")),
            }
        }),
        Box::new(|sb| {
            std::fs::remove_file(sb.home().join(".codex-alice/auth.json")).unwrap();
            Case {
                name: "not logged in",
                env: vec![],
                area: "accounts",
                fix: "codex-as login alice".into(),
            }
        }),
        Box::new(|sb| {
            sb.write_config("[accounts.bob]\nhome = \"~/bob-home\"\n");
            Case {
                name: "missing home",
                env: vec![],
                area: "accounts",
                fix: "codex-as login bob".into(),
            }
        }),
        Box::new(|sb| {
            sb.write_config("[accounts.work]\nhome = \"~/.codex-alice\"\n");
            Case {
                name: "two names, one home",
                env: vec![],
                area: "accounts",
                fix: "codex-as remove work".into(),
            }
        }),
        Box::new(|sb| {
            logged_in_home(&sb.home().join("ev$(touch pwned)"));
            sb.write_config("[accounts.evil]\nhome = \"~/ev$(touch pwned)\"\n");
            Case {
                name: "code in a home path",
                env: vec![],
                area: "accounts",
                fix: "codex-as remove evil && mv -- ".into(),
            }
        }),
        Box::new(|sb| {
            sb.write_config("[quota]\nthreshold = 120\n");
            Case {
                name: "config error",
                env: vec![],
                area: "config",
                fix: format!("edit '{}' (line 2)", sb.config_file().display()),
            }
        }),
        Box::new(|_| Case {
            name: "inherited CODEX_HOME",
            env: vec![("CODEX_HOME", "/nonexistent/codex".into())],
            area: "shell",
            fix: "unset CODEX_HOME".into(),
        }),
        Box::new(|sb| Case {
            name: "CODEX_HOME of no account",
            env: vec![("CODEX_HOME", sb.path().join("tmp").display().to_string())],
            area: "shell",
            fix: "unset CODEX_HOME".into(),
        }),
        Box::new(|_| Case {
            name: "OPENAI_API_KEY",
            env: vec![("OPENAI_API_KEY", "sk-inherited".into())],
            area: "shell",
            fix: "unset OPENAI_API_KEY".into(),
        }),
        Box::new(|_| Case {
            name: "OPENAI_IDENTITY_TOKEN_SOURCE",
            env: vec![("OPENAI_IDENTITY_TOKEN_SOURCE", "file".into())],
            area: "shell",
            fix: "unset OPENAI_IDENTITY_TOKEN_SOURCE".into(),
        }),
        Box::new(|sb| {
            let rc = sb.home().join(".bashrc");
            let mut text = std::fs::read_to_string(&rc).unwrap();
            text.push_str("alias cw='CODEX_HOME=~/.codex-alice codex'\n");
            std::fs::write(&rc, text).unwrap();
            Case {
                name: "alias setting CODEX_HOME",
                env: vec![],
                area: "shell",
                fix: format!("sed -i.bak '2d' '{}'", rc.display()),
            }
        }),
        Box::new(|sb| {
            std::fs::remove_file(sb.bin_dir().join("codex")).unwrap();
            Case {
                name: "codex missing",
                env: vec![],
                area: "codex",
                fix: "npm install -g @openai/codex".into(),
            }
        }),
        Box::new(|sb| {
            let sock = sb
                .home()
                .join(".codex-alice/app-server-control/app-server-control.sock");
            std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(sb.path().join("tmp/gone-daemon"), &sock).unwrap();
            Case {
                name: "stale daemon socket",
                env: vec![],
                area: "codex",
                fix: format!(
                    "rm '{}/app-server-control/app-server-control.sock'",
                    home_of(sb, ".codex-alice")
                ),
            }
        }),
        Box::new(|sb| {
            chmod(&sb.path().join("run"), 0o755);
            Case {
                name: "runtime folder not private",
                env: vec![],
                area: "brokers",
                fix: format!("chmod 700 '{}'", sb.path().join("run").display()),
            }
        }),
        Box::new(|sb| {
            // Every command refuses a runtime folder below a folder anyone may rename in.
            let xdg = sb.path().join("xdg");
            std::fs::create_dir_all(&xdg).unwrap();
            chmod(&xdg, 0o777);
            Case {
                name: "XDG_RUNTIME_DIR open to everyone",
                env: vec![
                    ("CODEX_AS_RUNTIME_DIR", String::new()),
                    ("XDG_RUNTIME_DIR", xdg.display().to_string()),
                ],
                area: "brokers",
                fix: "export CODEX_AS_RUNTIME_DIR=".into(),
            }
        }),
        Box::new(|sb| {
            let xdg = sb.path().join("xdg-file");
            std::fs::write(&xdg, "").unwrap();
            Case {
                name: "XDG_RUNTIME_DIR a file",
                env: vec![
                    ("CODEX_AS_RUNTIME_DIR", String::new()),
                    ("XDG_RUNTIME_DIR", xdg.display().to_string()),
                ],
                area: "brokers",
                fix: "export CODEX_AS_RUNTIME_DIR=".into(),
            }
        }),
        Box::new(|sb| {
            let run = sb.path().join("run-file");
            std::fs::write(&run, "").unwrap();
            Case {
                name: "runtime folder a file",
                env: vec![("CODEX_AS_RUNTIME_DIR", run.display().to_string())],
                area: "brokers",
                fix: format!("rm '{}'", run.display()),
            }
        }),
        Box::new(|sb| {
            let rec = sb.path().join("run/0123456789abcdef-0000abcd.json");
            std::fs::write(&rec, format!(
                r#"{{"id":"0123456789abcdef-0000abcd","workspace":"{}","account":"alice","codexHome":"{}","endpoint":"unix:/nowhere","pid":999999999,"startedAt":1,"authFingerprint":null}}"#,
                sb.path().display(), home_of(sb, ".codex-alice"))).unwrap();
            chmod(&rec, 0o600);
            Case {
                name: "dead broker record",
                env: vec![],
                area: "brokers",
                fix: "codex-as brokers".into(),
            }
        }),
        Box::new(|sb| {
            let state = sb.path().join("tmp/codex-companion");
            std::fs::create_dir_all(&state).unwrap();
            chmod(&state, 0o777);
            Case {
                name: "plugin state folder writable",
                env: vec![],
                area: "plugin",
                fix: format!("chmod 700 '{}'", state.display()),
            }
        }),
    ];
    for plant in cases {
        let sb = healthy();
        let case = plant(&sb);
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, found, text) = findings(&sb, &env);
        assert_eq!(code, Some(1), "{}: {text}", case.name);
        assert_eq!(found.len(), 1, "{}: {found:#?}", case.name);
        assert_eq!(found[0]["area"], case.area, "{}", case.name);
        let fix = found[0]["fix"].as_str().unwrap();
        assert!(
            fix.starts_with(&case.fix),
            "{}: fix {fix:?}, expected {:?}",
            case.name,
            case.fix
        );
        assert!(
            text.contains(&format!("  fix: {fix}")),
            "{}: {text}",
            case.name
        );
        assert!(!sb.home().join("pwned").exists() && !sb.path().join("pwned").exists());
        assert!(
            !text.contains("sk-inherited") && !text.contains("sk-test"),
            "a secret printed"
        );
    }
}

#[test]
fn shell_integration_is_optional_a_note_not_a_problem() {
    let sb = healthy();
    let rc = sb.home().join(".bashrc");
    std::fs::write(&rc, "# nothing\n").unwrap();
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(0), 0), "{found:?}\n{text}");
    assert!(
        text.contains(&format!(
            "the bash integration is not loaded (optional; it gives `codex-as use` and completion): echo 'eval \"$(codex-as init bash)\"' >> '{}'",
            rc.display()
        )),
        "{text}"
    );
}

#[test]
fn the_exit_status_does_not_depend_on_the_reader() {
    let sb = healthy();
    chmod(&sb.path().join("run"), 0o755);
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = doctor(&sb, json).stdout(writer).output().unwrap();
        assert_eq!(
            (out.status.code(), stderr(&out).as_str()),
            (Some(1), ""),
            "doctor (json: {json}) with a problem, its reader gone"
        );
    }
}

#[test]
fn a_plugin_broker_serving_another_account_is_found() {
    // The original bug: the plugin's broker of this workspace runs on bob's login while this
    // shell is on alice; /codex:* commands from Claude Code here would run as bob.
    let sb = healthy();
    logged_in_home(&sb.home().join(".codex-bob"));
    let mut broker = live_process(&sb);
    let state =
        crate::support::oracle::plugin_state_dir(&sb.path().join("tmp/codex-companion"), sb.path());
    std::fs::create_dir_all(&state).unwrap();
    chmod(&state, 0o700);
    chmod(state.parent().unwrap(), 0o700);
    let bob = std::fs::canonicalize(sb.home().join(".codex-bob")).unwrap();
    std::fs::write(
        state.join("broker.json"),
        format!(
            r#"{{"endpoint":"unix:/nowhere","pid":{},"codexHome":"{}"}}"#,
            broker.id(),
            bob.display()
        ),
    )
    .unwrap();
    let alice = std::fs::canonicalize(sb.home().join(".codex-alice")).unwrap();
    let (code, found, text) = findings(&sb, &[("CODEX_HOME", alice.to_str().unwrap())]);
    // The same broker is fine for a shell on bob.
    let (code_bob, found_bob, _) = findings(&sb, &[("CODEX_HOME", bob.to_str().unwrap())]);
    let _ = broker.kill();
    let _ = broker.wait();
    assert_eq!((code, found.len()), (Some(1), 1), "{text}");
    assert_eq!(found[0]["area"], "plugin");
    assert!(
        found[0]["problem"]
            .as_str()
            .unwrap()
            .contains("serves 'bob'"),
        "{text}"
    );
    assert!(
        found[0]["fix"]
            .as_str()
            .unwrap()
            .starts_with("codex-as alice task"),
        "{text}"
    );
    assert_eq!((code_bob, found_bob.len()), (Some(0), 0), "{found_bob:?}");
}

#[test]
fn claude_code_hooks_and_the_keyring_are_reported_as_notes() {
    let sb = healthy();
    std::fs::create_dir_all(sb.home().join(".claude")).unwrap();
    std::fs::write(
        sb.home().join(".claude/settings.json"),
        r#"{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"codex-as claude hook session-start"}]}]}}"#,
    )
    .unwrap();
    let out = doctor(&sb, true)
        .env(
            "CODEX_AS_PLUGIN_ROOT",
            crate::support::fixtures().join("plugin"),
        )
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = doc["notes"].to_string();
    assert!(notes.contains("codex-as hooks installed in"), "{notes}");
    assert_eq!(out.status.code(), Some(0));
}

/// Hooks without the plugin refuse every session: `claude install`, `claude status` and
/// `doctor` all say so.
#[test]
fn hooks_without_the_plugin_are_reported_everywhere() {
    let sb = healthy();
    let out = sb.run(&["claude", "install"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the hook refuses every session")
            && err.contains("the Codex plugin for Claude Code was not found"),
        "{err}"
    );
    let out = sb.run(&["claude", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("plugin: the hooks refuse every session"),
        "{}",
        stdout(&out)
    );
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(1), 1), "{text}");
    assert_eq!(found[0]["area"], "claude", "{text}");
    assert!(
        found[0]["fix"]
            .as_str()
            .unwrap()
            .starts_with("claude plugin install codex@openai-codex"),
        "{text}"
    );
    // With the plugin found, nothing is said.
    let plugin = crate::support::fixtures().join("plugin");
    let out = sb
        .codex_as()
        .env("CODEX_AS_PLUGIN_ROOT", &plugin)
        .args(["claude", "install"])
        .output()
        .unwrap();
    assert_eq!((out.status.code(), stderr(&out).as_str()), (Some(0), ""));
    let plugin = plugin.display().to_string();
    let (code, found, text) = findings(&sb, &[("CODEX_AS_PLUGIN_ROOT", &plugin)]);
    assert_eq!((code, found.len()), (Some(0), 0), "{text}");
}

#[test]
fn a_broker_on_a_replaced_login_is_found() {
    if !crate::support::have_node() {
        crate::skip!("node is not installed: the fixture plugin's companion needs it");
        return;
    }
    let sb = healthy();
    // alice's broker starts on her current login...
    let out = sb
        .codex_as()
        .env("CODEX_AS_RUNTIME_DIR", sb.path().join("run"))
        .env(
            "CODEX_AS_PLUGIN_ROOT",
            crate::support::fixtures().join("plugin"),
        )
        .args(["alice", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(0), 0), "{text}");
    // ...then she logs in again: the running broker still holds the old login.
    std::fs::write(
        sb.home().join(".codex-alice/auth.json"),
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-new"}"#,
    )
    .unwrap();
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(1), 1), "{text}");
    assert_eq!(found[0]["area"], "brokers");
    assert_eq!(found[0]["fix"], "codex-as brokers stop");
}

/// A folder pinned to a list or `auto`: accepted, each name checked; an unknown one is a
/// finding naming it, a logged-out one only skipped; a `[directories]` list naming nobody warns.
#[test]
fn a_folder_on_a_list_is_checked_name_by_name() {
    let sb = healthy();
    let pin = sb.path().join(".codex-account");
    std::fs::write(&pin, "default, alice\n").unwrap();
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(0), 0), "{found:?}\n{text}");
    assert!(text.contains("this folder uses 'default,alice'"), "{text}");

    std::fs::create_dir_all(sb.home().join(".codex-carol")).unwrap();
    chmod(&sb.home().join(".codex-carol"), 0o700);
    std::fs::write(&pin, "alice, carol\n").unwrap();
    let (_, found, text) = findings(&sb, &[]);
    // carol not being logged in is the accounts check's one finding; the folder only notes it.
    assert_eq!(found.len(), 1, "{found:?}\n{text}");
    assert_eq!(found[0]["subject"], "carol", "{found:?}");
    assert!(text.contains("not logged in, so skipped: carol"), "{text}");
    std::fs::remove_dir_all(sb.home().join(".codex-carol")).unwrap();

    std::fs::write(&pin, "auto\n").unwrap();
    let (code, found, text) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(0), 0), "{found:?}\n{text}");
    assert!(text.contains("this folder uses 'auto'"), "{text}");

    std::fs::write(&pin, "alice, bbo\n").unwrap();
    let (code, found, _) = findings(&sb, &[]);
    assert_eq!((code, found.len()), (Some(1), 1), "{found:?}");
    let what = found[0].to_string();
    assert!(
        what.contains("'bbo'") && what.contains(".codex-account"),
        "{what}"
    );
    std::fs::remove_file(&pin).unwrap();

    sb.write_config("[directories]\n\"/elsewhere\" = \"alice, wrok\"\n");
    let (_, found, text) = findings(&sb, &[]);
    let all = format!("{found:?}\n{text}");
    assert!(all.contains("'wrok' is not an account"), "{all}");
}

/// Hooks that run a codex-as that is gone, or another version than this one, are found; a new
/// `claude install` points them at this one.
#[test]
fn hooks_running_a_gone_or_other_codex_as_are_found() {
    let sb = healthy();
    let plugin = crate::support::fixtures()
        .join("plugin")
        .display()
        .to_string();
    let env = [("CODEX_AS_PLUGIN_ROOT", plugin.as_str())];
    let settings = sb.home().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let old = sb.mkdir("old version");
    let old_bin = old.join("codex-as");
    std::fs::write(&old_bin, "#!/bin/sh\necho 'codex-as 0.0.1'\n").unwrap();
    chmod(&old_bin, 0o755);
    let gone = sb.path().join("gone/codex-as");
    for (program, says) in [
        (
            gone.display().to_string(),
            "which does not exist".to_string(),
        ),
        (
            old_bin.display().to_string(),
            format!(
                "codex-as 0.0.1, not this codex-as {}",
                env!("CARGO_PKG_VERSION")
            ),
        ),
    ] {
        let hooks = serde_json::json!({"hooks": {"SessionStart": [{"hooks": [
            {"type": "command", "command": format!("'{program}' claude hook")}
        ]}]}});
        std::fs::write(&settings, hooks.to_string()).unwrap();
        let (code, found, text) = findings(&sb, &env);
        assert_eq!((code, found.len()), (Some(1), 1), "{text}");
        assert_eq!(found[0]["area"], "claude", "{text}");
        assert_eq!(found[0]["fix"], "codex-as claude install", "{text}");
        let problem = found[0]["problem"].as_str().unwrap();
        assert!(
            problem.contains(&program) && problem.contains(&says),
            "{problem}"
        );
    }
    let out = sb
        .codex_as()
        .envs(env)
        .args(["claude", "install"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, found, text) = findings(&sb, &env);
    assert_eq!((code, found.len()), (Some(0), 0), "{text}");
}

/// Looking is not touching: with the real Codex, `doctor` (and `brokers`, which asks a listener's
/// version of it too) leave no `~/.codex` behind in a setup that has none (the real `codex
/// --version` makes `$CODEX_HOME/tmp` at every start), and a second run says what the first said.
#[test]
fn doctor_with_the_real_codex_creates_no_default_home() {
    let codexes = crate::support::real_codexes();
    if codexes.is_empty() {
        crate::skip!("no real Codex CLI (CODEX_AS_REAL_CODEX)");
        return;
    }
    for codex in codexes {
        let sb = Sandbox::new();
        logged_in_home(&sb.home().join(".codex-alice"));
        sb.with_codex(&codex);
        let run = sb.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        chmod(&run, 0o700);
        let (status, first, text) = findings(&sb, &[]);
        assert!(text.contains("codex-cli"), "{}: {text}", codex.display());
        assert!(
            !sb.home().join(".codex").exists(),
            "{}: doctor created ~/.codex",
            codex.display()
        );
        let (again, second, _) = findings(&sb, &[]);
        assert_eq!((status, &first), (again, &second), "{}", codex.display());
    }
}
