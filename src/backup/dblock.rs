//! An advisory lock on the product's own database, held from the stop of
//! its units to the commit of the run (or the end of its revert), so that
//! two nodes sharing one PostgreSQL or MariaDB database never migrate it at
//! once.
//!
//! - PostgreSQL: `pg_try_advisory_lock(KEY)`, KEY a bigint from the first 8
//!   bytes (big-endian) of the SHA-256 of `upkeep:` + the database name.
//!   PostgreSQL keeps such a key in `pg_locks` as `classid` (high 32 bits),
//!   `objid` (low 32 bits), `objsubid = 1`. The lock session's
//!   `application_name` is `upkeep OWNER`, so a waiter names the holder from
//!   `pg_locks` joined with `pg_stat_activity`.
//! - MySQL/MariaDB: `GET_LOCK('upkeep:DATABASE', 0)` (a name longer than 64
//!   characters becomes `upkeep:` + 56 hex digits of its SHA-256). A waiter
//!   names the holder from `IS_USED_LOCK` and `information_schema.PROCESSLIST`
//!   (connection id, user, client host, idle time): MariaDB has no way to
//!   show another session's own text, so the owner is not named there.
//! - SQLite: nothing to lock (one node owns the file).
//!
//! The lock lives as long as one client session: a `psql` or `mariadb`
//! (`mysql`) child with piped stdin and stdout, started like every other
//! database tool of upkeep ([`super::db`]): found in `PATH`, the password in
//! a 0600 `PGPASSFILE` / `--defaults-extra-file` of a private directory
//! (removed once the session is connected), no shell, errors as one masked
//! line. Dropping the [`DbLock`] kills the child; the server sees the
//! connection close and frees the lock.
//!
//! What talking to those clients through pipes showed (PostgreSQL 15.18's
//! psql, MariaDB 10.11's client, each fed one statement at a time):
//!
//! - `psql -X -q -t -A -v ON_ERROR_STOP=1` reading stdin from a pipe is not
//!   interactive, reads line by line and flushes each result: the answer
//!   and a following `\echo MARKER` arrive within milliseconds. Errors go to
//!   stderr; with `ON_ERROR_STOP=1` psql exits (status 3) at the first one.
//!   When the server ends the connection (terminated backend, restart),
//!   non-interactive psql prints "connection to server was lost" and exits
//!   (status 2): it never reconnects.
//! - `mariadb --batch` alone buffers its whole output while stdout is a
//!   pipe (nothing came back until it exited); `--unbuffered` flushes after
//!   each statement, so the answer and a following `SELECT 'MARKER'` arrive
//!   at once. Without `--force` the client exits (status 1) at the first
//!   error, a lost connection included ("ERROR 2013 ... Lost connection");
//!   `--skip-reconnect` is passed as well, so that no client version can
//!   silently reconnect, which would drop the lock while upkeep believes
//!   it holds it.
//!
//! Every statement is followed by a marker line unique to the session; the
//! lines before it are the answer. Any error ends the session (and so the
//! lock): [`DbLock::alive`] then answers false. `alive` also asks the server
//! whether this session still holds the lock.

use std::fmt;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::db::{Db, MySession, PgSession, failure_message, find_tool, mysql_client_tool};
use super::one_line;
use crate::confmerge::Masker;

/// How often the try-lock is repeated while another run holds the lock.
const POLL: Duration = Duration::from_millis(250);

/// How often, at most, a waiter is told who holds the lock.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How long a statement of the lock session may take (the first one
/// includes connecting, which the clients bound to 10 s themselves).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a client may take to exit once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a client's stderr kept for an error message.
const STDERR_KEEP: usize = 16 * 1024;

/// PostgreSQL keeps at most 63 bytes of an `application_name`.
const PG_APPNAME_MAX: usize = 63;

/// MySQL/MariaDB lock names are at most 64 characters.
const MYSQL_LOCK_NAME_MAX: usize = 64;

/// Another upkeep run holds the database's advisory lock.
#[derive(thiserror::Error, Debug)]
#[error(
    "the database {database} is locked by another upkeep run ({holder}); waited {}",
    show_wait(.waited)
)]
pub struct LockBusy {
    /// The database, as [`Db::describe`] shows it (never the password).
    pub database: String,
    /// Who holds the lock, as the server tells (one line, masked).
    pub holder: String,
    /// How long this run waited for it.
    pub waited: std::time::Duration,
}

/// A wait rounded to tenths of a second, such as `1.5s`.
fn show_wait(waited: &Duration) -> String {
    let tenths = (waited.as_millis() + 50) / 100;
    format!("{}.{}s", tenths / 10, tenths % 10)
}

/// What is locked, and the SQL for it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LockKey {
    /// A PostgreSQL advisory lock key.
    Postgres(i64),
    /// A MySQL/MariaDB named lock.
    Mysql(String),
}

impl LockKey {
    /// The PostgreSQL key of a database.
    fn postgres(dbname: &str) -> LockKey {
        let digest = Sha256::digest(format!("upkeep:{dbname}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        LockKey::Postgres(i64::from_be_bytes(first))
    }

    /// The MySQL lock name of a database.
    fn mysql(dbname: &str) -> LockKey {
        let name = format!("upkeep:{dbname}");
        if name.chars().count() <= MYSQL_LOCK_NAME_MAX {
            return LockKey::Mysql(name);
        }
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        LockKey::Mysql(format!("upkeep:{}", &digest[..56]))
    }

    /// The key as PostgreSQL stores it in `pg_locks`: (classid, objid).
    fn pg_parts(key: i64) -> (u32, u32) {
        let bits = u64::from_ne_bytes(key.to_ne_bytes());
        let high = u32::try_from(bits >> 32).unwrap_or(u32::MAX);
        let low = u32::try_from(bits & 0xffff_ffff).unwrap_or(u32::MAX);
        (high, low)
    }

    /// The MySQL lock name as an SQL expression, whatever the `sql_mode`
    /// (no quoting rules involved).
    fn mysql_name_sql(name: &str) -> String {
        format!("CONVERT(X'{}' USING utf8mb4)", hex::encode(name.as_bytes()))
    }

    /// Run once, first: an idle lock session must not be ended by the
    /// server's idle time-out (PostgreSQL's `idle_session_timeout`, from
    /// version 14 on; MySQL's `wait_timeout`, 8 hours by default).
    /// Answers nothing.
    fn setup_sql(&self) -> &'static str {
        match self {
            LockKey::Postgres(_) => {
                "DO $upkeep$ BEGIN PERFORM pg_catalog.set_config('idle_session_timeout', '0', false); \
                 EXCEPTION WHEN undefined_object THEN NULL; END $upkeep$;"
            }
            LockKey::Mysql(_) => "SET SESSION wait_timeout = 31536000;",
        }
    }

    /// One try; answers a boolean.
    fn try_sql(&self) -> String {
        match self {
            LockKey::Postgres(key) => format!("SELECT pg_catalog.pg_try_advisory_lock({key});"),
            LockKey::Mysql(name) => format!("SELECT GET_LOCK({}, 0);", Self::mysql_name_sql(name)),
        }
    }

    /// Who holds the lock; answers one line (empty when nobody does).
    fn holder_sql(&self) -> String {
        match self {
            LockKey::Postgres(key) => {
                let (classid, objid) = Self::pg_parts(*key);
                format!(
                    "SELECT coalesce(string_agg(concat_ws(', ', 'pid ' || l.pid, \
                       'application_name ' || quote_literal(translate(a.application_name, \
                         E'\\n\\r\\t', '   ')), \
                       a.usename || '@' || CASE WHEN a.client_addr IS NOT NULL \
                         THEN host(a.client_addr) WHEN a.client_port = -1 THEN 'local socket' END, \
                       'connected since ' || to_char(a.backend_start AT TIME ZONE 'UTC', \
                         'YYYY-MM-DD HH24:MI:SS') || ' UTC'), '; '), '') \
                     FROM pg_catalog.pg_locks l \
                     LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted \
                       AND l.database = (SELECT oid FROM pg_catalog.pg_database \
                                          WHERE datname = pg_catalog.current_database()) \
                       AND l.classid = {classid} AND l.objid = {objid} AND l.objsubid = 1;"
                )
            }
            LockKey::Mysql(name) => {
                let name = Self::mysql_name_sql(name);
                format!(
                    "SELECT IFNULL((SELECT CONCAT('connection ', p.ID, ', ', p.USER, '@', \
                       p.HOST, IF(p.DB IS NULL, '', CONCAT(', database ', p.DB)), \
                       ', ', p.COMMAND, ' for ', p.TIME, ' s') \
                       FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({name})), \
                       IFNULL(CONCAT('connection ', IS_USED_LOCK({name}), \
                       ' (not visible to this user)'), ''));"
                )
            }
        }
    }

    /// Whether this session still holds the lock (the round trip itself
    /// shows the session answers); answers a boolean.
    fn held_sql(&self) -> String {
        match self {
            LockKey::Postgres(key) => {
                let (classid, objid) = Self::pg_parts(*key);
                format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks \
                     WHERE locktype = 'advisory' AND granted AND pid = pg_catalog.pg_backend_pid() \
                       AND classid = {classid} AND objid = {objid} AND objsubid = 1);"
                )
            }
            LockKey::Mysql(name) => format!(
                "SELECT IFNULL(IS_USED_LOCK({}) = CONNECTION_ID(), 0);",
                Self::mysql_name_sql(name)
            ),
        }
    }

    /// Releases the lock; answers a boolean (false: it was not held).
    fn release_sql(&self) -> String {
        match self {
            LockKey::Postgres(key) => format!("SELECT pg_catalog.pg_advisory_unlock({key});"),
            LockKey::Mysql(name) => {
                format!("SELECT RELEASE_LOCK({});", Self::mysql_name_sql(name))
            }
        }
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockKey::Postgres(key) => write!(f, "pg_advisory_lock({key})"),
            LockKey::Mysql(name) => write!(f, "GET_LOCK('{name}')"),
        }
    }
}

/// The `application_name` of the lock session: `upkeep OWNER`, printable
/// ASCII only (PostgreSQL turns anything else into `?`), at most 63 bytes.
fn pg_application_name(owner: &str) -> String {
    let mut name = String::from("upkeep ");
    for c in owner.chars() {
        if name.len() >= PG_APPNAME_MAX {
            break;
        }
        name.push(if c == ' ' || c.is_ascii_graphic() {
            c
        } else {
            '?'
        });
    }
    name.trim_end().to_owned()
}

/// Counter for unique markers within this process.
static MARKER_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A line no answer holds: it ends each answer.
fn new_marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = MARKER_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("upkeep-end-{}-{nanos:x}-{n}", std::process::id())
}

/// The credential files of a session (removed when dropped), kept until
/// it is connected.
struct Credentials {
    _postgres: Option<PgSession>,
    _mysql: Option<MySession>,
}

/// A live client session, fed one statement at a time.
struct Session {
    /// The client's name for messages (`psql`, `mariadb`, `mysql`).
    tool: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Option<ChildStderr>,
    /// The last of the client's stderr.
    errors: Vec<u8>,
    /// The statement that prints the marker.
    marker_sql: String,
    marker: String,
    /// Removed once connected (the clients never read them again).
    credentials: Option<Credentials>,
    /// The password, for masking.
    secrets: Vec<String>,
    /// The session ended or failed: no more statements.
    ended: bool,
    /// Why it ended, when it failed.
    end_reason: Option<String>,
}

impl Session {
    /// Starts the client; it connects while reading the first statement.
    fn start(db: &Db, owner: &str) -> anyhow::Result<Session> {
        let marker = new_marker();
        let (tool, mut cmd, credentials, secrets, marker_sql) = match db {
            Db::Sqlite { .. } => bail!("SQLite has no advisory locks"),
            Db::Postgres { conn } => {
                let tool = find_tool(&["psql"], "postgresql-client")?;
                let credentials = PgSession::new(conn)?;
                let mut cmd = credentials.command(&tool);
                cmd.env("PGAPPNAME", pg_application_name(owner)).args([
                    "-X",
                    "-w",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                ]);
                let secrets = credentials.secrets.clone();
                (
                    tool,
                    cmd,
                    Credentials {
                        _postgres: Some(credentials),
                        _mysql: None,
                    },
                    secrets,
                    format!("\\echo {marker}"),
                )
            }
            Db::Mysql { conn } => {
                let tool = mysql_client_tool()?;
                let credentials = MySession::new(conn)?;
                let mut cmd = credentials.command(&tool);
                cmd.args([
                    "--batch",
                    "--unbuffered",
                    "--skip-column-names",
                    "--skip-reconnect",
                    "--connect-timeout=10",
                ])
                .arg(format!("--database={}", conn.dbname));
                let secrets = credentials.secrets.clone();
                (
                    tool,
                    cmd,
                    Credentials {
                        _postgres: None,
                        _mysql: Some(credentials),
                    },
                    secrets,
                    format!("SELECT '{marker}';"),
                )
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot run {}: {e}", tool.path.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            bail!("cannot talk to {}", tool.name);
        };
        Ok(Session {
            tool: tool.name,
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            stderr: Some(stderr),
            errors: Vec::new(),
            marker_sql,
            marker,
            credentials: Some(credentials),
            secrets,
            ended: false,
            end_reason: None,
        })
    }

    /// Sends one statement; returns the lines of its answer. Any failure
    /// ends the session.
    async fn ask(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        if self.ended {
            match &self.end_reason {
                Some(reason) => bail!("the session had ended: {reason}"),
                None => bail!("{}: the session had ended", self.tool),
            }
        }
        let answer = self.answer(sql).await;
        if let Err(e) = &answer {
            self.end(&e.to_string());
        }
        answer
    }

    /// Marks the session ended (killing the client, if still there) for
    /// `reason`; the first reason is kept.
    fn end(&mut self, reason: &str) {
        self.ended = true;
        let _ = self.child.start_kill();
        if self.end_reason.is_none() {
            self.end_reason = Some(reason.to_owned());
        }
    }

    /// [`Session::ask`] on a session still running.
    async fn answer(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        match tokio::time::timeout(ANSWER_TIMEOUT, self.exchange(sql)).await {
            Ok(Ok(lines)) => {
                // Connected: the credential files are no longer needed.
                self.credentials = None;
                Ok(lines)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                bail!(
                    "{}: no answer within {} s",
                    self.tool,
                    ANSWER_TIMEOUT.as_secs()
                )
            }
        }
    }

    /// [`Session::ask`] without its time limit.
    async fn exchange(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        let text = format!("{sql}\n{}\n", self.marker_sql);
        let written = match self.stdin.as_mut() {
            Some(stdin) => match stdin.write_all(text.as_bytes()).await {
                Ok(()) => stdin.flush().await,
                Err(e) => Err(e),
            },
            None => bail!("{}: the session has ended", self.tool),
        };
        if written.is_err() {
            // The client has gone (a broken pipe): its stderr tells why.
            return Err(self.ended_error().await);
        }
        let mut lines = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            tokio::select! {
                line = self.stdout.next_line() => match line {
                    Ok(Some(line)) if line == self.marker => return Ok(lines),
                    Ok(Some(line)) => lines.push(line),
                    Ok(None) | Err(_) => return Err(self.ended_error().await),
                },
                read = read_some(&mut self.stderr, &mut chunk), if self.stderr.is_some() => {
                    match read {
                        Some(n) => self.keep_errors(&chunk[..n]),
                        None => self.stderr = None,
                    }
                }
            }
        }
    }

    fn keep_errors(&mut self, bytes: &[u8]) {
        self.errors.extend_from_slice(bytes);
        if self.errors.len() > STDERR_KEEP {
            let cut = self.errors.len() - STDERR_KEEP;
            self.errors.drain(..cut);
        }
    }

    /// The client has ended (its stdout closed): one masked line with its
    /// exit status and last error.
    async fn ended_error(&mut self) -> anyhow::Error {
        self.ended = true;
        self.stdin = None;
        let mut chunk = [0u8; 4096];
        let rest = async {
            while let Some(n) = read_some(&mut self.stderr, &mut chunk).await {
                self.keep_errors(&chunk[..n]);
            }
        };
        let _ = tokio::time::timeout(EXIT_TIMEOUT, rest).await;
        let status = match tokio::time::timeout(EXIT_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("cannot wait for it: {e}"),
            Err(_) => {
                let _ = self.child.start_kill();
                "did not exit".to_owned()
            }
        };
        anyhow!(failure_message(
            self.tool,
            &status,
            &self.errors,
            &self.secrets
        ))
    }

    /// Sends a statement answering one boolean (`t`/`f`, `1`/`0`).
    async fn ask_bool(&mut self, sql: &str) -> anyhow::Result<bool> {
        let lines = self.ask(sql).await?;
        match lines.as_slice() {
            [one] if one == "t" || one == "1" => Ok(true),
            [one] if one == "f" || one == "0" || one == "NULL" => Ok(false),
            _ => {
                let reason = format!("{}: unexpected answer from the server", self.tool);
                self.end(&reason);
                bail!(reason)
            }
        }
    }

    /// Sends a statement answering one line of text (masked).
    async fn ask_text(&mut self, sql: &str) -> anyhow::Result<String> {
        let lines = self.ask(sql).await?;
        let text = lines.join(" ");
        let masker = Masker::portal_default().with_every_known_secret();
        let known: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        Ok(one_line(&masker.mask_text(&text, &known)))
    }

    /// Ends the session: closes its stdin and waits for the client to exit.
    async fn close(mut self) -> anyhow::Result<()> {
        self.stdin = None;
        let mut chunk = [0u8; 4096];
        let drain = async {
            while let Some(n) = read_some(&mut self.stderr, &mut chunk).await {
                self.keep_errors(&chunk[..n]);
            }
            self.child.wait().await
        };
        match tokio::time::timeout(EXIT_TIMEOUT, drain).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(anyhow!(failure_message(
                self.tool,
                &status.to_string(),
                &self.errors,
                &self.secrets
            ))),
            Ok(Err(e)) => Err(anyhow!("{}: cannot wait for it: {e}", self.tool)),
            Err(_) => {
                let _ = self.child.start_kill();
                bail!(
                    "{}: did not exit within {} s of the end of its input",
                    self.tool,
                    EXIT_TIMEOUT.as_secs()
                )
            }
        }
    }
}

/// Reads what is there from stderr: None at its end (or on an error).
async fn read_some(stderr: &mut Option<ChildStderr>, chunk: &mut [u8]) -> Option<usize> {
    match stderr.as_mut()?.read(chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// The advisory lock on the product's database, held while this lives: a
/// live client session (a `psql`/`mariadb` child with piped stdin and
/// stdout, killed on drop). Dropping it ends the session and so frees the
/// lock; [`DbLock::release`] frees it explicitly.
pub struct DbLock {
    session: Session,
    key: LockKey,
    /// The database, for messages.
    database: String,
}

impl fmt::Debug for DbLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbLock")
            .field("database", &self.database)
            .field("key", &self.key.to_string())
            .field("tool", &self.session.tool)
            .field("ended", &self.session.ended)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Takes the database's advisory lock for `owner` (a short text such as
    /// `"node web1 run 42"`), waiting up to `wait` while another run holds
    /// it.
    ///
    /// SQLite: Ok(None) (nothing to lock). Postgres/MySQL: polls the
    /// try-lock every ~250 ms until `wait` elapses; calls `on_wait(holder,
    /// waited)` at most once a second while waiting; on time-out returns an
    /// anyhow error whose root cause is [`LockBusy`] (downcastable).
    ///
    /// # Errors
    ///
    /// [`LockBusy`] on time-out; otherwise the client is missing, cannot
    /// connect (such as a wrong password) or fails: one line, password
    /// masked.
    pub async fn advisory_lock(
        &self,
        owner: &str,
        wait: Duration,
        on_wait: &mut (dyn FnMut(&str, Duration) + Send),
    ) -> anyhow::Result<Option<DbLock>> {
        let key = match self {
            Db::Sqlite { .. } => return Ok(None),
            Db::Postgres { conn } => LockKey::postgres(&conn.dbname),
            Db::Mysql { conn } => LockKey::mysql(&conn.dbname),
        };
        let what = format!("advisory lock {key}");
        let fail = |e: anyhow::Error| self.fail(&what, &e);
        let mut session = Session::start(self, owner).map_err(fail)?;
        session.ask(key.setup_sql()).await.map_err(fail)?;
        let started = Instant::now();
        let mut reported: Option<Instant> = None;
        let mut holder = String::new();
        loop {
            if session.ask_bool(&key.try_sql()).await.map_err(fail)? {
                return Ok(Some(DbLock {
                    session,
                    key,
                    database: self.describe(),
                }));
            }
            let now_holding = session.ask_text(&key.holder_sql()).await.map_err(fail)?;
            if !now_holding.is_empty() {
                holder = now_holding;
            }
            let shown = if holder.is_empty() {
                "holder unknown"
            } else {
                holder.as_str()
            };
            let waited = started.elapsed();
            if waited >= wait {
                drop(session);
                return Err(LockBusy {
                    database: self.describe(),
                    holder: shown.to_owned(),
                    waited,
                }
                .into());
            }
            if reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
                on_wait(shown, waited);
                reported = Some(Instant::now());
            }
            tokio::time::sleep(POLL.min(wait.saturating_sub(waited))).await;
        }
    }
}

impl DbLock {
    /// What was locked, for messages and the journal: such as
    /// `pg_advisory_lock(-4372170013312093435)` or
    /// `GET_LOCK('upkeep:portal')`.
    #[must_use]
    pub fn key(&self) -> String {
        self.key.to_string()
    }

    /// Whether the session still answers (a round trip) and still holds
    /// the lock. Once false, always false: the session has ended.
    pub async fn alive(&mut self) -> bool {
        match self.session.ask_bool(&self.key.held_sql()).await {
            Ok(true) => true,
            Ok(false) => {
                self.session.end("the session no longer held the lock");
                false
            }
            // The session has ended, and knows why.
            Err(_) => false,
        }
    }

    /// Releases the lock (`pg_advisory_unlock` / `RELEASE_LOCK`), then ends
    /// the session.
    ///
    /// # Errors
    ///
    /// The session had ended, the lock was no longer held by it, or the
    /// client did not exit cleanly; one line. The lock is free afterwards
    /// in every case (the session is gone).
    pub async fn release(mut self) -> anyhow::Result<()> {
        let what = format!("release of {}", self.key);
        let database = self.database.clone();
        let fail = |e: anyhow::Error| anyhow!(one_line(&format!("{database}: {what}: {e:#}")));
        let released = self
            .session
            .ask_bool(&self.key.release_sql())
            .await
            .map_err(fail)?;
        if !released {
            return Err(fail(anyhow!("the lock was no longer held by this session")));
        }
        self.session.close().await.map_err(fail)
    }

    /// The process id of the session's client (tests look at its command
    /// line and kill it).
    #[cfg(test)]
    pub(crate) fn session_pid(&self) -> Option<u32> {
        self.session.child.id()
    }
}

#[cfg(test)]
#[path = "dblock_tests.rs"]
mod live_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_split_as_postgres_stores_them() {
        let key = LockKey::postgres("portal");
        assert_eq!(key, LockKey::postgres("portal"));
        assert_ne!(key, LockKey::postgres("portal2"));
        let LockKey::Postgres(k) = key else {
            panic!("{key:?}")
        };
        let digest = Sha256::digest(b"upkeep:portal");
        assert_eq!(k.to_be_bytes(), digest[..8]);
        let (classid, objid) = LockKey::pg_parts(k);
        assert_eq!((u64::from(classid) << 32) | u64::from(objid), k as u64);
        assert_eq!(LockKey::pg_parts(-1), (u32::MAX, u32::MAX));
        assert_eq!(LockKey::pg_parts(1), (0, 1));
        assert_eq!(
            LockKey::postgres("portal").to_string(),
            format!("pg_advisory_lock({k})")
        );
    }

    #[test]
    fn mysql_names_fit_in_64_characters() {
        assert_eq!(
            LockKey::mysql("portal"),
            LockKey::Mysql("upkeep:portal".to_owned())
        );
        assert_eq!(
            LockKey::mysql("portal").to_string(),
            "GET_LOCK('upkeep:portal')"
        );
        let long = "d".repeat(64);
        let LockKey::Mysql(name) = LockKey::mysql(&long) else {
            panic!()
        };
        assert_eq!(name.len(), 63);
        assert!(name.starts_with("upkeep:"));
        assert_eq!(LockKey::mysql(&long), LockKey::mysql(&long));
        assert_ne!(LockKey::mysql(&long), LockKey::mysql(&"e".repeat(64)));
        assert_eq!(
            LockKey::mysql_name_sql("a'b"),
            "CONVERT(X'612762' USING utf8mb4)"
        );
    }

    #[test]
    fn application_name_is_printable_and_short() {
        assert_eq!(
            pg_application_name("node web1 run 42"),
            "upkeep node web1 run 42"
        );
        assert_eq!(pg_application_name("nœud\n1"), "upkeep n?ud?1");
        assert_eq!(pg_application_name(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn busy_is_one_line_with_a_rounded_wait() {
        let busy = LockBusy {
            database: "postgres portal@127.0.0.1:5432/portal".to_owned(),
            holder: "pid 7, application_name 'upkeep node a'".to_owned(),
            waited: Duration::from_millis(1_503),
        };
        assert_eq!(
            busy.to_string(),
            "the database postgres portal@127.0.0.1:5432/portal is locked by another upkeep run \
             (pid 7, application_name 'upkeep node a'); waited 1.5s"
        );
        assert_eq!(show_wait(&Duration::ZERO), "0.0s");
        assert_eq!(show_wait(&Duration::from_secs(2)), "2.0s");
    }
}
