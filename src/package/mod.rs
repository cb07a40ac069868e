//! Reading a package file (`.deb` or `.rpm`) without installing it and
//! without running dpkg or rpm: its name and version, the files it treats as
//! configuration, its changelog, and the packaged content of one file.
//!
//! - `.deb` ([`deb`]): an `ar` archive of `debian-binary`, `control.tar[.gz|.xz|.zst]`
//!   and `data.tar[.gz|.xz|.zst]`. Conffiles come from the control archive's
//!   `conffiles`, the release notes from the Debian changelog under
//!   `/usr/share/doc/PKG/` in the data archive.
//! - `.rpm` ([`rpm`]): the header (read with the `rpm` crate) gives name,
//!   `[epoch:]version-release`, the `%config` files and the `%changelog`;
//!   file contents come from the cpio payload (gzip, xz, zstd or plain).
//!
//! Memory stays bounded: archives are streamed member by member, and what is
//! kept (control file, changelog, one file's content) is read under a size
//! limit. A member path with a `..` component, met while streaming, makes
//! the package unreadable (an error, not a skipped member).
//!
//! Errors are one line that names the package file.
//!
//! The parsers of the text formats (control fields, conffiles, Debian
//! changelog, RPM changelog names) are pure functions with their own tests.

/// `.deb` files: ar + tar, control fields, conffiles, Debian changelog.
pub mod deb;
/// `.rpm` files: header (rpm crate), `%config` files, `%changelog`, cpio payload.
pub mod rpm;

#[cfg(test)]
pub(crate) mod testpkg;
#[cfg(test)]
mod tests;

use crate::zstd::ZstdFrames;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::version::{Family, PkgVersion};

/// What upkeep needs from a package file, read without installing it and
/// without running dpkg/rpm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// The package name (`Package:` / `%{NAME}`).
    pub name: String,
    /// The package version: `2.1.0-1`, with the epoch when there is one
    /// (deb: the control file's `Version`; rpm: `[epoch:]version-release`).
    pub version: String,
    /// The files the package manager treats as configuration, absolute:
    /// deb: the control archive's `conffiles` (entries flagged
    /// `remove-on-upgrade` are left out: the package does not ship them);
    /// rpm: the files with the `%config` flag (`%ghost` ones left out, as
    /// the payload does not carry them).
    pub conffiles: Vec<PathBuf>,
    /// The changelog, newest first (as the package lists it).
    pub changelog: Vec<ChangelogEntry>,
    /// Bytes the package takes once installed, when it says (deb:
    /// `Installed-Size`; rpm: the sum of its file sizes).
    pub installed_size: Option<u64>,
}

/// One changelog entry (one version's release notes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangelogEntry {
    /// The package version the entry is for (`2.0.0-1`); empty when an RPM
    /// changelog entry names none.
    pub version: String,
    /// When the entry was written, RFC 3339 (`2025-07-01T12:00:00+00:00`),
    /// if the date parses.
    pub date: Option<String>,
    /// Who wrote it (`Name <mail>`).
    pub author: Option<String>,
    /// The urgency of a Debian entry (`medium`, `high`...); always `None`
    /// for RPM.
    pub urgency: Option<String>,
    /// The entry's lines without the changelog's indentation, bullets kept
    /// (`* Fix ...` with continuation lines indented under it for deb,
    /// `- Fix ...` for rpm).
    pub text: String,
    /// The entry announces a breaking change: `BREAKING` (upper case) or
    /// `breaking change` / `breaking:` (any case) in the text, or an urgency
    /// of `high`, `critical` or `emergency`.
    pub breaking: bool,
}

/// Reads a package file: by its extension (`.deb`, `.rpm`), else by its
/// magic (`!<arch>\n` for deb, `ed ab ee db` for rpm).
pub fn read(path: &Path) -> anyhow::Result<PackageInfo> {
    one_line(path, || match kind(path)? {
        Family::Deb => deb::read(path),
        Family::Rpm => rpm::read(path),
    })
}

/// The packaged content of one file (e.g. the default
/// `/opt/portal/portal.conf`), `None` if the package lacks it.
///
/// `file` is the installed path (`/opt/portal/portal.conf`; `opt/...` and
/// `./opt/...` mean the same); a `..` in it is an error, and so is a path
/// the package ships as a directory or a symlink. Content over 64 MiB is an
/// error rather than a surprise allocation.
pub fn file_contents(path: &Path, file: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    one_line(path, || {
        let wanted = normalize(file)
            .map_err(|e| anyhow!("{}: {e}", file.display()))?
            .ok_or_else(|| anyhow!("{:?} names no file", file.display().to_string()))?;
        match kind(path)? {
            Family::Deb => deb::file_contents(path, &wanted),
            Family::Rpm => rpm::file_contents(path, &wanted),
        }
    })
}

/// Every regular file the package ships under the directory `dir` (e.g. a
/// default theme, `/opt/portal/themes/default`), by path relative to `dir`;
/// empty when the package ships nothing there. Symlinks and other special
/// members under `dir` are left out (a theme merge deals in files); a hard
/// link gives its target's content. Each file is read under the same limit
/// as [`file_contents`].
pub fn dir_contents(
    path: &Path,
    dir: &Path,
) -> anyhow::Result<std::collections::BTreeMap<PathBuf, Vec<u8>>> {
    one_line(path, || {
        let wanted = normalize(dir)
            .map_err(|e| anyhow!("{}: {e}", dir.display()))?
            .ok_or_else(|| anyhow!("{:?} names no directory", dir.display().to_string()))?;
        match kind(path)? {
            Family::Deb => deb::dir_contents(path, &wanted),
            Family::Rpm => rpm::dir_contents(path, &wanted),
        }
    })
}

/// The entries newer than `installed` (exclusive) up to `target`
/// (inclusive), newest first, in the order of the family's versions
/// ([`PkgVersion::parse`]).
///
/// The list keeps the changelog's order. An entry whose version does not
/// parse is kept when it sits between two entries that bound it inside the
/// range: the nearest parsable entry above it (newer) is at most `target`
/// and the nearest below it (older) at least `installed`. If `installed` or
/// `target` does not parse, the comparison falls back to exact text matches:
/// the entries after the one for `target` (inclusive) and before the one
/// for `installed`.
pub fn notes_between(
    entries: &[ChangelogEntry],
    family: Family,
    installed: &str,
    target: &str,
) -> Vec<ChangelogEntry> {
    let (Ok(low), Ok(high)) = (
        PkgVersion::parse(family, installed),
        PkgVersion::parse(family, target),
    ) else {
        return by_text(entries, installed, target);
    };
    let parsed: Vec<Option<PkgVersion>> = entries
        .iter()
        .map(|e| PkgVersion::parse(family, &e.version).ok())
        .collect();
    let in_range = |v: &PkgVersion| *v > low && *v <= high;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let keep = match &parsed[i] {
            Some(v) => in_range(v),
            None => {
                let newer = parsed[..i].iter().rev().flatten().next();
                let older = parsed[i + 1..].iter().flatten().next();
                matches!((newer, older), (Some(n), Some(o)) if *n <= high && *o >= low)
            }
        };
        if keep {
            out.push(entry.clone());
        }
    }
    out
}

/// [`notes_between`] when a bound does not parse: by position, from the
/// entry whose version is `target` down to the one before `installed`.
fn by_text(entries: &[ChangelogEntry], installed: &str, target: &str) -> Vec<ChangelogEntry> {
    let Some(start) = entries.iter().position(|e| e.version == target.trim()) else {
        return Vec::new();
    };
    entries[start..]
        .iter()
        .take_while(|e| e.version != installed.trim())
        .cloned()
        .collect()
}

/// Whether an entry announces a breaking change (see
/// [`ChangelogEntry::breaking`]).
pub fn is_breaking(text: &str, urgency: Option<&str>) -> bool {
    let urgent = urgency.is_some_and(|u| {
        ["high", "critical", "emergency"]
            .iter()
            .any(|w| u.eq_ignore_ascii_case(w))
    });
    let lower = text.to_lowercase();
    urgent
        || has_word(text, "BREAKING")
        || lower.contains("breaking change")
        || lower.contains("breaking:")
}

/// `word` in `text` with no letter or digit right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Runs `f` and turns its error into one line that names `path`.
fn one_line<T>(path: &Path, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    f().map_err(|e| {
        let text = format!("{e:#}").replace(['\n', '\r'], " ");
        anyhow!("{}: {text}", path.display())
    })
}

/// Which kind of package `path` is: by extension, else by magic.
fn kind(path: &Path) -> anyhow::Result<Family> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("deb") => return Ok(Family::Deb),
        Some(e) if e.eq_ignore_ascii_case("rpm") => return Ok(Family::Rpm),
        _ => {}
    }
    let mut magic = Vec::with_capacity(8);
    File::open(path)?.take(8).read_to_end(&mut magic)?;
    if magic.starts_with(b"!<arch>\n") {
        Ok(Family::Deb)
    } else if magic.starts_with(&[0xed, 0xab, 0xee, 0xdb]) {
        Ok(Family::Rpm)
    } else {
        bail!("neither a .deb (ar archive) nor an .rpm (no ar or rpm magic)")
    }
}

/// An archive member's path or a wanted file as relative normal components
/// (`./opt/x`, `/opt/x` and `opt/x` all give `opt/x`); `None` for the root
/// itself (`./`). A `..` component is an error.
fn normalize(path: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                bail!("member path {:?} has a `..`", path.display().to_string())
            }
            Component::Prefix(_) => {
                bail!("member path {:?} has a prefix", path.display().to_string())
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Largest file content [`file_contents`] returns.
const FILE_LIMIT: u64 = 64 << 20;
/// Largest changelog (decompressed) or control file read.
const TEXT_LIMIT: u64 = 16 << 20;

/// Reads all of `r`, refusing more than `limit` bytes (`what` names it).
fn read_limited(r: impl Read, limit: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        if limit >= 1 << 20 {
            bail!("{what} is larger than {} MiB", limit >> 20);
        }
        bail!("{what} is larger than {limit} bytes");
    }
    Ok(buf)
}

/// A compression a package archive member or payload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// By the first bytes of the stream; unknown magic is taken as plain.
    fn sniff(head: &[u8]) -> Result<Compression, &'static str> {
        Ok(if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            return Err("bzip2");
        } else if head.starts_with(&[0x5d, 0, 0]) {
            return Err("lzma");
        } else {
            Compression::None
        })
    }

    /// The decompressing reader over `r`.
    fn decoder<'r>(self, r: impl BufRead + 'r) -> Box<dyn Read + 'r> {
        match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
            Compression::Zstd => Box::new(ZstdFrames::new(r)),
        }
    }
}

/// Opens `path` buffered.
fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::with_capacity(64 << 10, File::open(path)?))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn entry(version: &str) -> ChangelogEntry {
        ChangelogEntry {
            version: version.to_string(),
            date: None,
            author: None,
            urgency: None,
            text: String::new(),
            breaking: false,
        }
    }

    fn versions(v: &[ChangelogEntry]) -> Vec<&str> {
        v.iter().map(|e| e.version.as_str()).collect()
    }

    #[test]
    fn notes_between_deb_with_epochs_and_tilde() {
        let log: Vec<_> = [
            "1:1.0-1",
            "2.1.0-1",
            "2.1.0~rc1-1",
            "2.0.0-1",
            "1.1.0-1",
            "1.0.0-1",
        ]
        .iter()
        .map(|v| entry(v))
        .collect();
        let got = notes_between(&log, Family::Deb, "1.0.0-1", "2.1.0-1");
        assert_eq!(
            versions(&got),
            ["2.1.0-1", "2.1.0~rc1-1", "2.0.0-1", "1.1.0-1"]
        );
        // ~rc1 sorts before the release: installed rc1 excludes itself only.
        let got = notes_between(&log, Family::Deb, "2.1.0~rc1-1", "2.1.0-1");
        assert_eq!(versions(&got), ["2.1.0-1"]);
        // The epoch wins over everything without one.
        let got = notes_between(&log, Family::Deb, "2.1.0-1", "1:1.0-1");
        assert_eq!(versions(&got), ["1:1.0-1"]);
        // 0: is no epoch at all.
        let got = notes_between(&log, Family::Deb, "0:1.1.0-1", "0:2.0.0-1");
        assert_eq!(versions(&got), ["2.0.0-1"]);
        // Nothing between equal versions, nor when going down.
        assert!(notes_between(&log, Family::Deb, "2.0.0-1", "2.0.0-1").is_empty());
        assert!(notes_between(&log, Family::Deb, "2.1.0-1", "1.0.0-1").is_empty());
    }

    #[test]
    fn notes_between_rpm_with_epochs_and_tilde() {
        let log: Vec<_> = ["2:0.9-1", "2.1.0-1", "2.1.0~beta-1", "2.0.0-1", "1.0.0-1"]
            .iter()
            .map(|v| entry(v))
            .collect();
        let got = notes_between(&log, Family::Rpm, "2.0.0-1", "2.1.0-1");
        assert_eq!(versions(&got), ["2.1.0-1", "2.1.0~beta-1"]);
        let got = notes_between(&log, Family::Rpm, "1.0.0-1", "2:0.9-1");
        assert_eq!(
            versions(&got),
            ["2:0.9-1", "2.1.0-1", "2.1.0~beta-1", "2.0.0-1"]
        );
    }

    #[test]
    fn notes_between_keeps_unparsable_entries_inside_the_range() {
        let log: Vec<_> = [
            "2.1.0-1",
            "not a version",
            "2.0.0-1",
            "",
            "1.1.0-1",
            "junk",
            "1.0.0-1",
        ]
        .iter()
        .map(|v| entry(v))
        .collect();
        // "" sits between 2.0.0 and 1.1.0 (installed): kept; "junk" is
        // below the installed version; "not a version" between two kept.
        let got = notes_between(&log, Family::Deb, "1.1.0-1", "2.1.0-1");
        assert_eq!(versions(&got), ["2.1.0-1", "not a version", "2.0.0-1", ""]);
        // Above the target, or with nothing newer to bound it: left out.
        let got = notes_between(&log, Family::Deb, "1.0.0-1", "2.0.0-1");
        assert_eq!(versions(&got), ["2.0.0-1", "", "1.1.0-1", "junk"]);
        let top: Vec<_> = ["??", "1.0-1"].iter().map(|v| entry(v)).collect();
        assert_eq!(
            versions(&notes_between(&top, Family::Deb, "0.9-1", "9.0-1")),
            ["1.0-1"]
        );
    }

    #[test]
    fn notes_between_with_unparsable_bounds_goes_by_text() {
        let log: Vec<_> = ["3-1", "2-1", "1-1"].iter().map(|v| entry(v)).collect();
        let got = notes_between(&log, Family::Deb, "1-1", "nonsense version");
        assert!(got.is_empty());
        let got = notes_between(&log, Family::Rpm, "bad version", "2-1");
        assert_eq!(versions(&got), ["2-1", "1-1"]);
    }

    #[test]
    fn breaking_markers() {
        assert!(is_breaking("* BREAKING: the schema changed", None));
        assert!(is_breaking("- This is a Breaking Change for plugins", None));
        assert!(is_breaking("* breaking: old API removed", None));
        assert!(is_breaking("* Fix a typo.", Some("high")));
        assert!(is_breaking("* Fix a typo.", Some("Emergency")));
        assert!(is_breaking("* Fix a typo.", Some("critical")));
        assert!(!is_breaking("* Fix a typo.", Some("medium")));
        assert!(!is_breaking(
            "* Fix line breaking in the editor.",
            Some("low")
        ));
        assert!(!is_breaking("* NONBREAKINGSPACE handling", None));
    }

    #[test]
    fn normalize_paths() {
        let n = |p: &str| normalize(Path::new(p)).unwrap();
        assert_eq!(
            n("./opt/portal/portal.conf"),
            Some(PathBuf::from("opt/portal/portal.conf"))
        );
        assert_eq!(
            n("/opt/portal/portal.conf"),
            Some(PathBuf::from("opt/portal/portal.conf"))
        );
        assert_eq!(
            n("opt//portal/./portal.conf"),
            Some(PathBuf::from("opt/portal/portal.conf"))
        );
        assert_eq!(n("./"), None);
        assert!(normalize(Path::new("./opt/../etc/shadow")).is_err());
    }

    #[test]
    fn compression_sniffing() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(Compression::sniff(b"\xfd7zXZ\0\0"), Ok(Compression::Xz));
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Ok(Compression::Zstd)
        );
        assert_eq!(Compression::sniff(b"070701"), Ok(Compression::None));
        assert_eq!(Compression::sniff(b"BZh9"), Err("bzip2"));
    }

    #[test]
    fn zstd_frames_back_to_back() {
        let a = ruzstd::encoding::compress_to_vec(
            &b"first frame "[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let b = ruzstd::encoding::compress_to_vec(
            &b"second frame"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mut out = String::new();
        ZstdFrames::new(&[a, b].concat()[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "first frame second frame");
    }

    #[test]
    fn read_limited_refuses_more() {
        assert_eq!(read_limited(&b"abc"[..], 3, "x").unwrap(), b"abc");
        let e = read_limited(&b"abcd"[..], 3, "debian-binary").unwrap_err();
        assert_eq!(e.to_string(), "debian-binary is larger than 3 bytes");
    }
}
