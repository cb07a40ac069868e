//! Rows 1d and 7: Debian's real archive (bookworm and bookworm-security,
//! mirrored verbatim by the rig, Debian's own signatures) in a
//! [`DebianHost`]. 1d: `upkeep check` of nginx against `apt-get update &&
//! apt list --upgradable` in the same container on the same mirror, cold and
//! warm. 7: the downtime of a real nginx upgrade, point release to security
//! update, `upkeep upgrade --yes` against `systemctl stop; apt-get install;
//! systemctl start` by hand, a fresh container per run.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::downtime::{downtime_at, upkeep_steps_in};
use crate::measure::{At, PYTHON, Reaper, Series, Spec, cell, dur, measure, mib};
use crate::report::{Report, Row, met_text};
use crate::rig::debian::{
    self, DebianHost, DebianMirror, GUEST_DIR, MIRROR_URL, SECURITY_SUITE, SUITE,
};
use crate::rig::{self, Container, Fail};

/// The product: nginx from Debian, as the e2e tests upgrade it.
const PACKAGES: [&str; 2] = ["nginx", "nginx-common"];
/// Its unit.
const SERVICE: &str = "nginx.service";
/// What a client asks for.
const URL: &str = "http://127.0.0.1/";
/// upkeep's cache inside the container (the default `cache_dir`).
const CACHE: &str = "/var/cache/upkeep";
/// Runs per side of row 7.
const REPS: usize = 5;

/// One `[[targets.web.repository]]` table for `suite` of the mirror.
fn repository(suite: &str, dir: &str) -> String {
    format!(
        "[[targets.web.repository]]\ntype = \"apt\"\nurl = \"{MIRROR_URL}/{dir}\"\nsuite = \"{suite}\"\ncomponent = \"main\"\nkeyring = \"{GUEST_DIR}/{}\"\n",
        debian::KEYRING_NAME
    )
}

/// upkeep's configuration for nginx from both suites (as in
/// tests/e2e/distro.rs), health on [`URL`] with the default timeout and
/// settle window.
fn upkeep_toml() -> String {
    let list: Vec<String> = PACKAGES.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "[targets.web]\npackages = [{}]\nservices = [\"{SERVICE}\"]\n\n{}\n{}\n[targets.web.health]\nurl = \"{URL}\"\n",
        list.join(", "),
        repository(SECURITY_SUITE, "debian-security"),
        repository(SUITE, "debian"),
    )
}

/// A fresh container: the mirror's apt sources, nginx at the point release
/// installed by apt and answering, upkeep configured for it.
fn nginx_host(upkeep: &Path) -> Result<DebianHost, Fail> {
    let h = DebianHost::boot(upkeep)?;
    h.install_point_release(&PACKAGES)?;
    h.c.write("/etc/upkeep/upkeep.toml", upkeep_toml(), 0o644)?;
    h.c.wait_for(
        &["curl", "-sf", "-o", "/dev/null", URL],
        Duration::from_secs(10),
    )?;
    Ok(h)
}

/// The version of each of [`PACKAGES`] in `suite`.
fn versions(m: &DebianMirror, suite: &str) -> Result<Vec<String>, Fail> {
    PACKAGES
        .iter()
        .map(|p| {
            m.version(suite, p)
                .ok_or_else(|| Fail(format!("the mirror's {suite} index has no {p}")))
        })
        .collect()
}

/// Lines the mirror's HTTP server has logged so far (`journalctl -u
/// debian-mirror`).
fn server_log(c: &Container) -> Result<Vec<String>, Fail> {
    Ok(
        c.run(&["journalctl", "-q", "-o", "cat", "-u", "debian-mirror"])?
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// What one request of the server's log asked for: path and status
/// (`127.0.0.1 - - [date] "GET /debian/... HTTP/1.1" 200 -`).
fn request(line: &str) -> Option<(String, String)> {
    let (_, rest) = line.split_once("\"GET ")?;
    let (path, rest) = rest.split_once(' ')?;
    let status = rest.split_once("\" ")?.1.split_whitespace().next()?;
    Some((path.to_string(), status.to_string()))
}

/// A requested path as its index's name and size on the mirror: a
/// `by-hash/SHA256/…` path is the index it is a link to.
fn describe(m: &DebianMirror, path: &str, status: &str) -> String {
    let rel = path.trim_start_matches('/');
    let file = m.root.join(rel);
    let mut name = rel.to_string();
    if let (Some((dir, _)), Ok(meta)) = (rel.split_once("/by-hash/"), fs::metadata(&file)) {
        let linked = fs::read_dir(m.root.join(dir)).ok().and_then(|entries| {
            entries.flatten().find(|e| {
                e.metadata()
                    .is_ok_and(|x| x.is_file() && x.ino() == meta.ino())
            })
        });
        if let Some(e) = linked {
            name = format!("{dir}/{} (by hash)", e.file_name().to_string_lossy());
        }
    }
    match (status, fs::metadata(&file)) {
        ("200", Ok(meta)) => format!("`{name}` {:.2} MB", meta.len() as f64 / 1e6),
        _ => format!("`{name}` → {status}"),
    }
}

/// Runs `argv` once after removing `clear` (a `DIR/*` empties DIR) and says
/// which files the mirror served for it.
fn fetched(
    h: &DebianHost,
    clear: &[&str],
    steps: &[&[&str]],
    codes: &[i32],
) -> Result<String, Fail> {
    let before = server_log(&h.c)?.len();
    let spec = Spec::steps(steps).clear(clear).reps(1).expect(codes);
    crate::measure::measure_quietly(At::In(&h.c), "probe", spec)?;
    // The server's stderr reaches the journal asynchronously.
    std::thread::sleep(Duration::from_millis(300));
    let lines = server_log(&h.c)?;
    let requests: Vec<(String, String)> = lines
        .iter()
        .skip(before)
        .filter_map(|l| request(l))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = requests.iter().map(|(p, _)| p).collect();
    let asked: Vec<String> = requests
        .iter()
        .map(|(p, s)| describe(h.mirror, p, s))
        .collect();
    Ok(if asked.is_empty() {
        "no request".into()
    } else if distinct.len() < requests.len() {
        format!(
            "{} ({} requests for {} paths in one run: some asked for more than once)",
            asked.join(", "),
            requests.len(),
            distinct.len()
        )
    } else {
        asked.join(", ")
    })
}

/// The files under /var/lib/apt/lists after an `apt-get update`.
fn apt_lists(c: &Container) -> String {
    let mut names: Vec<String> = fs::read_dir(c.path("/var/lib/apt/lists"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.is_file()))
                .map(|e| {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!(
                        "`{}` {:.1} MB",
                        e.file_name().to_string_lossy(),
                        size as f64 / 1e6
                    )
                })
                .filter(|n| !n.starts_with("`lock`"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}

/// Row 1d: the update check on Debian's real indexes.
pub fn row_check(upkeep: &Path, r: &mut Report) -> Result<(), Fail> {
    let h = nginx_host(upkeep)?;
    let security = versions(h.mirror, SECURITY_SUITE)?;
    let point = versions(h.mirror, SUITE)?;
    let newest = security[0].clone();
    let at = At::In(&h.c);
    let check = [rig::UPKEEP, "check"];
    let update: [&str; 3] = ["apt-get", "-q", "update"];
    let list: [&str; 3] = ["apt", "list", "--upgradable"];
    let cache_all = format!("{CACHE}/*");
    let up_cold = measure(
        at,
        "upkeep check (cold), Debian's archive",
        Spec::one(&check)
            .clear(&[&cache_all])
            .warm()
            .expect(&[100])
            .contains(&newest),
    )?;
    let up_warm = measure(
        at,
        "upkeep check (warm), Debian's archive",
        Spec::one(&check).warm().expect(&[100]).contains(&newest),
    )?;
    let apt_cold = measure(
        at,
        "apt-get update && apt list --upgradable (cold)",
        Spec::steps(&[&update, &list])
            .clear(&["/var/lib/apt/lists/*"])
            .warm()
            .contains(&format!("{newest} amd64 [upgradable from: {}]", point[0])),
    )?;
    let apt_warm = measure(
        at,
        "apt-get update && apt list --upgradable (warm)",
        Spec::steps(&[&update, &list])
            .warm()
            .contains(&format!("{newest} amd64 [upgradable from: {}]", point[0])),
    )?;
    // What each side fetched, one untimed run each, read from the server's
    // log.
    let up_cold_files = fetched(&h, &[&cache_all], &[&check], &[100])?;
    let up_warm_files = fetched(&h, &[], &[&check], &[100])?;
    let apt_cold_files = fetched(&h, &["/var/lib/apt/lists/*"], &[&update], &[0])?;
    let lists = apt_lists(&h.c);
    let apt_warm_files = fetched(&h, &[], &[&update], &[0])?;
    drop(h);

    // Decompressing bookworm main's index alone, on the host (same files).
    let mirror = debian::mirror()?;
    let bin = mirror
        .archive_root(SUITE)
        .ok_or_else(|| Fail("no bookworm archive root".into()))?
        .join(format!("dists/{SUITE}/main/binary-amd64"));
    let gz_path = bin.join("Packages.gz").to_string_lossy().into_owned();
    let xz_path = bin.join("Packages.xz").to_string_lossy().into_owned();
    let gz_d = measure(
        At::Host,
        "gzip -dc bookworm main Packages.gz",
        Spec::one(&["gzip", "-dc", &gz_path]).discard(),
    )?;
    let xz_d = measure(
        At::Host,
        "xz -dc bookworm main Packages.xz",
        Spec::one(&["xz", "-dc", &xz_path]).discard(),
    )?;

    let cold_ratio = apt_cold.median_s / up_cold.median_s;
    let cold_met = cold_ratio >= 5.0;
    let warm_met = up_warm.median_s <= 0.020;
    r.push(
        Row::times(
            "1d. APT check, Debian's real archive (bookworm + bookworm-security), cold",
            &up_cold,
            &apt_cold,
        )
        .target("≥ 5× faster than apt", cold_met)
        .by_min(apt_cold.min_s >= 5.0 * up_cold.min_s),
    );
    r.push(
        Row::times(
            "1d. APT check, Debian's real archive (bookworm + bookworm-security), warm",
            &up_warm,
            &apt_warm,
        )
        .target("upkeep ≤ 20 ms", warm_met)
        .by_min(up_warm.min_s <= 0.020),
    );
    r.note(format!(
        "Row 1d: Debian's real bookworm and bookworm-security indexes (mirrored verbatim by the rig, Debian's signatures checked with the Debian archive keyring), nginx + nginx-common {} installed by apt, both tools finding {newest}. Cold ({}): upkeep {} against apt's {} ({cold_ratio:.1}×). upkeep fetched {up_cold_files}: of bookworm main it takes the Packages.gz its InRelease lists (it prefers .gz, which decompresses faster than .xz; bookworm-security lists only Packages.xz), decompresses it in-process and parses it as it streams. apt fetched {apt_cold_files}, decompressed every .xz and keeps {lists}. Decompressing bookworm main's index alone, on the host: `gzip -dc Packages.gz` {}, `xz -dc Packages.xz` {}. Warm ({}): upkeep {} ({:.0}× faster than apt's {}): its requests were {up_warm_files}; apt's `apt-get update` asked for {apt_warm_files}. Peak RSS: upkeep {} (cold), apt {} (cold).",
        point[0],
        met_text(cold_met),
        dur(up_cold.median_s),
        dur(apt_cold.median_s),
        cell(&gz_d),
        cell(&xz_d),
        met_text(warm_met),
        dur(up_warm.median_s),
        apt_warm.median_s / up_warm.median_s,
        dur(apt_warm.median_s),
        r.rss(&up_cold),
        r.rss(&apt_cold),
    ));
    r.breakdown("Debian's archive: `upkeep check`, cold", &up_cold);
    r.breakdown("Debian's archive: `upkeep check`, warm", &up_warm);
    r.breakdown(
        "Debian's archive: `gzip -dc` bookworm main Packages.gz (host)",
        &gz_d,
    );
    r.breakdown(
        "Debian's archive: `xz -dc` bookworm main Packages.xz (host)",
        &xz_d,
    );
    for (k, s) in [
        ("upkeep_cold", &up_cold),
        ("upkeep_warm", &up_warm),
        ("apt_cold", &apt_cold),
        ("apt_warm", &apt_warm),
        ("parts.gzip_decompress", &gz_d),
        ("parts.xz_decompress", &xz_d),
    ] {
        r.keep(&format!("debian_check.{k}"), s);
    }
    r.method.push(format!("Row 1d runs in a rig container whose apt knows only the rig's local mirror of Debian's archive (`{MIRROR_URL}`, served by `python3 -m http.server` inside the container): bookworm and bookworm-security, InRelease and indexes as Debian publishes them. nginx and nginx-common are installed by `apt-get install` at their bookworm versions; upkeep's target names both packages and both suites as two `[[targets.web.repository]]` tables (`type = \"apt\"`, the mirrored Debian keyring). Cold upkeep: everything under `{CACHE}` removed before each run; warm: what the previous run left there. apt: `apt-get -q update && apt list --upgradable` with the container's sources (the mirror's two suites only); cold: everything under `/var/lib/apt/lists` removed before each run. What each side fetched is read from the mirror server's log during one more untimed run of each."));
    Ok(())
}

/// Row 7: the downtime of a real nginx upgrade.
pub fn row_downtime(upkeep: &Path, r: &mut Report) -> Result<(), Fail> {
    let t = Instant::now();
    let mirror = debian::mirror()?;
    let security = versions(mirror, SECURITY_SUITE)?;
    let point = versions(mirror, SUITE)?;
    let pins: Vec<String> = PACKAGES
        .iter()
        .zip(&security)
        .map(|(p, v)| format!("{p}={v}"))
        .collect();
    let apt_install = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        v.extend(pins.iter().cloned());
        v
    };
    let argv = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let manual_action = vec![
        argv(&["systemctl", "stop", SERVICE]),
        apt_install(&[]),
        argv(&["systemctl", "start", SERVICE]),
    ];
    let spec = Spec::one(&[rig::UPKEEP, "upgrade", "--yes"]).reps(1);
    let mut reaper = Reaper::default();
    let (mut manual, mut up, mut runs, mut installs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut steps: Vec<Vec<(String, f64)>> = Vec::new();
    let check_upgraded = |h: &DebianHost, who: &str| -> Result<(), Fail> {
        for (p, v) in PACKAGES.iter().zip(&security) {
            let got = h.dpkg_version(p);
            if got.as_deref() != Some(v.as_str()) {
                return Err(Fail(format!("{who}: dpkg has {p} {got:?}, not {v}")));
            }
        }
        h.c.run(&["curl", "-sf", "-o", "/dev/null", URL])
            .map(|_| ())
            .map_err(|e| Fail(format!("{who}: nginx does not answer afterwards: {e}")))
    };
    for i in 0..REPS {
        // Alternate which side goes first.
        for manual_side in [i % 2 == 0, i % 2 == 1] {
            let h = nginx_host(upkeep)?;
            if manual_side {
                // The .debs into apt's cache first, untimed: downtime, not
                // download, is compared.
                let download = apt_install(&["--download-only"]);
                h.c.run(&download.iter().map(String::as_str).collect::<Vec<_>>())?;
                reaper.settle();
                let d = downtime_at(&h.c, URL, &manual_action)?;
                check_upgraded(&h, "manual upgrade")?;
                manual.push(d.seconds);
                installs.push(d.steps[1].1);
            } else {
                // upkeep downloads and verifies before it stops anything;
                // `upkeep plan` fills its cache first, untimed, as apt's is.
                h.c.run(&[rig::UPKEEP, "plan"])?;
                reaper.settle();
                let d = downtime_at(&h.c, URL, &[spec.helper_argv()])?;
                let run = spec.series("upkeep upgrade --yes", "container", &d.steps[0].0)?;
                check_upgraded(&h, "upkeep upgrade")?;
                steps.push(upkeep_steps_in(&h.c)?);
                up.push(d.seconds);
                runs.push(run);
            }
            reaper.drop_later(h);
        }
        println!(
            "      rep {}: manual {:.3} s (apt-get install {:.3} s), upkeep {:.3} s (its run {:.3} s, peak RSS {})",
            i + 1,
            manual[i],
            installs[i],
            up[i],
            runs[i].median_s,
            mib(runs[i].peak_rss_kib)
        );
    }
    reaper.settle();
    let manual_text = manual_action
        .iter()
        .map(|a| a.join(" "))
        .collect::<Vec<_>>()
        .join(" && ");
    let manual = Series::of_times(
        "systemctl stop nginx; apt-get install nginx=V nginx-common=V (debs already downloaded); systemctl start nginx",
        "container",
        &manual_text,
        manual,
    );
    let install = Series::of_times(
        "apt-get install (debs already downloaded)",
        "container",
        &apt_install(&[]).join(" "),
        installs,
    );
    let up = Series::of_times(
        "upkeep upgrade --yes (downtime)",
        "container",
        "upkeep upgrade --yes",
        up,
    );
    let up_runs = Series::merge("upkeep upgrade --yes (whole command)", &runs);
    let step_names: Vec<String> = steps
        .first()
        .map(|s| s.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let up_steps = step_names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let v: Vec<f64> = steps.iter().filter_map(|s| s.get(k).map(|x| x.1)).collect();
            format!("{name} {}", dur(crate::measure::median(&v) / 1e3))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let settle = humantime::format_duration(upkeep::health::SETTLE);
    r.push(Row::times(
        "7. downtime of a real nginx upgrade (Debian bookworm → bookworm-security, debs already downloaded)",
        &up,
        &manual,
    ));
    r.push(Row::new(
        "7. whole `upkeep upgrade --yes` of nginx (debs already in its cache; default health settle)",
        cell(&up_runs),
        Some(up_runs.median_s),
        "s",
    ));
    r.note(format!(
        "Row 7 (no target: the manual procedure here takes no backup, so row 3's limit does not apply): nginx + nginx-common {} → {} from Debian's real archive (the rig's mirror), a fresh container per run ({REPS} runs a side), nginx answering 200 on {URL} before. upkeep's downtime {} against {} by hand ({:.2}×, medians). By hand, the .debs were already in apt's cache (`apt-get install --download-only` first, untimed) and upkeep's in its own (`upkeep plan` first, untimed), so both sides measure downtime, not download. The manual `apt-get install` itself took {}, longer than the downtime: nginx answers again before apt-get returns (its postinst starts the unit, then apt goes on with the rest), so the manual `systemctl start` finds it running. upkeep's steps (median, from its own history): {up_steps}. The whole `upkeep upgrade --yes` took {} (peak RSS {}), most of it the health gate after nginx is back: unit active, {URL} 2xx and no error or restart for the default settle window of {settle} (`[targets.web.health]` sets only `url`), which is not downtime.",
        point[0],
        security[0],
        dur(up.median_s),
        dur(manual.median_s),
        manual.median_s / up.median_s,
        cell(&install),
        cell(&up_runs),
        mib(up_runs.peak_rss_kib),
    ));
    r.keep("debian_downtime.manual", &manual);
    r.keep("debian_downtime.manual_apt_install", &install);
    r.keep("debian_downtime.upkeep", &up);
    r.keep("debian_downtime.upkeep_command", &up_runs);
    println!("    row 7 took {:.0} s", t.elapsed().as_secs_f64());
    r.method.push(format!("Row 7: downtime is what a client sees, measured inside the container by the same Python poller as row 3 (`{PYTHON}`, a request every 5 ms), here on `{URL}`, from its first failure to the next 200. Each run gets a fresh container with only the rig's Debian mirror as apt source and nginx + nginx-common installed by `apt-get install` at their bookworm versions. By hand: `apt-get install --download-only` of the bookworm-security versions (untimed), then `systemctl stop {SERVICE}`, `apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nginx=V nginx-common=V` (DEBIAN_FRONTEND=noninteractive), `systemctl start {SERVICE}`, each through `nsenter`. upkeep: `upkeep plan` (untimed: it downloads and verifies the packages), then `upkeep upgrade --yes` under the poller, started by the timing wrapper, with the target of row 1d (both suites; health: `url` only, default timeout and settle). The side that goes first alternates from one repetition to the next."));
    Ok(())
}
