//! The latest rate-limit reading a codex-as broker relayed for an account, kept per account so
//! that any call that went through codex-as leaves an exact, fresh reading behind at no cost.
//!
//! Where: `<runtime folder>/quota/<16 hex of the canonical home>.json`. The runtime folder is the
//! one brokers and the CLI already agree on (`$CODEX_AS_RUNTIME_DIR`, `$XDG_RUNTIME_DIR/codex-as`,
//! else `$TMPDIR/codex-as-UID`), already proven private (0700, ours) before anything in it is
//! trusted; it is usually a tmpfs, so a notification per model response costs no disk write, and
//! losing the records at reboot loses nothing the session files and a live read cannot give back.
//!
//! Files are written 0600 through a temporary file renamed over the old one (never a half-written
//! record; a planted symlink is replaced, not followed) and opened with `O_NOFOLLOW`, checked to be
//! ours and private before they are believed.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Reading;
use crate::broker::runtime_dir;
use crate::sys::fsutil;

const VERSION: u32 = 1;
/// A record is a few hundred bytes; anything much larger is not ours.
const MAX_BYTES: u64 = 64 << 10;

/// A usage-limit failure the broker saw: the account is out, whatever the last windows said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitHit {
    /// When the failure was seen, Unix seconds.
    pub at: i64,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub version: u32,
    /// The canonical home it is about (checked on reading: a hash collision or a copied file
    /// never gives one account another's reading).
    pub home: PathBuf,
    pub reading: Option<Reading>,
    #[serde(default)]
    pub limit_hit: Option<LimitHit>,
}

impl Record {
    pub fn new(home: &Path) -> Record {
        Record {
            version: VERSION,
            home: home.to_path_buf(),
            reading: None,
            limit_hit: None,
        }
    }

    /// Takes a newer reading. `account/rateLimits/updated` is sparse: what it leaves null
    /// (plan, credits, the permission) does not clear what was known (Codex's own rule).
    pub fn update(&mut self, mut new: Reading) {
        if let Some(old) = self.reading.take() {
            if new.observed_at < old.observed_at {
                self.reading = Some(old);
                return;
            }
            new.plan = new.plan.or(old.plan);
            new.credits = new.credits.or(old.credits);
            new.ordinary_usage_allowed = new.ordinary_usage_allowed.or(old.ordinary_usage_allowed);
            new.spend_control_reached = new.spend_control_reached.or(old.spend_control_reached);
        }
        self.reading = Some(new);
    }
}

/// Where records live.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in codex-as's runtime folder; None when that folder is unusable (then there is
    /// simply no record, and the other readings are used).
    pub fn open() -> Option<Store> {
        let runtime = runtime_dir::ensure().ok()?;
        Some(Store::at(runtime.join("quota")))
    }

    pub fn at(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn path_for(&self, home: &Path) -> PathBuf {
        let digest = Sha256::digest(home.as_os_str().as_encoded_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{key}.json"))
    }

    /// The record of a canonical home, if one is there and trustworthy.
    pub fn load(&self, home: &Path) -> Option<Record> {
        let path = self.path_for(home);
        let mut f = File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_BYTES || fsutil::untrusted_reason(&meta).is_some() {
            return None;
        }
        // Not readable by others either: a reading says how much an account is used.
        if meta.mode() & 0o077 != 0 {
            return None;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        let rec: Record = serde_json::from_slice(&bytes).ok()?;
        (rec.version == VERSION && rec.home == home).then_some(rec)
    }

    /// Writes a record atomically, 0600, in a private folder.
    pub fn save(&self, rec: &Record) -> std::io::Result<()> {
        // The runtime folder's own rules: made 0700 when missing, one ever writable by others
        // replaced, never trusted.
        runtime_dir::ensure_at(&self.dir)?;
        let bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        fsutil::write_private_atomic(&self.path_for(&rec.home), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Credits, Source, Window};
    use std::os::unix::fs::PermissionsExt;

    fn reading(used: f64, at: i64) -> Reading {
        let w = Window {
            used_percent: used,
            window_minutes: Some(300),
            resets_at: Some(at + 100),
        };
        Reading::new(
            Some(w),
            None,
            at,
            Source::Broker {
                from: "account/rateLimits/updated".into(),
            },
        )
    }

    #[test]
    fn round_trips_privately_and_refuses_links_and_loose_files() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::at(d.path().join("quota"));
        let home = Path::new("/h/alice");
        let mut rec = Record::new(home);
        rec.update(reading(12.0, 10));
        store.save(&rec).unwrap();
        let path = store.path_for(home);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(d.path().join("quota")).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(store.load(home), Some(rec.clone()));
        assert_eq!(store.load(Path::new("/h/bob")), None);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            store.load(home),
            None,
            "readable by others: not ours to trust"
        );

        std::fs::remove_file(&path).unwrap();
        let elsewhere = d.path().join("planted.json");
        std::fs::write(&elsewhere, serde_json::to_vec(&rec).unwrap()).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(store.load(home), None, "a symlink is never followed");
        store.save(&rec).unwrap();
        assert!(
            !std::fs::symlink_metadata(&path).unwrap().is_symlink(),
            "saving replaces the link itself"
        );
        assert_eq!(
            std::fs::read(&elsewhere).unwrap(),
            serde_json::to_vec(&rec).unwrap(),
            "the link's target is untouched"
        );
    }

    #[test]
    fn sparse_updates_keep_what_they_leave_null_and_older_ones_lose() {
        let mut rec = Record::new(Path::new("/h"));
        let mut first = reading(10.0, 10);
        first.plan = Some("pro".into());
        first.ordinary_usage_allowed = Some(false);
        first.credits = Some(Credits {
            has_credits: true,
            unlimited: false,
            balance: Some("3".into()),
        });
        rec.update(first);
        rec.update(reading(20.0, 20));
        let r = rec.reading.clone().unwrap();
        assert_eq!(r.primary.unwrap().used_percent, 20.0);
        assert_eq!(r.plan.as_deref(), Some("pro"));
        assert_eq!(r.ordinary_usage_allowed, Some(false));
        assert!(r.credits.is_some());
        rec.update(reading(99.0, 15));
        assert_eq!(
            rec.reading.unwrap().primary.unwrap().used_percent,
            20.0,
            "an older reading never replaces a newer one"
        );
    }
}
