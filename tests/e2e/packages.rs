//! upkeep's own .deb and .rpm on real hosts: the rig installed them at boot
//! (`rig::own`); here they are checked, upgraded to a newer package version
//! and removed, as an administrator would, with the history and the edited
//! configuration surviving each step.

use std::os::unix::fs::PermissionsExt;

use super::rig::{self, Family, PortalHost, show};

/// The units the packages ship.
const UNITS: [&str; 4] = [
    "upkeep-check.service",
    "upkeep-check.timer",
    "upkeep-upgrade.service",
    "upkeep-upgrade.timer",
];

/// Files beside the configuration that an install, upgrade or removal may
/// leave (`.dpkg-dist`, `.rpmnew`, ...).
fn config_leftovers(h: &PortalHost) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(h.c.path("/etc/upkeep"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("upkeep.toml."))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `systemctl list-timers` (the active timers), as text.
fn timers(h: &PortalHost) -> String {
    h.c.run(&["systemctl", "list-timers", "--no-pager"])
        .unwrap()
}

/// Whether a path exists in the container, a dangling symlink included.
fn present(h: &PortalHost, guest: &str) -> bool {
    h.c.path(guest).symlink_metadata().is_ok()
}

fn is_enabled(h: &PortalHost, unit: &str) -> String {
    let out = h.c.exec(&["systemctl", "is-enabled", unit]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_active(h: &PortalHost, unit: &str) -> String {
    let out = h.c.exec(&["systemctl", "is-active", unit]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The installed version of upkeep's package (`0.1.0-1`), if any.
fn own_version(h: &PortalHost) -> Option<String> {
    let argv: &[&str] = match h.family {
        Family::Deb => &[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}${Version}",
            "upkeep",
        ],
        Family::Rpm => &["rpm", "-q", "--qf", "ii %{VERSION}-%{RELEASE}", "upkeep"],
    };
    let out = h.c.exec(argv).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("ii ").map(|v| v.trim().to_string())
}

fn mode(h: &PortalHost, guest: &str) -> u32 {
    std::fs::metadata(h.c.path(guest))
        .unwrap_or_else(|e| panic!("{guest}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// The timer is listed by `systemctl list-timers` (it is active, with a
/// next elapse) and enabled; the upgrade timer is neither.
fn assert_check_timer_on(h: &PortalHost, when: &str) {
    let listed = timers(h);
    assert!(
        listed.contains("upkeep-check.timer") && listed.contains("upkeep-check.service"),
        "{when}: upkeep-check.timer is not listed:\n{listed}"
    );
    assert!(
        !listed.contains("upkeep-upgrade.timer"),
        "{when}: the upgrade timer is opt-in:\n{listed}"
    );
    assert_eq!(is_enabled(h, "upkeep-check.timer"), "enabled", "{when}");
    assert_eq!(is_active(h, "upkeep-check.timer"), "active", "{when}");
    assert_eq!(is_enabled(h, "upkeep-upgrade.timer"), "disabled", "{when}");
    assert_eq!(is_active(h, "upkeep-upgrade.timer"), "inactive", "{when}");
}

fn lifecycle(family: Family) {
    let h = crate::boot(family);
    let installed = format!("{}-1", h.own.version);

    // Installed by its package, which owns the binary the rig runs.
    assert_eq!(own_version(&h).as_deref(), Some(installed.as_str()));
    let owner = match family {
        Family::Deb => h.c.run(&["dpkg", "-S", rig::UPKEEP]).unwrap(),
        Family::Rpm => h.c.run(&["rpm", "-qf", rig::UPKEEP]).unwrap(),
    };
    assert!(owner.starts_with("upkeep"), "{owner}");
    let version = h.c.run(&[rig::UPKEEP, "--version"]).unwrap();
    assert!(version.starts_with("upkeep "), "{version}");

    // Units, timers, man pages, completions.
    for unit in UNITS {
        assert!(
            h.c.path(&format!("/usr/lib/systemd/system/{unit}"))
                .is_file(),
            "{unit} not installed"
        );
    }
    assert_check_timer_on(&h, "after the install");
    for page in ["man8/upkeep.8", "man5/upkeep.toml.5"] {
        let plain = h.c.path(&format!("/usr/share/man/{page}"));
        let gz = h.c.path(&format!("/usr/share/man/{page}.gz"));
        assert!(plain.is_file() || gz.is_file(), "{page} not installed");
    }
    let zsh = match family {
        Family::Deb => "/usr/share/zsh/vendor-completions/_upkeep",
        Family::Rpm => "/usr/share/zsh/site-functions/_upkeep",
    };
    for f in [
        "/usr/share/bash-completion/completions/upkeep",
        "/usr/share/fish/vendor_completions.d/upkeep.fish",
        zsh,
    ] {
        assert!(h.c.path(f).is_file(), "{f} not installed");
    }

    // The directories, with safe modes.
    assert_eq!(mode(&h, "/var/lib/upkeep"), 0o700);
    assert_eq!(mode(&h, "/var/cache/upkeep"), 0o755);
    assert_eq!(mode(&h, "/etc/upkeep/conf.d"), 0o755);
    assert_eq!(mode(&h, "/etc/upkeep/keys"), 0o755);

    // The check service, as the timer starts it: sandboxed, exit 100 (an
    // update of the portal is available) counts as success.
    h.install("1.0.0").unwrap();
    let result = crate::run_check_service(&h);
    assert!(
        result.contains("Result=success") && result.contains("ExecMainStatus=100"),
        "{result}"
    );

    // A real run writes the history; the administrator edits the config.
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let history = h.c.path("/var/lib/upkeep/history.db");
    assert!(history.is_file());
    let runs = |h: &PortalHost| -> usize {
        let out = h.upkeep(&["history", "--json"]).unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        j["runs"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(runs(&h), 1);
    let edited = format!(
        "# Edited by the administrator.\nkeep_versions = 5\n\n{}",
        h.c.read("/etc/upkeep/upkeep.toml").unwrap()
    );
    h.c.write("/etc/upkeep/upkeep.toml", &edited, 0o640)
        .unwrap();
    // The administrator's choice of timers is kept across upgrades.
    h.c.run(&["systemctl", "disable", "--now", "upkeep-check.timer"])
        .unwrap();

    // Upgrade upkeep's own package to a newer version, without a terminal
    // and without --force-conf*: a conffile prompt would fail it.
    let newer =
        rig::own::with_version(&rig::upkeep_binary(), &format!("{}+rig1", h.own.version)).unwrap();
    let upgrade = match family {
        Family::Deb => h.c.exec(&["dpkg", "-i", &newer.guest_deb()]).unwrap(),
        Family::Rpm => {
            h.c.exec(&["rpm", "-U", "--nodeps", &newer.guest_rpm()])
                .unwrap()
        }
    };
    assert!(upgrade.status.success(), "{}", show(&upgrade));
    assert_eq!(
        own_version(&h).as_deref(),
        Some(format!("{}-1", newer.version).as_str())
    );
    assert_eq!(h.c.read("/etc/upkeep/upkeep.toml").unwrap(), edited);
    assert_eq!(mode(&h, "/etc/upkeep/upkeep.toml"), 0o640);
    assert_eq!(config_leftovers(&h), Vec::<String>::new());
    assert_eq!(runs(&h), 1, "the history survives the upgrade");
    assert_eq!(mode(&h, "/var/lib/upkeep"), 0o700);
    assert_eq!(is_enabled(&h, "upkeep-check.timer"), "disabled");
    assert!(!timers(&h).contains("upkeep-check.timer"));
    h.c.run(&["systemctl", "enable", "--now", "upkeep-check.timer"])
        .unwrap();
    assert_check_timer_on(&h, "after the upgrade");
    let check = h.upkeep(&["check"]).unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));

    // Remove: binary, units and timers go; history and config stay.
    let history_bytes = std::fs::read(&history).unwrap();
    let remove = match family {
        Family::Deb => h.c.exec(&["dpkg", "-r", "upkeep"]).unwrap(),
        Family::Rpm => h.c.exec(&["rpm", "-e", "upkeep"]).unwrap(),
    };
    assert!(remove.status.success(), "{}", show(&remove));
    assert_eq!(own_version(&h), None);
    assert!(!present(&h, rig::UPKEEP));
    for unit in UNITS {
        assert!(
            !present(&h, &format!("/usr/lib/systemd/system/{unit}")),
            "{unit} left behind"
        );
    }
    let listed = timers(&h);
    assert!(!listed.contains("upkeep"), "{listed}");
    for unit in ["upkeep-check.timer", "upkeep-upgrade.timer"] {
        assert_eq!(is_active(&h, unit), "inactive", "{unit}");
    }
    assert_eq!(std::fs::read(&history).unwrap(), history_bytes);
    assert_eq!(mode(&h, "/var/lib/upkeep"), 0o700);
    assert!(h.c.path("/etc/upkeep/keys/portal.asc").is_file());
    match family {
        // dpkg keeps a removed package's conffiles where they are.
        Family::Deb => {
            assert_eq!(h.c.read("/etc/upkeep/upkeep.toml").unwrap(), edited);
            assert_eq!(config_leftovers(&h), Vec::<String>::new());
        }
        // rpm saves an edited %config(noreplace) file beside it, and says
        // so; the administrator moves it back after a reinstall.
        Family::Rpm => {
            assert!(!present(&h, "/etc/upkeep/upkeep.toml"));
            assert_eq!(config_leftovers(&h), ["upkeep.toml.rpmsave"]);
            assert_eq!(h.c.read("/etc/upkeep/upkeep.toml.rpmsave").unwrap(), edited);
            assert!(
                String::from_utf8_lossy(&remove.stderr).contains("saved as"),
                "{}",
                show(&remove)
            );
        }
    }

    if family == Family::Deb {
        // Purge deletes the conffile and the download cache, forgets the
        // timer's enablement; the history and the backups stay (they are
        // the only copy of the product's earlier database), and so do the
        // administrator's own files (keys, conf.d).
        let purge = h.c.exec(&["dpkg", "--purge", "upkeep"]).unwrap();
        assert!(purge.status.success(), "{}", show(&purge));
        assert!(
            String::from_utf8_lossy(&purge.stderr).contains("kept /var/lib/upkeep"),
            "{}",
            show(&purge)
        );
        assert!(!present(&h, "/etc/upkeep/upkeep.toml"));
        assert!(!present(&h, "/var/cache/upkeep"));
        assert!(!present(
            &h,
            "/etc/systemd/system/timers.target.wants/upkeep-check.timer"
        ));
        assert!(!present(&h, "/etc/systemd/system/upkeep-check.timer"));
        assert_eq!(std::fs::read(&history).unwrap(), history_bytes);
        assert!(h.c.path("/etc/upkeep/keys/portal.asc").is_file());
        let status =
            h.c.exec(&["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "upkeep"])
                .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            !status.starts_with("ii") && !status.starts_with("rc"),
            "{status}"
        );
    }
}

#[test]
fn deb_installs_enables_the_check_timer_upgrades_and_removes_keeping_history_and_config() {
    lifecycle(Family::Deb);
}

#[test]
fn rpm_installs_enables_the_check_timer_upgrades_and_removes_keeping_history_and_config() {
    lifecycle(Family::Rpm);
}

/// As installed, before the administrator configures anything: the daily
/// check the packages enable must succeed quietly, not fail every day.
#[test]
fn the_packaged_default_config_makes_the_daily_check_a_quiet_success() {
    let h = crate::boot(Family::Deb);
    let shipped =
        std::fs::read_to_string(rig::fixtures::project_dir().join("packaging/upkeep.toml"))
            .unwrap();
    h.c.write("/etc/upkeep/upkeep.toml", &shipped, 0o644)
        .unwrap();
    // dpkg agrees this is the packaged conffile, untouched.
    let verify = h.c.run(&["dpkg", "--verify", "upkeep"]).unwrap();
    assert_eq!(verify, "", "dpkg --verify");
    let check = h.upkeep(&["check"]).unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));
    assert!(
        check.stdout.is_empty() && check.stderr.is_empty(),
        "{}",
        show(&check)
    );
    let start =
        h.c.exec(&["systemctl", "start", "upkeep-check.service"])
            .unwrap();
    assert!(start.status.success(), "{}", show(&start));
    let result =
        h.c.run(&["systemctl", "show", "-p", "Result", "upkeep-check.service"])
            .unwrap();
    assert_eq!(result.trim(), "Result=success");
}
