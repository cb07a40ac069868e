//! Release metadata (`release.json`) and the JSON configuration (`portal.conf`).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_PORT: u16 = 3001;
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/portal/portal.db";

/// Top-level keys this portal knows about; anything else is logged as ignored.
const KNOWN_KEYS: &[&str] = &[
    "HostPort",
    "LicenseKey",
    "Database",
    "MigrationDelayMs",
    "Theming",
    "Storage",
    "S3",
    "Session",
    "PortalAPISecret",
    "CORS",
];

/// `release.json`, shipped by every package version.
#[derive(Debug, Deserialize)]
pub struct Release {
    pub version: String,
    #[serde(default)]
    pub required_keys: Vec<String>,
}

impl Release {
    pub fn load(path: &Path) -> Result<Release, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read release file {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("invalid release file {}: {e}", path.display()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite3,
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Dialect {
    /// Every dialect, in the order they are documented.
    pub const ALL: [Dialect; 3] = [Dialect::Sqlite3, Dialect::Postgres, Dialect::Mysql];

    /// The `Database.Dialect` value, also used in dialect-specific migration
    /// file names (`0001_init.mysql.sql`).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite3 => "sqlite3",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    pub dialect: Dialect,
    pub connection_string: String,
}

/// The settings the portal acts on; every other key is ignored.
#[derive(Debug)]
pub struct Config {
    pub host_port: u16,
    pub database: DbConfig,
    pub migration_delay_ms: u64,
    /// `Session.IdleTimeout` as written (null when absent), echoed by
    /// `/ready` so that tests see which configuration the process runs.
    pub session_idle_timeout: Value,
    /// Top-level keys present in the file that this portal does not know.
    pub ignored_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    host_port: Option<u16>,
    // Read only to type-check it; never logged.
    #[allow(dead_code)]
    license_key: Option<String>,
    database: Option<RawDatabase>,
    migration_delay_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDatabase {
    dialect: Option<String>,
    connection_string: Option<String>,
}

/// Failure to load the configuration; every variant means exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Unreadable file, invalid JSON or a value of the wrong type.
    Invalid(String),
    /// Keys from `required_keys` that are absent or empty.
    Missing(Vec<String>),
}

impl Config {
    pub fn load(path: &Path, required_keys: &[String]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot read configuration file {}: {e}",
                path.display()
            ))
        })?;
        Config::parse(&text, required_keys)
    }

    pub fn parse(text: &str, required_keys: &[String]) -> Result<Config, ConfigError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::Invalid(format!("invalid JSON in configuration: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(ConfigError::Invalid(
                "invalid configuration: the top level must be a JSON object".into(),
            ));
        };
        let missing = missing_required_keys(&value, required_keys);
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        let raw: RawConfig = serde_json::from_value(value.clone())
            .map_err(|e| ConfigError::Invalid(format!("invalid configuration: {e}")))?;

        let (dialect, connection_string) = match raw.database {
            None => (None, None),
            Some(db) => (db.dialect, db.connection_string),
        };
        let dialect = match dialect.as_deref().map(str::trim) {
            None | Some("") | Some("sqlite3") => Dialect::Sqlite3,
            Some("postgres") => Dialect::Postgres,
            Some("mysql") => Dialect::Mysql,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "invalid configuration: unsupported Database.Dialect {other:?} (expected \"sqlite3\", \"postgres\" or \"mysql\")"
                )));
            }
        };
        let connection_string = match (dialect, connection_string) {
            (_, Some(s)) if !s.trim().is_empty() => s,
            (Dialect::Sqlite3, _) => DEFAULT_SQLITE_PATH.to_string(),
            (dialect @ (Dialect::Postgres | Dialect::Mysql), _) => {
                return Err(ConfigError::Invalid(format!(
                    "invalid configuration: Database.ConnectionString is required for the {} dialect",
                    dialect.name()
                )));
            }
        };
        let port = raw.host_port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(ConfigError::Invalid(
                "invalid configuration: HostPort must be between 1 and 65535".into(),
            ));
        }
        let ignored_keys = object
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(Config {
            host_port: port,
            database: DbConfig {
                dialect,
                connection_string,
            },
            migration_delay_ms: raw.migration_delay_ms.unwrap_or(0),
            session_idle_timeout: value
                .pointer("/Session/IdleTimeout")
                .cloned()
                .unwrap_or(Value::Null),
            ignored_keys,
        })
    }
}

/// The keys of `required` (dotted paths into `config`) that are absent, null or
/// empty (empty or blank string, empty array, empty object), in `required` order.
pub fn missing_required_keys(config: &Value, required: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|key| {
            let mut node = Some(config);
            for part in key.split('.') {
                node = node.and_then(|n| n.as_object()).and_then(|o| o.get(part));
            }
            match node {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Bool(_) | Value::Number(_)) => false,
            }
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn required_keys_present() {
        let cfg = json!({
            "LicenseKey": "abc",
            "Database": {"Dialect": "postgres", "ConnectionString": "host=/tmp"},
            "HostPort": 3001,
        });
        let req = keys(&[
            "LicenseKey",
            "Database.Dialect",
            "Database.ConnectionString",
            "HostPort",
        ]);
        assert!(missing_required_keys(&cfg, &req).is_empty());
    }

    #[test]
    fn required_keys_missing_or_empty() {
        let cfg = json!({
            "LicenseKey": "",
            "Database": {"Dialect": "sqlite3", "ConnectionString": null},
            "Session": {},
            "CORS": {"AllowedOrigins": []},
            "Storage": "  ",
        });
        let req = keys(&[
            "LicenseKey",
            "Database.Dialect",
            "Database.ConnectionString",
            "Database.Nope",
            "Session",
            "CORS.AllowedOrigins",
            "Storage",
            "Absent.Deeper.Key",
            "Database.Dialect.Sub",
        ]);
        assert_eq!(
            missing_required_keys(&cfg, &req),
            keys(&[
                "LicenseKey",
                "Database.ConnectionString",
                "Database.Nope",
                "Session",
                "CORS.AllowedOrigins",
                "Storage",
                "Absent.Deeper.Key",
                "Database.Dialect.Sub",
            ])
        );
    }

    #[test]
    fn parse_defaults_and_ignored_keys() {
        let cfg = Config::parse(
            r#"{"LicenseKey": "k", "Theming": {"Theme": "x"}, "OldKey": 1}"#,
            &keys(&["LicenseKey"]),
        )
        .unwrap();
        assert_eq!(cfg.host_port, DEFAULT_PORT);
        assert_eq!(cfg.database.dialect, Dialect::Sqlite3);
        assert_eq!(cfg.database.connection_string, DEFAULT_SQLITE_PATH);
        assert_eq!(cfg.migration_delay_ms, 0);
        assert_eq!(cfg.session_idle_timeout, Value::Null);
        assert_eq!(cfg.ignored_keys, keys(&["OldKey"]));
    }

    #[test]
    fn session_idle_timeout_is_taken_as_written() {
        let cfg = Config::parse(r#"{"Session": {"Key": "", "IdleTimeout": 1800}}"#, &[]).unwrap();
        assert_eq!(cfg.session_idle_timeout, json!(1800));
        let cfg = Config::parse(r#"{"Session": {"IdleTimeout": "30m"}}"#, &[]).unwrap();
        assert_eq!(cfg.session_idle_timeout, json!("30m"));
    }

    #[test]
    fn parse_mysql() {
        let cfg = Config::parse(
            r#"{"Database": {"Dialect": "mysql", "ConnectionString": "portal:pw@tcp(127.0.0.1:3306)/portal?parseTime=true"}}"#,
            &keys(&["Database.Dialect", "Database.ConnectionString"]),
        )
        .unwrap();
        assert_eq!(cfg.database.dialect, Dialect::Mysql);
        assert_eq!(cfg.database.dialect.name(), "mysql");
        assert_eq!(
            cfg.database.connection_string,
            "portal:pw@tcp(127.0.0.1:3306)/portal?parseTime=true"
        );
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            Config::parse("{not json", &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse("[]", &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(r#"{"HostPort": "x"}"#, &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(r#"{"Database": {"Dialect": "oracle"}}"#, &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(r#"{"Database": {"Dialect": "mysql"}}"#, &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse(r#"{"Database": {"Dialect": "postgres"}}"#, &[]),
            Err(ConfigError::Invalid(_))
        ));
        assert_eq!(
            Config::parse(r#"{"LicenseKey": ""}"#, &keys(&["LicenseKey"])).unwrap_err(),
            ConfigError::Missing(keys(&["LicenseKey"]))
        );
    }
}
