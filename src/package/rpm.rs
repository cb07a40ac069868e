//! `.rpm` files: the lead, the signature header and the header are read
//! with the `rpm` crate (no optional features); the payload — a cpio
//! archive compressed with gzip, xz or zstd, or plain — is streamed here
//! with the project's own decompressors and a small cpio reader
//! (`CpioReader`), so no part of the payload is held in memory except the
//! one file asked for.
//!
//! From the header: name, `[epoch:]version-release`, the files flagged
//! `%config`, and the `%changelog` (CHANGELOGTIME/NAME/TEXT), whose names
//! carry the version (`Name <mail> - 2.0.0-1`, split by
//! [`split_changelog_name`]).

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::path::Path;

use ::rpm::{FileFlags, FileType, IndexTag, PackageMetadata};
use anyhow::{Context, anyhow, bail};

use super::{
    ChangelogEntry, Compression, FILE_LIMIT, PackageInfo, is_breaking, normalize, open,
    read_limited,
};

/// Reads name, version, `%config` files and changelog from the header.
pub(super) fn read(path: &Path) -> anyhow::Result<PackageInfo> {
    let meta = metadata(&mut open(path)?)?;
    let name = meta.get_name().context("no NAME tag")?.to_string();
    let version = evr(&meta)?;
    let entries = meta.get_file_entries().context("reading the file list")?;
    let installed_size = Some(entries.iter().map(|f| f.size() as u64).sum());
    let conffiles = entries
        .into_iter()
        .filter(|f| {
            f.flags().contains(FileFlags::CONFIG)
                && !f.flags().contains(FileFlags::GHOST)
                && f.file_type() != FileType::Dir
        })
        .map(|f| f.path())
        .collect();
    let changelog = meta
        .get_changelog_entries()
        .context("reading the changelog")?
        .into_iter()
        .map(|c| changelog_entry(&c.name, c.timestamp, &c.description))
        .collect();
    Ok(PackageInfo {
        name,
        version,
        conffiles,
        changelog,
        installed_size,
    })
}

/// The content of `wanted` (normalized, relative) in the payload.
pub(super) fn file_contents(path: &Path, wanted: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let mut input = open(path)?;
    let meta = metadata(&mut input)?;
    let entries = meta.get_file_entries().context("reading the file list")?;
    let absolute = Path::new("/").join(wanted);
    let shown = absolute.display().to_string();
    let Some(index) = entries.iter().position(|f| f.path() == absolute) else {
        return Ok(None);
    };
    let entry = &entries[index];
    if entry.flags().contains(FileFlags::GHOST) {
        // Declared, never shipped.
        return Ok(None);
    }
    match entry.file_type() {
        FileType::Regular => {}
        FileType::Dir => bail!("{shown} is a directory"),
        FileType::SymbolicLink => {
            bail!("{shown} is a symlink to {}", entry.linkto().unwrap_or("?"))
        }
        _ => bail!("{shown} is not a regular file"),
    }
    let sizes: Vec<u64> = entries.iter().map(|f| f.size() as u64).collect();
    let carriers = content_carriers(&meta, entries.len());
    let compression = Compression::sniff(input.fill_buf()?)
        .map_err(|c| anyhow!("unsupported payload compression {c}"))?;
    let payload = compression.decoder(input);
    let mut cpio = CpioReader::new(payload);
    find_in_payload(&mut cpio, wanted, index, &sizes, &carriers)
        .context("reading the payload")?
        .map(Some)
        .ok_or_else(|| anyhow!("{shown} is in the header but not in the payload"))
}

/// The regular files under `dir` (normalized, relative), by path relative
/// to `dir`: the header lists them, then each is streamed from the payload
/// (a theme is a handful of small files).
pub(super) fn dir_contents(
    path: &Path,
    dir: &Path,
) -> anyhow::Result<std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>> {
    let mut input = open(path)?;
    let meta = metadata(&mut input)?;
    let entries = meta.get_file_entries().context("reading the file list")?;
    let root = Path::new("/").join(dir);
    let mut out = std::collections::BTreeMap::new();
    for entry in &entries {
        if entry.flags().contains(FileFlags::GHOST)
            || !matches!(entry.file_type(), FileType::Regular)
        {
            continue;
        }
        let entry_path = entry.path();
        let Ok(rel) = entry_path.strip_prefix(&root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let wanted = dir.join(rel);
        if let Some(content) = file_contents(path, &wanted)? {
            out.insert(rel.to_path_buf(), content);
        }
    }
    Ok(out)
}

/// The header, from the start of the file; `input` is left at the payload.
fn metadata(input: &mut impl BufRead) -> anyhow::Result<PackageMetadata> {
    PackageMetadata::parse(input).map_err(|e| anyhow!("not a valid rpm: {e}"))
}

/// `[epoch:]version-release`, as `rpm -q --qf '%{EVR}'` prints it.
fn evr(meta: &PackageMetadata) -> anyhow::Result<String> {
    let epoch = match meta.get_epoch() {
        Ok(e) => format!("{e}:"),
        Err(::rpm::Error::TagNotFound(_)) => String::new(),
        Err(e) => bail!("bad EPOCH tag: {e}"),
    };
    let version = meta.get_version().context("no VERSION tag")?;
    let release = meta.get_release().context("no RELEASE tag")?;
    Ok(format!("{epoch}{version}-{release}"))
}

/// For a stripped payload (no names, no inodes in the records): which
/// header entries carry their content. Of a set of hard links (same device
/// and inode), only the last in header order does, as rpm writes it.
fn content_carriers(meta: &PackageMetadata, count: usize) -> Vec<bool> {
    let devices = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEDEVICES)
        .unwrap_or_default();
    let inodes = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEINODES)
        .unwrap_or_default();
    let mut last: HashMap<(u32, u32), usize> = HashMap::new();
    for (i, key) in devices
        .iter()
        .copied()
        .zip(inodes.iter().copied())
        .enumerate()
    {
        last.insert(key, i);
    }
    (0..count)
        .map(|i| match (devices.get(i), inodes.get(i)) {
            (Some(&d), Some(&n)) => last.get(&(d, n)) == Some(&i),
            _ => true,
        })
        .collect()
}

/// Streams the cpio payload to the content of `wanted` (header entry
/// `index`). In a newc payload, a file of a hard link set is stored empty
/// but for one member of the set (the last), found by its inode.
fn find_in_payload(
    cpio: &mut CpioReader<impl Read>,
    wanted: &Path,
    index: usize,
    sizes: &[u64],
    carriers: &[bool],
) -> anyhow::Result<Option<Vec<u8>>> {
    let shown = format!("/{}", wanted.display());
    let mut pending_inode: Option<u32> = None;
    while let Some(record) = cpio.next(sizes, carriers)? {
        let hit = match &record.id {
            RecordId::Stripped(i) => *i as usize == index,
            RecordId::Named(name) => match normalize(Path::new(name))? {
                Some(p) if p == wanted => {
                    if record.nlink > 1 && record.size == 0 {
                        // The content comes with a later link of the set.
                        pending_inode = Some(record.inode);
                        false
                    } else {
                        true
                    }
                }
                _ => {
                    pending_inode.is_some_and(|i| i == record.inode)
                        && record.size > 0
                        && record.mode & 0o170000 == 0o100000
                }
            },
        };
        if hit {
            if record.size > FILE_LIMIT {
                bail!("{shown} is larger than {} MiB", FILE_LIMIT >> 20);
            }
            return cpio.content(record.size).map(Some);
        }
        cpio.skip(record.size)?;
    }
    // A hard link set whose members are all empty.
    Ok(pending_inode.map(|_| Vec::new()))
}

/// How a payload record names its file.
#[derive(Debug, PartialEq, Eq)]
enum RecordId {
    /// newc (`070701`) or crc (`070702`): the path.
    Named(String),
    /// rpm's stripped cpio (`07070X`): the index in the header's file list.
    Stripped(u32),
}

/// One record header of the payload.
#[derive(Debug)]
struct Record {
    id: RecordId,
    mode: u32,
    inode: u32,
    nlink: u32,
    /// Bytes of content that follow.
    size: u64,
}

/// A streaming reader of cpio newc/crc records and of rpm's stripped
/// records, keeping the 4-byte alignment.
struct CpioReader<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> CpioReader<R> {
    /// A reader at the start of an archive.
    fn new(inner: R) -> Self {
        CpioReader { inner, pos: 0 }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Skips `n` bytes, then the padding to the next multiple of 4.
    fn skip(&mut self, n: u64) -> anyhow::Result<()> {
        let pad = (4 - (self.pos + n) % 4) % 4;
        let want = n + pad;
        let got = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())?;
        self.pos += got;
        if got != want {
            bail!("truncated cpio archive");
        }
        Ok(())
    }

    /// The next `n` bytes of content, then skips the padding.
    fn content(&mut self, n: u64) -> anyhow::Result<Vec<u8>> {
        let data = read_limited((&mut self.inner).take(n), n, "the file")?;
        self.pos += data.len() as u64;
        if data.len() as u64 != n {
            bail!("truncated cpio archive");
        }
        self.skip(0)?;
        Ok(data)
    }

    /// The next record's header, `None` at the trailer. Stripped records
    /// take their size from `sizes` (0 when `carriers` says another link
    /// of the set holds the content).
    fn next(&mut self, sizes: &[u64], carriers: &[bool]) -> anyhow::Result<Option<Record>> {
        let mut magic = [0u8; 6];
        self.read_exact(&mut magic)
            .map_err(|_| anyhow!("truncated cpio archive (no trailer)"))?;
        match &magic {
            b"07070X" => {
                let index = self.hex()?;
                let i = index as usize;
                let size = match (sizes.get(i), carriers.get(i)) {
                    (Some(&s), Some(&true)) => s,
                    (Some(_), _) => 0,
                    (None, _) => bail!("payload record for file #{index}, not in the header"),
                };
                self.skip(0)?;
                Ok(Some(Record {
                    id: RecordId::Stripped(index),
                    mode: 0o100000,
                    inode: 0,
                    nlink: 1,
                    size,
                }))
            }
            b"070701" | b"070702" => {
                let mut fields = [0u32; 13];
                for f in &mut fields {
                    *f = self.hex()?;
                }
                let [
                    inode,
                    mode,
                    _uid,
                    _gid,
                    nlink,
                    _mtime,
                    size,
                    ..,
                    namesize,
                    _check,
                ] = fields;
                if namesize == 0 || namesize > 64 << 10 {
                    bail!("cpio record with a name of {namesize} bytes");
                }
                let mut name = vec![0u8; namesize as usize];
                self.read_exact(&mut name)
                    .map_err(|_| anyhow!("truncated cpio archive"))?;
                self.skip(0)?;
                if name.last() == Some(&0) {
                    name.pop();
                }
                let name = String::from_utf8(name)
                    .map_err(|_| anyhow!("cpio record with a non-UTF-8 name"))?;
                if name == "TRAILER!!!" {
                    return Ok(None);
                }
                Ok(Some(Record {
                    id: RecordId::Named(name),
                    mode,
                    inode,
                    nlink,
                    size: u64::from(size),
                }))
            }
            _ => bail!(
                "not a cpio newc payload (magic {:?})",
                String::from_utf8_lossy(&magic)
            ),
        }
    }

    /// Eight hex digits.
    fn hex(&mut self) -> anyhow::Result<u32> {
        let mut digits = [0u8; 8];
        self.read_exact(&mut digits)
            .map_err(|_| anyhow!("truncated cpio archive"))?;
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                anyhow!(
                    "bad cpio header field {:?}",
                    String::from_utf8_lossy(&digits)
                )
            })
    }
}

/// One `%changelog` entry from the header's parallel arrays.
fn changelog_entry(name: &str, timestamp: u64, text: &str) -> ChangelogEntry {
    let (author, version) = split_changelog_name(name);
    let date = i64::try_from(timestamp)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        });
    let text = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_matches('\n')
        .to_string();
    let breaking = is_breaking(&text, None);
    ChangelogEntry {
        version,
        date,
        author,
        urgency: None,
        text,
        breaking,
    }
}

/// A changelog name into its author and version: `Name <mail> - 2.0.0-1`,
/// `Name <mail> 2.0.0-1` and `Name - 1:2.0.0-1` all carry one; `Name
/// <mail>` alone gives an empty version. The version is the first word
/// after the address (or after the last ` - `), brackets removed.
pub fn split_changelog_name(name: &str) -> (Option<String>, String) {
    let name = name.trim();
    let (author, rest) = match name.rfind('>') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => match name.rsplit_once(" - ") {
            Some((a, v)) => (a, v),
            None => (name, ""),
        },
    };
    let rest = rest.trim_start().trim_start_matches('-').trim_start();
    let version = rest
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c| matches!(c, '(' | ')' | '[' | ']'));
    let author = author.trim();
    (
        (!author.is_empty()).then(|| author.to_string()),
        version.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changelog_names() {
        let cases = [
            (
                "Portal Maintainers <portal@example.com> - 2.0.0-1",
                Some("Portal Maintainers <portal@example.com>"),
                "2.0.0-1",
            ),
            (
                "Jane <j@x.org> 1.2-3.el9",
                Some("Jane <j@x.org>"),
                "1.2-3.el9",
            ),
            ("Jane <j@x.org> -1:1.2-3", Some("Jane <j@x.org>"), "1:1.2-3"),
            (
                "Jane <j@x.org> - [2.1.0~rc1-1]",
                Some("Jane <j@x.org>"),
                "2.1.0~rc1-1",
            ),
            ("Jane <j@x.org>", Some("Jane <j@x.org>"), ""),
            ("Jane Doe - 2.0-1", Some("Jane Doe"), "2.0-1"),
            ("Jane Doe", Some("Jane Doe"), ""),
            ("<j@x.org> - 3-1", Some("<j@x.org>"), "3-1"),
            ("", None, ""),
        ];
        for (name, author, version) in cases {
            let (a, v) = split_changelog_name(name);
            assert_eq!((a.as_deref(), v.as_str()), (author, version), "{name:?}");
        }
    }

    #[test]
    fn changelog_entry_from_header() {
        let e = changelog_entry(
            "Portal Maintainers <portal@example.com> - 2.0.0-1",
            1_761_998_400,
            "- BREAKING: settings moved\n- Other  \n",
        );
        assert_eq!(e.version, "2.0.0-1");
        assert_eq!(e.date.as_deref(), Some("2025-11-01T12:00:00+00:00"));
        assert_eq!(e.text, "- BREAKING: settings moved\n- Other");
        assert!(e.breaking);
        assert_eq!(e.urgency, None);
    }

    /// A newc record: header, name, padding, data, padding.
    fn newc(name: &str, mode: u32, inode: u32, nlink: u32, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "070701{inode:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn archive(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = records.concat();
        out.extend(newc("TRAILER!!!", 0, 0, 1, b""));
        out
    }

    fn find(payload: &[u8], wanted: &str, index: usize) -> anyhow::Result<Option<Vec<u8>>> {
        let sizes = [0u64; 8];
        let carriers = [true; 8];
        find_in_payload(
            &mut CpioReader::new(payload),
            Path::new(wanted),
            index,
            &sizes,
            &carriers,
        )
    }

    #[test]
    fn cpio_newc_finds_a_file() {
        let payload = archive(&[
            newc("./opt", 0o040755, 1, 2, b""),
            newc("./opt/portal/dev-portal", 0o100755, 2, 1, b"\x7fELF..."),
            newc("./opt/portal/portal.conf", 0o100644, 3, 1, b"{\"a\": 1}\n"),
        ]);
        assert_eq!(
            find(&payload, "opt/portal/portal.conf", 0)
                .unwrap()
                .unwrap(),
            b"{\"a\": 1}\n"
        );
        assert_eq!(find(&payload, "opt/portal/nothing", 0).unwrap(), None);
    }

    #[test]
    fn cpio_hard_links_take_the_content_of_the_last_link() {
        let payload = archive(&[
            newc("./etc/a.conf", 0o100644, 7, 2, b""),
            newc("./etc/other", 0o100644, 8, 1, b"other"),
            newc("./etc/b.conf", 0o100644, 7, 2, b"shared"),
        ]);
        assert_eq!(find(&payload, "etc/a.conf", 0).unwrap().unwrap(), b"shared");
        assert_eq!(find(&payload, "etc/b.conf", 0).unwrap().unwrap(), b"shared");
    }

    #[test]
    fn cpio_refuses_dot_dot_and_truncation() {
        let payload = archive(&[newc("./opt/../etc/shadow", 0o100644, 1, 1, b"x")]);
        let e = find(&payload, "etc/shadow", 0).unwrap_err();
        assert!(e.to_string().contains(".."), "{e}");
        let payload = archive(&[newc("./a", 0o100644, 1, 1, b"abcdef")]);
        assert!(find(&payload[..120], "b", 0).is_err());
        assert!(find(b"garbage!", "a", 0).is_err());
    }

    #[test]
    fn cpio_stripped_records_by_index() {
        // Index 1 has 5 bytes of content; index 0 (3 bytes) comes first.
        let mut payload = b"07070X00000000".to_vec();
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(b"abc\0");
        payload.extend_from_slice(b"07070X00000001");
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(b"hello\0\0\0");
        payload.extend(newc("TRAILER!!!", 0, 0, 1, b""));
        let sizes = [3u64, 5];
        let carriers = [true, true];
        let got = find_in_payload(
            &mut CpioReader::new(&payload[..]),
            Path::new("opt/b"),
            1,
            &sizes,
            &carriers,
        )
        .unwrap();
        assert_eq!(got.unwrap(), b"hello");
    }
}
