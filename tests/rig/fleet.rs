//! A fleet: several portal hosts that talk to each other, as upkeep's
//! rolling upgrades across hosts need.
//!
//! The machine's network rule allows traffic only on loopback or inside
//! network namespaces the test makes itself, so a fleet lives in ONE new
//! network namespace (`ip netns add upkeep-fleet-PID-N`): every container
//! boots into it (`systemd-nspawn --network-namespace-path=/run/netns/NAME`)
//! and they all share one 127.0.0.1, so every service has its own port:
//!
//! | what                         | where (inside the namespace)        |
//! |------------------------------|-------------------------------------|
//! | node i's portal (`HostPort`) | 127.0.0.1:[`PORTAL_PORT_BASE`]+i    |
//! | node i's fixture repository  | 127.0.0.1:[`REPO_PORT_BASE`]+i      |
//! | etcd (client / peer)         | 127.0.0.1:2379 / 127.0.0.1:2380     |
//! | PostgreSQL (in node0)        | 127.0.0.1:5432                      |
//! | MariaDB (in node0)           | 127.0.0.1:3306                      |
//!
//! etcd runs on the host (the containers' root filesystem has none), inside
//! the namespace (`ip netns exec NAME etcd ...`), its data in the fleet's
//! temporary directory. The database server, when there is one, runs in
//! node0 and every node's portal uses it over 127.0.0.1. Dropping the fleet
//! (also while unwinding from a panic) powers the nodes off, kills etcd and
//! removes the namespace.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::db::{Db, DbSettings};
use super::{Fail, Family, HostSpec, NodeOptions, PortalHost, cmd_ok, cmd_stdout};

/// Node i's portal listens on `PORTAL_PORT_BASE + i` (never the packaged
/// 3001, so a portal that ignored its `HostPort` would not answer).
pub const PORTAL_PORT_BASE: u16 = 3101;
/// Node i serves the fixture repository on `REPO_PORT_BASE + i`.
pub const REPO_PORT_BASE: u16 = 8101;
/// etcd's client URL, as the nodes (and the host, inside the namespace) see it.
pub const ETCD_URL: &str = "http://127.0.0.1:2379";
/// etcd's peer URL.
pub const ETCD_PEER_URL: &str = "http://127.0.0.1:2380";

/// systemd's catalogue message IDs for a unit's job and state changes.
const MSG_STARTED: &str = "39f53479d3a045ac8e11786248231fbf";
const MSG_STOPPING: &str = "de5b426a63be47a7b6ac3eaac82e2f6f";
const MSG_STOPPED: &str = "9d1aaa27d60140bd96365438aad20286";
const MSG_PROCESS_EXIT: &str = "98e322203f7a4ed290d09fe03c09fe15";
const MSG_FAILURE_RESULT: &str = "d9b373ed55a64feb8242e02dbe79a49c";

/// A down interval that has not ended (the unit was not started again).
pub const STILL_DOWN: u64 = u64::MAX;

/// A network namespace the test made; removed when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add upkeep-fleet-PID-N`, with its loopback up.
    pub fn create() -> Result<Netns, Fail> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "upkeep-fleet-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        cmd_ok(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        cmd_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// Its name (`ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `--network-namespace-path`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// A host command that runs `argv` inside the namespace
    /// (`ip netns exec NAME ARGV...`: an argument vector, no shell).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd_ok(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("rig: cannot remove network namespace {}: {e}", self.name);
        }
    }
}

/// True when `ip netns list` lists a namespace called `name`.
pub fn netns_exists(name: &str) -> bool {
    let listed = cmd_stdout(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    listed
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
        || Path::new("/run/netns").join(name).exists()
}

/// etcd on the host, inside the fleet's namespace.
struct Etcd {
    netns: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Etcd {
    fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .args(argv)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null());
        cmd
    }

    fn etcdctl(&self, args: &[&str]) -> Result<String, Fail> {
        let endpoints = format!("--endpoints={ETCD_URL}");
        let mut argv = vec![
            "etcdctl",
            &endpoints,
            "--dial-timeout=2s",
            "--command-timeout=5s",
        ];
        argv.extend_from_slice(args);
        cmd_stdout(&mut self.command(&argv))
    }

    /// Starts etcd (on the same data directory and ports every time) and
    /// waits until `etcdctl endpoint health` says it is healthy.
    fn start(&mut self) -> Result<(), Fail> {
        if self.child.is_some() {
            return Err(Fail("etcd is already running".into()));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(Fail::io("etcd log"))?;
        let data_dir = self.data_dir.display().to_string();
        let started = Instant::now();
        let child = self
            .command(&[
                "etcd",
                "--name",
                "default",
                "--data-dir",
                &data_dir,
                "--listen-client-urls",
                ETCD_URL,
                "--advertise-client-urls",
                ETCD_URL,
                "--listen-peer-urls",
                ETCD_PEER_URL,
                "--initial-advertise-peer-urls",
                ETCD_PEER_URL,
                "--initial-cluster",
                &format!("default={ETCD_PEER_URL}"),
            ])
            .stdout(log.try_clone().map_err(Fail::io("dup"))?)
            .stderr(log)
            .spawn()
            .map_err(Fail::io("spawn ip netns exec etcd"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(Fail(format!(
                    "etcd exited at start ({status}):\n{}",
                    self.log_tail()
                )));
            }
            match self.etcdctl(&["endpoint", "health"]) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(Fail(format!(
                        "etcd not healthy after 30 s: {e}\n{}",
                        self.log_tail()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        eprintln!(
            "rig: etcd healthy in {} ms (netns {})",
            started.elapsed().as_millis(),
            self.netns
        );
        Ok(())
    }

    /// SIGKILL (as a crash would), then reaps it; the data directory stays.
    fn stop(&mut self) -> Result<(), Fail> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = child.kill();
        child.wait().map_err(Fail::io("wait for etcd"))?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One schema migration the portal applied (or tried to), from its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationRun {
    /// Index of the node whose portal ran it.
    pub node: usize,
    /// When the portal logged `applying migration` (realtime µs).
    pub at_us: u64,
    /// The portal process.
    pub pid: u32,
    /// The migration file (`0003_pages_slug.sql`).
    pub name: String,
    /// The schema version it brings the database to.
    pub schema: i64,
    /// The database that process said it uses (`postgres (postgres://portal:***@127.0.0.1:5432/portal)`).
    pub database: String,
    /// The portal then logged `failed to migrate database: NAME` (the
    /// migration's transaction rolled back).
    pub failed: bool,
}

/// Several portal hosts in one network namespace, with one etcd and (for
/// PostgreSQL and MariaDB) one database server that all their portals use.
pub struct Fleet {
    /// The nodes; node i is named `node{i}`.
    pub nodes: Vec<PortalHost>,
    db: Db,
    database: Option<DbSettings>,
    booted_at_us: u64,
    // Dropped in this order after the nodes (see Drop): etcd, the
    // namespace, then the directory that held etcd's data.
    etcd: Etcd,
    netns: Netns,
    tmp: tempfile::TempDir,
}

/// Now, in realtime µs (the clock the containers' journals use too).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Fleet {
    /// Boots `n` nodes (in parallel threads) of `family` into one new
    /// network namespace, node i named `node{i}` (its host name too),
    /// serving the fixture repository on 127.0.0.1:[`REPO_PORT_BASE`]+i,
    /// with the portal installed at `version` (as [`PortalHost::install`])
    /// and listening on [`PORTAL_PORT_BASE`]+i, and upkeep configured with
    /// those URLs. etcd runs beside them. With `db` = Postgres or Mariadb,
    /// one server runs in node0 and node0's portal is switched to it first
    /// (so only it migrates the empty database), then every other node's
    /// (in parallel), each restarted and ready.
    pub fn boot(n: usize, family: Family, db: Db, version: &str) -> Result<Fleet, Fail> {
        Fleet::boot_with(n, family, db, version, &super::upkeep_binary())
    }

    /// [`Fleet::boot`] with the nodes' upkeep packaged from `upkeep` (the
    /// benchmark's release binary).
    pub fn boot_with(
        n: usize,
        family: Family,
        db: Db,
        version: &str,
        upkeep: &Path,
    ) -> Result<Fleet, Fail> {
        if n == 0 {
            return Err(Fail("a fleet needs at least one node".into()));
        }
        let whole = Instant::now();
        let upkeep = upkeep.to_path_buf();
        // Build once, before the threads, so that a failure says so once.
        super::fixtures::get()?;
        super::own::get(&upkeep)?;
        let netns = Netns::create()?;
        let tmp = tempfile::Builder::new()
            .prefix("upkeep-fleet-")
            .tempdir()
            .map_err(Fail::io("fleet tempdir"))?;
        let mut etcd = Etcd {
            netns: netns.name().to_string(),
            data_dir: tmp.path().join("etcd-data"),
            log: tmp.path().join("etcd.log"),
            child: None,
        };
        etcd.start()?;
        let t_nodes = Instant::now();
        let netns_path = netns.path();
        let booted: Vec<Result<PortalHost, Fail>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let upkeep = upkeep.clone();
                    let netns_path = netns_path.clone();
                    s.spawn(move || -> Result<PortalHost, Fail> {
                        let t = Instant::now();
                        let name = format!("node{i}");
                        let h = PortalHost::boot_node(
                            HostSpec {
                                family,
                                repo_root: None,
                                upkeep,
                            },
                            &NodeOptions {
                                name: Some(name.clone()),
                                netns: Some(netns_path),
                                portal_port: Some(PORTAL_PORT_BASE + i as u16),
                                repo_port: Some(REPO_PORT_BASE + i as u16),
                            },
                        )
                        .map_err(|e| Fail(format!("{name}: boot: {e}")))?;
                        let t_booted = t.elapsed();
                        h.install(version)
                            .map_err(|e| Fail(format!("{name}: install {version}: {e}")))?;
                        eprintln!(
                            "rig: fleet {name}: container and upkeep {} ms, portal {version} ready at {} ms",
                            t_booted.as_millis(),
                            t.elapsed().as_millis()
                        );
                        Ok(h)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Fail("a node's boot thread panicked".into())))
                })
                .collect()
        });
        let mut nodes = Vec::with_capacity(n);
        let mut errors = Vec::new();
        for r in booted {
            match r {
                Ok(h) => nodes.push(h),
                Err(e) => errors.push(e.0),
            }
        }
        if !errors.is_empty() {
            return Err(Fail(format!(
                "fleet of {n}: {} node(s) did not boot:\n{}",
                errors.len(),
                errors.join("\n")
            )));
        }
        let nodes_ms = t_nodes.elapsed().as_millis();
        let t_db = Instant::now();
        let database = nodes[0]
            .start_database(db)
            .map_err(|e| Fail(format!("node0: start {db:?}: {e}")))?;
        if let Some(settings) = &database {
            nodes[0]
                .set_database(settings)
                .map_err(|e| Fail(format!("node0: switch to {db:?}: {e}")))?;
            let switched: Vec<Result<(), Fail>> = std::thread::scope(|s| {
                let handles: Vec<_> = nodes[1..]
                    .iter()
                    .map(|h| {
                        s.spawn(move || {
                            h.set_database(settings)
                                .map_err(|e| Fail(format!("{}: switch to {db:?}: {e}", h.name)))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Fail("a switch thread panicked".into())))
                    })
                    .collect()
            });
            let errors: Vec<String> = switched
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.0))
                .collect();
            if !errors.is_empty() {
                return Err(Fail(errors.join("\n")));
            }
        }
        let fleet = Fleet {
            nodes,
            db,
            database,
            booted_at_us: now_us(),
            etcd,
            netns,
            tmp,
        };
        eprintln!(
            "rig: fleet of {n} {family:?} nodes on {db:?} at {version} booted in {} ms \
             (nodes in parallel {nodes_ms} ms, database {} ms), netns {}",
            whole.elapsed().as_millis(),
            t_db.elapsed().as_millis(),
            fleet.netns.name()
        );
        Ok(fleet)
    }

    /// The node called `name` (`node0`, ...).
    pub fn node(&self, name: &str) -> Option<&PortalHost> {
        self.nodes.iter().find(|h| h.name() == name)
    }

    /// The network namespace's name (`upkeep-fleet-PID-N`).
    pub fn netns_name(&self) -> &str {
        self.netns.name()
    }

    /// `/run/netns/NAME`.
    pub fn netns_path(&self) -> PathBuf {
        self.netns.path()
    }

    /// A host command that runs `argv` inside the fleet's network namespace.
    pub fn netns_command(&self, argv: &[&str]) -> Command {
        self.netns.command(argv)
    }

    /// Which database the portals use.
    pub fn db(&self) -> Db {
        self.db
    }

    /// The shared database's portal.conf settings (None for Sqlite: each
    /// node then has its own file).
    pub fn database(&self) -> Option<&DbSettings> {
        self.database.as_ref()
    }

    /// Runs `sql` on the shared database as its administrator, in node0
    /// (see [`PortalHost::db_query`]).
    pub fn db_query(&self, sql: &str) -> Result<String, Fail> {
        self.nodes[0].db_query(self.db, sql)
    }

    /// When [`Fleet::boot`] finished (realtime µs): [`Fleet::down_intervals`]
    /// and [`Fleet::migrations_run`] count from here.
    pub fn booted_at_us(&self) -> u64 {
        self.booted_at_us
    }

    /// etcd's client URL as the nodes see it: `http://127.0.0.1:2379`.
    pub fn etcd_url(&self) -> &str {
        ETCD_URL
    }

    /// Where etcd keeps its data (on the host, in the fleet's temporary
    /// directory).
    pub fn etcd_data_dir(&self) -> &Path {
        &self.etcd.data_dir
    }

    /// Is etcd running (started and not stopped)?
    pub fn etcd_running(&mut self) -> bool {
        match self.etcd.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs `etcdctl ARGS` (ETCDCTL_API=3, `--endpoints=http://127.0.0.1:2379`)
    /// on the host inside the fleet's namespace; returns its stdout, fails
    /// unless it exits 0.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, Fail> {
        self.etcd.etcdctl(args)
    }

    /// Kills etcd (SIGKILL, as a crash would); its data directory is kept.
    pub fn stop_etcd(&mut self) -> Result<(), Fail> {
        self.etcd.stop()
    }

    /// Starts etcd again on the same data directory and ports, and waits
    /// until it is healthy.
    pub fn start_etcd(&mut self) -> Result<(), Fail> {
        self.etcd.start()
    }

    /// etcd's own log so far (last 30 lines).
    pub fn etcd_log(&self) -> String {
        self.etcd.log_tail()
    }

    /// Node `node`'s portal down intervals since the fleet booted: see
    /// [`Fleet::down_intervals_since`].
    pub fn down_intervals(&self, node: usize) -> Result<Vec<(u64, u64)>, Fail> {
        self.down_intervals_since(node, self.booted_at_us)
    }

    /// Node `node`'s portal down intervals (realtime µs, start and end) that
    /// end at or after `since_us`, from systemd's own messages about
    /// portal.service in the node's journal (`_PID=1 UNIT=portal.service`):
    /// down from the first of "Stopping", "Stopped", "Main process exited"
    /// or "Failed with result" after it was up, until the next "Started".
    /// The very first start is not an interval. An interval that has not
    /// ended ends at [`STILL_DOWN`]. All containers share the host's clock,
    /// so intervals of different nodes compare.
    pub fn down_intervals_since(
        &self,
        node: usize,
        since_us: u64,
    ) -> Result<Vec<(u64, u64)>, Fail> {
        let h = self.get(node)?;
        let entries = journal_json(h, &["_PID=1", "UNIT=portal.service"])?;
        let mut state = Unit::NeverStarted;
        let mut out = Vec::new();
        for e in &entries {
            let at = e.at_us;
            let kind = match e.message_id.as_deref() {
                Some(MSG_STARTED) => Some(true),
                Some(MSG_STOPPING | MSG_STOPPED | MSG_PROCESS_EXIT | MSG_FAILURE_RESULT) => {
                    Some(false)
                }
                Some(_) => None,
                // Without a catalogue ID, systemd's own wording.
                None if e.message.starts_with("Started portal.service") => Some(true),
                None if e.message.starts_with("Stopping portal.service")
                    || e.message.starts_with("Stopped portal.service") =>
                {
                    Some(false)
                }
                None => None,
            };
            state = match (state, kind) {
                (Unit::Down(from), Some(true)) => {
                    out.push((from, at));
                    Unit::Up
                }
                (_, Some(true)) => Unit::Up,
                (Unit::Up, Some(false)) => Unit::Down(at),
                (s, _) => s,
            };
        }
        if let Unit::Down(from) = state {
            out.push((from, STILL_DOWN));
        }
        out.retain(|&(_, end)| end >= since_us);
        Ok(out)
    }

    /// Every schema migration a portal of any node applied or tried to
    /// apply at or after `since_us`, in time order: the portal logs
    /// `applying migration NAME (schema V)` before each one (and
    /// `failed to migrate database: NAME: ...` when it fails), and
    /// `database dialect: D (MASKED)` when its process starts; each line
    /// carries the process's PID in the journal, so every run is tied to the
    /// database its process used.
    pub fn migration_runs_since(&self, since_us: u64) -> Result<Vec<MigrationRun>, Fail> {
        let mut runs = Vec::new();
        for (i, h) in self.nodes.iter().enumerate() {
            let entries = journal_json(h, &["_SYSTEMD_UNIT=portal.service"])?;
            let mut database_of: std::collections::HashMap<u32, String> = Default::default();
            let mut mine: Vec<MigrationRun> = Vec::new();
            for e in &entries {
                let text = e.message.strip_prefix("dev-portal: ").unwrap_or(&e.message);
                if let Some(d) = text.strip_prefix("database dialect: ") {
                    database_of.insert(e.pid, d.to_string());
                } else if let Some(rest) = text.strip_prefix("applying migration ") {
                    // "NAME (schema V)"
                    let (name, schema) = rest
                        .rsplit_once(" (schema ")
                        .and_then(|(n, v)| Some((n, v.strip_suffix(')')?.parse().ok()?)))
                        .ok_or_else(|| Fail(format!("{}: unexpected line {text:?}", h.name)))?;
                    mine.push(MigrationRun {
                        node: i,
                        at_us: e.at_us,
                        pid: e.pid,
                        name: name.to_string(),
                        schema,
                        database: database_of.get(&e.pid).cloned().unwrap_or_default(),
                        failed: false,
                    });
                } else if let Some(rest) = text.strip_prefix("failed to migrate database: ")
                    && let Some(run) = mine
                        .iter_mut()
                        .rev()
                        .find(|r| r.pid == e.pid && rest.starts_with(&format!("{}: ", r.name)))
                {
                    run.failed = true;
                }
            }
            runs.extend(mine.into_iter().filter(|r| r.at_us >= since_us));
        }
        runs.sort_by_key(|r| r.at_us);
        Ok(runs)
    }

    /// How many times a schema migration ran against the fleet's shared
    /// database since the fleet booted: the [`Fleet::migration_runs_since`]
    /// whose process used the shared database's dialect (a node's earlier
    /// runs on its own SQLite file at install time do not count; on a Sqlite
    /// fleet, every node's runs on its own file count). Failed attempts
    /// count too: they ran against the database.
    pub fn migrations_run(&self) -> Result<usize, Fail> {
        let dialect = self
            .database
            .as_ref()
            .map(|d| d.dialect.as_str())
            .unwrap_or("sqlite3");
        Ok(self
            .migration_runs_since(self.booted_at_us)?
            .iter()
            .filter(|r| r.database.split_whitespace().next() == Some(dialect))
            .count())
    }

    fn get(&self, node: usize) -> Result<&PortalHost, Fail> {
        self.nodes
            .get(node)
            .ok_or_else(|| Fail(format!("no node {node} in a fleet of {}", self.nodes.len())))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Power the nodes off together (each takes ~1.6 s); then the fields
        // go: etcd, the namespace, the temporary directory.
        let nodes = std::mem::take(&mut self.nodes);
        std::thread::scope(|s| {
            for h in nodes {
                s.spawn(move || drop(h));
            }
        });
    }
}

#[derive(Clone, Copy)]
enum Unit {
    NeverStarted,
    Up,
    Down(u64),
}

/// One journal entry, the fields the fleet reads.
struct Entry {
    at_us: u64,
    pid: u32,
    message_id: Option<String>,
    message: String,
}

/// `journalctl -o json MATCHES` in the node, oldest first.
fn journal_json(h: &PortalHost, matches: &[&str]) -> Result<Vec<Entry>, Fail> {
    let mut argv = vec!["journalctl", "--no-pager", "-o", "json"];
    argv.extend_from_slice(matches);
    let out = h.c.run(&argv)?;
    let field = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            // Non-UTF-8 (or binary) fields come as arrays of bytes.
            serde_json::Value::Array(a) => {
                let bytes: Vec<u8> = a
                    .iter()
                    .filter_map(|b| b.as_u64().map(|b| b as u8))
                    .collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        }
    };
    let mut entries = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Fail(format!("{}: journal entry {line:?}: {e}", h.name)))?;
        let at_us = field(&v["__REALTIME_TIMESTAMP"])
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Fail(format!("{}: journal entry without a time: {line}", h.name)))?;
        entries.push(Entry {
            at_us,
            pid: field(&v["_PID"]).and_then(|s| s.parse().ok()).unwrap_or(0),
            message_id: field(&v["MESSAGE_ID"]),
            message: field(&v["MESSAGE"]).unwrap_or_default(),
        });
    }
    Ok(entries)
}
