//! Account homes holding the package copy Codex's app-server daemon installs for itself
//! (`$CODEX_HOME/packages/app-server-daemon`, some 400 MB each): a warning, since it is Codex's
//! own and harmless, but it multiplies with every account home.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Report, q};

/// Where the daemon's copy lives, below a home.
pub const PACKAGE_DIR: &str = "packages/app-server-daemon";
/// How many entries the size walk reads before it stops: a home is not worth a long stall of
/// `doctor`, and "at least" is all the warning needs.
pub const WALK_LIMIT: usize = 20_000;

/// What a bounded walk found below a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Bytes on disk of the entries counted.
    pub bytes: u64,
    /// True when the walk stopped at its limit: the real size is larger.
    pub partial: bool,
}

/// The disk use below `root`, reading at most `limit` entries. Links are counted, never followed,
/// so a link out of the folder cannot make the walk wander or loop.
pub fn size(root: &Path, limit: usize) -> Size {
    let mut bytes = 0u64;
    let mut seen = 0usize;
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if seen >= limit {
                return Size {
                    bytes,
                    partial: true,
                };
            }
            seen += 1;
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Size {
        bytes,
        partial: false,
    }
}

/// A size as people read it, in MB (10^6 bytes) above one MB.
pub fn words(size: Size) -> String {
    let amount = if size.bytes >= 1_000_000 {
        format!("{} MB", size.bytes / 1_000_000)
    } else {
        format!("{} kB", size.bytes.div_ceil(1000))
    };
    if size.partial {
        format!("at least {amount}")
    } else {
        amount
    }
}

/// Warns when `home` (account `name`) holds the daemon's copy. `listener_live` says whether a
/// listener answers at the home's standard path: deleting the copy under a running daemon would
/// pull its program from under it, so the advice then begins with stopping it.
pub fn check(name: &str, home: &Path, listener_live: bool, report: &mut Report) {
    let dir = home.join(PACKAGE_DIR);
    if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let size = size(&dir, WALK_LIMIT);
    let disable = format!("codex-as {name} -- codex features disable daemon_auto_start");
    let advice = if listener_live {
        format!(
            "{disable}; codex-as {name} -- codex app-server daemon stop; rm -rf {}   # only once no daemon runs; or keep it",
            q(&dir)
        )
    } else {
        format!(
            "{disable}; rm -rf {}   # no daemon runs now; or keep it",
            q(&dir)
        )
    };
    report.warning(
        "codex",
        name,
        format!(
            "{} holds {} of Codex's own app-server daemon install (the TUI re-creates it when it starts its daemon: feature daemon_auto_start, or [features] daemon_auto_start = false in its config.toml)",
            dir.display(),
            words(size)
        ),
        advice,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, dirs: usize, files: usize, len: usize) {
        for d in 0..dirs {
            let sub = root.join(format!("d{d}"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..files {
                std::fs::write(sub.join(format!("f{f}")), vec![7u8; len]).unwrap();
            }
        }
    }

    #[test]
    fn size_counts_everything_below_the_limit() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), 3, 4, 10_000);
        let s = size(t.path(), WALK_LIMIT);
        assert!(!s.partial);
        // 12 files of 10 kB each take at least 120 kB on disk.
        assert!(s.bytes >= 120_000, "{s:?}");
        assert!(s.bytes < 1_000_000, "{s:?}");
    }

    #[test]
    fn size_stops_at_the_limit_and_says_so() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), 2, 10, 10);
        // 2 folders + 20 files = 22 entries.
        assert!(!size(t.path(), 22).partial);
        let cut = size(t.path(), 21);
        assert!(cut.partial);
        assert!(words(cut).starts_with("at least "), "{}", words(cut));
        assert!(cut.bytes <= size(t.path(), 22).bytes);
    }

    #[test]
    fn size_does_not_follow_links() {
        let t = tempfile::tempdir().unwrap();
        let big = t.path().join("big");
        tree(&big, 1, 5, 100_000);
        let copy = t.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        std::os::unix::fs::symlink(&big, copy.join("out")).unwrap();
        std::os::unix::fs::symlink(&copy, copy.join("loop")).unwrap();
        let s = size(&copy, WALK_LIMIT);
        assert!(!s.partial);
        assert!(s.bytes < 100_000, "{s:?}");
    }

    #[test]
    fn words_read_in_mb() {
        let s = |bytes, partial| words(Size { bytes, partial });
        assert_eq!(s(424_300_000, false), "424 MB");
        assert_eq!(s(424_300_000, true), "at least 424 MB");
        assert_eq!(s(1_500, false), "2 kB");
    }

    #[test]
    fn warns_with_home_size_and_advice_and_is_no_problem() {
        let t = tempfile::tempdir().unwrap();
        let mut report = Report::default();
        check("alice", t.path(), false, &mut report);
        assert!(report.warnings.is_empty(), "no copy, no warning");

        tree(&t.path().join(PACKAGE_DIR), 2, 3, 1_000_000);
        check("alice", t.path(), false, &mut report);
        assert!(report.findings.is_empty());
        assert_eq!(report.warnings.len(), 1);
        let w = &report.warnings[0];
        assert_eq!(w.subject, "alice");
        assert!(
            w.problem
                .contains(&t.path().join(PACKAGE_DIR).display().to_string())
        );
        assert!(w.problem.contains("6 MB"), "{}", w.problem);
        assert!(w.problem.contains("daemon"), "{}", w.problem);
        assert!(
            w.fix.contains("features disable daemon_auto_start"),
            "{}",
            w.fix
        );
        assert!(w.fix.contains("rm -rf"), "{}", w.fix);
        assert!(!w.fix.contains("daemon stop"), "{}", w.fix);

        let mut live = Report::default();
        check("alice", t.path(), true, &mut live);
        let fix = &live.warnings[0].fix;
        let stop = fix
            .find("daemon stop")
            .expect("a live daemon is stopped first");
        assert!(stop < fix.find("rm -rf").unwrap_or(0), "{fix}");
    }
}
