//! Row 5: resources. 5a the peak RSS of every upkeep run the bench measured;
//! 5b the cost curve of a check (time and memory) against the size of the
//! index; 5c `upkeep history` against the size of the history.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::check::{host_debian_packages, write_packages};
use crate::measure::{At, Series, Server, Spec, cell, dur, host_config, measure, mib};
use crate::report::{Report, Row, met_text};
use crate::rig::fixtures::{COMPONENT, SUITE};
use crate::rig::{self, Fail};

/// The RSS target, everywhere.
const RSS_LIMIT_KIB: u64 = 40 * 1024;

/// Row 5a: the largest peak RSS of every upkeep series measured so far.
pub fn row_rss(r: &mut Report) {
    let mut ups: Vec<(String, Series)> = r
        .series
        .iter()
        .filter(|(_, s)| s.label.starts_with("upkeep") && s.peak_rss_kib > 0)
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();
    ups.sort_by_key(|(_, s)| std::cmp::Reverse(s.peak_rss_kib));
    let Some((key, top)) = ups.first().cloned() else {
        r.push(Row::new(
            "5a. peak RSS, every upkeep run",
            "no upkeep run measured (run the other rows too)".into(),
            None,
            "MiB",
        ));
        return;
    };
    let over: Vec<String> = ups
        .iter()
        .filter(|(_, s)| s.peak_rss_kib > RSS_LIMIT_KIB)
        .map(|(k, s)| format!("`{k}` {}", mib(s.peak_rss_kib)))
        .collect();
    let met = over.is_empty();
    let count = ups.len();
    let mut row = Row::new(
        &format!("5a. peak RSS, every upkeep run measured here ({count} series)"),
        match ups.iter().find(|(k, _)| !k.ends_with("every_run")) {
            Some((k2, s2)) if k2 != &key => format!(
                "at most {} (`{key}`); leaving out 5c's full listings (no target), {} (`{k2}`)",
                mib(top.peak_rss_kib),
                mib(s2.peak_rss_kib)
            ),
            _ => format!("at most {} (`{key}`)", mib(top.peak_rss_kib)),
        },
        Some(top.peak_rss_kib as f64 / 1024.0),
        "MiB",
    )
    .target("upkeep ≤ 40 MiB everywhere", met);
    let mut table = String::from("| series | command | peak RSS |\n|---|---|---|\n");
    for (k, s) in &ups {
        let _ = writeln!(table, "| `{k}` | {} | {} |", s.label, r.rss(s));
    }
    r.tables
        .push(("Peak RSS of every upkeep run".into(), table));
    let note = format!(
        "Row 5a ({}): the largest peak RSS of any upkeep run in this bench is {} (`{key}`, {}){}. Every series is listed under \"Peak RSS of every upkeep run\"; the downtime and upgrade rows start `upkeep upgrade` through the same wrapper, so their peaks are there too.",
        met_text(met),
        mib(top.peak_rss_kib),
        top.label,
        if met {
            String::new()
        } else {
            format!("; above 40 MiB: {}", over.join(", "))
        }
    );
    // In the table and the notes, row 5a goes before row 6 (measured
    // before it, so that it covers row 6's runs too).
    row.note = note.clone();
    let at = r
        .rows
        .iter()
        .position(|x| x.name.starts_with("6."))
        .unwrap_or(r.rows.len());
    r.rows.insert(at, row);
    let at = r
        .notes
        .iter()
        .position(|n| n.starts_with("Row 6"))
        .unwrap_or(r.notes.len());
    r.notes.insert(at, note);
}

/// Index sizes of the cost curve, in paragraphs.
const CURVE: [usize; 4] = [1_000, 10_000, 60_000, 200_000];

/// The first `n` paragraphs of an index made of the host's list repeated
/// (copies renamed `NAME-cK`, so every package name stays unique).
fn synthetic_index(paragraphs: &[&[u8]], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 900);
    for k in 0..n {
        let p = paragraphs[k % paragraphs.len()];
        let copy = k / paragraphs.len();
        if copy == 0 {
            out.extend_from_slice(p);
        } else {
            // "Package: NAME\n..." → "Package: NAME-cK\n..."
            let end = p.iter().position(|&b| b == b'\n').unwrap_or(p.len());
            out.extend_from_slice(&p[..end]);
            let _ = write!(VecWriter(&mut out), "-c{copy}");
            out.extend_from_slice(&p[end..]);
        }
        out.extend_from_slice(b"\n\n");
    }
    out
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Row 5b: check time and peak RSS against the size of the index.
pub fn row_curve(
    upkeep: &Path,
    f: &rig::Fixtures,
    work: &Path,
    newest: &str,
    r: &mut Report,
) -> Result<(), Fail> {
    let t = Instant::now();
    let dir = work.join("curve");
    let host = host_debian_packages(&f.arch)?;
    let paragraphs: Vec<&[u8]> = host
        .split(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .split(|l| l.is_empty())
        .filter(|p| !p.is_empty())
        .map(|lines| {
            let first = lines[0].as_ptr() as usize - host.as_ptr() as usize;
            let last = lines[lines.len() - 1];
            let end = last.as_ptr() as usize - host.as_ptr() as usize + last.len();
            &host[first..end]
        })
        .filter(|p| p.starts_with(b"Package: "))
        .collect();
    let fixture_bin = f.repo_root.join(format!(
        "debian/dists/{SUITE}/{COMPONENT}/binary-{}",
        f.arch
    ));
    let portal = fs::read(fixture_bin.join("Packages")).map_err(Fail::io("fixture Packages"))?;
    for n in CURVE {
        let debian = dir.join(format!("{n}/debian"));
        let bin = debian.join(format!("dists/{SUITE}/{COMPONENT}/binary-{}", f.arch));
        fs::create_dir_all(&bin).map_err(Fail::io("curve dists"))?;
        write_packages(
            &bin,
            synthetic_index(&paragraphs, n),
            &portal,
            &["xz"],
            "-1",
        )?;
        rig::fixtures::write_apt_release(&debian, &f.arch)?;
        rig::fixtures::sign_apt_release(&debian, &f.gnupg)?;
    }
    drop(paragraphs);
    drop(host);
    println!(
        "    built {} indexes in {:.1} s",
        CURVE.len(),
        t.elapsed().as_secs_f64()
    );
    let server = Server::start(&dir)?;
    let upkeep_text = upkeep.to_string_lossy().into_owned();
    struct Point {
        n: usize,
        plain: u64,
        xz: u64,
        cold: Series,
        warm: Series,
    }
    let mut points = Vec::new();
    for n in CURVE {
        let bin = dir.join(format!(
            "{n}/debian/dists/{SUITE}/{COMPONENT}/binary-{}",
            f.arch
        ));
        let size = |name: &str| fs::metadata(bin.join(name)).map(|m| m.len()).unwrap_or(0);
        let config = host_config(
            &dir.join(format!("upkeep-{n}")),
            "portal",
            &format!(
                "type = \"apt\"\nurl = \"{}\"\nsuite = \"{SUITE}\"\ncomponent = \"{COMPONENT}\"\nkeyring = \"{}\"",
                server.url(&format!("{n}/debian")),
                f.keyring.display()
            ),
        )?;
        let metadata = dir
            .join(format!("upkeep-{n}/cache/metadata"))
            .to_string_lossy()
            .into_owned();
        let check = [upkeep_text.as_str(), "--config", &config, "check"];
        let cold = measure(
            At::Host,
            &format!("upkeep check, {n} packages (cold)"),
            Spec::one(&check)
                .clear(&[&metadata])
                .warm()
                .expect(&[100])
                .contains(newest),
        )?;
        let warm = measure(
            At::Host,
            &format!("upkeep check, {n} packages (warm)"),
            Spec::one(&check).warm().expect(&[100]).contains(newest),
        )?;
        r.keep(&format!("curve.{n}.upkeep_cold"), &cold);
        r.keep(&format!("curve.{n}.upkeep_warm"), &warm);
        points.push(Point {
            n,
            plain: size("Packages"),
            xz: size("Packages.xz"),
            cold,
            warm,
        });
    }
    drop(server);
    fs::remove_dir_all(&dir).map_err(Fail::io("remove the curve dir"))?;

    // Marginal cost per 1,000 packages between consecutive points, in CPU
    // time (the work; wall time on a shared machine adds waiting for a
    // core) and in wall time (for the note).
    let slope = |a: &Point, b: &Point, t: fn(&Series) -> f64| {
        (t(&b.cold) - t(&a.cold)) / ((b.n - a.n) as f64 / 1e3)
    };
    let cpu: fn(&Series) -> f64 = Series::cpu_s;
    let wall: fn(&Series) -> f64 = |s| s.median_s;
    let s_mid = slope(&points[1], &points[2], cpu);
    let s_top = slope(&points[2], &points[3], cpu);
    let w_mid = slope(&points[1], &points[2], wall);
    let w_top = slope(&points[2], &points[3], wall);
    let linear = s_top <= 1.25 * s_mid;
    let rss_max = points
        .iter()
        .map(|p| p.cold.peak_rss_kib.max(p.warm.peak_rss_kib))
        .max()
        .unwrap_or(0);
    let rss_met = rss_max <= RSS_LIMIT_KIB;
    let k = |n: usize| format!("{}k", n / 1000);
    let times = points
        .iter()
        .map(|p| format!("{}: {}", k(p.n), dur(p.cold.median_s)))
        .collect::<Vec<_>>()
        .join(", ");
    let rss = points
        .iter()
        .map(|p| format!("{}: {}", k(p.n), r.rss(&p.cold)))
        .collect::<Vec<_>>()
        .join(", ");
    r.push(
        Row::new(
            "5b. cold check time against index size (packages: median)",
            times,
            Some(points[3].cold.median_s),
            "s",
        )
        .target(
            "linear: CPU per 1k packages from 60k to 200k ≤ 1.25× that from 10k to 60k",
            linear,
        ),
    );
    r.push(
        Row::new(
            "5b. peak RSS of a cold check against index size",
            rss,
            Some(rss_max as f64 / 1024.0),
            "MiB",
        )
        .target("upkeep ≤ 40 MiB", rss_met),
    );
    let mut table = String::from(
        "| packages in the index | Packages | Packages.xz | cold check, min / median | CPU (cold, median) | ms per 1k packages (cold, median) | warm check, min / median | peak RSS (cold) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for p in &points {
        let _ = writeln!(
            table,
            "| {} | {:.1} MB | {:.1} MB | {} | {} | {:.2} | {} | {} |",
            p.n,
            p.plain as f64 / 1e6,
            p.xz as f64 / 1e6,
            cell(&p.cold),
            dur(p.cold.cpu_s()),
            p.cold.median_s * 1e3 / (p.n as f64 / 1e3),
            cell(&p.warm),
            r.rss(&p.cold)
        );
    }
    r.tables.push(("Cost curve of a check".into(), table));
    r.note(format!(
        "Row 5b: indexes of 1k to 200k paragraphs made of the host's Debian list repeated (copies renamed, so 200k is the real list three times and a part), portal's paragraphs last, compressed with `xz -1`, signed, on the host's loopback; `upkeep check` on the host with a configuration of its own. Linearity ({}), judged on CPU time (user + system, the work done; wall time on a shared machine adds waiting for a core): a cold check costs {} of CPU per 1,000 packages between 10k and 60k and {} between 60k and 200k ({:.2}×); in wall time (medians) {} and {} ({:.2}×). The fixed part (process, dpkg query, requests, signature) is the warm check's ~{}. Warm checks stay flat, since the signed Release names the same index hash. Peak RSS ({}): at most {}{}.",
        met_text(linear),
        dur(s_mid),
        dur(s_top),
        s_top / s_mid,
        dur(w_mid),
        dur(w_top),
        w_top / w_mid,
        dur(points[0].warm.median_s),
        met_text(rss_met),
        mib(rss_max),
        if rss_met {
            String::new()
        } else {
            format!(
                " at {} packages, whose compressed index is {:.1} MB",
                points.last().map(|p| p.n).unwrap_or(0),
                points.last().map(|p| p.xz as f64 / 1e6).unwrap_or(0.0)
            )
        },
    ));
    r.method.push("Row 5b builds its indexes from the host's Debian list (repeated and renamed beyond its 63k paragraphs), compresses them with `xz -T0 -1` (level 1: level 6, Debian's, takes over two minutes for the four indexes on 2 cores; decompression costs about the same, the files are ~25 % larger), signs them with the fixtures' key and serves them from the host's loopback; cold: upkeep's metadata cache removed before each run; warm: what the previous run left.".into());
    println!("    row 5b took {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// History sizes of row 5c, in runs.
const HISTORY_SIZES: [u64; 3] = [10, 1_000, 100_000];

/// Writes one upgrade run through the crate's own API, as `upkeep upgrade`
/// records it: every step of an upgrade with the details and artifacts it
/// keeps.
fn template_run(path: &Path) -> anyhow::Result<()> {
    use serde_json::json;
    use upkeep::history::{History, NewArtifact};
    let h = History::open_file(path)?;
    let run = h.begin_run("portal", "upgrade", Some("1.0.0-1"), Some("2.1.0-1"))?;
    let sha = "9b7c0a3f1e2d4c5b6a79880f1e2d3c4b5a697887f6e5d4c3b2a1908f7e6d5c4b";
    let artifact = |role: &str, version: &str, kind: &str, path: &str, size: u64| NewArtifact {
        package: None,
        role: role.into(),
        version: Some(version.into()),
        kind: kind.into(),
        path: path.into(),
        sha256: sha.into(),
        size,
    };
    for step in upkeep::orchestrator::UPGRADE_STEPS {
        let name = step.name();
        let seq = h.begin_step(run, name)?;
        let (ms, detail, artifacts) = match name {
            "preflight" => (
                12,
                json!({"checks": ["database reachable: sqlite /var/lib/portal/portal.db", "backup tools present", "2.1.0-1 in the repository"]}),
                vec![],
            ),
            "download" => (
                35,
                json!({"package": "/var/cache/upkeep/packages/portal_2.1.0-1_amd64.deb", "sha256": sha, "size": 1_843_212, "url": "https://repo.example/portal/debian/pool/main/p/portal/portal_2.1.0-1_amd64.deb", "previous_package": "/var/cache/upkeep/packages/portal_1.0.0-1_amd64.deb"}),
                vec![
                    artifact(
                        "package",
                        "2.1.0-1",
                        "deb",
                        "/var/cache/upkeep/packages/portal_2.1.0-1_amd64.deb",
                        1_843_212,
                    ),
                    artifact(
                        "previous-package",
                        "1.0.0-1",
                        "deb",
                        "/var/cache/upkeep/packages/portal_1.0.0-1_amd64.deb",
                        1_802_004,
                    ),
                ],
            ),
            "lock" => (1, json!({"package_manager_lock": "held"}), vec![]),
            "backup-files" => (
                9,
                json!({"backup": {"path": "/var/lib/upkeep/backups/portal/files-1.tar.gz", "sha256": sha, "size": 2_311}, "paths": ["/opt/portal/portal.conf", "/opt/portal/themes"]}),
                vec![artifact(
                    "files-backup",
                    "1.0.0-1",
                    "files",
                    "/var/lib/upkeep/backups/portal/files-1.tar.gz",
                    2_311,
                )],
            ),
            "stop" => (14, json!({"units": ["portal.service"]}), vec![]),
            "backup-database" => (
                22,
                json!({"backup": {"path": "/var/lib/upkeep/backups/portal/database-1.sqlite", "sha256": sha, "size": 122_880}, "database": "sqlite /var/lib/portal/portal.db"}),
                vec![artifact(
                    "database-backup",
                    "1.0.0-1",
                    "sqlite",
                    "/var/lib/upkeep/backups/portal/database-1.sqlite",
                    122_880,
                )],
            ),
            "install" => (
                402,
                json!({"output": "(Reading database ... 6849 files and directories currently installed.)\nPreparing to unpack .../portal_2.1.0-1_amd64.deb ...\nUnpacking portal (2.1.0-1) over (1.0.0-1) ...\nSetting up portal (2.1.0-1) ...\n", "pending_config": []}),
                vec![],
            ),
            "reload" => (31, json!({}), vec![]),
            "start" => (18, json!({"units": ["portal.service"]}), vec![]),
            "health" => (
                3_105,
                json!({"waited_ms": 3_105, "healthy_after_ms": 92, "body": "{\"status\":\"ready\",\"version\":\"2.1.0\",\"schema\":5}", "downtime_ms": 498}),
                vec![],
            ),
            "commit" => (2, json!({"version": "2.1.0-1"}), vec![]),
            _ => (1, json!({"package_manager_lock": "released"}), vec![]),
        };
        h.end_step_with(run, seq, ms, Some(&detail), None, &artifacts)?;
    }
    h.finish_run(
        run,
        "succeeded",
        Some("portal 2.1.0-1 is installed and healthy"),
    )?;
    Ok(())
}

/// A history of `n` runs in `state/history.db`: the schema made by the
/// crate's own `History::open`, then the template run copied `n` times in
/// one transaction (one hour apart, ids in order).
fn make_history(template: &Path, state: &Path, n: u64) -> anyhow::Result<()> {
    drop(upkeep::history::History::open(state)?);
    let db = rusqlite::Connection::open(state.join("history.db"))?;
    db.execute_batch("PRAGMA synchronous = OFF;")?;
    db.execute(
        "ATTACH DATABASE ?1 AS tpl",
        [template.to_string_lossy().as_ref()],
    )?;
    let tx = db.unchecked_transaction()?;
    let copies = format!(
        "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < {n})"
    );
    let at = "strftime('%Y-%m-%dT%H:%M:%fZ', '2015-01-01', '+' || k.i || ' hours')";
    tx.execute_batch(&format!(
        "{copies}
         INSERT INTO runs (id, target, kind, from_version, to_version, outcome, message, pid, started_at, finished_at)
         SELECT k.i + 1, t.target, t.kind, t.from_version, t.to_version, t.outcome, t.message, 1000 + k.i % 30000, {at}, {at}
         FROM k, tpl.runs t;
         {copies}
         INSERT INTO steps (run_id, seq, name, status, started_at, finished_at, duration_ms, detail, error)
         SELECT k.i + 1, s.seq, s.name, s.status, {at}, {at}, s.duration_ms, s.detail, s.error
         FROM k, tpl.steps s ORDER BY k.i, s.seq;
         {copies}
         INSERT INTO artifacts (run_id, step_seq, target, role, version, kind, path, sha256, size, created_at)
         SELECT k.i + 1, a.step_seq, a.target, a.role, a.version, a.kind, replace(a.path, '-1.', '-' || (k.i + 1) || '.'), a.sha256, a.size, {at}
         FROM k, tpl.artifacts a ORDER BY k.i, a.id;"
    ))?;
    tx.commit()?;
    db.execute_batch("DETACH DATABASE tpl; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// Row 5c: `upkeep history` against the number of runs recorded.
pub fn row_history(upkeep: &Path, work: &Path, r: &mut Report) -> Result<(), Fail> {
    let t = Instant::now();
    let dir = work.join("history");
    fs::create_dir_all(&dir).map_err(Fail::io("history dir"))?;
    let template = dir.join("template.db");
    template_run(&template).map_err(|e| Fail(format!("history template: {e:#}")))?;
    let upkeep_text = upkeep.to_string_lossy().into_owned();
    let mut rows = Vec::new();
    for n in HISTORY_SIZES {
        let base = dir.join(n.to_string());
        let config = host_config(
            &base,
            "portal",
            "type = \"apt\"\nurl = \"http://127.0.0.1:9/debian\"\nsuite = \"stable\"\ncomponent = \"main\"\nkeyring = \"/dev/null\"",
        )?;
        let made = Instant::now();
        make_history(&template, &base.join("state"), n)
            .map_err(|e| Fail(format!("history of {n} runs: {e:#}")))?;
        let size = fs::metadata(base.join("state/history.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "    history of {n} runs: {:.1} MB, written in {:.1} s",
            size as f64 / 1e6,
            made.elapsed().as_secs_f64()
        );
        let limit = n.to_string();
        let up = |args: &[&str]| -> Vec<String> {
            let mut v = vec![upkeep_text.clone(), "--config".into(), config.clone()];
            v.extend(args.iter().map(|a| a.to_string()));
            v
        };
        let cases: [(&str, Vec<String>, u64); 4] = [
            (
                "upkeep history (default limit, 20)",
                up(&["history"]),
                n.min(20),
            ),
            (
                "upkeep --json history (default limit, 20)",
                up(&["--json", "history"]),
                n.min(20),
            ),
            (
                "upkeep history --limit N (every run)",
                up(&["history", "--limit", &limit]),
                n,
            ),
            (
                "upkeep --json history --limit N (every run)",
                up(&["--json", "history", "--limit", &limit]),
                n,
            ),
        ];
        let mut measured = Vec::new();
        for (label, args, runs) in cases {
            let json = args.iter().any(|a| a == "--json");
            // Untimed: the listing holds the runs it should (not checked for
            // the full listings of the largest history: one run of those is
            // all the time budget allows).
            let once = runs > 1_000;
            if runs <= 1_000 {
                let out = rig::cmd_stdout(std::process::Command::new(&args[0]).args(&args[1..]))?;
                let listed = if json {
                    serde_json::from_str::<serde_json::Value>(&out)
                        .ok()
                        .and_then(|v| v["runs"].as_array().map(|a| a.len() as u64))
                        .unwrap_or(0)
                } else {
                    out.lines().filter(|l| l.starts_with('#')).count() as u64
                };
                if listed != runs {
                    return Err(Fail(format!(
                        "{label}: listed {listed} runs of {n}, expected {runs}"
                    )));
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut spec = if once {
                Spec::one(&args).reps(1)
            } else {
                Spec::one(&args).warm()
            };
            if runs > 20 {
                spec = spec.discard();
            }
            let s = measure(At::Host, &format!("{label}, {n} runs"), spec)?;
            r.keep(&format!("history.{n}.{}", key_of(label)), &s);
            measured.push(s);
        }
        rows.push((n, size, measured));
    }
    fs::remove_dir_all(&dir).map_err(Fail::io("remove the history dir"))?;

    let (n_top, _, top) = rows.last().expect("three sizes");
    let plain_met = top[0].median_s <= 0.050;
    let json_met = top[1].median_s <= 0.050;
    r.push(
        Row::new(
            &format!("5c. `upkeep history` (default limit 20) on a history of {n_top} runs"),
            cell(&top[0]),
            Some(top[0].median_s),
            "s",
        )
        .target("≤ 50 ms", plain_met)
        .by_min(top[0].min_s <= 0.050),
    );
    r.push(
        Row::new(
            &format!("5c. `upkeep --json history` (default limit 20) on a history of {n_top} runs"),
            cell(&top[1]),
            Some(top[1].median_s),
            "s",
        )
        .target("≤ 50 ms", json_met)
        .by_min(top[1].min_s <= 0.050),
    );
    r.push(Row::new(
        &format!("5c. `upkeep history --limit {n_top}` / `--json` (all {n_top} runs)"),
        format!("{} / {}", cell(&top[2]), cell(&top[3])),
        Some(top[2].median_s),
        "s",
    ));
    let mut table = String::from(
        "| runs in the history | history.db | `history` (20) | `--json history` (20) | `history --limit N` (all) | `--json history --limit N` (all) | peak RSS, all as JSON |\n|---|---|---|---|---|---|---|\n",
    );
    for (n, size, m) in &rows {
        let _ = writeln!(
            table,
            "| {n} | {:.1} MB | {} | {} | {} | {} | {} |",
            *size as f64 / 1e6,
            cell(&m[0]),
            cell(&m[1]),
            cell(&m[2]),
            cell(&m[3]),
            r.rss(&m[3]),
        );
    }
    r.tables.push((
        "History listing against the size of the history".into(),
        table,
    ));
    let small = &rows[0].2;
    r.note(format!(
        "Row 5c ({} plain, {} JSON): `upkeep history` lists the newest 20 runs with their steps; on a history of {n_top} runs it takes {} (plain) and {} (JSON), against {} and {} on a history of {} runs, so the listing does not grow with the history. The target is read as that command on a history that large. Listing every run (`--limit {n_top}`, one run each: they take seconds) is shown for scale and has no target: it prints every step of every run ({} plain, {} as JSON, peak RSS {} for the JSON): upkeep streams the runs from SQLite to stdout one at a time, so its time grows with the history and its memory does not. The histories are written by the crate's own `History` API (one upgrade run, 12 steps with their details and 4 artifacts, as `upkeep upgrade` records them), then copied by SQL in one transaction into a database whose schema `History::open` made.",
        met_text(plain_met),
        met_text(json_met),
        dur(top[0].median_s),
        dur(top[1].median_s),
        dur(small[0].median_s),
        dur(small[1].median_s),
        rows[0].0,
        dur(top[2].median_s),
        dur(top[3].median_s),
        mib(top[3].peak_rss_kib),
    ));
    println!("    row 5c took {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn key_of(label: &str) -> String {
    let mut k: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while k.contains("__") {
        k = k.replace("__", "_");
    }
    k.trim_matches('_').to_lowercase()
}
