//! The structural three-way merge of JSON config files, and how the result
//! is written.
//!
//! `base` is the packaged default of the installed version, `ours` the live
//! file, `theirs` the packaged default of the new version. The rules are in
//! the [module documentation](super); this file holds the implementation:
//!
//! 1. Renames are found first, over the whole document, by comparing `base`
//!    with `theirs` only (`find_renames`).
//! 2. One walk over the union of keys then decides each key with the leaf
//!    rule (`Merger::leaf`) or, where every side present is an object,
//!    recurses (`Merger::object`). A rename's destination is merged with
//!    the source's `base` and `ours` values; the source is dropped.
//! 3. The merged object keeps the live file's key order; a key the vendor
//!    added goes right after the key that precedes it in the vendor's file,
//!    a renamed key where its old name was.

use std::fmt;

use serde_json::{Map, Value, json};

use super::Policy;
use super::mask::{MASK, Masker, child_path};
use crate::error::one_line_text;

/// What the merge did to one key (or what it would have done, under a policy
/// other than `merge`). Paths are dotted (`Database.ConnectionString`); the
/// root is the empty path. Values are in clear: show them through
/// [`Change::describe`] or [`Change::to_json`] with a [`Masker`]. `Debug`
/// masks with [`Masker::portal_default`].
#[derive(Clone, PartialEq)]
pub enum Change {
    /// The vendor added the key; it arrives with the vendor's value.
    Added {
        /// Where.
        path: String,
        /// The vendor's value.
        value: Value,
    },
    /// The vendor removed the key and the live file still had the old
    /// default: it is removed.
    Removed {
        /// Where.
        path: String,
        /// The value removed (the old default).
        value: Value,
    },
    /// The vendor renamed (or moved) the key, keeping its default; the live
    /// value moves to the new name.
    Renamed {
        /// The old path.
        from: String,
        /// The new path.
        to: String,
    },
    /// The vendor changed the default and the live file had the old one: the
    /// new default is taken.
    VendorChanged {
        /// Where.
        path: String,
        /// The old default.
        from: Value,
        /// The new default.
        to: Value,
    },
    /// The operator's value is kept: the vendor did not touch the key, or
    /// both added it (then `vendor` is the vendor's value, not taken).
    KeptOperator {
        /// Where.
        path: String,
        /// The operator's value.
        value: Value,
        /// The vendor's value for a key both sides added.
        vendor: Option<Value>,
    },
    /// The vendor removed a key the operator had changed: the operator's
    /// value is kept, though the new version may ignore it.
    KeptObsolete {
        /// Where.
        path: String,
        /// The operator's value.
        value: Value,
    },
    /// Policy `keep`: a change of the vendor's that was not applied.
    NotApplied {
        /// The change the merge would have made.
        change: Box<Change>,
    },
    /// Policy `new`: an operator's value that the vendor's file replaces
    /// (`None`: the operator had removed the key).
    Dropped {
        /// Where.
        path: String,
        /// The operator's value, lost.
        value: Option<Value>,
    },
}

/// A key that both sides changed, differently. The merged document holds
/// the operator's value there, but it must not be written: resolve first.
/// `Debug` masks with [`Masker::portal_default`].
#[derive(Clone, PartialEq)]
pub struct Conflict {
    /// Where (dotted).
    pub path: String,
    /// The installed version's default (`None`: absent).
    pub base: Option<Value>,
    /// The live value (`None`: the operator removed the key).
    pub ours: Option<Value>,
    /// The new version's default (`None`: the vendor removed the key).
    pub theirs: Option<Value>,
}

/// The result of a merge: the document to write, what happened, and the
/// conflicts that forbid writing it.
#[derive(Clone, PartialEq)]
pub struct MergeOutcome {
    /// The merged document (where there are conflicts: the operator's values
    /// there).
    pub merged: Value,
    /// What happened, key by key, in document order.
    pub changes: Vec<Change>,
    /// Keys both sides changed differently; empty for a clean merge.
    pub conflicts: Vec<Conflict>,
}

impl MergeOutcome {
    /// Whether the merged document may be written (no conflicts).
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// For `--json`: `{"changes": [...], "conflicts": [...]}`, every value
    /// masked (the merged document is not included).
    #[must_use]
    pub fn to_json(&self, mask: &Masker) -> Value {
        json!({
            "changes": self.changes.iter().map(|c| c.to_json(mask)).collect::<Vec<_>>(),
            "conflicts": self.conflicts.iter().map(|c| c.to_json(mask)).collect::<Vec<_>>(),
        })
    }
}

impl Change {
    /// The path the change is about (for a rename: the new one).
    #[must_use]
    pub fn path(&self) -> &str {
        match self {
            Change::Added { path, .. }
            | Change::Removed { path, .. }
            | Change::VendorChanged { path, .. }
            | Change::KeptOperator { path, .. }
            | Change::KeptObsolete { path, .. }
            | Change::Dropped { path, .. } => path,
            Change::Renamed { to, .. } => to,
            Change::NotApplied { change } => change.path(),
        }
    }

    /// The kind, snake_case, as in [`Change::to_json`]: `added`, `removed`,
    /// `renamed`, `vendor_changed`, `kept_operator`, `kept_obsolete`,
    /// `not_applied`, `dropped`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Added { .. } => "added",
            Change::Removed { .. } => "removed",
            Change::Renamed { .. } => "renamed",
            Change::VendorChanged { .. } => "vendor_changed",
            Change::KeptOperator { .. } => "kept_operator",
            Change::KeptObsolete { .. } => "kept_obsolete",
            Change::NotApplied { .. } => "not_applied",
            Change::Dropped { .. } => "dropped",
        }
    }

    /// One line for `plan` and `diff-config`, values masked. Values follow
    /// `path = `, so that masking the line again changes nothing.
    #[must_use]
    pub fn describe(&self, mask: &Masker) -> String {
        let sv = |path: &str, v: &Value| show(mask, path, Some(v));
        let line = match self {
            Change::Added { path, value } => format!(
                "new key {} = {} (added by the new version)",
                at(path),
                sv(path, value)
            ),
            Change::Removed { path, value } => format!(
                "removed {} (the new version drops it; the file had the old default {})",
                at(path),
                sv(path, value)
            ),
            Change::Renamed { from, to } => format!(
                "renamed {} -> {} (by the new version; the value moves to the new name)",
                at(from),
                at(to)
            ),
            Change::VendorChanged { path, from, to } => format!(
                "new default {} = {} (was {}; the file had the old default)",
                at(path),
                sv(path, to),
                sv(path, from)
            ),
            Change::KeptOperator {
                path,
                value,
                vendor: None,
            } => format!("kept your {} = {}", at(path), sv(path, value)),
            Change::KeptOperator {
                path,
                value,
                vendor: Some(vendor),
            } => format!(
                "kept your {} = {} (the new version adds it with {})",
                at(path),
                sv(path, value),
                sv(path, vendor)
            ),
            Change::KeptObsolete { path, value } => format!(
                "kept your {} = {} (no longer in the new version's default file; it may be ignored)",
                at(path),
                sv(path, value)
            ),
            Change::NotApplied { change } => format!(
                "not applied (config_merge = \"keep\"): {}",
                change.describe(mask)
            ),
            Change::Dropped {
                path,
                value: Some(value),
            } => format!(
                "dropped your {} = {} (config_merge = \"new\" takes the new version's file)",
                at(path),
                sv(path, value)
            ),
            Change::Dropped { path, value: None } => format!(
                "dropped your removal of {} (config_merge = \"new\" takes the new version's file)",
                at(path)
            ),
        };
        one_line_text(&mask.mask_text(&line, &[]))
    }

    /// For `--json`: `{"kind", "path", ...}` with the values masked
    /// (`value`, `from`/`to`, `vendor`, or `change` for `not_applied`).
    #[must_use]
    pub fn to_json(&self, mask: &Masker) -> Value {
        let m = |path: &str, v: &Value| mask.mask_value(path, v);
        let mut out = Map::new();
        out.insert("kind".to_owned(), json!(self.kind()));
        match self {
            Change::Added { path, value }
            | Change::Removed { path, value }
            | Change::KeptObsolete { path, value } => {
                out.insert("path".to_owned(), json!(path));
                out.insert("value".to_owned(), m(path, value));
            }
            Change::Renamed { from, to } => {
                out.insert("path".to_owned(), json!(to));
                out.insert("from".to_owned(), json!(from));
            }
            Change::VendorChanged { path, from, to } => {
                out.insert("path".to_owned(), json!(path));
                out.insert("from".to_owned(), m(path, from));
                out.insert("to".to_owned(), m(path, to));
            }
            Change::KeptOperator {
                path,
                value,
                vendor,
            } => {
                out.insert("path".to_owned(), json!(path));
                out.insert("value".to_owned(), m(path, value));
                out.insert(
                    "vendor".to_owned(),
                    vendor.as_ref().map_or(Value::Null, |v| m(path, v)),
                );
            }
            Change::NotApplied { change } => {
                out.insert("path".to_owned(), json!(change.path()));
                out.insert("change".to_owned(), change.to_json(mask));
            }
            Change::Dropped { path, value } => {
                out.insert("path".to_owned(), json!(path));
                out.insert(
                    "value".to_owned(),
                    value.as_ref().map_or(Value::Null, |v| m(path, v)),
                );
            }
        }
        Value::Object(out)
    }
}

impl Conflict {
    /// One line: where, the three values (masked), and how to resolve it.
    #[must_use]
    pub fn describe(&self, mask: &Masker) -> String {
        let line = format!(
            "config conflict at {} (installed default {}, yours {}, new default {}); {}",
            at(&self.path),
            show(mask, &self.path, self.base.as_ref()),
            show(mask, &self.path, self.ours.as_ref()),
            show(mask, &self.path, self.theirs.as_ref()),
            self.resolution(),
        );
        one_line_text(&mask.mask_text(&line, &[]))
    }

    /// How to resolve it, in words.
    #[must_use]
    pub fn resolution(&self) -> String {
        let take = match &self.theirs {
            Some(_) => format!(
                "to take the new default, set {} to it in the live file",
                at(&self.path)
            ),
            None => format!(
                "to follow the new version, remove {} from the live file",
                at(&self.path)
            ),
        };
        format!(
            "resolve: {take}; to keep the live file as it is, use config_merge = \"keep\" \
             (then apply the new version's other changes by hand)"
        )
    }

    /// For `--json`: `{"path", "base", "ours", "theirs", "resolve"}`, values
    /// masked, an absent value as `null`.
    #[must_use]
    pub fn to_json(&self, mask: &Masker) -> Value {
        let m = |v: &Option<Value>| {
            v.as_ref()
                .map_or(Value::Null, |v| mask.mask_value(&self.path, v))
        };
        json!({
            "path": self.path,
            "base": m(&self.base),
            "ours": m(&self.ours),
            "theirs": m(&self.theirs),
            "resolve": self.resolution(),
        })
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Change({})", self.to_json(&Masker::portal_default()))
    }
}

impl fmt::Debug for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conflict({})", self.to_json(&Masker::portal_default()))
    }
}

impl fmt::Debug for MergeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = Masker::portal_default();
        f.debug_struct("MergeOutcome")
            .field("merged", &mask.mask_json(&self.merged).to_string())
            .field("changes", &self.changes)
            .field("conflicts", &self.conflicts)
            .finish()
    }
}

/// A path for humans: the root is "the whole file".
fn at(path: &str) -> String {
    if path.is_empty() {
        "the whole file".to_owned()
    } else {
        path.to_owned()
    }
}

/// A value for humans: compact JSON, masked; absent as `(absent)`.
fn show(mask: &Masker, path: &str, v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_owned(),
        Some(v) => {
            let masked = mask.mask_value(path, v);
            serde_json::to_string(&masked).unwrap_or_else(|_| MASK.to_owned())
        }
    }
}

/// Renders a JSON value as the file is written: 2-space pretty + trailing
/// newline; object keys in the value's own order (the live file's, after a
/// merge).
#[must_use]
pub fn render(v: &Value) -> String {
    let mut out = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    out.push('\n');
    out
}

/// Three-way structural merge of JSON objects: base = packaged default of the
/// installed version, ours = the live file, theirs = packaged default of the
/// new version. See the [module documentation](super) for the rules.
#[must_use]
pub fn merge_json(base: &Value, ours: &Value, theirs: &Value) -> MergeOutcome {
    let mut merger = Merger {
        ours_root: ours,
        base_root: base,
        renames: find_renames(base, theirs),
        changes: Vec::new(),
        conflicts: Vec::new(),
    };
    let merged = merger
        .node(&mut Vec::new(), Some(base), Some(ours), Some(theirs))
        .unwrap_or(Value::Null);
    MergeOutcome {
        merged,
        changes: merger.changes,
        conflicts: merger.conflicts,
    }
}

/// The merge under a policy:
///
/// - `merge` ([`Policy::Merge`]): [`merge_json`].
/// - `keep` ([`Policy::Keep`]): the live file as it is; `changes` lists what the
///   vendor changed, as [`Change::NotApplied`]; never a conflict.
/// - `new` ([`Policy::New`]): the vendor's file as it is (the live file is kept with
///   the run's backup); `changes` lists the vendor's changes and every
///   operator value lost ([`Change::Dropped`]); never a conflict.
#[must_use]
pub fn merge_with_policy(
    policy: Policy,
    base: &Value,
    ours: &Value,
    theirs: &Value,
) -> MergeOutcome {
    match policy {
        Policy::Merge => merge_json(base, ours, theirs),
        Policy::Keep => MergeOutcome {
            merged: ours.clone(),
            changes: merge_json(base, base, theirs)
                .changes
                .into_iter()
                .map(|change| Change::NotApplied {
                    change: Box::new(change),
                })
                .collect(),
            conflicts: Vec::new(),
        },
        Policy::New => {
            let mut changes = merge_json(base, base, theirs).changes;
            let merged = merge_json(base, ours, theirs);
            for change in merged.changes {
                match change {
                    Change::KeptOperator { path, value, .. }
                    | Change::KeptObsolete { path, value } => changes.push(Change::Dropped {
                        path,
                        value: Some(value),
                    }),
                    _ => {}
                }
            }
            for conflict in merged.conflicts {
                changes.push(Change::Dropped {
                    path: conflict.path,
                    value: conflict.ours,
                });
            }
            MergeOutcome {
                merged: theirs.clone(),
                changes,
                conflicts: Vec::new(),
            }
        }
    }
}

/// A key the vendor renamed or moved: `from` in `base`, `to` in `theirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rename {
    from: Vec<String>,
    to: Vec<String>,
}

struct Merger<'a> {
    base_root: &'a Value,
    ours_root: &'a Value,
    renames: Vec<Rename>,
    changes: Vec<Change>,
    conflicts: Vec<Conflict>,
}

impl Merger<'_> {
    /// Merges one key (or the root); `None` means absent (on input) or
    /// removed (on output).
    fn node(
        &mut self,
        path: &mut Vec<String>,
        b: Option<&Value>,
        o: Option<&Value>,
        t: Option<&Value>,
    ) -> Option<Value> {
        let all_objects = [b, o, t].iter().flatten().all(|v| v.is_object());
        if !all_objects {
            return self.leaf(path, b, o, t);
        }
        let endpoints = self.has_endpoints_under(path);
        let recurse = match (b, o, t) {
            (_, Some(_), Some(_)) => true,
            (None, None, Some(_)) | (Some(_), Some(_), None) => endpoints,
            (Some(b), None, Some(t)) => endpoints || b != t,
            _ => false,
        };
        if !recurse {
            return self.leaf(path, b, o, t);
        }
        let merged = self.object(
            path,
            b.and_then(Value::as_object),
            o.and_then(Value::as_object),
            t.and_then(Value::as_object),
        );
        if merged.is_empty() && (o.is_none() || t.is_none()) {
            // The vendor removed it and nothing of the operator's is left in
            // it, or the operator had removed it and nothing new arrived.
            None
        } else {
            Some(Value::Object(merged))
        }
    }

    /// The leaf rule: values compared whole.
    fn leaf(
        &mut self,
        path: &[String],
        b: Option<&Value>,
        o: Option<&Value>,
        t: Option<&Value>,
    ) -> Option<Value> {
        let dotted = join(path);
        if o == t {
            return o.cloned();
        }
        if o == b {
            match (b, t) {
                (None, Some(t)) => self.changes.push(Change::Added {
                    path: dotted,
                    value: t.clone(),
                }),
                (Some(b), None) => self.changes.push(Change::Removed {
                    path: dotted,
                    value: b.clone(),
                }),
                (Some(b), Some(t)) => self.changes.push(Change::VendorChanged {
                    path: dotted,
                    from: b.clone(),
                    to: t.clone(),
                }),
                (None, None) => {}
            }
            return t.cloned();
        }
        if t == b {
            if let Some(o) = o {
                self.changes.push(Change::KeptOperator {
                    path: dotted,
                    value: o.clone(),
                    vendor: None,
                });
            }
            return o.cloned();
        }
        match (b, o, t) {
            (None, Some(o), Some(t)) => self.changes.push(Change::KeptOperator {
                path: dotted,
                value: o.clone(),
                vendor: Some(t.clone()),
            }),
            (Some(_), Some(o), None) => self.changes.push(Change::KeptObsolete {
                path: dotted,
                value: o.clone(),
            }),
            _ => self.conflicts.push(Conflict {
                path: dotted,
                base: b.cloned(),
                ours: o.cloned(),
                theirs: t.cloned(),
            }),
        }
        o.cloned()
    }

    /// Merges objects key by key, in the order of [`key_order`].
    fn object(
        &mut self,
        path: &mut Vec<String>,
        b: Option<&Map<String, Value>>,
        o: Option<&Map<String, Value>>,
        t: Option<&Map<String, Value>>,
    ) -> Map<String, Value> {
        let same_parent_sources: Vec<(String, String)> = self
            .renames
            .iter()
            .filter(|r| {
                r.from.len() == path.len() + 1
                    && r.to.len() == path.len() + 1
                    && r.from.starts_with(path)
                    && r.to.starts_with(path)
            })
            .filter_map(|r| Some((r.from.last()?.clone(), r.to.last()?.clone())))
            .collect();
        let order = key_order(b, o, t, &same_parent_sources);
        let mut out = Map::new();
        for key in order {
            path.push(key.clone());
            let value = self.key(path, b, o, t);
            path.pop();
            if let Some(value) = value {
                out.insert(key, value);
            }
        }
        out
    }

    /// One key of an object: a rename's source is dropped (its value moves),
    /// a rename's destination merges with the source's base and live
    /// values.
    fn key(
        &mut self,
        path: &mut Vec<String>,
        b: Option<&Map<String, Value>>,
        o: Option<&Map<String, Value>>,
        t: Option<&Map<String, Value>>,
    ) -> Option<Value> {
        let key = path.last().cloned().unwrap_or_default();
        let (bc, oc, tc) = (
            b.and_then(|m| m.get(&key)),
            o.and_then(|m| m.get(&key)),
            t.and_then(|m| m.get(&key)),
        );
        if let Some(rename) = self.renames.iter().find(|r| r.from == *path)
            && get(self.ours_root, &rename.to).is_none()
        {
            // The value moves to the new name (handled there).
            return None;
        }
        if let Some(rename) = self.renames.iter().find(|r| r.to == *path).cloned() {
            let base_src = get(self.base_root, &rename.from);
            let ours_src = get(self.ours_root, &rename.from);
            let ours = oc.or(ours_src);
            if oc.is_none() && ours_src.is_some() {
                self.changes.push(Change::Renamed {
                    from: join(&rename.from),
                    to: join(&rename.to),
                });
            }
            return self.node(path, base_src, ours, tc);
        }
        self.node(path, bc, oc, tc)
    }

    /// Whether a rename starts or ends strictly under `path`.
    fn has_endpoints_under(&self, path: &[String]) -> bool {
        self.renames.iter().any(|r| {
            (r.from.len() > path.len() && r.from.starts_with(path))
                || (r.to.len() > path.len() && r.to.starts_with(path))
        })
    }
}

/// The order of the merged object's keys: the live file's; a key only the
/// vendor has goes after the key before it in the vendor's file (a renamed
/// key right after its old name); keys only in `base` last.
fn key_order(
    b: Option<&Map<String, Value>>,
    o: Option<&Map<String, Value>>,
    t: Option<&Map<String, Value>>,
    renamed: &[(String, String)],
) -> Vec<String> {
    let mut order: Vec<String> = o.map(|m| m.keys().cloned().collect()).unwrap_or_default();
    if let Some(t) = t {
        let theirs: Vec<&String> = t.keys().collect();
        for (i, key) in theirs.iter().enumerate() {
            if order.contains(key) {
                continue;
            }
            let anchor = renamed
                .iter()
                .find(|(_, to)| to == *key)
                .and_then(|(from, _)| order.iter().position(|k| k == from))
                .or_else(|| {
                    theirs[..i]
                        .iter()
                        .rev()
                        .find_map(|prev| order.iter().position(|k| k == *prev))
                });
            match anchor {
                Some(pos) => order.insert(pos + 1, (*key).clone()),
                None if order.is_empty() => order.push((*key).clone()),
                None => order.insert(0, (*key).clone()),
            }
        }
    }
    if let Some(b) = b {
        for key in b.keys() {
            if !order.contains(key) {
                order.push(key.clone());
            }
        }
    }
    order
}

/// Renames and moves the vendor made between `base` and `theirs`: a key
/// (or object) gone from `base` and one new in `theirs` with an equal value,
///
/// - in the same object under any name, or
/// - anywhere under the same name (case-insensitive),
///
/// matched one-to-one only: a removed key with two candidates, or a new key
/// with two, is no rename. A "weak" value (`null`, a boolean, `0`, `""`,
/// or arrays and objects of only these) is too common to prove anything: it needs the same parent
/// and one name containing the other (`Key` → `SessionKey`). Shallower
/// pairs are taken first; nothing inside or above a pair pairs again.
fn find_renames(base: &Value, theirs: &Value) -> Vec<Rename> {
    let mut removed = Vec::new();
    gone_nodes(base, Some(theirs), &mut Vec::new(), &mut removed);
    let mut added = Vec::new();
    gone_nodes(theirs, Some(base), &mut Vec::new(), &mut added);

    let mut candidates: Vec<(usize, usize)> = Vec::new();
    for (ri, (rp, rv)) in removed.iter().enumerate() {
        for (ai, (ap, av)) in added.iter().enumerate() {
            if rv != av {
                continue;
            }
            let (Some(rname), Some(aname)) = (rp.last(), ap.last()) else {
                continue;
            };
            let (rname, aname) = (rname.to_lowercase(), aname.to_lowercase());
            let same_parent = rp[..rp.len() - 1] == ap[..ap.len() - 1];
            let ok = if is_weak(rv) {
                same_parent && (rname.contains(&aname) || aname.contains(&rname))
            } else {
                same_parent || rname == aname
            };
            if ok {
                candidates.push((ri, ai));
            }
        }
    }
    let count = |pick: fn(&(usize, usize)) -> usize, idx: usize| {
        candidates.iter().filter(|c| pick(c) == idx).count()
    };
    let mut unique: Vec<(usize, usize)> = candidates
        .iter()
        .copied()
        .filter(|&(ri, ai)| count(|c| c.0, ri) == 1 && count(|c| c.1, ai) == 1)
        .collect();
    unique.sort_by_key(|&(ri, ai)| (removed[ri].0.len() + added[ai].0.len(), ri, ai));

    let mut renames: Vec<Rename> = Vec::new();
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    for (ri, ai) in unique {
        let (from, to) = (&removed[ri].0, &added[ai].0);
        if renames
            .iter()
            .any(|r| related(&r.from, from) || related(&r.to, to))
        {
            continue;
        }
        renames.push(Rename {
            from: from.clone(),
            to: to.clone(),
        });
    }
    renames
}

/// The nodes of `a` (object members, at any depth) that `b` does not have:
/// a member missing from `b`'s object, and everything under it. Under a key
/// whose value in `b` is not an object, nothing is collected.
fn gone_nodes<'a>(
    a: &'a Value,
    b: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Value)>,
) {
    let Value::Object(am) = a else {
        return;
    };
    let bm = match b {
        None => None,
        Some(Value::Object(bm)) => Some(bm),
        Some(_) => return,
    };
    for (key, value) in am {
        path.push(key.clone());
        match bm.map(|bm| bm.get(key)) {
            Some(Some(other)) => gone_nodes(value, Some(other), path, out),
            _ => {
                out.push((path.clone(), value));
                gone_nodes(value, None, path, out);
            }
        }
        path.pop();
    }
}

/// `null`, a boolean, `0`, `""`, or an array or object of nothing else.
fn is_weak(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_weak),
        Value::Object(o) => o.values().all(is_weak),
    }
}

fn get<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(root, |v, key| v.as_object().and_then(|m| m.get(key)))
}

fn join(path: &[String]) -> String {
    path.iter()
        .fold(String::new(), |acc, key| child_path(&acc, key))
}
