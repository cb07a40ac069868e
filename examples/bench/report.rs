//! The report: the results table (BENCHMARKS.md) and the raw record
//! (bench/results.json), with the machine they were measured on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::measure::{Series, cell, dur, mib};

/// One line of the results table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `1a. APT check, small repo, cold`.
    pub name: String,
    /// upkeep's figure, as shown.
    pub upkeep: String,
    /// upkeep's figure as a number (seconds or MiB, see `unit`).
    pub upkeep_value: Option<f64>,
    /// The alternative and its figure, as shown.
    pub alternative: String,
    /// The alternative's figure as a number (same unit).
    pub alternative_value: Option<f64>,
    /// `s` (median wall time) or `MiB` (peak RSS).
    pub unit: &'static str,
    /// alternative ÷ upkeep (above 1: upkeep is faster or smaller).
    pub ratio: Option<f64>,
    /// The target, or `—`.
    pub target: String,
    /// Whether the target was met (judged on the medians); null when the
    /// row has none.
    pub met: Option<bool>,
    /// The same judged on the minimums, when the row has a timed target:
    /// where it differs from `met`, the verdict is within the noise of a
    /// shared machine.
    pub met_by_min: Option<bool>,
    /// Why the figures are what they are.
    pub note: String,
}

impl Row {
    /// A row with upkeep's figure only.
    pub fn new(name: &str, upkeep: String, upkeep_value: Option<f64>, unit: &'static str) -> Row {
        Row {
            name: name.to_string(),
            upkeep,
            upkeep_value,
            alternative: "—".into(),
            alternative_value: None,
            unit,
            ratio: None,
            target: "—".into(),
            met: None,
            met_by_min: None,
            note: String::new(),
        }
    }

    /// A row comparing two timed series: ratio = alternative ÷ upkeep.
    pub fn times(name: &str, up: &Series, alt: &Series) -> Row {
        Row {
            alternative: format!("{}: {}", alt.label, cell(alt)),
            alternative_value: Some(alt.median_s),
            ratio: Some(alt.median_s / up.median_s),
            ..Row::new(name, cell(up), Some(up.median_s), "s")
        }
    }

    /// The alternative, shown as `text`, with `value` (same unit).
    pub fn versus(mut self, text: String, value: f64) -> Row {
        self.alternative = text;
        self.alternative_value = Some(value);
        self.ratio = self.upkeep_value.map(|u| value / u);
        self
    }

    pub fn target(mut self, target: &str, met: bool) -> Row {
        self.target = target.to_string();
        self.met = Some(met);
        self
    }

    /// The verdict on the minimums (see `met_by_min`).
    pub fn by_min(mut self, met: bool) -> Row {
        self.met_by_min = Some(met);
        self
    }
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub series: BTreeMap<String, Series>,
    /// The "where the time goes" table: what, and its series.
    pub breakdown: Vec<(String, Series)>,
    pub notes: Vec<String>,
    /// What each row measured, for the Method section.
    pub method: Vec<String>,
    /// Extra tables (title, markdown), e.g. the cost curve.
    pub tables: Vec<(String, String)>,
}

impl Report {
    pub fn keep(&mut self, key: &str, s: &Series) {
        self.series.insert(key.to_string(), s.clone());
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// A note; it also becomes the `note` of every row added since the last
    /// note that has none yet.
    pub fn note(&mut self, text: String) {
        for row in self.rows.iter_mut().rev() {
            if !row.note.is_empty() {
                break;
            }
            row.note = text.clone();
        }
        self.notes.push(text);
    }

    pub fn breakdown(&mut self, what: &str, s: &Series) {
        self.breakdown.push((what.to_string(), s.clone()));
    }

    /// A peak RSS, marked when it is no more than the wrapper's floor.
    pub fn rss(&self, s: &Series) -> String {
        rss(s)
    }
}

/// A peak RSS, marked when it is no more than the wrapper's floor.
pub fn rss(s: &Series) -> String {
    if s.peak_rss_kib <= s.floor_kib + 64 {
        format!("≤ {} (wrapper floor)", mib(s.peak_rss_kib))
    } else {
        mib(s.peak_rss_kib)
    }
}

pub fn met_text(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn yes_no(met: Option<bool>, by_min: Option<bool>) -> String {
    let text = match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    };
    match (met, by_min) {
        (Some(m), Some(b)) if m != b => format!(
            "{text} ({} on the minimums)",
            if b { "met" } else { "missed" }
        ),
        _ => text.to_string(),
    }
}

/// The machine the run happened on.
#[derive(Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub os: String,
    pub date: String,
    pub work_filesystem: String,
    pub tools: BTreeMap<String, String>,
    /// /proc/loadavg when the measurements started and when they ended
    /// (other work on the machine shows here).
    pub load_before: String,
    pub load_after: String,
}

impl Machine {
    pub fn probe(work_parent: &Path) -> Machine {
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
            work_filesystem: filesystem_of(work_parent),
            tools: BTreeMap::new(),
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
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
pub fn first_line(argv: &[&str]) -> String {
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

pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| row | upkeep (min / median) | alternative (min / median) | ratio (alternative ÷ upkeep) | target | met? |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            r.upkeep,
            r.alternative,
            r.ratio
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_else(|| "—".into()),
            r.target,
            yes_no(r.met, r.met_by_min)
        );
    }
    s
}

/// The whole of BENCHMARKS.md.
pub fn markdown(m: &Machine, r: &Report, total: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "upkeep against the tools an operator would otherwise use, measured in one run on one machine by `cargo run --release --example bench` (as root; `examples/bench/`). Raw times of every run: `bench/results.json`. The bench writes this file; rerun it rather than editing the numbers. `UPKEEP_BENCH_ROWS=3` (or `1b,5c`) runs only those rows and writes nothing.\n"
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- Date: {}", m.date);
    let _ = writeln!(s, "- CPU: {}, {} cores", m.cpu, m.cores);
    let _ = writeln!(s, "- Memory: {}", m.memory);
    let _ = writeln!(s, "- Kernel: {} ({})", m.kernel, m.os);
    let _ = writeln!(s, "- Temporary files (every row): {}", m.work_filesystem);
    // More runnable tasks than cores, on average, at either end: the
    // machine was shared, and the line says so.
    let busy = [&m.load_before, &m.load_after].iter().any(|l| {
        l.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(|x| x > m.cores as f64)
    });
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min) when the measurements started (right after building upkeep) / when they ended: {} / {}{}",
        m.load_before,
        m.load_after,
        if busy {
            format!(
                " (busy: more runnable tasks than its {} cores; other work ran beside the bench, so wall times, medians above all, are inflated)",
                m.cores
            )
        } else {
            String::new()
        }
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
        "\nTimes are wall-clock times of whole commands, min / median of repeated runs (7 runs when one takes under a second, 5 under five seconds, 3 above, one untimed warm-up run first; rows 3, 4 and 7 use a fresh container per run and say how many). The ratio divides the alternative's median by upkeep's: above 1, upkeep is faster (or smaller). Targets are judged on the medians; where the minimums give the other verdict, the met column says so (such a verdict is within the noise of a shared machine; the load averages above show how busy it was). Peak RSS is the largest `ru_maxrss` of one run (the command and the children it waited for).\n"
    );
    let _ = writeln!(s, "## Notes\n");
    for n in &r.notes {
        let _ = writeln!(s, "- {n}");
    }
    for (title, body) in &r.tables {
        let _ = writeln!(s, "\n## {title}\n");
        s.push_str(body);
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
            rss(series)
        );
    }
    let _ = writeln!(s, "\n## Method\n");
    for line in &r.method {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(
        s,
        "- Every command is started by a Python wrapper (`/usr/bin/python3 -c`) as an argument vector, never a shell string, timed with `time.perf_counter()` around the run and reaped with `os.wait4` for its CPU time and peak RSS (per run; the wrapper's `getrusage(RUSAGE_CHILDREN).ru_maxrss` over all runs is in results.json too)."
    );
    s
}

/// The whole of bench/results.json.
pub fn json(m: &Machine, r: &Report, total: f64) -> String {
    let value = serde_json::json!({
        "machine": m,
        "total_seconds": total,
        "rows": r.rows,
        "series": r.series,
        "breakdown": r.breakdown.iter().map(|(what, s)| serde_json::json!({"what": what, "series": s.label})).collect::<Vec<_>>(),
        "notes": r.notes,
    });
    serde_json::to_string_pretty(&value).expect("json") + "\n"
}
