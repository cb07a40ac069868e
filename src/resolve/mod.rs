//! Dependency resolution: which packages an upgrade installs besides the
//! product's own, decided as `apt-get install --no-install-recommends A=v
//! B=v` (or `dnf install A-v B-v`) would decide it, before anything is
//! downloaded.
//!
//! The logic is pure: the caller supplies what is installed
//! ([`PackageInfo`]s from dpkg's status file or `rpm -qa`), the request (the
//! product's packages at the candidate version) and, batch by batch, what
//! the target's repositories offer. Distribution indexes are large (Debian
//! main: 63,000 packages), so the caller streams them and keeps only what
//! the [`Resolver`] asks for:
//!
//! ```no_run
//! # use std::collections::BTreeSet;
//! # use upkeep::resolve::{Outcome, PackageInfo, Resolver};
//! # use upkeep::version::{Family, PkgVersion};
//! # fn offered(names: &BTreeSet<String>) -> Vec<PackageInfo> { Vec::new() }
//! # fn main() -> anyhow::Result<()> {
//! # let installed = Vec::new();
//! let request = vec![("nginx".to_string(), PkgVersion::deb("1.22.1-9+deb12u1")?)];
//! let mut resolver = Resolver::new(Family::Deb, "amd64", installed, request);
//! let resolution = loop {
//!     match resolver.run()? {
//!         // Entries whose Package is one of `names`, or whose Provides
//!         // mention one (e.g. `AptRepository::entries_for`).
//!         Outcome::Need(names) => resolver.add(offered(&names)),
//!         Outcome::Done(resolution) => break resolution,
//!     }
//! };
//! for choice in &resolution.install {
//!     println!("{} {}: {}", choice.name, choice.version, choice.reason);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What the resolver decides, and where it departs from apt:
//!
//! - The requested versions are installed. Every `Depends`/`Pre-Depends`
//!   (rpm: `Requires`) clause of a package being installed is met if one of
//!   its alternatives is met, directly or through a Provide, by a package
//!   being installed or by an installed package that stays. Otherwise the
//!   first alternative that can be met is chosen, as apt does: the newest
//!   version of a real package of that name that satisfies it (apt takes
//!   only its candidate, the newest; upkeep also accepts an older offered
//!   version that fits, but never one older than the installed version: a
//!   dependency is not downgraded), else a package that provides it (the
//!   first by name, newest version first). What is chosen is checked in
//!   turn. There is no backtracking: a choice whose own dependencies cannot
//!   be met is an error, as in apt.
//! - An installed package that stays is checked against what changes:
//!   a dependency it had met that an upgraded package no longer meets (a
//!   reverse dependency: `nginx (= old)`, `nginx-abi-1.22.1-7`), or a
//!   `Breaks`/`Conflicts` between it and a package being installed (in
//!   either direction). It is then upgraded to the newest offered version
//!   that fixes this, as apt does; when none does, it is an error naming
//!   both (apt would propose removing it; upkeep never removes packages).
//! - `Recommends`, `Suggests` and `Enhances` (rpm: weak dependencies) are
//!   ignored, as with `--no-install-recommends`. rpm's `Obsoletes` are
//!   ignored too: rpm applies them itself.
//! - rpm's `rpmlib(...)` and file requirements are left to rpm (see
//!   [`rpm_ignored`]), as are rich dependencies that are not plain `and`/
//!   `or` (see [`rpm_requirement`]).
//! - Architectures (deb): offered packages must be the host architecture
//!   or `all`. An unqualified relation is met by a package of the depending
//!   package's architecture, of `all`, or `Multi-Arch: foreign` of any;
//!   `:any` by a `Multi-Arch: allowed` package of any architecture (dpkg's
//!   rule); `:native` by the host's architecture; `:ARCH` by that
//!   architecture. Installing a package replaces the installed instances of
//!   its name of the host architecture or `all`; instances of other
//!   architectures stay (the `Multi-Arch: same` rule that co-installed
//!   instances share one version is not enforced here: dpkg enforces it).
//!   rpm has no qualifiers; its offered packages are the host architecture
//!   or `noarch`.
//! - A package never conflicts with, or breaks, itself or the version it
//!   replaces (dpkg's rule for `Conflicts: x` + `Provides: x`).
//!
//! Errors are [`ResolveError`]s, one line each naming the package and the
//! relation.

mod driver;
mod installed;
mod relation;
mod resolver;
#[cfg(test)]
mod tests;

use anyhow::{Context, anyhow};

pub use driver::resolve;
pub use installed::{RPM_QUERY_FORMAT, installed_deb, installed_rpm};
pub use relation::{
    Op, Relation, clause_text, parse_deb_relations, rpm_ignored, rpm_relation, rpm_requirement,
};
pub use resolver::{Choice, Outcome, Resolution, ResolveError, Resolver};

use crate::version::PkgVersion;

/// deb's `Multi-Arch` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MultiArch {
    /// `no`, or no field (and always for rpm).
    #[default]
    No,
    /// `same`: co-installable with its other architectures.
    Same,
    /// `foreign`: meets unqualified dependencies of every architecture.
    Foreign,
    /// `allowed`: meets `:any` dependencies of every architecture.
    Allowed,
}

impl MultiArch {
    /// Reads the field's value; anything unknown counts as `no`.
    pub fn parse(text: &str) -> MultiArch {
        match text.trim() {
            "same" => MultiArch::Same,
            "foreign" => MultiArch::Foreign,
            "allowed" => MultiArch::Allowed,
            _ => MultiArch::No,
        }
    }
}

/// One version of a package, installed or offered, with the relations the
/// resolver reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Its version (the family of the package manager).
    pub version: PkgVersion,
    /// Its architecture (`amd64`, `all`, `x86_64`, `noarch`).
    pub arch: String,
    /// deb's `Multi-Arch` (always [`MultiArch::No`] for rpm).
    pub multi_arch: MultiArch,
    /// Dependency clauses: deb `Pre-Depends` then `Depends`; rpm
    /// `Requires` (without the ignored ones).
    pub depends: Vec<Vec<Relation>>,
    /// What it provides (rpm: including its own `name = EVR`).
    pub provides: Vec<Relation>,
    /// deb `Breaks` (none for rpm).
    pub breaks: Vec<Relation>,
    /// deb or rpm `Conflicts`.
    pub conflicts: Vec<Relation>,
}

impl PackageInfo {
    /// A deb package `name` `version` `arch`, its `Multi-Arch` and relation
    /// fields read through `field` (by their canonical names: `Multi-Arch`,
    /// `Pre-Depends`, `Depends`, `Provides`, `Breaks`, `Conflicts`); an
    /// error names the package and the field.
    pub fn deb<'f>(
        name: &str,
        version: PkgVersion,
        arch: &str,
        field: impl Fn(&str) -> Option<&'f str>,
    ) -> anyhow::Result<PackageInfo> {
        let relations = |f: &str| -> anyhow::Result<Vec<Vec<Relation>>> {
            match field(f) {
                None => Ok(Vec::new()),
                Some(text) => parse_deb_relations(text)
                    .with_context(|| format!("{name} {version}: {f} field")),
            }
        };
        let flat = |f: &str| -> anyhow::Result<Vec<Relation>> {
            Ok(relations(f)?.into_iter().flatten().collect())
        };
        let mut depends = relations("Pre-Depends")?;
        depends.extend(relations("Depends")?);
        Ok(PackageInfo {
            name: name.to_string(),
            arch: arch.to_string(),
            multi_arch: field("Multi-Arch").map_or(MultiArch::No, MultiArch::parse),
            depends,
            provides: flat("Provides")?,
            breaks: flat("Breaks")?,
            conflicts: flat("Conflicts")?,
            version,
        })
    }

    /// A deb package from one deb822 paragraph (a Packages index entry, a
    /// dpkg status entry): `Package`, `Version`, `Architecture` and the
    /// fields [`PackageInfo::deb`] reads. Field names are matched without
    /// regard to case; folded (multi-line) values are read whole.
    pub fn from_deb_paragraph(text: &str) -> anyhow::Result<PackageInfo> {
        let need = |f: &str| {
            deb_field(text, f)
                .map(str::trim)
                .ok_or_else(|| anyhow!("a paragraph without a {f} field"))
        };
        let name = need("Package")?;
        let version = PkgVersion::deb(need("Version")?).with_context(|| name.to_string())?;
        let arch = need("Architecture").with_context(|| name.to_string())?;
        PackageInfo::deb(name, version, arch, |f| deb_field(text, f))
    }
}

/// The value of field `name` in a deb822 paragraph, with its continuation
/// lines (still folded: a relation parser reads newlines as spaces).
pub fn deb_field<'t>(paragraph: &'t str, name: &str) -> Option<&'t str> {
    let mut at = 0;
    let mut lines = paragraph.split_inclusive('\n');
    for line in lines.by_ref() {
        let start = at;
        at += line.len();
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, _)) = line.split_once(':') else {
            continue;
        };
        if !key.eq_ignore_ascii_case(name) {
            continue;
        }
        let value_start = start + key.len() + 1;
        let mut end = at;
        for next in paragraph[at..].split_inclusive('\n') {
            if !next.starts_with([' ', '\t']) || next.trim().is_empty() {
                break;
            }
            end += next.len();
        }
        return Some(paragraph[value_start..end].trim());
    }
    None
}

/// A package version a repository offers: where to get it, and its
/// relations for the [`Resolver`].
#[derive(Clone, Debug)]
pub struct Offer {
    /// Download location, size and SHA-256.
    pub candidate: crate::repo::Candidate,
    /// Name, version, architecture and relations.
    pub info: PackageInfo,
}
