//! Real database servers inside the rig's containers, as on a real host:
//! Debian's PostgreSQL (cluster `main`, unit `postgresql@VERSION-main`) and
//! MariaDB (unit `mariadb`). Both are installed in the root filesystem but
//! disabled, so containers boot without them; [`PortalHost::use_database`]
//! starts one on demand and points the portal at it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Fail, Family, HostSpec, PortalHost, fixtures};

/// Which database the portal uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// The packaged default: a file under /var/lib/portal.
    Sqlite,
    /// PostgreSQL (`Database.Dialect = "postgres"`).
    Postgres,
    /// MariaDB (`Database.Dialect = "mysql"`).
    Mariadb,
}

/// Password of the `portal` database user. A planted secret: upkeep must
/// never print or store it.
pub const DB_PASSWORD: &str = "Pg-planted-secret-5d1c";
/// Database and user name on both servers.
pub const DB_NAME: &str = "portal";
/// The portal's page API inside a single host's container (see
/// [`PortalHost::pages_url`]).
pub const PAGES_URL: &str = "http://127.0.0.1:3001/api/pages";
/// MariaDB's TCP port (Debian's default configuration).
pub const MARIADB_PORT: u16 = 3306;

/// What portal.conf's `Database` says to reach a server over 127.0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSettings {
    /// Which server.
    pub db: Db,
    /// `Database.Dialect` (`postgres`, `mysql`).
    pub dialect: String,
    /// `Database.ConnectionString` (with [`DB_PASSWORD`]).
    pub connection_string: String,
}

/// The titles [`PortalHost::add_pages`] gives `n` pages: `{prefix}-0` .. `{prefix}-{n-1}`.
pub fn page_titles_for(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

impl PortalHost {
    /// Starts the server (`postgresql@15-main` / `mariadb`), creates the
    /// user `portal` with [`DB_PASSWORD`] and the database `portal` owned by
    /// it (PostgreSQL: a plain login role that owns the database and its
    /// `public` schema, no CREATEDB; MariaDB: `portal`@`localhost` and
    /// `portal`@`127.0.0.1` with `GRANT ALL ON portal.*`, which covers
    /// dropping and creating tables and the database itself), rewrites /opt/portal/portal.conf's
    /// `Database.Dialect` and `Database.ConnectionString` to use it over TCP
    /// on 127.0.0.1 with the password (postgres URL; mysql Go DSN
    /// `portal:PASSWORD@tcp(127.0.0.1:3306)/portal?parseTime=true`), restarts
    /// portal.service and waits until `/ready`. Sqlite: nothing to do.
    /// Call after [`PortalHost::install`]; calling it again is harmless.
    pub fn use_database(&self, db: Db) -> Result<(), Fail> {
        match self.start_database(db)? {
            None => Ok(()),
            Some(settings) => self.set_database(&settings),
        }
    }

    /// Starts the server of `db` in this container and prepares its user
    /// and database as [`PortalHost::use_database`] describes; returns the
    /// portal.conf settings that reach it over 127.0.0.1 (from this
    /// container, or any that shares its network namespace). Sqlite: None.
    pub fn start_database(&self, db: Db) -> Result<Option<DbSettings>, Fail> {
        let (dialect, connection_string) = match db {
            Db::Sqlite => return Ok(None),
            Db::Postgres => {
                let port = self.start_postgres()?;
                (
                    "postgres",
                    format!("postgres://{DB_NAME}:{DB_PASSWORD}@127.0.0.1:{port}/{DB_NAME}"),
                )
            }
            Db::Mariadb => {
                self.start_mariadb()?;
                (
                    "mysql",
                    format!(
                        "{DB_NAME}:{DB_PASSWORD}@tcp(127.0.0.1:{MARIADB_PORT})/{DB_NAME}?parseTime=true"
                    ),
                )
            }
        };
        Ok(Some(DbSettings {
            db,
            dialect: dialect.to_string(),
            connection_string,
        }))
    }

    /// Rewrites /opt/portal/portal.conf's `Database` to `settings`, restarts
    /// portal.service and waits until `/ready`.
    pub fn set_database(&self, settings: &DbSettings) -> Result<(), Fail> {
        let conf = self.c.read("/opt/portal/portal.conf")?;
        let mut json: serde_json::Value = serde_json::from_str(&conf)
            .map_err(|e| Fail(format!("/opt/portal/portal.conf is not JSON: {e}")))?;
        if !json["Database"].is_object() {
            json["Database"] = serde_json::json!({});
        }
        json["Database"]["Dialect"] = settings.dialect.as_str().into();
        json["Database"]["ConnectionString"] = settings.connection_string.as_str().into();
        let text = serde_json::to_string_pretty(&json).expect("json");
        self.c.write("/opt/portal/portal.conf", text, 0o640)?;
        self.c.run(&["systemctl", "restart", "portal.service"])?;
        self.wait_ready(Duration::from_secs(60)).map_err(|e| {
            Fail(format!(
                "{e}\n--- portal journal\n{}",
                self.portal_journal()
            ))
        })?;
        Ok(())
    }

    /// Runs `sql` on the `portal` database with the server's own client as
    /// its administrator (`psql` as postgres / `mariadb` as root); returns
    /// the rows, one per line, columns separated by tabs. The server must be
    /// running ([`PortalHost::use_database`]).
    pub fn db_query(&self, db: Db, sql: &str) -> Result<String, Fail> {
        match db {
            Db::Sqlite => Err(Fail(
                "db_query: no client for sqlite in the container".into(),
            )),
            Db::Postgres => self.psql(DB_NAME, sql),
            Db::Mariadb => self
                .c
                .run(&["mariadb", "-N", "-B", "-D", DB_NAME, "-e", sql]),
        }
    }

    /// The database the running portal said it uses, from its journal: the
    /// text after `database dialect: ` in its last start (the connection
    /// string with the password masked, e.g.
    /// `postgres (postgres://portal:***@127.0.0.1:5432/portal)`).
    pub fn database_in_use(&self) -> Result<String, Fail> {
        let out = self.c.run(&[
            "journalctl",
            "_SYSTEMD_UNIT=portal.service",
            "--no-pager",
            "-o",
            "cat",
        ])?;
        out.lines()
            .rev()
            .find_map(|l| {
                l.split_once("database dialect: ")
                    .map(|(_, d)| d.to_string())
            })
            .ok_or_else(|| {
                Fail(format!(
                    "{}: the portal never named its database",
                    self.name
                ))
            })
    }

    /// POSTs `n` pages titled `{prefix}-0` .. `{prefix}-{n-1}` (see
    /// [`page_titles_for`]) to `/api/pages`, in that order; returns their ids.
    pub fn add_pages(&self, prefix: &str, n: usize) -> Result<Vec<i64>, Fail> {
        let mut ids = Vec::with_capacity(n);
        let pages_url = self.pages_url();
        for title in page_titles_for(prefix, n) {
            let body = serde_json::json!({ "title": title }).to_string();
            let out = self.c.run(&[
                "curl",
                "-sS",
                "--fail-with-body",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
                &pages_url,
            ])?;
            let v: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| Fail(format!("POST {pages_url}: {out:?}: {e}")))?;
            ids.push(
                v["id"]
                    .as_i64()
                    .ok_or_else(|| Fail(format!("POST {pages_url}: no id in {out:?}")))?,
            );
        }
        Ok(ids)
    }

    /// The page titles from `GET /api/pages`, in id order (the portal must be ready).
    pub fn page_titles(&self) -> Result<Vec<String>, Fail> {
        let pages_url = self.pages_url();
        let out = self
            .c
            .run(&["curl", "-sS", "--fail-with-body", &pages_url])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| Fail(format!("GET {pages_url}: {out:?}: {e}")))?;
        v["titles"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| Fail(format!("GET {pages_url}: no titles in {out:?}")))
    }

    /// The schema version `/ready` reports now (None when it does not answer 200).
    pub fn ready_schema(&self) -> Option<i64> {
        let out = self.c.exec(&["curl", "-sf", &self.ready_url()]).ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["schema"].as_i64()
    }

    /// The last lines of the portal's journal (for failure messages).
    pub fn portal_journal(&self) -> String {
        self.c
            .exec(&[
                "journalctl",
                "-u",
                "portal.service",
                "-n",
                "40",
                "--no-pager",
                "-o",
                "cat",
            ])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The PostgreSQL major version installed in the container (`15` on bookworm).
    pub fn postgres_version(&self) -> Result<String, Fail> {
        let dir = self.c.path("/usr/lib/postgresql");
        let mut versions: Vec<u32> = std::fs::read_dir(&dir)
            .map_err(|e| {
                Fail(format!(
                    "no PostgreSQL in the container ({}): {e}",
                    dir.display()
                ))
            })?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|v| v.to_string())
            .ok_or_else(|| Fail("no PostgreSQL version under /usr/lib/postgresql".into()))
    }

    /// Starts the `main` cluster (creating it when the package did not),
    /// creates the role and database; returns the cluster's port.
    fn start_postgres(&self) -> Result<u16, Fail> {
        let version = self.postgres_version()?;
        let conf = format!("/etc/postgresql/{version}/main/postgresql.conf");
        if !self.c.path(&conf).exists() {
            eprintln!(
                "rig: no PostgreSQL {version} main cluster in the root filesystem; creating it"
            );
            self.c.run(&["pg_createcluster", &version, "main"])?;
        }
        let unit = format!("postgresql@{version}-main.service");
        let started = Instant::now();
        self.c.run(&["systemctl", "start", &unit])?;
        let port = self.postgres_port(&version)?;
        self.c.wait_for(
            &[
                "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ],
            Duration::from_secs(30),
        )?;
        eprintln!(
            "rig: {unit} started in {} ms",
            started.elapsed().as_millis()
        );
        let role = sql_literal(DB_NAME);
        let password = sql_literal(DB_PASSWORD);
        let exists =
            |what: &str| -> Result<bool, Fail> { Ok(self.psql("postgres", what)?.trim() == "1") };
        if exists(&format!("SELECT 1 FROM pg_roles WHERE rolname = {role}"))? {
            self.psql(
                "postgres",
                &format!("ALTER ROLE {DB_NAME} LOGIN PASSWORD {password}"),
            )?;
        } else {
            self.psql(
                "postgres",
                &format!("CREATE ROLE {DB_NAME} LOGIN PASSWORD {password}"),
            )?;
        }
        if !exists(&format!("SELECT 1 FROM pg_database WHERE datname = {role}"))? {
            self.psql(
                "postgres",
                &format!("CREATE DATABASE {DB_NAME} OWNER {DB_NAME}"),
            )?;
        }
        Ok(port)
    }

    /// The port of cluster `VERSION/main`, from `pg_lsclusters`.
    fn postgres_port(&self, version: &str) -> Result<u16, Fail> {
        let out = self.c.run(&["pg_lsclusters", "--no-header"])?;
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == version && f[1] == "main")
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| Fail(format!("pg_lsclusters has no {version}/main: {out}")))
    }

    /// `psql` as the postgres superuser on `database`: unaligned, tuples only.
    fn psql(&self, database: &str, sql: &str) -> Result<String, Fail> {
        let command = format!("--command={sql}");
        self.c.run(&[
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-F",
            "\t",
            "-d",
            database,
            &command,
        ])
    }

    /// Starts MariaDB (initialising its data directory when the package did
    /// not), creates the database and the user for local TCP and socket logins.
    fn start_mariadb(&self) -> Result<(), Fail> {
        if !self.c.path("/var/lib/mysql/mysql").exists() {
            eprintln!("rig: no MariaDB data directory in the root filesystem; creating it");
            self.c
                .run(&["mariadb-install-db", "--user=mysql", "--skip-test-db"])?;
        }
        let started = Instant::now();
        self.c.run(&["systemctl", "start", "mariadb.service"])?;
        self.c.wait_for(
            &["mariadb-admin", "--silent", "ping"],
            Duration::from_secs(30),
        )?;
        eprintln!(
            "rig: mariadb.service started in {} ms",
            started.elapsed().as_millis()
        );
        let password = sql_literal(DB_PASSWORD);
        let mut sql = format!("CREATE DATABASE IF NOT EXISTS {DB_NAME};\n");
        // 'localhost' covers the socket (and TCP from 127.0.0.1 when the
        // name resolves); '127.0.0.1' covers TCP with skip-name-resolve.
        for host in ["localhost", "127.0.0.1"] {
            let user = format!("'{DB_NAME}'@'{host}'");
            sql.push_str(&format!(
                "CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {password};\n\
                 ALTER USER {user} IDENTIFIED BY {password};\n\
                 GRANT ALL ON {DB_NAME}.* TO {user};\n\
                 GRANT ALL ON `{DB_NAME}\\_upkeep\\_%`.* TO {user};\n"
            ));
        }
        self.c.run(&["mariadb", "-e", &sql])?;
        Ok(())
    }
}

/// `s` as an SQL string literal (both servers: quotes doubled, no backslashes).
fn sql_literal(s: &str) -> String {
    assert!(!s.contains('\\'), "backslashes are not quoted portably");
    format!("'{}'", s.replace('\'', "''"))
}

/// Shows the database support works end to end: for PostgreSQL and MariaDB,
/// each in a fresh Deb host, installs portal 1.0.0, switches it to the server,
/// adds pages, then upgrades to 2.1.0 with `dpkg -i` and a restart, and checks
/// the schema went from 2 to 5 with the pages kept. Prints timings.
pub fn selftest_databases(upkeep: &Path) -> Result<(), Fail> {
    let whole = Instant::now();
    let f = fixtures::get()?;
    let newest = "2.1.0";
    let deb = f
        .deb(newest)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Fail("deb name".into()))?
        .to_string();
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(Fail(what)) };
    for db in [Db::Postgres, Db::Mariadb] {
        let t = Instant::now();
        let h = PortalHost::boot(HostSpec {
            family: Family::Deb,
            repo_root: None,
            upkeep: upkeep.to_path_buf(),
        })?;
        let booted = t.elapsed();
        // Nothing database-related runs until asked for.
        let cluster = format!("postgresql@{}-main.service", h.postgres_version()?);
        for unit in ["postgresql.service", &cluster, "mariadb.service"] {
            let state = h.c.exec(&["systemctl", "is-active", unit])?;
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            check(
                state == "inactive",
                format!("{db:?}: {unit} is {state:?} after boot, expected inactive"),
            )?;
        }
        h.install("1.0.0")?;
        let t_db = Instant::now();
        h.use_database(db)?;
        let switched = t_db.elapsed();
        check(
            h.ready_schema() == Some(2),
            format!("{db:?}: 1.0.0 schema {:?}, expected 2", h.ready_schema()),
        )?;
        let ids = h.add_pages("before", 3)?;
        check(ids == [1, 2, 3], format!("{db:?}: page ids {ids:?}"))?;
        let titles = h.page_titles()?;
        check(
            titles == page_titles_for("before", 3),
            format!("{db:?}: titles {titles:?}"),
        )?;
        // The data really is in the server.
        let rows = h.db_query(db, "SELECT title FROM pages ORDER BY id")?;
        check(
            rows.lines().collect::<Vec<_>>() == ["before-0", "before-1", "before-2"],
            format!("{db:?}: the server holds {rows:?}"),
        )?;

        let t_up = Instant::now();
        h.c.run(&[
            "dpkg",
            "-i",
            "--force-confdef",
            "--force-confold",
            &format!("/srv/debs/{deb}"),
        ])?;
        h.c.run(&["systemctl", "restart", "portal.service"])?;
        let ready = h
            .wait_ready(Duration::from_secs(60))
            .map_err(|e| Fail(format!("{db:?}: {e}\n{}", h.portal_journal())))?;
        let upgraded = t_up.elapsed();
        check(
            ready["version"] == newest && h.ready_schema() == Some(5),
            format!("{db:?}: after the upgrade /ready says {ready}"),
        )?;
        let titles = h.page_titles()?;
        check(
            titles == page_titles_for("before", 3),
            format!("{db:?}: titles after the upgrade {titles:?}"),
        )?;
        let version = h.db_query(db, "SELECT version FROM portal_schema")?;
        check(
            version.trim() == "5",
            format!("{db:?}: portal_schema holds {version:?}"),
        )?;
        let ids = h.add_pages("after", 1)?;
        check(
            ids == [4],
            format!("{db:?}: page id after the upgrade {ids:?}"),
        )?;
        drop(h);
        eprintln!(
            "rig: selftest {db:?}: boot {} ms, switch to the server {} ms, upgrade to {newest} {} ms, whole host {} ms",
            booted.as_millis(),
            switched.as_millis(),
            upgraded.as_millis(),
            t.elapsed().as_millis()
        );
    }
    eprintln!(
        "rig: selftest_databases took {} ms",
        whole.elapsed().as_millis()
    );
    Ok(())
}
