//! Row 4: a whole upgrade, 1.0.0 → 2.1.0 on a deb host (sqlite), from the
//! same signed repository: `upkeep upgrade --yes` (metadata, download,
//! verify, backups, install, health gate) against `apt-get update && apt-get
//! install portal=2.1.0-1` (no backup, no health gate). A fresh container
//! per run.

use std::path::Path;
use std::time::Instant;

use crate::check::{APT_ONLY, apt_host};
use crate::downtime::upkeep_steps;
use crate::measure::{At, Reaper, Series, Spec, dur, measure_quietly, mib};
use crate::report::{Report, Row};
use crate::rig::{self, Fail};

/// Runs per side.
const REPS: usize = 5;

/// Row 4.
pub fn row_upgrade(upkeep: &Path, newest: &str, r: &mut Report) -> Result<(), Fail> {
    let t = Instant::now();
    let mut reaper = Reaper::default();
    let pin = format!("portal={newest}");
    let mut update = vec!["apt-get"];
    update.extend(APT_ONLY);
    update.extend(["-q", "update"]);
    let mut install = vec!["apt-get"];
    install.extend(APT_ONLY);
    install.extend([
        "-q",
        "-y",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "install",
        &pin,
    ]);
    let apt_spec = || {
        Spec::steps(&[&update, &install])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .reps(1)
    };
    let up_spec = || Spec::one(&[rig::UPKEEP, "upgrade", "--yes"]).reps(1);
    let (mut apt_runs, mut up_runs) = (Vec::new(), Vec::new());
    let mut steps = Vec::new();
    for i in 0..REPS {
        // Alternate which side goes first.
        for apt_side in [i % 2 == 0, i % 2 == 1] {
            let h = apt_host(upkeep, None)?;
            reaper.settle();
            if apt_side {
                let a = measure_quietly(
                    At::In(&h.c),
                    "apt-get update && apt-get install portal=V",
                    apt_spec(),
                )?;
                let v = h.dpkg_version();
                if v.as_deref() != Some(newest) {
                    return Err(Fail(format!("apt-get install: dpkg has {v:?}")));
                }
                apt_runs.push(a);
            } else {
                let u = measure_quietly(At::In(&h.c), "upkeep upgrade --yes", up_spec())?;
                if h.ready_version().as_deref() != Some("2.1.0") {
                    return Err(Fail(format!(
                        "upkeep upgrade: /ready says {:?}",
                        h.ready_version()
                    )));
                }
                steps = upkeep_steps(&h)?;
                up_runs.push(u);
            }
            reaper.drop_later(h);
        }
        println!(
            "      rep {}: apt {} ({}), upkeep {} ({})",
            i + 1,
            dur(apt_runs[i].median_s),
            mib(apt_runs[i].peak_rss_kib),
            dur(up_runs[i].median_s),
            mib(up_runs[i].peak_rss_kib)
        );
    }
    reaper.settle();
    let apt = Series::merge(
        "apt-get update && apt-get install portal=V (no backup, no health gate)",
        &apt_runs,
    );
    let up = Series::merge("upkeep upgrade --yes", &up_runs);
    r.push(Row::times(
        "4. whole upgrade 1.0.0 → 2.1.0 (deb, sqlite); apt does no backup and no health gate",
        &up,
        &apt,
    ));
    let total_ms: f64 = steps.iter().map(|(_, ms)| ms).sum();
    let health = steps
        .iter()
        .find(|(n, _)| n == "health")
        .map(|(_, ms)| *ms)
        .unwrap_or(0.0);
    let shown = steps
        .iter()
        .map(|(n, ms)| format!("{n} {}", dur(ms / 1e3)))
        .collect::<Vec<_>>()
        .join(", ");
    r.note(format!(
        "Row 4 (no target): a whole upgrade from the same repository, fresh container per run ({REPS} runs a side), portal 1.0.0 on sqlite installed with dpkg and no cached metadata or package. upkeep {} against apt's {} ({:.2}×). apt-get fetches the lists, downloads and verifies the package and runs dpkg, whose postinst restarts the unit; it takes no backup and does not wait for the new version to answer. upkeep's last run, step by step (from its history; {} in all): {shown}. The health step ({}) is the gate: unit active, `/ready` 2xx, no error in the journal and no restart, stable for a 3 s settle window, so about 3 s of upkeep's time is that window; its other steps take {} together. Peak RSS: upkeep {}, apt {}.",
        dur(up.median_s),
        dur(apt.median_s),
        apt.median_s / up.median_s,
        dur(total_ms / 1e3),
        dur(health / 1e3),
        dur((total_ms - health) / 1e3),
        mib(up.peak_rss_kib),
        mib(apt.peak_rss_kib),
    ));
    r.keep("upgrade.upkeep", &up);
    r.keep("upgrade.apt", &apt);
    r.method.push("Row 4: each run boots a fresh container at portal 1.0.0 (sqlite, installed with `dpkg -i`), apt pointed at the fixture source only. apt: `apt-get update && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold portal=2.1.0-1` (DEBIAN_FRONTEND=noninteractive; the conffile options because portal.conf holds the licence key, as on a real host). upkeep: `upkeep upgrade --yes` with an empty cache. Both timed by the wrapper inside the container, one run per container, the side that goes first alternating.".into());
    println!("    row 4 took {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}
