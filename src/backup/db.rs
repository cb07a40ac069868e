//! The product's database: resolving it from the configuration, checking it
//! can be backed up, dumping it and restoring it exactly.
//!
//! - SQLite: the online backup API (a consistent copy even while the product
//!   holds the database open in WAL mode), restored through a connection so
//!   that `-wal`/`-shm` files stay consistent.
//! - PostgreSQL: `pg_dump -Fc`, verified by `pg_restore --list` (a
//!   non-empty table of contents) and a full `pg_restore` read of the
//!   archive (output discarded; it needs no server). Restore drops every
//!   schema and object the connecting role owns (extension members aside),
//!   then replays `pg_restore --no-owner` through `psql`, all in ONE
//!   transaction opened before the drops and committed by the script's last
//!   line: a restore that fails anywhere (or is killed) leaves the database
//!   as it was. That was already atomic; it is kept.
//! - MySQL/MariaDB: `mariadb-dump` (or `mysqldump`) `--single-transaction
//!   --routines --triggers`, verified by `backup::sqldump` (the
//!   dump parses to its end). Restore is atomic for the tables: the dump is
//!   loaded into a fresh schema `<db>_upkeep_new_<id>` (the database's
//!   default character set and collation), and ONE `RENAME TABLE` moves
//!   every live table (also those only in the live database) to
//!   `<db>_upkeep_old_<id>` and every restored table into the database —
//!   MariaDB/MySQL rename all or none. Views cannot move between schemas
//!   and tables with triggers cannot either (errors 1450, 1435), so: the
//!   definitions of the restored views, routines and triggers are read in
//!   the new schema with `SHOW CREATE` (its own names come unqualified);
//!   the new schema's triggers are dropped; the live triggers (and any live
//!   view in the place of a restored table) are dropped in the same client
//!   run just before the swap and put back if it fails. After the swap the
//!   live views and routines are replaced by the dump's (views first as
//!   placeholders with their columns, as mariadb-dump does, so that views
//!   on views work) and the triggers created; then both temporary schemas
//!   are dropped. A failure before the swap drops the temporary schemas
//!   and leaves the live database as it was; a failure after it says that
//!   the tables were restored and keeps the old schema. Events are left
//!   alone (the dump has none). Objects are re-created under their
//!   `sql_mode` and collation, with utf8mb4 as the client character set.
//!   The user needs, besides its rights on the database, the right to
//!   create and drop the schemas `<db>_upkeep_*` (e.g. ``GRANT ALL ON
//!   `portal\_upkeep\_%`.* TO …``): the preflight creates and drops one
//!   and names the grant when it cannot.
//!
//! Passwords never appear on a command line: PostgreSQL tools read them from
//! a 0600 `PGPASSFILE` in a private 0700 temporary directory, MySQL tools from
//! a 0600 `--defaults-extra-file` there (the directory is removed afterwards).
//! No shell is involved; tool failures become one line (tool, exit status,
//! last error line of its stderr) with the password masked.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use rusqlite::{Connection, OpenFlags};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use super::{Artifact, Kind, one_line};
use crate::config::{Database, Secret};
use crate::confmerge::{MASK, Masker};
use crate::fsutil::durable::{Options, Pending, partial_path};

/// Default SQLite database of the portal when `ConnectionString` is empty.
pub const PORTAL_SQLITE_DEFAULT: &str = "/var/lib/portal/portal.db";

/// How long SQLite waits for a lock held by another connection.
const SQLITE_BUSY_WAIT: Duration = Duration::from_secs(30);

/// The product's database, resolved from the target's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Db {
    /// An SQLite database file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// How to connect.
        conn: Conn,
    },
    /// A MySQL or MariaDB database.
    Mysql {
        /// How to connect.
        conn: Conn,
    },
}

/// Connection parameters parsed from a connection string. `Debug`/`Display` never show the password.
///
/// For PostgreSQL, `socket` is the directory of the server's socket (libpq's
/// `host=/run/postgresql`); for MySQL it is the socket file itself.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Conn {
    /// Host name or IP address (without brackets for IPv6).
    pub host: Option<String>,
    /// TCP port (or, for PostgreSQL, the number in the socket's name).
    pub port: Option<u16>,
    /// Unix socket (PostgreSQL: its directory; MySQL: the socket file).
    pub socket: Option<PathBuf>,
    /// User name.
    pub user: Option<String>,
    password: Option<Secret>,
    /// Database name.
    pub dbname: String,
    /// Other parameters of the connection string, in order (such as
    /// `sslmode`); PostgreSQL's libpq parameters are passed on to the tools.
    pub params: Vec<(String, String)>,
}

impl Conn {
    /// The password, if the connection string has one.
    #[must_use]
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The same connection with another password (or none).
    #[must_use]
    pub fn with_password(mut self, password: Option<Secret>) -> Conn {
        self.password = password;
        self
    }

    /// Parses a PostgreSQL connection string: a URL
    /// `postgres://user:pass@host:port/db?sslmode=disable` (or
    /// `postgresql://`; user and password percent-decoded; `host=`, `port=`,
    /// `user=`, `password=`, `dbname=` also accepted as query parameters), or
    /// libpq key/value pairs `host=/run/postgresql user=portal password=x
    /// dbname=portal port=5432` (values may be single-quoted, with `\'` and
    /// `\\`). A host starting with `/` is a socket directory. Without a
    /// database name, the user name is used (as libpq does).
    ///
    /// # Errors
    ///
    /// A malformed string; the message never contains any part of it.
    pub fn parse_postgres(text: &str) -> anyhow::Result<Conn> {
        parse_postgres(text).map_err(|e| anyhow!("PostgreSQL connection string: {e}"))
    }

    /// Parses a MySQL connection string: a URL `mysql://user:pass@host:port/db`
    /// (or `mariadb://`; user and password percent-decoded; `?socket=PATH`
    /// accepted), or a Go driver DSN `user:pass@tcp(host:port)/db?parseTime=true`
    /// or `user:pass@unix(/run/mysqld/mysqld.sock)/db` (taken literally, as
    /// the Go driver does; TCP defaults to 127.0.0.1:3306).
    ///
    /// # Errors
    ///
    /// A malformed string; the message never contains any part of it.
    pub fn parse_mysql(text: &str) -> anyhow::Result<Conn> {
        parse_mysql(text).map_err(|e| anyhow!("MySQL connection string: {e}"))
    }

    fn password_text(&self) -> Option<&str> {
        self.password
            .as_ref()
            .map(Secret::expose)
            .filter(|p| !p.is_empty())
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Conn {
    /// `user@host:port/dbname`, `user@/socket:port/dbname`; never the
    /// password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (&self.socket, &self.host) {
            (Some(socket), _) => write!(f, "{}", socket.display())?,
            (None, Some(host)) if host.contains(':') => write!(f, "[{host}]")?,
            (None, Some(host)) => write!(f, "{host}")?,
            (None, None) => f.write_str("(default)")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "/{}", self.dbname)
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masker = Masker::portal_default();
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let secret = masker.is_secret_path(k);
                (k.as_str(), if secret { MASK } else { v.as_str() })
            })
            .collect();
        f.debug_struct("Conn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("dbname", &self.dbname)
            .field("params", &params)
            .finish()
    }
}

/// Resolves `config::Database`: None for `Database::None`; `Sqlite{path}`, `Postgres{url}`, `Mysql{url}` directly;
/// `PortalConf{config_file}` reads that JSON file's `Database.Dialect` ("sqlite3" | "postgres" | "mysql")
/// and `Database.ConnectionString` (sqlite3: a file path, default "/var/lib/portal/portal.db" when empty/absent).
/// Errors are one line, name the file/key, and never contain the password.
///
/// Keys of the JSON file are matched case-insensitively (as Go's
/// `encoding/json` does); a relative sqlite3 path is taken relative to the
/// file's directory. `PORTAL_DATABASE_*` environment variables of the
/// service are not seen.
///
/// # Errors
///
/// An unreadable or invalid file, a missing or unknown dialect, or a
/// malformed connection string.
pub fn resolve(database: &Database) -> anyhow::Result<Option<Db>> {
    match database {
        Database::None => Ok(None),
        Database::Sqlite { path } => Ok(Some(Db::Sqlite { path: path.clone() })),
        Database::Postgres { url } => parse_postgres(url.expose())
            .map(|conn| Some(Db::Postgres { conn }))
            .map_err(|e| anyhow!(one_line(&format!("database url (postgres): {e}")))),
        Database::Mysql { url } => parse_mysql(url.expose())
            .map(|conn| Some(Db::Mysql { conn }))
            .map_err(|e| anyhow!(one_line(&format!("database url (mysql): {e}")))),
        Database::PortalConf { config_file } => {
            let show = config_file.display();
            let bytes = fs::read(config_file).map_err(|e| anyhow!("{show}: cannot read: {e}"))?;
            // serde_json's syntax errors give a position, never the text.
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!(one_line(&format!("{show}: not valid JSON: {e}"))))?;
            portal_db(&value, config_file)
                .map(Some)
                .map_err(|e| anyhow!(one_line(&format!("{show}: {e}"))))
        }
    }
}

/// The database named by a portal.conf document (already parsed).
///
/// Without a `Database` section, or with an empty `Dialect`, the portal
/// uses SQLite (its 1.x default), and so does this.
fn portal_db(conf: &serde_json::Value, file: &Path) -> Result<Db, String> {
    let empty = serde_json::json!({});
    let database = match get_key(conf, "Database") {
        None | Some(serde_json::Value::Null) => &empty,
        Some(d) if d.is_object() => d,
        Some(_) => return Err("Database: must be an object".to_owned()),
    };
    let dialect = match get_key(database, "Dialect") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(serde_json::Value::String(_)) | None | Some(serde_json::Value::Null) => "sqlite3",
        Some(_) => return Err("Database.Dialect: must be a string".to_owned()),
    };
    let connection = match get_key(database, "ConnectionString") {
        Some(serde_json::Value::String(s)) => s.trim(),
        None | Some(serde_json::Value::Null) => "",
        // Never echo the value: it may hold a password.
        Some(_) => return Err("Database.ConnectionString: must be a string".to_owned()),
    };
    let key = "Database.ConnectionString";
    match dialect.to_ascii_lowercase().as_str() {
        "sqlite3" => {
            let path = sqlite_path(connection);
            let path = match file.parent() {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path,
            };
            Ok(Db::Sqlite { path })
        }
        "postgres" if connection.is_empty() => Err(format!("{key}: missing")),
        "postgres" => parse_postgres(connection)
            .map(|conn| Db::Postgres { conn })
            .map_err(|e| format!("{key}: {e}")),
        "mysql" if connection.is_empty() => Err(format!("{key}: missing")),
        "mysql" => parse_mysql(connection)
            .map(|conn| Db::Mysql { conn })
            .map_err(|e| format!("{key}: {e}")),
        other => Err(format!(
            "Database.Dialect: unknown dialect {other:?} (expected \"sqlite3\", \"postgres\" or \"mysql\")"
        )),
    }
}

/// A JSON object's member, matching the key exactly first, then ignoring
/// case.
fn get_key<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The file of a Go sqlite3 DSN: a path, or `file:PATH?options`.
fn sqlite_path(connection: &str) -> PathBuf {
    if connection.is_empty() {
        return PathBuf::from(PORTAL_SQLITE_DEFAULT);
    }
    let path = connection.strip_prefix("file:").unwrap_or(connection);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() {
        PathBuf::from(PORTAL_SQLITE_DEFAULT)
    } else {
        PathBuf::from(path)
    }
}

// ---------------------------------------------------------------------------
// Connection strings (pure)
// ---------------------------------------------------------------------------

/// Percent-decodes a URL part (an invalid `%` sequence stays as it is).
fn percent_decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| "not valid UTF-8 after percent-decoding".to_owned())
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("invalid port number".to_owned()),
    }
}

fn non_empty(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

/// Splits `host` into host or socket: a value starting with `/` is a socket.
fn set_host(conn: &mut Conn, host: String) {
    if host.starts_with('/') {
        conn.socket = Some(PathBuf::from(host));
        conn.host = None;
    } else {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map_or(host.clone(), str::to_owned);
        conn.host = non_empty(host);
        conn.socket = None;
    }
}

fn parse_postgres(text: &str) -> Result<Conn, String> {
    let text = text.trim();
    let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
    let mut conn = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        parse_pg_url(text)?
    } else if text.contains('=') {
        parse_pg_keyvalue(text)?
    } else {
        return Err(
            "expected a postgres:// URL or key=value pairs such as \"host=... dbname=...\""
                .to_owned(),
        );
    };
    if conn.dbname.is_empty() {
        conn.dbname = conn
            .user
            .clone()
            .ok_or("no database name (dbname) and no user")?;
    }
    Ok(conn)
}

/// What a `scheme://user:password@host:port/dbname` URL says, percent-decoded;
/// the URL is returned for its query parameters.
fn conn_from_url(text: &str) -> Result<(url::Url, Conn), String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL: {e}"))?;
    let mut conn = Conn {
        user: non_empty(percent_decode(url.username())?),
        password: url
            .password()
            .map(percent_decode)
            .transpose()?
            .map(Secret::new),
        port: url.port(),
        ..Conn::default()
    };
    if let Some(host) = url.host_str() {
        set_host(&mut conn, percent_decode(host)?);
    }
    conn.dbname = percent_decode(url.path().trim_start_matches('/'))?;
    Ok((url, conn))
}

fn parse_pg_url(text: &str) -> Result<Conn, String> {
    let (url, mut conn) = conn_from_url(text)?;
    for (key, value) in url.query_pairs() {
        pg_param(&mut conn, &key, value.into_owned())?;
    }
    Ok(conn)
}

/// Applies one libpq parameter (from a URL query or key/value pair).
fn pg_param(conn: &mut Conn, key: &str, value: String) -> Result<(), String> {
    match key {
        "host" => set_host(conn, value),
        "port" if value.is_empty() => conn.port = None,
        "port" => conn.port = Some(parse_port(&value)?),
        "user" => conn.user = non_empty(value),
        "password" => conn.password = Some(Secret::new(value)),
        "dbname" => conn.dbname = value,
        _ => conn.params.push((key.to_owned(), value)),
    }
    Ok(())
}

/// libpq's `key=value` form: pairs separated by whitespace, optional
/// whitespace around `=`, values single-quoted or bare, `\` escaping the next
/// character in both.
fn parse_pg_keyvalue(text: &str) -> Result<Conn, String> {
    let mut conn = Conn::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after {key:?}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value for {key:?}")),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quoted value for {key:?}")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pg_param(&mut conn, &key, value)?;
    }
    Ok(conn)
}

fn parse_mysql(text: &str) -> Result<Conn, String> {
    let text = text.trim();
    let lower = text.get(..10).unwrap_or(text).to_ascii_lowercase();
    let conn = if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        parse_mysql_url(text)?
    } else {
        parse_go_dsn(text)?
    };
    if conn.dbname.is_empty() {
        return Err("no database name".to_owned());
    }
    Ok(conn)
}

fn parse_mysql_url(text: &str) -> Result<Conn, String> {
    let (url, mut conn) = conn_from_url(text)?;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "socket" => {
                conn.socket = Some(PathBuf::from(value.into_owned()));
                conn.host = None;
            }
            _ => conn.params.push((key.into_owned(), value.into_owned())),
        }
    }
    Ok(conn)
}

/// The Go MySQL driver's DSN, split the way the driver does it:
/// `[user[:password]@][net[(addr)]]/dbname[?params]`, with the LAST `/`
/// before the database name, the last `@` before it, and the first `:` of
/// the user part.
fn parse_go_dsn(text: &str) -> Result<Conn, String> {
    let slash = text.rfind('/').ok_or(
        "expected user:password@tcp(host:port)/dbname (no \"/\" before the database name)",
    )?;
    let (left, right) = (&text[..slash], &text[slash + 1..]);
    let mut conn = Conn::default();
    let (userinfo, address) = match left.rfind('@') {
        Some(at) => (Some(&left[..at]), &left[at + 1..]),
        None => (None, left),
    };
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, password)) => {
                conn.user = non_empty(user.to_owned());
                conn.password = Some(Secret::new(password));
            }
            None => conn.user = non_empty(userinfo.to_owned()),
        }
    }
    let (net, addr) = match address.find('(') {
        Some(open) => {
            let addr = address[open + 1..]
                .strip_suffix(')')
                .ok_or("the address must be enclosed in parentheses, as in tcp(host:port)")?;
            (&address[..open], addr)
        }
        None => (address, ""),
    };
    match net {
        "" | "tcp" | "tcp4" | "tcp6" => {
            let addr = if addr.is_empty() {
                "127.0.0.1:3306"
            } else {
                addr
            };
            let (host, port) = split_host_port(addr)?;
            conn.host = Some(host);
            conn.port = Some(port.unwrap_or(3306));
        }
        "unix" => {
            let addr = if addr.is_empty() {
                "/tmp/mysql.sock"
            } else {
                addr
            };
            conn.socket = Some(PathBuf::from(addr));
        }
        _ => return Err("unsupported network (expected tcp or unix)".to_owned()),
    }
    let (dbname, query) = right.split_once('?').unwrap_or((right, ""));
    conn.dbname = dbname.to_owned();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        conn.params
            .push((percent_decode(key)?, percent_decode(value)?));
    }
    Ok(conn)
}

/// `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(addr: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("invalid IPv6 address")?;
        return match after {
            "" => Ok((host.to_owned(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_owned(), Some(parse_port(port)?))),
                None => Err("invalid address".to_owned()),
            },
        };
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Ok((addr.to_owned(), None)),
        Some((host, port)) => Ok((host.to_owned(), Some(parse_port(port)?))),
        None => Ok((addr.to_owned(), None)),
    }
}

// ---------------------------------------------------------------------------
// Running tools
// ---------------------------------------------------------------------------

/// A program found in `PATH`.
#[derive(Debug, Clone)]
pub(super) struct Tool {
    /// The name it is reported under.
    pub(super) name: &'static str,
    /// Where it is.
    pub(super) path: PathBuf,
}

/// Looks for the first of `names` in `PATH`; the error names the package
/// that provides it.
pub(super) fn find_tool(names: &[&'static str], package: &str) -> anyhow::Result<Tool> {
    let path_var =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for name in names {
        if let Some(path) = search_path(&path_var, name) {
            return Ok(Tool { name, path });
        }
    }
    bail!(
        "{} not found in PATH; install the {package} package",
        names.join(" or ")
    )
}

/// The first executable regular file `name` in the directories of
/// `path_var`.
fn search_path(path_var: &OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A new command for `tool`: no stdin, stdout discarded, stderr captured,
/// killed if the caller gives up on it.
fn command(tool: &Tool) -> Command {
    let mut cmd = Command::new(&tool.path);
    // Its own process group: a Ctrl-C on the terminal reaches upkeep (which
    // defers it to the end of the step), never a dump or restore halfway.
    cmd.kill_on_drop(true)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The line of a tool's stderr worth showing: the last one that mentions an
/// error (psql follows its error with the offending line and a caret), else
/// the last non-empty one.
fn last_error_line(stderr: &str) -> Option<&str> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("error") || lower.contains("fatal")
        })
        .or_else(|| lines.last())
        .copied()
}

/// One line: `TOOL failed (exit status: N): LAST ERROR LINE`, masked by
/// the one mask ([`Masker::mask_text`]): the password the tool was given
/// (however short, and its encoded forms) and any password the line shows
/// in a connection string, a URL or a `password=` pair.
pub(super) fn failure_message(
    tool: &str,
    status: &str,
    stderr: &[u8],
    secrets: &[String],
) -> String {
    let masker = Masker::portal_default().with_every_known_secret();
    let known: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let stderr = masker.mask_text(&String::from_utf8_lossy(stderr), &known);
    let detail = last_error_line(&stderr).unwrap_or("no error output");
    one_line(&masker.mask_text(&format!("{tool} failed ({status}): {detail}"), &known))
}

fn check_status(
    tool: &str,
    status: ExitStatus,
    stderr: &[u8],
    secrets: &[String],
) -> anyhow::Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!(failure_message(
            tool,
            &status.to_string(),
            stderr,
            secrets
        )))
    }
}

/// Runs a prepared command to completion; returns its stdout (if piped).
async fn run(mut cmd: Command, tool: &Tool, secrets: &[String]) -> anyhow::Result<Vec<u8>> {
    let child = cmd
        .spawn()
        .map_err(|e| anyhow!("cannot run {}: {e}", tool.path.display()))?;
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| anyhow!("{}: {e}", tool.name))?;
    check_status(tool.name, output.status, &output.stderr, secrets)?;
    Ok(output.stdout)
}

/// Counter for unique private directory names within this process.
static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A 0700 directory under the temporary directory, removed on drop; holds
/// the credential files given to the tools.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn new() -> io::Result<PrivateDir> {
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..100 {
            let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!(
                "upkeep-cred-{}-{nanos:08x}-{n}",
                std::process::id()
            ));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "cannot find a free name for a temporary directory",
        ))
    }

    /// Writes a 0600 file (mode set at creation).
    fn write_secret(&self, name: &str, content: &str) -> io::Result<PathBuf> {
        let path = self.path.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(content.as_bytes())?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn private_dir() -> anyhow::Result<PrivateDir> {
    PrivateDir::new().map_err(|e| {
        anyhow!(
            "cannot create a private temporary directory in {}: {e}",
            std::env::temp_dir().display()
        )
    })
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/// libpq parameters passed on to the tools, and their environment variables.
const PG_PARAM_ENV: &[(&str, &str)] = &[
    ("hostaddr", "PGHOSTADDR"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcrl", "PGSSLCRL"),
    ("sslcompression", "PGSSLCOMPRESSION"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("gssencmode", "PGGSSENCMODE"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("krbsrvname", "PGKRBSRVNAME"),
];

/// How long a PostgreSQL tool waits for the server to accept a connection,
/// unless the connection string says otherwise.
const PG_CONNECT_TIMEOUT: &str = "10";

/// The `PGPASSFILE` line for `password`, valid for any host, port, database
/// and user (the file is ours alone and lives only for one run).
fn pgpass_line(password: &str) -> Option<String> {
    if password.contains(['\n', '\r']) {
        return None;
    }
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    Some(format!("*:*:*:*:{escaped}\n"))
}

/// The environment for a PostgreSQL tool (every other `PG*` variable of our
/// own environment is removed, so the connection string alone decides).
fn pg_env(conn: &Conn, passfile: Option<&Path>) -> Vec<(&'static str, OsString)> {
    let mut env: Vec<(&'static str, OsString)> = Vec::new();
    if let Some(socket) = &conn.socket {
        env.push(("PGHOST", socket.as_os_str().to_owned()));
    } else if let Some(host) = &conn.host {
        env.push(("PGHOST", host.into()));
    }
    if let Some(port) = conn.port {
        env.push(("PGPORT", port.to_string().into()));
    }
    if let Some(user) = &conn.user {
        env.push(("PGUSER", user.into()));
    }
    env.push(("PGDATABASE", conn.dbname.as_str().into()));
    if let Some(passfile) = passfile {
        env.push(("PGPASSFILE", passfile.as_os_str().to_owned()));
    }
    for (param, var) in PG_PARAM_ENV {
        if let Some(value) = conn.param(param) {
            env.push((var, value.into()));
        }
    }
    if conn.param("connect_timeout").is_none() {
        env.push(("PGCONNECT_TIMEOUT", PG_CONNECT_TIMEOUT.into()));
    }
    if conn.param("application_name").is_none() {
        env.push(("PGAPPNAME", "upkeep".into()));
    }
    env
}

/// Credentials and environment for PostgreSQL tools; the passfile goes away
/// with it.
pub(super) struct PgSession {
    _dir: Option<PrivateDir>,
    env: Vec<(&'static str, OsString)>,
    /// The password (if any), for masking the tools' errors.
    pub(super) secrets: Vec<String>,
}

impl PgSession {
    pub(super) fn new(conn: &Conn) -> anyhow::Result<PgSession> {
        let secrets: Vec<String> = conn
            .password_text()
            .map(str::to_owned)
            .into_iter()
            .collect();
        let Some(password) = conn.password_text() else {
            return Ok(PgSession {
                _dir: None,
                env: pg_env(conn, None),
                secrets,
            });
        };
        match pgpass_line(password) {
            Some(line) => {
                let dir = private_dir()?;
                let passfile = dir
                    .write_secret("pgpass", &line)
                    .map_err(|e| anyhow!("cannot write a PGPASSFILE: {e}"))?;
                Ok(PgSession {
                    env: pg_env(conn, Some(&passfile)),
                    _dir: Some(dir),
                    secrets,
                })
            }
            None => {
                // A line break cannot be written in a passfile; the
                // environment is readable only by this user and root.
                let mut env = pg_env(conn, None);
                env.push(("PGPASSWORD", password.into()));
                Ok(PgSession {
                    _dir: None,
                    env,
                    secrets,
                })
            }
        }
    }

    pub(super) fn command(&self, tool: &Tool) -> Command {
        let mut cmd = command(tool);
        for (name, _) in std::env::vars_os() {
            if name.as_bytes().starts_with(b"PG") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// Drops, in the current transaction, every schema and every relation,
/// routine and type that the connecting role may drop (owned by it or a role
/// it belongs to), except `public` itself, system schemas and extension
/// members. Each loop looks again after every drop, as `CASCADE` may have
/// taken other objects with it.
const PG_DROP_ALL: &str = r"
DO $upkeep$
DECLARE
  stmt text;
BEGIN
  LOOP
    SELECT format('DROP SCHEMA %I CASCADE', n.nspname) INTO stmt
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname <> 'public' AND n.nspname <> 'information_schema'
       AND n.nspname !~ '^pg_'
       AND pg_catalog.pg_has_role(n.nspowner, 'USAGE')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                          AND d.objid = n.oid AND d.deptype IN ('e', 'i'))
     LIMIT 1;
    EXIT WHEN stmt IS NULL;
    EXECUTE stmt;
  END LOOP;
  LOOP
    SELECT format('DROP %s %s CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                 ELSE 'TABLE' END,
                  c.oid::pg_catalog.regclass) INTO stmt
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                          AND d.objid = c.oid AND d.deptype IN ('e', 'i'))
     LIMIT 1;
    EXIT WHEN stmt IS NULL;
    EXECUTE stmt;
  END LOOP;
  LOOP
    SELECT format('DROP %s %s CASCADE',
                  CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE'
                                 ELSE 'FUNCTION' END,
                  p.oid::pg_catalog.regprocedure) INTO stmt
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND pg_catalog.pg_has_role(p.proowner, 'USAGE')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND d.objid = p.oid AND d.deptype IN ('e', 'i'))
     LIMIT 1;
    EXIT WHEN stmt IS NULL;
    EXECUTE stmt;
  END LOOP;
  LOOP
    SELECT format('DROP %s %s CASCADE',
                  CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                  t.oid::pg_catalog.regtype) INTO stmt
      FROM pg_catalog.pg_type t
      JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     WHERE (t.typtype IN ('e', 'd', 'r')
            OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                            WHERE c.oid = t.typrelid AND c.relkind = 'c')))
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND pg_catalog.pg_has_role(t.typowner, 'USAGE')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                          AND d.objid = t.oid AND d.deptype IN ('e', 'i'))
     LIMIT 1;
    EXIT WHEN stmt IS NULL;
    EXECUTE stmt;
  END LOOP;
END
$upkeep$;
";

/// What `psql` reads before the script of `pg_restore --single-transaction`:
/// the transaction is opened here, so the drops and the whole restore commit
/// together at the script's final `COMMIT` — or not at all (a script cut
/// short never reaches it, and the open transaction is rolled back when
/// psql exits). The script's own `BEGIN` then only warns, silenced here.
fn pg_restore_prelude() -> String {
    format!("SET client_min_messages = error;\nBEGIN;\n{PG_DROP_ALL}\n")
}

/// Runs `pg_restore` with `args` on a dump (no connection: it only reads
/// the file), blocking; returns its stdout, or one line with its own reason.
fn pg_restore_read(
    tool: &Tool,
    what: &str,
    args: &[&str],
    dump: &Path,
    stdout: Stdio,
) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(&tool.path);
    cmd.process_group(0)
        .args(args)
        .arg(dump)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    // Only the file decides: no service file or connection variables.
    for (name, _) in std::env::vars_os() {
        if name.as_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| anyhow!("cannot run {}: {e}", tool.path.display()))?;
    check_status(what, out.status, &out.stderr, &[])?;
    Ok(out.stdout)
}

/// The entries of a `pg_restore --list` table of contents (lines that are
/// neither comments nor blank).
fn pg_toc_entries(listing: &str) -> usize {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .count()
}

/// Verifies a `pg_dump -Fc` archive with PostgreSQL's own reader:
/// `pg_restore --list` must succeed and list at least one entry, then
/// `pg_restore --file=-` (output discarded) must read every data block
/// through (a dump cut short fails there, since the table of contents at
/// its start is complete). Used by [`Artifact::verify`].
pub(super) fn check_pg_dump(path: &Path) -> anyhow::Result<()> {
    let tool = find_tool(&["pg_restore"], "postgresql-client")?;
    let listing = pg_restore_read(
        &tool,
        "pg_restore --list",
        &["--list"],
        path,
        Stdio::piped(),
    )?;
    if pg_toc_entries(&String::from_utf8_lossy(&listing)) == 0 {
        bail!("pg_restore --list: the dump's table of contents is empty");
    }
    // The script goes nowhere: only whether it can be read through counts.
    pg_restore_read(&tool, "pg_restore", &["--file=-"], path, Stdio::null()).map(drop)
}

async fn pg_preflight(conn: &Conn) -> anyhow::Result<()> {
    let _ = find_tool(&["pg_dump"], "postgresql-client")?;
    let _ = find_tool(&["pg_restore"], "postgresql-client")?;
    let psql = find_tool(&["psql"], "postgresql-client")?;
    let session = PgSession::new(conn)?;
    let mut cmd = session.command(&psql);
    cmd.args(["-X", "-w", "-q", "-A", "-t", "--command=SELECT 1"])
        .stdout(Stdio::piped());
    let out = run(cmd, &psql, &session.secrets).await?;
    if String::from_utf8_lossy(&out).trim() != "1" {
        bail!("psql: unexpected answer to SELECT 1");
    }
    Ok(())
}

/// `pg_dump -Fc` into the pending backup (synced by [`Db::dump`]).
async fn pg_dump(conn: &Conn, partial: &Pending) -> anyhow::Result<()> {
    let tool = find_tool(&["pg_dump"], "postgresql-client")?;
    let session = PgSession::new(conn)?;
    let out = partial
        .file()
        .try_clone()
        .map_err(|e| anyhow!("{}: {e}", partial.path().display()))?;
    let mut cmd = session.command(&tool);
    cmd.args(["-w", "-Fc"]).stdout(out);
    run(cmd, &tool, &session.secrets).await?;
    Ok(())
}

async fn pg_restore(conn: &Conn, dump: &Path) -> anyhow::Result<()> {
    let restore_tool = find_tool(&["pg_restore"], "postgresql-client")?;
    let psql = find_tool(&["psql"], "postgresql-client")?;
    let session = PgSession::new(conn)?;

    let mut script = session.command(&restore_tool);
    script
        .args(["--single-transaction", "--no-owner", "-f", "-"])
        .arg(dump)
        .stdout(Stdio::piped());
    let mut script = script
        .spawn()
        .map_err(|e| anyhow!("cannot run {}: {e}", restore_tool.path.display()))?;
    let mut apply = session.command(&psql);
    apply
        .args(["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .stdin(Stdio::piped());
    let mut apply = apply
        .spawn()
        .map_err(|e| anyhow!("cannot run {}: {e}", psql.path.display()))?;

    let (Some(mut from), Some(mut to)) = (script.stdout.take(), apply.stdin.take()) else {
        bail!("cannot connect pg_restore to psql");
    };
    let feed = async move {
        to.write_all(pg_restore_prelude().as_bytes()).await?;
        tokio::io::copy(&mut from, &mut to).await?;
        to.shutdown().await
    };
    let (fed, script_out, apply_out) =
        tokio::join!(feed, script.wait_with_output(), apply.wait_with_output());
    let script_out = script_out.map_err(|e| anyhow!("pg_restore: {e}"))?;
    let apply_out = apply_out.map_err(|e| anyhow!("psql: {e}"))?;
    // When psql fails, pg_restore dies writing to it (SIGPIPE): psql's error
    // is the one that tells. When pg_restore fails on its own, psql saw no
    // COMMIT and rolled back: pg_restore's error tells.
    let broken_pipe = script_out.status.signal() == Some(nix::sys::signal::Signal::SIGPIPE as i32)
        || String::from_utf8_lossy(&script_out.stderr).contains("Broken pipe");
    if !apply_out.status.success() && (script_out.status.success() || broken_pipe) {
        check_status(
            psql.name,
            apply_out.status,
            &apply_out.stderr,
            &session.secrets,
        )?;
    }
    check_status(
        restore_tool.name,
        script_out.status,
        &script_out.stderr,
        &session.secrets,
    )?;
    check_status(
        psql.name,
        apply_out.status,
        &apply_out.stderr,
        &session.secrets,
    )?;
    if let Err(e) = fed {
        bail!("cannot feed pg_restore's output to psql: {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// MySQL / MariaDB
// ---------------------------------------------------------------------------

/// The `[client]` option file holding the password (MySQL option-file
/// quoting: double quotes, with `\\`, `\"`, `\n`, `\r`, `\t` escapes).
fn mysql_option_file(password: &str) -> String {
    let mut value = String::with_capacity(password.len() + 2);
    for c in password.chars() {
        match c {
            '\\' => value.push_str("\\\\"),
            '"' => value.push_str("\\\""),
            '\n' => value.push_str("\\n"),
            '\r' => value.push_str("\\r"),
            '\t' => value.push_str("\\t"),
            c => value.push(c),
        }
    }
    format!("[client]\npassword=\"{value}\"\n")
}

/// Connection options (none secret) for the MySQL tools.
fn mysql_conn_args(conn: &Conn) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(socket) = &conn.socket {
        args.push("--protocol=SOCKET".into());
        let mut arg = OsString::from("--socket=");
        arg.push(socket);
        args.push(arg);
    } else {
        args.push("--protocol=TCP".into());
        args.push(format!("--host={}", conn.host.as_deref().unwrap_or("127.0.0.1")).into());
        args.push(format!("--port={}", conn.port.unwrap_or(3306)).into());
    }
    if let Some(user) = &conn.user {
        args.push(format!("--user={user}").into());
    }
    args
}

/// `MYSQL_*` variables that would add to or change the connection.
const MYSQL_ENV_REMOVE: &[&str] = &[
    "MYSQL_PWD",
    "MYSQL_HOST",
    "MYSQL_TCP_PORT",
    "MYSQL_UNIX_PORT",
    "MYSQL_TEST_LOGIN_FILE",
];

/// The option file and arguments for MySQL tools; the file goes away with
/// it.
pub(super) struct MySession {
    dir: Option<PrivateDir>,
    extra_file: Option<PathBuf>,
    conn_args: Vec<OsString>,
    /// The password (if any), for masking the tools' errors.
    pub(super) secrets: Vec<String>,
}

impl MySession {
    pub(super) fn new(conn: &Conn) -> anyhow::Result<MySession> {
        let mut session = MySession {
            dir: None,
            extra_file: None,
            conn_args: mysql_conn_args(conn),
            secrets: conn
                .password_text()
                .map(str::to_owned)
                .into_iter()
                .collect(),
        };
        if let Some(password) = conn.password_text() {
            let dir = private_dir()?;
            let file = dir
                .write_secret("my.cnf", &mysql_option_file(password))
                .map_err(|e| anyhow!("cannot write a MySQL option file: {e}"))?;
            session.extra_file = Some(file);
            session.dir = Some(dir);
        }
        Ok(session)
    }

    pub(super) fn command(&self, tool: &Tool) -> Command {
        let mut cmd = command(tool);
        if let (Some(file), Some(dir)) = (&self.extra_file, &self.dir) {
            // Must be the first argument.
            let mut arg = OsString::from("--defaults-extra-file=");
            arg.push(file);
            cmd.arg(arg);
            // ~/.my.cnf is read after the extra file and would override the
            // password: point HOME at the private directory.
            cmd.env("HOME", &dir.path);
        }
        for var in MYSQL_ENV_REMOVE {
            cmd.env_remove(var);
        }
        cmd.args(&self.conn_args);
        cmd
    }
}

fn mysql_dump_tool() -> anyhow::Result<Tool> {
    find_tool(
        &["mariadb-dump", "mysqldump"],
        "mariadb-client (or mysql-client)",
    )
}

pub(super) fn mysql_client_tool() -> anyhow::Result<Tool> {
    find_tool(&["mariadb", "mysql"], "mariadb-client (or mysql-client)")
}

async fn mysql_preflight(conn: &Conn) -> anyhow::Result<()> {
    let _ = mysql_dump_tool()?;
    mysql_restore_schemas(&conn.dbname)?;
    let client = mysql_client_tool()?;
    let session = MySession::new(conn)?;
    let mut cmd = session.command(&client);
    cmd.args(["--batch", "--skip-column-names", "--execute=SELECT 1"])
        .arg(format!("--database={}", conn.dbname))
        .stdout(Stdio::piped());
    let out = run(cmd, &client, &session.secrets).await?;
    if String::from_utf8_lossy(&out).trim() != "1" {
        bail!("{}: unexpected answer to SELECT 1", client.name);
    }
    mysql_check_restore_privilege(&MyClient::new(conn)?, conn).await
}

/// `mariadb-dump` into the pending backup (synced by [`Db::dump`]).
async fn mysql_dump(conn: &Conn, partial: &Pending) -> anyhow::Result<()> {
    let tool = mysql_dump_tool()?;
    let session = MySession::new(conn)?;
    let out = partial
        .file()
        .try_clone()
        .map_err(|e| anyhow!("{}: {e}", partial.path().display()))?;
    let mut cmd = session.command(&tool);
    cmd.args([
        "--single-transaction",
        "--routines",
        "--triggers",
        "--hex-blob",
        "--no-tablespaces",
        "--default-character-set=utf8mb4",
        "--",
        &conn.dbname,
    ])
    .stdout(out);
    run(cmd, &tool, &session.secrets).await?;
    Ok(())
}

/// Lists the tables, views, sequences, routines and triggers of the
/// current database (triggers in their firing order).
const MYSQL_LIST_OBJECTS: &str = "SELECT TABLE_TYPE, TABLE_NAME FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = DATABASE(); \
     SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES \
     WHERE ROUTINE_SCHEMA = DATABASE(); \
     SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER";

/// The current database's default character set and collation.
const MYSQL_SCHEMA_CHARSET: &str = "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
     FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()";

/// The columns of the current database's views, for placeholder views.
const MYSQL_VIEW_COLUMNS: &str = "SELECT c.TABLE_NAME, c.COLUMN_NAME \
     FROM information_schema.COLUMNS c JOIN information_schema.VIEWS v \
       ON v.TABLE_SCHEMA = c.TABLE_SCHEMA AND v.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA = DATABASE() ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION";

/// Undoes the escapes of the client's batch output (`\t`, `\n`, `\\`, `\0`).
fn unescape_batch(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits the client's batch output into rows of unescaped fields.
fn batch_rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| line.split('\t').map(unescape_batch).collect())
        .collect()
}

/// Parses `TYPE<TAB>NAME` lines of the object listing.
fn parse_object_list(output: &str) -> Result<Vec<(String, String)>, String> {
    batch_rows(output)
        .into_iter()
        .map(|row| match <[String; 2]>::try_from(row) {
            Ok([kind, name]) => Ok((kind, name)),
            Err(_) => Err("unexpected output while listing the database's objects".to_owned()),
        })
        .collect()
}

/// A schema's objects, by what the restore does with them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Objects {
    /// Base tables, system-versioned tables and sequences: they hold the
    /// data and move by `RENAME TABLE`.
    tables: Vec<String>,
    /// Views (MariaDB cannot move them to another schema).
    views: Vec<String>,
    /// `(PROCEDURE|FUNCTION, name)`.
    routines: Vec<(String, String)>,
    /// Triggers, in firing order (a table with triggers cannot move to
    /// another schema).
    triggers: Vec<String>,
}

impl Objects {
    fn from_listing(objects: Vec<(String, String)>) -> Objects {
        let mut out = Objects::default();
        for (kind, name) in objects {
            match kind.as_str() {
                "BASE TABLE" | "SYSTEM VERSIONED" | "SEQUENCE" => out.tables.push(name),
                "VIEW" => out.views.push(name),
                "PROCEDURE" | "FUNCTION" => out.routines.push((kind, name)),
                "TRIGGER" => out.triggers.push(name),
                _ => {}
            }
        }
        out
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The ONE statement that swaps the restored tables in: every live table
/// to `old`, every restored table from `new` into `live`. MariaDB renames
/// all of them or none.
fn mysql_swap_sql(
    live: &str,
    new: &str,
    old: &str,
    live_tables: &[String],
    new_tables: &[String],
) -> Option<String> {
    let moves: Vec<String> = live_tables
        .iter()
        .map(|t| {
            format!(
                "{}.{} TO {}.{}",
                quote_ident(live),
                quote_ident(t),
                quote_ident(old),
                quote_ident(t)
            )
        })
        .chain(new_tables.iter().map(|t| {
            format!(
                "{}.{} TO {}.{}",
                quote_ident(new),
                quote_ident(t),
                quote_ident(live),
                quote_ident(t)
            )
        }))
        .collect();
    if moves.is_empty() {
        None
    } else {
        Some(format!("RENAME TABLE {}", moves.join(", ")))
    }
}

/// Seconds the swap waits for a table lock held by another session.
const MYSQL_SWAP_LOCK_WAIT: u32 = 60;

/// The delimiter of the scripts that create triggers, routines and views
/// (their bodies may hold `;`).
const MYSQL_SCRIPT_DELIMITER: &str = "$$upkeep$$";

/// A view, trigger or routine as `SHOW CREATE` gives it, with the
/// `sql_mode` and collation it was created under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Definition {
    statement: String,
    sql_mode: Option<String>,
    collation: String,
}

impl Definition {
    /// From one row of `SHOW CREATE VIEW` (`View, Create View, cs, coll`),
    /// `SHOW CREATE TRIGGER` (`Trigger, sql_mode, statement, cs, coll, …`)
    /// or `SHOW CREATE PROCEDURE|FUNCTION` (`Name, sql_mode, statement, cs,
    /// coll, …`).
    fn from_row(view: bool, row: &[String]) -> Option<Definition> {
        if view {
            match row {
                [_, statement, _, collation, ..] => Some(Definition {
                    statement: statement.clone(),
                    sql_mode: None,
                    collation: collation.clone(),
                }),
                _ => None,
            }
        } else {
            match row {
                [_, sql_mode, statement, _, collation, ..] if statement != "NULL" => {
                    Some(Definition {
                        statement: statement.clone(),
                        sql_mode: Some(sql_mode.clone()),
                        collation: collation.clone(),
                    })
                }
                _ => None,
            }
        }
    }

    /// The statement(s) that create it again, ended by
    /// [`MYSQL_SCRIPT_DELIMITER`].
    fn script(&self) -> anyhow::Result<String> {
        if self.statement.contains(MYSQL_SCRIPT_DELIMITER) {
            bail!("a definition holds {MYSQL_SCRIPT_DELIMITER}; cannot replay it");
        }
        let d = MYSQL_SCRIPT_DELIMITER;
        let mut out = String::new();
        if let Some(mode) = &self.sql_mode {
            out.push_str(&format!(
                "SET SESSION sql_mode = {}{d}\n",
                quote_string(mode)
            ));
        }
        out.push_str(&format!(
            "SET collation_connection = {}{d}\n{}\n{d}\nSET SESSION sql_mode = @upkeep_sql_mode{d}\nSET NAMES utf8mb4{d}\n",
            quote_string(&self.collation),
            self.statement
        ));
        Ok(out)
    }
}

/// A script for the client: `body` between `DELIMITER` lines, with foreign
/// key checks off and the session's sql_mode kept to come back to.
fn mysql_script(body: &str) -> String {
    let d = MYSQL_SCRIPT_DELIMITER;
    format!(
        "SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS = 0;\nSET @upkeep_sql_mode = @@SESSION.sql_mode;\nDELIMITER {d}\n{body}DELIMITER ;\n"
    )
}

/// A placeholder view with `columns`, so that views using it can be
/// created before its real definition (as mariadb-dump does).
fn placeholder_view(name: &str, columns: &[String]) -> String {
    let columns: Vec<String> = if columns.is_empty() {
        vec!["1 AS `upkeep_placeholder`".to_owned()]
    } else {
        columns
            .iter()
            .map(|c| format!("NULL AS {}", quote_ident(c)))
            .collect()
    };
    format!(
        "CREATE OR REPLACE VIEW {} AS SELECT {}{MYSQL_SCRIPT_DELIMITER}\n",
        quote_ident(name),
        columns.join(", ")
    )
}

/// The names of the two schemas of one restore: `<db>_upkeep_new_<id>`
/// (the dump is loaded there) and `<db>_upkeep_old_<id>` (the replaced
/// tables go there, and are dropped once the swap is done).
fn mysql_restore_schemas(dbname: &str) -> anyhow::Result<(String, String)> {
    let id = unique_suffix();
    let new = format!("{dbname}_upkeep_new_{id}");
    let old = format!("{dbname}_upkeep_old_{id}");
    check_schema_name(&old)?;
    Ok((new, old))
}

/// MySQL's limit on schema names.
const MYSQL_MAX_SCHEMA_NAME: usize = 64;

fn check_schema_name(name: &str) -> anyhow::Result<()> {
    if name.chars().count() > MYSQL_MAX_SCHEMA_NAME {
        bail!(
            "the database name is too long for the schemas an atomic restore needs \
             (<name>_upkeep_old_<8 hex digits> must fit in {MYSQL_MAX_SCHEMA_NAME} characters)"
        );
    }
    Ok(())
}

/// Eight hex digits, different for each call in this process and unlikely
/// to repeat across processes.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = u64::from(nanos) ^ (u64::from(std::process::id()) << 12) ^ (n << 40);
    format!("{:08x}", (mixed ^ (mixed >> 32)) & 0xffff_ffff)
}

/// The client and session of one restore, with helpers to run SQL.
struct MyClient {
    tool: Tool,
    session: MySession,
}

impl MyClient {
    fn new(conn: &Conn) -> anyhow::Result<MyClient> {
        Ok(MyClient {
            tool: mysql_client_tool()?,
            session: MySession::new(conn)?,
        })
    }

    fn base(&self, database: Option<&str>) -> Command {
        let mut cmd = self.session.command(&self.tool);
        cmd.args(["--batch", "--default-character-set=utf8mb4"]);
        if let Some(db) = database {
            cmd.arg(format!("--database={db}"));
        }
        cmd
    }

    /// Runs `sql`; returns the batch output without column names.
    async fn query(&self, database: Option<&str>, sql: &str) -> anyhow::Result<String> {
        let mut cmd = self.base(database);
        cmd.arg("--skip-column-names")
            .arg(format!("--execute={sql}"))
            .stdout(Stdio::piped());
        let out = run(cmd, &self.tool, &self.session.secrets).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Feeds `script`, then the file `then` (if any), to the client.
    async fn feed(
        &self,
        database: &str,
        script: String,
        then: Option<&Path>,
    ) -> anyhow::Result<()> {
        let mut cmd = self.base(Some(database));
        cmd.stdin(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot run {}: {e}", self.tool.path.display()))?;
        let Some(mut to) = child.stdin.take() else {
            bail!("cannot write to {}", self.tool.name);
        };
        let then = then.map(Path::to_path_buf);
        let feed = async move {
            to.write_all(script.as_bytes()).await?;
            if let Some(path) = then {
                let mut from = tokio::fs::File::open(&path).await?;
                tokio::io::copy(&mut from, &mut to).await?;
            }
            to.shutdown().await
        };
        let (fed, out) = tokio::join!(feed, child.wait_with_output());
        let out = out.map_err(|e| anyhow!("{}: {e}", self.tool.name))?;
        check_status(
            self.tool.name,
            out.status,
            &out.stderr,
            &self.session.secrets,
        )?;
        if let Err(e) = fed {
            bail!("cannot feed {}: {e}", self.tool.name);
        }
        Ok(())
    }

    async fn objects(&self, database: &str) -> anyhow::Result<Objects> {
        let listing = self.query(Some(database), MYSQL_LIST_OBJECTS).await?;
        let objects =
            parse_object_list(&listing).map_err(|e| anyhow!("{}: {e}", self.tool.name))?;
        Ok(Objects::from_listing(objects))
    }

    /// `SHOW CREATE <kind>` of each name, in `database` (so names in it are
    /// not qualified: they resolve wherever the definition is replayed).
    async fn definitions(
        &self,
        database: &str,
        kind: &str,
        names: &[String],
    ) -> anyhow::Result<Vec<Definition>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql: Vec<String> = names
            .iter()
            .map(|n| format!("SHOW CREATE {kind} {}", quote_ident(n)))
            .collect();
        let out = self.query(Some(database), &sql.join("; ")).await?;
        let rows = batch_rows(&out);
        if rows.len() != names.len() {
            bail!(
                "{}: unexpected answer to SHOW CREATE {kind}",
                self.tool.name
            );
        }
        rows.iter()
            .map(|row| {
                Definition::from_row(kind == "VIEW", row).ok_or_else(|| {
                    anyhow!(
                        "{}: SHOW CREATE {kind} gave no definition (missing privilege?)",
                        self.tool.name
                    )
                })
            })
            .collect()
    }

    /// Drops the schemas of a restore (whatever they hold).
    async fn drop_schemas(&self, schemas: &[&str]) -> anyhow::Result<()> {
        let sql: Vec<String> = std::iter::once("SET FOREIGN_KEY_CHECKS = 0".to_owned())
            .chain(
                schemas
                    .iter()
                    .map(|s| format!("DROP DATABASE IF EXISTS {}", quote_ident(s))),
            )
            .collect();
        self.query(None, &sql.join("; ")).await.map(drop)
    }
}

/// Checks that the user may create and drop the schemas an atomic restore
/// uses (`<db>_upkeep_*`), by creating and dropping one.
async fn mysql_check_restore_privilege(client: &MyClient, conn: &Conn) -> anyhow::Result<()> {
    let probe = format!("{}_upkeep_chk_{}", conn.dbname, unique_suffix());
    check_schema_name(&probe)?;
    let sql = format!(
        "CREATE DATABASE {0}; DROP DATABASE {0}",
        quote_ident(&probe)
    );
    client.query(None, &sql).await.map(drop).map_err(|e| {
        anyhow!(
            "the database user cannot create and drop the schema {} that an atomic restore \
             uses (grant it ALL PRIVILEGES ON `{}\\_upkeep\\_%`.*): {e:#}",
            quote_ident(&probe),
            conn.dbname.replace('_', "\\_").replace('%', "\\%")
        )
    })
}

/// Restores into a fresh schema, then swaps it in (see the module
/// documentation): the live database is untouched until the one
/// `RENAME TABLE`, and on any failure before it the new schema is dropped.
async fn mysql_restore(conn: &Conn, dump: &Path) -> anyhow::Result<()> {
    let client = MyClient::new(conn)?;
    let live = conn.dbname.as_str();
    let (new, old) = mysql_restore_schemas(live)?;

    let charset = batch_rows(&client.query(Some(live), MYSQL_SCHEMA_CHARSET).await?);
    let Some([cs, coll]) = charset
        .first()
        .and_then(|r| <[String; 2]>::try_from(r.clone()).ok())
    else {
        bail!(
            "{}: cannot read the database's character set",
            client.tool.name
        );
    };
    let create = |name: &str| {
        format!(
            "CREATE DATABASE {} CHARACTER SET {} COLLATE {}",
            quote_ident(name),
            quote_string(&cs),
            quote_string(&coll)
        )
    };
    client
        .query(None, &format!("{}; {}", create(&new), create(&old)))
        .await
        .map_err(|e| anyhow!("cannot create the schemas of the restore: {e:#}"))?;

    let staged = mysql_stage(&client, live, &new, &old, dump).await;
    match staged {
        Ok(()) => {
            // The swap is done: the previous tables are no longer needed.
            client
                .drop_schemas(&[&old, &new])
                .await
                .map_err(|e| anyhow!("restored, but the schema {old} with the previous tables could not be dropped: {e:#}"))
        }
        Err(Failure::BeforeSwap(e)) => {
            if let Err(cleanup) = client.drop_schemas(&[&new, &old]).await {
                return Err(anyhow!(
                    "{e:#} (and the temporary schemas {new}, {old} could not be dropped: {cleanup:#})"
                ));
            }
            Err(e)
        }
        Err(Failure::AfterSwap(e)) => Err(anyhow!(
            "the tables were restored, but recreating views, routines and triggers failed \
             (the previous tables are kept in the schema {old}): {e:#}"
        )),
    }
}

/// How a restore failed: before the swap the live database is as it was.
enum Failure {
    BeforeSwap(anyhow::Error),
    AfterSwap(anyhow::Error),
}

async fn mysql_stage(
    client: &MyClient,
    live: &str,
    new: &str,
    old: &str,
    dump: &Path,
) -> Result<(), Failure> {
    let before = Failure::BeforeSwap;
    // 1. The dump into the new schema (it names no schema: mariadb-dump of
    //    one database writes no USE).
    client
        .feed(new, String::new(), Some(dump))
        .await
        .map_err(before)?;
    // 2. What both hold; the definitions to create in the live database
    //    after the swap, read in the new schema so that its own names are
    //    unqualified.
    let restored = client.objects(new).await.map_err(before)?;
    let current = client.objects(live).await.map_err(before)?;
    let views = client
        .definitions(new, "VIEW", &restored.views)
        .await
        .map_err(before)?;
    let mut routines = Vec::new();
    for (kind, name) in &restored.routines {
        let mut d = client
            .definitions(new, kind, std::slice::from_ref(name))
            .await
            .map_err(before)?;
        routines.append(&mut d);
    }
    let triggers = client
        .definitions(new, "TRIGGER", &restored.triggers)
        .await
        .map_err(before)?;
    let view_columns = batch_rows(
        &client
            .query(Some(new), MYSQL_VIEW_COLUMNS)
            .await
            .map_err(before)?,
    );
    let live_triggers = client
        .definitions(live, "TRIGGER", &current.triggers)
        .await
        .map_err(before)?;
    // Views of the live database in the way of a restored table.
    let in_the_way: Vec<String> = current
        .views
        .iter()
        .filter(|v| restored.tables.contains(v))
        .cloned()
        .collect();
    let live_in_the_way = client
        .definitions(live, "VIEW", &in_the_way)
        .await
        .map_err(before)?;

    // 3. Tables with triggers cannot move to another schema: drop the new
    //    schema's triggers, then (just before the swap) the live ones, which
    //    are put back if the swap fails.
    let drop_triggers = |names: &[String]| -> String {
        names
            .iter()
            .map(|t| format!("DROP TRIGGER IF EXISTS {}; ", quote_ident(t)))
            .collect()
    };
    if !restored.triggers.is_empty() {
        client
            .query(Some(new), &drop_triggers(&restored.triggers))
            .await
            .map_err(before)?;
    }
    let mut undo = live_triggers.clone();
    undo.extend(live_in_the_way.iter().cloned());
    let mut pre_swap = drop_triggers(&current.triggers);
    for v in &in_the_way {
        pre_swap.push_str(&format!("DROP VIEW IF EXISTS {}; ", quote_ident(v)));
    }
    let swap = mysql_swap_sql(live, new, old, &current.tables, &restored.tables);
    // One client run: the trigger drops and the swap follow each other
    // at once; a lock held elsewhere makes it fail rather than hang.
    let swapped = async {
        crate::failpoint::hit("mysql-restore-swap")?;
        let mut sql = format!("SET SESSION lock_wait_timeout = {MYSQL_SWAP_LOCK_WAIT}; {pre_swap}");
        if let Some(swap) = &swap {
            sql.push_str(swap);
        }
        client.query(Some(live), &sql).await.map(drop)
    }
    .await;
    if let Err(e) = swapped {
        let mut body = String::new();
        for d in &undo {
            body.push_str(&d.script().map_err(before)?);
        }
        if !undo.is_empty()
            && let Err(undo_err) = client.feed(live, mysql_script(&body), None).await
        {
            return Err(before(anyhow!(
                "{e:#} (and putting back the live database's triggers failed: {undo_err:#})"
            )));
        }
        return Err(before(e));
    }

    // 4. After the swap: the live database's views and routines give way
    //    to the dump's, and the dump's triggers are created.
    let after = Failure::AfterSwap;
    let mut body = String::new();
    for v in &current.views {
        body.push_str(&format!(
            "DROP VIEW IF EXISTS {}{MYSQL_SCRIPT_DELIMITER}\n",
            quote_ident(v)
        ));
    }
    for (kind, name) in &current.routines {
        body.push_str(&format!(
            "DROP {kind} IF EXISTS {}{MYSQL_SCRIPT_DELIMITER}\n",
            quote_ident(name)
        ));
    }
    for view in &restored.views {
        let columns: Vec<String> = view_columns
            .iter()
            .filter(|r| r.first() == Some(view))
            .filter_map(|r| r.get(1).cloned())
            .collect();
        body.push_str(&placeholder_view(view, &columns));
    }
    for (view, d) in restored.views.iter().zip(&views) {
        body.push_str(&format!(
            "DROP VIEW IF EXISTS {}{MYSQL_SCRIPT_DELIMITER}\n",
            quote_ident(view)
        ));
        body.push_str(&d.script().map_err(after)?);
    }
    for d in routines.iter().chain(&triggers) {
        body.push_str(&d.script().map_err(after)?);
    }
    client
        .feed(live, mysql_script(&body), None)
        .await
        .map_err(after)
}

// ---------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------

fn sqlite_err(e: rusqlite::Error) -> anyhow::Error {
    anyhow!(one_line(&e.to_string()))
}

/// Copies the database with the backup API until done, waiting out locks
/// held by other connections.
fn run_backup(from: &Connection, to: &mut Connection) -> anyhow::Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let backup = Backup::new(from, to).map_err(sqlite_err)?;
    let deadline = Instant::now() + SQLITE_BUSY_WAIT;
    loop {
        match backup.step(-1).map_err(sqlite_err)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if Instant::now() > deadline {
                    bail!("the database stayed locked by another connection");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // `StepResult` is non-exhaustive.
            _ => bail!("unexpected result from the SQLite backup API"),
        }
    }
}

fn open_existing(path: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    if !path.exists() {
        bail!("the database file does not exist");
    }
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite_err)?;
    conn.busy_timeout(SQLITE_BUSY_WAIT).map_err(sqlite_err)?;
    Ok(conn)
}

fn quick_check(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(sqlite_err)?;
    let rows: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(sqlite_err)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_err)?;
    if rows != ["ok"] {
        bail!(
            "PRAGMA quick_check: {}",
            rows.first().map_or("no answer", String::as_str)
        );
    }
    Ok(())
}

/// Opens the SQLite file read-only and runs `PRAGMA quick_check`. Used by
/// [`Artifact::verify`].
pub(super) fn check_sqlite_file(path: &Path) -> anyhow::Result<()> {
    let conn = open_existing(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow!("not a readable SQLite database: {e}"))?;
    quick_check(&conn).map_err(|e| anyhow!("not a sound SQLite database: {e}"))
}

fn sqlite_preflight(path: &Path) -> anyhow::Result<()> {
    let conn = open_existing(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(sqlite_err)?;
    Ok(())
}

/// Copies the live database into the pending backup (by its name: SQLite
/// opens it), as a standalone file in rollback-journal mode (no `-wal`
/// next to it); [`Db::dump`] syncs it.
fn sqlite_dump(live: &Path, partial: &Path) -> anyhow::Result<()> {
    let from = open_existing(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut to = Connection::open_with_flags(
        partial,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    run_backup(&from, &mut to)?;
    // The copy has the source's header, WAL mode included: turn that off so
    // the backup is one self-contained file.
    let mode: String = to
        .query_row("PRAGMA journal_mode=DELETE", [], |row| row.get(0))
        .map_err(sqlite_err)?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("cannot switch the copy to rollback-journal mode (still {mode})");
    }
    to.close().map_err(|(_, e)| sqlite_err(e))?;
    drop(from);
    Ok(())
}

/// Copies the dump into the live database through a connection (so its
/// `-wal`/`-shm` stay consistent), in one write transaction.
fn sqlite_restore(live: &Path, dump: &Path) -> anyhow::Result<()> {
    let from = open_existing(
        dump,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut to = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    to.busy_timeout(SQLITE_BUSY_WAIT).map_err(sqlite_err)?;
    let mode: String = to
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(sqlite_err)?;
    let was_wal = mode.eq_ignore_ascii_case("wal");
    if was_wal {
        // Copying into a WAL database needs equal page sizes; leave WAL mode
        // for the copy when no other connection is open. With another one
        // open this fails ("database is locked") and the copy goes through
        // the WAL, which works for equal page sizes.
        let _ = to.query_row("PRAGMA journal_mode=DELETE", [], |row| {
            row.get::<_, String>(0)
        });
    }
    run_backup(&from, &mut to)?;
    if was_wal {
        let _: String = to
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(sqlite_err)?;
    }
    quick_check(&to)?;
    to.close().map_err(|(_, e)| sqlite_err(e))
}

// ---------------------------------------------------------------------------
// Db
// ---------------------------------------------------------------------------

impl Db {
    /// The kind of backup this database gives.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Db::Sqlite { .. } => Kind::Sqlite,
            Db::Postgres { .. } => Kind::Postgres,
            Db::Mysql { .. } => Kind::Mysql,
        }
    }

    /// For messages: "postgres portal@127.0.0.1:5432/portal" — password never shown.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Db::Sqlite { path } => format!("sqlite {}", path.display()),
            Db::Postgres { conn } => format!("postgres {conn}"),
            Db::Mysql { conn } => format!("mysql {conn}"),
        }
    }

    /// Prefixes an error with what database it is about, on one line.
    pub(super) fn fail(&self, what: &str, e: &anyhow::Error) -> anyhow::Error {
        anyhow!(one_line(&format!("{}: {what}: {e:#}", self.describe())))
    }

    /// Preflight: the dump/restore tools exist (pg_dump + pg_restore + psql; mariadb-dump or mysqldump + mariadb or mysql)
    /// and the server answers a trivial query with these credentials. Sqlite: the file exists and opens.
    /// MySQL: also that the user may create and drop the `<db>_upkeep_*` schemas of an atomic restore
    /// (one is created and dropped).
    ///
    /// # Errors
    ///
    /// A tool is missing (the message names the package), or the server
    /// cannot be reached or refuses the credentials; one line.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        let result = match self {
            Db::Sqlite { path } => {
                let path = path.clone();
                blocking(move || sqlite_preflight(&path)).await
            }
            Db::Postgres { conn } => pg_preflight(conn).await,
            Db::Mysql { conn } => mysql_preflight(conn).await,
        };
        result.map_err(|e| self.fail("preflight", &e))
    }

    /// The server's own version, asked of it through its client program
    /// (the password in a 0600 file, never on the command line): `(true,
    /// answer to SHOW server_version)` for PostgreSQL, `(false, answer to
    /// SELECT VERSION())` for MySQL/MariaDB. SQLite has no server.
    ///
    /// # Errors
    ///
    /// SQLite, a missing client, or the server cannot be reached; one line,
    /// password masked.
    pub async fn server_version(&self) -> anyhow::Result<(bool, String)> {
        let result = match self {
            Db::Sqlite { .. } => Err(anyhow!("sqlite has no server to ask")),
            Db::Postgres { conn } => {
                async {
                    let psql = find_tool(&["psql"], "postgresql-client")?;
                    let session = PgSession::new(conn)?;
                    let mut cmd = session.command(&psql);
                    cmd.args([
                        "-X",
                        "-w",
                        "-q",
                        "-A",
                        "-t",
                        "--command=SHOW server_version",
                    ])
                    .stdout(Stdio::piped());
                    let out = run(cmd, &psql, &session.secrets).await?;
                    Ok((true, String::from_utf8_lossy(&out).trim().to_string()))
                }
                .await
            }
            Db::Mysql { conn } => {
                async {
                    let client = mysql_client_tool()?;
                    let session = MySession::new(conn)?;
                    let mut cmd = session.command(&client);
                    cmd.args([
                        "--batch",
                        "--skip-column-names",
                        "--execute=SELECT VERSION()",
                    ])
                    .arg(format!("--database={}", conn.dbname))
                    .stdout(Stdio::piped());
                    let out = run(cmd, &client, &session.secrets).await?;
                    Ok((false, String::from_utf8_lossy(&out).trim().to_string()))
                }
                .await
            }
        };
        result.map_err(|e| self.fail("server version", &e))
    }

    /// Dumps to `dest` (mode 0600 from creation; .partial + fsync + rename), then verifies; returns the Artifact.
    /// sqlite: rusqlite online backup API (run on a blocking thread). postgres: `pg_dump -Fc`.
    /// mysql: `mariadb-dump` (fall back to `mysqldump`) `--single-transaction --routines --triggers`.
    ///
    /// # Errors
    ///
    /// The dump tool fails (one line: tool, exit status, last error line,
    /// password masked), `dest` cannot be written, or the result fails
    /// [`Artifact::verify`]. No `.partial` file is left behind.
    pub async fn dump(&self, dest: &Path) -> anyhow::Result<Artifact> {
        // The one durable write; the pending file, dropped on an error (or
        // a cancelled task), is removed.
        let written = async {
            let partial = partial_path(dest);
            let mut pending = Pending::create(dest, Options::private())
                .map_err(|e| anyhow!("{}: cannot create: {e}", partial.display()))?;
            match self {
                Db::Sqlite { path } => {
                    let (live, out) = (path.clone(), partial.clone());
                    blocking(move || sqlite_dump(&live, &out)).await?;
                }
                Db::Postgres { conn } => pg_dump(conn, &pending).await?,
                Db::Mysql { conn } => mysql_dump(conn, &pending).await?,
            }
            pending
                .sync()
                .map_err(|e| anyhow!("{}: cannot sync: {e}", partial.display()))?;
            pending
                .commit()
                .map_err(|e| anyhow!("{}: cannot rename into place: {e}", dest.display()))
        }
        .await;
        if let Err(e) = written {
            return Err(self.fail("dump", &e));
        }
        let (kind, dest) = (self.kind(), dest.to_path_buf());
        blocking(move || {
            let artifact = Artifact::of_file(kind, &dest)?;
            artifact.verify()?;
            Ok(artifact)
        })
        .await
        .map_err(|e| self.fail("dump", &e))
    }

    /// Verifies the artifact, then makes the database exactly what the dump holds: tables (and other
    /// objects) created after the dump MUST be gone afterwards (a failed upgrade's migration created them).
    /// postgres: e.g. drop and recreate the schemas the dump holds (or everything owned), then `pg_restore --no-owner --single-transaction`.
    /// mysql: load the dump into a new schema, then swap its tables in with ONE `RENAME TABLE`.
    /// sqlite: backup API from the dump file into the live path (remove stale -wal/-shm properly, or restore through a connection so they are consistent).
    ///
    /// PostgreSQL: everything the connecting role may drop goes (schemas
    /// other than `public`; relations, routines and types everywhere),
    /// then the `pg_restore --no-owner --single-transaction` script is
    /// applied by `psql`, all in one transaction. MySQL: the dump is loaded
    /// into a fresh schema and its tables swapped in by one `RENAME TABLE`;
    /// views, routines and triggers follow (see the module documentation).
    /// Events are left alone; the dump does not hold them.
    ///
    /// # Errors
    ///
    /// The artifact is of another kind or fails [`Artifact::verify`], or a
    /// tool fails; one line, password masked.
    pub async fn restore(&self, artifact: &Artifact) -> anyhow::Result<()> {
        if artifact.kind != self.kind() {
            bail!(
                "{}: restore: {} is a {} backup, not {}",
                self.describe(),
                artifact.path.display(),
                artifact.kind,
                self.kind()
            );
        }
        let checked = artifact.clone();
        blocking(move || checked.verify())
            .await
            .map_err(|e| self.fail("restore", &e))?;
        let result = match self {
            Db::Sqlite { path } => {
                let (live, dump) = (path.clone(), artifact.path.clone());
                blocking(move || sqlite_restore(&live, &dump)).await
            }
            Db::Postgres { conn } => pg_restore(conn, &artifact.path).await,
            Db::Mysql { conn } => mysql_restore(conn, &artifact.path).await,
        };
        result.map_err(|e| self.fail("restore", &e))
    }
}

/// Runs blocking work (file hashing, SQLite) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow!("background task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_hidden(conn: &Conn, password: &str) {
        let shown = format!("{conn} {conn:?}");
        assert!(!shown.contains(password), "{shown}");
        for db in [
            Db::Postgres { conn: conn.clone() },
            Db::Mysql { conn: conn.clone() },
        ] {
            let shown = format!("{} {db:?}", db.describe());
            assert!(!shown.contains(password), "{shown}");
        }
    }

    #[test]
    fn postgres_url() {
        let c = Conn::parse_postgres(
            "postgres://portal:pa%40ss%3Aw%2Fx@db.example:5433/portal?sslmode=disable",
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(5433));
        assert_eq!(c.user.as_deref(), Some("portal"));
        assert_eq!(c.password().map(Secret::expose), Some("pa@ss:w/x"));
        assert_eq!(c.dbname, "portal");
        assert_eq!(c.params, vec![("sslmode".to_owned(), "disable".to_owned())]);
        assert_hidden(&c, "pa@ss:w/x");
        assert_hidden(&c, "pa%40ss");
        assert_eq!(
            Db::Postgres { conn: c }.describe(),
            "postgres portal@db.example:5433/portal"
        );

        let c = Conn::parse_postgres("postgresql://portal:x@127.0.0.1:5432/portal").unwrap();
        assert_eq!(
            Db::Postgres { conn: c.clone() }.describe(),
            "postgres portal@127.0.0.1:5432/portal"
        );
        assert_eq!(c.password().map(Secret::expose), Some("x"));

        let c = Conn::parse_postgres("postgres://u@[::1]:5432/db").unwrap();
        assert_eq!(c.host.as_deref(), Some("::1"));
        assert_eq!(c.to_string(), "u@[::1]:5432/db");

        let c =
            Conn::parse_postgres("postgres:///portal?host=/run/postgresql&user=portal").unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/run/postgresql")));
        assert_eq!(c.host, None);
        assert_eq!(c.user.as_deref(), Some("portal"));

        let c = Conn::parse_postgres("postgres://portal@%2Frun%2Fpostgresql/portal").unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/run/postgresql")));

        // No database: the user's name, as libpq does.
        let c = Conn::parse_postgres("postgres://portal:pw@localhost").unwrap();
        assert_eq!(c.dbname, "portal");
        assert_eq!(c.port, None);
    }

    #[test]
    fn postgres_keyvalue() {
        let c = Conn::parse_postgres(
            "host=/run/postgresql user=portal password=x dbname=portal port=5432",
        )
        .unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/run/postgresql")));
        assert_eq!(c.host, None);
        assert_eq!(c.port, Some(5432));
        assert_eq!(c.user.as_deref(), Some("portal"));
        assert_eq!(c.password().map(Secret::expose), Some("x"));
        assert_eq!(c.dbname, "portal");
        assert_eq!(
            Db::Postgres { conn: c }.describe(),
            "postgres portal@/run/postgresql:5432/portal"
        );

        let c = Conn::parse_postgres(
            r"host = db.example  user='portal' password='it\'s a \\ secret' dbname='my db' sslmode=require",
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.password().map(Secret::expose), Some(r"it's a \ secret"));
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.param("sslmode"), Some("require"));
        assert_hidden(&c, "secret");

        for bad in [
            "host=x password='unterminated",
            "host=x dbname",
            "host=x port=notaport dbname=p",
            "host=x port=70000 dbname=p",
            "just-a-word",
            "host=x",
        ] {
            let err = Conn::parse_postgres(bad).unwrap_err().to_string();
            assert!(
                !err.contains("unterminated'") && !err.contains('\n'),
                "{err}"
            );
        }
        let err = Conn::parse_postgres("host=x password='s3cret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn mysql_url_and_dsn() {
        let c = Conn::parse_mysql("mysql://portal:p%40ss%2Fx@db.example:3307/portal").unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(3307));
        assert_eq!(c.user.as_deref(), Some("portal"));
        assert_eq!(c.password().map(Secret::expose), Some("p@ss/x"));
        assert_eq!(c.dbname, "portal");
        assert_eq!(
            Db::Mysql { conn: c.clone() }.describe(),
            "mysql portal@db.example:3307/portal"
        );
        assert_hidden(&c, "p@ss/x");

        let c = Conn::parse_mysql(
            "portal:pa:ss@w@tcp(127.0.0.1:3306)/portal?parseTime=true&charset=utf8mb4",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("portal"));
        assert_eq!(c.password().map(Secret::expose), Some("pa:ss@w"));
        assert_eq!(c.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.port, Some(3306));
        assert_eq!(c.dbname, "portal");
        assert_eq!(c.param("parseTime"), Some("true"));
        assert_eq!(c.param("charset"), Some("utf8mb4"));
        assert_hidden(&c, "pa:ss@w");

        let c = Conn::parse_mysql("portal:x/y@unix(/run/mysqld/mysqld.sock)/portal").unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(c.host, None);
        assert_eq!(c.password().map(Secret::expose), Some("x/y"));
        assert_eq!(c.dbname, "portal");
        assert_eq!(
            Db::Mysql { conn: c }.describe(),
            "mysql portal@/run/mysqld/mysqld.sock/portal"
        );

        let c = Conn::parse_mysql(
            "mariadb://portal:a%25b@localhost/portal?socket=/run/mysqld/mysqld.sock",
        )
        .unwrap();
        assert_eq!(c.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(c.host, None);
        assert_eq!(c.password().map(Secret::expose), Some("a%b"));

        let c = Conn::parse_mysql("portal@tcp([::1]:3307)/portal").unwrap();
        assert_eq!(c.host.as_deref(), Some("::1"));
        assert_eq!(c.port, Some(3307));
        assert_eq!(c.password(), None);

        let c = Conn::parse_mysql("portal:pw@tcp(db)/portal").unwrap();
        assert_eq!((c.host.as_deref(), c.port), (Some("db"), Some(3306)));
        let c = Conn::parse_mysql("portal:pw@/portal").unwrap();
        assert_eq!((c.host.as_deref(), c.port), (Some("127.0.0.1"), Some(3306)));

        for bad in [
            "portal:s3cret@tcp(127.0.0.1:3306",
            "portal:s3cret@tcp(127.0.0.1:3306)",
            "portal:s3cret@tcp(127.0.0.1:99999)/portal",
            "portal:s3cret@udp(x)/portal",
            "portal:s3cret@tcp(x)/",
            "mysql://portal:s3cret@host:notaport/portal",
        ] {
            let err = Conn::parse_mysql(bad).unwrap_err().to_string();
            assert!(
                !err.contains("s3cret") && !err.contains('\n'),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn debug_masks_password_params() {
        let c =
            Conn::parse_postgres("postgres://u:pw1@h/d?sslpassword=pw2&sslmode=require").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
        assert!(shown.contains("require"));
    }

    fn conf(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("portal.conf");
        fs::write(&path, text).unwrap();
        path
    }

    fn resolve_conf(path: &Path) -> anyhow::Result<Option<Db>> {
        resolve(&Database::PortalConf {
            config_file: path.to_path_buf(),
        })
    }

    #[test]
    fn portal_conf_without_a_database_section_is_the_implicit_sqlite() {
        let tmp = tempfile::tempdir().unwrap();
        for text in [
            r#"{"HostPort":3001}"#,
            r#"{"Database":null}"#,
            r#"{"Database":{"Dialect":"","ConnectionString":""}}"#,
        ] {
            let path = conf(tmp.path(), text);
            assert_eq!(
                resolve_conf(&path).unwrap(),
                Some(Db::Sqlite {
                    path: "/var/lib/portal/portal.db".into()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn portal_conf_resolution() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();

        let path = conf(
            dir,
            r#"{"HostPort":3001,"Database":{"Dialect":"postgres","ConnectionString":"host=localhost port=5432 user=portal password=Sup3r dbname=portal sslmode=disable","EnableLogs":false}}"#,
        );
        let db = resolve_conf(&path).unwrap().unwrap();
        let Db::Postgres { conn } = &db else {
            panic!("{db:?}")
        };
        assert_eq!(conn.password().map(Secret::expose), Some("Sup3r"));
        assert_eq!(db.describe(), "postgres portal@localhost:5432/portal");

        let path = conf(
            dir,
            r#"{"Database":{"Dialect":"mysql","ConnectionString":"portal:Sup3r@tcp(db:3306)/portal?parseTime=true"}}"#,
        );
        assert_eq!(
            resolve_conf(&path).unwrap().unwrap().describe(),
            "mysql portal@db:3306/portal"
        );

        let path = conf(
            dir,
            r#"{"Database":{"Dialect":"sqlite3","ConnectionString":""}}"#,
        );
        assert_eq!(
            resolve_conf(&path).unwrap(),
            Some(Db::Sqlite {
                path: PathBuf::from(PORTAL_SQLITE_DEFAULT)
            })
        );
        let path = conf(dir, r#"{"Database":{"Dialect":"sqlite3"}}"#);
        assert_eq!(
            resolve_conf(&path).unwrap(),
            Some(Db::Sqlite {
                path: PathBuf::from(PORTAL_SQLITE_DEFAULT)
            })
        );
        let path = conf(
            dir,
            r#"{"database":{"dialect":"sqlite3","connectionstring":"file:/srv/p.db?cache=shared"}}"#,
        );
        assert_eq!(
            resolve_conf(&path).unwrap(),
            Some(Db::Sqlite {
                path: PathBuf::from("/srv/p.db")
            })
        );
        let path = conf(
            dir,
            r#"{"Database":{"Dialect":"sqlite3","ConnectionString":"db/portal.db"}}"#,
        );
        assert_eq!(
            resolve_conf(&path).unwrap(),
            Some(Db::Sqlite {
                path: dir.join("db/portal.db")
            })
        );

        // Errors: one line, naming the file and key, never the password.
        let cases = [
            (r#"{"Database":"sqlite3"}"#, "Database: must be an object"),
            (
                r#"{"Database":{"Dialect":"oracle","ConnectionString":"x"}}"#,
                "unknown dialect",
            ),
            (
                r#"{"Database":{"Dialect":"postgres"}}"#,
                "Database.ConnectionString: missing",
            ),
            (
                r#"{"Database":{"Dialect":"postgres","ConnectionString":"postgres://u:Sup3r@h:99999/d"}}"#,
                "Database.ConnectionString",
            ),
            (
                r#"{"Database":{"Dialect":"mysql","ConnectionString":"u:Sup3r@tcp(h:1"}}"#,
                "Database.ConnectionString",
            ),
            (
                r#"{"Database":{"Dialect":"mysql","ConnectionString":12}}"#,
                "must be a string",
            ),
            (
                r#"{"Database":{"Dialect":"mysql","ConnectionString":"u:Sup3r@tcp(h)/d"#,
                "not valid JSON",
            ),
        ];
        for (text, expected) in cases {
            let path = conf(dir, text);
            let err = resolve_conf(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("portal.conf"), "{err}");
            assert!(!err.contains("Sup3r") && !err.contains('\n'), "{err}");
        }
        let err = resolve_conf(&dir.join("missing.conf"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.conf") && err.contains("cannot read"),
            "{err}"
        );
    }

    #[test]
    fn resolve_direct_variants() {
        assert_eq!(resolve(&Database::None).unwrap(), None);
        assert_eq!(
            resolve(&Database::Sqlite {
                path: "/x.db".into()
            })
            .unwrap(),
            Some(Db::Sqlite {
                path: "/x.db".into()
            })
        );
        let db = resolve(&Database::Postgres {
            url: Secret::new("postgres://a:Sup3r@h/d"),
        })
        .unwrap()
        .unwrap();
        assert_eq!(db.kind(), Kind::Postgres);
        let db = resolve(&Database::Mysql {
            url: Secret::new("mysql://a:Sup3r@h/d"),
        })
        .unwrap()
        .unwrap();
        assert_eq!(db.kind(), Kind::Mysql);
        let err = resolve(&Database::Mysql {
            url: Secret::new("a:Sup3r@tcp(h:x)/d"),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("mysql") && !err.contains("Sup3r"), "{err}");
    }

    #[test]
    fn pgpass_escaping() {
        assert_eq!(
            pgpass_line("a:b\\c").as_deref(),
            Some("*:*:*:*:a\\:b\\\\c\n")
        );
        assert_eq!(pgpass_line("two\nlines"), None);
    }

    #[test]
    fn pg_environment() {
        let c = Conn::parse_postgres("postgres://portal:pw@db:5433/portal?sslmode=verify-full&connect_timeout=3&TimeZone=UTC").unwrap();
        let env = pg_env(&c, Some(Path::new("/tmp/x/pgpass")));
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("PGHOST").as_deref(), Some("db"));
        assert_eq!(get("PGPORT").as_deref(), Some("5433"));
        assert_eq!(get("PGUSER").as_deref(), Some("portal"));
        assert_eq!(get("PGDATABASE").as_deref(), Some("portal"));
        assert_eq!(get("PGPASSFILE").as_deref(), Some("/tmp/x/pgpass"));
        assert_eq!(get("PGSSLMODE").as_deref(), Some("verify-full"));
        assert_eq!(get("PGCONNECT_TIMEOUT").as_deref(), Some("3"));
        assert_eq!(get("PGPASSWORD"), None);
        assert!(
            env.iter().all(|(_, v)| !v.to_string_lossy().contains("pw")
                || v.to_string_lossy().contains("pgpass"))
        );
    }

    #[test]
    fn mysql_option_file_and_args() {
        assert_eq!(
            mysql_option_file("a\"b\\c#d'e f\n"),
            "[client]\npassword=\"a\\\"b\\\\c#d'e f\\n\"\n"
        );
        let c = Conn::parse_mysql("portal:pw@unix(/run/mysqld/mysqld.sock)/portal").unwrap();
        let args: Vec<String> = mysql_conn_args(&c)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--protocol=SOCKET",
                "--socket=/run/mysqld/mysqld.sock",
                "--user=portal"
            ]
        );
        let c = Conn::parse_mysql("mysql://portal:pw@db/portal").unwrap();
        let args: Vec<String> = mysql_conn_args(&c)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--protocol=TCP",
                "--host=db",
                "--port=3306",
                "--user=portal"
            ]
        );
        assert!(args.iter().all(|a| !a.contains("pw")));
    }

    #[test]
    fn mysql_object_listing_and_swap() {
        let out = "BASE TABLE\tusers\nVIEW\tv`1\nSEQUENCE\ts\nBASE TABLE\twith\\ttab\nPROCEDURE\tp\nFUNCTION\tf\nSYSTEM VIEW\tignored\nTRIGGER\ttr\n";
        let objects = parse_object_list(out).unwrap();
        assert_eq!(
            objects[3],
            ("BASE TABLE".to_owned(), "with\ttab".to_owned())
        );
        let objects = Objects::from_listing(objects);
        assert_eq!(objects.tables, ["users", "s", "with\ttab"]);
        assert_eq!(objects.views, ["v`1"]);
        assert_eq!(objects.triggers, ["tr"]);
        assert_eq!(
            objects.routines,
            [
                ("PROCEDURE".to_owned(), "p".to_owned()),
                ("FUNCTION".to_owned(), "f".to_owned())
            ]
        );
        assert!(parse_object_list("garbage").is_err());
        assert_eq!(parse_object_list("").unwrap(), vec![]);

        let swap = mysql_swap_sql(
            "portal",
            "portal_upkeep_new_1",
            "portal_upkeep_old_1",
            &["items".to_owned(), "gone`x".to_owned()],
            &["items".to_owned()],
        )
        .unwrap();
        assert_eq!(
            swap,
            "RENAME TABLE `portal`.`items` TO `portal_upkeep_old_1`.`items`, \
             `portal`.`gone``x` TO `portal_upkeep_old_1`.`gone``x`, \
             `portal_upkeep_new_1`.`items` TO `portal`.`items`"
        );
        assert_eq!(mysql_swap_sql("a", "b", "c", &[], &[]), None);
    }

    #[test]
    fn mysql_definitions_replay_with_their_mode() {
        let row: Vec<String> = [
            "v",
            "CREATE VIEW `v` AS select 1 AS `a`",
            "utf8mb3",
            "utf8mb3_general_ci",
        ]
        .map(str::to_owned)
        .to_vec();
        let view = Definition::from_row(true, &row).unwrap();
        assert_eq!(view.sql_mode, None);
        let row: Vec<String> = [
            "p",
            "STRICT_TRANS_TABLES",
            "CREATE PROCEDURE `p`()\nBEGIN SELECT 1; SELECT 'it''s'; END",
            "utf8mb4",
            "utf8mb4_general_ci",
            "latin1_swedish_ci",
        ]
        .map(str::to_owned)
        .to_vec();
        let routine = Definition::from_row(false, &row).unwrap();
        let script = mysql_script(&routine.script().unwrap());
        assert_eq!(
            script,
            "SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS = 0;\nSET @upkeep_sql_mode = @@SESSION.sql_mode;\n\
             DELIMITER $$upkeep$$\n\
             SET SESSION sql_mode = 'STRICT_TRANS_TABLES'$$upkeep$$\n\
             SET collation_connection = 'utf8mb4_general_ci'$$upkeep$$\n\
             CREATE PROCEDURE `p`()\nBEGIN SELECT 1; SELECT 'it''s'; END\n$$upkeep$$\n\
             SET SESSION sql_mode = @upkeep_sql_mode$$upkeep$$\nSET NAMES utf8mb4$$upkeep$$\n\
             DELIMITER ;\n"
        );
        // No definition (no privilege to see it) is an error, not a blank.
        let mut hidden = row.clone();
        hidden[2] = "NULL".to_owned();
        assert_eq!(Definition::from_row(false, &hidden), None);
        let sneaky = Definition {
            statement: "SELECT '$$upkeep$$'".to_owned(),
            ..routine
        };
        assert!(sneaky.script().is_err());
        assert_eq!(
            placeholder_view("v", &["a".to_owned(), "b`".to_owned()]),
            "CREATE OR REPLACE VIEW `v` AS SELECT NULL AS `a`, NULL AS `b```$$upkeep$$\n"
        );
    }

    #[test]
    fn mysql_restore_schema_names_fit() {
        let (new, old) = mysql_restore_schemas("portal").unwrap();
        assert!(
            new.starts_with("portal_upkeep_new_") && new.len() == 26,
            "{new}"
        );
        assert!(
            old.starts_with("portal_upkeep_old_") && old[18..] == new[18..],
            "{old}"
        );
        assert_ne!(mysql_restore_schemas("portal").unwrap().0, new);
        let long = "x".repeat(47);
        let err = mysql_restore_schemas(&long).unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
        assert!(mysql_restore_schemas(&"x".repeat(38)).is_ok());
    }

    #[test]
    fn percent_escaped_user_and_password_in_urls() {
        // The `percent-encoding` crate decodes; an invalid escape stays.
        let c = Conn::parse_mysql("mysql://us%65r%3A1:p%25w%40%zz@h/d%5Fb").unwrap();
        assert_eq!(c.user.as_deref(), Some("user:1"));
        assert_eq!(c.password().map(Secret::expose), Some("p%w@%zz"));
        assert_eq!(c.dbname, "d_b");
        let c = Conn::parse_postgres("postgres://%C3%A9t%C3%A9:%F0%9F%94%91@h/d").unwrap();
        assert_eq!(c.user.as_deref(), Some("été"));
        assert_eq!(c.password().map(Secret::expose), Some("🔑"));
        let err = Conn::parse_postgres("postgres://u:%FF@h/d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn tool_failure_is_one_masked_line() {
        let stderr = b"psql:<stdin>:3: ERROR:  syntax error at or near \"s3cr3t\"\nLINE 1: s3cr3t\n        ^\n";
        let msg = failure_message("psql", "exit status: 3", stderr, &["s3cr3t".to_owned()]);
        assert_eq!(
            msg,
            "psql failed (exit status: 3): psql:<stdin>:3: ERROR: syntax error at or near \"********\""
        );
        let msg = failure_message("pg_dump", "exit status: 1", b"", &[]);
        assert_eq!(msg, "pg_dump failed (exit status: 1): no error output");
        let msg = failure_message("x", "exit status: 2", b"first\nlast line\n", &[]);
        assert_eq!(msg, "x failed (exit status: 2): last line");
    }

    #[test]
    fn a_pg_dump_error_showing_a_connection_string_is_masked() {
        // The old call site's secrets (the password the tool was given),
        // now through the one mask: as written, percent-encoded in a URL,
        // however short, and a password the tool echoes that it was not
        // given (a URL, a libpq pair) by the mask's rules.
        let stderr = b"pg_dump: error: connection to server at \"db\" failed: \
            FATAL:  password authentication failed for user \"portal\" \
            (postgres://portal:S3cr%40t@db:5432/portal, postgres://other:Elsewhere1@h/x, \
            host=db password='Quoted Pw' dbname=portal)\n";
        let msg = failure_message("pg_dump", "exit status: 1", stderr, &["S3cr@t".to_owned()]);
        for secret in ["S3cr@t", "S3cr%40t", "Elsewhere1", "Quoted Pw"] {
            assert!(!msg.contains(secret), "{secret} in {msg}");
        }
        assert_eq!(
            msg,
            "pg_dump failed (exit status: 1): pg_dump: error: connection to server at \"db\" failed: \
             FATAL: password authentication failed for user \"portal\" \
             (postgres://portal:********@db:5432/portal, postgres://other:********@h/x, \
             host=db password='********' dbname=portal)"
        );
        // A short password is still masked everywhere (a config's short
        // secret values are not: they would blank out ordinary words).
        let msg = failure_message(
            "mariadb-dump",
            "exit status: 2",
            b"Got error: pw\n",
            &["pw".to_owned()],
        );
        assert_eq!(
            msg,
            "mariadb-dump failed (exit status: 2): Got error: ********"
        );
    }

    #[test]
    fn debug_masks_secret_params_by_the_one_mask() {
        let c = Conn::parse_postgres(
            "host=/run/postgresql user=u password=pw1 sslpassword=pw2 passfile=/root/.pgpass sslmode=require dbname=d",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
        assert!(shown.contains(MASK), "{shown}");
        // A path and a mode are not secrets.
        assert!(
            shown.contains("/root/.pgpass") && shown.contains("require"),
            "{shown}"
        );
        let c = Conn::parse_mysql("u:Sup3r@tcp(h:3306)/d?tls=true").unwrap();
        assert!(!format!("{c:?}").contains("Sup3r"));
    }

    #[test]
    fn path_search() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("tool");
        fs::write(&exe, "#!/bin/true\n").unwrap();
        let plain = tmp.path().join("plain");
        fs::write(&plain, "").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let var = std::env::join_paths([Path::new("/nonexistent"), tmp.path()]).unwrap();
        assert_eq!(search_path(&var, "tool"), Some(exe));
        assert_eq!(search_path(&var, "plain"), None);
        assert_eq!(search_path(&var, "missing"), None);
        let err = find_tool(&["no-such-tool-upkeep"], "some-package")
            .unwrap_err()
            .to_string();
        assert!(err.contains("some-package"), "{err}");
    }

    #[test]
    fn private_dir_is_private_and_removed() {
        let dir = PrivateDir::new().unwrap();
        let path = dir.path.clone();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = dir.write_secret("f", "secret").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(dir);
        assert!(!path.exists());
    }

    fn sqlite_rows(conn: &Connection) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare("SELECT id, name FROM items ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    }

    #[tokio::test]
    async fn sqlite_dump_and_restore_in_wal_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("portal.db");
        // The product holds the database open in WAL mode.
        let holder = Connection::open(&live).unwrap();
        let mode: String = holder
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        holder
            .execute_batch(
                "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
                 CREATE INDEX items_name ON items(name);",
            )
            .unwrap();
        {
            let tx = holder.unchecked_transaction().unwrap();
            for i in 0..500 {
                tx.execute(
                    "INSERT INTO items(id, name) VALUES (?1, ?2)",
                    (i, format!("item-{i}")),
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        // Rows still only in the -wal file.
        assert!(tmp.path().join("portal.db-wal").exists());
        let dumped = sqlite_rows(&holder);

        let db = resolve(&Database::Sqlite { path: live.clone() })
            .unwrap()
            .unwrap();
        db.preflight().await.unwrap();
        let dest = tmp.path().join("backup.sqlite");
        let artifact = db.dump(&dest).await.unwrap();
        assert_eq!(artifact.kind, Kind::Sqlite);
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert!(!tmp.path().join("backup.sqlite-wal").exists());
        assert!(!partial_path(&dest).exists());
        artifact.verify().unwrap();

        // The failed upgrade's migration.
        holder
            .execute_batch(
                "CREATE TABLE migrated(x INTEGER);
                 INSERT INTO migrated VALUES (1), (2);
                 UPDATE items SET name = 'changed' WHERE id < 100;
                 DELETE FROM items WHERE id >= 400;
                 INSERT INTO items(id, name) VALUES (1000, 'new');",
            )
            .unwrap();
        drop(holder);

        db.restore(&artifact).await.unwrap();
        let check = Connection::open(&live).unwrap();
        assert!(!has_table(&check, "migrated"));
        assert_eq!(sqlite_rows(&check), dumped);
        let mode: String = check
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "the live database keeps its journal mode");
        quick_check(&check).unwrap();
    }

    #[tokio::test]
    async fn sqlite_restore_while_another_connection_is_open() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("p.db");
        let holder = Connection::open(&live).unwrap();
        let _: String = holder
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        holder
            .execute_batch(
                "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);
                 INSERT INTO items VALUES (1, 'a'), (2, 'b');",
            )
            .unwrap();
        let db = Db::Sqlite { path: live.clone() };
        let artifact = db.dump(&tmp.path().join("b.db")).await.unwrap();
        holder
            .execute_batch("CREATE TABLE extra(x); UPDATE items SET name = 'z';")
            .unwrap();
        db.restore(&artifact).await.unwrap();
        // The open connection sees the restored content.
        assert!(!has_table(&holder, "extra"));
        assert_eq!(
            sqlite_rows(&holder),
            vec![(1, "a".to_owned()), (2, "b".to_owned())]
        );
    }

    #[tokio::test]
    async fn sqlite_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::Sqlite {
            path: tmp.path().join("absent.db"),
        };
        let err = db.preflight().await.unwrap_err().to_string();
        assert!(
            err.contains("absent.db") && err.contains("does not exist"),
            "{err}"
        );
        let dest = tmp.path().join("b.db");
        let err = db.dump(&dest).await.unwrap_err().to_string();
        assert!(err.contains("absent.db"), "{err}");
        assert!(!dest.exists() && !partial_path(&dest).exists());

        let junk = tmp.path().join("junk.db");
        fs::write(&junk, "this is not a database at all, just some text").unwrap();
        let artifact = Artifact::of_file(Kind::Sqlite, &junk).unwrap();
        let err = artifact.verify().unwrap_err().to_string();
        assert!(err.contains("junk.db") && !err.contains('\n'), "{err}");

        let other = Artifact {
            kind: Kind::Postgres,
            ..artifact
        };
        let err = db.restore(&other).await.unwrap_err().to_string();
        assert!(err.contains("postgres backup"), "{err}");
    }
}
