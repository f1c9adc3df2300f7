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
    // clap_mangen's synopsis is made from the arguments alone and leaves out the forms the usage
    // spells out by hand: `codex-as ACCOUNT -- PROGRAM` and `codex-as ACCOUNT COMPANION-COMMAND`.
    let forms: Vec<String> = cli
        .get_overridden_usage()
        .map(|u| u.to_string())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("<ACCOUNT>"))
        .map(synopsis_line)
        .collect();
    if let Some((_, page)) = out.first_mut() {
        *page = with_synopsis_forms(page, &forms);
    }
    out
}

/// A usage line (`codex-as <ACCOUNT> [--cwd DIR] -- <PROGRAM> [ARGS]...`) in roff: the program
/// and flags bold, placeholders italic, every `-` escaped.
fn synopsis_line(usage: &str) -> String {
    usage
        .split_whitespace()
        .map(|token| {
            let start = token
                .find(|c: char| c != '[' && c != '<')
                .unwrap_or(token.len());
            let end = token
                .rfind(|c: char| !matches!(c, ']' | '>' | '.'))
                .map_or(start, |i| i + 1)
                .max(start);
            let (open, word, close) = (&token[..start], &token[start..end], &token[end..]);
            let font = if word.starts_with('-') || word == "codex-as" {
                'B'
            } else {
                'I'
            };
            let word = word.replace('-', "\\-");
            format!("{open}\\f{font}{word}\\fR{close}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `page` with `forms` added, one per line, after the synopsis clap wrote.
fn with_synopsis_forms(page: &[u8], forms: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::new();
    let mut lines = text.split_inclusive('\n');
    while let Some(line) = lines.next() {
        out.push_str(line);
        if line.trim_end() == ".SH SYNOPSIS" {
            // clap's own line first, then the forms.
            out.push_str(lines.next().unwrap_or_default());
            for form in forms {
                out.push_str(&format!(".br\n{form}\n"));
            }
        }
    }
    out.into_bytes()
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
    let synopsis = main
        .split(".SH SYNOPSIS")
        .nth(1)
        .and_then(|s| s.split(".SH ").next())
        .unwrap_or_default();
    assert!(
        synopsis.contains("<\\fIACCOUNT\\fR>")
            && synopsis.contains("\\fB\\-\\-\\fR <\\fIPROGRAM\\fR>"),
        "{synopsis}"
    );
    assert!(
        synopsis.contains("<\\fICOMPANION\\-COMMAND\\fR>"),
        "{synopsis}"
    );
    for cmd in ["doctor", "list", "login", "quota", "use"] {
        assert!(main.contains(cmd), "{cmd}");
        assert!(pages.iter().any(|(f, _)| *f == format!("codex-as-{cmd}.1")));
    }
}
