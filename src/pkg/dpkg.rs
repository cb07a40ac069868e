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

    /// The `dpkg -i` command for `files`, one transaction (downgrades need
    /// nothing: dpkg only warns). While this process holds the frontend
    /// lock, dpkg is told so.
    pub fn install_command(&self, files: &[&Path]) -> Command {
        let mut cmd = self.command();
        cmd.args(["--force-confdef", "--force-confold", "-i", "--"])
            .args(files);
        cmd
    }

    /// The `dpkg -r` command for `packages` (config files stay).
    pub fn remove_command(&self, packages: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.args(["-r", "--"]).args(packages);
        cmd
    }

    /// dpkg on this database, never at a terminal, in its own process group.
    fn command(&self) -> Command {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--admindir={}", self.admin_dir.display()))
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

impl Dpkg {
    /// The installed state of `package` read from dpkg's status file
    /// (`ADMINDIR/status`), as `dpkg-query -W` would report it, without
    /// starting dpkg-query (which parses every paragraph of the database:
    /// ~9 ms of CPU on a host with 800 packages, against well under one
    /// here). `None` when the file alone cannot answer for certain, and
    /// dpkg-query is asked: dpkg has journal entries not yet merged into
    /// the file (`ADMINDIR/updates/`), `DPKG_ROOT` is set, the file is
    /// missing or not UTF-8, or [`status_of`] defers.
    async fn installed_from_status(&self, package: &str) -> Option<Option<Installed>> {
        if std::env::var_os("DPKG_ROOT").is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let admin = self.admin_dir.clone();
        let package = package.to_string();
        tokio::task::spawn_blocking(move || {
            let text = std::fs::read_to_string(admin.join("status")).ok()?;
            // Checked after the read: a journal entry written since makes
            // the file stale, and dpkg-query reads both.
            if pending_updates(&admin.join("updates")) {
                return None;
            }
            match status_of(&text, &package) {
                StatusAnswer::Known(known) => Some(known),
                StatusAnswer::AskDpkg(why) => {
                    tracing::debug!("{package}: asking dpkg-query ({why})");
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

impl Dpkg {
    /// Every installed package with its relations, for the resolver (see
    /// [`crate::resolve::installed_deb`] for what counts as installed):
    /// read from `ADMINDIR/status`, or from `dpkg-query --status` when the
    /// file alone is not the whole truth (dpkg has journal entries not yet
    /// merged into it, or `DPKG_ROOT` is set).
    pub async fn installed_packages(&self) -> anyhow::Result<Vec<crate::resolve::PackageInfo>> {
        let admin = self.admin_dir.clone();
        let from_file = tokio::task::spawn_blocking(move || {
            if std::env::var_os("DPKG_ROOT").is_some_and(|v| !v.is_empty()) {
                return Ok(None);
            }
            let file = admin.join("status");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // Checked after the read, as for `installed`.
            if pending_updates(&admin.join("updates")) {
                return Ok(None);
            }
            crate::resolve::installed_deb(&text)
                .with_context(|| file.display().to_string())
                .map(Some)
        })
        .await
        .context("the dpkg status reader failed")??;
        if let Some(found) = from_file {
            return Ok(found);
        }
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", self.admin_dir.display()))
            .arg("--status")
            .output()
            .await
            .context("cannot run dpkg-query")?;
        if !out.status.success() {
            bail!(
                "dpkg-query --status failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8(out.stdout).context("dpkg-query --status: not UTF-8")?;
        crate::resolve::installed_deb(&text).context("dpkg-query --status")
    }
}

/// Whether dpkg's journal directory holds an update not yet merged into the
/// status file (a file named by digits only, as dpkg names them; `tmp.i` is
/// one being written, which dpkg ignores too). An unreadable directory
/// counts as pending.
pub(crate) fn pending_updates(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.into_iter().any(|e| {
            e.map_or(true, |e| {
                let name = e.file_name();
                let name = name.as_encoded_bytes();
                !name.is_empty() && name.iter().all(u8::is_ascii_digit)
            })
        }),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// What dpkg's status file says about one package.
#[derive(Debug, PartialEq, Eq)]
pub enum StatusAnswer {
    /// Its state, as [`parse_query`] reads dpkg-query's line for it.
    Known(Option<Installed>),
    /// The file alone does not settle it (why, for the log): ask dpkg-query.
    AskDpkg(&'static str),
}

/// The state of `package` in the text of a dpkg status file, as
/// `dpkg-query -W -f='${Status}\t${Version}\n' PACKAGE` would print it.
/// dpkg writes the file itself, one paragraph per package instance with
/// canonical field names (`Package: NAME` first); only the paragraph of
/// `package` is read. Anything dpkg-query would normalise or reject, or
/// resolve among several candidates, is left to it: a name that is a
/// pattern or carries an architecture, more than one instance (multi-arch),
/// a paragraph without `Status`, a status that is not three known words,
/// or a version dpkg-query would print differently (an explicit zero
/// epoch, inner whitespace). A database that dpkg itself would refuse to
/// read (dpkg-query then prints nothing, which used to read as "not
/// installed") is not detected: dpkg never writes one.
pub fn status_of(text: &str, package: &str) -> StatusAnswer {
    if package.is_empty()
        || package
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b"*?[]:\\".contains(&b))
    {
        return StatusAnswer::AskDpkg("not a plain package name");
    }
    let mut found = None;
    let mut from = 0;
    while let Some(at) = text[from..].find("Package:").map(|i| from + i) {
        let value_at = at + "Package:".len();
        let line_end = text[value_at..]
            .find('\n')
            .map_or(text.len(), |e| value_at + e);
        from = line_end;
        // A field starts a line (a continuation line starts with a space).
        if (at > 0 && text.as_bytes()[at - 1] != b'\n')
            || text[value_at..line_end].trim() != package
        {
            continue;
        }
        if found.is_some() {
            return StatusAnswer::AskDpkg("several instances");
        }
        // dpkg writes it first: the fields read below all follow it.
        if at > 0 && !text[..at].ends_with("\n\n") {
            return StatusAnswer::AskDpkg("Package is not the paragraph's first field");
        }
        found = Some(at);
    }
    let Some(start) = found else {
        return StatusAnswer::Known(None);
    };
    let mut status = None;
    let mut version = None;
    // The paragraph ends at the first blank line.
    for line in text[start..].lines().take_while(|l| !l.trim().is_empty()) {
        if let Some(v) = line.strip_prefix("Status:") {
            status = status.or(Some(v));
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = version.or(Some(v));
        }
    }
    let Some(status) = status else {
        return StatusAnswer::AskDpkg("no Status field");
    };
    let words: Vec<&str> = status.split_whitespace().collect();
    let known = matches!(
        words.as_slice(),
        [want, flag, state]
            if ["unknown", "install", "hold", "deinstall", "purge"].contains(want)
                && ["ok", "reinstreq", "hold", "hold-reinstreq"].contains(flag)
                && [
                    "not-installed",
                    "config-files",
                    "half-installed",
                    "unpacked",
                    "half-configured",
                    "triggers-awaited",
                    "triggers-pending",
                    "installed",
                ]
                .contains(state)
    );
    if !known {
        return StatusAnswer::AskDpkg("unexpected Status");
    }
    let version = version.map(str::trim).unwrap_or_default();
    let zero_epoch = version
        .split_once(':')
        .is_some_and(|(e, _)| e.bytes().all(|b| b == b'0'));
    if zero_epoch || version.contains(char::is_whitespace) {
        return StatusAnswer::AskDpkg("a version dpkg-query would rewrite");
    }
    match parse_query(&format!("{}\t{version}\n", words.join(" "))) {
        Ok(known) => StatusAnswer::Known(known),
        Err(_) => StatusAnswer::AskDpkg("unreadable"),
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
        if let Some(known) = self.installed_from_status(package).await {
            return Ok(known);
        }
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

    async fn install(&self, files: &[&Path], _downgrade: bool) -> anyhow::Result<InstallReport> {
        let out = self
            .install_command(files)
            .output()
            .await
            .context("cannot run dpkg")?;
        super::install_report(&out, "dpkg -i", files)
    }

    async fn remove(&self, packages: &[&str]) -> anyhow::Result<InstallReport> {
        let out = self
            .remove_command(packages)
            .output()
            .await
            .context("cannot run dpkg")?;
        let names: Vec<&Path> = packages.iter().map(Path::new).collect();
        super::install_report(&out, "dpkg -r", &names)
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
        let cmd = dpkg.install_command(&[Path::new("/tmp/p.deb")]);
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
            let cmd = dpkg.install_command(&[Path::new("/tmp/p.deb")]);
            assert!(envs(&cmd).contains(&frontend));
            drop(held);
            let cmd = dpkg.install_command(&[Path::new("/tmp/p.deb")]);
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

    fn para(name: &str, status: &str, version: Option<&str>, arch: &str) -> String {
        let mut p = format!("Package: {name}\nStatus: {status}\nPriority: optional\n");
        p.push_str("Maintainer: Someone <someone@example.com>\n");
        p.push_str(&format!("Architecture: {arch}\n"));
        // The fields dpkg requires with these states.
        if status.ends_with("triggers-awaited") {
            p.push_str("Triggers-Awaited: zz\n");
        } else if status.ends_with("triggers-pending") {
            p.push_str("Triggers-Pending: /usr/share/man\n");
        }
        if let Some(v) = version {
            p.push_str(&format!("Version: {v}\n"));
        }
        p.push_str("Conffiles:\n /etc/x.conf 0123456789abcdef0123456789abcdef\n");
        p.push_str(&format!(
            "Description: {name}\n Package: {name}\n Status: purge ok not-installed\n .\n Version: 9\n"
        ));
        p
    }

    #[test]
    fn the_status_file_answers_as_dpkg_query_does() {
        let known = |text: &str, pkg: &str| match status_of(text, pkg) {
            StatusAnswer::Known(k) => k,
            other => panic!("{pkg}: {other:?}"),
        };
        let db = [
            para(
                "portal-extras",
                "install ok installed",
                Some("7.0-1"),
                "all",
            ),
            para("portal", "install ok installed", Some("1:2.1.0-1"), "amd64"),
            para("xportal", "install ok installed", Some("3"), "amd64"),
            para("old", "deinstall ok config-files", Some("1.0-1"), "amd64"),
            para("half", "install ok half-configured", Some("2.0-1"), "amd64"),
            para("gone", "purge ok not-installed", None, "amd64"),
        ]
        .join("\n");
        let i = known(&db, "portal").unwrap();
        assert_eq!(i.version, "1:2.1.0-1");
        assert!(i.configured);
        assert_eq!(i.status, "install ok installed");
        let h = known(&db, "half").unwrap();
        assert!(!h.configured);
        assert_eq!(known(&db, "old"), None);
        assert_eq!(known(&db, "gone"), None);
        assert_eq!(known(&db, "absent"), None);
        assert_eq!(known(&db, "portal-extras").unwrap().version, "7.0-1");
        // The last paragraph, without a final newline.
        let tail = format!(
            "{db}\n{}",
            para("last", "install ok unpacked", Some("4"), "all")
        );
        assert_eq!(
            known(tail.trim_end(), "last").unwrap().status,
            "install ok unpacked"
        );
        // Whitespace dpkg-query would drop.
        let spaced = para("sp", "install  ok   installed ", Some("  2.0-1 "), "all");
        assert_eq!(known(&spaced, "sp").unwrap().version, "2.0-1");
        assert_eq!(known(&spaced, "sp").unwrap().status, "install ok installed");
    }

    #[test]
    fn the_status_file_defers_to_dpkg_query_when_unsure() {
        let ask = |text: &str, pkg: &str| {
            assert!(
                matches!(status_of(text, pkg), StatusAnswer::AskDpkg(_)),
                "{pkg}: {:?}",
                status_of(text, pkg)
            )
        };
        let two = [
            para("lib", "install ok installed", Some("1"), "amd64"),
            para("lib", "install ok installed", Some("1"), "i386"),
        ]
        .join("\n");
        ask(&two, "lib");
        let db = para("portal", "install ok installed", Some("1"), "amd64");
        for name in ["portal:amd64", "port*", "p?rtal", "[p]ortal", ""] {
            ask(&db, name);
        }
        ask(
            &para("z", "install ok installed", Some("0:1.0"), "all"),
            "z",
        );
        ask(
            &para("z", "install ok installed", Some("00:1.0"), "all"),
            "z",
        );
        ask(
            &para("z", "install ok installed", Some("1.0 1"), "all"),
            "z",
        );
        ask(&para("z", "install ok", Some("1"), "all"), "z");
        ask(&para("z", "install ok frobnicated", Some("1"), "all"), "z");
        ask(&para("z", "Install ok installed", Some("1"), "all"), "z");
        ask("Package: z\nVersion: 1\n\n", "z");
        ask(
            "Version: 1\nPackage: z\nStatus: install ok installed\n\n",
            "z",
        );
    }

    #[test]
    fn pending_journal_entries_send_the_query_to_dpkg() {
        let (dir, dpkg) = in_tempdir();
        let updates = dir.path().join("updates");
        assert!(!pending_updates(&updates), "no updates directory");
        std::fs::create_dir(&updates).unwrap();
        std::fs::write(updates.join("tmp.i"), "").unwrap();
        assert!(!pending_updates(&updates));
        std::fs::write(
            dir.path().join("status"),
            para("portal", "install ok installed", Some("1.0-1"), "amd64"),
        )
        .unwrap();
        let answer = rt().block_on(dpkg.installed_from_status("portal"));
        assert_eq!(answer.unwrap().unwrap().version, "1.0-1");
        std::fs::write(updates.join("0003"), "").unwrap();
        assert!(pending_updates(&updates));
        assert_eq!(rt().block_on(dpkg.installed_from_status("portal")), None);
    }

    /// A small deterministic generator (no dependency for it).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn the_status_file_reader_agrees_with_dpkg_query_on_generated_databases() {
        let statuses = [
            "install ok installed",
            "install ok half-configured",
            "install ok unpacked",
            "install ok half-installed",
            "install reinstreq half-installed",
            "hold ok installed",
            "deinstall ok config-files",
            "deinstall ok installed",
            "purge ok not-installed",
            "install ok triggers-pending",
            "install ok triggers-awaited",
        ];
        let versions = [
            "1.0",
            "1.0-1",
            "2:3.4.5~rc1-0+deb12u1",
            "0:1.0",
            "1:0",
            " 7.1-2 ",
            "10:2.0+dfsg-3ubuntu1",
            "",
        ];
        let names = ["portal", "portal-extras", "xportal", "libportal1", "zz"];
        let mut rng = Lcg(7);
        let (mut compared, mut deferred) = (0, 0);
        for case in 0..40 {
            let (dir, dpkg) = in_tempdir();
            std::fs::create_dir(dir.path().join("updates")).unwrap();
            let mut paragraphs = Vec::new();
            for name in names {
                if rng.next(4) == 0 && case > 0 {
                    continue;
                }
                let status = statuses[rng.next(statuses.len())];
                let version = match versions[rng.next(versions.len())] {
                    "" if status.ends_with("not-installed") => None,
                    "" => Some("1"),
                    v => Some(v),
                };
                paragraphs.push(para(name, status, version, "amd64"));
            }
            let text = paragraphs.join("\n");
            std::fs::write(dir.path().join("status"), &text).unwrap();
            for name in names {
                let ours = match status_of(&text, name) {
                    StatusAnswer::Known(k) => k,
                    StatusAnswer::AskDpkg(_) => {
                        deferred += 1;
                        continue;
                    }
                };
                let out = std::process::Command::new("dpkg-query")
                    .arg(format!("--admindir={}", dpkg.admin_dir.display()))
                    .args(["-W", &format!("-f={QUERY_FORMAT}"), "--", name])
                    .output()
                    .expect("this test needs dpkg-query installed");
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "dpkg-query refuses the generated database: {}\n{text}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let theirs = if !out.status.success() && out.stdout.is_empty() {
                    None
                } else {
                    parse_query(&String::from_utf8_lossy(&out.stdout)).unwrap()
                };
                assert_eq!(ours, theirs, "case {case}, {name}:\n{text}");
                compared += 1;
            }
        }
        assert!(compared > 120, "{compared} compared, {deferred} deferred");
    }

    #[test]
    fn installed_packages_come_from_the_status_file_or_from_dpkg_query() {
        let (dir, dpkg) = in_tempdir();
        let entry = |name: &str, version: &str| {
            format!(
                "Package: {name}\nStatus: install ok installed\nMaintainer: x\nArchitecture: all\nVersion: {version}\nDepends: base (>= 1)\nDescription: d\n\n"
            )
        };
        std::fs::write(
            dir.path().join("status"),
            format!(
                "{}Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1\n\n",
                entry("a", "1")
            ),
        )
        .unwrap();
        let names = |found: Vec<crate::resolve::PackageInfo>| -> Vec<String> {
            found
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect()
        };
        let found = rt().block_on(dpkg.installed_packages()).unwrap();
        assert_eq!(names(found.clone()), ["a 1"]);
        assert_eq!(found[0].depends[0][0].to_string(), "base (>= 1)");
        // A journal entry not merged yet: dpkg-query reads both.
        std::fs::create_dir_all(dir.path().join("updates")).unwrap();
        std::fs::write(dir.path().join("updates/0001"), entry("b", "2")).unwrap();
        let found = rt().block_on(dpkg.installed_packages()).unwrap();
        assert_eq!(names(found), ["a 1", "b 2"]);
        // No status file: an error naming it.
        let (_empty, none) = in_tempdir();
        let e = rt().block_on(none.installed_packages()).unwrap_err();
        assert!(format!("{e:#}").contains("status"), "{e:#}");
    }
}
