//! `codex-as help [COMMAND]` prints what `--help` prints; an unknown word gets a suggestion.

use crate::support::{Sandbox, stderr, stdout};

#[test]
fn help_is_the_same_as_the_help_flag() {
    let sb = Sandbox::new();
    for (words, flag) in [
        (&["help"][..], &["--help"][..]),
        (&["help", "login"], &["login", "--help"]),
        (&["help", "doctor"], &["doctor", "--help"]),
        (&["help", "brokers", "stop"], &["brokers", "stop", "--help"]),
    ] {
        let a = sb.run(words);
        let b = sb.run(flag);
        assert_eq!(a.status.code(), Some(0), "{words:?}: {}", stderr(&a));
        assert_eq!(stdout(&a), stdout(&b), "{words:?}");
        assert!(!stdout(&a).is_empty());
    }
}

#[test]
fn help_for_an_unknown_word_suggests_the_command() {
    let sb = Sandbox::new();
    let out = sb.run(&["help", "lsit"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("did you mean 'list'?"), "{err}");
}
