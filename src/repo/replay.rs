//! The replay guard: a repository's signed metadata must never go back in
//! time. An attacker (or a broken mirror) serving an older copy of validly
//! signed metadata would hide every release published since; a
//! `Valid-Until` catches that only once the old copy has expired, and YUM
//! metadata has no expiry at all.
//!
//! For each repository the newest accepted marks of its metadata are
//! recorded in one small JSON file under `STATE_DIR/repositories/`
//! ([`RECORDS_DIR`]), written by the one durable write and only after the
//! signature was verified:
//!
//! - APT: the Release file's `Date`;
//! - YUM: `repomd.xml`'s `<revision>` when it is a number, and the newest
//!   `<timestamp>` of its `<data>` entries.
//!
//! Metadata whose mark is older than the recorded one is refused, naming
//! the repository, both values and the record to remove to accept a
//! deliberate rollback of the mirror; an equal mark (the same metadata) is
//! accepted. Unsigned metadata is neither checked nor recorded: anyone can
//! write any date into it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The directory under the state directory holding the records.
pub const RECORDS_DIR: &str = "repositories";

/// One mark of how recent metadata is: a number that never decreases from
/// one publication to the next, and the text it was read from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    /// The value compared (seconds since the epoch, or a revision number).
    pub value: i64,
    /// The value as the metadata writes it, for messages.
    pub text: String,
}

/// How recent one signed copy of a repository's metadata says it is: its
/// marks by name (`Date`; `revision`, `timestamp`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// The marks by name.
    pub marks: BTreeMap<String, Mark>,
}

impl Freshness {
    /// Adds the mark `name`.
    pub fn with(mut self, name: &str, value: i64, text: impl Into<String>) -> Freshness {
        self.marks.insert(
            name.to_string(),
            Mark {
                value,
                text: text.into(),
            },
        );
        self
    }
}

/// The file of one repository.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    /// Which repository (its metadata's location), for people reading it.
    repository: String,
    /// The newest accepted marks.
    marks: BTreeMap<String, Mark>,
}

/// Where the records are kept: [`RECORDS_DIR`] under the state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayGuard {
    dir: PathBuf,
}

impl ReplayGuard {
    /// The guard keeping its records in `dir` (made when first written).
    pub fn new(dir: impl Into<PathBuf>) -> ReplayGuard {
        ReplayGuard { dir: dir.into() }
    }

    /// The record of `repository`: the first 16 hex digits of the SHA-256
    /// of its name.
    pub fn record_path(&self, repository: &str) -> PathBuf {
        use sha2::Digest;
        let key = hex::encode(&sha2::Sha256::digest(repository.as_bytes())[..8]);
        self.dir.join(format!("{key}.json"))
    }

    /// Refuses `seen`, the marks of `repository`'s verified metadata, when
    /// any is older than the one recorded, or when it has none of the
    /// recorded ones; otherwise records the newest marks. A record this
    /// process may not read or write (a non-root `check`) is skipped with a
    /// note in the log.
    pub fn check_and_record(&self, repository: &str, seen: &Freshness) -> anyhow::Result<()> {
        let path = self.record_path(repository);
        let before = match std::fs::read(&path) {
            Ok(data) => {
                let record: Record = serde_json::from_slice(&data).with_context(|| {
                    format!(
                        "{}: unreadable record of {repository}'s newest metadata (remove it to accept the repository's current metadata)",
                        path.display()
                    )
                })?;
                record.marks
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::info!(
                    "{repository}: cannot read {} ({e}): older metadata is not looked for",
                    path.display()
                );
                return Ok(());
            }
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        };
        let mut shared = false;
        for (name, old) in &before {
            let Some(now) = seen.marks.get(name) else {
                continue;
            };
            shared = true;
            if now.value < old.value {
                bail!(
                    "{repository}: refusing metadata older than this repository served before ({name} {}, newest seen before {}): a replayed or frozen mirror; if the mirror was rolled back on purpose, remove {} to accept it",
                    now.text,
                    old.text,
                    path.display()
                );
            }
        }
        if !before.is_empty() && !shared {
            let names: Vec<&str> = before.keys().map(String::as_str).collect();
            bail!(
                "{repository}: refusing metadata without the {} its earlier metadata had: a replayed or altered mirror; if the repository changed on purpose, remove {} to accept it",
                names.join(" and "),
                path.display()
            );
        }
        let mut newest = before.clone();
        newest.extend(seen.marks.clone());
        if newest == before {
            return Ok(());
        }
        let record = Record {
            repository: repository.to_string(),
            marks: newest,
        };
        let mut text = serde_json::to_vec_pretty(&record).context("record")?;
        text.push(b'\n');
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
            crate::fsutil::durable::write(
                &path,
                crate::fsutil::durable::Options::unique().mode(0o644),
                &text,
            )
        });
        match written {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                tracing::info!(
                    "{repository}: cannot record its newest metadata in {} ({e})",
                    path.display()
                );
                Ok(())
            }
            Err(e) => bail!(
                "cannot record {repository}'s newest metadata in {}: {e}",
                path.display()
            ),
        }
    }

    /// The directory of the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(value: i64) -> Freshness {
        Freshness::default().with("Date", value, format!("t{value}"))
    }

    #[test]
    fn newer_and_equal_are_recorded_older_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let guard = ReplayGuard::new(tmp.path().join("repositories"));
        let repo = "http://127.0.0.1/debian/dists/stable/";
        guard.check_and_record(repo, &date(100)).unwrap();
        let path = guard.record_path(repo);
        let recorded = std::fs::read_to_string(&path).unwrap();
        assert!(recorded.contains("t100"), "{recorded}");
        guard.check_and_record(repo, &date(100)).unwrap();
        guard.check_and_record(repo, &date(200)).unwrap();
        let e = guard.check_and_record(repo, &date(150)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(repo), "{msg}");
        assert!(msg.contains("Date t150"), "{msg}");
        assert!(msg.contains("newest seen before t200"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        // Another repository has its own record.
        guard
            .check_and_record("http://127.0.0.1/other/", &date(1))
            .unwrap();
        // Removing the record accepts the older metadata.
        std::fs::remove_file(&path).unwrap();
        guard.check_and_record(repo, &date(150)).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("t150"));
    }

    #[test]
    fn a_mark_that_disappears_is_refused_and_marks_are_kept_separately() {
        let tmp = tempfile::tempdir().unwrap();
        let guard = ReplayGuard::new(tmp.path());
        let repo = "http://127.0.0.1/repo/repodata/repomd.xml";
        let both = Freshness::default()
            .with("revision", 5, "5")
            .with("timestamp", 1000, "1000");
        guard.check_and_record(repo, &both).unwrap();
        // A non-numeric revision: the timestamp still guards.
        let only_ts = Freshness::default().with("timestamp", 1000, "1000");
        guard.check_and_record(repo, &only_ts).unwrap();
        let older_ts = Freshness::default().with("timestamp", 999, "999");
        assert!(guard.check_and_record(repo, &older_ts).is_err());
        // The revision recorded before still counts.
        let older_rev =
            Freshness::default()
                .with("revision", 4, "4")
                .with("timestamp", 2000, "2000");
        let e = guard.check_and_record(repo, &older_rev).unwrap_err();
        assert!(e.to_string().contains("revision 4"), "{e}");
        let e = guard
            .check_and_record(repo, &Freshness::default())
            .unwrap_err();
        assert!(
            e.to_string().contains("without the revision and timestamp"),
            "{e}"
        );
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let guard = ReplayGuard::new(tmp.path());
        let repo = "http://127.0.0.1/x/";
        std::fs::write(guard.record_path(repo), "{not json").unwrap();
        let e = guard.check_and_record(repo, &date(1)).unwrap_err();
        assert!(format!("{e:#}").contains("remove it"), "{e:#}");
    }
}
