//! The local history: every run and each of its steps, in SQLite
//! (`STATE_DIR/history.db`). A step is written before it runs and again when
//! it ends, so after a crash the history shows exactly where a run stopped.
//!
//! The schema is versioned with `PRAGMA user_version`; each migration is one
//! transaction.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Schema migrations, applied in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    from_version TEXT,
    to_version   TEXT,
    outcome      TEXT,
    message      TEXT,
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX runs_by_target ON runs(target, id);
CREATE TABLE steps (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    detail      TEXT,
    error       TEXT,
    UNIQUE (run_id, seq)
);
",
    "
CREATE TABLE artifacts (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs(id),
    step_seq   INTEGER NOT NULL,
    target     TEXT NOT NULL,
    role       TEXT NOT NULL,
    version    TEXT,
    kind       TEXT NOT NULL,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX artifacts_by_target ON artifacts(target, role, version);
CREATE INDEX artifacts_by_run ON artifacts(run_id);
",
    // Products of several packages: which package an artifact is a file of
    // (NULL: the target's first package, as every artifact was before), and
    // each run's packages with their versions before and after (JSON).
    "
ALTER TABLE artifacts ADD COLUMN package TEXT;
ALTER TABLE runs ADD COLUMN packages TEXT;
",
];

/// The history database.
pub struct History {
    db: Connection,
}

/// A run as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Run id.
    pub id: i64,
    /// Target name.
    pub target: String,
    /// `upgrade`, `rollback`, `downgrade` or `recover`.
    pub kind: String,
    /// Version before the run.
    pub from: Option<String>,
    /// Version the run aimed for.
    pub to: Option<String>,
    /// `succeeded`, `rolled_back`, `failed`, `interrupted`; None while running.
    pub outcome: Option<String>,
    /// A one-line explanation of the outcome.
    pub message: Option<String>,
    /// Process that ran it.
    pub pid: i64,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; None while running.
    pub finished_at: Option<String>,
    /// Every package the run changes, with its version before and after
    /// (empty for runs recorded before products had several packages).
    pub packages: Vec<PackageChange>,
    /// Its steps, in order.
    pub steps: Vec<StepRecord>,
}

/// One package of a run: its version before (None: not installed) and the
/// version the run installs (None: the run removes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PackageChange {
    /// Package name.
    pub name: String,
    /// The version installed before the run.
    pub installed: Option<String>,
    /// The version the run installs.
    pub candidate: Option<String>,
}

/// A step as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Position in the run, from 1.
    pub seq: i64,
    /// Step name.
    pub name: String,
    /// `running`, `succeeded`, `failed`.
    pub status: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<i64>,
    /// What the step produced (JSON).
    pub detail: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a step produced that a later run may need: a verified package file
/// or a backup. Recorded in the same transaction as the step's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewArtifact {
    /// The package a package file is of (None for backups, and for the
    /// target's first package in runs recorded before products had several
    /// packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// What it is for: `package` (the version a run installs),
    /// `previous-package` (the version it replaces), `files-backup`,
    /// `database-backup`.
    pub role: String,
    /// The package version it belongs to: a package's own version; for a
    /// backup, the version installed when it was taken.
    pub version: Option<String>,
    /// `deb`, `rpm`, `files`, `sqlite`, `postgres`, `mysql`.
    pub kind: String,
    /// Where it is.
    pub path: std::path::PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An artifact as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArtifactRecord {
    /// Row id.
    pub id: i64,
    /// The run that produced it.
    pub run_id: i64,
    /// The step (sequence number) that produced it.
    pub step_seq: i64,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// What was recorded.
    #[serde(flatten)]
    pub artifact: NewArtifact,
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl History {
    /// Opens (creating if needed) `dir/history.db` and brings its schema up to date.
    pub fn open(dir: &Path) -> anyhow::Result<History> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state directory {}", dir.display()))?;
        Self::open_file(&dir.join("history.db"))
    }

    /// Opens a history database file.
    pub fn open_file(path: &Path) -> anyhow::Result<History> {
        let db = Connection::open(path)
            .with_context(|| format!("cannot open history {}", path.display()))?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        let mut h = History { db };
        h.migrate()
            .with_context(|| format!("history {}", path.display()))?;
        Ok(h)
    }

    /// Opens the history read-only when it exists (status and history must
    /// not create state); None when there is none yet.
    pub fn open_existing(dir: &Path) -> anyhow::Result<Option<History>> {
        let path = dir.join("history.db");
        if !path.exists() {
            return Ok(None);
        }
        Self::open_file(&path).map(Some)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let version: i64 = self
            .db
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            bail!(
                "schema version {version} is newer than this upkeep knows ({}); use a newer upkeep",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.db.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Records the start of a run; returns its id.
    pub fn begin_run(
        &self,
        target: &str,
        kind: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> anyhow::Result<i64> {
        self.db.execute(
            "INSERT INTO runs (target, kind, from_version, to_version, pid, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![target, kind, from, to, std::process::id(), now()],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    /// Records the packages a run changes, with their versions before and
    /// after.
    pub fn set_packages(&self, run: i64, packages: &[PackageChange]) -> anyhow::Result<()> {
        self.db.execute(
            "UPDATE runs SET packages = ?2 WHERE id = ?1",
            params![run, serde_json::to_string(packages)?],
        )?;
        Ok(())
    }

    /// Records the end of a run.
    pub fn finish_run(&self, run: i64, outcome: &str, message: Option<&str>) -> anyhow::Result<()> {
        self.db.execute(
            "UPDATE runs SET outcome = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
            params![run, outcome, message, now()],
        )?;
        Ok(())
    }

    /// Records that a step starts; returns its sequence number.
    pub fn begin_step(&self, run: i64, name: &str) -> anyhow::Result<i64> {
        let tx = self.db.unchecked_transaction()?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?1",
            [run],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO steps (run_id, seq, name, status, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
            params![run, seq, name, now()],
        )?;
        tx.commit()?;
        Ok(seq)
    }

    /// Records the end of a step, with what it produced or why it failed.
    pub fn end_step(
        &self,
        run: i64,
        seq: i64,
        duration_ms: u64,
        detail: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        self.end_step_with(run, seq, duration_ms, detail, error, &[])
    }

    /// Records the end of a step together with the artifacts it produced,
    /// in one transaction: a backup is either recorded with its step or not
    /// at all.
    pub fn end_step_with(
        &self,
        run: i64,
        seq: i64,
        duration_ms: u64,
        detail: Option<&serde_json::Value>,
        error: Option<&str>,
        artifacts: &[NewArtifact],
    ) -> anyhow::Result<()> {
        let status = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        let tx = self.db.unchecked_transaction()?;
        let now = now();
        tx.execute(
            "UPDATE steps SET status = ?3, finished_at = ?4, duration_ms = ?5, detail = ?6, error = ?7
             WHERE run_id = ?1 AND seq = ?2",
            params![
                run,
                seq,
                status,
                now,
                duration_ms as i64,
                detail.map(|d| d.to_string()),
                error
            ],
        )?;
        for a in artifacts {
            tx.execute(
                "INSERT INTO artifacts (run_id, step_seq, target, role, version, kind, path, sha256, size, created_at, package)
                 SELECT ?1, ?2, target, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM runs WHERE id = ?1",
                params![
                    run,
                    seq,
                    a.role,
                    a.version,
                    a.kind,
                    a.path.to_string_lossy(),
                    a.sha256,
                    a.size as i64,
                    now,
                    a.package
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The artifacts a run produced, in the order they were recorded.
    pub fn artifacts(&self, run: i64) -> anyhow::Result<Vec<ArtifactRecord>> {
        self.query_artifacts("WHERE a.run_id = ?1 ORDER BY a.id", params![run])
    }

    /// Artifacts of a target with `role`, newest first, optionally only
    /// those of runs that ended with `outcome`.
    pub fn artifacts_by_role(
        &self,
        target: &str,
        role: &str,
        outcome: Option<&str>,
    ) -> anyhow::Result<Vec<ArtifactRecord>> {
        self.query_artifacts(
            "WHERE a.target = ?1 AND a.role = ?2 AND (?3 IS NULL OR r.outcome = ?3) ORDER BY a.id DESC",
            params![target, role, outcome],
        )
    }

    fn query_artifacts(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> anyhow::Result<Vec<ArtifactRecord>> {
        let sql = format!(
            "SELECT a.id, a.run_id, a.step_seq, a.created_at, a.role, a.version, a.kind, a.path, a.sha256, a.size, a.package
             FROM artifacts a JOIN runs r ON r.id = a.run_id {}",
            filter
        );
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt
            .query_map(params, |r| {
                let path: String = r.get(7)?;
                let size: i64 = r.get(9)?;
                Ok(ArtifactRecord {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    step_seq: r.get(2)?,
                    created_at: r.get(3)?,
                    artifact: NewArtifact {
                        package: r.get(10)?,
                        role: r.get(4)?,
                        version: r.get(5)?,
                        kind: r.get(6)?,
                        path: path.into(),
                        sha256: r.get(8)?,
                        size: size.max(0) as u64,
                    },
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Every run of a target without an outcome, oldest first.
    pub fn unfinished_runs(&self, target: &str) -> anyhow::Result<Vec<Run>> {
        let ids: Vec<i64> = self
            .db
            .prepare("SELECT id FROM runs WHERE target = ?1 AND outcome IS NULL ORDER BY id")?
            .query_map([target], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut runs = Vec::new();
        for id in ids {
            if let Some(r) = self.run(id)? {
                runs.push(r);
            }
        }
        Ok(runs)
    }

    /// The newest run of a target of one of `kinds` that ended with `outcome`.
    pub fn last_run_where(
        &self,
        target: &str,
        kinds: &[&str],
        outcome: &str,
    ) -> anyhow::Result<Option<Run>> {
        for r in self.runs(Some(target), 1000)? {
            if kinds.contains(&r.kind.as_str()) && r.outcome.as_deref() == Some(outcome) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Runs, newest first, optionally of one target, with their steps.
    pub fn runs(&self, target: Option<&str>, limit: u32) -> anyhow::Result<Vec<Run>> {
        let mut runs = Vec::new();
        self.each_run(target, limit, true, |r| {
            runs.push(r);
            Ok(())
        })?;
        Ok(runs)
    }

    /// Hands `each` the runs, newest first, optionally of one target, at
    /// most `limit`, each with its steps: one run in memory at a time,
    /// however long the history (a listing of 100,000 runs stays as small
    /// as one of 20). `details`: whether the steps' `detail` is read (a
    /// listing that does not show it leaves it `None` and skips parsing
    /// it). An error from `each` stops the listing and is returned.
    pub fn each_run(
        &self,
        target: Option<&str>,
        limit: u32,
        details: bool,
        mut each: impl FnMut(Run) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut runs = self.db.prepare(
            "SELECT id, target, kind, from_version, to_version, outcome, message, pid, started_at, finished_at, packages
             FROM runs WHERE (?1 IS NULL OR target = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let mut steps = self.steps_query()?;
        let mut rows = runs.query(params![target, limit])?;
        while let Some(row) = rows.next()? {
            let mut run = row_to_run(row)?;
            run.steps = read_steps(&mut steps, run.id, details)?;
            each(run)?;
        }
        Ok(())
    }

    /// One run with its steps.
    pub fn run(&self, id: i64) -> anyhow::Result<Option<Run>> {
        let run = self
            .db
            .query_row(
                "SELECT id, target, kind, from_version, to_version, outcome, message, pid, started_at, finished_at, packages
                 FROM runs WHERE id = ?1",
                [id],
                row_to_run,
            )
            .optional()?;
        match run {
            Some(mut r) => {
                r.steps = self.steps(r.id)?;
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// The newest run of a target.
    pub fn last_run(&self, target: &str) -> anyhow::Result<Option<Run>> {
        Ok(self.runs(Some(target), 1)?.into_iter().next())
    }

    fn steps(&self, run: i64) -> anyhow::Result<Vec<StepRecord>> {
        read_steps(&mut self.steps_query()?, run, true)
    }

    /// The query of a run's steps, prepared once for a whole listing.
    fn steps_query(&self) -> rusqlite::Result<rusqlite::Statement<'_>> {
        self.db.prepare(
            "SELECT seq, name, status, started_at, finished_at, duration_ms, detail, error
             FROM steps WHERE run_id = ?1 ORDER BY seq",
        )
    }
}

/// The steps of a run in order, by [`History::steps_query`], their
/// `detail` parsed when `details`.
fn read_steps(
    stmt: &mut rusqlite::Statement<'_>,
    run: i64,
    details: bool,
) -> anyhow::Result<Vec<StepRecord>> {
    let steps = stmt
        .query_map([run], |r| {
            let detail = if details {
                r.get::<_, Option<String>>(6)?
                    .and_then(|d| serde_json::from_str(&d).ok())
            } else {
                None
            };
            Ok(StepRecord {
                seq: r.get(0)?,
                name: r.get(1)?,
                status: r.get(2)?,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                duration_ms: r.get(5)?,
                detail,
                error: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(steps)
}

/// Writes `{"KEY": [ITEM, ...]}` followed by a newline, exactly as
/// `serde_json::to_string_pretty` prints that object (two-space indent),
/// but one item at a time, so that a long listing is never held in memory
/// whole. A JSON string holds no raw newline, so every line of an item's
/// own pretty form is its line in the whole document, indented by the two
/// levels it sits at.
pub struct PrettyList<W: Write> {
    out: W,
    items: u64,
}

impl<W: Write> PrettyList<W> {
    /// Writes the opening of the object and of its list `key`.
    pub fn begin(out: W, key: &str) -> std::io::Result<PrettyList<W>> {
        Self::begin_after(out, &serde_json::Map::new(), key)
    }

    /// [`PrettyList::begin`], with the fields `head` before the list (such
    /// as `"schema_version"`).
    pub fn begin_after(
        mut out: W,
        head: &serde_json::Map<String, serde_json::Value>,
        key: &str,
    ) -> std::io::Result<PrettyList<W>> {
        out.write_all(b"{")?;
        for (k, v) in head {
            let k = serde_json::to_string(k).map_err(std::io::Error::other)?;
            let v = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
            write!(out, "\n  {k}: {},", v.replace('\n', "\n  "))?;
        }
        let key = serde_json::to_string(key).map_err(std::io::Error::other)?;
        write!(out, "\n  {key}: [")?;
        Ok(PrettyList { out, items: 0 })
    }

    /// Writes one item of the list.
    pub fn push(&mut self, item: &impl Serialize) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(item).map_err(std::io::Error::other)?;
        self.out
            .write_all(if self.items == 0 { b"\n" } else { b",\n" })?;
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(b"    ")?;
            self.out.write_all(line.as_bytes())?;
        }
        self.items += 1;
        Ok(())
    }

    /// Closes the list and the object, flushes, and gives the writer back.
    pub fn finish(mut self) -> std::io::Result<W> {
        let end: &[u8] = if self.items == 0 {
            b"]\n}\n"
        } else {
            b"\n  ]\n}\n"
        };
        self.out.write_all(end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        target: r.get(1)?,
        kind: r.get(2)?,
        from: r.get(3)?,
        to: r.get(4)?,
        outcome: r.get(5)?,
        message: r.get(6)?,
        pid: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        packages: r
            .get::<_, Option<String>>(10)?
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        steps: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_and_its_steps_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let run = h
            .begin_run("portal", "upgrade", Some("1.0.0-1"), Some("2.1.0-1"))
            .unwrap();
        let s1 = h.begin_step(run, "download").unwrap();
        h.end_step(
            run,
            s1,
            12,
            Some(&serde_json::json!({"sha256": "ab"})),
            None,
        )
        .unwrap();
        let s2 = h.begin_step(run, "stop").unwrap();
        assert_eq!((s1, s2), (1, 2));
        assert!(!h.unfinished_runs("portal").unwrap().is_empty());
        h.end_step(run, s2, 3, None, Some("boom")).unwrap();
        h.finish_run(run, "failed", Some("boom")).unwrap();
        assert!(h.unfinished_runs("portal").unwrap().is_empty());

        let runs = h.runs(Some("portal"), 10).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.outcome.as_deref(), Some("failed"));
        assert_eq!(r.steps.len(), 2);
        assert_eq!(r.steps[0].detail.as_ref().unwrap()["sha256"], "ab");
        assert_eq!(r.steps[1].status, "failed");
        assert_eq!(r.steps[1].error.as_deref(), Some("boom"));
        assert!(h.runs(Some("other"), 10).unwrap().is_empty());
    }

    #[test]
    fn reopening_keeps_history_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = History::open(dir.path()).unwrap();
            h.begin_run("portal", "upgrade", None, None).unwrap();
        }
        let h = History::open(dir.path()).unwrap();
        assert_eq!(h.runs(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = History::open(dir.path()).err().unwrap();
        assert!(format!("{e:#}").contains("newer than this upkeep"), "{e:#}");
    }

    fn art(role: &str, version: &str, path: &str) -> NewArtifact {
        NewArtifact {
            package: None,
            role: role.into(),
            version: Some(version.into()),
            kind: "deb".into(),
            path: path.into(),
            sha256: "ab".repeat(32),
            size: 3,
        }
    }

    #[test]
    fn artifacts_are_recorded_with_their_step_and_found_by_role() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let run = h
            .begin_run("portal", "upgrade", Some("1.0.0-1"), Some("2.1.0-1"))
            .unwrap();
        let seq = h.begin_step(run, "download").unwrap();
        h.end_step_with(
            run,
            seq,
            5,
            Some(&serde_json::json!({})),
            None,
            &[
                art("package", "2.1.0-1", "/c/new.deb"),
                art("previous-package", "1.0.0-1", "/c/old.deb"),
            ],
        )
        .unwrap();
        let all = h.artifacts(run).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].step_seq, seq);
        assert_eq!(all[1].artifact.role, "previous-package");
        // Only runs with the outcome asked for.
        assert!(
            h.artifacts_by_role("portal", "package", Some("succeeded"))
                .unwrap()
                .is_empty()
        );
        h.finish_run(run, "succeeded", None).unwrap();
        let found = h
            .artifacts_by_role("portal", "package", Some("succeeded"))
            .unwrap();
        assert_eq!(
            found[0].artifact.path,
            std::path::PathBuf::from("/c/new.deb")
        );
        assert!(
            h.artifacts_by_role("other", "package", None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_step_records_no_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let run = h.begin_run("portal", "upgrade", None, None).unwrap();
        let seq = h.begin_step(run, "backup-files").unwrap();
        h.end_step(run, seq, 1, None, Some("disk full")).unwrap();
        assert!(h.artifacts(run).unwrap().is_empty());
    }

    #[test]
    fn unfinished_runs_and_the_last_run_of_a_kind() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let a = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        h.finish_run(a, "succeeded", None).unwrap();
        let b = h
            .begin_run("portal", "rollback", Some("2"), Some("1"))
            .unwrap();
        h.finish_run(b, "failed", None).unwrap();
        let c = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        let last = h
            .last_run_where("portal", &["upgrade", "rollback"], "succeeded")
            .unwrap()
            .unwrap();
        assert_eq!(last.id, a);
        let open: Vec<i64> = h
            .unfinished_runs("portal")
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(open, [c]);
    }

    #[test]
    fn status_does_not_create_state() {
        let dir = tempfile::tempdir().unwrap();
        assert!(History::open_existing(dir.path()).unwrap().is_none());
        assert!(!dir.path().join("history.db").exists());
    }

    /// A history of `n` runs of `portal` (every third of `other`), each
    /// with steps whose details hold nested objects, arrays, escapes and
    /// empty containers; the last run unfinished.
    fn generated(dir: &Path, n: usize) -> History {
        let h = History::open(dir).unwrap();
        for i in 0..n {
            let target = if i % 3 == 2 { "other" } else { "portal" };
            let run = h
                .begin_run(target, "upgrade", Some(&format!("1.{i}.0-1")), None)
                .unwrap();
            for (k, name) in ["download", "install", "health"].iter().enumerate() {
                let seq = h.begin_step(run, name).unwrap();
                let detail = match k {
                    0 => Some(serde_json::json!({
                        "package": format!("/c/p_{i}.deb"),
                        "nested": {"list": [1, "two\nlines \"quoted\" é", null, {}], "empty": []},
                        "size": i * 1000,
                    })),
                    1 => Some(serde_json::json!({})),
                    _ => None,
                };
                let error = (i % 4 == 1 && k == 2).then_some("unit failed\twith a tab");
                h.end_step(run, seq, (i * 7 + k) as u64, detail.as_ref(), error)
                    .unwrap();
            }
            if i + 1 < n {
                h.finish_run(run, "succeeded", Some("done")).unwrap();
            }
        }
        h
    }

    #[test]
    fn pretty_list_prints_what_to_string_pretty_prints() {
        let dir = tempfile::tempdir().unwrap();
        let h = generated(dir.path(), 7);
        for (target, limit) in [(None, 100), (Some("portal"), 100), (None, 3), (None, 0)] {
            let runs = h.runs(target, limit).unwrap();
            let expected = format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::json!({ "runs": runs })).unwrap()
            );
            let mut list = PrettyList::begin(Vec::new(), "runs").unwrap();
            for r in &runs {
                list.push(r).unwrap();
            }
            let got = String::from_utf8(list.finish().unwrap()).unwrap();
            assert_eq!(got, expected, "{target:?} {limit}");
        }
    }

    #[test]
    fn pretty_list_after_head_fields_prints_what_to_string_pretty_prints() {
        let dir = tempfile::tempdir().unwrap();
        let h = generated(dir.path(), 3);
        let runs = h.runs(None, 100).unwrap();
        let mut head = serde_json::Map::new();
        head.insert("schema_version".into(), serde_json::json!(1));
        head.insert("nested".into(), serde_json::json!({"a": [1, 2]}));
        for n in [0, runs.len()] {
            let mut whole = head.clone();
            whole.insert("runs".into(), serde_json::json!(runs[..n]));
            let expected = format!("{}\n", serde_json::to_string_pretty(&whole).unwrap());
            let mut list = PrettyList::begin_after(Vec::new(), &head, "runs").unwrap();
            for r in &runs[..n] {
                list.push(r).unwrap();
            }
            let got = String::from_utf8(list.finish().unwrap()).unwrap();
            assert_eq!(got, expected, "{n} runs");
        }
    }

    #[test]
    fn listing_every_run_hands_them_out_one_at_a_time() {
        // `history --limit N` used to read every run with its steps into
        // memory before printing the first (4.5 GB for 100,000 runs).
        let dir = tempfile::tempdir().unwrap();
        let h = generated(dir.path(), 40);
        let all = h.runs(None, 1000).unwrap();
        assert_eq!(all.len(), 40);
        let mut seen = Vec::new();
        h.each_run(None, 1000, true, |r| {
            seen.push((r.id, r.steps.len(), r.steps[0].detail.clone()));
            Ok(())
        })
        .unwrap();
        let expected: Vec<_> = all
            .iter()
            .map(|r| (r.id, r.steps.len(), r.steps[0].detail.clone()))
            .collect();
        assert_eq!(seen, expected, "same runs, newest first, with their steps");
        assert!(seen.windows(2).all(|w| w[0].0 > w[1].0));
        // Without details the steps are there, their details are not read.
        h.each_run(Some("portal"), 5, false, |r| {
            assert_eq!(r.target, "portal");
            assert_eq!(r.steps.len(), 3);
            assert!(r.steps.iter().all(|s| s.detail.is_none()));
            Ok(())
        })
        .unwrap();
        // The callback's error stops the listing at once.
        let mut calls = 0;
        let e = h
            .each_run(None, 1000, true, |_| {
                calls += 1;
                anyhow::bail!("reader gone")
            })
            .unwrap_err();
        assert_eq!((calls, e.to_string().as_str()), (1, "reader gone"));
    }
}
