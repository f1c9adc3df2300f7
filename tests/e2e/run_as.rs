//! `codex-as NAME -- CMD`: the child runs as the account, and everything else passes through.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use crate::skip;
use crate::support::{Sandbox, installed, output_with_stdin, stderr, stdout};

const PRINT_HOME: &str = "printf '%s|%s' \"$CODEX_HOME\" \"$CODEX_AS_ACCOUNT\"";

/// Homes whose paths would break careless quoting. (Homes holding `$(` or a backtick are refused
/// outright, since Codex itself would run them: see `homes_codex_would_run_are_refused`.)
fn awkward_names() -> Vec<&'static str> {
    vec![
        "with space",
        "it's \"quoted\"",
        "dollar $HOME ${HOME} $ (touch pwned) $[1]",
        "semi;touch pwned;colon && touch pwned",
        "new\nline",
        "ünïcødé ✓",
        "x'; touch pwned; '",
        "back\\slash",
    ]
}

#[test]
fn child_sees_the_canonical_home_and_replaces_an_inherited_one() {
    let s = Sandbox::new();
    let real = s.account_dir("real");
    std::os::unix::fs::symlink(&real, s.home().join("link")).unwrap();
    s.write_config("[accounts.alice]\nhome = \"~/link\"\n");
    let out = s
        .codex_as()
        .env("CODEX_HOME", "/somewhere/else")
        .args(["alice", "--", "sh", "-c", PRINT_HOME])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let canonical = std::fs::canonicalize(&real).unwrap();
    assert_eq!(stdout(&out), format!("{}|alice", canonical.display()));
}

#[test]
fn exit_status_signals_and_stdin_pass_through() {
    let s = Sandbox::new();
    s.account_dir("bob");
    let out = s.run(&["bob", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));

    let out = s.run(&["bob", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(15), "killed by the signal itself");
    // And a shell sees it the usual way, 128 + N.
    let out = s
        .command("sh")
        .args(["-c", "codex-as bob -- sh -c 'kill -TERM $$'; echo $?"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "143");

    let out = output_with_stdin(s.codex_as().args(["bob", "--", "cat"]), b"hello\nworld\n");
    assert_eq!(stdout(&out), "hello\nworld\n");
}

#[test]
fn compound_command_and_cwd_run_as_the_account() {
    let s = Sandbox::new();
    let bob = std::fs::canonicalize(s.account_dir("bob")).unwrap();
    std::fs::create_dir(s.path().join("proj")).unwrap();
    let out = s.run(&[
        "bob",
        "--",
        "sh",
        "-c",
        "cd proj && printf '%s %s' \"$PWD\" \"$CODEX_HOME\"",
    ]);
    assert_eq!(
        stdout(&out),
        format!("{}/proj {}", s.path().display(), bob.display())
    );

    let proj = s.path().join("proj");
    let out = s.run(&[
        "bob",
        "--cwd",
        proj.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "pwd",
    ]);
    assert_eq!(stdout(&out).trim(), proj.to_str().unwrap());

    let out = s.run(&["bob", "--cwd", "/nonexistent/dir", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--cwd"), "{}", stderr(&out));
}

#[test]
fn identity_variables_are_dropped_unless_the_account_keeps_them() {
    let s = Sandbox::new();
    s.account_dir("bob");
    s.account_dir("ci");
    s.write_config("[accounts.ci]\npass_env = [\"OPENAI_API_KEY\"]\n");
    let show = "printf '%s|%s|%s' \"${OPENAI_API_KEY-unset}\" \"${CODEX_API_KEY-unset}\" \"${CODEX_COMPANION_APP_SERVER_ENDPOINT-unset}\"";
    let run = |name: &str| {
        let out = s
            .codex_as()
            .env("OPENAI_API_KEY", "sk-other")
            .env("CODEX_API_KEY", "ck-other")
            .env(
                "CODEX_COMPANION_APP_SERVER_ENDPOINT",
                "unix:/tmp/other.sock",
            )
            .args([name, "--", "sh", "-c", show])
            .output()
            .unwrap();
        stdout(&out)
    };
    assert_eq!(run("bob"), "unset|unset|unset");
    assert_eq!(run("ci"), "sk-other|unset|unset");
}

#[test]
fn missing_command_home_and_account_are_clear_errors() {
    let s = Sandbox::new();
    s.account_dir("bob");
    let out = s.run(&["bob", "--", "no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("command not found"));

    let noexec = s.path().join("noexec");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let out = s.run(&["bob", "--", noexec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126));

    s.write_config("[accounts.carol]\nhome = \"~/carol-home\"\n");
    let out = s.run(&["carol", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("codex-as login carol"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one line: {}",
        stderr(&out)
    );

    let out = s.run(&["bbo", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean 'bob'"),
        "{}",
        stderr(&out)
    );

    let out = s.run(&["bob"]);
    assert_eq!(out.status.code(), Some(2));
    let out = s.run(&["bob", "--"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_names_are_refused_with_exit_2_and_nothing_written() {
    let s = Sandbox::new();
    let long = "a".repeat(65);
    let reserved = ["list", "add", "use", "init", "auto", "quota"];
    let invalid = ["", "-x", ".hidden", "a b", "a/b", "é", &long, "x;y", "a$b"];
    for name in invalid.into_iter().chain(reserved) {
        let mut forms = vec![
            vec!["add", name],
            vec!["login", name],
            vec!["remove", name],
            vec!["which", name],
            vec!["env", name],
        ];
        // `codex-as list -- true` is the list command, not an account called "list".
        if !reserved.contains(&name) {
            forms.push(vec![name, "--", "true"]);
        }
        for args in forms {
            let out = s.run(&args);
            // clap handles `-x` as an unknown option before our check: still a usage error.
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(!stderr(&out).is_empty());
        }
    }
    assert!(!s.config_file().exists(), "no config written");
    let entries: Vec<_> = std::fs::read_dir(s.home()).unwrap().collect();
    assert!(entries.is_empty(), "no home created: {entries:?}");
}

#[test]
fn add_list_which_remove_round_trip_and_remove_keeps_the_home() {
    let s = Sandbox::new();
    let custom = s.path().join("homes/w");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(
        custom.join("auth.json"),
        r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-secret-value"}"#,
    )
    .unwrap();
    let out = s.run(&["add", "work", "--home", custom.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(s.config_file()).unwrap().mode() & 0o777,
        0o600
    );

    let out = s.run(&["add", "work"]);
    assert_eq!(out.status.code(), Some(2), "already configured");

    let out = s.run(&["which", "work"]);
    assert_eq!(stdout(&out).trim(), custom.to_str().unwrap());

    let out = s.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let work = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "work")
        .unwrap();
    assert_eq!(work["login"], "api-key");
    assert_eq!(work["exists"], true);
    assert_eq!(rows[0]["name"], "default");
    assert_eq!(rows[0]["default"], true);
    let text = stdout(&s.run(&["list"]));
    assert!(!text.contains("sk-secret-value") && !stdout(&out).contains("sk-secret-value"));

    let out = s.run(&["remove", "work"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        custom.join("auth.json").exists(),
        "remove never deletes a home"
    );
    let out = s.run(&["which", "work"]);
    assert_eq!(out.status.code(), Some(2));

    // `--home=~/x` reaches us unexpanded: it is kept as `~/x`, which the config expands.
    let out = s.run(&["add", "tilde", "--home=~/t-home"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(s.config_file()).unwrap();
    assert!(text.contains("home = \"~/t-home\""), "{text}");
    let out = s.run(&["which", "tilde"]);
    assert_eq!(
        stdout(&out).trim(),
        s.home().join("t-home").to_str().unwrap()
    );

    // A conventional account is not in the config: remove explains instead of deleting.
    s.account_dir("conv");
    let out = s.run(&["remove", "conv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("never deletes"), "{}", stderr(&out));
    assert!(s.home().join(".codex-conv").is_dir());
}

#[test]
fn default_account_is_the_same_however_it_is_named() {
    let s = Sandbox::new();
    std::fs::create_dir(s.home().join(".codex")).unwrap();
    std::os::unix::fs::symlink(s.home().join(".codex"), s.home().join(".codex-main")).unwrap();
    let out = s
        .codex_as()
        .env("CODEX_HOME", s.home().join(".codex-main"))
        .args(["list", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let main = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "main")
        .unwrap();
    assert_eq!(
        main["default"], true,
        "a symlink to ~/.codex is the default account"
    );
    assert_eq!(
        rows[0]["current"], true,
        "CODEX_HOME via the symlink is the default account"
    );
    let out = s.run(&["default", "--", "sh", "-c", "printf %s \"$CODEX_HOME\""]);
    assert_eq!(
        stdout(&out),
        std::fs::canonicalize(s.home().join(".codex"))
            .unwrap()
            .to_str()
            .unwrap()
    );
}

#[test]
fn fresh_default_account_runs_without_codex_home_like_codex_itself() {
    let s = Sandbox::new();
    let out = s
        .codex_as()
        .env("CODEX_HOME", "/elsewhere")
        .args([
            "default",
            "--",
            "sh",
            "-c",
            "printf %s \"${CODEX_HOME-unset}\"",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "unset");
}

#[test]
fn homes_codex_would_run_are_refused() {
    let s = Sandbox::new();
    for (i, dir) in ["dollar $(touch pwned)", "back`touch pwned`tick"]
        .into_iter()
        .enumerate()
    {
        let home = s.path().join("homes").join(dir);
        std::fs::create_dir_all(&home).unwrap();
        let out = s.run(&["add", &format!("acct{i}"), "--home", home.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{dir:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Codex runs as a command"),
            "{dir:?}: {}",
            stderr(&out)
        );
    }
    assert!(!s.config_file().exists(), "nothing added");
}

#[test]
fn awkward_homes_work_for_run_and_env_in_every_shell() {
    let s = Sandbox::new();
    let shells: Vec<(&str, PathBuf)> = ["bash", "zsh", "fish"]
        .into_iter()
        .filter_map(|sh| match installed(sh) {
            Some(p) => Some((sh, p)),
            None => {
                skip!("{sh} is not installed; its eval check did not run");
                None
            }
        })
        .collect();
    for (i, dir) in awkward_names().into_iter().enumerate() {
        let name = format!("acct{i}");
        let home = s.path().join("homes").join(dir);
        std::fs::create_dir_all(&home).unwrap();
        let out = s.run(&["add", &name, "--home", home.to_str().unwrap()]);
        assert!(out.status.success(), "{dir:?}: {}", stderr(&out));
        let want = std::fs::canonicalize(&home).unwrap();
        let want = want.to_str().unwrap();

        let out = s.run(&[&name, "--", "sh", "-c", "printf %s \"$CODEX_HOME\""]);
        assert_eq!(stdout(&out), want, "run, {dir:?}");

        for (sh, path) in &shells {
            let script = match *sh {
                "fish" => {
                    format!("codex-as env {name} --shell fish | source; printf %s \"$CODEX_HOME\"")
                }
                _ => format!(
                    "eval \"$(codex-as env {name} --shell {sh})\"; printf %s \"$CODEX_HOME\""
                ),
            };
            let out = s.command(path).args(["-c", &script]).output().unwrap();
            assert_eq!(
                stdout(&out),
                want,
                "{sh} eval of env for {dir:?}: {}",
                stderr(&out)
            );
            assert!(stderr(&out).is_empty(), "{sh}: {}", stderr(&out));
        }
    }
    let planted: Vec<_> = crate::support::proc::entries_under(s.path())
        .into_iter()
        .filter(|p| p.ends_with("pwned"))
        .collect();
    assert!(planted.is_empty(), "injected command ran: {planted:?}");
}

#[test]
fn login_creates_a_private_home_and_copies_config_never_links() {
    let s = Sandbox::new();
    s.with_fake_codex();
    std::fs::create_dir(s.home().join(".codex")).unwrap();
    std::fs::write(s.home().join(".codex/config.toml"), "model = \"o3\"\n").unwrap();
    let out = output_with_stdin(
        s.codex_as()
            .args(["login", "fresh", "--copy-config", "--", "--with-api-key"]),
        b"sk-test-key\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let home = s.home().join(".codex-fresh");
    assert_eq!(std::fs::metadata(&home).unwrap().mode() & 0o777, 0o700);
    let cfg = home.join("config.toml");
    assert!(
        !std::fs::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "model = \"o3\"\n");
    assert!(
        home.join("auth.json").exists(),
        "codex login ran as the new account"
    );
    assert!(
        !s.home().join(".codex/auth.json").exists(),
        "and not as the default one"
    );
    assert!(!stdout(&out).contains("sk-test-key") && !stderr(&out).contains("sk-test-key"));

    // Asking about an account that has no home says "not logged in" and creates nothing.
    let out = s.run(&["login", "nohome", "--", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Not logged in"), "{}", stdout(&out));
    assert!(!s.home().join(".codex-nohome").exists());

    let out = s.run(&["fresh", "--", "codex", "login", "status"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

/// `codex-as NAME -- codex login status` with the real Codex CLI, when installed.
#[test]
fn real_codex_login_status_reports_each_accounts_own_state() {
    for codex in crate::support::real_codexes() {
        eprintln!("-- against {}", codex.display());
        let s = Sandbox::new();
        std::os::unix::fs::symlink(&codex, s.bin_dir().join("codex")).unwrap();
        let out = output_with_stdin(
            s.codex_as()
                .args(["login", "keyed", "--", "--with-api-key"]),
            b"sk-test-not-a-real-key\n",
        );
        assert!(
            out.status.success(),
            "login: {} {}",
            stdout(&out),
            stderr(&out)
        );
        s.account_dir("empty");

        let keyed = s.run(&["keyed", "--", "codex", "login", "status"]);
        assert_eq!(
            keyed.status.code(),
            Some(0),
            "{} {}",
            stdout(&keyed),
            stderr(&keyed)
        );
        let text = format!("{}{}", stdout(&keyed), stderr(&keyed));
        assert!(text.contains("API key"), "{text}");
        assert!(!text.contains("sk-test-not-a-real-key"));

        let empty = s.run(&["empty", "--", "codex", "login", "status"]);
        assert_eq!(empty.status.code(), Some(1));
        assert!(format!("{}{}", stdout(&empty), stderr(&empty)).contains("Not logged in"));

        let out = s.run(&["list", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let keyed = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "keyed")
            .unwrap();
        assert_eq!(
            keyed["login"], "api-key",
            "list reads what the real codex wrote"
        );
    }
}
