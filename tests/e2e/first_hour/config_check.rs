//! The config is checked as a whole when read: every problem at once, each with its key, line
//! and column; a typo in `order` warns without stopping work; `add default` is refused.

use crate::support::{Sandbox, stderr, stdout};

#[test]
fn every_bad_key_is_reported_at_once_with_line_and_column() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    sb.write_config(
        "order = [\"work\"]\n\
         [broker]\n\
         idle_exit = \"5 mins\"\n\
         [quota]\n\
         threshold = 120\n\
         [accounts.work]\n\
         hom = \"~/w\"\n",
    );
    for args in [
        &["list"][..],
        &["which", "work"],
        &["quota"],
        &["work", "--", "true"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        for must in [
            "line 3, column 13: broker.idle_exit: \"5 mins\" is not a duration",
            "line 5, column 13: quota.threshold: 120 is outside 0-100",
            "line 7, column 1: accounts.work.hom: unknown key: did you mean 'home'?",
        ] {
            assert!(err.contains(must), "{args:?}: no {must:?} in\n{err}");
        }
        assert!(
            err.contains(&sb.config_file().display().to_string()),
            "{err}"
        );
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn a_syntax_error_gives_its_line_and_column() {
    let sb = Sandbox::new();
    sb.write_config("[accounts.work]\nhome = ~/w\n");
    let out = sb.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("line 2, column 8"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_order_naming_nobody_warns_and_work_goes_on() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    sb.write_config("order = [\"wrok\", \"work\"]\n");
    // Completion reads the names quietly; `list` says what is wrong.
    let out = sb.run(&["list", "--names"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "default\nwork\n");
    assert_eq!(stderr(&out), "");
    let out = sb.run(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("warning")
            && err.contains("line 1, column 10: order: 'wrok' is not an account"),
        "{err}"
    );
}

#[test]
fn add_default_is_refused_and_a_configured_default_home_is_an_error() {
    let sb = Sandbox::new();
    let out = sb.run(&["add", "default", "--home", "/tmp/elsewhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("~/.codex"), "{}", stderr(&out));
    assert!(!sb.config_file().exists(), "nothing written");

    sb.write_config("[accounts.default]\nhome = \"~/elsewhere\"\n");
    let out = sb.run(&["which", "default"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("line 2, column 8: accounts.default.home"),
        "{}",
        stderr(&out)
    );
    // pass_env for the default account stays allowed.
    sb.write_config("[accounts.default]\npass_env = [\"OPENAI_API_KEY\"]\n");
    let out = sb.run(&["which", "default"]);
    assert_eq!(stdout(&out), format!("{}/.codex\n", sb.home().display()));
}

#[test]
fn list_says_what_current_means_and_that_there_is_no_config_yet() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    let out = sb.run(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let legend = text.lines().last().unwrap_or_default();
    assert!(
        legend.contains("(CODEX_HOME is unset: the default)"),
        "{text}"
    );
    assert!(legend.contains("config: none yet ("), "{text}");
    let out = sb
        .codex_as()
        .arg("list")
        .env("CODEX_HOME", sb.home().join(".codex-work"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("* current account (CODEX_HOME)"), "{text}");

    sb.write_config("[accounts.work]\n");
    let text = stdout(&sb.run(&["list"]));
    let shown = format!("config: {}", sb.config_file().display());
    assert!(text.trim_end().ends_with(&shown), "{text}");
}

#[test]
fn a_config_variable_naming_no_file_is_said_once_and_add_creates_it() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    let missing = sb.path().join("typo.toml");
    let run = |args: &[&str]| {
        sb.codex_as()
            .env("CODEX_AS_CONFIG", &missing)
            .args(args)
            .output()
            .unwrap()
    };
    let said = format!(
        "CODEX_AS_CONFIG names {}, which does not exist",
        missing.display()
    );
    for args in [&["list"][..], &["which", "work"], &["work", "--", "true"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.matches(&said).count(), 1, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let out = run(&["list", "--names"]);
    assert_eq!(stderr(&out), "", "completion stays quiet");

    let out = run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "CODEX_AS_CONFIG")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        finding["fix"]
            .as_str()
            .unwrap()
            .starts_with("unset CODEX_AS_CONFIG"),
        "{finding}"
    );
    assert!(
        !stderr(&out).contains(&said),
        "a finding, not a warning too"
    );

    let other = sb.mkdir("other-home");
    let out = run(&["add", "other", "--home", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&said), "{}", stderr(&out));
    assert!(missing.exists(), "add wrote the config it names");
    assert_eq!(stderr(&run(&["list"])), "");
}
