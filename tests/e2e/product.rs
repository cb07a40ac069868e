//! Products of several packages on the rig: a target with
//! `packages = ["portal", "portal-cli"]` (the sibling depends on the portal
//! at exactly its version) on a deb host and on an rpm host. Both packages
//! move together in one transaction, come back together on a failed
//! upgrade, a rollback and a downgrade, and a sibling the repository lacks
//! at the candidate version blocks the upgrade before anything stops.

use std::time::Duration;

use super::json;
use super::rig::fixtures::{CLI_PACKAGE, CLI_PROGRAM, PACKAGE};
use super::rig::{self, Family, HostSpec, PortalHost, show};

/// A host of `family` serving `repo_root` (the fixtures' repository when
/// None) with the product installed at 1.0.0 and upkeep configured for
/// the whole product.
fn product_host(family: Family, repo_root: Option<std::path::PathBuf>) -> PortalHost {
    let h = PortalHost::boot(HostSpec {
        family,
        repo_root,
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    h.install_product("1.0.0").unwrap();
    h.use_product_config().unwrap();
    assert_both_at(&h, "1.0.0");
    h
}

/// Both packages are installed at the release `version` (`X.Y.Z`), the
/// sibling's program says so, and the portal runs and reports it.
fn assert_both_at(h: &PortalHost, version: &str) {
    let pkg = format!("{version}-1");
    assert_eq!(
        h.package_version(PACKAGE).as_deref(),
        Some(pkg.as_str()),
        "{PACKAGE}"
    );
    assert_eq!(
        h.package_version(CLI_PACKAGE).as_deref(),
        Some(pkg.as_str()),
        "{CLI_PACKAGE}"
    );
    assert_eq!(h.c.run(&[CLI_PROGRAM]).unwrap().trim(), version);
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], version, "{ready}");
    assert_eq!(h.unit_state(), "active");
}

/// `"packages"` of a JSON document as (name, installed, candidate).
fn packages(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages in {doc:#}"))
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
            (s("name"), s("installed"), s("candidate"))
        })
        .collect()
}

/// Both packages going from `from` to `to` (package versions).
fn both(from: &str, to: &str) -> Vec<(String, String, String)> {
    [PACKAGE, CLI_PACKAGE]
        .iter()
        .map(|n| (n.to_string(), from.to_string(), to.to_string()))
        .collect()
}

/// The portal unit's current invocation: changes whenever it (re)starts.
fn invocation(h: &PortalHost) -> String {
    h.c.run(&["systemctl", "show", "-p", "InvocationID", "portal.service"])
        .unwrap()
}

/// How many times the portal's journal says it started `version`.
fn starts_of(h: &PortalHost, version: &str) -> usize {
    let log =
        h.c.run(&[
            "journalctl",
            "-u",
            "portal.service",
            "-o",
            "cat",
            "--no-pager",
        ])
        .unwrap();
    log.lines()
        .filter(|l| l.contains(&format!("starting portal version {version} ")))
        .count()
}

fn upgrade_moves_both_packages(family: Family) {
    let h = product_host(family, None);
    let newest = h.f.newest().clone();
    let new = newest.deb_version();
    let before = h.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(before["session_idle_timeout"], 3600, "{before}");

    let check = h.upkeep(&["--json", "check"]).unwrap();
    assert_eq!(check.status.code(), Some(100), "{}", show(&check));
    assert_eq!(packages(&json(&check)), both("1.0.0-1", &new));

    let up = h.upkeep(&["--json", "upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(packages(&json(&up)), both("1.0.0-1", &new), "{}", show(&up));
    assert_both_at(&h, &newest.version);

    // The running portal uses the merged config: the operator kept the
    // 1.x default IdleTimeout (3600), the new default is 1800, so the
    // merge takes 1800, which only the merged file has. A postinst that
    // started the new version on the old file would report 3600, and the
    // start after the config step would have found it already running.
    let ready = h.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(ready["session_idle_timeout"], 1800, "{ready}");
    assert_eq!(
        starts_of(&h, &newest.version),
        1,
        "the new version started more than once (the postinst started it behind upkeep's back?)"
    );
    let conf: serde_json::Value =
        serde_json::from_str(&h.c.read("/opt/portal/portal.conf").unwrap()).unwrap();
    assert_eq!(conf["Session"]["IdleTimeout"], 1800, "{conf:#}");
    assert_eq!(conf["LicenseKey"], rig::LICENSE_KEY);

    let hist = json(&h.upkeep(&["--json", "history"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "succeeded", "{hist:#}");
    assert_eq!(packages(run), both("1.0.0-1", &new), "{run:#}");

    let check = h.upkeep(&["check"]).unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));
}

#[test]
fn deb_upgrade_moves_portal_and_portal_cli_together_and_runs_the_merged_config() {
    upgrade_moves_both_packages(Family::Deb);
}

#[test]
fn rpm_upgrade_moves_portal_and_portal_cli_together_and_runs_the_merged_config() {
    upgrade_moves_both_packages(Family::Rpm);
}

fn failed_upgrade_rolls_back_both(family: Family) {
    let h = product_host(family, None);
    // 2.0.1 never becomes ready (its migration 0005 fails).
    let up = h
        .upkeep(&["--json", "upgrade", "--to", "2.0.1", "--yes"])
        .unwrap();
    assert_eq!(up.status.code(), Some(4), "{}", show(&up));
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("rolled back"),
        "{}",
        show(&up)
    );
    assert_both_at(&h, "1.0.0");
    let ready = h.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(ready["schema"], 2, "{ready}");

    let hist = json(&h.upkeep(&["--json", "history"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "rolled_back", "{hist:#}");
    assert_eq!(packages(run), both("1.0.0-1", "2.0.1-1"), "{run:#}");
    // Nothing is left masked.
    let masked =
        h.c.exec(&["systemctl", "is-enabled", "portal.service"])
            .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&masked.stdout).trim(),
        "masked-runtime"
    );
}

#[test]
fn deb_failed_upgrade_returns_both_packages_to_1_0_0() {
    failed_upgrade_rolls_back_both(Family::Deb);
}

#[test]
fn rpm_failed_upgrade_returns_both_packages_to_1_0_0() {
    failed_upgrade_rolls_back_both(Family::Rpm);
}

fn rollback_and_downgrade_return_both(family: Family) {
    let h = product_host(family, None);
    let newest = h.f.newest().version.clone();

    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_both_at(&h, &newest);
    let back = h.upkeep(&["--json", "rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert_both_at(&h, "1.0.0");

    for to in ["1.1.0", &newest] {
        let up = h.upkeep(&["upgrade", "--to", to, "--yes"]).unwrap();
        assert_eq!(up.status.code(), Some(0), "{to}: {}", show(&up));
        assert_both_at(&h, to);
    }
    let down = h
        .upkeep(&["--json", "downgrade", "--to", "1.0.0", "--yes"])
        .unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    assert_both_at(&h, "1.0.0");
    assert_eq!(h.ready_schema(), Some(2));

    let hist = json(&h.upkeep(&["--json", "history"]).unwrap());
    let runs = hist["runs"].as_array().unwrap();
    let kinds: Vec<&str> = runs.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["downgrade", "upgrade", "upgrade", "rollback", "upgrade"]
    );
    for r in runs {
        assert_eq!(r["outcome"], "succeeded", "{r:#}");
        let names: Vec<String> = packages(r).into_iter().map(|p| p.0).collect();
        assert_eq!(names, [PACKAGE, CLI_PACKAGE], "{r:#}");
    }
}

#[test]
fn deb_rollback_and_downgrade_return_both_packages() {
    rollback_and_downgrade_return_both(Family::Deb);
}

#[test]
fn rpm_rollback_and_downgrade_return_both_packages() {
    rollback_and_downgrade_return_both(Family::Rpm);
}

/// A copy of the fixture repositories under `dir` in which neither the APT
/// nor the YUM repository serves `portal-cli` at the newest version (the
/// indexes regenerated and signed again).
fn repo_without_newest_cli(f: &rig::Fixtures, dir: &std::path::Path) -> std::path::PathBuf {
    use rig::fixtures::{copy_repo, sign_apt_release, write_apt_indices, write_yum_metadata};
    copy_repo(f, dir).unwrap();
    let repo = dir.join("repo");
    let newest = f.newest().version.clone();
    let deb = f.cli_deb(&newest).file_name().unwrap().to_owned();
    std::fs::remove_file(repo.join("debian/pool/main/p/portal").join(deb)).unwrap();
    write_apt_indices(&repo.join("debian"), &f.arch).unwrap();
    sign_apt_release(&repo.join("debian"), &f.gnupg).unwrap();
    let rpm = f.cli_rpm(&newest).file_name().unwrap().to_owned();
    std::fs::remove_file(repo.join("rpm/Packages").join(rpm)).unwrap();
    std::fs::remove_dir_all(repo.join("rpm/repodata")).unwrap();
    write_yum_metadata(&repo.join("rpm"), &f.gnupg).unwrap();
    repo
}

fn missing_sibling_blocks(family: Family) {
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_without_newest_cli(f, tmp.path());
    let h = product_host(family, Some(repo));
    let before = invocation(&h);

    for cmd in [&["plan"][..], &["upgrade", "--yes"][..]] {
        let out = h.upkeep(cmd).unwrap();
        assert_eq!(out.status.code(), Some(3), "{cmd:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("upkeep: error:"))
            .unwrap_or_else(|| panic!("{cmd:?}: no error line: {}", show(&out)));
        assert!(line.contains(CLI_PACKAGE), "{cmd:?}: {line}");
        assert!(line.contains(&f.newest().deb_version()), "{cmd:?}: {line}");
        println!("{family:?} {cmd:?}\n    {line}");
    }
    assert_eq!(invocation(&h), before, "the unit was stopped or restarted");
    assert_both_at(&h, "1.0.0");
    let hist = json(&h.upkeep(&["--json", "history"]).unwrap());
    assert_eq!(hist["runs"], serde_json::json!([]), "{hist:#}");
    // Nothing was downloaded for the blocked upgrade.
    let cache = h.c.path(&format!("/var/cache/upkeep/packages/{PACKAGE}"));
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "cache holds {left:?}");
}

#[test]
fn deb_sibling_missing_at_the_candidate_version_blocks_with_exit_3_before_any_download_or_stop() {
    missing_sibling_blocks(Family::Deb);
}

#[test]
fn rpm_sibling_missing_at_the_candidate_version_blocks_with_exit_3_before_any_download_or_stop() {
    missing_sibling_blocks(Family::Rpm);
}

/// A copy of the fixture repositories under `dir` without release
/// `version` of either package (the APT indexes regenerated and signed
/// again): a host that has it installed finds no copy of it anywhere but
/// on itself.
fn repo_without_release(
    f: &rig::Fixtures,
    dir: &std::path::Path,
    version: &str,
) -> std::path::PathBuf {
    use rig::fixtures::{copy_repo, sign_apt_release, write_apt_indices};
    copy_repo(f, dir).unwrap();
    let repo = dir.join("repo");
    for deb in [f.deb(version), f.cli_deb(version)] {
        let name = deb.file_name().unwrap().to_owned();
        std::fs::remove_file(repo.join("debian/pool/main/p/portal").join(name)).unwrap();
    }
    write_apt_indices(&repo.join("debian"), &f.arch).unwrap();
    sign_apt_release(&repo.join("debian"), &f.gnupg).unwrap();
    repo
}

#[test]
fn installed_version_in_no_repository_is_rebuilt_from_the_host_and_a_failed_upgrade_and_a_rollback_go_back_to_it()
 {
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_without_release(f, tmp.path(), "1.0.0");
    let h = PortalHost::boot(HostSpec {
        family: Family::Deb,
        repo_root: Some(repo),
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    h.install_product_with_dpkg("1.0.0").unwrap();
    h.use_product_config().unwrap();
    assert_both_at(&h, "1.0.0");

    // plan says where the rollback copies come from.
    let plan = h.upkeep(&["--json", "plan", "--to", "2.0.1"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let doc = json(&plan);
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rollback-package")
        .cloned()
        .unwrap_or_else(|| panic!("no rollback-package check: {doc:#}"));
    assert_eq!(check["status"], "ok", "{check:#}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("rebuilt from the installed files"),
        "{check:#}"
    );

    // 2.0.1 never becomes ready: the rollback reinstalls the rebuilt copies.
    let up = h
        .upkeep(&["--json", "upgrade", "--to", "2.0.1", "--yes"])
        .unwrap();
    assert_eq!(up.status.code(), Some(4), "{}", show(&up));
    assert_both_at(&h, "1.0.0");
    let audit = h.c.run(&["dpkg", "--audit"]).unwrap();
    assert_eq!(audit.trim(), "", "dpkg --audit: {audit}");
    // What dpkg installed again is 1.0.0's files: every one matches the
    // digests of the original package.
    for p in [PACKAGE, CLI_PACKAGE] {
        let verify = h.c.exec(&["dpkg", "--verify", p]).unwrap();
        assert!(
            verify.status.success() && verify.stdout.is_empty(),
            "dpkg --verify {p}: {}",
            show(&verify)
        );
    }

    // A committed upgrade, then `rollback`: back to the rebuilt copies
    // recorded by the first run.
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_both_at(&h, &f.newest().version);
    let back = h.upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert_both_at(&h, "1.0.0");
}
