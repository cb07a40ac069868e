//! The fleet's rules against a real etcd (`etcd::test_server`): slots,
//! waiting, a dead holder's halt, canary marks, `require_plan = "all"`,
//! `resume`, a lost lease.

use std::time::{Duration, Instant};

use super::*;
use crate::etcd::test_server::TestEtcd;
use crate::orchestrator::RunKind;

fn settings(etcd: &TestEtcd, group: &str) -> config::Fleet {
    config::Fleet {
        etcd: vec![etcd.url()],
        ca_file: None,
        cert_file: None,
        key_file: None,
        user: None,
        password_file: None,
        group: group.into(),
        node: None,
        slots: 1,
        lease: Duration::from_secs(3),
        wait: Duration::from_secs(1),
        canary: false,
        require_plan_all: false,
    }
}

async fn node(s: &config::Fleet, name: &str) -> Fleet {
    Fleet::connect(s, name.into()).await.unwrap()
}

fn req(run: i64, to: &str) -> Request {
    Request {
        target: "portal".into(),
        run,
        kind: RunKind::Upgrade,
        from: Some("1.0.0-1".into()),
        to: to.into(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn one_slot_one_holder_and_the_waiter_is_told_who() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let s = settings(&etcd, "g1");
        let a = node(&s, "web1").await;
        let b = node(&s, "web2").await;
        let held = a.take(&req(1, "1.1.0-1")).await.unwrap();
        let st = b.status().await.unwrap();
        assert_eq!(st.holders.len(), 1);
        assert_eq!(st.holders[0].node, "web1");
        assert_eq!(st.holders[0].run, 1);
        assert_eq!(st.holders[0].to, "1.1.0-1");
        let e = b.take(&req(7, "1.1.0-1")).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, FleetError::Busy { .. }), "{text}");
        assert!(
            text.contains("node web1") && text.contains("run #1"),
            "{text}"
        );
        a.give_back(held, Outcome::Succeeded, Some("1.1.0-1"))
            .await
            .unwrap();
        let held = b.take(&req(7, "1.1.0-1")).await.unwrap();
        b.give_back(held, Outcome::Succeeded, Some("1.1.0-1"))
            .await
            .unwrap();
        let st = a.status().await.unwrap();
        assert!(st.holders.is_empty() && st.halted.is_none() && st.orphans.is_empty());
        let names: Vec<&str> = st.nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["web1", "web2"]);
        assert_eq!(st.nodes[0].installed.as_deref(), Some("1.1.0-1"));
        assert_eq!(st.nodes[0].last_outcome.as_deref(), Some("succeeded"));
    });
}

#[test]
fn a_holder_that_dies_halts_the_group_until_its_recover() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let mut s = settings(&etcd, "g2");
        let a = node(&s, "web1").await;
        // Dropped without giving the slot back: the keepalive ends with it,
        // as it does when the process is killed.
        drop(a.take(&req(3, "1.1.0-1")).await.unwrap());
        s.wait = Duration::from_secs(10);
        let b = node(&s, "web2").await;
        let started = Instant::now();
        let e = b.take(&req(9, "1.1.0-1")).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_secs(9), "{e}");
        let text = e.to_string();
        assert!(text.contains("halted") && text.contains("web1"), "{text}");
        assert!(text.contains("upkeep recover"), "{text}");
        let st = b.status().await.unwrap();
        let halt = st.halted.expect("halted");
        assert_eq!(halt.node, "web1");
        assert_eq!(halt.run, Some(3));
        // Another node's recover does not lift it; web1's does.
        assert!(
            b.recovered("portal", Some("1.0.0-1"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(b.status().await.unwrap().halted.is_some());
        let lifted = a.recovered("portal", Some("1.0.0-1")).await.unwrap();
        assert_eq!(lifted.map(|h| h.node).as_deref(), Some("web1"));
        let st = b.status().await.unwrap();
        assert!(st.halted.is_none() && st.orphans.is_empty(), "{st:?}");
        let held = b.take(&req(9, "1.1.0-1")).await.unwrap();
        b.give_back(held, Outcome::Succeeded, None).await.unwrap();
    });
}

#[test]
fn canary_rollback_marks_the_version_bad_and_others_refuse_it_until_resume() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let mut s = settings(&etcd, "g3");
        s.canary = true;
        s.slots = 2;
        let a = node(&s, "web1").await;
        let b = node(&s, "web2").await;
        let held = a.take(&req(1, "2.0.0-1")).await.unwrap();
        assert!(held.canary());
        // Two slots, but a canary runs alone.
        let e = b.take(&req(1, "2.0.0-1")).await.unwrap_err();
        assert!(e.to_string().contains("canary"), "{e}");
        a.give_back(held, Outcome::RolledBack, Some("1.0.0-1"))
            .await
            .unwrap();
        let e = b.take(&req(1, "2.0.0-1")).await.unwrap_err();
        assert!(matches!(e, FleetError::BadVersion { .. }), "{e}");
        assert!(e.to_string().contains("fleet resume"), "{e}");
        let st = b.status().await.unwrap();
        assert_eq!(st.versions.len(), 1);
        assert_eq!(st.versions[0].state, VersionState::Bad);
        // Other versions are not refused.
        let held = b.take(&req(2, "2.0.1-1")).await.unwrap();
        b.give_back(held, Outcome::Abandoned, None).await.unwrap();
        // An abandoned canary (nothing tried) leaves no mark.
        let st = b.status().await.unwrap();
        assert!(st.versions.iter().all(|v| v.version != "2.0.1-1"), "{st:?}");
        let done = a.resume().await.unwrap();
        assert_eq!(done.versions, ["2.0.0-1"]);
        let held = b.take(&req(3, "2.0.0-1")).await.unwrap();
        assert!(held.canary(), "after resume the next node is the canary");
        b.give_back(held, Outcome::Succeeded, Some("2.0.0-1"))
            .await
            .unwrap();
        // Good: the others follow, two at a time.
        let h1 = a.take(&req(4, "2.0.0-1")).await.unwrap();
        assert!(!h1.canary());
        let c = node(&s, "web3").await;
        let h2 = c.take(&req(1, "2.0.0-1")).await.unwrap();
        a.give_back(h1, Outcome::Succeeded, None).await.unwrap();
        c.give_back(h2, Outcome::Succeeded, None).await.unwrap();
    });
}

#[test]
fn require_plan_all_waits_for_every_known_node() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let mut s = settings(&etcd, "g4");
        s.require_plan_all = true;
        let a = node(&s, "web1").await;
        let b = node(&s, "web2").await;
        let c = node(&s, "web3").await;
        for n in [&a, &b, &c] {
            n.record("portal", Some("1.0.0-1"), None).await.unwrap();
        }
        b.record("portal", Some("1.0.0-1"), Some(("1.1.0-1", true)))
            .await
            .unwrap();
        c.record("portal", Some("1.0.0-1"), Some(("1.1.0-1", false)))
            .await
            .unwrap();
        let e = a.take(&req(1, "1.1.0-1")).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("web3") && !text.contains("web2"), "{text}");
        c.record("portal", Some("1.0.0-1"), Some(("1.1.0-1", true)))
            .await
            .unwrap();
        let held = a.take(&req(1, "1.1.0-1")).await.unwrap();
        a.give_back(held, Outcome::Succeeded, Some("1.1.0-1"))
            .await
            .unwrap();
        // Rollbacks are not held back by plans.
        let back = Request {
            kind: RunKind::Rollback,
            ..req(2, "1.0.0-1")
        };
        let e = node(&s, "web4").await;
        e.record("portal", None, None).await.unwrap();
        let held = a.take(&back).await.unwrap();
        a.give_back(held, Outcome::Succeeded, None).await.unwrap();
    });
}

#[test]
fn needs_attention_halts_the_group_and_resume_lifts_it() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let s = settings(&etcd, "g5");
        let a = node(&s, "web1").await;
        let held = a.take(&req(1, "1.1.0-1")).await.unwrap();
        a.give_back(held, Outcome::NeedsAttention, None)
            .await
            .unwrap();
        let st = a.status().await.unwrap();
        assert!(st.holders.is_empty());
        let halt = st.halted.expect("halted");
        assert!(halt.reason.contains("needs attention"), "{}", halt.reason);
        let e = node(&s, "web2")
            .await
            .take(&req(1, "1.1.0-1"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("halted"), "{e}");
        let done = a.resume().await.unwrap();
        assert!(done.halt.is_some());
        assert!(a.status().await.unwrap().halted.is_none());
    });
}

#[test]
fn a_lease_revoked_under_a_run_is_noticed_and_the_run_can_still_end() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let s = settings(&etcd, "g6");
        let a = node(&s, "web1").await;
        let held = a.take(&req(1, "1.1.0-1")).await.unwrap();
        assert!(!held.lost());
        let other = crate::etcd::Client::connect(&etcd_settings(&s))
            .await
            .unwrap();
        other.lease_revoke(held.lease).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !held.lost() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(held.lost(), "the keepalive did not notice the lost lease");
        // Another node sees a dead run and halts the group ...
        let b = node(&s, "web2").await;
        assert!(b.take(&req(1, "1.1.0-1")).await.is_err());
        assert_eq!(b.status().await.unwrap().halted.unwrap().node, "web1");
        // ... and the run that outlived its lease lifts it when it ends.
        a.give_back(held, Outcome::Succeeded, Some("1.1.0-1"))
            .await
            .unwrap();
        let st = b.status().await.unwrap();
        assert!(st.halted.is_none() && st.orphans.is_empty(), "{st:?}");
    });
}

#[test]
fn an_unreachable_etcd_is_one_line_naming_the_group() {
    let etcd = TestEtcd::start();
    let mut s = settings(&etcd, "g7");
    drop(etcd);
    s.etcd = vec!["http://127.0.0.1:9".parse().unwrap()];
    let e = rt()
        .block_on(Fleet::connect(&s, "web1".into()))
        .unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("fleet g7: etcd:"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn a_holder_clock_ahead_is_shown_as_such() {
    let ahead = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap()
        .to_string();
    assert!(held_for(&ahead).contains("ahead"), "{}", held_for(&ahead));
    let behind = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(65))
        .unwrap()
        .to_string();
    assert!(
        held_for(&behind).starts_with("for 1m"),
        "{}",
        held_for(&behind)
    );
}

#[test]
fn a_holder_whose_clock_is_ahead_changes_only_what_is_shown() {
    let etcd = TestEtcd::start();
    rt().block_on(async {
        let s = settings(&etcd, "g8");
        let a = node(&s, "web1").await;
        let held = a.take(&req(1, "1.1.0-1")).await.unwrap();
        // The holder as a node whose clock runs an hour ahead writes it.
        let ahead = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap()
            .to_string();
        let raw = crate::etcd::Client::connect(&etcd_settings(&s))
            .await
            .unwrap();
        for (key, lease) in [
            (a.key("slots/0"), Some(held.lease)),
            (a.key("inflight/web1"), None),
        ] {
            let kv = raw.get(&key).await.unwrap().expect(&key);
            let mut h: Holder = serde_json::from_slice(&kv.value).unwrap();
            h.since = ahead.clone();
            raw.put(&key, &to_json(&h), lease).await.unwrap();
        }
        let b = node(&s, "web2").await;
        let e = b.take(&req(2, "1.1.0-1")).await.unwrap_err();
        assert!(matches!(e, FleetError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("ahead of this node's"), "{e}");
        // Nothing is decided on that clock: the slot is given back and taken.
        a.give_back(held, Outcome::Succeeded, None).await.unwrap();
        let held = b.take(&req(2, "1.1.0-1")).await.unwrap();
        b.give_back(held, Outcome::Succeeded, None).await.unwrap();
        assert!(b.status().await.unwrap().halted.is_none());
    });
}
