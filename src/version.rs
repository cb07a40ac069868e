//! Package versions, ordered exactly as the package manager orders them, and
//! the product version (semver) they carry.
//!
//! Debian versions (`[epoch:]upstream[-revision]`) are ordered by the
//! `debversion` crate, which implements dpkg's algorithm (epochs, `~`,
//! revisions). The product version is the upstream part, used for upgrade
//! paths and for `--to 2.1.0` matching `2.1.0-1`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A package version with the ordering of its package manager.
#[derive(Clone, Debug)]
pub struct PkgVersion {
    text: String,
    deb: debversion::Version,
}

impl PkgVersion {
    /// Parses a Debian version.
    pub fn deb(text: &str) -> Result<PkgVersion, VersionError> {
        check_deb_syntax(text.trim()).map_err(|reason| VersionError {
            text: text.to_string(),
            reason: reason.to_string(),
        })?;
        let deb = debversion::Version::from_str(text.trim()).map_err(|e| VersionError {
            text: text.to_string(),
            reason: format!("{e:?}"),
        })?;
        Ok(PkgVersion {
            text: text.trim().to_string(),
            deb,
        })
    }

    /// The version exactly as the package metadata writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The upstream part: no epoch, no revision (`1:2.1.0-3` → `2.1.0`).
    pub fn upstream(&self) -> &str {
        upstream_of(&self.text)
    }

    /// The product version as semver, when the upstream part is one
    /// (`2.1.0~rc1` reads as `2.1.0-rc1`).
    pub fn product(&self) -> Option<semver::Version> {
        semver::Version::parse(&self.upstream().replacen('~', "-", 1)).ok()
    }

    /// Whether `wanted` (from `--to`) names this version: the full package
    /// version, or the product version it starts with.
    pub fn matches(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        if wanted == self.text {
            return true;
        }
        if let Ok(w) = PkgVersion::deb(wanted)
            && w == *self
        {
            return true;
        }
        self.upstream() == wanted
    }
}

/// dpkg's syntax rules, which the ordering crate does not enforce: a numeric
/// epoch, an upstream part starting with a digit, and only the characters
/// dpkg allows.
fn check_deb_syntax(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("empty version");
    }
    let rest = match text.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err("epoch is not a number");
            }
            rest
        }
        None => text,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("version does not start with a digit");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
    if !upstream.chars().all(ok) {
        return Err("invalid character in version");
    }
    if let Some(r) = revision
        && (r.is_empty()
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c)))
    {
        return Err("invalid revision");
    }
    Ok(())
}

/// The upstream part of a Debian version string.
pub fn upstream_of(text: &str) -> &str {
    let no_epoch = match text.split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => text,
    };
    match no_epoch.rsplit_once('-') {
        Some((upstream, _revision)) => upstream,
        None => no_epoch,
    }
}

impl PartialEq for PkgVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PkgVersion {}

impl PartialOrd for PkgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.deb.cmp(&other.deb)
    }
}

impl fmt::Display for PkgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A version string the package manager would not accept.
#[derive(Debug, thiserror::Error)]
#[error("invalid package version {text:?}: {reason}")]
pub struct VersionError {
    /// The text.
    pub text: String,
    /// Why.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PkgVersion {
        PkgVersion::deb(s).unwrap()
    }

    #[test]
    fn dpkg_ordering_basics() {
        assert!(v("1.0.0-1") < v("1.1.0-1"));
        assert!(v("2.0.1-1") < v("2.1.0-1"));
        assert!(v("1.10.0-1") > v("1.9.0-1"));
        assert!(v("2.1.0~rc1-1") < v("2.1.0-1"));
        assert!(v("1:1.0-1") > v("9.9-1"));
        assert!(v("1.0-2") > v("1.0-1"));
        assert_eq!(v("1.0-1"), v("0:1.0-1"));
    }

    #[test]
    fn upstream_and_product_versions() {
        assert_eq!(v("1:2.1.0-3").upstream(), "2.1.0");
        assert_eq!(v("2.1.0").upstream(), "2.1.0");
        assert_eq!(v("2.1.0-1").product(), Some(semver::Version::new(2, 1, 0)));
        assert_eq!(
            v("2.1.0~rc1-1").product(),
            Some(semver::Version::parse("2.1.0-rc1").unwrap())
        );
        assert_eq!(v("20240101-1").product(), None);
    }

    #[test]
    fn to_matches_full_or_product_version() {
        assert!(v("2.1.0-1").matches("2.1.0"));
        assert!(v("2.1.0-1").matches("2.1.0-1"));
        assert!(v("0:2.1.0-1").matches("2.1.0-1"));
        assert!(!v("2.1.0-1").matches("2.1"));
        assert!(!v("2.1.0-1").matches("2.1.0-2"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(PkgVersion::deb("").is_err());
        assert!(PkgVersion::deb("abc:def").is_err());
        assert!(PkgVersion::deb("a1.0").is_err());
        assert!(PkgVersion::deb("1.0 beta").is_err());
        assert!(PkgVersion::deb("1.0-").is_err());
        assert!(PkgVersion::deb("1:2.0-a-b").is_ok());
    }
}
