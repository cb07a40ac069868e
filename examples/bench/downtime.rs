//! Row 3: the service's downtime during an upgrade (1.0.0 → 2.1.0), as a
//! client polling `/ready` sees it: `upkeep upgrade` against the manual
//! procedure with the backup it requires (stop; dump; dpkg -i or rpm -Uvh;
//! start), for sqlite, PostgreSQL and MariaDB, on a deb and an rpm host.
//! Every run gets a fresh container.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use crate::measure::{PYTHON, Reaper, Series, Spec, cell, dur, mib};
use crate::report::{Report, Row, met_text};
use crate::rig::{self, Container, Db, Fail, Family, HostSpec, PortalHost};

/// Pages in the portal's database before the upgrade.
pub const ROWS: usize = 2000;
/// Runs per side and case.
const REPS: usize = 5;

/// A poller run inside the container while a package is replaced: polls
/// `/ready` every 5 ms and prints how long it went without a 200, from the
/// first failure until the next 200 (the service's downtime as a client
/// sees it), then exits. argv: URL, seconds to wait at most.
const DOWNTIME_POLLER: &str = r#"
import sys, time, urllib.request
url, limit = sys.argv[1], float(sys.argv[2])
def up():
    try:
        with urllib.request.urlopen(url, timeout=0.5) as r:
            return r.status == 200
    except Exception:
        return False
start = time.monotonic()
down = None
print("polling", flush=True)
while time.monotonic() - start < limit:
    ok = up()
    now = time.monotonic()
    if not ok and down is None:
        down = now
    if ok and down is not None:
        print(f"{now - down:.4f}", flush=True)
        sys.exit(0)
    time.sleep(0.005)
sys.exit(1)
"#;

/// Inserts pages `bench-1` … `bench-N` into the portal's sqlite database
/// (argv: database file, N).
const SQLITE_PAGES: &str = r#"
import sqlite3, sys
db, n = sqlite3.connect(sys.argv[1], timeout=30), int(sys.argv[2])
with db:
    db.executemany("INSERT INTO pages (id, title) VALUES (?, ?)",
                   ((i, f"bench-{i}") for i in range(1, n + 1)))
db.close()
"#;

/// What one measured action gave: the downtime and each step's output and
/// wall time.
pub struct Downtime {
    pub seconds: f64,
    pub steps: Vec<(std::process::Output, f64)>,
}

/// Measures one downtime of the portal (its `/ready`): see [`downtime_at`].
pub fn downtime_of(h: &PortalHost, action: &[Vec<String>]) -> Result<Downtime, Fail> {
    downtime_at(&h.c, rig::READY_URL, action)
}

/// Measures one downtime: starts the poller on `url` inside `c`, runs
/// `action` inside it, returns the poller's downtime and each step's output
/// and time.
pub fn downtime_at(c: &Container, url: &str, action: &[Vec<String>]) -> Result<Downtime, Fail> {
    let mut poller = c
        .command(&[PYTHON, "-c", DOWNTIME_POLLER, url, "120"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(Fail::io("start the poller"))?;
    let mut out = poller
        .stdout
        .take()
        .ok_or_else(|| Fail("poller stdout".into()))?;
    // Wait until it polls.
    let mut first = [0u8; 8];
    out.read_exact(&mut first)
        .map_err(Fail::io("poller start"))?;
    let mut steps = Vec::new();
    for argv in action {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let t = Instant::now();
        let o = c.exec(&argv)?;
        let took = t.elapsed().as_secs_f64();
        if !o.status.success() {
            let _ = poller.kill();
            let _ = poller.wait();
            let shown: Vec<&str> = argv.iter().take(3).copied().collect();
            return Err(Fail(format!("{shown:?}…: {}", rig::show(&o))));
        }
        steps.push((o, took));
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .map_err(Fail::io("poller output"))?;
    let status = poller.wait().map_err(Fail::io("poller"))?;
    if !status.success() {
        return Err(Fail(format!("the service did not come back: {rest}")));
    }
    let seconds = rest
        .trim()
        .parse()
        .map_err(|e| Fail(format!("poller said {rest:?}: {e}")))?;
    Ok(Downtime { seconds, steps })
}

/// Puts `n` pages into the portal's database with SQL, in one transaction
/// (through the API they would take ~1.5 s per container).
pub fn add_pages(h: &PortalHost, db: Db, n: usize) -> Result<(), Fail> {
    match db {
        Db::Sqlite => {
            h.c.run(&[
                PYTHON,
                "-c",
                SQLITE_PAGES,
                "/var/lib/portal/portal.db",
                &n.to_string(),
            ])?;
        }
        Db::Postgres => {
            h.db_query(
                db,
                &format!(
                    "INSERT INTO pages (id, title) SELECT g, 'bench-' || g FROM generate_series(1, {n}) g"
                ),
            )?;
        }
        Db::Mariadb => {
            h.db_query(
                db,
                &format!(
                    "INSERT INTO pages (id, title) SELECT seq, CONCAT('bench-', seq) FROM seq_1_to_{n}"
                ),
            )?;
        }
    }
    let titles = h.page_titles()?;
    if titles.len() != n {
        return Err(Fail(format!(
            "the portal lists {} pages, expected {n}",
            titles.len()
        )));
    }
    Ok(())
}

/// A host at 1.0.0 (installed with dpkg or rpm) on `db` with [`ROWS`] pages,
/// ready for 2.1.0.
pub fn portal_host(upkeep: &Path, family: Family, db: Db) -> Result<PortalHost, Fail> {
    let h = PortalHost::boot(HostSpec {
        family,
        repo_root: None,
        upkeep: upkeep.to_path_buf(),
    })?;
    match family {
        Family::Deb => h.install_with_dpkg("1.0.0")?,
        Family::Rpm => h.install_with_rpm("1.0.0")?,
    }
    h.use_database(db)?;
    add_pages(&h, db, ROWS)?;
    Ok(h)
}

/// The manual backup of the portal's database, while the service is stopped.
fn manual_dump(db: Db) -> Vec<String> {
    let v: &[&str] = match db {
        // The service is stopped: a copy of the file is consistent.
        Db::Sqlite => &[
            "cp",
            "-p",
            "/var/lib/portal/portal.db",
            "/var/tmp/portal.db.before-upgrade",
        ],
        Db::Postgres => &[
            "runuser",
            "-u",
            "postgres",
            "--",
            "pg_dump",
            "-Fc",
            "-f",
            "/var/tmp/portal.pgdump",
            "portal",
        ],
        Db::Mariadb => &[
            "mariadb-dump",
            "--single-transaction",
            "--result-file=/var/tmp/portal.sql",
            "portal",
        ],
    };
    v.iter().map(|s| s.to_string()).collect()
}

fn dump_text(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "cp portal.db",
        Db::Postgres => "pg_dump -Fc",
        Db::Mariadb => "mariadb-dump",
    }
}

fn db_text(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "PostgreSQL",
        Db::Mariadb => "MariaDB",
    }
}

fn family_text(family: Family) -> &'static str {
    match family {
        Family::Deb => "deb",
        Family::Rpm => "rpm",
    }
}

/// The manual install of 2.1.0's package.
fn manual_install(f: &rig::Fixtures, family: Family) -> Result<Vec<String>, Fail> {
    let name = |p: &Path| -> Result<String, Fail> {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| Fail("package file name".into()))
    };
    Ok(match family {
        Family::Deb => vec![
            "dpkg".into(),
            "--force-confdef".into(),
            "--force-confold".into(),
            "-i".into(),
            format!("/srv/debs/{}", name(f.deb("2.1.0"))?),
        ],
        Family::Rpm => {
            let i = f
                .releases
                .iter()
                .position(|r| r.version == "2.1.0")
                .ok_or_else(|| Fail("no fixture release 2.1.0".into()))?;
            vec![
                "rpm".into(),
                "-Uvh".into(),
                format!("/srv/repo/rpm/Packages/{}", name(&f.rpms[i])?),
            ]
        }
    })
}

/// Step durations (ms) of run 1 in the container's history, by name.
pub fn upkeep_steps(h: &PortalHost) -> Result<Vec<(String, f64)>, Fail> {
    upkeep_steps_in(&h.c)
}

/// [`upkeep_steps`] of any container with upkeep installed.
pub fn upkeep_steps_in(c: &Container) -> Result<Vec<(String, f64)>, Fail> {
    let out = c.run(&[rig::UPKEEP, "--json", "history", "show", "1"])?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| Fail(format!("history show --json: {e}")))?;
    Ok(v["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("?").to_string(),
                        s["duration_ms"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// What one case gave.
struct CaseResult {
    manual: Series,
    up: Series,
    /// The upkeep runs themselves (wall time of the whole command, peak RSS).
    up_runs: Series,
    /// The manual dump's own time inside the manual runs.
    dump: Series,
    /// Median of each upkeep step (ms), in order.
    up_steps: Vec<(String, f64)>,
}

fn run_case(
    upkeep: &Path,
    f: &rig::Fixtures,
    family: Family,
    db: Db,
    reaper: &mut Reaper,
) -> Result<CaseResult, Fail> {
    let stop: Vec<String> = ["systemctl", "stop", "portal.service"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let start: Vec<String> = ["systemctl", "start", "portal.service"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let manual_action = vec![stop, manual_dump(db), manual_install(f, family)?, start];
    let spec = Spec::one(&[rig::UPKEEP, "upgrade", "--yes"]).reps(1);
    let (mut manual, mut up, mut dump, mut runs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut steps: Vec<Vec<(String, f64)>> = Vec::new();
    for i in 0..REPS {
        // Alternate which side goes first, so that neither always gets the
        // machine right after a container was powered off.
        for manual_side in [i % 2 == 0, i % 2 == 1] {
            let h = portal_host(upkeep, family, db)?;
            if manual_side {
                reaper.settle();
                let d = downtime_of(&h, &manual_action)?;
                if h.ready_version().as_deref() != Some("2.1.0") {
                    return Err(Fail(format!(
                        "manual upgrade: /ready says {:?}",
                        h.ready_version()
                    )));
                }
                manual.push(d.seconds);
                dump.push(d.steps[1].1);
            } else {
                // The download and verification happen before the stop
                // either way; warm the cache so that the runs compare the
                // same work.
                h.c.run(&[rig::UPKEEP, "plan"])?;
                reaper.settle();
                let d = downtime_of(&h, &[spec.helper_argv()])?;
                let run = spec.series("upkeep upgrade --yes", "container", &d.steps[0].0)?;
                if h.ready_version().as_deref() != Some("2.1.0") {
                    return Err(Fail(format!(
                        "upkeep upgrade: /ready says {:?}",
                        h.ready_version()
                    )));
                }
                steps.push(upkeep_steps(&h)?);
                up.push(d.seconds);
                runs.push(run);
            }
            reaper.drop_later(h);
        }
        println!(
            "      rep {}: manual {:.3} s (dump {:.3} s), upkeep {:.3} s (its run {:.3} s, peak RSS {})",
            i + 1,
            manual[i],
            dump[i],
            up[i],
            runs[i].median_s,
            mib(runs[i].peak_rss_kib)
        );
    }
    let install = match family {
        Family::Deb => "dpkg -i",
        Family::Rpm => "rpm -Uvh",
    };
    let manual = Series::of_times(
        &format!(
            "systemctl stop; {}; {install}; systemctl start",
            dump_text(db)
        ),
        "container",
        &format!(
            "systemctl stop portal.service && {} && {} && systemctl start portal.service",
            manual_dump(db).join(" "),
            manual_install(f, family)?.join(" ")
        ),
        manual,
    );
    let up = Series::of_times(
        "upkeep upgrade --yes (downtime)",
        "container",
        "upkeep upgrade --yes",
        up,
    );
    let dump = Series::of_times(dump_text(db), "container", &manual_dump(db).join(" "), dump);
    let up_runs = Series::merge("upkeep upgrade --yes (whole command)", &runs);
    // Median duration of each step over the runs.
    let up_steps = steps
        .first()
        .map(|first| {
            first
                .iter()
                .enumerate()
                .map(|(k, (name, _))| {
                    let v: Vec<f64> = steps.iter().filter_map(|s| s.get(k).map(|x| x.1)).collect();
                    (name.clone(), crate::measure::median(&v))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CaseResult {
        manual,
        up,
        up_runs,
        dump,
        up_steps,
    })
}

/// Row 3: every case.
pub fn row_downtime(upkeep: &Path, f: &rig::Fixtures, r: &mut Report) -> Result<(), Fail> {
    let mut reaper = Reaper::default();
    let t = Instant::now();
    for family in [Family::Deb, Family::Rpm] {
        for db in [Db::Sqlite, Db::Postgres, Db::Mariadb] {
            println!("    {} host, {}:", family_text(family), db_text(db));
            let c = run_case(upkeep, f, family, db, &mut reaper)?;
            let limit = 1.10 * c.manual.median_s;
            let met = c.up.median_s <= limit;
            let met_by_min = c.up.min_s <= 1.10 * c.manual.min_s;
            let noise = if met_by_min == met {
                String::new()
            } else {
                format!(
                    " Judged by the minimums instead ({} against {}), the target would be {}: with {REPS} runs a side on a shared 2-core machine, the difference is within the noise.",
                    dur(c.up.min_s),
                    dur(c.manual.min_s),
                    if met_by_min { "met" } else { "missed" }
                )
            };
            let name = format!(
                "3. downtime during an upgrade, {} host, {} ({ROWS} pages)",
                family_text(family),
                db_text(db)
            );
            r.push(
                Row::times(&name, &c.up, &c.manual)
                    .target("upkeep ≤ 1.1 × the manual procedure with its dump", met)
                    .by_min(met_by_min),
            );
            let steps = c
                .up_steps
                .iter()
                .filter(|(n, _)| {
                    matches!(
                        n.as_str(),
                        "stop" | "backup-database" | "install" | "reload" | "start" | "health"
                    )
                })
                .map(|(n, ms)| format!("{n} {}", dur(ms / 1e3)))
                .collect::<Vec<_>>()
                .join(", ");
            r.note(format!(
                "Row 3, {} host, {} ({}): upkeep's downtime {} against {} for `{}` by hand (medians of {REPS} runs, each in a fresh container); the limit is 1.1 × {} = {}. The manual dump alone took {} of that ({}). upkeep's steps (median ms, from its own history): {steps}; the health step includes the 3 s settle window, which is not downtime (the poller sees the service back before it ends). The whole `upkeep upgrade` command took {} and peaked at {}.{noise}",
                family_text(family),
                db_text(db),
                met_text(met),
                dur(c.up.median_s),
                dur(c.manual.median_s),
                c.manual.label,
                dur(c.manual.median_s),
                dur(limit),
                dur(c.dump.median_s),
                cell(&c.dump),
                cell(&c.up_runs),
                mib(c.up_runs.peak_rss_kib),
            ));
            let key = format!(
                "downtime.{}.{}",
                family_text(family),
                db_text(db).to_lowercase()
            );
            r.keep(&format!("{key}.manual"), &c.manual);
            r.keep(&format!("{key}.upkeep"), &c.up);
            r.keep(&format!("{key}.upkeep_command"), &c.up_runs);
            r.keep(&format!("{key}.manual_dump"), &c.dump);
        }
    }
    reaper.settle();
    println!("    row 3 took {:.0} s", t.elapsed().as_secs_f64());
    r.method.push(format!("Row 3: downtime is what a client sees, measured inside the container by a Python poller requesting `/ready` every 5 ms, from its first failure to the next 200. Each run gets a fresh container: portal 1.0.0 installed with `dpkg -i` (deb host) or `rpm -Uvh` (rpm host, Debian's rpm 4.18), switched to its database (sqlite file, or PostgreSQL 15 / MariaDB 10.11 started in the container), {ROWS} pages inserted into its database with SQL (and listed back through its API), then upgraded to 2.1.0 (three migrations). By hand: `systemctl stop portal.service`, the dump (`cp -p portal.db`, `pg_dump -Fc`, `mariadb-dump --single-transaction`), `dpkg -i --force-confdef --force-confold` or `rpm -Uvh` (whose postinst restarts the unit), `systemctl start portal.service`, each through `nsenter`. upkeep: `upkeep plan` first (untimed: the download and verification happen before the stop either way), then `upkeep upgrade --yes` under the poller, started by the timing wrapper for its peak RSS. The side that goes first alternates from one repetition to the next; containers are powered off in the background while the next one boots, never while one is measured."));
    Ok(())
}
