//! The benchmark: upkeep against the tools an operator would otherwise use,
//! measured in one run on the same machine, with ratios.
//!
//! 1. update check on the fixture APT repository: `upkeep check` against
//!    `apt-get update && apt list --upgradable`, cold and warm, in a
//!    throwaway systemd container;
//! 2. the same against a copy of the repository whose `Packages` index also
//!    holds the host's real Debian package list (~60,000 paragraphs), with
//!    upkeep's peak RSS;
//! 3. update check on the fixture YUM repository against `dnf check-update`
//!    on the host (upkeep's side is "pending" while its YUM support is not
//!    in);
//! 4. download and verify a 1 GiB package: upkeep against `curl`, and
//!    against `curl` followed by `sha256sum`, with upkeep's peak RSS.
//!
//! Every command is timed by a small Python wrapper that runs it as an
//! argument vector (never a shell string) and reads its peak RSS from
//! `wait4`. The results go to `BENCHMARKS.md` and `bench/results.json`.
//!
//! Run as root: `cargo run --release --example bench`

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use rig::fixtures::{COMPONENT, SUITE};
use rig::{Container, Fail, HostSpec, PortalHost};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the temporary files go: one disk filesystem for every row (never
/// tmpfs for one side and disk for the other).
const WORK_PARENT: &str = "/var/tmp";
/// The interpreter that runs the timing wrapper, on the host and in the
/// containers.
const PYTHON: &str = "/usr/bin/python3";
/// PATH for every measured command.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// upkeep's metadata cache inside the containers.
const METADATA_CACHE: &str = "/var/cache/upkeep/metadata";
/// apt pointed at the fixture source only (as `PortalHost::install` does).
const APT_ONLY: [&str; 4] = [
    "-o",
    "Dir::Etc::SourceList=/dev/null",
    "-o",
    "Dir::Etc::SourceParts=/etc/upkeep-rig/apt",
];
/// The size of the package of row 4.
const BIG_SIZE: u64 = 1 << 30;

/// Times a series of runs of one or more commands (run one after the other
/// in each run) and prints JSON: wall times, exit codes, CPU times, and each
/// run's peak RSS from `wait4` (the counter
/// `getrusage(RUSAGE_CHILDREN).ru_maxrss` reports, but per run). `clear` paths are removed before each run,
/// untimed (`DIR/*`: the entries of DIR). Without a fixed `reps`, a series
/// has 7 runs when one takes under a second, 5 under five seconds, else 3.
/// It also reports the peak RSS of `true` started the same way: a child
/// starts as a copy of the Python process and Linux keeps that high-water
/// mark across exec, so no command can show less.
const HELPER: &str = r##"
import json, os, resource, shutil, subprocess, sys, tempfile, time

spec = json.loads(sys.argv[1])

def clear():
    for p in spec["clear"]:
        if p.endswith("/*"):
            d = p[:-2]
            paths = [os.path.join(d, n) for n in os.listdir(d)] if os.path.isdir(d) else []
        else:
            paths = [p]
        for q in paths:
            if os.path.isdir(q) and not os.path.islink(q):
                shutil.rmtree(q)
            elif os.path.lexists(q):
                os.unlink(q)

def once():
    clear()
    files = [None if spec["discard"] else (tempfile.TemporaryFile(), tempfile.TemporaryFile())
             for _ in spec["steps"]]
    codes, rss, user, system = [], [], 0.0, 0.0
    start = time.perf_counter()
    for argv, f in zip(spec["steps"], files):
        out, err = f if f else (subprocess.DEVNULL, subprocess.DEVNULL)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=spec["env"])
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        codes.append(p.returncode)
        rss.append(usage.ru_maxrss)
        user += usage.ru_utime
        system += usage.ru_stime
    elapsed = time.perf_counter() - start
    texts = []
    for f in files:
        pair = []
        for h in (f or ()):
            h.seek(0)
            pair.append(h.read()[-6000:].decode("utf-8", "replace"))
            h.close()
        texts.append(pair or ["", ""])
    return elapsed, codes, max(rss), texts, user, system

for _ in range(spec["warmup"]):
    once()
runs = [once()]
n = spec["reps"] or (7 if runs[0][0] < 1 else 5 if runs[0][0] < 5 else 3)
while len(runs) < n:
    runs.append(once())
# The floor: what a command that uses no memory shows, started the same way.
p = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, env=spec["env"])
_, status, usage = os.wait4(p.pid, 0)
p.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({
    "floor_kib": usage.ru_maxrss,
    "times": [r[0] for r in runs],
    "codes": [r[1] for r in runs],
    "rss_kib": [r[2] for r in runs],
    "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "last": runs[-1][3],
    "user": [r[4] for r in runs],
    "sys": [r[5] for r in runs],
}))
"##;

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------

/// What to measure: the commands of one run, what to remove before each
/// run, and what a good run looks like.
#[derive(Serialize)]
struct Spec {
    steps: Vec<Vec<String>>,
    clear: Vec<String>,
    warmup: u32,
    reps: Option<u32>,
    discard: bool,
    env: BTreeMap<&'static str, &'static str>,
    /// Expected exit code of each step.
    #[serde(skip)]
    expect: Vec<i32>,
    /// Text the last step's stdout must hold.
    #[serde(skip)]
    contains: Option<String>,
}

impl Spec {
    /// One command per run, expected to exit 0.
    fn one(argv: &[&str]) -> Spec {
        Spec::steps(&[argv])
    }

    /// Several commands per run, one after the other, each expected to exit 0.
    fn steps(steps: &[&[&str]]) -> Spec {
        Spec {
            steps: steps
                .iter()
                .map(|s| s.iter().map(|a| a.to_string()).collect())
                .collect(),
            clear: Vec::new(),
            warmup: 0,
            reps: None,
            discard: false,
            env: BTreeMap::from([("PATH", PATH), ("LANG", "C.UTF-8"), ("HOME", "/root")]),
            expect: vec![0; steps.len()],
            contains: None,
        }
    }

    /// Removes these before each run (untimed); `DIR/*` empties DIR.
    fn clear(mut self, paths: &[&str]) -> Spec {
        self.clear = paths.iter().map(|p| p.to_string()).collect();
        self
    }

    /// One untimed run first (to fill caches for a warm measurement).
    fn warm(mut self) -> Spec {
        self.warmup = 1;
        self
    }

    /// The expected exit codes, one per step.
    fn expect(mut self, codes: &[i32]) -> Spec {
        self.expect = codes.to_vec();
        self
    }

    /// The last step's stdout must contain `text`.
    fn contains(mut self, text: &str) -> Spec {
        self.contains = Some(text.to_string());
        self
    }

    /// Output goes to /dev/null (for commands that print a lot).
    fn discard(mut self) -> Spec {
        self.discard = true;
        self
    }

    fn command_text(&self) -> String {
        self.steps
            .iter()
            .map(|s| s.join(" "))
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

/// What the helper prints.
#[derive(Deserialize)]
struct Raw {
    times: Vec<f64>,
    codes: Vec<Vec<i32>>,
    rss_kib: Vec<u64>,
    children_maxrss_kib: u64,
    last: Vec<Vec<String>>,
    user: Vec<f64>,
    sys: Vec<f64>,
    floor_kib: u64,
}

/// A measured series.
#[derive(Clone, Debug, Serialize)]
struct Series {
    label: String,
    /// `host` or `container`.
    at: &'static str,
    command: String,
    times_s: Vec<f64>,
    min_s: f64,
    median_s: f64,
    /// Median user and system CPU time of a run (all its commands).
    cpu_user_s: f64,
    cpu_sys_s: f64,
    /// Largest peak RSS of one timed run (the command and the children it
    /// waited for).
    peak_rss_kib: u64,
    /// `getrusage(RUSAGE_CHILDREN).ru_maxrss` of the wrapper after all runs
    /// (warm-up included).
    children_maxrss_kib: u64,
    /// Peak RSS of `true` run by the same wrapper: the floor.
    floor_kib: u64,
    /// stdout of the last step of the last run (its end, for the record).
    last_stdout: String,
}

/// Where a measurement runs.
#[derive(Clone, Copy)]
enum At<'a> {
    Host,
    In(&'a Container),
}

/// Runs `spec` through the helper, checks the exit codes and output, and
/// prints the result.
fn measure(at: At<'_>, label: &str, spec: Spec) -> Result<Series, Fail> {
    print!("    {label:<58} ");
    let _ = std::io::stdout().flush();
    let json = serde_json::to_string(&spec).expect("spec is JSON");
    let out = match at {
        At::Host => Command::new(PYTHON)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (*k, *v)))
            .arg("-c")
            .arg(HELPER)
            .arg(&json)
            .stdin(Stdio::null())
            .output()
            .map_err(Fail::io("run the timing helper"))?,
        At::In(c) => c.exec(&[PYTHON, "-c", HELPER, &json])?,
    };
    if !out.status.success() {
        println!("FAILED");
        return Err(Fail(format!(
            "{label}: the timing helper failed:\n{}",
            rig::show(&out)
        )));
    }
    let raw: Raw = serde_json::from_slice(&out.stdout)
        .map_err(|e| Fail(format!("{label}: helper output: {e}\n{}", rig::show(&out))))?;
    let last_step = raw.last.last().cloned().unwrap_or_default();
    let stdout = last_step.first().cloned().unwrap_or_default();
    let stderr = last_step.get(1).cloned().unwrap_or_default();
    if let Some(bad) = raw.codes.iter().find(|c| **c != spec.expect) {
        println!("FAILED");
        return Err(Fail(format!(
            "{label}: exit codes {bad:?}, expected {:?} ({})\n--- stdout of the last step\n{stdout}--- stderr\n{stderr}",
            spec.expect,
            spec.command_text()
        )));
    }
    if let Some(text) = &spec.contains
        && !stdout.contains(text.as_str())
    {
        println!("FAILED");
        return Err(Fail(format!(
            "{label}: the output does not contain {text:?} ({})\n--- stdout\n{stdout}--- stderr\n{stderr}",
            spec.command_text()
        )));
    }
    let n = raw.times.len();
    let s = Series {
        label: label.to_string(),
        at: match at {
            At::Host => "host",
            At::In(_) => "container",
        },
        command: spec.command_text(),
        min_s: raw.times.iter().copied().fold(f64::INFINITY, f64::min),
        median_s: median(&raw.times),
        cpu_user_s: median(&raw.user),
        cpu_sys_s: median(&raw.sys),
        times_s: raw.times,
        peak_rss_kib: raw.rss_kib.iter().copied().max().unwrap_or(0),
        children_maxrss_kib: raw.children_maxrss_kib,
        floor_kib: raw.floor_kib,
        last_stdout: stdout,
    };
    println!(
        "min {:>9}  median {:>9}  CPU {:>9}  ({} runs, peak RSS {})",
        dur(s.min_s),
        dur(s.median_s),
        dur(s.cpu_s()),
        n,
        mib(s.peak_rss_kib)
    );
    Ok(s)
}

impl Series {
    /// Median CPU time of a run, user + system.
    fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn dur(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `min / median` of a series.
fn cell(s: &Series) -> String {
    format!("{} / {}", dur(s.min_s), dur(s.median_s))
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// One line of the results table.
#[derive(Clone, Debug, Serialize)]
struct Row {
    row: String,
    upkeep: String,
    alternative: String,
    ratio: String,
    target: String,
    met: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    series: BTreeMap<String, Series>,
    /// The "where the time goes" table: what, and its series.
    breakdown: Vec<(String, Series)>,
    notes: Vec<String>,
}

impl Report {
    fn keep(&mut self, key: &str, s: &Series) {
        self.series.insert(key.to_string(), s.clone());
    }

    fn row(
        &mut self,
        row: &str,
        upkeep: String,
        alternative: String,
        ratio: String,
        target: &str,
        met: &str,
    ) {
        self.rows.push(Row {
            row: row.to_string(),
            upkeep,
            alternative,
            ratio,
            target: target.to_string(),
            met: met.to_string(),
        });
    }

    /// A row comparing two timed series: ratio = alternative ÷ upkeep.
    fn time_row(&mut self, row: &str, up: &Series, alt: &Series, target: &str, met: Option<bool>) {
        self.row(
            row,
            cell(up),
            format!("{}: {}", alt.label, cell(alt)),
            format!("{:.2}×", alt.median_s / up.median_s),
            target,
            yes_no(met),
        );
    }

    fn breakdown(&mut self, what: &str, s: &Series) {
        self.breakdown.push((what.to_string(), s.clone()));
    }

    /// A peak RSS, marked when it is no more than the wrapper's floor.
    fn rss(&self, s: &Series) -> String {
        if s.peak_rss_kib <= s.floor_kib + 64 {
            format!("≤ {} (wrapper floor)", mib(s.peak_rss_kib))
        } else {
            mib(s.peak_rss_kib)
        }
    }
}

fn yes_no(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

fn met_text(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The machine the run happened on.
#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory: String,
    kernel: String,
    os: String,
    date: String,
    work_filesystem: String,
    tools: BTreeMap<String, String>,
    /// /proc/loadavg when the measurements started and when they ended
    /// (other work on the machine shows here).
    load_before: String,
    load_after: String,
}

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let memory = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_default();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let os = fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        Machine {
            cpu,
            cores,
            memory,
            kernel,
            os,
            date: jiff::Timestamp::now()
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string(),
            work_filesystem: filesystem_of(Path::new(WORK_PARENT)),
            tools: BTreeMap::new(),
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `TYPE (DEVICE on MOUNTPOINT)` of the filesystem holding `path`.
fn filesystem_of(path: &Path) -> String {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !path.starts_with(f[1]) {
            continue;
        }
        if best.as_ref().is_none_or(|(len, _)| f[1].len() >= *len) {
            best = Some((f[1].len(), format!("{} ({} on {})", f[2], f[0], f[1])));
        }
    }
    best.map(|(_, s)| s).unwrap_or_else(|| "unknown".into())
}

/// The first line a command prints (its version), or "?".
fn first_line(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("?")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------
// Host helpers
// ---------------------------------------------------------------------------

/// `python3 -m http.server` on the host's loopback, serving `dir` on a free
/// port; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(dir: &Path) -> Result<Server, Fail> {
        let mut child = Command::new(PYTHON)
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Fail::io("start python3 -m http.server"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok());
        let mut server = Server {
            child,
            port: 0,
            _stdout: stdout,
        };
        match port {
            Some(p) => {
                server.port = p;
                Ok(server)
            }
            None => Err(Fail(format!(
                "python3 -m http.server did not say its port: {line:?}"
            ))),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the host packages the bench needs beyond the rig's (dnf).
fn ensure_dnf() -> Result<(), Fail> {
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

/// The host's own Debian main Packages list, decompressed.
fn host_debian_packages(arch: &str) -> Result<Vec<u8>, Fail> {
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

// ---------------------------------------------------------------------------
// The rows
// ---------------------------------------------------------------------------

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
fn apt_host(upkeep: &Path, repo_root: Option<PathBuf>) -> Result<PortalHost, Fail> {
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

/// The four measurements of an APT update check: upkeep and apt, cold and
/// warm.
struct AptCheck {
    up_cold: Series,
    up_warm: Series,
    apt_cold: Series,
    apt_warm: Series,
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
    start: Series,
    dpkg: Series,
    curl: Series,
}

/// What a check is made of, measured piece by piece in the container: the
/// process start, the dpkg queries upkeep runs, and fetching the metadata
/// (one curl process, one connection, as upkeep does it).
fn measure_check_parts(h: &PortalHost, arch: &str) -> Result<Parts, Fail> {
    let at = At::In(&h.c);
    let start = measure(
        at,
        "upkeep --version",
        Spec::one(&[rig::UPKEEP, "--version"]),
    )?;
    let dpkg = measure(
        at,
        "dpkg --print-architecture && dpkg-query -W portal",
        Spec::steps(&[
            &["dpkg", "--print-architecture"],
            &[
                "dpkg-query",
                "-W",
                "-f=${Status}\t${Version}\n",
                "--",
                "portal",
            ],
        ]),
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
        ("parts.dpkg_queries", &p.dpkg),
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
        &format!("{what}: `dpkg --print-architecture` + `dpkg-query -W portal` (upkeep runs both)"),
        &p.dpkg,
    );
    r.breakdown(
        &format!("{what}: `curl` of InRelease + Packages.xz, one process"),
        &p.curl,
    );
}

/// Row 1: the fixture repository.
fn row_apt_small(upkeep: &Path, arch: &str, newest: &str, r: &mut Report) -> Result<(), Fail> {
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
    let warm_met = m.up_warm.median_s < 0.020;
    r.time_row(
        "1. APT check, small repo, cold",
        &m.up_cold,
        &m.apt_cold,
        "≥ 5× faster than apt",
        Some(cold_met),
    );
    r.time_row(
        "1. APT check, small repo, warm",
        &m.up_warm,
        &m.apt_warm,
        "upkeep < 20 ms",
        Some(warm_met),
    );
    r.notes.push(format!(
        "Containers: apt {apt_version} (Debian bookworm root filesystem), portal 1.0.0 installed with dpkg; both tools find 2.1.0-1."
    ));
    let rest = m.up_warm.median_s - p.start.median_s - p.dpkg.median_s;
    r.notes.push(format!(
        "Row 1, cold ({}): upkeep {} against apt's {} (medians), {cold_ratio:.1}× faster. Warm ({}): {}. Of a warm check, starting the process takes {} and the two dpkg queries, which upkeep runs one after the other before its first request, {} ({:.0} %); the other ~{} are the HTTP requests, the OpenPGP check and reading the index (or, warm, what upkeep cached from it). Running the dpkg queries while the metadata is fetched would take most of them off the total. A cold check costs about what a warm one does here: the fixture's files are a few kB.",
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
    Ok(())
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
    let mut text = host;
    while text.last() == Some(&b'\n') {
        text.pop();
    }
    text.extend_from_slice(b"\n\n");
    text.extend_from_slice(&portal);
    for ext in ["gz", "xz"] {
        let _ = fs::remove_file(bin.join(format!("Packages.{ext}")));
    }
    fs::write(bin.join("Packages"), &text).map_err(Fail::io("write Packages"))?;
    drop(text);
    // gzip and xz at once: two cores.
    let mut gzip = Command::new("gzip")
        .arg("-9nkf")
        .arg(bin.join("Packages"))
        .spawn()
        .map_err(Fail::io("gzip"))?;
    let xz = rig::cmd_ok(
        Command::new("xz")
            .args(["-T0", "-kf"])
            .arg(bin.join("Packages")),
    );
    let status = gzip.wait().map_err(Fail::io("gzip"))?;
    xz?;
    if !status.success() {
        return Err(Fail(format!("gzip -9nkf Packages: {status}")));
    }
    rig::fixtures::write_apt_release(&debian, &f.arch)?;
    rig::fixtures::sign_apt_release(&debian, &f.gnupg)?;
    Ok(paragraphs)
}

/// Row 2: a Debian-sized index.
fn row_apt_big(
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

    r.time_row(
        "2. APT check, Debian-sized index, cold",
        &m.up_cold,
        &m.apt_cold,
        "—",
        None,
    );
    r.time_row(
        "2. APT check, Debian-sized index, warm",
        &m.up_warm,
        &m.apt_warm,
        "—",
        None,
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
    let rss_met = up.peak_rss_kib < 40 * 1024;
    r.row(
        "2. peak RSS, Debian-sized index",
        format!(
            "{} (cold {}, warm {})",
            r.rss(up),
            mib(m.up_cold.peak_rss_kib),
            mib(m.up_warm.peak_rss_kib)
        ),
        format!("apt-get update / apt list: {}", r.rss(apt)),
        format!("{:.2}×", apt.peak_rss_kib as f64 / up.peak_rss_kib as f64),
        "upkeep < 40 MiB",
        yes_no(Some(rss_met)),
    );
    r.notes.push(format!(
        "Row 2's index: the host's bookworm main list ({paragraphs} paragraphs) followed by portal's; Packages {:.1} MB, Packages.gz {:.1} MB, Packages.xz {:.1} MB (xz -6; both apt and upkeep fetch the .xz).",
        mb(plain),
        mb(gz),
        mb(xz)
    ));
    let rest =
        m.up_cold.median_s - xz_d.median_s - p.curl.median_s - p.dpkg.median_s - p.start.median_s;
    r.notes.push(format!(
        "Row 2, cold: upkeep {} against apt's {} ({:.1}×). A cold check decompresses and parses the whole index: `xz -dc` of the same Packages.xz alone takes {} ({:.0} % of upkeep's cold median); fetching both files takes {}, the dpkg queries {}, starting the process {}; the rest, ~{}, is the SHA-256 of the 9 MB file, the metadata cache and the parse of {paragraphs} paragraphs. upkeep is single-threaded here: its CPU time, {}, is its wall time. Preferring Packages.gz when the Release lists it would cut the decompression to {} (`gzip -dc`) for {:.1} MB more to transfer, a trade that pays on fast links only.",
        dur(m.up_cold.median_s),
        dur(m.apt_cold.median_s),
        m.apt_cold.median_s / m.up_cold.median_s,
        dur(xz_d.median_s),
        100.0 * xz_d.median_s / m.up_cold.median_s,
        dur(p.curl.median_s),
        dur(p.dpkg.median_s),
        dur(p.start.median_s),
        dur(rest.max(0.0)),
        dur(m.up_cold.cpu_s()),
        dur(gz_d.median_s),
        mb(gz.saturating_sub(xz)),
    ));
    let small_warm = r
        .series
        .get("apt_small.upkeep_warm")
        .map(|s| dur(s.median_s))
        .unwrap_or_else(|| "?".into());
    if m.up_warm.median_s < 0.5 * m.up_cold.median_s {
        r.notes.push(format!(
            "Row 2, warm: upkeep {}, {:.0}× faster than apt's warm run ({}) and {:.0}× faster than its own cold check: the signed Release names the same SHA-256 for Packages.xz as last time, so upkeep reuses the entries it extracted then and neither fetches nor decompresses the index (the small repository's warm check takes {small_warm}). apt, warm, gets a 304 and keeps the lists it stored uncompressed; its time goes to its package cache and `apt list`.",
            dur(m.up_warm.median_s),
            m.apt_warm.median_s / m.up_warm.median_s,
            dur(m.apt_warm.median_s),
            m.up_cold.median_s / m.up_warm.median_s,
        ));
    } else {
        r.notes.push(format!(
            "Row 2, warm: upkeep {} against apt's {} ({:.2}×): after the 304 a warm check decompresses and parses the whole index again, so it costs what a cold one does. Keeping, next to the cached index, the SHA-256 the signed Release gave it and the entries extracted from it, and skipping the work when the Release names the same hash again, would bring it near the small repository's {small_warm}. apt, warm, gets a 304 and keeps the lists it stored uncompressed.",
            dur(m.up_warm.median_s),
            dur(m.apt_warm.median_s),
            m.apt_warm.median_s / m.up_warm.median_s,
        ));
    }
    r.notes.push(format!(
        "Row 2, peak RSS ({}): upkeep {} at most, apt {} (cold apt-get update and apt list); upkeep streams the index through the decompressor, holding only the compressed file (and its cache copy).",
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
    Ok(())
}

/// Row 3: the fixture YUM repository, served on the host's loopback.
fn row_yum(upkeep: &Path, f: &rig::Fixtures, work: &Path, r: &mut Report) -> Result<(), Fail> {
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
    let config = dir.join("upkeep.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\ncache_dir = \"{cache}\"\n\n[targets.portal]\npackage = \"portal\"\nservices = [\"portal.service\"]\n\n[targets.portal.repository]\ntype = \"yum\"\nurl = \"{url}\"\nkeyring = \"{key}\"\n",
            state = dir.join("upkeep-state").display(),
            cache = dir.join("upkeep-cache").display(),
            key = f.keyring.display(),
        ),
    )
    .map_err(Fail::io("write the YUM config"))?;
    let config_text = config.to_string_lossy().into_owned();
    let metadata = dir
        .join("upkeep-cache/metadata")
        .to_string_lossy()
        .into_owned();
    let upkeep_text = upkeep.to_string_lossy().into_owned();
    let check = [upkeep_text.as_str(), "--config", &config_text, "check"];
    let probe = Command::new(&*upkeep_text)
        .args(&check[1..])
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .output()
        .map_err(Fail::io("run upkeep"))?;
    let stderr = String::from_utf8_lossy(&probe.stderr).trim().to_string();
    let code = probe.status.code().unwrap_or(-1);
    let outcome = if code == 1 && stderr.contains("not implemented yet") {
        Some(("pending", format!("answers \"{stderr}\"")))
    } else if code != 0 && code != 100 {
        Some(("failed", format!("failed with exit {code}: {stderr}")))
    } else {
        None
    };
    if let Some((cell_text, why)) = outcome {
        println!("    upkeep check (yum): {cell_text} — it {why}");
        for (what, alt) in [("cold", &dnf_cold), ("warm", &dnf_warm)] {
            r.row(
                &format!("3. YUM check, {what}"),
                cell_text.into(),
                format!("{}: {}", alt.label, cell(alt)),
                "—".into(),
                "—",
                cell_text,
            );
        }
        r.notes.push(format!(
            "Row 3: `upkeep check` on a `type = \"yum\"` target {why}; dnf was measured, upkeep's cells are {cell_text}."
        ));
        return Ok(());
    }
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
    r.time_row("3. YUM check, cold", &up_cold, &dnf_cold, "—", None);
    r.time_row("3. YUM check, warm", &up_warm, &dnf_warm, "—", None);
    r.notes.push(format!(
        "Row 3 runs on the host, upkeep with a configuration of its own (state and cache in a temporary directory). The host's rpm database has no portal, so upkeep reports {newest} as available over nothing installed, while dnf compares with 1.0.0 in its installroot; both fetch repomd.xml, check its signature and read the primary metadata. dnf also fetches filelists.xml.gz and builds its solv cache; warm, dnf makes no request at all (its metadata has not expired) while upkeep makes conditional ones. upkeep is {:.1}× faster cold and {:.1}× warm; of its warm {}, the two rpm queries it runs (`rpm --eval %{{_arch}}`, `rpm -q portal`) take {}. It peaks at {} against dnf's {}.",
        dnf_cold.median_s / up_cold.median_s,
        dnf_warm.median_s / up_warm.median_s,
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
    Ok(())
}

/// Writes a 1 GiB file (a random 1 MiB block repeated, each copy stamped
/// with its index) and returns its SHA-256. The file is synced, so that no
/// writeback of it runs during the measurements.
fn write_big_file(path: &Path) -> Result<String, Fail> {
    let mut block = vec![0u8; 1 << 20];
    fs::File::open("/dev/urandom")
        .and_then(|mut u| u.read_exact(&mut block))
        .map_err(Fail::io("read /dev/urandom"))?;
    let mut file = fs::File::create(path).map_err(Fail::io("create the big file"))?;
    let mut hasher = Sha256::new();
    for i in 0..(BIG_SIZE >> 20) {
        block[..8].copy_from_slice(&i.to_le_bytes());
        hasher.update(&block);
        file.write_all(&block)
            .map_err(Fail::io("write the big file"))?;
    }
    file.sync_all().map_err(Fail::io("sync the big file"))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Row 4: download and verify a 1 GiB package.
fn row_download(upkeep: &Path, f: &rig::Fixtures, work: &Path, r: &mut Report) -> Result<(), Fail> {
    let dir = work.join("download");
    let debian = dir.join("repo/debian");
    let pool = debian.join("pool/main/b/bigpkg");
    let bin = debian.join(format!("dists/{SUITE}/{COMPONENT}/binary-{}", f.arch));
    fs::create_dir_all(&pool).map_err(Fail::io("pool"))?;
    fs::create_dir_all(&bin).map_err(Fail::io("dists"))?;
    let file_name = format!("bigpkg_1.0-1_{}.deb", f.arch);
    let t = Instant::now();
    let sha256 = write_big_file(&pool.join(&file_name))?;
    println!(
        "    wrote a 1 GiB package in {:.1} s (SHA-256 {sha256})",
        t.elapsed().as_secs_f64()
    );
    fs::write(
        bin.join("Packages"),
        format!(
            "Package: bigpkg\nVersion: 1.0-1\nArchitecture: {arch}\nMaintainer: Bench <bench@example.com>\nFilename: pool/main/b/bigpkg/{file_name}\nSize: {BIG_SIZE}\nSHA256: {sha256}\nDescription: 1 GiB payload for the download benchmark\n\n",
            arch = f.arch
        ),
    )
    .map_err(Fail::io("write Packages"))?;
    rig::cmd_ok(Command::new("xz").arg("-kf").arg(bin.join("Packages")))?;
    rig::fixtures::write_apt_release(&debian, &f.arch)?;
    rig::fixtures::sign_apt_release(&debian, &f.gnupg)?;
    let server = Server::start(&dir.join("repo"))?;
    let url = server.url(&format!("debian/pool/main/b/bigpkg/{file_name}"));

    let out = dir.join("out");
    fs::create_dir_all(&out).map_err(Fail::io("out dir"))?;
    let curl_file = out.join("curl.deb").to_string_lossy().into_owned();
    let curl = ["curl", "-sSf", "-o", &curl_file, &url];
    let curl_only = measure(
        At::Host,
        "curl -o FILE URL",
        Spec::one(&curl).clear(&[&curl_file]).warm(),
    )?;
    let curl_sha = measure(
        At::Host,
        "curl -o FILE URL && sha256sum FILE",
        Spec::steps(&[&curl, &["sha256sum", &curl_file]])
            .clear(&[&curl_file])
            .warm()
            .contains(&sha256),
    )?;
    let curl_sync = measure(
        At::Host,
        "curl -o FILE URL && sync FILE (fsync, as upkeep does)",
        Spec::steps(&[&curl, &["sync", &curl_file]])
            .clear(&[&curl_file])
            .warm(),
    )?;
    let served = pool.join(&file_name).to_string_lossy().into_owned();
    let sha_only = measure(
        At::Host,
        "sha256sum FILE (file in the page cache)",
        Spec::one(&["sha256sum", &served]).warm().contains(&sha256),
    )?;

    let config = dir.join("upkeep.toml");
    let cache = dir.join("upkeep-cache");
    fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\ncache_dir = \"{cache}\"\n\n[targets.bench]\npackage = \"bigpkg\"\nservices = [\"bigpkg.service\"]\n\n[targets.bench.repository]\ntype = \"apt\"\nurl = \"{url}\"\nsuite = \"{SUITE}\"\ncomponent = \"{COMPONENT}\"\nkeyring = \"{key}\"\n",
            state = dir.join("upkeep-state").display(),
            cache = cache.display(),
            url = server.url("debian"),
            key = f.keyring.display(),
        ),
    )
    .map_err(Fail::io("write the download config"))?;
    let upkeep_text = upkeep.to_string_lossy().into_owned();
    let config_text = config.to_string_lossy().into_owned();
    let cache_text = cache.to_string_lossy().into_owned();
    let up = measure(
        At::Host,
        "upkeep plan --json (download + SHA-256, fresh cache)",
        Spec::one(&[&upkeep_text, "--config", &config_text, "--json", "plan"])
            .clear(&[&cache_text])
            .warm()
            .contains(&sha256),
    )?;
    // Leave no 1 GiB file behind.
    drop(server);
    fs::remove_dir_all(&dir).map_err(Fail::io("remove the download dir"))?;

    let vs_curl = up.median_s / curl_only.median_s;
    let curl_met = vs_curl <= 1.3;
    let sha_ratio = curl_sha.median_s / up.median_s;
    let sha_met = sha_ratio >= 4.0;
    let rss_met = up.peak_rss_kib < 40 * 1024;
    r.row(
        "4. 1 GiB download + verify vs curl alone",
        cell(&up),
        format!("curl -o FILE URL: {}", cell(&curl_only)),
        format!("{:.2}×", curl_only.median_s / up.median_s),
        "upkeep ≤ 1.3× curl's time (ratio ≥ 0.77×)",
        yes_no(Some(curl_met)),
    );
    r.time_row(
        "4. 1 GiB download + verify vs curl, then sha256sum",
        &up,
        &curl_sha,
        "≥ 4× faster",
        Some(sha_met),
    );
    r.row(
        "4. peak RSS, 1 GiB download",
        r.rss(&up),
        format!("curl: {}", r.rss(&curl_only)),
        format!(
            "{:.2}×",
            curl_only.peak_rss_kib as f64 / up.peak_rss_kib as f64
        ),
        "upkeep < 40 MiB",
        yes_no(Some(rss_met)),
    );
    r.time_row(
        "4. (extra) 1 GiB download + verify vs curl, then fsync",
        &up,
        &curl_sync,
        "—",
        None,
    );
    let fsync = (curl_sync.median_s - curl_only.median_s).max(0.0);
    let limit = 1.3 * curl_only.median_s;
    r.notes.push(format!(
        "Row 4, upkeep vs curl alone ({}): upkeep takes {vs_curl:.2}× curl's time. (a) upkeep fsyncs the 1 GiB file before renaming it into the cache, so that a verified file survives a crash; curl does not. curl followed by `sync FILE` takes {}, so the fsync alone costs about {} on this disk{}; against curl + fsync upkeep takes {:.2}×. (b) upkeep uses {} of CPU per run (user {}, system {}) against curl's {}, and its wall time is close to that: the socket is read on the runtime while a blocking thread hashes and writes (a bounded channel of chunks), and writeback starts every 8 MiB (`sync_file_range`) so the final fsync takes milliseconds. What is left is CPU: SHA-256 costs ~0.75 s per GiB even with the CPU's SHA instructions, on top of curl's own copying and the server's, on 2 vCPUs.",
        met_text(curl_met),
        dur(curl_sync.median_s),
        dur(fsync),
        if limit < curl_sync.median_s {
            format!(
                ": 1.3× curl is {}, less than curl + fsync, so with the fsync this target can only be met by overlapping the writeback with the download",
                dur(limit)
            )
        } else {
            String::new()
        },
        up.median_s / curl_sync.median_s,
        dur(up.cpu_s()),
        dur(up.cpu_user_s),
        dur(up.cpu_sys_s),
        dur(curl_only.cpu_s()),
    ));
    let best = curl_sha.median_s / curl_only.median_s;
    let need = curl_sha.median_s / 4.0;
    r.notes.push(format!(
        "Row 4, vs curl then sha256sum ({}): {sha_ratio:.2}×. coreutils' sha256sum hashes at {:.0} MB/s here ({} for 1 GiB: it does not use the CPU's SHA extensions, which the sha2 crate in upkeep does). 4× means {} or less for upkeep, {:.2}× curl's bare download{}. The best ratio any verifying downloader could reach, taking exactly curl's time, is {best:.2}×.",
        met_text(sha_met),
        BIG_SIZE as f64 / sha_only.median_s / 1e6,
        dur(sha_only.median_s),
        dur(need),
        need / curl_only.median_s,
        if need < curl_sync.median_s {
            format!(
                ": less than curl + fsync takes ({}), so it too needs the writeback overlapped with the download",
                dur(curl_sync.median_s)
            )
        } else {
            String::new()
        },
    ));
    r.notes.push(format!(
        "Row 4, peak RSS ({}): upkeep {} while streaming 1 GiB (at most 8 chunks of ≤ 408 KiB in flight); curl {}.",
        met_text(rss_met),
        r.rss(&up),
        r.rss(&curl_only),
    ));
    r.breakdown("1 GiB (host): `upkeep plan --json`", &up);
    r.breakdown("1 GiB (host): `curl -o`", &curl_only);
    r.breakdown("1 GiB (host): `curl -o` then `sync FILE`", &curl_sync);
    r.breakdown(
        "1 GiB (host): `sha256sum` of the file (page cache)",
        &sha_only,
    );
    for (k, s) in [
        ("download.upkeep_plan", &up),
        ("download.curl", &curl_only),
        ("download.curl_sha256sum", &curl_sha),
        ("download.curl_sync", &curl_sync),
        ("download.sha256sum", &sha_only),
    ] {
        r.keep(k, s);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

fn phase(t0: Instant, text: &str) {
    println!("\n[{:>6.1} s] {text}", t0.elapsed().as_secs_f64());
}

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

/// Measures one downtime: starts the poller, runs `action` inside the
/// container, returns the poller's downtime in seconds.
fn downtime_of(h: &PortalHost, action: &[&[&str]]) -> Result<f64, Fail> {
    let mut poller =
        h.c.command(&[PYTHON, "-c", DOWNTIME_POLLER, rig::READY_URL, "120"])
            .stdout(std::process::Stdio::piped())
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
    for argv in action {
        let o = h.c.exec(argv)?;
        if !o.status.success() {
            let _ = poller.kill();
            return Err(Fail(format!("{argv:?}: {}", rig::show(&o))));
        }
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .map_err(Fail::io("poller output"))?;
    let status = poller.wait().map_err(Fail::io("poller"))?;
    if !status.success() {
        return Err(Fail(format!("the service did not come back: {rest}")));
    }
    rest.trim()
        .parse()
        .map_err(|e| Fail(format!("poller said {rest:?}: {e}")))
}

/// A host at 1.0.0 on PostgreSQL with `rows` pages, ready for 2.1.0.
fn downtime_host(upkeep: &Path, rows: usize) -> Result<PortalHost, Fail> {
    let h = PortalHost::boot(HostSpec {
        family: rig::Family::Deb,
        repo_root: None,
        upkeep: upkeep.to_path_buf(),
    })?;
    h.install_with_dpkg("1.0.0")?;
    h.use_database(rig::Db::Postgres)?;
    h.add_pages("bench", rows)?;
    Ok(h)
}

/// A series of wall times measured by hand (not through the wrapper).
fn series_of(label: &str, command: &str, times: Vec<f64>) -> Series {
    let min_s = times.iter().copied().fold(f64::INFINITY, f64::min);
    Series {
        label: label.into(),
        at: "container",
        command: command.into(),
        median_s: median(&times),
        min_s,
        times_s: times,
        cpu_user_s: 0.0,
        cpu_sys_s: 0.0,
        peak_rss_kib: 0,
        children_maxrss_kib: 0,
        floor_kib: 0,
        last_stdout: String::new(),
    }
}

/// Row 5: the service's downtime during an upgrade (1.0.0 → 2.1.0 on
/// PostgreSQL): `upkeep upgrade` against the manual procedure, each on a
/// fresh container, plus the database dump's own time.
fn row_downtime(upkeep: &Path, f: &rig::Fixtures, r: &mut Report) -> Result<(), Fail> {
    const REPS: usize = 5;
    const ROWS: usize = 2000;
    let deb = f
        .deb("2.1.0")
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Fail("deb name".into()))?
        .to_string();
    let deb = format!("/srv/debs/{deb}");
    let (mut manual, mut up, mut dump) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..REPS {
        let h = downtime_host(upkeep, ROWS)?;
        // The dump's own time, as upkeep takes it (custom format).
        let t = Instant::now();
        h.c.run(&[
            "runuser",
            "-u",
            "postgres",
            "--",
            "pg_dump",
            "-Fc",
            "-f",
            "/tmp/bench.pgdump",
            "portal",
        ])?;
        dump.push(t.elapsed().as_secs_f64());
        let d = downtime_of(
            &h,
            &[
                &["systemctl", "stop", "portal.service"],
                &["dpkg", "--force-confdef", "--force-confold", "-i", &deb],
                &["systemctl", "start", "portal.service"],
            ],
        )?;
        manual.push(d);
        drop(h);
        let h = downtime_host(upkeep, ROWS)?;
        // The download and verification happen before the stop either way;
        // warm the cache so that the runs compare the same work.
        h.c.run(&[rig::UPKEEP, "plan"])?;
        let d = downtime_of(&h, &[&[rig::UPKEEP, "upgrade", "--yes"]])?;
        up.push(d);
        println!(
            "    rep {}: manual {:.3} s, upkeep {:.3} s, pg_dump {:.3} s",
            i + 1,
            manual[i],
            up[i],
            dump[i]
        );
    }
    let manual = series_of(
        "systemctl stop; dpkg -i; systemctl start",
        "systemctl stop portal.service && dpkg -i portal_2.1.0-1.deb && systemctl start portal.service",
        manual,
    );
    let up = series_of("upkeep upgrade --yes", "upkeep upgrade --yes", up);
    let dump = series_of(
        "pg_dump -Fc portal",
        "runuser -u postgres -- pg_dump -Fc -f F portal",
        dump,
    );
    let limit = 1.10 * manual.median_s + dump.median_s;
    let met = up.median_s <= limit;
    r.row(
        "5. service downtime during an upgrade (PostgreSQL, 2000 rows)",
        cell(&up),
        format!("{}: {}", manual.label, cell(&manual)),
        format!("{:.2}×", manual.median_s / up.median_s),
        "upkeep ≤ 1.1 × manual + the dump's own time",
        yes_no(Some(met)),
    );
    r.notes.push(format!(
        "Row 5 ({}): downtime is what a client sees, measured inside the container by polling `/ready` every 5 ms, from its first failure to the next 200. Fresh container per run, 1.0.0 on PostgreSQL 15 with {ROWS} pages, upgraded to 2.1.0 (three migrations). Manual: `systemctl stop`, `dpkg -i` (whose postinst restarts the unit), `systemctl start`, median {}. upkeep (package already verified in the cache, as `plan` leaves it): stop, `pg_dump -Fc` (alone: median {}), dpkg, reload, start, median {}; the limit is 1.1 × {} + {} = {}.",
        met_text(met),
        dur(manual.median_s),
        dur(dump.median_s),
        dur(up.median_s),
        dur(manual.median_s),
        dur(dump.median_s),
        dur(limit)
    ));
    r.keep("downtime.manual", &manual);
    r.keep("downtime.upkeep", &up);
    r.keep("downtime.pg_dump", &dump);
    Ok(())
}

/// Whether row `n` runs: all of them unless `UPKEEP_BENCH_ROWS` lists some
/// (e.g. `UPKEEP_BENCH_ROWS=5`; then nothing is written, the table is only
/// printed).
fn selected(n: u32) -> bool {
    match std::env::var("UPKEEP_BENCH_ROWS") {
        Ok(v) => v.split(',').any(|x| x.trim() == n.to_string()),
        Err(_) => true,
    }
}

fn bench() -> Result<(), Fail> {
    let t0 = Instant::now();
    phase(t0, "building upkeep (release)");
    let project = rig::fixtures::project_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    rig::cmd_ok(
        Command::new(cargo)
            .args(["build", "--release", "--quiet", "--bin", "upkeep"])
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml")),
    )?;
    let upkeep = project.join("target/release/upkeep");
    phase(
        t0,
        "preparing the rig: host packages, root filesystem, fixtures, dnf",
    );
    rig::host::prepare()?;
    let f = rig::fixtures::get()?;
    ensure_dnf()?;
    let newest = f.newest().deb_version();
    let mut machine = Machine::probe();
    for (name, argv) in [
        (
            "upkeep",
            vec![upkeep.to_str().unwrap_or("upkeep"), "--version"],
        ),
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

    if selected(1) {
        phase(
            t0,
            "row 1: update check, APT, fixture repository (container)",
        );
        row_apt_small(&upkeep, &f.arch, &newest, &mut r)?;
    }
    if selected(2) {
        phase(
            t0,
            "row 2: update check, APT, Debian-sized index (building it, then a container)",
        );
        row_apt_big(&upkeep, f, work.path(), &newest, &mut r)?;
    }
    if selected(3) {
        phase(t0, "row 3: update check, YUM (host loopback)");
        row_yum(&upkeep, f, work.path(), &mut r)?;
    }
    if selected(4) {
        phase(
            t0,
            "row 4: download + verify a 1 GiB package (host loopback)",
        );
        row_download(&upkeep, f, work.path(), &mut r)?;
    }
    if selected(5) {
        phase(
            t0,
            "row 5: service downtime during an upgrade, upkeep vs by hand (containers, PostgreSQL)",
        );
        row_downtime(&upkeep, f, &mut r)?;
    }
    drop(work);
    if std::env::var_os("UPKEEP_BENCH_ROWS").is_some() {
        println!();
        print!("{}", table(&r.rows));
        for n in &r.notes {
            println!("\n{n}");
        }
        return Ok(());
    }
    let floors = r.series.values().map(|s| s.floor_kib);
    let (lo, hi) = (floors.clone().min().unwrap_or(0), floors.max().unwrap_or(0));
    r.notes.push(format!(
        "Peak RSS figures are upper bounds: a command started by the Python wrapper begins as a copy of it, and Linux keeps that high-water mark across exec, so even `true` started the same way shows {} to {}. A figure marked \"wrapper floor\" is no higher than `true`'s in the same series: the command's own peak is at most that.",
        mib(lo),
        mib(hi)
    ));

    machine.load_after = load_average();
    let total = t0.elapsed().as_secs_f64();
    phase(t0, "writing BENCHMARKS.md and bench/results.json");
    let md = markdown(&machine, &r, total);
    fs::write(project.join("BENCHMARKS.md"), &md).map_err(Fail::io("write BENCHMARKS.md"))?;
    fs::create_dir_all(project.join("bench")).map_err(Fail::io("bench dir"))?;
    let json = serde_json::json!({
        "machine": machine,
        "total_seconds": total,
        "rows": r.rows,
        "series": r.series,
        "breakdown": r.breakdown.iter().map(|(what, s)| serde_json::json!({"what": what, "series": s.label})).collect::<Vec<_>>(),
        "notes": r.notes,
    });
    fs::write(
        project.join("bench/results.json"),
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .map_err(Fail::io("write bench/results.json"))?;
    println!();
    print!("{}", table(&r.rows));
    println!("\ndone in {total:.1} s");
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| row | upkeep (min / median) | alternative (min / median) | ratio (alternative ÷ upkeep) | target | met? |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.row, r.upkeep, r.alternative, r.ratio, r.target, r.met
        );
    }
    s
}

fn markdown(m: &Machine, r: &Report, total: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "upkeep against the tools an operator would otherwise use, measured in one run on one machine by `cargo run --release --example bench` (as root; `examples/bench.rs`). Raw times of every run: `bench/results.json`. The bench writes this file; rerun it rather than editing the numbers.\n"
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- Date: {}", m.date);
    let _ = writeln!(s, "- CPU: {}, {} cores", m.cpu, m.cores);
    let _ = writeln!(s, "- Memory: {}", m.memory);
    let _ = writeln!(s, "- Kernel: {} ({})", m.kernel, m.os);
    let _ = writeln!(s, "- Temporary files (every row): {}", m.work_filesystem);
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min) when the measurements started (right after building upkeep) / when they ended: {} / {}",
        m.load_before, m.load_after
    );
    for (k, v) in &m.tools {
        let _ = writeln!(s, "- {k}: {v}");
    }
    let _ = writeln!(
        s,
        "- Total run time of the bench: {total:.0} s (building upkeep included)\n"
    );
    let _ = writeln!(s, "## Results\n");
    s.push_str(&table(&r.rows));
    let _ = writeln!(
        s,
        "\nTimes are wall-clock times of whole commands, min / median of repeated runs (7 runs when one takes under a second, 5 under five seconds, 3 above; one untimed warm-up run first). The ratio divides the alternative's median by upkeep's: above 1, upkeep is faster (or smaller). Peak RSS is the largest `ru_maxrss` of one run (the command and the children it waited for).\n"
    );
    let _ = writeln!(s, "## Notes\n");
    for n in &r.notes {
        let _ = writeln!(s, "- {n}");
    }
    let _ = writeln!(s, "\n## Where the time goes\n");
    let _ = writeln!(
        s,
        "The pieces of each operation, measured on their own the same way (inside the row's container unless marked host). CPU is user + system time of a run, median.\n"
    );
    let _ = writeln!(
        s,
        "| what | wall, min / median | CPU | peak RSS |\n|---|---|---|---|"
    );
    for (what, series) in &r.breakdown {
        let _ = writeln!(
            s,
            "| {what} | {} | {} | {} |",
            cell(series),
            dur(series.cpu_s()),
            r.rss(series)
        );
    }
    let _ = writeln!(s, "\n## Method\n");
    for line in [
        "Rows 1 and 2 run inside throwaway systemd-nspawn containers of the test rig (Debian bookworm, `--volatile=overlay`, private network), with the signed repository served by `python3 -m http.server` on the container's loopback and portal 1.0.0 installed, so that both tools find 2.1.0-1. upkeep is the release binary (`target/release/upkeep`) bound into the container.",
        "Cold upkeep: `/var/cache/upkeep/metadata` removed before each run. Warm: it holds what the previous run left there (documents kept with their `Last-Modified`, fetched again with `If-Modified-Since`, and whatever else upkeep caches there).",
        "apt: `apt-get update && apt list --upgradable`, both with `-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/etc/upkeep-rig/apt` (only the fixture source). Cold: everything under `/var/lib/apt/lists` removed before each run.",
        "Row 2 appends the host's real Debian package list (`/var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages.lz4`) to the fixture's Packages, compresses it with gzip -9 and xz, writes Release with `apt-ftparchive release` and signs it with the fixtures' key.",
        "Row 3 runs on the host against the fixture YUM repository on the host's loopback: `dnf -y --installroot=TMP --releasever=1 --disablerepo=* --repofrompath=portal,URL --setopt=portal.gpgcheck=0 --setopt=portal.repo_gpgcheck=1 --setopt=portal.gpgkey=file://KEY --setopt=cachedir=TMP check-update`, with portal 1.0.0 in the installroot's rpm database (`rpm --root -i --justdb`). repomd.xml's signature is checked, as upkeep checks it. Cold: a fresh cachedir (the key is imported again); warm: dnf's metadata has not expired, so it makes no request at all.",
        "Row 4 runs on the host: a 1 GiB file (a random 1 MiB block repeated, synced before the runs) served by `python3 -m http.server` on loopback; curl, sha256sum and upkeep all read it from the page cache and write to the same disk filesystem. upkeep's side is `upkeep plan --json` against a signed APT repository whose only package is that file (a Packages paragraph with Size and SHA256), with a fresh cache dir each run: it fetches and verifies the metadata, streams the package to disk while hashing it, fsyncs it and renames it into the cache.",
        "Every command is started by a Python wrapper (`/usr/bin/python3 -c`) as an argument vector, never a shell string, timed with `time.perf_counter()` around the run and reaped with `os.wait4` for its CPU time and peak RSS (per run; the wrapper's `getrusage(RUSAGE_CHILDREN).ru_maxrss` over all runs is in results.json too).",
    ] {
        let _ = writeln!(s, "- {line}");
    }
    s
}
