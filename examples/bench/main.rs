//! The benchmark: upkeep against the tools an operator would otherwise use,
//! measured in one run on the same machine, with ratios and the targets of
//! the issue.
//!
//! 1. the update check: (a) the fixture APT repository and (b) a
//!    Debian-sized index against `apt-get update && apt list --upgradable`
//!    in a throwaway systemd container, cold and warm; (c) the fixture YUM
//!    repository against `dnf check-update` on the host; (d) nginx on
//!    Debian's real archive (bookworm + bookworm-security, the rig's local
//!    mirror) against `apt-get update && apt list --upgradable`, cold and
//!    warm;
//! 2. download and verify a 1 GiB package: against `curl`, `curl` then
//!    `sha256sum`, and `apt-get download`;
//! 3. the service's downtime during an upgrade, against `systemctl stop;
//!    DUMP; dpkg -i (rpm -Uvh); systemctl start`, for sqlite, PostgreSQL and
//!    MariaDB on a deb and an rpm host;
//! 4. a whole upgrade against `apt-get install portal=V`;
//! 5. resources: (a) the peak RSS of every upkeep run above, (b) check time
//!    and memory against the size of the index (1k to 200k packages),
//!    (c) `upkeep history` against the size of the history (10 to 100,000
//!    runs);
//! 6. start-up: `upkeep --version` and `upkeep status` against `systemctl
//!    status portal`;
//! 7. the downtime of a real nginx upgrade from Debian's point release to
//!    its security update, against `systemctl stop; apt-get install;
//!    systemctl start`;
//! 8. fleets: (a) taking and giving back a slot in etcd against `etcdctl
//!    lock`; (b) a 3-node rolling upgrade started on all nodes at once
//!    against the three upgrades one after another.
//!
//! Every command is timed by a small Python wrapper that runs it as an
//! argument vector (never a shell string) and reads its peak RSS from
//! `wait4`. The results go to `BENCHMARKS.md` and `bench/results.json`.
//!
//! Run as root: `cargo run --release --example bench`. `UPKEEP_BENCH_ROWS=3`
//! (or `1b,5c`: a number selects all its parts) runs only those rows and
//! writes nothing.

#[path = "../../tests/rig/mod.rs"]
mod rig;

mod check;
mod distro;
mod download;
mod downtime;
mod fleet;
mod measure;
mod report;
mod resources;
mod startup;
mod upgrade;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use measure::{PYTHON, mib};
use report::{Machine, Report, first_line, load_average, table};
use rig::Fail;

/// Where the temporary files go: one disk filesystem for every row (never
/// tmpfs for one side and disk for the other).
const WORK_PARENT: &str = "/var/tmp";

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn phase(t0: Instant, text: &str) {
    println!("\n[{:>6.1} s] {text}", t0.elapsed().as_secs_f64());
}

/// Whether row `key` (`1a`, `3`, …) runs: all of them unless
/// `UPKEEP_BENCH_ROWS` lists some (`3` selects every part of row 3, `1b`
/// only that part); then nothing is written, the table is only printed.
fn selected(key: &str) -> bool {
    match std::env::var("UPKEEP_BENCH_ROWS") {
        Ok(v) => v.split(',').map(str::trim).any(|x| {
            x == key
                || (!x.is_empty()
                    && x.chars().all(|c| c.is_ascii_digit())
                    && key.trim_end_matches(|c: char| c.is_ascii_lowercase()) == x)
        }),
        Err(_) => true,
    }
}

/// The release binary cargo builds (honouring CARGO_TARGET_DIR).
fn release_binary(project: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { project.join(d) } else { d })
        .unwrap_or_else(|| project.join("target"))
        .join("release/upkeep")
}

fn bench() -> Result<(), Fail> {
    let t0 = Instant::now();
    phase(t0, "building upkeep (release)");
    let project = rig::fixtures::project_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        // With the example itself in the same build, cargo resolves the
        // features exactly as `cargo run --release --example bench` did (dev-
        // dependencies included, which adds nothing upkeep's code uses) and
        // reuses every dependency it just compiled: the binary alone is then
        // ~20 s, not a second release build of half the dependencies (~140 s
        // from a clean target directory on 2 cores).
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "upkeep",
            "--example",
            "bench",
        ])
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"));
    // `cargo run` hands this process the package's CARGO_PKG_*,
    // CARGO_MANIFEST_* and OUT_DIR; build scripts that declare
    // `rerun-if-env-changed` on them (ring does) would see them change and
    // rebuild, and the next `cargo run` would rebuild them back (~4 min each
    // way on 2 cores).
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&k.as_ref())
        {
            build.env_remove(&key);
        }
    }
    rig::cmd_ok(&mut build)?;
    let upkeep = release_binary(&project);
    phase(
        t0,
        "preparing the rig: host packages, root filesystem, fixtures, dnf",
    );
    rig::host::prepare()?;
    let f = rig::fixtures::get()?;
    if selected("1c") {
        check::ensure_dnf()?;
    }
    let newest = f.newest().deb_version();
    let mut machine = Machine::probe(Path::new(WORK_PARENT));
    for (name, argv) in [
        (
            "upkeep",
            vec![upkeep.to_str().unwrap_or("upkeep"), "--version"],
        ),
        ("apt", vec!["apt-get", "--version"]),
        ("dnf", vec!["dnf", "--version"]),
        ("curl", vec!["curl", "--version"]),
        ("sha256sum", vec!["sha256sum", "--version"]),
        ("python3", vec![PYTHON, "--version"]),
    ] {
        machine.tools.insert(name.to_string(), first_line(&argv));
    }
    println!(
        "    {} ({} cores), {}, kernel {}, temp files on {}",
        machine.cpu, machine.cores, machine.memory, machine.kernel, machine.work_filesystem
    );
    let work = tempfile::Builder::new()
        .prefix("upkeep-bench-")
        .tempdir_in(WORK_PARENT)
        .map_err(Fail::io("work dir"))?;
    let mut r = Report::default();
    let mut took: Vec<(&str, f64)> = Vec::new();
    let mut timed = |key: &'static str, t: Instant| took.push((key, t.elapsed().as_secs_f64()));

    if selected("1a") {
        phase(
            t0,
            "row 1a: update check, APT, fixture repository (container)",
        );
        let t = Instant::now();
        check::row_apt_small(&upkeep, &f.arch, &newest, &mut r)?;
        timed("1a", t);
    }
    if selected("1b") {
        phase(
            t0,
            "row 1b: update check, APT, Debian-sized index (building it, then a container)",
        );
        let t = Instant::now();
        check::row_apt_big(&upkeep, f, work.path(), &newest, &mut r)?;
        timed("1b", t);
    }
    if selected("1c") {
        phase(t0, "row 1c: update check, YUM (host loopback)");
        let t = Instant::now();
        check::row_yum(&upkeep, f, work.path(), &mut r)?;
        timed("1c", t);
    }
    if selected("1d") {
        phase(
            t0,
            "row 1d: update check, APT, Debian's real archive (local mirror, container)",
        );
        let t = Instant::now();
        distro::row_check(&upkeep, &mut r)?;
        timed("1d", t);
    }
    if selected("2") {
        phase(
            t0,
            "row 2: download + verify a 1 GiB package (host loopback)",
        );
        let t = Instant::now();
        download::row_download(&upkeep, f, work.path(), &mut r)?;
        timed("2", t);
    }
    if selected("3") {
        phase(
            t0,
            "row 3: downtime during an upgrade, upkeep vs by hand (containers: deb and rpm; sqlite, PostgreSQL, MariaDB)",
        );
        let t = Instant::now();
        downtime::row_downtime(&upkeep, f, &mut r)?;
        timed("3", t);
    }
    if selected("4") {
        phase(
            t0,
            "row 4: whole upgrade, upkeep vs apt-get install (containers)",
        );
        let t = Instant::now();
        upgrade::row_upgrade(&upkeep, &newest, &mut r)?;
        timed("4", t);
    }
    if selected("5b") {
        phase(
            t0,
            "row 5b: check time and memory against index size (host)",
        );
        let t = Instant::now();
        resources::row_curve(&upkeep, f, work.path(), &newest, &mut r)?;
        timed("5b", t);
    }
    if selected("5c") {
        phase(t0, "row 5c: history listing against history size (host)");
        let t = Instant::now();
        resources::row_history(&upkeep, work.path(), &mut r)?;
        timed("5c", t);
    }
    if selected("6") {
        phase(
            t0,
            "row 6: start-up, upkeep --version / status vs systemctl status (container)",
        );
        let t = Instant::now();
        startup::row_startup(&upkeep, &mut r)?;
        timed("6", t);
    }
    if selected("7") {
        phase(
            t0,
            "row 7: downtime of a real nginx upgrade, Debian bookworm -> bookworm-security (containers)",
        );
        let t = Instant::now();
        distro::row_downtime(&upkeep, &mut r)?;
        timed("7", t);
    }
    if selected("8a") {
        phase(
            t0,
            "row 8a: take + give back a fleet slot vs etcdctl lock (etcd on the host loopback)",
        );
        let t = Instant::now();
        fleet::row_slot(work.path(), &mut r)?;
        timed("8a", t);
    }
    if selected("8b") {
        phase(
            t0,
            "row 8b: 3-node rolling upgrade with [fleet] vs one node after another (fleets of containers)",
        );
        let t = Instant::now();
        fleet::row_rolling(&upkeep, &mut r)?;
        timed("8b", t);
    }
    if selected("5a") {
        resources::row_rss(&mut r);
    }
    drop(work);
    let rows_took = took
        .iter()
        .map(|(k, s)| format!("{k} {s:.0} s"))
        .collect::<Vec<_>>()
        .join(", ");
    if std::env::var_os("UPKEEP_BENCH_ROWS").is_some() {
        println!();
        print!("{}", table(&r.rows));
        for n in &r.notes {
            println!("\n{n}");
        }
        for (title, body) in &r.tables {
            println!("\n## {title}\n\n{body}");
        }
        println!(
            "\ndone in {:.1} s (rows: {rows_took}); nothing written",
            t0.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let floors = r.series.values().map(|s| s.floor_kib).filter(|k| *k > 0);
    let (lo, hi) = (floors.clone().min().unwrap_or(0), floors.max().unwrap_or(0));
    r.notes.push(format!(
        "Peak RSS figures are upper bounds: a command started by the Python wrapper begins as a copy of it, and Linux keeps that high-water mark across exec, so even `true` started the same way shows {} to {}. A figure marked \"wrapper floor\" is no higher than `true`'s in the same series: the command's own peak is at most that.",
        mib(lo),
        mib(hi)
    ));
    r.notes.push(format!(
        "Time taken by each row (setup included): {rows_took}."
    ));

    machine.load_after = load_average();
    let total = t0.elapsed().as_secs_f64();
    phase(t0, "writing BENCHMARKS.md and bench/results.json");
    fs::write(
        project.join("BENCHMARKS.md"),
        report::markdown(&machine, &r, total),
    )
    .map_err(Fail::io("write BENCHMARKS.md"))?;
    fs::create_dir_all(project.join("bench")).map_err(Fail::io("bench dir"))?;
    fs::write(
        project.join("bench/results.json"),
        report::json(&machine, &r, total),
    )
    .map_err(Fail::io("write bench/results.json"))?;
    println!();
    print!("{}", table(&r.rows));
    println!("\ndone in {total:.1} s (rows: {rows_took})");
    Ok(())
}
