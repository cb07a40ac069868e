//! Operations on the real rig (issue 6): the check timer and its service
//! writing structured journal fields and calling the notify hook, unattended
//! upgrades that wait for their maintenance window, and an interactive
//! upgrade that survives the death of the SSH-like process that started it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::rig::{self, Family, PortalHost, show};

/// A notify hook that keeps what it gets, one file per event, where the
/// sandbox of upkeep-check.service lets it write.
const HOOK: &str = "#!/bin/sh\ncat > \"/var/lib/upkeep/notified-$UPKEEP_EVENT.json\"\n";

fn install_hook(h: &PortalHost) {
    h.c.write("/usr/local/bin/upkeep-hook", HOOK, 0o755)
        .unwrap();
}

/// What the hook received for `event`, once it has.
fn notified(h: &PortalHost, event: &str) -> serde_json::Value {
    let path = format!("/var/lib/upkeep/notified-{event}.json");
    let text =
        h.c.read(&path)
            .unwrap_or_else(|e| panic!("the notify hook got no {event} event: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the notify hook got invalid JSON ({e}): {text}"))
}

/// The journal entries of `unit` (as JSON objects).
fn journal(h: &PortalHost, unit: &str) -> Vec<serde_json::Value> {
    let out =
        h.c.run(&["journalctl", "-u", unit, "-o", "json", "--no-pager"])
            .unwrap();
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `f` for up to `secs` seconds.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn check_timer_is_enabled_and_its_service_logs_structured_fields_and_notifies() {
    let h = crate::boot(Family::Deb);
    h.install("1.0.0").unwrap();
    install_hook(&h);
    h.c.write(
        "/etc/upkeep/conf.d/50-notify.toml",
        "[targets.portal]\nnotify = \"/usr/local/bin/upkeep-hook\"\n",
        0o644,
    )
    .unwrap();

    // Installed from upkeep's own package, enabled, and scheduled.
    let enabled =
        h.c.exec(&["systemctl", "is-enabled", "upkeep-check.timer"])
            .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout).trim(),
        "enabled",
        "{}",
        show(&enabled)
    );
    let timers =
        h.c.run(&["systemctl", "list-timers", "--all", "--no-pager"])
            .unwrap();
    assert!(timers.contains("upkeep-check.timer"), "{timers}");

    // What the timer would start, started now; exit 100 (an update) is
    // success for the unit.
    let result = crate::run_check_service(&h);
    assert!(
        result.contains("Result=success") && result.contains("ExecMainStatus=100"),
        "{result}"
    );

    let newest = h.f.newest().deb_version();
    let entry = eventually(10, || {
        journal(&h, "upkeep-check.service")
            .into_iter()
            .find(|e| e["UPKEEP_TARGET"] == "portal" && e["UPKEEP_UPDATE_AVAILABLE"] == "true")
    })
    .unwrap_or_else(|| {
        panic!(
            "no structured check entry in the journal:\n{}",
            h.c.run(&[
                "journalctl",
                "-u",
                "upkeep-check.service",
                "-o",
                "verbose",
                "--no-pager"
            ])
            .unwrap_or_default()
        )
    });
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "upkeep", "{entry:#}");
    assert_eq!(entry["UPKEEP_INSTALLED"], "1.0.0-1", "{entry:#}");
    assert_eq!(entry["UPKEEP_LATEST"], newest.as_str(), "{entry:#}");
    // The one line cron or the journal shows for a person.
    assert!(
        journal(&h, "upkeep-check.service")
            .iter()
            .any(|e| e["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("portal: {newest} available")))),
        "the update line is not in the journal"
    );

    let n = notified(&h, "check");
    assert_eq!(n["event"], "check", "{n:#}");
    assert_eq!(n["target"], "portal", "{n:#}");
    assert_eq!(n["exit_code"], 100, "{n:#}");
    assert_eq!(n["update_available"], true, "{n:#}");
    assert_eq!(n["latest"], newest.as_str(), "{n:#}");
    assert!(!n.to_string().contains(rig::LICENSE_KEY));
}

#[test]
fn check_under_cron_prints_one_line_per_update_and_nothing_when_up_to_date() {
    let h = crate::boot(Family::Deb);
    h.install("1.0.0").unwrap();
    let newest = h.f.newest().deb_version();
    // No terminal, as under cron.
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with(&format!("portal: {newest} available (installed: 1.0.0-1)")),
        "{text}"
    );
    // 1.0.0 → 2.x crosses a major version: flagged, without downloading.
    assert!(lines[0].contains("!! major version 1 → 2"), "{text}");
    assert!(out.stderr.is_empty(), "{}", show(&out));

    let up = h.upkeep(&["upgrade", "--yes", "--no-detach"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
}

/// The container's local weekday (1 = Monday) and minutes since midnight.
fn local_now(h: &PortalHost) -> (u32, u32) {
    let out = h.c.run(&["date", "+%u %H %M"]).unwrap();
    let parts: Vec<u32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    (parts[0], parts[1] * 60 + parts[2])
}

/// A drop-in: auto_upgrade = "apply" with one daily window opening at
/// `start` minutes after midnight (local time), `length` long.
fn window_drop_in(start: u32, length: &str) -> String {
    let start = start % (24 * 60);
    format!(
        "[targets.portal]\nauto_upgrade = \"apply\"\nnotify = \"/usr/local/bin/upkeep-hook\"\n\n\
         [[targets.portal.window]]\ndays = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"]\n\
         start = \"{:02}:{:02}\"\nlength = \"{length}\"\n",
        start / 60,
        start % 60
    )
}

#[test]
fn unattended_upgrade_does_nothing_outside_its_window_and_upgrades_inside_it() {
    let h = crate::boot(Family::Rpm);
    h.install("1.0.0").unwrap();
    install_hook(&h);
    let (_, now) = local_now(&h);

    // A window that opens in two hours: closed now.
    h.c.write(
        "/etc/upkeep/conf.d/50-auto.toml",
        window_drop_in(now + 120, "1h"),
        0o644,
    )
    .unwrap();
    let out = h.upkeep(&["upgrade", "--unattended"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        out.stdout.is_empty(),
        "outside its window it is quiet: {}",
        show(&out)
    );
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    let history = crate::json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(
        history["runs"].as_array().map(Vec::len),
        Some(0),
        "{history:#}"
    );
    let status = crate::json(&h.upkeep(&["status", "--json"]).unwrap());
    assert_eq!(status["auto_upgrade"], "apply", "{status:#}");
    assert_eq!(status["next_window"]["open"], false, "{status:#}");
    let text = String::from_utf8_lossy(&h.upkeep(&["status"]).unwrap().stdout).into_owned();
    assert!(text.contains("next maintenance window"), "{text}");

    // A window open since an hour ago: the timer's service upgrades, with
    // nobody to ask.
    h.c.write(
        "/etc/upkeep/conf.d/50-auto.toml",
        window_drop_in(now + 24 * 60 - 60, "3h"),
        0o644,
    )
    .unwrap();
    let started =
        h.c.exec(&["systemctl", "start", "upkeep-upgrade.service"])
            .unwrap();
    assert!(
        started.status.success(),
        "{}\n{}",
        show(&started),
        h.c.run(&["journalctl", "-u", "upkeep-upgrade.service", "--no-pager"])
            .unwrap_or_default()
    );
    let newest = h.f.newest();
    assert_eq!(
        h.installed_version().as_deref(),
        Some(newest.deb_version().as_str())
    );
    assert_eq!(h.ready_version().as_deref(), Some(newest.version.as_str()));
    let n = notified(&h, "upgrade");
    assert_eq!(n["outcome"], "succeeded", "{n:#}");
    assert_eq!(n["exit_code"], 0, "{n:#}");
    assert_eq!(n["run"]["to"], newest.deb_version().as_str(), "{n:#}");
    // Every step of the run is in the journal with its fields.
    let steps: Vec<String> = journal(&h, "upkeep-upgrade.service")
        .iter()
        .filter(|e| e["UPKEEP_TARGET"] == "portal" && e["UPKEEP_RUN"].is_string())
        .filter_map(|e| e["UPKEEP_STEP"].as_str().map(str::to_owned))
        .collect();
    for step in ["backup-files", "stop", "install", "start", "health"] {
        assert!(
            steps.iter().any(|s| s == step),
            "{step} not in the journal: {steps:?}"
        );
    }
}

#[test]
fn killing_the_ssh_like_parent_does_not_interrupt_the_upgrade() {
    let h = crate::boot_failpoints(Family::Deb);
    h.install("1.0.0").unwrap();
    let newest = h.f.newest();
    // A pause while the portal is stopped, to kill the parent mid-run.
    let mut parent =
        h.c.command(&[rig::UPKEEP, "upgrade", "--yes"])
            .env("FAILPOINTS", "before-install=sleep(4000)")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let unit = eventually(60, || {
        let units =
            h.c.run(&[
                "systemctl",
                "list-units",
                "--type=service",
                "--state=active",
                "--no-legend",
                "--plain",
                "upkeep-upgrade-*",
            ])
            .ok()?;
        let unit = units.split_whitespace().next()?.to_owned();
        (h.unit_state() != "active").then_some(unit)
    })
    .unwrap_or_else(|| panic!("the upgrade never ran in a transient unit with the portal stopped"));

    // The SSH session dies: the parent upkeep and systemd-run are killed,
    // the terminal's pipes close.
    let main_pid =
        h.c.run(&["systemctl", "show", "-p", "MainPID", "--value", &unit])
            .unwrap();
    let main_pid = main_pid.trim();
    for pid in
        h.c.run(&["pgrep", "-x", "upkeep"])
            .unwrap()
            .split_whitespace()
    {
        if pid != main_pid {
            h.c.run(&["kill", "-KILL", pid]).unwrap();
        }
    }
    let _ = h.c.exec(&["pkill", "-KILL", "-x", "systemd-run"]);
    let _ = parent.kill();
    let _ = parent.wait();
    drop(parent);

    // The run goes on in its unit, to the end.
    eventually(120, || {
        let s = h.c.exec(&["systemctl", "is-active", &unit]).ok()?;
        (String::from_utf8_lossy(&s.stdout).trim() != "active").then_some(())
    })
    .unwrap_or_else(|| panic!("{unit} never finished"));
    assert_eq!(
        h.installed_version().as_deref(),
        Some(newest.deb_version().as_str())
    );
    let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(ready["version"], newest.version.as_str());
    let status = crate::json(&h.upkeep(&["status", "--json"]).unwrap());
    assert_eq!(status["last_run"]["outcome"], "succeeded", "{status:#}");
    assert!(status["interrupted_run"].is_null(), "{status:#}");
    // Its log stayed in the journal.
    let logged =
        h.c.run(&["journalctl", "-u", &unit, "-o", "json", "--no-pager"])
            .unwrap();
    assert!(logged.contains("\"UPKEEP_STEP\":\"health\""), "{logged}");
}
