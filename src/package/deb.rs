//! `.deb` files: an `ar` archive whose members are `debian-binary` (first),
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]`, in that order.
//!
//! The control archive gives the name and version (`control`) and the
//! conffiles (`conffiles`); the data archive the Debian changelog under
//! `usr/share/doc/PKG/` (`changelog.Debian.gz`, else `changelog.Debian`,
//! `changelog.gz`, `changelog`) and the files' contents. Both archives are
//! streamed; only what is kept is held in memory, under a size limit.
//!
//! The text formats — control fields ([`control_fields`]), conffiles
//! ([`parse_conffiles`]) and the changelog ([`parse_changelog`], format of
//! deb-changelog(5)) — are parsed by pure functions.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::{
    ChangelogEntry, Compression, FILE_LIMIT, PackageInfo, TEXT_LIMIT, is_breaking, normalize, open,
    read_limited,
};

/// Reads name, version, conffiles and changelog of a `.deb`.
pub(super) fn read(path: &Path) -> anyhow::Result<PackageInfo> {
    let mut control: Option<(String, String)> = None;
    let mut conffiles = Vec::new();
    let mut changelog = None;
    let mut installed_size = None;
    walk(path, |kind, member| match kind {
        Member::Control => {
            let (text, list) = read_control(member)?;
            let fields = control_fields(&text);
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| anyhow!("the control file has no {name} field"))
            };
            control = Some((field("Package")?, field("Version")?));
            installed_size = field("Installed-Size")
                .ok()
                .and_then(|kib| kib.trim().parse::<u64>().ok())
                .map(|kib| kib * 1024);
            if let Some(list) = list {
                conffiles = parse_conffiles(&list)?;
            }
            Ok(())
        }
        Member::Data => {
            let Some((name, _)) = &control else {
                bail!("data.tar comes before control.tar");
            };
            changelog = find_changelog(member, name)?;
            Ok(())
        }
    })?;
    let (name, version) = control.ok_or_else(|| anyhow!("no control.tar member"))?;
    Ok(PackageInfo {
        name,
        version,
        conffiles,
        changelog: changelog.map(|t| parse_changelog(&t)).unwrap_or_default(),
        installed_size,
    })
}

/// The content of `wanted` (normalized, relative) in the data archive.
pub(super) fn file_contents(path: &Path, wanted: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let mut found = None;
    walk(path, |kind, member| {
        if kind == Member::Data {
            found = Some(find_file(member, wanted)?);
        }
        Ok(())
    })?;
    match found {
        Some(Found::Content(c)) => Ok(Some(c)),
        Some(Found::Missing) => Ok(None),
        // A hard link: the content is in the member it links to, earlier on.
        Some(Found::HardLink(target)) => {
            let mut second = None;
            walk(path, |kind, member| {
                if kind == Member::Data {
                    second = Some(find_file(member, &target)?);
                }
                Ok(())
            })?;
            match second {
                Some(Found::Content(c)) => Ok(Some(c)),
                _ => bail!(
                    "/{} is a hard link to /{}, which is no regular file in the package",
                    wanted.display(),
                    target.display()
                ),
            }
        }
        None => bail!("no data.tar member"),
    }
}

/// The regular files under `dir` (normalized, relative) in the data
/// archive, by path relative to `dir`: one pass over the archive, then one
/// more per hard link (its content is in the member it links to).
pub(super) fn dir_contents(
    path: &Path,
    dir: &Path,
) -> anyhow::Result<std::collections::BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut seen_data = false;
    walk(path, |kind, member| {
        if kind != Member::Data {
            return Ok(());
        }
        seen_data = true;
        let mut archive = tar::Archive::new(member);
        for entry in archive.entries()? {
            let entry = entry?;
            let Some(member_path) = normalize(&entry.path()?)? else {
                continue;
            };
            let Ok(rel) = member_path.strip_prefix(dir) else {
                continue;
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let rel = rel.to_path_buf();
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let shown = format!("/{}", member_path.display());
                out.insert(rel, read_limited(entry, FILE_LIMIT, &shown)?);
            } else if kind.is_hard_link()
                && let Some(target) = entry.link_name()?
                && let Some(target) = normalize(&target)?
            {
                links.push((rel, target));
            }
        }
        Ok(())
    })?;
    if !seen_data {
        bail!("no data.tar member");
    }
    for (rel, target) in links {
        if let Some(content) = file_contents(path, &target)? {
            out.insert(rel, content);
        }
    }
    Ok(out)
}

/// The two archives of a `.deb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Member {
    Control,
    Data,
}

/// Walks the `ar` members: checks `debian-binary`, hands the decompressed
/// control archive, then the decompressed data archive to `visit`, then
/// stops.
pub(super) fn walk(
    path: &Path,
    mut visit: impl FnMut(Member, &mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut ar = ar::Archive::new(open(path)?);
    let mut index = 0;
    let mut seen_control = false;
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.context("not a valid ar archive")?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches([' ', '/'])
            .to_string();
        index += 1;
        if index == 1 {
            if name != "debian-binary" {
                bail!("not a Debian package: the first ar member is {name:?}, not debian-binary");
            }
            let text = read_limited(&mut entry, 64, "debian-binary")?;
            let text = String::from_utf8_lossy(&text);
            if !text.starts_with("2.") {
                bail!("unsupported .deb format {:?}", text.trim());
            }
            continue;
        }
        let (stem, compression) = member_compression(&name)?;
        match stem {
            Some("control.tar") => {
                let mut decoded = compression.decoder(BufReader::new(&mut entry));
                visit(Member::Control, &mut decoded).with_context(|| format!("member {name}"))?;
                seen_control = true;
            }
            Some("data.tar") => {
                if !seen_control {
                    bail!("data.tar comes before control.tar");
                }
                let mut decoded = compression.decoder(BufReader::new(&mut entry));
                visit(Member::Data, &mut decoded).with_context(|| format!("member {name}"))?;
                return Ok(());
            }
            // Signatures and other extra members (`_gpgbuilder`...).
            _ => {}
        }
    }
    if index == 0 {
        bail!("empty ar archive");
    }
    bail!("no data.tar member")
}

/// `control.tar.xz` → (`control.tar`, xz); extra members give no stem.
fn member_compression(name: &str) -> anyhow::Result<(Option<&str>, Compression)> {
    for stem in ["control.tar", "data.tar"] {
        if let Some(suffix) = name.strip_prefix(stem) {
            let compression = match suffix {
                "" => Compression::None,
                ".gz" => Compression::Gzip,
                ".xz" => Compression::Xz,
                ".zst" => Compression::Zstd,
                _ => bail!("unsupported member {name} (upkeep reads .gz, .xz, .zst or plain)"),
            };
            return Ok((Some(stem), compression));
        }
    }
    Ok((None, Compression::None))
}

/// The `control` file and the `conffiles` list (if any) of a control archive.
fn read_control(member: &mut dyn Read) -> anyhow::Result<(String, Option<String>)> {
    let mut control = None;
    let mut conffiles = None;
    let mut archive = tar::Archive::new(member);
    for entry in archive.entries()? {
        let entry = entry?;
        let Some(name) = normalize(&entry.path()?)? else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let slot = if name == Path::new("control") {
            &mut control
        } else if name == Path::new("conffiles") {
            &mut conffiles
        } else {
            continue;
        };
        let what = format!("the {} file", name.display());
        let bytes = read_limited(entry, TEXT_LIMIT, &what)?;
        *slot = Some(String::from_utf8(bytes).map_err(|_| anyhow!("{what} is not valid UTF-8"))?);
    }
    let control = control.ok_or_else(|| anyhow!("no control file in control.tar"))?;
    Ok((control, conffiles))
}

/// The Debian changelog of package `name` in a data archive, decompressed.
fn find_changelog(member: &mut dyn Read, name: &str) -> anyhow::Result<Option<String>> {
    let doc = PathBuf::from("usr/share/doc").join(name);
    let candidates = [
        "changelog.Debian.gz",
        "changelog.Debian",
        "changelog.gz",
        "changelog",
    ]
    .map(|f| doc.join(f));
    let mut best: Option<(usize, Vec<u8>)> = None;
    let mut archive = tar::Archive::new(member);
    for entry in archive.entries()? {
        let entry = entry?;
        let Some(path) = normalize(&entry.path()?)? else {
            continue;
        };
        let Some(rank) = candidates.iter().position(|c| *c == path) else {
            continue;
        };
        if !entry.header().entry_type().is_file() || best.as_ref().is_some_and(|(b, _)| *b < rank) {
            continue;
        }
        let what = format!("/{}", path.display());
        let mut reader = BufReader::new(entry);
        let compression = Compression::sniff(reader.fill_buf()?)
            .map_err(|c| anyhow!("{what}: unsupported compression {c}"))?;
        let text = read_limited(compression.decoder(reader), TEXT_LIMIT, &what)
            .with_context(|| what.clone())?;
        best = Some((rank, text));
        if rank == 0 {
            break;
        }
    }
    Ok(best.map(|(_, t)| String::from_utf8_lossy(&t).into_owned()))
}

/// What the data archive holds at a path.
enum Found {
    Content(Vec<u8>),
    /// A hard link to this (normalized) member.
    HardLink(PathBuf),
    Missing,
}

/// Streams the data archive to `wanted`.
fn find_file(member: &mut dyn Read, wanted: &Path) -> anyhow::Result<Found> {
    let mut archive = tar::Archive::new(member);
    for entry in archive.entries()? {
        let entry = entry?;
        let Some(path) = normalize(&entry.path()?)? else {
            continue;
        };
        if path != wanted {
            continue;
        }
        let kind = entry.header().entry_type();
        let shown = format!("/{}", wanted.display());
        if kind.is_file() {
            return Ok(Found::Content(read_limited(entry, FILE_LIMIT, &shown)?));
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()?
                .ok_or_else(|| anyhow!("{shown} is a hard link without a target"))?;
            let target =
                normalize(&target)?.ok_or_else(|| anyhow!("{shown} is a hard link to the root"))?;
            return Ok(Found::HardLink(target));
        }
        if kind.is_symlink() {
            let target = entry.link_name()?.unwrap_or_default();
            bail!("{shown} is a symlink to {}", target.display());
        }
        if kind.is_dir() {
            bail!("{shown} is a directory");
        }
        bail!("{shown} is not a regular file");
    }
    Ok(Found::Missing)
}

/// The fields of a control file's first paragraph, in order: name and
/// value, continuation lines joined with `\n` (first line trimmed).
pub fn control_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The conffiles a control archive's `conffiles` lists (deb-conffiles(5)):
/// one absolute path per line, optionally after a flag and whitespace. The
/// only flag, `remove-on-upgrade`, marks a file the package no longer ships:
/// it is left out. Other flags are errors, as they are for dpkg.
pub fn parse_conffiles(text: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let path = if line.starts_with('/') {
            line
        } else {
            let (flag, rest) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| anyhow!("conffile {line:?} is not an absolute path"))?;
            match flag {
                "remove-on-upgrade" => continue,
                _ => bail!("conffile {:?} has the unknown flag {flag:?}", rest.trim()),
            }
        };
        out.push(PathBuf::from(path));
    }
    Ok(out)
}

/// The entries of a Debian changelog (deb-changelog(5)), newest first:
///
/// ```text
/// portal (2.0.0-1) stable; urgency=high
///
///   * BREAKING: ...
///     continued.
///
///  -- Portal Maintainers <portal@example.com>  Tue, 01 Jul 2025 12:00:00 +0000
/// ```
///
/// Lenient: lines it does not understand between entries are skipped, an
/// entry without its trailer has no author or date, and parsing stops at
/// the `Local variables:` / `Old Changelog:` sections some changelogs end
/// with.
pub fn parse_changelog(text: &str) -> Vec<ChangelogEntry> {
    let mut out = Vec::new();
    let mut current: Option<Pending<'_>> = None;
    for line in text.lines() {
        if let Some(trailer) = line.strip_prefix(" -- ") {
            if let Some(entry) = current.take() {
                out.push(entry.finish(Some(trailer)));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) || line.trim().is_empty() {
            if let Some(entry) = &mut current {
                entry.body.push(line);
            }
            continue;
        }
        // A line at column 0: a new entry's header, or the end.
        if let Some((version, urgency)) = parse_header(line) {
            if let Some(entry) = current.take() {
                out.push(entry.finish(None));
            }
            current = Some(Pending {
                version,
                urgency,
                body: Vec::new(),
            });
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("local variables:") || lower.starts_with("old changelog:") {
            break;
        }
    }
    if let Some(entry) = current.take() {
        out.push(entry.finish(None));
    }
    out
}

/// An entry whose header was read, until its trailer.
struct Pending<'t> {
    version: String,
    urgency: Option<String>,
    body: Vec<&'t str>,
}

impl Pending<'_> {
    /// The entry, with the author and date of its trailer if it had one.
    fn finish(self, trailer: Option<&str>) -> ChangelogEntry {
        let (author, date) = trailer.map(parse_trailer).unwrap_or((None, None));
        let text = body_text(&self.body);
        let breaking = is_breaking(&text, self.urgency.as_deref());
        ChangelogEntry {
            version: self.version,
            date,
            author,
            urgency: self.urgency,
            text,
            breaking,
        }
    }
}

/// `pkg (version) dist [dist...]; urgency=high, key=value` → version and
/// urgency (its first word, as written).
fn parse_header(line: &str) -> Option<(String, Option<String>)> {
    let (name, rest) = line.split_once(" (")?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let (version, rest) = rest.split_once(')')?;
    let version = version.trim();
    if version.is_empty() || version.contains(char::is_whitespace) {
        return None;
    }
    let (_dists, meta) = rest.split_once(';').unwrap_or((rest, ""));
    let urgency = meta.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("urgency") {
            return None;
        }
        let v = v.split_whitespace().next()?;
        Some(v.to_string())
    });
    Some((version.to_string(), urgency))
}

/// ` -- Name <mail>  date` (without the ` -- `) → author and RFC 3339 date.
fn parse_trailer(trailer: &str) -> (Option<String>, Option<String>) {
    let (author, date) = match trailer.find('>') {
        Some(i) => (&trailer[..=i], &trailer[i + 1..]),
        // No address: the date follows two spaces.
        None => trailer.split_once("  ").unwrap_or((trailer, "")),
    };
    let author = author.trim();
    let date = date.trim();
    (
        (!author.is_empty()).then(|| author.to_string()),
        rfc2822_to_rfc3339(date),
    )
}

/// An RFC 2822 date (`Tue, 01 Oct 2024 12:00:00 +0000`) as RFC 3339 with
/// its offset (`2024-10-01T12:00:00+00:00`); a wrong weekday is forgiven.
pub fn rfc2822_to_rfc3339(date: &str) -> Option<String> {
    if date.is_empty() {
        return None;
    }
    let zoned = jiff::fmt::rfc2822::DateTimeParser::new()
        .relaxed_weekday(true)
        .parse_zoned(date)
        .ok()?;
    Some(zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// An entry's body: blank lines around it dropped, the two-space
/// indentation removed, trailing spaces trimmed.
fn body_text(lines: &[&str]) -> String {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    lines[first..=last]
        .iter()
        .map(|l| {
            let l = l.trim_end();
            l.strip_prefix("  ")
                .or_else(|| l.strip_prefix('\t'))
                .unwrap_or_else(|| l.trim_start())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGELOG: &str = "\
portal (2.1.0-1) stable; urgency=medium

  * Fix schema migration 0005, which failed on every database in 2.0.1.
  * Catalogues get a visibility setting.

 -- Portal Maintainers <portal@example.com>  Sat, 01 Nov 2025 12:00:00 +0000

portal (2.0.0-1) stable; urgency=medium

  * BREAKING: Database.Dialect and Database.ConnectionString must now be set
    explicitly in portal.conf; the implicit SQLite default is gone.
  * API products and user roles (schema migration 0004).

 -- Portal Maintainers <portal@example.com>  Tue, 01 Jul 2025 12:00:00 +0000

portal (1.2.0-1) unstable experimental; urgency=HIGH (security fix), binary-only=yes

  * Security fix.


  [ Jane Doe ]
  * Second block after blank lines.

 -- Jane Doe <jane@example.com>  Mon, 01 Jan 2025 09:30:00 +0200

portal (1:1.1.0~rc1-1) stable; urgency=low

  * Not a breaking change? It says so: breaking change.

 -- No Address Maintainer  Tue, 31 Dec 2024 10:00:00 -0500

portal (1.0.0-1) stable; urgency=medium
  * Date bogus.
 -- Someone <s@example.com>  not a date

Old Changelog:
portal (0.1) stable; urgency=low
  * Should not be parsed.
";

    #[test]
    fn changelog_entries_newest_first() {
        let got = parse_changelog(CHANGELOG);
        let versions: Vec<_> = got.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(
            versions,
            ["2.1.0-1", "2.0.0-1", "1.2.0-1", "1:1.1.0~rc1-1", "1.0.0-1"]
        );
        let e = &got[0];
        assert_eq!(e.urgency.as_deref(), Some("medium"));
        assert_eq!(
            e.author.as_deref(),
            Some("Portal Maintainers <portal@example.com>")
        );
        assert_eq!(e.date.as_deref(), Some("2025-11-01T12:00:00+00:00"));
        assert_eq!(
            e.text,
            "* Fix schema migration 0005, which failed on every database in 2.0.1.\n\
             * Catalogues get a visibility setting."
        );
        assert!(!e.breaking);
    }

    #[test]
    fn changelog_breaking_by_marker_and_urgency() {
        let got = parse_changelog(CHANGELOG);
        // BREAKING: line; continuation lines keep their alignment.
        assert!(got[1].breaking);
        assert!(got[1].text.starts_with(
            "* BREAKING: Database.Dialect and Database.ConnectionString must now be set\n  \
             explicitly in portal.conf;"
        ));
        // urgency=HIGH with a comment.
        assert_eq!(got[2].urgency.as_deref(), Some("HIGH"));
        assert!(got[2].breaking);
        assert_eq!(
            got[2].text,
            "* Security fix.\n\n\n[ Jane Doe ]\n* Second block after blank lines."
        );
        assert_eq!(got[2].date.as_deref(), Some("2025-01-01T09:30:00+02:00"));
        // "breaking change" in lower case.
        assert!(got[3].breaking);
        assert_eq!(got[3].author.as_deref(), Some("No Address Maintainer"));
        assert_eq!(got[3].date.as_deref(), Some("2024-12-31T10:00:00-05:00"));
        assert!(!got[4].breaking);
        assert_eq!(got[4].date, None);
        assert_eq!(got[4].text, "* Date bogus.");
    }

    #[test]
    fn changelog_without_trailer_and_garbage() {
        let got = parse_changelog(
            "This is not a changelog.\nportal (1.0-1) x; urgency=low\n  * one\nportal (0.9-1) x\n  * two\n",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].version, "1.0-1");
        assert_eq!(got[0].text, "* one");
        assert_eq!(got[0].author, None);
        assert_eq!(got[1].urgency, None);
        assert!(parse_changelog("").is_empty());
        assert!(parse_changelog("Release notes\n============\n\n- 2.0: things\n").is_empty());
    }

    #[test]
    fn weekday_mismatch_is_forgiven() {
        // 1 Oct 2024 was a Tuesday.
        assert_eq!(
            rfc2822_to_rfc3339("Mon, 01 Oct 2024 12:00:00 +0000").as_deref(),
            Some("2024-10-01T12:00:00+00:00")
        );
        assert_eq!(rfc2822_to_rfc3339("yesterday"), None);
    }

    #[test]
    fn conffiles_with_flags() {
        let got = parse_conffiles(
            "/opt/portal/portal.conf\n/etc/portal/with space.conf  \n\nremove-on-upgrade /etc/portal/old.conf\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                PathBuf::from("/opt/portal/portal.conf"),
                PathBuf::from("/etc/portal/with space.conf"),
            ]
        );
        assert!(parse_conffiles("relative/path\n").is_err());
        let e = parse_conffiles("keep-forever /etc/x\n").unwrap_err();
        assert!(
            e.to_string().contains("unknown flag \"keep-forever\""),
            "{e}"
        );
        assert!(parse_conffiles("").unwrap().is_empty());
    }

    #[test]
    fn control_paragraph() {
        let fields = control_fields(
            "Package: portal\nVersion: 1:2.1.0-1\nDescription: short\n long line\n .\n more\n\nPackage: other\n",
        );
        assert_eq!(fields[0], ("Package".into(), "portal".into()));
        assert_eq!(fields[1], ("Version".into(), "1:2.1.0-1".into()));
        assert_eq!(fields[2].1, "short\nlong line\n.\nmore");
        assert_eq!(fields.len(), 3);
    }

    #[test]
    fn member_names() {
        assert_eq!(
            member_compression("data.tar.zst").unwrap(),
            (Some("data.tar"), Compression::Zstd)
        );
        assert_eq!(
            member_compression("control.tar").unwrap(),
            (Some("control.tar"), Compression::None)
        );
        assert_eq!(
            member_compression("_gpgbuilder").unwrap(),
            (None, Compression::None)
        );
        assert!(member_compression("data.tar.bz2").is_err());
    }
}
