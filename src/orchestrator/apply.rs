//! Applying a transition: the forward steps, and the revert steps when one
//! of them fails after the stop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::json;

use super::configs;
use super::journal::{Journal, Produced};
use super::{
    CachedPackage, Dirs, PackageRef, REVERT_STEPS, Report, RunKind, Source, Step, StepEvent,
    Systems, Transition, backup_record, fetch_package, pending_config_files, tail,
};
use crate::backup::db::Db;
use crate::backup::{self, Artifact};
use crate::config::Target;
use crate::error::Error;
use crate::failpoint;
use crate::health::{self, Baseline, Gate};
use crate::history::NewArtifact;
use crate::pkg::{PackageManager, PkgLock};
use crate::systemd::ServiceManager;

/// How long a unit may take to stop or start.
pub(super) const UNIT_JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// How long to wait for dpkg/rpm to be free.
pub(super) const PKG_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// What a run has done so far: enough to go on, or to undo it.
#[derive(Default)]
pub(super) struct Ctx {
    /// The package file to install.
    pub package: Option<PathBuf>,
    /// The package file of the version installed before (for undoing).
    pub previous: Option<PathBuf>,
    /// Its version.
    pub previous_version: Option<String>,
    /// The other packages of the run, and their files once downloaded.
    pub others: Vec<OtherFiles>,
    /// This run's backup of the config and theme files.
    pub files_backup: Option<Artifact>,
    /// This run's dump of the database.
    pub db_backup: Option<Artifact>,
    /// The product's database.
    pub db: Option<Db>,
    /// The package manager's lock, held until the run ends.
    pub lock: Option<PkgLock>,
    /// The fleet slot, held until the run ends.
    pub slot: Option<crate::fleet::Held>,
    /// The database's advisory lock, held until the commit (or the revert's
    /// end).
    pub db_lock: Option<crate::backup::dblock::DbLock>,
    /// The journal position and restart counts before the install.
    pub baseline: Option<Baseline>,
    /// When the service went down.
    pub stopped_at: Option<Instant>,
    /// From the stop until healthy again.
    pub downtime_ms: u64,
    /// `.dpkg-dist`/`.rpmnew` files left by the install, not dealt with.
    pub pending_config: Vec<PathBuf>,
    /// The config files of the run: the target's and the package's own.
    pub config_files: Vec<PathBuf>,
    /// Their content before the install (the merge's `ours`).
    pub config_before: configs::Contents,
    /// What the package to install ships for them (the merge's `theirs`),
    /// read before the stop.
    pub config_new: configs::Contents,
    /// What the installed version's package ships for them (the merge's
    /// `base`), read before the stop.
    pub config_base: configs::Contents,
    /// What the config step did, masked, for the report.
    pub config: Vec<serde_json::Value>,
    /// The theme merge of an upgrade, computed before the stop and written
    /// by the config step.
    pub theme: Option<crate::theme::ThemeMerge>,
    /// True once a step that changes data or files began: undoing the run
    /// then means restoring the backups.
    pub touched: bool,
    /// True once the stop began.
    pub stopped: bool,
    /// An earlier revert of this run restored the database already.
    pub restored_db: bool,
    /// An earlier revert of this run restored the files already.
    pub restored_files: bool,
    /// The results of the verify checks after the health gate.
    pub verify: Vec<crate::verify::CheckResult>,
}

/// One of the other packages of a run ([`super::Member`]), with its files.
#[derive(Clone, Debug, Default)]
pub(super) struct OtherFiles {
    /// Package name.
    pub name: String,
    /// Installed before the run (None: the run installs it anew).
    pub from: Option<String>,
    /// The version the run installs (None: it removes the package).
    pub to: Option<String>,
    /// The package file to install.
    pub file: Option<PathBuf>,
    /// The package file of `from`, for undoing.
    pub previous: Option<PathBuf>,
}

/// Runs a transition as journaled steps. On a failure after the stop it
/// reverts by itself: `Error::RolledBack` (exit 4) when the host runs the
/// previous version again, healthy, with its data; `Error::NeedsAttention`
/// (exit 5) when even that failed.
pub async fn apply<S: ServiceManager, P: PackageManager>(
    target: &Target,
    dirs: Dirs<'_>,
    t: &Transition,
    sys: &Systems<'_, S, P>,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Result<Report, Error> {
    let from = t.from.as_ref().map(|i| i.version.clone());
    let to = t.to.version.clone();
    let journal = Journal::begin(
        sys.history,
        &target.name,
        t.kind.name(),
        from.as_deref(),
        Some(&to),
    )?;
    let packages = t.packages(&target.package);
    if let Err(e) = sys.history.set_packages(journal.run(), &packages) {
        tracing::warn!("cannot record the run's packages: {e:#}");
    }
    let mut ctx = Ctx {
        previous_version: from.clone(),
        others: t
            .others
            .iter()
            .map(|m| OtherFiles {
                name: m.name.clone(),
                from: m.from.clone(),
                to: m.to.as_ref().map(|r| r.version.clone()),
                ..OtherFiles::default()
            })
            .collect(),
        ..Ctx::default()
    };
    for &step in super::steps_for(t.kind) {
        // Once the health gate passed, the new version is the good one: a
        // signal no longer undoes it, and cleaning up cannot fail the run.
        let committed = matches!(step, Step::Commit | Step::Cleanup);
        if !committed && let Some(signal) = sys.interrupt.requested() {
            let e = anyhow!("interrupted by {signal} before {}", step.name());
            return Err(fail(step, e, true, target, sys, &journal, &mut ctx, on_step).await);
        }
        let result = run_step(step, target, dirs, t, sys, &journal, &mut ctx, on_step).await;
        match result {
            Err(e) if step == Step::Cleanup => {
                tracing::warn!("cleanup: {}", crate::error::one_line(&e));
            }
            Err(e) => {
                return Err(fail(step, e, false, target, sys, &journal, &mut ctx, on_step).await);
            }
            Ok(()) => {}
        }
    }
    let _ = failpoint::hit("after-cleanup");
    end_fleet(sys, &mut ctx, crate::fleet::Outcome::Succeeded, Some(&to)).await;
    journal.finish("succeeded", None)?;
    Ok(Report {
        run: journal.run(),
        target: target.name.clone(),
        kind: t.kind.name().into(),
        from,
        to,
        outcome: "succeeded".into(),
        downtime_ms: ctx.downtime_ms,
        pending_config: ctx.pending_config,
        config: ctx.config,
        backups: ctx.files_backup.into_iter().chain(ctx.db_backup).collect(),
        packages,
        verify: ctx.verify,
    })
}

/// Runs one forward step between its journal records, with the failpoint
/// before it, and tells `on_step`.
#[allow(clippy::too_many_arguments)]
async fn run_step<S: ServiceManager, P: PackageManager>(
    step: Step,
    target: &Target,
    dirs: Dirs<'_>,
    t: &Transition,
    sys: &Systems<'_, S, P>,
    journal: &Journal<'_>,
    ctx: &mut Ctx,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> anyhow::Result<()> {
    failpoint::hit(&format!("before-{}", step.name()))?;
    let name = step.name();
    on_step(StepEvent::Started(name));
    let started = Instant::now();
    if step == Step::Stop {
        ctx.stopped = true;
    }
    if step.touches_data() {
        ctx.touched = true;
    }
    let result = journal
        .record(name, async {
            failpoint::hit(&format!("in-{name}"))?;
            let _during = failpoint::during(name);
            forward(step, target, dirs, t, sys, journal.run(), ctx).await
        })
        .await;
    match &result {
        Ok(_) => on_step(StepEvent::Succeeded(name, started.elapsed())),
        Err(e) => on_step(StepEvent::Failed(name, started.elapsed(), e)),
    }
    result.map(|_| ())
}

/// What each forward step does.
async fn forward<S: ServiceManager, P: PackageManager>(
    step: Step,
    target: &Target,
    dirs: Dirs<'_>,
    t: &Transition,
    sys: &Systems<'_, S, P>,
    run: i64,
    ctx: &mut Ctx,
) -> anyhow::Result<Produced> {
    match step {
        Step::Preflight => {
            let mut checks = Vec::new();
            ctx.db = backup::db::resolve(&target.database).context("database")?;
            if let Some(db) = &ctx.db {
                db.preflight()
                    .await
                    .with_context(|| format!("database {}", db.describe()))?;
                checks.push(format!(
                    "database {} reachable, backup tools present",
                    db.describe()
                ));
            }
            if t.from.is_some() && t.previous.is_none() {
                bail!("no package of the installed version to roll back to");
            }
            // A masked unit could be stopped but never started again.
            for unit in &target.services {
                let info = sys.systemd.service_info(unit).await?;
                if info.unit_file_state.starts_with("masked") {
                    bail!(
                        "{unit} is {}: upkeep could stop it but not start it again (unmask it first: systemctl unmask{} {unit})",
                        info.unit_file_state,
                        if info.unit_file_state == "masked-runtime" {
                            " --runtime"
                        } else {
                            ""
                        }
                    );
                }
            }
            checks.push(format!("units not masked: {}", target.services.join(", ")));
            if let Some(r) = &t.restore {
                for a in r.database.iter().chain(&r.files) {
                    a.verify()
                        .with_context(|| format!("backup of run #{} to restore", r.run))?;
                }
                checks.push(format!("backups of run #{} verified", r.run));
            }
            Ok(json!({"checks": checks}).into())
        }
        Step::Download => {
            let mut artifacts = Vec::new();
            let mut detail = serde_json::Map::new();
            let (path, a) = obtain(&t.to, "package", None, target, dirs, sys).await?;
            detail.insert("package".into(), json!(path));
            detail.insert("sha256".into(), json!(a.sha256));
            detail.insert("size".into(), json!(a.size));
            if let Source::Remote(c) = &t.to.source {
                detail.insert("url".into(), json!(c.url.as_str()));
            }
            ctx.package = Some(path);
            artifacts.push(a);
            if let Some(prev) = &t.previous {
                let (path, a) = obtain(prev, "previous-package", None, target, dirs, sys)
                    .await
                    .context("the package of the installed version (kept for a rollback)")?;
                detail.insert("previous_package".into(), json!(path));
                ctx.previous = Some(path);
                artifacts.push(a);
            }
            let mut others = Vec::new();
            for (m, files) in t.others.iter().zip(ctx.others.iter_mut()) {
                if let Some(to) = &m.to {
                    let (path, a) = obtain(to, "package", Some(&m.name), target, dirs, sys)
                        .await
                        .with_context(|| format!("{} {}", m.name, to.version))?;
                    files.file = Some(path);
                    artifacts.push(a);
                }
                if let Some(prev) = &m.previous {
                    let (path, a) =
                        obtain(prev, "previous-package", Some(&m.name), target, dirs, sys)
                            .await
                            .with_context(|| {
                                format!(
                                    "the package of the installed {} {} (kept for a rollback)",
                                    m.name, prev.version
                                )
                            })?;
                    files.previous = Some(path);
                    artifacts.push(a);
                }
                others.push(json!({"name": m.name, "from": m.from, "to": files.to, "file": files.file, "previous": files.previous, "reason": m.reason}));
            }
            if !others.is_empty() {
                detail.insert("others".into(), json!(others));
            }
            Ok(Produced {
                detail: detail.into(),
                artifacts,
            })
        }
        Step::Lock => {
            let mut detail = serde_json::Map::new();
            if let Some(f) = sys.fleet {
                let req = crate::fleet::Request {
                    target: target.name.clone(),
                    run,
                    kind: t.kind,
                    from: t.from.as_ref().map(|i| i.version.clone()),
                    to: t.to.version.clone(),
                };
                let held = f.take(&req).await?;
                let mut slot = held.detail();
                slot["group"] = json!(f.group());
                slot["node"] = json!(f.node());
                detail.insert("fleet".into(), slot);
                ctx.slot = Some(held);
            }
            ctx.lock = Some(sys.pkg.lock(PKG_LOCK_TIMEOUT).await?);
            detail.insert("package_manager_lock".into(), json!("held"));
            if let Some(db) = &ctx.db {
                let owner = match sys.fleet {
                    Some(f) => format!("node {} run {run}", f.node()),
                    None => format!("{} run {run}", crate::notify::hostname()),
                };
                let mut waiting = |holder: &str, waited: Duration| {
                    tracing::info!(
                        "waiting {}s for the database lock of {}: held by {holder}",
                        waited.as_secs(),
                        db.describe()
                    );
                };
                if let Some(l) = db
                    .advisory_lock(&owner, sys.db_lock_wait, &mut waiting)
                    .await?
                {
                    detail.insert("database_lock".into(), json!(l.key()));
                    ctx.db_lock = Some(l);
                }
            }
            Ok(serde_json::Value::Object(detail).into())
        }
        Step::BackupFiles => {
            let package = ctx.package.clone().context("no downloaded package")?;
            let new_files = ctx.new_files(&package);
            let mut conffiles = Vec::new();
            for f in &new_files {
                conffiles.extend(crate::package::read(f)?.conffiles);
            }
            ctx.config_files = configs::files_of(target, &conffiles);
            ctx.config_before = configs::live(&ctx.config_files)?;
            // The packaged defaults too: reading a package is slow work,
            // done while the service still runs.
            ctx.config_new = configs::packaged_by_any(&new_files, &ctx.config_files)?;
            let old_files: Vec<PathBuf> = ctx
                .previous
                .iter()
                .chain(ctx.others.iter().filter_map(|o| o.previous.as_ref()))
                .cloned()
                .collect();
            if !old_files.is_empty() {
                ctx.config_base = configs::packaged_by_any(&old_files, &ctx.config_files)?;
            }
            // The theme merge too (reading both packages' default themes),
            // before the stop; a conflict stops the run here, with nothing
            // stopped (the review blocked it already, unless the custom
            // theme changed since).
            if let Some(th) = &target.theme
                && t.kind == RunKind::Upgrade
            {
                let m = theme_merge(th, &new_files, &old_files)?;
                if m.blocks() {
                    bail!(
                        "theme merge: {}; nothing was stopped",
                        m.conflicts().join("; ")
                    );
                }
                ctx.theme = Some(m);
            }
            let paths: Vec<PathBuf> = ctx
                .config_files
                .iter()
                .chain(&target.backup_paths)
                .chain(target.theme.iter().map(|th| &th.path))
                .cloned()
                .collect();
            let dir = backup_dir(dirs, &target.name, run)?;
            let a = backup::files::archive(&paths, &dir.join("files.tar.gz"))?;
            let record = backup_record("files-backup", ctx.previous_version.clone(), &a);
            ctx.files_backup = Some(a.clone());
            // The last moment to give up without stopping anything: a run
            // whose fleet slot expired may already count as dead.
            if ctx.slot.as_ref().is_some_and(|h| h.lost()) {
                bail!(
                    "the fleet slot's lease expired before the stop (etcd unreachable for longer than fleet.lease); nothing was stopped"
                );
            }
            // `before-stop` hooks: the service still runs, and a failure
            // here changes nothing.
            let mut detail = json!({"backup": a, "paths": paths});
            hooks_at(target, t, crate::hooks::At::BeforeStop, &mut detail).await?;
            Ok(Produced {
                detail,
                artifacts: vec![record],
            })
        }
        Step::Stop => {
            ctx.stopped_at = Some(Instant::now());
            stop_units(target, sys).await?;
            Ok(json!({"units": target.services}).into())
        }
        Step::BackupDatabase => {
            let Some(db) = &ctx.db else {
                let mut detail = json!({"database": null});
                hooks_at(target, t, crate::hooks::At::AfterBackup, &mut detail).await?;
                return Ok(detail.into());
            };
            let dir = backup_dir(dirs, &target.name, run)?;
            let dest = dir.join(format!("database.{}", dump_extension(db)));
            let a = db
                .dump(&dest)
                .await
                .with_context(|| format!("backup of {}", db.describe()))?;
            let record = backup_record("database-backup", ctx.previous_version.clone(), &a);
            ctx.db_backup = Some(a.clone());
            let mut detail = json!({"backup": a, "database": db.describe()});
            hooks_at(target, t, crate::hooks::At::AfterBackup, &mut detail).await?;
            Ok(Produced {
                detail,
                artifacts: vec![record],
            })
        }
        Step::RestoreDatabase => {
            let source = t.restore.as_ref().and_then(|r| r.database.as_ref());
            match (&ctx.db, source) {
                (Some(db), Some(a)) => {
                    db.restore(a)
                        .await
                        .with_context(|| format!("restore of {}", db.describe()))?;
                    Ok(json!({"restored": a}).into())
                }
                (Some(db), None) => bail!(
                    "no backup of {} to restore for {}",
                    db.describe(),
                    t.to.version
                ),
                (None, _) => Ok(json!({"database": null}).into()),
            }
        }
        Step::RestoreFiles => match t.restore.as_ref().and_then(|r| r.files.as_ref()) {
            Some(a) => {
                let restored = backup::files::restore(a)?;
                Ok(json!({"restored": a, "paths": restored}).into())
            }
            None => Ok(json!({"files": null}).into()),
        },
        Step::Install => {
            let path = ctx.package.clone().context("no downloaded package")?;
            ctx.baseline = Some(
                health::baseline_in(&target.services, sys.systemd, sys.journal.clone()).await?,
            );
            let downgrade = t.kind != RunKind::Upgrade;
            let mut wanted = vec![(target.package.clone(), Some(t.to.version.clone()))];
            wanted.extend(ctx.others.iter().map(|o| (o.name.clone(), o.to.clone())));
            let files = ctx.new_files(&path);
            let removed: Vec<String> = ctx
                .others
                .iter()
                .filter(|o| o.to.is_none())
                .map(|o| o.name.clone())
                .collect();
            // Maintainer scripts must not start the units on the config the
            // package left: they start after the config step. A first
            // install has no config of the operator's to merge.
            let hold = t.from.is_some();
            let detail = install(target, sys, &files, &removed, &wanted, downgrade, hold).await?;
            let left = pending_config_files(&ctx.config_files);
            let mut detail = json!({"output": detail, "left_by_the_package_manager": left});
            hooks_at(target, t, crate::hooks::At::AfterInstall, &mut detail).await?;
            Ok(detail.into())
        }
        Step::Config => {
            let mut detail = config_step(target, t.kind, ctx)?;
            failpoint::mid("config-written");
            if let Some(m) = &ctx.theme {
                let written = crate::theme::write(m)?;
                let mut j = m.to_json();
                j["written"] = json!(written);
                detail["theme"] = j;
            }
            Ok(detail.into())
        }
        Step::Reload => {
            sys.systemd.daemon_reload().await?;
            Ok(json!({}).into())
        }
        Step::Start => {
            start_units(target, sys).await?;
            let mut detail = json!({"units": target.services});
            hooks_at(target, t, crate::hooks::At::AfterStart, &mut detail).await?;
            Ok(detail.into())
        }
        Step::Health => {
            let gate_start = Instant::now();
            let passed = gate(target, sys, ctx.baseline.as_ref()).await?;
            // Down from the stop until the gate first saw it healthy (the
            // settle window that follows is not downtime).
            ctx.downtime_ms = ctx
                .stopped_at
                .map(|t| gate_start.duration_since(t).as_millis() as u64 + passed.healthy_after_ms)
                .unwrap_or(0);
            let mut detail = json!({"waited_ms": passed.waited_ms, "healthy_after_ms": passed.healthy_after_ms, "body": passed.body, "downtime_ms": ctx.downtime_ms});
            if !target.verify.is_empty() {
                let results = verify(target, t, sys, ctx.baseline.as_ref()).await;
                let results = crate::verify::verdict(results)?;
                detail["verify"] = json!(results);
                ctx.verify = results;
            }
            Ok(detail.into())
        }
        Step::Commit => {
            let mut detail = json!({"version": t.to.version});
            if let Some(l) = ctx.db_lock.take() {
                detail["database_lock"] = json!("released");
                if let Err(e) = l.release().await {
                    tracing::warn!("database lock: {}", crate::error::one_line(&e));
                }
            }
            Ok(detail.into())
        }
        Step::Cleanup => {
            ctx.lock = None;
            Ok(json!({"package_manager_lock": "released"}).into())
        }
    }
}

/// The product version of a package version (`2.1.0-1` → `2.1.0`), else
/// its upstream part.
fn product_version(target: &Target, version: &str) -> String {
    match crate::version::PkgVersion::parse(super::plan::family(target), version) {
        Ok(v) => v
            .product()
            .map_or_else(|| v.upstream().to_string(), |p| p.to_string()),
        Err(_) => version.to_string(),
    }
}

/// Runs the target's hooks at `at` for this transition and records what
/// each did under `"hooks"` in the step's `detail` (when there are any).
/// A hook that fails fails the step, naming the hook.
async fn hooks_at(
    target: &Target,
    t: &Transition,
    at: crate::hooks::At,
    detail: &mut serde_json::Value,
) -> anyhow::Result<()> {
    if !target.hooks.iter().any(|h| h.at == at) {
        return Ok(());
    }
    let from = t
        .from
        .as_ref()
        .map(|i| product_version(target, &i.version))
        .unwrap_or_default();
    let to = product_version(target, &t.to.version);
    // Before the stop, a failure changes nothing; after it, the run is
    // rolled back.
    let suffix = if at == crate::hooks::At::BeforeStop {
        "; nothing was stopped"
    } else {
        ""
    };
    let runs = crate::hooks::run_at(&target.hooks, at, &from, &to, suffix).await?;
    if let serde_json::Value::Object(map) = detail {
        map.insert("hooks".into(), json!(runs));
    }
    Ok(())
}

impl Ctx {
    /// The package files the run installs: the first package's, then the
    /// others'.
    fn new_files(&self, first: &std::path::Path) -> Vec<PathBuf> {
        std::iter::once(first.to_path_buf())
            .chain(self.others.iter().filter_map(|o| o.file.clone()))
            .collect()
    }
}

/// Ends a failed run: abandoned when the host was not touched yet, else
/// reverted. Returns the error the command ends with.
#[allow(clippy::too_many_arguments)]
async fn fail<S: ServiceManager, P: PackageManager>(
    step: Step,
    e: anyhow::Error,
    interrupted: bool,
    target: &Target,
    sys: &Systems<'_, S, P>,
    journal: &Journal<'_>,
    ctx: &mut Ctx,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Error {
    let cause = crate::error::one_line(&e);
    if !ctx.stopped {
        ctx.lock = None;
        ctx.db_lock = None;
        let installed = ctx.previous_version.clone();
        end_fleet(
            sys,
            ctx,
            crate::fleet::Outcome::Abandoned,
            installed.as_deref(),
        )
        .await;
        // Waiting for a slot or a lock that stayed taken is exit 6; a
        // version its canary rolled back is a preflight refusal (exit 3).
        if let Some(f) = e.downcast_ref::<crate::fleet::FleetError>() {
            match f {
                crate::fleet::FleetError::Busy { .. } => {
                    let _ =
                        journal.finish("failed", Some(&format!("{cause}; nothing was changed")));
                    return Error::Locked(format!("{cause}; nothing was changed"));
                }
                crate::fleet::FleetError::BadVersion { .. } => {
                    let _ = journal.finish("failed", Some(&cause));
                    return Error::Preflight(anyhow!("{cause}"));
                }
                crate::fleet::FleetError::Etcd { .. } => {}
            }
        }
        if e.downcast_ref::<crate::backup::dblock::LockBusy>()
            .is_some()
        {
            let _ = journal.finish("failed", Some(&format!("{cause}; nothing was changed")));
            return Error::Locked(format!("{cause}; nothing was changed"));
        }
        let message = if interrupted {
            format!("{cause}; nothing was changed")
        } else {
            format!("{} failed, nothing was changed: {cause}", step.name())
        };
        let _ = journal.finish("failed", Some(&message));
        return if step == Step::Preflight && !interrupted {
            Error::Preflight(anyhow!("preflight: {cause}"))
        } else {
            Error::Failed(anyhow!(message))
        };
    }
    let what = if interrupted {
        cause
    } else {
        format!("{} failed: {cause}", step.name())
    };
    let e = revert_and_finish(&what, target, sys, journal, journal, ctx, on_step).await;
    ctx.db_lock = None;
    let (outcome, installed) = match &e {
        Error::RolledBack(_) => (
            crate::fleet::Outcome::RolledBack,
            ctx.previous_version.clone(),
        ),
        _ => (crate::fleet::Outcome::NeedsAttention, None),
    };
    end_fleet(sys, ctx, outcome, installed.as_deref()).await;
    e
}

/// Gives the run's fleet slot back (tries for up to a lease's time when
/// etcd does not answer), and releases the database lock.
async fn end_fleet<S, P>(
    sys: &Systems<'_, S, P>,
    ctx: &mut Ctx,
    outcome: crate::fleet::Outcome,
    installed: Option<&str>,
) {
    if let Some(l) = ctx.db_lock.take()
        && let Err(e) = l.release().await
    {
        tracing::warn!("database lock: {}", crate::error::one_line(&e));
    }
    let (Some(f), Some(held)) = (sys.fleet, ctx.slot.take()) else {
        return;
    };
    if let Err(e) = f.give_back(held, outcome, installed).await {
        tracing::warn!(
            "{e}: the slot was not given back; when its lease expires the group halts until `upkeep recover` runs on this node (it lifts the halt) or `upkeep fleet resume`"
        );
    }
}

/// Reverts a run (recorded in `journal`), then records the outcome of
/// `subject` (the run being undone: the same one, or the interrupted run
/// `recover` works on). Returns the error the command ends with.
#[allow(clippy::too_many_arguments)]
pub(super) async fn revert_and_finish<S: ServiceManager, P: PackageManager>(
    what: &str,
    target: &Target,
    sys: &Systems<'_, S, P>,
    journal: &Journal<'_>,
    subject: &Journal<'_>,
    ctx: &mut Ctx,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Error {
    let previous = ctx
        .previous_version
        .clone()
        .unwrap_or_else(|| "nothing".into());
    match revert(target, sys, journal, ctx, on_step).await {
        Ok(()) => {
            ctx.lock = None;
            let message = format!(
                "{what}; rolled back: {previous} runs again with its data and config (run #{})",
                subject.run()
            );
            let _ = subject.finish("rolled_back", Some(&message));
            Error::RolledBack(anyhow!(message))
        }
        Err((step, e)) => {
            ctx.lock = None;
            let state = describe_host(target, sys).await;
            let backups: Vec<String> = ctx
                .db_backup
                .iter()
                .chain(&ctx.files_backup)
                .map(|a| a.path.display().to_string())
                .collect();
            let message = format!(
                "{what}; the rollback to {previous} failed too at {}: {}; {state}; backups: {}; fix the cause, then run `upkeep recover {}`",
                step.revert_name(),
                crate::error::one_line(&e),
                if backups.is_empty() {
                    "none".into()
                } else {
                    backups.join(", ")
                },
                target.name
            );
            let _ = subject.finish("failed", Some(&message));
            Error::NeedsAttention(anyhow!(message))
        }
    }
}

/// Undoes a run from what `ctx` holds: stop, put the database and files
/// back (when the run got as far as changing them), reinstall the previous
/// package from the local cache, reload, start, health gate.
pub(super) async fn revert<S: ServiceManager, P: PackageManager>(
    target: &Target,
    sys: &Systems<'_, S, P>,
    journal: &Journal<'_>,
    ctx: &mut Ctx,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Result<(), (Step, anyhow::Error)> {
    if ctx.lock.is_none() {
        ctx.lock = Some(
            sys.pkg
                .lock(PKG_LOCK_TIMEOUT)
                .await
                .map_err(|e| (Step::Install, e))?,
        );
    }
    for &step in REVERT_STEPS {
        let name = step.revert_name();
        failpoint::hit(&format!("before-{name}")).map_err(|e| (step, e))?;
        on_step(StepEvent::Started(&name));
        let started = Instant::now();
        let result = journal
            .record(&name, async {
                failpoint::hit(&format!("in-{name}"))?;
                let _during = failpoint::during(&name);
                backward(step, target, sys, ctx).await
            })
            .await;
        match &result {
            Ok(_) => on_step(StepEvent::Succeeded(&name, started.elapsed())),
            Err(e) => on_step(StepEvent::Failed(&name, started.elapsed(), e)),
        }
        result.map_err(|e| (step, e))?;
    }
    Ok(())
}

/// What each revert step does.
async fn backward<S: ServiceManager, P: PackageManager>(
    step: Step,
    target: &Target,
    sys: &Systems<'_, S, P>,
    ctx: &mut Ctx,
) -> anyhow::Result<Produced> {
    match step {
        Step::Stop => {
            stop_units(target, sys).await?;
            Ok(json!({"units": target.services}).into())
        }
        Step::RestoreDatabase => {
            if !ctx.touched {
                return Ok(json!({"skipped": "the database was not changed"}).into());
            }
            if ctx.restored_db {
                // An earlier attempt put it back; the old version may have
                // taken writes since.
                return Ok(json!({"skipped": "already restored by an earlier attempt"}).into());
            }
            // The config was put back first: it names the database that
            // was dumped.
            match backup::db::resolve(&target.database) {
                Ok(db) => ctx.db = db,
                Err(e) if ctx.db.is_none() => return Err(e.context("database")),
                Err(e) => tracing::warn!("database: {e:#}; using the one read before the run"),
            }
            match (&ctx.db, &ctx.db_backup) {
                (Some(db), Some(a)) => {
                    db.restore(a)
                        .await
                        .with_context(|| format!("restore of {}", db.describe()))?;
                    Ok(json!({"restored": a}).into())
                }
                (Some(db), None) => bail!("no backup of {} was taken", db.describe()),
                (None, _) => Ok(json!({"database": null}).into()),
            }
        }
        Step::RestoreFiles => {
            if !ctx.touched {
                return Ok(json!({"skipped": "the files were not changed"}).into());
            }
            if ctx.restored_files {
                return Ok(json!({"skipped": "already restored by an earlier attempt"}).into());
            }
            match &ctx.files_backup {
                Some(a) => {
                    let restored = backup::files::restore(a)?;
                    Ok(json!({"restored": a, "paths": restored}).into())
                }
                None => Ok(json!({"files": null}).into()),
            }
        }
        Step::Install => {
            let version = ctx.previous_version.clone().context(
                "nothing was installed before this run: there is no version to go back to",
            )?;
            ctx.baseline = Some(
                health::baseline_in(&target.services, sys.systemd, sys.journal.clone()).await?,
            );
            // What the host must run again: every package at its version
            // before the run; what the run brought in anew goes.
            let mut wanted = vec![(target.package.clone(), Some(version.clone()))];
            wanted.extend(ctx.others.iter().map(|o| (o.name.clone(), o.from.clone())));
            let mut files = Vec::new();
            let mut removed = Vec::new();
            let mut already = true;
            for (name, want) in &wanted {
                let now = sys.pkg.installed(name).await?;
                let at = match (&now, want) {
                    (Some(i), Some(v)) => i.configured && same_version(target, &i.version, v),
                    (None, None) => true,
                    _ => false,
                };
                if at {
                    continue;
                }
                already = false;
                match want {
                    None => removed.push(name.clone()),
                    Some(v) => {
                        let file = if name == &target.package {
                            ctx.previous.clone()
                        } else {
                            ctx.others
                                .iter()
                                .find(|o| &o.name == name)
                                .and_then(|o| o.previous.clone())
                        };
                        files.push(file.with_context(|| {
                            format!("the package of {name} {v} is not in the local cache")
                        })?);
                    }
                }
            }
            if already {
                return Ok(json!({"skipped": format!("{version} is installed")}).into());
            }
            let output = install(target, sys, &files, &removed, &wanted, true, true).await?;
            let config_files = configs::files_of(target, &[]);
            // Read before the stop, unless `recover` rebuilt this run from
            // the history.
            let shipped = if ctx.config_base.is_empty() {
                configs::packaged_by_any(&files, &config_files)?
            } else {
                ctx.config_base.clone()
            };
            let (removed_pending, left) = tidy_pending(&config_files, &shipped)?;
            Ok(json!({"output": output, "version": version, "removed": removed, "removed_pending": removed_pending, "pending_config": left}).into())
        }
        Step::Reload => {
            sys.systemd.daemon_reload().await?;
            Ok(json!({}).into())
        }
        Step::Start => {
            start_units(target, sys).await?;
            Ok(json!({"units": target.services}).into())
        }
        Step::Health => {
            let passed = gate(target, sys, ctx.baseline.as_ref()).await?;
            Ok(json!({"waited_ms": passed.waited_ms, "body": passed.body}).into())
        }
        other => bail!("{} is not a revert step", other.name()),
    }
}

/// The theme merge of an upgrade: `base` from the first of the installed
/// packages (`old`) that ships a default theme, `theirs` from the first of
/// the new ones, `ours` the custom theme on disk.
fn theme_merge(
    th: &crate::theme::Theme,
    new: &[PathBuf],
    old: &[PathBuf],
) -> anyhow::Result<crate::theme::ThemeMerge> {
    let first = |packages: &[PathBuf]| -> anyhow::Result<crate::theme::Files> {
        for p in packages {
            let files = crate::theme::packaged(p, &th.default)?;
            if !files.is_empty() {
                return Ok(files);
            }
        }
        Ok(crate::theme::Files::new())
    };
    let base = first(old)?;
    let theirs = first(new)?;
    let ours = crate::theme::live(&th.path)?;
    Ok(crate::theme::review(th, &base, ours.as_ref(), &theirs))
}

/// The config step. An upgrade merges each config file by the target's
/// `config_merge` policy, from the packages themselves (`base` = the
/// previous package's default, `ours` = the live file before the install,
/// `theirs` = the new package's default), and writes the result
/// atomically; the previous file is in this run's files backup. A rollback
/// or a downgrade keeps the restored files. Either way, a `.dpkg-dist` or
/// `.rpmnew` holding exactly the installed package's default is removed
/// (the package in the cache keeps it) unless the policy kept the live
/// file; anything else left beside the live files is reported.
fn config_step(target: &Target, kind: RunKind, ctx: &mut Ctx) -> anyhow::Result<serde_json::Value> {
    let mask = crate::confmerge::Masker::portal_default();
    let files = ctx.config_files.clone();
    let mut done = Vec::new();
    let mut keep_pending = Vec::new();
    if kind == RunKind::Upgrade {
        let reviews = configs::review(
            target.config_merge,
            &ctx.config_base,
            &ctx.config_before,
            &ctx.config_new,
            &mask,
        );
        let conflicts: Vec<String> = reviews.iter().flat_map(|r| r.conflicts(&mask)).collect();
        if !conflicts.is_empty() {
            bail!("{}", conflicts.join("; "));
        }
        for r in &reviews {
            if let Some(result) = &r.result {
                let now = std::fs::read(&r.path).ok();
                if now.as_deref() != Some(result.as_slice()) {
                    configs::write_atomic(&r.path, result)?;
                }
            }
            if r.action == configs::Action::Keep {
                keep_pending.push(r.path.clone());
            }
            if r.action != configs::Action::Unchanged {
                done.push(r.to_json(&mask));
            }
        }
    }
    let tidy: Vec<PathBuf> = files
        .iter()
        .filter(|f| !keep_pending.contains(f))
        .cloned()
        .collect();
    let (removed, _) = tidy_pending(&tidy, &ctx.config_new)?;
    ctx.pending_config = pending_config_files(&files);
    ctx.config = done.clone();
    Ok(json!({
        "policy": target.config_merge.as_str(),
        "files": done,
        "removed": removed,
        "pending_config": ctx.pending_config,
    }))
}

/// Removes the `.dpkg-dist`/`.dpkg-new`/`.rpmnew` beside `files` that hold
/// exactly what the installed package ships for the file (`shipped`;
/// nothing is lost: the package is in the cache). Returns what was removed
/// and what is left.
fn tidy_pending(
    files: &[PathBuf],
    shipped: &configs::Contents,
) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut removed = Vec::new();
    for f in files {
        let Some(Some(default)) = shipped.get(f) else {
            continue;
        };
        for suffix in [".dpkg-dist", ".dpkg-new", ".rpmnew"] {
            let mut name = f.as_os_str().to_owned();
            name.push(suffix);
            let p = PathBuf::from(name);
            if std::fs::read(&p).is_ok_and(|c| &c == default) {
                std::fs::remove_file(&p).with_context(|| format!("{}: remove", p.display()))?;
                removed.push(p);
            }
        }
    }
    Ok((removed, pending_config_files(files)))
}

/// Gets a package file: from the cache (hash checked again) or downloaded
/// and verified. Returns its path and the artifact to record (`package`:
/// which package it is of, None for the target's first one).
async fn obtain<S, P>(
    p: &PackageRef,
    role: &str,
    package: Option<&str>,
    target: &Target,
    dirs: Dirs<'_>,
    sys: &Systems<'_, S, P>,
) -> anyhow::Result<(PathBuf, NewArtifact)> {
    let (path, sha256, size) = match &p.source {
        Source::Remote(c) => {
            let path = fetch_package(sys.http, dirs.cache, &target.name, c).await?;
            (path, c.sha256.clone(), c.size)
        }
        Source::Cached(c) => {
            verify_cached(c).await?;
            (c.path.clone(), c.sha256.clone(), c.size)
        }
    };
    let kind = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("pkg")
        .to_string();
    let a = NewArtifact {
        package: package.map(str::to_string),
        role: role.into(),
        version: Some(p.version.clone()),
        kind,
        path: path.clone(),
        sha256,
        size,
    };
    Ok((path, a))
}

/// Checks a cached package's size and SHA-256 again (it may have been
/// damaged since it was verified), by the one file hash.
pub(super) async fn verify_cached(c: &CachedPackage) -> anyhow::Result<()> {
    let c = c.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut f = std::fs::File::open(&c.path)
            .with_context(|| format!("cached package {}", c.path.display()))?;
        let hashed = crate::fsutil::hash::hash_open(&mut f, u64::MAX)
            .with_context(|| format!("cannot read {}", c.path.display()))?
            .with_context(|| format!("cannot read {}: too long", c.path.display()))?;
        let (n, got) = (hashed.size, hashed.sha256());
        if n != c.size || got != c.sha256 {
            bail!(
                "cached package {} is damaged: {n} bytes with SHA-256 {got}, expected {} bytes with {}",
                c.path.display(),
                c.size,
                c.sha256
            );
        }
        Ok(())
    })
    .await
    .map_err(|e| anyhow!("the hashing thread failed: {e}"))?
}

/// Installs package files in one transaction and removes `removed`, with
/// the target's units masked for the time of it when `hold` (maintainer
/// scripts cannot start them on the config the package left), then checks
/// the package manager reports each of `wanted` at its version (None: not
/// installed), fully configured.
#[allow(clippy::too_many_arguments)]
async fn install<S: ServiceManager, P: PackageManager>(
    target: &Target,
    sys: &Systems<'_, S, P>,
    files: &[PathBuf],
    removed: &[String],
    wanted: &[(String, Option<String>)],
    downgrade: bool,
    hold: bool,
) -> anyhow::Result<String> {
    if hold {
        sys.systemd.mask_runtime(&target.services).await?;
    }
    let result = async {
        let mut output = String::new();
        if !files.is_empty() {
            let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
            output.push_str(&sys.pkg.install(&paths, downgrade).await?.output);
        }
        if !removed.is_empty() {
            let names: Vec<&str> = removed.iter().map(String::as_str).collect();
            output.push_str(&sys.pkg.remove(&names).await?.output);
        }
        anyhow::Ok(output)
    }
    .await;
    if hold && let Err(e) = sys.systemd.unmask_runtime(&target.services).await {
        // The start step unmasks again before it starts anything.
        tracing::warn!("{e:#}");
    }
    let output = result?;
    for (name, version) in wanted {
        let installed = sys.pkg.installed(name).await?;
        match (installed, version) {
            (Some(i), Some(v)) if i.configured && same_version(target, &i.version, v) => {}
            (Some(i), Some(v)) => bail!(
                "after the install the package manager reports {name} {} ({}) instead of {v}",
                i.version,
                i.status
            ),
            (None, Some(_)) => bail!("after the install {name} is not installed"),
            (Some(i), None) if i.configured => {
                bail!("{name} {} is still installed after its removal", i.version)
            }
            (Some(_), None) | (None, None) => {}
        }
    }
    Ok(tail(&output, 20))
}

/// Whether two version texts are one version for the target's family.
fn same_version(target: &Target, a: &str, b: &str) -> bool {
    use crate::version::PkgVersion;
    match (
        PkgVersion::parse(target.family, a),
        PkgVersion::parse(target.family, b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Stops every unit of the target.
pub(super) async fn stop_units<S: ServiceManager, P>(
    target: &Target,
    sys: &Systems<'_, S, P>,
) -> anyhow::Result<()> {
    for unit in &target.services {
        sys.systemd.stop(unit, UNIT_JOB_TIMEOUT).await?;
    }
    Ok(())
}

/// Starts every unit of the target (lifting first a runtime mask an
/// interrupted install may have left).
pub(super) async fn start_units<S: ServiceManager, P>(
    target: &Target,
    sys: &Systems<'_, S, P>,
) -> anyhow::Result<()> {
    sys.systemd.unmask_runtime(&target.services).await?;
    for unit in &target.services {
        sys.systemd.start(unit, UNIT_JOB_TIMEOUT).await?;
    }
    Ok(())
}

/// The target's health gate.
pub(super) async fn gate<S: ServiceManager, P>(
    target: &Target,
    sys: &Systems<'_, S, P>,
    since: Option<&Baseline>,
) -> anyhow::Result<health::Passed> {
    let gate = Gate {
        units: &target.services,
        url: target.health.url.as_ref(),
        timeout: target.health.timeout,
        settle: target.health.settle,
        log_errors: &target.health.log_errors,
        since,
    };
    health::wait_healthy(&gate, sys.systemd, sys.http).await
}

/// The target's verify checks, after its health gate passed; the journal
/// checks read from the baseline taken before the install.
async fn verify<S: ServiceManager, P>(
    target: &Target,
    t: &Transition,
    sys: &Systems<'_, S, P>,
    since: Option<&Baseline>,
) -> Vec<crate::verify::CheckResult> {
    let from = t.from.as_ref().map(|i| i.version.as_str());
    let vars = crate::verify::Vars::new(target.family, from, &t.to.version);
    let env = crate::verify::Env {
        http: sys.http,
        journal: since.map_or(&sys.journal, |b| &b.journal),
        since: since.map(|b| b.cursor.as_deref()),
        units: &target.services,
        vars: &vars,
    };
    crate::verify::run_all(&target.verify, &env).await
}

/// The directory of a run's backups, created 0700.
fn backup_dir(dirs: Dirs<'_>, target: &str, run: i64) -> anyhow::Result<PathBuf> {
    let dir = dirs.backups(target, run);
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The file extension of a database dump.
fn dump_extension(db: &Db) -> &'static str {
    match db.kind() {
        backup::Kind::Sqlite => "sqlite",
        backup::Kind::Postgres => "pgdump",
        backup::Kind::Mysql => "sql",
        backup::Kind::Files => "tar.gz",
    }
}

/// The installed version and unit states, for a message.
pub(super) async fn describe_host<S: ServiceManager, P: PackageManager>(
    target: &Target,
    sys: &Systems<'_, S, P>,
) -> String {
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
    format!("installed now: {installed}; units: {}", units.join(", "))
}
