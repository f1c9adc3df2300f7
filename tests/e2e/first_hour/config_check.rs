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
