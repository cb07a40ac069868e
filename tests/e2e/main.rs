//! End-to-end tests on the rig: real systemd in a container, real dpkg, a
//! real signed APT repository over HTTP, the upkeep binary run inside.
//! These tests never skip: when the rig cannot start, they fail.

#[path = "../rig/mod.rs"]
mod rig;

use std::time::Duration;

use rig::{HostSpec, PortalHost, show};

fn host() -> PortalHost {
    host_with_repo(None)
}

fn host_with_repo(repo_root: Option<std::path::PathBuf>) -> PortalHost {
    PortalHost::boot(HostSpec {
        family: rig::Family::Deb,
        repo_root,
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"))
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", show(out)))
}

/// The start time of the unit's main process: changes whenever it restarts.
fn main_start(h: &PortalHost) -> String {
    h.c.run(&[
        "systemctl",
        "show",
        "-p",
        "ExecMainStartTimestampMonotonic,MainPID",
        "portal.service",
    ])
    .unwrap()
}

#[test]
fn upgrade_takes_the_portal_from_1_0_0_to_the_newest_version() {
    let h = host();
    h.install("1.0.0").unwrap();
    assert_eq!(h.ready_version().as_deref(), Some("1.0.0"));
    let newest = h.f.newest().clone();

    let check = h.upkeep(&["check"]).unwrap();
    assert_eq!(check.status.code(), Some(100), "{}", show(&check));
    let check = h.upkeep(&["check", "--json"]).unwrap();
    let j = json(&check);
    assert_eq!(j["installed"], "1.0.0-1");
    assert_eq!(j["latest"], newest.deb_version());
    assert_eq!(j["update_available"], true);

    let up = h.upkeep(&["upgrade", "portal", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));

    // The portal itself reports the new version, and so does dpkg.
    let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(ready["version"], newest.version.as_str(), "{ready}");
    assert_eq!(
        h.dpkg_version().as_deref(),
        Some(newest.deb_version().as_str())
    );
    assert_eq!(h.unit_state(), "active");

    // The history has the run and each of its steps, with timings.
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let runs = hist["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{hist:#}");
    let run = &runs[0];
    assert_eq!(run["kind"], "upgrade");
    assert_eq!(run["from"], "1.0.0-1");
    assert_eq!(run["to"], newest.deb_version());
    assert_eq!(run["outcome"], "succeeded");
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "download", "stop", "install", "reload", "start", "health", "commit"
        ]
    );
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["duration_ms"].is_u64(), "{s}");
    }
    // The package in the cache is the verified one.
    let sha = run["steps"][0]["detail"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        h.c.path(&format!("/var/cache/upkeep/packages/portal/{sha}.deb"))
            .exists()
    );

    let status = json(&h.upkeep(&["status", "--json"]).unwrap());
    assert_eq!(status["installed"], newest.deb_version());
    assert_eq!(status["services"][0]["unit"], "portal.service");
    assert_eq!(status["services"][0]["active_state"], "active");
    assert_eq!(status["last_run"]["outcome"], "succeeded");
    assert!(status["interrupted_run"].is_null());
    assert!(status["next_step"].is_null(), "{status:#}");

    let text = h.upkeep(&["status"]).unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("installed: {}", newest.deb_version())),
        "{text}"
    );
    let check = h.upkeep(&["check", "--quiet"]).unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));
    assert!(
        check.stdout.is_empty(),
        "check --quiet must print nothing when up to date"
    );

    // Secrets stay out of everything upkeep printed or stored.
    for out in [&up, &check] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(rig::LICENSE_KEY));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(rig::LICENSE_KEY));
    }
    let db = std::fs::read(h.c.path("/var/lib/upkeep/history.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(rig::LICENSE_KEY));
}

#[test]
fn upgrade_at_the_newest_version_says_so_and_changes_nothing() {
    let h = host();
    let newest = h.f.newest().version.clone();
    h.install(&newest).unwrap();
    let before = main_start(&h);
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("already installed"), "{}", show(&out));
    assert_eq!(main_start(&h), before, "the unit was restarted");
    assert!(
        !h.c.path("/var/lib/upkeep/history.db").exists(),
        "a no-op must not create state"
    );
}

#[test]
fn package_with_a_wrong_sha256_is_refused_before_the_unit_stops() {
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rig::fixtures::copy_repo(f, tmp.path()).unwrap();
    let repo = tmp.path().join("repo");
    // Replace the newest package with other bytes of the same size: the
    // signed metadata no longer matches it.
    let newest = f.newest();
    let name = f.deb(&newest.version).file_name().unwrap().to_owned();
    let victim = repo.join("debian/pool/main/p/portal").join(&name);
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();

    let h = host_with_repo(Some(repo));
    h.install("1.0.0").unwrap();
    let before = main_start(&h);
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SHA-256 mismatch"), "{}", show(&out));
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line error expected:\n{err}"
    );
    assert_eq!(h.unit_state(), "active");
    assert_eq!(main_start(&h), before, "the unit was stopped or restarted");
    assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(h.ready_version().as_deref(), Some("1.0.0"));
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"][0]["outcome"], "failed");
    let steps = hist["runs"][0]["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        1,
        "nothing after the download may run: {hist:#}"
    );
    // Nothing unverified is left in the cache.
    let cache = h.c.path("/var/cache/upkeep/packages/portal");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "cache holds {left:?}");
}

#[test]
fn non_root_upgrade_is_refused_and_changes_nothing() {
    let h = host();
    h.install_with_dpkg("1.0.0").unwrap();
    let before = main_start(&h);
    let out =
        h.c.exec(&[
            "runuser",
            "-u",
            "nobody",
            "--",
            rig::UPKEEP,
            "upgrade",
            "portal",
            "--yes",
        ])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be run as root"), "{}", show(&out));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(main_start(&h), before);
    assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"));
    assert!(!h.c.path("/var/lib/upkeep/history.db").exists());
    // Read-only commands work for anyone.
    let out =
        h.c.exec(&["runuser", "-u", "nobody", "--", rig::UPKEEP, "check"])
            .unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
}

#[test]
fn upgrade_without_a_terminal_and_without_yes_changes_nothing() {
    let h = host();
    h.install("1.0.0").unwrap();
    let before = main_start(&h);
    let out = h.upkeep(&["upgrade"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--yes"),
        "{}",
        show(&out)
    );
    assert_eq!(main_start(&h), before);
    assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"));
}

#[test]
fn upgrade_on_an_rpm_host_from_a_signed_yum_repository() {
    let h = PortalHost::boot(HostSpec {
        family: rig::Family::Rpm,
        repo_root: None,
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    h.install("1.0.0").unwrap();
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    let newest = h.f.newest().clone();

    let check = json(&h.upkeep(&["check", "--json"]).unwrap());
    assert_eq!(check["installed"], "1.0.0-1");
    assert_eq!(check["latest"], newest.deb_version());
    assert_eq!(check["update_available"], true);

    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(ready["version"], newest.version.as_str());
    assert_eq!(
        h.installed_version().as_deref(),
        Some(newest.deb_version().as_str())
    );
    // The edited %config(noreplace) file is kept (with its licence key);
    // rpm leaves the packaged one beside it.
    assert!(
        h.c.read("/opt/portal/portal.conf")
            .unwrap()
            .contains(rig::LICENSE_KEY)
    );
    assert!(h.c.path("/opt/portal/portal.conf.rpmnew").exists());
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"][0]["outcome"], "succeeded");
    let sha = hist["runs"][0]["steps"][0]["detail"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        h.c.path(&format!("/var/cache/upkeep/packages/portal/{sha}.rpm"))
            .exists()
    );
}

#[test]
fn plan_downloads_and_verifies_without_touching_the_service() {
    let h = host();
    h.install("1.0.0").unwrap();
    let before = main_start(&h);
    let out = h.upkeep(&["plan", "--json"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let j = json(&out);
    assert_eq!(j["to"], h.f.newest().deb_version());
    assert_eq!(j["package"]["verified"], true);
    let path = j["package"]["path"].as_str().unwrap().to_string();
    assert!(h.c.path(&path).exists());
    assert_eq!(main_start(&h), before, "plan must not touch the service");
    assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"));
    // versions marks the installed and the cached one.
    let v = json(&h.upkeep(&["versions", "--json"]).unwrap());
    let rows = v["versions"].as_array().unwrap();
    assert_eq!(rows[0]["version"], h.f.newest().deb_version());
    assert_eq!(rows[0]["cached"], true);
    let installed: Vec<_> = rows.iter().filter(|r| r["installed"] == true).collect();
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0]["version"], "1.0.0-1");
    // The upgrade reuses the verified package from the cache.
    let up = h.upkeep(&["upgrade", "--yes", "--json"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(
        h.ready_version().as_deref(),
        Some(h.f.newest().version.as_str())
    );
}
