//! Fleets on the rig: three (or two) real systemd containers in one network
//! namespace the test makes, each running the sample portal on its own port
//! against ONE shared PostgreSQL (or MariaDB), with a real etcd. upkeep
//! runs in every node at once; what it must show:
//! - a rolling upgrade started on all nodes together ends with all of them
//!   upgraded, the migration run once, and never two portals down at once;
//! - a broken release is rolled back by the canary and refused by the
//!   others with their units untouched;
//! - kill -9 of the holder halts the group, `recover` on it lifts the halt;
//! - `require_plan = "all"` holds an apply until the last plan;
//! - without `[fleet]` the database's advisory lock keeps two nodes'
//!   stop-to-commit windows apart (PostgreSQL and MariaDB);
//! - etcd unreachable, restarted mid-run, a lease lost mid-run.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::json;
use super::rig::db::Db;
use super::rig::fleet::{Fleet, now_us};
use super::rig::{self, Family, PortalHost, show};

/// The `[fleet]` table of node `i`.
fn fleet_toml(i: usize, extra: &str) -> String {
    format!(
        "\n[fleet]\netcd = [\"{}\"]\ngroup = \"portal-prod\"\nnode = \"node{i}\"\n{extra}\n",
        rig::fleet::ETCD_URL
    )
}

fn join(f: &Fleet, extra: &str) {
    for (i, n) in f.nodes.iter().enumerate() {
        n.append_upkeep_toml(&fleet_toml(i, extra)).unwrap();
    }
}

/// Runs upkeep with `args` on every node at the same moment.
fn on_all(f: &Fleet, args: &[&str]) -> Vec<Output> {
    std::thread::scope(|s| {
        let handles: Vec<_> = f
            .nodes
            .iter()
            .map(|n| s.spawn(move || n.upkeep(args).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn status(n: &PortalHost) -> serde_json::Value {
    let out = n.upkeep(&["fleet", "status", "--json"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    json(&out)
}

/// No two of the intervals overlap.
fn assert_apart(all: &[(usize, u64, u64)]) {
    let mut v = all.to_vec();
    v.sort_by_key(|&(_, a, _)| a);
    for w in v.windows(2) {
        assert!(
            w[0].2 <= w[1].1,
            "node{} was down {}..{} and node{} {}..{}: at once",
            w[0].0,
            w[0].1,
            w[0].2,
            w[1].0,
            w[1].1,
            w[1].2
        );
    }
}

fn down_since(f: &Fleet, since: u64) -> Vec<(usize, u64, u64)> {
    (0..f.nodes.len())
        .flat_map(|i| {
            f.down_intervals_since(i, since)
                .unwrap()
                .into_iter()
                .map(move |(a, b)| (i, a, b))
        })
        .collect()
}

fn step_names(run: &serde_json::Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn rolling_upgrade_started_on_three_nodes_at_once_runs_one_node_at_a_time() {
    let f = Fleet::boot(3, Family::Deb, Db::Postgres, "1.0.0").unwrap();
    join(
        &f,
        "slots = 1\nlease = \"10s\"\nwait = \"10m\"\ncanary = true",
    );
    for n in &f.nodes {
        n.add_pages(n.name(), 2).unwrap();
    }
    let since = now_us();
    let outs = on_all(&f, &["upgrade", "--to", "1.1.0", "--yes"]);
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "node{i}: {}", show(o));
    }
    for n in &f.nodes {
        assert_eq!(n.installed_version().as_deref(), Some("1.1.0-1"));
        let ready = n.wait_ready(Duration::from_secs(20)).unwrap();
        assert_eq!(ready["version"], "1.1.0", "{ready}");
    }
    // One migration (0003, to schema 3) for the one database, by one node.
    let runs = f.migration_runs_since(since).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(!runs[0].failed, "{runs:?}");
    let down = down_since(&f, since);
    assert_eq!(down.len(), 3, "each node down once: {down:?}");
    assert_apart(&down);
    // Every node's pages are still there (one database).
    let titles = f.db_query("SELECT title FROM pages ORDER BY id").unwrap();
    for n in &f.nodes {
        assert!(titles.contains(&format!("{}-1", n.name())), "{titles}");
    }
    let st = status(&f.nodes[1]);
    assert_eq!(st["group"], "portal-prod");
    assert_eq!(st["holders"], serde_json::json!([]), "{st:#}");
    assert!(st["halted"].is_null(), "{st:#}");
    let nodes = st["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{st:#}");
    for n in nodes {
        assert_eq!(n["installed"], "1.1.0-1", "{st:#}");
        assert_eq!(n["last_outcome"], "succeeded", "{st:#}");
    }
    assert_eq!(
        st["versions"],
        serde_json::json!([{"version": "1.1.0-1", "state": "good", "node": st["versions"][0]["node"], "target": "portal", "since": st["versions"][0]["since"]}]),
        "{st:#}"
    );
    // Each node's lock step says which slot it took and how long it waited.
    let waited: Vec<u64> = f
        .nodes
        .iter()
        .map(|n| {
            let hist = json(&n.upkeep(&["history", "--json"]).unwrap());
            let lock = hist["runs"][0]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "lock")
                .cloned()
                .unwrap();
            assert_eq!(lock["detail"]["fleet"]["group"], "portal-prod", "{lock:#}");
            lock["detail"]["fleet"]["waited_ms"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        waited.iter().filter(|&&w| w < 1000).count(),
        1,
        "one node went first, the others waited: {waited:?}"
    );
}

#[test]
fn a_broken_release_is_rolled_back_by_the_canary_and_refused_by_the_others() {
    let f = Fleet::boot(3, Family::Deb, Db::Postgres, "1.0.0").unwrap();
    join(&f, "lease = \"10s\"\nwait = \"10m\"\ncanary = true");
    let before: Vec<String> = f.nodes.iter().map(|n| n.unit_invocation()).collect();
    let since = now_us();
    let outs = on_all(&f, &["upgrade", "--to", "2.0.1", "--yes"]);
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let canary = codes
        .iter()
        .position(|&c| c == Some(4))
        .unwrap_or_else(|| panic!("no canary rolled back: {codes:?}"));
    for (i, o) in outs.iter().enumerate() {
        let n = &f.nodes[i];
        assert_eq!(n.installed_version().as_deref(), Some("1.0.0-1"), "node{i}");
        assert_eq!(n.unit_state(), "active", "node{i}");
        if i == canary {
            continue;
        }
        assert_eq!(o.status.code(), Some(3), "node{i}: {}", show(o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("marked bad") && err.contains(&format!("node{canary}")),
            "node{i}: {}",
            show(o)
        );
        assert_eq!(
            n.unit_invocation(),
            before[i],
            "node{i}'s unit was not touched"
        );
        let hist = json(&n.upkeep(&["history", "--json"]).unwrap());
        let names = step_names(&hist["runs"][0]);
        assert!(!names.iter().any(|s| s == "stop"), "node{i}: {names:?}");
    }
    // Only the canary's portal was ever down.
    let down = down_since(&f, since);
    assert!(down.iter().all(|&(i, _, _)| i == canary), "{down:?}");
    let st = status(&f.nodes[0]);
    let v = st["versions"].as_array().unwrap();
    assert_eq!(v.len(), 1, "{st:#}");
    assert_eq!(v[0]["version"], "2.0.1-1");
    assert_eq!(v[0]["state"], "bad");
    assert_eq!(v[0]["node"], format!("node{canary}"));
    // Until an operator resumes, a later try is refused too.
    let other = (canary + 1) % 3;
    let again = f.nodes[other]
        .upkeep(&["upgrade", "--to", "2.0.1", "--yes"])
        .unwrap();
    assert_eq!(again.status.code(), Some(3), "{}", show(&again));
    let resume = f.nodes[other].upkeep(&["fleet", "resume"]).unwrap();
    assert_eq!(resume.status.code(), Some(0), "{}", show(&resume));
    assert!(
        String::from_utf8_lossy(&resume.stdout).contains("2.0.1-1"),
        "{}",
        show(&resume)
    );
    assert_eq!(status(&f.nodes[0])["versions"], serde_json::json!([]));
}

#[test]
fn kill_9_of_the_holder_halts_the_group_and_its_recover_lifts_the_halt() {
    let f = Fleet::boot_with(
        2,
        Family::Deb,
        Db::Postgres,
        "1.0.0",
        &rig::failpoint_binary(),
    )
    .unwrap();
    join(&f, "lease = \"3s\"\nwait = \"6s\"");
    let (a, b) = (&f.nodes[0], &f.nodes[1]);
    let run =
        a.c.command(&[rig::UPKEEP, "upgrade", "--to", "1.1.0", "--yes"])
            .env("FAILPOINTS", "before-install=sleep(60000)")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    super::safe_apply::wait_for_step(a, "backup-database", "succeeded");
    a.c.run(&["pkill", "-KILL", "-x", "upkeep"]).unwrap();
    let _ = run.wait_with_output();
    let before_b = b.unit_invocation();
    // b waits out `wait` (6 s) on a group that halts once a's lease expires.
    let started = Instant::now();
    let out = b.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(started.elapsed() >= Duration::from_secs(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("halted") && err.contains("node0") && err.contains("upkeep recover"),
        "{}",
        show(&out)
    );
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with("upkeep: error: fleet portal-prod: the group is halted"),
        "the error is one line: {}",
        show(&out)
    );
    assert_eq!(b.unit_invocation(), before_b, "b's unit was not touched");
    let st = status(b);
    assert_eq!(st["halted"]["node"], "node0", "{st:#}");
    assert_eq!(st["holders"], serde_json::json!([]), "{st:#}");
    // The halted node's recover ends the run (killed after its database
    // backup, it is rolled back: exit 4), then lifts the halt.
    let rec = a.upkeep(&["recover"]).unwrap();
    assert_eq!(rec.status.code(), Some(4), "{}", show(&rec));
    assert_eq!(a.installed_version().as_deref(), Some("1.0.0-1"));
    assert!(
        String::from_utf8_lossy(&rec.stdout).contains("halt"),
        "{}",
        show(&rec)
    );
    assert!(status(b)["halted"].is_null());
    let out = b.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn require_plan_all_holds_an_apply_until_the_last_node_planned() {
    let f = Fleet::boot(3, Family::Deb, Db::Postgres, "1.0.0").unwrap();
    join(&f, "lease = \"10s\"\nwait = \"5m\"\nrequire_plan = \"all\"");
    // Each node's timer-run check makes it known to the group.
    for (i, o) in on_all(&f, &["check"]).iter().enumerate() {
        assert_eq!(o.status.code(), Some(100), "node{i}: {}", show(o));
    }
    assert_eq!(status(&f.nodes[0])["nodes"].as_array().unwrap().len(), 3);
    let before = f.nodes[0].unit_invocation();
    let apply = f.nodes[0]
        .c
        .command(&[rig::UPKEEP, "upgrade", "--to", "1.1.0", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let plan = f.nodes[1].upkeep(&["plan", "--to", "1.1.0"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    // node2 has not planned: node0 still waits, its unit untouched.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        f.nodes[0].unit_invocation(),
        before,
        "node0 applied before node2's plan"
    );
    assert_eq!(f.nodes[0].installed_version().as_deref(), Some("1.0.0-1"));
    let st = status(&f.nodes[2]);
    assert_eq!(st["holders"], serde_json::json!([]), "{st:#}");
    let planned_at = now_us();
    let plan = f.nodes[2].upkeep(&["plan", "--to", "1.1.0"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(f.nodes[0].installed_version().as_deref(), Some("1.1.0-1"));
    let down = f.down_intervals_since(0, 0).unwrap();
    let last = down.last().copied().unwrap();
    assert!(
        last.0 >= planned_at,
        "node0 went down before the last plan: {down:?}"
    );
}

fn advisory_lock_keeps_windows_apart(db: Db) {
    let f = Fleet::boot(2, Family::Deb, db, "1.0.0").unwrap();
    // No [fleet]: only the database's advisory lock keeps them apart.
    let outs = on_all(&f, &["upgrade", "--to", "1.1.0", "--yes"]);
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "node{i}: {}", show(o));
    }
    let mut windows = Vec::new();
    for (i, n) in f.nodes.iter().enumerate() {
        let hist = json(&n.upkeep(&["history", "--json"]).unwrap());
        let steps = hist["runs"][0]["steps"].as_array().unwrap().clone();
        let at = |name: &str, field: &str| -> jiff::Timestamp {
            steps
                .iter()
                .find(|s| s["name"] == name)
                .and_then(|s| s[field].as_str())
                .unwrap_or_else(|| panic!("node{i}: no {name}.{field}: {hist:#}"))
                .parse()
                .unwrap()
        };
        let lock = steps.iter().find(|s| s["name"] == "lock").unwrap();
        assert!(
            lock["detail"]["database_lock"].is_string(),
            "node{i}: {lock:#}"
        );
        windows.push((
            i,
            at("stop", "started_at").as_microsecond() as u64,
            at("commit", "finished_at").as_microsecond() as u64,
        ));
    }
    assert_apart(&windows);
    assert_eq!(
        f.migration_runs_since(0)
            .unwrap()
            .iter()
            .filter(|m| m.schema == 3)
            .count(),
        1
    );
}

#[test]
fn without_a_fleet_the_postgresql_advisory_lock_keeps_stop_to_commit_windows_apart() {
    advisory_lock_keeps_windows_apart(Db::Postgres);
}

#[test]
fn without_a_fleet_the_mariadb_advisory_lock_keeps_stop_to_commit_windows_apart() {
    advisory_lock_keeps_windows_apart(Db::Mariadb);
}

/// Starts upgrade (or `args`) on node `i` with a pause at `failpoints`.
fn spawn_paused(f: &Fleet, i: usize, args: &[&str], failpoints: &str) -> std::process::Child {
    let mut argv = vec![rig::UPKEEP];
    argv.extend_from_slice(args);
    f.nodes[i]
        .c
        .command(&argv)
        .env("FAILPOINTS", failpoints)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn etcd_unreachable_restarted_mid_run_and_a_lease_lost_mid_run() {
    let mut f = Fleet::boot_with(
        2,
        Family::Deb,
        Db::Postgres,
        "1.0.0",
        &rig::failpoint_binary(),
    )
    .unwrap();
    join(&f, "lease = \"6s\"\nwait = \"4s\"");

    // 1. etcd unreachable: one line, exit 1, nothing touched, no run.
    f.stop_etcd().unwrap();
    let before = f.nodes[0].unit_invocation();
    let out = f.nodes[0]
        .upkeep(&["upgrade", "--to", "1.1.0", "--yes"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with("upkeep: error: fleet portal-prod: etcd"),
        "{}",
        show(&out)
    );
    assert_eq!(f.nodes[0].unit_invocation(), before);
    assert_eq!(f.nodes[0].installed_version().as_deref(), Some("1.0.0-1"));
    let st = f.nodes[0].upkeep(&["fleet", "status"]).unwrap();
    assert_eq!(st.status.code(), Some(1), "{}", show(&st));
    f.start_etcd().unwrap();

    // 2. etcd restarted while node0's run has its unit stopped: the run
    // goes on, commits, and gives its slot back.
    let run = spawn_paused(
        &f,
        0,
        &["upgrade", "--to", "1.1.0", "--yes"],
        "before-install=sleep(4000)",
    );
    super::safe_apply::wait_for_step(&f.nodes[0], "stop", "succeeded");
    f.stop_etcd().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    f.start_etcd().unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(f.nodes[0].installed_version().as_deref(), Some("1.1.0-1"));
    let st = status(&f.nodes[1]);
    assert_eq!(st["holders"], serde_json::json!([]), "{st:#}");
    assert!(st["halted"].is_null(), "{st:#}");

    // 3. node1's lease is lost after its stop (revoked in etcd): the other
    // node sees a dead run and is held off (exit 6); node1's run still
    // finishes, and its end lifts the halt its lost lease caused.
    let run = spawn_paused(
        &f,
        1,
        &["upgrade", "--to", "1.1.0", "--yes"],
        "before-install=sleep(6000)",
    );
    super::safe_apply::wait_for_step(&f.nodes[1], "stop", "succeeded");
    let list = f.etcdctl(&["lease", "list"]).unwrap();
    let ids: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with("found"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(ids.len(), 1, "one lease, node1's slot: {list}");
    f.etcdctl(&["lease", "revoke", ids[0]]).unwrap();
    let held_off = f.nodes[0].upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(held_off.status.code(), Some(6), "{}", show(&held_off));
    assert!(
        String::from_utf8_lossy(&held_off.stderr).contains("node1"),
        "{}",
        show(&held_off)
    );
    assert_eq!(f.nodes[0].installed_version().as_deref(), Some("1.1.0-1"));
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(f.nodes[1].installed_version().as_deref(), Some("1.1.0-1"));
    let st = status(&f.nodes[0]);
    assert!(st["halted"].is_null(), "{st:#}");
    assert_eq!(st["holders"], serde_json::json!([]), "{st:#}");
}
