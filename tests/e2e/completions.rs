//! The completion scripts committed in `completions/` must match what the CLI generates, so that
//! they follow every new subcommand and flag.
//!
//! To regenerate them: `UPDATE_COMPLETIONS=1 cargo test --test e2e completions`
//! (or `cargo run -- completions bash > completions/codex-as.bash`, and so on).

use crate::support::{BIN, Sandbox, run};

const FILES: &[(&str, &str)] = &[
    ("bash", "codex-as.bash"),
    ("zsh", "_codex-as"),
    ("fish", "codex-as.fish"),
];

#[test]
fn committed_completions_are_up_to_date() {
    let sb = Sandbox::with_shell_accounts();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let update = std::env::var_os("UPDATE_COMPLETIONS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (shell, file) in FILES {
        let out = run(sb.command(BIN).args(["completions", shell]));
        out.ok();
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &out.stdout).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != out.stdout {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date with the CLI: {}\nregenerate with: UPDATE_COMPLETIONS=1 cargo test --test e2e completions",
        stale.join(", ")
    );
}
