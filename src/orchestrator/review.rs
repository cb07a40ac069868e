//! The review `plan` shows and `upgrade` obeys, done before anything on the
//! host changes: the config changes of every hop (merged the way the run
//! will merge them), the release notes between the versions, and the
//! preflight checks, sysupgrade style — errors block (exit 3), warnings do
//! not.
//!
//! The verdicts are pure functions ([`judge_space`], [`config_checks`],
//! [`required_checks`]...); [`review`] gathers what they need from the
//! packages, the file system, the database and the package manager.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;
use serde_json::{Value, json};

use super::configs::{self, Contents, FileReview};
use crate::backup::db::Db;
use crate::config::Target;
use crate::confmerge::Masker;
use crate::error::Error;
use crate::package::{self, ChangelogEntry};
use crate::pkg::{Installed, PackageManager};
use crate::version::PkgVersion;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth knowing; does not block.
    Warning,
    /// Blocks the upgrade (exit 3).
    Error,
}

/// One preflight check and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name: `disk-space`, `database`, `package-database`,
    /// `rollback-package`, `pending-config`, `config-merge`,
    /// `required-keys`, `schema`, `requires`, `theme-merge`.
    pub name: &'static str,
    /// The verdict.
    pub status: Status,
    /// One line, secrets masked, saying what was found and what to do.
    pub message: String,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            name,
            status,
            message: message.into(),
        }
    }
}

/// One hop of the path: the version, its package and its config changes.
#[derive(Clone, Debug)]
pub struct Hop {
    /// The package version installed by this hop.
    pub version: String,
    /// Its verified package file in the cache.
    pub package: PathBuf,
    /// The config files as this hop changes them (after the hops before).
    pub configs: Vec<FileReview>,
    /// The theme merge of this hop (`[targets.X.theme]`), after the hops
    /// before.
    pub theme: Option<crate::theme::ThemeMerge>,
}

/// Everything `plan` knows before touching the host.
#[derive(Clone, Debug)]
pub struct Review {
    /// The hops, in order; the last one is the target version.
    pub hops: Vec<Hop>,
    /// Release notes after the installed version up to the target, newest
    /// first.
    pub notes: Vec<ChangelogEntry>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Per config file that changes: the unified diff (masked) from the
    /// live file now to the file after the last hop.
    pub diffs: Vec<(PathBuf, String)>,
    /// Every `[[targets.X.requires]]` rule key checked, with what was found
    /// and wanted (each is also a `requires` check).
    pub requirements: Vec<crate::requires::Outcome>,
}

impl Review {
    /// The checks that block.
    pub fn errors(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Error)
            .collect()
    }

    /// `Err(Error::Preflight)` (exit 3) naming the first error when any
    /// check failed.
    pub fn gate(&self, target: &str) -> Result<(), Error> {
        let errors = self.errors();
        let Some(first) = errors.first() else {
            return Ok(());
        };
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more error(s))", n - 1),
        };
        Err(Error::Preflight(anyhow!(
            "preflight: {}: {}{more}; nothing was changed (`upkeep plan {target}` lists every check)",
            first.name,
            first.message
        )))
    }

    /// The theme merge of every hop for `--json`: `null` without a
    /// `[targets.X.theme]`, else the custom theme's path, the policy,
    /// whether it blocks, and each hop's files (path, action, hunks).
    pub fn theme_json(&self) -> Value {
        let merges: Vec<(&str, &crate::theme::ThemeMerge)> = self
            .hops
            .iter()
            .filter_map(|h| h.theme.as_ref().map(|t| (h.version.as_str(), t)))
            .collect();
        let Some((_, first)) = merges.first() else {
            return Value::Null;
        };
        json!({
            "path": first.path,
            "policy": first.policy,
            "blocked": merges.iter().any(|(_, m)| m.blocks()),
            "hops": merges.iter().map(|(v, m)| {
                let mut j = m.to_json();
                j["version"] = json!(v);
                j
            }).collect::<Vec<_>>(),
        })
    }

    /// For `--json`: hops with their config changes, notes, checks — all
    /// masked.
    pub fn to_json(&self, mask: &Masker) -> Value {
        json!({
            "hops": self.hops.iter().map(|h| json!({
                "version": h.version,
                "package": h.package,
                "config": h.configs.iter().map(|c| c.to_json(mask)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "release_notes": self.notes.iter().map(|n| json!({
                "version": n.version,
                "date": n.date,
                "urgency": n.urgency,
                "breaking": n.breaking,
                "text": mask.mask_text(&n.text, &[]),
            })).collect::<Vec<_>>(),
            "breaking": self.notes.iter().any(|n| n.breaking),
            "config_diff": self.diffs.iter().map(|(p, d)| json!({"path": p, "diff": d})).collect::<Vec<_>>(),
            "theme": self.theme_json(),
            "checks": self.checks,
            "requirements": self.requirements,
            "blocked": !self.errors().is_empty(),
        })
    }
}

/// What [`review`] works from.
pub struct Inputs<'a> {
    /// The target.
    pub target: &'a Target,
    /// What is installed now.
    pub installed: Option<&'a Installed>,
    /// The installed version's package file (the merge's first `base`).
    pub previous: Option<PathBuf>,
    /// Each hop's version and verified package file, in order.
    pub hops: Vec<(String, PathBuf)>,
    /// The product's database, if any.
    pub db: Option<&'a Db>,
    /// Checks done by the caller before the review (disk space for the
    /// downloads, the rollback package...).
    pub early: Vec<Check>,
    /// Where backups go (upkeep's state directory).
    pub state_dir: &'a Path,
    /// The size of the newest database backup, as an estimate of the next.
    pub last_dump_size: Option<u64>,
}

/// Reviews a path of hops: config merges, release notes and the checks.
pub async fn review<P: PackageManager>(inputs: Inputs<'_>, pkg: &P) -> anyhow::Result<Review> {
    let Inputs {
        target,
        installed,
        previous,
        hops,
        db,
        early,
        state_dir,
        last_dump_size,
    } = inputs;
    let mask = Masker::portal_default();
    let mut checks = early;

    // The package database.
    checks.push(match pkg.audit(&target.package).await {
        Ok(problems) if problems.is_empty() => Check::new(
            "package-database",
            Status::Ok,
            "no half-installed or half-configured package",
        ),
        Ok(problems) => Check::new("package-database", Status::Error, problems.join("; ")),
        Err(e) => Check::new(
            "package-database",
            Status::Error,
            crate::error::one_line(&e),
        ),
    });

    // The database and its backup tools.
    checks.push(match db {
        None => Check::new("database", Status::Ok, "no database to back up"),
        Some(db) => match db.preflight().await {
            Ok(()) => Check::new(
                "database",
                Status::Ok,
                format!("{} reachable, backup tools present", db.describe()),
            ),
            Err(e) => Check::new(
                "database",
                Status::Error,
                mask.mask_text(
                    &format!("{}: {}", db.describe(), crate::error::one_line(&e)),
                    &[],
                ),
            ),
        },
    });

    // Room for this run's backups, and for the install.
    let backup_need = backup_estimate(target, db, last_dump_size);
    checks.push(judge_space(
        "backups",
        state_dir,
        free_space(state_dir),
        backup_need,
    ));
    let install_dir = target
        .config_files
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new("/"));

    // Leftovers of an earlier install.
    checks.push(pending_check(&super::pending_config_files(
        &target.config_files,
    )));

    // Config files, hop by hop.
    let mut reviewed = Vec::new();
    let mut base_pkg = previous;
    let mut files: Vec<PathBuf> = target.config_files.clone();
    let mut notes = Vec::new();
    let mut installed_size = 0u64;
    for (version, path) in &hops {
        let info = package::read(path)?;
        // Unknown (a .deb without Installed-Size): about three times the
        // compressed package.
        let size = info
            .installed_size
            .unwrap_or_else(|| std::fs::metadata(path).map_or(0, |m| m.len().saturating_mul(3)));
        installed_size = installed_size.max(size);
        for f in configs::files_of(target, &info.conffiles) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        notes = info.changelog;
        reviewed.push((
            version.clone(),
            path.clone(),
            base_pkg.replace(path.clone()),
        ));
    }
    checks.push(judge_space(
        "install",
        install_dir,
        free_space(install_dir),
        installed_size,
    ));
    let live = configs::live(&files)?;
    let mut ours = live.clone();
    let mut theme_ours = match &target.theme {
        Some(th) => crate::theme::live(&th.path)?,
        None => None,
    };
    let mut out_hops = Vec::new();
    let mut required = Vec::new();
    for (version, path, base_path) in reviewed {
        let base = match &base_path {
            Some(b) => configs::packaged(b, &files)?,
            None => Contents::new(),
        };
        let theirs = configs::packaged(&path, &files)?;
        let reviews = configs::review(target.config_merge, &base, &ours, &theirs, &mask);
        ours = configs::after(&ours, &reviews);
        required.extend(required_checks(target, &version, &ours));
        let theme = match &target.theme {
            None => None,
            Some(th) => {
                let base = match &base_path {
                    Some(b) => crate::theme::packaged(b, &th.default)?,
                    None => crate::theme::Files::new(),
                };
                let theirs = crate::theme::packaged(&path, &th.default)?;
                let m = crate::theme::review(th, &base, theme_ours.as_ref(), &theirs);
                theme_ours = theme_ours.map(|o| m.after(&o));
                Some(m)
            }
        };
        out_hops.push(Hop {
            version,
            package: path,
            configs: reviews,
            theme,
        });
    }
    checks.extend(config_checks(target, &out_hops, &mask));
    checks.extend(theme_checks(&out_hops));
    checks.extend(required);
    // What the hops' versions need of the host: the OS, the database
    // server's own version, memory, disk.
    let versions: Vec<String> = out_hops.iter().map(|h| h.version.clone()).collect();
    let requirements = crate::requires::check(target, &versions, Path::new("/"), db).await;
    checks.extend(requirements.iter().map(requires_check));

    let family = super::plan::family(target);
    let to = out_hops
        .last()
        .map(|h| h.version.clone())
        .unwrap_or_default();
    let notes = match installed {
        Some(i) => package::notes_between(&notes, family, &i.version, &to),
        None => notes.into_iter().take(1).collect(),
    };
    let diffs = files
        .iter()
        .filter_map(|f| {
            let text = |c: &Contents| {
                c.get(f)
                    .cloned()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let label = f.display().to_string();
            let d = crate::confmerge::unified_diff(
                &text(&live),
                &text(&ours),
                &format!("{label} (live)"),
                &format!("{label} (after the upgrade)"),
                &mask,
            );
            (!d.is_empty()).then(|| (f.clone(), d))
        })
        .collect();
    Ok(Review {
        hops: out_hops,
        notes,
        checks,
        diffs,
        requirements,
    })
}

/// The `requires` check of one rule key: an error when it does not hold.
pub fn requires_check(o: &crate::requires::Outcome) -> Check {
    Check::new(
        "requires",
        if o.ok { Status::Ok } else { Status::Error },
        o.message(),
    )
}

/// The `config-merge` checks: one error per conflict (where, the three
/// values masked, how to resolve), or one line saying what will happen.
pub fn config_checks(target: &Target, hops: &[Hop], mask: &Masker) -> Vec<Check> {
    let mut out = Vec::new();
    for h in hops {
        for r in &h.configs {
            for line in r.conflicts(mask) {
                out.push(Check::new(
                    "config-merge",
                    Status::Error,
                    format!("{} (upgrading to {})", line, h.version),
                ));
            }
        }
    }
    if out.is_empty() {
        let changed: Vec<String> = hops
            .iter()
            .flat_map(|h| &h.configs)
            .filter(|r| r.action != configs::Action::Unchanged)
            .map(|r| format!("{}: {}", r.path.display(), r.action.name()))
            .collect();
        let keeps = hops
            .iter()
            .flat_map(|h| &h.configs)
            .any(|r| r.action == configs::Action::Keep);
        out.push(Check::new(
            "config-merge",
            if keeps {
                Status::Warning
            } else {
                Status::Ok
            },
            if changed.is_empty() {
                "no config file changes".to_string()
            } else {
                format!(
                    "config_merge = \"{}\": {}{}",
                    target.config_merge,
                    changed.join(", "),
                    if keeps {
                        "; the new defaults stay beside the kept files (.dpkg-dist/.rpmnew): review them"
                    } else {
                        ""
                    }
                )
            },
        ));
    }
    out
}

/// The `theme-merge` checks: under `merge`, one error per conflicting file
/// (the file, the hunks, how to resolve); under `report`, the same as
/// warnings; else one line per hop saying what happens to which file.
pub fn theme_checks(hops: &[Hop]) -> Vec<Check> {
    use crate::theme::{Action, Policy};
    let mut out = Vec::new();
    for h in hops {
        let Some(m) = &h.theme else {
            continue;
        };
        let conflicts = m.conflicts();
        if !conflicts.is_empty() && m.policy != Policy::Keep {
            let status = if m.policy == Policy::Merge {
                Status::Error
            } else {
                Status::Warning
            };
            for line in conflicts {
                out.push(Check::new(
                    "theme-merge",
                    status,
                    format!(
                        "{line} (upgrading to {}): both the custom theme and the new default changed it there; resolve: make the custom file match the new default in those lines (or its installed default), or set merge = \"keep\" in [targets.NAME.theme]",
                        h.version
                    ),
                ));
            }
            continue;
        }
        let changed: Vec<String> = m
            .files
            .iter()
            .filter(|f| f.action != Action::Kept || m.policy == Policy::Keep)
            .map(|f| format!("{} {}", f.path.display(), f.action.name()))
            .collect();
        let message = match (&m.note, changed.is_empty(), m.policy) {
            (Some(note), _, _) => note.clone(),
            (None, true, _) => format!(
                "{}: nothing to merge from the new default theme",
                m.path.display()
            ),
            (None, false, Policy::Merge) => format!(
                "{}: {} (written after the install)",
                m.path.display(),
                changed.join(", ")
            ),
            (None, false, Policy::Keep) => format!(
                "merge = \"keep\": {} is left as it is; not applied: {}",
                m.path.display(),
                changed.join(", ")
            ),
            (None, false, Policy::Report) => format!(
                "merge = \"report\": {}: {} (shown, not written)",
                m.path.display(),
                changed.join(", ")
            ),
        };
        out.push(Check::new(
            "theme-merge",
            Status::Ok,
            format!("{message} (upgrading to {})", h.version),
        ));
    }
    out
}

/// The `required-keys` checks of one hop: each matching rule's keys in the
/// config the hop leaves behind.
pub fn required_checks(target: &Target, version: &str, after: &Contents) -> Vec<Check> {
    let family = super::plan::family(target);
    let Some(product) = PkgVersion::parse(family, version)
        .ok()
        .and_then(|v| v.product())
    else {
        return Vec::new();
    };
    target
        .required_keys
        .iter()
        .filter(|r| r.version.matches(&product))
        .map(|rule| {
            let doc = after.get(&rule.file).cloned().flatten();
            let missing = configs::missing_keys(rule, doc.as_deref());
            if missing.is_empty() {
                Check::new(
                    "required-keys",
                    Status::Ok,
                    format!(
                        "{} has what {product} requires ({})",
                        rule.file.display(),
                        rule.keys.join(", ")
                    ),
                )
            } else {
                Check::new(
                    "required-keys",
                    Status::Error,
                    format!(
                        "{product} requires {} in {}, which {} missing or empty after the merge: set {} in the live file, then plan again",
                        missing.join(", "),
                        rule.file.display(),
                        if missing.len() == 1 { "is" } else { "are" },
                        if missing.len() == 1 { "it" } else { "them" },
                    ),
                )
            }
        })
        .collect()
}

/// The `pending-config` check: packaged config files an earlier install
/// left beside the live ones. A warning: the merge does not need them, but
/// the operator may not have reviewed them.
pub fn pending_check(pending: &[PathBuf]) -> Check {
    if pending.is_empty() {
        return Check::new(
            "pending-config",
            Status::Ok,
            "no .dpkg-dist/.dpkg-old/.rpmnew/.rpmsave file pending",
        );
    }
    Check::new(
        "pending-config",
        Status::Warning,
        format!(
            "left by an earlier install, not reviewed: {} (upkeep merges from the packages themselves; compare and remove them)",
            pending
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// The `schema` check: whether the target version moves the database
/// forward, which an upgrade may do, or back, which only a downgrade
/// (restoring the backup taken at that version) can.
pub fn schema_check(target: &Target, installed: Option<&str>, to: &str) -> Check {
    let family = super::plan::family(target);
    let older = installed.is_some_and(|i| {
        matches!(
            (PkgVersion::parse(family, i), PkgVersion::parse(family, to)),
            (Ok(i), Ok(t)) if t < i
        )
    });
    if older {
        Check::new(
            "schema",
            Status::Error,
            format!(
                "{to} is older than the installed {}: its database schema would be newer than it knows, so an upgrade never goes back; use `upkeep downgrade {} --to {to}`, which restores the database backup taken at {to}",
                installed.unwrap_or("?"),
                target.name
            ),
        )
    } else {
        Check::new(
            "schema",
            Status::Ok,
            "forward only: the database is backed up before the install and restored if the new version fails",
        )
    }
}

/// The `disk-space` check of one file system: an error when `need` (plus a
/// 16 MiB margin) does not fit, a warning when less than twice `need` plus
/// 256 MiB is free.
pub fn judge_space(what: &str, path: &Path, free: Option<u64>, need: u64) -> Check {
    const MIB: u64 = 1024 * 1024;
    let Some(free) = free else {
        return Check::new(
            "disk-space",
            Status::Warning,
            format!("{what}: cannot tell the free space of {}", path.display()),
        );
    };
    let line = format!(
        "{what}: {} free in {}, about {} needed",
        human(free),
        path.display(),
        human(need)
    );
    let status = if free < need + 16 * MIB {
        Status::Error
    } else if free < 2 * need + 256 * MIB {
        Status::Warning
    } else {
        Status::Ok
    };
    Check::new("disk-space", status, line)
}

/// Bytes available to root at `path` (or its nearest existing ancestor).
// The statvfs field types differ between libc targets.
#[allow(clippy::unnecessary_cast)]
pub fn free_space(path: &Path) -> Option<u64> {
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.exists() {
            return nix::sys::statvfs::statvfs(dir)
                .ok()
                .map(|s| s.blocks_free() as u64 * s.fragment_size() as u64);
        }
        p = dir.parent();
    }
    None
}

/// What a run's backups take, about: the config files and `backup_paths`
/// (compressed, counted whole) and the database (an SQLite file's size, or
/// the size of the last dump).
fn backup_estimate(target: &Target, db: Option<&Db>, last_dump: Option<u64>) -> u64 {
    let files: u64 = target
        .config_files
        .iter()
        .chain(&target.backup_paths)
        .chain(target.theme.iter().map(|t| &t.path))
        .map(|p| tree_size(p))
        .sum();
    let db = match db {
        Some(Db::Sqlite { path }) => tree_size(path),
        Some(_) => last_dump.unwrap_or(0),
        None => 0,
    };
    files + db
}

/// The bytes under `path` (regular files, not following symlinks).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

/// `1.5 GiB`, `12.0 MiB`, `900 KiB`.
pub fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.0} KiB", (b / KIB).ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(extra: &str) -> Target {
        crate::config::test_target("config_files = [\"/opt/portal/portal.conf\"]", extra)
    }

    #[test]
    fn space_errors_below_need_and_warns_when_tight() {
        const MIB: u64 = 1024 * 1024;
        let p = Path::new("/var/cache/upkeep");
        assert_eq!(
            judge_space("cache", p, Some(10 * MIB), 20 * MIB).status,
            Status::Error
        );
        assert_eq!(
            judge_space("cache", p, Some(200 * MIB), 20 * MIB).status,
            Status::Warning
        );
        let ok = judge_space("cache", p, Some(4096 * MIB), 20 * MIB);
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.message.contains("4.0 GiB free"), "{}", ok.message);
        assert_eq!(judge_space("cache", p, None, 1).status, Status::Warning);
    }

    #[test]
    fn required_keys_apply_to_matching_versions_only() {
        let t = target(
            "[[targets.portal.required_keys]]\nversion = \">=2.0.0\"\nkeys = [\"Database.Dialect\"]\n",
        );
        let mut after = Contents::new();
        after.insert(
            "/opt/portal/portal.conf".into(),
            Some(br#"{"Database": {"Dialect": ""}}"#.to_vec()),
        );
        assert!(required_checks(&t, "1.1.0-1", &after).is_empty());
        let c = required_checks(&t, "2.0.0-1", &after);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, Status::Error);
        assert!(
            c[0].message.contains("2.0.0 requires Database.Dialect"),
            "{}",
            c[0].message
        );
        after.insert(
            "/opt/portal/portal.conf".into(),
            Some(br#"{"Database": {"Dialect": "postgres"}}"#.to_vec()),
        );
        assert_eq!(required_checks(&t, "2.1.0-1", &after)[0].status, Status::Ok);
    }

    #[test]
    fn an_older_target_is_a_schema_error() {
        let t = target("");
        assert_eq!(
            schema_check(&t, Some("2.1.0-1"), "1.0.0-1").status,
            Status::Error
        );
        assert!(
            schema_check(&t, Some("2.1.0-1"), "1.0.0-1")
                .message
                .contains("upkeep downgrade portal --to 1.0.0-1")
        );
        assert_eq!(
            schema_check(&t, Some("1.0.0-1"), "2.1.0-1").status,
            Status::Ok
        );
        assert_eq!(schema_check(&t, None, "2.1.0-1").status, Status::Ok);
    }

    #[test]
    fn the_gate_names_the_first_error() {
        let r = Review {
            hops: Vec::new(),
            notes: Vec::new(),
            diffs: Vec::new(),
            requirements: Vec::new(),
            checks: vec![
                Check::new("database", Status::Ok, "fine"),
                Check::new("pending-config", Status::Warning, "x"),
                Check::new("required-keys", Status::Error, "2.0.0 requires A"),
                Check::new("config-merge", Status::Error, "conflict"),
            ],
        };
        let e = r.gate("portal").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::PREFLIGHT);
        let line = e.to_string();
        assert!(
            line.contains("required-keys: 2.0.0 requires A (and 1 more error(s))"),
            "{line}"
        );
        assert!(
            r.to_json(&Masker::portal_default())["blocked"]
                .as_bool()
                .unwrap()
        );
        let ok = Review {
            checks: vec![Check::new("database", Status::Ok, "fine")],
            ..r
        };
        assert!(ok.gate("portal").is_ok());
    }

    #[test]
    fn pending_files_warn() {
        assert_eq!(pending_check(&[]).status, Status::Ok);
        let c = pending_check(&["/opt/portal/portal.conf.dpkg-dist".into()]);
        assert_eq!(c.status, Status::Warning);
        assert!(c.message.contains("portal.conf.dpkg-dist"));
    }
}
