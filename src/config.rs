//! Configuration of `upkeep`: reading, merging and validating the TOML files.
//!
//! The configuration is the main file (by default [`DEFAULT_CONFIG`]) plus
//! drop-ins `conf.d/*.toml` in the main file's directory, applied in lexical
//! (byte) order of their file names after the main file. Files in `conf.d`
//! whose names do not end in `.toml` are ignored, and so are entries that are
//! not regular files (such as directories, or symlinks to `/dev/null` used to
//! mask a drop-in).
//!
//! Every file is first parsed and checked on its own against a schema in which
//! every key is optional and unknown keys are refused, so that a typo is
//! reported against the file that contains it, with the dotted key path and the
//! line and column. The files are then merged: tables are merged deeply, a
//! later value replaces an earlier one, and arrays (including arrays of tables
//! such as `[[targets.<name>.upgrade_path]]`) are replaced whole. The merged
//! document is validated into [`Settings`], which holds no optional values
//! where a default exists.
//!
//! Every failure is a [`ConfigError`] naming the file, the dotted key (when
//! there is one) and what is wrong, and displays on one line as
//! `<file>: <key>: <message>`.
//!
//! ```toml
//! state_dir = "/var/lib/upkeep"
//! keep_versions = 3
//!
//! [targets.portal]
//! package = "portal"
//! services = ["portal.service"]
//!
//! [targets.portal.repository]
//! type = "apt"
//! url = "https://repo.example/portal/debian"
//! suite = "bookworm"
//! component = "main"
//! keyring = "/etc/upkeep/keys/portal.asc"
//! ```

use crate::error::one_line_text;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Path of the main configuration file used when the caller gives none.
pub const DEFAULT_CONFIG: &str = "/etc/upkeep/upkeep.toml";

/// Default of `state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/upkeep";

/// Default of `cache_dir`.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/upkeep";

/// Default of `lock_file`.
pub const DEFAULT_LOCK_FILE: &str = "/run/upkeep.lock";

/// Default of `keep_versions`.
pub const DEFAULT_KEEP_VERSIONS: u32 = 3;

/// Default of `targets.<name>.health.timeout`.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

/// Name of the drop-in directory, next to the main configuration file.
pub const DROP_IN_DIR: &str = "conf.d";

/// Unit name suffixes accepted in `targets.<name>.services`.
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".timer",
    ".target",
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
    ".device",
];

// What is printed in place of a secret: the one mask, confmerge's.
use crate::confmerge::MASK;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// The fully validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Directory for persistent state (journal of upgrades, backups).
    pub state_dir: PathBuf,
    /// Directory for downloaded packages and repository metadata.
    pub cache_dir: PathBuf,
    /// Lock file held while an operation runs.
    pub lock_file: PathBuf,
    /// Number of packages and backups kept per target; at least 1.
    pub keep_versions: u32,
    /// The targets by name; empty when the configuration defines none (the
    /// packaged default), which only commands that need a target refuse.
    pub targets: BTreeMap<String, Target>,
    /// The files read, in the order they were applied (main file first).
    pub sources: Vec<PathBuf>,
    /// `[fleet]`: the nodes this host coordinates its runs with in etcd.
    pub fleet: Option<Fleet>,
}

/// Default of `fleet.slots`.
pub const DEFAULT_FLEET_SLOTS: u32 = 1;
/// Default of `fleet.lease`.
pub const DEFAULT_FLEET_LEASE: Duration = Duration::from_secs(30);
/// Default of `fleet.wait`.
pub const DEFAULT_FLEET_WAIT: Duration = Duration::from_secs(30 * 60);
/// The shortest `fleet.lease`: a keepalive goes out every third of it.
pub const MIN_FLEET_LEASE: Duration = Duration::from_secs(3);

/// `[fleet]`: nodes that share one database and take turns, coordinated by
/// slots in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// etcd v3 endpoints (http or https), tried in order.
    pub etcd: Vec<url::Url>,
    /// CA certificate (PEM) for https endpoints.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// etcd user (with `password_file`).
    pub user: Option<String>,
    /// File holding that user's password.
    pub password_file: Option<PathBuf>,
    /// The nodes that coordinate: every key lives under this group.
    pub group: String,
    /// This node's name; `None`: the host's `/etc/machine-id`.
    pub node: Option<String>,
    /// How many nodes may upgrade at once; at least 1.
    pub slots: u32,
    /// TTL of a held slot, kept alive while the run lives.
    pub lease: Duration,
    /// How long a run waits for a slot (then exit 6).
    pub wait: Duration,
    /// A new version's first node must commit before others start.
    pub canary: bool,
    /// Every known node must have a passing `plan` for the version first.
    pub require_plan_all: bool,
}

/// One product installed from a package and upgraded as a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The target's name (the key under `[targets]`).
    pub name: String,
    /// The product's first package (`packages[0]`): `check` and `versions`
    /// report the product by it, and its version is the product's.
    pub package: String,
    /// Every package of the product (`packages`, or the one `package`),
    /// moved together to the candidate version; never empty, no duplicates,
    /// `package` first.
    pub packages: Vec<String>,
    /// The package family every repository of the target serves (deb: APT
    /// and dpkg; rpm: YUM and rpm).
    pub family: crate::version::Family,
    /// systemd units stopped before and started after the upgrade; never
    /// empty, each with a unit suffix such as `.service`.
    pub services: Vec<String>,
    /// Configuration files of the product (absolute paths).
    pub config_files: Vec<PathBuf>,
    /// Paths archived before every upgrade (absolute paths).
    pub backup_paths: Vec<PathBuf>,
    /// Where the packages come from: every repository is read and verified,
    /// and the highest version of each package across them wins (as apt
    /// and dnf do). Empty only when `system_repositories` is set.
    pub repositories: Vec<Repository>,
    /// `type = "system"`: the repositories the host's own package manager
    /// uses (apt sources, yum.repos.d) are read at run time as well.
    pub system_repositories: bool,
    /// Where the newest signed metadata of each repository is recorded
    /// (`state_dir/repositories`), so that it never goes back (see
    /// [`crate::repo::replay`]).
    pub repository_records: PathBuf,
    /// The product's database, backed up before an upgrade.
    pub database: Database,
    /// How to tell that the upgraded product works.
    pub health: Health,
    /// Stepping stones that an upgrade must pass through.
    pub upgrade_path: Vec<UpgradePath>,
    /// What happens to a JSON config file the operator edited when the new
    /// version's packaged default changes (`config_merge`, default `merge`).
    pub config_merge: crate::confmerge::Policy,
    /// Config keys each target version needs (`required_keys`), checked by
    /// `plan` and `upgrade` before anything changes.
    pub required_keys: Vec<RequiredKeys>,
    /// What `upgrade --unattended` may do (`auto_upgrade`, default `off`).
    pub auto_upgrade: AutoUpgrade,
    /// When `upgrade --unattended` may apply (`[[targets.X.window]]`).
    pub windows: Vec<crate::window::Window>,
    /// A program (and its arguments) given each run's JSON result on stdin
    /// (`notify`); empty for none.
    pub notify: Vec<String>,
    /// What product versions need of the host (`[[targets.X.requires]]`),
    /// checked by `plan` and `upgrade` before anything changes.
    pub requires: Vec<crate::requires::Requirement>,
    /// Vendors' own steps run at named points (`[[targets.X.hook]]`).
    pub hooks: Vec<crate::hooks::Hook>,
    /// Checks run after the health gate passed (`[[targets.X.verify]]`),
    /// in order; any failure rolls the run back.
    pub verify: Vec<crate::verify::Check>,
    /// The operator's theme, merged with the new version's default theme
    /// (`[targets.X.theme]`); its directory is in every run's files backup.
    pub theme: Option<crate::theme::Theme>,
}

/// What `upgrade --unattended` may do for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoUpgrade {
    /// Nothing (the default).
    #[default]
    Off,
    /// Download and verify the packages of an update into the cache, so that
    /// an operator's upgrade skips the wait; never stop or install.
    Download,
    /// Download, then upgrade, inside a maintenance window only.
    Apply,
}

impl AutoUpgrade {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            AutoUpgrade::Off => "off",
            AutoUpgrade::Download => "download",
            AutoUpgrade::Apply => "apply",
        }
    }
}

/// Keys that product versions matching `version` need in a JSON config file,
/// present and not empty, or the upgrade is blocked (exit 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredKeys {
    /// The target product versions (semver) the rule applies to.
    pub version: semver::VersionReq,
    /// The config file (default: the target's first `config_files` entry).
    pub file: PathBuf,
    /// Dotted paths (`Database.ConnectionString`); never empty.
    pub keys: Vec<String>,
}

/// A package repository.
///
/// `Debug` masks a password embedded in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Repository {
    /// Base URL of the repository; `http` or `https` only, without query or
    /// fragment. Its path always ends in `/`, so `url.join("dists/...")`
    /// appends to it.
    pub url: url::Url,
    /// The repository format and its coordinates.
    pub kind: RepoKind,
    /// OpenPGP public key(s), armored or binary, that sign the repository;
    /// `None` only when `allow_unsigned` is true.
    pub keyring: Option<PathBuf>,
    /// Accept unsigned repository metadata (for testing only; never the
    /// default).
    pub allow_unsigned: bool,
    /// Extra CA certificate(s) (PEM) trusted for `https`.
    pub ca_file: Option<PathBuf>,
}

impl Repository {
    /// The package family the repository serves.
    pub fn family(&self) -> crate::version::Family {
        match self.kind {
            RepoKind::Apt { .. } => crate::version::Family::Deb,
            RepoKind::Yum => crate::version::Family::Rpm,
        }
    }
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.url.clone();
        if url.password().is_some() {
            // Cannot fail: the URL has a password, hence a host.
            let _ = url.set_password(Some(MASK));
        }
        f.debug_struct("Repository")
            .field("url", &url.as_str())
            .field("kind", &self.kind)
            .field("keyring", &self.keyring)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The format of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoKind {
    /// A Debian (apt) repository.
    Apt {
        /// The suite under `dists/`, or a value ending in `/` (such as `./`)
        /// for a flat repository.
        suite: String,
        /// The component; `None` exactly for a flat repository.
        component: Option<String>,
    },
    /// An RPM (yum/dnf) repository with `repodata/repomd.xml`.
    Yum,
}

/// The product's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// No database to back up.
    None,
    /// Read `Database.Dialect` and `Database.ConnectionString` from this
    /// file (the target's first `config_files` entry).
    PortalConf {
        /// The product configuration file to read.
        config_file: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// Connection URL or string (may hold a password).
        url: Secret,
    },
    /// A MySQL/MariaDB database.
    Mysql {
        /// Connection URL (may hold a password).
        url: Secret,
    },
    /// An SQLite database file.
    Sqlite {
        /// Absolute path of the database file.
        path: PathBuf,
    },
}

/// Health check after an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// URL that must answer with a 2xx status; `None` means only the units'
    /// states are checked.
    pub url: Option<url::Url>,
    /// How long to wait for the product to become healthy; greater than
    /// zero, default 120 s.
    pub timeout: Duration,
    /// Journal lines (substrings) that fail the upgrade when logged by the
    /// services.
    pub log_errors: Vec<String>,
    /// How long the product must stay healthy, no unit restarting, before
    /// the gate passes (`settle`, default 3 s; `0s` passes at the first
    /// healthy look).
    pub settle: Duration,
}

/// A stepping stone: an installed product version matching `from` must first
/// be upgraded to `via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePath {
    /// Installed versions this step applies to.
    pub from: semver::VersionReq,
    /// The version to upgrade to first; never matches `from`.
    pub via: semver::Version,
}

/// A string that never prints in clear (Debug and Display show `********`);
/// [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value in clear. Do not log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// A configuration problem: the file, the dotted key (if any) and what is
/// wrong.
///
/// Displays on one line as `<file>: <key>: <message>`, or `<file>: <message>`
/// without a key; any line breaks in the parts are collapsed to spaces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_error(.file, .key.as_deref(), .message))]
pub struct ConfigError {
    /// The file the problem is in (for a missing key: the file that first
    /// defined the enclosing target).
    pub file: PathBuf,
    /// The dotted key path, such as `targets.portal.repository.type` or
    /// `targets.portal.services[1]`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A new error.
    pub fn new(file: impl Into<PathBuf>, key: Option<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            key,
            message: message.into(),
        }
    }
}

fn render_error(file: &Path, key: Option<&str>, message: &str) -> String {
    let file = one_line_text(&file.display().to_string());
    let message = one_line_text(message);
    match key {
        Some(key) => format!("{file}: {}: {message}", one_line_text(key)),
        None => format!("{file}: {message}"),
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl Settings {
    /// Read `path` and its drop-ins (`conf.d/*.toml` next to it), validate.
    ///
    /// A missing `conf.d` directory is not an error.
    ///
    /// # Errors
    ///
    /// A missing main file gives an error whose message says it does not
    /// exist; an unreadable file, invalid TOML, an unknown key or a value
    /// that fails validation gives an error naming the file and the key.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let main = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::new(
                    path,
                    None,
                    "configuration file does not exist",
                ));
            }
            Err(e) => return Err(read_error(path, &e)),
        };
        let mut sources = vec![(path.to_path_buf(), main)];
        sources.extend(read_drop_ins(path)?);
        Settings::from_sources(&sources)
    }

    /// Parse from in-memory sources (name, text) in order; used by
    /// [`Settings::load`] and by tests. The first source is the main file.
    ///
    /// # Errors
    ///
    /// No sources, invalid TOML, an unknown key, or a value that fails
    /// validation; the error names the source and the key.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Settings, ConfigError> {
        let Some((main, _)) = sources.first() else {
            return Err(ConfigError::new(
                PathBuf::new(),
                None,
                "no configuration sources given",
            ));
        };
        let mut origins = Origins {
            main: main.clone(),
            set_by: BTreeMap::new(),
            first_defined: BTreeMap::new(),
        };
        let mut merged = toml::Table::new();
        for (file, text) in sources {
            let table = check_file(file, text)?;
            merge(&mut merged, table, &mut Vec::new(), file, &mut origins);
        }
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                let key = path_to_key(e.path());
                let file = origins.file_of(&key);
                ConfigError::new(file, Some(key.render()), one_line_text(e.inner().message()))
            })?;
        let sources = sources.iter().map(|(file, _)| file.clone()).collect();
        Validator { origins: &origins }.settings(raw, sources)
    }

    /// The named target, or the only one when `name` is None; errors list the
    /// defined names.
    ///
    /// # Errors
    ///
    /// An unknown `name`, or `None` while several targets are defined.
    pub fn target(&self, name: Option<&str>) -> Result<&Target, ConfigError> {
        let file = self
            .sources
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let names = || {
            self.targets
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(name) => self.targets.get(name).ok_or_else(|| {
                ConfigError::new(
                    file,
                    None,
                    format!("no target named {name:?}; defined targets: {}", names()),
                )
            }),
            None => {
                let mut all = self.targets.values();
                match (all.next(), all.next()) {
                    (Some(only), None) => Ok(only),
                    (None, _) => Err(ConfigError::new(
                        file,
                        Some("targets".to_owned()),
                        "no targets defined; add a [targets.<name>] table",
                    )),
                    (Some(_), Some(_)) => Err(ConfigError::new(
                        file,
                        None,
                        format!(
                            "several targets are defined ({}); pass the name of one of them",
                            names()
                        ),
                    )),
                }
            }
        }
    }
}

fn read_error(path: &Path, e: &io::Error) -> ConfigError {
    ConfigError::new(path, None, format!("cannot read: {e}"))
}

/// The drop-ins of the main file `path`, in the order they apply.
fn read_drop_ins(path: &Path) -> Result<Vec<(PathBuf, String)>, ConfigError> {
    let dir = path
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(DROP_IN_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(&dir, &e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| read_error(&dir, &e))?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().ends_with(b".toml") {
            continue;
        }
        let file = entry.path();
        // Follows symlinks; skips directories and masks such as /dev/null.
        let meta = fs::metadata(&file).map_err(|e| read_error(&file, &e))?;
        if meta.is_file() {
            files.push((name, file));
        }
    }
    files.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    files
        .into_iter()
        .map(|(_, file)| match fs::read_to_string(&file) {
            Ok(text) => Ok((file, text)),
            Err(e) => Err(read_error(&file, &e)),
        })
        .collect()
}

/// Parse one file, check it against the schema on its own, and return its
/// table for merging.
fn check_file(file: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| ConfigError::new(file, None, syntax_message(text, &e)))?;
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::new(file, None, syntax_message(text, &e)))?;
    serde_path_to_error::deserialize::<_, RawConfig>(deserializer).map_err(|e| {
        let key = path_to_key(e.path());
        let message = match location(text, e.inner().span()) {
            Some((line, column)) => format!(
                "{} (line {line}, column {column})",
                one_line_text(e.inner().message())
            ),
            None => one_line_text(e.inner().message()),
        };
        ConfigError::new(file, (!key.0.is_empty()).then(|| key.render()), message)
    })?;
    Ok(table)
}

fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    match location(text, e.span()) {
        Some((line, column)) => format!(
            "invalid TOML at line {line}, column {column}: {}",
            one_line_text(e.message())
        ),
        None => format!("invalid TOML: {}", one_line_text(e.message())),
    }
}

/// 1-based line and column (in characters) of the start of `span` in `text`.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> Option<(usize, usize)> {
    let before = text.get(..span?.start)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Some((line, column))
}

// ---------------------------------------------------------------------------
// Key paths and where values came from
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `targets.portal.services[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Key(Vec<Seg>);

impl Key {
    fn k(&self, name: &str) -> Key {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(name.to_owned()));
        Key(segs)
    }

    fn i(&self, index: usize) -> Key {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Key(segs)
    }

    /// The leading table keys, up to the first array index (arrays are
    /// replaced whole when merging, so they are where provenance stops).
    fn table_prefix(&self) -> Vec<String> {
        self.0
            .iter()
            .map_while(|seg| match seg {
                Seg::Key(k) => Some(k.clone()),
                Seg::Index(_) => None,
            })
            .collect()
    }

    /// Dotted form, with keys quoted as in TOML when they are not bare keys.
    fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        out.push_str(k);
                    } else {
                        let _ = write!(out, "{k:?}");
                    }
                }
            }
        }
        out
    }
}

fn path_to_key(path: &serde_path_to_error::Path) -> Key {
    Key(path
        .iter()
        .map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => Seg::Index(*index),
            serde_path_to_error::Segment::Map { key } => Seg::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Seg::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => Seg::Key("?".to_owned()),
        })
        .collect())
}

/// Which file each value of the merged document came from.
struct Origins {
    main: PathBuf,
    /// Table path → the last file that set (or merged into) it.
    set_by: BTreeMap<Vec<String>, PathBuf>,
    /// Table path of a table → the first file that defined it.
    first_defined: BTreeMap<Vec<String>, PathBuf>,
}

impl Origins {
    /// The file that set `key` (or its nearest enclosing value).
    fn file_of(&self, key: &Key) -> PathBuf {
        let mut prefix = key.table_prefix();
        loop {
            if let Some(file) = self.set_by.get(&prefix) {
                return file.clone();
            }
            if prefix.pop().is_none() {
                return self.main.clone();
            }
        }
    }

    /// The file that first defined the table `key` (or its nearest
    /// enclosing table).
    fn first_file_of(&self, key: &Key) -> PathBuf {
        let mut prefix = key.table_prefix();
        loop {
            if let Some(file) = self.first_defined.get(&prefix) {
                return file.clone();
            }
            if prefix.pop().is_none() {
                return self.main.clone();
            }
        }
    }
}

/// Merge `src` into `dst`: tables deeply, anything else (arrays included)
/// replaced whole.
fn merge(
    dst: &mut toml::Table,
    src: toml::Table,
    prefix: &mut Vec<String>,
    file: &Path,
    origins: &mut Origins,
) {
    for (name, value) in src {
        prefix.push(name.clone());
        origins.set_by.insert(prefix.clone(), file.to_path_buf());
        match (dst.get_mut(&name), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(table)) => {
                merge(existing, table, prefix, file, origins);
            }
            (_, toml::Value::Table(table)) => {
                origins
                    .first_defined
                    .entry(prefix.clone())
                    .or_insert_with(|| file.to_path_buf());
                let mut fresh = toml::Table::new();
                merge(&mut fresh, table, prefix, file, origins);
                dst.insert(name, toml::Value::Table(fresh));
            }
            (_, value) => {
                dst.insert(name, value);
            }
        }
        prefix.pop();
    }
}

// ---------------------------------------------------------------------------
// Schema of one file: everything optional, unknown keys refused
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    keep_versions: Option<u32>,
    targets: Option<BTreeMap<String, RawTarget>>,
    fleet: Option<RawFleet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    etcd: Option<Vec<String>>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    group: Option<String>,
    node: Option<String>,
    slots: Option<u32>,
    lease: Option<String>,
    wait: Option<String>,
    canary: Option<bool>,
    require_plan: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    package: Option<String>,
    packages: Option<Vec<String>>,
    services: Option<Vec<String>>,
    config_files: Option<Vec<PathBuf>>,
    backup_paths: Option<Vec<PathBuf>>,
    repository: Option<RawRepositories>,
    database: Option<RawDatabase>,
    health: Option<RawHealth>,
    upgrade_path: Option<Vec<RawUpgradePath>>,
    config_merge: Option<String>,
    required_keys: Option<Vec<RawRequiredKeys>>,
    auto_upgrade: Option<String>,
    window: Option<Vec<RawWindow>>,
    notify: Option<RawNotify>,
    requires: Option<Vec<RawRequires>>,
    hook: Option<Vec<RawHook>>,
    verify: Option<Vec<RawVerify>>,
    theme: Option<RawTheme>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    version: Option<String>,
    os: Option<Vec<String>>,
    database: Option<Vec<String>>,
    memory: Option<String>,
    disk: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    at: Option<String>,
    command: Option<Vec<String>>,
    timeout: Option<String>,
}

/// `[[targets.X.verify]]`: exactly one of `http`, `command`,
/// `journal_fail`/`journal_warn`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    name: Option<String>,
    http: Option<String>,
    status: Option<Vec<u16>>,
    body_contains: Option<String>,
    json: Option<BTreeMap<String, String>>,
    command: Option<Vec<String>>,
    timeout: Option<String>,
    journal_fail: Option<Vec<String>>,
    journal_warn: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    path: Option<PathBuf>,
    default: Option<PathBuf>,
    merge: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Option<Vec<String>>,
    start: Option<String>,
    length: Option<String>,
    time_zone: Option<String>,
}

/// `notify = "/path"` or `notify = ["/path", "arg", ...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawNotify {
    Program(PathBuf),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawRepoType {
    Apt,
    Yum,
    System,
}

/// `[targets.X.repository]` (one table) or `[[targets.X.repository]]` (an
/// array of tables). Deserialized by hand so that an error inside either
/// form keeps its key path (`targets.X.repository.type`,
/// `targets.X.repository[1].url`), which an untagged enum would lose.
#[derive(Debug)]
enum RawRepositories {
    One(RawRepository),
    Many(Vec<RawRepository>),
}

impl<'de> Deserialize<'de> for RawRepositories {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = RawRepositories;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a repository table or an array of repository tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawRepository::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawRepositories::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<RawRepository>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(RawRepositories::Many)
            }
        }
        d.deserialize_any(Either)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    #[serde(rename = "type")]
    kind: Option<RawRepoType>,
    url: Option<String>,
    suite: Option<String>,
    component: Option<String>,
    keyring: Option<PathBuf>,
    allow_unsigned: Option<bool>,
    ca_file: Option<PathBuf>,
    /// `type = "system"` only: `deb` or `rpm`, when the host has both
    /// package managers' files (default: deb when `/var/lib/dpkg/status`
    /// exists, else rpm).
    family: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawDbType {
    None,
    PortalConf,
    Postgres,
    Mysql,
    Sqlite,
}

impl RawDbType {
    fn name(self) -> &'static str {
        match self {
            RawDbType::None => "none",
            RawDbType::PortalConf => "portal-conf",
            RawDbType::Postgres => "postgres",
            RawDbType::Mysql => "mysql",
            RawDbType::Sqlite => "sqlite",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    #[serde(rename = "type")]
    kind: Option<RawDbType>,
    url: Option<String>,
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    url: Option<String>,
    timeout: Option<String>,
    settle: Option<String>,
    log_errors: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequiredKeys {
    version: Option<String>,
    file: Option<PathBuf>,
    keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpgradePath {
    from: Option<String>,
    via: Option<String>,
}

// ---------------------------------------------------------------------------
// Validation of the merged document
// ---------------------------------------------------------------------------

struct Validator<'a> {
    origins: &'a Origins,
}

impl Validator<'_> {
    /// An invalid value at `key`, blamed on the file that set it.
    fn invalid(&self, key: &Key, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.origins.file_of(key), Some(key.render()), message)
    }

    /// A missing required key, blamed on the file that first defined
    /// `owner` (the enclosing target).
    fn missing(&self, owner: &Key, key: &Key) -> ConfigError {
        ConfigError::new(
            self.origins.first_file_of(owner),
            Some(key.render()),
            "missing required key",
        )
    }

    fn settings(&self, raw: RawConfig, sources: Vec<PathBuf>) -> Result<Settings, ConfigError> {
        let root = Key::default();
        let dir = |value: Option<PathBuf>, name: &str, default: &str| {
            self.absolute(
                &root.k(name),
                value.unwrap_or_else(|| PathBuf::from(default)),
            )
        };
        let state_dir = dir(raw.state_dir, "state_dir", DEFAULT_STATE_DIR)?;
        let cache_dir = dir(raw.cache_dir, "cache_dir", DEFAULT_CACHE_DIR)?;
        let lock_file = dir(raw.lock_file, "lock_file", DEFAULT_LOCK_FILE)?;
        let keep_versions = raw.keep_versions.unwrap_or(DEFAULT_KEEP_VERSIONS);
        if keep_versions < 1 {
            return Err(self.invalid(&root.k("keep_versions"), "must be at least 1"));
        }
        // No targets is valid: the packaged default configures nothing, and
        // `check` or the timers then do nothing rather than fail.
        let raw_targets = raw.targets.unwrap_or_default();
        let mut targets = BTreeMap::new();
        for (name, raw_target) in raw_targets {
            let mut target = self.target(&root.k("targets").k(&name), &name, raw_target)?;
            target.repository_records = state_dir.join(crate::repo::replay::RECORDS_DIR);
            targets.insert(name, target);
        }
        let fleet = raw
            .fleet
            .map(|f| self.fleet(&root.k("fleet"), f))
            .transpose()?;
        Ok(Settings {
            state_dir,
            cache_dir,
            lock_file,
            keep_versions,
            targets,
            sources,
            fleet,
        })
    }

    fn fleet(&self, key: &Key, raw: RawFleet) -> Result<Fleet, ConfigError> {
        let etcd_key = key.k("etcd");
        let endpoints = raw.etcd.ok_or_else(|| self.missing(key, &etcd_key))?;
        if endpoints.is_empty() {
            return Err(self.invalid(&etcd_key, "must name at least one etcd endpoint"));
        }
        let etcd = endpoints
            .iter()
            .enumerate()
            .map(|(i, u)| parse_http_url(u).map_err(|m| self.invalid(&etcd_key.i(i), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let group_key = key.k("group");
        let group = raw.group.ok_or_else(|| self.missing(key, &group_key))?;
        check_fleet_name(&group).map_err(|m| self.invalid(&group_key, m))?;
        if let Some(node) = &raw.node {
            check_fleet_name(node).map_err(|m| self.invalid(&key.k("node"), m))?;
        }
        let file = |k: &str, v: Option<PathBuf>| v.map(|p| self.absolute(&key.k(k), p)).transpose();
        let ca_file = file("ca_file", raw.ca_file)?;
        let cert_file = file("cert_file", raw.cert_file)?;
        let key_file = file("key_file", raw.key_file)?;
        let password_file = file("password_file", raw.password_file)?;
        if cert_file.is_some() != key_file.is_some() {
            let which = if cert_file.is_some() {
                "key_file"
            } else {
                "cert_file"
            };
            return Err(self.invalid(
                &key.k(which),
                "cert_file and key_file go together (mutual TLS needs both)",
            ));
        }
        if raw.user.is_some() != password_file.is_some() {
            let which = if raw.user.is_some() {
                "password_file"
            } else {
                "user"
            };
            return Err(self.invalid(
                &key.k(which),
                "user and password_file go together (etcd's user/password authentication)",
            ));
        }
        let slots = raw.slots.unwrap_or(DEFAULT_FLEET_SLOTS);
        if slots < 1 {
            return Err(self.invalid(&key.k("slots"), "must be at least 1"));
        }
        let duration =
            |k: &str, v: Option<String>, default: Duration| -> Result<Duration, ConfigError> {
                match v {
                    None => Ok(default),
                    Some(text) => humantime::parse_duration(&text).map_err(|e| {
                        self.invalid(
                            &key.k(k),
                            format!("invalid duration {text:?}: {e} (examples: \"30s\", \"30m\")"),
                        )
                    }),
                }
            };
        let lease = duration("lease", raw.lease, DEFAULT_FLEET_LEASE)?;
        if lease < MIN_FLEET_LEASE {
            return Err(self.invalid(
                &key.k("lease"),
                format!(
                    "must be at least {}",
                    humantime::format_duration(MIN_FLEET_LEASE)
                ),
            ));
        }
        let wait = duration("wait", raw.wait, DEFAULT_FLEET_WAIT)?;
        let require_plan_all = match raw.require_plan.as_deref() {
            None | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                return Err(self.invalid(
                    &key.k("require_plan"),
                    format!("unknown value {other:?}; use \"all\" (or leave it out)"),
                ));
            }
        };
        Ok(Fleet {
            etcd,
            ca_file,
            cert_file,
            key_file,
            user: raw.user,
            password_file,
            group,
            node: raw.node,
            slots,
            lease,
            wait,
            canary: raw.canary.unwrap_or(false),
            require_plan_all,
        })
    }

    fn absolute(&self, key: &Key, path: PathBuf) -> Result<PathBuf, ConfigError> {
        if path.is_absolute() {
            Ok(path)
        } else {
            Err(self.invalid(key, format!("must be an absolute path, got {path:?}")))
        }
    }

    fn absolute_list(
        &self,
        key: &Key,
        paths: Option<Vec<PathBuf>>,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        paths
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, path)| self.absolute(&key.i(i), path))
            .collect()
    }

    fn target(&self, key: &Key, name: &str, raw: RawTarget) -> Result<Target, ConfigError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(ConfigError::new(
                self.origins.first_file_of(key),
                Some(key.render()),
                "invalid target name; use only letters, digits, '_', '.' and '-'",
            ));
        }

        let package_key = key.k("package");
        let packages_key = key.k("packages");
        let packages = match (raw.package, raw.packages) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    &packages_key,
                    "give either `package` (one package) or `packages` (a list), not both",
                ));
            }
            (Some(one), None) => {
                check_package(&one).map_err(|m| self.invalid(&package_key, m))?;
                vec![one]
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    return Err(self.invalid(&packages_key, "must name at least one package"));
                }
                for (i, p) in list.iter().enumerate() {
                    check_package(p).map_err(|m| self.invalid(&packages_key.i(i), m))?;
                    if list[..i].contains(p) {
                        return Err(
                            self.invalid(&packages_key.i(i), format!("{p:?} is listed twice"))
                        );
                    }
                }
                list
            }
            (None, None) => return Err(self.missing(key, &package_key)),
        };
        let package = packages[0].clone();

        let services_key = key.k("services");
        let services = raw
            .services
            .ok_or_else(|| self.missing(key, &services_key))?;
        if services.is_empty() {
            return Err(self.invalid(&services_key, "must name at least one systemd unit"));
        }
        for (i, unit) in services.iter().enumerate() {
            check_unit(unit).map_err(|m| self.invalid(&services_key.i(i), m))?;
        }

        let config_files = self.absolute_list(&key.k("config_files"), raw.config_files)?;
        let backup_paths = self.absolute_list(&key.k("backup_paths"), raw.backup_paths)?;

        let repo_key = key.k("repository");
        let raw_repos: Vec<(Key, RawRepository)> = match raw.repository {
            Some(RawRepositories::One(repo)) => vec![(repo_key.clone(), repo)],
            Some(RawRepositories::Many(list)) if list.is_empty() => {
                return Err(self.invalid(&repo_key, "must list at least one repository"));
            }
            Some(RawRepositories::Many(list)) => list
                .into_iter()
                .enumerate()
                .map(|(i, r)| (repo_key.i(i), r))
                .collect(),
            None => return Err(self.missing(key, &repo_key.k("type"))),
        };
        let mut repositories = Vec::new();
        let mut system_repositories = false;
        let mut family: Option<(crate::version::Family, Key)> = None;
        for (rkey, raw_repo) in raw_repos {
            let this = if raw_repo.kind == Some(RawRepoType::System) {
                if system_repositories {
                    return Err(self.invalid(&rkey.k("type"), "\"system\" is listed twice"));
                }
                system_repositories = true;
                self.system_repository(&rkey, raw_repo)?
            } else {
                let repo = self.repository(key, &rkey, raw_repo)?;
                let f = repo.family();
                repositories.push(repo);
                f
            };
            match &family {
                Some((f, first)) if *f != this => {
                    return Err(self.invalid(
                        &rkey.k("type"),
                        format!(
                            "serves {this} packages, but {} serves {f} packages: a target's repositories are all of one package family",
                            first.render()
                        ),
                    ));
                }
                Some(_) => {}
                None => family = Some((this, rkey.clone())),
            }
        }
        let family = family
            .map(|(f, _)| f)
            .unwrap_or(crate::version::Family::Deb);

        let database = self.database(key, &config_files, raw.database.unwrap_or_default())?;
        let health = self.health(&key.k("health"), raw.health.unwrap_or_default())?;

        let steps_key = key.k("upgrade_path");
        let upgrade_path = raw
            .upgrade_path
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, step)| self.upgrade_step(key, &steps_key.i(i), step))
            .collect::<Result<Vec<_>, _>>()?;

        let merge_key = key.k("config_merge");
        let config_merge = match raw.config_merge {
            None => crate::confmerge::Policy::default(),
            Some(text) => text.parse().map_err(|e: crate::confmerge::UnknownPolicy| {
                self.invalid(&merge_key, e.to_string())
            })?,
        };
        let required_key = key.k("required_keys");
        let required_keys = raw
            .required_keys
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.required(key, &required_key.i(i), r, &config_files))
            .collect::<Result<Vec<_>, _>>()?;

        let auto_key = key.k("auto_upgrade");
        let auto_upgrade = match raw.auto_upgrade.as_deref() {
            None | Some("off") => AutoUpgrade::Off,
            Some("download") => AutoUpgrade::Download,
            Some("apply") => AutoUpgrade::Apply,
            Some(other) => {
                return Err(self.invalid(
                    &auto_key,
                    format!("{other:?} is not one of \"off\", \"download\", \"apply\""),
                ));
            }
        };
        let window_key = key.k("window");
        let windows = raw
            .window
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, w)| self.window(key, &window_key.i(i), w))
            .collect::<Result<Vec<_>, _>>()?;
        if auto_upgrade == AutoUpgrade::Apply && windows.is_empty() {
            return Err(self.invalid(
                &auto_key,
                "\"apply\" needs at least one [[targets.NAME.window]] to apply in",
            ));
        }
        let notify = self.notify(&key.k("notify"), raw.notify)?;
        let requires_key = key.k("requires");
        let requires = raw
            .requires
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.requirement(&requires_key.i(i), r))
            .collect::<Result<Vec<_>, _>>()?;
        let hook_key = key.k("hook");
        let hooks = raw
            .hook
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, h)| self.hook(key, &hook_key.i(i), h))
            .collect::<Result<Vec<_>, _>>()?;
        let verify_key = key.k("verify");
        let mut verify: Vec<crate::verify::Check> = Vec::new();
        for (i, v) in raw.verify.unwrap_or_default().into_iter().enumerate() {
            let check = self.verify_check(key, &verify_key.i(i), v)?;
            if let Some(j) = verify.iter().position(|c| c.name == check.name) {
                return Err(self.invalid(
                    &verify_key.i(i).k("name"),
                    format!(
                        "{:?} is already the name of {}",
                        check.name,
                        verify_key.i(j).render()
                    ),
                ));
            }
            verify.push(check);
        }
        let theme = raw
            .theme
            .map(|t| self.theme(key, &key.k("theme"), t))
            .transpose()?;

        Ok(Target {
            name: name.to_owned(),
            package,
            packages,
            family,
            services,
            config_files,
            backup_paths,
            repositories,
            system_repositories,
            repository_records: PathBuf::new(),
            database,
            health,
            upgrade_path,
            config_merge,
            required_keys,
            auto_upgrade,
            windows,
            notify,
            requires,
            hooks,
            verify,
            theme,
        })
    }

    fn requirement(
        &self,
        key: &Key,
        raw: RawRequires,
    ) -> Result<crate::requires::Requirement, ConfigError> {
        let version = match raw.version {
            None => semver::VersionReq::STAR,
            Some(text) => semver::VersionReq::parse(&text).map_err(|e| {
                self.invalid(
                    &key.k("version"),
                    format!("invalid version requirement {text:?}: {e}"),
                )
            })?,
        };
        let specs = |name: &str,
                     list: Option<Vec<String>>,
                     check: fn(&crate::requires::Spec) -> Result<(), String>|
         -> Result<Vec<crate::requires::Spec>, ConfigError> {
            let list_key = key.k(name);
            let list = list.unwrap_or_default();
            list.iter()
                .enumerate()
                .map(|(i, text)| {
                    crate::requires::Spec::parse(text)
                        .and_then(|s| check(&s).map(|()| s))
                        .map_err(|m| self.invalid(&list_key.i(i), m))
                })
                .collect()
        };
        let os = specs("os", raw.os.clone(), |_| Ok(()))?;
        let database = specs(
            "database",
            raw.database.clone(),
            crate::requires::check_database_spec,
        )?;
        for (name, list) in [("os", &raw.os), ("database", &raw.database)] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                return Err(self.invalid(&key.k(name), "must list at least one entry"));
            }
        }
        let size = |name: &str, v: Option<String>| {
            v.map(|t| crate::requires::parse_size(&t).map_err(|m| self.invalid(&key.k(name), m)))
                .transpose()
        };
        let memory = size("memory", raw.memory)?;
        let disk = size("disk", raw.disk)?;
        if os.is_empty() && database.is_empty() && memory.is_none() && disk.is_none() {
            return Err(self.invalid(
                key,
                "requires nothing; set at least one of os, database, memory, disk",
            ));
        }
        Ok(crate::requires::Requirement {
            version,
            os,
            database,
            memory,
            disk,
        })
    }

    fn hook(
        &self,
        target: &Key,
        key: &Key,
        raw: RawHook,
    ) -> Result<crate::hooks::Hook, ConfigError> {
        let at_key = key.k("at");
        let at = raw.at.ok_or_else(|| self.missing(target, &at_key))?;
        let at = crate::hooks::At::parse(&at).map_err(|m| self.invalid(&at_key, m))?;
        let command_key = key.k("command");
        let command = raw
            .command
            .ok_or_else(|| self.missing(target, &command_key))?;
        match command.first() {
            None => return Err(self.invalid(&command_key, "must name a program")),
            Some(p) if !Path::new(p).is_absolute() => {
                return Err(self.invalid(
                    &command_key.i(0),
                    format!("the program must be an absolute path (it is run without a shell), got {p:?}"),
                ));
            }
            Some(_) => {}
        }
        let timeout_key = key.k("timeout");
        let timeout = match raw.timeout {
            None => crate::hooks::DEFAULT_TIMEOUT,
            Some(text) => humantime::parse_duration(&text).map_err(|e| {
                self.invalid(
                    &timeout_key,
                    format!("invalid duration {text:?}: {e} (examples: \"30s\", \"5m\")"),
                )
            })?,
        };
        if timeout.is_zero() {
            return Err(self.invalid(&timeout_key, "must be greater than zero"));
        }
        Ok(crate::hooks::Hook {
            at,
            command,
            timeout,
        })
    }

    /// One `[[targets.X.verify]]` entry.
    fn verify_check(
        &self,
        target: &Key,
        key: &Key,
        raw: RawVerify,
    ) -> Result<crate::verify::Check, ConfigError> {
        use crate::verify::{Check, CheckKind, DEFAULT_TIMEOUT};
        let name_key = key.k("name");
        let name = raw.name.ok_or_else(|| self.missing(target, &name_key))?;
        if name.trim().is_empty() {
            return Err(self.invalid(&name_key, "must not be empty"));
        }
        let journal = raw.journal_fail.is_some() || raw.journal_warn.is_some();
        let journal_name = if raw.journal_fail.is_some() {
            "journal_fail"
        } else {
            "journal_warn"
        };
        let kinds: Vec<&str> = [
            (raw.http.is_some(), "http"),
            (raw.command.is_some(), "command"),
            (journal, journal_name),
        ]
        .into_iter()
        .filter_map(|(set, k)| set.then_some(k))
        .collect();
        match kinds.as_slice() {
            [] => {
                return Err(ConfigError::new(
                    self.origins.first_file_of(target),
                    Some(key.k("http").render()),
                    "missing: each verify entry needs one of http, command, journal_fail or journal_warn",
                ));
            }
            [_] => {}
            [first, second, ..] => {
                return Err(self.invalid(
                    &key.k(second),
                    format!("{first} is set too: one check per [[verify]] entry"),
                ));
            }
        }
        let only = |set: bool, k: &str, kind: &str| {
            if set {
                Err(self.invalid(&key.k(k), format!("only for {kind} checks")))
            } else {
                Ok(())
            }
        };
        if raw.http.is_none() {
            only(raw.status.is_some(), "status", "http")?;
            only(raw.body_contains.is_some(), "body_contains", "http")?;
            only(raw.json.is_some(), "json", "http")?;
        }
        if journal {
            only(raw.timeout.is_some(), "timeout", "http and command")?;
        }
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => {
                let timeout_key = key.k("timeout");
                let t = humantime::parse_duration(&text).map_err(|e| {
                    self.invalid(
                        &timeout_key,
                        format!("invalid duration {text:?}: {e} (examples: \"60s\", \"2m\")"),
                    )
                })?;
                if t.is_zero() {
                    return Err(self.invalid(&timeout_key, "must be greater than zero"));
                }
                t
            }
        };
        let kind = if let Some(url) = raw.http {
            let url = parse_http_url(&url).map_err(|m| self.invalid(&key.k("http"), m))?;
            let status = raw.status.unwrap_or_default();
            if let Some(i) = status.iter().position(|s| !(100..=599).contains(s)) {
                return Err(self.invalid(
                    &key.k("status").i(i),
                    format!("{} is not an HTTP status (100 to 599)", status[i]),
                ));
            }
            let mut json = Vec::new();
            for (pointer, value) in raw.json.unwrap_or_default() {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(self.invalid(
                        &key.k("json").k(&pointer),
                        "must be a JSON pointer: empty or starting with \"/\" (\"/version\")",
                    ));
                }
                json.push((pointer, value));
            }
            CheckKind::Http {
                url,
                status,
                body_contains: raw.body_contains,
                json,
            }
        } else if let Some(argv) = raw.command {
            let command_key = key.k("command");
            match argv.first() {
                None => return Err(self.invalid(&command_key, "must name a program")),
                Some(p) if !Path::new(p).is_absolute() => {
                    return Err(self.invalid(
                        &command_key.i(0),
                        format!("the program must be an absolute path, got {p:?}"),
                    ));
                }
                Some(_) => {}
            }
            CheckKind::Command { argv }
        } else {
            let mut lists = Vec::new();
            for (k, list) in [
                ("journal_fail", raw.journal_fail),
                ("journal_warn", raw.journal_warn),
            ] {
                let list = list.unwrap_or_default();
                if let Some(i) = list.iter().position(|p| p.is_empty()) {
                    return Err(self.invalid(
                        &key.k(k).i(i),
                        "must not be empty (it would match every line)",
                    ));
                }
                lists.push(list);
            }
            let warn = lists.pop().unwrap_or_default();
            let fail = lists.pop().unwrap_or_default();
            if fail.is_empty() && warn.is_empty() {
                return Err(self.invalid(&key.k(journal_name), "must list at least one pattern"));
            }
            CheckKind::Journal { fail, warn }
        };
        Ok(Check {
            name,
            timeout,
            kind,
        })
    }

    fn theme(
        &self,
        target: &Key,
        key: &Key,
        raw: RawTheme,
    ) -> Result<crate::theme::Theme, ConfigError> {
        let path_key = key.k("path");
        let default_key = key.k("default");
        let path = raw
            .path
            .ok_or_else(|| self.missing(target, &path_key))
            .and_then(|p| self.absolute(&path_key, p))?;
        let default = raw
            .default
            .ok_or_else(|| self.missing(target, &default_key))
            .and_then(|p| self.absolute(&default_key, p))?;
        if path.starts_with(&default) || default.starts_with(&path) {
            return Err(self.invalid(
                &path_key,
                format!(
                    "the custom theme {} and the packaged default {} must be separate directories",
                    path.display(),
                    default.display()
                ),
            ));
        }
        let merge = match raw.merge {
            None => crate::theme::Policy::default(),
            Some(text) => text.parse().map_err(|e: crate::theme::UnknownPolicy| {
                self.invalid(&key.k("merge"), e.to_string())
            })?,
        };
        Ok(crate::theme::Theme {
            path,
            default,
            merge,
        })
    }

    fn window(
        &self,
        target: &Key,
        key: &Key,
        raw: RawWindow,
    ) -> Result<crate::window::Window, ConfigError> {
        let days = raw
            .days
            .ok_or_else(|| self.missing(target, &key.k("days")))?;
        let start = raw
            .start
            .ok_or_else(|| self.missing(target, &key.k("start")))?;
        let length = raw
            .length
            .ok_or_else(|| self.missing(target, &key.k("length")))?;
        crate::window::Window::parse(&days, &start, &length, raw.time_zone.as_deref())
            .map_err(|e| self.invalid(&key.k(e.key()), e.to_string()))
    }

    fn notify(&self, key: &Key, raw: Option<RawNotify>) -> Result<Vec<String>, ConfigError> {
        let argv = match raw {
            None => return Ok(Vec::new()),
            Some(RawNotify::Program(p)) => vec![p.to_string_lossy().into_owned()],
            Some(RawNotify::Argv(argv)) => argv,
        };
        match argv.first() {
            None => Err(self.invalid(key, "must name a program")),
            Some(p) if !Path::new(p).is_absolute() => Err(self.invalid(
                key,
                format!("the program must be an absolute path, got {p:?}"),
            )),
            Some(_) => Ok(argv),
        }
    }

    fn required(
        &self,
        target: &Key,
        key: &Key,
        raw: RawRequiredKeys,
        config_files: &[PathBuf],
    ) -> Result<RequiredKeys, ConfigError> {
        let version_key = key.k("version");
        let text = raw
            .version
            .ok_or_else(|| self.missing(target, &version_key))?;
        let version = semver::VersionReq::parse(&text).map_err(|e| {
            self.invalid(
                &version_key,
                format!("invalid version requirement {text:?}: {e}"),
            )
        })?;
        let file_key = key.k("file");
        let file = match raw.file {
            Some(f) => self.absolute(&file_key, f)?,
            None => config_files.first().cloned().ok_or_else(|| {
                self.invalid(
                    &file_key,
                    "no file given and the target has no config_files",
                )
            })?,
        };
        let keys_key = key.k("keys");
        let keys = raw.keys.ok_or_else(|| self.missing(target, &keys_key))?;
        if keys.is_empty() {
            return Err(self.invalid(&keys_key, "must name at least one key"));
        }
        for (i, k) in keys.iter().enumerate() {
            if k.is_empty() || k.split('.').any(str::is_empty) {
                return Err(self.invalid(
                    &keys_key.i(i),
                    format!("{k:?} is not a dotted key path such as \"Database.Dialect\""),
                ));
            }
        }
        Ok(RequiredKeys {
            version,
            file,
            keys,
        })
    }

    /// `type = "system"`: only `family` may be set; the family defaults to
    /// the host's package manager.
    fn system_repository(
        &self,
        key: &Key,
        raw: RawRepository,
    ) -> Result<crate::version::Family, ConfigError> {
        let unused = [
            ("url", raw.url.is_some()),
            ("suite", raw.suite.is_some()),
            ("component", raw.component.is_some()),
            ("keyring", raw.keyring.is_some()),
            ("allow_unsigned", raw.allow_unsigned.is_some()),
            ("ca_file", raw.ca_file.is_some()),
        ];
        if let Some((name, _)) = unused.iter().find(|(_, set)| *set) {
            return Err(self.invalid(
                &key.k(name),
                "not used by type \"system\" (the host's own sources say it); remove it",
            ));
        }
        match raw.family.as_deref() {
            Some("deb") => Ok(crate::version::Family::Deb),
            Some("rpm") => Ok(crate::version::Family::Rpm),
            Some(other) => Err(self.invalid(
                &key.k("family"),
                format!("{other:?} is not one of \"deb\", \"rpm\""),
            )),
            None if Path::new("/var/lib/dpkg/status").exists() => Ok(crate::version::Family::Deb),
            None => Ok(crate::version::Family::Rpm),
        }
    }

    fn repository(
        &self,
        target: &Key,
        key: &Key,
        raw: RawRepository,
    ) -> Result<Repository, ConfigError> {
        let kind = raw
            .kind
            .ok_or_else(|| self.missing(target, &key.k("type")))?;
        if raw.family.is_some() {
            return Err(self.invalid(&key.k("family"), "only used by type \"system\"; remove it"));
        }
        let url_key = key.k("url");
        let url = raw.url.ok_or_else(|| self.missing(target, &url_key))?;
        let mut url = parse_http_url(&url).map_err(|m| self.invalid(&url_key, m))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(self.invalid(&url_key, "must not have a query or fragment"));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }

        let suite_key = key.k("suite");
        let component_key = key.k("component");
        let kind = match kind {
            RawRepoType::Apt => {
                let suite = raw.suite.ok_or_else(|| self.missing(target, &suite_key))?;
                if suite.trim().is_empty() {
                    return Err(self.invalid(&suite_key, "must not be empty"));
                }
                if suite.ends_with('/') {
                    if raw.component.is_some() {
                        return Err(self.invalid(
                            &component_key,
                            format!(
                                "not used by a flat repository (suite {suite:?} ends in '/'); remove it"
                            ),
                        ));
                    }
                    RepoKind::Apt {
                        suite,
                        component: None,
                    }
                } else {
                    let component = raw.component.ok_or_else(|| {
                        ConfigError::new(
                            self.origins.first_file_of(target),
                            Some(component_key.render()),
                            format!(
                                "missing required key (suite {suite:?} is not flat; a flat repository's suite ends in '/')"
                            ),
                        )
                    })?;
                    if component.trim().is_empty() {
                        return Err(self.invalid(&component_key, "must not be empty"));
                    }
                    RepoKind::Apt {
                        suite,
                        component: Some(component),
                    }
                }
            }
            RawRepoType::System => {
                return Err(self.invalid(&key.k("type"), "\"system\" is handled elsewhere"));
            }
            RawRepoType::Yum => {
                if raw.suite.is_some() {
                    return Err(self.invalid(&suite_key, "not used by a yum repository; remove it"));
                }
                if raw.component.is_some() {
                    return Err(
                        self.invalid(&component_key, "not used by a yum repository; remove it")
                    );
                }
                RepoKind::Yum
            }
        };

        let allow_unsigned = raw.allow_unsigned.unwrap_or(false);
        let keyring_key = key.k("keyring");
        let keyring = match raw.keyring {
            Some(path) => Some(self.absolute(&keyring_key, path)?),
            None if allow_unsigned => None,
            None => {
                return Err(ConfigError::new(
                    self.origins.first_file_of(target),
                    Some(keyring_key.render()),
                    "missing required key (the OpenPGP key that signs the repository)",
                ));
            }
        };
        let ca_file = raw
            .ca_file
            .map(|path| self.absolute(&key.k("ca_file"), path))
            .transpose()?;

        Ok(Repository {
            url,
            kind,
            keyring,
            allow_unsigned,
            ca_file,
        })
    }

    fn database(
        &self,
        target: &Key,
        config_files: &[PathBuf],
        raw: RawDatabase,
    ) -> Result<Database, ConfigError> {
        let key = target.k("database");
        let type_key = key.k("type");
        let url_key = key.k("url");
        let path_key = key.k("path");
        let kind = match raw.kind {
            Some(kind) => kind,
            None if raw.url.is_none() && raw.path.is_none() => RawDbType::None,
            None => return Err(self.missing(target, &type_key)),
        };
        let unused = |key: &Key| {
            self.invalid(
                key,
                format!("not used by database type {:?}; remove it", kind.name()),
            )
        };
        if raw.url.is_some() && !matches!(kind, RawDbType::Postgres | RawDbType::Mysql) {
            return Err(unused(&url_key));
        }
        if raw.path.is_some() && kind != RawDbType::Sqlite {
            return Err(unused(&path_key));
        }
        let secret_url = |url: Option<String>| match url {
            // Never echo the value: it may hold a password.
            Some(url) => {
                let url = Secret::new(url);
                if url.expose().trim().is_empty() {
                    Err(self.invalid(&url_key, "must not be empty"))
                } else {
                    Ok(url)
                }
            }
            None => Err(ConfigError::new(
                self.origins.first_file_of(target),
                Some(url_key.render()),
                format!("missing required key (for database type {:?})", kind.name()),
            )),
        };
        Ok(match kind {
            RawDbType::None => Database::None,
            RawDbType::PortalConf => match config_files.first() {
                Some(file) => Database::PortalConf {
                    config_file: file.clone(),
                },
                None => {
                    return Err(ConfigError::new(
                        self.origins.file_of(&type_key),
                        Some(target.k("config_files").render()),
                        "database type \"portal-conf\" needs at least one entry (the file it reads)",
                    ));
                }
            },
            RawDbType::Postgres => Database::Postgres {
                url: secret_url(raw.url)?,
            },
            RawDbType::Mysql => Database::Mysql {
                url: secret_url(raw.url)?,
            },
            RawDbType::Sqlite => match raw.path {
                Some(path) => Database::Sqlite {
                    path: self.absolute(&path_key, path)?,
                },
                None => {
                    return Err(ConfigError::new(
                        self.origins.first_file_of(target),
                        Some(path_key.render()),
                        "missing required key (for database type \"sqlite\")",
                    ));
                }
            },
        })
    }

    fn health(&self, key: &Key, raw: RawHealth) -> Result<Health, ConfigError> {
        let url = raw
            .url
            .map(|url| parse_http_url(&url).map_err(|m| self.invalid(&key.k("url"), m)))
            .transpose()?;
        let timeout = match raw.timeout {
            None => DEFAULT_HEALTH_TIMEOUT,
            Some(text) => {
                let timeout_key = key.k("timeout");
                let timeout = humantime::parse_duration(&text).map_err(|e| {
                    self.invalid(
                        &timeout_key,
                        format!("invalid duration {text:?}: {e} (examples: \"90s\", \"2m\")"),
                    )
                })?;
                if timeout.is_zero() {
                    return Err(self.invalid(&timeout_key, "must be greater than zero"));
                }
                timeout
            }
        };
        let log_errors = raw.log_errors.unwrap_or_default();
        if let Some(i) = log_errors.iter().position(|s| s.is_empty()) {
            return Err(self.invalid(
                &key.k("log_errors").i(i),
                "must not be empty (it would match every line)",
            ));
        }
        let settle = match raw.settle {
            None => crate::health::SETTLE,
            Some(text) => humantime::parse_duration(&text).map_err(|e| {
                self.invalid(
                    &key.k("settle"),
                    format!("invalid duration {text:?}: {e} (examples: \"3s\", \"0s\")"),
                )
            })?,
        };
        Ok(Health {
            url,
            timeout,
            log_errors,
            settle,
        })
    }

    fn upgrade_step(
        &self,
        target: &Key,
        key: &Key,
        raw: RawUpgradePath,
    ) -> Result<UpgradePath, ConfigError> {
        let from_key = key.k("from");
        let via_key = key.k("via");
        let from_text = raw.from.ok_or_else(|| self.missing(target, &from_key))?;
        let via_text = raw.via.ok_or_else(|| self.missing(target, &via_key))?;
        let from = semver::VersionReq::parse(&from_text).map_err(|e| {
            self.invalid(
                &from_key,
                format!("invalid version requirement {from_text:?}: {e}"),
            )
        })?;
        let via = semver::Version::parse(&via_text)
            .map_err(|e| self.invalid(&via_key, format!("invalid version {via_text:?}: {e}")))?;
        if from.matches(&via) {
            return Err(self.invalid(
                &via_key,
                format!("{via} matches `from` ({from}); the upgrade would never leave this step"),
            ));
        }
        Ok(UpgradePath { from, via })
    }
}

fn parse_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(format!(
            "unsupported URL scheme {scheme:?}; use http or https"
        )),
    }
}

/// A fleet group or node name: it becomes part of etcd keys.
fn check_fleet_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}; use 1 to 128 letters, digits, '.', '-' and '_'"
        ))
    }
}

fn check_package(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid package name {name:?}; it must start with a letter or digit and contain only letters, digits, '.', '+', '-' and '_'"
        ))
    }
}

fn check_unit(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.contains('/') {
        return Err(format!(
            "{name:?} is a path; give a unit name such as \"portal.service\""
        ));
    }
    let Some(stem) = UNIT_SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else {
        return Err(format!(
            "{name:?} has no known unit suffix (one of {})",
            UNIT_SUFFIXES.join(", ")
        ));
    };
    if stem.is_empty() {
        return Err(format!("{name:?} has nothing before the unit suffix"));
    }
    if name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '\\' | '@' | '-'))
    {
        return Err(format!("{name:?} is not a valid systemd unit name"));
    }
    Ok(())
}

/// A target named `portal` from an APT repository, for tests elsewhere in
/// the crate: `keys` go into `[targets.portal]`, `tables` after its
/// repository table.
#[cfg(test)]
pub(crate) fn test_target(keys: &str, tables: &str) -> Target {
    let toml = format!(
        "[targets.portal]\npackage = \"portal\"\nservices = [\"portal.service\"]\n{keys}\n\
         [targets.portal.repository]\ntype = \"apt\"\nurl = \"http://r/debian\"\n\
         suite = \"stable\"\ncomponent = \"main\"\nallow_unsigned = true\n{tables}\n"
    );
    let s = Settings::from_sources(&[("/t/upkeep.toml".into(), toml)]).expect("test target");
    s.targets["portal"].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "/etc/upkeep/upkeep.toml";

    /// The example from the configuration contract.
    const CONTRACT: &str = r#"
state_dir = "/var/lib/upkeep"      # optional
cache_dir = "/var/cache/upkeep"    # optional
lock_file = "/run/upkeep.lock"     # optional (our addition)
keep_versions = 3                  # packages and backups kept per target; >= 1

[targets.portal]
package = "portal"
services = ["portal.service"]
config_files = ["/opt/portal/portal.conf"]
backup_paths = ["/opt/portal/themes"]     # archived before every upgrade

[targets.portal.repository]
type = "apt"                        # "apt" or "yum"
url = "https://repo.example/portal/debian"
suite = "bookworm"                  # apt: a dists/ suite, or "./" (any value ending in "/") for a flat repository
component = "main"                  # apt, not used by a flat repository
keyring = "/etc/upkeep/keys/portal.asc"   # OpenPGP public key(s), armored or binary
# allow_unsigned = true             # only for testing; never the default
# ca_file = "/etc/ssl/private-ca.pem"     # optional extra CA for https

[targets.portal.database]
type = "portal-conf"   # read Database.Dialect/ConnectionString from the first config file;
                       # or "postgres" / "mysql" with url = "...", or "sqlite" with path = "...", or "none"

[targets.portal.health]
url = "http://127.0.0.1:3001/ready"  # must answer 2xx
timeout = "120s"
log_errors = ["failed to migrate database"]   # journal lines that fail the upgrade

[[targets.portal.upgrade_path]]      # stepping stones, product versions (semver)
from = "<1.13.0"
via = "1.13.0"
"#;

    /// A minimal valid configuration with one target `portal`.
    const MINIMAL: &str = r#"
[targets.portal]
package = "portal"
services = ["portal.service"]

[targets.portal.repository]
type = "apt"
url = "https://repo.example/portal/debian"
suite = "bookworm"
component = "main"
keyring = "/etc/upkeep/keys/portal.asc"
"#;

    fn sources(main: &str, drop_ins: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        let mut all = vec![(PathBuf::from(MAIN), main.to_owned())];
        all.extend(drop_ins.iter().map(|(name, text)| {
            (
                PathBuf::from(format!("/etc/upkeep/conf.d/{name}")),
                (*text).to_owned(),
            )
        }));
        all
    }

    fn parse(main: &str, drop_ins: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_sources(&sources(main, drop_ins))
    }

    fn ok(main: &str, drop_ins: &[(&str, &str)]) -> Settings {
        match parse(main, drop_ins) {
            Ok(settings) => settings,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    /// The error for `MINIMAL` plus one drop-in `10-test.toml`.
    fn err_with(drop_in: &str) -> ConfigError {
        err(MINIMAL, &[("10-test.toml", drop_in)])
    }

    fn err(main: &str, drop_ins: &[(&str, &str)]) -> ConfigError {
        match parse(main, drop_ins) {
            Ok(settings) => panic!("expected an error, got {settings:?}"),
            Err(e) => {
                let line = e.to_string();
                assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
                e
            }
        }
    }

    /// Assert the error's file, key and (part of) message.
    #[track_caller]
    fn assert_err(e: &ConfigError, file: &str, key: Option<&str>, message: &str) {
        assert_eq!(e.file, PathBuf::from(file), "file of {e}");
        assert_eq!(e.key.as_deref(), key, "key of {e}");
        assert!(
            e.message.contains(message),
            "message of {e} lacks {message:?}"
        );
    }

    const DROP_IN: &str = "/etc/upkeep/conf.d/10-test.toml";

    fn portal(settings: &Settings) -> &Target {
        &settings.targets["portal"]
    }

    // --- parsing and defaults -------------------------------------------

    #[test]
    fn contract_example_parses() {
        let settings = ok(CONTRACT, &[]);
        let url = |s: &str| url::Url::parse(s).expect("url");
        let expected = Settings {
            state_dir: "/var/lib/upkeep".into(),
            cache_dir: "/var/cache/upkeep".into(),
            lock_file: "/run/upkeep.lock".into(),
            keep_versions: 3,
            targets: BTreeMap::from([(
                "portal".to_owned(),
                Target {
                    name: "portal".into(),
                    package: "portal".into(),
                    packages: vec!["portal".into()],
                    family: crate::version::Family::Deb,
                    services: vec!["portal.service".into()],
                    config_files: vec!["/opt/portal/portal.conf".into()],
                    backup_paths: vec!["/opt/portal/themes".into()],
                    system_repositories: false,
                    repository_records: "/var/lib/upkeep/repositories".into(),
                    repositories: vec![Repository {
                        url: url("https://repo.example/portal/debian/"),
                        kind: RepoKind::Apt {
                            suite: "bookworm".into(),
                            component: Some("main".into()),
                        },
                        keyring: Some("/etc/upkeep/keys/portal.asc".into()),
                        allow_unsigned: false,
                        ca_file: None,
                    }],
                    database: Database::PortalConf {
                        config_file: "/opt/portal/portal.conf".into(),
                    },
                    health: Health {
                        url: Some(url("http://127.0.0.1:3001/ready")),
                        timeout: Duration::from_secs(120),
                        log_errors: vec!["failed to migrate database".into()],
                        settle: Duration::from_secs(3),
                    },
                    upgrade_path: vec![UpgradePath {
                        from: semver::VersionReq::parse("<1.13.0").expect("req"),
                        via: semver::Version::new(1, 13, 0),
                    }],
                    config_merge: crate::confmerge::Policy::Merge,
                    required_keys: Vec::new(),
                    auto_upgrade: AutoUpgrade::Off,
                    windows: Vec::new(),
                    notify: Vec::new(),
                    requires: Vec::new(),
                    hooks: Vec::new(),
                    verify: Vec::new(),
                    theme: None,
                },
            )]),
            sources: vec![PathBuf::from(MAIN)],
            fleet: None,
        };
        assert_eq!(settings, expected);
    }

    #[test]
    fn defaults() {
        let settings = ok(MINIMAL, &[]);
        assert_eq!(settings.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(settings.cache_dir, PathBuf::from(DEFAULT_CACHE_DIR));
        assert_eq!(settings.lock_file, PathBuf::from(DEFAULT_LOCK_FILE));
        assert_eq!(settings.keep_versions, 3);
        assert_eq!(settings.sources, vec![PathBuf::from(MAIN)]);
        let t = portal(&settings);
        assert_eq!(t.name, "portal");
        assert!(t.config_files.is_empty());
        assert!(t.backup_paths.is_empty());
        assert!(t.upgrade_path.is_empty());
        assert_eq!(t.database, Database::None);
        assert_eq!(
            t.health,
            Health {
                url: None,
                timeout: Duration::from_secs(120),
                log_errors: Vec::new(),
                settle: Duration::from_secs(3),
            }
        );
        assert!(!t.repositories[0].allow_unsigned);
        assert_eq!(t.repositories[0].ca_file, None);
    }

    #[test]
    fn repository_url_gets_trailing_slash() {
        let s = ok(MINIMAL, &[]);
        assert_eq!(
            portal(&s).repositories[0].url.as_str(),
            "https://repo.example/portal/debian/"
        );
        let joined = portal(&s).repositories[0]
            .url
            .join("dists/bookworm/InRelease")
            .expect("join");
        assert_eq!(
            joined.as_str(),
            "https://repo.example/portal/debian/dists/bookworm/InRelease"
        );
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.repository]\nurl = \"http://repo.example\"\n",
            )],
        );
        assert_eq!(
            portal(&s).repositories[0].url.as_str(),
            "http://repo.example/"
        );
    }

    // --- drop-ins ---------------------------------------------------------

    #[test]
    fn drop_in_overrides_scalar() {
        let s = ok(
            MINIMAL,
            &[(
                "10-a.toml",
                "keep_versions = 5\n[targets.portal]\npackage = \"portal-ee\"\n",
            )],
        );
        assert_eq!(s.keep_versions, 5);
        assert_eq!(portal(&s).package, "portal-ee");
        // Untouched keys of the same table survive.
        assert_eq!(portal(&s).services, vec!["portal.service".to_owned()]);
        assert_eq!(
            s.sources,
            vec![
                PathBuf::from(MAIN),
                PathBuf::from("/etc/upkeep/conf.d/10-a.toml")
            ]
        );
    }

    #[test]
    fn drop_in_merges_nested_table() {
        let s = ok(
            CONTRACT,
            &[(
                "10-a.toml",
                r#"
                [targets.portal.repository]
                url = "https://mirror.example/debian"
                [targets.portal.health]
                timeout = "5m"
                "#,
            )],
        );
        let t = portal(&s);
        assert_eq!(
            t.repositories[0].url.as_str(),
            "https://mirror.example/debian/"
        );
        // Siblings from the main file are kept.
        assert_eq!(
            t.repositories[0].kind,
            RepoKind::Apt {
                suite: "bookworm".into(),
                component: Some("main".into())
            }
        );
        assert_eq!(
            t.repositories[0].keyring,
            Some(PathBuf::from("/etc/upkeep/keys/portal.asc"))
        );
        assert_eq!(t.health.timeout, Duration::from_secs(300));
        assert_eq!(t.health.log_errors, vec!["failed to migrate database"]);
        assert!(t.health.url.is_some());
    }

    #[test]
    fn drop_in_inline_table_merges_too() {
        let s = ok(
            CONTRACT,
            &[(
                "10-a.toml",
                "[targets.portal]\nhealth = { timeout = \"7s\" }\n",
            )],
        );
        assert_eq!(portal(&s).health.timeout, Duration::from_secs(7));
        assert!(portal(&s).health.url.is_some());
    }

    #[test]
    fn drop_in_replaces_arrays() {
        let s = ok(
            CONTRACT,
            &[(
                "10-a.toml",
                r#"
                [targets.portal]
                services = ["portal-worker.service", "portal.socket"]
                [[targets.portal.upgrade_path]]
                from = "<2.0.0"
                via = "2.0.0"
                [[targets.portal.upgrade_path]]
                from = ">=2.0.0, <2.5.0"
                via = "2.5.0"
                "#,
            )],
        );
        let t = portal(&s);
        assert_eq!(t.services, vec!["portal-worker.service", "portal.socket"]);
        let vias: Vec<String> = t.upgrade_path.iter().map(|p| p.via.to_string()).collect();
        assert_eq!(vias, vec!["2.0.0", "2.5.0"]);
        assert_eq!(t.upgrade_path[1].from.to_string(), ">=2.0.0, <2.5.0");
    }

    #[test]
    fn drop_in_adds_target() {
        let s = ok(
            MINIMAL,
            &[(
                "20-shop.toml",
                r#"
                [targets.shop]
                package = "shop"
                services = ["shop.service"]
                [targets.shop.repository]
                type = "yum"
                url = "https://repo.example/shop/el9"
                keyring = "/etc/upkeep/keys/shop.asc"
                [targets.shop.database]
                type = "postgres"
                url = "postgres://shop:hunter2@db/shop"
                "#,
            )],
        );
        assert_eq!(s.targets.keys().collect::<Vec<_>>(), vec!["portal", "shop"]);
        let shop = &s.targets["shop"];
        assert_eq!(shop.repositories[0].kind, RepoKind::Yum);
        match &shop.database {
            Database::Postgres { url } => {
                assert_eq!(url.expose(), "postgres://shop:hunter2@db/shop")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn later_drop_in_wins() {
        let s = ok(
            MINIMAL,
            &[
                ("10-a.toml", "keep_versions = 5\n"),
                ("20-b.toml", "keep_versions = 7\n"),
            ],
        );
        assert_eq!(s.keep_versions, 7);
    }

    // --- per-file schema --------------------------------------------------

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let e = err_with("\n[targets.portal]\ncolour = \"blue\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.colour"),
            "unknown field `colour`",
        );
        assert!(e.message.contains("line 3, column 1"), "{e}");
        let e = err("typo = 1\n", &[]);
        assert_err(&e, MAIN, Some("typo"), "unknown field `typo`");
        let e = err_with("[targets.portal.repository]\nsigned_by = \"/k\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.signed_by"),
            "unknown field",
        );
        let e = err_with("[[targets.portal.upgrade_path]]\nfrom = \"<1.0.0\"\nto = \"1.0.0\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.upgrade_path[0].to"),
            "unknown field `to`",
        );
    }

    #[test]
    fn unknown_key_in_a_file_is_refused_even_if_overridden() {
        // Each file is checked on its own, before merging.
        let e = err(
            &format!("{MINIMAL}\n[targets.portal.health]\nretries = 3\n"),
            &[("10-a.toml", "[targets.portal]\nhealth = {}\n")],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.health.retries"),
            "unknown field",
        );
    }

    #[test]
    fn wrong_types() {
        let e = err_with("[targets.portal.repository]\ntype = \"zypper\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.type"),
            "unknown variant `zypper`",
        );
        let e = err_with("[targets.portal.database]\ntype = \"oracle\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.database.type"),
            "unknown variant `oracle`",
        );
        let e = err_with("keep_versions = -1\n");
        assert_err(&e, DROP_IN, Some("keep_versions"), "expected u32");
        let e = err_with("[targets.portal]\nservices = [\"a.service\", 3]\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.services[1]"),
            "expected a string",
        );
        let e = err_with("[targets.portal.health]\ntimeout = 120\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.health.timeout"),
            "expected a string",
        );
        let e = err_with("[targets.portal.repository]\nallow_unsigned = \"yes\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.allow_unsigned"),
            "expected a boolean",
        );
        let e = err_with("targets = 3\n");
        assert_err(&e, DROP_IN, Some("targets"), "invalid type");
    }

    #[test]
    fn syntax_error_gives_file_and_line() {
        let e = err_with("keep_versions = 3\n\n[targets.portal\npackage = \"x\"\n");
        assert_eq!(e.file, PathBuf::from(DROP_IN));
        assert_eq!(e.key, None);
        assert!(e.message.contains("invalid TOML at line 3, column"), "{e}");
        let line = e.to_string();
        assert!(
            line.starts_with(&format!("{DROP_IN}: invalid TOML at line 3")),
            "{line}"
        );
        assert!(!line.contains('\n'));

        let e = err("keep_versions = 3\nkeep_versions = 4\n", &[]);
        assert_err(&e, MAIN, None, "invalid TOML at line 2, column 1");
        let e = err("name = \n", &[]);
        assert_err(&e, MAIN, None, "invalid TOML at line 1");
    }

    // --- required keys ----------------------------------------------------

    fn without(line: &str) -> String {
        let out = MINIMAL.replace(line, "");
        assert_ne!(out, MINIMAL, "{line:?} not in MINIMAL");
        out
    }

    #[test]
    fn required_keys() {
        for (line, key) in [
            ("package = \"portal\"\n", "targets.portal.package"),
            (
                "services = [\"portal.service\"]\n",
                "targets.portal.services",
            ),
            ("type = \"apt\"\n", "targets.portal.repository.type"),
            (
                "url = \"https://repo.example/portal/debian\"\n",
                "targets.portal.repository.url",
            ),
            ("suite = \"bookworm\"\n", "targets.portal.repository.suite"),
            (
                "component = \"main\"\n",
                "targets.portal.repository.component",
            ),
            (
                "keyring = \"/etc/upkeep/keys/portal.asc\"\n",
                "targets.portal.repository.keyring",
            ),
        ] {
            let e = err(&without(line), &[]);
            assert_err(&e, MAIN, Some(key), "missing required key");
        }
        let e = err(
            "[targets.portal]\npackage = \"portal\"\nservices = [\"p.service\"]\n",
            &[],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.type"),
            "missing required key",
        );
    }

    #[test]
    fn missing_key_blames_file_that_first_defined_target() {
        // Target defined in the main file, completed (but not fully) by a drop-in.
        let main = without("package = \"portal\"\n");
        let e = err(
            &main,
            &[(
                "10-a.toml",
                "[targets.portal]\nservices = [\"x.service\"]\n",
            )],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.package"),
            "missing required key",
        );

        // Target defined first by a drop-in.
        let e = err(
            MINIMAL,
            &[
                ("10-a.toml", "[targets.shop]\npackage = \"shop\"\n"),
                (
                    "20-b.toml",
                    "[targets.shop]\nservices = [\"shop.service\"]\n",
                ),
            ],
        );
        assert_err(
            &e,
            "/etc/upkeep/conf.d/10-a.toml",
            Some("targets.shop.repository.type"),
            "missing required key",
        );
    }

    #[test]
    fn invalid_value_blames_file_that_set_it() {
        let e = err(
            MINIMAL,
            &[
                (
                    "10-a.toml",
                    "[targets.portal.repository]\nurl = \"ftp://x/\"\n",
                ),
                ("20-b.toml", "keep_versions = 2\n"),
            ],
        );
        assert_err(
            &e,
            "/etc/upkeep/conf.d/10-a.toml",
            Some("targets.portal.repository.url"),
            "unsupported URL scheme \"ftp\"",
        );
        let e = err_with("[targets.portal]\nservices = [\"ok.service\", \"bad\"]\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.services[1]"),
            "no known unit suffix",
        );
    }

    #[test]
    fn unattended_windows_and_notify_parse() {
        let s = ok(
            CONTRACT,
            &[(
                "10-test.toml",
                "[targets.portal]\nauto_upgrade = \"apply\"\nnotify = [\"/usr/local/bin/tell\", \"--ops\"]\n\
                 [[targets.portal.window]]\ndays = [\"Sat\", \"Sun\"]\nstart = \"02:00\"\nlength = \"2h\"\ntime_zone = \"UTC\"\n",
            )],
        );
        let p = portal(&s);
        assert_eq!(p.auto_upgrade, AutoUpgrade::Apply);
        assert_eq!(p.windows.len(), 1);
        assert_eq!(p.windows[0].days.len(), 2);
        assert_eq!(p.notify, ["/usr/local/bin/tell", "--ops"]);
        let s = ok(
            CONTRACT,
            &[(
                "10-test.toml",
                "[targets.portal]\nnotify = \"/usr/bin/logger\"\n",
            )],
        );
        assert_eq!(portal(&s).notify, ["/usr/bin/logger"]);
        assert_eq!(portal(&s).auto_upgrade, AutoUpgrade::Off);
    }

    #[test]
    fn unattended_settings_are_validated_with_file_and_key() {
        let e = err_with("[targets.portal]\nauto_upgrade = \"always\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.auto_upgrade"),
            "is not one of",
        );
        let e = err_with("[targets.portal]\nauto_upgrade = \"apply\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.auto_upgrade"),
            "needs at least one",
        );
        let e = err_with(
            "[[targets.portal.window]]\ndays = [\"Sat\"]\nstart = \"2am\"\nlength = \"2h\"\n",
        );
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.window[0].start"),
            "time of day",
        );
        let e = err_with("[[targets.portal.window]]\ndays = [\"Sat\"]\nstart = \"02:00\"\n");
        assert!(
            e.to_string().contains("targets.portal.window[0].length"),
            "{e}"
        );
        let e = err_with("[targets.portal]\nnotify = [\"mail\", \"ops\"]\n");
        assert_err(&e, DROP_IN, Some("targets.portal.notify"), "absolute path");
        let e = err_with("[targets.portal]\nnotify = []\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.notify"),
            "must name a program",
        );
    }

    #[test]
    fn no_targets_loads_but_a_command_that_needs_one_is_told_to_add_one() {
        for text in ["keep_versions = 2\n", "[targets]\n"] {
            let s = Settings::from_sources(&[(PathBuf::from(MAIN), text.to_owned())]).unwrap();
            assert!(s.targets.is_empty());
            let e = s.target(None).unwrap_err();
            assert_err(&e, MAIN, Some("targets"), "no targets defined");
        }
    }

    // --- validation rules -------------------------------------------------

    #[test]
    fn keep_versions_at_least_one() {
        let e = err_with("keep_versions = 0\n");
        assert_err(&e, DROP_IN, Some("keep_versions"), "at least 1");
        assert_eq!(
            ok(MINIMAL, &[("a.toml", "keep_versions = 1\n")]).keep_versions,
            1
        );
    }

    #[test]
    fn keyring_unless_allow_unsigned() {
        let main = without("keyring = \"/etc/upkeep/keys/portal.asc\"\n");
        let e = err(&main, &[]);
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.keyring"),
            "missing required key",
        );
        let e = err(
            &main,
            &[(
                "10-test.toml",
                "[targets.portal.repository]\nallow_unsigned = false\n",
            )],
        );
        assert_eq!(e.key.as_deref(), Some("targets.portal.repository.keyring"));
        let s = ok(
            &main,
            &[(
                "a.toml",
                "[targets.portal.repository]\nallow_unsigned = true\n",
            )],
        );
        assert!(portal(&s).repositories[0].allow_unsigned);
        assert_eq!(portal(&s).repositories[0].keyring, None);
    }

    #[test]
    fn apt_suite_and_component() {
        // Flat repository: no component allowed, none needed.
        let e = err_with("[targets.portal.repository]\nsuite = \"./\"\n");
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.component"),
            "not used by a flat repository",
        );
        let main = without("component = \"main\"\n");
        let e = err(&main, &[]);
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.component"),
            "missing required key",
        );
        let s = ok(
            &main,
            &[("a.toml", "[targets.portal.repository]\nsuite = \"./\"\n")],
        );
        assert_eq!(
            portal(&s).repositories[0].kind,
            RepoKind::Apt {
                suite: "./".into(),
                component: None
            }
        );
        let s = ok(
            &main,
            &[(
                "a.toml",
                "[targets.portal.repository]\nsuite = \"stable/\"\n",
            )],
        );
        assert!(matches!(
            &portal(&s).repositories[0].kind,
            RepoKind::Apt { suite, component: None } if suite == "stable/"
        ));
        let e = err_with("[targets.portal.repository]\nsuite = \"\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.suite"),
            "must not be empty",
        );
        let e = err_with("[targets.portal.repository]\ncomponent = \" \"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.component"),
            "must not be empty",
        );
    }

    #[test]
    fn yum_refuses_suite_and_component() {
        let yum = MINIMAL
            .replace("type = \"apt\"", "type = \"yum\"")
            .replace("suite = \"bookworm\"\n", "")
            .replace("component = \"main\"\n", "");
        let s = ok(&yum, &[]);
        assert_eq!(portal(&s).repositories[0].kind, RepoKind::Yum);
        let e = err(
            &yum,
            &[(
                "10-test.toml",
                "[targets.portal.repository]\nsuite = \"el9\"\n",
            )],
        );
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.suite"),
            "not used by a yum repository",
        );
        let e = err(
            &yum,
            &[(
                "10-test.toml",
                "[targets.portal.repository]\ncomponent = \"main\"\n",
            )],
        );
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.repository.component"),
            "not used by a yum repository",
        );
        // Switching an apt target to yum in a drop-in keeps the main file's suite.
        let e = err_with("[targets.portal.repository]\ntype = \"yum\"\n");
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.suite"),
            "not used by a yum repository",
        );
    }

    #[test]
    fn repository_url_rules() {
        let key = Some("targets.portal.repository.url");
        let e = err_with("[targets.portal.repository]\nurl = \"not a url\"\n");
        assert_err(&e, DROP_IN, key, "invalid URL \"not a url\"");
        let e = err_with("[targets.portal.repository]\nurl = \"file:///srv/repo\"\n");
        assert_err(&e, DROP_IN, key, "unsupported URL scheme \"file\"");
        let e = err_with("[targets.portal.repository]\nurl = \"https://r.example/?x=1\"\n");
        assert_err(&e, DROP_IN, key, "query or fragment");
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.repository]\nurl = \"http://r.example/a/\"\n",
            )],
        );
        assert_eq!(
            portal(&s).repositories[0].url.as_str(),
            "http://r.example/a/"
        );
    }

    #[test]
    fn fleet_table_from_the_contract_and_its_defaults() {
        let s = ok(
            MINIMAL,
            &[(
                "10-test.toml",
                "[fleet]\netcd = [\"http://10.0.0.5:2379\"]\ngroup = \"portal-prod\"\nnode = \"web1\"\nslots = 1\nlease = \"30s\"\nwait = \"30m\"\ncanary = true\nrequire_plan = \"all\"\n",
            )],
        );
        let f = s.fleet.expect("fleet");
        assert_eq!(f.etcd[0].as_str(), "http://10.0.0.5:2379/");
        assert_eq!(f.group, "portal-prod");
        assert_eq!(f.node.as_deref(), Some("web1"));
        assert_eq!(f.lease, Duration::from_secs(30));
        assert_eq!(f.wait, Duration::from_secs(1800));
        assert!(f.canary && f.require_plan_all);
        let s = ok(
            MINIMAL,
            &[(
                "10-test.toml",
                "[fleet]\netcd = [\"https://e:2379\"]\ngroup = \"g\"\n",
            )],
        );
        let f = s.fleet.expect("fleet");
        assert_eq!(f.node, None);
        assert_eq!(
            (f.slots, f.lease, f.wait, f.canary, f.require_plan_all),
            (1, DEFAULT_FLEET_LEASE, DEFAULT_FLEET_WAIT, false, false)
        );
        assert!(ok(MINIMAL, &[]).fleet.is_none());
    }

    #[test]
    fn fleet_rules() {
        let base = "[fleet]\netcd = [\"http://127.0.0.1:2379\"]\ngroup = \"g\"\n";
        let e = err_with("[fleet]\ngroup = \"g\"\n");
        assert_err(&e, DROP_IN, Some("fleet.etcd"), "missing required key");
        let e = err_with("[fleet]\netcd = [\"http://127.0.0.1:2379\"]\n");
        assert_err(&e, DROP_IN, Some("fleet.group"), "missing required key");
        let e = err_with("[fleet]\netcd = []\ngroup = \"g\"\n");
        assert_err(&e, DROP_IN, Some("fleet.etcd"), "at least one");
        let e = err_with("[fleet]\netcd = [\"unix:///run/etcd\"]\ngroup = \"g\"\n");
        assert_err(&e, DROP_IN, Some("fleet.etcd[0]"), "unsupported URL scheme");
        let e = err_with("[fleet]\netcd = [\"http://e:1\"]\ngroup = \"a/b\"\n");
        assert_err(&e, DROP_IN, Some("fleet.group"), "invalid name");
        for (extra, key, message) in [
            ("node = \"\"", "fleet.node", "invalid name"),
            ("slots = 0", "fleet.slots", "at least 1"),
            ("lease = \"1s\"", "fleet.lease", "at least 3s"),
            ("wait = \"later\"", "fleet.wait", "invalid duration"),
            (
                "require_plan = \"some\"",
                "fleet.require_plan",
                "unknown value",
            ),
            (
                "cert_file = \"/etc/upkeep/etcd.pem\"",
                "fleet.key_file",
                "go together",
            ),
            ("user = \"upkeep\"", "fleet.password_file", "go together"),
            ("ca_file = \"ca.pem\"", "fleet.ca_file", "absolute path"),
            ("slot = 2", "fleet.slot", "unknown field"),
        ] {
            let e = err_with(&format!("{base}{extra}\n"));
            assert_err(&e, DROP_IN, Some(key), message);
        }
    }

    #[test]
    fn health_rules() {
        let e = err_with("[targets.portal.health]\nurl = \"tcp://127.0.0.1:1\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.health.url"),
            "unsupported URL scheme",
        );
        let e = err_with("[targets.portal.health]\ntimeout = \"soon\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.health.timeout"),
            "invalid duration \"soon\"",
        );
        let e = err_with("[targets.portal.health]\ntimeout = \"0s\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.health.timeout"),
            "greater than zero",
        );
        let e = err_with("[targets.portal.health]\nlog_errors = [\"panic\", \"\"]\n");
        assert_err(
            &e,
            DROP_IN,
            Some("targets.portal.health.log_errors[1]"),
            "must not be empty",
        );
        let s = ok(
            MINIMAL,
            &[("a.toml", "[targets.portal.health]\ntimeout = \"1m 30s\"\n")],
        );
        assert_eq!(portal(&s).health.timeout, Duration::from_secs(90));
    }

    #[test]
    fn database_rules() {
        let cases = [
            (
                "[targets.portal.database]\ntype = \"postgres\"\n",
                MAIN,
                "targets.portal.database.url",
                "missing required key",
            ),
            (
                "[targets.portal.database]\ntype = \"mysql\"\n",
                MAIN,
                "targets.portal.database.url",
                "missing required key",
            ),
            (
                "[targets.portal.database]\ntype = \"mysql\"\nurl = \"\"\n",
                DROP_IN,
                "targets.portal.database.url",
                "must not be empty",
            ),
            (
                "[targets.portal.database]\ntype = \"sqlite\"\n",
                MAIN,
                "targets.portal.database.path",
                "missing required key",
            ),
            (
                "[targets.portal.database]\ntype = \"sqlite\"\npath = \"db.sqlite\"\n",
                DROP_IN,
                "targets.portal.database.path",
                "must be an absolute path",
            ),
            (
                "[targets.portal.database]\ntype = \"portal-conf\"\n",
                DROP_IN,
                "targets.portal.config_files",
                "needs at least one entry",
            ),
            (
                "[targets.portal.database]\ntype = \"none\"\nurl = \"postgres://x\"\n",
                DROP_IN,
                "targets.portal.database.url",
                "not used by database type \"none\"",
            ),
            (
                "[targets.portal.database]\ntype = \"postgres\"\nurl = \"postgres://x\"\npath = \"/x\"\n",
                DROP_IN,
                "targets.portal.database.path",
                "not used by database type \"postgres\"",
            ),
            (
                "[targets.portal.database]\nurl = \"postgres://x\"\n",
                MAIN,
                "targets.portal.database.type",
                "missing required key",
            ),
        ];
        for (drop_in, file, key, message) in cases {
            let e = err_with(drop_in);
            assert_err(&e, file, Some(key), message);
        }

        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal]\nconfig_files = [\"/etc/portal/a.conf\", \"/etc/portal/b.conf\"]\n[targets.portal.database]\ntype = \"portal-conf\"\n",
            )],
        );
        assert_eq!(
            portal(&s).database,
            Database::PortalConf {
                config_file: "/etc/portal/a.conf".into()
            }
        );
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.database]\ntype = \"sqlite\"\npath = \"/var/lib/p.db\"\n",
            )],
        );
        assert_eq!(
            portal(&s).database,
            Database::Sqlite {
                path: "/var/lib/p.db".into()
            }
        );
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.database]\ntype = \"mysql\"\nurl = \"mysql://u:p@h/d\"\n",
            )],
        );
        assert!(
            matches!(&portal(&s).database, Database::Mysql { url } if url.expose() == "mysql://u:p@h/d")
        );
        let s = ok(
            MINIMAL,
            &[("a.toml", "[targets.portal.database]\ntype = \"none\"\n")],
        );
        assert_eq!(portal(&s).database, Database::None);
    }

    #[test]
    fn paths_must_be_absolute() {
        let cases = [
            ("state_dir = \"var/lib/upkeep\"\n", "state_dir"),
            ("cache_dir = \"cache\"\n", "cache_dir"),
            ("lock_file = \"./upkeep.lock\"\n", "lock_file"),
            (
                "[targets.portal]\nconfig_files = [\"/ok.conf\", \"rel.conf\"]\n",
                "targets.portal.config_files[1]",
            ),
            (
                "[targets.portal]\nbackup_paths = [\"themes\"]\n",
                "targets.portal.backup_paths[0]",
            ),
            (
                "[targets.portal.repository]\nkeyring = \"keys/portal.asc\"\n",
                "targets.portal.repository.keyring",
            ),
            (
                "[targets.portal.repository]\nca_file = \"ca.pem\"\n",
                "targets.portal.repository.ca_file",
            ),
            (
                "[targets.portal.database]\ntype = \"sqlite\"\npath = \"\"\n",
                "targets.portal.database.path",
            ),
        ];
        for (drop_in, key) in cases {
            let e = err_with(drop_in);
            assert_err(&e, DROP_IN, Some(key), "must be an absolute path");
        }
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.repository]\nca_file = \"/etc/ssl/ca.pem\"\n",
            )],
        );
        assert_eq!(
            portal(&s).repositories[0].ca_file,
            Some(PathBuf::from("/etc/ssl/ca.pem"))
        );
    }

    #[test]
    fn unit_names() {
        for (unit, message) in [
            ("", "must not be empty"),
            ("/etc/systemd/system/portal.service", "is a path"),
            ("portal", "no known unit suffix"),
            ("portal.conf", "no known unit suffix"),
            (".service", "nothing before the unit suffix"),
            ("por tal.service", "not a valid systemd unit name"),
        ] {
            let e = err_with(&format!("[targets.portal]\nservices = [{unit:?}]\n"));
            assert_err(&e, DROP_IN, Some("targets.portal.services[0]"), message);
        }
        let e = err_with("[targets.portal]\nservices = []\n");
        assert_err(&e, DROP_IN, Some("targets.portal.services"), "at least one");
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal]\nservices = [\"portal.service\", \"portal.socket\", \"portal-gc.timer\", \"portal.target\", \"portal@1.service\"]\n",
            )],
        );
        assert_eq!(portal(&s).services.len(), 5);
    }

    #[test]
    fn package_names() {
        for bad in ["", "-portal", "portal ee", "portal/ee"] {
            let e = err_with(&format!("[targets.portal]\npackage = {bad:?}\n"));
            assert_err(
                &e,
                DROP_IN,
                Some("targets.portal.package"),
                "invalid package name",
            );
        }
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal]\npackage = \"portal-ee2.0+x_y\"\n",
            )],
        );
        assert_eq!(portal(&s).package, "portal-ee2.0+x_y");
    }

    #[test]
    fn target_names() {
        let body = "package = \"x\"\nservices = [\"x.service\"]\n";
        let e = err(
            MINIMAL,
            &[("10-test.toml", &format!("[targets.\"bad name\"]\n{body}"))],
        );
        assert_err(
            &e,
            DROP_IN,
            Some("targets.\"bad name\""),
            "invalid target name",
        );
        let e = err(
            MINIMAL,
            &[("10-test.toml", &format!("[targets.\"\"]\n{body}"))],
        );
        assert_err(&e, DROP_IN, Some("targets.\"\""), "invalid target name");
        let e = err(
            MINIMAL,
            &[("10-test.toml", &format!("[targets.\"ü\"]\n{body}"))],
        );
        assert_eq!(e.key.as_deref(), Some("targets.\"ü\""));
        // Dots are allowed in names; the key path quotes such a name.
        let e = err(
            MINIMAL,
            &[("10-test.toml", &format!("[targets.\"portal.v2\"]\n{body}"))],
        );
        assert_err(
            &e,
            DROP_IN,
            Some("targets.\"portal.v2\".repository.type"),
            "missing required key",
        );
    }

    #[test]
    fn upgrade_path_rules() {
        let key = |i: usize, k: &str| format!("targets.portal.upgrade_path[{i}].{k}");
        let e = err_with(
            "[[targets.portal.upgrade_path]]\nfrom = \"<1.0.0\"\nvia = \"1.0.0\"\n[[targets.portal.upgrade_path]]\nfrom = \"latest\"\nvia = \"2.0.0\"\n",
        );
        assert_err(
            &e,
            DROP_IN,
            Some(&key(1, "from")),
            "invalid version requirement \"latest\"",
        );
        let e = err_with("[[targets.portal.upgrade_path]]\nfrom = \"<1.13.0\"\nvia = \"1.13\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some(&key(0, "via")),
            "invalid version \"1.13\"",
        );
        let e = err_with("[[targets.portal.upgrade_path]]\nfrom = \"<2.0.0\"\nvia = \"1.5.0\"\n");
        assert_err(&e, DROP_IN, Some(&key(0, "via")), "never leave this step");
        let e = err_with("[[targets.portal.upgrade_path]]\nfrom = \"<2.0.0\"\n");
        assert_err(&e, MAIN, Some(&key(0, "via")), "missing required key");
        let e = err_with("[[targets.portal.upgrade_path]]\nvia = \"2.0.0\"\n");
        assert_err(&e, MAIN, Some(&key(0, "from")), "missing required key");
    }

    #[test]
    fn theme_table() {
        assert_eq!(portal(&ok(MINIMAL, &[])).theme, None);
        let s = ok(
            MINIMAL,
            &[(
                "10-test.toml",
                "[targets.portal.theme]\npath = \"/opt/portal/themes/custom\"\ndefault = \"/opt/portal/themes/default\"\nmerge = \"report\"\n",
            )],
        );
        let t = portal(&s).theme.clone().expect("theme");
        assert_eq!(t.path, PathBuf::from("/opt/portal/themes/custom"));
        assert_eq!(t.default, PathBuf::from("/opt/portal/themes/default"));
        assert_eq!(t.merge, crate::theme::Policy::Report);
        let key = |k: &str| format!("targets.portal.theme.{k}");
        let e = err_with("[targets.portal.theme]\npath = \"/a\"\n");
        assert_err(&e, MAIN, Some(&key("default")), "missing required key");
        let e = err_with("[targets.portal.theme]\npath = \"rel\"\ndefault = \"/d\"\n");
        assert_err(&e, DROP_IN, Some(&key("path")), "absolute");
        let e = err_with("[targets.portal.theme]\npath = \"/d/x\"\ndefault = \"/d\"\n");
        assert_err(&e, DROP_IN, Some(&key("path")), "separate directories");
        let e =
            err_with("[targets.portal.theme]\npath = \"/c\"\ndefault = \"/d\"\nmerge = \"new\"\n");
        assert_err(&e, DROP_IN, Some(&key("merge")), "unknown theme merge");
        let e = err_with("[targets.portal.theme]\npath = \"/c\"\ndefault = \"/d\"\ncolour = 1\n");
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn config_merge_policy_and_required_keys() {
        let t = portal(&ok(MINIMAL, &[])).clone();
        assert_eq!(t.config_merge, crate::confmerge::Policy::Merge);
        assert!(t.required_keys.is_empty());
        let s = ok(
            MINIMAL,
            &[(
                "10-test.toml",
                "[targets.portal]\nconfig_files = [\"/opt/portal/portal.conf\"]\nconfig_merge = \"keep\"\n[[targets.portal.required_keys]]\nversion = \">=2.0.0\"\nkeys = [\"Database.Dialect\", \"Database.ConnectionString\"]\n",
            )],
        );
        let t = portal(&s);
        assert_eq!(t.config_merge, crate::confmerge::Policy::Keep);
        assert_eq!(t.required_keys.len(), 1);
        assert_eq!(
            t.required_keys[0].file,
            PathBuf::from("/opt/portal/portal.conf")
        );
        assert!(
            t.required_keys[0]
                .version
                .matches(&semver::Version::new(2, 1, 0))
        );
        assert_eq!(t.required_keys[0].keys[1], "Database.ConnectionString");

        let key = |k: &str| format!("targets.portal.{k}");
        let e = err_with("[targets.portal]\nconfig_merge = \"theirs\"\n");
        assert_err(
            &e,
            DROP_IN,
            Some(&key("config_merge")),
            "unknown config_merge",
        );
        let e =
            err_with("[[targets.portal.required_keys]]\nversion = \">=2.0.0\"\nkeys = [\"A\"]\n");
        assert_err(
            &e,
            DROP_IN,
            Some(&key("required_keys[0].file")),
            "no config_files",
        );
        let e = err_with(
            "[[targets.portal.required_keys]]\nversion = \"two\"\nfile = \"/a.json\"\nkeys = [\"A\"]\n",
        );
        assert_err(
            &e,
            DROP_IN,
            Some(&key("required_keys[0].version")),
            "invalid version requirement",
        );
        let e = err_with(
            "[[targets.portal.required_keys]]\nversion = \"*\"\nfile = \"/a.json\"\nkeys = [\"A..B\"]\n",
        );
        assert_err(
            &e,
            DROP_IN,
            Some(&key("required_keys[0].keys[0]")),
            "dotted key path",
        );
        let e = err_with("[[targets.portal.required_keys]]\nversion = \"*\"\nfile = \"/a.json\"\n");
        assert_err(
            &e,
            MAIN,
            Some(&key("required_keys[0].keys")),
            "missing required key",
        );
    }

    #[test]
    fn requires_and_hook_tables() {
        let t = portal(&ok(MINIMAL, &[])).clone();
        assert!(t.requires.is_empty() && t.hooks.is_empty());
        let s = ok(
            MINIMAL,
            &[(
                "10-test.toml",
                r#"
[[targets.portal.requires]]
version = ">=2.0.0"
os = ["debian >= 11", "rhel >= 8"]
database = ["postgresql >= 12", "mysql >= 8.0", "mariadb >= 10.6"]
memory = "2GiB"
disk = "5GB"
[[targets.portal.requires]]
memory = "512MiB"
[[targets.portal.hook]]
at = "after-install"
command = ["/opt/portal/bin/migrate-config", "--from", "{from}", "--to", "{to}"]
[[targets.portal.hook]]
at = "before-stop"
command = ["/usr/local/bin/drain"]
timeout = "30s"
"#,
            )],
        );
        let t = portal(&s);
        assert_eq!(t.requires.len(), 2);
        let r = &t.requires[0];
        assert!(r.version.matches(&semver::Version::new(2, 1, 0)));
        assert_eq!(r.os.len(), 2);
        assert_eq!(r.os[1].to_string(), "rhel >= 8");
        assert_eq!(r.database[2].to_string(), "mariadb >= 10.6");
        assert_eq!(r.memory, Some(2 << 30));
        assert_eq!(r.disk, Some(5_000_000_000));
        assert_eq!(t.requires[1].version, semver::VersionReq::STAR);
        assert_eq!(t.hooks.len(), 2);
        assert_eq!(t.hooks[0].at, crate::hooks::At::AfterInstall);
        assert_eq!(t.hooks[0].command[2], "{from}");
        assert_eq!(t.hooks[0].timeout, crate::hooks::DEFAULT_TIMEOUT);
        assert_eq!(t.hooks[1].timeout, Duration::from_secs(30));

        let key = |k: &str| format!("targets.portal.{k}");
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[targets.portal.hook]]\nat = \"after-lunch\"\ncommand = [\"/bin/true\"]\n",
                "hook[0].at",
                "unknown hook point",
            ),
            (
                "[[targets.portal.hook]]\nat = \"after-start\"\ncommand = []\n",
                "hook[0].command",
                "must name a program",
            ),
            (
                "[[targets.portal.hook]]\nat = \"after-start\"\ncommand = [\"migrate\"]\n",
                "hook[0].command[0]",
                "absolute path",
            ),
            (
                "[[targets.portal.hook]]\nat = \"after-start\"\ncommand = [\"/bin/true\"]\ntimeout = \"soon\"\n",
                "hook[0].timeout",
                "invalid duration",
            ),
            (
                "[[targets.portal.hook]]\nat = \"after-start\"\ncommand = [\"/bin/true\"]\ntimeout = \"0s\"\n",
                "hook[0].timeout",
                "greater than zero",
            ),
            (
                "[[targets.portal.requires]]\nmemory = \"lots\"\n",
                "requires[0].memory",
                "invalid size",
            ),
            (
                "[[targets.portal.requires]]\ndisk = \"5 parsecs\"\n",
                "requires[0].disk",
                "invalid size",
            ),
            (
                "[[targets.portal.requires]]\nos = [\"debian >= 11\", \"rhel ~ 8\"]\n",
                "requires[0].os[1]",
                "unknown operator",
            ),
            (
                "[[targets.portal.requires]]\nos = [\"debian >= bookworm\"]\n",
                "requires[0].os[0]",
                "not dotted numbers",
            ),
            (
                "[[targets.portal.requires]]\ndatabase = [\"oracle >= 19\"]\n",
                "requires[0].database[0]",
                "unknown database",
            ),
            (
                "[[targets.portal.requires]]\nos = []\n",
                "requires[0].os",
                "at least one entry",
            ),
            (
                "[[targets.portal.requires]]\nversion = \">=2\"\n",
                "requires[0]",
                "requires nothing",
            ),
            (
                "[[targets.portal.requires]]\nversion = \"two\"\nmemory = \"1GiB\"\n",
                "requires[0].version",
                "invalid version requirement",
            ),
        ];
        for (text, k, message) in cases {
            let e = err_with(text);
            assert_err(&e, DROP_IN, Some(&key(k)), message);
        }
        let e = err_with("[[targets.portal.hook]]\ncommand = [\"/bin/true\"]\n");
        assert_err(&e, MAIN, Some(&key("hook[0].at")), "missing required key");
        let e = err_with("[[targets.portal.hook]]\nat = \"after-start\"\n");
        assert_err(
            &e,
            MAIN,
            Some(&key("hook[0].command")),
            "missing required key",
        );
        let e = err_with("[[targets.portal.requires]]\nram = \"1GiB\"\n");
        assert_eq!(
            e.key.as_deref(),
            Some("targets.portal.requires[0].ram"),
            "{e}"
        );
        assert!(e.message.contains("unknown field"), "{e}");
    }

    // --- errors, secrets, target selection ------------------------------

    #[test]
    fn error_display_is_one_line() {
        let e = ConfigError::new(
            "/etc/up\nkeep.toml",
            Some("a\nb".into()),
            "TOML parse error at line 1, column 5\n  |\n1 | a = \n  |     ^\nstring values must be quoted\n",
        );
        let line = e.to_string();
        assert_eq!(
            line,
            "/etc/up keep.toml: a b: TOML parse error at line 1, column 5 | 1 | a = | ^ string values must be quoted"
        );
        let e = ConfigError::new("/f.toml", None, "bell\u{7} here");
        assert_eq!(e.to_string(), "/f.toml: bell\\u{7} here");
        let e = ConfigError::new(
            "/f.toml",
            Some("keep_versions".into()),
            "must be at least 1",
        );
        assert_eq!(e.to_string(), "/f.toml: keep_versions: must be at least 1");
    }

    #[test]
    fn secrets_never_print() {
        let s = ok(
            MINIMAL,
            &[(
                "a.toml",
                "[targets.portal.database]\ntype = \"postgres\"\nurl = \"postgres://portal:s3cr3t-pw@db.example/portal\"\n[targets.portal.repository]\nurl = \"https://user:repo-pw@repo.example/debian\"\n",
            )],
        );
        let debug = format!("{s:?}");
        let pretty = format!("{s:#?}");
        for text in [&debug, &pretty] {
            assert!(!text.contains("s3cr3t-pw"), "{text}");
            assert!(!text.contains("repo-pw"), "{text}");
            assert!(text.contains("********"), "{text}");
        }
        let secret = Secret::new("s3cr3t-pw");
        assert_eq!(format!("{secret}"), "********");
        assert_eq!(format!("{secret:?}"), "********");
        assert_eq!(secret.expose(), "s3cr3t-pw");
        // The repository URL itself is kept intact for use.
        assert_eq!(portal(&s).repositories[0].url.password(), Some("repo-pw"));
        // An invalid database setting never echoes the value.
        let e = err_with(
            "[targets.portal.database]\ntype = \"none\"\nurl = \"postgres://u:s3cr3t-pw@h/d\"\n",
        );
        assert!(!e.to_string().contains("s3cr3t-pw"));
    }

    #[test]
    fn target_selection() {
        let one = ok(MINIMAL, &[]);
        assert_eq!(one.target(None).expect("only target").name, "portal");
        assert_eq!(
            one.target(Some("portal")).expect("portal").package,
            "portal"
        );
        let e = one.target(Some("shop")).expect_err("unknown");
        assert_err(
            &e,
            MAIN,
            None,
            "no target named \"shop\"; defined targets: portal",
        );

        let shop = MINIMAL.replace("portal", "shop");
        let two = ok(MINIMAL, &[("20-shop.toml", &shop)]);
        let e = two.target(None).expect_err("ambiguous");
        assert_eq!(
            e.to_string(),
            format!(
                "{MAIN}: several targets are defined (portal, shop); pass the name of one of them"
            )
        );
        assert_eq!(two.target(Some("shop")).expect("shop").name, "shop");
        let e = two.target(Some("nope")).expect_err("unknown");
        assert!(e.message.contains("defined targets: portal, shop"), "{e}");
    }

    #[test]
    fn from_sources_needs_a_source() {
        let e = Settings::from_sources(&[]).expect_err("empty");
        assert!(e.message.contains("no configuration sources"));
    }

    // --- load() -----------------------------------------------------------

    fn write(path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("mkdir");
        }
        fs::write(path, text).expect("write");
    }

    #[test]
    fn load_with_drop_ins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("upkeep.toml");
        let conf_d = dir.path().join("conf.d");
        write(&main, MINIMAL);
        write(&conf_d.join("20-b.toml"), "keep_versions = 20\n");
        write(
            &conf_d.join("10-a.toml"),
            "keep_versions = 10\nstate_dir = \"/srv/a\"\n",
        );
        write(&conf_d.join("30-c.toml.disabled"), "keep_versions = 30\n");
        write(&conf_d.join("README"), "not toml at all [[[\n");
        write(&conf_d.join("99-z.toml~"), "garbage [[[\n");
        fs::create_dir_all(conf_d.join("40-dir.toml")).expect("mkdir");
        write(
            &conf_d.join("sub").join("50-x.toml"),
            "keep_versions = 50\n",
        );

        let s = Settings::load(&main).expect("load");
        assert_eq!(s.keep_versions, 20);
        assert_eq!(s.state_dir, PathBuf::from("/srv/a"));
        assert_eq!(
            s.sources,
            vec![
                main.clone(),
                conf_d.join("10-a.toml"),
                conf_d.join("20-b.toml")
            ]
        );
    }

    #[test]
    fn load_lexical_order_is_by_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("upkeep.toml");
        let conf_d = dir.path().join("conf.d");
        write(&main, MINIMAL);
        // "9" < "B" < "a" in byte order; "a" is applied last.
        write(&conf_d.join("a.toml"), "keep_versions = 3\n");
        write(&conf_d.join("B.toml"), "keep_versions = 2\n");
        write(&conf_d.join("9.toml"), "keep_versions = 9\n");
        write(&conf_d.join("10.toml"), "keep_versions = 10\n");
        let s = Settings::load(&main).expect("load");
        assert_eq!(s.keep_versions, 3);
        let names: Vec<_> = s.sources[1..]
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["10.toml", "9.toml", "B.toml", "a.toml"]);
    }

    #[test]
    fn load_without_conf_d() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("upkeep.toml");
        write(&main, MINIMAL);
        let s = Settings::load(&main).expect("load");
        assert_eq!(s.sources, vec![main]);
    }

    #[test]
    fn load_missing_main_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("upkeep.toml");
        // Drop-ins alone do not make a configuration.
        write(&dir.path().join("conf.d").join("a.toml"), MINIMAL);
        let e = Settings::load(&main).expect_err("missing");
        assert_eq!(e.file, main);
        assert_eq!(e.key, None);
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[test]
    fn load_reports_drop_in_errors_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("upkeep.toml");
        let bad = dir.path().join("conf.d").join("50-bad.toml");
        write(&main, MINIMAL);
        write(&bad, "[targets.portal.health]\ntimeout = \"forever\"\n");
        let e = Settings::load(&main).expect_err("bad");
        assert_eq!(e.file, bad);
        assert_eq!(e.key.as_deref(), Some("targets.portal.health.timeout"));
        let line = e.to_string();
        assert!(
            line.starts_with(&format!(
                "{}: targets.portal.health.timeout: invalid duration",
                bad.display()
            )),
            "{line}"
        );
    }

    #[test]
    fn load_unreadable_main_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Settings::load(dir.path()).expect_err("directory");
        assert_eq!(e.file, dir.path());
        assert!(e.message.contains("cannot read"), "{e}");
    }

    const WEB: &str = r#"
[targets.web]
packages = ["nginx", "nginx-common"]
services = ["nginx.service"]

[[targets.web.repository]]
type = "apt"
url = "http://mirror.example/debian-security"
suite = "bookworm-security"
component = "main"
keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

[[targets.web.repository]]
type = "apt"
url = "http://mirror.example/debian"
suite = "bookworm"
component = "main"
keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
"#;

    #[test]
    fn a_product_of_several_packages_from_several_repositories() {
        let s = ok(WEB, &[]);
        let t = &s.targets["web"];
        assert_eq!(t.package, "nginx");
        assert_eq!(t.packages, ["nginx", "nginx-common"]);
        assert_eq!(t.family, crate::version::Family::Deb);
        assert_eq!(t.repositories.len(), 2);
        assert_eq!(
            t.repositories[1].url.as_str(),
            "http://mirror.example/debian/"
        );
        assert!(!t.system_repositories);
        // The one-package shorthand gives a list of one.
        assert_eq!(portal(&ok(MINIMAL, &[])).packages, ["portal"]);
    }

    #[test]
    fn errors_inside_an_array_of_repositories_name_the_entry() {
        let e = err(&WEB.replace("suite = \"bookworm\"\n", ""), &[]);
        assert_err(
            &e,
            MAIN,
            Some("targets.web.repository[1].suite"),
            "missing required key",
        );
        let e = err(
            &WEB.replace(
                "type = \"apt\"\nurl = \"http://mirror.example/debian\"",
                "type = \"zypper\"\nurl = \"http://mirror.example/debian\"",
            ),
            &[],
        );
        assert_eq!(
            e.key.as_deref(),
            Some("targets.web.repository[1].type"),
            "{e}"
        );
    }

    #[test]
    fn packages_must_be_a_list_of_distinct_names_and_not_beside_package() {
        let e = err(
            &WEB.replace(
                "packages = [\"nginx\", \"nginx-common\"]",
                "packages = [\"nginx\", \"nginx\"]",
            ),
            &[],
        );
        assert_err(&e, MAIN, Some("targets.web.packages[1]"), "listed twice");
        let e = err(
            &WEB.replace("packages = [\"nginx\", \"nginx-common\"]", "packages = []"),
            &[],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.web.packages"),
            "at least one package",
        );
        let e = err(
            &WEB.replace("packages = [", "package = \"nginx\"\npackages = ["),
            &[],
        );
        assert_err(&e, MAIN, Some("targets.web.packages"), "not both");
    }

    #[test]
    fn repositories_of_two_families_are_refused() {
        let mixed = WEB.replacen(
            "type = \"apt\"\nurl = \"http://mirror.example/debian\"\nsuite = \"bookworm\"\ncomponent = \"main\"",
            "type = \"yum\"\nurl = \"http://mirror.example/el9\"",
            1,
        );
        let e = err(&mixed, &[]);
        assert_err(
            &e,
            MAIN,
            Some("targets.web.repository[1].type"),
            "one package family",
        );
    }

    #[test]
    fn system_repositories_take_no_coordinates() {
        let system = "[targets.web]\npackage = \"nginx\"\nservices = [\"nginx.service\"]\n[targets.web.repository]\ntype = \"system\"\nfamily = \"rpm\"\n";
        let t = ok(system, &[]).targets["web"].clone();
        assert!(t.system_repositories && t.repositories.is_empty());
        assert_eq!(t.family, crate::version::Family::Rpm);
        let e = err(
            &system.replace("family = \"rpm\"", "url = \"http://x.example/\""),
            &[],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.web.repository.url"),
            "not used by type",
        );
        let e = err(
            &MINIMAL.replace("keyring =", "family = \"deb\"\nkeyring ="),
            &[],
        );
        assert_err(
            &e,
            MAIN,
            Some("targets.portal.repository.family"),
            "only used by type",
        );
    }
}
