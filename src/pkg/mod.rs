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

/// The report of an install command, or its failure in one line (the
/// command, its status and its last words).
fn install_report(
    out: &std::process::Output,
    command: &str,
    file: &Path,
) -> anyhow::Result<InstallReport> {
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let last = output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        anyhow::bail!(
            "{command} {} failed ({}): {last}",
            file.display(),
            out.status
        );
    }
    Ok(InstallReport { output })
}

/// A package manager.
#[allow(async_fn_in_trait)]
pub trait PackageManager {
    /// The host architecture as the package manager names it.
    async fn architecture(&self) -> anyhow::Result<String>;
    /// The installed state of `package`, or None when it is not installed.
    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>>;
    /// Installs a package file, keeping locally modified config files.
    /// `downgrade` allows a version older than the installed one (rpm needs
    /// to be told; dpkg only warns).
    async fn install(&self, file: &Path, downgrade: bool) -> anyhow::Result<InstallReport>;
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
    /// The package manager that installs what `kind` of repository serves.
    pub fn for_repository(kind: &crate::config::RepoKind) -> Manager {
        match kind {
            crate::config::RepoKind::Apt { .. } => Manager::Dpkg(dpkg::Dpkg::default()),
            crate::config::RepoKind::Yum => Manager::Rpm(rpm::Rpm::default()),
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

    async fn install(&self, file: &Path, downgrade: bool) -> anyhow::Result<InstallReport> {
        match self {
            Manager::Dpkg(m) => m.install(file, downgrade).await,
            Manager::Rpm(m) => m.install(file, downgrade).await,
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
