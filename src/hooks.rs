//! `[[targets.NAME.hook]]`: a vendor's own step (a migration tool, a cache
//! warm-up) that upkeep runs at a named point of a transition.
//!
//! A hook is an argument vector, executed directly — never through a shell —
//! with `{from}` and `{to}` in its arguments replaced by the product
//! versions of the transition. It runs in its own process group with no
//! stdin; stdout and stderr go to one pipe, whose last lines (masked with
//! [`Masker`]) are kept for the journal. A hook that outlives its timeout is
//! killed (its whole process group).
//!
//! The points, inside the journaled steps (there are no steps of their own):
//! `before-stop` at the end of `backup-files` (the service still runs: a
//! failure changes nothing), `after-backup` at the end of `backup-database`,
//! `after-install` at the end of `install`, `after-start` at the end of
//! `start` (before the health gate). A failure after the stop fails its step,
//! and the run is rolled back (exit 4). Hooks run in upgrades, rollbacks and
//! downgrades alike, never while a failed run is being reverted.

use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::confmerge::Masker;

/// Default of `hook.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How many lines of a hook's output are kept.
const TAIL_LINES: usize = 20;

/// At most this many bytes of output are read into memory (the last ones).
const KEEP_BYTES: usize = 64 * 1024;

/// Where a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum At {
    /// At the end of `backup-files`, before the units stop.
    BeforeStop,
    /// After the database dump (`backup-database`).
    AfterBackup,
    /// After the packages went in (`install`).
    AfterInstall,
    /// After the units started (`start`), before the health gate.
    AfterStart,
}

impl At {
    /// Every point, in the order a run passes them.
    pub const ALL: [At; 4] = [
        At::BeforeStop,
        At::AfterBackup,
        At::AfterInstall,
        At::AfterStart,
    ];

    /// The name in the config.
    pub fn name(self) -> &'static str {
        match self {
            At::BeforeStop => "before-stop",
            At::AfterBackup => "after-backup",
            At::AfterInstall => "after-install",
            At::AfterStart => "after-start",
        }
    }

    /// Parses the config's name.
    ///
    /// # Errors
    ///
    /// Not one of the names; the message lists them.
    pub fn parse(text: &str) -> Result<At, String> {
        At::ALL
            .into_iter()
            .find(|a| a.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown hook point {text:?}; use one of {}",
                    At::ALL.map(|a| format!("{:?}", a.name())).join(", ")
                )
            })
    }
}

/// One `[[targets.NAME.hook]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// Where it runs.
    pub at: At,
    /// The program (an absolute path) and its arguments; `{from}` and
    /// `{to}` are substituted.
    pub command: Vec<String>,
    /// How long it may run (then it is killed and fails).
    pub timeout: Duration,
}

/// What one hook did, for the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookRun {
    /// `hook[0]`: its index in the target's hooks.
    pub hook: String,
    /// Where it ran.
    pub at: At,
    /// The argument vector run (substituted, masked).
    pub argv: Vec<String>,
    /// Its exit code (None: killed by a signal, or it could not start).
    pub exit: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Killed after its timeout.
    pub timed_out: bool,
    /// How long it ran.
    pub duration_ms: u64,
    /// The last lines of its stdout and stderr, masked.
    pub output: String,
    /// Why it could not start, if it could not.
    pub error: Option<String>,
}

impl HookRun {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.exit == Some(0) && !self.timed_out && self.error.is_none()
    }

    /// One line for an error: `hook[1] (after-start) /opt/x failed: exit
    /// status 1: LAST LINE`.
    pub fn failure(&self) -> String {
        let how = if let Some(e) = &self.error {
            e.clone()
        } else if self.timed_out {
            format!("timed out after {} ms and was killed", self.duration_ms)
        } else if let Some(sig) = self.signal {
            format!("killed by signal {sig}")
        } else {
            format!("exit status {}", self.exit.unwrap_or(-1))
        };
        let last = self
            .output
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty());
        let program = self.argv.first().map(String::as_str).unwrap_or("?");
        let line = match last {
            Some(l) => format!(
                "{} ({}) {program} failed: {how}: {l}",
                self.hook,
                self.at.name()
            ),
            None => format!("{} ({}) {program} failed: {how}", self.hook, self.at.name()),
        };
        crate::error::one_line_text(&line)
    }
}

/// A hook that failed: the error a step fails with. The journal records
/// `runs` as the failed step's detail (`"hooks": [...]`).
#[derive(Debug, Clone)]
pub struct HookFailed {
    /// One line naming the hook, how it failed and its last output line.
    pub message: String,
    /// What each hook of the point did, the failed one last.
    pub runs: Vec<HookRun>,
}

impl std::fmt::Display for HookFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HookFailed {}

/// `arg` with `{from}` and `{to}` replaced.
pub fn substitute(arg: &str, from: &str, to: &str) -> String {
    arg.replace("{from}", from).replace("{to}", to)
}

/// Runs one hook (`index` in the target's hooks) for the transition
/// `from` → `to` (product versions; `from` empty when nothing was
/// installed).
pub async fn run(index: usize, hook: &Hook, from: &str, to: &str) -> HookRun {
    let masker = Masker::portal_default().with_every_known_secret();
    let argv: Vec<String> = hook
        .command
        .iter()
        .map(|a| substitute(a, from, to))
        .collect();
    let mut record = HookRun {
        hook: format!("hook[{index}]"),
        at: hook.at,
        argv: argv.iter().map(|a| masker.mask_text(a, &[])).collect(),
        exit: None,
        signal: None,
        timed_out: false,
        duration_ms: 0,
        output: String::new(),
        error: None,
    };
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        record.error = Some("empty command".into());
        return record;
    };
    let spawned = (|| {
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .env("UPKEEP_FROM", from)
            .env("UPKEEP_TO", to)
            .env("UPKEEP_HOOK", hook.at.name())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C reaches upkeep (which defers
            // it), and a time-out kills everything the hook started.
            .process_group(0);
        let child = cmd.spawn()?;
        // The Command holds the pipe's write ends: drop them, so that the
        // reader sees the end when the hook (and its children) exit.
        drop(cmd);
        Ok::<_, std::io::Error>((child, reader))
    })();
    let (mut child, mut reader) = match spawned {
        Ok(x) => x,
        Err(e) => {
            record.error = Some(format!("cannot run {program}: {e}"));
            return record;
        }
    };
    let collect = tokio::task::spawn_blocking(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 * KEEP_BYTES {
                        kept.drain(..kept.len() - KEEP_BYTES);
                    }
                }
            }
        }
        kept
    });
    let status = match tokio::time::timeout(hook.timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            record.timed_out = true;
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // Children of the hook that escaped its process group may hold the
    // pipe: give the output a moment, not forever.
    let output = tokio::time::timeout(Duration::from_secs(5), collect)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    record.duration_ms = started.elapsed().as_millis() as u64;
    match status {
        Ok(s) => {
            record.exit = s.code();
            record.signal = s.signal();
        }
        Err(e) => record.error = Some(format!("waiting for {program}: {e}")),
    }
    let text = String::from_utf8_lossy(&output);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    record.output = masker.mask_text(&tail, &[]);
    record
}

/// Runs the hooks at `at` in order, stopping at the first that fails.
/// Returns what each did (for the step's journal detail), or a
/// [`HookFailed`] naming the hook that failed (`suffix` appended to its
/// message).
pub async fn run_at(
    hooks: &[Hook],
    at: At,
    from: &str,
    to: &str,
    suffix: &str,
) -> Result<Vec<HookRun>, HookFailed> {
    let mut runs = Vec::new();
    for (i, h) in hooks.iter().enumerate().filter(|(_, h)| h.at == at) {
        tracing::info!("running {} hook[{i}]: {}", at.name(), h.command.join(" "));
        let r = run(i, h, from, to).await;
        let ok = r.ok();
        let failure = r.failure();
        runs.push(r);
        if !ok {
            return Err(HookFailed {
                message: format!("{failure}{suffix}"),
                runs,
            });
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell script file (`#!/bin/sh`), run by its path as a vendor's
    /// would be: upkeep itself never starts a shell.
    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("vendor-script");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn hook(at: At, command: &[&str], timeout: Duration) -> Hook {
        Hook {
            at,
            command: command.iter().map(|s| (*s).to_string()).collect(),
            timeout,
        }
    }

    #[test]
    fn hook_points_parse() {
        assert_eq!(At::parse("after-install"), Ok(At::AfterInstall));
        assert_eq!(At::parse("before-stop"), Ok(At::BeforeStop));
        let e = At::parse("after-lunch").unwrap_err();
        assert!(e.contains("\"after-start\""), "{e}");
        assert_eq!(
            substitute("--from={from}", "1.0.0", "2.1.0"),
            "--from=1.0.0"
        );
        assert_eq!(substitute("{to}{to}", "", "2"), "22");
    }

    #[tokio::test]
    async fn hook_substitutes_and_runs_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let h = hook(
            At::AfterInstall,
            &[
                "/usr/bin/touch",
                &format!("{}/{{from}}-{{to}}", dir.path().display()),
                &format!("{}/$(echo x);", dir.path().display()),
            ],
            Duration::from_secs(10),
        );
        let r = run(2, &h, "1.0.0", "2.1.0").await;
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.hook, "hook[2]");
        assert!(dir.path().join("1.0.0-2.1.0").exists());
        // No shell: the `$(...)` and `;` are part of the file name.
        assert!(dir.path().join("$(echo x);").exists());
        assert_eq!(r.argv[1], format!("{}/1.0.0-2.1.0", dir.path().display()));
    }

    #[tokio::test]
    async fn hook_exit_status_and_output_tail_masked() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "echo to stdout; echo 'postgres://portal:s3cr3t-pw@db/portal' >&2; echo last words; exit 3",
        );
        let h = hook(At::AfterStart, &[&program], Duration::from_secs(10));
        let failed = run_at(std::slice::from_ref(&h), At::AfterStart, "1", "2", "")
            .await
            .unwrap_err();
        assert_eq!(failed.runs.len(), 1);
        let r = &failed.runs[0];
        assert_eq!(r.exit, Some(3));
        assert!(!r.ok());
        assert!(r.output.contains("to stdout"), "{r:?}");
        assert!(!r.output.contains("s3cr3t-pw"), "{r:?}");
        assert!(r.output.contains("********"), "{r:?}");
        let e = anyhow::Error::new(failed.clone());
        assert_eq!(
            e.to_string(),
            format!("hook[0] (after-start) {program} failed: exit status 3: last words")
        );
        assert!(e.downcast_ref::<HookFailed>().is_some());
        // Other points' hooks do not run.
        let runs = run_at(&[h], At::AfterInstall, "1", "2", "").await.unwrap();
        assert!(runs.is_empty());
    }

    #[tokio::test]
    async fn hook_is_killed_on_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "echo started; sleep 30 & sleep 30");
        let h = hook(At::BeforeStop, &[&program], Duration::from_millis(300));
        let started = Instant::now();
        let r = run(0, &h, "1", "2").await;
        assert!(started.elapsed() < Duration::from_secs(10), "{r:?}");
        assert!(r.timed_out && !r.ok(), "{r:?}");
        assert_eq!(r.signal, Some(9), "{r:?}");
        assert_eq!(r.output, "started");
        assert!(r.failure().contains("timed out"), "{}", r.failure());
    }

    #[tokio::test]
    async fn hook_that_cannot_start_fails() {
        let h = hook(At::AfterBackup, &["/nonexistent/migrate"], DEFAULT_TIMEOUT);
        let r = run(1, &h, "1", "2").await;
        assert!(!r.ok());
        assert!(
            r.failure()
                .starts_with("hook[1] (after-backup) /nonexistent/migrate failed: cannot run"),
            "{}",
            r.failure()
        );
        let empty = hook(At::AfterBackup, &[], DEFAULT_TIMEOUT);
        assert!(!run(0, &empty, "1", "2").await.ok());
    }
}
