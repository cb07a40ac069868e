//! `plan` and `diff-config`, and the review `upgrade` must pass: everything
//! short of stopping the service — the path, the packages downloaded and
//! verified, the config changes, the release notes, the preflight checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde_json::json;

use super::{Situation, print_json, upgrade_path};
use crate::cli::Global;
use crate::config::{Settings, Target};
use crate::confmerge::Masker;
use crate::download::Http;
use crate::error::{CmdResult, Error, exit};
use crate::history::History;
use crate::orchestrator::review::{self, Check, Inputs, Review, Status};
use crate::orchestrator::{self, Source};
use crate::pkg::Manager;
use crate::repo::Candidate;

/// A reviewed upgrade: the hops to take and what the review found.
pub(super) struct Prepared {
    /// The candidates to install in turn (the last one is the target).
    pub hops: Vec<Candidate>,
    /// What `plan` shows and `upgrade` obeys.
    pub review: Review,
    /// How long the downloads and checks took.
    pub took: std::time::Duration,
    /// Copies of installed versions rebuilt from the host, by package name and
    /// version,
    /// for the transition.
    pub rebuilt: BTreeMap<(String, String), orchestrator::CachedPackage>,
    /// What the last hop brings along besides the product's packages
    /// (dependencies), for `--json`.
    pub along: Vec<crate::history::PackageChange>,
}

/// Where a rollback copy comes from, for the `rollback-package` check.
fn rollback_source(
    target: &Target,
    cache_dir: &Path,
    p: &orchestrator::PackageRef,
) -> &'static str {
    match &p.source {
        Source::Cached(c)
            if c.path
                .starts_with(orchestrator::product::rebuilt_dir(cache_dir, target)) =>
        {
            "was rebuilt from the installed files, each checked against dpkg's digests"
        }
        Source::Cached(_) => "is in the cache",
        Source::Remote(_) => "comes from the repository",
    }
}

/// Everything short of stopping the service, for an upgrade to `candidate`:
/// the path, every package in the cache and verified (the installed
/// version's too, as the merge's base and the rollback's package), the
/// config review and the checks. A path that a rule forbids fails here
/// (exit 3); failed checks are in the review, for the caller to obey.
pub(super) async fn prepare(
    settings: &Settings,
    target: &Target,
    http: &Http,
    s: &Situation,
    candidate: &Candidate,
) -> Result<Prepared, Error> {
    let started = std::time::Instant::now();
    let hops = upgrade_path(target, s.installed.as_ref(), candidate, &s.candidates)?;
    // The product's other packages and what their new versions need, for
    // every hop: a sibling that no repository offers at a hop's version, or
    // a dependency nothing meets, blocks the upgrade (exit 3) before
    // anything is downloaded.
    let mut others = Vec::new();
    let mut along: Vec<crate::history::PackageChange> = Vec::new();
    for hop in &hops {
        let moved = super::moved_along(target, http, &settings.cache_dir, s, hop).await?;
        along = moved
            .iter()
            .filter(|o| !target.packages.contains(&o.name))
            .map(|o| crate::history::PackageChange {
                name: o.name.clone(),
                installed: o.installed.as_ref().map(|i| i.version.clone()),
                candidate: Some(o.candidate.version.to_string()),
            })
            .collect();
        others.extend(moved);
    }
    let history = History::open_existing(&settings.state_dir)?;
    let installed_version = s.installed.as_ref().map(|i| i.version.clone());
    let mut early = vec![review::schema_check(
        target,
        installed_version.as_deref(),
        candidate.version.as_str(),
    )];

    // The installed version's package: the merge's base, and what a failed
    // upgrade goes back to (from the cache, a repository, or rebuilt from
    // the host).
    let mut rebuilt = BTreeMap::new();
    let previous = match &s.installed {
        None => Ok(None),
        Some(i) => orchestrator::product::rollback_copy(
            history.as_ref(),
            target,
            &settings.cache_dir,
            Path::new("/"),
            &target.package,
            i,
            &s.candidates,
        )
        .map_err(Error::Failed)?
        .map(Some),
    };
    early.push(match (&installed_version, &previous) {
        (None, _) | (_, Ok(None)) => Check {
            name: "rollback-package",
            status: Status::Ok,
            message: "nothing installed: nothing to roll back to".into(),
        },
        (Some(_), Err(why)) => Check {
            name: "rollback-package",
            status: Status::Error,
            message: format!("{why}, so a failed upgrade could not be rolled back"),
        },
        (Some(v), Ok(Some(p))) => Check {
            name: "rollback-package",
            status: Status::Ok,
            message: format!(
                "{v} {}: a failed upgrade goes back to it",
                rollback_source(target, &settings.cache_dir, p)
            ),
        },
    });
    let previous = previous.ok().flatten();
    if let Some(orchestrator::PackageRef {
        version,
        source: Source::Cached(c),
    }) = &previous
        && c.path.starts_with(orchestrator::product::rebuilt_dir(
            &settings.cache_dir,
            target,
        ))
    {
        rebuilt.insert((target.package.clone(), version.clone()), c.clone());
    }

    // Room for the downloads, checked before they start.
    let mut to_fetch: Vec<&Candidate> = hops
        .iter()
        .chain(others.iter().map(|o| &o.candidate))
        .collect();
    if let Some(orchestrator::PackageRef {
        source: Source::Remote(c),
        ..
    }) = &previous
    {
        to_fetch.push(c);
    }
    let need: u64 = to_fetch
        .iter()
        .filter(|c| {
            let p = orchestrator::cached_path(&settings.cache_dir, &target.name, c);
            !std::fs::metadata(p).is_ok_and(|m| m.len() == c.size)
        })
        .map(|c| c.size)
        .sum();
    let cache = review::judge_space(
        "packages",
        &settings.cache_dir,
        review::free_space(&settings.cache_dir),
        need,
    );
    let cache_full = cache.status == Status::Error;
    early.push(cache);
    if cache_full {
        return Ok(Prepared {
            hops,
            review: Review {
                hops: Vec::new(),
                notes: Vec::new(),
                checks: early,
                diffs: Vec::new(),
                requirements: Vec::new(),
            },
            took: started.elapsed(),
            rebuilt,
            along,
        });
    }

    let mut paths = Vec::new();
    for hop in &hops {
        let path = orchestrator::fetch_package(http, &settings.cache_dir, &target.name, hop)
            .await
            .map_err(Error::Failed)?;
        paths.push((hop.version.to_string(), path));
    }
    let previous_path: Option<PathBuf> = match previous {
        None => None,
        Some(orchestrator::PackageRef {
            source: Source::Cached(c),
            ..
        }) => Some(c.path),
        Some(orchestrator::PackageRef {
            source: Source::Remote(c),
            ..
        }) => Some(
            orchestrator::fetch_package(http, &settings.cache_dir, &target.name, &c)
                .await
                .map_err(Error::Failed)?,
        ),
    };

    // The product's other packages (and what the new versions need), for
    // every hop: downloaded and verified now, while the service runs; the
    // installed versions' copies found, for the rollback.
    let mut moved = Vec::new();
    for o in &others {
        orchestrator::fetch_package(http, &settings.cache_dir, &target.name, &o.candidate)
            .await
            .map_err(Error::Failed)?;
        moved.push(format!(
            "{} {} → {}",
            o.name,
            o.installed
                .as_ref()
                .map(|i| i.version.as_str())
                .unwrap_or("(new)"),
            o.candidate.version
        ));
    }
    if !moved.is_empty() {
        early.push(Check {
            name: "packages",
            status: Status::Ok,
            message: format!("moved along, downloaded and verified: {}", moved.join(", ")),
        });
    }
    // Every other installed package the run may change: the product's
    // siblings and the dependencies it upgrades.
    let mut changed: Vec<(&str, &crate::pkg::Installed, &[Candidate])> = s
        .siblings
        .iter()
        .filter_map(|sib| {
            Some((
                sib.name.as_str(),
                sib.installed.as_ref()?,
                &sib.candidates[..],
            ))
        })
        .collect();
    for o in &others {
        if let Some(i) = &o.installed
            && !changed.iter().any(|(n, _, _)| *n == o.name)
            && o.name != target.package
        {
            changed.push((o.name.as_str(), i, &o.candidates[..]));
        }
    }
    for (name, i, candidates) in changed {
        let found = orchestrator::product::rollback_copy(
            history.as_ref(),
            target,
            &settings.cache_dir,
            Path::new("/"),
            name,
            i,
            candidates,
        )
        .map_err(Error::Failed)?;
        match found {
            Ok(orchestrator::PackageRef {
                source: Source::Remote(c),
                ..
            }) => {
                orchestrator::fetch_package(http, &settings.cache_dir, &target.name, &c)
                    .await
                    .map_err(Error::Failed)?;
            }
            Ok(orchestrator::PackageRef {
                source: Source::Cached(c),
                ..
            }) => {
                if c.path.starts_with(orchestrator::product::rebuilt_dir(
                    &settings.cache_dir,
                    target,
                )) {
                    rebuilt.insert((name.to_string(), i.version.clone()), c);
                }
            }
            Err(why) => early.push(Check {
                name: "rollback-package",
                status: Status::Error,
                message: format!("{why}, so a failed upgrade could not be rolled back"),
            }),
        }
    }

    let db = match crate::backup::db::resolve(&target.database) {
        Ok(db) => db,
        Err(e) => {
            early.push(Check {
                name: "database",
                status: Status::Error,
                message: Masker::portal_default().mask_text(&crate::error::one_line(&e), &[]),
            });
            None
        }
    };
    let last_dump_size = match &history {
        Some(h) => h
            .artifacts_by_role(&target.name, "database-backup", None)
            .map_err(Error::Failed)?
            .first()
            .map(|a| a.artifact.size),
        None => None,
    };
    let pkg = Manager::for_family(target.family);
    let review = review::review(
        Inputs {
            target,
            installed: s.installed.as_ref(),
            previous: previous_path,
            hops: paths,
            db: db.as_ref(),
            early,
            state_dir: &settings.state_dir,
            last_dump_size,
        },
        &pkg,
    )
    .await
    .map_err(Error::Failed)?;
    Ok(Prepared {
        hops,
        review,
        took: started.elapsed(),
        rebuilt,
        along,
    })
}

/// What a target has, what its repository offers, and the version asked for.
struct Asked {
    http: Http,
    s: Situation,
    installed: Option<String>,
    candidate: Candidate,
}

/// The version `to` asks for (the newest by default), or `None` after
/// saying that it is installed already (`--json`: an empty `list_key`
/// list and `"to": null`; else `{nothing}` in words).
async fn asked(
    g: &Global,
    settings: &Settings,
    target: &Target,
    to: Option<&str>,
    list_key: &str,
    nothing: &str,
) -> Result<Option<Asked>, Error> {
    let http = super::http_for(g, settings, target)?;
    let s = super::situation(target, &http, &settings.cache_dir).await?;
    let installed = s.installed.as_ref().map(|i| i.version.clone());
    let Some(candidate) = orchestrator::choose(&s.candidates, s.installed.as_ref(), to)? else {
        if g.json {
            let mut doc = json!({"target": target.name, "installed": installed, "to": null});
            doc[list_key] = json!([]);
            print_json(&doc)?;
        } else if !g.quiet {
            outln!(
                "{}: {} is installed and is the version asked for; {nothing}",
                target.name,
                installed.as_deref().unwrap_or("?")
            );
        }
        return Ok(None);
    };
    Ok(Some(Asked {
        http,
        s,
        installed,
        candidate,
    }))
}

/// `plan`: prints the review; exit 3 when a check blocks the upgrade.
pub(super) async fn plan_cmd(
    g: &Global,
    settings: &Settings,
    name: Option<&str>,
    to: Option<&str>,
) -> CmdResult {
    let target = settings.target(name)?;
    let Some(Asked {
        http,
        s,
        installed,
        candidate,
    }) = asked(g, settings, target, to, "steps", "nothing to plan").await?
    else {
        return Ok(exit::OK);
    };
    let schema = review::schema_check(target, installed.as_deref(), candidate.version.as_str());
    let p = if schema.status == Status::Error {
        // Going back is a downgrade: nothing to download or merge.
        Prepared {
            hops: vec![candidate.clone()],
            review: Review {
                hops: Vec::new(),
                notes: Vec::new(),
                checks: vec![schema],
                diffs: Vec::new(),
                requirements: Vec::new(),
            },
            took: std::time::Duration::ZERO,
            rebuilt: BTreeMap::new(),
            along: Vec::new(),
        }
    } else {
        prepare(settings, target, &http, &s, &candidate).await?
    };
    let mask = Masker::portal_default();
    if g.json {
        let mut doc = p.review.to_json(&mask);
        doc["target"] = json!(target.name);
        doc["installed"] = json!(installed);
        doc["to"] = json!(candidate.version.to_string());
        doc["path"] = json!(
            p.hops
                .iter()
                .map(|c| c.version.to_string())
                .collect::<Vec<_>>()
        );
        doc["files"] = json!(
            p.hops
                .iter()
                .zip(&p.review.hops)
                .map(|(c, h)| json!({
                    "version": c.version.to_string(),
                    "url": c.url.as_str(),
                    "size": c.size,
                    "sha256": c.sha256,
                    "path": h.package,
                    "verified": true,
                }))
                .collect::<Vec<_>>()
        );
        // The target's package, as before there were hops.
        let mut packages = s.packages(target, Some(&candidate));
        packages.extend(p.along.iter().cloned());
        doc["packages"] = json!(packages);
        doc["package"] = doc["files"]
            .as_array()
            .and_then(|a| a.last())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        doc["steps"] = json!(
            orchestrator::UPGRADE_STEPS
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
        );
        print_json(&doc)?;
    } else if !g.quiet {
        print_plan(target, installed.as_deref(), &candidate, &p, &mask);
    }
    let gate = p.review.gate(&target.name);
    let version = candidate.version.to_string();
    super::fleet::note(
        g,
        settings,
        &target.name,
        installed.as_deref(),
        Some((&version, gate.is_ok())),
    )
    .await;
    gate?;
    Ok(exit::OK)
}

/// The plan, for a person.
fn print_plan(
    target: &Target,
    installed: Option<&str>,
    candidate: &Candidate,
    p: &Prepared,
    mask: &Masker,
) {
    let from = installed.unwrap_or("not installed");
    outln!("{}: {from} → {}", target.name, candidate.version);
    if p.hops.len() > 1 {
        outln!(
            "\npath: {from} → {} ({} hops; upgrade_path requires the stepping stone{} {}; each hop is its own backed-up, health-gated run)",
            p.hops
                .iter()
                .map(|c| c.version.to_string())
                .collect::<Vec<_>>()
                .join(" → "),
            p.hops.len(),
            if p.hops.len() > 2 { "s" } else { "" },
            p.hops[..p.hops.len() - 1]
                .iter()
                .map(|c| c.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !p.review.hops.is_empty() {
        outln!(
            "\npackages (downloaded, SHA-256 verified against the signed metadata, {:.2} s):",
            p.took.as_secs_f64()
        );
        for (c, h) in p.hops.iter().zip(&p.review.hops) {
            outln!(
                "  {} {} ({} bytes) → {}",
                c.version,
                c.url,
                c.size,
                h.package.display()
            );
        }
    }
    if !p.review.notes.is_empty() {
        let breaking = p.review.notes.iter().filter(|n| n.breaking).count();
        outln!(
            "\nrelease notes ({} version{}, newest first{}):",
            p.review.notes.len(),
            if p.review.notes.len() == 1 { "" } else { "s" },
            match breaking {
                0 => String::new(),
                n => format!("; {n} BREAKING"),
            }
        );
        for n in &p.review.notes {
            outln!(
                "  {}{}{}",
                if n.breaking { "!! " } else { "" },
                n.version,
                match (&n.date, n.breaking) {
                    (Some(d), true) => format!(" ({}) — BREAKING", &d[..d.len().min(10)]),
                    (Some(d), false) => format!(" ({})", &d[..d.len().min(10)]),
                    (None, true) => " — BREAKING".into(),
                    (None, false) => String::new(),
                }
            );
            for line in mask.mask_text(&n.text, &[]).lines() {
                outln!("      {line}");
            }
        }
    }
    print_config(target, p, mask);
    print_theme(p);
    outln!("\nchecks:");
    for c in &p.review.checks {
        let mark = match c.status {
            Status::Ok => "ok     ",
            Status::Warning => "WARNING",
            Status::Error => "ERROR  ",
        };
        outln!("  {mark}  {:<17} {}", c.name, c.message);
    }
    let errors = p.review.errors().len();
    if errors == 0 {
        outln!(
            "\nready: `upkeep upgrade {} --to {}` would run {}",
            target.name,
            candidate.version,
            orchestrator::UPGRADE_STEPS
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" → ")
        );
    } else {
        outln!(
            "\nBLOCKED by {errors} error{}: `upkeep upgrade` will not start until {} fixed; nothing was changed",
            if errors == 1 { "" } else { "s" },
            if errors == 1 { "it is" } else { "they are" }
        );
    }
}

/// The config section: per hop, what happens to each file; then the diff
/// from the live files to the files after the upgrade.
fn print_config(target: &Target, p: &Prepared, mask: &Masker) {
    let changed: Vec<_> = p
        .review
        .hops
        .iter()
        .flat_map(|h| h.configs.iter().map(move |c| (h, c)))
        .filter(|(_, c)| c.action != orchestrator::configs::Action::Unchanged)
        .collect();
    if changed.is_empty() {
        if !p.review.hops.is_empty() {
            outln!("\nconfig: no changes");
        }
        return;
    }
    outln!(
        "\nconfig (config_merge = \"{}\"; the previous files go into the run's backup):",
        target.config_merge
    );
    for (h, c) in changed {
        outln!(
            "  {} at {}: {}",
            c.path.display(),
            h.version,
            c.action.name()
        );
        for change in c.outcome.iter().flat_map(|o| &o.changes) {
            outln!("    {}", change.describe(mask));
        }
        for line in c.conflicts(mask) {
            outln!("    CONFLICT {line}");
        }
        if let Some(note) = &c.note {
            outln!("    {note}");
        }
        if c.action == orchestrator::configs::Action::Keep && !c.diff.is_empty() {
            outln!("    the new default, not applied:");
            for line in c.diff.lines() {
                outln!("      {line}");
            }
        }
    }
    for (_, diff) in &p.review.diffs {
        outln!();
        for line in diff.lines() {
            outln!("  {line}");
        }
    }
}

/// The theme section: per hop, what the merge does to each file of the
/// custom theme (added, updated, merged, kept, removed, conflict), and the
/// hunks of a conflict.
fn print_theme(p: &Prepared) {
    for h in &p.review.hops {
        let Some(m) = &h.theme else {
            continue;
        };
        let what = match m.policy {
            crate::theme::Policy::Merge => {
                "written after the install; the theme goes into the run's backup"
            }
            crate::theme::Policy::Keep => "the custom theme is left as it is: what would change",
            crate::theme::Policy::Report => "shown, not written by upgrade",
        };
        outln!(
            "\ntheme {} at {} (merge = \"{}\"; {what}):",
            m.path.display(),
            h.version,
            m.policy
        );
        if let Some(note) = &m.note {
            outln!("  {note}");
            continue;
        }
        if m.files.is_empty() {
            outln!("  no changes");
        }
        for f in &m.files {
            outln!(
                "  {:<9} {}{}",
                f.action.name(),
                f.path.display(),
                if f.binary { " (binary)" } else { "" }
            );
            for hunk in &f.hunks {
                outln!("            {hunk}");
            }
        }
    }
}

/// `diff-config`: the config changes between the installed and a candidate
/// version (the newest by default), secrets masked.
pub(super) async fn diff_config(
    g: &Global,
    settings: &Settings,
    name: Option<&str>,
    to: Option<&str>,
) -> CmdResult {
    let target = settings.target(name)?;
    let Some(Asked {
        http,
        s,
        installed,
        candidate,
    }) = asked(g, settings, target, to, "files", "no config changes").await?
    else {
        return Ok(exit::OK);
    };
    let schema = review::schema_check(target, installed.as_deref(), candidate.version.as_str());
    if schema.status == Status::Error {
        return Err(Error::Failed(anyhow!("{}", schema.message)));
    }
    let p = prepare(settings, target, &http, &s, &candidate).await?;
    let mask = Masker::portal_default();
    if g.json {
        print_json(&json!({
            "target": target.name,
            "installed": installed,
            "to": candidate.version.to_string(),
            "policy": target.config_merge.as_str(),
            "hops": p.review.to_json(&mask)["hops"],
            "files": p.review.diffs.iter().map(|(p, d)| json!({"path": p, "diff": d})).collect::<Vec<_>>(),
        }))?;
    } else if !g.quiet {
        outln!(
            "{}: config changes {} → {}",
            target.name,
            installed.as_deref().unwrap_or("not installed"),
            candidate.version
        );
        print_config(target, &p, &mask);
        if p.review.hops.iter().all(|h| {
            h.configs
                .iter()
                .all(|c| c.action == orchestrator::configs::Action::Unchanged)
        }) {
            outln!("no config file changes");
        }
    }
    Ok(exit::OK)
}
