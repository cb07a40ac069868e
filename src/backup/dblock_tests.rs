//! The advisory lock against real PostgreSQL 15 and MariaDB servers started
//! by [`crate::backup::test_servers`] (test-only): exclusive between two
//! sessions, the waiter names the holder, freed by release, drop and a
//! killed client, not alive once the server ends the session, and never a
//! password on a command line or in an error.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{DbLock, LockBusy};
use crate::backup::db::{Db, resolve};
use crate::backup::db_tests::{PASSWORD, WRONG, assert_clean_error, pct, postgres_db};
use crate::backup::test_servers::{Mariadb, Postgres};
use crate::config::{Database, Secret};

/// A waiter that must never be told anything.
fn no_wait() -> impl FnMut(&str, Duration) + Send {
    |holder: &str, waited: Duration| panic!("unexpected wait ({holder}, {waited:?})")
}

async fn lock(db: &Db, owner: &str) -> DbLock {
    db.advisory_lock(owner, Duration::from_secs(10), &mut no_wait())
        .await
        .unwrap()
        .expect("a server database has a lock")
}

/// The NUL-separated file of a process, as text.
fn proc_text(pid: u32, file: &str) -> String {
    let bytes = fs::read(format!("/proc/{pid}/{file}")).unwrap();
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

/// The session's command line and environment hold no password, and the
/// credential file it was given is gone once it is connected.
fn assert_session_clean(lock: &DbLock, credential: &str) {
    let pid = lock.session_pid().expect("the session runs");
    let cmdline = proc_text(pid, "cmdline");
    let environ = proc_text(pid, "environ");
    for secret in [PASSWORD, &pct(PASSWORD)] {
        assert!(
            !cmdline.contains(secret),
            "password on the command line: {cmdline}"
        );
        assert!(!environ.contains(secret), "password in the environment");
    }
    let file = format!("{cmdline} {environ}")
        .split([' ', '='])
        .find(|w| w.contains("upkeep-cred-") && w.ends_with(credential))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no {credential} given to the session: {cmdline}"));
    assert!(!file.exists(), "{} still exists", file.display());
}

/// Asserts the error is a [`LockBusy`] naming `holder`; returns it.
fn assert_busy<'a>(err: &'a anyhow::Error, holder: &str, at_least: Duration) -> &'a LockBusy {
    let busy = err
        .root_cause()
        .downcast_ref::<LockBusy>()
        .unwrap_or_else(|| panic!("not LockBusy: {err:#}"));
    assert!(err.downcast_ref::<LockBusy>().is_some());
    assert!(busy.holder.contains(holder), "{busy:?}");
    assert!(busy.waited >= at_least, "{busy:?}");
    assert!(busy.waited < at_least + Duration::from_secs(4), "{busy:?}");
    let text = assert_clean_error(err, &["is locked by another upkeep run", holder]);
    for secret in [PASSWORD, WRONG, &pct(PASSWORD)] {
        assert!(!busy.holder.contains(secret), "{busy:?}");
    }
    assert!(text.contains(&busy.database), "{text}");
    busy
}

/// Tries for 1.5 s while another session holds the lock: fails with
/// [`LockBusy`] naming `holder`, having told the waiter once a second.
async fn assert_locked_out(db: &Db, holder: &str) {
    let mut calls: Vec<(String, Duration)> = Vec::new();
    let started = Instant::now();
    let err = db
        .advisory_lock(
            "node web2 run 7",
            Duration::from_millis(1500),
            &mut |h: &str, waited: Duration| calls.push((h.to_owned(), waited)),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_busy(&err, holder, Duration::from_millis(1500));
    // At 0 s and about 1 s.
    assert!((1..=2).contains(&calls.len()), "{calls:?}");
    assert!(calls.iter().all(|(h, _)| h.contains(holder)), "{calls:?}");
    if let [(_, first), (_, second)] = calls.as_slice() {
        assert!(*second - *first >= Duration::from_secs(1), "{calls:?}");
    }
}

fn mysql_db(my: &Mariadb, password: &str) -> Db {
    resolve(&Database::Mysql {
        url: Secret::new(format!(
            "mysql://portal:{}@127.0.0.1:{}/portal",
            pct(password),
            my.port
        )),
    })
    .unwrap()
    .unwrap()
}

/// The lock can be taken, checked and released from a spawned task.
#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let db = Db::Sqlite {
        path: "/nonexistent/portal.db".into(),
    };
    let mut on_wait = |_: &str, _: Duration| {};
    let taking = db.advisory_lock("node a", Duration::ZERO, &mut on_wait);
    send(&taking);
    drop(taking);
    let check = |lock: &mut DbLock| send(&lock.alive());
    let free = |lock: DbLock| send(&lock.release());
    let _ = (check, free);
}

#[tokio::test]
async fn sqlite_has_nothing_to_lock() {
    let db = Db::Sqlite {
        path: "/nonexistent/portal.db".into(),
    };
    let lock = db
        .advisory_lock("node a", Duration::from_secs(1), &mut no_wait())
        .await
        .unwrap();
    assert!(lock.is_none());
}

#[tokio::test]
async fn postgres_lock_is_exclusive_and_freed_by_release_drop_and_kill() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, PASSWORD);

    let mut first = lock(&db, "node web1 run 42").await;
    assert!(
        first.key().starts_with("pg_advisory_lock("),
        "{}",
        first.key()
    );
    assert!(first.alive().await);
    assert_session_clean(&first, "pgpass");
    // The server sees it as upkeep's lock session.
    assert_eq!(
        pg.admin(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE l.locktype = 'advisory' AND l.granted"
        ),
        "upkeep node web1 run 42"
    );

    assert_locked_out(&db, "upkeep node web1 run 42").await;
    assert!(first.alive().await, "the waiter took nothing away");

    // Released: the next one gets it at once.
    first.release().await.unwrap();
    assert_eq!(
        pg.admin("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        "0"
    );
    let second = lock(&db, "node web2 run 7").await;
    assert_locked_out(&db, "upkeep node web2 run 7").await;

    // Dropped: freed.
    drop(second);
    let third = db
        .advisory_lock("node web3 run 1", Duration::from_secs(5), &mut |_, _| {})
        .await
        .unwrap()
        .unwrap();

    // Its client killed: freed, and the lock knows it is gone.
    let mut third = third;
    let pid = third.session_pid().unwrap();
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
    assert!(!third.alive().await);
    assert!(!third.alive().await, "dead stays dead");
    let fourth = db
        .advisory_lock("node web4 run 1", Duration::from_secs(5), &mut |_, _| {})
        .await
        .unwrap()
        .unwrap();
    let err = third.release().await.unwrap_err();
    assert_clean_error(&err, &["release of pg_advisory_lock("]);
    fourth.release().await.unwrap();
}

#[tokio::test]
async fn postgres_waiter_gets_the_lock_when_it_is_released() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, PASSWORD);
    let first = lock(&db, "node a").await;
    let mut told = 0;
    let started = Instant::now();
    let mut on_wait = |holder: &str, _| {
        assert!(holder.contains("upkeep node a"), "{holder}");
        told += 1;
    };
    let (released, second) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            first.release().await
        },
        db.advisory_lock("node b", Duration::from_secs(10), &mut on_wait)
    );
    released.unwrap();
    let second = second.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!((1..=2).contains(&told), "{told}");
    second.release().await.unwrap();
}

#[tokio::test]
async fn postgres_lock_is_not_alive_once_the_server_ends_the_session() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, PASSWORD);

    // The backend terminated.
    let mut held = lock(&db, "node a").await;
    assert!(held.alive().await);
    assert_eq!(
        pg.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'upkeep node a'"
        ),
        "t"
    );
    assert!(!held.alive().await);
    let err = held.release().await.unwrap_err();
    assert_clean_error(&err, &["psql failed", "postgres portal@127.0.0.1"]);

    // The server restarted: the session does not come back by itself.
    let mut held = lock(&db, "node b").await;
    assert!(held.alive().await);
    pg.restart();
    assert!(!held.alive().await);
    let other = lock(&db, "node c").await;
    other.release().await.unwrap();
}

#[tokio::test]
async fn postgres_wrong_password_fails_on_one_masked_line() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, WRONG);
    let err = db
        .advisory_lock("node a", Duration::from_secs(1), &mut no_wait())
        .await
        .unwrap_err();
    assert!(err.root_cause().downcast_ref::<LockBusy>().is_none());
    let text = assert_clean_error(&err, &["psql failed", "password authentication failed"]);
    assert!(text.starts_with("postgres portal@127.0.0.1:"), "{text}");
}

#[tokio::test]
async fn mysql_lock_is_exclusive_and_freed_by_release_drop_and_kill() {
    let my = Mariadb::start(PASSWORD);
    let db = mysql_db(&my, PASSWORD);

    let mut first = lock(&db, "node web1 run 42").await;
    assert_eq!(first.key(), "GET_LOCK('upkeep:portal')");
    assert!(first.alive().await);
    assert_session_clean(&first, "my.cnf");
    // The name a person would look for.
    let connection = my.admin("SELECT IS_USED_LOCK('upkeep:portal')");
    assert!(connection.parse::<u64>().is_ok(), "{connection}");

    assert_locked_out(&db, &format!("connection {connection}, portal@127.0.0.1")).await;
    assert!(first.alive().await, "the waiter took nothing away");

    first.release().await.unwrap();
    assert_eq!(my.admin("SELECT IS_FREE_LOCK('upkeep:portal')"), "1");
    let second = lock(&db, "node web2 run 7").await;
    assert_locked_out(&db, "portal@127.0.0.1").await;

    drop(second);
    let mut third = db
        .advisory_lock("node web3 run 1", Duration::from_secs(5), &mut |_, _| {})
        .await
        .unwrap()
        .unwrap();
    let pid = third.session_pid().unwrap();
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
    assert!(!third.alive().await);
    let fourth = db
        .advisory_lock("node web4 run 1", Duration::from_secs(5), &mut |_, _| {})
        .await
        .unwrap()
        .unwrap();
    let err = third.release().await.unwrap_err();
    assert_clean_error(&err, &["release of GET_LOCK('upkeep:portal')"]);
    fourth.release().await.unwrap();
}

#[tokio::test]
async fn mysql_lock_is_not_alive_once_the_server_kills_the_connection() {
    let my = Mariadb::start(PASSWORD);
    let db = mysql_db(&my, PASSWORD);
    let mut held = lock(&db, "node a").await;
    assert!(held.alive().await);
    let connection = my.admin("SELECT IS_USED_LOCK('upkeep:portal')");
    my.admin(&format!("KILL {connection}"));
    assert!(!held.alive().await, "no silent reconnect");
    assert_eq!(my.admin("SELECT IS_FREE_LOCK('upkeep:portal')"), "1");
    let err = held.release().await.unwrap_err();
    assert_clean_error(&err, &["mysql portal@127.0.0.1"]);
    let other = lock(&db, "node b").await;
    other.release().await.unwrap();
}

#[tokio::test]
async fn mysql_wrong_password_fails_on_one_masked_line() {
    let my = Mariadb::start(PASSWORD);
    let db = mysql_db(&my, WRONG);
    let err = db
        .advisory_lock("node a", Duration::from_secs(1), &mut no_wait())
        .await
        .unwrap_err();
    assert!(err.root_cause().downcast_ref::<LockBusy>().is_none());
    let text = assert_clean_error(&err, &["mariadb failed", "Access denied"]);
    assert!(text.starts_with("mysql portal@127.0.0.1:"), "{text}");
}
