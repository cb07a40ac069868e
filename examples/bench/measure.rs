//! Measuring: a small Python wrapper runs each command as an argument vector
//! (never a shell string), times it and reads its CPU time and peak RSS from
//! `wait4`; a series is the runs of one command, with min and median.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::rig::{self, Container, Fail};

/// The interpreter that runs the timing wrapper, on the host and in the
/// containers.
pub const PYTHON: &str = "/usr/bin/python3";
/// PATH for every measured command.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
                             env=spec["env"], cwd=spec["cwd"])
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

/// What to measure: the commands of one run, what to remove before each
/// run, and what a good run looks like.
#[derive(Serialize)]
pub struct Spec {
    steps: Vec<Vec<String>>,
    clear: Vec<String>,
    warmup: u32,
    reps: Option<u32>,
    discard: bool,
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    /// Expected exit code of each step.
    #[serde(skip)]
    expect: Vec<i32>,
    /// Text the last step's stdout must hold.
    #[serde(skip)]
    contains: Option<String>,
}

impl Spec {
    /// One command per run, expected to exit 0.
    pub fn one(argv: &[&str]) -> Spec {
        Spec::steps(&[argv])
    }

    /// Several commands per run, one after the other, each expected to exit 0.
    pub fn steps(steps: &[&[&str]]) -> Spec {
        Spec {
            steps: steps
                .iter()
                .map(|s| s.iter().map(|a| a.to_string()).collect())
                .collect(),
            clear: Vec::new(),
            warmup: 0,
            reps: None,
            discard: false,
            env: [("PATH", PATH), ("LANG", "C.UTF-8"), ("HOME", "/root")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: None,
            expect: vec![0; steps.len()],
            contains: None,
        }
    }

    /// Removes these before each run (untimed); `DIR/*` empties DIR.
    pub fn clear(mut self, paths: &[&str]) -> Spec {
        self.clear = paths.iter().map(|p| p.to_string()).collect();
        self
    }

    /// One untimed run first (to fill caches for a warm measurement).
    pub fn warm(mut self) -> Spec {
        self.warmup = 1;
        self
    }

    /// Exactly `n` timed runs.
    pub fn reps(mut self, n: u32) -> Spec {
        self.reps = Some(n);
        self
    }

    /// The expected exit codes, one per step.
    pub fn expect(mut self, codes: &[i32]) -> Spec {
        self.expect = codes.to_vec();
        self
    }

    /// The last step's stdout must contain `text`.
    pub fn contains(mut self, text: &str) -> Spec {
        self.contains = Some(text.to_string());
        self
    }

    /// Output goes to /dev/null (for commands that print a lot).
    pub fn discard(mut self) -> Spec {
        self.discard = true;
        self
    }

    /// One more environment variable for every step.
    pub fn env(mut self, key: &str, value: &str) -> Spec {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// The steps run in this directory.
    pub fn cwd(mut self, dir: &Path) -> Spec {
        self.cwd = Some(dir.to_string_lossy().into_owned());
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
pub struct Series {
    pub label: String,
    /// `host` or `container`.
    pub at: &'static str,
    pub command: String,
    pub times_s: Vec<f64>,
    pub min_s: f64,
    pub median_s: f64,
    /// Median user and system CPU time of a run (all its commands).
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Largest peak RSS of one timed run (the command and the children it
    /// waited for); 0 when not measured.
    pub peak_rss_kib: u64,
    /// `getrusage(RUSAGE_CHILDREN).ru_maxrss` of the wrapper after all runs
    /// (warm-up included).
    pub children_maxrss_kib: u64,
    /// Peak RSS of `true` run by the same wrapper: the floor.
    pub floor_kib: u64,
    /// stdout of the last step of the last run (its end, for the record).
    pub last_stdout: String,
    /// Its stderr (its end; not in results.json).
    #[serde(skip)]
    pub last_stderr: String,
}

impl Series {
    /// Median CPU time of a run, user + system.
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }

    /// A series of wall times measured by hand (not through the wrapper).
    pub fn of_times(label: &str, at: &'static str, command: &str, times: Vec<f64>) -> Series {
        Series {
            label: label.into(),
            at,
            command: command.into(),
            median_s: median(&times),
            min_s: times.iter().copied().fold(f64::INFINITY, f64::min),
            times_s: times,
            cpu_user_s: 0.0,
            cpu_sys_s: 0.0,
            peak_rss_kib: 0,
            children_maxrss_kib: 0,
            floor_kib: 0,
            last_stdout: String::new(),
            last_stderr: String::new(),
        }
    }

    /// One series out of single runs measured apart (one per container):
    /// their times, the median CPU, the largest peak RSS.
    pub fn merge(label: &str, parts: &[Series]) -> Series {
        let times: Vec<f64> = parts.iter().flat_map(|s| s.times_s.clone()).collect();
        let user: Vec<f64> = parts.iter().map(|s| s.cpu_user_s).collect();
        let sys: Vec<f64> = parts.iter().map(|s| s.cpu_sys_s).collect();
        let mut s = Series::of_times(
            label,
            parts.first().map(|p| p.at).unwrap_or("container"),
            &parts.first().map(|p| p.command.clone()).unwrap_or_default(),
            times,
        );
        s.cpu_user_s = median(&user);
        s.cpu_sys_s = median(&sys);
        s.peak_rss_kib = parts.iter().map(|p| p.peak_rss_kib).max().unwrap_or(0);
        s.children_maxrss_kib = parts
            .iter()
            .map(|p| p.children_maxrss_kib)
            .max()
            .unwrap_or(0);
        s.floor_kib = parts.iter().map(|p| p.floor_kib).max().unwrap_or(0);
        s.last_stdout = parts
            .last()
            .map(|p| p.last_stdout.clone())
            .unwrap_or_default();
        s
    }
}

/// Where a measurement runs.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Host,
    In(&'a Container),
}

/// Runs `spec` through the helper, checks the exit codes and output, and
/// prints the result.
pub fn measure(at: At<'_>, label: &str, spec: Spec) -> Result<Series, Fail> {
    print!("    {label:<58} ");
    let _ = std::io::stdout().flush();
    let s = measure_quietly(at, label, spec).inspect_err(|_| println!("FAILED"))?;
    println!(
        "min {:>9}  median {:>9}  CPU {:>9}  ({} runs, peak RSS {})",
        dur(s.min_s),
        dur(s.median_s),
        dur(s.cpu_s()),
        s.times_s.len(),
        mib(s.peak_rss_kib)
    );
    Ok(s)
}

/// [`measure`] without printing.
pub fn measure_quietly(at: At<'_>, label: &str, spec: Spec) -> Result<Series, Fail> {
    let json = spec.json();
    let out = match at {
        At::Host => Command::new(PYTHON)
            .env_clear()
            .envs(spec.env.iter())
            .arg("-c")
            .arg(HELPER)
            .arg(&json)
            .stdin(Stdio::null())
            .output()
            .map_err(Fail::io("run the timing helper"))?,
        At::In(c) => {
            let argv = spec.helper_argv();
            c.exec(&argv.iter().map(String::as_str).collect::<Vec<_>>())?
        }
    };
    let at = match at {
        At::Host => "host",
        At::In(_) => "container",
    };
    spec.series(label, at, &out)
}

impl Spec {
    fn json(&self) -> String {
        serde_json::to_string(self).expect("spec is JSON")
    }

    /// The argument vector that runs this spec through the helper (for a
    /// run started some other way, e.g. under the downtime poller).
    pub fn helper_argv(&self) -> Vec<String> {
        vec![
            PYTHON.to_string(),
            "-c".to_string(),
            HELPER.to_string(),
            self.json(),
        ]
    }

    /// The series the helper's output describes; fails unless every run
    /// exited as expected and printed what it had to.
    pub fn series(
        &self,
        label: &str,
        at: &'static str,
        out: &std::process::Output,
    ) -> Result<Series, Fail> {
        if !out.status.success() {
            return Err(Fail(format!(
                "{label}: the timing helper failed:\n{}",
                rig::show(out)
            )));
        }
        let raw: Raw = serde_json::from_slice(&out.stdout)
            .map_err(|e| Fail(format!("{label}: helper output: {e}\n{}", rig::show(out))))?;
        let last_step = raw.last.last().cloned().unwrap_or_default();
        let stdout = last_step.first().cloned().unwrap_or_default();
        let stderr = last_step.get(1).cloned().unwrap_or_default();
        if let Some(bad) = raw.codes.iter().find(|c| **c != self.expect) {
            return Err(Fail(format!(
                "{label}: exit codes {bad:?}, expected {:?} ({})\n--- stdout of the last step\n{stdout}--- stderr\n{stderr}",
                self.expect,
                self.command_text()
            )));
        }
        if let Some(text) = &self.contains
            && !stdout.contains(text.as_str())
        {
            return Err(Fail(format!(
                "{label}: the output does not contain {text:?} ({})\n--- stdout\n{stdout}--- stderr\n{stderr}",
                self.command_text()
            )));
        }
        Ok(Series {
            label: label.to_string(),
            at,
            command: self.command_text(),
            min_s: raw.times.iter().copied().fold(f64::INFINITY, f64::min),
            median_s: median(&raw.times),
            cpu_user_s: median(&raw.user),
            cpu_sys_s: median(&raw.sys),
            times_s: raw.times,
            peak_rss_kib: raw.rss_kib.iter().copied().max().unwrap_or(0),
            children_maxrss_kib: raw.children_maxrss_kib,
            floor_kib: raw.floor_kib,
            last_stdout: stdout,
            last_stderr: stderr,
        })
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn dur(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `min / median` of a series.
pub fn cell(s: &Series) -> String {
    format!("{} / {}", dur(s.min_s), dur(s.median_s))
}

/// `python3 -m http.server` on the host's loopback, serving `dir` on a free
/// port; killed when dropped.
pub struct Server {
    child: Child,
    port: u16,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    pub fn start(dir: &Path) -> Result<Server, Fail> {
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

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops containers on a thread of their own, so that one's poweroff
/// (~1.6 s) overlaps with the next one's boot; [`Reaper::settle`] waits for
/// them before anything is timed.
#[derive(Default)]
pub struct Reaper {
    pending: Vec<std::thread::JoinHandle<()>>,
}

impl Reaper {
    /// Powers `value` (a container, or what holds one) off in the background.
    pub fn drop_later<T: Send + 'static>(&mut self, value: T) {
        self.pending.push(std::thread::spawn(move || drop(value)));
    }

    /// Waits until every container handed over is gone.
    pub fn settle(&mut self) {
        for h in self.pending.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.settle();
    }
}

/// An upkeep configuration for the host, with state, cache and lock of its
/// own under `dir`; `repository` is the body of its `[repository]` table.
pub fn host_config(dir: &Path, package: &str, repository: &str) -> Result<String, Fail> {
    std::fs::create_dir_all(dir).map_err(Fail::io("config dir"))?;
    let config = dir.join("upkeep.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{state}\"\ncache_dir = \"{cache}\"\nlock_file = \"{lock}\"\n\n[targets.bench]\npackage = \"{package}\"\nservices = [\"{package}.service\"]\n\n[targets.bench.repository]\n{repository}\n",
            state = dir.join("state").display(),
            cache = dir.join("cache").display(),
            lock = dir.join("upkeep.lock").display(),
        ),
    )
    .map_err(Fail::io("write an upkeep config"))?;
    Ok(config.to_string_lossy().into_owned())
}
