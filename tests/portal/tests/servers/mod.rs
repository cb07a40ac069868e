//! Real database servers for the portal's tests, started on this host: a
//! PostgreSQL and a MariaDB server on a free port on 127.0.0.1 with their
//! data in a scratch directory, stopped (and the data removed) when dropped.
//! Nothing is skipped: without the server programs
//! (`apt-get install postgresql mariadb-server`) the tests fail.
//!
//! Shared by the unit tests (`src/dbtest.rs`) and the binary's tests
//! (`tests/binary.rs`).

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

/// A password with the characters that trip up connection-string parsers.
pub const PASSWORD: &str = "Pw-p@ss:w/rd-9c2e";

unsafe extern "C" {
    fn geteuid() -> u32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
}

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const PR_SET_PDEATHSIG: i32 = 1;

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) {
    // SAFETY: plain kill(2).
    unsafe {
        kill(pid as i32, SIGTERM);
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { geteuid() == 0 }
}

/// A fresh scratch directory, removed by [`Server`]'s or the test's cleanup.
pub fn scratch(what: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portal-dbtest-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// uid and gid of a system account, from /etc/passwd.
pub fn account(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == name)
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        .unwrap_or_else(|| panic!("no {name} account: apt-get install postgresql mariadb-server"))
}

pub fn program(candidates: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .collect();
    for name in candidates {
        if name.starts_with('/') && Path::new(name).is_file() {
            return PathBuf::from(name);
        }
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return p;
        }
    }
    panic!(
        "none of {candidates:?} found: these tests need real database servers \
         (apt-get install postgresql mariadb-server)"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Runs `cmd` to completion; panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs as `owner` when the tests run as root (the servers refuse root).
pub fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// A database server child process; dropping it shuts the server down and
/// removes its data.
pub struct Server {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Server {
    pub fn spawn(cmd: &mut Command, dir: PathBuf, log: PathBuf) -> Server {
        // The server dies with the test thread that started it, even when
        // the test process is killed.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: cannot start: {e}"));
        Server { child, dir, log }
    }

    /// Polls `ready` until it succeeds; panics with the server log after 60 s
    /// or when the server exits.
    pub fn wait<T>(&mut self, what: &str, mut ready: impl FnMut() -> Result<T, String>) -> T {
        let started = Instant::now();
        loop {
            match ready() {
                Ok(v) => {
                    eprintln!("{what} ready after {:?}", started.elapsed());
                    return v;
                }
                Err(e) => {
                    let exited = self.child.try_wait().ok().flatten();
                    if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                        panic!(
                            "{what} did not start ({exited:?}): {e}\n--- log\n{}",
                            std::fs::read_to_string(&self.log).unwrap_or_default()
                        );
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A MariaDB server with a user `portal` (password [`PASSWORD`]) allowed on
/// databases `t_*`; `root` logs in over the socket without a password.
pub struct Mariadb {
    pub server: Server,
    pub port: u16,
    pub socket: PathBuf,
    pub root: mysql::Conn,
    next: u32,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        let install = program(&["mariadb-install-db", "mysql_install_db"]);
        let mariadbd = program(&["mariadbd", "mysqld"]);
        let dir = scratch("mariadb");
        let owner = is_root().then(|| account("mysql"));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let log = dir.join("error.log");
        let socket = dir.join("mysqld.sock");
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(&dir);
        run(as_owner(&mut cmd, owner));
        let port = free_port();
        let mut cmd = Command::new(mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg("--innodb-flush-log-at-trx-commit=0")
            .current_dir(&dir);
        let mut server = Server::spawn(as_owner(&mut cmd, owner), dir, log);
        let root_opts = mysql::OptsBuilder::new()
            .socket(Some(socket.to_string_lossy()))
            .user(Some("root"));
        let mut root = server.wait("mariadb", || {
            mysql::Conn::new(root_opts.clone()).map_err(|e| e.to_string())
        });
        for host in ["localhost", "127.0.0.1"] {
            root.query_drop(format!(
                "CREATE USER 'portal'@'{host}' IDENTIFIED BY '{PASSWORD}'"
            ))
            .unwrap();
            root.query_drop(format!("GRANT ALL ON `t\\_%`.* TO 'portal'@'{host}'"))
                .unwrap();
        }
        Mariadb {
            server,
            port,
            socket,
            root,
            next: 0,
        }
    }

    /// A new empty database the portal user owns.
    pub fn database(&mut self) -> String {
        self.next += 1;
        let name = format!("t_{}", self.next);
        self.root
            .query_drop(format!("CREATE DATABASE {name}"))
            .unwrap();
        name
    }
}

/// A PostgreSQL server with a login role `portal` (password [`PASSWORD`],
/// scram over TCP); `postgres` logs in over the socket without one.
pub struct Postgres {
    pub server: Server,
    pub port: u16,
    pub root: postgres::Client,
    next: u32,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = newest_postgres_bin();
        let dir = scratch("postgres");
        let owner = is_root().then(|| account("postgres"));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let log = dir.join("postgres.log");
        let mut cmd = Command::new(bin.join("initdb"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"])
            .current_dir(&dir);
        run(as_owner(&mut cmd, owner));
        let port = free_port();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "logging_collector=off"])
            .current_dir(&dir)
            .stderr(Stdio::null());
        let log_file = std::fs::File::create(&log).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).unwrap();
        }
        let mut server = Server::spawn(as_owner(&mut cmd, owner), dir.clone(), log);
        drop(log_file);
        let socket_conn = format!(
            "host={} port={port} user=postgres dbname=postgres",
            dir.display()
        );
        let mut root = server.wait("postgres", || {
            postgres::Client::connect(&socket_conn, postgres::NoTls).map_err(|e| e.to_string())
        });
        root.batch_execute(&format!("CREATE ROLE portal LOGIN PASSWORD '{PASSWORD}'"))
            .unwrap();
        Postgres {
            server,
            port,
            root,
            next: 0,
        }
    }

    /// A new empty database owned by the portal role.
    pub fn database(&mut self) -> String {
        self.next += 1;
        let name = format!("t_{}", self.next);
        self.root
            .batch_execute(&format!("CREATE DATABASE {name} OWNER portal"))
            .unwrap();
        name
    }
}

pub fn newest_postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => program(&["initdb"])
            .parent()
            .map(Path::to_path_buf)
            .unwrap(),
    }
}
