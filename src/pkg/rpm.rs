//! rpm: `rpm -q` for the installed state, `rpm -Uvh` to install.
//!
//! Config files marked `%config(noreplace)` that were edited locally are
//! kept; rpm writes the packaged one beside them as `.rpmnew`. A downgrade
//! needs `--oldpackage`, which upkeep passes only when it means to go back.
//!
//! rpm serialises transactions with a write lock (`fcntl`) on
//! `DBPATH/.rpm.lock`; [`Rpm::lock`] waits until nobody holds it (dnf,
//! yum, another rpm). There is nothing to keep: rpm takes it itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

use super::lock::{self, PkgLock};
use super::{InstallReport, Installed, PackageManager};

/// rpm on the running host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rpm {
    /// The rpm database directory (`--dbpath`); None: rpm's own
    /// configuration decides (`rpm --eval %{_dbpath}`).
    pub db_path: Option<PathBuf>,
}

impl Rpm {
    /// `--dbpath=DIR` when a database directory was given.
    fn db_args(&self) -> Vec<OsString> {
        self.db_path
            .iter()
            .map(|d| {
                let mut a = OsString::from("--dbpath=");
                a.push(d);
                a
            })
            .collect()
    }

    /// The `rpm -Uvh` command for `files`, one transaction; `--oldpackage`
    /// when downgrading.
    pub fn install_command(&self, files: &[&Path], downgrade: bool) -> Command {
        self.install_command_replacing(files, downgrade, false)
    }

    /// [`Rpm::install_command`], with `--replacepkgs` when `replace`: an
    /// installed instance of one of `files` is written again.
    pub fn install_command_replacing(
        &self,
        files: &[&Path],
        downgrade: bool,
        replace: bool,
    ) -> Command {
        let mut cmd = Command::new("rpm");
        cmd.args(self.db_args()).arg("-Uvh");
        if downgrade {
            cmd.arg("--oldpackage");
        }
        if replace {
            cmd.arg("--replacepkgs");
        }
        // Its own process group: a Ctrl-C on the terminal reaches upkeep
        // (which defers it), never rpm in the middle of a step.
        cmd.arg("--")
            .args(files)
            .stdin(std::process::Stdio::null())
            .process_group(0);
        cmd
    }

    /// The `rpm -e` command for `packages`.
    pub fn remove_command(&self, packages: &[&str]) -> Command {
        let mut cmd = Command::new("rpm");
        cmd.args(self.db_args())
            .args(["-e", "--"])
            .args(packages)
            .stdin(std::process::Stdio::null())
            .process_group(0);
        cmd
    }

    /// The database directory: the configured one, or rpm's.
    pub async fn db_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.db_path {
            return Ok(d.clone());
        }
        let out = Command::new("rpm")
            .args(["--eval", "%{_dbpath}"])
            .output()
            .await
            .context("cannot run rpm --eval")?;
        if !out.status.success() {
            bail!("rpm --eval %{{_dbpath}} failed ({})", out.status);
        }
        parse_db_path(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Rpm {
    /// Every installed package with its relations, for the resolver:
    /// `rpm -qa --qf` [`crate::resolve::RPM_QUERY_FORMAT`], read by
    /// [`crate::resolve::installed_rpm`].
    pub async fn installed_packages(&self) -> anyhow::Result<Vec<crate::resolve::PackageInfo>> {
        let out = Command::new("rpm")
            .args(self.db_args())
            .args(["-qa", "--qf", crate::resolve::RPM_QUERY_FORMAT])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("cannot run rpm -qa")?;
        if !out.status.success() {
            bail!(
                "rpm -qa failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8(out.stdout).context("rpm -qa: not UTF-8")?;
        crate::resolve::installed_rpm(&text)
    }
}

/// Parses `rpm --eval %{_dbpath}`: one absolute path.
pub fn parse_db_path(text: &str) -> anyhow::Result<PathBuf> {
    let path = text.trim();
    if path.is_empty() || path.starts_with('%') || !path.starts_with('/') || path.contains('\n') {
        bail!("rpm does not know its database directory ({path:?})");
    }
    Ok(PathBuf::from(path))
}

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
            .args(self.db_args())
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

    async fn install(&self, files: &[&Path], downgrade: bool) -> anyhow::Result<InstallReport> {
        let replace = self.repair_interrupted(files).await?;
        let out = self
            .install_command_replacing(files, downgrade || replace, replace)
            .output()
            .await
            .context("cannot run rpm")?;
        super::install_report(&out, "rpm -Uvh", files)
    }

    async fn remove(&self, packages: &[&str]) -> anyhow::Result<InstallReport> {
        let out = self
            .remove_command(packages)
            .output()
            .await
            .context("cannot run rpm")?;
        let names: Vec<&Path> = packages.iter().map(Path::new).collect();
        super::install_report(&out, "rpm -e", &names)
    }

    async fn lock(&self, timeout: Duration) -> anyhow::Result<PkgLock> {
        let deadline = Instant::now() + timeout;
        let path = self.db_path().await?.join(".rpm.lock");
        lock::wait_unlocked("rpm", &path, timeout, deadline).await?;
        Ok(PkgLock::free())
    }

    async fn audit(&self, package: &str) -> anyhow::Result<Vec<String>> {
        // The whole database must be readable (a damaged one fails here).
        let all = Command::new("rpm")
            .args(self.db_args())
            .args(["-qa", "--qf", "%{NAME}\n"])
            .output()
            .await
            .context("cannot run rpm -qa")?;
        if !all.status.success() {
            return Ok(vec![format!(
                "the rpm database cannot be read ({}): {} (fix: `rpmdb --rebuilddb`)",
                all.status,
                String::from_utf8_lossy(&all.stderr).trim()
            )]);
        }
        let out = Command::new("rpm")
            .args(self.db_args())
            .args(["-q", "--qf", AUDIT_FORMAT, "--", package])
            .output()
            .await
            .context("cannot run rpm -q")?;
        Ok(parse_audit(package, &String::from_utf8_lossy(&out.stdout)))
    }
}

impl Rpm {
    /// Undoes what an interrupted `rpm -U` left before `files` go in: where
    /// a package of `files` has several instances installed at once (the
    /// new one's files and `%post` done, the old one never erased), every
    /// instance but the one being installed is erased (`--nodeps
    /// --noscripts`: its files that the kept instance owns stay). True when
    /// an instance of a file being installed is kept: the install must
    /// then rewrite its files (`--replacepkgs`), which the erased one's
    /// may have overwritten.
    async fn repair_interrupted(&self, files: &[&Path]) -> anyhow::Result<bool> {
        let mut replace = false;
        for file in files {
            let out = Command::new("rpm")
                .args(["-qp", "--qf"])
                .arg(format!("%{{NAME}}\t{INSTANCE_FORMAT}"))
                .arg("--")
                .arg(file)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .context("cannot run rpm -qp")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let Some((name, wanted)) = text.trim().split_once('\t') else {
                continue;
            };
            let out = Command::new("rpm")
                .args(self.db_args())
                .args(["-q", "--qf", INSTANCE_FORMAT, "--", name])
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .context("cannot run rpm -q")?;
            let installed = String::from_utf8_lossy(&out.stdout);
            let repair = interrupted_repair(wanted, &installed);
            for other in &repair.erase {
                tracing::warn!(
                    "{name}: several versions are installed at once (an interrupted rpm transaction): erasing {other}, keeping {}",
                    repair.keep
                );
                let out = Command::new("rpm")
                    .args(self.db_args())
                    .args(["-e", "--nodeps", "--noscripts", "--notriggers", "--"])
                    .arg(other)
                    .stdin(std::process::Stdio::null())
                    .process_group(0)
                    .output()
                    .await
                    .context("cannot run rpm -e")?;
                if !out.status.success() {
                    bail!(
                        "rpm -e {other} (repairing an interrupted transaction) failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            if repair.reenter {
                tracing::warn!(
                    "{name}: {} is in the rpm database more than once (an interrupted rpm transaction): entering it again",
                    repair.keep
                );
                let mut erase = Command::new("rpm");
                erase.args(self.db_args()).args([
                    "-e",
                    "--justdb",
                    "--allmatches",
                    "--nodeps",
                    "--noscripts",
                    "--notriggers",
                    "--",
                    &repair.keep,
                ]);
                let mut enter = Command::new("rpm");
                enter
                    .args(self.db_args())
                    .args([
                        "-U",
                        "--justdb",
                        "--oldpackage",
                        "--nodeps",
                        "--noscripts",
                        "--notriggers",
                        "--",
                    ])
                    .arg(file);
                for mut cmd in [erase, enter] {
                    let out = cmd
                        .stdin(std::process::Stdio::null())
                        .process_group(0)
                        .output()
                        .await
                        .context("cannot run rpm")?;
                    if !out.status.success() {
                        bail!(
                            "rpm --justdb (repairing an interrupted transaction of {}) failed ({}): {}",
                            repair.keep,
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        );
                    }
                }
            }
            replace |= (repair.reenter || !repair.erase.is_empty()) && repair.keep == wanted;
        }
        Ok(replace)
    }
}

/// One installed instance, as [`Rpm::repair_interrupted`] names it.
const INSTANCE_FORMAT: &str = "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n";

/// What to do about the instances `installed` (`rpm -q --qf
/// INSTANCE_FORMAT`) of a package whose instance `wanted` is being
/// installed.
#[derive(Debug, PartialEq, Eq)]
pub struct Repair {
    /// The instance kept: `wanted` when it is among them, else the last
    /// one rpm lists (the newest installed).
    pub keep: String,
    /// The instances to erase (none unless there are several).
    pub erase: Vec<String>,
    /// The kept instance is itself in rpm's database more than once (an
    /// interrupted `--replacepkgs`): its entries are dropped (`--justdb`)
    /// and entered again before the install rewrites its files.
    pub reenter: bool,
}

/// See [`Repair`].
pub fn interrupted_repair(wanted: &str, installed: &str) -> Repair {
    let all: Vec<&str> = installed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(' '))
        .collect();
    let keep = if all.contains(&wanted) {
        wanted
    } else {
        all.last().copied().unwrap_or(wanted)
    };
    let erase = if all.len() > 1 {
        all.iter()
            .filter(|i| **i != keep)
            .map(|i| i.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let reenter = all.iter().filter(|i| **i == keep).count() > 1;
    Repair {
        keep: keep.to_string(),
        erase,
        reenter,
    }
}

/// One installed instance of a package, for [`parse_audit`].
const AUDIT_FORMAT: &str = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n";

/// Problems in `rpm -q --qf AUDIT_FORMAT PACKAGE`: more than one instance
/// of the same architecture is the mark of an interrupted `rpm -U` (the old
/// one was never erased).
pub fn parse_audit(package: &str, text: &str) -> Vec<String> {
    let instances: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(package))
        .collect();
    let mut by_arch: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for i in &instances {
        let arch = i.rsplit_once('.').map_or("", |(_, a)| a);
        by_arch.entry(arch).or_default().push(i);
    }
    by_arch
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|v| {
            format!(
                "{} versions of {package} are installed at once ({}): an rpm transaction was interrupted (fix: erase the older one with `rpm -e --justdb --noscripts NAME-VERSION`)",
                v.len(),
                v.join(", ")
            )
        })
        .collect()
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
    #[test]
    fn an_interrupted_upgrade_keeps_the_version_being_installed_and_erases_the_other() {
        let both = "portal-1.0.0-1.x86_64\nportal-2.1.0-1.x86_64\n";
        let r = super::interrupted_repair("portal-1.0.0-1.x86_64", both);
        assert_eq!(r.keep, "portal-1.0.0-1.x86_64");
        assert_eq!(r.erase, ["portal-2.1.0-1.x86_64"]);
        // Neither is the one being installed: the newest stays, rpm -U
        // then replaces it.
        let r = super::interrupted_repair("portal-3.0.0-1.x86_64", both);
        assert_eq!(r.keep, "portal-2.1.0-1.x86_64");
        assert_eq!(r.erase, ["portal-1.0.0-1.x86_64"]);
        // One instance (or none, "package portal is not installed"):
        // nothing to repair.
        let one = super::interrupted_repair("portal-1.0.0-1.x86_64", "portal-1.0.0-1.x86_64\n");
        assert!(one.erase.is_empty());
        let none =
            super::interrupted_repair("portal-1.0.0-1.x86_64", "package portal is not installed\n");
        assert!(none.erase.is_empty() && !none.reenter);
        // Regression (crash matrix, a recover killed during its own
        // `--replacepkgs`): the same instance twice, nothing else.
        let twice = "portal-1.0.0-1.x86_64\nportal-1.0.0-1.x86_64\n";
        let r = super::interrupted_repair("portal-1.0.0-1.x86_64", twice);
        assert!(r.erase.is_empty() && r.reenter);
    }

    #[test]
    fn audit_finds_two_instances_of_one_arch() {
        assert!(parse_audit("portal", "portal-0:2.1.0-1.x86_64\n").is_empty());
        // multilib: one per architecture is fine.
        assert!(
            parse_audit("portal", "portal-0:2.1.0-1.x86_64\nportal-0:2.1.0-1.i686\n").is_empty()
        );
        let p = parse_audit(
            "portal",
            "portal-0:1.0.0-1.x86_64\nportal-0:2.1.0-1.x86_64\n",
        );
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("2 versions of portal"), "{}", p[0]);
        assert!(parse_audit("portal", "package portal is not installed\n").is_empty());
    }

    use super::*;
    use crate::pkg::lock::tests::OtherHolder;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn downgrade_adds_oldpackage() {
        let rpm = Rpm::default();
        let f = Path::new("/tmp/p.rpm");
        assert_eq!(
            args(&rpm.install_command(&[f], false)),
            ["-Uvh", "--", "/tmp/p.rpm"]
        );
        assert_eq!(
            args(&rpm.install_command(&[f], true)),
            ["-Uvh", "--oldpackage", "--", "/tmp/p.rpm"]
        );
        // Regression (crash matrix, rpm killed at a scriptlet): the repair's
        // `--replacepkgs` went after `--` and rpm took it for a file.
        assert_eq!(
            args(&rpm.install_command_replacing(&[f], true, true)),
            ["-Uvh", "--oldpackage", "--replacepkgs", "--", "/tmp/p.rpm"]
        );
        let rpm = Rpm {
            db_path: Some("/var/lib/rpm".into()),
        };
        assert_eq!(
            args(&rpm.install_command(&[f], true)),
            [
                "--dbpath=/var/lib/rpm",
                "-Uvh",
                "--oldpackage",
                "--",
                "/tmp/p.rpm"
            ]
        );
    }

    #[test]
    fn db_path_from_rpm_eval() {
        assert_eq!(
            parse_db_path("/var/lib/rpm\n").unwrap(),
            Path::new("/var/lib/rpm")
        );
        assert!(parse_db_path("%{_dbpath}\n").is_err());
        assert!(parse_db_path("\n").is_err());
        assert!(parse_db_path("relative\n").is_err());
    }

    #[test]
    fn lock_waits_for_the_rpm_database_lock_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = Rpm {
            db_path: Some(dir.path().to_path_buf()),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // No lock file yet: free.
        rt.block_on(rpm.lock(Duration::ZERO)).unwrap();
        let path = dir.path().join(".rpm.lock");
        let other = OtherHolder::lock(&path);
        let started = std::time::Instant::now();
        let e = rt
            .block_on(rpm.lock(Duration::from_millis(500)))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(500));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("pid {} (python", other.pid())),
            "{msg}"
        );
        assert!(msg.contains(".rpm.lock"), "{msg}");
        let pid = other.pid();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(other);
        });
        let held = rt.block_on(rpm.lock(Duration::from_secs(10))).unwrap();
        // rpm takes its lock itself: nothing is held, and a new holder is not refused.
        assert_eq!(held.path(), None);
        release.join().unwrap();
        assert!(OtherHolder::could_lock(&path), "pid {pid} still holds it");
    }

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
