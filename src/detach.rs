//! Survive a dropped SSH session: an interactive `upgrade`, `rollback` or
//! `downgrade` re-executes itself inside a transient systemd unit
//! (`systemd-run --pipe --wait`), unless it already runs under systemd.
//!
//! The terminal stays attached (the unit gets this process's stdin, stdout
//! and stderr), so the operator sees and answers everything as before. When
//! the terminal goes away (SSH drops, the parent is killed), the run goes on
//! in its unit to the end, its log in the journal. Ctrl-C and SIGTERM are
//! passed on to the run, which stops at the end of its current step and
//! rolls back, as it would without the unit.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Set in the re-executed run's environment (and by anyone who wants the run
/// to stay in the current process: `UPKEEP_NO_DETACH=1`).
pub const DETACHED_ENV: &str = "UPKEEP_DETACHED";
/// Set to `1` to never re-execute in a transient unit.
pub const NO_DETACH_ENV: &str = "UPKEEP_NO_DETACH";

/// Environment variables a re-executed run keeps (the unit's environment is
/// otherwise systemd's clean one): upkeep's own, the log filter, the
/// failpoints of a test build, and the terminal's.
const KEPT_ENV_PREFIXES: &[&str] = &["UPKEEP_", "FAILPOINTS", "RUST_BACKTRACE", "NO_COLOR"];
const KEPT_ENV: &[&str] = &[
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "COLUMNS",
];

/// Whether the current process runs under systemd (a service, a timer's
/// service, or a transient unit): systemd sets `INVOCATION_ID` for it.
pub fn under_systemd() -> bool {
    std::env::var_os("INVOCATION_ID").is_some_and(|v| !v.is_empty())
}

/// Whether this run is the re-executed one, inside its transient unit.
pub fn is_detached() -> bool {
    std::env::var_os(DETACHED_ENV).is_some_and(|v| v == "1")
}

/// Why a run stays in this process, or `None` when it should re-execute in a
/// transient unit. `systemd_root` is the directory whose presence tells that
/// the host runs systemd (`/run/systemd/system`).
pub fn stay_reason(systemd_root: &Path, systemd_run: Option<&Path>) -> Option<&'static str> {
    if under_systemd() || is_detached() {
        return Some("already runs under systemd");
    }
    if std::env::var_os(NO_DETACH_ENV).is_some_and(|v| v == "1") {
        return Some("UPKEEP_NO_DETACH=1");
    }
    if !systemd_root.is_dir() {
        return Some("the host does not run systemd");
    }
    if systemd_run.is_none() {
        return Some("systemd-run is not installed");
    }
    None
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The `systemd-run` argument vector that re-executes `exe` with `args` in a
/// transient service named `unit`. systemd expands `$VAR` in a command line,
/// so every `$` in the arguments is doubled; `env` is what the run keeps.
pub fn systemd_run_argv(
    unit: &str,
    description: &str,
    exe: &Path,
    args: &[OsString],
    env: &[(String, String)],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = [
        "--unit",
        unit,
        "--description",
        description,
        "--pipe",
        "--wait",
        "--quiet",
        "--collect",
        "--same-dir",
        "--service-type=exec",
        // As upkeep-upgrade.service: a stop sends SIGTERM to upkeep alone (it
        // ends its step and rolls back), never to a running dpkg or dump.
        "--property=KillMode=mixed",
        "--property=TimeoutStopSec=15min",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    argv.push(format!("--setenv={DETACHED_ENV}=1").into());
    for (k, v) in env {
        argv.push(format!("--setenv={k}={v}").into());
    }
    argv.push("--".into());
    argv.push(escape_dollars(exe.as_os_str()));
    argv.extend(args.iter().map(|a| escape_dollars(a)));
    argv
}

/// `$` → `$$`, so that systemd passes the argument as given.
fn escape_dollars(arg: &std::ffi::OsStr) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::with_capacity(arg.len());
    for &b in arg.as_bytes() {
        out.push(b);
        if b == b'$' {
            out.push(b'$');
        }
    }
    OsString::from_vec(out)
}

/// The variables of `vars` a re-executed run keeps.
pub fn kept_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = vars
        .filter(|(k, _)| k != DETACHED_ENV)
        .filter(|(k, _)| {
            KEPT_ENV.contains(&k.as_str()) || KEPT_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .collect();
    kept.sort();
    kept
}

/// Re-executes this command in a transient unit and waits for it: returns
/// its exit code. SIGINT and SIGTERM are passed on to the run; SIGHUP (the
/// terminal went away) leaves it running and ends this process only.
///
/// # Errors
///
/// The current executable cannot be found or `systemd-run` cannot be
/// started; the caller then runs the command in this process.
pub fn reexec(systemd_run: &Path, command: &str, quiet: bool) -> std::io::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let unit = format!("upkeep-{command}-{}.service", std::process::id());
    let description = format!("upkeep {command} (started from a terminal)");
    let env = kept_env(std::env::vars());
    let argv = systemd_run_argv(&unit, &description, &exe, &args, &env);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        // systemd-run needs the system bus; when it does not answer, say so
        // in upkeep's own words (nothing has been done yet).
        let unreachable = crate::systemd::Systemd::connect()
            .await
            .err()
            .map(|e| crate::error::one_line(&e));
        if let Some(why) = unreachable {
            errln!(
                "upkeep: error: cannot reach systemd over D-Bus to run {command} in its own unit: {why}; nothing was changed"
            );
            return Ok(ExitCode::from(crate::error::exit::FAILED));
        }
        let mut child = tokio::process::Command::new(systemd_run)
            .args(&argv)
            .spawn()?;
        // For a person only: a script reads one line of error, no more.
        if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            errln!(
                "upkeep: running as {unit}: it goes on if this terminal goes away (journalctl -u {unit}; then `upkeep status`)"
            );
        }
        loop {
            let forward = tokio::select! {
                status = child.wait() => {
                    let status = status?;
                    return Ok(ExitCode::from(
                        status.code().map_or(crate::error::exit::FAILED, |c| u8::try_from(c).unwrap_or(u8::MAX)),
                    ));
                }
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => {
                    // The terminal is gone: the run carries on in its unit.
                    return Ok(ExitCode::from(129));
                }
            };
            // systemd-run --wait does not pass signals on: tell the unit's
            // main process, which ends its step and rolls back.
            let _ = tokio::process::Command::new("systemctl")
                .args(["kill", "--kill-whom=main", "--signal", forward, &unit])
                .status()
                .await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_doubled_so_systemd_passes_arguments_as_given() {
        let argv = systemd_run_argv(
            "upkeep-upgrade-1.service",
            "d",
            Path::new("/usr/bin/upkeep"),
            &["upgrade".into(), "--to".into(), "$HOME".into()],
            &[("UPKEEP_CONFIG".into(), "/etc/u.toml".into())],
        );
        let text: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let dash = text.iter().position(|a| a == "--").unwrap();
        assert_eq!(
            text[dash + 1..],
            ["/usr/bin/upkeep", "upgrade", "--to", "$$HOME"]
        );
        assert!(text.contains(&"--pipe".to_string()));
        assert!(text.contains(&"--wait".to_string()));
        assert!(text.contains(&format!("--setenv={DETACHED_ENV}=1")));
        assert!(text.contains(&"--setenv=UPKEEP_CONFIG=/etc/u.toml".to_string()));
    }

    #[test]
    fn only_upkeeps_and_the_terminals_variables_are_kept() {
        let vars = [
            ("UPKEEP_CONFIG", "/x"),
            ("FAILPOINTS", "a=return"),
            ("TERM", "xterm"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("PATH", "/home/x/bin"),
            (DETACHED_ENV, "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let kept: Vec<String> = kept_env(vars.into_iter())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kept, ["FAILPOINTS", "TERM", "UPKEEP_CONFIG"]);
    }

    #[test]
    fn no_transient_unit_without_systemd() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-systemd");
        if !under_systemd() && !is_detached() {
            assert_eq!(
                stay_reason(&missing, Some(Path::new("/usr/bin/systemd-run"))),
                Some("the host does not run systemd")
            );
            assert_eq!(
                stay_reason(dir.path(), None),
                Some("systemd-run is not installed")
            );
        }
    }
}
