//! The orchestrator: a plan (what to install, from what, what to restore)
//! and the journaled steps that apply it — a visible state machine.
//!
//! Upgrade, rollback and downgrade are one *transition* from the installed
//! version to another; they differ only in the restore steps:
//!
//! ```text
//!  preflight ─► download ─► lock ─► backup-files ─► stop ─► backup-database
//!  (nothing on the host changes before the stop; a failure there exits 1/3)
//!     ─► [restore-database ─► restore-files]   (rollback, downgrade)
//!     ─► install ─► reload ─► start ─► health ─► commit ─► cleanup
//!
//!  any failure after the stop (or SIGINT/SIGTERM, honoured between steps):
//!  revert-stop ─► revert-restore-files ─► revert-restore-database
//!     ─► revert-install (the previous package, from the local cache)
//!     ─► revert-reload ─► revert-start ─► revert-health
//! ```
//!
//! Each step is written to the history before it runs and again when it
//! ends, in one transaction with what it produced (package and backup paths,
//! hashes), so that `status` names an interrupted run and its next step and
//! `recover` can finish or undo it from the history alone ([`recover`]).
//! Slow work (download, verification, file backups) happens before the stop;
//! the database is dumped after it, so that the dump is consistent.

pub mod apply;
pub mod clean;
pub mod configs;
#[cfg(test)]
mod in_process;
pub mod journal;
pub mod path;
pub mod plan;
pub mod product;
pub mod recover;
pub mod review;
pub mod sources;

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;

use crate::backup::Artifact;
use crate::download::Http;
use crate::error::Error;
use crate::history::{History, NewArtifact};
use crate::pkg::Installed;
use crate::repo::Candidate;
use crate::signals::Interrupt;

pub use apply::apply;
pub use recover::recover;

/// What kind of run a transition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// To a newer version.
    Upgrade,
    /// Undo the last upgrade: its previous package, config and database.
    Rollback,
    /// To an older version recorded in the history.
    Downgrade,
}

impl RunKind {
    /// The name in the history and the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Upgrade => "upgrade",
            RunKind::Rollback => "rollback",
            RunKind::Downgrade => "downgrade",
        }
    }
}

/// The steps of a transition. The same steps, prefixed `revert-`, undo a
/// failed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Check what the run needs before touching anything: the database and
    /// its backup tools, the packages.
    Preflight,
    /// Download the package (and the previous one, for a rollback) and
    /// verify their SHA-256 — the service still runs.
    Download,
    /// Take the fleet's slot (with `[fleet]`), then the dpkg/rpm lock, then
    /// the database's advisory lock; each is held until the run ends.
    Lock,
    /// Archive the config files and `backup_paths` (0600 tar.gz).
    BackupFiles,
    /// Stop the target's units and wait until they are inactive.
    Stop,
    /// Dump the database (consistent: the service is stopped).
    BackupDatabase,
    /// Put a database backup back (rollback, downgrade, revert).
    RestoreDatabase,
    /// Put the config and theme files back (rollback, downgrade, revert).
    RestoreFiles,
    /// Install the package with dpkg or rpm.
    Install,
    /// Merge the config files (upgrade, by `config_merge`) and deal with
    /// the `.dpkg-dist`/`.rpmnew` files the install left.
    Config,
    /// Reload unit files (the package may ship a new unit).
    Reload,
    /// Start the units and wait for their start jobs.
    Start,
    /// The health gate: units active and stable, URL 2xx, no error in the
    /// journal since the install.
    Health,
    /// Record the new version as the good one.
    Commit,
    /// Release the package manager's lock.
    Cleanup,
}

/// The steps of an upgrade, in order.
pub const UPGRADE_STEPS: &[Step] = &[
    Step::Preflight,
    Step::Download,
    Step::Lock,
    Step::BackupFiles,
    Step::Stop,
    Step::BackupDatabase,
    Step::Install,
    Step::Config,
    Step::Reload,
    Step::Start,
    Step::Health,
    Step::Commit,
    Step::Cleanup,
];

/// The steps of a rollback or downgrade, in order: an upgrade's, with the
/// old database and config files put back before the older package goes in.
pub const RESTORING_STEPS: &[Step] = &[
    Step::Preflight,
    Step::Download,
    Step::Lock,
    Step::BackupFiles,
    Step::Stop,
    Step::BackupDatabase,
    Step::RestoreDatabase,
    Step::RestoreFiles,
    Step::Install,
    Step::Config,
    Step::Reload,
    Step::Start,
    Step::Health,
    Step::Commit,
    Step::Cleanup,
];

/// The steps that undo a failed transition, in order.
pub const REVERT_STEPS: &[Step] = &[
    Step::Stop,
    Step::RestoreFiles,
    Step::RestoreDatabase,
    Step::Install,
    Step::Reload,
    Step::Start,
    Step::Health,
];

impl Step {
    /// The step's name in the history.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Download => "download",
            Step::Lock => "lock",
            Step::BackupFiles => "backup-files",
            Step::Stop => "stop",
            Step::BackupDatabase => "backup-database",
            Step::RestoreDatabase => "restore-database",
            Step::RestoreFiles => "restore-files",
            Step::Install => "install",
            Step::Config => "config",
            Step::Reload => "reload",
            Step::Start => "start",
            Step::Health => "health",
            Step::Commit => "commit",
            Step::Cleanup => "cleanup",
        }
    }

    /// The name of the step undoing a failed run.
    pub fn revert_name(self) -> String {
        format!("revert-{}", self.name())
    }

    /// True once the host has been touched: a failure from here on cannot
    /// simply be abandoned.
    pub fn changes_host(self) -> bool {
        !matches!(
            self,
            Step::Preflight | Step::Download | Step::Lock | Step::BackupFiles
        )
    }

    /// True for the steps that change the product's data or files: from the
    /// first of them on, undoing a run means restoring the backups.
    pub fn touches_data(self) -> bool {
        matches!(
            self,
            Step::RestoreDatabase | Step::RestoreFiles | Step::Install | Step::Config
        )
    }
}

/// The steps of a transition of `kind`, in order.
pub fn steps_for(kind: RunKind) -> &'static [Step] {
    match kind {
        RunKind::Upgrade => UPGRADE_STEPS,
        RunKind::Rollback | RunKind::Downgrade => RESTORING_STEPS,
    }
}

/// A package file that is already in the local cache, verified when it was
/// downloaded and recorded in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CachedPackage {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
}

/// Where a package comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The repository (downloaded and verified before the stop).
    Remote(Box<Candidate>),
    /// The local cache (never the repository).
    Cached(CachedPackage),
}

/// A package version and where to get it.
#[derive(Clone, Debug)]
pub struct PackageRef {
    /// The package version (`2.1.0-1`).
    pub version: String,
    /// Where the file comes from.
    pub source: Source,
}

/// Backups a rollback or downgrade puts back.
#[derive(Clone, Debug, Serialize)]
pub struct Restore {
    /// The run that took them.
    pub run: i64,
    /// When they were taken (RFC 3339).
    pub taken_at: String,
    /// The database dump, if the target has a database.
    pub database: Option<Artifact>,
    /// The config and theme files.
    pub files: Option<Artifact>,
}

/// A package a run changes besides the product's first one: another of the
/// product's packages, or a dependency the new versions need.
#[derive(Clone, Debug)]
pub struct Member {
    /// Package name.
    pub name: String,
    /// The version installed before the run (None: the run installs it
    /// anew, and undoing the run removes it).
    pub from: Option<String>,
    /// The version to install and where to get it (None: the run removes
    /// the package, as a rollback does with one its upgrade brought in).
    pub to: Option<PackageRef>,
    /// The package file of `from`, for undoing a failure.
    pub previous: Option<PackageRef>,
    /// Why the run changes it ("requested", "nginx depends on ...").
    pub reason: String,
}

/// What a run will do.
#[derive(Clone, Debug)]
pub struct Transition {
    /// Upgrade, rollback or downgrade.
    pub kind: RunKind,
    /// What is installed now.
    pub from: Option<Installed>,
    /// The version to install.
    pub to: PackageRef,
    /// The package of the installed version, for undoing a failure (None
    /// when nothing is installed).
    pub previous: Option<PackageRef>,
    /// What to put back before installing (rollback, downgrade).
    pub restore: Option<Restore>,
    /// The other packages the run changes, in one transaction with the
    /// first one.
    pub others: Vec<Member>,
}

impl Transition {
    /// Every package the run changes, the product's first one first, with
    /// its version before and after.
    pub fn packages(&self, first: &str) -> Vec<crate::history::PackageChange> {
        std::iter::once(crate::history::PackageChange {
            name: first.to_string(),
            installed: self.from.as_ref().map(|i| i.version.clone()),
            candidate: Some(self.to.version.clone()),
        })
        .chain(self.others.iter().map(|m| crate::history::PackageChange {
            name: m.name.clone(),
            installed: m.from.clone(),
            candidate: m.to.as_ref().map(|t| t.version.clone()),
        }))
        .collect()
    }
}

/// Where a run keeps its files.
#[derive(Clone, Copy, Debug)]
pub struct Dirs<'a> {
    /// Packages and metadata.
    pub cache: &'a Path,
    /// History and backups.
    pub state: &'a Path,
}

impl Dirs<'_> {
    /// The directory of one run's backups.
    pub fn backups(&self, target: &str, run: i64) -> PathBuf {
        self.state
            .join("backups")
            .join(target)
            .join(format!("run-{run}"))
    }
}

/// The outside systems a run drives.
pub struct Systems<'a, S, P> {
    /// systemd.
    pub systemd: &'a S,
    /// dpkg or rpm.
    pub pkg: &'a P,
    /// HTTP.
    pub http: &'a Http,
    /// The history.
    pub history: &'a History,
    /// SIGINT/SIGTERM, honoured between steps.
    pub interrupt: &'a Interrupt,
    /// Where the health gate reads the units' journal (the host's).
    pub journal: crate::health::JournalSource,
    /// The fleet this node takes turns with (`[fleet]`), if any.
    pub fleet: Option<&'a crate::fleet::Fleet>,
    /// How long the lock step waits for the database's advisory lock.
    pub db_lock_wait: std::time::Duration,
}

/// What a finished run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// History id of the run.
    pub run: i64,
    /// Target name.
    pub target: String,
    /// `upgrade`, `rollback`, `downgrade`, `recover`.
    pub kind: String,
    /// Version before.
    pub from: Option<String>,
    /// Version after.
    pub to: String,
    /// `succeeded` (or, for `recover`, `completed` / `rolled_back`).
    pub outcome: String,
    /// Milliseconds from the stop until the health gate passed.
    pub downtime_ms: u64,
    /// Packaged config files the package manager left beside the live ones
    /// (`.dpkg-dist`, `.rpmnew`...) and that are still there: upkeep did
    /// not merge them (policy `keep`, or not a JSON file).
    pub pending_config: Vec<PathBuf>,
    /// What the run did to each config file that changed (masked).
    pub config: Vec<serde_json::Value>,
    /// Backups taken by this run.
    pub backups: Vec<Artifact>,
    /// Every package the run changed, with its version before and after.
    pub packages: Vec<crate::history::PackageChange>,
    /// The results of the target's `[[targets.X.verify]]` checks, run after
    /// the health gate.
    pub verify: Vec<crate::verify::CheckResult>,
}

/// A backup as the history records it (role `files-backup` or
/// `database-backup`; `version` is what was installed when it was taken).
pub(crate) fn backup_record(role: &str, version: Option<String>, a: &Artifact) -> NewArtifact {
    NewArtifact {
        package: None,
        role: role.into(),
        version,
        kind: a.kind.to_string(),
        path: a.path.clone(),
        sha256: a.sha256.clone(),
        size: a.size,
    }
}

/// A backup recorded in the history, as the backup module takes it.
pub(crate) fn recorded_backup(run: i64, a: &NewArtifact) -> anyhow::Result<Artifact> {
    let kind: crate::backup::Kind =
        serde_json::from_value(serde_json::json!(a.kind)).map_err(|_| {
            anyhow!(
                "run #{run}: unknown backup kind {:?} in the history",
                a.kind
            )
        })?;
    Ok(Artifact {
        kind,
        path: a.path.clone(),
        size: a.size,
        sha256: a.sha256.clone(),
    })
}

/// Progress of a run, for output.
pub enum StepEvent<'a> {
    /// A step starts.
    Started(&'a str),
    /// A step ended well.
    Succeeded(&'a str, std::time::Duration),
    /// A step failed.
    Failed(&'a str, std::time::Duration, &'a anyhow::Error),
}

/// Picks the version to install: `--to` when given, else the newest.
/// Returns None when the host already runs it.
pub fn choose(
    candidates: &[Candidate],
    installed: Option<&Installed>,
    to: Option<&str>,
) -> Result<Option<Candidate>, Error> {
    let chosen = match to {
        Some(wanted) => {
            let named: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| c.version.matches(wanted))
                .collect();
            // Without its epoch a version may name several (`1:1.0-1` and
            // `2:1.0-1`): refused rather than guessed.
            let epochless = |c: &Candidate| {
                c.version
                    .as_str()
                    .split_once(':')
                    .is_some_and(|(_, rest)| rest == wanted.trim())
            };
            if let [a, b, ..] = named.as_slice()
                && epochless(a)
                && epochless(b)
                && a.version != b.version
            {
                return Err(Error::Failed(anyhow!(
                    "version {wanted} names both {} and {}; give the full version",
                    a.version,
                    b.version
                )));
            }
            let first = named.first().copied();
            first.ok_or_else(|| {
                Error::Failed(anyhow!(
                    "version {wanted} is not in the repository (available: {})",
                    candidates
                        .iter()
                        .map(|c| c.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?
        }
        None => candidates.first().ok_or_else(|| {
            Error::Failed(anyhow!("the repository offers no version of the package"))
        })?,
    };
    if let Some(i) = installed
        && i.configured
        && chosen.is_version(&i.version)
    {
        return Ok(None);
    }
    Ok(Some(chosen.clone()))
}

/// Suffixes dpkg and rpm give the config file they did not put in place.
const PENDING_SUFFIXES: &[&str] = &[
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rpmnew",
    ".rpmsave",
];

/// The `.dpkg-dist`/`.rpmnew`/... files beside the target's config files.
pub fn pending_config_files(config_files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in config_files {
        for suffix in PENDING_SUFFIXES {
            let mut name = f.as_os_str().to_owned();
            name.push(suffix);
            let p = PathBuf::from(name);
            if p.exists() {
                out.push(p);
            }
        }
    }
    out
}

/// Where a candidate is kept in the cache once verified.
pub fn cached_path(cache_dir: &std::path::Path, target: &str, c: &Candidate) -> PathBuf {
    cache_dir
        .join("packages")
        .join(target)
        .join(format!("{}.{}", c.sha256, extension(c)))
}

/// The package file's extension (`deb`, `rpm`), from its name.
fn extension(c: &Candidate) -> &str {
    std::path::Path::new(&c.file_name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("pkg")
}

/// Downloads a candidate into the cache and verifies it against the signed
/// metadata (reusing a verified copy already there). Changes nothing but
/// the cache.
pub async fn fetch_package(
    http: &Http,
    cache_dir: &std::path::Path,
    target: &str,
    c: &Candidate,
) -> anyhow::Result<PathBuf> {
    let dir = cache_dir.join("packages").join(target);
    http.download(&c.url, c.size, &c.sha256, &dir, extension(c))
        .await
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::PkgVersion;

    fn cand(v: &str) -> Candidate {
        Candidate {
            package: "portal".into(),
            version: PkgVersion::deb(v).unwrap(),
            arch: "amd64".into(),
            url: url::Url::parse("http://r/p.deb").unwrap(),
            file_name: "p.deb".into(),
            size: 1,
            sha256: "00".repeat(32),
        }
    }

    fn installed(v: &str, configured: bool) -> Installed {
        Installed {
            version: v.into(),
            configured,
            status: "install ok installed".into(),
        }
    }

    #[test]
    fn newest_is_chosen_unless_already_installed() {
        let c = vec![cand("2.1.0-1"), cand("1.0.0-1")];
        let chosen = choose(&c, Some(&installed("1.0.0-1", true)), None)
            .unwrap()
            .unwrap();
        assert_eq!(chosen.version.as_str(), "2.1.0-1");
        assert!(
            choose(&c, Some(&installed("2.1.0-1", true)), None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn to_accepts_the_version_without_its_epoch_when_unique() {
        let c = vec![cand("5:7.0.15-1~deb12u1"), cand("5:7.0.11-1")];
        let chosen = choose(&c, None, Some("7.0.15-1~deb12u1")).unwrap().unwrap();
        assert_eq!(chosen.version.as_str(), "5:7.0.15-1~deb12u1");
        let c = vec![cand("2:1.0-1"), cand("1:1.0-1")];
        let e = choose(&c, None, Some("1.0-1")).unwrap_err();
        assert!(e.to_string().contains("names both"), "{e}");
    }

    #[test]
    fn a_half_installed_package_is_not_up_to_date() {
        let c = vec![cand("2.1.0-1")];
        assert!(
            choose(&c, Some(&installed("2.1.0-1", false)), None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn to_picks_by_product_version_and_names_what_exists() {
        let c = vec![cand("2.1.0-1"), cand("1.1.0-1")];
        let chosen = choose(&c, None, Some("1.1.0")).unwrap().unwrap();
        assert_eq!(chosen.version.as_str(), "1.1.0-1");
        let e = choose(&c, None, Some("9.9.9")).unwrap_err();
        assert!(e.to_string().contains("2.1.0-1, 1.1.0-1"), "{e}");
    }

    #[test]
    fn pending_config_files_are_found_beside_the_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("portal.conf");
        std::fs::write(&conf, "{}").unwrap();
        assert!(pending_config_files(std::slice::from_ref(&conf)).is_empty());
        std::fs::write(dir.path().join("portal.conf.rpmnew"), "{}").unwrap();
        std::fs::write(dir.path().join("portal.conf.dpkg-dist"), "{}").unwrap();
        let found = pending_config_files(&[conf]);
        assert_eq!(found.len(), 2);
        assert!(found.iter().any(|p| p.ends_with("portal.conf.rpmnew")));
    }

    #[test]
    fn steps_before_the_stop_do_not_change_the_host() {
        for steps in [UPGRADE_STEPS, RESTORING_STEPS] {
            let stop = steps.iter().position(|s| *s == Step::Stop).unwrap();
            assert!(steps[..stop].iter().all(|s| !s.changes_host()));
            assert!(steps[stop..].iter().all(|s| s.changes_host()));
            // Nothing that changes data runs before the database is dumped.
            let dump = steps
                .iter()
                .position(|s| *s == Step::BackupDatabase)
                .unwrap();
            assert!(steps[..dump].iter().all(|s| !s.touches_data()));
        }
    }

    #[test]
    fn restoring_runs_put_data_back_before_the_older_package_goes_in() {
        let pos = |s: Step| RESTORING_STEPS.iter().position(|x| *x == s).unwrap();
        assert!(pos(Step::RestoreDatabase) < pos(Step::Install));
        assert!(pos(Step::RestoreFiles) < pos(Step::Install));
        assert!(!UPGRADE_STEPS.contains(&Step::RestoreDatabase));
        let rpos = |s: Step| REVERT_STEPS.iter().position(|x| *x == s).unwrap();
        assert!(rpos(Step::Stop) < rpos(Step::RestoreFiles));
        // The database named by the restored config is the one dumped.
        assert!(rpos(Step::RestoreFiles) < rpos(Step::RestoreDatabase));
        assert!(rpos(Step::RestoreFiles) < rpos(Step::Install));
        assert_eq!(REVERT_STEPS.last(), Some(&Step::Health));
    }

    #[test]
    fn every_step_has_its_own_name() {
        let mut names: Vec<&str> = RESTORING_STEPS.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RESTORING_STEPS.len());
        assert_eq!(Step::Install.revert_name(), "revert-install");
    }
}
