//! Fault injection for the crash matrix: named failpoints at every step
//! boundary and inside every step, active only in builds with the
//! `failpoints` cargo feature.
//!
//! They are set with the `FAILPOINTS` environment variable (the `fail`
//! crate's syntax), e.g. `FAILPOINTS='before-install=return(kill)'`:
//! `return(kill)` kills the process with SIGKILL at that point (a crash or a
//! power loss as far as the host can tell), `return` or `return(error)` makes
//! the step fail there. The names:
//!
//! - `before-STEP`: at the boundary, before the step is journaled.
//! - `in-STEP`: the step is journaled as running, nothing of it done yet.
//! - `during-STEP` (only `return(kill)` means anything): upkeep and every
//!   process it started are killed together (SIGSTOP, then SIGKILL, as a
//!   power loss would) part-way through the step: shortly after the step's
//!   first external program (dpkg, rpm, pg_dump, pg_restore, mariadb-dump,
//!   mariadb, ...) starts; at the step's first mid-write point ([`mid`]:
//!   `config-written` before the theme, `theme-half` after the theme's
//!   first file); or, for a step that does neither, when its work is done
//!   but not yet journaled. `during-STEP=return(script)` kills when the
//!   package manager runs a maintainer script (a dpkg `postinst`, an rpm
//!   scriptlet): the new version unpacked but not configured, or in rpm's
//!   database beside the old one. `during-STEP=return(AT)` kills only at
//!   the mid-write point `AT` (or at the step's end).
//! - `after-cleanup`: the run is done but not yet closed in the history.
//!
//! `STEP` is the step's name, `revert-STEP` for the steps of a revert. In a
//! normal build every function here does nothing.

/// Sets the failpoints up from the environment; the guard keeps them set.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// A failpoint named `name`: kills the process or returns an error when
/// configured to, does nothing otherwise.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> anyhow::Result<()> {
    fail::fail_point!(name, |arg: Option<String>| {
        if arg.as_deref() == Some("kill") {
            tracing::warn!("failpoint {name}: killing upkeep (SIGKILL)");
            imp::kill_tree();
        }
        Err(anyhow::anyhow!("failpoint {name} triggered"))
    });
    Ok(())
}

/// Arms `during-STEP` for `step` (when it is configured) until the guard is
/// dropped: see the module documentation.
#[cfg(feature = "failpoints")]
pub fn during(step: &str) -> Option<During> {
    imp::during(step)
}

/// A mid-write point named `at` of the step that is running: kills upkeep
/// here when the step's `during-STEP` failpoint is armed with
/// `return(kill)` (the first such point) or `return(AT)` (this one).
#[cfg(feature = "failpoints")]
pub fn mid(at: &str) {
    imp::mid(at)
}

/// An armed `during-STEP` failpoint (see [`during`]).
#[cfg(feature = "failpoints")]
pub use imp::During;

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    /// The argument of the armed `during-STEP` failpoint, if any.
    static ARMED: Mutex<Option<String>> = Mutex::new(None);

    /// An armed `during-STEP`: kills at the step's end if nothing did before.
    #[must_use]
    pub struct During {
        done: Arc<AtomicBool>,
        step: String,
    }

    impl Drop for During {
        fn drop(&mut self) {
            self.done.store(true, Ordering::SeqCst);
            tracing::warn!(
                "failpoint during-{}: killing upkeep at the end of the step",
                self.step
            );
            kill_tree();
        }
    }

    fn configured(name: &str) -> Option<String> {
        fail::fail_point!(name, |arg: Option<String>| Some(
            arg.unwrap_or_else(|| "kill".into())
        ));
        None
    }

    pub fn during(step: &str) -> Option<During> {
        let arg = configured(&format!("during-{step}"))?;
        let any = arg == "kill";
        let script = arg == "script";
        if let Ok(mut armed) = ARMED.lock() {
            *armed = Some(arg);
        }
        let done = Arc::new(AtomicBool::new(false));
        let watch = done.clone();
        let name = step.to_string();
        // Watches for the step's first child process; lets it run a
        // little, then kills it and upkeep together.
        std::thread::spawn(move || {
            let mut seen: Option<Instant> = None;
            while !watch.load(Ordering::SeqCst) {
                if seen.is_none() {
                    let kids = descendants();
                    if (any && !kids.is_empty()) || (script && kids.iter().any(|&p| runs_script(p)))
                    {
                        seen = Some(Instant::now());
                    }
                }
                if seen.is_some_and(|t| t.elapsed() >= Duration::from_millis(30)) {
                    tracing::warn!(
                        "failpoint during-{name}: killing upkeep and its children mid-step"
                    );
                    kill_tree();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Some(During {
            done,
            step: step.to_string(),
        })
    }

    pub fn mid(at: &str) {
        let hit = ARMED
            .lock()
            .map(|a| a.as_deref().is_some_and(|a| a == "kill" || a == at))
            .unwrap_or(false);
        if hit {
            tracing::warn!("failpoint: killing upkeep at the mid-write point {at}");
            kill_tree();
        }
    }

    /// True when process `pid` runs a maintainer script: dpkg's
    /// `/var/lib/dpkg/info/PKG.postinst` (or `tmp.ci/preinst`), rpm's
    /// `/var/tmp/rpm-tmp.*`.
    fn runs_script(pid: i32) -> bool {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            ["postinst", "preinst", "rpm-tmp."]
                .iter()
                .any(|s| c.contains(s))
        })
    }

    /// Every process below this one, from /proc (`ppid` of each `stat`).
    fn descendants() -> Vec<i32> {
        let me = std::process::id() as i32;
        let mut parents: Vec<(i32, i32)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                    continue;
                };
                // `pid (comm) state ppid ...`: comm may hold spaces and ')'.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                if let Some(ppid) = ppid {
                    parents.push((pid, ppid));
                }
            }
        }
        let mut tree: HashSet<i32> = HashSet::from([me]);
        loop {
            let before = tree.len();
            for &(pid, ppid) in &parents {
                if tree.contains(&ppid) {
                    tree.insert(pid);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        tree.remove(&me);
        tree.into_iter().collect()
    }

    /// Freezes every descendant, kills them all, then kills upkeep.
    pub fn kill_tree() -> ! {
        let kids = descendants();
        for &p in &kids {
            let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
        }
        for p in descendants().into_iter().chain(kids) {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(Pid::this(), Signal::SIGKILL);
        std::process::abort();
    }
}

/// A failpoint: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> anyhow::Result<()> {
    Ok(())
}

/// `during-STEP`: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn during(_step: &str) -> Option<()> {
    None
}

/// A mid-write point: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn mid(_at: &str) {}
