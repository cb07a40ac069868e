//! Package managers: what is installed, and installing a package file.
//! Running the command is kept apart from parsing its output; the parsers are
//! tested on fixtures.

pub mod dpkg;
pub mod rpm;

use std::path::Path;

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

/// A package manager.
#[allow(async_fn_in_trait)]
pub trait PackageManager {
    /// The host architecture as the package manager names it.
    async fn architecture(&self) -> anyhow::Result<String>;
    /// The installed state of `package`, or None when it is not installed.
    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>>;
    /// Installs a package file, keeping locally modified config files.
    async fn install(&self, file: &Path) -> anyhow::Result<InstallReport>;
}
