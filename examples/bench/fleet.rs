//! Rows 8a and 8b: fleets (`[fleet]`, slots in etcd).
//!
//! 8a. The overhead of taking and giving back a slot: upkeep's own
//!     `Fleet::take` + `Fleet::give_back`, in this process, against a real
//!     etcd on the host's loopback, against `etcdctl lock GROUP /bin/true`
//!     (etcd's standard client taking and releasing a mutex around a
//!     command), per round, from the same starting state (the group holds
//!     nothing).
//! 8b. A 3-node rolling upgrade (rig fleet: three containers, one
//!     PostgreSQL, a real etcd) started on all three nodes at once with
//!     `[fleet]` (slots = 1, canary), until all three finished, against the
//!     same three upgrades run one after another on a fleet without
//!     `[fleet]` (what an operator would script), the sum of their times.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use upkeep::fleet::{Fleet as SlotClient, Outcome, Request};
use upkeep::orchestrator::RunKind;

use crate::measure::{At, Reaper, Series, Spec, dur, measure, median};
use crate::report::{Report, Row};
use crate::rig::fleet::{ETCD_URL, Fleet};
use crate::rig::{self, Db, Fail, Family};

/// The etcd server and client the rows run (Debian's etcd-server and
/// etcd-client).
const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";
/// The group (upkeep) and the lock name (etcdctl).
const GROUP: &str = "portal-prod";
/// Rounds per side of 8a (taken in two halves, the sides alternating).
const ROUNDS: usize = 30;
/// Fleets per side of 8b (each a fresh 3-node fleet).
const REPS: usize = 3;
/// Nodes of 8b's fleet.
const NODES: usize = 3;
/// The `[fleet]` settings of 8b (and of 8a, but for the canary).
const LEASE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(600);
/// What every node runs in 8b.
const UPGRADE: [&str; 5] = ["--json", "upgrade", "--to", "1.1.0", "--yes"];

/// etcd on the host's loopback, on free ports, its data in a temporary
/// directory; killed when dropped.
struct HostEtcd {
    _dir: tempfile::TempDir,
    child: Child,
    url: String,
}

fn free_port() -> Result<u16, Fail> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(Fail::io("bind 127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(Fail::io("local_addr"))?.port())
}

impl HostEtcd {
    /// Starts it (the flags of `src/etcd/test_server.rs`) and waits until
    /// `etcdctl endpoint health` says it is healthy.
    fn start(work: &Path) -> Result<HostEtcd, Fail> {
        let dir = tempfile::Builder::new()
            .prefix("etcd-")
            .tempdir_in(work)
            .map_err(Fail::io("etcd tempdir"))?;
        let (client, peer) = (free_port()?, free_port()?);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(Fail::io("etcd log"))?;
        let child = Command::new(ETCD)
            .arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &url])
            .args(["--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(Fail::io("dup the etcd log"))?)
            .stderr(log)
            .spawn()
            .map_err(Fail::io(
                "start /usr/bin/etcd (apt-get install etcd-server)",
            ))?;
        let mut etcd = HostEtcd {
            _dir: dir,
            child,
            url,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Err(Fail(format!(
                    "etcd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            let health = etcd.etcdctl(&["endpoint", "health"]);
            match health {
                Ok(_) => return Ok(etcd),
                Err(e) if Instant::now() > deadline => {
                    return Err(Fail(format!("etcd not healthy after 30 s: {e}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn etcdctl(&self, args: &[&str]) -> Result<String, Fail> {
        rig::cmd_stdout(
            Command::new(ETCDCTL)
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &self.url])
                .args(args)
                .stdin(Stdio::null()),
        )
    }
}

impl Drop for HostEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// upkeep's `[fleet]` for 8a: one slot, the lease and wait of 8b, no
/// canary (a slot is then a plain mutex, as `etcdctl lock`'s is).
fn slot_settings(url: &str) -> Result<upkeep::config::Fleet, Fail> {
    Ok(upkeep::config::Fleet {
        etcd: vec![url::Url::parse(url).map_err(|e| Fail(format!("{url}: {e}")))?],
        ca_file: None,
        cert_file: None,
        key_file: None,
        user: None,
        password_file: None,
        group: GROUP.into(),
        node: Some("bench".into()),
        slots: 1,
        lease: LEASE,
        wait: WAIT,
        canary: false,
        require_plan_all: false,
    })
}

fn request(run: usize) -> Request {
    Request {
        target: "portal".into(),
        run: run as i64,
        kind: RunKind::Upgrade,
        from: Some("1.0.0-1".into()),
        to: "1.1.0-1".into(),
    }
}

fn fleet_err(e: upkeep::fleet::FleetError) -> Fail {
    Fail(format!("fleet: {e}"))
}

/// upkeep's side of 8a, `n` rounds after `warmup` untimed ones: with one
/// connection made before the rounds (as a run has when it reaches its lock
/// step), and with `Fleet::connect` inside each round.
fn upkeep_rounds(
    rt: &tokio::runtime::Runtime,
    settings: &upkeep::config::Fleet,
    warmup: usize,
    n: usize,
) -> Result<(Vec<f64>, Vec<f64>), Fail> {
    rt.block_on(async {
        let f = SlotClient::connect(settings, "bench".into())
            .await
            .map_err(fleet_err)?;
        let mut open = Vec::new();
        for i in 0..warmup + n {
            let t = Instant::now();
            let held = f.take(&request(i)).await.map_err(fleet_err)?;
            f.give_back(held, Outcome::Succeeded, None)
                .await
                .map_err(fleet_err)?;
            if i >= warmup {
                open.push(t.elapsed().as_secs_f64());
            }
        }
        let mut fresh = Vec::new();
        for i in 0..warmup + n {
            let t = Instant::now();
            let f = SlotClient::connect(settings, "bench".into())
                .await
                .map_err(fleet_err)?;
            let held = f.take(&request(i)).await.map_err(fleet_err)?;
            f.give_back(held, Outcome::Succeeded, None)
                .await
                .map_err(fleet_err)?;
            drop(f);
            if i >= warmup {
                fresh.push(t.elapsed().as_secs_f64());
            }
        }
        Ok((open, fresh))
    })
}

/// The 90th percentile (nearest rank).
fn p90(times: &[f64]) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((0.9 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `median / p90` in ms.
fn median_p90(s: &Series) -> String {
    format!("median {}, p90 {}", dur(s.median_s), dur(p90(&s.times_s)))
}

/// Row 8a.
pub fn row_slot(work: &Path, r: &mut Report) -> Result<(), Fail> {
    let t0 = Instant::now();
    let etcd = HostEtcd::start(work)?;
    let settings = slot_settings(&etcd.url)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Fail::io("tokio runtime"))?;
    let lock_argv = [
        ETCDCTL,
        "--endpoints",
        &etcd.url,
        "lock",
        GROUP,
        "/bin/true",
    ];
    let get_argv = [ETCDCTL, "--endpoints", &etcd.url, "get", "bench/none"];
    let lock_spec = |warm: bool| {
        let s = Spec::one(&lock_argv)
            .env("ETCDCTL_API", "3")
            .reps((ROUNDS / 2) as u32);
        if warm { s.warm() } else { s }
    };
    let get_spec = |warm: bool| {
        let s = Spec::one(&get_argv)
            .env("ETCDCTL_API", "3")
            .reps((ROUNDS / 2) as u32);
        if warm { s.warm() } else { s }
    };
    // Two halves, the sides alternating, so that neither gets all of a
    // quieter (or busier) stretch of the shared machine.
    let (mut open, mut fresh) = (Vec::new(), Vec::new());
    let (mut locks, mut gets) = (Vec::new(), Vec::new());
    for half in 0..2 {
        let first = half == 0;
        let (o, f) = upkeep_rounds(&rt, &settings, usize::from(first), ROUNDS / 2)?;
        open.extend(o);
        fresh.extend(f);
        locks.push(measure(
            At::Host,
            &format!("etcdctl lock {GROUP} /bin/true (half {})", half + 1),
            lock_spec(first),
        )?);
        gets.push(measure(
            At::Host,
            &format!("etcdctl get (half {})", half + 1),
            get_spec(first),
        )?);
    }
    drop(rt);
    // Both sides gave everything back: the group holds no slot, the lock no
    // key.
    let left = etcd.etcdctl(&[
        "get",
        "--prefix",
        "--keys-only",
        &format!("/upkeep/fleet/{GROUP}/slots/"),
    ])? + &etcd.etcdctl(&["get", "--prefix", "--keys-only", &format!("{GROUP}/")])?;
    if !left.trim().is_empty() {
        return Err(Fail(format!("keys left after the rounds: {left}")));
    }
    drop(etcd);
    let up = Series::of_times(
        "upkeep Fleet::take + give_back (connection open)",
        "host",
        "Fleet::take(&Request) + Fleet::give_back(held, Outcome::Succeeded, None)",
        open,
    );
    let up_fresh = Series::of_times(
        "upkeep Fleet::connect + take + give_back",
        "host",
        "Fleet::connect + Fleet::take + Fleet::give_back",
        fresh,
    );
    let lock = Series::merge(&format!("`etcdctl lock {GROUP} /bin/true`"), &locks);
    let get = Series::merge("`etcdctl get KEY`", &gets);
    println!(
        "    upkeep (open) {}; upkeep (connect each round) {}; etcdctl lock {}; etcdctl get {}",
        median_p90(&up),
        median_p90(&up_fresh),
        median_p90(&lock),
        median_p90(&get)
    );
    r.push(Row::times(
        "8a. take + give back a fleet slot (1 slot, etcd on the host's loopback)",
        &up,
        &lock,
    ));
    r.note(format!(
        "Row 8a (no target): the overhead of a fleet slot, {ROUNDS} rounds a side from the same starting state (the group holds nothing; one untimed round first), against one etcd ({}) on the host's loopback. upkeep: in the bench's own process, on a connection made before the rounds (as a run has when it reaches its lock step), `Fleet::take` (reads the group's keys, grants a {}-s lease, one transaction that takes slot 0 and writes `inflight/NODE` if the group is not halted, starts the keepalive thread) then `Fleet::give_back(held, Succeeded)` (reads the group's keys again, one transaction that deletes the slot and `inflight/NODE` and records the node, stops the keepalive thread, revokes the lease): {}. With `Fleet::connect` inside each round too: {}. The operator's way: `etcdctl --endpoints URL lock {GROUP} /bin/true` ({}), a new process each round that connects, grants its session's lease, puts its key under `{GROUP}/` and waits to be first, runs `/bin/true`, deletes the key and revokes the lease: {}. A bare `etcdctl get KEY` (process start, connection, one read) takes {} of that. The etcdctl runs are started by the timing wrapper, upkeep's rounds timed in process; the sides alternate in two halves of {} rounds.",
        version_text(&crate::report::first_line(&[ETCD, "--version"])),
        LEASE.as_secs(),
        median_p90(&up),
        median_p90(&up_fresh),
        version_text(&crate::report::first_line(&[ETCDCTL, "version"])),
        median_p90(&lock),
        median_p90(&get),
        ROUNDS / 2,
    ));
    r.keep("fleet.slot.upkeep", &up);
    r.keep("fleet.slot.upkeep_connect", &up_fresh);
    r.keep("fleet.slot.etcdctl_lock", &lock);
    r.keep("fleet.slot.etcdctl_get", &get);
    r.breakdown("fleet slot: upkeep take + give back (host)", &up);
    r.breakdown("fleet slot: `etcdctl lock GROUP /bin/true` (host)", &lock);
    r.method.push(format!("Row 8a: `/usr/bin/etcd` started by the bench on free 127.0.0.1 ports, its data in a temporary directory under /var/tmp; upkeep's `Fleet` (slots = 1, lease = \"{}s\", canary off) driven from the bench's process on a current-thread tokio runtime, each round timed with `Instant`; `etcdctl lock` and `etcdctl get` (ETCDCTL_API=3) started by the timing wrapper. After the rounds, no key is left under the group's slots or the lock's prefix.", LEASE.as_secs()));
    println!("    row 8a took {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// `etcd Version: 3.4.23` → `etcd 3.4.23` (`etcdctl version: …` too).
fn version_text(line: &str) -> String {
    line.replace(" Version: ", " ").replace(" version: ", " ")
}

/// What one node's upgrade gave.
struct NodeRun {
    /// Wall time of its `upkeep upgrade`, from when all started.
    seconds: f64,
    /// Its report's `downtime_ms`.
    downtime_ms: f64,
    /// Its lock step: how long it waited for the slot (ms), when it took one.
    waited_ms: Option<f64>,
    /// When its lock step ended and its run ended (realtime ms).
    lock_end_ms: Option<f64>,
    end_ms: Option<f64>,
}

/// What one fleet gave: the wall time until the last node finished, and
/// each node's run.
struct FleetRun {
    wall: f64,
    nodes: Vec<NodeRun>,
}

fn ts_ms(v: &serde_json::Value) -> Option<f64> {
    v.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond() as f64)
}

/// Checks the run and reads what it reports and what its history says.
fn node_run(h: &rig::PortalHost, out: &Output, seconds: f64) -> Result<NodeRun, Fail> {
    if out.status.code() != Some(0) {
        return Err(Fail(format!(
            "{}: upkeep {}: {}",
            h.name(),
            UPGRADE.join(" "),
            rig::show(out)
        )));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Fail(format!(
            "{}: upgrade --json: {e}\n{}",
            h.name(),
            rig::show(out)
        ))
    })?;
    let downtime_ms = report["downtime_ms"]
        .as_f64()
        .ok_or_else(|| Fail(format!("{}: no downtime_ms in {report}", h.name())))?;
    if h.installed_version().as_deref() != Some("1.1.0-1") {
        return Err(Fail(format!(
            "{}: installed {:?} after the upgrade",
            h.name(),
            h.installed_version()
        )));
    }
    let hist = h.c.run(&[rig::UPKEEP, "history", "--json"])?;
    let hist: serde_json::Value =
        serde_json::from_str(&hist).map_err(|e| Fail(format!("history --json: {e}")))?;
    let steps = hist["runs"][0]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lock = steps.iter().find(|s| s["name"] == "lock");
    Ok(NodeRun {
        seconds,
        downtime_ms,
        waited_ms: lock.and_then(|l| l["detail"]["fleet"]["waited_ms"].as_f64()),
        lock_end_ms: lock.and_then(|l| ts_ms(&l["finished_at"])),
        end_ms: steps.last().and_then(|s| ts_ms(&s["finished_at"])),
    })
}

/// A fresh 3-node fleet at 1.0.0 on one PostgreSQL; with `slots`, every
/// node joins the group.
fn boot(slots: bool, upkeep: &Path) -> Result<Fleet, Fail> {
    let f = Fleet::boot_with(NODES, Family::Deb, Db::Postgres, "1.0.0", upkeep)?;
    if slots {
        for (i, n) in f.nodes.iter().enumerate() {
            n.append_upkeep_toml(&format!(
                "\n[fleet]\netcd = [\"{ETCD_URL}\"]\ngroup = \"{GROUP}\"\nnode = \"node{i}\"\nslots = 1\nlease = \"{}s\"\nwait = \"{}m\"\ncanary = true\n",
                LEASE.as_secs(),
                WAIT.as_secs() / 60
            ))?;
        }
    }
    Ok(f)
}

/// `upkeep upgrade --to 1.1.0 --yes` on every node at the same moment,
/// until the last one finished.
fn all_at_once(f: &Fleet) -> Result<FleetRun, Fail> {
    let t = Instant::now();
    let outs: Vec<Result<(Output, f64), Fail>> = std::thread::scope(|s| {
        let handles: Vec<_> = f
            .nodes
            .iter()
            .map(|n| {
                s.spawn(move || {
                    let o = n.upkeep(&UPGRADE)?;
                    Ok((o, t.elapsed().as_secs_f64()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Fail("an upgrade thread panicked".into())))
            })
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let mut nodes = Vec::new();
    for (n, o) in f.nodes.iter().zip(outs) {
        let (out, secs) = o?;
        nodes.push(node_run(n, &out, secs)?);
    }
    Ok(FleetRun { wall, nodes })
}

/// The same upgrade on node0, then node1, then node2.
fn one_after_another(f: &Fleet) -> Result<FleetRun, Fail> {
    let t = Instant::now();
    let mut nodes = Vec::new();
    for n in &f.nodes {
        let one = Instant::now();
        let out = n.upkeep(&UPGRADE)?;
        let secs = one.elapsed().as_secs_f64();
        nodes.push(node_run(n, &out, secs)?);
    }
    Ok(FleetRun {
        wall: t.elapsed().as_secs_f64(),
        nodes,
    })
}

/// Between one holder's end and the next one's slot (ms): the slot
/// hand-overs of a fleet run, in the order the nodes took the slot.
fn handovers(run: &FleetRun) -> Vec<f64> {
    let mut v: Vec<(f64, f64)> = run
        .nodes
        .iter()
        .filter_map(|n| Some((n.lock_end_ms?, n.end_ms?)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.windows(2).map(|w| w[1].0 - w[0].1).collect()
}

fn ms_list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Row 8b.
pub fn row_rolling(upkeep: &Path, r: &mut Report) -> Result<(), Fail> {
    let t0 = Instant::now();
    let mut reaper = Reaper::default();
    let (mut rolling, mut serial): (Vec<FleetRun>, Vec<FleetRun>) = (Vec::new(), Vec::new());
    for i in 0..REPS {
        // Alternate which side goes first.
        for fleet_side in [i % 2 == 0, i % 2 == 1] {
            let f = boot(fleet_side, upkeep)?;
            reaper.settle();
            if fleet_side {
                let run = all_at_once(&f)?;
                println!(
                    "      rep {}: [fleet], all at once: {} until the last finished (nodes {}; slot waits {} ms; hand-overs {} ms)",
                    i + 1,
                    dur(run.wall),
                    run.nodes
                        .iter()
                        .map(|n| dur(n.seconds))
                        .collect::<Vec<_>>()
                        .join(", "),
                    ms_list(
                        &run.nodes
                            .iter()
                            .map(|n| n.waited_ms.unwrap_or(f64::NAN))
                            .collect::<Vec<_>>()
                    ),
                    ms_list(&handovers(&run)),
                );
                rolling.push(run);
            } else {
                let run = one_after_another(&f)?;
                println!(
                    "      rep {}: no [fleet], one after another: {} ({})",
                    i + 1,
                    dur(run.nodes.iter().map(|n| n.seconds).sum()),
                    run.nodes
                        .iter()
                        .map(|n| dur(n.seconds))
                        .collect::<Vec<_>>()
                        .join(" + ")
                );
                serial.push(run);
            }
            reaper.drop_later(f);
        }
    }
    reaper.settle();
    let cmd = format!("upkeep {}", UPGRADE.join(" "));
    let up = Series::of_times(
        "all three at once with [fleet]",
        "container",
        &cmd,
        rolling.iter().map(|x| x.wall).collect(),
    );
    let sums: Vec<f64> = serial
        .iter()
        .map(|x| x.nodes.iter().map(|n| n.seconds).sum())
        .collect();
    let alt = Series::of_times(
        "node0, node1, node2 one after another, no [fleet] (sum)",
        "container",
        &cmd,
        sums,
    );
    let one_node: Vec<f64> = serial
        .iter()
        .flat_map(|x| x.nodes.iter().map(|n| n.seconds))
        .collect();
    let one = Series::of_times(
        "one node's upgrade, no [fleet]",
        "container",
        &cmd,
        one_node,
    );
    let down_sum = |runs: &[FleetRun]| -> Vec<f64> {
        runs.iter()
            .map(|x| x.nodes.iter().map(|n| n.downtime_ms).sum::<f64>() / 1e3)
            .collect()
    };
    let (down_fleet, down_serial) = (median(&down_sum(&rolling)), median(&down_sum(&serial)));
    let waits_by_rep = rolling
        .iter()
        .map(|x| {
            let mut w: Vec<f64> = x.nodes.iter().filter_map(|n| n.waited_ms).collect();
            w.sort_by(f64::total_cmp);
            ms_list(&w)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let hand: Vec<f64> = rolling.iter().flat_map(handovers).collect();
    let ratio = up.median_s / alt.median_s;
    r.push(Row::times(
        "8b. 3-node rolling upgrade 1.0.0 → 1.1.0 (deb, one PostgreSQL): started on all three at once with [fleet] (1 slot, canary) vs the three one after another",
        &up,
        &alt,
    ));
    r.note(format!(
        "Row 8b (no target), {REPS} fresh 3-node fleets a side (rig: three containers in one network namespace, one PostgreSQL in node0 that every portal uses, etcd on the host in that namespace), portal 1.0.0 → 1.1.0 (one migration), the side that goes first alternating. With `[fleet]` (slots = 1, lease = \"{}s\", wait = \"{}m\", canary = true): `upkeep --json upgrade --to 1.1.0 --yes` started on the three nodes at the same moment, timed until the last one exited (all exit 0 and end at 1.1.0-1): {} (median). Without `[fleet]`, on a fleet booted the same way: the same command on node0, then node1, then node2, each timed, summed: {} (median; one node's upgrade alone {}). The rolling upgrade takes {:.2}× the time of the three one after another (the ratio column, sum ÷ rolling: {:.2}×). The difference is what the slot adds and what starting together saves: each node waits in its lock step (after preflight and download, which the three do at the same time) for the slot, looking again every 500 ms, and the canary (the first node) must commit before the second starts; slot waits from the nodes' lock steps (ms, per fleet): {waits_by_rep}; from one holder's end to the next holder's slot (the hand-over: polling plus the take): {} ms (median {} ms). Sum of the three nodes' `downtime_ms` (each run's JSON report): {} with `[fleet]`, {} one after another (medians).",
        LEASE.as_secs(),
        WAIT.as_secs() / 60,
        dur(up.median_s),
        dur(alt.median_s),
        crate::measure::cell(&one),
        ratio,
        1.0 / ratio,
        ms_list(&hand),
        if hand.is_empty() {
            "—".to_string()
        } else {
            format!("{:.0}", median(&hand))
        },
        dur(down_fleet),
        dur(down_serial),
    ));
    r.keep("fleet.rolling.fleet_wall", &up);
    r.keep("fleet.rolling.one_after_another_sum", &alt);
    r.keep("fleet.rolling.one_node", &one);
    r.method.push(format!("Row 8b: each fleet is the rig's `Fleet::boot_with(3, Deb, Postgres, \"1.0.0\", release binary)` (tests/rig/fleet.rs), the nodes' upkeep from the same release binary as every other row; the `[fleet]` table is appended to each node's upkeep.toml (node = \"nodeI\", group = \"{GROUP}\"). Every upgrade runs through `nsenter` from a thread of the bench and is timed with `Instant` around the whole command; slot waits and hand-overs come from each node's history (the lock step's `waited_ms`, its and the run's last step's `finished_at`). Fleets are powered off in the background while the next one boots, never while one is measured."));
    println!("    row 8b took {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
