//! `recover`: finish or undo a run that was interrupted (crash, power loss,
//! kill -9) or whose rollback failed, from what the history recorded.
//!
//! - The run never reached the stop: nothing changed; the units are started
//!   if they are not running and the run is closed as failed.
//! - The run's `commit` step was recorded (it passed its health gate): the
//!   run is completed, its units started if they are not running.
//! - Otherwise (interrupted anywhere between the stop and the commit, or
//!   while reverting) the run is reverted with its own backups and the previous
//!   package from the local cache, exactly as a failure would have been.

use serde_json::json;

use super::apply::{Ctx, gate, revert_and_finish, start_units};
use super::journal::{Journal, Produced};
use super::{Report, Step, StepEvent, Systems};
use crate::backup;
use crate::config::Target;
use crate::error::Error;
use crate::history::{ArtifactRecord, History, Run};
use crate::pkg::PackageManager;
use crate::systemd::ServiceManager;

/// The run `recover` must deal with, if any: the newest run that is not a
/// `recover` run itself and either has no outcome (interrupted) or failed
/// while reverting.
pub fn needs_recovery(history: &History, target: &str) -> anyhow::Result<Option<Run>> {
    for run in history.runs(Some(target), 1000)? {
        if run.kind == "recover" {
            continue;
        }
        // A failed run that had stopped the service failed to roll back.
        let stopped = run.steps.iter().any(|s| s.name == Step::Stop.name());
        let needs = match run.outcome.as_deref() {
            None => true,
            Some("failed") => stopped,
            _ => false,
        };
        return Ok(needs.then_some(run));
    }
    Ok(None)
}

/// Where an interrupted run stopped: its last step and that step's status.
pub fn stopped_at(run: &Run) -> String {
    run.steps
        .last()
        .map(|s| format!("{} ({})", s.name, s.status))
        .unwrap_or_else(|| "before its first step".into())
}

/// Brings the host to a consistent state after `subject` was interrupted.
/// Ok when the run was completed or had changed nothing; `RolledBack` (exit
/// 4) when it was undone; `NeedsAttention` (exit 5) when undoing failed.
pub async fn recover<S: ServiceManager, P: PackageManager>(
    target: &Target,
    subject: &Run,
    sys: &Systems<'_, S, P>,
    on_step: &mut dyn FnMut(StepEvent<'_>),
) -> Result<Report, Error> {
    let installed = sys.pkg.installed(&target.package).await?;
    let now = installed.as_ref().map(|i| i.version.clone());
    let journal = Journal::begin(
        sys.history,
        &target.name,
        "recover",
        now.as_deref(),
        subject.to.as_deref(),
    )?;
    // Earlier `recover` runs that were themselves interrupted.
    for stale in sys.history.unfinished_runs(&target.name)? {
        if stale.kind == "recover" && stale.id != journal.run() {
            let _ = sys.history.finish_run(
                stale.id,
                "interrupted",
                Some(&format!("superseded by recover run #{}", journal.run())),
            );
        }
    }
    let subj = Journal::resume(sys.history, subject.id);
    let mut ctx = context_from(subject, &sys.history.artifacts(subject.id)?)?;
    // Read again (after the config is restored) by the revert if this fails.
    ctx.db = backup::db::resolve(&target.database).unwrap_or_else(|e| {
        tracing::warn!("database: {e:#}");
        None
    });
    let reverting = subject.steps.iter().any(|s| s.name.starts_with("revert-"));
    let what = format!(
        "run #{} ({} {} → {}) was interrupted at {}",
        subject.id,
        subject.kind,
        subject.from.as_deref().unwrap_or("none"),
        subject.to.as_deref().unwrap_or("?"),
        stopped_at(subject)
    );
    let report = |outcome: &str| Report {
        run: journal.run(),
        target: target.name.clone(),
        kind: "recover".into(),
        from: now.clone(),
        to: subject.to.clone().unwrap_or_default(),
        outcome: outcome.into(),
        downtime_ms: 0,
        pending_config: Vec::new(),
        config: Vec::new(),
        backups: Vec::new(),
        packages: subject.packages.clone(),
        verify: Vec::new(),
    };

    if !ctx.stopped {
        let r = journal
            .record("start", async {
                start_units(target, sys).await?;
                Ok(Produced::from(json!({"units": target.services})))
            })
            .await;
        on_event(on_step, "start", &r);
        r.map_err(Error::NeedsAttention)?;
        let message = format!(
            "{what}, before the service was stopped: nothing was changed (closed by recover run #{})",
            journal.run()
        );
        subj.finish("failed", Some(&message))?;
        journal.finish("succeeded", Some(&message))?;
        return Ok(report("abandoned"));
    }

    // The commit is the point of no return: a run whose `commit` step was
    // recorded as succeeded passed its health gate and is completed (its
    // units started if they are not running); any other run that had
    // stopped the service is undone, wherever it was interrupted.
    let committed = !reverting
        && subject
            .steps
            .iter()
            .any(|s| s.name == Step::Commit.name() && s.status == "succeeded");
    if committed {
        let r = journal
            .record("finish", async {
                start_units(target, sys).await?;
                let passed = gate(target, sys, None).await?;
                Ok(Produced::from(
                    json!({"waited_ms": passed.waited_ms, "body": passed.body}),
                ))
            })
            .await;
        on_event(on_step, "finish", &r);
        let message = match &r {
            Ok(_) => format!(
                "{what}, after its commit; completed by recover run #{}: {} is installed and healthy",
                journal.run(),
                subject.to.as_deref().unwrap_or("?")
            ),
            Err(e) => format!(
                "{what}, after its commit; {} is installed but not healthy now: {} (recover run #{}; `upkeep rollback` returns to {})",
                subject.to.as_deref().unwrap_or("?"),
                crate::error::one_line(e),
                journal.run(),
                subject.from.as_deref().unwrap_or("the previous version")
            ),
        };
        subj.finish("succeeded", Some(&message))?;
        return match r {
            Ok(_) => {
                journal.finish("succeeded", Some(&message))?;
                Ok(report("completed"))
            }
            Err(_) => {
                journal.finish("failed", Some(&message))?;
                Err(Error::NeedsAttention(anyhow::anyhow!(message)))
            }
        };
    }
    // The revert's steps go into the interrupted run itself, so that a
    // later `recover` sees how far it got.
    let e = revert_and_finish(&what, target, sys, &subj, &subj, &mut ctx, on_step).await;
    let outcome = match &e {
        Error::RolledBack(_) => "succeeded",
        _ => "failed",
    };
    let _ = journal.finish(outcome, Some(&e.to_string()));
    Err(e)
}

/// Tells `on_step` about a step run outside the step list.
fn on_event(
    on_step: &mut dyn FnMut(StepEvent<'_>),
    name: &str,
    r: &anyhow::Result<serde_json::Value>,
) {
    on_step(StepEvent::Started(name));
    match r {
        Ok(_) => on_step(StepEvent::Succeeded(name, std::time::Duration::ZERO)),
        Err(e) => on_step(StepEvent::Failed(name, std::time::Duration::ZERO, e)),
    }
}

/// Rebuilds what a run had done from its steps and artifacts.
pub(super) fn context_from(run: &Run, artifacts: &[ArtifactRecord]) -> Result<Ctx, Error> {
    let mut ctx = Ctx {
        previous_version: run.from.clone(),
        others: run
            .packages
            .iter()
            .skip(1)
            .map(|p| super::apply::OtherFiles {
                name: p.name.clone(),
                from: p.installed.clone(),
                to: p.candidate.clone(),
                ..Default::default()
            })
            .collect(),
        ..Ctx::default()
    };
    for s in &run.steps {
        if s.name == Step::Stop.name() {
            ctx.stopped = true;
        }
        if s.status == "succeeded" && s.name == Step::RestoreDatabase.revert_name() {
            ctx.restored_db = true;
        }
        if s.status == "succeeded" && s.name == Step::RestoreFiles.revert_name() {
            ctx.restored_files = true;
        }
        if [
            Step::RestoreDatabase,
            Step::RestoreFiles,
            Step::Install,
            Step::Config,
        ]
        .iter()
        .any(|t| t.name() == s.name)
        {
            ctx.touched = true;
        }
    }
    for a in artifacts {
        let art = &a.artifact;
        let other = art
            .package
            .as_ref()
            .and_then(|name| ctx.others.iter().position(|o| &o.name == name));
        match (art.role.as_str(), other) {
            ("package", Some(i)) => ctx.others[i].file = Some(art.path.clone()),
            ("previous-package", Some(i)) => ctx.others[i].previous = Some(art.path.clone()),
            _ if art.package.is_some() => {}
            ("package", None) => ctx.package = Some(art.path.clone()),
            ("previous-package", None) => ctx.previous = Some(art.path.clone()),
            ("files-backup" | "database-backup", _) => {
                let backup = super::recorded_backup(run.id, art).map_err(Error::NeedsAttention)?;
                if art.role == "files-backup" {
                    ctx.files_backup = Some(backup);
                } else {
                    ctx.db_backup = Some(backup);
                }
            }
            _ => {}
        }
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_run_or_a_failed_rollback_needs_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        assert!(needs_recovery(&h, "portal").unwrap().is_none());
        // Failed before the stop: nothing to recover.
        let a = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        let s = h.begin_step(a, "download").unwrap();
        h.end_step(a, s, 1, None, Some("404")).unwrap();
        h.finish_run(a, "failed", None).unwrap();
        assert!(needs_recovery(&h, "portal").unwrap().is_none());
        // Killed during the install.
        let b = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        h.begin_step(b, "stop").unwrap();
        h.begin_step(b, "install").unwrap();
        let r = needs_recovery(&h, "portal").unwrap().unwrap();
        assert_eq!(r.id, b);
        assert_eq!(stopped_at(&r), "install (running)");
        let ctx = context_from(&r, &[]).unwrap();
        assert!(ctx.stopped && ctx.touched);
        // A recover run that was itself interrupted does not hide it.
        h.begin_run("portal", "recover", Some("2"), Some("2"))
            .unwrap();
        assert_eq!(needs_recovery(&h, "portal").unwrap().unwrap().id, b);
        // A run whose own rollback failed still needs recovery.
        h.finish_run(b, "rolled_back", None).unwrap();
        assert!(needs_recovery(&h, "portal").unwrap().is_none());
        let c = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        let s = h.begin_step(c, "stop").unwrap();
        h.end_step(c, s, 1, None, None).unwrap();
        let s = h.begin_step(c, "revert-restore-database").unwrap();
        h.end_step(c, s, 1, None, None).unwrap();
        let s = h.begin_step(c, "revert-start").unwrap();
        h.end_step(c, s, 1, None, Some("boom")).unwrap();
        h.finish_run(c, "failed", None).unwrap();
        let r = needs_recovery(&h, "portal").unwrap().unwrap();
        assert_eq!(r.id, c);
        // Resuming it must not restore the database a second time: the old
        // version may have taken writes since.
        let ctx = context_from(&r, &[]).unwrap();
        assert!(ctx.restored_db && !ctx.restored_files);
        // A failed run whose revert never got to write a step (the lock
        // wait timed out) still needs recovery.
        h.finish_run(c, "rolled_back", None).unwrap();
        let d = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        let s = h.begin_step(d, "stop").unwrap();
        h.end_step(d, s, 1, None, None).unwrap();
        h.finish_run(d, "failed", Some("lock timeout")).unwrap();
        assert_eq!(needs_recovery(&h, "portal").unwrap().unwrap().id, d);
    }

    #[test]
    fn a_run_killed_before_the_stop_changed_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let a = h
            .begin_run("portal", "upgrade", Some("1"), Some("2"))
            .unwrap();
        h.begin_step(a, "backup-files").unwrap();
        let r = h.run(a).unwrap().unwrap();
        let ctx = context_from(&r, &[]).unwrap();
        assert!(!ctx.stopped && !ctx.touched);
    }
}
