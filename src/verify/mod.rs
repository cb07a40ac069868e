//! Verification after the start (`[[targets.X.verify]]`): checks run in the
//! `health` step once the health gate passed; any failed check fails the
//! step, and the run rolls back.
//!
//! Three kinds of check:
//!
//! - **http**: a GET that does not follow redirects, through
//!   [`crate::download::Http::check`]; it passes when the status is one of
//!   `status` (default: any 2xx), the body contains `body_contains` and
//!   each JSON pointer of `json` holds its value (`{version}` substituted);
//! - **command**: an argument vector run without a shell (`{version}`,
//!   `{from}`, `{to}` substituted in the arguments); exit status 0 passes;
//! - **journal**: the units' journal since the install (the position the
//!   health gate's baseline took): a line containing a `journal_fail`
//!   pattern fails, one containing a `journal_warn` pattern is a warning.
//!
//! Each check gives a [`CheckResult`]; its excerpt (the start of the body,
//! the output, or the matching line) and its message are masked with
//! [`Masker`], the one secret mask of upkeep.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::confmerge::Masker;
use crate::download::Http;
use crate::health::{JournalEntry, JournalRead, JournalSource};

/// Default time a check may take (`timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest excerpt kept in a result, in characters.
const EXCERPT_MAX: usize = 200;

/// Most of a body an http check reads.
const BODY_LIMIT: usize = 1 << 20;

/// One configured check (`[[targets.X.verify]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `name`: unique within the target; names the check in every message.
    pub name: String,
    /// How long an http or command check may take (`timeout`, default 60 s).
    pub timeout: Duration,
    /// What it checks.
    pub kind: CheckKind,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `http`: a GET.
    Http {
        /// The URL (http or https).
        url: Url,
        /// Statuses that pass (`status`); empty: any 2xx.
        status: Vec<u16>,
        /// Text the body must contain (`body_contains`).
        body_contains: Option<String>,
        /// JSON pointer → value the body must hold there (`json`), in the
        /// order written; values may hold `{version}`, `{from}`, `{to}`.
        json: Vec<(String, String)>,
    },
    /// `command`: a program and its arguments, no shell.
    Command {
        /// The argument vector; `argv[0]` is an absolute path.
        argv: Vec<String>,
    },
    /// `journal_fail` / `journal_warn`: lines of the units' journal.
    Journal {
        /// Substrings that fail the check.
        fail: Vec<String>,
        /// Substrings reported as a warning.
        warn: Vec<String>,
    },
}

impl CheckKind {
    /// `http`, `command` or `journal`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Http { .. } => "http",
            CheckKind::Command { .. } => "command",
            CheckKind::Journal { .. } => "journal",
        }
    }
}

/// What `{version}`, `{from}` and `{to}` stand for in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The product version being installed (`1.1.0` for package `1.1.0-1`).
    pub version: String,
    /// The package version installed before the run (empty: none).
    pub from: String,
    /// The package version being installed.
    pub to: String,
}

impl Vars {
    /// The values for a run from package version `from` to `to`; the
    /// product version as [`crate::version::PkgVersion::product`] derives
    /// it (its upstream part when it is not semver).
    pub fn new(family: crate::version::Family, from: Option<&str>, to: &str) -> Vars {
        let version = match crate::version::PkgVersion::parse(family, to) {
            Ok(v) => v
                .product()
                .map(|p| p.to_string())
                .unwrap_or_else(|| v.upstream().to_string()),
            Err(_) => crate::version::upstream_of(to).to_string(),
        };
        Vars {
            version,
            from: from.unwrap_or_default().to_string(),
            to: to.to_string(),
        }
    }

    /// `text` with the placeholders replaced.
    pub fn apply(&self, text: &str) -> String {
        text.replace("{version}", &self.version)
            .replace("{from}", &self.from)
            .replace("{to}", &self.to)
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed: the run rolls back.
    Failed,
    /// Something worth seeing (a `journal_warn` line); does not fail.
    Warning,
}

impl Outcome {
    /// `passed`, `failed` or `warning`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Warning => "warning",
        }
    }
}

/// One check's result, as the journal, the report and `--json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's `name`.
    pub name: String,
    /// `http`, `command` or `journal`.
    pub kind: String,
    /// Passed, failed or warning.
    pub outcome: Outcome,
    /// How long it took.
    pub duration_ms: u64,
    /// The first ~200 characters of the body or output, or the matching
    /// journal line (masked).
    pub excerpt: String,
    /// Why it failed or warns (masked); None when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The checks that failed, as the error of the `health` step.
#[derive(Debug, Clone)]
pub struct Failed {
    /// Every check's result (the passed ones too).
    pub results: Vec<CheckResult>,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| {
                format!(
                    "verify {:?}: {}",
                    r.name,
                    r.message.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        f.write_str(&failed.join("; "))
    }
}

impl std::error::Error for Failed {}

/// What the checks run against.
pub struct Env<'a> {
    /// The HTTP client.
    pub http: &'a Http,
    /// Where the units' journal is read.
    pub journal: &'a JournalSource,
    /// The journal position before the install: `Some(None)` when the
    /// journal was empty then; `None` when unknown (journal checks warn
    /// that they could not look).
    pub since: Option<Option<&'a str>>,
    /// The target's units.
    pub units: &'a [String],
    /// The placeholders' values.
    pub vars: &'a Vars,
}

/// Runs every check in turn (all of them, also after a failure, so that
/// the report shows each).
pub async fn run_all(checks: &[Check], env: &Env<'_>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for c in checks {
        out.push(run(c, env).await);
    }
    out
}

/// `Err` with every result when a check failed.
pub fn verdict(results: Vec<CheckResult>) -> Result<Vec<CheckResult>, Failed> {
    if results.iter().any(|r| r.outcome == Outcome::Failed) {
        Err(Failed { results })
    } else {
        Ok(results)
    }
}

/// What one check found: outcome, excerpt (masked, clipped), message.
struct Found {
    outcome: Outcome,
    excerpt: String,
    message: Option<String>,
}

impl Found {
    fn passed(excerpt: String) -> Found {
        Found {
            outcome: Outcome::Passed,
            excerpt,
            message: None,
        }
    }

    fn failed(excerpt: String, message: String) -> Found {
        Found {
            outcome: Outcome::Failed,
            excerpt,
            message: Some(message),
        }
    }
}

/// Runs one check.
pub async fn run(check: &Check, env: &Env<'_>) -> CheckResult {
    let started = Instant::now();
    let found = match &check.kind {
        CheckKind::Http {
            url,
            status,
            body_contains,
            json,
        } => {
            let answer = env.http.check(url, check.timeout, BODY_LIMIT).await;
            judge_http(
                url,
                answer,
                status,
                body_contains.as_deref(),
                json,
                env.vars,
            )
        }
        CheckKind::Command { argv } => run_command(argv, check.timeout, env.vars).await,
        CheckKind::Journal { fail, warn } => match env.since {
            None => Found {
                outcome: Outcome::Warning,
                excerpt: String::new(),
                message: Some("not checked: no journal position from before the install".into()),
            },
            Some(cursor) => {
                let read = match cursor {
                    Some(c) => JournalRead::After(c),
                    None => JournalRead::All,
                };
                match env.journal.read(read).await {
                    Ok(entries) => judge_journal(&entries, env.units, fail, warn),
                    Err(e) => {
                        Found::failed(String::new(), format!("cannot read the journal: {e:#}"))
                    }
                }
            }
        },
    };
    CheckResult {
        name: check.name.clone(),
        kind: check.kind.name().into(),
        outcome: found.outcome,
        duration_ms: started.elapsed().as_millis() as u64,
        excerpt: found.excerpt,
        message: found.message,
    }
}

/// Judges an http check's answer.
fn judge_http(
    url: &Url,
    answer: anyhow::Result<(u16, Vec<u8>)>,
    status: &[u16],
    body_contains: Option<&str>,
    json: &[(String, String)],
    vars: &Vars,
) -> Found {
    let masker = Masker::portal_default();
    let (code, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            return Found::failed(String::new(), masker.mask_text(&format!("GET {e:#}"), &[]));
        }
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let known = parsed
        .as_ref()
        .map(|v| masker.secrets_in(v))
        .unwrap_or_default();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let mask = |text: &str| masker.mask_text(text, &known);
    let excerpt = clip(&mask(&body));
    let ok_status = if status.is_empty() {
        (200..300).contains(&code)
    } else {
        status.contains(&code)
    };
    if !ok_status {
        return Found::failed(
            excerpt,
            format!("GET {url} answered {code}, wanted {}", wanted(status)),
        );
    }
    if let Some(needle) = body_contains
        && !body.contains(needle)
    {
        return Found::failed(
            excerpt,
            mask(&format!(
                "GET {url} answered {code} without {needle:?} in the body"
            )),
        );
    }
    if !json.is_empty() {
        let Some(doc) = &parsed else {
            return Found::failed(
                excerpt,
                format!("GET {url} answered {code} with a body that is not JSON"),
            );
        };
        for (pointer, value) in json {
            let expected = vars.apply(value);
            let message = match doc.pointer(pointer) {
                None => Some(format!("GET {url}: the JSON body has no {pointer}")),
                Some(actual) if json_matches(actual, &expected) => None,
                Some(actual) => Some(format!(
                    "GET {url}: {pointer} is {actual}, wanted {expected:?}"
                )),
            };
            if let Some(m) = message {
                return Found::failed(excerpt, mask(&m));
            }
        }
    }
    Found::passed(excerpt)
}

/// Whether a JSON value reads as `expected`: a string equal to it, or a
/// number or boolean whose JSON text is it.
fn json_matches(actual: &serde_json::Value, expected: &str) -> bool {
    use serde_json::Value;
    match actual {
        Value::String(s) => s == expected,
        Value::Number(_) | Value::Bool(_) => {
            serde_json::to_string(actual).is_ok_and(|t| t == expected)
        }
        _ => false,
    }
}

/// The statuses wanted, for a message: `2xx`, `200`, `200 or 302`,
/// `200, 201 or 204`.
fn wanted(status: &[u16]) -> String {
    match status {
        [] => "2xx".into(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(u16::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}

/// Runs a command check: no shell, stdin closed, killed at the timeout.
async fn run_command(argv: &[String], timeout: Duration, vars: &Vars) -> Found {
    let masker = Masker::portal_default();
    let argv: Vec<String> = argv.iter().map(|a| vars.apply(a)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Found::failed(String::new(), "no program to run".into());
    };
    let shown = masker.mask_text(&argv.join(" "), &[]);
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Found::failed(String::new(), format!("cannot run {shown}: {e}")),
    };
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Found::failed(
                String::new(),
                format!(
                    "{shown} did not finish within {} (killed)",
                    humantime::format_duration(timeout)
                ),
            );
        }
        Ok(Err(e)) => return Found::failed(String::new(), format!("{shown}: {e}")),
        Ok(Ok(out)) => out,
    };
    let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        if !text.trim().is_empty() {
            text.push('\n');
        }
        text.push_str(stderr.trim_end());
    }
    let excerpt = clip(&masker.mask_text(&text, &[]));
    if out.status.success() {
        return Found::passed(excerpt);
    }
    use std::os::unix::process::ExitStatusExt;
    let how = match (out.status.code(), out.status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {}", out.status),
    };
    let first = excerpt.lines().next().unwrap_or("").trim();
    let message = if first.is_empty() {
        format!("{shown} {how}")
    } else {
        format!("{shown} {how}: {first}")
    };
    Found::failed(excerpt, message)
}

/// Judges the units' journal lines: the first line matching a `fail`
/// pattern fails, else the first matching a `warn` pattern warns (with
/// how many did).
fn judge_journal(
    entries: &[JournalEntry],
    units: &[String],
    fail: &[String],
    warn: &[String],
) -> Found {
    let masker = Masker::portal_default();
    let shown =
        |(unit, line): (String, String)| clip(&masker.mask_text(&format!("{unit}: {line}"), &[]));
    if let Some((unit, line)) = entries
        .iter()
        .find_map(|e| crate::health::error_line(e, units, fail))
    {
        let line = masker.mask_text(&line, &[]);
        return Found::failed(
            clip(&format!("{unit}: {line}")),
            format!("{unit} logged since the start: {line}"),
        );
    }
    let warnings: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| crate::health::error_line(e, units, warn))
        .collect();
    let n = warnings.len();
    match warnings.into_iter().next() {
        None => Found::passed(String::new()),
        Some(first) => Found {
            outcome: Outcome::Warning,
            excerpt: shown(first),
            message: Some(match n {
                1 => "1 line matched journal_warn".into(),
                n => format!("{n} lines matched journal_warn"),
            }),
        },
    }
}

/// Text trimmed and cut to about [`EXCERPT_MAX`] characters.
fn clip(text: &str) -> String {
    let text = text.trim();
    let mut out: String = text.chars().take(EXCERPT_MAX).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
