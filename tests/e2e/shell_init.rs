//! `codex-as init` in real bash, zsh and fish processes: sourcing, `use`, shortcuts, completion,
//! and evaluating hostile account homes.

use crate::support::{BIN, Sandbox, have, run};

const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// The line that loads the init in `shell`.
fn load(shell: &str, flags: &str) -> String {
    match shell {
        "fish" => format!("codex-as init fish {flags} | source\n"),
        _ => format!("eval \"$(codex-as init {shell} {flags})\"\n"),
    }
}

#[test]
fn every_init_sources_silently_under_strict_options() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        for flags in [
            "",
            "--shortcuts",
            "--no-completions",
            "--shortcuts --no-completions",
        ] {
            let script = match *shell {
                "bash" => format!("set -e\n{}", load(shell, flags)),
                _ => load(shell, flags),
            };
            let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
            out.ok();
            assert_eq!(
                (out.stdout.as_str(), out.stderr.as_str()),
                ("", ""),
                "{shell} {flags}"
            );
        }
    }
}

#[test]
fn zsh_init_survives_user_options() {
    if !have("zsh") {
        return;
    }
    let sb = Sandbox::with_shell_accounts();
    // Options users set that break careless scripts; functions must not depend on the defaults.
    let script = format!(
        "setopt ksh_arrays sh_word_split no_unset err_return rc_expand_param glob_subst\n{}\
         codex-as use alice && print -r -- $CODEX_HOME\n",
        load("zsh", "--shortcuts")
    );
    let out = run(&mut crate::support::shell::shell_cmd(&sb, "zsh", &script));
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", sb.home_path("alice-home")));
    assert_eq!(out.stderr, "");
}

#[test]
fn use_switches_this_shell_and_a_run_agrees() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let (status, dollar, account) = if *shell == "fish" {
            ("$status", "$CODEX_HOME", "$CODEX_AS_ACCOUNT")
        } else {
            ("$?", "${CODEX_HOME-}", "${CODEX_AS_ACCOUNT-}")
        };
        let script = format!(
            "{load}\
             codex-as use alice\n\
             echo \"1 {dollar} $CODEX_AS_ACCOUNT\"\n\
             codex-as alice -- sh -c 'echo \"2 $CODEX_HOME\"'\n\
             codex-as use bob\n\
             echo \"3 {dollar} \"(codex_as_prompt)\n\
             codex-as use nobody 2>/dev/null\n\
             echo \"4 {status} {dollar}\"\n\
             codex-as bob -- sh -c 'exit 7'\n\
             echo \"5 {status}\"\n\
             codex-as use --unset\n\
             echo \"6 {dollar} {account}\"\n\
             codex-as use default\n\
             echo \"7 {dollar}\"\n\
             codex-as use --help >/dev/null\n\
             echo \"8 {status}\"\n",
            load = load(shell, ""),
        )
        // `(codex_as_prompt)` is fish's command substitution; bash and zsh spell it `$(...)`.
        .replace(
            "\"(codex_as_prompt)",
            if *shell == "fish" {
                "\"(codex_as_prompt)"
            } else {
                "$(codex_as_prompt)\""
            },
        );
        let script = if *shell == "fish" {
            script
        } else {
            script.replace(
                "\"3 ${CODEX_HOME-} \"$(codex_as_prompt)\"",
                "\"3 ${CODEX_HOME-} $(codex_as_prompt)\"",
            )
        };
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        let alice = sb.home_path("alice-home");
        let bob = sb.home_path(".codex-bob");
        let default = sb.home_path(".codex");
        let expected = format!(
            "1 {alice} alice\n2 {alice}\n3 {bob} bob\n4 2 {bob}\n5 7\n6  \n7 {default}\n8 0\n"
        );
        assert_eq!(out.stdout, expected, "{shell}\nstderr: {}", out.stderr);
    }
}

#[test]
fn use_drops_another_identity_from_this_shell() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let (set, get) = if *shell == "fish" {
            (
                "set -gx OPENAI_API_KEY sk-other\n",
                "echo \"key=$OPENAI_API_KEY\"\n",
            )
        } else {
            (
                "export OPENAI_API_KEY=sk-other\n",
                "echo \"key=${OPENAI_API_KEY-}\"\n",
            )
        };
        let script = format!("{}{set}{get}codex-as use alice\n{get}", load(shell, ""));
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        assert_eq!(
            out.stdout, "key=sk-other\nkey=\n",
            "{shell}: {}",
            out.stderr
        );
    }
}

#[test]
fn use_without_the_init_says_how_to_load_it() {
    let sb = Sandbox::with_shell_accounts();
    for shell in ["/bin/zsh", "/usr/bin/fish", "/bin/bash"] {
        let out = run(sb.command(BIN).args(["use", "alice"]).env("SHELL", shell));
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        let name = shell.rsplit('/').next().unwrap();
        assert!(
            out.stderr.contains(&format!("codex-as init {name}")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn unsupported_shell_is_refused_naming_the_supported_ones() {
    let sb = Sandbox::with_shell_accounts();
    for args in [&["init", "tcsh"][..], &["init"], &["completions", "nu"]] {
        let out = run(sb.command(BIN).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(out.stdout, "");
        for s in SHELLS {
            assert!(out.stderr.contains(s), "{args:?}: {}", out.stderr);
        }
    }
}

#[test]
fn shortcuts_are_functions_that_work_in_scripts() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        // A script file run by a non-interactive shell: aliases would not expand here.
        let script = sb.root.join(format!("script.{shell}"));
        std::fs::write(
            &script,
            format!(
                "{}codex-alice exec 'two words'\ncodex-bob --version\n",
                load(shell, "--shortcuts")
            ),
        )
        .unwrap();
        let mut cmd = sb.command(shell);
        if *shell == "fish" {
            cmd.arg("--no-config");
        } else if *shell == "zsh" {
            cmd.arg("-f");
        } else {
            cmd.arg("--norc");
        }
        let out = run(cmd.arg(&script));
        out.ok();
        assert_eq!(
            out.stdout,
            format!(
                "codex home={} args=exec two words\ncodex home={} args=--version\n",
                sb.home_path("alice-home"),
                sb.home_path(".codex-bob")
            ),
            "{shell}: {}",
            out.stderr
        );
    }
}

/// Completion candidates for the command line `line` (the cursor at its end), per shell.
fn complete(sb: &Sandbox, shell: &str, line: &str, compinit_order: &str) -> Vec<String> {
    let out = match shell {
        "bash" => {
            let words = shell_words::split(line).unwrap();
            let mut words: Vec<String> = words.iter().map(|w| quote_bash(w)).collect();
            if line.ends_with(' ') {
                words.push("''".into());
            }
            let script = format!(
                "{}COMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE={}\nCOMP_POINT=${{#COMP_LINE}}\n\
                 complete -p codex-as >/dev/null\n_codex_as\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
                load("bash", "--shortcuts"),
                words.join(" "),
                words.len() - 1,
                quote_bash(line)
            );
            run(&mut crate::support::shell::shell_cmd(sb, "bash", &script))
        }
        "zsh" => {
            let out_file = sb.root.join("zc.out");
            let _ = std::fs::remove_file(&out_file);
            let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/shell/zsh_complete.zsh");
            let o = run(sb
                .command("zsh")
                .args(["-f", driver, line, compinit_order])
                .env("ZC_OUT", &out_file));
            o.ok();
            let text = std::fs::read_to_string(&out_file).unwrap_or_default();
            assert!(
                text.ends_with("--end--\n"),
                "zsh completion did not finish: {text}\n{}",
                o.stderr
            );
            return text
                .lines()
                .filter(|l| *l != "--end--")
                .map(String::from)
                .collect();
        }
        "fish" => {
            let script = format!(
                "{}complete -C {}\n",
                load("fish", "--shortcuts"),
                quote_fish(line)
            );
            run(&mut crate::support::shell::shell_cmd(sb, "fish", &script))
        }
        _ => unreachable!(),
    };
    out.ok();
    out.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

fn quote_bash(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn quote_fish(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[test]
fn completion_offers_subcommands_accounts_and_companions() {
    let sb = Sandbox::with_shell_accounts();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        for order in if *shell == "zsh" {
            &["before", "after"][..]
        } else {
            &["-"][..]
        } {
            let c = |line: &str| complete(&sb, shell, line, order);
            let ctx = format!("{shell} (compinit {order})");

            assert_eq!(c("codex-as al"), ["alice"], "{ctx}");
            let first = c("codex-as ");
            for w in ["list", "use", "init", "default", "alice", "bob"] {
                assert!(first.iter().any(|c| c == w), "{ctx}: no {w} in {first:?}");
            }
            // Hidden subcommands and flags stay hidden.
            assert!(!first.iter().any(|c| c == "--names"), "{ctx}: {first:?}");

            let after_account = c("codex-as alice ");
            for w in ["task", "adversarial-review", "status", "cancel", "--"] {
                assert!(
                    after_account.iter().any(|c| c == w),
                    "{ctx}: no {w} in {after_account:?}"
                );
            }
            assert_eq!(c("codex-as bob adv"), ["adversarial-review"], "{ctx}");

            let mut names = c("codex-as use ");
            names.sort();
            assert_eq!(names, ["alice", "bob", "default"], "{ctx}");
            assert_eq!(c("codex-as which b"), ["bob"], "{ctx}");

            let mut shells = c("codex-as env alice --shell ");
            shells.sort();
            assert_eq!(shells, ["bash", "fish", "posix", "zsh"], "{ctx}");
            assert!(
                c("codex-as init --sh").contains(&"--shortcuts".to_string()),
                "{ctx}"
            );
            // A subcommand's own subcommands, and their flags.
            let mut actions = c("codex-as brokers ");
            actions.sort();
            assert_eq!(actions, ["list", "stop"], "{ctx}");
            assert!(
                c("codex-as brokers stop --a").contains(&"--all".to_string()),
                "{ctx}"
            );

            // After `--`, commands from PATH: the fake `codex` lives in the sandbox's bin.
            assert!(
                c("codex-as alice -- cod").contains(&"codex".to_string()),
                "{ctx}"
            );
        }
    }
}

#[test]
fn completion_offers_auto_comma_lists_and_plugin_root() {
    let sb = Sandbox::with_shell_accounts();
    std::fs::create_dir_all(sb.home.join(".codex-carol")).unwrap();
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        for order in if *shell == "zsh" {
            &["before", "after"][..]
        } else {
            &["-"][..]
        } {
            let c = |line: &str| {
                let mut got = complete(&sb, shell, line, order);
                got.sort();
                got.dedup();
                got
            };
            let ctx = format!("{shell} (compinit {order})");
            assert_eq!(c("codex-as au"), ["auto"], "{ctx}");
            // A list continues with the accounts not in it yet.
            assert_eq!(
                c("codex-as alice,"),
                ["alice,bob", "alice,carol", "alice,default"],
                "{ctx}"
            );
            assert_eq!(c("codex-as alice,carol,b"), ["alice,carol,bob"], "{ctx}");
            // `--plugin-root DIR` after an account (or a list), then the companion commands.
            assert!(
                c("codex-as alice --plugin-r").contains(&"--plugin-root".to_string()),
                "{ctx}"
            );
            assert!(
                c("codex-as alice,bob --plug").contains(&"--plugin-root".to_string()),
                "{ctx}"
            );
            assert_eq!(c("codex-as alice --plugin-root /tmp ta"), ["task"], "{ctx}");
            // A folder after --plugin-root, never a companion command. (The zsh driver does not
            // see _files' candidates, so only the second half is checked there.)
            std::fs::create_dir_all(sb.root.join("tasks-dir")).unwrap();
            let dirs = c("codex-as alice --plugin-root ta");
            assert!(!dirs.contains(&"task".to_string()), "{ctx}: {dirs:?}");
            if *shell != "zsh" {
                assert!(
                    dirs.iter().any(|w| w.starts_with("tasks-dir")),
                    "{ctx}: {dirs:?}"
                );
            }
        }
    }
}

#[test]
fn completion_reads_accounts_at_completion_time() {
    let sb = Sandbox::with_shell_accounts();
    // The init is loaded before ~/.codex-dave exists; dave must still be offered.
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let script = match *shell {
            "bash" => format!(
                "{}mkdir -p \"$HOME/.codex-dave\"\nCOMP_WORDS=(codex-as d)\nCOMP_CWORD=1\n_codex_as\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
                load("bash", "")
            ),
            "zsh" => continue, // zsh reads the same helper; the zpty run above covers it
            _ => format!(
                "{}mkdir -p \"$HOME/.codex-dave\"\ncomplete -C 'codex-as d'\n",
                load("fish", "")
            ),
        };
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        let mut got: Vec<&str> = out
            .stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        got.sort();
        // `doctor` is a command that starts with d too.
        assert_eq!(got, ["dave", "default", "doctor"], "{shell}");
        std::fs::remove_dir(sb.home.join(".codex-dave")).unwrap();
    }
}

/// Homes that would run `touch pwned` if any shell evaluated them as code.
fn hostile_homes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("quote", "x'; touch pwned; '"),
        ("dquote", "x\"; touch pwned; \""),
        ("dollar", "$HOME ${HOME} $ (touch pwned) $[1]"),
        ("newline", "line\ntouch pwned\n"),
        ("fishsubst", "(touch pwned)"),
        ("backslash", "x\\'; touch pwned; #"),
        ("unicode", "héllo wörld ✓ ${HOME} %n %F{red}"),
        ("semicolon", "a;touch pwned;b"),
    ]
}

#[test]
fn hostile_homes_end_up_literal_and_run_nothing() {
    let sb = Sandbox::with_shell_accounts();
    let homes = hostile_homes();
    let dir = sb.root.join("homes");
    std::fs::create_dir(&dir).unwrap();
    let mut config = Vec::new();
    for (name, home) in &homes {
        let path = dir.join(home);
        std::fs::create_dir(&path).unwrap();
        config.push((*name, path.to_str().unwrap().to_string()));
    }
    let mut config_ref: Vec<(&str, &str)> = config.iter().map(|(n, h)| (*n, h.as_str())).collect();
    // Invalid names are ignored (never made into a shortcut or completed), whatever they hold.
    config_ref.push(("x; touch pwned", "~/alice-home"));
    config_ref.push(("$(touch pwned)", "~/alice-home"));
    sb.write_accounts(&config_ref);
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let mut script = load(shell, "--shortcuts");
        // Completion reads the names too.
        script.push_str(if *shell == "fish" {
            "complete -C 'codex-as ' >/dev/null\n"
        } else if *shell == "bash" {
            "COMP_WORDS=(codex-as '')\nCOMP_CWORD=1\n_codex_as\n"
        } else {
            ""
        });
        for (name, _) in &homes {
            script.push_str(&format!(
                "codex-as use {name}\nprintf '%s\\0' \"$CODEX_HOME\"\n"
            ));
            // Also through a run, to see the child got the same path.
            script.push_str(&format!(
                "codex-as {name} -- sh -c 'printf \"%s\\0\" \"$CODEX_HOME\"'\n"
            ));
        }
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        out.ok();
        let got: Vec<&str> = out.stdout.split_terminator('\0').collect();
        let expected: Vec<&str> = config
            .iter()
            .flat_map(|(_, h)| [h.as_str(), h.as_str()])
            .collect();
        assert_eq!(got, expected, "{shell}: {}", out.stderr);
        assert_eq!(
            sb.find("pwned"),
            Vec::<std::path::PathBuf>::new(),
            "{shell}"
        );
        assert_eq!(out.stderr, "", "{shell}");
    }
}

/// Homes holding `$(` or a backtick never reach a shell or Codex: Codex itself would run them.
#[test]
fn homes_codex_would_run_are_refused_by_use_and_run() {
    let sb = Sandbox::new();
    let dir = sb.root.join("homes");
    let mut config = Vec::new();
    for (name, home) in [("subst", "$(touch pwned)"), ("backtick", "`touch pwned`")] {
        let path = dir.join(home);
        std::fs::create_dir_all(&path).unwrap();
        config.push((name, path.to_str().unwrap().to_string()));
    }
    let config_ref: Vec<(&str, &str)> = config.iter().map(|(n, h)| (*n, h.as_str())).collect();
    sb.write_accounts(&config_ref);
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let mut script = load(shell, "--shortcuts");
        // fish has no `${X-}`, and no `set -u` either.
        let home = if *shell == "fish" {
            "$CODEX_HOME"
        } else {
            "${CODEX_HOME-}"
        };
        for (name, _) in &config {
            script.push_str(&format!(
                "codex-as use {name}\nprintf '%s\\0' \"{home}\"\ncodex-as {name} -- sh -c 'echo ran'\n"
            ));
        }
        let out = run(&mut crate::support::shell::shell_cmd(&sb, shell, &script));
        assert!(!out.stdout.contains("ran"), "{shell}: {}", out.stdout);
        assert!(
            !out.stdout.contains("pwned"),
            "{shell}: CODEX_HOME never set to it: {}",
            out.stdout
        );
        assert_eq!(
            out.stderr.matches("Codex runs as a command").count(),
            4,
            "{shell}: each refusal says why: {}",
            out.stderr
        );
        assert_eq!(
            sb.find("pwned"),
            Vec::<std::path::PathBuf>::new(),
            "{shell}"
        );
    }
}

#[test]
fn committed_completion_files_work_without_the_init() {
    let sb = Sandbox::with_shell_accounts();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let expected = ["alice", "bob", "default"];
    if have("bash") {
        let script = format!(
            "source {}\nCOMP_WORDS=(codex-as use '')\nCOMP_CWORD=2\n_codex_as\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            quote_bash(dir.join("codex-as.bash").to_str().unwrap())
        );
        let out = run(&mut crate::support::shell::shell_cmd(&sb, "bash", &script));
        out.ok();
        let mut got: Vec<&str> = out.stdout.lines().collect();
        got.sort();
        assert_eq!(got, expected, "bash: {}", out.stderr);
    }
    if have("fish") {
        let script = format!(
            "source {}\ncomplete -C 'codex-as use '\n",
            quote_fish(dir.join("codex-as.fish").to_str().unwrap())
        );
        let out = run(&mut crate::support::shell::shell_cmd(&sb, "fish", &script));
        out.ok();
        let mut got: Vec<&str> = out
            .stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, expected, "fish: {}", out.stderr);
    }
    if have("zsh") {
        let mut got = complete(
            &sb,
            "zsh",
            "codex-as use ",
            &format!("fpath:{}", dir.display()),
        );
        got.sort();
        assert_eq!(got, expected, "zsh");
    }
}

#[test]
fn env_writes_for_the_shell_that_runs_it_not_for_shell() {
    let sb = Sandbox::with_shell_accounts();
    let home = sb.home_path("alice-home");
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        // $SHELL names another shell than the one that evaluates the code.
        let liar = if *shell == "fish" {
            "/bin/bash"
        } else {
            "/usr/bin/fish"
        };
        let script = match *shell {
            "fish" => "codex-as env alice | source; and printf '%s\\n' $CODEX_HOME\n".to_string(),
            _ => "eval \"$(codex-as env alice)\" && printf '%s\\n' \"$CODEX_HOME\"\n".to_string(),
        };
        let mut cmd = crate::support::shell::shell_cmd(&sb, shell, &script);
        let out = run(cmd.env("SHELL", liar));
        out.ok();
        assert_eq!(out.stdout, format!("{home}\n"), "{shell}: {}", out.stderr);
        assert_eq!(out.stderr, "", "{shell}");

        // The code says which shell it is for, and why, in a comment.
        let script = match *shell {
            "fish" => "codex-as env alice\n",
            _ => "printf '%s\\n' \"$(codex-as env alice)\"\n",
        };
        let mut cmd = crate::support::shell::shell_cmd(&sb, shell, script);
        let out = run(cmd.env("SHELL", liar));
        out.ok();
        let first = out.stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("# {shell} code: codex-as runs under {shell}")),
            "{shell}: {}",
            out.stdout
        );
    }
}

#[test]
fn fish_env_code_leaves_status_zero_for_and() {
    if !have("fish") {
        return;
    }
    let sb = Sandbox::with_shell_accounts();
    // Variables it removes are mostly missing: removing one that is not there must not fail.
    let script = "codex-as env alice --shell fish | source; and echo ok\n";
    let out = run(&mut crate::support::shell::shell_cmd(&sb, "fish", script));
    out.ok();
    assert_eq!(out.stdout, "ok\n", "{}", out.stderr);
}

/// `eval "$(/some/path/codex-as init SHELL)"` works before PATH has codex-as: the functions call
/// it by the path it was run from, quoted for the shell however odd the folder's name.
#[test]
fn init_calls_codex_as_by_the_path_it_was_run_from() {
    let sb = Sandbox::with_shell_accounts();
    let dir = sb.mkdir("it's a \"dir\" $(touch pwned) `touch pwned` \\ (touch pwned)");
    let program = dir.join("codex-as");
    std::os::unix::fs::symlink(BIN, &program).unwrap();
    let program = program.to_str().unwrap();
    // Not even the folder of the codex-as under test: only the sandbox's bin (its fake codex).
    let path = format!("{}:/usr/bin:/bin", sb.bin_dir().display());
    for shell in SHELLS {
        if !have(shell) {
            continue;
        }
        let (load, account) = if *shell == "fish" {
            (
                format!("{} init fish | source\n", quote_fish(program)),
                "$CODEX_AS_ACCOUNT",
            )
        } else {
            (
                format!("eval \"$({} init {shell})\"\n", quote_bash(program)),
                "${CODEX_AS_ACCOUNT-}",
            )
        };
        // The completion's account names too (zsh reads them only inside its completion system,
        // which `completion_offers_subcommands_accounts_and_companions` drives).
        let names = if *shell == "zsh" {
            ""
        } else {
            "__codex_as_accounts | cut -f1 | sort | tr '\\n' ' '\necho\n"
        };
        let script = format!(
            "command -v codex-as >/dev/null && echo on-path\n\
             {load}\
             codex-as use alice\n\
             echo \"1 {account}\"\n\
             codex-as bob -- sh -c 'echo \"2 $CODEX_HOME\"'\n\
             {names}"
        );
        let mut cmd = crate::support::shell::shell_cmd(&sb, shell, &script);
        let out = run(cmd.env("PATH", &path));
        out.ok();
        let bob = sb.home_path(".codex-bob");
        let names = if *shell == "zsh" {
            ""
        } else {
            "alice bob default \n"
        };
        assert_eq!(
            out.stdout,
            format!("1 alice\n2 {bob}\n{names}"),
            "{shell}: {}",
            out.stderr
        );
        assert_eq!(
            sb.find("pwned"),
            Vec::<std::path::PathBuf>::new(),
            "{shell}"
        );
    }
}
