//! Forward-only SQL migrations: `migrations/NNNN_name.sql`, applied in name order.

use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Migration {
    pub name: String,
    pub sql: String,
}

/// The migration file names among `names`, in the order they are applied:
/// every `*.sql` that is not a hidden file, sorted bytewise by name.
pub fn order_migrations<I>(names: I) -> Vec<String>
where
    I: IntoIterator<Item = String>,
{
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.ends_with(".sql") && n.len() > 4 && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// The `migrations/` directory next to the release file.
pub fn dir_for_release(release: &Path) -> PathBuf {
    release
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("migrations")
}

pub fn load(dir: &Path) -> Result<Vec<Migration>, String> {
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
    order_migrations(names)
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            std::fs::read_to_string(&path)
                .map(|sql| Migration { name, sql })
                .map_err(|e| format!("cannot read migration {}: {e}", path.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ]
        .map(String::from);
        assert_eq!(
            order_migrations(names),
            [
                "0001_init.sql",
                "0002_users.sql",
                "0003_pages_slug.sql",
                "0010_ten.sql"
            ]
        );
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
        let mut counts = Vec::new();
        for version in ["1.0.0", "1.1.0", "2.0.0", "2.0.1", "2.1.0"] {
            let migrations = load(&root.join(version).join("migrations")).unwrap();
            assert!(migrations[0].name.starts_with("0001_"));
            counts.push(migrations.len());
        }
        assert_eq!(counts, [2, 3, 4, 5, 5]);
    }
}
