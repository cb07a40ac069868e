//! What a new version needs and the host lacks comes along with the
//! product, as apt would bring it: the newest `portal-cli` here depends on
//! `portal-docs`, which depends on `portal-fonts`, neither installed. The
//! set upkeep moves is compared with real `apt-get -s` on the same
//! repository; a rollback removes what the upgrade brought in; a
//! dependency no repository can meet blocks with exit 3 before anything
//! stops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::json;
use super::rig::fixtures::{
    CLI_PACKAGE, PACKAGE, build_cli_deb_depending, build_plain_deb, copy_repo, sign_apt_release,
    write_apt_indices,
};
use super::rig::{self, Family, HostSpec, PortalHost, show};

/// A copy of the fixture repositories under `dir` in which the newest
/// `portal-cli` also depends on `extra`, with the small packages `plain`
/// (name, version, Depends) added; the APT indexes regenerated and signed.
fn repo_where_newest_cli_needs(dir: &Path, extra: &str, plain: &[(&str, &str, &str)]) -> PathBuf {
    let f = rig::fixtures::get().unwrap();
    copy_repo(f, dir).unwrap();
    let repo = dir.join("repo");
    let pool = repo.join("debian/pool/main/p/portal");
    let newest = f.newest();
    let cli = pool.join(f.cli_deb(&newest.version).file_name().unwrap());
    std::fs::remove_file(&cli).unwrap();
    build_cli_deb_depending(newest, extra, &cli).unwrap();
    for (name, version, depends) in plain {
        let out = pool.join(format!("{name}_{version}_all.deb"));
        build_plain_deb(name, version, depends, &out).unwrap();
    }
    write_apt_indices(&repo.join("debian"), &f.arch).unwrap();
    sign_apt_release(&repo.join("debian"), &f.gnupg).unwrap();
    repo
}

fn host_at_1_0_0(repo: PathBuf) -> PortalHost {
    let h = PortalHost::boot(HostSpec {
        family: Family::Deb,
        repo_root: Some(repo),
        upkeep: rig::upkeep_binary(),
    })
    .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    h.install_product("1.0.0").unwrap();
    h.use_product_config().unwrap();
    h
}

/// The packages of a JSON document as (name, candidate).
fn moved(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages in {doc:#}"))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["candidate"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn installed(h: &PortalHost, name: &str) -> Option<String> {
    h.package_version(name)
}

#[test]
fn a_new_dependency_comes_along_as_apt_would_bring_it_and_the_rollback_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_where_newest_cli_needs(
        tmp.path(),
        ", portal-docs (>= 1.0)",
        &[
            ("portal-docs", "1.2-1", "portal-fonts"),
            ("portal-docs", "0.9-1", ""),
            ("portal-fonts", "3.0-1", ""),
        ],
    );
    let h = host_at_1_0_0(repo);
    let new = h.f.newest().deb_version();

    // Real apt, asked for the product at the candidate version.
    let pins = [format!("{PACKAGE}={new}"), format!("{CLI_PACKAGE}={new}")];
    let pins: Vec<&str> = pins.iter().map(String::as_str).collect();
    let mut apt = h
        .apt_simulate(&pins)
        .unwrap()
        .unwrap_or_else(|e| panic!("apt: {e}"));
    apt.sort();
    assert_eq!(
        apt,
        [
            (PACKAGE.to_string(), new.clone()),
            (CLI_PACKAGE.to_string(), new.clone()),
            ("portal-docs".to_string(), "1.2-1".to_string()),
            ("portal-fonts".to_string(), "3.0-1".to_string()),
        ]
        .iter()
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>(),
        "apt-get -s"
    );

    let plan = h.upkeep(&["--json", "plan"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    assert_eq!(moved(&json(&plan)), apt, "upkeep plan against apt-get -s");

    let before = h.unit_invocation();
    let up = h.upkeep(&["--json", "upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_ne!(h.unit_invocation(), before);
    assert_eq!(moved(&json(&up)), apt);
    assert_eq!(installed(&h, "portal-docs").as_deref(), Some("1.2-1"));
    assert_eq!(installed(&h, "portal-fonts").as_deref(), Some("3.0-1"));
    assert_eq!(installed(&h, CLI_PACKAGE), Some(new.clone()));

    let back = h.upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert_eq!(installed(&h, CLI_PACKAGE).as_deref(), Some("1.0.0-1"));
    assert_eq!(installed(&h, PACKAGE).as_deref(), Some("1.0.0-1"));
    assert_eq!(
        installed(&h, "portal-docs"),
        None,
        "the rollback removes what the upgrade brought in"
    );
    assert_eq!(installed(&h, "portal-fonts"), None);
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0", "{ready}");
}

#[test]
fn a_dependency_no_repository_meets_blocks_with_exit_3_and_nothing_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_where_newest_cli_needs(
        tmp.path(),
        ", portal-docs (>= 9)",
        &[("portal-docs", "1.2-1", "")],
    );
    let h = host_at_1_0_0(repo);
    let new = h.f.newest().deb_version();
    let pins = [format!("{PACKAGE}={new}"), format!("{CLI_PACKAGE}={new}")];
    let pins: Vec<&str> = pins.iter().map(String::as_str).collect();
    let apt = h.apt_simulate(&pins).unwrap();
    assert!(apt.is_err(), "apt-get -s found a way: {apt:?}");

    let before = h.unit_invocation();
    for cmd in [&["plan"][..], &["upgrade", "--yes"][..]] {
        let out = h.upkeep(cmd).unwrap();
        assert_eq!(out.status.code(), Some(3), "{cmd:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("upkeep: error:"))
            .unwrap_or_else(|| panic!("{cmd:?}: no error line: {}", show(&out)));
        assert!(line.contains("portal-docs (>= 9)"), "{cmd:?}: {line}");
        println!("{cmd:?}\n    {line}");
    }
    assert_eq!(
        h.unit_invocation(),
        before,
        "the unit was stopped or restarted"
    );
    assert_eq!(installed(&h, CLI_PACKAGE).as_deref(), Some("1.0.0-1"));
    assert_eq!(installed(&h, "portal-docs"), None);
    let hist = json(&h.upkeep(&["--json", "history"]).unwrap());
    assert_eq!(hist["runs"], serde_json::json!([]), "{hist:#}");
}
