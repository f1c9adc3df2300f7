//! The man page in `man/` is generated from the clap definition, so it follows every new
//! subcommand and flag: this test fails when the committed page is out of date.
//!
//! To regenerate it: `UPDATE_MANPAGE=1 cargo test manpage`.

use clap::CommandFactory;

/// `codex-as.1` and one `codex-as-COMMAND.1` per visible subcommand, as (file name, roff).
fn pages() -> Vec<(String, Vec<u8>)> {
    let mut cli = crate::cli::Cli::command();
    cli.build();
    let mut out = Vec::new();
    let mut render = |name: String, cmd: clap::Command| {
        let mut buf = Vec::new();
        // Writing into a Vec cannot fail.
        clap_mangen::Man::new(cmd).render(&mut buf).unwrap_or(());
        out.push((format!("{name}.1"), buf));
    };
    render("codex-as".into(), cli.clone());
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("codex-as-{}", sub.get_name());
        // clap names are `&'static str` without its "string" feature; this runs once per test.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        render(name, sub.clone().name(static_name));
    }
    out
}

#[test]
fn committed_man_pages_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("UPDATE_MANPAGE").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    let pages = pages();
    for (file, roff) in &pages {
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, roff).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(roff) {
            stale.push(file.clone());
        }
    }
    // A page of a subcommand that no longer exists is stale too.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !pages.iter().any(|(f, _)| *f == name) {
                if update {
                    std::fs::remove_file(e.path()).unwrap();
                } else {
                    stale.push(name);
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "man/ is out of date with the CLI: {}\nregenerate with: UPDATE_MANPAGE=1 cargo test manpage",
        stale.join(", ")
    );
}

#[test]
fn the_page_has_the_examples_and_every_command() {
    let pages = pages();
    let main = String::from_utf8_lossy(&pages[0].1);
    assert!(main.contains("codex\\-as login work"), "examples first");
    for cmd in ["doctor", "list", "login", "quota", "use"] {
        assert!(main.contains(cmd), "{cmd}");
        assert!(pages.iter().any(|(f, _)| *f == format!("codex-as-{cmd}.1")));
    }
}
