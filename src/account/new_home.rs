//! Undoing a home that `codex-as login NEW` created when the login did not happen (codex login
//! failed or was interrupted): a typo or a cancelled browser login must not leave an account
//! behind. Only what codex-as created, and what an unfinished `codex login` leaves in it, is
//! removed; anything else means someone used the folder, and it stays.

use std::path::Path;

/// Files an unfinished `codex login` leaves in a fresh home (Codex 0.169 to 0.171).
const LOGIN_LEFTOVERS: &[&str] = &["auth.lock", "auth.json.lock"];
/// Its log folder and the one file it writes there.
const LOG_DIR: &str = "log";
const LOGIN_LOG: &str = "codex-login.log";
/// Its scratch folder, where every start puts helper links in `tmp/arg0-<os>/codex-arg0XXXX`.
const TMP_DIR: &str = "tmp";
const ARG0_PREFIX: &str = "arg0-";

/// Removes `home` when it holds nothing but login leftovers and, when `copied_config` is given,
/// a `config.toml` still byte-identical to what codex-as copied there. Returns whether it did.
pub fn remove_if_unused(home: &Path, copied_config: Option<&[u8]>) -> bool {
    let Ok(entries) = std::fs::read_dir(home) else {
        return false;
    };
    let mut to_remove = Vec::new();
    let mut log_dir = false;
    let mut tmp_dir = false;
    // Folders of codex's own helper links, removed whole (remove_dir_all never follows a link).
    let mut trees = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        let Ok(kind) = e.file_type() else {
            return false;
        };
        match name {
            _ if kind.is_file() && LOGIN_LEFTOVERS.contains(&name) => to_remove.push(e.path()),
            "config.toml"
                if kind.is_file()
                    && copied_config
                        .is_some_and(|c| std::fs::read(e.path()).is_ok_and(|now| now == c)) =>
            {
                to_remove.push(e.path())
            }
            LOG_DIR if kind.is_dir() => {
                let Ok(logs) = std::fs::read_dir(e.path()) else {
                    return false;
                };
                for l in logs.flatten() {
                    if l.file_name() != LOGIN_LOG || !l.file_type().is_ok_and(|t| t.is_file()) {
                        return false;
                    }
                    to_remove.push(l.path());
                }
                log_dir = true;
            }
            TMP_DIR if kind.is_dir() => {
                let Ok(subs) = std::fs::read_dir(e.path()) else {
                    return false;
                };
                for sub in subs.flatten() {
                    let arg0 = sub
                        .file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(ARG0_PREFIX));
                    if !arg0 || !sub.file_type().is_ok_and(|t| t.is_dir()) {
                        return false;
                    }
                    trees.push(sub.path());
                }
                tmp_dir = true;
            }
            // auth.json, sessions, anything else: the folder is in use.
            _ => return false,
        }
    }
    for f in &to_remove {
        if std::fs::remove_file(f).is_err() {
            return false;
        }
    }
    for t in &trees {
        if std::fs::remove_dir_all(t).is_err() {
            return false;
        }
    }
    if log_dir && std::fs::remove_dir(home.join(LOG_DIR)).is_err() {
        return false;
    }
    if tmp_dir && std::fs::remove_dir(home.join(TMP_DIR)).is_err() {
        return false;
    }
    std::fs::remove_dir(home).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_an_unused_home() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("h");
        std::fs::create_dir_all(home.join("log")).unwrap();
        std::fs::write(home.join("log/codex-login.log"), "x").unwrap();
        std::fs::write(home.join("auth.lock"), "").unwrap();
        std::fs::write(home.join("config.toml"), "model = 1").unwrap();
        let arg0 = home.join("tmp/arg0-linux/codex-arg0abc");
        std::fs::create_dir_all(&arg0).unwrap();
        std::os::unix::fs::symlink("/bin/true", arg0.join("apply_patch")).unwrap();
        assert!(
            !remove_if_unused(&home, Some(b"model = 2")),
            "config changed"
        );
        assert!(
            home.join("log/codex-login.log").exists(),
            "nothing removed on refusal"
        );
        assert!(remove_if_unused(&home, Some(b"model = 1")));
        assert!(!home.exists());

        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("auth.json"), "{}").unwrap();
        assert!(!remove_if_unused(&home, None));
        assert!(home.join("auth.json").exists());
        std::fs::remove_file(home.join("auth.json")).unwrap();
        std::fs::create_dir_all(home.join("tmp/mine")).unwrap();
        assert!(
            !remove_if_unused(&home, None),
            "tmp holds something not codex's"
        );
    }
}
