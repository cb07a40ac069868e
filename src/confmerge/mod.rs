//! Config files across an upgrade: the structural three-way merge of JSON
//! configs such as `portal.conf`, unified diffs of any text config, and the
//! masking that keeps secrets out of both.
//!
//! - [`json`]: [`merge_json`], [`merge_with_policy`], [`render`] and what
//!   they report ([`MergeOutcome`], [`Change`], [`Conflict`]);
//! - [`diff`]: [`unified_diff`];
//! - [`mask`]: [`Masker`], which knows the secret keys and the passwords
//!   inside connection strings.
//!
//! Nothing here reads or writes files: callers hand in the three documents
//! (`base` from the installed version's cached package, `ours` the live
//! file, `theirs` from the new package) and write [`render`]'s text
//! atomically themselves.
//!
//! # Merge semantics
//!
//! `base` = the packaged default of the installed version, `ours` = the live
//! file, `theirs` = the packaged default of the new version. Paths are dotted
//! (`Database.ConnectionString`); keys compare exactly (case matters).
//!
//! - **Objects recurse**, key by key, over the union of keys. Everything
//!   else is a leaf compared whole: strings, numbers, booleans, `null` and
//!   **arrays** (`CORS.AllowedOrigins` is one value). A **type change**
//!   (`"fs"` → `{...}`, `1` → `1.0`) is a change like any other. A root
//!   that is not an object follows the leaf rule.
//! - **Leaf rule** (a missing key counts as a value, "absent"):
//!   - `ours == theirs`: kept as is — nobody changed it, or both made the
//!     same change;
//!   - only the vendor changed it (`ours == base`): the vendor's value.
//!     [`Change::Added`] for a key new in `theirs`, [`Change::VendorChanged`]
//!     for a new default, [`Change::Removed`] for a key the vendor dropped;
//!   - only the operator changed it (`theirs == base`): the operator's value,
//!     [`Change::KeptOperator`] (a key the operator removed stays removed,
//!     a key the operator added stays);
//!   - the vendor **removed** a key the operator had **changed**: the
//!     operator's value is kept and reported as [`Change::KeptObsolete`], not
//!     a conflict — the product ignores keys it does not know (unknown legacy
//!     keys occur in the wild), and dropping the value would lose the
//!     operator's work;
//!   - both **added** the same key with different values: the operator's
//!     value is kept ([`Change::KeptOperator`] with the vendor's value) —
//!     there was no common value to diverge from, and an operator who set a
//!     key the new version needs, before upgrading, meant it;
//!   - otherwise both changed it differently — including the operator having
//!     **removed** a key whose default the vendor changed: a [`Conflict`].
//!     The merged document keeps the operator's value there, but the caller
//!     must not write it: `plan` reports the conflict and `upgrade` is
//!     blocked. [`Conflict::describe`] says where, the three values (masked)
//!     and how to resolve: set the key to the new default in the live file
//!     (the merge then takes it), or keep the live file with
//!     `config_merge = "keep"`.
//! - **Objects on some sides only**: an object the vendor added arrives whole
//!   ([`Change::Added`]); one the vendor removed goes if the operator left it
//!   at its default, else stays whole ([`Change::KeptObsolete`]); one both
//!   added is merged key by key; one the operator removed while the vendor
//!   changed something inside it gives a conflict per changed key (keys the
//!   vendor added inside it arrive). An object left empty by a merge is
//!   removed when the vendor or the operator had removed it, and kept as
//!   `{}` otherwise.
//! - **Renames and moves** are found by comparing `base` with `theirs`: a key
//!   (or whole object) gone from `base` and a key new in `theirs` with an
//!   **equal** value, either in the same object under any name
//!   (`Theming.Path` → `Theming.Directory`) or under the same name anywhere
//!   (`Server.Port` → `Listen.Port`, `Hostport` → `HostPort`). The match
//!   must be one-to-one; a weak value (`""`, `0`, `null`, a boolean, or an
//!   array or object of only these) also needs the same object and one name
//!   containing the other.
//!   The destination is then merged by the leaf rule with the source's
//!   `base` and `ours` values: the operator's value moves to the new name
//!   ([`Change::Renamed`], plus [`Change::KeptOperator`] when it differs
//!   from the default), the old name goes, and the key takes the old name's
//!   place in the file. If the live file already has the new name, it is
//!   used and the old name is treated as removed by the vendor. A rename
//!   that also changes the default is seen as a removal plus an addition
//!   (the operator's old key then stays, reported as
//!   [`Change::KeptObsolete`]).
//! - **Key order**: the live file's. A key the vendor added goes right after
//!   the key before it in the vendor's file (at the top if none); a renamed
//!   key where its old name was. This needs `serde_json`'s
//!   `preserve_order` feature; without it keys come out sorted.
//!
//! # Policies
//!
//! [`merge_with_policy`] applies `config_merge`:
//!
//! - `merge` (the default): the merge above;
//! - `keep`: the live file stays exactly as it is; the vendor's changes are
//!   reported as [`Change::NotApplied`]; never a conflict (required keys the
//!   new version needs are then the preflight's business);
//! - `new`: the vendor's new default file replaces the live file, like
//!   `dpkg --force-confnew`: **every** operator value is dropped, secrets
//!   included (the `LicenseKey` too: the product may not start until it is
//!   set again). Each lost value is reported as [`Change::Dropped`]; the
//!   previous file is in the run's backup. Never a conflict.
//!
//! # Secrets
//!
//! See [`mask`]. Every `describe`, `to_json` and `Debug` of these types
//! masks; only the fields themselves (and `merged`, which is written to the
//! config file) hold values in clear.

pub mod diff;
pub mod json;
pub mod mask;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use diff::unified_diff;
pub use json::{Change, Conflict, MergeOutcome, merge_json, merge_with_policy, render};
pub use mask::{MASK, Masker};

/// What to do with a JSON config file the new version's package changes
/// (`config_merge = "merge" | "keep" | "new"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Three-way merge: the operator's values kept, the vendor's new and
    /// renamed keys merged in; a conflict blocks the upgrade.
    #[default]
    Merge,
    /// Keep the live file as it is.
    Keep,
    /// Take the new version's default file; the operator's values are
    /// dropped (the old file stays in the backup).
    New,
}

impl Policy {
    /// The name in the configuration: `merge`, `keep` or `new`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Merge => "merge",
            Policy::Keep => "keep",
            Policy::New => "new",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `config_merge` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown config_merge {0:?}: expected \"merge\", \"keep\" or \"new\"")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Policy, UnknownPolicy> {
        match s {
            "merge" => Ok(Policy::Merge),
            "keep" => Ok(Policy::Keep),
            "new" => Ok(Policy::New),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}
