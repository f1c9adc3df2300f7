//! A file where an account's home belongs (`add x --home /etc/passwd`, a `~/.codex-NAME` that is
//! a file) is refused everywhere as "a file, not a folder", never taken for a home to log in to.

use crate::support::{Sandbox, stderr, stdout};

fn refused(out: &std::process::Output, path: &std::path::Path) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    assert!(
        err.contains(&format!("{} is a file, not a folder", path.display())),
        "{err}"
    );
}

#[test]
fn a_file_is_never_an_accounts_home() {
    let sb = Sandbox::new();
    sb.with_fake_codex();
    let file = sb.path().join("passwd");
    std::fs::write(&file, "root:x:0:0\n").unwrap();
    refused(
        &sb.run(&["add", "x", "--home", file.to_str().unwrap()]),
        &file,
    );
    assert!(!stdout(&sb.run(&["list", "--names"])).contains('x'));

    let conv = sb.home().join(".codex-y");
    std::fs::write(&conv, "").unwrap();
    for args in [&["add", "y"][..], &["login", "y"], &["y", "--", "true"]] {
        refused(&sb.run(args), &conv);
    }
    assert_eq!(
        std::fs::read_to_string(&conv).unwrap(),
        "",
        "left as it was"
    );

    // A configured home replaced by a file: list and doctor say so, not "log in".
    let home = sb.path().join("zhome");
    std::fs::create_dir(&home).unwrap();
    let out = sb.run(&["add", "z", "--home", home.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_dir(&home).unwrap();
    std::fs::write(&home, "").unwrap();
    refused(&sb.run(&["z", "--", "true"]), &home);
    let list = stdout(&sb.run(&["list"]));
    assert!(list.contains("(a file, not a folder"), "{list}");
    let out = sb.run(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let z = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "z")
        .unwrap_or_else(|| panic!("{doc:#}"))
        .clone();
    assert!(
        z["problem"]
            .as_str()
            .unwrap()
            .contains("is a file, not a folder"),
        "{z}"
    );
}
