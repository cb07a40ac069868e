//! The fleet rig itself ([`rig::fleet`]): several containers in one network
//! namespace, one database server and one etcd shared by all of them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::rig::{self, Family, db::Db, fleet::Fleet, show};

/// The version the end-to-end tests start from.
const OLDEST: &str = "1.0.0";

fn boot(n: usize, db: Db) -> Fleet {
    let t = Instant::now();
    let fleet = Fleet::boot(n, Family::Deb, db, OLDEST)
        .unwrap_or_else(|e| panic!("the fleet could not boot: {e}"));
    eprintln!(
        "fleet_rig: {n} nodes on {db:?} booted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    fleet
}

/// Every node is named, has its own port, answers /ready there at the
/// version asked for, uses the one database (and sees what another node
/// wrote to it); nothing listens on the portal's default port.
fn check_nodes_share_one_database(fleet: &Fleet, dialect: &str) {
    let n = fleet.nodes.len();
    let ports: HashSet<u16> = fleet.nodes.iter().map(|h| h.portal_port()).collect();
    assert_eq!(ports.len(), n, "every node has its own portal port");
    let mut databases = HashSet::new();
    for (i, h) in fleet.nodes.iter().enumerate() {
        assert_eq!(h.name(), format!("node{i}"));
        assert_eq!(h.c.run(&["hostname"]).unwrap().trim(), h.name());
        assert_eq!(h.portal_port(), rig::fleet::PORTAL_PORT_BASE + i as u16);
        let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
        assert_eq!(ready["version"], OLDEST, "{}: {ready}", h.name());
        assert_eq!(ready["schema"], 2, "{}: {ready}", h.name());
        let conf: serde_json::Value =
            serde_json::from_str(&h.c.read("/opt/portal/portal.conf").unwrap()).unwrap();
        assert_eq!(conf["HostPort"], h.portal_port(), "{}", h.name());
        let db = h.database_in_use().unwrap();
        assert!(
            db.starts_with(&format!("{dialect} (")),
            "{}: {db}",
            h.name()
        );
        assert!(!db.contains(rig::DB_PASSWORD), "{}: {db}", h.name());
        databases.insert(db);
        // upkeep on the node is configured with the node's own URLs.
        let toml = h.c.read("/etc/upkeep/upkeep.toml").unwrap();
        assert!(toml.contains(&h.ready_url()), "{toml}");
        assert!(toml.contains(&h.repo_url()), "{toml}");
    }
    assert_eq!(databases.len(), 1, "one database for all: {databases:?}");
    // Every node shares 127.0.0.1, and nobody took the packaged port.
    let default = fleet.nodes[0]
        .c
        .exec(&["curl", "-sf", "http://127.0.0.1:3001/ready"])
        .unwrap();
    assert!(!default.status.success(), "{}", show(&default));
    // Pages written through one node are read through every other.
    let last = &fleet.nodes[n - 1];
    let ids = last.add_pages("from-last", 2).unwrap();
    assert_eq!(ids, [1, 2]);
    for h in &fleet.nodes {
        assert_eq!(
            h.page_titles().unwrap(),
            rig::page_titles_for("from-last", 2),
            "{}",
            h.name()
        );
    }
    // The database was migrated once, by node0, before the others used it.
    let runs = fleet.migration_runs_since(0).unwrap();
    let shared: Vec<_> = runs
        .iter()
        .filter(|r| r.database.starts_with(dialect))
        .map(|r| (r.node, r.name.as_str(), r.schema, r.failed))
        .collect();
    assert_eq!(shared.len(), 2, "{runs:#?}");
    assert!(shared.iter().all(|r| r.0 == 0 && !r.3), "{runs:#?}");
    assert_eq!((shared[0].2, shared[1].2), (1, 2), "{runs:#?}");
    assert!(shared[0].1.starts_with("0001_"), "{runs:#?}");
    assert_eq!(fleet.migrations_run().unwrap(), 0, "{runs:#?}");
    for i in 0..n {
        assert_eq!(fleet.down_intervals(i).unwrap(), [], "node{i}");
    }
}

#[test]
fn fleet_rig_three_deb_nodes_share_postgres_and_etcd() {
    let mut fleet = boot(3, Db::Postgres);
    let netns = fleet.netns_name().to_string();
    assert!(rig::fleet::netns_exists(&netns));
    check_nodes_share_one_database(&fleet, "postgres");
    assert_eq!(fleet.etcd_url(), "http://127.0.0.1:2379");

    // etcd answers from inside every node, over the JSON gateway.
    fleet.etcdctl(&["put", "foo", "bar"]).unwrap();
    assert_eq!(fleet.etcdctl(&["get", "foo"]).unwrap(), "foo\nbar\n");
    let range_url = format!("{}/v3/kv/range", fleet.etcd_url());
    let range = |h: &rig::PortalHost| {
        h.c.exec(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-X",
            "POST",
            &range_url,
            "-d",
            r#"{"key":"Zm9v"}"#,
        ])
        .unwrap()
    };
    for h in &fleet.nodes {
        let out = range(h);
        assert!(out.status.success(), "{}: {}", h.name(), show(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // "bar", base64.
        assert_eq!(v["kvs"][0]["value"], "YmFy", "{}: {v}", h.name());
    }

    // Down and up again, on the same data.
    fleet.stop_etcd().unwrap();
    assert!(!fleet.etcd_running());
    assert!(fleet.etcdctl(&["get", "foo"]).is_err());
    let out = range(&fleet.nodes[1]);
    assert!(!out.status.success(), "etcd still answers: {}", show(&out));
    fleet.start_etcd().unwrap();
    assert!(fleet.etcd_running());
    assert_eq!(fleet.etcdctl(&["get", "foo"]).unwrap(), "foo\nbar\n");
    assert!(range(&fleet.nodes[2]).status.success());

    // A restart of one portal is one down interval, of that node only.
    let before = rig::fleet::now_us();
    fleet.nodes[1]
        .c
        .run(&["systemctl", "restart", "portal.service"])
        .unwrap();
    fleet.nodes[1].wait_ready(Duration::from_secs(30)).unwrap();
    let after = rig::fleet::now_us();
    let down = fleet.down_intervals(1).unwrap();
    assert_eq!(down.len(), 1, "{down:?}");
    let (from, to) = down[0];
    assert!(
        before <= from && from <= to && to <= after,
        "{down:?} not in {before}..{after}"
    );
    eprintln!("fleet_rig: node1's restart: down {} µs", to - from);
    assert_eq!(fleet.down_intervals(0).unwrap(), []);
    assert_eq!(fleet.down_intervals(2).unwrap(), []);
    // A restart migrates nothing.
    assert_eq!(fleet.migrations_run().unwrap(), 0);

    // upkeep's configuration takes an appended table, once however often.
    let h = &fleet.nodes[2];
    h.append_upkeep_toml("# fleet smoke test, first\n").unwrap();
    h.append_upkeep_toml("# fleet smoke test, second").unwrap();
    let toml = h.c.read("/etc/upkeep/upkeep.toml").unwrap();
    assert_eq!(toml.matches(rig::APPENDED_MARKER).count(), 1, "{toml}");
    assert!(toml.ends_with("# fleet smoke test, second\n"), "{toml}");
    assert!(!toml.contains("first"), "{toml}");
    // And upkeep on a node reads its own repository.
    let check = h.upkeep(&["check", "--json"]).unwrap();
    assert_eq!(check.status.code(), Some(100), "{}", show(&check));

    let t = Instant::now();
    drop(fleet);
    eprintln!("fleet_rig: teardown {} ms", t.elapsed().as_millis());
    assert!(!rig::fleet::netns_exists(&netns), "{netns} is left");
}

#[test]
fn fleet_rig_two_deb_nodes_share_mariadb() {
    let fleet = boot(2, Db::Mariadb);
    let netns = fleet.netns_name().to_string();
    check_nodes_share_one_database(&fleet, "mysql");
    let rows = fleet
        .db_query("SELECT title FROM pages ORDER BY id")
        .unwrap();
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        ["from-last-0", "from-last-1"]
    );

    // upkeep upgrades one node after the other: the first migrates the
    // shared database, the second finds it migrated; each portal keeps its
    // own port through the config merge; they were never down together.
    let newest = fleet.nodes[0].f.newest().clone();
    for h in &fleet.nodes {
        let up = h.upkeep(&["upgrade", "portal", "--yes"]).unwrap();
        assert_eq!(up.status.code(), Some(0), "{}: {}", h.name(), show(&up));
        let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
        assert_eq!(ready["version"], newest.version.as_str(), "{ready}");
        assert_eq!(ready["schema"], 5, "{ready}");
    }
    let runs = fleet.migration_runs_since(fleet.booted_at_us()).unwrap();
    let ran: Vec<_> = runs.iter().map(|r| (r.node, r.schema, r.failed)).collect();
    assert_eq!(
        ran,
        [(0, 3, false), (0, 4, false), (0, 5, false)],
        "{runs:#?}"
    );
    assert_eq!(fleet.migrations_run().unwrap(), 3);
    let a = fleet.down_intervals(0).unwrap();
    let b = fleet.down_intervals(1).unwrap();
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
    for x in &a {
        for y in &b {
            assert!(x.1 < y.0 || y.1 < x.0, "down together: {x:?} {y:?}");
        }
    }
    assert_eq!(
        fleet.nodes[1].page_titles().unwrap(),
        rig::page_titles_for("from-last", 2)
    );
    drop(fleet);
    assert!(!rig::fleet::netns_exists(&netns), "{netns} is left");
}

#[test]
fn fleet_rig_namespace_and_etcd_are_removed_when_a_test_panics() {
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let fleet = Fleet::boot(1, Family::Rpm, Db::Sqlite, OLDEST).unwrap();
        assert!(fleet.database().is_none());
        assert_eq!(fleet.nodes[0].name(), "node0");
        let ready = fleet.nodes[0].wait_ready(Duration::from_secs(10)).unwrap();
        assert_eq!(ready["version"], OLDEST, "{ready}");
        fleet.etcdctl(&["put", "k", "v"]).unwrap();
        *seen.lock().unwrap() = Some((
            fleet.netns_name().to_string(),
            fleet.etcd_data_dir().to_path_buf(),
        ));
        panic!("on purpose, with the fleet up");
    }));
    assert!(result.is_err());
    let (netns, data) = seen.into_inner().unwrap().expect("the fleet booted");
    assert!(!rig::fleet::netns_exists(&netns), "{netns} is left");
    assert!(!data.exists(), "etcd's data {} is left", data.display());
}
