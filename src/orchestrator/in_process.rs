//! The state machine in process, through its traits: a fake package
//! manager and a fake systemd, real package files, a real history. Each
//! test drives `apply` (or `recover`) and reads what the journal recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::*;
use crate::config::{Settings, Target};
use crate::history::History;
use crate::package::testpkg::{Spec, build_deb};
use crate::pkg::{InstallReport, Installed, PackageManager, PkgLock};
use crate::systemd::{ServiceInfo, ServiceManager, UnitState};

/// dpkg as far as the orchestrator can tell: versions per package, and
/// every call, in order.
#[derive(Default)]
struct FakePkg {
    installed: Mutex<BTreeMap<String, String>>,
    /// Package file → (package, version).
    files: BTreeMap<PathBuf, (String, String)>,
    /// An install that includes this package fails (as dpkg would, leaving
    /// nothing changed).
    fail_install_of: Mutex<Option<String>>,
    calls: Mutex<Vec<String>>,
}

impl FakePkg {
    fn version(&self, name: &str) -> Option<String> {
        self.installed.lock().unwrap().get(name).cloned()
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl PackageManager for FakePkg {
    async fn architecture(&self) -> anyhow::Result<String> {
        Ok("amd64".into())
    }
    async fn installed(&self, package: &str) -> anyhow::Result<Option<Installed>> {
        Ok(self.version(package).map(|version| Installed {
            version,
            configured: true,
            status: "install ok installed".into(),
        }))
    }
    async fn install(&self, files: &[&Path], _downgrade: bool) -> anyhow::Result<InstallReport> {
        let what: Vec<&(String, String)> = files
            .iter()
            .map(|f| self.files.get(*f).expect("a known package file"))
            .collect();
        let names: Vec<String> = what.iter().map(|(n, v)| format!("{n}={v}")).collect();
        self.calls
            .lock()
            .unwrap()
            .push(format!("install {}", names.join(" ")));
        if let Some(bad) = self.fail_install_of.lock().unwrap().as_ref()
            && what.iter().any(|(n, _)| n == bad)
        {
            anyhow::bail!(
                "dpkg -i failed (exit status: 1): dpkg: error processing package {bad} (--install)"
            );
        }
        let mut installed = self.installed.lock().unwrap();
        for (n, v) in what {
            installed.insert(n.clone(), v.clone());
        }
        Ok(InstallReport::default())
    }
    async fn remove(&self, packages: &[&str]) -> anyhow::Result<InstallReport> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("remove {}", packages.join(" ")));
        let mut installed = self.installed.lock().unwrap();
        for p in packages {
            installed.remove(*p);
        }
        Ok(InstallReport::default())
    }
    async fn lock(&self, _timeout: Duration) -> anyhow::Result<PkgLock> {
        Ok(PkgLock::free())
    }
    async fn audit(&self, _package: &str) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// systemd whose units are always active and never restart; records
/// stops, starts and masks.
#[derive(Default)]
struct FakeSystemd {
    calls: Mutex<Vec<String>>,
    /// How many starts fail (the first ones) before starts work again.
    failing_starts: Mutex<u32>,
    /// The units' `UnitFileState` (default `enabled`).
    unit_file_state: Mutex<Option<String>>,
}

impl FakeSystemd {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl ServiceManager for FakeSystemd {
    async fn stop(&self, unit: &str, _: Duration) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push(format!("stop {unit}"));
        Ok(())
    }
    async fn start(&self, unit: &str, _: Duration) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push(format!("start {unit}"));
        let mut failing = self.failing_starts.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            anyhow::bail!("start {unit}: job failed (unit failed/failed)");
        }
        Ok(())
    }
    async fn restart(&self, unit: &str, _: Duration) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push(format!("restart {unit}"));
        Ok(())
    }
    async fn daemon_reload(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn mask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("mask {}", units.join(" ")));
        Ok(())
    }
    async fn unmask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("unmask {}", units.join(" ")));
        Ok(())
    }
    async fn state(&self, unit: &str) -> anyhow::Result<UnitState> {
        Ok(UnitState {
            unit: unit.into(),
            active_state: "active".into(),
            sub_state: "running".into(),
        })
    }
    async fn service_info(&self, unit: &str) -> anyhow::Result<ServiceInfo> {
        Ok(ServiceInfo {
            unit: unit.into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            invocation_id: "1".into(),
            n_restarts: 0,
            main_pid: 42,
            exec_main_status: 0,
            unit_file_state: self
                .unit_file_state
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "enabled".into()),
        })
    }
}

/// A host: packages built for real, a fake dpkg that knows them, a history
/// and the dirs, for a product of `portal` and `portal-cli`.
struct Bench {
    dir: tempfile::TempDir,
    target: Target,
    pkg: FakePkg,
    systemd: FakeSystemd,
    history: History,
    http: Http,
    interrupt: Interrupt,
    /// (package, version) → cached file.
    debs: BTreeMap<(String, String), CachedPackage>,
}

impl Bench {
    fn new() -> Bench {
        Bench::with(|_| String::new())
    }

    /// A bench whose config has `extra(dir)` appended (tables of the target).
    fn with(extra: impl Fn(&Path) -> String) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("portal.conf");
        std::fs::write(&conf, "{}\n").unwrap();
        let toml = format!(
            "[targets.portal]\npackages = [\"portal\", \"portal-cli\"]\nservices = [\"portal.service\"]\nconfig_files = [{conf:?}]\n\
                    [targets.portal.repository]\ntype = \"apt\"\nurl = \"http://r/debian\"\nsuite = \"stable\"\ncomponent = \"main\"\nallow_unsigned = true\n\
                    [targets.portal.health]\nsettle = \"0s\"\ntimeout = \"2s\"\n{}",
            extra(dir.path())
        );
        let s = Settings::from_sources(&[("/t/upkeep.toml".into(), toml)]).unwrap();
        let target = s.targets["portal"].clone();
        let mut pkg = FakePkg::default();
        let mut debs = BTreeMap::new();
        for (name, version) in [
            ("portal", "1.0.0-1"),
            ("portal", "2.0.0-1"),
            ("portal-cli", "1.0.0-1"),
            ("portal-cli", "2.0.0-1"),
            ("libportal", "2.0.0-1"),
        ] {
            let build = dir.path().join(format!("build-{name}-{version}"));
            std::fs::create_dir_all(&build).unwrap();
            let content = format!("{name} {version}\n");
            let file = format!("/opt/{name}/VERSION");
            let deb = build_deb(
                &build,
                &Spec {
                    name,
                    version,
                    epoch: None,
                    files: &[(file.as_str(), content.as_bytes())],
                    hard_links: &[],
                    dirs: &[],
                    config: &[],
                    extra_conffiles: "",
                    changelog: "",
                },
                "gzip",
            );
            let bytes = std::fs::read(&deb).unwrap();
            pkg.files
                .insert(deb.clone(), (name.to_string(), version.to_string()));
            debs.insert(
                (name.to_string(), version.to_string()),
                CachedPackage {
                    path: deb,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    size: bytes.len() as u64,
                },
            );
        }
        pkg.installed.lock().unwrap().extend([
            ("portal".into(), "1.0.0-1".into()),
            ("portal-cli".into(), "1.0.0-1".into()),
        ]);
        let history = History::open(&dir.path().join("state")).unwrap();
        Bench {
            target,
            pkg,
            systemd: FakeSystemd::default(),
            history,
            http: Http::new(None).unwrap(),
            interrupt: Interrupt::none(),
            debs,
            dir,
        }
    }

    fn cached(&self, name: &str, version: &str) -> PackageRef {
        PackageRef {
            version: version.into(),
            source: Source::Cached(self.debs[&(name.to_string(), version.to_string())].clone()),
        }
    }

    /// The upgrade of the product to 2.0.0, bringing `libportal` in anew.
    fn upgrade(&self) -> Transition {
        Transition {
            kind: RunKind::Upgrade,
            from: Some(Installed {
                version: "1.0.0-1".into(),
                configured: true,
                status: "install ok installed".into(),
            }),
            to: self.cached("portal", "2.0.0-1"),
            previous: Some(self.cached("portal", "1.0.0-1")),
            restore: None,
            others: vec![
                Member {
                    name: "portal-cli".into(),
                    from: Some("1.0.0-1".into()),
                    to: Some(self.cached("portal-cli", "2.0.0-1")),
                    previous: Some(self.cached("portal-cli", "1.0.0-1")),
                    reason: "a package of target portal".into(),
                },
                Member {
                    name: "libportal".into(),
                    from: None,
                    to: Some(self.cached("libportal", "2.0.0-1")),
                    previous: None,
                    reason: "portal depends on libportal".into(),
                },
            ],
        }
    }

    /// The fakes and the history as the orchestrator takes them.
    fn systems(&self) -> Systems<'_, FakeSystemd, FakePkg> {
        let journal_dir = self.dir.path().join("journal");
        std::fs::create_dir_all(&journal_dir).unwrap();
        Systems {
            systemd: &self.systemd,
            pkg: &self.pkg,
            http: &self.http,
            history: &self.history,
            interrupt: &self.interrupt,
            journal: crate::health::JournalSource {
                root: None,
                directory: Some(journal_dir),
            },
            fleet: None,
            db_lock_wait: std::time::Duration::from_secs(5),
        }
    }

    fn run(&self, t: &Transition) -> Result<Report, Error> {
        let sys = self.systems();
        let cache = self.dir.path().join("cache");
        let state = self.dir.path().join("state");
        let dirs = Dirs {
            cache: &cache,
            state: &state,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(apply(&self.target, dirs, t, &sys, &mut |_| {}))
    }

    /// `recover` of the interrupted run, as `upkeep recover` runs it.
    fn recover(&self) -> Result<Report, Error> {
        let sys = self.systems();
        let subject = super::recover::needs_recovery(&self.history, "portal")
            .unwrap()
            .expect("a run to recover");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(super::recover::recover(
            &self.target,
            &subject,
            &sys,
            &mut |_| {},
        ))
    }

    /// Makes the last run look as a kill just before step `step` left it:
    /// that step and every later one gone from the journal, no outcome.
    fn interrupt_before(&self, step: &str) {
        let db = rusqlite::Connection::open(self.dir.path().join("state/history.db")).unwrap();
        let run: i64 = db
            .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))
            .unwrap();
        let seq: i64 = db
            .query_row(
                "SELECT seq FROM steps WHERE run_id = ?1 AND name = ?2",
                rusqlite::params![run, step],
                |r| r.get(0),
            )
            .unwrap();
        db.execute(
            "DELETE FROM steps WHERE run_id = ?1 AND seq >= ?2",
            rusqlite::params![run, seq],
        )
        .unwrap();
        db.execute(
            "UPDATE runs SET outcome = NULL, finished_at = NULL WHERE id = ?1",
            [run],
        )
        .unwrap();
    }

    /// The names of the last run's steps, in order, with their status.
    fn steps(&self) -> Vec<String> {
        let run = self.history.last_run("portal").unwrap().unwrap();
        run.steps
            .iter()
            .map(|s| format!("{}:{}", s.name, s.status))
            .collect()
    }
}

#[test]
fn a_product_upgrades_in_one_transaction_with_its_units_masked_meanwhile() {
    let b = Bench::new();
    let report = b.run(&b.upgrade()).unwrap();
    assert_eq!(b.pkg.version("portal").as_deref(), Some("2.0.0-1"));
    assert_eq!(b.pkg.version("portal-cli").as_deref(), Some("2.0.0-1"));
    assert_eq!(b.pkg.version("libportal").as_deref(), Some("2.0.0-1"));
    assert_eq!(
        b.pkg.calls(),
        ["install portal=2.0.0-1 portal-cli=2.0.0-1 libportal=2.0.0-1"]
    );
    // Masked around the install; the start step unmasks before it starts.
    let calls = b.systemd.calls();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(
        pos("stop portal.service") < pos("mask portal.service"),
        "{calls:?}"
    );
    assert!(
        pos("mask portal.service") < pos("start portal.service"),
        "{calls:?}"
    );
    assert_eq!(report.packages.len(), 3);
    assert_eq!(report.packages[2].installed, None);
    let run = b.history.last_run("portal").unwrap().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("succeeded"));
    assert_eq!(run.packages, report.packages);
    // Every package file and the installed versions' copies are recorded,
    // each with its package.
    let arts = b.history.artifacts(run.id).unwrap();
    let of = |role: &str| -> Vec<(Option<String>, Option<String>)> {
        arts.iter()
            .filter(|a| a.artifact.role == role)
            .map(|a| (a.artifact.package.clone(), a.artifact.version.clone()))
            .collect()
    };
    assert_eq!(
        of("package"),
        [
            (None, Some("2.0.0-1".into())),
            (Some("portal-cli".into()), Some("2.0.0-1".into())),
            (Some("libportal".into()), Some("2.0.0-1".into())),
        ]
    );
    assert_eq!(of("previous-package").len(), 2);
}

#[test]
fn a_failed_install_leaves_every_package_as_it_was() {
    let b = Bench::new();
    *b.pkg.fail_install_of.lock().unwrap() = Some("libportal".into());
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    // dpkg's own reason is in the error.
    assert!(
        e.to_string()
            .contains("dpkg: error processing package libportal"),
        "{e}"
    );
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("portal-cli").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("libportal"), None);
    let steps = b.steps();
    assert!(steps.contains(&"install:failed".to_string()), "{steps:?}");
    assert!(
        steps.contains(&"revert-install:succeeded".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"revert-health:succeeded".to_string()),
        "{steps:?}"
    );
    let run = b.history.last_run("portal").unwrap().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("rolled_back"));
}

#[test]
fn a_failure_after_the_install_puts_every_package_back_in_one_transaction() {
    let b = Bench::new();
    *b.systemd.failing_starts.lock().unwrap() = 1;
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(e.to_string().contains("start failed"), "{e}");
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("portal-cli").as_deref(), Some("1.0.0-1"));
    assert_eq!(
        b.pkg.version("libportal"),
        None,
        "brought in by the run: removed"
    );
    assert_eq!(
        b.pkg.calls(),
        [
            "install portal=2.0.0-1 portal-cli=2.0.0-1 libportal=2.0.0-1",
            "install portal=1.0.0-1 portal-cli=1.0.0-1",
            "remove libportal",
        ]
    );
    let steps = b.steps();
    let pos = |s: &str| {
        steps
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {steps:?}"))
    };
    assert!(pos("start:failed") < pos("revert-stop:succeeded"));
    assert!(pos("revert-install:succeeded") < pos("revert-start:succeeded"));
}

#[test]
fn a_revert_that_fails_too_needs_attention_and_names_the_step() {
    let b = Bench::new();
    // The first start fails, and so does the revert's.
    *b.systemd.failing_starts.lock().unwrap() = 2;
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    let text = e.to_string();
    assert!(text.contains("failed too at revert-start"), "{text}");
    assert!(text.contains("upkeep recover portal"), "{text}");
    let run = b.history.last_run("portal").unwrap().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    assert!(
        super::recover::needs_recovery(&b.history, "portal")
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_rollback_returns_each_package_and_removes_what_the_upgrade_brought_in() {
    let b = Bench::new();
    b.run(&b.upgrade()).unwrap();
    let back = Transition {
        kind: RunKind::Rollback,
        from: Some(Installed {
            version: "2.0.0-1".into(),
            configured: true,
            status: "install ok installed".into(),
        }),
        to: b.cached("portal", "1.0.0-1"),
        previous: Some(b.cached("portal", "2.0.0-1")),
        restore: None,
        others: vec![
            Member {
                name: "portal-cli".into(),
                from: Some("2.0.0-1".into()),
                to: Some(b.cached("portal-cli", "1.0.0-1")),
                previous: Some(b.cached("portal-cli", "2.0.0-1")),
                reason: String::new(),
            },
            Member {
                name: "libportal".into(),
                from: Some("2.0.0-1".into()),
                to: None,
                previous: Some(b.cached("libportal", "2.0.0-1")),
                reason: String::new(),
            },
        ],
    };
    b.run(&back).unwrap();
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("portal-cli").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("libportal"), None);
    assert_eq!(
        b.pkg.calls()[1..],
        [
            "install portal=1.0.0-1 portal-cli=1.0.0-1",
            "remove libportal"
        ]
    );
}

/// `[[targets.portal.hook]]` tables: at each point, append
/// `POINT {from} {to}` to `DIR/hooks.log` (through sh, as a vendor's script
/// would; upkeep runs it by argv); at `fail_at`, exit 1 after a line.
fn hook_tables(dir: &Path, fail_at: Option<&str>) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let log = dir.join("hooks.log");
    crate::hooks::At::ALL
        .iter()
        .map(|at| {
            let at = at.name();
            let exit = if fail_at == Some(at) {
                "\necho vendor says no\nexit 1"
            } else {
                ""
            };
            // The vendor's script (a file, run by upkeep by its path).
            let script = dir.join(format!("vendor-hook-{at}"));
            std::fs::write(
                &script,
                format!("#!/bin/sh\necho \"$1 $2 $3\" >> {}{exit}\n", log.display()),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            format!(
                "[[targets.portal.hook]]\nat = \"{at}\"\ncommand = [\"{}\", \"{at}\", \"{{from}}\", \"{{to}}\"]\n",
                script.display()
            )
        })
        .collect()
}

fn hooks_log(b: &Bench) -> Vec<String> {
    std::fs::read_to_string(b.dir.path().join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `hooks` a step of the last run recorded.
fn step_hooks(b: &Bench, step: &str) -> serde_json::Value {
    let run = b.history.last_run("portal").unwrap().unwrap();
    let s = run.steps.iter().find(|s| s.name == step).unwrap();
    s.detail
        .as_ref()
        .map(|d| d["hooks"].clone())
        .unwrap_or_default()
}

#[test]
fn hooks_run_at_their_points_with_the_versions_and_are_journaled() {
    let b = Bench::with(|d| hook_tables(d, None));
    b.run(&b.upgrade()).unwrap();
    assert_eq!(
        hooks_log(&b),
        [
            "before-stop 1.0.0 2.0.0",
            "after-backup 1.0.0 2.0.0",
            "after-install 1.0.0 2.0.0",
            "after-start 1.0.0 2.0.0",
        ]
    );
    for (step, at) in [
        ("backup-files", "before-stop"),
        ("backup-database", "after-backup"),
        ("install", "after-install"),
        ("start", "after-start"),
    ] {
        let h = step_hooks(&b, step);
        assert_eq!(h[0]["at"], at, "{step}: {h}");
        assert_eq!(h[0]["exit"], 0, "{step}: {h}");
        assert_eq!(h[0]["argv"][2], "1.0.0", "{step}: {h}");
        assert_eq!(h[0]["argv"][3], "2.0.0", "{step}: {h}");
        assert!(h[0]["duration_ms"].is_u64(), "{h}");
    }
    let run = b.history.last_run("portal").unwrap().unwrap();
    assert_eq!(
        run.steps.len(),
        UPGRADE_STEPS.len(),
        "no steps of their own"
    );
}

#[test]
fn a_failing_hook_before_the_stop_changes_nothing() {
    let b = Bench::with(|d| hook_tables(d, Some("before-stop")));
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    let line = e.to_string();
    assert!(
        line.contains(
            "/vendor-hook-before-stop failed: exit status 1: vendor says no; nothing was stopped"
        ),
        "{line}"
    );
    assert!(b.systemd.calls().is_empty(), "{:?}", b.systemd.calls());
    assert!(b.pkg.calls().is_empty());
    assert!(b.steps().contains(&"backup-files:failed".to_string()));
    assert_eq!(step_hooks(&b, "backup-files")[0]["exit"], 1);
    let run = b.history.last_run("portal").unwrap().unwrap();
    assert_eq!(run.outcome.as_deref(), Some("failed"));
}

#[test]
fn a_failing_hook_after_the_start_rolls_the_run_back() {
    let b = Bench::with(|d| hook_tables(d, Some("after-start")));
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(
        e.to_string()
            .contains("/vendor-hook-after-start failed: exit status 1"),
        "{e}"
    );
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    let steps = b.steps();
    assert!(steps.contains(&"start:failed".to_string()), "{steps:?}");
    assert!(
        steps.contains(&"revert-health:succeeded".to_string()),
        "{steps:?}"
    );
    let h = step_hooks(&b, "start");
    assert_eq!(h[0]["output"], "vendor says no", "{h}");
    // The revert runs no hooks.
    assert_eq!(hooks_log(&b).len(), 4, "{:?}", hooks_log(&b));
}

/// A command check for the verify tests.
fn command_check(name: &str, argv: &[&str]) -> crate::verify::Check {
    crate::verify::Check {
        name: name.into(),
        timeout: Duration::from_secs(10),
        kind: crate::verify::CheckKind::Command {
            argv: argv.iter().map(|a| a.to_string()).collect(),
        },
    }
}

#[test]
fn verify_checks_that_pass_are_in_the_report_and_the_health_step() {
    let mut b = Bench::new();
    b.target.verify = vec![
        command_check("echo", &["/bin/echo", "{version} from {from}"]),
        crate::verify::Check {
            name: "logs".into(),
            timeout: Duration::from_secs(10),
            kind: crate::verify::CheckKind::Journal {
                fail: vec!["ERROR".into()],
                warn: vec![],
            },
        },
    ];
    let report = b.run(&b.upgrade()).unwrap();
    assert_eq!(report.verify.len(), 2, "{:?}", report.verify);
    assert_eq!(report.verify[0].excerpt, "2.0.0 from 1.0.0-1");
    assert!(
        report
            .verify
            .iter()
            .all(|r| r.outcome == crate::verify::Outcome::Passed),
        "{:?}",
        report.verify
    );
    let run = b.history.last_run("portal").unwrap().unwrap();
    let health = run.steps.iter().find(|s| s.name == "health").unwrap();
    let detail = health.detail.as_ref().unwrap();
    assert_eq!(detail["verify"], serde_json::json!(report.verify));
    // Not a step of its own.
    assert!(!b.steps().iter().any(|s| s.starts_with("verify")));
}

#[test]
fn a_failed_verify_check_fails_the_health_step_and_rolls_back() {
    let mut b = Bench::new();
    b.target.verify = vec![
        command_check("first", &["/bin/true"]),
        command_check("sync", &["/bin/false", "{version}"]),
    ];
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("health failed: verify \"sync\": /bin/false 2.0.0 exited with status 1"),
        "{text}"
    );
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    let steps = b.steps();
    assert!(steps.contains(&"health:failed".to_string()), "{steps:?}");
    assert!(
        steps.contains(&"revert-health:succeeded".to_string()),
        "{steps:?}"
    );
    let run = b.history.last_run("portal").unwrap().unwrap();
    let health = run.steps.iter().find(|s| s.name == "health").unwrap();
    let results = &health.detail.as_ref().unwrap()["verify"];
    assert_eq!(results[0]["outcome"], "passed", "{results}");
    assert_eq!(results[1]["outcome"], "failed", "{results}");
    assert_eq!(results[1]["name"], "sync", "{results}");
}

#[test]
fn recover_rolls_back_a_run_that_passed_its_gate_but_had_not_recorded_its_commit() {
    let b = Bench::new();
    b.run(&b.upgrade()).unwrap();
    assert_eq!(b.pkg.version("portal").as_deref(), Some("2.0.0-1"));
    // Killed after the health gate passed, before the commit: not
    // committed, so undone, although the new version runs and is healthy.
    b.interrupt_before("commit");
    let e = b.recover().unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert_eq!(b.pkg.version("portal").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("portal-cli").as_deref(), Some("1.0.0-1"));
    assert_eq!(b.pkg.version("libportal"), None);
    assert!(
        super::recover::needs_recovery(&b.history, "portal")
            .unwrap()
            .is_none()
    );
}

#[test]
fn recover_completes_a_run_whose_commit_was_recorded() {
    let b = Bench::new();
    b.run(&b.upgrade()).unwrap();
    let installs = b.pkg.calls().len();
    b.interrupt_before("cleanup");
    let report = b.recover().unwrap();
    assert_eq!(report.outcome, "completed");
    assert_eq!(b.pkg.version("portal").as_deref(), Some("2.0.0-1"));
    assert_eq!(b.pkg.calls().len(), installs, "no package was touched");
    assert!(
        super::recover::needs_recovery(&b.history, "portal")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_masked_unit_blocks_the_upgrade_in_the_preflight_before_anything_changes() {
    let b = Bench::new();
    *b.systemd.unit_file_state.lock().unwrap() = Some("masked".into());
    let e = b.run(&b.upgrade()).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("portal.service is masked")
            && text.contains("systemctl unmask portal.service"),
        "{text}"
    );
    assert!(b.pkg.calls().is_empty(), "{:?}", b.pkg.calls());
    assert!(
        !b.systemd.calls().iter().any(|c| c.starts_with("stop")),
        "{:?}",
        b.systemd.calls()
    );
}
