//! End-to-end tests on the rig: real systemd in a container, real dpkg, a
//! real signed APT repository over HTTP, the upkeep binary run inside.
//! These tests never skip: when the rig cannot start, they fail.

#[path = "../rig/mod.rs"]
mod rig;

mod configs;
#[cfg(feature = "failpoints")]
mod crash;
mod debian;
mod depends;
mod distro;
mod faults;
mod fleet;
mod fleet_rig;
mod gate;
mod notes;
mod ops;
mod packages;
mod paths;
mod product;
mod replay;
mod requires;
mod safe_apply;
mod theme;
mod verify;

/// The crash matrix needs a binary with failpoints: `tests/run-all` builds
/// with `--features failpoints`. Without it this fails rather than skip.
#[cfg(not(feature = "failpoints"))]
#[test]
fn crash_matrix_needs_the_failpoints_feature() {
    panic!("the crash matrix needs `--features failpoints` (tests/run-all passes it)");
}

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

/// A host of `family` on the fixtures' repository.
fn boot(family: rig::Family) -> PortalHost {
    PortalHost::boot(HostSpec {
        family,
        repo_root: None,
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"))
}

/// As [`boot`], with upkeep's failpoint build (the crash cases).
fn boot_failpoints(family: rig::Family) -> PortalHost {
    PortalHost::boot(HostSpec {
        family,
        repo_root: None,
        upkeep: rig::failpoint_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"))
}

/// The scenarios run the binary the packages ship: `tests/run-all` builds
/// them (`packaging/build`) and names their binary in
/// `UPKEEP_E2E_BINARY`. Run without it, this fails rather than let the
/// suite pass on the test build alone.
#[test]
fn the_scenarios_run_the_shipped_static_binary_on_both_families() {
    let shipped = std::env::var_os(rig::SHIPPED_BINARY_ENV).unwrap_or_else(|| {
        panic!(
            "{} is not set: run tests/run-all, which builds the shipped packages and points the end-to-end tests at their binary",
            rig::SHIPPED_BINARY_ENV
        )
    });
    let shipped = std::path::PathBuf::from(shipped);
    // Static (a static PIE too): no program interpreter, no library needed.
    let headers = std::process::Command::new("readelf")
        .args(["-l", "-d", "-W"])
        .arg(&shipped)
        .output()
        .expect("readelf (binutils)");
    assert!(headers.status.success(), "{}", show(&headers));
    let text = String::from_utf8_lossy(&headers.stdout);
    assert!(
        !text.contains("INTERP") && !text.contains("(NEEDED)"),
        "{} is not a static binary:\n{text}",
        shipped.display()
    );
    let want = std::fs::read(&shipped).expect("shipped binary");
    for family in [rig::Family::Deb, rig::Family::Rpm] {
        let h = boot(family);
        let got = std::fs::read(h.c.path(rig::UPKEEP)).expect("installed binary");
        assert!(
            got == want,
            "{family:?}: /usr/bin/upkeep is not {} ({} vs {} bytes)",
            shipped.display(),
            got.len(),
            want.len()
        );
        let v = h.upkeep(&["--version"]).unwrap();
        assert!(v.status.success(), "{}", show(&v));
    }
}

/// Starts upkeep-check.service as its timer would (a oneshot: waits for
/// it), asserts the start succeeded, and returns its `Result` and
/// `ExecMainStatus`.
fn run_check_service(h: &PortalHost) -> String {
    let started =
        h.c.exec(&["systemctl", "start", "upkeep-check.service"])
            .unwrap();
    assert!(started.status.success(), "{}", show(&started));
    h.c.run(&[
        "systemctl",
        "show",
        "-p",
        "Result,ExecMainStatus",
        "upkeep-check.service",
    ])
    .unwrap()
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
            "cleanup"
        ]
    );
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["duration_ms"].is_u64(), "{s}");
    }
    // The package in the cache is the verified one.
    let sha = run["steps"][1]["detail"]["sha256"]
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

    // dpkg kept the edited conffile; upkeep merged the new default into it
    // and removed the .dpkg-dist it consumed, and says so.
    let conf = h.c.read("/opt/portal/portal.conf").unwrap();
    assert!(
        conf.contains(rig::LICENSE_KEY) && conf.contains("PortalAPISecret"),
        "{conf}"
    );
    assert!(!h.c.path("/opt/portal/portal.conf.dpkg-dist").exists());
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("/opt/portal/portal.conf merged"),
        "{}",
        show(&up)
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
    // The download is part of the review before the run: no run began.
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"], serde_json::json!([]), "{hist:#}");
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
    // rpm kept the edited %config(noreplace) file (with its licence key)
    // and wrote the packaged one beside it; upkeep merged it in and removed
    // the .rpmnew.
    let conf = h.c.read("/opt/portal/portal.conf").unwrap();
    assert!(
        conf.contains(rig::LICENSE_KEY) && conf.contains("PortalAPISecret"),
        "{conf}"
    );
    assert!(!h.c.path("/opt/portal/portal.conf.rpmnew").exists());
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(
        text.contains("/opt/portal/portal.conf merged"),
        "not reported: {text}"
    );
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"][0]["outcome"], "succeeded");
    let sha = hist["runs"][0]["steps"][1]["detail"]["sha256"]
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

/// Builds variants of the fixture APT repository on the host, each broken in
/// one way, under `root/<variant>/debian`.
fn bad_repositories(
    f: &rig::Fixtures,
    root: &std::path::Path,
) -> Vec<(&'static str, &'static str)> {
    use rig::fixtures::{SUITE, compress_packages, sign_apt_release, write_apt_release};
    let copy = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        rig::cmd_ok(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(f.repo_root.join("debian"))
                .arg(&dir),
        )
        .unwrap();
        dir.join("debian")
    };
    let dists = |d: &std::path::Path| d.join(format!("dists/{SUITE}"));
    let bin = |d: &std::path::Path| d.join(format!("dists/{SUITE}/main/binary-{}", f.arch));
    let flip = |p: &std::path::Path| {
        let mut b = std::fs::read(p).unwrap();
        let n = b.len();
        b[n / 2] ^= 0x20;
        std::fs::write(p, b).unwrap();
    };

    // The Packages index no longer matches the signed Release (whichever
    // compressed form upkeep reads).
    let d = copy("tampered-index");
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        flip(&bin(&d).join(name));
    }

    // The signed text was changed after signing.
    let d = copy("bad-signature");
    let text = std::fs::read_to_string(dists(&d).join("InRelease")).unwrap();
    std::fs::write(
        dists(&d).join("InRelease"),
        text.replacen("Label: Portal", "Label: Portax", 1),
    )
    .unwrap();

    // No signature at all.
    let d = copy("unsigned");
    std::fs::remove_file(dists(&d).join("InRelease")).unwrap();
    std::fs::remove_file(dists(&d).join("Release.gpg")).unwrap();

    // Signed by a key the target does not trust.
    let d = copy("unknown-key");
    let other = root.join("other-gnupg");
    rig::fixtures::make_key(&other, &root.join("other.asc")).unwrap();
    sign_apt_release(&d, &other).unwrap();

    // A validly signed Release that has expired (a replayed, frozen mirror).
    let d = copy("expired");
    let release = std::fs::read_to_string(dists(&d).join("Release")).unwrap();
    let release = release.replacen(
        "\nDate:",
        "\nValid-Until: Sat, 01 Jan 2000 00:00:00 UTC\nDate:",
        1,
    );
    std::fs::write(dists(&d).join("Release"), release).unwrap();
    sign_apt_release(&d, &f.gnupg).unwrap();

    // Garbage compressed data, correctly listed and signed.
    let d = copy("garbage-index");
    std::fs::write(
        bin(&d).join("Packages.xz"),
        b"\xfd7zXZ\0 this is not xz data",
    )
    .unwrap();
    std::fs::write(
        bin(&d).join("Packages.gz"),
        b"\x1f\x8b\x08\0 this is not gzip data",
    )
    .unwrap();
    write_apt_release(&d, &f.arch).unwrap();
    sign_apt_release(&d, &f.gnupg).unwrap();

    // A Filename that tries to leave the repository, correctly signed.
    let d = copy("escaping-filename");
    let newest = f.newest().deb_version();
    let packages = std::fs::read_to_string(bin(&d).join("Packages")).unwrap();
    let mut out = String::new();
    for para in packages.split("\n\n") {
        if para.contains(&format!("Version: {newest}")) {
            let mut lines: Vec<String> = para.lines().map(str::to_string).collect();
            for l in &mut lines {
                if l.starts_with("Filename:") {
                    *l = "Filename: pool/%2e%2e/%2e%2e/%2e%2e/etc/passwd".into();
                }
            }
            out.push_str(&lines.join("\n"));
        } else {
            out.push_str(para);
        }
        out.push_str("\n\n");
    }
    std::fs::write(bin(&d).join("Packages"), out.trim_end().to_string() + "\n").unwrap();
    compress_packages(&bin(&d)).unwrap();
    write_apt_release(&d, &f.arch).unwrap();
    sign_apt_release(&d, &f.gnupg).unwrap();

    vec![
        ("tampered-index", "SHA-256 mismatch"),
        ("bad-signature", "signature"),
        ("unsigned", "Release.gpg"),
        ("unknown-key", "signature"),
        ("expired", "expired"),
        ("garbage-index", "index data"),
        ("escaping-filename", "must stay inside the repository"),
        ("does-not-exist", "404"),
    ]
}

#[test]
fn bad_repositories_are_refused_with_one_line_errors_and_no_change_to_the_host() {
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let variants = bad_repositories(f, tmp.path());
    // Serve the variants next to the good repository.
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    rig::cmd_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(f.repo_root.join("debian"))
            .arg(&served),
    )
    .unwrap();
    for (name, _) in &variants {
        if tmp.path().join(name).exists() {
            std::fs::rename(tmp.path().join(name), served.join(name)).unwrap();
        }
    }
    let h = host_with_repo(Some(served));
    h.install("1.0.0").unwrap();
    let before = main_start(&h);
    let good = rig::upkeep_toml(rig::Family::Deb);

    let mut cases: Vec<(String, &str)> = variants
        .iter()
        .map(|(name, expect)| (format!("http://127.0.0.1:8080/{name}/debian"), *expect))
        .collect();
    // Nobody listens on port 9: connection refused, after the retries.
    cases.push(("http://127.0.0.1:9/debian".into(), "cannot connect"));

    for (url, expect) in &cases {
        h.c.write(
            "/etc/upkeep/upkeep.toml",
            good.replace(rig::REPO_URL, url),
            0o644,
        )
        .unwrap();
        for cmd in [&["upgrade", "--yes"][..], &["check"][..]] {
            let out = h.upkeep(cmd).unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let errors: Vec<&str> = err
                .lines()
                .filter(|l| l.starts_with("upkeep: error:"))
                .collect();
            assert_eq!(out.status.code(), Some(1), "{url} {cmd:?}: {}", show(&out));
            assert_eq!(
                errors.len(),
                1,
                "{url} {cmd:?}: one error line expected:\n{err}"
            );
            assert!(
                errors[0].contains(expect),
                "{url} {cmd:?}: expected {expect:?} in:\n{err}"
            );
            println!("{cmd:?} {url}\n    {}", errors[0]);
        }
        assert_eq!(main_start(&h), before, "{url}: the unit was touched");
        assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"), "{url}");
        let cache = h.c.path("/var/cache/upkeep/packages/portal");
        let left: Vec<_> = std::fs::read_dir(&cache)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{url}: cache holds {left:?}");
    }
    // The same host still upgrades from the good repository afterwards.
    h.c.write("/etc/upkeep/upkeep.toml", good, 0o644).unwrap();
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn release_with_detached_signature_and_flat_repository_are_read() {
    use rig::fixtures::{SUITE, sign_apt_release};
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    // dists/ layout with Release + Release.gpg only.
    rig::cmd_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(f.repo_root.join("debian"))
            .arg(&served),
    )
    .unwrap();
    std::fs::remove_file(served.join(format!("debian/dists/{SUITE}/InRelease"))).unwrap();
    // A flat repository: Packages and Release beside the packages.
    let flat = served.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for deb in &f.debs {
        std::fs::copy(deb, flat.join(deb.file_name().unwrap())).unwrap();
    }
    let packages = rig::cmd_stdout(
        std::process::Command::new("apt-ftparchive")
            .current_dir(&flat)
            .args(["packages", "."]),
    )
    .unwrap();
    std::fs::write(flat.join("Packages"), packages).unwrap();
    rig::fixtures::compress_packages(&flat).unwrap();
    let release = rig::cmd_stdout(
        std::process::Command::new("apt-ftparchive")
            .current_dir(&flat)
            .args(["release", "."]),
    )
    .unwrap();
    std::fs::write(tmp.path().join("Release"), release).unwrap();
    std::fs::rename(tmp.path().join("Release"), flat.join("Release")).unwrap();
    // sign_apt_release signs dists/SUITE/Release; sign the flat one by hand.
    rig::cmd_ok(
        rig::fixtures::gpg(&f.gnupg)
            .arg("--clearsign")
            .arg("-o")
            .arg(flat.join("InRelease"))
            .arg(flat.join("Release")),
    )
    .unwrap();
    let _ = sign_apt_release;

    let h = host_with_repo(Some(served));
    h.install_with_dpkg("1.0.0").unwrap();
    let good = rig::upkeep_toml(rig::Family::Deb);
    let flat_conf = good
        .replace(rig::REPO_URL, "http://127.0.0.1:8080/flat")
        .replace(&format!("suite = \"{SUITE}\""), "suite = \"./\"")
        .replace("component = \"main\"\n", "");
    // Unsigned metadata is read only when allowed, and then with a warning.
    let unsigned = good.replace(
        "keyring = \"/etc/upkeep/keys/portal.asc\"",
        "allow_unsigned = true",
    );
    h.c.write("/etc/upkeep/upkeep.toml", &unsigned, 0o644)
        .unwrap();
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UNSIGNED"),
        "{}",
        show(&out)
    );
    let no_keyring = good.replace("keyring = \"/etc/upkeep/keys/portal.asc\"\n", "");
    h.c.write("/etc/upkeep/upkeep.toml", &no_keyring, 0o644)
        .unwrap();
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing keyring is a configuration error: {}",
        show(&out)
    );

    for conf in [good.clone(), flat_conf] {
        h.c.write("/etc/upkeep/upkeep.toml", &conf, 0o644).unwrap();
        let out = h.upkeep(&["check", "--json"]).unwrap();
        assert_eq!(out.status.code(), Some(100), "{conf}\n{}", show(&out));
        assert_eq!(json(&out)["latest"], f.newest().deb_version());
        let out = h.upkeep(&["plan", "--json"]).unwrap();
        assert_eq!(out.status.code(), Some(0), "{conf}\n{}", show(&out));
        assert_eq!(json(&out)["package"]["verified"], true);
    }
}
