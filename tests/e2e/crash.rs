//! The crash matrix: upkeep is killed (SIGKILL, as a crash or a power loss
//! would leave it) or made to fail at every step boundary of upgrade —
//! including each step of the rollback that follows a failure — rollback and
//! downgrade, on the real rig. After each, the next mutating command refuses
//! to start, `status` names the interrupted run, and `recover` leaves the
//! portal running a version it has data for, with every row it had.

use std::sync::Mutex;
use std::time::Duration;

use super::json;
use super::rig::{self, PortalHost, show};

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

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Upgrade,
    Rollback,
    Downgrade,
}

#[derive(Clone, Debug)]
struct Case {
    kind: Kind,
    failpoints: String,
    /// True when upkeep is killed; false when a step is made to fail.
    kill: bool,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let kill = |kind, fp: String| Case {
        kind,
        failpoints: fp,
        kill: true,
    };
    for s in FORWARD_UPGRADE {
        out.push(kill(Kind::Upgrade, format!("before-{s}=return(kill)")));
    }
    out.push(kill(Kind::Upgrade, "after-cleanup=return(kill)".into()));
    for s in REVERT {
        out.push(kill(
            Kind::Upgrade,
            format!("before-health=return(error);before-{s}=return(kill)"),
        ));
    }
    for kind in [Kind::Rollback, Kind::Downgrade] {
        for s in FORWARD_RESTORING {
            out.push(kill(kind, format!("before-{s}=return(kill)")));
        }
        out.push(kill(kind, "after-cleanup=return(kill)".into()));
    }
    for s in &FORWARD_UPGRADE[..FORWARD_UPGRADE.len() - 1] {
        out.push(Case {
            kind: Kind::Upgrade,
            failpoints: format!("before-{s}=return(error)"),
            kill: false,
        });
    }
    out
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

fn run_case(case: &Case) -> Result<(), String> {
    let h = super::host();
    h.install_with_dpkg("1.0.0").map_err(|e| e.to_string())?;
    h.add_pages("before", 5).map_err(|e| e.to_string())?;
    let newest = h.f.newest().version.clone();
    let args: &[&str] = match case.kind {
        Kind::Upgrade => &["upgrade", "--yes"],
        Kind::Rollback => &["rollback", "--yes"],
        Kind::Downgrade => &["downgrade", "--to", "1.0.0", "--yes"],
    };
    if case.kind != Kind::Upgrade {
        let up = h.upkeep(&["upgrade", "--yes"]).map_err(|e| e.to_string())?;
        check(up.status.success(), || {
            format!("setup upgrade: {}", show(&up))
        })?;
        h.add_pages("after", 3).map_err(|e| e.to_string())?;
    }
    let out = upkeep_with(&h, &case.failpoints, args);
    if case.kill {
        check(
            !out.status.success() && out.status.code().is_none_or(|c| c > 6),
            || format!("expected a killed upkeep: {}", show(&out)),
        )?;
        let status = json(&h.upkeep(&["status", "--json"]).map_err(|e| e.to_string())?);
        check(!status["interrupted_run"].is_null(), || {
            format!("status does not name the interrupted run: {status:#}")
        })?;
        check(
            status["next_step"]
                .as_str()
                .is_some_and(|n| n.contains("upkeep recover")),
            || format!("status does not say to recover: {status:#}"),
        )?;
        let refused = h.upkeep(&["upgrade", "--yes"]).map_err(|e| e.to_string())?;
        check(
            refused.status.code() == Some(1)
                && String::from_utf8_lossy(&refused.stderr).contains("upkeep recover"),
            || format!("a new run was not refused: {}", show(&refused)),
        )?;
        let rec = h
            .upkeep(&["recover", "--json"])
            .map_err(|e| e.to_string())?;
        check(matches!(rec.status.code(), Some(0) | Some(4)), || {
            format!("recover: {}", show(&rec))
        })?;
    } else {
        check(
            matches!(out.status.code(), Some(1) | Some(3) | Some(4)),
            || format!("an injected failure must end in 1, 3 or 4: {}", show(&out)),
        )?;
    }

    let ready = h
        .wait_ready(Duration::from_secs(30))
        .map_err(|e| format!("the portal is not ready after recovery: {e}"))?;
    let version = ready["version"].as_str().unwrap_or_default().to_string();
    let installed = h.installed_version().unwrap_or_default();
    check(installed.starts_with(&version), || {
        format!("package {installed} but the portal runs {version}")
    })?;
    let expected = match (case.kind, version.as_str()) {
        (Kind::Upgrade, _) => titles("before", 5),
        (_, "1.0.0") => titles("before", 5),
        (_, v) if v == newest => {
            let mut t = titles("before", 5);
            t.extend(titles("after", 3));
            t
        }
        (_, v) => return Err(format!("unexpected version {v}")),
    };
    let rows = h.page_titles().map_err(|e| e.to_string())?;
    check(rows == expected, || {
        format!("rows lost or stale on {version}: {rows:?}, expected {expected:?}")
    })?;
    let status = json(&h.upkeep(&["status", "--json"]).map_err(|e| e.to_string())?);
    check(
        status["interrupted_run"].is_null() && status["next_step"].is_null(),
        || format!("a run is left unexplained: {status:#}"),
    )?;
    let hist = json(
        &h.upkeep(&["history", "--json"])
            .map_err(|e| e.to_string())?,
    );
    for r in hist["runs"].as_array().into_iter().flatten() {
        let outcome = r["outcome"].as_str().unwrap_or("none");
        check(
            ["succeeded", "rolled_back", "failed"].contains(&outcome),
            || format!("run #{} left as {outcome}: {hist:#}", r["id"]),
        )?;
    }
    Ok(())
}

#[test]
fn crash_matrix_every_step_boundary_recovers_with_no_lost_rows() {
    let queue = Mutex::new(cases());
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
                        "crash matrix: {:?} {} ({}) {:.1} s: {}",
                        case.kind,
                        case.failpoints,
                        if case.kill { "kill" } else { "error" },
                        started.elapsed().as_secs_f64(),
                        if result.is_ok() { "ok" } else { "FAILED" }
                    );
                    if let Err(e) = result {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{:?} {}: {e}", case.kind, case.failpoints));
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

#[test]
fn sigterm_is_deferred_to_the_end_of_the_step_then_the_run_rolls_back() {
    let h = super::host();
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
