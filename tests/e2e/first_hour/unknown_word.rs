//! An unknown word in command position gets "did you mean" among the commands and the
//! accounts, in one line, exit status 2, with nothing run.

use crate::support::{Sandbox, stderr, stdout};

#[test]
fn a_near_command_is_suggested_with_a_near_account() {
    let sb = Sandbox::new();
    sb.account_dir("lisa");
    sb.account_dir("bob");
    for (args, must) in [
        (&["lsit"][..], vec!["`codex-as list`"]),
        (&["lsit", "--json"], vec!["`codex-as list`"]),
        (&["qouta"], vec!["`codex-as quota`"]),
        (&["docter"], vec!["`codex-as doctor`"]),
        // Close to a command and to an account: both are named.
        (
            &["lisx", "--", "true"],
            vec!["`codex-as list`", "the account 'lisa'"],
        ),
        // Close to an account only: the account's own error, which offers to create it.
        (
            &["bbo", "--", "true"],
            vec!["did you mean 'bob'", "codex-as login bbo"],
        ),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        for m in must {
            assert!(err.contains(m), "{args:?}: no {m:?} in {err}");
        }
    }
    // A real account close to a command is never second-guessed.
    sb.account_dir("lists");
    let out = sb.run(&["lists", "--", "echo", "ran"]);
    assert_eq!(stdout(&out), "ran\n", "{}", stderr(&out));
}

#[test]
fn a_near_companion_command_is_suggested_in_a_pinned_folder() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    let out = sb.run(&["pin", "work"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (args, command) in [
        (&["taks", "fix"][..], "`codex-as task ...`"),
        (&["stauts"], "`codex-as status ...`"),
        (&["reveiw"], "`codex-as review ...`"),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("did you mean the companion command {command}")),
            "{args:?}: {err}"
        );
    }
}

/// `codex-as -- ` (no account named) runs as the folder's account: the advice names no other.
#[test]
fn advice_for_an_unnamed_run_names_the_folders_account() {
    let sb = Sandbox::new();
    sb.account_dir("work");
    let out = sb.run(&["pin", "work"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for args in [&["--"][..], &["--cwd", "."], &["--cwd", ".", "frobnicate"]] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(!err.contains("default"), "{args:?}: {err}");
        if args.len() < 3 {
            assert!(
                err.contains("`codex-as -- codex`")
                    && err.contains("this folder's account is 'work'"),
                "{args:?}: {err}"
            );
        }
    }
}
