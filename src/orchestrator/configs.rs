//! Config files across a transition: what the new version's packaged
//! defaults change, the merge into the operator's live files (by the
//! target's `config_merge` policy), the atomic write after the install, and
//! the `.dpkg-dist`/`.rpmnew` files the package manager leaves beside them.
//!
//! The three documents of a merge come from the packages themselves, never
//! from what dpkg or rpm left on disk: `base` is the installed version's
//! default (from its cached package), `ours` the live file as it was before
//! the install, `theirs` the new version's default.
//!
//! Reviewing ([`review_file`], [`missing_keys`]) is pure; reading the
//! packages and writing files are separate functions.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{RequiredKeys, Target};
use crate::confmerge::{self, Masker, MergeOutcome, Policy};

/// Contents of config files by path; `None` for a file that does not exist
/// (or that a package does not ship).
pub type Contents = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// What upkeep does to one config file after the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Neither the vendor nor the merge changes it.
    Unchanged,
    /// The three-way merge is written (`config_merge = "merge"`).
    Merge,
    /// The live file stays as it is (`config_merge = "keep"`, or a file
    /// upkeep cannot merge); the vendor's default stays beside it.
    Keep,
    /// The vendor's default replaces it (`config_merge = "new"`).
    New,
    /// A conflict: the upgrade is blocked until it is resolved.
    Blocked,
}

/// One config file reviewed for a transition.
#[derive(Clone, Debug)]
pub struct FileReview {
    /// The live path.
    pub path: PathBuf,
    /// `json` when all sides parse as JSON (merged structurally), else
    /// `text`.
    pub format: &'static str,
    /// What happens to it.
    pub action: Action,
    /// The file's content after the transition when upkeep writes it;
    /// `None` when the package manager's own handling stands.
    pub result: Option<Vec<u8>>,
    /// The structural merge, for JSON files.
    pub outcome: Option<MergeOutcome>,
    /// Unified diff (secrets masked) from the live file to what it will be;
    /// for a file left as it is, to the vendor's new default.
    pub diff: String,
    /// Why a file is not merged, when it is not.
    pub note: Option<String>,
}

impl Action {
    /// The name in the output and the JSON: `unchanged`, `merge`, `keep`,
    /// `new`, `blocked`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Merge => "merge",
            Action::Keep => "keep",
            Action::New => "new",
            Action::Blocked => "blocked",
        }
    }
}

impl FileReview {
    /// Whether this file blocks the upgrade.
    pub fn blocks(&self) -> bool {
        self.action == Action::Blocked
    }

    /// One line per conflict, masked, each saying how to resolve it.
    pub fn conflicts(&self, mask: &Masker) -> Vec<String> {
        self.outcome
            .iter()
            .flat_map(|o| &o.conflicts)
            .map(|c| format!("{}: {}", self.path.display(), c.describe(mask)))
            .collect()
    }

    /// For `--json` and the history: everything masked, no content.
    pub fn to_json(&self, mask: &Masker) -> Value {
        let merge = self
            .outcome
            .as_ref()
            .map(|o| o.to_json(mask))
            .unwrap_or_else(|| json!({"changes": [], "conflicts": []}));
        json!({
            "path": self.path,
            "format": self.format,
            "action": self.action,
            "changes": merge["changes"],
            "conflicts": merge["conflicts"],
            "diff": self.diff,
            "note": self.note,
        })
    }
}

/// The files a transition reviews: the target's `config_files`, then the
/// package's own config files (conffiles, `%config`) not listed there.
pub fn files_of(target: &Target, conffiles: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = target.config_files.clone();
    for f in conffiles {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

/// The packaged content of `files` in a package file. A copy rebuilt from
/// the host ([`crate::pkg::repack`]) ships the live content of a conffile
/// the operator edited when dpkg kept no copy of the original; such files
/// are listed beside it ([`unknown_defaults_path`]) and read as unknown
/// here, so that a merge never takes the operator's file for the default.
pub fn packaged(package: &Path, files: &[PathBuf]) -> anyhow::Result<Contents> {
    let unknown: Vec<PathBuf> = match std::fs::read_to_string(unknown_defaults_path(package)) {
        Ok(text) => text.lines().map(PathBuf::from).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", package.display())),
    };
    files
        .iter()
        .map(|f| {
            if unknown.contains(f) {
                return Ok((f.clone(), None));
            }
            Ok((f.clone(), crate::package::file_contents(package, f)?))
        })
        .collect()
}

/// Where the conffiles whose packaged content a rebuilt copy does not know
/// are listed, one absolute path per line: `PACKAGE.unknown-defaults`.
pub fn unknown_defaults_path(package: &Path) -> PathBuf {
    let mut name = package.as_os_str().to_owned();
    name.push(".unknown-defaults");
    PathBuf::from(name)
}

/// What the packages `packages` ship for `files`: for each file, the first
/// package that ships it (a product's config often lives in a sibling
/// package: nginx.conf is in nginx-common).
pub fn packaged_by_any(packages: &[PathBuf], files: &[PathBuf]) -> anyhow::Result<Contents> {
    let mut out: Contents = files.iter().map(|f| (f.clone(), None)).collect();
    for package in packages {
        let missing: Vec<PathBuf> = out
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            break;
        }
        for (f, content) in packaged(package, &missing)? {
            if content.is_some() {
                out.insert(f, content);
            }
        }
    }
    Ok(out)
}

/// The live content of `files` (`None` for a file that does not exist).
pub fn live(files: &[PathBuf]) -> anyhow::Result<Contents> {
    files
        .iter()
        .map(|f| match std::fs::read(f) {
            Ok(b) => Ok((f.clone(), Some(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((f.clone(), None)),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", f.display())),
        })
        .collect()
}

/// Reviews every file: `base` and `theirs` are the packaged defaults of the
/// installed and the new version, `ours` the live files.
pub fn review(
    policy: Policy,
    base: &Contents,
    ours: &Contents,
    theirs: &Contents,
    mask: &Masker,
) -> Vec<FileReview> {
    let get = |c: &Contents, p: &Path| c.get(p).cloned().flatten();
    let mut paths: Vec<&PathBuf> = ours.keys().collect();
    for p in theirs.keys().chain(base.keys()) {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
        .into_iter()
        .filter_map(|p| {
            review_file(
                p,
                policy,
                get(base, p).as_deref(),
                get(ours, p).as_deref(),
                get(theirs, p).as_deref(),
                mask,
            )
        })
        .collect()
}

/// Reviews one file; `None` when neither version ships it (nothing for the
/// package manager to do).
pub fn review_file(
    path: &Path,
    policy: Policy,
    base: Option<&[u8]>,
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
    mask: &Masker,
) -> Option<FileReview> {
    let theirs = theirs?;
    let label = path.display().to_string();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Some(ours) = ours else {
        // No live file: the package manager installs the default (dpkg
        // leaves a conffile the operator deleted deleted).
        return Some(FileReview {
            path: path.to_path_buf(),
            format: "text",
            action: Action::Unchanged,
            result: None,
            outcome: None,
            diff: String::new(),
            note: Some("no live file: the package manager's own handling applies".into()),
        });
    };
    let kept = |format, note: Option<String>| FileReview {
        path: path.to_path_buf(),
        format,
        action: if ours == theirs {
            Action::Unchanged
        } else {
            Action::Keep
        },
        result: Some(ours.to_vec()),
        outcome: None,
        diff: confmerge::unified_diff(
            &text(ours),
            &text(theirs),
            &format!("{label} (live)"),
            &format!("{label} (new default)"),
            mask,
        ),
        note,
    };
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    let (Some(t), Some(o)) = (parse(theirs), parse(ours)) else {
        let note = match parse(theirs) {
            Some(_) => {
                "the live file is not valid JSON: it is kept as it is; merge the new default by hand"
            }
            None => "not a JSON file: kept as it is; review the new default by hand",
        };
        return Some(kept("text", (ours != theirs).then(|| note.to_string())));
    };
    let Some(b) = base.and_then(parse) else {
        let note = "the installed version's default is unknown, so changes cannot be told apart: the live file is kept";
        return Some(kept("json", (ours != theirs).then(|| note.to_string())));
    };
    let outcome = confmerge::merge_with_policy(policy, &b, &o, &t);
    let result = if !outcome.is_clean() {
        None
    } else if outcome.merged == o {
        Some(ours.to_vec())
    } else if outcome.merged == t {
        Some(theirs.to_vec())
    } else {
        Some(confmerge::render(&outcome.merged).into_bytes())
    };
    let action = match (&result, policy) {
        (None, _) => Action::Blocked,
        (Some(r), Policy::Keep) if r == ours && ours != theirs => Action::Keep,
        (Some(r), _) if r == ours => Action::Unchanged,
        (Some(_), Policy::Merge) => Action::Merge,
        (Some(_), Policy::Keep) => Action::Keep,
        (Some(_), Policy::New) => Action::New,
    };
    let diff = match &result {
        Some(r) => confmerge::unified_diff(
            &text(ours),
            &text(r),
            &format!("{label} (live)"),
            &format!("{label} (after the upgrade)"),
            mask,
        ),
        None => confmerge::unified_diff(
            &text(ours),
            &text(theirs),
            &format!("{label} (live)"),
            &format!("{label} (new default)"),
            mask,
        ),
    };
    Some(FileReview {
        path: path.to_path_buf(),
        format: "json",
        action,
        result,
        outcome: Some(outcome),
        diff,
        note: None,
    })
}

/// The live contents after the reviewed transition: each file's result, or
/// the live content where the package manager's handling stands.
pub fn after(ours: &Contents, reviews: &[FileReview]) -> Contents {
    let mut out = ours.clone();
    for r in reviews {
        if let Some(result) = &r.result {
            out.insert(r.path.clone(), Some(result.clone()));
        }
    }
    out
}

/// The keys of `rule` that `doc` lacks: absent, `null` or `""` (dotted
/// paths through objects).
pub fn missing_keys(rule: &RequiredKeys, doc: Option<&[u8]>) -> Vec<String> {
    let parsed = doc.and_then(|d| serde_json::from_slice::<Value>(d).ok());
    rule.keys
        .iter()
        .filter(|k| {
            let mut v = parsed.as_ref();
            for part in k.split('.') {
                v = v.and_then(|x| x.get(part));
            }
            match v {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                Some(_) => false,
            }
        })
        .cloned()
        .collect()
}

/// Writes `content` to `path` by the one durable write
/// ([`crate::fsutil::durable`]): a hidden temporary file in the same
/// directory (the product may read every file of its config directory)
/// with the live file's mode and owner (0644 for a new file), synced,
/// renamed over it, and the directory synced.
pub fn write_atomic(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use crate::fsutil::durable::{Options, Pending};
    use std::os::unix::fs::MetadataExt;
    path.parent()
        .with_context(|| format!("{}: no parent directory", path.display()))?;
    path.file_name()
        .with_context(|| format!("{}: no file name", path.display()))?;
    // The mode and owner of what the path shows (a symlinked config is
    // replaced by a file with its target's).
    let meta = std::fs::metadata(path).ok();
    let mut options = Options::unique().mode(meta.as_ref().map_or(0o644, |m| m.mode() & 0o7777));
    if let Some(m) = &meta {
        options = options.owner(m.uid(), m.gid());
    }
    let mut pending =
        Pending::create(path, options).with_context(|| format!("{}: create", path.display()))?;
    let tmp = pending.path().to_path_buf();
    pending
        .file()
        .write_all(content)
        .and_then(|()| pending.sync())
        .with_context(|| format!("{}: write", tmp.display()))?;
    pending
        .commit()
        .with_context(|| format!("{}: rename", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"HostPort": 3001, "LicenseKey": "", "Theming": {"Theme": "default", "Path": "/opt/portal/themes"}}"#;
    const THEIRS: &str = r#"{"HostPort": 3001, "LicenseKey": "", "Theming": {"Theme": "default", "Directory": "/opt/portal/themes"}, "CORS": {"AllowedOrigins": []}}"#;

    fn review_one(policy: Policy, base: &str, ours: &str, theirs: &str) -> FileReview {
        review_file(
            Path::new("/opt/portal/portal.conf"),
            policy,
            Some(base.as_bytes()),
            Some(ours.as_bytes()),
            Some(theirs.as_bytes()),
            &Masker::portal_default(),
        )
        .unwrap()
    }

    #[test]
    fn action_names_are_the_json_ones() {
        for a in [
            Action::Unchanged,
            Action::Merge,
            Action::Keep,
            Action::New,
            Action::Blocked,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
    }

    #[test]
    fn operator_edits_survive_and_vendor_keys_arrive() {
        let ours = r#"{"HostPort": 8080, "LicenseKey": "LIC-secret-1", "Theming": {"Theme": "dark", "Path": "/srv/themes"}}"#;
        let r = review_one(Policy::Merge, BASE, ours, THEIRS);
        assert_eq!(r.action, Action::Merge);
        let doc: Value = serde_json::from_slice(r.result.as_ref().unwrap()).unwrap();
        assert_eq!(doc["HostPort"], 8080);
        assert_eq!(doc["LicenseKey"], "LIC-secret-1");
        assert_eq!(doc["Theming"]["Directory"], "/srv/themes");
        assert!(doc["Theming"].get("Path").is_none());
        assert_eq!(doc["CORS"]["AllowedOrigins"], json!([]));
        assert!(!r.diff.contains("LIC-secret-1"), "{}", r.diff);
        assert!(r.diff.contains("Directory"), "{}", r.diff);
        let j = r.to_json(&Masker::portal_default()).to_string();
        assert!(!j.contains("LIC-secret-1"), "{j}");
    }

    /// The sample portal's packaged defaults, as its packages ship them.
    fn release(version: &str) -> String {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/portal/releases")
            .join(version)
            .join("portal.conf");
        std::fs::read_to_string(&p).unwrap()
    }

    #[test]
    fn sample_1_1_to_2_0_renames_adds_and_takes_new_defaults() {
        let mut ours: Value = serde_json::from_str(&release("1.1.0")).unwrap();
        ours["LicenseKey"] = json!("LIC-secret-2");
        ours["Theming"]["Path"] = json!("/srv/themes");
        ours["Database"] =
            json!({"Dialect": "sqlite3", "ConnectionString": "/var/lib/portal/portal.db"});
        let ours = serde_json::to_string_pretty(&ours).unwrap();
        let r = review_one(Policy::Merge, &release("1.1.0"), &ours, &release("2.0.0"));
        assert_eq!(r.action, Action::Merge, "{:?}", r.outcome);
        let doc: Value = serde_json::from_slice(r.result.as_ref().unwrap()).unwrap();
        assert_eq!(doc["Theming"]["Directory"], "/srv/themes");
        assert!(doc["Theming"].get("Path").is_none());
        assert_eq!(doc["Session"]["IdleTimeout"], 1800);
        assert_eq!(doc["Database"]["Dialect"], "sqlite3");
        assert_eq!(doc["LicenseKey"], "LIC-secret-2");
        assert_eq!(doc["CORS"]["AllowedOrigins"], json!([]));
        // The operator's IdleTimeout against the vendor's new default.
        let mut edited: Value = serde_json::from_str(&ours).unwrap();
        edited["Session"]["IdleTimeout"] = json!(7200);
        let edited = serde_json::to_string(&edited).unwrap();
        let c = review_one(Policy::Merge, &release("1.1.0"), &edited, &release("2.0.0"));
        assert!(c.blocks());
        assert!(c.conflicts(&Masker::portal_default())[0].contains("Session.IdleTimeout"));
    }

    #[test]
    fn a_conflict_blocks_and_is_described_masked() {
        let base = r#"{"Storage": "fs", "Session": {"Key": "old-key-1"}}"#;
        let ours = r#"{"Storage": "s3", "Session": {"Key": "mine-key-2"}}"#;
        let theirs = r#"{"Storage": "db", "Session": {"Key": "old-key-1"}}"#;
        let r = review_one(Policy::Merge, base, ours, theirs);
        assert!(r.blocks());
        assert!(r.result.is_none());
        let lines = r.conflicts(&Masker::portal_default());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("Storage"), "{}", lines[0]);
        assert!(lines[0].contains("resolve"), "{}", lines[0]);
        // keep never conflicts; new takes the vendor's file verbatim.
        assert_eq!(
            review_one(Policy::Keep, base, ours, theirs).action,
            Action::Keep
        );
        let new = review_one(Policy::New, base, ours, theirs);
        assert_eq!(new.action, Action::New);
        assert_eq!(new.result.as_deref(), Some(theirs.as_bytes()));
    }

    #[test]
    fn an_untouched_file_takes_the_vendor_bytes_verbatim() {
        let r = review_one(Policy::Merge, BASE, BASE, THEIRS);
        assert_eq!(r.result.as_deref(), Some(THEIRS.as_bytes()));
        let same = review_one(Policy::Merge, BASE, BASE, BASE);
        assert_eq!(same.action, Action::Unchanged);
        assert!(same.diff.is_empty());
    }

    #[test]
    fn a_file_that_is_not_json_is_kept_with_a_masked_diff() {
        let path = Path::new("/etc/portal/env");
        let r = review_file(
            path,
            Policy::Merge,
            Some(b"A=1\n"),
            Some(b"A=2\nDB=postgres://u:Pw-9x@h/db\n"),
            Some(b"A=1\nB=2\n"),
            &Masker::portal_default(),
        )
        .unwrap();
        assert_eq!((r.format, r.action), ("text", Action::Keep));
        assert!(r.diff.contains("+B=2"), "{}", r.diff);
        assert!(!r.diff.contains("Pw-9x"), "{}", r.diff);
        assert!(r.note.is_some());
    }

    #[test]
    fn a_file_no_version_ships_is_not_reviewed() {
        let none = review_file(
            Path::new("/x"),
            Policy::Merge,
            None,
            Some(b"{}"),
            None,
            &Masker::portal_default(),
        );
        assert!(none.is_none());
    }

    #[test]
    fn required_keys_must_be_present_and_not_empty() {
        let rule = RequiredKeys {
            version: semver::VersionReq::parse(">=2.0.0").unwrap(),
            file: "/opt/portal/portal.conf".into(),
            keys: vec![
                "LicenseKey".into(),
                "Database.Dialect".into(),
                "Database.ConnectionString".into(),
            ],
        };
        let doc = br#"{"LicenseKey": "x", "Database": {"Dialect": "", "ConnectionString": null}}"#;
        assert_eq!(
            missing_keys(&rule, Some(doc)),
            ["Database.Dialect", "Database.ConnectionString"]
        );
        assert_eq!(missing_keys(&rule, None).len(), 3);
        let full =
            br#"{"LicenseKey": "x", "Database": {"Dialect": "postgres", "ConnectionString": "h"}}"#;
        assert!(missing_keys(&rule, Some(full)).is_empty());
    }

    #[test]
    fn atomic_write_keeps_mode_and_replaces_content() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("portal.conf");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&f, b"{\"a\": 1}\n").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"a\": 1}\n");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }

    #[test]
    fn an_edited_conffile_of_a_rebuilt_copy_is_no_merge_base() {
        use crate::package::testpkg::{Spec, build_deb};
        let dir = tempfile::tempdir().unwrap();
        let deb = build_deb(
            dir.path(),
            &Spec {
                name: "demo",
                version: "1.0-1",
                epoch: None,
                files: &[
                    ("/etc/demo/a.conf", b"{\"LicenseKey\": \"live\"}"),
                    ("/etc/demo/b.conf", b"{}"),
                ],
                hard_links: &[],
                dirs: &[],
                config: &["/etc/demo/a.conf", "/etc/demo/b.conf"],
                extra_conffiles: "",
                changelog: "",
            },
            "gzip",
        );
        let files = [
            PathBuf::from("/etc/demo/a.conf"),
            PathBuf::from("/etc/demo/b.conf"),
        ];
        assert!(
            packaged(&deb, &files)
                .unwrap()
                .values()
                .all(Option::is_some)
        );
        std::fs::write(unknown_defaults_path(&deb), "/etc/demo/a.conf\n").unwrap();
        let got = packaged(&deb, &files).unwrap();
        assert_eq!(got[&files[0]], None, "the live content is not the default");
        assert_eq!(got[&files[1]].as_deref(), Some(&b"{}"[..]));
    }
}
