//! rpm: `rpm -q` for the installed state, `rpm -Uvh` to install.
//!
//! Config files marked `%config(noreplace)` that were edited locally are
//! kept; rpm writes the packaged one beside them as `.rpmnew`. A downgrade
//! needs `--oldpackage`, which upkeep passes only when it means to go back.

use std::path::Path;

use anyhow::{Context, bail};
use tokio::process::Command;

use super::{InstallReport, Installed, PackageManager};

/// rpm on the running host (its default database).
#[derive(Debug, Default)]
pub struct Rpm;

/// `rpm -q` output format: epoch, version, release.
const QUERY_FORMAT: &str = "%{EPOCH}\t%{VERSION}\t%{RELEASE}\n";

impl PackageManager for Rpm {
    async fn architecture(&self) -> anyhow::Result<String> {
        let out = Command::new("rpm")
            .args(["--eval", "%{_arch}"])
            .output()
            .await
            .context("cannot run rpm --eval")?;
        if !out.status.success() {
            bail!("rpm --eval %{{_arch}} failed ({})", out.status);
        }
        let arch = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if arch.is_empty() || arch.starts_with('%') {
            bail!("rpm does not know the host architecture ({arch:?})");
        }
        Ok(arch)
    }

    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>> {
        let out = Command::new("rpm")
            .args(["-q", "--qf", QUERY_FORMAT, "--", package])
            .output()
            .await
            .context("cannot run rpm -q")?;
        // rpm -q exits 1 and says "package X is not installed".
        if !out.status.success() {
            return Ok(None);
        }
        parse_query(&String::from_utf8_lossy(&out.stdout))
    }

    async fn lock(&self, _timeout: std::time::Duration) -> anyhow::Result<super::PkgLock> {
        Ok(super::PkgLock)
    }

    async fn install(&self, file: &Path, _downgrade: bool) -> anyhow::Result<InstallReport> {
        let out = Command::new("rpm")
            .args(["-Uvh", "--"])
            .arg(file)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("cannot run rpm")?;
        super::install_report(&out, "rpm -Uvh", file)
    }
}

/// Parses `rpm -q --qf '%{EPOCH}\t%{VERSION}\t%{RELEASE}\n'`; with several
/// installed versions (multilib or a half-done upgrade) the last one counts
/// and the package is reported as not cleanly installed.
pub fn parse_query(text: &str) -> anyhow::Result<Option<Installed>> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(line) = lines.last() else {
        return Ok(None);
    };
    let fields: Vec<&str> = line.split('\t').collect();
    let [epoch, version, release] = fields[..] else {
        bail!("unexpected rpm -q output {line:?}");
    };
    if version.is_empty() {
        bail!("unexpected rpm -q output {line:?}");
    }
    let epoch = match epoch {
        "(none)" | "" | "0" => String::new(),
        e if e.bytes().all(|b| b.is_ascii_digit()) => format!("{e}:"),
        e => bail!("unexpected epoch {e:?} from rpm -q"),
    };
    let version = format!("{epoch}{version}-{release}");
    let several = lines.len() > 1;
    Ok(Some(Installed {
        version,
        configured: !several,
        status: if several {
            format!("{} versions installed at once", lines.len())
        } else {
            "installed".into()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_without_epoch() {
        let i = parse_query("(none)\t2.1.0\t1\n").unwrap().unwrap();
        assert_eq!(i.version, "2.1.0-1");
        assert!(i.configured);
    }

    #[test]
    fn installed_with_epoch() {
        let i = parse_query("2\t2.1.0\t1.el9\n").unwrap().unwrap();
        assert_eq!(i.version, "2:2.1.0-1.el9");
    }

    #[test]
    fn two_versions_at_once_is_not_a_clean_install() {
        let i = parse_query("(none)\t1.0.0\t1\n(none)\t2.1.0\t1\n")
            .unwrap()
            .unwrap();
        assert_eq!(i.version, "2.1.0-1");
        assert!(!i.configured);
    }

    #[test]
    fn nothing_or_garbage() {
        assert_eq!(parse_query("").unwrap(), None);
        assert!(parse_query("package portal is not installed").is_err());
        assert!(parse_query("x\t1\t1\n").is_err());
    }
}
