//! The health gate after a start: it judges the new version.
//!
//! The gate passes when, at one moment and again after a settle window,
//! every unit is `active` (not merely "activating"), the health URL answers
//! 2xx and — when a [`Baseline`] taken before the install is given — none of
//! the units restarted and none logged a line matching `log_errors` since.
//! It fails at once when something is definitively wrong:
//!
//! - a unit is `failed` (its state and `Result` are named);
//! - a unit's journal has a line matching a `log_errors` substring since the
//!   baseline (lines logged while the package's postinst started the new
//!   version count too); the unit and the line are named;
//! - a unit restarted since the baseline: `NRestarts` grew, or systemd
//!   logged "Scheduled restart job" for it (that message survives the
//!   counter's reset by a manual start or stop in the postinst), or its
//!   `InvocationID` changed while the gate watched it.
//!
//! Otherwise it looks again every 250 ms until the timeout.
//!
//! The journal is read with `journalctl --output=json --after-cursor=C`
//! without matches, and filtered here: with matches, journalctl 252 skips
//! the first matching entry after a cursor that does not itself match.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::download::Http;
use crate::systemd::{ServiceInfo, ServiceManager};

/// How often the gate looks again.
const POLL: Duration = Duration::from_millis(250);

/// How long the healthy state must hold (same invocations, checked every
/// 250 ms) before a gate with a baseline passes: long enough to see a
/// version that answers and then crashes.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Longest journal line quoted in an error.
const LINE_MAX: usize = 200;

/// `MESSAGE_ID` of systemd's "Scheduled restart job" message
/// (`SD_MESSAGE_UNIT_RESTART_SCHEDULED`).
pub const RESTART_SCHEDULED: &str = "5eb03494b6584870a536b337290809b3";

/// How long one `journalctl` may take.
const JOURNALCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// The journal fields the gate reads (`__CURSOR` always comes along).
const JOURNAL_FIELDS: &str = "MESSAGE,MESSAGE_ID,UNIT,_SYSTEMD_UNIT,_PID";

/// Which journal the gate reads: the host's by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalSource {
    /// Read the journal of the system under this directory
    /// (`journalctl --root=DIR`; `/proc/PID/root` reads a container's).
    pub root: Option<PathBuf>,
    /// Read the journal files in this directory (`journalctl --directory=DIR`).
    pub directory: Option<PathBuf>,
}

/// Where a read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalRead<'a> {
    /// Only the newest entry (to learn the current position).
    Last,
    /// Every entry after this cursor.
    After(&'a str),
    /// Every entry (the journal was empty when the baseline was taken).
    All,
}

impl JournalSource {
    /// The `journalctl` arguments for a read.
    pub fn args(&self, read: JournalRead<'_>) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--no-pager".into(),
            "--quiet".into(),
            "--output=json".into(),
            "--all".into(),
            format!("--output-fields={JOURNAL_FIELDS}").into(),
        ];
        if let Some(root) = &self.root {
            let mut r = OsString::from("--root=");
            r.push(root);
            a.push(r);
        }
        if let Some(dir) = &self.directory {
            let mut d = OsString::from("--directory=");
            d.push(dir);
            a.push(d);
        }
        match read {
            JournalRead::Last => a.push("--lines=1".into()),
            JournalRead::After(c) => a.push(format!("--after-cursor={c}").into()),
            JournalRead::All => {}
        }
        a
    }

    /// Runs journalctl and parses its entries.
    pub async fn read(&self, read: JournalRead<'_>) -> anyhow::Result<Vec<JournalEntry>> {
        let mut cmd = tokio::process::Command::new("journalctl");
        cmd.args(self.args(read))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(JOURNALCTL_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                anyhow::anyhow!("journalctl did not answer within {JOURNALCTL_TIMEOUT:?}")
            })?
            .context("cannot run journalctl")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            bail!("journalctl failed ({}): {}", out.status, clip(last));
        }
        parse_journal(&String::from_utf8_lossy(&out.stdout))
    }

    /// The cursor of the newest entry; None when the journal is empty.
    pub async fn cursor(&self) -> anyhow::Result<Option<String>> {
        Ok(self.read(JournalRead::Last).await?.pop().map(|e| e.cursor))
    }
}

/// One journal entry, with the fields the gate reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalEntry {
    /// `__CURSOR`: where the entry sits in the journal.
    pub cursor: String,
    /// `MESSAGE` (binary messages decoded lossily; several values joined
    /// by newlines).
    pub message: String,
    /// `MESSAGE_ID`, if any.
    pub message_id: Option<String>,
    /// `UNIT`: the unit systemd writes about (its own messages).
    pub unit: Option<String>,
    /// `_SYSTEMD_UNIT`: the unit of the process that logged (trusted).
    pub systemd_unit: Option<String>,
    /// `_PID`: the process that logged (trusted).
    pub pid: Option<String>,
}

/// Parses `journalctl --output=json`: one JSON object per line.
pub fn parse_journal(text: &str) -> anyhow::Result<Vec<JournalEntry>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| {
            format!("journalctl printed a line that is not JSON: {}", clip(line))
        })?;
        let Some(obj) = v.as_object() else {
            bail!(
                "journalctl printed a line that is not an entry: {}",
                clip(line)
            );
        };
        let text = |k: &str| obj.get(k).and_then(field_text);
        let Some(cursor) = text("__CURSOR") else {
            bail!(
                "journalctl printed an entry without a cursor: {}",
                clip(line)
            );
        };
        out.push(JournalEntry {
            cursor,
            message: text("MESSAGE").unwrap_or_default(),
            message_id: text("MESSAGE_ID"),
            unit: text("UNIT"),
            systemd_unit: text("_SYSTEMD_UNIT"),
            pid: text("_PID"),
        });
    }
    Ok(out)
}

/// A journal field's value as text: a string, bytes (an array of numbers,
/// for binary data) or several values (an array of those).
fn field_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => {
            let values: Vec<String> = items.iter().filter_map(field_text).collect();
            (!values.is_empty()).then(|| values.join("\n"))
        }
        _ => None,
    }
}

/// The first line of `entry` that one of `units` logged and that contains
/// one of `patterns`: (unit, line clipped to ~200 characters).
pub fn error_line(
    entry: &JournalEntry,
    units: &[String],
    patterns: &[String],
) -> Option<(String, String)> {
    let unit = entry.systemd_unit.as_ref()?;
    if !units.contains(unit) {
        return None;
    }
    entry
        .message
        .lines()
        .find(|l| {
            patterns
                .iter()
                .any(|p| !p.is_empty() && l.contains(p.as_str()))
        })
        .map(|l| (unit.clone(), clip(l)))
}

/// The unit among `units` that systemd (PID 1) scheduled a restart of in
/// `entry`, if that is what the entry says.
pub fn restart_of<'a>(entry: &JournalEntry, units: &'a [String]) -> Option<&'a str> {
    if entry.message_id.as_deref() != Some(RESTART_SCHEDULED) || entry.pid.as_deref() != Some("1") {
        return None;
    }
    let unit = entry.unit.as_deref()?;
    units.iter().find(|u| *u == unit).map(String::as_str)
}

/// Automatic restarts since the baseline: the growth of `NRestarts` (when
/// it went down, systemd reset it on a manual start: all of `now` are new),
/// or the restarts the journal reported, whichever is more.
pub fn restarts_since(baseline: u32, now: u32, from_journal: u32) -> u32 {
    let counted = if now >= baseline { now - baseline } else { now };
    counted.max(from_journal)
}

/// A line trimmed and cut to about [`LINE_MAX`] characters.
fn clip(line: &str) -> String {
    let line = line.trim();
    let mut out: String = line.chars().take(LINE_MAX).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// A unit as the baseline saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitBaseline {
    /// Unit name.
    pub unit: String,
    /// `NRestarts` then.
    pub n_restarts: u32,
    /// `InvocationID` then (empty while stopped).
    pub invocation_id: String,
}

/// Taken just before the install (after the stop): the journal position
/// and each unit's restart count. Serializable, for the run's journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Which journal to read.
    pub journal: JournalSource,
    /// The newest journal entry then; None when the journal was empty.
    pub cursor: Option<String>,
    /// The units then.
    pub units: Vec<UnitBaseline>,
}

/// Takes the baseline of `units` on the host's journal.
pub async fn baseline(units: &[String], systemd: &impl ServiceManager) -> anyhow::Result<Baseline> {
    baseline_in(units, systemd, JournalSource::default()).await
}

/// Takes the baseline of `units`, reading the journal from `journal`.
pub async fn baseline_in(
    units: &[String],
    systemd: &impl ServiceManager,
    journal: JournalSource,
) -> anyhow::Result<Baseline> {
    let cursor = journal
        .cursor()
        .await
        .context("cannot read the journal position")?;
    let mut seen = Vec::new();
    for unit in units {
        let i = systemd.service_info(unit).await?;
        seen.push(UnitBaseline {
            unit: unit.clone(),
            n_restarts: i.n_restarts,
            invocation_id: i.invocation_id,
        });
    }
    Ok(Baseline {
        journal,
        cursor,
        units: seen,
    })
}

/// What the gate checks.
pub struct Gate<'a> {
    /// Units that must be active.
    pub units: &'a [String],
    /// URL that must answer 2xx, if any.
    pub url: Option<&'a Url>,
    /// How long to wait for health (a settle window under way may extend it
    /// by up to `settle`).
    pub timeout: Duration,
    /// How long everything must stay healthy, with no unit restarting,
    /// before the gate passes (`health.settle`, default [`SETTLE`]).
    pub settle: Duration,
    /// Journal line substrings that fail the gate (read only with `since`).
    pub log_errors: &'a [String],
    /// The baseline taken before the install; None: only units active, none
    /// failed, and the URL (for status-like callers; no settle window).
    pub since: Option<&'a Baseline>,
}

/// What the gate saw when it passed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Passed {
    /// Milliseconds from the gate's start until it passed.
    pub waited_ms: u64,
    /// Milliseconds from the gate's start until it first saw everything
    /// healthy (the settle window follows): when the service was back.
    pub healthy_after_ms: u64,
    /// The health URL's body (first 200 characters), if a URL was checked.
    pub body: Option<String>,
    /// Each unit's `InvocationID` when the gate passed.
    pub invocations: Vec<(String, String)>,
}

/// One look's verdict.
enum Verdict {
    /// Everything holds now.
    Healthy {
        body: Option<String>,
        invocations: Vec<(String, String)>,
    },
    /// Not yet; what is wrong.
    NotYet(String),
    /// Definitively wrong; `from_state` when the journal may still explain it.
    Fatal { message: String, from_state: bool },
}

/// What the gate has read of the journal so far.
#[derive(Default)]
struct Watch {
    /// The last entry read (None: the start of the journal).
    position: Option<String>,
    /// Restarts systemd logged, per unit.
    restarts: HashMap<String, u32>,
    /// The first matching line: (unit, line).
    error: Option<(String, String)>,
}

impl Watch {
    /// Reads the journal entries that arrived since the last read.
    async fn read(&mut self, gate: &Gate<'_>, base: &Baseline) -> anyhow::Result<()> {
        let read = match &self.position {
            Some(c) => JournalRead::After(c),
            None => JournalRead::All,
        };
        let entries = base.journal.read(read).await?;
        for e in &entries {
            if self.error.is_none() {
                self.error = error_line(e, gate.units, gate.log_errors);
            }
            if let Some(unit) = restart_of(e, gate.units) {
                *self.restarts.entry(unit.to_string()).or_default() += 1;
            }
        }
        if let Some(last) = entries.last() {
            self.position = Some(last.cursor.clone());
        }
        Ok(())
    }

    fn error_message(&self) -> Option<String> {
        self.error
            .as_ref()
            .map(|(unit, line)| format!("{unit} logged an error since the install: {line}"))
    }
}

/// Waits until the gate's rules hold (see the module docs); fails with the
/// reason in one line, at once when definitive, else when `timeout` passes.
pub async fn wait_healthy(
    gate: &Gate<'_>,
    systemd: &impl ServiceManager,
    http: &Http,
) -> anyhow::Result<Passed> {
    let start = Instant::now();
    let mut watch = Watch {
        position: gate.since.and_then(|b| b.cursor.clone()),
        ..Watch::default()
    };
    let mut first_invocations: Option<Vec<(String, String)>> = None;
    let mut healthy_since: Option<Instant> = None;
    loop {
        let problem = match look(gate, &mut watch, systemd, http).await {
            Verdict::Fatal {
                message,
                from_state,
            } => {
                if from_state && let Some(base) = gate.since {
                    // The unit's last words may reach the journal just after
                    // systemd noticed its end.
                    tokio::time::sleep(POLL).await;
                    if watch.read(gate, base).await.is_ok()
                        && let Some(logged) = watch.error_message()
                    {
                        bail!("{logged} ({message})");
                    }
                }
                bail!("{message}");
            }
            Verdict::NotYet(problem) => {
                healthy_since = None;
                problem
            }
            Verdict::Healthy { body, invocations } => {
                let now = Instant::now();
                let first_healthy = healthy_since.unwrap_or(now);
                let passed = |invocations| Passed {
                    waited_ms: start.elapsed().as_millis() as u64,
                    healthy_after_ms: first_healthy.duration_since(start).as_millis() as u64,
                    body,
                    invocations,
                };
                if gate.since.is_none() {
                    return Ok(passed(invocations));
                }
                match &first_invocations {
                    None => first_invocations = Some(invocations.clone()),
                    Some(first) => {
                        if let Some(((unit, before), (_, after))) = first
                            .iter()
                            .zip(&invocations)
                            .find(|((_, a), (_, b))| a != b)
                        {
                            bail!(
                                "{unit} restarted while the health gate watched it (invocation {before} → {after})"
                            );
                        }
                    }
                }
                let since = *healthy_since.get_or_insert(now);
                if now.duration_since(since) >= gate.settle {
                    return Ok(passed(invocations));
                }
                format!(
                    "healthy for {} ms of the {} ms settle window",
                    now.duration_since(since).as_millis(),
                    gate.settle.as_millis()
                )
            }
        };
        let elapsed = start.elapsed();
        let limit = match healthy_since {
            Some(_) => gate.timeout + gate.settle,
            None => gate.timeout,
        };
        if elapsed >= limit {
            bail!(
                "not healthy after {}: {problem}",
                humantime::format_duration(Duration::from_millis(elapsed.as_millis() as u64))
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One look at everything the gate checks.
async fn look(
    gate: &Gate<'_>,
    watch: &mut Watch,
    systemd: &impl ServiceManager,
    http: &Http,
) -> Verdict {
    let journal = match gate.since {
        Some(base) => watch.read(gate, base).await.map_err(|e| format!("{e:#}")),
        None => Ok(()),
    };
    if let Some(message) = watch.error_message() {
        return Verdict::Fatal {
            message,
            from_state: false,
        };
    }
    let mut invocations = Vec::new();
    for unit in gate.units {
        let info = match systemd.service_info(unit).await {
            Ok(i) => i,
            Err(e) => return Verdict::NotYet(format!("{e:#}")),
        };
        if let Some(message) = definitively_wrong(gate, watch, &info) {
            return Verdict::Fatal {
                message,
                from_state: true,
            };
        }
        if info.active_state != "active" {
            return Verdict::NotYet(format!(
                "{unit} is {}/{}",
                info.active_state, info.sub_state
            ));
        }
        invocations.push((unit.clone(), info.invocation_id));
    }
    if let Err(problem) = journal {
        // Not judged yet: the journal could not be read.
        return Verdict::NotYet(problem);
    }
    let Some(url) = gate.url else {
        return Verdict::Healthy {
            body: None,
            invocations,
        };
    };
    match http.probe(url, Duration::from_secs(5)).await {
        Ok((status, body)) if (200..300).contains(&status) => Verdict::Healthy {
            body: Some(body),
            invocations,
        },
        Ok((status, _)) => Verdict::NotYet(format!("{url} answers HTTP {status}")),
        Err(e) => Verdict::NotYet(format!("{e:#}")),
    }
}

/// A unit that failed, or restarted since the baseline.
fn definitively_wrong(gate: &Gate<'_>, watch: &Watch, info: &ServiceInfo) -> Option<String> {
    let unit = &info.unit;
    if info.active_state == "failed" {
        return Some(format!(
            "{unit} failed ({}/{}, result {}{})",
            info.active_state,
            info.sub_state,
            if info.result.is_empty() {
                "unknown"
            } else {
                &info.result
            },
            match info.exec_main_status {
                0 => String::new(),
                s => format!(", status {s}"),
            }
        ));
    }
    let base = gate.since?;
    let before = base
        .units
        .iter()
        .find(|u| &u.unit == unit)
        .map_or(0, |u| u.n_restarts);
    let logged = watch.restarts.get(unit).copied().unwrap_or(0);
    match restarts_since(before, info.n_restarts, logged) {
        0 => None,
        1 => Some(format!("{unit} restarted 1 time since the install")),
        n => Some(format!("{unit} restarted {n} times since the install")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `journalctl --output=json` from systemd 252, abridged: a service
    /// that starts, logs, crashes and is restarted by systemd.
    const JOURNAL: &str = r#"{"__CURSOR":"s=85e7;i=6c;b=6edc;m=28d9;t=660c;x=aa","UNIT":"crash.service","_PID":"1","MESSAGE":"Started crash.service.","_SYSTEMD_UNIT":"init.scope"}
{"__CURSOR":"s=85e7;i=6d;b=6edc;m=28da;t=660d;x=ab","_SYSTEMD_UNIT":"crash.service","MESSAGE":"up","__MONOTONIC_TIMESTAMP":"10965217718"}
{"__CURSOR":"s=85e7;i=6e;b=6edc;m=28db;t=660e;x=ac","_SYSTEMD_UNIT":"crash.service","_PID":"72","MESSAGE":"  FATAL: failed to migrate database: relation \"users\" already exists  "}
{"__CURSOR":"s=85e7;i=70;b=6edc;m=28dc;t=660f;x=ad","_SYSTEMD_UNIT":"init.scope","_PID":"1","UNIT":"crash.service","MESSAGE":"crash.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED"}
{"__CURSOR":"s=85e7;i=71;b=6edc;m=28dd;t=6610;x=ae","MESSAGE_ID":"5eb03494b6584870a536b337290809b3","UNIT":"crash.service","MESSAGE":"crash.service: Scheduled restart job, restart counter is at 1.","_PID":"1","_SYSTEMD_UNIT":"init.scope"}
{"__CURSOR":"s=85e7;i=72;b=6edc;m=28de;t=6611;x=af","MESSAGE_ID":"5eb03494b6584870a536b337290809b3","UNIT":"other.service","MESSAGE":"other.service: Scheduled restart job, restart counter is at 4.","_PID":"1","_SYSTEMD_UNIT":"init.scope"}
{"__CURSOR":"s=85e7;i=73;b=6edc;m=28df;t=6612;x=b0","MESSAGE_ID":"5eb03494b6584870a536b337290809b3","UNIT":"crash.service","MESSAGE":"forged","_PID":"4242","_SYSTEMD_UNIT":"crash.service"}
{"__CURSOR":"s=85e7;i=74;b=6edc;m=28e0;t=6613;x=b1","_SYSTEMD_UNIT":"crash.service","_PID":"80","MESSAGE":[102,97,105,108,101,100,32,116,111,32,109,105,103,114,97,116,101,32,100,97,116,97,98,97,115,101,255]}
{"__CURSOR":"s=85e7;i=75;b=6edc;m=28e1;t=6614;x=b2","_SYSTEMD_UNIT":"crash.service","_PID":"80","MESSAGE":null}
"#;

    /// A service manager that answers `service_info` from a script: each
    /// look takes the next state; the last one repeats.
    struct Scripted {
        states: std::sync::Mutex<std::collections::VecDeque<ServiceInfo>>,
    }

    impl Scripted {
        fn new(states: &[(&str, &str, u32, &str)]) -> Scripted {
            let states = states
                .iter()
                .map(|(active, sub, restarts, invocation)| ServiceInfo {
                    unit: "portal.service".into(),
                    active_state: active.to_string(),
                    sub_state: sub.to_string(),
                    result: if *active == "failed" {
                        "exit-code".into()
                    } else {
                        "success".into()
                    },
                    invocation_id: invocation.to_string(),
                    n_restarts: *restarts,
                    main_pid: 42,
                    exec_main_status: if *active == "failed" { 1 } else { 0 },
                    unit_file_state: "enabled".into(),
                })
                .collect();
            Scripted {
                states: std::sync::Mutex::new(states),
            }
        }
    }

    impl ServiceManager for Scripted {
        async fn stop(&self, _: &str, _: Duration) -> anyhow::Result<()> {
            Ok(())
        }
        async fn start(&self, _: &str, _: Duration) -> anyhow::Result<()> {
            Ok(())
        }
        async fn restart(&self, _: &str, _: Duration) -> anyhow::Result<()> {
            Ok(())
        }
        async fn daemon_reload(&self) -> anyhow::Result<()> {
            Ok(())
        }
        async fn state(&self, unit: &str) -> anyhow::Result<crate::systemd::UnitState> {
            let i = self.service_info(unit).await?;
            Ok(crate::systemd::UnitState {
                unit: i.unit,
                active_state: i.active_state,
                sub_state: i.sub_state,
            })
        }
        async fn service_info(&self, _: &str) -> anyhow::Result<ServiceInfo> {
            let mut s = self.states.lock().unwrap();
            let next = if s.len() > 1 {
                s.pop_front()
            } else {
                s.front().cloned()
            };
            Ok(next.unwrap())
        }
    }

    /// Runs the gate on `systemd`; with a baseline over an empty journal
    /// directory when `since` is true.
    fn run_gate(
        systemd: &Scripted,
        since: bool,
        timeout: Duration,
    ) -> (anyhow::Result<Passed>, Duration) {
        let journal_dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let u = units(&["portal.service"]);
        let http = Http::new(None).unwrap();
        rt.block_on(async {
            let base = Baseline {
                journal: JournalSource {
                    root: None,
                    directory: Some(journal_dir.path().to_path_buf()),
                },
                cursor: None,
                units: vec![UnitBaseline {
                    unit: "portal.service".into(),
                    n_restarts: 0,
                    invocation_id: String::new(),
                }],
            };
            let patterns = units(&["failed to migrate database"]);
            let gate = Gate {
                settle: SETTLE,
                units: &u,
                url: None,
                timeout,
                log_errors: &patterns,
                since: since.then_some(&base),
            };
            let started = Instant::now();
            let r = wait_healthy(&gate, systemd, &http).await;
            (r, started.elapsed())
        })
    }

    #[test]
    fn without_a_baseline_the_gate_passes_once_active() {
        let s = Scripted::new(&[
            ("activating", "start", 0, "a"),
            ("activating", "start", 0, "a"),
            ("active", "running", 0, "a"),
        ]);
        let (r, waited) = run_gate(&s, false, Duration::from_secs(5));
        let passed = r.unwrap();
        assert!(waited >= 2 * POLL && waited < SETTLE, "{waited:?}");
        assert_eq!(passed.invocations, [("portal.service".into(), "a".into())]);
    }

    #[test]
    fn a_failed_unit_fails_at_once_with_its_result() {
        let s = Scripted::new(&[("failed", "failed", 0, "")]);
        let (r, waited) = run_gate(&s, false, Duration::from_secs(5));
        assert_eq!(
            r.unwrap_err().to_string(),
            "portal.service failed (failed/failed, result exit-code, status 1)"
        );
        assert!(waited < POLL, "{waited:?}");
    }

    #[test]
    fn a_unit_that_never_becomes_active_times_out_with_its_state() {
        let s = Scripted::new(&[("activating", "start-pre", 0, "")]);
        let (r, waited) = run_gate(&s, true, Duration::from_millis(600));
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("not healthy after "), "{e}");
        assert!(
            e.ends_with(": portal.service is activating/start-pre"),
            "{e}"
        );
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
    }

    #[test]
    fn a_restart_counted_by_systemd_fails_the_gate() {
        let s = Scripted::new(&[
            ("active", "running", 0, "a"),
            ("activating", "auto-restart", 0, ""),
            ("active", "running", 1, "b"),
        ]);
        let (r, _) = run_gate(&s, true, Duration::from_secs(10));
        assert_eq!(
            r.unwrap_err().to_string(),
            "portal.service restarted 1 time since the install"
        );
    }

    #[test]
    fn a_new_invocation_while_watched_fails_the_gate() {
        let s = Scripted::new(&[
            ("active", "running", 0, "a"),
            ("active", "running", 0, "a"),
            ("active", "running", 0, "b"),
        ]);
        let (r, _) = run_gate(&s, true, Duration::from_secs(10));
        assert_eq!(
            r.unwrap_err().to_string(),
            "portal.service restarted while the health gate watched it (invocation a → b)"
        );
    }

    #[test]
    fn with_a_baseline_the_healthy_state_must_hold_for_the_settle_window() {
        let s = Scripted::new(&[
            ("active", "running", 0, "a"),
            ("activating", "start", 0, "a"),
            ("active", "running", 0, "a"),
        ]);
        let (r, waited) = run_gate(&s, true, Duration::from_secs(1));
        // The timeout passed while settling: the window may finish.
        r.unwrap();
        assert!(waited >= SETTLE + 2 * POLL, "{waited:?}");
        assert!(waited < SETTLE + Duration::from_secs(2), "{waited:?}");
    }

    fn units(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn journal_json_is_parsed_with_cursors_and_odd_messages() {
        let e = parse_journal(JOURNAL).unwrap();
        assert_eq!(e.len(), 9);
        assert_eq!(e[0].cursor, "s=85e7;i=6c;b=6edc;m=28d9;t=660c;x=aa");
        assert_eq!(e[0].unit.as_deref(), Some("crash.service"));
        assert_eq!(e[1].pid, None);
        assert_eq!(e[1].systemd_unit.as_deref(), Some("crash.service"));
        assert_eq!(e[4].message_id.as_deref(), Some(RESTART_SCHEDULED));
        // Binary message: decoded lossily.
        assert_eq!(e[7].message, "failed to migrate database\u{fffd}");
        // A field too large to show (without --all): no message.
        assert_eq!(e[8].message, "");
        assert_eq!(
            e.last().unwrap().cursor,
            "s=85e7;i=75;b=6edc;m=28e1;t=6614;x=b2"
        );
        assert!(parse_journal("").unwrap().is_empty());
        assert!(parse_journal("-- No entries --\n").is_err());
        assert!(parse_journal("{\"MESSAGE\":\"no cursor\"}\n").is_err());
    }

    #[test]
    fn several_values_of_a_field_are_joined() {
        let e = parse_journal(
            r#"{"__CURSOR":"c","MESSAGE":["first",[115,101,99,111,110,100]],"_SYSTEMD_UNIT":"a.service"}"#,
        )
        .unwrap();
        assert_eq!(e[0].message, "first\nsecond");
    }

    #[test]
    fn error_lines_come_from_the_units_own_output_only() {
        let e = parse_journal(JOURNAL).unwrap();
        let pats = units(&["failed to migrate database"]);
        let u = units(&["crash.service"]);
        let found: Vec<_> = e.iter().filter_map(|e| error_line(e, &u, &pats)).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "crash.service");
        assert_eq!(
            found[0].1,
            "FATAL: failed to migrate database: relation \"users\" already exists"
        );
        // Another unit's lines, and systemd's about the unit, do not count.
        let other = units(&["other.service"]);
        assert!(e.iter().all(|e| error_line(e, &other, &pats).is_none()));
        let status = units(&["status=3"]);
        assert!(e.iter().all(|e| error_line(e, &u, &status).is_none()));
        // No patterns, no errors; an empty pattern matches nothing.
        assert!(e.iter().all(|e| error_line(e, &u, &[]).is_none()));
        assert!(e.iter().all(|e| error_line(e, &u, &units(&[""])).is_none()));
    }

    #[test]
    fn long_lines_are_clipped_and_multiline_messages_searched_by_line() {
        let long = format!(
            "{{\"__CURSOR\":\"c\",\"_SYSTEMD_UNIT\":\"a.service\",\"MESSAGE\":\"ok\\nERROR {}\\nmore\"}}",
            "x".repeat(500)
        );
        let e = parse_journal(&long).unwrap();
        let (_, line) = error_line(&e[0], &units(&["a.service"]), &units(&["ERROR"])).unwrap();
        assert!(line.starts_with("ERROR xxx"));
        assert_eq!(line.chars().count(), LINE_MAX + 1);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn restarts_are_systemds_messages_about_the_unit() {
        let e = parse_journal(JOURNAL).unwrap();
        let u = units(&["crash.service"]);
        let restarts: Vec<_> = e.iter().filter_map(|e| restart_of(e, &u)).collect();
        // Not other.service's, not the one forged by the unit itself.
        assert_eq!(restarts, ["crash.service"]);
    }

    #[test]
    fn restart_counts_survive_a_reset_of_nrestarts() {
        assert_eq!(restarts_since(0, 0, 0), 0);
        assert_eq!(restarts_since(0, 2, 0), 2);
        assert_eq!(restarts_since(3, 5, 0), 2);
        // Reset by a manual start after the baseline, then one restart.
        assert_eq!(restarts_since(3, 1, 0), 1);
        // Reset again after restarts: the journal still knows.
        assert_eq!(restarts_since(0, 0, 2), 2);
    }

    #[test]
    fn journalctl_arguments() {
        let s = |a: Vec<OsString>| {
            a.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let local = JournalSource::default();
        let a = s(local.args(JournalRead::After("s=1;i=2")));
        assert_eq!(
            a,
            [
                "--no-pager",
                "--quiet",
                "--output=json",
                "--all",
                "--output-fields=MESSAGE,MESSAGE_ID,UNIT,_SYSTEMD_UNIT,_PID",
                "--after-cursor=s=1;i=2"
            ]
        );
        let container = JournalSource {
            root: Some("/proc/42/root".into()),
            directory: None,
        };
        let a = s(container.args(JournalRead::Last));
        assert!(a.contains(&"--root=/proc/42/root".to_string()));
        assert_eq!(a.last().map(String::as_str), Some("--lines=1"));
        let a = s(container.args(JournalRead::All));
        assert_eq!(a.last().map(String::as_str), Some("--root=/proc/42/root"));
    }
}
