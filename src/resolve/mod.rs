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
//! the [`Resolver`] asks for. [`resolve`] drives the loop and hands back,
//! for each package to install, the [`Offer`] to download it from:
//!
//! ```no_run
//! # use std::collections::BTreeSet;
//! # use upkeep::resolve::{Offer, PackageInfo, resolve};
//! # use upkeep::version::{Family, PkgVersion};
//! # async fn offered(names: BTreeSet<String>) -> anyhow::Result<Vec<Offer>> { Ok(Vec::new()) }
//! # async fn run() -> anyhow::Result<()> {
//! # let installed: Vec<PackageInfo> = Vec::new();
//! let request = vec![("nginx".to_string(), PkgVersion::deb("1.22.1-9+deb12u1")?)];
//! // `offered`: the entries whose Package is one of the names, or whose
//! // Provides mention one (`Sources::offers`).
//! let (resolution, offers) = resolve(Family::Deb, "amd64", installed, request, offered).await?;
//! for (choice, offer) in resolution.install.iter().zip(&offers) {
//!     println!("{} {}: {} ({})", choice.name, choice.version, choice.reason, offer.candidate.url);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The installed side comes from [`installed_deb`] (dpkg's status file) or
//! [`installed_rpm`] (`rpm -qa --qf` [`RPM_QUERY_FORMAT`]).
//!
//! `tests/resolve_apt.rs` runs the real `apt-get -s` of the test machine on
//! generated repositories and status files, and checks that it installs
//! the same set, scenario by scenario, or that both fail; the departures
//! listed below are asserted there as departures.
//!
//! What the resolver decides, and where it departs from apt:
//!
//! - The requested versions are installed. Every `Depends`/`Pre-Depends`
//!   (rpm: `Requires`) clause of a package being installed is met if one of
//!   its alternatives is met, directly or through a Provide, by a package
//!   being installed or by an installed package that stays. Otherwise a
//!   package is chosen for it as apt's `MarkInstall` chooses: the packages
//!   that meet an alternative (by name, or through a Provide), alternative
//!   by alternative, each ranked as apt ranks providers (installed first,
//!   then the package the relation names, then `Essential: yes`, then
//!   `Protected: yes`, then the higher `Priority`, a package without one
//!   first as in apt); of all of these the ones that upgrade an installed
//!   package come before the ones newly installed, whatever their
//!   alternative (`a | b (>= 2)` with b 1 installed upgrades b). The first
//!   that can be installed is taken: one that conflicts with a package
//!   being installed, or one of whose own dependencies nothing installed or
//!   offered can meet (looked at recursively), is passed over for the next,
//!   as apt's failing `MarkInstall` of it is. When none can be, the first
//!   is taken and its own unmet dependency is the error.
//! - Of each package, its newest offered version that meets the relation
//!   is taken. apt takes only its candidate (the newest) and fails when that
//!   one does not fit (`libx (<< 2)` with 1.5 and 2.1 offered); upkeep also
//!   accepts an older offered version that fits, but never one older than
//!   the installed version: a dependency is not downgraded.
//! - Between packages apt cannot rank (same standing and priority), apt
//!   takes the one its cache met last (the highest internal id, which
//!   follows the order of the indexes); upkeep takes the first by name.
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

/// deb's `Priority`, in apt's order: a provider of a higher priority is
/// preferred (`Required` first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// `required`.
    Required,
    /// `important`.
    Important,
    /// `standard`.
    Standard,
    /// `optional`.
    Optional,
    /// `extra`, and any other word (apt reads an unknown word as `extra`).
    Extra,
}

impl Priority {
    /// Reads the field's value.
    pub fn parse(text: &str) -> Priority {
        match text.trim().to_ascii_lowercase().as_str() {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            _ => Priority::Extra,
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
    /// deb's `Priority` (`None` without the field, and always for rpm).
    pub priority: Option<Priority>,
    /// deb's `Essential: yes`.
    pub essential: bool,
    /// deb's `Protected: yes` (or its older name `Important: yes`).
    pub protected: bool,
}

impl PackageInfo {
    /// A deb package `name` `version` `arch`, its `Multi-Arch`, relation
    /// and ranking fields read through `field` (by their canonical names:
    /// `Multi-Arch`, `Pre-Depends`, `Depends`, `Provides`, `Breaks`,
    /// `Conflicts`, `Priority`, `Essential`, `Protected`, `Important`); an
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
        let yes = |f: &str| field(f).is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
        Ok(PackageInfo {
            priority: field("Priority").map(Priority::parse),
            essential: yes("Essential"),
            protected: yes("Protected") || yes("Important"),
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
