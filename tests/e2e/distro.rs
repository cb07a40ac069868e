//! Real services of a real distribution, upgraded by upkeep: nginx +
//! nginx-common and redis-server + redis-tools (epoch `5:`, `~` versions)
//! installed by apt from Debian's point release (`bookworm`, mirrored
//! locally with apt's own tools, verified with the real Debian keyring),
//! moved to the security update (`bookworm-security`) and rolled back:
//! with both repositories, with only the security one (the installed
//! version then exists nowhere but on the host, and the rollback copy is
//! rebuilt from it), and with `type = "system"` (the host's own apt
//! sources). Each time, the set upkeep moves equals what real
//! `apt-get -s` would install for the same request.

use std::collections::BTreeSet;

use super::json;
use super::rig::debian::{self, DebianHost, GUEST_DIR, MIRROR_URL, SECURITY_SUITE, SUITE};
use super::rig::{self, show};

/// Which repositories the target names.
#[derive(Clone, Copy, Debug)]
enum Repos {
    /// bookworm-security and bookworm, as two `[[repository]]` tables.
    Both,
    /// bookworm-security alone.
    SecurityOnly,
    /// `type = "system"`: the host's apt sources.
    System,
}

fn repository(suite: &str, dir: &str) -> String {
    format!(
        "[[targets.web.repository]]\ntype = \"apt\"\nurl = \"{MIRROR_URL}/{dir}\"\nsuite = \"{suite}\"\ncomponent = \"main\"\nkeyring = \"{GUEST_DIR}/{}\"\n",
        debian::KEYRING_NAME
    )
}

fn upkeep_toml(packages: &[&str], service: &str, health_url: Option<&str>, repos: Repos) -> String {
    let list: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
    let repos = match repos {
        Repos::Both => format!(
            "{}\n{}",
            repository(SECURITY_SUITE, "debian-security"),
            repository(SUITE, "debian")
        ),
        Repos::SecurityOnly => repository(SECURITY_SUITE, "debian-security"),
        Repos::System => "[targets.web.repository]\ntype = \"system\"\n".to_string(),
    };
    let health = health_url.map_or(String::new(), |u| format!("url = \"{u}\"\n"));
    format!(
        "[targets.web]\npackages = [{}]\nservices = [\"{service}\"]\n\n{repos}\n[targets.web.health]\n{health}timeout = \"60s\"\nsettle = \"1s\"\n",
        list.join(", ")
    )
}

/// The packages of a JSON document as (name, candidate), sorted.
fn moved(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages in {doc:#}"))
        .iter()
        .filter(|p| p["candidate"].is_string() && p["candidate"] != p["installed"])
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["candidate"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn upkeep(h: &DebianHost, args: &[&str]) -> std::process::Output {
    let mut argv = vec![rig::UPKEEP];
    argv.extend_from_slice(args);
    h.c.command(&argv).output().expect("run upkeep")
}

fn active(h: &DebianHost, unit: &str) -> bool {
    h.c.exec(&["systemctl", "is-active", "--quiet", unit])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Boots a host, lets apt install `packages` from the point release, and
/// has upkeep upgrade them to the security update and roll them back.
fn upgrade_and_roll_back(packages: &[&str], service: &str, health_url: Option<&str>, repos: Repos) {
    let h = DebianHost::boot(&rig::upkeep_binary())
        .unwrap_or_else(|e| panic!("the rig could not start: {e}"));
    let point: Vec<String> = packages
        .iter()
        .map(|p| {
            h.mirror
                .version(SUITE, p)
                .unwrap_or_else(|| panic!("{SUITE} has no {p}"))
        })
        .collect();
    let security: Vec<String> = packages
        .iter()
        .map(|p| {
            h.mirror.version(SECURITY_SUITE, p).unwrap_or_else(|| {
                panic!("{SECURITY_SUITE} has no {p} today: this test needs a security update")
            })
        })
        .collect();
    h.install_point_release(packages)
        .unwrap_or_else(|e| panic!("apt could not install the point release: {e}"));
    h.c.write(
        "/etc/upkeep/upkeep.toml",
        upkeep_toml(packages, service, health_url, repos),
        0o644,
    )
    .unwrap();

    // What real apt would install for the same request.
    let pins: Vec<String> = packages
        .iter()
        .zip(&security)
        .map(|(p, v)| format!("{p}={v}"))
        .collect();
    let pins: Vec<&str> = pins.iter().map(String::as_str).collect();
    let mut apt = h.apt_simulate(&pins).unwrap();
    apt.sort();
    let want: BTreeSet<(String, String)> = packages
        .iter()
        .zip(&security)
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect();
    assert!(
        want.iter().all(|w| apt.contains(w)),
        "apt-get -s {pins:?}: {apt:?}"
    );

    let check = upkeep(&h, &["--json", "check"]);
    assert_eq!(
        check.status.code(),
        Some(100),
        "{repos:?}: {}",
        show(&check)
    );

    let plan = upkeep(&h, &["--json", "plan"]);
    assert_eq!(plan.status.code(), Some(0), "{repos:?}: {}", show(&plan));
    let doc = json(&plan);
    assert_eq!(
        moved(&doc),
        apt,
        "{repos:?}: upkeep plan against apt-get -s"
    );
    let rollback_check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rollback-package")
        .cloned()
        .unwrap();
    if let Repos::SecurityOnly = repos {
        assert!(
            rollback_check["message"]
                .as_str()
                .unwrap()
                .contains("rebuilt from the installed files"),
            "{rollback_check:#}"
        );
    }

    let up = upkeep(&h, &["--json", "upgrade", "--yes"]);
    assert_eq!(up.status.code(), Some(0), "{repos:?}: {}", show(&up));
    assert_eq!(moved(&json(&up)), apt, "{repos:?}");
    for (p, v) in packages.iter().zip(&security) {
        assert_eq!(
            h.dpkg_version(p).as_deref(),
            Some(v.as_str()),
            "{repos:?} {p}"
        );
    }
    assert!(active(&h, service), "{service} after the upgrade");

    let back = upkeep(&h, &["--json", "rollback", "--yes"]);
    assert_eq!(back.status.code(), Some(0), "{repos:?}: {}", show(&back));
    for (p, v) in packages.iter().zip(&point) {
        assert_eq!(
            h.dpkg_version(p).as_deref(),
            Some(v.as_str()),
            "{repos:?} {p}"
        );
    }
    assert!(active(&h, service), "{service} after the rollback");
    let audit = h.c.run(&["dpkg", "--audit"]).unwrap();
    assert_eq!(audit.trim(), "", "dpkg --audit: {audit}");
    for p in packages {
        let verify = h.c.exec(&["dpkg", "--verify", p]).unwrap();
        assert!(
            verify.status.success(),
            "dpkg --verify {p}: {}",
            show(&verify)
        );
    }
    eprintln!("{repos:?}: {packages:?} {point:?} → {security:?} → back");
}

#[test]
fn nginx_and_nginx_common_from_both_suites_upgrade_to_the_security_update_and_roll_back() {
    upgrade_and_roll_back(
        &["nginx", "nginx-common"],
        "nginx.service",
        Some("http://127.0.0.1/"),
        Repos::Both,
    );
}

#[test]
fn nginx_with_only_the_security_suite_rolls_back_to_copies_rebuilt_from_the_host() {
    upgrade_and_roll_back(
        &["nginx", "nginx-common"],
        "nginx.service",
        Some("http://127.0.0.1/"),
        Repos::SecurityOnly,
    );
}

#[test]
fn nginx_from_the_hosts_own_apt_sources_with_type_system() {
    upgrade_and_roll_back(
        &["nginx", "nginx-common"],
        "nginx.service",
        Some("http://127.0.0.1/"),
        Repos::System,
    );
}

#[test]
fn redis_server_and_redis_tools_with_an_epoch_upgrade_and_roll_back() {
    upgrade_and_roll_back(
        &["redis-server", "redis-tools"],
        "redis-server.service",
        None,
        Repos::Both,
    );
}

#[test]
fn redis_with_only_the_security_suite_rolls_back_to_copies_rebuilt_from_the_host() {
    upgrade_and_roll_back(
        &["redis-server", "redis-tools"],
        "redis-server.service",
        None,
        Repos::SecurityOnly,
    );
}
