//! Row 6: start-up. `upkeep --version` (the process alone) and `upkeep
//! status` (package manager, systemd over D-Bus, the history) against
//! `systemctl status portal.service`, in a rig container after one upgrade.

use std::path::Path;

use crate::check::apt_host;
use crate::measure::{At, Spec, dur, measure};
use crate::report::{Report, Row};
use crate::rig::{self, Fail};

/// Row 6.
pub fn row_startup(upkeep: &Path, r: &mut Report) -> Result<(), Fail> {
    let h = apt_host(upkeep, None)?;
    // One upgrade first, so that status has a last run to show.
    let out = h.upkeep(&["upgrade", "--yes"])?;
    if !out.status.success() {
        return Err(Fail(format!("upkeep upgrade: {}", rig::show(&out))));
    }
    let at = At::In(&h.c);
    let version = measure(
        at,
        "upkeep --version",
        Spec::one(&[rig::UPKEEP, "--version"]).warm(),
    )?;
    let status = measure(
        at,
        "upkeep status",
        Spec::one(&[rig::UPKEEP, "status"]).warm().contains("2.1.0"),
    )?;
    let status_json = measure(
        at,
        "upkeep --json status",
        Spec::one(&[rig::UPKEEP, "--json", "status"])
            .warm()
            .contains("2.1.0"),
    )?;
    let systemctl = measure(
        at,
        "systemctl status portal.service",
        Spec::one(&["systemctl", "status", "--no-pager", "portal.service"])
            .warm()
            .contains("active (running)"),
    )?;
    let true_ = measure(
        at,
        "true (process start floor)",
        Spec::one(&["true"]).warm(),
    )?;
    drop(h);
    r.push(Row::times(
        "6. start-up: `upkeep --version` vs `systemctl status portal`",
        &version,
        &systemctl,
    ));
    r.push(Row::times(
        "6. `upkeep status` vs `systemctl status portal`",
        &status,
        &systemctl,
    ));
    r.note(format!(
        "Row 6 (no target), in a rig container after one `upkeep upgrade`: `upkeep --version` takes {} (a bare `true` started the same way: {}); `upkeep status` {} ({} with --json): it reads the installed version from dpkg's status file, asks systemd over D-Bus for each unit's state and reads the last run from the history. `systemctl status portal.service` takes {}: it asks systemd over D-Bus too and reads the unit's last journal lines.",
        dur(version.median_s),
        dur(true_.median_s),
        dur(status.median_s),
        dur(status_json.median_s),
        dur(systemctl.median_s),
    ));
    for (k, s) in [
        ("startup.upkeep_version", &version),
        ("startup.upkeep_status", &status),
        ("startup.upkeep_status_json", &status_json),
        ("startup.systemctl_status", &systemctl),
        ("startup.true", &true_),
    ] {
        r.keep(k, s);
    }
    r.breakdown("start-up: `upkeep --version`", &version);
    r.breakdown("start-up: `upkeep status`", &status);
    r.breakdown("start-up: `upkeep --json status`", &status_json);
    r.breakdown("start-up: `systemctl status portal.service`", &systemctl);
    r.breakdown("start-up: `true`", &true_);
    r.method.push("Row 6 runs in a rig container (portal installed with dpkg at 1.0.0, then `upkeep upgrade --yes` once, untimed); each command once untimed, then the timed runs.".into());
    Ok(())
}
