//! `clean`: prunes cached packages and backups beyond `keep_versions`, never
//! touching what a `rollback` of the installed version or the `recover` of
//! an interrupted run needs.
//!
//! What to keep is decided from the history alone ([`select`], pure); the
//! files are then removed ([`prune`]). A file several records share (the
//! same package recorded by several runs) goes only when no kept record
//! names it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::history::{ArtifactRecord, History};

/// What must survive whatever the retention says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// Runs whose packages and backups are all kept: the upgrade a
    /// `rollback` would undo, an interrupted run.
    pub runs: Vec<i64>,
    /// Package versions kept: the installed one, and the one a `rollback`
    /// would go back to.
    pub versions: Vec<String>,
}

/// One file removed (or to remove).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// `package`, `previous-package`, `files-backup`, `database-backup`.
    pub role: String,
    /// The version it belongs to.
    pub version: Option<String>,
    /// The run that recorded it.
    pub run: i64,
    /// The file.
    pub path: PathBuf,
    /// Its recorded size.
    pub size: u64,
}

/// The records whose files go: packages beyond the newest `keep` versions
/// and backups beyond the newest `keep` runs that took some, never what
/// `protected` names (which counts towards `keep`). `records` are newest
/// first.
pub fn select(records: &[ArtifactRecord], keep: usize, protected: &Protected) -> Vec<Removed> {
    let is_package =
        |r: &ArtifactRecord| matches!(r.artifact.role.as_str(), "package" | "previous-package");
    let mut kept_versions: Vec<&str> = Vec::new();
    let mut kept_runs: Vec<i64> = Vec::new();
    let mut keep_record = Vec::with_capacity(records.len());
    for r in records {
        let version = r.artifact.version.as_deref().unwrap_or("");
        // What is protected counts towards the quota too.
        let kept = if protected.runs.contains(&r.run_id) {
            if is_package(r) {
                if !kept_versions.contains(&version) {
                    kept_versions.push(version);
                }
            } else if !kept_runs.contains(&r.run_id) {
                kept_runs.push(r.run_id);
            }
            true
        } else if is_package(r) {
            if kept_versions.contains(&version) {
                true
            } else if protected.versions.iter().any(|v| v == version) || kept_versions.len() < keep
            {
                kept_versions.push(version);
                true
            } else {
                false
            }
        } else if kept_runs.contains(&r.run_id) {
            true
        } else if kept_runs.len() < keep {
            kept_runs.push(r.run_id);
            true
        } else {
            false
        };
        keep_record.push(kept);
    }
    let kept_paths: BTreeSet<&PathBuf> = records
        .iter()
        .zip(&keep_record)
        .filter(|(_, k)| **k)
        .map(|(r, _)| &r.artifact.path)
        .collect();
    let mut seen = BTreeSet::new();
    records
        .iter()
        .zip(&keep_record)
        .filter(|(r, k)| !**k && !kept_paths.contains(&r.artifact.path))
        .filter(|(r, _)| seen.insert(r.artifact.path.clone()))
        .map(|(r, _)| Removed {
            role: r.artifact.role.clone(),
            version: r.artifact.version.clone(),
            run: r.run_id,
            path: r.artifact.path.clone(),
            size: r.artifact.size,
        })
        .collect()
}

/// Every package and backup record of `target`, newest first.
pub fn records(history: &History, target: &str) -> anyhow::Result<Vec<ArtifactRecord>> {
    let mut all = Vec::new();
    for role in [
        "package",
        "previous-package",
        "files-backup",
        "database-backup",
    ] {
        all.extend(history.artifacts_by_role(target, role, None)?);
    }
    all.sort_by_key(|a| std::cmp::Reverse(a.id));
    Ok(all)
}

/// Removes the selected files that still exist (and a backup directory
/// left empty); returns those that were there.
pub fn prune(selected: Vec<Removed>) -> anyhow::Result<Vec<Removed>> {
    let mut out = Vec::new();
    for r in selected {
        match std::fs::remove_file(&r.path) {
            Ok(()) => {
                if r.role.ends_with("-backup")
                    && let Some(dir) = r.path.parent()
                {
                    // Only succeeds when the run's directory is empty now.
                    let _ = std::fs::remove_dir(dir);
                }
                out.push(r);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("{}: {e}", r.path.display()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewArtifact;

    fn rec(id: i64, run: i64, role: &str, version: &str, path: &str) -> ArtifactRecord {
        ArtifactRecord {
            id,
            run_id: run,
            step_seq: 1,
            created_at: String::new(),
            artifact: NewArtifact {
                package: None,
                role: role.into(),
                version: Some(version.into()),
                kind: "package".into(),
                path: path.into(),
                sha256: String::new(),
                size: 10,
            },
        }
    }

    /// Five upgrades 1 → 2 → 3 → 4 → 5 → 6, newest first.
    fn history() -> Vec<ArtifactRecord> {
        let mut out = Vec::new();
        let mut id = 100;
        for run in (1..=5).rev() {
            let (from, to) = (run.to_string(), (run + 1).to_string());
            for (role, v, p) in [
                ("database-backup", from.clone(), format!("/b/run-{run}/db")),
                ("files-backup", from.clone(), format!("/b/run-{run}/files")),
                ("previous-package", from.clone(), format!("/c/{from}.deb")),
                ("package", to.clone(), format!("/c/{to}.deb")),
            ] {
                out.push(rec(id, run, role, &v, &p));
                id -= 1;
            }
        }
        out
    }

    fn paths(r: &[Removed]) -> Vec<String> {
        let mut v: Vec<String> = r.iter().map(|r| r.path.display().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_newest_versions_and_backups_and_what_a_rollback_needs() {
        // Installed 6; a rollback would undo run 5 (back to 5).
        let protected = Protected {
            runs: vec![5],
            versions: vec!["6".into(), "5".into()],
        };
        let gone = select(&history(), 2, &protected);
        assert_eq!(
            paths(&gone),
            [
                "/b/run-1/db",
                "/b/run-1/files",
                "/b/run-2/db",
                "/b/run-2/files",
                "/b/run-3/db",
                "/b/run-3/files",
                "/c/1.deb",
                "/c/2.deb",
                "/c/3.deb",
                "/c/4.deb",
            ]
        );
    }

    #[test]
    fn an_interrupted_run_keeps_everything_it_recorded() {
        let protected = Protected {
            runs: vec![5, 1],
            versions: vec!["6".into(), "5".into()],
        };
        let gone = paths(&select(&history(), 1, &protected));
        assert!(!gone.contains(&"/b/run-1/db".to_string()), "{gone:?}");
        assert!(!gone.contains(&"/c/1.deb".to_string()), "{gone:?}");
        assert!(!gone.contains(&"/c/2.deb".to_string()), "{gone:?}");
        assert!(gone.contains(&"/b/run-2/db".to_string()), "{gone:?}");
    }

    #[test]
    fn a_shared_file_goes_only_when_no_kept_record_names_it() {
        // Version 3 recorded twice under one path: by run 2 (as the new
        // package) and run 3 (as the previous one); run 3 is protected.
        let protected = Protected {
            runs: vec![3],
            versions: vec![],
        };
        let gone = paths(&select(&history(), 0, &protected));
        assert!(!gone.contains(&"/c/3.deb".to_string()), "{gone:?}");
        assert!(!gone.contains(&"/c/4.deb".to_string()), "{gone:?}");
        assert_eq!(gone.iter().filter(|p| *p == "/c/2.deb").count(), 1);
    }

    #[test]
    fn prune_removes_files_and_empty_run_directories() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-1");
        std::fs::create_dir(&run).unwrap();
        let f = run.join("files.tar.gz");
        std::fs::write(&f, "x").unwrap();
        let removed = prune(vec![
            Removed {
                role: "files-backup".into(),
                version: None,
                run: 1,
                path: f.clone(),
                size: 1,
            },
            Removed {
                role: "package".into(),
                version: None,
                run: 1,
                path: dir.path().join("gone.deb"),
                size: 1,
            },
        ])
        .unwrap();
        assert_eq!(removed.len(), 1);
        assert!(!run.exists());
    }
}
