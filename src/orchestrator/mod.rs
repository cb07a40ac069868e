//! The orchestrator: a plan (what to install, from what) and the journaled
//! steps that apply it.
//!
//! An upgrade is a fixed sequence of steps — a visible state machine:
//!
//! ```text
//!   download ─► stop ─► install ─► reload ─► start ─► health ─► commit
//!   (before the stop: a failure changes nothing on the host)
//! ```
//!
//! Each step is written to the history before it runs and again when it ends,
//! with its duration and what it produced, so `status` and `history` show
//! exactly where a run is or where it stopped. Slow work (metadata, download,
//! verification) happens before the stop, so the service is down only for the
//! package manager's own time plus the start.

pub mod journal;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde_json::json;

use crate::config::Target;
use crate::download::Http;
use crate::error::Error;
use crate::health::{self, Gate};
use crate::history::History;
use crate::pkg::{Installed, PackageManager};
use crate::repo::Candidate;
use crate::systemd::ServiceManager;
use journal::Journal;

/// How long a unit may take to stop or start.
const UNIT_JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// The steps of an upgrade, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Download the package and verify its SHA-256 (service still running).
    Download,
    /// Stop the target's units and wait until they are inactive.
    Stop,
    /// Install the package with the package manager.
    Install,
    /// Reload unit files (the package may ship a new unit).
    Reload,
    /// Start the units and wait for their start jobs.
    Start,
    /// Wait until every unit is active and the health URL answers 2xx.
    Health,
    /// Record the new version as the good one.
    Commit,
}

/// The upgrade's steps, in order.
pub const UPGRADE_STEPS: &[Step] = &[
    Step::Download,
    Step::Stop,
    Step::Install,
    Step::Reload,
    Step::Start,
    Step::Health,
    Step::Commit,
];

impl Step {
    /// The step's name in the history.
    pub fn name(self) -> &'static str {
        match self {
            Step::Download => "download",
            Step::Stop => "stop",
            Step::Install => "install",
            Step::Reload => "reload",
            Step::Start => "start",
            Step::Health => "health",
            Step::Commit => "commit",
        }
    }

    /// True once the host has been touched: a failure from here on cannot
    /// simply be abandoned.
    pub fn changes_host(self) -> bool {
        !matches!(self, Step::Download)
    }
}

/// What an upgrade will do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What is installed now.
    pub installed: Option<Installed>,
    /// The version to install.
    pub candidate: Candidate,
}

/// Picks the version to install: `--to` when given, else the newest.
/// Returns None when the host already runs it.
pub fn choose(
    candidates: &[Candidate],
    installed: Option<&Installed>,
    to: Option<&str>,
) -> Result<Option<Candidate>, Error> {
    let chosen = match to {
        Some(wanted) => candidates
            .iter()
            .find(|c| c.version.matches(wanted))
            .ok_or_else(|| {
                Error::Failed(anyhow!(
                    "version {wanted} is not in the repository (available: {})",
                    candidates
                        .iter()
                        .map(|c| c.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
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

/// The outside systems an upgrade drives.
pub struct Systems<'a, S, P> {
    /// systemd.
    pub systemd: &'a S,
    /// dpkg or rpm.
    pub pkg: &'a P,
    /// HTTP.
    pub http: &'a Http,
    /// The history.
    pub history: &'a History,
}

/// What a finished upgrade reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// History id of the run.
    pub run: i64,
    /// Target name.
    pub target: String,
    /// Version before.
    pub from: Option<String>,
    /// Version after.
    pub to: String,
    /// `succeeded`.
    pub outcome: String,
    /// Milliseconds from the stop until the health gate passed.
    pub downtime_ms: u64,
    /// Packaged config files the package manager left beside the live ones
    /// (`.dpkg-dist`, `.rpmnew`...): the operator's files were kept.
    pub pending_config: Vec<PathBuf>,
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

/// Runs an upgrade plan as journaled steps. `on_step` is told each step as
/// it starts and ends (for progress output).
pub async fn upgrade<S: ServiceManager, P: PackageManager>(
    target: &Target,
    cache_dir: &std::path::Path,
    plan: &Plan,
    sys: &Systems<'_, S, P>,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Result<Report, Error> {
    let from = plan.installed.as_ref().map(|i| i.version.clone());
    let to = plan.candidate.version.to_string();
    let journal = Journal::begin(
        sys.history,
        &target.name,
        "upgrade",
        from.as_deref(),
        Some(&to),
    )?;
    let mut package: Option<PathBuf> = None;
    let mut stopped_at: Option<std::time::Instant> = None;
    let mut downtime_ms = 0;
    let mut config_left: Vec<PathBuf> = Vec::new();

    for &step in UPGRADE_STEPS {
        on_step(StepEvent::Started(step));
        let started = std::time::Instant::now();
        let result: anyhow::Result<serde_json::Value> = journal
            .record(step.name(), async {
                match step {
                    Step::Download => {
                        let c = &plan.candidate;
                        let path = fetch_package(sys.http, cache_dir, &target.name, c).await?;
                        package = Some(path.clone());
                        Ok(json!({"url": c.url.as_str(), "sha256": c.sha256, "size": c.size, "path": path}))
                    }
                    Step::Stop => {
                        stopped_at = Some(std::time::Instant::now());
                        for unit in &target.services {
                            sys.systemd.stop(unit, UNIT_JOB_TIMEOUT).await?;
                        }
                        Ok(json!({"units": target.services}))
                    }
                    Step::Install => {
                        let path = package.as_ref().context("no downloaded package")?;
                        let report = sys.pkg.install(path).await?;
                        let installed = sys.pkg.installed(&plan.candidate.package).await?;
                        let now = installed.as_ref().map(|i| i.version.as_str());
                        if now != Some(to.as_str()) {
                            anyhow::bail!(
                                "after the install the package manager reports {} instead of {to}",
                                now.unwrap_or("nothing installed")
                            );
                        }
                        config_left = pending_config_files(&target.config_files);
                        Ok(json!({"output": tail(&report.output, 20), "pending_config": config_left}))
                    }
                    Step::Reload => {
                        sys.systemd.daemon_reload().await?;
                        Ok(json!({}))
                    }
                    Step::Start => {
                        for unit in &target.services {
                            sys.systemd.start(unit, UNIT_JOB_TIMEOUT).await?;
                        }
                        Ok(json!({"units": target.services}))
                    }
                    Step::Health => {
                        let gate = Gate {
                            units: &target.services,
                            url: target.health.url.as_ref(),
                            timeout: target.health.timeout,
                        };
                        let passed = health::wait_healthy(&gate, sys.systemd, sys.http).await?;
                        downtime_ms = stopped_at.map(|t| t.elapsed().as_millis() as u64).unwrap_or(0);
                        Ok(json!({"waited_ms": passed.waited_ms, "body": passed.body, "downtime_ms": downtime_ms}))
                    }
                    Step::Commit => Ok(json!({"version": to})),
                }
            })
            .await;
        let elapsed = started.elapsed();
        match result {
            Ok(_) => on_step(StepEvent::Succeeded(step, elapsed)),
            Err(e) => {
                on_step(StepEvent::Failed(step, elapsed, &e));
                return Err(fail_run(&journal, step, e, target, sys).await);
            }
        }
    }
    journal.finish("succeeded", None)?;
    Ok(Report {
        run: journal.run(),
        target: target.name.clone(),
        from,
        to,
        outcome: "succeeded".into(),
        downtime_ms,
        pending_config: config_left,
    })
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

/// Progress of a run, for output.
pub enum StepEvent<'a> {
    /// A step starts.
    Started(Step),
    /// A step ended well.
    Succeeded(Step, Duration),
    /// A step failed.
    Failed(Step, Duration, &'a anyhow::Error),
}

/// Ends a failed run in the history and says what state the host is in.
async fn fail_run<S: ServiceManager, P: PackageManager>(
    journal: &Journal<'_>,
    step: Step,
    e: anyhow::Error,
    target: &Target,
    sys: &Systems<'_, S, P>,
) -> Error {
    let cause = crate::error::one_line(&e);
    if !step.changes_host() {
        let message = format!("{} failed, nothing was changed: {cause}", step.name());
        let _ = journal.finish("failed", Some(&message));
        return Error::Failed(anyhow!(message));
    }
    // The host was touched. Automatic rollback comes with the journaled
    // rollback; until then, try to leave the units running and say exactly
    // what state the host is in.
    for unit in &target.services {
        let _ = sys.systemd.start(unit, UNIT_JOB_TIMEOUT).await;
    }
    let installed = sys
        .pkg
        .installed(&target.package)
        .await
        .ok()
        .flatten()
        .map(|i| format!("{} ({})", i.version, i.status))
        .unwrap_or_else(|| "nothing".into());
    let mut units = Vec::new();
    for unit in &target.services {
        if let Ok(s) = sys.systemd.state(unit).await {
            units.push(format!("{} {}/{}", s.unit, s.active_state, s.sub_state));
        }
    }
    let message = format!(
        "{} failed after the service was stopped: {cause}; installed now: {}; units: {}; see `upkeep status {}`",
        step.name(),
        installed,
        units.join(", "),
        target.name
    );
    let _ = journal.finish("failed", Some(&message));
    Error::NeedsAttention(anyhow!(message))
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
        assert_eq!(UPGRADE_STEPS[0], Step::Download);
        assert!(!Step::Download.changes_host());
        assert!(UPGRADE_STEPS[1..].iter().all(|s| s.changes_host()));
    }
}
