//! Dump and restore against real PostgreSQL 15 and MariaDB servers started
//! by [`super::test_servers`] (test-only). Each test has its own server on
//! its own port and directory, so they run in parallel.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::db::{Db, resolve};
use super::test_servers::{Mariadb, Postgres};
use super::{Artifact, Kind};
use crate::config::{Database, Secret};
use crate::fsutil::durable::partial_path;

/// Quotes, backslash, `:`, `@`, `/`, `#`, `$`, a space, a `%41` that must
/// not be decoded twice, and non-ASCII.
pub(super) const PASSWORD: &str = "p@ss:w/o\"rd\\x#y'z $q%41é";

/// A password the servers do not accept.
pub(super) const WRONG: &str = "Wr0ng:Pa55/word!";

/// Percent-encodes everything but ASCII letters and digits.
pub(super) fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(super) fn assert_clean_error(err: &anyhow::Error, must_contain: &[&str]) -> String {
    let text = err.to_string();
    let chain = format!("{err:#} {err:?}");
    assert!(!text.contains('\n'), "not one line: {text}");
    for secret in [PASSWORD, WRONG, &pct(PASSWORD), &pct(WRONG)] {
        assert!(!chain.contains(secret), "password leaked: {chain}");
    }
    for needle in must_contain {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    text
}

fn assert_private(path: &Path) {
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

pub(super) fn postgres_db(port: u16, password: &str) -> Db {
    let url = format!(
        "postgres://portal:{}@127.0.0.1:{port}/portal?sslmode=disable",
        pct(password)
    );
    let db = resolve(&Database::Postgres {
        url: Secret::new(url),
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        db.describe(),
        format!("postgres portal@127.0.0.1:{port}/portal")
    );
    db
}

/// Everything that must come back: the relations, columns, data, sequence
/// state, routines and types of the non-system schemas.
fn pg_snapshot(pg: &Postgres) -> String {
    pg.admin(
        "SELECT concat_ws(E'\\n',
           (SELECT string_agg(x, ',' ORDER BY x) FROM (
              SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' ||
                     pg_get_userbyid(c.relowner) AS x
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname !~ '^pg_toast') s),
           (SELECT string_agg(x, ',' ORDER BY x) FROM (
              SELECT table_schema || '.' || table_name || '.' || column_name || ':' ||
                     data_type AS x
                FROM information_schema.columns
               WHERE table_schema NOT IN ('pg_catalog', 'information_schema')) s),
           (SELECT md5(string_agg(id || ':' || name || ':' || n || ':' || s, ',' ORDER BY id))
              FROM items),
           (SELECT count(*)::text FROM items),
           (SELECT string_agg(k || '=' || v, ',' ORDER BY k) FROM app.settings),
           (SELECT string_agg(id || ':' || item || ':' || at, ',' ORDER BY id) FROM audit),
           (SELECT last_value::text FROM audit_id_seq),
           (SELECT string_agg(proname::text, ',' ORDER BY proname) FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'),
           (SELECT string_agg(typname::text, ',' ORDER BY typname) FROM pg_type t
              JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'public' AND t.typtype = 'e'),
           (SELECT string_agg(nspname::text, ',' ORDER BY nspname) FROM pg_namespace))",
    )
}

#[tokio::test]
async fn postgres_dump_and_restore_exactly() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, PASSWORD);
    assert!(!format!("{db:?}").contains("rd\\x"), "{db:?}");
    db.preflight().await.unwrap();

    pg.admin(
        "SET ROLE portal;
         CREATE TYPE status AS ENUM ('new', 'done');
         CREATE TABLE items(id int PRIMARY KEY, name text NOT NULL, n int NOT NULL,
                            s status NOT NULL DEFAULT 'new');
         INSERT INTO items SELECT g, 'item-' || g, g * 2 FROM generate_series(1, 1000) g;
         CREATE TABLE audit(id serial PRIMARY KEY, item int REFERENCES items(id), at text);
         INSERT INTO audit(item, at) SELECT g, 'x' FROM generate_series(1, 10) g;
         CREATE VIEW big_items AS SELECT id FROM items WHERE n > 100;
         CREATE FUNCTION double_it(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
         CREATE SCHEMA app;
         CREATE TABLE app.settings(k text PRIMARY KEY, v text);
         INSERT INTO app.settings VALUES ('theme', 'default'), ('version', '1.13');",
    );
    let before = pg_snapshot(&pg);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("portal.pgdump");
    let artifact = db.dump(&dest).await.unwrap();
    assert_eq!(artifact.kind, Kind::Postgres);
    assert_eq!(artifact.path, dest);
    assert_private(&dest);
    assert!(!partial_path(&dest).exists());
    artifact.verify().unwrap();

    // What a failed upgrade's migration does.
    pg.admin(
        "SET ROLE portal;
         CREATE TABLE extra(id int PRIMARY KEY);
         INSERT INTO extra VALUES (1);
         ALTER TABLE items ADD COLUMN added int;
         UPDATE items SET name = 'changed' WHERE id <= 500;
         DELETE FROM audit WHERE id > 5;
         DELETE FROM items WHERE id > 900;
         INSERT INTO items(id, name, n) VALUES (5000, 'new', 1);
         INSERT INTO audit(item, at) VALUES (1, 'y');
         DROP VIEW big_items;
         CREATE TYPE mood AS ENUM ('a');
         CREATE FUNCTION added_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE SCHEMA newschema;
         CREATE TABLE newschema.t(x int);
         UPDATE app.settings SET v = '1.14' WHERE k = 'version';",
    );
    assert_ne!(pg_snapshot(&pg), before);

    db.restore(&artifact).await.unwrap();
    assert_eq!(pg_snapshot(&pg), before);
    assert_eq!(pg.admin("SELECT to_regclass('public.extra') IS NULL"), "t");
    assert_eq!(
        pg.admin("SELECT count(*) FROM pg_namespace WHERE nspname = 'newschema'"),
        "0"
    );
    assert_eq!(pg.admin("SELECT count(*) FROM items"), "1000");

    // Restoring twice gives the same result.
    db.restore(&artifact).await.unwrap();
    assert_eq!(pg_snapshot(&pg), before);

    // A restore that fails half-way changes nothing: `items` now belongs to
    // another role, so it is not dropped and creating it fails; the table
    // the "migration" added must survive the rollback.
    pg.admin(
        "ALTER TABLE items OWNER TO postgres;
         SET ROLE portal;
         CREATE TABLE extra(id int);",
    );
    let before_failure = pg_snapshot(&pg);
    let err = db.restore(&artifact).await.unwrap_err();
    assert_clean_error(&err, &["psql failed", "already exists", "portal@127.0.0.1"]);
    assert_eq!(
        pg.admin("SELECT to_regclass('public.extra') IS NOT NULL"),
        "t"
    );
    assert_eq!(pg.admin("SELECT count(*) FROM items"), "1000");
    assert_eq!(pg_snapshot(&pg), before_failure, "row for row as it was");
}

#[tokio::test]
async fn postgres_wrong_password_fails_on_one_line() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, WRONG);
    let err = db.preflight().await.unwrap_err();
    assert_clean_error(&err, &["psql failed", "password authentication failed"]);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("portal.pgdump");
    let err = db.dump(&dest).await.unwrap_err();
    let text = assert_clean_error(&err, &["pg_dump failed", "exit status", "password"]);
    assert!(text.starts_with("postgres portal@127.0.0.1:"), "{text}");
    assert!(!dest.exists() && !partial_path(&dest).exists());

    // A restore with the wrong password touches nothing either.
    let good = postgres_db(pg.port, PASSWORD);
    pg.admin("SET ROLE portal; CREATE TABLE t(x int); INSERT INTO t VALUES (1);");
    let artifact = good.dump(&dest).await.unwrap();
    pg.admin("SET ROLE portal; CREATE TABLE extra(x int);");
    let err = db.restore(&artifact).await.unwrap_err();
    assert_clean_error(&err, &["password authentication failed"]);
    assert_eq!(
        pg.admin("SELECT to_regclass('public.extra') IS NOT NULL"),
        "t"
    );
}

fn mysql_snapshot(my: &Mariadb) -> String {
    my.admin(
        "USE portal;
         SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, ':', TABLE_TYPE) ORDER BY TABLE_NAME)
           FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'portal';
         SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '.', COLUMN_NAME, ':', COLUMN_TYPE)
                             ORDER BY TABLE_NAME, ORDINAL_POSITION)
           FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'portal';
         SELECT MD5(GROUP_CONCAT(CONCAT_WS(':', id, name, n) ORDER BY id)), COUNT(*) FROM items;
         SELECT GROUP_CONCAT(CONCAT_WS(':', id, item, note) ORDER BY id) FROM notes;
         SELECT GROUP_CONCAT(CONCAT(ROUTINE_TYPE, ':', ROUTINE_NAME) ORDER BY ROUTINE_NAME)
           FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'portal';
         SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY TRIGGER_NAME)
           FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'portal';",
    )
}

#[tokio::test]
async fn mysql_dump_and_restore_exactly() {
    let my = Mariadb::start(PASSWORD);
    // The Go driver's DSN, password taken literally.
    let dsn = format!(
        "portal:{PASSWORD}@tcp(127.0.0.1:{})/portal?parseTime=true",
        my.port
    );
    let db = resolve(&Database::Mysql {
        url: Secret::new(dsn),
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        db.describe(),
        format!("mysql portal@127.0.0.1:{}/portal", my.port)
    );
    assert!(!format!("{db:?}").contains("rd\\x"));
    db.preflight().await.unwrap();
    // Over the socket too.
    let over_socket = resolve(&Database::Mysql {
        url: Secret::new(format!(
            "portal:{PASSWORD}@unix({})/portal",
            my.socket.display()
        )),
    })
    .unwrap()
    .unwrap();
    over_socket.preflight().await.unwrap();

    my.portal(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, n INT NOT NULL)
           ENGINE=InnoDB;
         INSERT INTO items
           WITH RECURSIVE seq AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM seq WHERE i < 1000)
           SELECT i, CONCAT('item-', i), i * 2 FROM seq;
         CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, item INT NOT NULL,
                             note VARCHAR(50), FOREIGN KEY (item) REFERENCES items(id))
           ENGINE=InnoDB;
         INSERT INTO notes (item, note) VALUES (1, 'first'), (2, 'second');
         CREATE VIEW big_items AS SELECT id FROM items WHERE n > 100;
         CREATE PROCEDURE count_items() SELECT COUNT(*) FROM items;
         CREATE TRIGGER notes_upper BEFORE INSERT ON notes FOR EACH ROW
           SET NEW.note = UPPER(NEW.note);",
    );
    let before = mysql_snapshot(&my);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("portal.sql");
    let artifact = db.dump(&dest).await.unwrap();
    assert_eq!(artifact.kind, Kind::Mysql);
    assert_private(&dest);
    assert!(!partial_path(&dest).exists());
    artifact.verify().unwrap();

    my.portal(
        "CREATE TABLE extra (id INT PRIMARY KEY);
         INSERT INTO extra VALUES (1);
         CREATE TABLE extra_child (id INT, FOREIGN KEY (id) REFERENCES items(id));
         ALTER TABLE items ADD COLUMN added INT;
         UPDATE items SET name = 'changed' WHERE id <= 500;
         DELETE FROM notes WHERE id = 2;
         DELETE FROM items WHERE id > 900;
         INSERT INTO items (id, name, n) VALUES (5000, 'new', 1);
         DROP VIEW big_items;
         CREATE VIEW new_view AS SELECT 1 AS one;
         CREATE PROCEDURE added_proc() SELECT 1;
         CREATE FUNCTION added_fn() RETURNS INT DETERMINISTIC RETURN 1;",
    );
    assert_ne!(mysql_snapshot(&my), before);

    db.restore(&artifact).await.unwrap();
    assert_eq!(mysql_snapshot(&my), before);
    assert_eq!(
        my.admin("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'portal' AND TABLE_NAME LIKE 'extra%'"),
        "0"
    );
    assert_eq!(my.admin("SELECT COUNT(*) FROM portal.items"), "1000");

    // Restoring twice gives the same result.
    db.restore(&artifact).await.unwrap();
    assert_eq!(mysql_snapshot(&my), before);
    assert_eq!(leftover_schemas(&my), "0");
}

#[tokio::test]
async fn mysql_wrong_password_fails_on_one_line() {
    let my = Mariadb::start(PASSWORD);
    let url = format!("mysql://portal:{}@127.0.0.1:{}/portal", pct(WRONG), my.port);
    let db = resolve(&Database::Mysql {
        url: Secret::new(url),
    })
    .unwrap()
    .unwrap();
    let err = db.preflight().await.unwrap_err();
    assert_clean_error(&err, &["mariadb failed", "Access denied"]);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("portal.sql");
    let err = db.dump(&dest).await.unwrap_err();
    let text = assert_clean_error(
        &err,
        &["mariadb-dump failed", "exit status", "Access denied"],
    );
    assert!(text.starts_with("mysql portal@127.0.0.1:"), "{text}");
    assert!(!dest.exists() && !partial_path(&dest).exists());
}

/// The schemas an atomic restore made and left behind (none, once done).
fn leftover_schemas(my: &Mariadb) -> String {
    my.admin(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME LIKE 'portal\\_upkeep\\_%'",
    )
}

fn mysql_fixture(my: &Mariadb) {
    my.portal(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, n INT NOT NULL)
           ENGINE=InnoDB;
         INSERT INTO items
           WITH RECURSIVE seq AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM seq WHERE i < 300)
           SELECT i, CONCAT('item-', i), i * 2 FROM seq;
         INSERT INTO items VALUES (1001, 'tricky ; '' \\\\ -- x /* y */ \" `z` # w\nnext line', 7);
         CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, item INT NOT NULL,
                             note VARCHAR(50), FOREIGN KEY (item) REFERENCES items(id))
           ENGINE=InnoDB;
         INSERT INTO notes (item, note) VALUES (1, 'first'), (2, 'second');
         CREATE VIEW big_items AS SELECT id FROM items WHERE n > 100;
         CREATE VIEW bigger_items AS SELECT id FROM big_items WHERE id > 200;
         DELIMITER //
         CREATE PROCEDURE count_items() BEGIN SELECT COUNT(*) FROM items; SELECT 1; END//
         DELIMITER ;
         CREATE TRIGGER notes_upper BEFORE INSERT ON notes FOR EACH ROW
           SET NEW.note = UPPER(NEW.note);",
    );
}

fn mysql_portal_db(my: &Mariadb) -> Db {
    resolve(&Database::Mysql {
        url: Secret::new(format!(
            "mysql://portal:{}@127.0.0.1:{}/portal",
            pct(PASSWORD),
            my.port
        )),
    })
    .unwrap()
    .unwrap()
}

fn mysql_full_snapshot(my: &Mariadb) -> String {
    format!(
        "{}\n{}\n{}",
        mysql_snapshot(my),
        my.admin("SELECT GROUP_CONCAT(id ORDER BY id) FROM portal.bigger_items"),
        my.admin("SELECT name FROM portal.items WHERE id = 1001")
    )
}

#[tokio::test]
async fn mysql_restore_is_atomic_and_leaves_no_schema_behind() {
    let my = Mariadb::start(PASSWORD);
    let db = mysql_portal_db(&my);
    db.preflight().await.unwrap();
    assert_eq!(leftover_schemas(&my), "0", "the preflight's probe is gone");
    mysql_fixture(&my);
    let dumped = mysql_full_snapshot(&my);
    let tmp = tempfile::tempdir().unwrap();
    let artifact = db.dump(&tmp.path().join("portal.sql")).await.unwrap();

    // A migration: rows changed, a table and a trigger added, a view in
    // the place of a table.
    my.portal(
        "UPDATE items SET name = 'changed' WHERE id < 50;
         CREATE TABLE extra (id INT PRIMARY KEY);
         CREATE TRIGGER extra_t BEFORE INSERT ON extra FOR EACH ROW SET NEW.id = NEW.id + 1;
         DROP TRIGGER notes_upper;
         CREATE TRIGGER notes_lower BEFORE INSERT ON notes FOR EACH ROW
           SET NEW.note = LOWER(NEW.note);
         SET FOREIGN_KEY_CHECKS = 0; DROP TABLE notes;
         CREATE VIEW notes AS SELECT 1 AS id;",
    );
    let migrated = my.admin(
        "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = 'portal'",
    );

    // 1. A dump whose last statement fails: the live database stays as it
    //    was, row for row, and the temporary schemas are gone.
    let text = fs::read_to_string(&artifact.path).unwrap();
    let cut = text.rfind("\n-- Dump completed").unwrap();
    let failing = tmp.path().join("failing.sql");
    fs::write(
        &failing,
        format!(
            "{}\nINSERT INTO items VALUES (1, 'duplicate', 1);{}",
            &text[..cut],
            &text[cut..]
        ),
    )
    .unwrap();
    let bad = Artifact::of_file(Kind::Mysql, &failing).unwrap();
    bad.verify().unwrap();
    let before_failure = mysql_live_state(&my);
    let err = db.restore(&bad).await.unwrap_err();
    assert_clean_error(&err, &["mariadb failed", "Duplicate entry"]);
    assert_eq!(mysql_live_state(&my), before_failure);
    assert!(migrated.contains("extra"), "{migrated}");
    assert_eq!(leftover_schemas(&my), "0");

    // 2. The dump changed after it was verified: refused before anything.
    let mut corrupted = text.clone().into_bytes();
    let at = text.find("item-7").unwrap();
    corrupted[at] = b'X';
    let tampered = Artifact {
        path: tmp.path().join("tampered.sql"),
        ..artifact.clone()
    };
    fs::write(&tampered.path, &corrupted).unwrap();
    let err = db.restore(&tampered).await.unwrap_err();
    assert_clean_error(&err, &["SHA-256"]);
    assert_eq!(mysql_live_state(&my), before_failure);

    // 3. The real restore replaces it, tables, views, routine and triggers.
    db.restore(&artifact).await.unwrap();
    assert_eq!(mysql_full_snapshot(&my), dumped);
    assert_eq!(leftover_schemas(&my), "0");
    assert_eq!(
        my.admin("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'portal' AND TABLE_NAME = 'extra'"),
        "0"
    );
    // The restored trigger fires, the schema's character set is kept.
    my.portal("INSERT INTO notes (item, note) VALUES (3, 'third')");
    assert_eq!(
        my.admin("SELECT note FROM portal.notes WHERE item = 3"),
        "THIRD"
    );
    assert_eq!(my.portal("CALL count_items()"), "301\n1");
}

/// Everything of the live database, for "exactly as it was".
fn mysql_live_state(my: &Mariadb) -> String {
    my.admin(
        "USE portal;
         SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, ':', TABLE_TYPE) ORDER BY TABLE_NAME)
           FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'portal';
         SELECT GROUP_CONCAT(CONCAT(TRIGGER_NAME, ':', ACTION_STATEMENT) ORDER BY TRIGGER_NAME)
           FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'portal';
         SELECT GROUP_CONCAT(ROUTINE_NAME ORDER BY ROUTINE_NAME)
           FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'portal';
         SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, ':', VIEW_DEFINITION) ORDER BY TABLE_NAME)
           FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'portal';
         SELECT MD5(GROUP_CONCAT(CONCAT_WS(':', id, name, n) ORDER BY id)), COUNT(*) FROM items;
         SELECT COUNT(*) FROM extra;",
    )
}

#[tokio::test]
async fn mysql_dumps_cut_at_any_byte_fail_verification() {
    let my = Mariadb::start(PASSWORD);
    let db = mysql_portal_db(&my);
    mysql_fixture(&my);
    let tmp = tempfile::tempdir().unwrap();
    let artifact = db.dump(&tmp.path().join("portal.sql")).await.unwrap();
    let bytes = fs::read(&artifact.path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    // The real dump has what the lexer must get right.
    for needle in [
        "DELIMITER ;;",
        "/*!50003",
        "/*M!999999\\-",
        "'tricky ; \\' \\\\ -- x /* y */",
    ] {
        assert!(text.contains(needle), "{needle} not in the dump");
    }
    super::sqldump::check_reader(&bytes[..]).unwrap();
    // Every prefix fails.
    let started = std::time::Instant::now();
    for cut in 0..bytes.len() {
        assert!(
            super::sqldump::check_reader(&bytes[..cut]).is_err(),
            "a dump cut at byte {cut} of {} passed",
            bytes.len()
        );
    }
    eprintln!(
        "{} prefixes of a {}-byte dump checked in {:?}",
        bytes.len(),
        bytes.len(),
        started.elapsed()
    );
    // And through Artifact::verify, cut inside the tricky string literal,
    // inside the trigger, and just before the final line break.
    let in_literal = text.find("tricky ; ").unwrap() + 4;
    let in_trigger = text.find("UPPER(NEW.note)").unwrap();
    for cut in [in_literal, in_trigger, bytes.len() - 1, bytes.len() / 2] {
        let path = tmp.path().join(format!("cut-{cut}.sql"));
        fs::write(&path, &bytes[..cut]).unwrap();
        let cut_artifact = Artifact::of_file(Kind::Mysql, &path).unwrap();
        let err = cut_artifact.verify().unwrap_err().to_string();
        assert!(err.contains("not a complete MySQL dump"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    let err = {
        let path = tmp.path().join("lit.sql");
        fs::write(&path, &bytes[..in_literal]).unwrap();
        Artifact::of_file(Kind::Mysql, &path)
            .unwrap()
            .verify()
            .unwrap_err()
    };
    assert!(err.to_string().contains("quoted string"), "{err}");
}

#[tokio::test]
async fn mysql_preflight_names_the_missing_restore_privilege() {
    let my = Mariadb::start(PASSWORD);
    my.admin(
        "REVOKE ALL ON `portal\\_upkeep\\_%`.* FROM 'portal'@'%';
         REVOKE ALL ON `portal\\_upkeep\\_%`.* FROM 'portal'@'localhost';",
    );
    let db = mysql_portal_db(&my);
    let err = db.preflight().await.unwrap_err();
    assert_clean_error(
        &err,
        &[
            "cannot create and drop the schema",
            "`portal\\_upkeep\\_%`.*",
            "Access denied",
        ],
    );
}

#[tokio::test]
async fn postgres_dump_verification_reads_the_whole_archive() {
    let pg = Postgres::start(PASSWORD);
    let db = postgres_db(pg.port, PASSWORD);
    pg.admin(
        "SET ROLE portal;
         CREATE TABLE items(id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let artifact = db.dump(&tmp.path().join("portal.pgdump")).await.unwrap();
    let bytes = fs::read(&artifact.path).unwrap();
    // Cut at 40 places over the whole file and in its last bytes.
    let mut cuts: Vec<usize> = (0..40).map(|k| k * bytes.len() / 40).collect();
    cuts.extend([bytes.len() - 1, bytes.len() - 2, bytes.len() - 10, 5, 6]);
    for cut in cuts {
        let path = tmp.path().join(format!("cut-{cut}.pgdump"));
        fs::write(&path, &bytes[..cut]).unwrap();
        let err = Artifact::of_file(Kind::Postgres, &path)
            .unwrap()
            .verify()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pg_restore"), "cut at {cut}: {err}");
        assert!(!err.contains('\n'), "{err}");
        fs::remove_file(&path).unwrap();
    }
    // Not a dump at all: pg_restore's own reason, on one line.
    let junk = tmp.path().join("junk.pgdump");
    fs::write(&junk, b"PGDMP garbage that is no archive").unwrap();
    let err = Artifact::of_file(Kind::Postgres, &junk)
        .unwrap()
        .verify()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.pgdump")
            && err.contains("pg_restore --list failed (exit status: 1): pg_restore: error:"),
        "{err}"
    );
}
