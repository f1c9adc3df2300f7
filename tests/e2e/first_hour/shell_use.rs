//! `codex-as use` in real bash, zsh and fish: its exit status, the one-line notice when it
//! removes identity variables, and `use --unset` putting back exactly what `use` removed.

use crate::support::{Sandbox, have, run};

const SHELLS: &[&str] = &["bash", "zsh", "fish"];

fn load(shell: &str) -> String {
    match shell {
        "fish" => "codex-as init fish | source\n".into(),
        _ => format!("eval \"$(codex-as init {shell})\"\n"),
    }
}

/// `export NAME=VALUE` in each shell (VALUE given already quoted for it).
fn export(shell: &str, name: &str, value_q: &str) -> String {
    match shell {
        "fish" => format!("set -gx {name} {value_q}\n"),
        _ => format!("export {name}={value_q}\n"),
    }
}

/// Prints `NAME=value` or `NAME unset`.
fn show(shell: &str, name: &str) -> String {
    match shell {
        "fish" => {
            format!("if set -q {name}; echo \"{name}=$${name}\"; else; echo '{name} unset'; end\n")
                .replace("$$", "$")
        }
        _ => format!(
            "if [ -n \"${{{name}+x}}\" ]; then echo \"{name}=${name}\"; else echo '{name} unset'; fi\n"
        ),
    }
}

#[test]
fn use_succeeds_with_status_zero_so_and_chains_work() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let and = if *shell == "fish" { "; and" } else { " &&" };
        // With and without identity variables to remove (fish's `set -e` of a missing
        // variable would leave status 4), and for the default account whose home is missing.
        let script = format!(
            "{}codex-as use alice{and} echo one\n{}codex-as use bob{and} echo two\n\
             codex-as use --unset{and} echo three\ncodex-as use default{and} echo four\n",
            load(shell),
            export(shell, "CODEX_API_KEY", "k"),
        );
        std::fs::remove_dir(sb.home.join(".codex")).ok();
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        assert_eq!(
            out.stdout, "one\ntwo\nthree\nfour\n",
            "{shell}: {}",
            out.stderr
        );
        std::fs::create_dir_all(sb.home.join(".codex")).unwrap();
    }
}

#[test]
fn use_says_in_one_line_which_identity_variables_it_removed() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let quiet = run(&mut crate::support::shell::shell_cmd(
            &sb,
            shell,
            &format!("{}codex-as use alice\n", load(shell)),
        ));
        quiet.ok();
        assert_eq!(quiet.stderr, "", "{shell}: nothing removed, nothing said");
        let script = format!(
            "{}{}{}codex-as use alice\n",
            load(shell),
            export(shell, "OPENAI_API_KEY", "sk-secret-value"),
            export(shell, "CODEX_ACCESS_TOKEN", "tok"),
        );
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        assert_eq!(out.stderr.lines().count(), 1, "{shell}: {}", out.stderr);
        for must in [
            "OPENAI_API_KEY",
            "CODEX_ACCESS_TOKEN",
            "codex-as use --unset",
            "alice",
        ] {
            assert!(
                out.stderr.contains(must),
                "{shell}: {must} in {}",
                out.stderr
            );
        }
        assert!(
            !out.stderr.contains("sk-secret-value"),
            "{shell}: a secret printed"
        );
    }
}

#[test]
fn use_unset_restores_what_use_removed_and_leaves_the_accounts() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        // A value no quoting mistake survives.
        let value_q = if *shell == "fish" {
            r"'sk it'\''s $(x) `y`'".replace(r"'\''", r"\'")
        } else {
            r"'sk it'\''s $(x) `y`'".to_string()
        };
        let script = format!(
            "{load}{export}{keep}codex-as use alice\n{show_key}\
             env | grep -c sk || true\n\
             codex-as use bob\n\
             codex-as use --unset\n{show_key}{show_home}{show_acct}{show_keep}{show_other}",
            load = load(shell),
            export = export(shell, "OPENAI_API_KEY", &value_q),
            keep = export(shell, "OPENAI_BASE_URL", "http://proxy"),
            show_key = show(shell, "OPENAI_API_KEY"),
            show_home = show(shell, "CODEX_HOME"),
            show_acct = show(shell, "CODEX_AS_ACCOUNT"),
            show_keep = show(shell, "OPENAI_BASE_URL"),
            show_other = show(shell, "CODEX_API_KEY"),
        )
        .replace(
            "|| true",
            if *shell == "fish" {
                "; or true"
            } else {
                "|| true"
            },
        );
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        assert_eq!(
            out.stdout,
            "OPENAI_API_KEY unset\n0\nOPENAI_API_KEY=sk it's $(x) `y`\nCODEX_HOME unset\n\
             CODEX_AS_ACCOUNT unset\nOPENAI_BASE_URL=http://proxy\nCODEX_API_KEY unset\n",
            "{shell}: {}",
            out.stderr
        );
        // The restored variable is exported again: a child sees it.
        let child = format!(
            "{}{}codex-as use alice\ncodex-as use --unset\nsh -c 'echo \"child=$OPENAI_API_KEY\"'\n",
            load(shell),
            export(shell, "OPENAI_API_KEY", "sk-1"),
        );
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &child));
        out.ok();
        assert_eq!(out.stdout, "child=sk-1\n", "{shell}");
    }
}
