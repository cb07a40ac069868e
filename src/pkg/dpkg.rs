//! dpkg: `dpkg-query` for the installed state, `dpkg -i` to install.
//!
//! Installs always pass `--force-confdef --force-confold`: without a
//! terminal, dpkg would otherwise fail at the conffile prompt and leave the
//! package unpacked but not configured.
//!
//! Locking follows apt: a frontend takes a write lock (`fcntl(F_SETLK)`) on
//! `ADMINDIR/lock-frontend` for the whole operation, then runs dpkg with
//! `DPKG_FRONTEND_LOCKED=1` so that dpkg takes only `ADMINDIR/lock` itself.
//! [`Dpkg::lock`] does the same and, before returning, also waits until
//! nobody holds `ADMINDIR/lock` (an older frontend, or a bare dpkg).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

use super::lock::{self, PkgLock};
use super::{InstallReport, Installed, PackageManager};

/// dpkg's default database directory.
pub const ADMIN_DIR: &str = "/var/lib/dpkg";

/// dpkg on the running host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dpkg {
    /// dpkg's database directory (`--admindir`), where its locks live.
    pub admin_dir: PathBuf,
}

impl Default for Dpkg {
    fn default() -> Dpkg {
        Dpkg {
            admin_dir: PathBuf::from(ADMIN_DIR),
        }
    }
}

impl Dpkg {
    /// The lock every dpkg frontend (apt, upkeep) holds for its operation.
    pub fn frontend_lock(&self) -> PathBuf {
        self.admin_dir.join("lock-frontend")
    }

    /// The lock dpkg itself holds while it changes the database.
    pub fn database_lock(&self) -> PathBuf {
        self.admin_dir.join("lock")
    }

    /// The `dpkg -i` command for `file` (downgrades need nothing: dpkg only
    /// warns). While this process holds the frontend lock, dpkg is told so.
    pub fn install_command(&self, file: &Path) -> Command {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--admindir={}", self.admin_dir.display()))
            .args(["--force-confdef", "--force-confold", "-i", "--"])
            .arg(file)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            // Its own process group: a Ctrl-C on the terminal reaches
            // upkeep (which defers it), never dpkg in the middle of a step.
            .process_group(0);
        if lock::held_here(&self.frontend_lock()) {
            cmd.env("DPKG_FRONTEND_LOCKED", "1");
        }
        cmd
    }
}

/// `dpkg-query` output format: status, tab, version.
const QUERY_FORMAT: &str = "${Status}\t${Version}\n";

impl PackageManager for Dpkg {
    async fn architecture(&self) -> anyhow::Result<String> {
        let out = Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .await
            .context("cannot run dpkg --print-architecture")?;
        if !out.status.success() {
            bail!("dpkg --print-architecture failed ({})", out.status);
        }
        let arch = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if arch.is_empty() {
            bail!("dpkg --print-architecture printed nothing");
        }
        Ok(arch)
    }

    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>> {
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", self.admin_dir.display()))
            .args(["-W", &format!("-f={QUERY_FORMAT}"), "--", package])
            .output()
            .await
            .context("cannot run dpkg-query")?;
        // dpkg-query exits 1 for a package it has never heard of.
        if !out.status.success() && out.stdout.is_empty() {
            return Ok(None);
        }
        parse_query(&String::from_utf8_lossy(&out.stdout))
    }

    async fn install(&self, file: &Path, _downgrade: bool) -> anyhow::Result<InstallReport> {
        let out = self
            .install_command(file)
            .output()
            .await
            .context("cannot run dpkg")?;
        super::install_report(&out, "dpkg -i", file)
    }

    async fn lock(&self, timeout: Duration) -> anyhow::Result<PkgLock> {
        let deadline = Instant::now() + timeout;
        let held = lock::hold("dpkg", &self.frontend_lock(), timeout, deadline).await?;
        lock::wait_unlocked("dpkg", &self.database_lock(), timeout, deadline).await?;
        Ok(held)
    }

    async fn audit(&self, _package: &str) -> anyhow::Result<Vec<String>> {
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", self.admin_dir.display()))
            .args(["-W", &format!("-f={AUDIT_FORMAT}")])
            .output()
            .await
            .context("cannot run dpkg-query")?;
        if !out.status.success() {
            bail!(
                "dpkg-query -W failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(parse_audit(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Every package's status and name, for [`parse_audit`].
const AUDIT_FORMAT: &str = "${Status}\t${binary:Package}\n";

/// The packages of `dpkg-query -W -f='${Status}\t${binary:Package}\n'`
/// that dpkg left in a state an install trips on, one line each with the
/// command that fixes it.
pub fn parse_audit(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((status, name)) = line.split_once('\t') else {
            continue;
        };
        let words: Vec<&str> = status.split_whitespace().collect();
        let (flag, state) = match words.as_slice() {
            [_, flag, state] => (*flag, *state),
            _ => continue,
        };
        let fix = match state {
            "half-installed" => Some("apt-get install --reinstall"),
            "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending" => {
                Some("dpkg --configure -a")
            }
            _ => None,
        };
        let fix = if flag == "reinstreq" {
            Some("apt-get install --reinstall")
        } else {
            fix
        };
        if let Some(fix) = fix {
            let what = if flag == "reinstreq" {
                "marked for reinstallation".to_string()
            } else {
                state.to_string()
            };
            let command = if fix.starts_with("apt-get") {
                format!("{fix} {name}")
            } else {
                fix.to_string()
            };
            out.push(format!("{name} is {what} (fix: `{command}`)"));
        }
    }
    out
}

/// Parses `dpkg-query -W -f='${Status}\t${Version}\n'` for one package.
pub fn parse_query(text: &str) -> anyhow::Result<Option<Installed>> {
    let Some(line) = text.lines().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let (status, version) = line
        .split_once('\t')
        .with_context(|| format!("unexpected dpkg-query output {line:?}"))?;
    let status = status.trim();
    // "want flag state": e.g. "install ok installed", "deinstall ok config-files".
    let state = status.rsplit(' ').next().unwrap_or("");
    if matches!(state, "not-installed" | "config-files") || version.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(Installed {
        version: version.trim().to_string(),
        configured: state == "installed",
        status: status.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_finds_half_configured_and_reinstreq_packages() {
        let text = "install ok installed\tbash\n\
                    install ok half-configured\tportal\n\
                    deinstall ok config-files\told\n\
                    install reinstreq half-installed\tlibfoo:amd64\n\
                    install ok triggers-pending\tman-db\n\
                    unknown ok not-installed\tx\n";
        let problems = parse_audit(text);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("portal is half-configured"));
        assert!(problems[0].contains("dpkg --configure -a"));
        assert!(problems[1].contains("libfoo:amd64 is marked for reinstallation"));
        assert!(problems[1].contains("apt-get install --reinstall libfoo:amd64"));
        assert!(problems[2].starts_with("man-db is triggers-pending"));
        assert!(parse_audit("install ok installed\tbash\n").is_empty());
    }

    use super::*;
    use crate::pkg::lock::tests::OtherHolder;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn in_tempdir() -> (tempfile::TempDir, Dpkg) {
        let dir = tempfile::tempdir().unwrap();
        let dpkg = Dpkg {
            admin_dir: dir.path().to_path_buf(),
        };
        (dir, dpkg)
    }

    fn envs(cmd: &Command) -> Vec<(String, Option<String>)> {
        cmd.as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn install_command_keeps_config_files_and_tells_dpkg_about_our_lock() {
        let (_dir, dpkg) = in_tempdir();
        let cmd = dpkg.install_command(Path::new("/tmp/p.deb"));
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                format!("--admindir={}", dpkg.admin_dir.display()),
                "--force-confdef".into(),
                "--force-confold".into(),
                "-i".into(),
                "--".into(),
                "/tmp/p.deb".into(),
            ]
        );
        let frontend = ("DPKG_FRONTEND_LOCKED".to_string(), Some("1".to_string()));
        assert!(!envs(&cmd).contains(&frontend));
        rt().block_on(async {
            let held = dpkg.lock(Duration::from_secs(1)).await.unwrap();
            assert_eq!(held.path(), Some(dpkg.frontend_lock().as_path()));
            let cmd = dpkg.install_command(Path::new("/tmp/p.deb"));
            assert!(envs(&cmd).contains(&frontend));
            drop(held);
            let cmd = dpkg.install_command(Path::new("/tmp/p.deb"));
            assert!(!envs(&cmd).contains(&frontend));
        });
    }

    #[test]
    fn lock_holds_the_frontend_lock_against_other_processes_until_dropped() {
        let (_dir, dpkg) = in_tempdir();
        rt().block_on(async {
            let held = dpkg.lock(Duration::from_secs(1)).await.unwrap();
            assert!(!OtherHolder::could_lock(&dpkg.frontend_lock()));
            // dpkg's own lock is left to dpkg.
            assert!(!dpkg.database_lock().exists());
            drop(held);
            assert!(OtherHolder::could_lock(&dpkg.frontend_lock()));
        });
    }

    #[test]
    fn lock_waits_for_another_frontend_then_names_it() {
        let (_dir, dpkg) = in_tempdir();
        let other = OtherHolder::lock(&dpkg.frontend_lock());
        rt().block_on(async {
            let started = std::time::Instant::now();
            let e = dpkg.lock(Duration::from_millis(600)).await.unwrap_err();
            let waited = started.elapsed();
            let msg = e.to_string();
            assert!(waited >= Duration::from_millis(600), "{waited:?}");
            assert!(waited < Duration::from_secs(3), "{waited:?}");
            assert!(
                msg.contains(&format!("pid {} (python", other.pid())),
                "{msg}"
            );
            assert!(msg.contains("lock-frontend"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            // The failed attempt left nothing registered.
            assert!(!lock::held_here(&dpkg.frontend_lock()));
        });
        // Released while we wait: the lock is taken.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            drop(other);
        });
        rt().block_on(async {
            let started = std::time::Instant::now();
            let held = dpkg.lock(Duration::from_secs(10)).await.unwrap();
            assert!(started.elapsed() >= Duration::from_millis(300));
            assert!(lock::held_here(&dpkg.frontend_lock()));
            drop(held);
        });
        release.join().unwrap();
    }

    #[test]
    fn lock_waits_until_dpkg_itself_is_done() {
        let (_dir, dpkg) = in_tempdir();
        let other = OtherHolder::lock(&dpkg.database_lock());
        rt().block_on(async {
            let e = dpkg.lock(Duration::from_millis(300)).await.unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("pid {}", other.pid())), "{msg}");
            assert!(
                msg.contains(&dpkg.database_lock().display().to_string()),
                "{msg}"
            );
            // The frontend lock taken meanwhile was given back.
            assert!(!lock::held_here(&dpkg.frontend_lock()));
            assert!(OtherHolder::could_lock(&dpkg.frontend_lock()));
        });
        drop(other);
        rt().block_on(async {
            dpkg.lock(Duration::from_millis(300)).await.unwrap();
        });
    }

    #[test]
    fn installed_package() {
        let i = parse_query("install ok installed\t1.0.0-1\n")
            .unwrap()
            .unwrap();
        assert_eq!(i.version, "1.0.0-1");
        assert!(i.configured);
    }

    #[test]
    fn half_configured_package_is_installed_but_not_configured() {
        let i = parse_query("install ok half-configured\t2.0.0-1\n")
            .unwrap()
            .unwrap();
        assert!(!i.configured);
        assert_eq!(i.status, "install ok half-configured");
        let i = parse_query("install ok unpacked\t2.0.0-1\n")
            .unwrap()
            .unwrap();
        assert!(!i.configured);
    }

    #[test]
    fn removed_or_unknown_package_is_not_installed() {
        assert_eq!(
            parse_query("deinstall ok config-files\t1.0.0-1\n").unwrap(),
            None
        );
        assert_eq!(parse_query("unknown ok not-installed\t\n").unwrap(), None);
        assert_eq!(parse_query("").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_query("what is this").is_err());
    }
}
