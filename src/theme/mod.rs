//! The operator's theme across an upgrade (`[targets.NAME.theme]`): a
//! three-way merge of every file of a theme directory, the way
//! [`crate::confmerge`] merges a JSON config.
//!
//! - `base`: the default theme the **installed** version's package ships
//!   (read from the package file upkeep keeps for the rollback, never from
//!   disk);
//! - `ours`: the operator's custom theme directory, live;
//! - `theirs`: the default theme of the **new** version's package.
//!
//! Files are named by their path relative to the theme directory. Per file
//! ([`merge_file`]; "absent" is a value like any other):
//!
//! - `ours == theirs`: nothing to do (not listed);
//! - the operator left it as in `base` (`ours == base`): the vendor's side
//!   wins — [`Action::Added`] for a file new in `theirs`,
//!   [`Action::Updated`] for a new content, [`Action::Removed`] for a file
//!   the vendor deleted;
//! - the vendor left it as in `base` (`theirs == base`): the operator's side
//!   stays ([`Action::Kept`]: an edit, a file the operator added or
//!   deleted);
//! - both changed it: a text file is merged line by line with
//!   [`diffy::merge`] ([`Action::Merged`]), overlapping edits being a
//!   [`Action::Conflict`] that names the hunks; a binary file (not UTF-8, or
//!   holding a NUL byte), a file one side deleted and the other changed, or
//!   a file both added with different contents (binary) is a conflict.
//!
//! A renamed file is a deletion plus an addition, each by the rules above.
//!
//! The policy ([`Policy`], `merge = "merge" | "keep" | "report"`) decides
//! what `upgrade` does with the result: `merge` writes it after the install
//! (a conflict blocks the upgrade, exit 3, before anything stops), `keep`
//! never touches the custom theme (`plan` says what the vendor changed),
//! `report` shows the merge in `plan` (conflicts as warnings) and writes
//! nothing.
//!
//! Reading ([`live`], [`packaged`]) and writing ([`write`]) are separate
//! from the pure merge ([`merge`], [`review`]).

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde_json::{Value, json};

/// The theme of a target (`[targets.NAME.theme]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// The operator's theme, a directory (`path`).
    pub path: PathBuf,
    /// Where the package ships its default theme (`default`).
    pub default: PathBuf,
    /// What `upgrade` does with the merge (`merge`, default `merge`).
    pub merge: Policy,
}

/// What to do with the merge of the new default theme into the custom one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Write the merge after the install; a conflict blocks the upgrade.
    #[default]
    Merge,
    /// Never touch the custom theme; `plan` reports what would change.
    Keep,
    /// `plan` shows the merge (conflicts as warnings); `upgrade` does not
    /// write it.
    Report,
}

impl Policy {
    /// The name in the configuration: `merge`, `keep` or `report`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Merge => "merge",
            Policy::Keep => "keep",
            Policy::Report => "report",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `merge` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown theme merge {0:?}: expected \"merge\", \"keep\" or \"report\"")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Policy, UnknownPolicy> {
        match s {
            "merge" => Ok(Policy::Merge),
            "keep" => Ok(Policy::Keep),
            "report" => Ok(Policy::Report),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}

/// The files of a theme by path relative to its directory.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

/// What the merge does to one file of the custom theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A file the vendor added arrives.
    Added,
    /// A file the operator left as shipped takes the vendor's new content.
    Updated,
    /// Both changed a text file in different places: the line merge.
    Merged,
    /// Only the operator changed it: the operator's side stays.
    Kept,
    /// A file the vendor deleted, left as shipped by the operator, goes.
    Removed,
    /// Both changed it in the same place: blocks the upgrade.
    Conflict,
}

impl Action {
    /// The name in the output and the JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Merged => "merged",
            Action::Kept => "kept",
            Action::Removed => "removed",
            Action::Conflict => "conflict",
        }
    }
}

/// What the merge does to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMerge {
    /// The path relative to the theme directory.
    pub path: PathBuf,
    /// What happens to it.
    pub action: Action,
    /// A binary file (not UTF-8, or holding a NUL byte) on some side.
    pub binary: bool,
    /// The content to write (added, updated, merged); `None` otherwise.
    pub content: Option<Vec<u8>>,
    /// For a conflict: the hunks that overlap, one line each (line ranges
    /// in the installed version's default, the custom file and the new
    /// default), or why the file cannot be merged.
    pub hunks: Vec<String>,
    /// For a text conflict: the file with diff3 conflict markers.
    pub markers: Option<String>,
}

impl FileMerge {
    fn new(path: &Path, action: Action, binary: bool, content: Option<Vec<u8>>) -> FileMerge {
        FileMerge {
            path: path.to_path_buf(),
            action,
            binary,
            content,
            hunks: Vec::new(),
            markers: None,
        }
    }

    fn conflict(path: &Path, binary: bool, hunks: Vec<String>, markers: Option<String>) -> Self {
        FileMerge {
            path: path.to_path_buf(),
            action: Action::Conflict,
            binary,
            content: None,
            hunks,
            markers,
        }
    }

    /// Whether the file changes on disk when the merge is written.
    #[must_use]
    pub fn writes(&self) -> bool {
        matches!(
            self.action,
            Action::Added | Action::Updated | Action::Merged | Action::Removed
        )
    }
}

/// The merge of a theme for one hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThemeMerge {
    /// The custom theme directory.
    pub path: PathBuf,
    /// The target's policy.
    pub policy: Policy,
    /// Every file that differs between the custom theme and the new
    /// default, by path.
    pub files: Vec<FileMerge>,
    /// Why nothing is merged, when nothing is (no custom theme, no new
    /// default theme in the package).
    pub note: Option<String>,
}

impl ThemeMerge {
    /// The conflicts, one line each naming the file and its hunks.
    #[must_use]
    pub fn conflicts(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| f.action == Action::Conflict)
            .map(|f| {
                format!(
                    "{}: {}",
                    self.path.join(&f.path).display(),
                    f.hunks.join("; ")
                )
            })
            .collect()
    }

    /// Whether the merge blocks the upgrade: a conflict under `merge`.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.policy == Policy::Merge && self.files.iter().any(|f| f.action == Action::Conflict)
    }

    /// Whether `upgrade` writes this merge: `merge`, without conflicts, with
    /// something to write.
    #[must_use]
    pub fn applies(&self) -> bool {
        self.policy == Policy::Merge && !self.blocks() && self.files.iter().any(FileMerge::writes)
    }

    /// For `--json` and the history: no content but a conflict's markers.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "policy": self.policy,
            "applies": self.applies(),
            "blocked": self.blocks(),
            "note": self.note,
            "files": self.files.iter().map(|f| json!({
                "path": f.path,
                "action": f.action,
                "binary": f.binary,
                "hunks": f.hunks,
                "markers": f.markers,
            })).collect::<Vec<_>>(),
        })
    }

    /// The custom theme after the merge is written (`ours` for a policy
    /// that writes nothing, or a merge that conflicts).
    #[must_use]
    pub fn after(&self, ours: &Files) -> Files {
        let mut out = ours.clone();
        if self.policy != Policy::Merge || self.blocks() {
            return out;
        }
        for f in &self.files {
            match (&f.action, &f.content) {
                (Action::Removed, _) => {
                    out.remove(&f.path);
                }
                (_, Some(c)) => {
                    out.insert(f.path.clone(), c.clone());
                }
                _ => {}
            }
        }
        out
    }
}

/// A binary file: not UTF-8, or holding a NUL byte.
#[must_use]
pub fn is_binary(content: &[u8]) -> bool {
    content.contains(&0) || std::str::from_utf8(content).is_err()
}

/// Merges every file of the three trees (see the module documentation);
/// files equal in `ours` and `theirs` are left out.
#[must_use]
pub fn merge(base: &Files, ours: &Files, theirs: &Files) -> Vec<FileMerge> {
    let mut paths: Vec<&PathBuf> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            merge_file(
                p,
                base.get(p).map(Vec::as_slice),
                ours.get(p).map(Vec::as_slice),
                theirs.get(p).map(Vec::as_slice),
            )
        })
        .collect()
}

/// Merges one file; `None` when the custom theme already has what the new
/// default has.
#[must_use]
pub fn merge_file(
    path: &Path,
    base: Option<&[u8]>,
    ours: Option<&[u8]>,
    theirs: Option<&[u8]>,
) -> Option<FileMerge> {
    if ours == theirs {
        return None;
    }
    let binary = [base, ours, theirs].into_iter().flatten().any(is_binary);
    if ours == base {
        return Some(match (base, theirs) {
            (_, None) => FileMerge::new(path, Action::Removed, binary, None),
            (None, Some(t)) => FileMerge::new(path, Action::Added, binary, Some(t.to_vec())),
            (Some(_), Some(t)) => FileMerge::new(path, Action::Updated, binary, Some(t.to_vec())),
        });
    }
    if theirs == base {
        return Some(FileMerge::new(path, Action::Kept, binary, None));
    }
    // Both sides changed it, each differently.
    let (Some(o), Some(t)) = (ours, theirs) else {
        let why = if theirs.is_none() {
            "the new version deletes it, and it was edited here: delete it or keep it by hand"
        } else {
            "it was deleted here, and the new version changes it: restore it or drop the vendor's change by hand"
        };
        return Some(FileMerge::conflict(path, binary, vec![why.into()], None));
    };
    if binary {
        let why = match base {
            None => "a binary file added both here and by the new version, with different contents",
            Some(_) => "a binary file changed both here and by the new version",
        };
        return Some(FileMerge::conflict(path, true, vec![why.into()], None));
    }
    // Text on every side (checked just above).
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (b, o, t) = (text(base.unwrap_or_default()), text(o), text(t));
    match diffy::merge(&b, &o, &t) {
        Ok(merged) => Some(FileMerge::new(
            path,
            Action::Merged,
            false,
            Some(merged.into_bytes()),
        )),
        Err(markers) => Some(FileMerge::conflict(
            path,
            false,
            conflict_hunks(&b, &o, &t),
            Some(markers),
        )),
    }
}

/// The hunks of `ours` and `theirs` (against `base`, no context) that
/// overlap or touch, one line each: `lines A-B of the installed default:
/// here lines C-D, new default lines E-F`.
fn conflict_hunks(base: &str, ours: &str, theirs: &str) -> Vec<String> {
    let mut options = diffy::DiffOptions::new();
    options.set_context_len(0);
    let mine = options.create_patch(base, ours);
    let vendor = options.create_patch(base, theirs);
    // Base ranges as half-open [start, end) in 1-based lines; an insertion
    // (len 0) sits after line `start`.
    let span = |r: diffy::HunkRange| {
        if r.is_empty() {
            (r.start() + 1, r.start() + 1)
        } else {
            (r.start(), r.start() + r.len())
        }
    };
    let lines = |r: diffy::HunkRange| match (r.len(), r.start()) {
        (0, s) => format!("after line {s}"),
        (1, s) => format!("line {s}"),
        (n, s) => format!("lines {s}-{}", s + n - 1),
    };
    let mut out = Vec::new();
    for m in mine.hunks() {
        let (ms, me) = span(m.old_range());
        for v in vendor.hunks() {
            let (vs, ve) = span(v.old_range());
            // Overlapping or adjacent ranges conflict, as in diff3.
            if ms <= ve && vs <= me {
                out.push(format!(
                    "{} of the installed default: here {}, new default {}",
                    lines(m.old_range()),
                    lines(m.new_range()),
                    lines(v.new_range())
                ));
            }
        }
    }
    if out.is_empty() {
        out.push("overlapping edits (see the conflict markers)".into());
    }
    out
}

/// Reviews the theme for one hop: the merge of `theirs` into `ours` from
/// `base`. Nothing is merged when the custom theme does not exist (`ours`
/// is `None`) or when the new package ships no default theme (a wrong
/// `default`, or a version that dropped theming: deleting every untouched
/// file of the custom theme would be the wrong guess).
#[must_use]
pub fn review(theme: &Theme, base: &Files, ours: Option<&Files>, theirs: &Files) -> ThemeMerge {
    let empty = |note: String| ThemeMerge {
        path: theme.path.clone(),
        policy: theme.merge,
        files: Vec::new(),
        note: Some(note),
    };
    let Some(ours) = ours else {
        return empty(format!(
            "no custom theme at {}: nothing to merge",
            theme.path.display()
        ));
    };
    if theirs.is_empty() {
        return empty(format!(
            "the new version ships no default theme under {}: the custom theme is left as it is",
            theme.default.display()
        ));
    }
    ThemeMerge {
        path: theme.path.clone(),
        policy: theme.merge,
        files: merge(base, ours, theirs),
        note: None,
    }
}

/// The regular files under `dir` (recursively; symlinks and special files
/// are left out), by path relative to it; `None` when `dir` does not exist.
pub fn live(dir: &Path) -> anyhow::Result<Option<Files>> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(anyhow!("{}: not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("{}: {e}", dir.display())),
    }
    let mut out = Files::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("{}", d.display()))?;
            let p = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("{}", p.display()))?;
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() {
                let content = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
                let rel = p
                    .strip_prefix(dir)
                    .with_context(|| format!("{}: outside {}", p.display(), dir.display()))?;
                out.insert(rel.to_path_buf(), content);
            }
        }
    }
    Ok(Some(out))
}

/// The default theme a package file ships under `default`.
pub fn packaged(package: &Path, default: &Path) -> anyhow::Result<Files> {
    crate::package::dir_contents(package, default)
}

/// Writes a merge into the custom theme directory, file by file, each by
/// the one durable write ([`crate::fsutil::durable`]) with the live file's
/// mode and owner (a new file: 0644 and the directory's owner); removed
/// files are unlinked and their directory synced. Returns the paths
/// changed. Writes nothing unless [`ThemeMerge::applies`].
pub fn write(merge: &ThemeMerge) -> anyhow::Result<Vec<PathBuf>> {
    use crate::fsutil::durable::{self, Options};
    use std::os::unix::fs::MetadataExt;
    let mut done = Vec::new();
    if !merge.applies() {
        return Ok(done);
    }
    let dir_meta =
        std::fs::metadata(&merge.path).with_context(|| format!("{}", merge.path.display()))?;
    for f in merge.files.iter().filter(|f| f.writes()) {
        let dest = merge.path.join(&f.path);
        match (&f.action, &f.content) {
            (Action::Removed, _) => match std::fs::remove_file(&dest) {
                Ok(()) => {
                    durable::sync_parent(&dest)
                        .with_context(|| format!("{}: sync", dest.display()))?;
                    done.push(dest);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow!("{}: remove: {e}", dest.display())),
            },
            (_, Some(content)) => {
                let parent = dest
                    .parent()
                    .with_context(|| format!("{}: no parent directory", dest.display()))?;
                if !parent.exists() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("{}: create", parent.display()))?;
                    durable::sync_parent(parent)
                        .with_context(|| format!("{}: sync", parent.display()))?;
                }
                let meta = std::fs::metadata(&dest).ok();
                let (mode, uid, gid) = match &meta {
                    Some(m) => (m.mode() & 0o7777, m.uid(), m.gid()),
                    None => (0o644, dir_meta.uid(), dir_meta.gid()),
                };
                let options = Options::unique().mode(mode).owner(uid, gid);
                durable::write(&dest, options, content)
                    .with_context(|| format!("{}: write", dest.display()))?;
                done.push(dest);
                crate::failpoint::mid("theme-half");
            }
            _ => {}
        }
    }
    Ok(done)
}
