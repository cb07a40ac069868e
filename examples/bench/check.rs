//! Row 1: the update check. 1a the fixture APT repository, 1b the same with
//! a Debian-sized index (both in a container, against `apt-get update && apt
//! list --upgradable`), 1c the fixture YUM repository on the host against
//! `dnf check-update`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::measure::{At, Server, Spec, dur, host_config, measure, mib};
use crate::report::{Report, Row, met_text};
use crate::rig::fixtures::{COMPONENT, SUITE};
use crate::rig::{self, Fail, HostSpec, PortalHost};

/// upkeep's metadata cache inside the containers.
const METADATA_CACHE: &str = "/var/cache/upkeep/metadata";
/// apt pointed at the fixture source only (as `PortalHost::install` does).
pub const APT_ONLY: [&str; 4] = [
    "-o",
    "Dir::Etc::SourceList=/dev/null",
    "-o",
    "Dir::Etc::SourceParts=/etc/upkeep-rig/apt",
];

fn upkeep_check() -> Vec<&'static str> {
    vec![rig::UPKEEP, "check"]
}

fn apt_update() -> Vec<&'static str> {
    let mut v = vec!["apt-get"];
    v.extend(APT_ONLY);
    v.extend(["-q", "update"]);
    v
}

fn apt_list() -> Vec<&'static str> {
    let mut v = vec!["apt"];
    v.extend(APT_ONLY);
    v.extend(["list", "--upgradable"]);
    v
}

/// A container serving `repo_root` (default: the fixtures'), with portal
/// 1.0.0 installed and apt pointed at the fixture source only.
pub fn apt_host(upkeep: &Path, repo_root: Option<PathBuf>) -> Result<PortalHost, Fail> {
    let h = PortalHost::boot(HostSpec {
        family: rig::Family::Deb,
        repo_root,
        upkeep: upkeep.to_path_buf(),
    })?;
    h.install_with_dpkg("1.0.0")?;
    h.c.write(
        "/etc/upkeep-rig/apt/portal.sources",
        format!(
            "Types: deb\nURIs: {}\nSuites: {SUITE}\nComponents: {COMPONENT}\nSigned-By: /etc/upkeep/keys/portal.asc\n",
            rig::REPO_URL
        ),
        0o644,
    )?;
    Ok(h)
}

/// The host's own Debian main Packages list, decompressed.
pub fn host_debian_packages(arch: &str) -> Result<Vec<u8>, Fail> {
    let lists = Path::new("/var/lib/apt/lists");
    let suffix = format!("_bookworm_main_binary-{arch}_Packages");
    let mut found: Vec<PathBuf> = fs::read_dir(lists)
        .map_err(Fail::io("/var/lib/apt/lists"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("{suffix}.lz4")) || n.ends_with(&suffix))
        })
        .collect();
    found.sort();
    let path = found.into_iter().next().ok_or_else(|| {
        Fail(format!(
            "no /var/lib/apt/lists/*{suffix}[.lz4] on this host: run apt-get update first"
        ))
    })?;
    if path.extension().is_some_and(|e| e == "lz4") {
        let out = Command::new("lz4")
            .arg("-dc")
            .arg(&path)
            .output()
            .map_err(Fail::io("run lz4 (apt-get install lz4)"))?;
        if !out.status.success() {
            return Err(Fail(format!(
                "lz4 -dc {}: {}",
                path.display(),
                rig::show(&out)
            )));
        }
        Ok(out.stdout)
    } else {
        fs::read(&path).map_err(Fail::io("read the host's Packages list"))
    }
}

/// Installs the host packages the bench needs beyond the rig's (dnf).
pub fn ensure_dnf() -> Result<(), Fail> {
    if rig::which("dnf").is_some() {
        return Ok(());
    }
    println!("    installing dnf on the host (apt-get install -y dnf)");
    let install = || {
        rig::cmd_ok(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "dnf"]),
        )
    };
    if install().is_err() {
        rig::cmd_ok(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    Ok(())
}

/// The four measurements of an APT update check: upkeep and apt, cold and
/// warm.
struct AptCheck {
    up_cold: crate::measure::Series,
    up_warm: crate::measure::Series,
    apt_cold: crate::measure::Series,
    apt_warm: crate::measure::Series,
}

fn measure_apt_check(h: &PortalHost, newest: &str) -> Result<AptCheck, Fail> {
    let at = At::In(&h.c);
    let check = upkeep_check();
    let update = apt_update();
    let list = apt_list();
    let up_cold = measure(
        at,
        "upkeep check (cold)",
        Spec::one(&check)
            .clear(&[METADATA_CACHE])
            .warm()
            .expect(&[100])
            .contains(newest),
    )?;
    let up_warm = measure(
        at,
        "upkeep check (warm)",
        Spec::one(&check).warm().expect(&[100]).contains(newest),
    )?;
    let apt_cold = measure(
        at,
        "apt-get update && apt list --upgradable (cold)",
        Spec::steps(&[&update, &list])
            .clear(&["/var/lib/apt/lists/*"])
            .warm()
            .contains(&format!("portal/{SUITE} {newest}")),
    )?;
    let apt_warm = measure(
        at,
        "apt-get update && apt list --upgradable (warm)",
        Spec::steps(&[&update, &list])
            .warm()
            .contains(&format!("portal/{SUITE} {newest}")),
    )?;
    Ok(AptCheck {
        up_cold,
        up_warm,
        apt_cold,
        apt_warm,
    })
}

/// The pieces of a check, each measured on its own in the container.
struct Parts {
    start: crate::measure::Series,
    dpkg: crate::measure::Series,
    curl: crate::measure::Series,
}

/// What a check is made of, measured piece by piece in the container: the
/// process start, the dpkg process upkeep runs, and fetching the metadata
/// (one curl process, one connection, as upkeep does it).
fn measure_check_parts(h: &PortalHost, arch: &str) -> Result<Parts, Fail> {
    let at = At::In(&h.c);
    let start = measure(
        at,
        "upkeep --version",
        Spec::one(&[rig::UPKEEP, "--version"]),
    )?;
    // The one dpkg process upkeep starts: it reads the installed version
    // from /var/lib/dpkg/status itself.
    let dpkg = measure(
        at,
        "dpkg --print-architecture",
        Spec::one(&["dpkg", "--print-architecture"]),
    )?;
    let base = format!("{}/dists/{SUITE}", rig::REPO_URL);
    let in_release = format!("{base}/InRelease");
    let packages = format!("{base}/{COMPONENT}/binary-{arch}/Packages.xz");
    let curl = measure(
        at,
        "curl InRelease Packages.xz (one process)",
        Spec::one(&[
            "curl",
            "-sSf",
            "-o",
            "/dev/null",
            &in_release,
            "-o",
            "/dev/null",
            &packages,
        ]),
    )?;
    Ok(Parts { start, dpkg, curl })
}

fn keep_all(r: &mut Report, prefix: &str, m: &AptCheck, p: &Parts) {
    for (k, s) in [
        ("upkeep_cold", &m.up_cold),
        ("upkeep_warm", &m.up_warm),
        ("apt_cold", &m.apt_cold),
        ("apt_warm", &m.apt_warm),
        ("parts.process_start", &p.start),
        ("parts.dpkg_architecture", &p.dpkg),
        ("parts.curl_metadata", &p.curl),
    ] {
        r.keep(&format!("{prefix}.{k}"), s);
    }
}

fn breakdown_check(r: &mut Report, what: &str, m: &AptCheck, p: &Parts) {
    r.breakdown(&format!("{what}: `upkeep check`, cold"), &m.up_cold);
    r.breakdown(&format!("{what}: `upkeep check`, warm"), &m.up_warm);
    r.breakdown(
        &format!("{what}: `upkeep --version` (process start)"),
        &p.start,
    );
    r.breakdown(
        &format!(
            "{what}: `dpkg --print-architecture` (upkeep runs it, and reads the installed version from /var/lib/dpkg/status)"
        ),
        &p.dpkg,
    );
    r.breakdown(
        &format!("{what}: `curl` of InRelease + Packages.xz, one process"),
        &p.curl,
    );
}

/// Row 1a: the fixture repository.
pub fn row_apt_small(upkeep: &Path, arch: &str, newest: &str, r: &mut Report) -> Result<(), Fail> {
    let h = apt_host(upkeep, None)?;
    let apt_version =
        h.c.run(&["apt", "--version"])
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_string();
    let m = measure_apt_check(&h, newest)?;
    let p = measure_check_parts(&h, arch)?;
    drop(h);

    let cold_ratio = m.apt_cold.median_s / m.up_cold.median_s;
    let cold_met = cold_ratio >= 5.0;
    let warm_met = m.up_warm.median_s <= 0.020;
    r.push(
        Row::times("1a. APT check, small repo, cold", &m.up_cold, &m.apt_cold)
            .target("≥ 5× faster than apt", cold_met)
            .by_min(m.apt_cold.min_s >= 5.0 * m.up_cold.min_s),
    );
    r.push(
        Row::times("1a. APT check, small repo, warm", &m.up_warm, &m.apt_warm)
            .target("upkeep ≤ 20 ms", warm_met)
            .by_min(m.up_warm.min_s <= 0.020),
    );
    let rest = m.up_warm.median_s - p.start.median_s - p.dpkg.median_s;
    r.note(format!(
        "Row 1a, cold ({}): upkeep {} against apt's {} (medians), {cold_ratio:.1}× faster. Warm ({}): {}. Containers: apt {apt_version} (Debian bookworm root filesystem), portal 1.0.0 installed with dpkg; both tools find 2.1.0-1. Of a warm check, starting the process takes {} and `dpkg --print-architecture` {} ({:.0} %; the installed version upkeep reads from /var/lib/dpkg/status itself, dpkg-query being asked only when that file cannot settle it); the other ~{} are the HTTP requests, the OpenPGP check and reading the index (or, warm, what upkeep cached from it), the installed version read meanwhile. A cold check costs about what a warm one does here: the fixture's files are a few kB.",
        met_text(cold_met),
        dur(m.up_cold.median_s),
        dur(m.apt_cold.median_s),
        met_text(warm_met),
        dur(m.up_warm.median_s),
        dur(p.start.median_s),
        dur(p.dpkg.median_s),
        100.0 * p.dpkg.median_s / m.up_warm.median_s,
        dur(rest.max(0.0)),
    ));
    breakdown_check(r, "small repo", &m, &p);
    keep_all(r, "apt_small", &m, &p);
    r.method.push("Rows 1a and 1b run inside throwaway systemd-nspawn containers of the test rig (Debian bookworm, `--volatile=overlay`, private network), with the signed repository served by `python3 -m http.server` on the container's loopback and portal 1.0.0 installed, so that both tools find 2.1.0-1. upkeep is the release binary bound into the container. Cold upkeep: `/var/cache/upkeep/metadata` removed before each run; warm: it holds what the previous run left there. apt: `apt-get update && apt list --upgradable`, both with `-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/etc/upkeep-rig/apt` (only the fixture source); cold: everything under `/var/lib/apt/lists` removed before each run.".into());
    Ok(())
}

/// Appends `portal` (the fixture's paragraphs) to `text` (a Debian list),
/// writes `Packages` and the compressed forms `exts` (`gz` at -9, `xz` at
/// `xz_preset`) into `bin`.
pub fn write_packages(
    bin: &Path,
    mut text: Vec<u8>,
    portal: &[u8],
    exts: &[&str],
    xz_preset: &str,
) -> Result<(), Fail> {
    while text.last() == Some(&b'\n') {
        text.pop();
    }
    text.extend_from_slice(b"\n\n");
    text.extend_from_slice(portal);
    for ext in ["gz", "xz"] {
        let _ = fs::remove_file(bin.join(format!("Packages.{ext}")));
    }
    fs::write(bin.join("Packages"), &text).map_err(Fail::io("write Packages"))?;
    drop(text);
    // gzip and xz at once: two cores.
    let gzip = if exts.contains(&"gz") {
        Some(
            Command::new("gzip")
                .arg("-9nkf")
                .arg(bin.join("Packages"))
                .spawn()
                .map_err(Fail::io("gzip"))?,
        )
    } else {
        None
    };
    let xz = if exts.contains(&"xz") {
        rig::cmd_ok(
            Command::new("xz")
                .args(["-T0", xz_preset, "-kf"])
                .arg(bin.join("Packages")),
        )
    } else {
        Ok(())
    };
    if let Some(mut gzip) = gzip {
        let status = gzip.wait().map_err(Fail::io("gzip"))?;
        if !status.success() {
            return Err(Fail(format!("gzip -9nkf Packages: {status}")));
        }
    }
    xz
}

/// Builds the Debian-sized copy of the fixture APT repository under `root`.
fn build_big_apt_repo(f: &rig::Fixtures, root: &Path) -> Result<usize, Fail> {
    fs::create_dir_all(root).map_err(Fail::io("big repo dir"))?;
    rig::cmd_ok(
        Command::new("cp")
            .arg("-a")
            .arg(f.repo_root.join("debian"))
            .arg(root.join("debian")),
    )?;
    let debian = root.join("debian");
    let bin = debian.join(format!("dists/{SUITE}/{COMPONENT}/binary-{}", f.arch));
    let portal = fs::read(bin.join("Packages")).map_err(Fail::io("fixture Packages"))?;
    let host = host_debian_packages(&f.arch)?;
    let paragraphs = host
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"Package: "))
        .count();
    write_packages(&bin, host, &portal, &["gz", "xz"], "-6")?;
    rig::fixtures::write_apt_release(&debian, &f.arch)?;
    rig::fixtures::sign_apt_release(&debian, &f.gnupg)?;
    Ok(paragraphs)
}

/// Row 1b: a Debian-sized index.
pub fn row_apt_big(
    upkeep: &Path,
    f: &rig::Fixtures,
    work: &Path,
    newest: &str,
    r: &mut Report,
) -> Result<(), Fail> {
    let root = work.join("big-apt");
    let t = Instant::now();
    let paragraphs = build_big_apt_repo(f, &root)?;
    let bin = root.join(format!(
        "debian/dists/{SUITE}/{COMPONENT}/binary-{}",
        f.arch
    ));
    let size = |name: &str| fs::metadata(bin.join(name)).map(|m| m.len()).unwrap_or(0);
    let (plain, gz, xz) = (size("Packages"), size("Packages.gz"), size("Packages.xz"));
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "    built in {:.1} s: {paragraphs} Debian paragraphs + portal's; Packages {:.1} MB, .gz {:.1} MB, .xz {:.1} MB",
        t.elapsed().as_secs_f64(),
        mb(plain),
        mb(gz),
        mb(xz)
    );
    let h = apt_host(upkeep, Some(root.clone()))?;
    let m = measure_apt_check(&h, newest)?;
    let p = measure_check_parts(&h, &f.arch)?;
    drop(h);
    // Decompression alone, on the host (same machine, same files).
    let xz_path = bin.join("Packages.xz").to_string_lossy().into_owned();
    let gz_path = bin.join("Packages.gz").to_string_lossy().into_owned();
    let xz_d = measure(
        At::Host,
        "xz -dc Packages.xz",
        Spec::one(&["xz", "-dc", &xz_path]).discard(),
    )?;
    let gz_d = measure(
        At::Host,
        "gzip -dc Packages.gz",
        Spec::one(&["gzip", "-dc", &gz_path]).discard(),
    )?;
    fs::remove_dir_all(&root).map_err(Fail::io("remove the big repo"))?;

    let cold_ratio = m.apt_cold.median_s / m.up_cold.median_s;
    let cold_met = cold_ratio >= 5.0;
    let warm_met = m.up_warm.median_s <= 0.020;
    r.push(
        Row::times(
            "1b. APT check, Debian-sized index, cold",
            &m.up_cold,
            &m.apt_cold,
        )
        .target("≥ 5× faster than apt", cold_met)
        .by_min(m.apt_cold.min_s >= 5.0 * m.up_cold.min_s),
    );
    r.push(
        Row::times(
            "1b. APT check, Debian-sized index, warm",
            &m.up_warm,
            &m.apt_warm,
        )
        .target("upkeep ≤ 20 ms", warm_met)
        .by_min(m.up_warm.min_s <= 0.020),
    );
    let up = if m.up_cold.peak_rss_kib >= m.up_warm.peak_rss_kib {
        &m.up_cold
    } else {
        &m.up_warm
    };
    let apt = if m.apt_cold.peak_rss_kib >= m.apt_warm.peak_rss_kib {
        &m.apt_cold
    } else {
        &m.apt_warm
    };
    let rss_met = up.peak_rss_kib <= 40 * 1024;
    r.push(
        Row::new(
            "1b. peak RSS, Debian-sized index",
            format!(
                "{} (cold {}, warm {})",
                r.rss(up),
                mib(m.up_cold.peak_rss_kib),
                mib(m.up_warm.peak_rss_kib)
            ),
            Some(up.peak_rss_kib as f64 / 1024.0),
            "MiB",
        )
        .versus(
            format!("apt-get update / apt list: {}", r.rss(apt)),
            apt.peak_rss_kib as f64 / 1024.0,
        )
        .target("upkeep ≤ 40 MiB", rss_met),
    );
    let rest =
        m.up_cold.median_s - xz_d.median_s - p.curl.median_s - p.dpkg.median_s - p.start.median_s;
    let small_warm = r
        .series
        .get("apt_small.upkeep_warm")
        .map(|s| dur(s.median_s))
        .unwrap_or_else(|| "~13 ms".into());
    r.note(format!(
        "Row 1b's index: the host's bookworm main list ({paragraphs} paragraphs) followed by portal's; Packages {:.1} MB, Packages.gz {:.1} MB, Packages.xz {:.1} MB (xz -6; both apt and upkeep fetch the .xz). Cold ({}): upkeep {} against apt's {} ({cold_ratio:.1}×). A cold check decompresses and parses the whole index: `xz -dc` of the same Packages.xz alone takes {} ({:.0} % of upkeep's cold median); fetching both files takes {}, `dpkg --print-architecture` {}, starting the process {}; {}. upkeep's CPU time, {}, is about its wall time: it is single-threaded here. Warm ({}): upkeep {}, {:.0}× faster than apt's warm run ({}) and {:.0}× faster than its own cold check: the signed Release names the same SHA-256 for Packages.xz as last time, so upkeep reuses the entries it extracted then (the small repository's warm check takes {small_warm}). Peak RSS ({}): upkeep {} at most, apt {}.",
        mb(plain),
        mb(gz),
        mb(xz),
        met_text(cold_met),
        dur(m.up_cold.median_s),
        dur(m.apt_cold.median_s),
        dur(xz_d.median_s),
        100.0 * xz_d.median_s / m.up_cold.median_s,
        dur(p.curl.median_s),
        dur(p.dpkg.median_s),
        dur(p.start.median_s),
        if rest > 0.0 {
            format!(
                "the rest, ~{}, is the SHA-256 of the file, the metadata cache and the parse of {paragraphs} paragraphs",
                dur(rest)
            )
        } else {
            "together with `xz -dc` that is more than upkeep's whole check: the xz tool also writes 50 MB into a pipe, while upkeep decompresses in-process and parses as it goes".to_string()
        },
        dur(m.up_cold.cpu_s()),
        met_text(warm_met),
        dur(m.up_warm.median_s),
        m.apt_warm.median_s / m.up_warm.median_s,
        dur(m.apt_warm.median_s),
        m.up_cold.median_s / m.up_warm.median_s,
        met_text(rss_met),
        mib(up.peak_rss_kib),
        mib(apt.peak_rss_kib),
    ));
    breakdown_check(r, "Debian-sized index", &m, &p);
    r.breakdown("Debian-sized index: `xz -dc Packages.xz` (host)", &xz_d);
    r.breakdown("Debian-sized index: `gzip -dc Packages.gz` (host)", &gz_d);
    keep_all(r, "apt_big", &m, &p);
    r.keep("apt_big.parts.xz_decompress", &xz_d);
    r.keep("apt_big.parts.gzip_decompress", &gz_d);
    r.method.push("Row 1b appends the host's real Debian package list (`/var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages.lz4`) to the fixture's Packages, compresses it with gzip -9 and xz, writes Release with `apt-ftparchive release` and signs it with the fixtures' key.".into());
    Ok(())
}

/// Row 1c: the fixture YUM repository, served on the host's loopback.
pub fn row_yum(upkeep: &Path, f: &rig::Fixtures, work: &Path, r: &mut Report) -> Result<(), Fail> {
    let newest = f.newest().version.clone();
    let server = Server::start(&f.repo_root)?;
    let url = server.url("rpm");
    let dir = work.join("yum");
    let root = dir.join("installroot");
    let cache = dir.join("dnf-cache");
    fs::create_dir_all(&root).map_err(Fail::io("installroot"))?;
    // portal 1.0.0 in the installroot's rpm database (files not needed), so
    // that check-update has something to compare against.
    rig::cmd_ok(
        Command::new("rpm")
            .env("HOME", "/root")
            .arg(format!("--root={}", root.display()))
            .args(["-i", "--justdb", "--nodeps", "--noscripts"])
            .arg(&f.rpms[0]),
    )?;
    let root_arg = format!("--installroot={}", root.display());
    let repo_arg = format!("--repofrompath=portal,{url}");
    let key_arg = format!("--setopt=portal.gpgkey=file://{}", f.keyring.display());
    let cache_arg = format!("--setopt=cachedir={}", cache.display());
    let dnf = [
        "dnf",
        "-y",
        &root_arg,
        "--releasever=1",
        "--disablerepo=*",
        &repo_arg,
        "--setopt=portal.gpgcheck=0",
        "--setopt=portal.repo_gpgcheck=1",
        &key_arg,
        &cache_arg,
        "check-update",
    ];
    let cache_text = cache.to_string_lossy().into_owned();
    // dnf also creates the cache path inside the installroot.
    let cache_in_root = root
        .join(cache.strip_prefix("/").unwrap_or(&cache))
        .to_string_lossy()
        .into_owned();
    let dnf_cold = measure(
        At::Host,
        "dnf check-update (cold: fresh cachedir)",
        Spec::one(&dnf)
            .clear(&[&cache_text, &cache_in_root])
            .warm()
            .expect(&[100])
            .contains(&newest),
    )?;
    let dnf_warm = measure(
        At::Host,
        "dnf check-update (warm)",
        Spec::one(&dnf).warm().expect(&[100]).contains(&newest),
    )?;
    r.keep("yum.dnf_cold", &dnf_cold);
    r.keep("yum.dnf_warm", &dnf_warm);

    // upkeep on the host, with a configuration of its own.
    let config = host_config(
        &dir.join("upkeep"),
        "portal",
        &format!(
            "type = \"yum\"\nurl = \"{url}\"\nkeyring = \"{}\"",
            f.keyring.display()
        ),
    )?;
    let metadata = dir
        .join("upkeep/cache/metadata")
        .to_string_lossy()
        .into_owned();
    let upkeep_text = upkeep.to_string_lossy().into_owned();
    let check = [upkeep_text.as_str(), "--config", &config, "check"];
    let up_cold = measure(
        At::Host,
        "upkeep check, yum (cold)",
        Spec::one(&check)
            .clear(&[&metadata])
            .warm()
            .expect(&[100])
            .contains(&newest),
    )?;
    let up_warm = measure(
        At::Host,
        "upkeep check, yum (warm)",
        Spec::one(&check).warm().expect(&[100]).contains(&newest),
    )?;
    drop(server);
    let rpm = measure(
        At::Host,
        "rpm --eval %{_arch} && rpm -q portal",
        Spec::steps(&[
            &["rpm", "--eval", "%{_arch}"],
            &["rpm", "-q", "--", "portal"],
        ])
        .expect(&[0, 1]),
    )?;
    let cold_ratio = dnf_cold.median_s / up_cold.median_s;
    let cold_met = cold_ratio >= 5.0;
    let warm_met = up_warm.median_s <= 0.020;
    r.push(
        Row::times("1c. YUM check, cold", &up_cold, &dnf_cold)
            .target("≥ 5× faster than dnf", cold_met)
            .by_min(dnf_cold.min_s >= 5.0 * up_cold.min_s),
    );
    r.push(
        Row::times("1c. YUM check, warm", &up_warm, &dnf_warm)
            .target("upkeep ≤ 20 ms", warm_met)
            .by_min(up_warm.min_s <= 0.020),
    );
    r.note(format!(
        "Row 1c runs on the host, upkeep with a configuration of its own (state and cache in a temporary directory). The host's rpm database has no portal, so upkeep reports {newest} as available over nothing installed, while dnf compares with 1.0.0 in its installroot; both fetch repomd.xml, check its signature and read the primary metadata. dnf also fetches filelists.xml.gz and builds its solv cache; warm, dnf makes no request at all (its metadata has not expired) while upkeep makes conditional ones. upkeep is {cold_ratio:.1}× faster cold ({}) and {:.1}× warm ({}: {}); of its warm {}, the two rpm queries it runs (`rpm --eval %{{_arch}}`, `rpm -q portal`) take {}. It peaks at {} against dnf's {}.",
        met_text(cold_met),
        dnf_warm.median_s / up_warm.median_s,
        met_text(warm_met),
        dur(up_warm.median_s),
        dur(up_warm.median_s),
        dur(rpm.median_s),
        r.rss(&up_cold),
        r.rss(&dnf_cold),
    ));
    r.breakdown("YUM (host): `upkeep check`, cold", &up_cold);
    r.breakdown(
        "YUM (host): `rpm --eval %{_arch}` + `rpm -q portal` (upkeep runs both)",
        &rpm,
    );
    r.breakdown("YUM (host): `dnf check-update`, cold", &dnf_cold);
    r.keep("yum.parts.rpm_queries", &rpm);
    r.keep("yum.upkeep_cold", &up_cold);
    r.keep("yum.upkeep_warm", &up_warm);
    r.method.push("Row 1c runs on the host against the fixture YUM repository on the host's loopback: `dnf -y --installroot=TMP --releasever=1 --disablerepo=* --repofrompath=portal,URL --setopt=portal.gpgcheck=0 --setopt=portal.repo_gpgcheck=1 --setopt=portal.gpgkey=file://KEY --setopt=cachedir=TMP check-update`, with portal 1.0.0 in the installroot's rpm database (`rpm --root -i --justdb`). repomd.xml's signature is checked, as upkeep checks it. Cold: a fresh cachedir (the key is imported again); warm: dnf's metadata has not expired, so it makes no request at all.".into());
    Ok(())
}
