//! Safe apply on the rig: a failing upgrade rolls back with the data of
//! each database kind, rollback and downgrade (also after the old package
//! left the repository), and two concurrent runs.

use std::time::{Duration, Instant};

use super::rig::{self, Db, show};
use super::{host, host_with_repo, json};

/// The titles of `n` pages called `prefix-i`.
fn titles(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Step names of a history run.
fn step_names(run: &serde_json::Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// 1.0.0 → 2.0.1 (which never becomes ready) ends in exit 4 with 1.0.0
/// running, its rows intact and its schema back at 1.0.0's.
fn failed_upgrade_rolls_back(db: Db) {
    let h = host();
    h.install("1.0.0").unwrap();
    h.use_database(db).unwrap();
    h.add_pages("before", 25).unwrap();
    assert_eq!(h.ready_schema(), Some(2));

    let out = h.upkeep(&["upgrade", "--to", "2.0.1", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rolled back"), "{}", show(&out));
    assert_eq!(
        err.trim()
            .lines()
            .last()
            .map(|l| l.starts_with("upkeep: error:")),
        Some(true)
    );

    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0", "{ready}");
    assert_eq!(ready["schema"], 2, "the schema is back at 1.0.0's: {ready}");
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(h.page_titles().unwrap(), titles("before", 25));
    assert_eq!(h.unit_state(), "active");

    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "rolled_back", "{hist:#}");
    let names = step_names(run);
    for s in [
        "backup-database",
        "install",
        "health",
        "revert-stop",
        "revert-restore-database",
        "revert-restore-files",
        "revert-install",
        "revert-start",
        "revert-health",
    ] {
        assert!(names.iter().any(|n| n == s), "{s} missing from {names:?}");
    }
    let health = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "health")
        .unwrap();
    assert_eq!(health["status"], "failed", "{health}");
    // Backups are private to root.
    let backup = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "backup-database")
        .unwrap();
    if db != Db::Sqlite || backup["detail"]["backup"].is_object() {
        let path = backup["detail"]["backup"]["path"].as_str().unwrap();
        let mode = h.c.run(&["stat", "-c", "%a", path]).unwrap();
        assert_eq!(mode.trim(), "600", "{path}");
    }
    let status = json(&h.upkeep(&["status", "--json"]).unwrap());
    assert!(status["interrupted_run"].is_null(), "{status:#}");
    assert!(status["next_step"].is_null(), "{status:#}");
}

#[test]
fn failed_upgrade_rolls_back_with_sqlite() {
    failed_upgrade_rolls_back(Db::Sqlite);
}

#[test]
fn failed_upgrade_rolls_back_with_postgresql() {
    failed_upgrade_rolls_back(Db::Postgres);
}

#[test]
fn failed_upgrade_rolls_back_with_mariadb() {
    failed_upgrade_rolls_back(Db::Mariadb);
}

#[test]
fn upgrade_rollback_upgrade_then_downgrade_after_the_old_package_left_the_repository() {
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rig::fixtures::copy_repo(f, tmp.path()).unwrap();
    let repo = tmp.path().join("repo");
    let h = host_with_repo(Some(repo.clone()));
    h.install("1.0.0").unwrap();
    h.use_database(Db::Postgres).unwrap();
    h.add_pages("v1", 10).unwrap();

    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(h.ready_version().as_deref(), Some("2.1.0"));
    assert_eq!(h.ready_schema(), Some(5));
    h.add_pages("v2", 3).unwrap();

    // An upgrade never goes back: that is a downgrade, with its database.
    let out = h.upkeep(&["upgrade", "--to", "1.0.0", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("upkeep downgrade"),
        "{}",
        show(&out)
    );

    // Without a terminal and without --yes, nothing happens.
    let out = h.upkeep(&["rollback"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(h.ready_version().as_deref(), Some("2.1.0"));

    let back = h.upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert!(
        String::from_utf8_lossy(&back.stdout).contains("ago"),
        "the backup's age is shown: {}",
        show(&back)
    );
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0");
    assert_eq!(ready["schema"], 2);
    assert_eq!(h.page_titles().unwrap(), titles("v1", 10));

    let again = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert_eq!(h.ready_version().as_deref(), Some("2.1.0"));
    h.add_pages("v3", 2).unwrap();

    // 1.0.0 leaves the repository.
    let pool = repo.join("debian/pool/main/p/portal");
    let old = f.deb("1.0.0").file_name().unwrap().to_owned();
    std::fs::remove_file(pool.join(&old)).unwrap();
    let debian = repo.join("debian");
    rig::fixtures::write_apt_indices(&debian, &f.arch).unwrap();
    rig::fixtures::write_apt_release(&debian, &f.arch).unwrap();
    rig::fixtures::sign_apt_release(&debian, &f.gnupg).unwrap();
    let versions = json(&h.upkeep(&["versions", "--json"]).unwrap());
    assert!(
        !versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "1.0.0-1"),
        "{versions:#}"
    );

    let down = h.upkeep(&["downgrade", "--to", "1.0.0", "--yes"]).unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0");
    assert_eq!(ready["schema"], 2);
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(h.page_titles().unwrap(), titles("v1", 10));

    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let kinds: Vec<&str> = hist["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["downgrade", "upgrade", "rollback", "upgrade"]);
    for r in hist["runs"].as_array().unwrap() {
        assert_eq!(r["outcome"], "succeeded", "{r:#}");
    }
}

#[test]
fn two_concurrent_upgrades_one_proceeds_the_other_exits_6_at_once() {
    let h = host();
    h.install("1.0.0").unwrap();
    // A slow start keeps the first run busy for a while.
    slow_start(&h, 4000);

    let first =
        h.c.command(&[rig::UPKEEP, "upgrade", "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    // Wait until the first run holds the lock (its run is in the history).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = json(&h.upkeep(&["status", "--json"]).unwrap());
        if s["next_step"]
            .as_str()
            .is_some_and(|n| n.contains("in progress"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first run never started: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let second = h.upkeep(&["upgrade", "--yes"]).unwrap();
    let took = started.elapsed();
    assert_eq!(second.status.code(), Some(6), "{}", show(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("pid"), "who holds the lock: {err}");
    assert!(
        took < Duration::from_secs(5),
        "exit 6 at once, took {took:?}"
    );

    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    assert_eq!(
        h.ready_version().as_deref(),
        Some(h.f.newest().version.as_str())
    );
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"].as_array().unwrap().len(), 1, "{hist:#}");
}

/// Sets `MigrationDelayMs` in the live portal.conf and restarts the portal:
/// its start (and so the health step) then takes that long.
fn slow_start(h: &rig::PortalHost, ms: u64) {
    let conf = h.c.read("/opt/portal/portal.conf").unwrap();
    let mut j: serde_json::Value = serde_json::from_str(&conf).unwrap();
    j["MigrationDelayMs"] = ms.into();
    h.c.write(
        "/opt/portal/portal.conf",
        serde_json::to_string_pretty(&j).unwrap(),
        0o640,
    )
    .unwrap();
    h.c.run(&["systemctl", "restart", "portal.service"])
        .unwrap();
    h.wait_ready(Duration::from_secs(20)).unwrap();
}

#[test]
fn sigterm_during_the_health_gate_is_deferred_and_the_healthy_upgrade_is_kept() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.add_pages("before", 4).unwrap();
    slow_start(&h, 2500);
    let run =
        h.c.command(&[rig::UPKEEP, "upgrade", "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    wait_for_step(&h, "health", "running");
    h.c.run(&["pkill", "-TERM", "-x", "upkeep"]).unwrap();
    let out = run.wait_with_output().unwrap();
    // The gate was not cut; once it passed, the new version is the good
    // one and a signal no longer undoes it.
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("received SIGTERM"),
        "{}",
        show(&out)
    );
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "succeeded", "{hist:#}");
    assert_eq!(
        h.ready_version().as_deref(),
        Some(h.f.newest().version.as_str())
    );
    assert_eq!(h.page_titles().unwrap(), titles("before", 4));
}

/// Waits until the newest run's step `name` has `status`.
pub(crate) fn wait_for_step(h: &rig::PortalHost, name: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
        let seen = hist["runs"][0]["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == name && s["status"] == status);
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "step {name} never {status}: {hist:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn upgrade_waits_for_the_dpkg_lock_then_proceeds() {
    let h = host();
    h.install("1.0.0").unwrap();
    // apt's protocol: a write lock on lock-frontend, held for 3 s.
    let holder = h
        .c
        .command(&[
            "python3",
            "-c",
            "import fcntl, time, sys\nf = open('/var/lib/dpkg/lock-frontend', 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(3)\n",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = holder;
    let mut line = [0u8; 5];
    std::io::Read::read_exact(holder.stdout.as_mut().unwrap(), &mut line).unwrap();
    let started = Instant::now();
    let out = h.upkeep(&["upgrade", "--yes", "-v"]).unwrap();
    let took = started.elapsed();
    holder.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        took >= Duration::from_secs(2),
        "did not wait for the lock: {took:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting for the dpkg lock"),
        "{}",
        show(&out)
    );
    assert_eq!(
        h.ready_version().as_deref(),
        Some(h.f.newest().version.as_str())
    );
}

#[test]
fn clean_prunes_old_runs_but_keeps_what_a_rollback_needs() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.add_pages("p", 3).unwrap();
    let conf = h.c.read("/etc/upkeep/upkeep.toml").unwrap();
    h.c.write(
        "/etc/upkeep/upkeep.toml",
        format!("keep_versions = 1\n{conf}"),
        0o644,
    )
    .unwrap();
    for to in ["1.1.0", "2.1.0"] {
        let up = h.upkeep(&["upgrade", "--to", to, "--yes"]).unwrap();
        assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    }
    let out = h.upkeep(&["clean", "--json"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let j = json(&out);
    let removed: Vec<String> = j["targets"][0]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["role"].as_str().unwrap(),
                r["version"].as_str().unwrap()
            )
        })
        .collect();
    // Run 1's backups (taken at 1.0.0) and the 1.0.0 package go; run 2's
    // backups and 1.1.0's package stay, because a rollback needs them.
    assert!(
        removed.contains(&"files-backup 1.0.0-1".to_string()),
        "{removed:?}"
    );
    assert!(
        removed.contains(&"previous-package 1.0.0-1".to_string()),
        "{removed:?}"
    );
    assert!(
        !removed
            .iter()
            .any(|r| r.contains("1.1.0-1") || r.contains("2.1.0-1")),
        "{removed:?}"
    );
    let again = json(&h.upkeep(&["clean", "--json"]).unwrap());
    assert_eq!(again["freed_bytes"], 0, "{again:#}");

    let back = h.upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert_eq!(h.ready_version().as_deref(), Some("1.1.0"));
    assert_eq!(h.page_titles().unwrap().len(), 3);
}
