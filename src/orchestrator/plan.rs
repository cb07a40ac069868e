//! Building transitions from what the host has, what the repository offers
//! and what the history recorded: which package file to install, which one
//! to fall back on, which backups to put back. A rollback or a downgrade
//! never needs the repository when the cache still holds the package.

use anyhow::anyhow;

use super::{CachedPackage, Member, PackageRef, Restore, RunKind, Source, Transition};
use crate::backup::Artifact;
use crate::config::{Database, Target};
use crate::error::Error;
use crate::history::{ArtifactRecord, History};
use crate::pkg::Installed;
use crate::repo::Candidate;
use crate::version::{Family, PkgVersion};

/// The package family of a target.
pub fn family(target: &Target) -> Family {
    target.family
}

/// True when two version strings are the same version for the family's
/// package manager (`0:1.0-1` is `1.0-1`).
fn same_version(family: Family, a: &str, b: &str) -> bool {
    match (PkgVersion::parse(family, a), PkgVersion::parse(family, b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A verified package of `package` at `version` that upkeep downloaded
/// (or rebuilt) before and that is still in the cache with its size, if
/// any (newest first). Artifacts recorded without a package name are of the
/// target's first package.
pub fn cached_package(
    history: &History,
    target: &Target,
    package: &str,
    version: &str,
) -> anyhow::Result<Option<CachedPackage>> {
    let family = family(target);
    for role in ["package", "previous-package"] {
        for a in history.artifacts_by_role(&target.name, role, None)? {
            let art = &a.artifact;
            let of = art.package.as_deref().unwrap_or(&target.package);
            let matches = of == package
                && art
                    .version
                    .as_deref()
                    .is_some_and(|v| same_version(family, v, version));
            let present = std::fs::metadata(&art.path).is_ok_and(|m| m.len() == art.size);
            if matches && present {
                return Ok(Some(CachedPackage {
                    path: art.path.clone(),
                    sha256: art.sha256.clone(),
                    size: art.size,
                }));
            }
        }
    }
    Ok(None)
}

/// Where to get `package` at `version`: the cache first, then the
/// repositories' `candidates` (of that package).
pub fn package_ref(
    history: &History,
    target: &Target,
    package: &str,
    version: &str,
    candidates: &[Candidate],
) -> anyhow::Result<Option<PackageRef>> {
    if let Some(c) = cached_package(history, target, package, version)? {
        return Ok(Some(PackageRef {
            version: version.to_string(),
            source: Source::Cached(c),
        }));
    }
    Ok(candidates
        .iter()
        .find(|c| c.package == package && c.is_version(version))
        .map(|c| PackageRef {
            version: version.to_string(),
            source: Source::Remote(Box::new(c.clone())),
        }))
}

/// Another package an upgrade moves, as the caller found it: what is
/// installed, the candidate chosen for it, every version the repositories
/// offer (to find the installed one's file), and why it moves.
#[derive(Clone, Debug)]
pub struct OtherPackage {
    /// Package name.
    pub name: String,
    /// Its installed state.
    pub installed: Option<Installed>,
    /// The version to install.
    pub candidate: Candidate,
    /// Every version of it the repositories offer.
    pub candidates: Vec<Candidate>,
    /// A verified copy of the installed version the caller obtained
    /// otherwise (rebuilt from the installed files), if any.
    pub rebuilt: Option<CachedPackage>,
    /// Why it moves.
    pub reason: String,
}

/// The copy of an installed package's version a failed upgrade goes back
/// to: the cache, a repository, or a copy rebuilt from the host; without
/// one the upgrade is blocked (exit 3).
fn previous_of(
    history: &History,
    target: &Target,
    package: &str,
    installed: &Installed,
    candidates: &[Candidate],
    rebuilt: Option<&CachedPackage>,
) -> Result<PackageRef, Error> {
    if let Some(r) = package_ref(history, target, package, &installed.version, candidates)? {
        return Ok(r);
    }
    if let Some(c) = rebuilt {
        return Ok(PackageRef {
            version: installed.version.clone(),
            source: Source::Cached(c.clone()),
        });
    }
    Err(Error::Preflight(anyhow!(
        "preflight: the installed {package} {} is neither in upkeep's cache nor in a repository, and no copy could be rebuilt from the host, so a failed upgrade could not be rolled back; nothing was changed",
        installed.version
    )))
}

/// The transition of an upgrade to `candidate`. The package of the installed
/// version must be obtainable (cache or repository): without it a failed
/// upgrade could not be rolled back, so the upgrade is blocked (exit 3).
pub fn upgrade(
    history: &History,
    target: &Target,
    installed: Option<&Installed>,
    candidate: &Candidate,
    candidates: &[Candidate],
    rebuilt: Option<&CachedPackage>,
    others: &[OtherPackage],
) -> Result<Transition, Error> {
    let previous = match installed {
        None => None,
        Some(i) => Some(previous_of(
            history,
            target,
            &target.package,
            i,
            candidates,
            rebuilt,
        )?),
    };
    let mut members = Vec::new();
    for o in others {
        let previous = match &o.installed {
            Some(i) => Some(previous_of(
                history,
                target,
                &o.name,
                i,
                &o.candidates,
                o.rebuilt.as_ref(),
            )?),
            None => None,
        };
        members.push(Member {
            name: o.name.clone(),
            from: o.installed.as_ref().map(|i| i.version.clone()),
            to: Some(PackageRef {
                version: o.candidate.version.to_string(),
                source: Source::Remote(Box::new(o.candidate.clone())),
            }),
            previous,
            reason: o.reason.clone(),
        });
    }
    Ok(Transition {
        kind: RunKind::Upgrade,
        from: installed.cloned(),
        to: PackageRef {
            version: candidate.version.to_string(),
            source: Source::Remote(Box::new(candidate.clone())),
        },
        previous,
        restore: None,
        others: members,
    })
}

/// The other packages a run that goes back to the state before run `run`
/// changes: each package `run` changed goes back to its version before it
/// (from the cache: every one was kept when `run` began), and what `run`
/// installed anew is removed. `installed` gives each one's version now.
fn going_back_members(
    history: &History,
    target: &Target,
    run: &crate::history::Run,
    now: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<Vec<Member>, Error> {
    let mut out = Vec::new();
    for p in run.packages.iter().filter(|p| p.name != target.package) {
        let current = now.get(&p.name).cloned().flatten();
        let to = match &p.installed {
            Some(v) => {
                let c = cached_package(history, target, &p.name, v)?.ok_or_else(|| {
                    Error::Failed(anyhow!(
                        "the package of {} {v} is no longer in upkeep's cache; nothing was changed",
                        p.name
                    ))
                })?;
                Some(PackageRef {
                    version: v.clone(),
                    source: Source::Cached(c),
                })
            }
            None => None,
        };
        let previous = match &current {
            Some(v) => Some(PackageRef {
                version: v.clone(),
                source: Source::Cached(cached_package(history, target, &p.name, v)?.ok_or_else(
                    || {
                        Error::Preflight(anyhow!(
                            "preflight: the package of the installed {} {v} is no longer in upkeep's cache, so a failure could not be undone; nothing was changed",
                            p.name
                        ))
                    },
                )?),
            }),
            None => None,
        };
        out.push(Member {
            name: p.name.clone(),
            from: current,
            to,
            previous,
            reason: format!("changed by run #{}", run.id),
        });
    }
    Ok(out)
}

/// The transition undoing the last completed upgrade: its previous package,
/// its config files and its database backup, all from the local state.
pub fn rollback(
    history: &History,
    target: &Target,
    installed: &Installed,
    now: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<Transition, Error> {
    let family = family(target);
    let last = history
        .last_run_where(
            &target.name,
            &["upgrade", "rollback", "downgrade"],
            "succeeded",
        )?
        .ok_or_else(|| {
            Error::Failed(anyhow!(
                "no completed upgrade of {} in the history: nothing to roll back",
                target.name
            ))
        })?;
    if last.kind != "upgrade" {
        return Err(Error::Failed(anyhow!(
            "the last completed run (#{}) was a {} to {}: nothing to roll back (to go further back: `upkeep downgrade {} --to VERSION`)",
            last.id,
            last.kind,
            last.to.as_deref().unwrap_or("?"),
            target.name
        )));
    }
    let (Some(from), Some(to)) = (last.from.clone(), last.to.clone()) else {
        return Err(Error::Failed(anyhow!(
            "the last upgrade (#{}) installed {} on a host that had nothing: nothing to roll back to",
            last.id,
            target.package
        )));
    };
    if !same_version(family, &installed.version, &to) {
        return Err(Error::Failed(anyhow!(
            "{} {} is installed, but the last upgrade (#{}) installed {to}: the host changed since; use `upkeep downgrade {} --to VERSION`",
            target.package,
            installed.version,
            last.id,
            target.name
        )));
    }
    let artifacts = history.artifacts(last.id)?;
    let back_to = cached_package(history, target, &target.package, &from)?.ok_or_else(|| {
        Error::Failed(anyhow!(
            "the package of {from} is no longer in upkeep's cache; nothing was changed"
        ))
    })?;
    let current = cached_package(history, target, &target.package, &installed.version)?.ok_or_else(|| {
        Error::Preflight(anyhow!(
            "preflight: the package of the installed {} is no longer in upkeep's cache, so a failed rollback could not be undone; nothing was changed",
            installed.version
        ))
    })?;
    let restore = restore_from(target, last.id, &artifacts, &from)?;
    let others = going_back_members(history, target, &last, now)?;
    Ok(Transition {
        kind: RunKind::Rollback,
        from: Some(installed.clone()),
        to: PackageRef {
            version: from,
            source: Source::Cached(back_to),
        },
        previous: Some(PackageRef {
            version: installed.version.clone(),
            source: Source::Cached(current),
        }),
        restore: Some(restore),
        others,
    })
}

/// The recorded version `wanted` names (`1.0.0` names `1.0.0-1`; the
/// newest if several), which must be older than the installed one.
pub fn downgrade_version(
    history: &History,
    target: &Target,
    installed: &Installed,
    wanted: &str,
) -> Result<String, Error> {
    let family = family(target);
    let now = PkgVersion::parse(family, &installed.version)
        .map_err(|e| Error::Failed(anyhow!("installed version: {e}")))?;
    // The versions the history knows, newest record first.
    let mut known: Vec<String> = Vec::new();
    for role in [
        "package",
        "previous-package",
        "database-backup",
        "files-backup",
    ] {
        for a in history.artifacts_by_role(&target.name, role, None)? {
            if let Some(v) = a.artifact.version
                && !known.contains(&v)
            {
                known.push(v);
            }
        }
    }
    let version = known
        .iter()
        .filter_map(|v| PkgVersion::parse(family, v).ok())
        .filter(|v| v.matches(wanted))
        .max()
        .ok_or_else(|| {
            Error::Failed(anyhow!(
                "version {wanted} is not in the history of {} (known: {})",
                target.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
    if version >= now {
        return Err(Error::Failed(anyhow!(
            "{version} is not older than the installed {}: use `upkeep upgrade {} --to {wanted}`",
            installed.version,
            target.name
        )));
    }
    Ok(version.to_string())
}

/// The transition to an older version recorded in the history: its package
/// (from the cache, else the repository), and the database and config
/// backups taken while it was installed, right before the host left it.
pub fn downgrade(
    history: &History,
    target: &Target,
    installed: &Installed,
    wanted: &str,
    candidates: &[Candidate],
    now: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<Transition, Error> {
    let family = family(target);
    let version_text = downgrade_version(history, target, installed, wanted)?;
    let package = package_ref(history, target, &target.package, &version_text, candidates)?.ok_or_else(|| {
        Error::Failed(anyhow!(
            "the package of {version_text} is neither in upkeep's cache nor in the repository; nothing was changed"
        ))
    })?;
    let current = cached_package(history, target, &target.package, &installed.version)?.ok_or_else(|| {
        Error::Preflight(anyhow!(
            "preflight: the package of the installed {} is not in upkeep's cache, so a failed downgrade could not be undone; nothing was changed",
            installed.version
        ))
    })?;
    // The newest backups taken while that version was installed, by a run
    // that completed (it left that version for a newer one).
    let role = if matches!(target.database, Database::None) {
        "files-backup"
    } else {
        "database-backup"
    };
    let taken = history
        .artifacts_by_role(&target.name, role, Some("succeeded"))?
        .into_iter()
        .find(|a| {
            a.artifact
                .version
                .as_deref()
                .is_some_and(|v| same_version(family, v, &version_text))
        })
        .ok_or_else(|| {
            Error::Preflight(anyhow!(
                "preflight: no backup of the database taken while {version_text} was installed is in the history; {version_text} cannot run on the newer schema, so the downgrade is refused; nothing was changed"
            ))
        })?;
    let artifacts = history.artifacts(taken.run_id)?;
    let restore = restore_from(target, taken.run_id, &artifacts, &version_text)?;
    // The other packages go back to what they were when that version was
    // left: the run that took the backups recorded them.
    let others = match history.run(taken.run_id)? {
        Some(left) => going_back_members(history, target, &left, now)?,
        None => Vec::new(),
    };
    Ok(Transition {
        kind: RunKind::Downgrade,
        from: Some(installed.clone()),
        to: package,
        previous: Some(PackageRef {
            version: installed.version.clone(),
            source: Source::Cached(current),
        }),
        restore: Some(restore),
        others,
    })
}

/// The backups of run `run` taken while `version` was installed.
fn restore_from(
    target: &Target,
    run: i64,
    artifacts: &[ArtifactRecord],
    version: &str,
) -> Result<Restore, Error> {
    let find = |role: &str| -> Result<Option<(Artifact, String)>, Error> {
        let Some(a) = artifacts.iter().find(|a| a.artifact.role == role) else {
            return Ok(None);
        };
        let backup = super::recorded_backup(run, &a.artifact).map_err(Error::Failed)?;
        Ok(Some((backup, a.created_at.clone())))
    };
    let database = find("database-backup")?;
    let files = find("files-backup")?;
    if database.is_none() && !matches!(target.database, Database::None) {
        return Err(Error::Preflight(anyhow!(
            "preflight: run #{run} holds no database backup of {version}; nothing was changed"
        )));
    }
    let taken_at = database
        .as_ref()
        .or(files.as_ref())
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    Ok(Restore {
        run,
        taken_at,
        database: database.map(|(a, _)| a),
        files: files.map(|(a, _)| a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewArtifact;

    fn target(db: &str) -> Target {
        crate::config::test_target("", db)
    }

    fn installed(v: &str) -> Installed {
        Installed {
            version: v.into(),
            configured: true,
            status: "install ok installed".into(),
        }
    }

    /// Records a completed run `from → to` with its packages (real files
    /// under `dir`) and backups, as `apply` does.
    fn record_run(
        h: &History,
        dir: &std::path::Path,
        kind: &str,
        from: &str,
        to: &str,
        outcome: &str,
    ) -> i64 {
        let run = h.begin_run("portal", kind, Some(from), Some(to)).unwrap();
        let file = |name: &str| {
            let p = dir.join(name);
            std::fs::write(&p, b"pkg").unwrap();
            p
        };
        let a = |role: &str, version: &str, kind: &str, path: std::path::PathBuf| NewArtifact {
            package: None,
            role: role.into(),
            version: Some(version.into()),
            kind: kind.into(),
            path,
            sha256: "00".repeat(32),
            size: 3,
        };
        let seq = h.begin_step(run, "download").unwrap();
        h.end_step_with(
            run,
            seq,
            1,
            None,
            None,
            &[
                a("package", to, "deb", file(&format!("{to}.deb"))),
                a(
                    "previous-package",
                    from,
                    "deb",
                    file(&format!("{from}.deb")),
                ),
                a(
                    "files-backup",
                    from,
                    "files",
                    file(&format!("files-{run}.tar.gz")),
                ),
                a(
                    "database-backup",
                    from,
                    "sqlite",
                    file(&format!("db-{run}.sqlite")),
                ),
            ],
        )
        .unwrap();
        h.finish_run(run, outcome, None).unwrap();
        run
    }

    const SQLITE: &str =
        "[targets.portal.database]\ntype = \"sqlite\"\npath = \"/var/lib/portal/portal.db\"";

    #[test]
    fn rollback_goes_back_to_the_previous_package_with_that_runs_backups() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let t = target(SQLITE);
        let up = record_run(&h, dir.path(), "upgrade", "1.0.0-1", "2.1.0-1", "succeeded");
        let tr = rollback(&h, &t, &installed("2.1.0-1"), &Default::default()).unwrap();
        assert_eq!(tr.kind, RunKind::Rollback);
        assert_eq!(tr.to.version, "1.0.0-1");
        assert!(matches!(&tr.to.source, Source::Cached(c) if c.path.ends_with("1.0.0-1.deb")));
        assert_eq!(tr.previous.as_ref().unwrap().version, "2.1.0-1");
        let r = tr.restore.unwrap();
        assert_eq!(r.run, up);
        assert!(
            r.database
                .unwrap()
                .path
                .ends_with(format!("db-{up}.sqlite"))
        );
        assert!(
            r.files
                .unwrap()
                .path
                .ends_with(format!("files-{up}.tar.gz"))
        );
    }

    #[test]
    fn rollback_refuses_when_the_host_drifted_or_nothing_was_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let t = target(SQLITE);
        let e = rollback(&h, &t, &installed("2.1.0-1"), &Default::default()).unwrap_err();
        assert!(e.to_string().contains("nothing to roll back"), "{e}");
        record_run(&h, dir.path(), "upgrade", "1.0.0-1", "2.1.0-1", "succeeded");
        let e = rollback(&h, &t, &installed("2.0.0-1"), &Default::default()).unwrap_err();
        assert!(e.to_string().contains("the host changed since"), "{e}");
        record_run(
            &h,
            dir.path(),
            "rollback",
            "2.1.0-1",
            "1.0.0-1",
            "succeeded",
        );
        let e = rollback(&h, &t, &installed("1.0.0-1"), &Default::default()).unwrap_err();
        assert!(e.to_string().contains("was a rollback"), "{e}");
    }

    #[test]
    fn rollback_needs_the_old_package_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let t = target(SQLITE);
        record_run(&h, dir.path(), "upgrade", "1.0.0-1", "2.1.0-1", "succeeded");
        std::fs::remove_file(dir.path().join("1.0.0-1.deb")).unwrap();
        let e = rollback(&h, &t, &installed("2.1.0-1"), &Default::default()).unwrap_err();
        assert!(e.to_string().contains("no longer in upkeep's cache"), "{e}");
    }

    #[test]
    fn downgrade_uses_the_backup_taken_while_that_version_was_installed() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let t = target(SQLITE);
        let first = record_run(&h, dir.path(), "upgrade", "1.0.0-1", "1.1.0-1", "succeeded");
        let failed = record_run(
            &h,
            dir.path(),
            "upgrade",
            "1.1.0-1",
            "2.0.1-1",
            "rolled_back",
        );
        let second = record_run(&h, dir.path(), "upgrade", "1.1.0-1", "2.1.0-1", "succeeded");
        let tr = downgrade(
            &h,
            &t,
            &installed("2.1.0-1"),
            "1.0.0",
            &[],
            &Default::default(),
        )
        .unwrap();
        assert_eq!(tr.to.version, "1.0.0-1");
        assert_eq!(tr.restore.as_ref().unwrap().run, first);
        // The newest completed run that left 1.1.0, not the rolled-back one.
        let tr = downgrade(
            &h,
            &t,
            &installed("2.1.0-1"),
            "1.1.0",
            &[],
            &Default::default(),
        )
        .unwrap();
        assert_eq!(tr.restore.as_ref().unwrap().run, second);
        assert_ne!(tr.restore.as_ref().unwrap().run, failed);
        let e = downgrade(
            &h,
            &t,
            &installed("2.1.0-1"),
            "2.1.0",
            &[],
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not older"), "{e}");
        let e = downgrade(
            &h,
            &t,
            &installed("2.1.0-1"),
            "0.9",
            &[],
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not in the history"), "{e}");
    }

    #[test]
    fn an_upgrade_without_a_way_back_is_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let t = target("");
        let c = Candidate {
            package: "portal".into(),
            version: PkgVersion::deb("2.1.0-1").unwrap(),
            arch: "amd64".into(),
            url: url::Url::parse("http://r/p.deb").unwrap(),
            file_name: "p.deb".into(),
            size: 1,
            sha256: "00".repeat(32),
        };
        let e = upgrade(
            &h,
            &t,
            Some(&installed("1.0.0-1")),
            &c,
            std::slice::from_ref(&c),
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        let mut old = c.clone();
        old.version = PkgVersion::deb("1.0.0-1").unwrap();
        let tr = upgrade(
            &h,
            &t,
            Some(&installed("1.0.0-1")),
            &c,
            &[c.clone(), old],
            None,
            &[],
        )
        .unwrap();
        assert!(matches!(tr.previous.unwrap().source, Source::Remote(_)));
        // Nothing installed: nothing to fall back on, nothing required.
        assert!(
            upgrade(&h, &t, None, &c, &[], None, &[])
                .unwrap()
                .previous
                .is_none()
        );
    }
}
