//! Backups taken before an upgrade and restored on rollback: the product's
//! files (a gzip tar with a manifest, see [`files`](crate::backup::files))
//! and its database (see [`db`](crate::backup::db): SQLite through the
//! online backup API, PostgreSQL through `pg_dump`/`pg_restore`,
//! MySQL/MariaDB through `mariadb-dump`).
//!
//! Every backup is written by the one durable write
//! ([`fsutil::durable`](crate::fsutil::durable), [`Options::private`](crate::fsutil::durable::Options::private)):
//! `DEST.partial` with mode 0600 from its creation, fsynced, renamed into
//! place, the directory fsynced; then verified, and described by an
//! [`Artifact`](crate::backup::Artifact) (kind, path, size, SHA-256) that the
//! history records. Restoring verifies the artifact again before touching
//! anything.

pub mod db;
pub mod dblock;
pub mod files;
mod sqldump;

#[cfg(test)]
mod db_tests;
#[cfg(test)]
mod test_servers;

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use sha2::{Digest, Sha256};

pub(crate) use crate::error::one_line_text as one_line;
use crate::fsutil::hash::hash_file;

/// What a backup holds, and so how it is verified and restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Files and directories: a gzip tar written by [`files::archive`].
    Files,
    /// An SQLite database file (a copy made with the online backup API).
    Sqlite,
    /// A PostgreSQL custom-format dump (`pg_dump -Fc`).
    Postgres,
    /// A MySQL/MariaDB SQL dump (`mariadb-dump`/`mysqldump`).
    Mysql,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Files => "files",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        })
    }
}

/// A backup written and verified: what the history records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// What the backup holds.
    pub kind: Kind,
    /// Where the backup file is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

impl Artifact {
    /// Checks the file still has its size and SHA-256 and is readable as what it claims to be
    /// (tar.gz: every entry can be read through; sqlite: opens and `PRAGMA quick_check` = ok;
    /// postgres custom dump: `pg_restore --list` succeeds with a non-empty table of contents and
    /// `pg_restore` reads the whole archive through; mysql dump: parses to its end, every
    /// statement closed and the dump tool's "-- Dump completed" line last, see
    /// `backup::sqldump`). One-line errors naming the file.
    ///
    /// # Errors
    ///
    /// The file is missing or unreadable, its size or SHA-256 differ from the
    /// recorded ones, or its content is not a readable backup of its kind.
    pub fn verify(&self) -> anyhow::Result<()> {
        self.verify_inner()
            .map_err(|e| anyhow!(one_line(&format!("{}: {e:#}", self.path.display()))))
    }

    fn verify_inner(&self) -> anyhow::Result<()> {
        let meta = fs::metadata(&self.path).map_err(|e| anyhow!("cannot read the backup: {e}"))?;
        if !meta.is_file() {
            bail!("the backup is not a regular file");
        }
        if meta.len() != self.size {
            bail!(
                "the backup is {} bytes, expected {} (truncated or changed)",
                meta.len(),
                self.size
            );
        }
        let hashed = hash_file(&self.path).map_err(|e| anyhow!("cannot read the backup: {e}"))?;
        let (size, sha256) = (hashed.size, hashed.sha256());
        if size != self.size {
            bail!(
                "the backup is {size} bytes, expected {} (changed while reading)",
                self.size
            );
        }
        if !sha256.eq_ignore_ascii_case(&self.sha256) {
            bail!(
                "SHA-256 of the backup is {sha256}, expected {} (the backup was changed)",
                self.sha256
            );
        }
        match self.kind {
            Kind::Files => files::check_archive(&self.path),
            Kind::Sqlite => db::check_sqlite_file(&self.path),
            Kind::Postgres => db::check_pg_dump(&self.path),
            Kind::Mysql => sqldump::check_file(&self.path),
        }
    }

    /// The artifact of an existing file: its size and SHA-256 as they are now
    /// (not verified).
    pub(crate) fn of_file(kind: Kind, path: &Path) -> anyhow::Result<Artifact> {
        let hashed = hash_file(path)
            .map_err(|e| anyhow!("{}: cannot read the backup: {e}", path.display()))?;
        Ok(Artifact {
            kind,
            path: path.to_path_buf(),
            size: hashed.size,
            sha256: hashed.sha256(),
        })
    }
}

// ---------------------------------------------------------------------------
// Helpers shared by files and db
// ---------------------------------------------------------------------------

/// Removes a file, ignoring that it is already gone (for cleaning up after a
/// failure; the original error is what matters).
pub(crate) fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

/// A writer that counts and hashes what goes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the byte count and the SHA-256 (lowercase hex).
    pub(crate) fn finish(self) -> (W, u64, String) {
        (self.inner, self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn kind_serializes_snake_case() {
        let json = serde_json::to_string(&[Kind::Files, Kind::Sqlite, Kind::Postgres, Kind::Mysql])
            .unwrap();
        assert_eq!(json, r#"["files","sqlite","postgres","mysql"]"#);
        assert_eq!(Kind::Postgres.to_string(), "postgres");
    }

    #[test]
    fn artifact_round_trips_through_json() {
        let a = Artifact {
            kind: Kind::Mysql,
            path: PathBuf::from("/var/lib/upkeep/backups/x.sql"),
            size: 12,
            sha256: "ab".repeat(32),
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Artifact>(&json).unwrap(), a);
    }

    #[test]
    fn one_line_collapses_breaks() {
        assert_eq!(one_line(" a\n b\r\n\tc \u{7}"), "a b c \\u{7}");
    }

    #[test]
    fn a_backups_partial_file_is_0600_and_replaces_a_stale_one() {
        use crate::fsutil::durable::{Options, Pending, partial_path};
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let path = partial_path(&dest);
        fs::write(&path, "stale").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let pending = Pending::create(&dest, Options::private()).unwrap();
        assert_eq!(pending.path(), path);
        (&mut pending.file()).write_all(b"new").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        pending.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }

    #[test]
    fn verify_checks_size_hash_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.dump");
        fs::write(&path, b"SELECT 1;\n-- Dump completed\n").unwrap();
        let a = Artifact::of_file(Kind::Mysql, &path).unwrap();
        a.verify().unwrap();

        let mut wrong = a.clone();
        wrong.sha256 = "00".repeat(32);
        let err = wrong.verify().unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains("db.dump"), "{err}");
        assert!(!err.contains('\n'));

        let mut wrong = a.clone();
        wrong.size += 1;
        assert!(wrong.verify().unwrap_err().to_string().contains("bytes"));

        // Only a header is no PostgreSQL dump: pg_restore says why.
        fs::write(&path, b"PGDMP\x01\x0e rest").unwrap();
        let bad = Artifact::of_file(Kind::Postgres, &path).unwrap();
        let err = bad.verify().unwrap_err().to_string();
        assert!(err.contains("pg_restore --list failed"), "{err}");
        assert!(err.contains("db.dump") && !err.contains('\n'), "{err}");

        fs::write(&path, b"SELECT 1\n-- Dump completed\n").unwrap();
        let bad = Artifact::of_file(Kind::Mysql, &path).unwrap();
        let err = bad.verify().unwrap_err().to_string();
        assert!(err.contains("not a complete MySQL dump"), "{err}");

        let missing = Artifact {
            path: dir.path().join("gone"),
            ..a
        };
        let err = missing.verify().unwrap_err().to_string();
        assert!(err.contains("gone") && err.contains("cannot read"), "{err}");
    }
}
