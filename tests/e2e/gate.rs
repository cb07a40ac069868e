//! The health gate against a real systemd: the gate runs on the host and
//! talks to a container's systemd over its system bus
//! (`unix:path=/proc/PID/root/run/dbus/system_bus_socket`), reads the
//! container's journal with `journalctl --root=/proc/PID/root`, and probes
//! URLs from inside the container's network namespace.
//!
//! The units are small python3 programs that behave as a broken release
//! would: log a migration error, crash after answering, crash-loop.

use std::future::Future;
use std::time::{Duration, Instant};

use upkeep::download::Http;
use upkeep::health::{self, Baseline, Gate, JournalSource};
use upkeep::systemd::{ServiceManager, Systemd};

use crate::rig::Container;

/// The pattern the rig's configuration uses too.
const MIGRATION_ERROR: &str = "failed to migrate database";

/// A container to run units in.
struct Lab {
    c: Container,
}

impl Lab {
    fn boot() -> Lab {
        let c = Container::boot(&[]).unwrap_or_else(|e| panic!("the rig could not start: {e}"));
        Lab { c }
    }

    /// Installs `NAME.service` running the python `script`, with extra
    /// `[Service]` lines, and reloads systemd.
    fn unit(&self, name: &str, script: &str, service: &str) {
        self.c
            .write(&format!("/opt/gate/{name}.py"), script, 0o644)
            .unwrap();
        self.c
            .write(
                &format!("/etc/systemd/system/{name}.service"),
                format!(
                    "[Service]\nExecStart=/usr/bin/python3 -u /opt/gate/{name}.py\n{service}\n"
                ),
                0o644,
            )
            .unwrap();
        self.c.run(&["systemctl", "daemon-reload"]).unwrap();
    }

    fn systemctl(&self, args: &[&str]) -> String {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        self.c.run(&argv).unwrap()
    }

    /// `systemctl show -p PROP --value UNIT`.
    fn show(&self, unit: &str, prop: &str) -> String {
        self.systemctl(&["show", "-p", prop, "--value", unit])
            .trim()
            .to_string()
    }

    /// Waits until `prop` of `unit` satisfies `ok`.
    fn wait_show(&self, unit: &str, prop: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.show(unit, prop);
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{unit} {prop}={v:?} after 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn journal(&self) -> JournalSource {
        JournalSource {
            root: Some(self.c.path("/")),
            directory: None,
        }
    }

    /// Runs `f` with systemd and HTTP of the container: on a thread of its
    /// own that enters the container's network namespace (so the gate's
    /// probes reach its loopback), on a current-thread runtime.
    fn run<T: Send + 'static, F>(&self, f: impl FnOnce(Systemd, Http) -> F + Send + 'static) -> T
    where
        F: Future<Output = T>,
    {
        let pid = self.c.leader();
        std::thread::spawn(move || {
            enter_netns(pid);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let bus = format!("unix:path=/proc/{pid}/root/run/dbus/system_bus_socket");
                let systemd = Systemd::connect_to(&bus).await.unwrap();
                let http = Http::new(None).unwrap();
                f(systemd, http).await
            })
        })
        .join()
        .unwrap()
    }
}

/// Moves the calling thread into the network namespace of `pid`.
fn enter_netns(pid: u32) {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    // SAFETY: setns on a valid namespace fd; it changes only this thread's
    // network namespace (a thread of its own, ended after the test body).
    let r = unsafe { nix::libc::setns(ns.as_raw_fd(), nix::libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

fn units(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{n}.service")).collect()
}

/// The gate of an upgrade: after `baseline`, with the rig's log pattern.
async fn gate_after(
    units: &[String],
    url: Option<&url::Url>,
    base: &Baseline,
    systemd: &Systemd,
    http: &Http,
) -> (anyhow::Result<health::Passed>, Duration) {
    let patterns = vec![MIGRATION_ERROR.to_string()];
    let gate = Gate {
        settle: health::SETTLE,
        units,
        url,
        timeout: Duration::from_secs(20),
        log_errors: &patterns,
        since: Some(base),
    };
    let started = Instant::now();
    let r = health::wait_healthy(&gate, systemd, http).await;
    (r, started.elapsed())
}

const SERVE: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"version":"2.0.0"}')
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 8099), H)
print("ready on 8099", flush=True)
s.serve_forever()
"#;

#[test]
fn a_healthy_unit_passes_after_the_settle_window_and_old_errors_do_not_count() {
    let lab = Lab::boot();
    // The old version logged the error pattern: before the baseline.
    lab.unit(
        "web",
        &format!("print('ERROR {MIGRATION_ERROR}: old version', flush=True)\n"),
        "Type=oneshot",
    );
    lab.systemctl(&["start", "web.service"]);
    lab.unit("web", SERVE, "Restart=on-failure");
    let journal = lab.journal();
    let (passed, waited, info, restarted) = lab.run(move |systemd, http| async move {
        let u = units(&["web"]);
        let base = health::baseline_in(&u, &systemd, journal).await.unwrap();
        assert!(base.cursor.is_some(), "{base:?}");
        systemd
            .start("web.service", Duration::from_secs(10))
            .await
            .unwrap();
        let url = url::Url::parse("http://127.0.0.1:8099/ready").unwrap();
        let (r, waited) = gate_after(&u, Some(&url), &base, &systemd, &http).await;
        let passed = r.unwrap_or_else(|e| panic!("gate failed: {e:#}"));
        let info = systemd.service_info("web.service").await.unwrap();
        // restart(): a new invocation, and no automatic restart counted.
        systemd
            .restart("web.service", Duration::from_secs(10))
            .await
            .unwrap();
        let restarted = systemd.service_info("web.service").await.unwrap();
        (passed, waited, info, restarted)
    });
    assert_eq!(passed.body.as_deref(), Some(r#"{"version":"2.0.0"}"#));
    assert!(waited >= health::SETTLE, "passed after {waited:?}");
    assert!(
        waited < health::SETTLE + Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(info.active_state, "active");
    assert_eq!(info.sub_state, "running");
    assert_eq!(info.n_restarts, 0);
    assert_eq!(info.invocation_id.len(), 32, "{info:?}");
    assert_eq!(passed.invocations[0].1, info.invocation_id);
    assert!(info.main_pid > 1, "{info:?}");
    assert_eq!(
        restarted.main_pid.to_string(),
        lab.show("web.service", "MainPID"),
        "{restarted:?}"
    );
    assert_ne!(restarted.invocation_id, info.invocation_id);
    assert_eq!(restarted.n_restarts, 0);
    eprintln!("healthy unit: gate passed in {waited:?}");
}

#[test]
fn a_unit_that_logs_a_migration_error_fails_the_gate_with_the_line() {
    let lab = Lab::boot();
    lab.unit(
        "portal",
        &format!(
            "import time\nprint('starting 2.0.0', flush=True)\n\
             print('ERROR {MIGRATION_ERROR}: column \"theme\" already exists', flush=True)\n\
             time.sleep(600)\n"
        ),
        "",
    );
    let journal = lab.journal();
    let (r, waited) = lab.run(move |systemd, http| async move {
        let u = units(&["portal"]);
        let base = health::baseline_in(&u, &systemd, journal).await.unwrap();
        systemd
            .start("portal.service", Duration::from_secs(10))
            .await
            .unwrap();
        gate_after(&u, None, &base, &systemd, &http).await
    });
    let e = format!(
        "{:#}",
        r.expect_err("the gate passed a unit that logged an error")
    );
    assert!(
        e.contains(&format!(
            "portal.service logged an error since the install: ERROR {MIGRATION_ERROR}: column \"theme\" already exists"
        )),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    // Fails fast: the unit is active, nothing to wait for.
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    eprintln!("logged error: gate failed in {waited:?}: {e}");
}

#[test]
fn lines_logged_while_the_postinst_ran_the_new_version_count() {
    let lab = Lab::boot();
    lab.unit("portal", "import time\ntime.sleep(600)\n", "");
    let journal = lab.journal();
    let lab = std::sync::Arc::new(lab);
    let l2 = lab.clone();
    let (r, waited) = lab.run(move |systemd, http| async move {
        let u = units(&["portal"]);
        let base = health::baseline_in(&u, &systemd, journal).await.unwrap();
        // "postinst": starts the new version, which fails its migration
        // and exits 0; then the package is fixed up and started again.
        l2.unit(
            "portal",
            &format!("print('{MIGRATION_ERROR}: disk full', flush=True)\n"),
            "",
        );
        l2.systemctl(&["start", "portal.service"]);
        l2.wait_show("portal.service", "ActiveState", |s| s == "inactive");
        l2.unit("portal", "import time\ntime.sleep(600)\n", "");
        systemd
            .start("portal.service", Duration::from_secs(10))
            .await
            .unwrap();
        gate_after(&u, None, &base, &systemd, &http).await
    });
    let e = format!("{:#}", r.expect_err("the gate missed the postinst's error"));
    assert!(
        e.contains(&format!(
            "portal.service logged an error since the install: {MIGRATION_ERROR}: disk full"
        )),
        "{e}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn a_unit_that_crashes_after_answering_fails_the_gate_as_restarted() {
    let lab = Lab::boot();
    lab.unit(
        "portal",
        &format!(
            "import threading, time, sys\n{}\nthreading.Thread(target=s.serve_forever, daemon=True).start()\n\
             time.sleep(1.5)\nprint('segmentation fault', flush=True)\nsys.exit(139)\n",
            SERVE.replace("s.serve_forever()", "")
        ),
        "Restart=always\nRestartSec=100ms",
    );
    let journal = lab.journal();
    let (r, waited) = lab.run(move |systemd, http| async move {
        let u = units(&["portal"]);
        let base = health::baseline_in(&u, &systemd, journal).await.unwrap();
        systemd
            .start("portal.service", Duration::from_secs(10))
            .await
            .unwrap();
        let url = url::Url::parse("http://127.0.0.1:8099/ready").unwrap();
        gate_after(&u, Some(&url), &base, &systemd, &http).await
    });
    let e = format!("{:#}", r.expect_err("the gate passed a crash-looping unit"));
    assert!(e.contains("portal.service restarted"), "{e}");
    assert!(waited < health::SETTLE, "{waited:?}");
    eprintln!("crash loop: gate failed in {waited:?}: {e}");
}

#[test]
fn restarts_are_seen_even_when_a_manual_restart_reset_nrestarts() {
    let lab = Lab::boot();
    lab.unit("portal", "import time\ntime.sleep(600)\n", "");
    let journal = lab.journal();
    let lab = std::sync::Arc::new(lab);
    let l2 = lab.clone();
    let (r, waited) = lab.run(move |systemd, http| async move {
        let u = units(&["portal"]);
        let base = health::baseline_in(&u, &systemd, journal).await.unwrap();
        // The new version crashes once and systemd restarts it...
        l2.unit(
            "portal",
            "import sys, time\nprint('crashing', flush=True)\nsys.exit(1)\n",
            "Restart=always\nRestartSec=100ms",
        );
        l2.systemctl(&["start", "portal.service"]);
        l2.wait_show("portal.service", "NRestarts", |n| n != "0");
        // ...then the postinst restarts it by hand: NRestarts is 0 again.
        l2.unit("portal", "import time\ntime.sleep(600)\n", "");
        systemd
            .restart("portal.service", Duration::from_secs(10))
            .await
            .unwrap();
        let n = systemd
            .service_info("portal.service")
            .await
            .unwrap()
            .n_restarts;
        assert_eq!(
            n, 0,
            "systemd no longer resets NRestarts on a manual restart"
        );
        gate_after(&u, None, &base, &systemd, &http).await
    });
    let e = format!("{:#}", r.expect_err("the gate missed the restart"));
    assert!(e.contains("portal.service restarted"), "{e}");
    assert!(e.contains("since the install"), "{e}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn a_failed_unit_fails_at_once_even_without_a_baseline() {
    let lab = Lab::boot();
    lab.unit(
        "portal",
        "import sys\nprint('bad config', flush=True)\nsys.exit(3)\n",
        "",
    );
    lab.systemctl(&["start", "portal.service"]);
    lab.wait_show("portal.service", "ActiveState", |s| s == "failed");
    let (r, waited) = lab.run(move |systemd, http| async move {
        let u = units(&["portal"]);
        let gate = Gate {
            settle: health::SETTLE,
            units: &u,
            url: None,
            timeout: Duration::from_secs(20),
            log_errors: &[],
            since: None,
        };
        let started = Instant::now();
        let r = health::wait_healthy(&gate, &systemd, &http).await;
        (r, started.elapsed())
    });
    let e = format!("{:#}", r.expect_err("the gate passed a failed unit"));
    assert_eq!(
        e,
        "portal.service failed (failed/failed, result exit-code, status 3)"
    );
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}
