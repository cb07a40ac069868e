//! The etcd client against a real etcd (`/usr/bin/etcd`, see
//! [`super::test_server`]).

use std::time::{Duration, Instant};

use super::test_server::{TestEtcd, free_port};
use super::*;

fn settings(endpoints: Vec<Url>) -> Settings {
    Settings {
        endpoints,
        ca_file: None,
        cert_file: None,
        key_file: None,
        user: None,
        password_file: None,
        timeout: Duration::from_secs(5),
    }
}

async fn client(etcd: &TestEtcd) -> Client {
    Client::connect(&settings(vec![etcd.url()]))
        .await
        .expect("connect")
}

/// Polls `f` every 100 ms until it is true or `limit` passed.
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn put_get_range_delete_roundtrip_with_binary_values() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    assert_eq!(c.endpoint(), &etcd.url());
    assert_eq!(c.get("fleet/missing").await.unwrap(), None);

    let binary: Vec<u8> = (0..=255u8).collect();
    c.put("fleet/a", &binary, None).await.unwrap();
    c.put("fleet/b", b"", None).await.unwrap();
    c.put("fleet/c\u{e9}", b"\0\xff\n", None).await.unwrap();
    c.put("fleeu", b"outside", None).await.unwrap();
    c.put("flee", b"outside too", None).await.unwrap();

    let a = c.get("fleet/a").await.unwrap().expect("fleet/a");
    assert_eq!(a.key, "fleet/a");
    assert_eq!(a.value, binary);
    assert!(a.create_revision > 0);
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(a.lease, 0);
    let b = c
        .get("fleet/b")
        .await
        .unwrap()
        .expect("an empty value is a value");
    assert_eq!(b.value, Vec::<u8>::new());

    c.put("fleet/a", b"second", None).await.unwrap();
    let a2 = c.get("fleet/a").await.unwrap().unwrap();
    assert_eq!(a2.value, b"second");
    assert_eq!(a2.create_revision, a.create_revision);
    assert!(a2.mod_revision > a.mod_revision);

    let all = c.range_prefix("fleet/").await.unwrap();
    let keys: Vec<&str> = all.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["fleet/a", "fleet/b", "fleet/c\u{e9}"]);
    assert_eq!(all[2].value, b"\0\xff\n");
    assert_eq!(
        c.range_prefix("").await.unwrap().len(),
        5,
        "empty prefix: all keys"
    );

    c.delete("fleet/a").await.unwrap();
    c.delete("fleet/never").await.unwrap();
    assert_eq!(c.get("fleet/a").await.unwrap(), None);
    assert_eq!(c.range_prefix("fleet/").await.unwrap().len(), 2);
}

#[test]
fn prefix_end_increments_the_last_byte_below_0xff() {
    assert_eq!(prefix_end(b"a/"), b"a0");
    assert_eq!(prefix_end(b"a\xff"), b"b");
    assert_eq!(prefix_end(b""), b"\0");
    assert_eq!(prefix_end(b"\xff\xff"), b"\0");
}

#[tokio::test]
async fn txn_absent_lets_exactly_one_of_two_racing_clients_win() {
    let etcd = TestEtcd::start();
    let one = client(&etcd).await;
    let two = client(&etcd).await;
    let take = |c: Client, me: &'static str| async move {
        c.txn(
            &[Compare::Absent("fleet/lock".into())],
            &[Op::Put {
                key: "fleet/lock".into(),
                value: me.as_bytes().to_vec(),
                lease: None,
            }],
            &[Op::Get("fleet/lock".into())],
        )
        .await
        .unwrap()
    };
    for round in 0..5 {
        let (r1, r2) = tokio::join!(take(one.clone(), "one"), take(two.clone(), "two"));
        assert_ne!(
            r1.succeeded, r2.succeeded,
            "round {round}: exactly one wins"
        );
        let winner = if r1.succeeded { "one" } else { "two" };
        let held = one.get("fleet/lock").await.unwrap().unwrap();
        assert_eq!(held.value, winner.as_bytes());
        assert!(r1.revision > 0 && r2.revision > 0);
        // A third taker loses too.
        assert!(!take(one.clone(), "three").await.succeeded);
        one.delete("fleet/lock").await.unwrap();
    }
}

#[tokio::test]
async fn txn_mod_revision_and_value_compares_and_delete_prefix() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    c.put("run/1/a", b"x", None).await.unwrap();
    c.put("run/1/b", b"y", None).await.unwrap();
    c.put("run/2", b"z", None).await.unwrap();
    let a = c.get("run/1/a").await.unwrap().unwrap();

    let stale = c
        .txn(
            &[Compare::ModRevision("run/1/a".into(), a.mod_revision - 1)],
            &[Op::Delete("run/1/a".into())],
            &[],
        )
        .await
        .unwrap();
    assert!(!stale.succeeded);
    assert!(c.get("run/1/a").await.unwrap().is_some());

    let wrong_value = c
        .txn(
            &[Compare::Value("run/1/a".into(), b"nope".to_vec())],
            &[],
            &[],
        )
        .await
        .unwrap();
    assert!(!wrong_value.succeeded);

    let done = c
        .txn(
            &[
                Compare::ModRevision("run/1/a".into(), a.mod_revision),
                Compare::Value("run/1/b".into(), b"y".to_vec()),
            ],
            &[Op::DeletePrefix("run/1/".into())],
            &[],
        )
        .await
        .unwrap();
    assert!(done.succeeded);
    assert!(done.revision > a.mod_revision);
    let left: Vec<String> = c
        .range_prefix("run/")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(left, ["run/2"]);
}

#[tokio::test]
async fn revoking_a_lease_removes_its_keys() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    let lease = c.lease_grant(Duration::from_secs(60)).await.unwrap();
    c.put("fleet/host/a", b"alive", Some(lease)).await.unwrap();
    let kv = c.get("fleet/host/a").await.unwrap().unwrap();
    assert_eq!(kv.lease, lease);
    let ttl = c.lease_ttl(lease).await.unwrap().expect("a live lease");
    assert!((55..=60).contains(&ttl), "ttl {ttl}");

    c.lease_revoke(lease).await.unwrap();
    assert_eq!(c.get("fleet/host/a").await.unwrap(), None);
    assert_eq!(c.lease_ttl(lease).await.unwrap(), None);
    // Again, and an id never granted: no error.
    c.lease_revoke(lease).await.unwrap();
    c.lease_revoke(12345).await.unwrap();
}

#[tokio::test]
async fn lease_grant_rounds_up_to_whole_seconds() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    let l = c.lease_grant(Duration::from_millis(2100)).await.unwrap();
    assert_eq!(
        c.lease_ttl(l).await.unwrap().map(|t| (2..=3).contains(&t)),
        Some(true)
    );
    let l = c.lease_grant(Duration::ZERO).await.unwrap();
    // etcd raises TTLs below its minimum (about 1.5 x the election
    // timeout, 2 s here) itself.
    assert!(c.lease_ttl(l).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_without_keepalive_expires_and_its_key_goes() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    let lease = c.lease_grant(Duration::from_secs(1)).await.unwrap();
    c.put("fleet/host/b", b"alive", Some(lease)).await.unwrap();
    let gone = eventually(Duration::from_secs(6), || async {
        c.get("fleet/host/b").await.unwrap().is_none()
    })
    .await;
    assert!(gone, "the key outlived its 1 s lease by 6 s");
    assert_eq!(c.lease_ttl(lease).await.unwrap(), None);
    match c.lease_keepalive(lease).await {
        Err(EtcdError::LeaseNotFound(id)) => assert_eq!(id, lease),
        other => panic!("keepalive of an expired lease: {other:?}"),
    }
    match c.lease_keepalive(4242).await {
        Err(EtcdError::LeaseNotFound(4242)) => {}
        other => panic!("keepalive of an unknown lease: {other:?}"),
    }
}

#[tokio::test]
async fn keepalive_keeps_a_lease_alive_past_its_ttl() {
    let etcd = TestEtcd::start();
    let c = client(&etcd).await;
    let lease = c.lease_grant(Duration::from_secs(2)).await.unwrap();
    c.put("fleet/host/c", b"alive", Some(lease)).await.unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let ttl = c.lease_keepalive(lease).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "one keepalive took {:?}",
            t.elapsed()
        );
        assert_eq!(ttl, 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(c.get("fleet/host/c").await.unwrap().is_some());
    assert!(c.lease_ttl(lease).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_survives_an_etcd_restart() {
    let mut etcd = TestEtcd::start();
    let c = client(&etcd).await;
    let lease = c.lease_grant(Duration::from_secs(30)).await.unwrap();
    c.put("fleet/host/d", b"alive", Some(lease)).await.unwrap();
    c.put("fleet/plain", b"kept", None).await.unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = c.lease_ttl(lease).await.unwrap().expect("the lease");
    assert!(before <= 27, "ttl {before} after 4 s");

    etcd.restart();
    // The same client: its connections died with etcd.
    let kv = c
        .get("fleet/host/d")
        .await
        .unwrap()
        .expect("the leased key");
    assert_eq!(kv.lease, lease);
    assert_eq!(c.get("fleet/plain").await.unwrap().unwrap().value, b"kept");
    // etcd restores leases from its backend with their whole TTL again
    // (the remaining time is not persisted; the new leader renews every
    // lease it promotes): the lease is alive, with more time than before
    // the restart, and renewable.
    let ttl = c
        .lease_ttl(lease)
        .await
        .unwrap()
        .expect("the lease after restart");
    assert!(
        ttl > before && ttl <= 30,
        "ttl {ttl} after restart, {before} before"
    );
    assert_eq!(c.lease_keepalive(lease).await.unwrap(), 30);
}

#[tokio::test]
async fn a_stopped_etcd_is_unreachable_and_comes_back() {
    let mut etcd = TestEtcd::start();
    let c = client(&etcd).await;
    c.put("k", b"v", None).await.unwrap();
    etcd.stop();
    match c.get("k").await {
        Err(EtcdError::Unreachable(m)) => assert!(m.contains(etcd.url().as_str()), "{m}"),
        other => panic!("get from a stopped etcd: {other:?}"),
    }
    etcd.restart();
    assert_eq!(c.get("k").await.unwrap().unwrap().value, b"v");
}

#[tokio::test]
async fn a_dead_first_endpoint_fails_over_to_the_live_one() {
    let etcd = TestEtcd::start();
    let dead: Url = format!("http://127.0.0.1:{}", free_port()).parse().unwrap();
    let c = Client::connect(&settings(vec![dead.clone(), etcd.url()]))
        .await
        .expect("connect through the second endpoint");
    assert_eq!(c.endpoint(), &etcd.url());
    c.put("k", b"v", None).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().unwrap().value, b"v");
    assert_eq!(c.endpoint(), &etcd.url());
}

#[tokio::test]
async fn the_client_fails_over_when_its_endpoint_dies_mid_run() {
    let mut first = TestEtcd::start();
    let second = TestEtcd::start();
    let c = Client::connect(&settings(vec![first.url(), second.url()]))
        .await
        .unwrap();
    assert_eq!(c.endpoint(), &first.url());
    first.stop();
    // Two separate clusters: the second has no "k"; what matters is that
    // the call is answered by it.
    assert_eq!(c.get("k").await.unwrap(), None);
    assert_eq!(c.endpoint(), &second.url());
}

#[tokio::test]
async fn all_endpoints_dead_is_unreachable_naming_them() {
    let a: Url = format!("http://127.0.0.1:{}", free_port()).parse().unwrap();
    let b: Url = format!("http://127.0.0.1:{}", free_port()).parse().unwrap();
    let err = Client::connect(&settings(vec![a.clone(), b.clone()]))
        .await
        .err()
        .expect("nothing listens");
    let EtcdError::Unreachable(m) = &err else {
        panic!("not Unreachable: {err:?}");
    };
    assert!(m.contains(a.as_str()) && m.contains(b.as_str()), "{m}");
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn a_silent_endpoint_times_out_as_unreachable() {
    // Accepts connections, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent: Url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut s = settings(vec![silent.clone()]);
    s.timeout = Duration::from_millis(500);
    let t = Instant::now();
    match Client::connect(&s).await {
        Err(EtcdError::Unreachable(m)) => {
            assert!(
                m.contains(silent.as_str()) && m.contains("timed out"),
                "{m}"
            );
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn user_password_auth_and_reauthentication_after_restart() {
    let mut etcd = TestEtcd::start();
    let password = "s3cret-Pw";
    etcd.enable_auth(password);
    let file = etcd.dir().join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();

    let mut s = settings(vec![etcd.url()]);
    s.user = Some("root".into());
    s.password_file = Some(file.clone());
    let c = Client::connect(&s).await.expect("authenticated");
    c.put("secured", b"1", None).await.unwrap();
    assert_eq!(c.get("secured").await.unwrap().unwrap().value, b"1");

    // Without credentials: refused as Auth.
    match Client::connect(&settings(vec![etcd.url()])).await {
        Ok(anon) => match anon.get("secured").await {
            Err(EtcdError::Auth(_)) => {}
            other => panic!("anonymous get: {other:?}"),
        },
        Err(e) => panic!("anonymous connect: {e:?}"),
    }

    // Simple tokens live in etcd's memory: after a restart the old token
    // is invalid and the client authenticates again by itself.
    let token = |c: &Client| c.token().as_ref().map(|t| t.expose().to_owned());
    let old_token = token(&c).expect("a token");
    etcd.restart();
    assert_eq!(c.get("secured").await.unwrap().unwrap().value, b"1");
    assert_ne!(
        token(&c).as_deref(),
        Some(old_token.as_str()),
        "authenticated again"
    );
    let lease = c.lease_grant(Duration::from_secs(10)).await.unwrap();
    assert!(c.lease_keepalive(lease).await.unwrap() > 0);
    c.lease_revoke(lease).await.unwrap();

    // A wrong password: Auth, without the password.
    let wrong = "wr0ng-Pa55word";
    std::fs::write(&file, format!("{wrong}\n")).unwrap();
    let err = Client::connect(&s).await.err().expect("wrong password");
    let EtcdError::Auth(m) = &err else {
        panic!("not Auth: {err:?}");
    };
    let line = err.to_string();
    assert!(m.contains("authentication failed"), "{m}");
    assert!(!line.contains(wrong) && !line.contains(password), "{line}");
    assert!(!format!("{err:?}").contains(wrong));
}

#[tokio::test]
async fn mutual_tls_with_a_private_ca() {
    let etcd = TestEtcd::start_tls();
    let tls = etcd.tls().unwrap().clone();
    let mut s = settings(vec![etcd.url()]);
    s.ca_file = Some(tls.ca.clone());
    s.cert_file = Some(tls.client_cert.clone());
    s.key_file = Some(tls.client_key.clone());
    let c = Client::connect(&s).await.expect("mutual TLS");
    assert_eq!(c.endpoint().scheme(), "https");
    c.put("tls", b"ok", None).await.unwrap();
    assert_eq!(c.get("tls").await.unwrap().unwrap().value, b"ok");
    let lease = c.lease_grant(Duration::from_secs(5)).await.unwrap();
    assert_eq!(c.lease_keepalive(lease).await.unwrap(), 5);

    // Without the client certificate the handshake is refused.
    let mut no_cert = s.clone();
    no_cert.cert_file = None;
    no_cert.key_file = None;
    match Client::connect(&no_cert).await {
        Err(EtcdError::Unreachable(m)) => assert!(m.contains(etcd.url().as_str()), "{m}"),
        other => panic!("without a client certificate: {:?}", other.err()),
    }

    // Without our CA the server is not trusted (the platform's roots).
    let mut no_ca = s.clone();
    no_ca.ca_file = None;
    assert!(matches!(
        Client::connect(&no_ca).await,
        Err(EtcdError::Unreachable(_))
    ));

    // A key without its certificate is a configuration error.
    let mut half = s.clone();
    half.cert_file = None;
    assert!(matches!(
        Client::connect(&half).await,
        Err(EtcdError::Protocol(_))
    ));
}
