//! dpkg: `dpkg-query` for the installed state, `dpkg -i` to install.
//!
//! Installs always pass `--force-confdef --force-confold`: without a
//! terminal, dpkg would otherwise fail at the conffile prompt and leave the
//! package unpacked but not configured.

use std::path::Path;

use anyhow::{Context, bail};
use tokio::process::Command;

use super::{InstallReport, Installed, PackageManager};

/// dpkg on the running host.
#[derive(Debug, Default)]
pub struct Dpkg;

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

    async fn lock(&self, _timeout: std::time::Duration) -> anyhow::Result<super::PkgLock> {
        Ok(super::PkgLock)
    }

    async fn install(&self, file: &Path, _downgrade: bool) -> anyhow::Result<InstallReport> {
        let out = Command::new("dpkg")
            .args(["--force-confdef", "--force-confold", "-i"])
            .arg(file)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("cannot run dpkg")?;
        super::install_report(&out, "dpkg -i", file)
    }
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
    use super::*;

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
