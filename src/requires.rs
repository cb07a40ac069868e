//! `[[targets.NAME.requires]]`: what a product version needs of the host —
//! the operating system, the database server's own version, memory and free
//! disk space — checked by `plan` and `upgrade` for every hop whose version
//! matches the rule, before anything changes. A rule that does not hold is a
//! blocking preflight check (exit 3) naming the rule, the value found and
//! the value wanted: `requires[0].os: found debian 12, wanted rhel >= 8`.
//!
//! The facts are read under an injectable root (`etc/os-release`,
//! `proc/meminfo`), so tests work on fixture directories; the database
//! server is asked through its own client program ([`Db::server_version`]).
//! Versions of operating systems and servers compare as dotted numbers
//! (`12` < `12.4` < `13`; missing parts are zero); sizes are parsed by
//! [`parse_size`] (`2GiB`, `512MiB`, `5GB`, `1024`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backup::db::Db;

/// One `[[targets.NAME.requires]]` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The product versions (semver) the rule applies to (default: all).
    pub version: semver::VersionReq,
    /// Operating systems, any one of which satisfies the rule (empty: any).
    pub os: Vec<Spec>,
    /// Database servers; the entry of the server kind in use must hold
    /// (empty: no requirement).
    pub database: Vec<Spec>,
    /// Least `MemTotal`, in bytes.
    pub memory: Option<u64>,
    /// Least free space on the install's file system, in bytes.
    pub disk: Option<u64>,
}

/// A comparison operator of a [`Spec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `=` or `==`
    Eq,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "=",
        }
    }

    fn holds(self, found: &[u64], wanted: &[u64]) -> bool {
        let o = compare(found, wanted);
        match self {
            Op::Ge => o.is_ge(),
            Op::Gt => o.is_gt(),
            Op::Le => o.is_le(),
            Op::Lt => o.is_lt(),
            Op::Eq => o.is_eq(),
        }
    }
}

/// `NAME [OP VERSION]`, such as `debian >= 11` or `postgresql >= 12`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The OS `ID` or the database kind (`postgresql`, `mysql`, `mariadb`),
    /// lower case.
    pub name: String,
    /// The version bound, if any.
    pub bound: Option<(Op, Vec<u64>)>,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bound {
            None => f.write_str(&self.name),
            Some((op, v)) => write!(f, "{} {} {}", self.name, op.text(), dotted(v)),
        }
    }
}

impl Spec {
    /// Parses `NAME [OP VERSION]`.
    ///
    /// # Errors
    ///
    /// An empty name, an unknown operator or a version that is not dotted
    /// numbers; the message shows an example.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let bad = |why: &str| {
            format!(
                "invalid {text:?}: {why} (write it as NAME, or NAME OP VERSION such as \"debian >= 11\")"
            )
        };
        let t = text.trim();
        let end = t
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '='))
            .unwrap_or(t.len());
        let name = &t[..end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(bad("no name"));
        }
        let rest = t[end..].trim_start();
        if rest.is_empty() {
            return Ok(Spec {
                name: name.to_ascii_lowercase(),
                bound: None,
            });
        }
        let (op, version) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(|| bad("unknown operator; use >=, >, <=, <, ="))?;
        let parts =
            parse_dotted(version).ok_or_else(|| bad("the version is not dotted numbers"))?;
        Ok(Spec {
            name: name.to_ascii_lowercase(),
            bound: Some((op, parts)),
        })
    }

    /// Whether `version` (dotted numbers) satisfies the bound.
    fn holds(&self, version: Option<&[u64]>) -> bool {
        match (&self.bound, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, wanted)), Some(found)) => op.holds(found, wanted),
        }
    }
}

/// `12.4` → `[12, 4]`; `None` unless every part is digits.
fn parse_dotted(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() {
        return None;
    }
    text.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// The leading dotted numbers of `text`: `16.4 (Debian ...)` → `[16, 4]`,
/// `10.11.6-MariaDB` → `[10, 11, 6]`.
pub fn leading_dotted(text: &str) -> Option<Vec<u64>> {
    let t = text.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    parse_dotted(t[..end].trim_end_matches('.'))
}

fn dotted(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Dotted numeric order; missing parts count as zero (`12` = `12.0`).
fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Parses a size: a number, optionally with a unit `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000), `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), or the
/// shorthand `K`/`M`/`G`/`T` (powers of 1024); case-insensitive, spaces
/// allowed before the unit; a fraction such as `1.5GiB` is allowed.
///
/// # Errors
///
/// No number, an unknown unit, or a size of zero or beyond 2^64 bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..end], t[end..].trim());
    let bad = || format!("invalid size {text:?} (examples: \"2GiB\", \"512MiB\", \"5GB\")");
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !(1.0..18_446_744_073_709_551_615.0).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// The host's `/etc/os-release`: `ID`, `ID_LIKE`, `VERSION_ID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, lower case (`debian`, `rhel`, `rocky`).
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_ID` (`12`, `9.4`); absent on rolling releases.
    pub version_id: Option<String>,
}

impl OsRelease {
    /// Parses os-release(5) text: `KEY=value`, the value optionally quoted.
    pub fn parse(text: &str) -> OsRelease {
        let mut out = OsRelease::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value)
                .replace("\\\"", "\"");
            match key.trim() {
                "ID" => out.id = value.to_ascii_lowercase(),
                "ID_LIKE" => {
                    out.id_like = value
                        .split_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect();
                }
                "VERSION_ID" if !value.is_empty() => out.version_id = Some(value),
                _ => {}
            }
        }
        out
    }

    /// Reads `ROOT/etc/os-release`, else `ROOT/usr/lib/os-release`.
    ///
    /// # Errors
    ///
    /// Neither file can be read.
    pub fn read(root: &Path) -> Result<OsRelease, String> {
        let first = root.join("etc/os-release");
        match std::fs::read_to_string(&first)
            .or_else(|_| std::fs::read_to_string(root.join("usr/lib/os-release")))
        {
            Ok(text) => Ok(OsRelease::parse(&text)),
            Err(e) => Err(format!("cannot read {}: {e}", first.display())),
        }
    }

    /// `debian 12` (what `found` shows).
    pub fn describe(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{} {v}", self.id),
            None => format!("{} (no VERSION_ID)", self.id),
        }
    }

    /// Whether `spec` names this system (its `ID` or one of `ID_LIKE`) at a
    /// version that satisfies the bound.
    pub fn satisfies(&self, spec: &Spec) -> bool {
        let named = self.id == spec.name || self.id_like.contains(&spec.name);
        let version = self.version_id.as_deref().and_then(leading_dotted);
        named && spec.holds(version.as_deref())
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let mut words = rest.split_whitespace();
        let n: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => n.checked_mul(1024),
            _ => None,
        }
    })
}

/// The kind of a database server, as a requirement names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// PostgreSQL.
    Postgresql,
    /// MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
}

impl ServerKind {
    /// The name in a requirement.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Postgresql => "postgresql",
            ServerKind::Mysql => "mysql",
            ServerKind::Mariadb => "mariadb",
        }
    }
}

/// A database spec's name, with its aliases.
fn server_kind(name: &str) -> Option<ServerKind> {
    match name {
        "postgresql" | "postgres" | "pgsql" => Some(ServerKind::Postgresql),
        "mysql" => Some(ServerKind::Mysql),
        "mariadb" => Some(ServerKind::Mariadb),
        _ => None,
    }
}

/// Checks a database spec's name when the config is read.
///
/// # Errors
///
/// Not one of `postgresql`, `mysql`, `mariadb`.
pub fn check_database_spec(spec: &Spec) -> Result<(), String> {
    match server_kind(&spec.name) {
        Some(_) => Ok(()),
        None => Err(format!(
            "unknown database {:?}; use postgresql, mysql or mariadb",
            spec.name
        )),
    }
}

/// A server's version as it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// The kind (MariaDB tells itself apart from MySQL in its version).
    pub kind: ServerKind,
    /// The dotted version.
    pub version: Vec<u64>,
}

impl ServerVersion {
    /// From the answer to `SHOW server_version` (PostgreSQL:
    /// `16.4 (Debian 16.4-1.pgdg120+1)`) or `SELECT VERSION()` (MySQL:
    /// `8.0.36-0ubuntu0.22.04.1`; MariaDB: `10.11.6-MariaDB-0+deb12u1`, or
    /// behind a replication prefix `5.5.5-10.11.6-MariaDB`).
    pub fn parse(postgres: bool, answer: &str) -> Option<ServerVersion> {
        let answer = answer.trim();
        if postgres {
            return Some(ServerVersion {
                kind: ServerKind::Postgresql,
                version: leading_dotted(answer)?,
            });
        }
        if answer.to_ascii_lowercase().contains("mariadb") {
            let text = answer.strip_prefix("5.5.5-").unwrap_or(answer);
            return Some(ServerVersion {
                kind: ServerKind::Mariadb,
                version: leading_dotted(text)?,
            });
        }
        Some(ServerVersion {
            kind: ServerKind::Mysql,
            version: leading_dotted(answer)?,
        })
    }

    /// `mariadb 10.11.6`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind.name(), dotted(&self.version))
    }
}

/// What a rule is checked against; `Err` says why a fact is unknown (which
/// fails the rules that need it).
#[derive(Clone, Debug)]
pub struct Facts {
    /// The operating system.
    pub os: Result<OsRelease, String>,
    /// `MemTotal` in bytes.
    pub memory: Result<u64, String>,
    /// Free bytes on the install's file system, and the directory asked.
    pub disk: (PathBuf, Result<u64, String>),
    /// The database server (`Ok(None)`: the target has no server database).
    pub database: Result<Option<ServerVersion>, String>,
}

impl Facts {
    /// Reads the OS and memory under `root`, the free space at
    /// `root`/`install_dir` (or its nearest existing ancestor), and asks
    /// `db` its version (only when `want_db`).
    pub async fn gather(root: &Path, install_dir: &Path, db: Option<&Db>, want_db: bool) -> Facts {
        let os = OsRelease::read(root);
        let meminfo = root.join("proc/meminfo");
        let memory = std::fs::read_to_string(&meminfo)
            .map_err(|e| format!("cannot read {}: {e}", meminfo.display()))
            .and_then(|t| {
                mem_total(&t).ok_or_else(|| format!("no MemTotal in {}", meminfo.display()))
            });
        let at = root.join(install_dir.strip_prefix("/").unwrap_or(install_dir));
        let free = crate::orchestrator::review::free_space(&at)
            .ok_or_else(|| format!("cannot tell the free space of {}", install_dir.display()));
        let database = match db {
            _ if !want_db => Ok(None),
            None | Some(Db::Sqlite { .. }) => Ok(None),
            Some(db) => match db.server_version().await {
                Ok((postgres, answer)) => ServerVersion::parse(postgres, &answer)
                    .map(Some)
                    .ok_or_else(|| format!("cannot read a version in {answer:?}")),
                Err(e) => Err(crate::error::one_line(&e)),
            },
        };
        Facts {
            os,
            memory,
            disk: (install_dir.to_path_buf(), free),
            database: database.map_err(|e| {
                crate::confmerge::Masker::portal_default()
                    .with_every_known_secret()
                    .mask_text(&e, &[])
            }),
        }
    }
}

/// The result of one rule key checked for one hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `requires[0].os`.
    pub rule: String,
    /// The package version of the first hop the rule applies to.
    pub version: String,
    /// What the host has.
    pub found: String,
    /// What the rule wants.
    pub wanted: String,
    /// Whether it holds.
    pub ok: bool,
}

impl Outcome {
    /// `requires[0].os: found debian 12, wanted rhel >= 8 (for 2.1.0-1)`.
    pub fn message(&self) -> String {
        format!(
            "{}: found {}, wanted {} (for {})",
            self.rule, self.found, self.wanted, self.version
        )
    }
}

fn join_specs(specs: &[Spec]) -> String {
    specs
        .iter()
        .map(Spec::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn human(bytes: u64) -> String {
    crate::orchestrator::review::human(bytes)
}

/// Judges rule `index` (applying to `version`) against the facts: one
/// outcome per key the rule sets.
pub fn judge(index: usize, rule: &Requirement, version: &str, facts: &Facts) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut push = |key: &str, found: String, wanted: String, ok: bool| {
        out.push(Outcome {
            rule: format!("requires[{index}].{key}"),
            version: version.to_string(),
            found,
            wanted,
            ok,
        });
    };
    if !rule.os.is_empty() {
        let wanted = join_specs(&rule.os);
        match &facts.os {
            Ok(os) => push(
                "os",
                os.describe(),
                wanted,
                rule.os.iter().any(|s| os.satisfies(s)),
            ),
            Err(e) => push("os", e.clone(), wanted, false),
        }
    }
    if !rule.database.is_empty() {
        let wanted = join_specs(&rule.database);
        match &facts.database {
            Ok(Some(server)) => {
                let entry = rule
                    .database
                    .iter()
                    .find(|s| server_kind(&s.name) == Some(server.kind));
                let (wanted, ok) = match entry {
                    Some(s) => (s.to_string(), s.holds(Some(&server.version))),
                    None => (wanted, false),
                };
                push("database", server.describe(), wanted, ok);
            }
            Ok(None) => push("database", "no database server".into(), wanted, false),
            Err(e) => push("database", e.clone(), wanted, false),
        }
    }
    if let Some(need) = rule.memory {
        let wanted = format!("at least {}", human(need));
        match &facts.memory {
            Ok(total) => push(
                "memory",
                format!("{} (MemTotal)", human(*total)),
                wanted,
                *total >= need,
            ),
            Err(e) => push("memory", e.clone(), wanted, false),
        }
    }
    if let Some(need) = rule.disk {
        let wanted = format!("at least {} free", human(need));
        let (dir, free) = &facts.disk;
        match free {
            Ok(free) => push(
                "disk",
                format!("{} free in {}", human(*free), dir.display()),
                wanted,
                *free >= need,
            ),
            Err(e) => push("disk", e.clone(), wanted, false),
        }
    }
    out
}

/// The rules that apply to a path of hops: each rule once, with the first
/// hop (package version) whose product version matches it.
pub fn applying<'a>(
    rules: &'a [Requirement],
    family: crate::version::Family,
    hops: &[String],
) -> Vec<(usize, &'a Requirement, String)> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            hops.iter()
                .find(|v| {
                    crate::version::PkgVersion::parse(family, v)
                        .ok()
                        .and_then(|p| p.product())
                        .is_some_and(|p| r.version.matches(&p))
                })
                .map(|v| (i, r, v.clone()))
        })
        .collect()
}

/// Where the `disk` rule looks: the directory of the target's first config
/// file (the product's install root, such as `/opt/portal`), else `/opt`.
pub fn install_dir(target: &crate::config::Target) -> PathBuf {
    target
        .config_files
        .first()
        .and_then(|f| f.parent())
        .map_or_else(|| PathBuf::from("/opt"), Path::to_path_buf)
}

/// Checks the target's rules for a path of hops (package versions) on the
/// host under `root`.
pub async fn check(
    target: &crate::config::Target,
    hops: &[String],
    root: &Path,
    db: Option<&Db>,
) -> Vec<Outcome> {
    let rules = applying(&target.requires, target.family, hops);
    if rules.is_empty() {
        return Vec::new();
    }
    let want_db = rules.iter().any(|(_, r, _)| !r.database.is_empty());
    let facts = Facts::gather(root, &install_dir(target), db, want_db).await;
    rules
        .iter()
        .flat_map(|(i, r, v)| judge(*i, r, v, &facts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Spec {
        Spec::parse(s).unwrap()
    }

    fn rule(os: &[&str], database: &[&str]) -> Requirement {
        Requirement {
            version: semver::VersionReq::STAR,
            os: os.iter().map(|s| spec(s)).collect(),
            database: database.iter().map(|s| spec(s)).collect(),
            memory: None,
            disk: None,
        }
    }

    fn facts(os: &str) -> Facts {
        Facts {
            os: Ok(OsRelease::parse(os)),
            memory: Ok(4 << 30),
            disk: ("/opt/portal".into(), Ok(10 << 30)),
            database: Ok(None),
        }
    }

    const DEBIAN12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
    const ROCKY9: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n";
    const ARCH: &str = "NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n";

    #[test]
    fn requires_specs_parse_and_print() {
        assert_eq!(spec("debian >= 11").to_string(), "debian >= 11");
        assert_eq!(spec("RHEL>=8.6").to_string(), "rhel >= 8.6");
        assert_eq!(spec("mysql == 8.0").to_string(), "mysql = 8.0");
        assert_eq!(spec("ubuntu").bound, None);
        assert_eq!(spec("alpine<3.20").bound, Some((Op::Lt, vec![3, 20])));
        for bad in [
            "",
            ">= 11",
            "debian >= eleven",
            "debian ~ 11",
            "debian >=",
            "debian >= 11.x",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad:?}");
        }
        assert!(check_database_spec(&spec("oracle >= 19")).is_err());
        assert!(check_database_spec(&spec("postgres >= 12")).is_ok());
    }

    #[test]
    fn requires_sizes_parse() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("4g"), Ok(4 << 30));
        for bad in [
            "",
            "GiB",
            "2 parsecs",
            "0",
            "-1GiB",
            "1e3",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requires_os_matches_id_id_like_and_version() {
        let debian = OsRelease::parse(DEBIAN12);
        assert_eq!(debian.describe(), "debian 12");
        assert!(debian.satisfies(&spec("debian >= 11")));
        assert!(debian.satisfies(&spec("debian")));
        assert!(!debian.satisfies(&spec("debian >= 13")));
        assert!(!debian.satisfies(&spec("rhel >= 8")));
        let rocky = OsRelease::parse(ROCKY9);
        assert!(rocky.satisfies(&spec("rhel >= 8")), "by ID_LIKE");
        assert!(rocky.satisfies(&spec("rocky > 9.3")));
        assert!(!rocky.satisfies(&spec("rhel >= 9.5")));
        assert!(rocky.satisfies(&spec("rhel = 9.4")));
        let arch = OsRelease::parse(ARCH);
        assert_eq!(arch.describe(), "arch (no VERSION_ID)");
        assert!(arch.satisfies(&spec("arch")));
        assert!(
            !arch.satisfies(&spec("arch >= 1")),
            "no VERSION_ID, no bound holds"
        );

        let r = rule(&["rhel >= 8"], &[]);
        let o = judge(0, &r, "2.1.0-1", &facts(DEBIAN12));
        assert_eq!(o.len(), 1);
        assert!(!o[0].ok);
        assert_eq!(
            o[0].message(),
            "requires[0].os: found debian 12, wanted rhel >= 8 (for 2.1.0-1)"
        );
        let r = rule(&["debian >= 11", "rhel >= 8"], &[]);
        let o = judge(3, &r, "2.1.0-1", &facts(ROCKY9));
        assert!(o[0].ok, "{o:?}");
        assert_eq!(o[0].wanted, "debian >= 11 or rhel >= 8");
        assert_eq!(o[0].rule, "requires[3].os");
    }

    #[test]
    fn requires_os_release_from_a_fixture_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OsRelease::read(dir.path()).is_err());
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), ROCKY9).unwrap();
        assert_eq!(OsRelease::read(dir.path()).unwrap().id, "rocky");
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), DEBIAN12).unwrap();
        assert_eq!(OsRelease::read(dir.path()).unwrap().id, "debian");
    }

    #[tokio::test]
    async fn requires_memory_and_disk_on_a_fixture_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), DEBIAN12).unwrap();
        std::fs::write(
            dir.path().join("proc/meminfo"),
            "MemTotal:        2009852 kB\nMemFree:          123456 kB\n",
        )
        .unwrap();
        let f = Facts::gather(dir.path(), Path::new("/opt/portal"), None, false).await;
        assert_eq!(f.memory, Ok(2009852 * 1024));
        assert_eq!(f.os.as_ref().unwrap().id, "debian");
        let free = *f.disk.1.as_ref().unwrap();
        let mut r = rule(&[], &[]);
        r.memory = Some(parse_size("2GiB").unwrap());
        r.disk = Some(1);
        let o = judge(0, &r, "2.0.0-1", &f);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].rule, "requires[0].memory");
        assert!(!o[0].ok, "1.9 GiB < 2 GiB: {o:?}");
        assert_eq!(o[0].found, "1.9 GiB (MemTotal)");
        assert_eq!(o[0].wanted, "at least 2.0 GiB");
        assert_eq!(o[1].rule, "requires[0].disk");
        assert!(o[1].ok, "{o:?}");
        assert!(o[1].found.ends_with("free in /opt/portal"), "{o:?}");
        r.disk = Some(free.saturating_mul(4).max(1 << 50));
        assert!(!judge(0, &r, "2.0.0-1", &f)[1].ok);
        r.memory = Some(1 << 30);
        assert!(judge(0, &r, "2.0.0-1", &f)[0].ok);

        // No meminfo: the memory rule fails, saying why.
        std::fs::remove_file(dir.path().join("proc/meminfo")).unwrap();
        let f = Facts::gather(dir.path(), Path::new("/opt/portal"), None, false).await;
        let o = judge(0, &r, "2.0.0-1", &f);
        assert!(!o[0].ok && o[0].found.contains("cannot read"), "{o:?}");
        assert_eq!(mem_total("MemTotal: 12 MB\n"), None);
    }

    #[test]
    fn requires_database_versions_of_real_servers() {
        let v = |pg: bool, s: &str| ServerVersion::parse(pg, s).unwrap();
        assert_eq!(
            v(true, "16.4 (Debian 16.4-1.pgdg120+1)").describe(),
            "postgresql 16.4"
        );
        assert_eq!(v(true, "15.8").describe(), "postgresql 15.8");
        assert_eq!(v(true, "17beta1").describe(), "postgresql 17");
        assert_eq!(
            v(false, "10.11.6-MariaDB-0+deb12u1").describe(),
            "mariadb 10.11.6"
        );
        assert_eq!(
            v(false, "5.5.5-10.6.18-MariaDB").describe(),
            "mariadb 10.6.18"
        );
        assert_eq!(
            v(false, "8.0.36-0ubuntu0.22.04.1").describe(),
            "mysql 8.0.36"
        );
        assert_eq!(v(false, "8.4.2").describe(), "mysql 8.4.2");
        assert!(ServerVersion::parse(true, "unknown").is_none());

        let r = rule(
            &[],
            &["postgresql >= 12", "mysql >= 8.0", "mariadb >= 10.6"],
        );
        let mut f = facts(DEBIAN12);
        f.database = Ok(Some(v(false, "10.11.6-MariaDB-0+deb12u1")));
        let o = judge(1, &r, "2.1.0-1", &f);
        assert!(o[0].ok, "{o:?}");
        assert_eq!(o[0].wanted, "mariadb >= 10.6");
        f.database = Ok(Some(v(false, "10.5.2-MariaDB")));
        assert!(!judge(1, &r, "2.1.0-1", &f)[0].ok);
        f.database = Ok(Some(v(true, "11.22")));
        let o = judge(1, &r, "2.1.0-1", &f);
        assert_eq!(
            o[0].message(),
            "requires[1].database: found postgresql 11.22, wanted postgresql >= 12 (for 2.1.0-1)"
        );
        // A kind the rule does not list fails.
        let r = rule(&[], &["postgresql >= 12"]);
        f.database = Ok(Some(v(false, "8.0.36")));
        let o = judge(0, &r, "2.1.0-1", &f);
        assert!(!o[0].ok);
        assert_eq!(o[0].found, "mysql 8.0.36");
        f.database = Ok(None);
        assert_eq!(judge(0, &r, "2.1.0-1", &f)[0].found, "no database server");
    }

    #[test]
    fn requires_apply_to_matching_hops_once() {
        let mut early = rule(&["debian"], &[]);
        early.version = semver::VersionReq::parse("<2.0.0").unwrap();
        let mut late = rule(&["debian"], &[]);
        late.version = semver::VersionReq::parse(">=2.0.0").unwrap();
        let rules = [early, late, rule(&["debian"], &[])];
        let hops = ["1.5.0-1".to_string(), "2.1.0-1".to_string()];
        let a = applying(&rules, crate::version::Family::Deb, &hops);
        let got: Vec<(usize, &str)> = a.iter().map(|(i, _, v)| (*i, v.as_str())).collect();
        assert_eq!(got, [(0, "1.5.0-1"), (1, "2.1.0-1"), (2, "1.5.0-1")]);
        let a = applying(&rules, crate::version::Family::Deb, &hops[1..]);
        assert_eq!(a.len(), 2);
    }
}
