//! Package versions, ordered exactly as the package manager orders them, and
//! the product version (semver) they carry.
//!
//! Two families exist, one per package manager:
//!
//! - **Debian** (`[epoch:]upstream[-revision]`): parsed with the rules of
//!   dpkg's `parseversion()` and ordered with dpkg's own algorithm (numeric
//!   epoch, then `verrevcmp()` on the upstream part and on the revision; `~`
//!   sorts before everything, even the end of the string). The algorithm is
//!   implemented here rather than taken from the `debversion` crate, which
//!   disagrees with dpkg when one side runs out where the other has a zero
//!   (`1.0a` vs `1.0a0`, `1.` vs `1.0`: dpkg says equal, the crate "less").
//! - **RPM** (`[epoch:]version[-release]`): the epoch is a number (missing
//!   means 0), version and release are compared with rpm's `rpmvercmp()`
//!   (via the `rpm-version` crate; `~` sorts before everything, `^` after
//!   the base version but before anything else appended). A missing release
//!   sorts before every release, as `rpm.labelCompare()` does.
//!
//! Both orderings are checked against the real tools (dpkg, APT's
//! `apt_pkg`, rpm's `labelCompare`) by the `version_diff` test.
//!
//! The product version is the upstream (Debian) or version (RPM) part, used
//! for upgrade paths and for `--to 2.1.0` matching `2.1.0-1`.

use std::cmp::Ordering;
use std::fmt;

/// The package manager whose version rules apply.
///
/// Ordered `Deb` before `Rpm`: comparing versions of different families is
/// a programming error, but it orders by family first instead of panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// dpkg / APT (`.deb`).
    Deb,
    /// rpm / YUM / DNF (`.rpm`).
    Rpm,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Deb => "deb",
            Family::Rpm => "rpm",
        })
    }
}

/// A package version with the ordering of its package manager.
///
/// `Eq` and `Ord` are the package manager's: `1.0-1` equals `0:1.0-1`, and
/// for RPM `1.0` equals `1.00`. Versions of different families are never
/// equal and order by [`Family`] first.
#[derive(Clone, Debug)]
pub struct PkgVersion {
    text: String,
    parts: Parts,
}

#[derive(Clone, Debug)]
enum Parts {
    Deb {
        /// At most `i32::MAX`, as dpkg requires.
        epoch: u32,
        upstream: String,
        /// Empty when absent, which dpkg orders like `0`.
        revision: String,
    },
    Rpm {
        /// Missing means 0; rpm stores epochs as 32-bit unsigned numbers.
        epoch: u32,
        version: String,
        /// `None` when absent: sorts before every release.
        release: Option<String>,
    },
}

impl PkgVersion {
    /// Parses a version of the given family (see [`PkgVersion::deb`] and
    /// [`PkgVersion::rpm`]).
    pub fn parse(family: Family, text: &str) -> Result<PkgVersion, VersionError> {
        match family {
            Family::Deb => PkgVersion::deb(text),
            Family::Rpm => PkgVersion::rpm(text),
        }
    }

    /// Parses a Debian version, `[epoch:]upstream[-revision]`, with dpkg's
    /// rules: an epoch as `strtol()` reads it (optional sign, at most
    /// `i32::MAX`, not negative), an upstream part that starts with a digit
    /// and holds only `A-Za-z0-9.+~-:` (`-` only with a revision, `:` only
    /// with an epoch), a non-empty revision of `A-Za-z0-9.+~` after the last
    /// `-`. Surrounding whitespace is ignored; whitespace inside is an error.
    /// Versions dpkg only warns about (such as `a1`) are errors here.
    pub fn deb(text: &str) -> Result<PkgVersion, VersionError> {
        let trimmed = text.trim();
        let parts = parse_deb(trimmed).map_err(|reason| VersionError {
            text: text.to_string(),
            reason: reason.to_string(),
        })?;
        Ok(PkgVersion {
            text: trimmed.to_string(),
            parts,
        })
    }

    /// Parses an RPM version as `rpm -q --qf '%{EVR}'` prints it:
    /// `[epoch:]version[-release]` (`2.1.0-1`, `1:2.1.0-1.el9`,
    /// `2.1.0~rc1-1`, `2.1.0^git1-1`, or just `2.1.0`).
    ///
    /// The epoch is a decimal number up to `u32::MAX` (leading zeros are
    /// fine; a missing epoch is 0). Version and release are non-empty, hold
    /// only `A-Za-z0-9._+~^` (the characters rpmbuild accepts) and no `..`;
    /// so there is at most one `-`, and `:` only after the epoch.
    /// Surrounding whitespace is ignored; whitespace inside is an error.
    pub fn rpm(text: &str) -> Result<PkgVersion, VersionError> {
        let trimmed = text.trim();
        let err = |reason: String| VersionError {
            text: text.to_string(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(err("empty version".to_string()));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(err("version has embedded spaces".to_string()));
        }
        let (epoch, rest) = match trimmed.split_once(':') {
            Some((epoch, rest)) => (parse_rpm_epoch(epoch).map_err(err)?, rest),
            None => (0, trimmed),
        };
        let (version, release) = match rest.split_once('-') {
            Some((version, release)) => (version, Some(release)),
            None => (rest, None),
        };
        check_rpm_field(version, "version").map_err(err)?;
        if let Some(release) = release {
            check_rpm_field(release, "release").map_err(err)?;
        }
        Ok(PkgVersion {
            text: trimmed.to_string(),
            parts: Parts::Rpm {
                epoch,
                version: version.to_string(),
                release: release.map(str::to_string),
            },
        })
    }

    /// Builds an RPM version from the parts YUM/DNF metadata gives
    /// separately (`<version epoch="0" ver="2.1.0" rel="1.el9"/>`).
    ///
    /// Each part is trimmed; an empty epoch or release counts as absent.
    /// The parts obey the rules of [`PkgVersion::rpm`]. The text
    /// ([`as_str`](PkgVersion::as_str), `Display`) is then `E:V-R`, written
    /// the way DNF prints it: `E:` only when the epoch is not zero, `-R`
    /// only when there is a release (`2.1.0-1`, `1:2.1.0-1.el9`).
    pub fn rpm_parts(
        epoch: Option<&str>,
        version: &str,
        release: Option<&str>,
    ) -> Result<PkgVersion, VersionError> {
        let epoch = epoch.map(str::trim).filter(|e| !e.is_empty());
        let version = version.trim();
        let release = release.map(str::trim).filter(|r| !r.is_empty());
        let err = |reason: String| VersionError {
            text: evr_text(epoch, version, release),
            reason,
        };
        let epoch = match epoch {
            Some(e) => parse_rpm_epoch(e).map_err(err)?,
            None => 0,
        };
        check_rpm_field(version, "version").map_err(err)?;
        if let Some(r) = release {
            check_rpm_field(r, "release").map_err(err)?;
        }
        let shown_epoch = (epoch != 0).then(|| epoch.to_string());
        let text = evr_text(shown_epoch.as_deref(), version, release);
        Ok(PkgVersion {
            text,
            parts: Parts::Rpm {
                epoch,
                version: version.to_string(),
                release: release.map(str::to_string),
            },
        })
    }

    /// The package manager whose rules this version follows.
    pub fn family(&self) -> Family {
        match self.parts {
            Parts::Deb { .. } => Family::Deb,
            Parts::Rpm { .. } => Family::Rpm,
        }
    }

    /// The version exactly as the package metadata writes it (trimmed; for
    /// [`PkgVersion::rpm_parts`], the `E:V-R` text built from the parts).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The upstream part: no epoch, no revision or release
    /// (`1:2.1.0-3` → `2.1.0`; for RPM the `%{VERSION}`).
    pub fn upstream(&self) -> &str {
        match &self.parts {
            Parts::Deb { upstream, .. } => upstream,
            Parts::Rpm { version, .. } => version,
        }
    }

    /// The product version as semver, when the upstream part is one.
    ///
    /// The first `~` reads as semver's pre-release `-` (`2.1.0~rc1` →
    /// `2.1.0-rc1`); for RPM the first `^` reads as build metadata `+`
    /// (`2.1.0^git1` → `2.1.0+git1`). Anything semver rejects gives `None`.
    pub fn product(&self) -> Option<semver::Version> {
        let text = self.upstream().replacen('~', "-", 1);
        let text = match self.family() {
            Family::Deb => text,
            Family::Rpm => text.replacen('^', "+", 1),
        };
        semver::Version::parse(&text).ok()
    }

    /// Whether `wanted` (from `--to`) names this version: the full package
    /// version (of the same family, so `0:2.1.0-1` names `2.1.0-1`), or the
    /// product version it starts with (`2.1.0` names `2.1.0-1`), or the
    /// full version without its epoch (`7.0.15-1~deb12u1` names
    /// `5:7.0.15-1~deb12u1`; the caller refuses a name that several
    /// versions answer to).
    pub fn matches(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        if wanted == self.text {
            return true;
        }
        if self.text.split_once(':').is_some_and(|(epoch, rest)| {
            epoch.bytes().all(|b| b.is_ascii_digit()) && rest == wanted
        }) {
            return true;
        }
        if let Ok(w) = PkgVersion::parse(self.family(), wanted)
            && w == *self
        {
            return true;
        }
        self.upstream() == wanted
    }
}

/// `E:V-R`, with `E:` and `-R` only when given.
fn evr_text(epoch: Option<&str>, version: &str, release: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(e) = epoch {
        text.push_str(e);
        text.push(':');
    }
    text.push_str(version);
    if let Some(r) = release {
        text.push('-');
        text.push_str(r);
    }
    text
}

/// dpkg's `parseversion()`, on text already trimmed.
fn parse_deb(text: &str) -> Result<Parts, &'static str> {
    if text.is_empty() {
        return Err("version string is empty");
    }
    if text.contains(char::is_whitespace) {
        return Err("version string has embedded spaces");
    }
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) => {
            let epoch = parse_deb_epoch(epoch)?;
            if rest.is_empty() {
                return Err("nothing after colon in version number");
            }
            (epoch, rest)
        }
        None => (0, text),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err("revision number is empty"),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err("version number is empty");
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("version number does not start with a digit");
    }
    if !upstream
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-+~:".contains(c))
    {
        return Err("invalid character in version number");
    }
    if !revision
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
    {
        return Err("invalid character in revision number");
    }
    Ok(Parts::Deb {
        epoch,
        upstream: upstream.to_string(),
        revision: revision.to_string(),
    })
}

/// A Debian epoch as dpkg reads it with `strtol()`: an optional sign, then
/// decimal digits up to the colon; not negative, at most `i32::MAX`.
fn parse_deb_epoch(text: &str) -> Result<u32, &'static str> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("epoch in version is empty");
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("epoch in version is not number");
    }
    let value = decimal_u32(digits);
    if negative && value != Some(0) {
        return Err("epoch in version is negative");
    }
    match value {
        Some(v) if v <= i32::MAX as u32 => Ok(v),
        _ => Err("epoch in version is too big"),
    }
}

/// An RPM epoch: decimal digits, at most `u32::MAX`.
fn parse_rpm_epoch(text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("epoch is empty".to_string());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("epoch {text:?} is not a number"));
    }
    decimal_u32(text).ok_or_else(|| format!("epoch {text:?} is too big"))
}

/// The value of a string of ASCII digits, if it fits in a `u32`.
fn decimal_u32(digits: &str) -> Option<u32> {
    let significant = digits.trim_start_matches('0');
    if significant.len() > 10 {
        return None;
    }
    if significant.is_empty() {
        return Some(0);
    }
    significant.parse().ok()
}

/// rpmbuild's rules for a version or a release: non-empty, only
/// `A-Za-z0-9._+~^`, no `..`.
fn check_rpm_field(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "._+~^".contains(c)))
    {
        return Err(format!("invalid character {c:?} in {what}"));
    }
    if text.contains("..") {
        return Err(format!("\"..\" in {what}"));
    }
    Ok(())
}

/// The upstream part of a Debian version string (`1:2.1.0-3` → `2.1.0`),
/// without validating it.
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

/// dpkg's character weight in the non-digit parts: `~` before the end of
/// the string (and before digits), then letters, then everything else.
fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp()`: alternating non-digit parts (compared character
/// by character with [`dpkg_order`]) and digit parts (compared as numbers
/// of any length).
fn dpkg_verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (dpkg_order(a.get(i).copied()), dpkg_order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit_at(a, i) && digit_at(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit_at(a, i) {
            return Ordering::Greater;
        }
        if digit_at(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// rpm's `rpmvercmp()` on one version or release string.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    rpm_version::Evr::new("0", a, "").cmp(&rpm_version::Evr::new("0", b, ""))
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
        match (&self.parts, &other.parts) {
            (
                Parts::Deb {
                    epoch: e1,
                    upstream: u1,
                    revision: r1,
                },
                Parts::Deb {
                    epoch: e2,
                    upstream: u2,
                    revision: r2,
                },
            ) => e1
                .cmp(e2)
                .then_with(|| dpkg_verrevcmp(u1, u2))
                .then_with(|| dpkg_verrevcmp(r1, r2)),
            (
                Parts::Rpm {
                    epoch: e1,
                    version: v1,
                    release: r1,
                },
                Parts::Rpm {
                    epoch: e2,
                    version: v2,
                    release: r2,
                },
            ) => e1
                .cmp(e2)
                .then_with(|| rpmvercmp(v1, v2))
                .then_with(|| match (r1, r2) {
                    (Some(r1), Some(r2)) => rpmvercmp(r1, r2),
                    (r1, r2) => r1.is_some().cmp(&r2.is_some()),
                }),
            _ => self.family().cmp(&other.family()),
        }
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

    fn r(s: &str) -> PkgVersion {
        PkgVersion::rpm(s).unwrap()
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
    fn dpkg_tricky_cases() {
        // Each checked against dpkg --compare-versions (see tests/version_diff).
        assert!(v("1.0~rc1") < v("1.0"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("2.0.0~~") < v("2.0.0~"));
        assert!(v("1.0~") < v("1.0"));
        assert!(v("1.0") < v("1.0a"));
        assert!(v("1.0a") < v("1.0.1"));
        assert!(v("1.0") < v("1.0.0"));
        assert!(v("1.0") < v("1.0+b1"));
        assert!(v("1.0a") < v("1.0+"));
        assert!(v("1.0Z") < v("1.0a"));
        assert_eq!(v("1.001"), v("1.1"));
        assert!(v("1:0.1") > v("2.0"));
        assert!(v("1.0-1") < v("1.0-1.1"));
        assert_eq!(v("1.0"), v("1.0-0"));
        assert_eq!(v("1.0a"), v("1.0a0"));
        assert!(v("1.0a") > v("1.0a0~"));
        assert!(v("1.0-a") > v("1.0-a0~"));
        assert_eq!(v("1."), v("1.0"));
        assert_eq!(v("01:1.0"), v("1:1.0"));
        assert_eq!(v("+1:1.0"), v("1:1.0"));
        assert_eq!(v("-0:1.0"), v("1.0"));
        assert!(v("1.0-0~") < v("1.0"));
        assert!(v("123456789012345678901234567890") > v("123456789012345678901234567889"));
        assert_eq!(v("0000000000000000000000001"), v("1"));
        assert!(v("1:2.0-a-b") > v("1:2.0-a"));
    }

    #[test]
    fn upstream_and_product_versions() {
        assert_eq!(v("1:2.1.0-3").upstream(), "2.1.0");
        assert_eq!(v("2.1.0").upstream(), "2.1.0");
        assert_eq!(v("1:2.0-a-b").upstream(), "2.0-a");
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
        assert!(v("2.1.0-1").matches(" 0:2.1.0-1 "));
        assert!(!v("2.1.0-1").matches("2.1"));
        assert!(!v("2.1.0-1").matches("2.1.0-2"));
        assert!(!v("2.1.0-1").matches(""));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(PkgVersion::deb("").is_err());
        assert!(PkgVersion::deb("   ").is_err());
        assert!(PkgVersion::deb("abc:def").is_err());
        assert!(PkgVersion::deb("a1.0").is_err());
        assert!(PkgVersion::deb("1.0 beta").is_err());
        assert!(PkgVersion::deb("1.0-").is_err());
        assert!(PkgVersion::deb("1:").is_err());
        assert!(PkgVersion::deb(":1.0").is_err());
        assert!(PkgVersion::deb("1x:1.0").is_err());
        assert!(PkgVersion::deb("-1:1.0").is_err());
        assert!(PkgVersion::deb("2147483648:1.0").is_err());
        assert!(PkgVersion::deb("99999999999999999999:1.0").is_err());
        assert!(PkgVersion::deb("1.0_1").is_err());
        assert!(PkgVersion::deb("1.0-1_2").is_err());
        assert!(PkgVersion::deb("1.0-1:2").is_err());
        assert!(PkgVersion::deb("1.0^1").is_err());
        assert!(PkgVersion::deb("1.0é").is_err());
        assert!(PkgVersion::deb("1:2.0-a-b").is_ok());
        assert!(PkgVersion::deb("2147483647:1.0").is_ok());
        assert!(PkgVersion::deb("1:1:1").is_ok());
    }

    #[test]
    fn rpm_ordering_tricky_cases() {
        // Each checked against rpm.labelCompare (see tests/version_diff).
        assert!(r("1.0~rc1") < r("1.0"));
        assert!(r("2.0.0~~") < r("2.0.0~"));
        assert!(r("1.0^") > r("1.0"));
        assert!(r("1.0^git1") > r("1.0"));
        assert!(r("1.0^git1") < r("1.0.1"));
        assert!(r("1.0^git1") < r("1.0a"));
        assert!(r("1.0~rc1^git1") > r("1.0~rc1"));
        assert!(r("1.0~rc1^git1") < r("1.0"));
        assert!(r("1.0a") < r("1.0.1"));
        assert!(r("1.0") < r("1.0a"));
        assert_eq!(r("1.001"), r("1.1"));
        assert_eq!(r("1.0"), r("1.0."));
        assert_eq!(r("1.0"), r("1_0"));
        assert!(r("1:0.1") > r("2.0"));
        assert_eq!(r("0:1.0-1"), r("1.0-1"));
        assert_eq!(r("007:1.0-1"), r("7:1.0-1"));
        assert!(r("1.0-1") < r("1.0-1.1"));
        assert!(r("1.0-1.el9") < r("1.0-2.el9"));
        assert!(r("a") < r("b"));
        assert!(r("1a") > r("1"));
        assert!(r("A") < r("a"));
        assert!(r("123456789012345678901234567890") > r("123456789012345678901234567889"));
        // A missing release sorts before every release, even "~1".
        assert!(r("1.0") < r("1.0-1"));
        assert!(r("1.0") < r("1.0-~1"));
        assert_eq!(r("1.0"), r("1.0"));
    }

    #[test]
    fn rpm_parse_errors() {
        for bad in [
            "",
            "  ",
            ":1.0",
            "x:1.0",
            "-1:1.0",
            "+1:1.0",
            "4294967296:1.0",
            "1:",
            "1.0-",
            "-1",
            "1.0-1-2",
            "1:2:3",
            "1.0 beta",
            "1..0",
            "1.0-1..el9",
            "1.0/2",
            "1.0%{dist}",
        ] {
            assert!(PkgVersion::rpm(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = PkgVersion::rpm("x:1.0").unwrap_err();
        assert!(err.reason.contains("epoch"), "{err}");
        assert!(PkgVersion::rpm("4294967295:1.0").is_ok());
        assert!(PkgVersion::rpm("a").is_ok());
        assert!(PkgVersion::rpm("~1").is_ok());
    }

    #[test]
    fn rpm_parts_text_and_equality() {
        let p = PkgVersion::rpm_parts(Some("0"), "2.1.0", Some("1.el9")).unwrap();
        assert_eq!(p.as_str(), "2.1.0-1.el9");
        assert_eq!(p, r("2.1.0-1.el9"));
        let p = PkgVersion::rpm_parts(Some("01"), "2.1.0", Some("1")).unwrap();
        assert_eq!(p.to_string(), "1:2.1.0-1");
        assert_eq!(p, r("1:2.1.0-1"));
        let p = PkgVersion::rpm_parts(None, "2.1.0", None).unwrap();
        assert_eq!(p.as_str(), "2.1.0");
        let p = PkgVersion::rpm_parts(Some(""), " 2.1.0 ", Some("")).unwrap();
        assert_eq!(p.as_str(), "2.1.0");
        assert_eq!(p, r("2.1.0"));
        assert!(PkgVersion::rpm_parts(Some("x"), "2.1.0", Some("1")).is_err());
        assert!(PkgVersion::rpm_parts(None, "", Some("1")).is_err());
        assert!(PkgVersion::rpm_parts(None, "2.1-0", Some("1")).is_err());
        assert!(PkgVersion::rpm_parts(None, "1:2.1", Some("1")).is_err());
        assert!(PkgVersion::rpm_parts(None, "2.1", Some("1-2")).is_err());
    }

    #[test]
    fn rpm_upstream_product_and_matches() {
        assert_eq!(r("1:2.1.0-1.el9").upstream(), "2.1.0");
        assert_eq!(r("2.1.0").upstream(), "2.1.0");
        assert_eq!(
            r("1:2.1.0-1.el9").product(),
            Some(semver::Version::new(2, 1, 0))
        );
        assert_eq!(
            r("2.1.0~rc1-1").product(),
            Some(semver::Version::parse("2.1.0-rc1").unwrap())
        );
        assert_eq!(
            r("2.1.0^git1-1").product(),
            Some(semver::Version::parse("2.1.0+git1").unwrap())
        );
        assert_eq!(r("20240101-1").product(), None);

        assert!(r("2.1.0-1").matches("2.1.0"));
        assert!(r("2.1.0-1").matches("2.1.0-1"));
        assert!(r("0:2.1.0-1").matches("2.1.0-1"));
        assert!(r("2.1.0-1").matches("0:2.1.0-1"));
        assert!(r("1:2.1.0-1.el9").matches("2.1.0"));
        assert!(!r("2.1.0-1").matches("2.1"));
        assert!(!r("2.1.0-1").matches("2.1.0-2"));
        assert!(!r("2.1.0^git1-1").matches("2.1.0"));
    }

    #[test]
    fn families_do_not_mix() {
        let d = v("1.0-1");
        let p = r("1.0-1");
        assert_eq!(d.family(), Family::Deb);
        assert_eq!(p.family(), Family::Rpm);
        assert_ne!(d, p);
        assert!(d < p);
        assert!(p > v("99:9.9-9"));
        assert_eq!(
            PkgVersion::parse(Family::Rpm, "1.0^1").unwrap().family(),
            Family::Rpm
        );
        assert!(PkgVersion::parse(Family::Deb, "1.0^1").is_err());
        assert_eq!(Family::Deb.to_string(), "deb");
        assert!(p.matches("1.0"));
    }
}
