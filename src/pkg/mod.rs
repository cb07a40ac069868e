//! Package managers: what is installed, and installing a package file.
//! Running the command is kept apart from parsing its output; the parsers are
//! tested on fixtures.
//!
//! Before an install, [`PackageManager::lock`] waits politely until no other
//! package manager (apt, dpkg, rpm, dnf...) is at work, and for dpkg keeps
//! its frontend lock for as long as the returned [`PkgLock`] lives.

pub mod dpkg;
pub mod lock;
pub mod repack;
pub mod rpm;

use std::path::Path;
use std::time::Duration;

pub use lock::{Holder, PkgLock};

/// The state of an installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The installed version.
    pub version: String,
    /// True when the package is fully installed and configured (dpkg's
    /// `install ok installed`); false for half-installed or unpacked states.
    pub configured: bool,
    /// The raw status, for messages (`install ok unpacked`, ...).
    pub status: String,
}

/// What an install printed, for the history.
#[derive(Clone, Debug, Default)]
pub struct InstallReport {
    /// The package manager's combined output.
    pub output: String,
}

/// The report of a package-manager command, or its failure in one line:
/// the command, its status, and the package manager's own reason
/// ([`failure_reason`]), never just "exit status 1".
fn install_report(
    out: &std::process::Output,
    command: &str,
    files: &[&Path],
) -> anyhow::Result<InstallReport> {
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| f.display().to_string())
            })
            .collect();
        anyhow::bail!(
            "{command} {} failed ({}): {}",
            names.join(" "),
            out.status,
            failure_reason(&output)
        );
    }
    Ok(InstallReport { output })
}

/// The lines of a dpkg or rpm run that say why it failed, joined with
/// "; " (at most ~600 characters): dpkg's `dpkg: error processing ...`,
/// `dependency problems prevent configuration of ...` with the indented
/// relations under it, a maintainer script's failure; rpm's `error: ...`,
/// `Failed dependencies:` with its indented lines. dpkg's closing summary
/// (`Errors were encountered while processing:` and the package names
/// after it) says nothing new and is left out. With nothing recognised,
/// the last non-empty line.
pub fn failure_reason(output: &str) -> String {
    let mut picked: Vec<String> = Vec::new();
    let mut in_detail = false;
    let mut in_summary = false;
    for line in output.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_detail = false;
            continue;
        }
        if trimmed.starts_with("Errors were encountered while processing") {
            in_summary = true;
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if in_summary && indented {
            continue;
        }
        in_summary = false;
        let lower = trimmed.to_ascii_lowercase();
        let reason = lower.starts_with("dpkg: error")
            || lower.starts_with("dpkg: dependency problems")
            || lower.starts_with("dpkg: regarding")
            || lower.starts_with("error:")
            || lower.contains("returned error exit status")
            || lower.contains("scriptlet failed")
            || lower.starts_with("dpkg-deb: error");
        if reason {
            picked.push(trimmed.to_string());
            in_detail = true;
        } else if in_detail && indented {
            picked.push(trimmed.to_string());
        } else {
            in_detail = false;
        }
    }
    picked.dedup();
    if picked.is_empty() {
        return output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
    }
    let mut text = picked.join("; ");
    if text.len() > 600 {
        let mut cut = 600;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" ...");
    }
    text
}

/// A package manager.
#[allow(async_fn_in_trait)]
pub trait PackageManager {
    /// The host architecture as the package manager names it.
    async fn architecture(&self) -> anyhow::Result<String>;
    /// The installed state of `package`, or None when it is not installed.
    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>>;
    /// Installs package files in one transaction, keeping locally modified
    /// config files. `downgrade` allows versions older than the installed
    /// ones (rpm needs to be told; dpkg only warns).
    async fn install(&self, files: &[&Path], downgrade: bool) -> anyhow::Result<InstallReport>;
    /// Removes installed packages in one transaction (their config files
    /// stay, as `dpkg -r` and `rpm -e` keep edited ones).
    async fn remove(&self, packages: &[&str]) -> anyhow::Result<InstallReport>;
    /// Waits (polling every 250 ms, up to `timeout`) until the package
    /// manager is free, and for dpkg takes its frontend lock as apt does;
    /// fails in one line naming the holder's pid and command.
    async fn lock(&self, timeout: Duration) -> anyhow::Result<PkgLock>;
    /// Problems of the package database that an install would trip on
    /// (half-installed or half-configured packages, two versions of
    /// `package` at once), one line each with the command that fixes it;
    /// empty when the database is sound.
    async fn audit(&self, package: &str) -> anyhow::Result<Vec<String>>;
}

/// The package manager of a target: dpkg for APT repositories, rpm for YUM.
#[derive(Debug)]
pub enum Manager {
    /// dpkg.
    Dpkg(dpkg::Dpkg),
    /// rpm.
    Rpm(rpm::Rpm),
}

impl Manager {
    /// The package manager of a package family.
    pub fn for_family(family: crate::version::Family) -> Manager {
        match family {
            crate::version::Family::Deb => Manager::Dpkg(dpkg::Dpkg::default()),
            crate::version::Family::Rpm => Manager::Rpm(rpm::Rpm::default()),
        }
    }

    /// Every installed package with its relations, for the resolver.
    pub async fn installed_packages(&self) -> anyhow::Result<Vec<crate::resolve::PackageInfo>> {
        match self {
            Manager::Dpkg(d) => d.installed_packages().await,
            Manager::Rpm(r) => r.installed_packages().await,
        }
    }
}

impl PackageManager for Manager {
    async fn architecture(&self) -> anyhow::Result<String> {
        match self {
            Manager::Dpkg(m) => m.architecture().await,
            Manager::Rpm(m) => m.architecture().await,
        }
    }

    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>> {
        match self {
            Manager::Dpkg(m) => m.installed(package).await,
            Manager::Rpm(m) => m.installed(package).await,
        }
    }

    async fn install(&self, files: &[&Path], downgrade: bool) -> anyhow::Result<InstallReport> {
        match self {
            Manager::Dpkg(m) => m.install(files, downgrade).await,
            Manager::Rpm(m) => m.install(files, downgrade).await,
        }
    }

    async fn remove(&self, packages: &[&str]) -> anyhow::Result<InstallReport> {
        match self {
            Manager::Dpkg(m) => m.remove(packages).await,
            Manager::Rpm(m) => m.remove(packages).await,
        }
    }

    async fn lock(&self, timeout: Duration) -> anyhow::Result<PkgLock> {
        match self {
            Manager::Dpkg(m) => m.lock(timeout).await,
            Manager::Rpm(m) => m.lock(timeout).await,
        }
    }

    async fn audit(&self, package: &str) -> anyhow::Result<Vec<String>> {
        match self {
            Manager::Dpkg(m) => m.audit(package).await,
            Manager::Rpm(m) => m.audit(package).await,
        }
    }
}

#[cfg(test)]
mod reason_tests {
    use super::failure_reason;

    #[test]
    fn dpkg_dependency_problems_are_the_reason_not_the_summary() {
        let out = "Selecting previously unselected package nginx.\n(Reading database ... 9000 files)\nPreparing to unpack nginx_1.22.1-9+deb12u1_amd64.deb ...\nUnpacking nginx (1.22.1-9+deb12u1) over (1.22.1-9) ...\ndpkg: dependency problems prevent configuration of nginx:\n nginx depends on nginx-common (= 1.22.1-9+deb12u1); however:\n  Version of nginx-common on system is 1.22.1-9.\n\ndpkg: error processing package nginx (--install):\n dependency problems - leaving unconfigured\nErrors were encountered while processing:\n nginx\n";
        let r = failure_reason(out);
        assert!(
            r.starts_with("dpkg: dependency problems prevent configuration of nginx:"),
            "{r}"
        );
        assert!(
            r.contains("nginx depends on nginx-common (= 1.22.1-9+deb12u1); however:"),
            "{r}"
        );
        assert!(
            r.contains("Version of nginx-common on system is 1.22.1-9."),
            "{r}"
        );
        assert!(
            r.contains("dpkg: error processing package nginx (--install)"),
            "{r}"
        );
        assert!(!r.contains("Errors were encountered"), "{r}");
    }

    #[test]
    fn a_failing_maintainer_script_is_named() {
        let out = "Setting up portal (2.0.0-1) ...\nportal: migration failed\ndpkg: error processing package portal (--install):\n installed portal package post-installation script subprocess returned error exit status 3\nErrors were encountered while processing:\n portal\n";
        let r = failure_reason(out);
        assert!(
            r.contains("post-installation script subprocess returned error exit status 3"),
            "{r}"
        );
    }

    #[test]
    fn rpm_failed_dependencies_are_listed() {
        let out = "error: Failed dependencies:\n\tportal-ui = 2.0.0-1 is needed by portal-2.0.0-1.x86_64\n";
        let r = failure_reason(out);
        assert_eq!(
            r,
            "error: Failed dependencies:; portal-ui = 2.0.0-1 is needed by portal-2.0.0-1.x86_64"
        );
    }

    #[test]
    fn without_a_known_line_the_last_line_is_the_reason() {
        assert_eq!(failure_reason("a\nsomething odd\n\n"), "something odd");
        assert_eq!(failure_reason(""), "");
    }
}
