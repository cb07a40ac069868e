//! The `dev-portal` binary itself on MySQL/MariaDB: start-up and exit codes,
//! the HTTP API, masked logs, and termination during a migration (MySQL
//! cannot roll DDL back, so the portal finishes the file first).

mod servers;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use servers::{Mariadb, PASSWORD, free_port, scratch, terminate};

/// A release directory like the packaged ones: `version`'s files plus
/// `extra` migrations (name, SQL).
fn release_dir(root: &Path, version: &str, extra: &[(&str, &str)]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("releases")
        .join(version);
    let dir = root.join(format!("release-{version}"));
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::copy(src.join("release.json"), dir.join("release.json")).unwrap();
    for e in std::fs::read_dir(src.join("migrations")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("migrations").join(e.file_name())).unwrap();
    }
    for (name, sql) in extra {
        std::fs::write(dir.join("migrations").join(name), sql).unwrap();
    }
    dir
}

struct Portal {
    child: Child,
    log: PathBuf,
}

impl Portal {
    fn start(release: &Path, conf: &Path) -> Portal {
        let log = release.join(format!("portal-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let child = Command::new(env!("CARGO_BIN_EXE_dev-portal"))
            .arg("--conf")
            .arg(conf)
            .arg("--release")
            .arg(release.join("release.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Portal { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`; panics with the log after 30 s
    /// or when the portal exits first.
    fn wait_log(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("portal exited ({status}) before {text:?}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} after 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}

fn schema(my: &mut Mariadb, db: &str) -> i64 {
    my.root
        .query_first(format!("SELECT version FROM {db}.portal_schema"))
        .unwrap()
        .unwrap()
}

#[test]
fn mysql_start_api_exit_codes_and_termination_during_a_migration() {
    let mut my = Mariadb::start();
    let db = my.database();
    let root = scratch("binary");
    let port = free_port();
    let conf = root.join("portal.conf");
    let dsn = format!(
        "portal:{PASSWORD}@tcp(127.0.0.1:{})/{db}?parseTime=true",
        my.port
    );
    std::fs::write(
        &conf,
        serde_json::json!({
            "HostPort": port,
            "LicenseKey": "LIC-test",
            "Database": {"Dialect": "mysql", "ConnectionString": dsn},
        })
        .to_string(),
    )
    .unwrap();

    // 1.0.0 migrates to 2 and serves pages.
    let v1 = release_dir(&root, "1.0.0", &[]);
    let mut p = Portal::start(&v1, &conf);
    p.wait_log("portal 1.0.0 is ready");
    assert_eq!(
        http(port, "POST", "/api/pages", r#"{"title":"one"}"#).0,
        201
    );
    let (status, body) = http(port, "GET", "/api/pages", "");
    assert_eq!(
        (status, &body["titles"]),
        (200, &serde_json::json!(["one"]))
    );
    let (_, ready) = http(port, "GET", "/ready", "");
    assert_eq!(ready["schema"], 2);
    // The config has no Session.IdleTimeout: /ready echoes null.
    assert_eq!(ready["session_idle_timeout"], serde_json::Value::Null);
    // Idle: SIGTERM exits at once with 0.
    terminate(p.child.id());
    assert_eq!(p.wait_exit().code(), Some(0));
    let log = p.log();
    assert!(
        log.contains(&format!("portal:***@tcp(127.0.0.1:{})", my.port)),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "{log}");

    // A slow 2.1.0 (an extra 0006 that sleeps between two DDL statements),
    // terminated inside 0006: it finishes the file and its version bump, exit 0.
    let slow = release_dir(
        &root,
        "2.1.0",
        &[(
            "0006_slow.sql",
            "CREATE TABLE slow_a (id INTEGER);\nSELECT SLEEP(1.5);\nCREATE TABLE slow_b (id INTEGER);\n",
        )],
    );
    let mut p = Portal::start(&slow, &conf);
    p.wait_log("applying migration 0006_slow.sql");
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    terminate(p.child.id());
    assert_eq!(p.wait_exit().code(), Some(0), "{}", p.log());
    assert!(
        signalled.elapsed() > Duration::from_millis(500),
        "exited before the file was done:\n{}",
        p.log()
    );
    let log = p.log();
    assert!(
        log.contains("during a migration; exiting after it"),
        "{log}"
    );
    assert!(!log.contains("is ready"), "{log}");
    assert_eq!(schema(&mut my, &db), 6);
    let tables: Vec<String> = my
        .root
        .query(format!("SHOW TABLES FROM {db} LIKE 'slow%'"))
        .unwrap();
    assert_eq!(tables, ["slow_a", "slow_b"]);

    // Started again it has nothing left to do.
    let mut p = Portal::start(&slow, &conf);
    p.wait_log("portal 2.1.0 is ready");
    assert!(p.log().contains("migrations applied: 0; schema version 6"));
    let (_, body) = http(port, "GET", "/api/pages", "");
    assert_eq!(body["titles"], serde_json::json!(["one"]));
    terminate(p.child.id());
    assert_eq!(p.wait_exit().code(), Some(0));

    // 1.x refuses the newer schema: exit 3.
    let mut p = Portal::start(&v1, &conf);
    assert_eq!(p.wait_exit().code(), Some(3));
    assert!(
        p.log()
            .contains("database schema version 6 is newer than this portal supports (2)"),
        "{}",
        p.log()
    );

    // A wrong password: exit 1, nothing of either password in the log.
    std::fs::write(
        &conf,
        serde_json::json!({
            "HostPort": port,
            "LicenseKey": "LIC-test",
            "Database": {"Dialect": "mysql", "ConnectionString": dsn.replace(PASSWORD, "Wrong-pw-77")},
        })
        .to_string(),
    )
    .unwrap();
    let mut p = Portal::start(&v1, &conf);
    assert_eq!(p.wait_exit().code(), Some(1));
    let log = p.log();
    assert!(log.contains("failed to connect to database"), "{log}");
    assert!(
        !log.contains("Wrong-pw-77") && !log.contains(PASSWORD),
        "{log}"
    );

    drop(my);
    std::fs::remove_dir_all(&root).unwrap();
}
