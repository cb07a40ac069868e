//! Dump and restore against real PostgreSQL 15 and MariaDB servers started
//! by [`super::test_servers`] (test-only). Each test has its own server on
//! its own port and directory, so they run in parallel.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Kind;
use super::db::{Db, resolve};
use super::test_servers::{Mariadb, Postgres};
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
    let err = db.restore(&artifact).await.unwrap_err();
    assert_clean_error(&err, &["psql failed", "already exists", "portal@127.0.0.1"]);
    assert_eq!(
        pg.admin("SELECT to_regclass('public.extra') IS NOT NULL"),
        "t"
    );
    assert_eq!(pg.admin("SELECT count(*) FROM items"), "1000");
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
