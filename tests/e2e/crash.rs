//! The crash matrix: upkeep is killed (SIGKILL, as a crash would leave it;
//! with every process it started, as a power loss would) or made to fail
//! at every step boundary, at the start of every step (journaled as
//! running) and part-way through the steps that run something outside
//! (dpkg/rpm mid-install, pg_dump/mariadb-dump mid-dump, pg_restore/mariadb
//! mid-restore, the config and theme writes), for upgrade — including each
//! step of the rollback that follows a failure — rollback, downgrade and
//! `recover` itself, on deb and rpm hosts with SQLite, PostgreSQL and
//! MariaDB.
//!
//! Each case asserts its one correct outcome: after a kill, the next
//! mutating command refuses to start, `status` names the interrupted run,
//! and `recover` exits 0 when the run had not stopped the service or had
//! recorded its commit, 4 (rolled back) otherwise; the host then runs the
//! committed version (or, uncommitted, the one it ran before) with exactly
//! the rows that version had, the product's packages are clean (`dpkg
//! --audit` / `rpm -V`, one installed version), no unit is left masked, and
//! no run is left open. A failure injected into a revert step ends in exit
//! 5 with `status` naming the broken step and `upkeep recover`, which then
//! finishes the rollback.

use std::sync::Mutex;
use std::time::Duration;

use super::json;
use super::rig::db::Db;
use super::rig::{self, Family, PortalHost, show};

const FORWARD_UPGRADE: &[&str] = &[
    "preflight",
    "download",
    "lock",
    "backup-files",
    "stop",
    "backup-database",
    "install",
    "config",
    "reload",
    "start",
    "health",
    "commit",
    "cleanup",
];

const FORWARD_RESTORING: &[&str] = &[
    "preflight",
    "download",
    "lock",
    "backup-files",
    "stop",
    "backup-database",
    "restore-database",
    "restore-files",
    "install",
    "config",
    "reload",
    "start",
    "health",
    "commit",
    "cleanup",
];

const REVERT: &[&str] = &[
    "revert-stop",
    "revert-restore-files",
    "revert-restore-database",
    "revert-install",
    "revert-reload",
    "revert-start",
    "revert-health",
];

/// Steps at which nothing on the host has changed yet.
const BEFORE_STOP: &[&str] = &["preflight", "download", "lock", "backup-files"];
/// Steps after the run's commit was recorded.
const AFTER_COMMIT: &[&str] = &["cleanup"];

/// The six hosts.
const HOSTS: &[(Family, Db)] = &[
    (Family::Deb, Db::Sqlite),
    (Family::Deb, Db::Postgres),
    (Family::Deb, Db::Mariadb),
    (Family::Rpm, Db::Sqlite),
    (Family::Rpm, Db::Postgres),
    (Family::Rpm, Db::Mariadb),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Upgrade,
    Rollback,
    Downgrade,
}

/// What the case does to the run.
#[derive(Clone, Debug, PartialEq)]
enum Fault {
    /// Killed (the failpoints' `return(kill)`).
    Kill,
    /// A step fails.
    Error,
    /// A revert step fails: the run ends in exit 5.
    RevertError,
}

#[derive(Clone, Debug)]
struct Case {
    family: Family,
    db: Db,
    kind: Kind,
    failpoints: String,
    fault: Fault,
    /// Failpoints for a first `recover` that is itself killed.
    recover_killed: Option<String>,
    /// The exit code the (last) `recover` must end with, or for an
    /// injected error, the run's own exit code.
    exit: i32,
    /// Whether the host must end on the run's target version.
    ends_on_target: bool,
}

/// Where a failpoint `NAME` sits: (stopped, committed) for the forward run.
fn position(name: &str) -> (bool, bool) {
    let step = name
        .strip_prefix("before-")
        .or_else(|| name.strip_prefix("in-"))
        .or_else(|| name.strip_prefix("during-"))
        .unwrap_or(name);
    if name == "after-cleanup" {
        return (true, true);
    }
    // `before-stop` has not journaled the stop; `in-stop` has.
    let stopped = !BEFORE_STOP.contains(&step) && name != "before-stop";
    let committed = AFTER_COMMIT.contains(&step);
    (stopped, committed)
}

fn kill(family: Family, db: Db, kind: Kind, fp: &str) -> Case {
    let last = fp.rsplit(';').next().unwrap_or(fp);
    let name = last.split('=').next().unwrap_or(last);
    let (stopped, committed) = if name.starts_with("before-revert")
        || name.starts_with("in-revert")
        || name.starts_with("during-revert")
    {
        (true, false)
    } else {
        position(name)
    };
    Case {
        family,
        db,
        kind,
        failpoints: fp.to_string(),
        fault: Fault::Kill,
        recover_killed: None,
        exit: if stopped && !committed { 4 } else { 0 },
        ends_on_target: committed,
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let (deb, sqlite) = (Family::Deb, Db::Sqlite);
    // deb + SQLite: every boundary and the start of every step.
    for s in FORWARD_UPGRADE {
        out.push(kill(
            deb,
            sqlite,
            Kind::Upgrade,
            &format!("before-{s}=return(kill)"),
        ));
        out.push(kill(
            deb,
            sqlite,
            Kind::Upgrade,
            &format!("in-{s}=return(kill)"),
        ));
    }
    out.push(kill(
        deb,
        sqlite,
        Kind::Upgrade,
        "after-cleanup=return(kill)",
    ));
    for s in REVERT {
        for at in ["before", "in"] {
            out.push(kill(
                deb,
                sqlite,
                Kind::Upgrade,
                &format!("before-health=return(error);{at}-{s}=return(kill)"),
            ));
        }
    }
    for kind in [Kind::Rollback, Kind::Downgrade] {
        for s in FORWARD_RESTORING {
            out.push(kill(deb, sqlite, kind, &format!("before-{s}=return(kill)")));
        }
        out.push(kill(deb, sqlite, kind, "after-cleanup=return(kill)"));
    }
    for s in &FORWARD_UPGRADE[..FORWARD_UPGRADE.len() - 1] {
        let before_stop = BEFORE_STOP.contains(s);
        // A preflight failure is "cannot upgrade as things are" (3).
        let exit = match *s {
            "preflight" => 3,
            // A failure before the stop is journaled changed nothing.
            _ if before_stop || *s == "stop" => 1,
            _ => 4,
        };
        out.push(Case {
            family: deb,
            db: sqlite,
            kind: Kind::Upgrade,
            failpoints: format!("before-{s}=return(error)"),
            fault: Fault::Error,
            recover_killed: None,
            exit,
            ends_on_target: false,
        });
    }
    // A failure in every revert step: exit 5, then `recover` finishes.
    for s in REVERT {
        out.push(revert_error(deb, sqlite, s));
    }
    // Every host: kills part-way through the steps that run something
    // outside, forward and in the revert, and a `recover` killed mid-way.
    for &(family, db) in HOSTS {
        for fp in [
            "during-backup-database=return(kill)",
            "during-install=return(script)",
            "during-config=return(config-written)",
            "before-health=return(error);during-revert-restore-database=return(kill)",
            "before-health=return(error);during-revert-install=return(script)",
        ] {
            out.push(kill(family, db, Kind::Upgrade, fp));
        }
        out.push(kill(
            family,
            db,
            Kind::Rollback,
            "during-restore-database=return(kill)",
        ));
        out.push(kill(
            family,
            db,
            Kind::Downgrade,
            "during-install=return(script)",
        ));
        let mut rec = kill(family, db, Kind::Upgrade, "during-install=return(script)");
        rec.recover_killed = Some("during-revert-install=return(script)".into());
        out.push(rec);
        if (family, db) != (deb, sqlite) {
            out.push(revert_error(family, db, "revert-install"));
            out.push(revert_error(family, db, "revert-restore-database"));
        }
    }
    out
}

fn revert_error(family: Family, db: Db, step: &str) -> Case {
    Case {
        family,
        db,
        kind: Kind::Upgrade,
        failpoints: format!("before-health=return(error);in-{step}=return(error)"),
        fault: Fault::RevertError,
        recover_killed: None,
        exit: 4,
        ends_on_target: false,
    }
}

fn titles(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn upkeep_with(h: &PortalHost, failpoints: &str, args: &[&str]) -> std::process::Output {
    let mut argv = vec![rig::UPKEEP];
    argv.extend_from_slice(args);
    h.c.command(&argv)
        .env("FAILPOINTS", failpoints)
        .output()
        .expect("run upkeep")
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn up(h: &PortalHost, args: &[&str]) -> Result<std::process::Output, String> {
    h.upkeep(args).map_err(|e| e.to_string())
}

/// After a kill: refused, named by `status`, told to recover.
fn interrupted_is_named(h: &PortalHost) -> Result<(), String> {
    let status = json(&up(h, &["status", "--json"])?);
    check(!status["interrupted_run"].is_null(), || {
        format!("status does not name the interrupted run: {status:#}")
    })?;
    check(
        status["next_step"]
            .as_str()
            .is_some_and(|n| n.contains("upkeep recover")),
        || format!("status does not say to recover: {status:#}"),
    )?;
    let refused = up(h, &["upgrade", "--yes"])?;
    check(
        refused.status.code() == Some(1)
            && String::from_utf8_lossy(&refused.stderr).contains("upkeep recover"),
        || format!("a new run was not refused: {}", show(&refused)),
    )
}

/// The product's packages as the package manager sees them: nothing
/// half-installed, one version, its files as packaged (config files aside).
fn packages_clean(h: &PortalHost, family: Family) -> Result<(), String> {
    match family {
        Family::Deb => {
            let audit = h.c.exec(&["dpkg", "--audit"]).map_err(|e| e.to_string())?;
            check(audit.status.success() && audit.stdout.is_empty(), || {
                format!("dpkg --audit: {}", show(&audit))
            })?;
            let verify =
                h.c.exec(&["dpkg", "--verify", "portal"])
                    .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&verify.stdout);
            let changed: Vec<&str> = text.lines().filter(|l| !l.contains(" c ")).collect();
            check(changed.is_empty(), || {
                format!("dpkg --verify: {}", show(&verify))
            })
        }
        Family::Rpm => {
            let q =
                h.c.exec(&["rpm", "-q", "portal"])
                    .map_err(|e| e.to_string())?;
            let versions = String::from_utf8_lossy(&q.stdout).lines().count();
            check(q.status.success() && versions == 1, || {
                format!("rpm -q portal: {}", show(&q))
            })?;
            let verify =
                h.c.exec(&["rpm", "-V", "portal"])
                    .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&verify.stdout);
            let changed: Vec<&str> = text.lines().filter(|l| !l.contains(" c ")).collect();
            check(changed.is_empty(), || {
                format!("rpm -V portal: {}", show(&verify))
            })
        }
    }
}

fn run_case(case: &Case) -> Result<(), String> {
    let h = super::boot_failpoints(case.family);
    match case.family {
        Family::Deb => h.install_with_dpkg("1.0.0"),
        Family::Rpm => h.install_with_rpm("1.0.0"),
    }
    .map_err(|e| e.to_string())?;
    h.use_database(case.db).map_err(|e| e.to_string())?;
    // A shorter settle window than the default 3 s: every case passes the
    // gate two or three times.
    let toml = h.c.read(rig::UPKEEP_TOML).map_err(|e| e.to_string())?;
    let short = toml.replacen(
        "timeout = \"60s\"\n",
        "timeout = \"60s\"\nsettle = \"1s\"\n",
        1,
    );
    check(short != toml, || {
        format!("no health table to shorten:\n{toml}")
    })?;
    h.c.write(rig::UPKEEP_TOML, short, 0o644)
        .map_err(|e| e.to_string())?;
    h.add_pages("before", 5).map_err(|e| e.to_string())?;
    let newest = h.f.newest().version.clone();
    let args: &[&str] = match case.kind {
        Kind::Upgrade => &["upgrade", "--yes"],
        Kind::Rollback => &["rollback", "--yes"],
        Kind::Downgrade => &["downgrade", "--to", "1.0.0", "--yes"],
    };
    if case.kind != Kind::Upgrade {
        let out = up(&h, &["upgrade", "--yes"])?;
        check(out.status.success(), || {
            format!("setup upgrade: {}", show(&out))
        })?;
        h.add_pages("after", 3).map_err(|e| e.to_string())?;
    }
    let out = upkeep_with(&h, &case.failpoints, args);
    match case.fault {
        Fault::Kill => {
            check(
                !out.status.success() && out.status.code().is_none_or(|c| c > 6),
                || format!("expected a killed upkeep: {}", show(&out)),
            )?;
            interrupted_is_named(&h)?;
            if case.failpoints.contains("during-") {
                // What the kill left, for the log: dpkg's or rpm's view.
                let state = match case.family {
                    Family::Deb => h.c.exec(&[
                        "dpkg-query",
                        "-W",
                        "-f=${db:Status-Abbrev} ${Version}",
                        "portal",
                    ]),
                    Family::Rpm => h.c.exec(&["rpm", "-q", "portal"]),
                };
                if let Ok(o) = state {
                    eprintln!(
                        "crash matrix: {:?}/{:?} {:?} {}: after the kill the package is {:?}",
                        case.family,
                        case.db,
                        case.kind,
                        case.failpoints,
                        String::from_utf8_lossy(&o.stdout).trim()
                    );
                }
            }
            if let Some(fp) = &case.recover_killed {
                let rec = upkeep_with(&h, fp, &["recover", "--json"]);
                check(rec.status.code().is_none_or(|c| c > 6), || {
                    format!("expected a killed recover: {}", show(&rec))
                })?;
                interrupted_is_named(&h)?;
            }
            let rec = up(&h, &["recover", "--json"])?;
            check(rec.status.code() == Some(case.exit), || {
                format!("recover must exit {}: {}", case.exit, show(&rec))
            })?;
        }
        Fault::Error => {
            check(out.status.code() == Some(case.exit), || {
                format!("the failed run must exit {}: {}", case.exit, show(&out))
            })?;
        }
        Fault::RevertError => {
            check(out.status.code() == Some(5), || {
                format!("a failed rollback must exit 5: {}", show(&out))
            })?;
            let step = case
                .failpoints
                .rsplit(";in-")
                .next()
                .and_then(|s| s.split('=').next())
                .unwrap_or_default()
                .to_string();
            let status = json(&up(&h, &["status", "--json"])?);
            check(
                status["broken"]["step"] == step.as_str()
                    && status["next_step"]
                        .as_str()
                        .is_some_and(|n| n.contains("upkeep recover")),
                || format!("status --json does not name {step} and recover: {status:#}"),
            )?;
            let text = up(&h, &["status"])?;
            let text = String::from_utf8_lossy(&text.stdout).into_owned();
            check(
                text.contains(&format!("broken:    {step} failed"))
                    && text.contains("upkeep recover"),
                || format!("status does not name {step} and recover:\n{text}"),
            )?;
            interrupted_is_named(&h)?;
            let rec = up(&h, &["recover", "--json"])?;
            check(rec.status.code() == Some(case.exit), || {
                format!("recover must exit {}: {}", case.exit, show(&rec))
            })?;
        }
    }

    let ready = h
        .wait_ready(Duration::from_secs(30))
        .map_err(|e| format!("the portal is not ready after recovery: {e}"))?;
    let version = ready["version"].as_str().unwrap_or_default().to_string();
    let installed = h.installed_version().unwrap_or_default();
    check(installed.starts_with(&version), || {
        format!("package {installed} but the portal runs {version}")
    })?;
    let (want, rows) = match (case.kind, case.ends_on_target) {
        (Kind::Upgrade, true) => (newest.clone(), titles("before", 5)),
        (Kind::Upgrade, false) => ("1.0.0".to_string(), titles("before", 5)),
        (_, true) => ("1.0.0".to_string(), titles("before", 5)),
        (_, false) => {
            let mut t = titles("before", 5);
            t.extend(titles("after", 3));
            (newest.clone(), t)
        }
    };
    check(version == want, || {
        format!("the host runs {version}, its one correct outcome is {want}")
    })?;
    let got = h.page_titles().map_err(|e| e.to_string())?;
    check(got == rows, || {
        format!("rows lost or stale on {version}: {got:?}, expected {rows:?}")
    })?;
    packages_clean(&h, case.family)?;
    let masked =
        h.c.exec(&["systemctl", "is-enabled", "portal.service"])
            .map_err(|e| e.to_string())?;
    let state = String::from_utf8_lossy(&masked.stdout).trim().to_string();
    check(!state.starts_with("masked"), || {
        format!("portal.service left {state}")
    })?;
    let status = json(&up(&h, &["status", "--json"])?);
    check(
        status["interrupted_run"].is_null() && status["next_step"].is_null(),
        || format!("a run is left unexplained: {status:#}"),
    )?;
    let hist = json(&up(&h, &["history", "--json"])?);
    for r in hist["runs"].as_array().into_iter().flatten() {
        let outcome = r["outcome"].as_str().unwrap_or("none");
        let ok = ["succeeded", "rolled_back", "failed"].contains(&outcome)
            || (r["kind"] == "recover" && outcome == "interrupted");
        check(ok, || {
            format!("run #{} left as {outcome}: {hist:#}", r["id"])
        })?;
    }
    Ok(())
}

/// Runs `cases` on `UPKEEP_CRASH_WORKERS` (default 3) containers at a time.
fn run_matrix(cases: Vec<Case>) {
    let queue = Mutex::new(cases);
    let total = queue.lock().unwrap().len();
    let failures = Mutex::new(Vec::new());
    let workers = std::env::var("UPKEEP_CRASH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some(case) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let started = std::time::Instant::now();
                    let result = run_case(&case);
                    eprintln!(
                        "crash matrix: {:?}/{:?} {:?} {} ({:?}) {:.1} s: {}",
                        case.family,
                        case.db,
                        case.kind,
                        case.failpoints,
                        case.fault,
                        started.elapsed().as_secs_f64(),
                        if result.is_ok() { "ok" } else { "FAILED" }
                    );
                    if let Err(e) = result {
                        failures.lock().unwrap().push(format!(
                            "{:?}/{:?} {:?} {}: {e}",
                            case.family, case.db, case.kind, case.failpoints
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `UPKEEP_CRASH_ONLY=a,b` runs only the cases whose host, kind and
/// failpoints (`Deb/Sqlite Upgrade in-install=return(kill)`) contain one of
/// the comma-separated substrings (for working on a few cases).
fn selected(filter: impl Fn(&Case) -> bool) -> Vec<Case> {
    let only = std::env::var("UPKEEP_CRASH_ONLY").ok();
    cases()
        .into_iter()
        .filter(filter)
        .filter(|c| {
            let name = format!("{:?}/{:?} {:?} {}", c.family, c.db, c.kind, c.failpoints);
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|o| name.contains(o)))
        })
        .collect()
}

#[test]
fn crash_matrix_the_matrix_has_its_cases() {
    let all = cases();
    let count = |f: &dyn Fn(&Case) -> bool| all.iter().filter(|c| f(c)).count();
    eprintln!(
        "crash matrix: {} cases: {} kills, {} injected step failures, {} revert failures; deb {} rpm {}",
        all.len(),
        count(&|c| c.fault == Fault::Kill),
        count(&|c| c.fault == Fault::Error),
        count(&|c| c.fault == Fault::RevertError),
        count(&|c| c.family == Family::Deb),
        count(&|c| c.family == Family::Rpm),
    );
    for &(family, db) in HOSTS {
        assert!(
            count(&|c| c.family == family && c.db == db) >= 8,
            "{family:?}/{db:?}"
        );
    }
}

#[test]
fn crash_matrix_deb_every_step_boundary_and_step_recovers_to_its_one_outcome() {
    run_matrix(selected(|c| c.family == Family::Deb));
}

#[test]
fn crash_matrix_rpm_inside_steps_recovers_to_its_one_outcome() {
    run_matrix(selected(|c| c.family == Family::Rpm));
}

#[test]
fn sigterm_is_deferred_to_the_end_of_the_step_then_the_run_rolls_back() {
    let h = super::boot_failpoints(Family::Deb);
    h.install_with_dpkg("1.0.0").unwrap();
    h.add_pages("before", 4).unwrap();
    // A pause at the boundary after the install: the signal lands while
    // the install's effects are in place and the run is mid-way.
    let run =
        h.c.command(&[rig::UPKEEP, "upgrade", "--yes"])
            .env("FAILPOINTS", "before-reload=sleep(3000)")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    super::safe_apply::wait_for_step(&h, "install", "succeeded");
    h.c.run(&["pkill", "-TERM", "-x", "upkeep"]).unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("interrupted by SIGTERM before"),
        "{}",
        show(&out)
    );
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "rolled_back", "{hist:#}");
    let names: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"revert-install"), "{names:?}");
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "no step was cut: {s}");
    }
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0");
    assert_eq!(h.page_titles().unwrap(), titles("before", 4));
}
