//! Forward-only SQL migrations: `migrations/NNNN_name.sql`, applied in name
//! order. A file `NNNN_name.DIALECT.sql` (e.g. `0003_pages_slug.mysql.sql`)
//! replaces `NNNN_name.sql` for that dialect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Dialect;
use crate::db::Db;

#[derive(Debug)]
pub struct Migration {
    /// The file applied (`0003_pages_slug.sql` or `0003_pages_slug.mysql.sql`).
    pub name: String,
    pub sql: String,
}

/// Splits `NNNN_name.DIALECT.sql` into (`NNNN_name`, Some(dialect)) and
/// `NNNN_name.sql` into (`NNNN_name`, None). Not a migration file: None.
fn classify(name: &str) -> Option<(&str, Option<Dialect>)> {
    if name.starts_with('.') {
        return None;
    }
    let stem = name.strip_suffix(".sql").filter(|s| !s.is_empty())?;
    for dialect in Dialect::ALL {
        if let Some(base) = stem
            .strip_suffix(dialect.name())
            .and_then(|s| s.strip_suffix('.'))
            .filter(|s| !s.is_empty())
        {
            return Some((base, Some(dialect)));
        }
    }
    Some((stem, None))
}

/// The migration files among `names` that `dialect` applies, in order: every
/// `*.sql` that is not a hidden file, sorted bytewise by its generic name
/// (`NNNN_name.sql`), the dialect's own variant preferred. Every migration
/// must exist for every dialect (the schema version counts files), so a
/// migration with only other dialects' variants is an error.
pub fn select_migrations<I>(names: I, dialect: Dialect) -> Result<Vec<String>, String>
where
    I: IntoIterator<Item = String>,
{
    // generic name → (generic file, this dialect's file)
    let mut by_base: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for name in names {
        let Some((base, variant)) = classify(&name) else {
            continue;
        };
        let slot = by_base.entry(format!("{base}.sql")).or_default();
        match variant {
            None => slot.0 = Some(name),
            Some(d) if d == dialect => slot.1 = Some(name),
            Some(_) => {}
        }
    }
    by_base
        .into_iter()
        .map(|(generic, (plain, own))| {
            own.or(plain).ok_or_else(|| {
                format!(
                    "migration {generic} has no file for the {} dialect (expected {generic} or {}.{}.sql)",
                    dialect.name(),
                    generic.trim_end_matches(".sql"),
                    dialect.name()
                )
            })
        })
        .collect()
}

/// The `migrations/` directory next to the release file.
pub fn dir_for_release(release: &Path) -> PathBuf {
    release
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("migrations")
}

pub fn load(dir: &Path, dialect: Dialect) -> Result<Vec<Migration>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read migrations directory {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if entry.path().is_file()
            && let Ok(name) = entry.file_name().into_string()
        {
            names.push(name);
        }
    }
    select_migrations(names, dialect)
        .map_err(|e| format!("invalid migrations directory {}: {e}", dir.display()))?
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            std::fs::read_to_string(&path)
                .map(|sql| Migration { name, sql })
                .map_err(|e| format!("cannot read migration {}: {e}", path.display()))
        })
        .collect()
}

/// Why the database could not be brought to this release's schema.
#[derive(Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// The schema version could not be read (or `portal_schema` created).
    Version(String),
    /// The database is at a newer schema than this release knows: exit 3.
    TooNew { current: i64, known: i64 },
    /// A migration file failed; the schema stays at the previous file's version.
    Failed { name: String, error: String },
}

/// Reads the schema version (creating `portal_schema` at 0 on first start)
/// and refuses a schema newer than the `known` migrations.
pub fn check(db: &mut Db, known: usize) -> Result<i64, MigrateError> {
    let current = db.schema_version().map_err(MigrateError::Version)?;
    let known = known as i64;
    if current > known {
        return Err(MigrateError::TooNew { current, known });
    }
    Ok(current)
}

/// Applies the migrations after schema `current`, each with its version
/// bump; `before` is told about each one first. Returns how many were applied.
pub fn apply_pending(
    db: &mut Db,
    migrations: &[Migration],
    current: i64,
    mut before: impl FnMut(&Migration, i64),
) -> Result<usize, MigrateError> {
    let mut applied = 0;
    for (index, migration) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let version = index as i64 + 1;
        before(migration, version);
        db.apply(&migration.sql, version)
            .map_err(|error| MigrateError::Failed {
                name: migration.name.clone(),
                error,
            })?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(names: &[&str], dialect: Dialect) -> Result<Vec<String>, String> {
        select_migrations(names.iter().map(|s| s.to_string()), dialect)
    }

    #[test]
    fn ordering() {
        let names = [
            "0010_ten.sql",
            "0002_users.sql",
            "README",
            "0001_init.sql",
            ".0003_hidden.sql",
            "0003_x.sql.orig",
            "0003_pages_slug.sql",
            ".sql",
        ];
        for dialect in Dialect::ALL {
            assert_eq!(
                select(&names, dialect).unwrap(),
                [
                    "0001_init.sql",
                    "0002_users.sql",
                    "0003_pages_slug.sql",
                    "0010_ten.sql"
                ]
            );
        }
    }

    #[test]
    fn dialect_variants_win() {
        let names = [
            "0001_init.sql",
            "0001_init.mysql.sql",
            "0002_users.postgres.sql",
            "0002_users.sql",
            "0002_users.sqlite3.sql",
            "0003_x.oracle.sql",
            ".0004_y.mysql.sql",
            "mysql.sql",
            ".mysql.sql",
        ];
        assert_eq!(
            select(&names, Dialect::Mysql).unwrap(),
            [
                "0001_init.mysql.sql",
                "0002_users.sql",
                "0003_x.oracle.sql",
                "mysql.sql"
            ]
        );
        assert_eq!(
            select(&names, Dialect::Postgres).unwrap(),
            [
                "0001_init.sql",
                "0002_users.postgres.sql",
                "0003_x.oracle.sql",
                "mysql.sql"
            ]
        );
        assert_eq!(
            select(&names, Dialect::Sqlite3).unwrap(),
            [
                "0001_init.sql",
                "0002_users.sqlite3.sql",
                "0003_x.oracle.sql",
                "mysql.sql"
            ]
        );
        // Sorted by the generic name, as before variants existed.
        assert_eq!(
            select(&["0001_a.sql", "0001_a-b.mysql.sql"], Dialect::Mysql).unwrap(),
            ["0001_a-b.mysql.sql", "0001_a.sql"]
        );
    }

    #[test]
    fn a_migration_missing_for_a_dialect_is_an_error() {
        let names = ["0001_init.sql", "0002_only_pg.postgres.sql"];
        assert_eq!(select(&names, Dialect::Postgres).unwrap().len(), 2);
        let e = select(&names, Dialect::Mysql).unwrap_err();
        assert!(e.contains("0002_only_pg.sql"), "{e}");
        assert!(e.contains("0002_only_pg.mysql.sql"), "{e}");
    }

    #[test]
    fn dir_next_to_release() {
        assert_eq!(
            dir_for_release(Path::new("/opt/portal/release.json")),
            Path::new("/opt/portal/migrations")
        );
        assert_eq!(
            dir_for_release(Path::new("release.json")),
            Path::new("migrations")
        );
    }

    #[test]
    fn shipped_releases_are_ordered_and_readable() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("releases");
        for dialect in Dialect::ALL {
            let mut counts = Vec::new();
            for version in ["1.0.0", "1.1.0", "2.0.0", "2.0.1", "2.1.0"] {
                let migrations = load(&root.join(version).join("migrations"), dialect).unwrap();
                assert!(migrations[0].name.starts_with("0001_"));
                counts.push(migrations.len());
            }
            assert_eq!(counts, [2, 3, 4, 5, 5], "{}", dialect.name());
        }
    }
}
