//! The shipped releases' migrations and the page API against real databases:
//! SQLite in a scratch file, and PostgreSQL and MariaDB servers that each test
//! starts on this host (see `tests/servers/mod.rs`) and stops at its end.

use std::path::Path;

use crate::config::{DbConfig, Dialect};
use crate::db::Db;
use crate::migrations::{self, MigrateError};

#[path = "../tests/servers/mod.rs"]
mod servers;

use servers::{Mariadb, PASSWORD, Postgres, scratch};

fn release_migrations(version: &str, dialect: Dialect) -> Vec<migrations::Migration> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("releases")
        .join(version)
        .join("migrations");
    migrations::load(&dir, dialect).unwrap()
}

/// Starts `version` on the database the way the portal does; the schema version after.
fn start(cfg: &DbConfig, version: &str) -> Result<i64, MigrateError> {
    let mut db = Db::connect(cfg).unwrap();
    let m = release_migrations(version, cfg.dialect);
    let current = migrations::check(&mut db, m.len())?;
    migrations::apply_pending(&mut db, &m, current, |_, _| {})?;
    Ok(m.len() as i64)
}

fn schema(cfg: &DbConfig) -> i64 {
    Db::connect(cfg).unwrap().schema_version().unwrap()
}

/// The contract of README.md's release table, on one empty database.
fn releases_behave_as_documented(cfg: &DbConfig) {
    let dialect = cfg.dialect.name();
    assert_eq!(start(cfg, "1.0.0"), Ok(2), "{dialect}");
    {
        let mut db = Db::connect(cfg).unwrap();
        assert_eq!(db.insert_page("a"), Ok(1));
        assert_eq!(db.insert_page("b"), Ok(2));
    }
    assert_eq!(start(cfg, "1.0.0"), Ok(2), "{dialect}: restart");

    // 2.0.1 applies 0003 and 0004, then its broken 0005 fails: schema 4.
    match start(cfg, "2.0.1") {
        Err(MigrateError::Failed { name, error }) => {
            assert!(name.starts_with("0005_catalogues"), "{dialect}: {name}");
            assert!(!error.is_empty());
        }
        other => panic!("{dialect}: 2.0.1 must fail in 0005, got {other:?}"),
    }
    assert_eq!(schema(cfg), 4, "{dialect}");

    // 1.x refuses the newer schema; 2.0.0 starts on it; 2.1.0 migrates it.
    assert_eq!(
        start(cfg, "1.1.0"),
        Err(MigrateError::TooNew {
            current: 4,
            known: 3
        }),
        "{dialect}"
    );
    assert_eq!(
        start(cfg, "1.0.0"),
        Err(MigrateError::TooNew {
            current: 4,
            known: 2
        }),
        "{dialect}"
    );
    assert_eq!(start(cfg, "2.0.0"), Ok(4), "{dialect}");
    assert_eq!(schema(cfg), 4, "{dialect}");
    assert_eq!(start(cfg, "2.1.0"), Ok(5), "{dialect}");
    assert_eq!(schema(cfg), 5, "{dialect}");
    assert_eq!(start(cfg, "2.1.0"), Ok(5), "{dialect}: restart");

    let mut db = Db::connect(cfg).unwrap();
    assert_eq!(db.page_titles(), Ok(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(db.insert_page("c"), Ok(3));
    assert_eq!(db.page_titles().unwrap().len(), 3);
}

#[test]
fn sqlite_releases_behave_as_documented() {
    let dir = scratch("sqlite");
    let cfg = DbConfig {
        dialect: Dialect::Sqlite3,
        connection_string: dir.join("sub/portal.db").to_string_lossy().into_owned(),
    };
    releases_behave_as_documented(&cfg);
    // A fresh 2.1.0 database straight to schema 5.
    let fresh = DbConfig {
        connection_string: dir.join("fresh.db").to_string_lossy().into_owned(),
        ..cfg
    };
    assert_eq!(start(&fresh, "2.1.0"), Ok(5));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn postgres_releases_behave_as_documented() {
    let mut pg = Postgres::start();
    let port = pg.port;
    let url = |db: &str| {
        format!(
            "postgres://portal:{}@127.0.0.1:{port}/{db}",
            PASSWORD.replace('@', "%40").replace('/', "%2F"),
        )
    };
    let db = pg.database();
    releases_behave_as_documented(&DbConfig {
        dialect: Dialect::Postgres,
        connection_string: url(&db),
    });
    let db = pg.database();
    let fresh = DbConfig {
        dialect: Dialect::Postgres,
        connection_string: url(&db),
    };
    assert_eq!(start(&fresh, "2.1.0"), Ok(5));
    drop(pg.root);
    drop(pg.server);
}

#[test]
fn mysql_releases_behave_as_documented() {
    let mut my = Mariadb::start();
    let port = my.port;
    let go_dsn = |db: &str| format!("portal:{PASSWORD}@tcp(127.0.0.1:{port})/{db}?parseTime=true");
    let db = my.database();
    releases_behave_as_documented(&DbConfig {
        dialect: Dialect::Mysql,
        connection_string: go_dsn(&db),
    });

    // The other connection string forms reach the same server, fresh
    // databases go straight to schema 5.
    let (a, b) = (my.database(), my.database());
    let unix = format!("portal:{PASSWORD}@unix({})/{a}", my.socket.display());
    let url = format!(
        "mysql://portal:{}@127.0.0.1:{port}/{b}",
        PASSWORD
            .replace('@', "%40")
            .replace(':', "%3A")
            .replace('/', "%2F"),
    );
    for connection_string in [unix, url] {
        let cfg = DbConfig {
            dialect: Dialect::Mysql,
            connection_string,
        };
        assert_eq!(start(&cfg, "2.1.0"), Ok(5), "{}", cfg.connection_string);
        let mut db = Db::connect(&cfg).unwrap();
        assert_eq!(db.insert_page("x"), Ok(1));
        assert_eq!(db.page_titles(), Ok(vec!["x".to_string()]));
    }

    // A wrong password fails to connect without printing it.
    let wrong = DbConfig {
        dialect: Dialect::Mysql,
        connection_string: format!("portal:Wrong-pw-5e1@tcp(127.0.0.1:{port})/t_1"),
    };
    let e = Db::connect(&wrong).err().expect("wrong password accepted");
    assert!(e.contains("Access denied"), "{e}");
    assert!(!e.contains("Wrong-pw-5e1"), "{e}");
    drop(my.root);
    drop(my.server);
}
