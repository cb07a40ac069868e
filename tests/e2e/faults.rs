//! Faults and bad input on the real rig, each with its exact outcome: the
//! documented exit code, one `upkeep: error:` line naming the cause, and
//! the host unchanged (same unit invocation, same version, same rows) or,
//! for what is allowed to proceed, the run undisturbed.
//!
//! - `check` and `status` while an `upgrade` runs answer and do not
//!   disturb it;
//! - a masked unit blocks the upgrade in the preflight (exit 3);
//! - D-Bus not answering (its daemon stopped with SIGSTOP): exit 1 within
//!   the connect timeout;
//! - the product's config: 10 MB of valid JSON upgrades; a non-UTF-8 file
//!   and a file that is not JSON block the upgrade (exit 3) before the
//!   stop.

use std::process::Output;
use std::time::{Duration, Instant};

use super::json;
use super::rig::{self, Family, PortalHost, show};

const CONF: &str = "/opt/portal/portal.conf";

/// The one `upkeep: error:` line of `out`, asserting there is exactly one.
fn error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("upkeep: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", show(out));
    lines[0].to_string()
}

/// What must not change when a run is refused.
fn snapshot(h: &PortalHost) -> (String, Option<String>, Vec<String>) {
    (
        h.unit_invocation(),
        h.installed_version(),
        h.page_titles().unwrap(),
    )
}

/// No run of the target ever stopped the unit.
fn no_stop_in_history(h: &PortalHost) {
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    for r in hist["runs"].as_array().into_iter().flatten() {
        for s in r["steps"].as_array().into_iter().flatten() {
            assert_ne!(
                s["name"], "stop",
                "a refused run stopped the unit: {hist:#}"
            );
        }
    }
}

#[cfg(feature = "failpoints")]
#[test]
fn check_and_status_during_an_upgrade_answer_and_do_not_disturb_it() {
    let h = super::boot_failpoints(Family::Deb);
    h.install("1.0.0").unwrap();
    h.add_pages("before", 3).unwrap();
    let newest = h.f.newest().version.clone();
    // A pause while the portal is stopped and its database backed up.
    use std::process::Stdio;
    let run =
        h.c.command(&[rig::UPKEEP, "upgrade", "--yes"])
            .env("FAILPOINTS", "before-install=sleep(4000)")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    super::safe_apply::wait_for_step(&h, "backup-database", "succeeded");
    let check = h.upkeep(&["check", "--json"]).unwrap();
    assert!(
        matches!(check.status.code(), Some(0) | Some(100)),
        "{}",
        show(&check)
    );
    let c = json(&check);
    assert_eq!(c["installed"], "1.0.0-1", "{c:#}");
    let status = h.upkeep(&["status", "--json"]).unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));
    let s = json(&status);
    assert!(
        s["next_step"]
            .as_str()
            .is_some_and(|n| n.contains("in progress")),
        "{s:#}"
    );
    assert!(
        s["interrupted_run"].is_null(),
        "a running run is not interrupted: {s:#}"
    );
    let text = h.upkeep(&["status"]).unwrap();
    assert_eq!(text.status.code(), Some(0), "{}", show(&text));
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], newest.as_str());
    assert_eq!(
        h.page_titles().unwrap(),
        rig::db::page_titles_for("before", 3)
    );
}

#[test]
fn a_masked_unit_blocks_the_upgrade_before_the_stop() {
    let h = super::boot(Family::Deb);
    h.install("1.0.0").unwrap();
    h.c.run(&["systemctl", "mask", "portal.service"]).unwrap();
    let before = snapshot(&h);
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let line = error_line(&out);
    assert!(
        line.contains("portal.service is masked")
            && line.contains("systemctl unmask portal.service"),
        "{line}"
    );
    assert_eq!(snapshot(&h), before);
    no_stop_in_history(&h);
    h.c.run(&["systemctl", "unmask", "portal.service"]).unwrap();
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn dbus_not_answering_fails_in_one_line_and_changes_nothing() {
    let h = super::boot(Family::Deb);
    h.install("1.0.0").unwrap();
    let before = snapshot(&h);
    let pid =
        h.c.run(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "dbus.service",
        ])
        .unwrap();
    let pid = pid.trim().to_string();
    assert_ne!(pid, "0", "dbus-daemon runs");
    h.c.run(&["kill", "-STOP", &pid]).unwrap();
    let started = Instant::now();
    // Run directly (nsenter): the rig's usual way starts a transient unit,
    // which needs D-Bus itself.
    let out = h.c.exec(&[rig::UPKEEP, "upgrade", "--yes"]);
    h.c.run(&["kill", "-CONT", &pid]).unwrap();
    let out = out.unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let line = error_line(&out);
    assert!(line.contains("D-Bus"), "{line}");
    assert!(took < Duration::from_secs(60), "gave up after {took:?}");
    assert_eq!(snapshot(&h), before);
    // Once D-Bus answers again, the same command works.
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn a_huge_config_upgrades_and_a_non_utf8_or_non_json_one_blocks_before_the_stop() {
    let h = super::boot(Family::Deb);
    h.install("1.1.0").unwrap();
    h.add_pages("before", 2).unwrap();
    let good = h.c.read(CONF).unwrap();

    for (what, content) in [
        ("non-UTF-8", {
            let mut b = good.clone().into_bytes();
            let at = b.iter().position(|&c| c == b'"').unwrap() + 1;
            b.splice(at..at, [0xff, 0xfe]);
            b
        }),
        (
            "not JSON",
            format!("{}\n}}, oops", good.trim_end()).into_bytes(),
        ),
    ] {
        std::fs::write(h.c.path(CONF), &content).unwrap();
        let before = snapshot(&h);
        let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
        assert_eq!(out.status.code(), Some(3), "{what}: {}", show(&out));
        let line = error_line(&out);
        assert!(line.contains(CONF), "{what}: {line}");
        assert_eq!(snapshot(&h), before, "{what}");
        assert_eq!(
            std::fs::read(h.c.path(CONF)).unwrap(),
            content,
            "{what}: file kept"
        );
        no_stop_in_history(&h);
    }

    // 10 MB of valid JSON: an operator's key with a long value. Upgraded,
    // the key kept.
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["OperatorNotes"] = "x".repeat(10 * 1024 * 1024).into();
    h.c.write(CONF, serde_json::to_string_pretty(&doc).unwrap(), 0o640)
        .unwrap();
    h.c.run(&["systemctl", "restart", "portal.service"])
        .unwrap();
    h.wait_ready(Duration::from_secs(30)).unwrap();
    let out = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "10 MB: {}", show(&out));
    let after: serde_json::Value = serde_json::from_str(&h.c.read(CONF).unwrap()).unwrap();
    assert_eq!(
        after["OperatorNotes"].as_str().map(str::len),
        Some(10 * 1024 * 1024)
    );
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], h.f.newest().version.as_str());
    assert_eq!(
        h.page_titles().unwrap(),
        rig::db::page_titles_for("before", 2)
    );
}
