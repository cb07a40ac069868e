//! Throwaway PostgreSQL 15 and MariaDB servers for the database backup tests
//! (test-only). Each server lives in its own temporary directory on a free
//! port of 127.0.0.1, has a user `portal` with a password owning a database
//! `portal`, and is stopped when dropped (also when a test panics).
//! Missing server binaries fail the test with the apt package to install.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the PostgreSQL 15 server programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Fails the test when `path` is missing, naming the package to install.
fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the apt package {package} (apt-get install {package})"
    );
}

/// The uid and gid of a system user, or a failure naming the package that
/// creates it.
fn ids_of(user: &str, package: &str) -> (u32, u32) {
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw()),
        _ => panic!("no system user {user}: install the apt package {package}"),
    }
}

/// Runs `cmd`; returns its stdout, or fails the test with its output.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A private temporary directory owned by a system user.
fn owned_tempdir(prefix: &str, uid: u32, gid: u32) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("cannot create a temporary directory");
    chown(dir.path(), Some(uid), Some(gid)).expect("cannot chown the temporary directory");
    dir
}

/// A PostgreSQL 15 server: TCP needs a password (scram-sha-256), the socket
/// in its directory trusts everyone (for the tests' own administration).
pub(super) struct Postgres {
    dir: tempfile::TempDir,
    data: PathBuf,
    /// The TCP port on 127.0.0.1 (also the socket's number).
    pub port: u16,
    started: bool,
}

impl Postgres {
    /// Initializes and starts a server, creates role `portal` with
    /// `password` and database `portal` owned by it.
    pub fn start(password: &str) -> Postgres {
        for tool in ["initdb", "pg_ctl", "postgres"] {
            need(&format!("{PG_BIN}/{tool}"), "postgresql-15");
        }
        for tool in ["psql", "pg_dump", "pg_restore"] {
            need(&format!("/usr/bin/{tool}"), "postgresql-client-15");
        }
        let (uid, gid) = ids_of("postgres", "postgresql-15");
        let dir = owned_tempdir("upkeep-pg-", uid, gid);
        let data = dir.path().join("data");
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{PG_BIN}/initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-sync",
                ]),
            "initdb",
        );
        let mut server = Postgres {
            dir,
            data,
            port: 0,
            started: false,
        };
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(&server.data)
                .arg("-l")
                .arg(server.dir.path().join("log"))
                .arg("-w")
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    server.port,
                    server.dir.path().display()
                ))
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .expect("cannot run pg_ctl");
            if out.status.success() {
                server.started = true;
                break;
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(server.dir.path().join("log")).unwrap_or_default()
            );
        }
        assert!(server.started, "PostgreSQL did not start: {last_error}");
        server.admin_db(
            "postgres",
            &format!(
                "CREATE ROLE portal LOGIN PASSWORD '{}'",
                password.replace('\'', "''")
            ),
        );
        server.admin_db("postgres", "CREATE DATABASE portal OWNER portal");
        server
    }

    /// Restarts the server (a fast shutdown: every session is ended), on
    /// the same port.
    pub fn restart(&self) {
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-m", "fast", "-w", "restart"])
                .stdout(Stdio::null()),
            "pg_ctl restart",
        );
    }

    /// Runs SQL as the superuser in database `portal` over the socket;
    /// returns the unaligned, tuples-only output.
    pub fn admin(&self, sql: &str) -> String {
        self.admin_db("portal", sql)
    }

    fn admin_db(&self, db: &str, sql: &str) -> String {
        run_ok(
            Command::new("/usr/bin/psql")
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .arg("-X")
                .arg("-h")
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", "postgres", "-d", db])
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t"])
                .arg(format!("--command={sql}")),
            &format!("psql {sql:?}"),
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A MariaDB server (root over the socket without a password; `portal`
/// with its password from anywhere, names not resolved).
pub(super) struct Mariadb {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The server's socket file.
    pub socket: PathBuf,
    portal_cnf: PathBuf,
}

impl Mariadb {
    /// Installs a data directory, starts the server, creates user `portal`
    /// with `password` and database `portal` it may do anything in, as in
    /// the schemas `portal_upkeep_*` of an atomic restore.
    pub fn start(password: &str) -> Mariadb {
        need("/usr/sbin/mariadbd", "mariadb-server");
        need("/usr/bin/mariadb-install-db", "mariadb-server");
        need("/usr/bin/mariadb", "mariadb-client");
        need("/usr/bin/mariadb-dump", "mariadb-client");
        let (uid, gid) = ids_of("mysql", "mariadb-server");
        let dir = owned_tempdir("upkeep-my-", uid, gid);
        let data = dir.path().join("data");
        // A private tmpdir: a starting server removes every `#sql*` file in
        // its tmpdir, which breaks another test's install running in /tmp.
        let tmpdir = dir.path().join("tmp");
        fs::create_dir(&tmpdir).expect("cannot create the server's tmpdir");
        chown(&tmpdir, Some(uid), Some(gid)).expect("cannot chown the server's tmpdir");
        let tmpdir_arg = format!("--tmpdir={}", tmpdir.display());
        run_ok(
            Command::new("/usr/bin/mariadb-install-db")
                .arg("--no-defaults")
                .arg("--user=mysql")
                .arg(format!("--datadir={}", data.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .arg(&tmpdir_arg),
            "mariadb-install-db",
        );
        let socket = dir.path().join("sock");
        let portal_cnf = dir.path().join("portal.cnf");
        let mut server = Mariadb {
            dir,
            child: None,
            port: 0,
            socket,
            portal_cnf,
        };
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            let child = Command::new("/usr/sbin/mariadbd")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", server.socket.display()))
                .arg(format!("--port={}", server.port))
                .arg("--bind-address=127.0.0.1")
                .arg("--user=mysql")
                .arg("--skip-name-resolve")
                .arg(&tmpdir_arg)
                .arg(format!(
                    "--pid-file={}",
                    server.dir.path().join("pid").display()
                ))
                .arg(format!(
                    "--log-error={}",
                    server.dir.path().join("err.log").display()
                ))
                .arg("--innodb-buffer-pool-size=32M")
                .arg("--innodb-flush-log-at-trx-commit=0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot run mariadbd");
            server.child = Some(child);
            match server.wait_ready() {
                Ok(()) => break,
                Err(e) => {
                    last_error = e;
                    server.stop();
                }
            }
        }
        assert!(
            server.child.is_some(),
            "MariaDB did not start: {last_error}"
        );
        let pw = password.replace('\\', "\\\\").replace('\'', "''");
        server.admin(&format!(
            "CREATE USER 'portal'@'%' IDENTIFIED BY '{pw}';
             CREATE USER 'portal'@'localhost' IDENTIFIED BY '{pw}';
             CREATE DATABASE portal;
             GRANT ALL ON portal.* TO 'portal'@'%';
             GRANT ALL ON portal.* TO 'portal'@'localhost';
             GRANT ALL ON `portal\\_upkeep\\_%`.* TO 'portal'@'%';
             GRANT ALL ON `portal\\_upkeep\\_%`.* TO 'portal'@'localhost';"
        ));
        let cnf_value = password.replace('\\', "\\\\").replace('"', "\\\"");
        let mut cnf = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&server.portal_cnf)
            .expect("cannot write portal.cnf");
        writeln!(cnf, "[client]\npassword=\"{cnf_value}\"").expect("cannot write portal.cnf");
        server
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "mariadbd exited ({status}): {}",
                    fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
                ));
            }
            let ok = Command::new("/usr/bin/mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket.display()))
                .args(["-u", "root", "-e", "SELECT 1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("mariadbd did not answer within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs SQL as root (in database `portal` once it exists); returns the
    /// batch output without column names.
    pub fn admin(&self, sql: &str) -> String {
        run_ok(
            Command::new("/usr/bin/mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket.display()))
                .args(["-u", "root", "--batch", "--skip-column-names", "-e", sql]),
            &format!("mariadb {sql:?}"),
        )
    }

    /// Runs SQL as `portal` over TCP in database `portal` (the account the
    /// backups use, so that DEFINERs match).
    pub fn portal(&self, sql: &str) -> String {
        run_ok(
            Command::new("/usr/bin/mariadb")
                .arg(format!(
                    "--defaults-extra-file={}",
                    self.portal_cnf.display()
                ))
                .env("HOME", self.dir.path())
                .args(["--protocol=TCP", "--host=127.0.0.1"])
                .arg(format!("--port={}", self.port))
                .args([
                    "--user=portal",
                    "--database=portal",
                    "--batch",
                    "--skip-column-names",
                    "-e",
                    sql,
                ]),
            &format!("mariadb (portal) {sql:?}"),
        )
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.stop();
    }
}
