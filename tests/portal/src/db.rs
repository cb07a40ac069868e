//! The three supported databases behind one small interface.

use std::error::Error;
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::config::{DbConfig, Dialect};
use crate::dsn;

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
    Mysql(Box<mysql::Conn>),
}

/// An error with its whole source chain on one line.
pub fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text.replace('\n', "; ")
}

/// `connection_string` with any password replaced by `***`, for logging.
/// Handles URLs (`postgres://user:pass@host/db`, `mysql://...`), key/value
/// strings (`host=... password=secret` or `password='se cret'`) and, for the
/// mysql dialect, Go DSNs (`user:pass@tcp(host:port)/db`).
pub fn mask_connection_string(dialect: Dialect, connection_string: &str) -> String {
    let s = connection_string;
    if dialect == Dialect::Mysql && !s.contains("://") {
        return dsn::mask_go_dsn(s);
    }
    if let Some(scheme_end) = s.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &s[rest_start..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut out = String::new();
        match authority.rfind('@') {
            Some(at) => match authority[..at].find(':') {
                Some(colon) => {
                    out.push_str(&s[..rest_start]);
                    out.push_str(&authority[..colon]);
                    out.push_str(":***");
                    out.push_str(&rest[at..authority_end]);
                }
                None => out.push_str(&s[..rest_start + authority_end]),
            },
            None => out.push_str(&s[..rest_start + authority_end]),
        }
        // Query parameters may carry `password=` too.
        out.push_str(&mask_key_values(&rest[authority_end..]));
        return out;
    }
    mask_key_values(s)
}

/// Masks `password=VALUE` (quoted or not, `&`- or space-separated).
fn mask_key_values(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("password") {
        let before_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b' ' | b'?' | b'&' | b'\t');
        let after = &rest[pos + "password".len()..];
        let trimmed = after.trim_start();
        if !before_ok || !trimmed.starts_with('=') {
            out.push_str(&rest[..pos + "password".len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..pos]);
        out.push_str("password=***");
        let value = trimmed[1..].trim_start();
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value ends at the first quote not escaped by a backslash.
            let mut escaped = false;
            let mut end = value.len();
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 2;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end
        } else {
            value.find([' ', '&', '\t']).unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

impl Db {
    pub fn connect(cfg: &DbConfig) -> Result<Db, String> {
        match cfg.dialect {
            Dialect::Sqlite3 => {
                let path = std::path::Path::new(&cfg.connection_string);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let conn = rusqlite::Connection::open(path).map_err(|e| describe(&e))?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(|e| describe(&e))?;
                // Opening is lazy; make sure the file really is a database.
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                    .map_err(|e| describe(&e))?;
                Ok(Db::Sqlite(conn))
            }
            Dialect::Postgres => {
                let mut pg: postgres::Config = cfg
                    .connection_string
                    .parse()
                    .map_err(|e: postgres::Error| describe(&e))?;
                if pg.get_connect_timeout().is_none() {
                    pg.connect_timeout(Duration::from_secs(10));
                }
                let password = pg
                    .get_password()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                pg.connect(postgres::NoTls)
                    .map(|c| Db::Postgres(Box::new(c)))
                    .map_err(|e| hide(describe(&e), password.as_deref()))
            }
            Dialect::Mysql => {
                let target = dsn::parse_mysql(&cfg.connection_string)?;
                let opts = mysql::OptsBuilder::new()
                    .user(target.user.clone())
                    .pass(target.password.clone())
                    .db_name(target.database.clone())
                    // Connect exactly where the connection string says.
                    .prefer_socket(false)
                    .tcp_connect_timeout(Some(Duration::from_secs(10)));
                let opts = match &target.address {
                    dsn::Address::Tcp { host, port } => {
                        opts.ip_or_hostname(Some(host.as_str())).tcp_port(*port)
                    }
                    dsn::Address::Unix(path) => opts.socket(Some(path.as_str())),
                };
                mysql::Conn::new(opts)
                    .map(|c| Db::Mysql(Box::new(c)))
                    .map_err(|e| hide(describe(&e), target.password.as_deref()))
            }
        }
    }

    /// Ensure `portal_schema` exists with exactly one row; return its version.
    pub fn schema_version(&mut self) -> Result<i64, String> {
        const CREATE: &str = "CREATE TABLE IF NOT EXISTS portal_schema (version INTEGER NOT NULL)";
        match self {
            Db::Sqlite(conn) => {
                let tx = conn.transaction().map_err(|e| describe(&e))?;
                tx.execute(CREATE, []).map_err(|e| describe(&e))?;
                let version: Option<i64> = tx
                    .query_row("SELECT max(version) FROM portal_schema", [], |r| r.get(0))
                    .map_err(|e| describe(&e))?;
                if version.is_none() {
                    tx.execute("INSERT INTO portal_schema (version) VALUES (0)", [])
                        .map_err(|e| describe(&e))?;
                }
                tx.commit().map_err(|e| describe(&e))?;
                Ok(version.unwrap_or(0))
            }
            Db::Postgres(client) => {
                let mut tx = client.transaction().map_err(|e| describe(&e))?;
                tx.batch_execute(CREATE).map_err(|e| describe(&e))?;
                let version: Option<i32> = tx
                    .query_one("SELECT max(version) FROM portal_schema", &[])
                    .and_then(|r| r.try_get(0))
                    .map_err(|e| describe(&e))?;
                if version.is_none() {
                    tx.batch_execute("INSERT INTO portal_schema (version) VALUES (0)")
                        .map_err(|e| describe(&e))?;
                }
                tx.commit().map_err(|e| describe(&e))?;
                Ok(version.map_or(0, i64::from))
            }
            Db::Mysql(conn) => {
                // CREATE TABLE commits implicitly; the row is inserted in a
                // transaction of its own.
                conn.query_drop(CREATE).map_err(|e| describe(&e))?;
                let mut tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .map_err(|e| describe(&e))?;
                let version: Option<i64> = tx
                    .query_first::<Option<i64>, _>("SELECT max(version) FROM portal_schema")
                    .map_err(|e| describe(&e))?
                    .flatten();
                if version.is_none() {
                    tx.query_drop("INSERT INTO portal_schema (version) VALUES (0)")
                        .map_err(|e| describe(&e))?;
                }
                tx.commit().map_err(|e| describe(&e))?;
                Ok(version.unwrap_or(0))
            }
        }
    }

    /// Run one migration and set the schema version, in one transaction.
    /// MySQL commits implicitly after each DDL statement, so there only the
    /// version bump is guaranteed to happen after the whole file succeeded
    /// (and a termination signal is deferred until both are done).
    pub fn apply(&mut self, sql: &str, new_version: i64) -> Result<(), String> {
        match self {
            Db::Sqlite(conn) => {
                let tx = conn.transaction().map_err(|e| describe(&e))?;
                tx.execute_batch(sql).map_err(|e| describe(&e))?;
                tx.execute("UPDATE portal_schema SET version = ?1", [new_version])
                    .map_err(|e| describe(&e))?;
                tx.commit().map_err(|e| describe(&e))
            }
            Db::Postgres(client) => {
                let version = i32::try_from(new_version).map_err(|e| e.to_string())?;
                let mut tx = client.transaction().map_err(|e| describe(&e))?;
                tx.batch_execute(sql).map_err(|e| describe(&e))?;
                tx.execute("UPDATE portal_schema SET version = $1", &[&version])
                    .map_err(|e| describe(&e))?;
                tx.commit().map_err(|e| describe(&e))
            }
            // DDL cannot be rolled back here: a termination signal waits
            // until the file and its version bump are done.
            Db::Mysql(conn) => crate::signals::uninterruptible(|| {
                let mut tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .map_err(|e| describe(&e))?;
                run_mysql_script(&mut tx, sql)?;
                tx.exec_drop("UPDATE portal_schema SET version = ?", (new_version,))
                    .map_err(|e| describe(&e))?;
                tx.commit().map_err(|e| describe(&e))
            }),
        }
    }

    pub fn insert_page(&mut self, title: &str) -> Result<i64, String> {
        match self {
            Db::Sqlite(conn) => conn
                .query_row(
                    "INSERT INTO pages (id, title) \
                     SELECT coalesce(max(id), 0) + 1, ?1 FROM pages RETURNING id",
                    [title],
                    |r| r.get(0),
                )
                .map_err(|e| describe(&e)),
            Db::Postgres(client) => client
                .query_one(
                    "INSERT INTO pages (id, title) \
                     SELECT coalesce(max(id), 0) + 1, $1::text FROM pages RETURNING id",
                    &[&title],
                )
                .and_then(|r| r.try_get::<_, i32>(0))
                .map(i64::from)
                .map_err(|e| describe(&e)),
            Db::Mysql(conn) => {
                // No INSERT ... RETURNING in MySQL.
                let mut tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .map_err(|e| describe(&e))?;
                let id: i64 = tx
                    .query_first("SELECT coalesce(max(id), 0) + 1 FROM pages")
                    .map_err(|e| describe(&e))?
                    .unwrap_or(1);
                tx.exec_drop("INSERT INTO pages (id, title) VALUES (?, ?)", (id, title))
                    .map_err(|e| describe(&e))?;
                tx.commit().map_err(|e| describe(&e))?;
                Ok(id)
            }
        }
    }

    pub fn page_titles(&mut self) -> Result<Vec<String>, String> {
        const SELECT: &str = "SELECT title FROM pages ORDER BY id";
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare(SELECT).map_err(|e| describe(&e))?;
                stmt.query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| describe(&e))
            }
            Db::Postgres(client) => client
                .query(SELECT, &[])
                .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
                .map_err(|e| describe(&e)),
            Db::Mysql(conn) => conn.query(SELECT).map_err(|e| describe(&e)),
        }
    }
}

/// Runs every statement of `sql` (one multi-statement query) and reports the
/// first failing one: dropping the result unread would swallow that error.
fn run_mysql_script(conn: &mut impl Queryable, sql: &str) -> Result<(), String> {
    let mut result = conn.query_iter(sql).map_err(|e| describe(&e))?;
    while let Some(set) = result.iter() {
        for row in set {
            row.map_err(|e| describe(&e))?;
        }
    }
    Ok(())
}

/// `text` with `password` (when there is one) replaced by `***`.
fn hide(text: String, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Dialect;

    fn mask(s: &str) -> String {
        super::mask_connection_string(Dialect::Postgres, s)
    }

    fn mask_mysql(s: &str) -> String {
        super::mask_connection_string(Dialect::Mysql, s)
    }

    #[test]
    fn masks_mysql_passwords() {
        assert_eq!(
            mask_mysql("portal:Pg-planted@tcp(127.0.0.1:3306)/portal?parseTime=true"),
            "portal:***@tcp(127.0.0.1:3306)/portal?parseTime=true"
        );
        assert_eq!(
            mask_mysql("portal:s3cr@t@unix(/run/mysqld/mysqld.sock)/portal"),
            "portal:***@unix(/run/mysqld/mysqld.sock)/portal"
        );
        assert_eq!(
            mask_mysql("mysql://portal:s3cr@t@127.0.0.1:3306/portal"),
            "mysql://portal:***@127.0.0.1:3306/portal"
        );
        assert_eq!(
            mask_mysql("portal@tcp(127.0.0.1:3306)/portal"),
            "portal@tcp(127.0.0.1:3306)/portal"
        );
        assert_eq!(
            super::mask_connection_string(Dialect::Sqlite3, "/var/lib/portal/portal.db"),
            "/var/lib/portal/portal.db"
        );
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("postgres://portal:s3cr@t@db.example:5432/portal?sslmode=disable"),
            "postgres://portal:***@db.example:5432/portal?sslmode=disable"
        );
        assert_eq!(
            mask("postgresql://portal@localhost/portal"),
            "postgresql://portal@localhost/portal"
        );
        assert_eq!(
            mask("postgres://localhost/portal?user=u&password=pw&x=1"),
            "postgres://localhost/portal?user=u&password=***&x=1"
        );
        assert_eq!(
            mask("host=/run/postgresql user=portal password=hunter2 dbname=portal"),
            "host=/run/postgresql user=portal password=*** dbname=portal"
        );
        assert_eq!(
            mask("host=h password = 'a \\' b' dbname=p"),
            "host=h password=*** dbname=p"
        );
        assert_eq!(mask("password=x"), "password=***");
        assert_eq!(
            mask("host=h dbname=passwordless"),
            "host=h dbname=passwordless"
        );
        assert_eq!(
            mask("/var/lib/portal/portal.db"),
            "/var/lib/portal/portal.db"
        );
    }
}
