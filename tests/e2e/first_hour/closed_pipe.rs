//! Writing to a closed pipe (`codex-as list | head -1`) ends quietly: status 0, nothing on
//! stderr, never a panic. Each command runs with a stdout whose reader is already gone, so its
//! first write fails, whatever the size of its output. (`doctor` keeps its status: see
//! first_hour/doctor.rs.)

use crate::support::{Sandbox, stderr};

fn with_closed_stdout(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    sb.codex_as().args(args).stdout(writer).output().unwrap()
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let sb = Sandbox::new();
    sb.account_dir("alice");
    sb.with_fake_codex();
    std::fs::create_dir_all(sb.home().join(".codex")).unwrap();
    let commands: &[&[&str]] = &[
        &["list"],
        &["list", "--json"],
        &["list", "--names"],
        &["which", "alice"],
        &["env", "alice", "--shell", "bash"],
        &["use", "alice", "--emit", "fish"],
        &["quota"],
        &["quota", "--json"],
        &["brokers"],
        &["brokers", "--json"],
        &["brokers", "list"],
        &["brokers", "stop"],
        &["init", "bash"],
        &["init", "zsh", "--shortcuts"],
        &["init", "fish"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["add", "bob"],
        &["remove", "bob"],
        &["--help"],
        &["--version"],
        &["list", "--help"],
        &["login", "nobody", "--", "status"],
        &["statusline"],
        &["which"],
        &["claude", "status"],
        &["help"],
        &["help", "quota"],
    ];
    for args in commands {
        let out = with_closed_stdout(&sb, args);
        assert_eq!(
            (out.status.code(), stderr(&out).as_str()),
            (Some(0), ""),
            "codex-as {}",
            args.join(" ")
        );
    }
}
