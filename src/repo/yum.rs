//! YUM/DNF repositories: `repodata/repomd.xml`, signed by a detached
//! `repodata/repomd.xml.asc`, names the primary metadata file and its SHA-256;
//! the primary (`primary.xml`, compressed with gzip, xz or zstd, or plain)
//! lists every package with its version, size, SHA-256 and location.
//!
//! Fetching ([`YumRepository`]) is kept apart from parsing ([`parse_repomd`],
//! [`read_primary`], [`parse_primary`]), which is tested on inline XML, on
//! repositories made by `createrepo_c` and on a generated 200,000-package
//! primary.
//!
//! The primary is decompressed and parsed as a stream: only the compressed
//! file (whose SHA-256 is checked against the signed `repomd.xml` before
//! anything is decompressed) and the entries of the wanted package are held
//! in memory, never the decompressed XML nor a tree of it.
//!
//! What is accepted:
//!
//! - the primary named by `<data type="primary">`, with a SHA-256 checksum
//!   (SHA-1 and MD5 alone are refused), compressed as its name says: `.gz`,
//!   `.xz`, `.zst` or plain `.xml` (`.bz2`, which `createrepo_c` can be
//!   asked for, is refused); its `open-size` and `open-checksum`, when
//!   given, are checked on the decompressed stream;
//! - `<package type="rpm">` elements only, for the host architecture or
//!   `noarch`, with a SHA-256 `<checksum>` (its `pkgid` attribute is not
//!   needed);
//! - a `location` that is a plain relative path inside the repository and
//!   carries no `xml:base` (which would move the file to another server).
//!
//! Elements are matched by their qualified names as `createrepo_c` writes
//! them (default namespace for `package`, `name`...), as libsolv does.
//! Entities other than XML's five and character references are refused (no
//! DTD is ever expanded). Attributes are only parsed on the elements upkeep
//! reads.
//!
//! YUM metadata carries no expiry date: a replay of older, validly signed
//! metadata is caught by the replay guard ([`super::replay`]), which
//! compares `<revision>` (when it is a number) and the newest `<timestamp>`
//! of the `<data>` entries with the newest ones this repository served
//! before.

use crate::zstd::ZstdFrames;
use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read};
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use sha2::{Digest, Sha256};
use url::Url;

use super::openpgp::{self, Keyring};
use super::replay::{Freshness, ReplayGuard};
use super::{Candidate, Repository};
use crate::download::Http;
use crate::resolve::{MultiArch, Offer, Op, PackageInfo, Relation, rpm_relation, rpm_requirement};
use crate::version::PkgVersion;

/// Largest `repomd.xml` accepted (Fedora's is about 10 kB).
const REPOMD_LIMIT: u64 = 4 * 1024 * 1024;
/// Largest `repomd.xml.asc` accepted.
const SIGNATURE_LIMIT: u64 = 1024 * 1024;
/// Largest compressed primary accepted when `repomd.xml` gives no `size`.
const PRIMARY_LIMIT: u64 = 512 * 1024 * 1024;
/// Most bytes a primary may decompress to when `repomd.xml` gives no
/// `open-size` (large distribution primaries decompress to hundreds of MB).
const OPEN_LIMIT: u64 = 8 * 1024 * 1024 * 1024;
/// Longest text kept from one element (`name`, `arch`, `checksum`, sizes).
const TEXT_LIMIT: usize = 4096;

/// A YUM/DNF repository for one target.
pub struct YumRepository<'a> {
    http: &'a Http,
    base: Url,
    keyring: Option<Keyring>,
    allow_unsigned: bool,
    replay: Option<ReplayGuard>,
    arch: String,
}

impl<'a> YumRepository<'a> {
    /// A repository at `base` (the directory holding `repodata/`), offering
    /// packages for rpm architecture `arch` (`x86_64`...) and `noarch`.
    /// Without a keyring the metadata is read unsigned (the caller has
    /// checked `allow_unsigned`).
    pub fn new(http: &'a Http, base: &Url, keyring: Option<Keyring>, arch: &str) -> Self {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        YumRepository {
            http,
            base,
            keyring,
            allow_unsigned: false,
            replay: None,
            arch: arch.to_string(),
        }
    }

    /// `allow_unsigned = true` with a keyring: a repository without
    /// `repomd.xml.asc` is read unsigned, with a warning; a signature that
    /// is there is still verified against the keyring.
    pub fn allow_unsigned(mut self, allow: bool) -> Self {
        self.allow_unsigned = allow;
        self
    }

    /// Refuses signed metadata older than the newest this repository
    /// served before, and records the newest (see [`super::replay`]).
    pub fn with_replay_guard(mut self, guard: ReplayGuard) -> Self {
        self.replay = Some(guard);
        self
    }

    /// Fetches `repodata/repomd.xml`, verifies it against
    /// `repodata/repomd.xml.asc` when there is a keyring, and parses it;
    /// with a replay guard, signed metadata older than the newest seen
    /// before is refused.
    pub async fn repomd(&self) -> anyhow::Result<Repomd> {
        let url = self.base.join("repodata/repomd.xml")?;
        let data = self.http.get(&url, REPOMD_LIMIT).await?;
        let signed = match &self.keyring {
            Some(keyring) => {
                let sig_url = self.base.join("repodata/repomd.xml.asc")?;
                match self.http.get_optional(&sig_url, SIGNATURE_LIMIT).await? {
                    Some(sig) => {
                        openpgp::verify_detached(keyring, &data, &sig, SystemTime::now())
                            .with_context(|| {
                                format!("{sig_url}: signature check of {url} failed")
                            })?;
                        true
                    }
                    None if self.allow_unsigned => {
                        tracing::warn!(
                            "repository {} is read UNSIGNED: it publishes no repodata/repomd.xml.asc, and allow_unsigned = true",
                            self.base
                        );
                        false
                    }
                    None => bail!(
                        "{sig_url}: HTTP 404 Not Found: the repository metadata is not signed, but a keyring is configured"
                    ),
                }
            }
            None => {
                tracing::warn!(
                    "repository {} is read UNSIGNED (allow_unsigned = true)",
                    self.base
                );
                false
            }
        };
        let text = std::str::from_utf8(&data).with_context(|| format!("{url}: not UTF-8"))?;
        let repomd = parse_repomd(text).with_context(|| format!("{url}"))?;
        if signed && let Some(guard) = &self.replay {
            guard.check_and_record(url.as_str(), &repomd.freshness())?;
        }
        Ok(repomd)
    }

    /// Fetches the primary named by `repomd` and checks its size and
    /// SHA-256; returns it as stored (compressed) and its URL.
    async fn fetch_primary(&self, repomd: &Repomd) -> anyhow::Result<(Vec<u8>, Url)> {
        let file = &repomd.primary;
        let url = super::join_inside(&self.base, &file.href, "repomd.xml")?;
        let data = self
            .http
            .get(&url, file.size.unwrap_or(PRIMARY_LIMIT))
            .await?;
        crate::download::check_sha256(&url, &data, &file.sha256)?;
        if let Some(size) = file.size
            && data.len() as u64 != size
        {
            bail!(
                "{url}: size {} does not match the {size} of repomd.xml",
                data.len()
            );
        }
        Ok((data, url))
    }

    /// Fetches the primary named by `repomd`, checks its size and SHA-256,
    /// and streams the entries of `package` out of it.
    async fn primary(&self, repomd: &Repomd, package: &str) -> anyhow::Result<Vec<PrimaryEntry>> {
        let (data, url) = self.fetch_primary(repomd).await?;
        let file = repomd.primary.clone();
        let package = package.to_string();
        let arch = self.arch.clone();
        // Decompressing and parsing a large primary takes seconds of CPU:
        // keep it off the async runtime's thread.
        tokio::task::spawn_blocking(move || read_primary(&data[..], &file, &package, &arch))
            .await
            .context("the primary parser failed")?
            .with_context(|| format!("{url}"))
    }

    /// Every package for this host's architecture (or `noarch`) whose name
    /// is one of `names` or whose `rpm:provides` mention one, with the
    /// relations the resolver reads (see [`crate::resolve`]). Each call
    /// reads the primary again (a conditional request with the metadata
    /// cache, then a full parse).
    pub async fn offers(&self, names: &BTreeSet<String>) -> anyhow::Result<Vec<Offer>> {
        let repomd = self.repomd().await?;
        let (data, url) = self.fetch_primary(&repomd).await?;
        let file = repomd.primary.clone();
        let names = names.clone();
        let arch = self.arch.clone();
        let found = tokio::task::spawn_blocking(move || {
            read_primary_offers(&data[..], &file, &names, &arch)
        })
        .await
        .context("the primary parser failed")?
        .with_context(|| format!("{url}"))?;
        found
            .into_iter()
            .map(|o| {
                Ok(Offer {
                    candidate: o.entry.into_candidate(&self.base)?,
                    info: o.info,
                })
            })
            .collect()
    }
}

impl Repository for YumRepository<'_> {
    async fn candidates(&self, package: &str) -> anyhow::Result<Vec<Candidate>> {
        let repomd = self.repomd().await?;
        let entries = self.primary(&repomd, package).await?;
        let out = entries
            .into_iter()
            .map(|e| e.into_candidate(&self.base))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(super::newest_first(out))
    }
}

// ---------------------------------------------------------------------------
// repomd.xml

/// The parts of `repomd.xml` upkeep uses.
#[derive(Clone, Debug)]
pub struct Repomd {
    /// `<revision>`, as written.
    pub revision: Option<String>,
    /// The newest `<timestamp>` of the `<data>` entries (seconds since the
    /// epoch; a fraction is dropped, a timestamp that is not a number is
    /// left out).
    pub timestamp: Option<i64>,
    /// The `<data type="primary">` entry.
    pub primary: MetadataFile,
}

impl Repomd {
    /// The marks the replay guard compares: `revision` when `<revision>`
    /// is a number, `timestamp` the newest `<timestamp>`.
    pub fn freshness(&self) -> Freshness {
        let mut f = Freshness::default();
        if let Some(text) = &self.revision
            && let Ok(n) = text.trim().parse::<i64>()
        {
            f = f.with("revision", n, text.clone());
        }
        if let Some(ts) = self.timestamp {
            let text = match jiff::Timestamp::from_second(ts) {
                Ok(t) => format!("{ts} ({t})"),
                Err(_) => ts.to_string(),
            };
            f = f.with("timestamp", ts, text);
        }
        f
    }
}

/// One `<data>` entry of `repomd.xml`: a metadata file and how to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataFile {
    /// `<location href>`, relative to the repository, checked to stay
    /// inside it; its extension gives the compression.
    pub href: String,
    /// `<checksum type="sha256">` of the file as stored, lower-case hex.
    pub sha256: String,
    /// `<size>` of the file as stored.
    pub size: Option<u64>,
    /// `<open-size>`: size once decompressed.
    pub open_size: Option<u64>,
    /// `<open-checksum type="sha256">`: SHA-256 once decompressed,
    /// lower-case hex.
    pub open_sha256: Option<String>,
}

/// A `<data>` entry while it is read (of the primary's, all fields; of
/// another, only its timestamp).
#[derive(Default)]
struct DataFields {
    primary: bool,
    timestamp: Option<String>,
    href: Option<String>,
    xml_base: bool,
    checksums: Vec<(String, String)>,
    open_checksums: Vec<(String, String)>,
    size: Option<String>,
    open_size: Option<String>,
}

/// Which text `parse_repomd` is reading.
#[derive(Clone, Copy)]
enum RepomdText {
    Revision,
    Timestamp,
    Checksum,
    OpenChecksum,
    Size,
    OpenSize,
}

/// Parses the (already verified) text of `repomd.xml`; it must list a
/// `primary` with a SHA-256 (SHA-1 and MD5 are refused).
pub fn parse_repomd(xml: &str) -> anyhow::Result<Repomd> {
    let mut reader = Reader::from_reader(xml.as_bytes());
    let mut buf = Vec::new();
    let mut skip = Vec::new();
    let mut depth = 0usize;
    let mut root = false;
    let mut revision = None;
    let mut timestamp: Option<i64> = None;
    // The data entry being read, and the primaries read.
    let mut data: Option<DataFields> = None;
    let mut primaries = Vec::new();
    let mut reading: Option<(RepomdText, Option<String>)> = None;
    let mut text = String::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(&reader, e, "repomd.xml"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name().into_inner();
                // Whether upkeep reads inside this element; any other is
                // skipped whole.
                let enter = match depth {
                    0 => {
                        if name != "repomd" {
                            bail!("repomd.xml: the root element is <{name}>, not <repomd>");
                        }
                        root = true;
                        true
                    }
                    1 if name == "revision" => {
                        reading = Some((RepomdText::Revision, None));
                        true
                    }
                    1 if name == "data" => {
                        data = Some(DataFields {
                            primary: attribute(e, "type")?.as_deref() == Some("primary"),
                            ..DataFields::default()
                        });
                        true
                    }
                    2 => match data.as_mut() {
                        None => false,
                        Some(_) if name == "timestamp" => {
                            reading = Some((RepomdText::Timestamp, None));
                            true
                        }
                        Some(fields) if !fields.primary => false,
                        Some(fields) => {
                            match name {
                                "checksum" => {
                                    reading = Some((RepomdText::Checksum, attribute(e, "type")?));
                                }
                                "open-checksum" => {
                                    reading =
                                        Some((RepomdText::OpenChecksum, attribute(e, "type")?));
                                }
                                "size" => reading = Some((RepomdText::Size, None)),
                                "open-size" => reading = Some((RepomdText::OpenSize, None)),
                                "location" => {
                                    if fields.href.is_some() {
                                        bail!(
                                            "repomd.xml: the primary has two <location> elements"
                                        );
                                    }
                                    fields.href = Some(attribute(e, "href")?.unwrap_or_default());
                                    fields.xml_base = attribute(e, "xml:base")?.is_some();
                                }
                                _ => {}
                            }
                            reading.is_some()
                        }
                    },
                    _ => false,
                };
                if !enter {
                    skip_element(&mut reader, e, empty, &mut skip, "repomd.xml")?;
                } else if empty {
                    // Closed at once: handled as if by its end tag.
                    end_repomd_element(
                        depth + 1,
                        &mut data,
                        &mut primaries,
                        &mut reading,
                        &mut text,
                        &mut revision,
                        &mut timestamp,
                    )?;
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                end_repomd_element(
                    depth,
                    &mut data,
                    &mut primaries,
                    &mut reading,
                    &mut text,
                    &mut revision,
                    &mut timestamp,
                )?;
                depth -= 1;
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) if reading.is_some() => {
                push_text(&mut text, &event, "repomd.xml")?;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root {
        bail!("repomd.xml: no <repomd> element (empty or not XML)");
    }
    if depth != 0 {
        bail!("repomd.xml: truncated (the document ends inside an element)");
    }
    if primaries.len() > 1 {
        bail!(
            "repomd.xml lists {} primary metadata files, expected one",
            primaries.len()
        );
    }
    let fields = primaries
        .pop()
        .ok_or_else(|| anyhow!("repomd.xml lists no primary metadata (<data type=\"primary\">)"))?;
    let href = fields
        .href
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("repomd.xml: the primary has no <location href>"))?;
    if fields.xml_base {
        bail!(
            "repomd.xml: refusing the primary's <location xml:base>: metadata must come from the repository itself"
        );
    }
    super::check_relative(&href, "repomd.xml")?;
    let sha256 = match pick_sha256(&fields.checksums, "repomd.xml: primary <checksum>")? {
        Some(sum) => sum,
        None if fields.checksums.is_empty() => {
            bail!("repomd.xml: the primary has no <checksum>")
        }
        None => bail!(
            "repomd.xml: the primary has only {} checksums; SHA-256 is required (SHA-1 and MD5 are refused)",
            checksum_types(&fields.checksums)
        ),
    };
    let open_sha256 = pick_sha256(
        &fields.open_checksums,
        "repomd.xml: primary <open-checksum>",
    )?;
    let number = |text: Option<String>, what: &str| -> anyhow::Result<Option<u64>> {
        text.map(|t| {
            t.trim()
                .parse::<u64>()
                .with_context(|| format!("repomd.xml: primary <{what}> {t:?} is not a number"))
        })
        .transpose()
    };
    Ok(Repomd {
        revision,
        timestamp,
        primary: MetadataFile {
            href,
            sha256,
            size: number(fields.size, "size")?,
            open_size: number(fields.open_size, "open-size")?,
            open_sha256,
        },
    })
}

/// Handles the end of an element at `depth` (1 = a child of `<repomd>`).
fn end_repomd_element(
    depth: usize,
    data: &mut Option<DataFields>,
    primaries: &mut Vec<DataFields>,
    reading: &mut Option<(RepomdText, Option<String>)>,
    text: &mut String,
    revision: &mut Option<String>,
    newest: &mut Option<i64>,
) -> anyhow::Result<()> {
    if let Some((what, kind)) = reading.take() {
        let value = std::mem::take(text).trim().to_string();
        // Checksums and sizes are only read inside the primary's <data>.
        match (what, data.as_mut()) {
            (RepomdText::Revision, _) => *revision = Some(value),
            (_, None) => {}
            (RepomdText::Timestamp, Some(fields)) => fields.timestamp = Some(value),
            (RepomdText::Checksum | RepomdText::OpenChecksum, Some(fields)) => {
                let kind = kind.unwrap_or_default();
                if matches!(what, RepomdText::Checksum) {
                    fields.checksums.push((kind, value));
                } else {
                    fields.open_checksums.push((kind, value));
                }
            }
            (RepomdText::Size | RepomdText::OpenSize, Some(fields)) => {
                let slot = if matches!(what, RepomdText::Size) {
                    &mut fields.size
                } else {
                    &mut fields.open_size
                };
                if slot.replace(value).is_some() {
                    bail!("repomd.xml: the primary has two size elements of one kind");
                }
            }
        }
    } else if depth == 2
        && let Some(fields) = data.take()
    {
        // createrepo_c writes whole seconds; old tools wrote fractions.
        let seconds = fields
            .timestamp
            .as_deref()
            .and_then(|t| t.split('.').next())
            .and_then(|t| t.parse::<i64>().ok());
        if let Some(t) = seconds {
            *newest = Some(newest.map_or(t, |n| n.max(t)));
        }
        if fields.primary {
            primaries.push(fields);
        }
    }
    Ok(())
}

/// The SHA-256 among `(type, value)` checksums, checked to be 64 hex digits.
fn pick_sha256(sums: &[(String, String)], what: &str) -> anyhow::Result<Option<String>> {
    let mut found = None;
    for (kind, value) in sums {
        if !kind.eq_ignore_ascii_case("sha256") {
            continue;
        }
        if !is_sha256(value) {
            bail!("{what}: malformed SHA-256 {value:?}");
        }
        let value = value.to_ascii_lowercase();
        if found.as_ref().is_some_and(|f| *f != value) {
            bail!("{what}: two different SHA-256 checksums");
        }
        found = Some(value);
    }
    Ok(found)
}

fn checksum_types(sums: &[(String, String)]) -> String {
    let types: Vec<&str> = sums.iter().map(|(t, _)| t.as_str()).collect();
    types.join("/")
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------
// primary.xml

/// One `<package type="rpm">` of a primary, for the wanted package.
#[derive(Clone, Debug)]
pub struct PrimaryEntry {
    /// `<name>`.
    pub name: String,
    /// `<arch>`: the host architecture or `noarch`.
    pub arch: String,
    /// `<version epoch ver rel>`, ordered as rpm orders it.
    pub version: PkgVersion,
    /// `<location href>`, checked to stay inside the repository.
    pub href: String,
    /// `<size package>`.
    pub size: u64,
    /// `<checksum type="sha256">`, lower-case hex.
    pub sha256: String,
}

impl PrimaryEntry {
    /// The candidate this entry offers, in the repository at `base` (which
    /// ends in `/`).
    fn into_candidate(self, base: &Url) -> anyhow::Result<Candidate> {
        let url = super::join_inside(base, &self.href, "primary.xml")?;
        Ok(Candidate {
            file_name: self
                .href
                .rsplit('/')
                .next()
                .unwrap_or(&self.href)
                .to_string(),
            url,
            package: self.name,
            version: self.version,
            arch: self.arch,
            size: self.size,
            sha256: self.sha256,
        })
    }
}

/// The primary file `file` (as stored: compressed by the extension of its
/// `href`), streamed: decompressed, checked against its `open-size` and
/// `open-checksum` when `repomd.xml` gives them, and parsed by
/// [`parse_primary`]. The caller has checked the stored file's SHA-256.
pub fn read_primary<R: BufRead>(
    stored: R,
    file: &MetadataFile,
    package: &str,
    arch: &str,
) -> anyhow::Result<Vec<PrimaryEntry>> {
    let found = read_primary_as(stored, file, Want::Package(package), arch)?;
    Ok(found.into_iter().map(|(e, _)| e).collect())
}

/// [`read_primary`] for [`parse_primary_offers`].
pub fn read_primary_offers<R: BufRead>(
    stored: R,
    file: &MetadataFile,
    names: &BTreeSet<String>,
    arch: &str,
) -> anyhow::Result<Vec<OfferEntry>> {
    read_primary_as(stored, file, Want::Offers(names), arch)?
        .into_iter()
        .map(|(entry, relations)| offer_entry(entry, relations))
        .collect()
}

/// [`read_primary`], keeping what `want` says.
fn read_primary_as<R: BufRead>(
    stored: R,
    file: &MetadataFile,
    want: Want<'_>,
    arch: &str,
) -> anyhow::Result<Vec<(PrimaryEntry, Relations)>> {
    let (decoder, format) = decompressor(&file.href, stored)?;
    let mut measured = Measured {
        inner: decoder,
        format,
        count: 0,
        limit: file.open_size.unwrap_or(OPEN_LIMIT),
        hasher: file.open_sha256.as_ref().map(|_| Sha256::new()),
        limit_source: if file.open_size.is_some() {
            "repomd.xml's open-size"
        } else {
            "upkeep's limit"
        },
    };
    let entries = parse_primary_as(
        BufReader::with_capacity(64 * 1024, &mut measured),
        want,
        arch,
    )?;
    // The XML ended; anything after it (there should be nothing) still
    // counts for the size and checksum.
    io::copy(&mut measured, &mut io::sink())?;
    if let Some(size) = file.open_size
        && measured.count != size
    {
        bail!(
            "decompresses to {} bytes, repomd.xml says {size} (open-size)",
            measured.count
        );
    }
    if let (Some(expected), Some(hasher)) = (&file.open_sha256, measured.hasher.take()) {
        let actual = hex::encode(hasher.finalize());
        if actual != *expected {
            bail!(
                "SHA-256 mismatch once decompressed: repomd.xml says {expected} (open-checksum), the data is {actual}"
            );
        }
    }
    Ok(entries)
}

/// The decoder for a metadata file by its name's extension, and the name of
/// its format for messages.
fn decompressor<'r, R: BufRead + 'r>(
    href: &str,
    stored: R,
) -> anyhow::Result<(Box<dyn Read + 'r>, &'static str)> {
    let name = href.rsplit('/').next().unwrap_or(href);
    Ok(if name.ends_with(".gz") {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(stored)),
            "gzip",
        )
    } else if name.ends_with(".xz") {
        (
            Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(stored)),
            "xz",
        )
    } else if name.ends_with(".zst") {
        (Box::new(ZstdFrames::new(stored)), "zstd")
    } else if name.ends_with(".xml") {
        (Box::new(stored), "XML")
    } else {
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        bail!(
            "{name}: unsupported compression {ext:?} (upkeep reads gz, xz, zst or plain .xml primaries)"
        );
    })
}

/// The decompressed stream: counted against a limit, hashed when there is
/// an open-checksum to compare, its errors named after the compression.
struct Measured<R> {
    inner: R,
    format: &'static str,
    count: u64,
    limit: u64,
    hasher: Option<Sha256>,
    /// Where the limit comes from, for messages.
    limit_source: &'static str,
}

impl<R: Read> Read for Measured<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt {} data: {e}", self.format),
            )
        })?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompresses to more than {} bytes ({})",
                    self.limit, self.limit_source
                ),
            ));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// What a parse of the primary keeps.
#[derive(Clone, Copy)]
enum Want<'w> {
    /// The entries of one package, by name (a package of another name is
    /// skipped as soon as its `<name>` is read).
    Package(&'w str),
    /// The packages named in the set or providing one of them, with their
    /// `rpm:requires`, `rpm:provides` and `rpm:conflicts` (every package's
    /// `<format>` is read).
    Offers(&'w BTreeSet<String>),
}

/// One `<rpm:entry>` of a relation list, as written.
#[derive(Clone, Debug, Default)]
struct RawRelation {
    name: String,
    flags: Option<String>,
    epoch: Option<String>,
    ver: Option<String>,
    rel: Option<String>,
}

/// A package's relation lists (read for [`Want::Offers`] only).
#[derive(Clone, Debug, Default)]
struct Relations {
    provides: Vec<RawRelation>,
    requires: Vec<RawRelation>,
    conflicts: Vec<RawRelation>,
}

/// Which relation list the `<rpm:entry>` elements being read belong to.
#[derive(Clone, Copy)]
enum RelationList {
    Provides,
    Requires,
    Conflicts,
}

/// A `<package>` being read, for the wanted package (until its name or
/// architecture show it is not).
#[derive(Default)]
struct PackageFields {
    name: Option<String>,
    arch: Option<String>,
    epoch: Option<String>,
    ver: Option<String>,
    rel: Option<String>,
    version_seen: bool,
    checksum: Option<(Option<String>, String)>,
    size: Option<Option<String>>,
    href: Option<Option<String>>,
    xml_base: bool,
    relations: Relations,
}

/// Which text of a `<package>` child is being read.
#[derive(Clone, Copy)]
enum PackageText {
    Name,
    Arch,
    Checksum,
}

/// Streams a decompressed primary (`primary.xml`) and returns the entries of
/// `package` for `arch` or `noarch`: only those are kept, every other
/// `<package>` is skipped as soon as its name or architecture is known.
pub fn parse_primary<R: BufRead>(
    xml: R,
    package: &str,
    arch: &str,
) -> anyhow::Result<Vec<PrimaryEntry>> {
    let found = parse_primary_as(xml, Want::Package(package), arch)?;
    Ok(found.into_iter().map(|(e, _)| e).collect())
}

/// One primary entry with its relations, for the resolver.
#[derive(Clone, Debug)]
pub struct OfferEntry {
    /// Where to get it.
    pub entry: PrimaryEntry,
    /// Its name, version, architecture and relations.
    pub info: PackageInfo,
}

/// Streams a decompressed primary and returns the packages for `arch` or
/// `noarch` whose name is one of `names` or whose `rpm:provides` mention
/// one, with their relations: `rpm:requires` through [`rpm_requirement`]
/// (`rpmlib(...)` and file requirements left to rpm), `rpm:provides` and
/// `rpm:conflicts` through [`rpm_relation`], each bound from its `flags`
/// (`EQ`, `LT`, `LE`, `GT`, `GE`) and `epoch`/`ver`/`rel`. Weak
/// dependencies, obsoletes and file lists are not read. A matching package
/// whose entries cannot be read is an error naming it.
pub fn parse_primary_offers<R: BufRead>(
    xml: R,
    names: &BTreeSet<String>,
    arch: &str,
) -> anyhow::Result<Vec<OfferEntry>> {
    parse_primary_as(xml, Want::Offers(names), arch)?
        .into_iter()
        .map(|(entry, relations)| offer_entry(entry, relations))
        .collect()
}

/// The resolver's view of a primary entry and its relation lists.
fn offer_entry(entry: PrimaryEntry, relations: Relations) -> anyhow::Result<OfferEntry> {
    let label = format!(
        "primary.xml: {}-{}.{}",
        entry.name, entry.version, entry.arch
    );
    let bound = |r: &RawRelation| -> anyhow::Result<Option<(Op, PkgVersion)>> {
        let Some(flags) = r.flags.as_deref().filter(|f| !f.is_empty()) else {
            return Ok(None);
        };
        let op =
            Op::from_rpm(flags).ok_or_else(|| anyhow!("{}: unknown flags {flags:?}", r.name))?;
        let ver = r
            .ver
            .as_deref()
            .ok_or_else(|| anyhow!("{}: flags {flags} without ver", r.name))?;
        let version = PkgVersion::rpm_parts(r.epoch.as_deref(), ver, r.rel.as_deref())
            .with_context(|| r.name.clone())?;
        Ok(Some((op, version)))
    };
    let mut depends = Vec::new();
    for r in &relations.requires {
        let constraint = bound(r).with_context(|| format!("{label}: rpm:requires"))?;
        depends.extend(
            rpm_requirement(&r.name, constraint)
                .with_context(|| format!("{label}: rpm:requires"))?,
        );
    }
    let list = |raw: &[RawRelation], what: &str| -> anyhow::Result<Vec<Relation>> {
        raw.iter()
            .map(|r| {
                let constraint = bound(r).with_context(|| format!("{label}: {what}"))?;
                Ok(rpm_relation(&r.name, constraint))
            })
            .collect()
    };
    let mut provides = list(&relations.provides, "rpm:provides")?;
    if !provides.iter().any(|p| p.name == entry.name) {
        provides.insert(
            0,
            rpm_relation(&entry.name, Some((Op::Eq, entry.version.clone()))),
        );
    }
    let conflicts = list(&relations.conflicts, "rpm:conflicts")?;
    let info = PackageInfo {
        name: entry.name.clone(),
        version: entry.version.clone(),
        arch: entry.arch.clone(),
        multi_arch: MultiArch::No,
        depends,
        provides,
        breaks: Vec::new(),
        conflicts,
        priority: None,
        essential: false,
        protected: false,
    };
    Ok(OfferEntry { entry, info })
}

/// Whether a finished package is what `want` asks for: for
/// [`Want::Offers`], by its name or one of its Provides.
fn offered(p: &PackageFields, want: Want<'_>) -> bool {
    match want {
        Want::Package(_) => true,
        Want::Offers(names) => {
            p.name.as_deref().is_some_and(|n| names.contains(n))
                || p.relations
                    .provides
                    .iter()
                    .any(|r| names.contains(r.name.as_str()))
        }
    }
}

/// Streams a decompressed primary, keeping what `want` says (see
/// [`parse_primary`] and [`parse_primary_offers`]).
fn parse_primary_as<R: BufRead>(
    xml: R,
    want: Want<'_>,
    arch: &str,
) -> anyhow::Result<Vec<(PrimaryEntry, Relations)>> {
    const WHERE: &str = "primary.xml";
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut skip = Vec::new();
    let mut depth = 0usize;
    let mut root = false;
    let mut current: Option<PackageFields> = None;
    let mut reading: Option<PackageText> = None;
    // Inside a <package>'s <format> (offers only), and in which relation
    // list of it.
    let mut in_format = false;
    let mut list: Option<RelationList> = None;
    let offers = matches!(want, Want::Offers(_));
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(&reader, e, WHERE))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.name().into_inner();
                // Whether upkeep reads inside this element; any other is
                // skipped whole.
                let enter = match depth {
                    0 => {
                        if name != "metadata" {
                            bail!("{WHERE}: the root element is <{name}>, not <metadata>");
                        }
                        root = true;
                        true
                    }
                    1 if name == "package"
                        && !empty
                        && attribute(e, "type")?.as_deref() == Some("rpm") =>
                    {
                        current = Some(PackageFields::default());
                        true
                    }
                    2 => match current.as_mut() {
                        None => false,
                        Some(p) => {
                            match name {
                                "name" | "arch" | "checksum" => {
                                    let (what, taken) = match name {
                                        "name" => (PackageText::Name, p.name.is_some()),
                                        "arch" => (PackageText::Arch, p.arch.is_some()),
                                        _ => (PackageText::Checksum, p.checksum.is_some()),
                                    };
                                    if taken {
                                        bail!("{WHERE}: a <package> has two <{name}> elements");
                                    }
                                    if let PackageText::Checksum = what {
                                        p.checksum = Some((attribute(e, "type")?, String::new()));
                                    }
                                    reading = Some(what);
                                }
                                "version" => {
                                    if std::mem::replace(&mut p.version_seen, true) {
                                        bail!("{WHERE}: a <package> has two <version> elements");
                                    }
                                    p.epoch = attribute(e, "epoch")?;
                                    p.ver = attribute(e, "ver")?;
                                    p.rel = attribute(e, "rel")?;
                                }
                                "size" => {
                                    let size = attribute(e, "package")?;
                                    if p.size.replace(size).is_some() {
                                        bail!("{WHERE}: a <package> has two <size> elements");
                                    }
                                }
                                "location" => {
                                    if p.href.replace(attribute(e, "href")?).is_some() {
                                        bail!("{WHERE}: a <package> has two <location> elements");
                                    }
                                    p.xml_base = attribute(e, "xml:base")?.is_some();
                                }
                                "format" if offers && !empty => in_format = true,
                                // <description>...: nothing upkeep reads.
                                _ => {}
                            }
                            reading.is_some() || in_format
                        }
                    },
                    3 if in_format && !empty => {
                        list = match name {
                            "rpm:provides" => Some(RelationList::Provides),
                            "rpm:requires" => Some(RelationList::Requires),
                            "rpm:conflicts" => Some(RelationList::Conflicts),
                            _ => None,
                        };
                        list.is_some()
                    }
                    4 if name == "rpm:entry" => {
                        if let (Some(which), Some(p)) = (list, current.as_mut()) {
                            let entry = RawRelation {
                                name: attribute(e, "name")?.unwrap_or_default(),
                                flags: attribute(e, "flags")?,
                                epoch: attribute(e, "epoch")?,
                                ver: attribute(e, "ver")?,
                                rel: attribute(e, "rel")?,
                            };
                            match which {
                                RelationList::Provides => p.relations.provides.push(entry),
                                RelationList::Requires => p.relations.requires.push(entry),
                                RelationList::Conflicts => p.relations.conflicts.push(entry),
                            }
                        }
                        false
                    }
                    _ => false,
                };
                if !enter {
                    skip_element(&mut reader, e, empty, &mut skip, WHERE)?;
                } else if empty {
                    // <name/>: empty text, handled as by </name> below. (An
                    // empty root has no packages; <package/> is not entered.)
                    if reading.is_some() {
                        end_text(&mut current, &mut reading, &mut text);
                        if !wanted(current.as_ref(), want, arch) {
                            current = None;
                            skip_package(&mut reader, &mut skip)?;
                            depth -= 1;
                        }
                    }
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 2 && reading.is_some() {
                    end_text(&mut current, &mut reading, &mut text);
                    if !wanted(current.as_ref(), want, arch) {
                        // Not the wanted package: skip the rest of it.
                        current = None;
                        skip_package(&mut reader, &mut skip)?;
                        depth -= 1;
                    }
                } else if depth == 2 {
                    in_format = false;
                } else if depth == 3 {
                    list = None;
                } else if depth == 1
                    && let Some(mut p) = current.take()
                    && wanted(Some(&p), want, arch)
                    && offered(&p, want)
                {
                    let relations = std::mem::take(&mut p.relations);
                    out.push((finish_package(p)?, relations));
                }
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
                if reading.is_some() && depth == 3 =>
            {
                push_text(&mut text, &event, WHERE)?;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root {
        bail!("{WHERE}: no <metadata> element (empty or not XML)");
    }
    if depth != 0 {
        bail!("{WHERE}: truncated (the document ends inside an element)");
    }
    Ok(out)
}

/// Stores the text just read into its field.
fn end_text(
    current: &mut Option<PackageFields>,
    reading: &mut Option<PackageText>,
    text: &mut String,
) {
    let value = std::mem::take(text).trim().to_string();
    let (Some(p), Some(what)) = (current.as_mut(), reading.take()) else {
        return;
    };
    match what {
        PackageText::Name => p.name = Some(value),
        PackageText::Arch => p.arch = Some(value),
        PackageText::Checksum => {
            if let Some((_, sum)) = &mut p.checksum {
                *sum = value;
            }
        }
    }
}

/// Whether a package (as far as it is known) may be the wanted one.
fn wanted(p: Option<&PackageFields>, want: Want<'_>, arch: &str) -> bool {
    let Some(p) = p else { return false };
    let name_ok = match want {
        Want::Package(package) => p.name.as_deref().is_none_or(|n| n == package),
        // Known only once its provides are read.
        Want::Offers(_) => true,
    };
    name_ok && p.arch.as_deref().is_none_or(|a| a == arch || a == "noarch")
}

/// Checks a wanted `<package>` and makes its entry.
fn finish_package(p: PackageFields) -> anyhow::Result<PrimaryEntry> {
    let name = p
        .name
        .ok_or_else(|| anyhow!("primary.xml: a <package> has no <name>"))?;
    let arch = p
        .arch
        .ok_or_else(|| anyhow!("primary.xml: {name}: a <package> has no <arch>"))?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let ver = nonempty(p.ver)
        .ok_or_else(|| anyhow!("primary.xml: {name}.{arch}: no <version ver=...>"))?;
    let (epoch, rel) = (nonempty(p.epoch), nonempty(p.rel));
    let label = format!(
        "{name}-{}{ver}{}.{arch}",
        epoch
            .as_deref()
            .map(|e| format!("{e}:"))
            .unwrap_or_default(),
        rel.as_deref().map(|r| format!("-{r}")).unwrap_or_default(),
    );
    let version = PkgVersion::rpm_parts(epoch.as_deref(), &ver, rel.as_deref())
        .with_context(|| format!("primary.xml: {label}"))?;
    let sha256 = match p.checksum {
        None => bail!("primary.xml: {label}: no <checksum>"),
        Some((kind, sum)) => {
            let kind = kind.unwrap_or_default();
            if !kind.eq_ignore_ascii_case("sha256") {
                bail!(
                    "primary.xml: {label}: the package checksum is {kind:?}, SHA-256 is required"
                );
            }
            if !is_sha256(&sum) {
                bail!("primary.xml: {label}: malformed SHA-256 {sum:?}");
            }
            sum.to_ascii_lowercase()
        }
    };
    let size = p
        .size
        .flatten()
        .ok_or_else(|| anyhow!("primary.xml: {label}: no <size package=...>"))?;
    let size = size.trim().parse::<u64>().with_context(|| {
        format!("primary.xml: {label}: <size package={size:?}> is not a number")
    })?;
    let href = nonempty(p.href.flatten())
        .ok_or_else(|| anyhow!("primary.xml: {label}: no <location href=...>"))?;
    if p.xml_base {
        bail!(
            "primary.xml: {label}: refusing <location xml:base>: packages must come from the repository itself"
        );
    }
    super::check_relative(&href, &format!("primary.xml: {label}"))?;
    Ok(PrimaryEntry {
        name,
        arch,
        version,
        href,
        size,
        sha256,
    })
}

// ---------------------------------------------------------------------------
// XML helpers

/// The value of attribute `name` (a qualified name, `xml:base`), with
/// entities resolved.
fn attribute(e: &BytesStart<'_>, name: &str) -> anyhow::Result<Option<String>> {
    let Some(a) = e
        .try_get_attribute(name)
        .map_err(|err| anyhow!("malformed attributes of <{}>: {err}", e.name().into_inner()))?
    else {
        return Ok(None);
    };
    let value = a
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map_err(|err| anyhow!("attribute {name} of <{}>: {err}", e.name().into_inner()))?;
    Ok(Some(value.into_owned()))
}

/// Appends the text of a text, CDATA or entity reference event.
fn push_text(out: &mut String, event: &Event<'_>, what: &str) -> anyhow::Result<()> {
    match event {
        Event::Text(t) => out.push_str(&t.xml10_content()),
        Event::CData(c) => out.push_str(&c.xml10_content()),
        Event::GeneralRef(r) => match r.resolve_char_ref() {
            Ok(Some(c)) => out.push(c),
            Ok(None) => match quick_xml::escape::resolve_xml_entity(r) {
                Some(s) => out.push_str(s),
                None => bail!("{what}: unknown entity &{};", &**r),
            },
            Err(e) => bail!("{what}: bad character reference &{};: {e}", &**r),
        },
        _ => {}
    }
    if out.len() > TEXT_LIMIT {
        bail!("{what}: text longer than {TEXT_LIMIT} bytes where a short value is expected");
    }
    Ok(())
}

/// Skips the rest of element `e` (nothing to skip when it is empty).
fn skip_element<R: BufRead>(
    reader: &mut Reader<R>,
    e: &BytesStart<'_>,
    empty: bool,
    skip: &mut Vec<u8>,
    what: &str,
) -> anyhow::Result<()> {
    if !empty {
        reader
            .read_to_end_into(QName(e.name().into_inner()), skip)
            .map_err(|err| xml_error(reader, err, what))?;
        skip.clear();
    }
    Ok(())
}

/// Skips the rest of the `<package>` being read.
fn skip_package<R: BufRead>(reader: &mut Reader<R>, skip: &mut Vec<u8>) -> anyhow::Result<()> {
    skip_element(
        reader,
        &BytesStart::new("package"),
        false,
        skip,
        "primary.xml",
    )
}

/// A quick-xml error as one line: a decompression failure as itself, a
/// syntax error with its position in the decompressed text.
fn xml_error<R>(reader: &Reader<R>, e: quick_xml::Error, what: &str) -> anyhow::Error {
    match e {
        quick_xml::Error::Io(io) => anyhow!("{io}"),
        // error_position() is only kept up to date for syntax errors.
        other => anyhow!(
            "{what}: malformed XML at byte {}: {other}",
            match reader.error_position() {
                0 => reader.buffer_position(),
                at => at,
            }
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use super::*;

    const SUM_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SUM_B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    /// A repomd.xml as createrepo_c writes it, with the primary at `href`
    /// and its checksum elements `sums`.
    fn repomd(href: &str, sums: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1795256984</revision>
  <tags><content>binary-x86_64</content></tags>
  <data type="filelists">
    <checksum type="sha256">{SUM_A}</checksum>
    <location href="repodata/x-filelists.xml.gz"/>
    <size>334</size>
  </data>
  <data type="primary_db">
    <checksum type="sha256">{SUM_A}</checksum>
    <location href="repodata/x-primary.sqlite.bz2"/>
  </data>
  <data type="primary">
    {sums}
    <location href="{href}"/>
    <timestamp>1795256984</timestamp>
    <size>730</size>
    <open-size>2856</open-size>
  </data>
</repomd>
"#
        )
    }

    fn sha256_sums() -> String {
        format!(
            r#"<checksum type="sha256">{SUM_B}</checksum>
    <open-checksum type="sha256">{SUM_A}</open-checksum>"#
        )
    }

    #[test]
    fn repomd_names_the_primary_in_each_compression() {
        for href in [
            "repodata/0b-primary.xml.gz",
            "repodata/0b-primary.xml.xz",
            "repodata/0b-primary.xml.zst",
            "repodata/primary.xml",
        ] {
            let r = parse_repomd(&repomd(href, &sha256_sums())).unwrap();
            assert_eq!(r.revision.as_deref(), Some("1795256984"));
            assert_eq!(
                r.primary,
                MetadataFile {
                    href: href.to_string(),
                    sha256: SUM_B.to_ascii_lowercase(),
                    size: Some(730),
                    open_size: Some(2856),
                    open_sha256: Some(SUM_A.to_string()),
                }
            );
        }
    }

    #[test]
    fn repomd_without_primary_is_refused() {
        let text =
            repomd("repodata/p.xml.gz", &sha256_sums()).replace("\"primary\"", "\"updateinfo\"");
        let e = parse_repomd(&text).unwrap_err();
        assert!(format!("{e:#}").contains("no primary"), "{e:#}");
        let e = parse_repomd("<repomd/>").unwrap_err();
        assert!(format!("{e:#}").contains("no primary"), "{e:#}");
    }

    #[test]
    fn repomd_with_only_sha1_or_md5_is_refused() {
        let sums = format!(
            r#"<checksum type="sha">{}</checksum><checksum type="md5">{}</checksum>
            <open-checksum type="sha256">{SUM_A}</open-checksum>"#,
            &SUM_A[..40],
            &SUM_A[..32]
        );
        let e = parse_repomd(&repomd("repodata/p.xml.gz", &sums)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("only sha/md5 checksums"), "{msg}");
        assert!(msg.contains("SHA-256 is required"), "{msg}");
        // A SHA-256 next to a SHA-1 is used.
        let sums = format!(
            r#"<checksum type="sha1">{}</checksum><checksum type="sha256">{SUM_A}</checksum>"#,
            &SUM_A[..40]
        );
        let r = parse_repomd(&repomd("repodata/p.xml.gz", &sums)).unwrap();
        assert_eq!(r.primary.sha256, SUM_A);
        assert_eq!(r.primary.open_sha256, None);
        // No checksum at all.
        let e = parse_repomd(&repomd("repodata/p.xml.gz", "")).unwrap_err();
        assert!(format!("{e:#}").contains("no <checksum>"), "{e:#}");
        // A malformed one.
        let e = parse_repomd(&repomd(
            "repodata/p.xml.gz",
            r#"<checksum type="sha256">abc</checksum>"#,
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("malformed SHA-256"), "{e:#}");
    }

    #[test]
    fn repomd_primary_outside_the_repository_is_refused() {
        for href in [
            "../p.xml.gz",
            "/srv/p.xml.gz",
            "http://evil/p.xml.gz",
            "a//p.xml.gz",
            "",
        ] {
            let e = parse_repomd(&repomd(href, &sha256_sums())).unwrap_err();
            let msg = format!("{e:#}");
            assert!(
                msg.contains("refusing location") || msg.contains("no <location"),
                "{href}: {msg}"
            );
        }
        let text = repomd("repodata/p.xml.gz", &sha256_sums()).replace(
            "<location href",
            "<location xml:base=\"http://mirror.example/\" href",
        );
        let e = parse_repomd(&text).unwrap_err();
        assert!(format!("{e:#}").contains("xml:base"), "{e:#}");
    }

    #[test]
    fn malformed_repomd_is_an_error() {
        let good = repomd("repodata/p.xml.gz", &sha256_sums());
        for (bad, want) in [
            (
                good[..good.len() / 2].to_string(),
                "not found before end of input",
            ),
            (
                good.replace("</data>\n</repomd>", "</repomd>"),
                "malformed XML",
            ),
            (
                good.replace("<size>730</size>", "<size>seven</size>"),
                "not a number",
            ),
            (
                good.replace("1795256984</revision>", "&bogus;</revision>"),
                "unknown entity",
            ),
            ("not xml at all".to_string(), "no <repomd>"),
            (String::new(), "no <repomd>"),
            ("<html><body/></html>".to_string(), "not <repomd>"),
        ] {
            let e = parse_repomd(&bad).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{want}: {e:#}");
        }
    }

    /// One `<package>` of a primary as createrepo_c writes it.
    fn package(name: &str, arch: &str, version: &str, href: &str) -> String {
        format!(
            r#"<package type="rpm">
  <name>{name}</name>
  <arch>{arch}</arch>
  {version}
  <checksum type="sha256" pkgid="YES">{SUM_B}</checksum>
  <summary>test package &amp; &lt;stuff&gt;</summary>
  <description>Test package.</description>
  <packager></packager>
  <url></url>
  <time file="1795256983" build="1795256983"/>
  <size package="5541" installed="0" archive="124"/>
  <location href="{href}"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:provides>
      <rpm:entry name="{name}" flags="EQ" epoch="0" ver="1" rel="1"/>
    </rpm:provides>
    <file>/usr/bin/{name}</file>
  </format>
</package>
"#
        )
    }

    fn primary(packages: &[String]) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{}">
{}</metadata>
"#,
            packages.len(),
            packages.concat()
        )
    }

    fn ver(epoch: &str, ver: &str, rel: &str) -> String {
        format!(r#"<version epoch="{epoch}" ver="{ver}" rel="{rel}"/>"#)
    }

    fn rpm(epoch: Option<&str>, v: &str, r: Option<&str>) -> PkgVersion {
        PkgVersion::rpm_parts(epoch, v, r).unwrap()
    }

    #[test]
    fn primary_keeps_the_package_for_host_arch_and_noarch() {
        let text = primary(&[
            package(
                "other",
                "x86_64",
                &ver("0", "9.0", "1"),
                "Packages/o/other.rpm",
            ),
            package(
                "portal",
                "x86_64",
                &ver("0", "1.0.0", "1"),
                "Packages/p/portal-1.0.0-1.x86_64.rpm",
            ),
            package(
                "portal",
                "aarch64",
                &ver("0", "3.0.0", "1"),
                "Packages/p/portal-3.0.0-1.aarch64.rpm",
            ),
            package(
                "portal",
                "noarch",
                &ver("0", "1.10.0", "1"),
                "Packages/p/portal-1.10.0-1.noarch.rpm",
            ),
            package(
                "portal",
                "src",
                &ver("0", "4.0.0", "1"),
                "Packages/p/portal-4.0.0-1.src.rpm",
            ),
            package(
                "portal-extra",
                "x86_64",
                &ver("0", "5.0.0", "1"),
                "Packages/p/portal-extra.rpm",
            ),
            package("portal", "x86_64", &ver("0", "6.0.0", "1"), "p.rpm")
                .replace("type=\"rpm\"", "type=\"drpm\""),
        ]);
        let e = parse_primary(text.as_bytes(), "portal", "x86_64").unwrap();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            (e[0].arch.as_str(), &e[0].version),
            ("x86_64", &rpm(Some("0"), "1.0.0", Some("1")))
        );
        assert_eq!(
            (e[1].arch.as_str(), &e[1].version),
            ("noarch", &rpm(Some("0"), "1.10.0", Some("1")))
        );
        assert_eq!(e[1].href, "Packages/p/portal-1.10.0-1.noarch.rpm");
        assert_eq!(e[1].size, 5541);
        assert_eq!(e[1].sha256, SUM_B.to_ascii_lowercase());
        assert_eq!(e[1].name, "portal");

        let base = Url::parse("https://repo.example/el9/x86_64/").unwrap();
        let c = super::super::newest_first(
            e.into_iter()
                .map(|e| e.into_candidate(&base).unwrap())
                .collect(),
        );
        assert_eq!(c[0].version, rpm(Some("0"), "1.10.0", Some("1")));
        assert_eq!(
            c[0].url.as_str(),
            "https://repo.example/el9/x86_64/Packages/p/portal-1.10.0-1.noarch.rpm"
        );
        assert_eq!(c[0].file_name, "portal-1.10.0-1.noarch.rpm");
        assert_eq!(c[1].file_name, "portal-1.0.0-1.x86_64.rpm");

        // The aarch64 host sees its own build and noarch.
        let e = parse_primary(text.as_bytes(), "portal", "aarch64").unwrap();
        let arches: Vec<&str> = e.iter().map(|e| e.arch.as_str()).collect();
        assert_eq!(arches, ["aarch64", "noarch"]);
        // Nothing for an unknown package.
        assert!(
            parse_primary(text.as_bytes(), "nope", "x86_64")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn primary_epochs_are_kept_and_ordered() {
        let text = primary(&[
            package("portal", "noarch", &ver("0", "9.0", "1"), "a.rpm"),
            package("portal", "noarch", &ver("2", "1.0", "1"), "b.rpm"),
            package(
                "portal",
                "noarch",
                r#"<version ver="5.0" rel="1"/>"#,
                "c.rpm",
            ),
            package(
                "portal",
                "noarch",
                r#"<version epoch="" ver="5.1"/>"#,
                "d.rpm",
            ),
        ]);
        let e = parse_primary(text.as_bytes(), "portal", "x86_64").unwrap();
        assert_eq!(e[0].version, rpm(Some("0"), "9.0", Some("1")));
        assert_eq!(e[1].version, rpm(Some("2"), "1.0", Some("1")));
        assert_eq!(e[2].version, rpm(None, "5.0", Some("1")));
        assert_eq!(e[3].version, rpm(None, "5.1", None));
        let base = Url::parse("https://repo.example/").unwrap();
        let c = super::super::newest_first(
            e.into_iter()
                .map(|e| e.into_candidate(&base).unwrap())
                .collect(),
        );
        assert_eq!(c[0].file_name, "b.rpm", "epoch 2 wins");
    }

    #[test]
    fn primary_location_outside_the_repository_is_refused() {
        for bad in [
            "../../etc/passwd.rpm",
            "/etc/x.rpm",
            "Packages/../../x.rpm",
            "http://evil.example/x.rpm",
            "file:///x.rpm",
            "Packages//x.rpm",
            "Packages\\x.rpm",
        ] {
            let text = primary(&[package("portal", "noarch", &ver("0", "1", "1"), bad)]);
            let e = parse_primary(text.as_bytes(), "portal", "x86_64").unwrap_err();
            assert!(
                format!("{e:#}").contains("refusing location"),
                "{bad}: {e:#}"
            );
        }
        let text = primary(&[package("portal", "noarch", &ver("0", "1", "1"), "x.rpm")]).replace(
            "<location href",
            "<location xml:base=\"http://mirror.example/\" href",
        );
        let e = parse_primary(text.as_bytes(), "portal", "x86_64").unwrap_err();
        assert!(format!("{e:#}").contains("xml:base"), "{e:#}");
        // Locations that pass as relative paths but that URL parsing would
        // move outside the repository or to another file.
        let base = Url::parse("https://repo.example/el9/x86_64/").unwrap();
        for bad in [
            "Packages/%2e%2e/%2E%2e/x.rpm",
            "a:b.rpm",
            "C:/x.rpm",
            "x.rpm#frag",
            "x.rpm?q=1",
        ] {
            let text = primary(&[package("portal", "noarch", &ver("0", "1", "1"), bad)]);
            let e = parse_primary(text.as_bytes(), "portal", "x86_64").unwrap();
            let e = e
                .into_iter()
                .next()
                .unwrap()
                .into_candidate(&base)
                .unwrap_err();
            assert!(
                format!("{e:#}").contains("refusing location"),
                "{bad}: {e:#}"
            );
        }
        let ok = primary(&[package(
            "portal",
            "noarch",
            &ver("0", "1", "1"),
            "c++/a%20b.rpm",
        )]);
        let e = parse_primary(ok.as_bytes(), "portal", "x86_64").unwrap();
        let c = e.into_iter().next().unwrap().into_candidate(&base).unwrap();
        assert_eq!(
            c.url.as_str(),
            "https://repo.example/el9/x86_64/c++/a%20b.rpm"
        );
        // Another package's odd location is none of upkeep's business.
        assert!(
            parse_primary(text.as_bytes(), "other", "x86_64")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn primary_entries_with_missing_or_weak_fields_are_refused() {
        let good = package("portal", "noarch", &ver("0", "1.0", "1"), "p.rpm");
        for (bad, want) in [
            (
                good.replace(
                    &format!("type=\"sha256\" pkgid=\"YES\">{SUM_B}"),
                    &format!("type=\"sha\" pkgid=\"YES\">{}", &SUM_A[..40]),
                ),
                "SHA-256 is required",
            ),
            (good.replace(SUM_B, "xyz"), "malformed SHA-256"),
            (
                good.replace(
                    &format!("<checksum type=\"sha256\" pkgid=\"YES\">{SUM_B}</checksum>"),
                    "",
                ),
                "no <checksum>",
            ),
            (
                good.replace("<size package=\"5541\"", "<size"),
                "no <size package",
            ),
            (
                good.replace("package=\"5541\"", "package=\"-1\""),
                "not a number",
            ),
            (
                good.replace("<location href=\"p.rpm\"/>", ""),
                "no <location",
            ),
            (
                good.replace("<version epoch=\"0\" ver=\"1.0\" rel=\"1\"/>", ""),
                "no <version",
            ),
            (good.replace("<arch>noarch</arch>", ""), "no <arch>"),
            (
                good.replace(
                    "<arch>noarch</arch>",
                    "<arch>noarch</arch><arch>noarch</arch>",
                ),
                "two <arch>",
            ),
        ] {
            let e = parse_primary(primary(&[bad]).as_bytes(), "portal", "x86_64").unwrap_err();
            assert!(format!("{e:#}").contains(want), "{want}: {e:#}");
        }
    }

    #[test]
    fn malformed_primary_is_an_error_not_a_panic() {
        let good = primary(&[
            package("portal", "noarch", &ver("0", "1.0", "1"), "p.rpm"),
            package("other", "noarch", &ver("0", "1.0", "1"), "o.rpm"),
        ]);
        assert_eq!(
            parse_primary(good.as_bytes(), "portal", "x86_64")
                .unwrap()
                .len(),
            1
        );
        let cut = good.find("<name>other").unwrap();
        for (bad, want) in [
            (good[..cut].to_string(), "truncated"),
            (good[..good.len() - 3].to_string(), "malformed XML"),
            (good.replace("</arch>", "</arc>"), "malformed XML"),
            (
                good.replace("<name>portal</name>", "<name>por&nbsp;tal</name>"),
                "unknown entity",
            ),
            (
                good.replace("<location href=\"p.rpm\"/>", "<location href=p.rpm/>"),
                "malformed attributes",
            ),
            ("".to_string(), "no <metadata>"),
            ("\u{feff}garbage".to_string(), "no <metadata>"),
            ("<repomd></repomd>".to_string(), "not <metadata>"),
        ] {
            let e = parse_primary(bad.as_bytes(), "portal", "x86_64").expect_err(want);
            assert!(format!("{e:#}").contains(want), "{want}: {e:#}");
        }
        // Not UTF-8.
        let mut bytes = good.clone().into_bytes();
        let at = good.find("portal").unwrap();
        bytes[at] = 0xff;
        assert!(parse_primary(&bytes[..], "portal", "x86_64").is_err());
        // Entities in the name are resolved; an empty <metadata/> is fine.
        let amp = good.replace("<name>portal</name>", "<name>p&#x6f;rt&#97;l</name>");
        assert_eq!(
            parse_primary(amp.as_bytes(), "portal", "x86_64")
                .unwrap()
                .len(),
            1
        );
        assert!(
            parse_primary(&b"<metadata/>"[..], "portal", "x86_64")
                .unwrap()
                .is_empty()
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zst(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// The repomd entry for a primary stored at `href`, decompressing to
    /// `open`.
    fn entry(href: &str, stored: &[u8], open: &[u8]) -> MetadataFile {
        MetadataFile {
            href: href.to_string(),
            sha256: hex::encode(Sha256::digest(stored)),
            size: Some(stored.len() as u64),
            open_size: Some(open.len() as u64),
            open_sha256: Some(hex::encode(Sha256::digest(open))),
        }
    }

    fn small_primary() -> String {
        primary(&[
            package("portal", "noarch", &ver("0", "1.0", "1"), "p.rpm"),
            package("other", "noarch", &ver("0", "1.0", "1"), "o.rpm"),
        ])
    }

    #[test]
    fn read_primary_decompresses_gz_xz_zst_and_plain() {
        let text = small_primary();
        let open = text.as_bytes();
        for (href, stored) in [
            ("repodata/x-primary.xml.gz", gzip(open)),
            ("repodata/x-primary.xml.xz", xz(open)),
            ("repodata/x-primary.xml.zst", zst(open)),
            ("repodata/primary.xml", open.to_vec()),
        ] {
            let file = entry(href, &stored, open);
            let e = read_primary(&stored[..], &file, "portal", "x86_64").unwrap();
            assert_eq!(e.len(), 1, "{href}");
            // Without open-size and open-checksum as well.
            let file = MetadataFile {
                open_size: None,
                open_sha256: None,
                ..file
            };
            assert_eq!(
                read_primary(&stored[..], &file, "portal", "x86_64")
                    .unwrap()
                    .len(),
                1
            );
        }
        // Concatenated gzip members, xz streams and zstd frames (with a
        // skippable frame between) are one primary.
        let (a, b) = open.split_at(open.len() / 2);
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        for (href, stored) in [
            ("p.xml.gz", [gzip(a), gzip(b)].concat()),
            ("p.xml.xz", [xz(a), xz(b)].concat()),
            ("p.xml.zst", {
                let mut s = zst(a);
                s.append(&mut skippable);
                s.extend(zst(b));
                s
            }),
        ] {
            let file = entry(href, &stored, open);
            let e = read_primary(&stored[..], &file, "portal", "x86_64");
            assert_eq!(e.unwrap().len(), 1, "{href}");
        }
    }

    #[test]
    fn garbage_or_truncated_compressed_data_is_an_error_not_a_panic() {
        let text = small_primary();
        let open = text.as_bytes();
        for (href, stored, format) in [
            ("p.xml.gz", gzip(open), "gzip"),
            ("p.xml.xz", xz(open), "xz"),
            ("p.xml.zst", zst(open), "zstd"),
        ] {
            let garbage = b"this is not compressed at all, just text that goes on".to_vec();
            let mut flipped = stored.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0x55;
            flipped[mid + 1] ^= 0xaa;
            let cases = [
                (garbage, "garbage"),
                (stored[..stored.len() / 2].to_vec(), "truncated"),
                (stored[..stored.len() - 4].to_vec(), "truncated end"),
                (flipped, "corrupted"),
                (Vec::new(), "empty"),
            ];
            for (data, what) in cases {
                let file = MetadataFile {
                    open_size: None,
                    open_sha256: None,
                    ..entry(href, &data, open)
                };
                let e = read_primary(&data[..], &file, "portal", "x86_64")
                    .expect_err(&format!("{format} {what}"));
                let msg = format!("{e:#}");
                assert!(!msg.contains('\n'), "{msg}");
                assert!(
                    msg.contains(&format!("corrupt {format} data")) || msg.contains("primary.xml"),
                    "{format} {what}: {msg}"
                );
            }
        }
    }

    #[test]
    fn zstd_frame_checksum_is_checked() {
        let text = small_primary();
        let open = text.as_bytes();
        let mut stored = zst(open);
        let last = stored.len() - 1;
        stored[last] ^= 0xff;
        let file = MetadataFile {
            open_size: None,
            open_sha256: None,
            ..entry("p.xml.zst", &stored, open)
        };
        let e = read_primary(&stored[..], &file, "portal", "x86_64").unwrap_err();
        assert!(
            format!("{e:#}").contains("corrupt zstd data: frame content checksum mismatch"),
            "{e:#}"
        );
    }

    #[test]
    fn open_size_and_open_checksum_are_checked() {
        let text = small_primary();
        let open = text.as_bytes();
        let stored = gzip(open);
        let good = entry("p.xml.gz", &stored, open);
        let file = MetadataFile {
            open_size: Some(open.len() as u64 + 1),
            ..good.clone()
        };
        let e = read_primary(&stored[..], &file, "portal", "x86_64").unwrap_err();
        assert!(format!("{e:#}").contains("open-size"), "{e:#}");
        let file = MetadataFile {
            open_size: Some(100),
            ..good.clone()
        };
        let e = read_primary(&stored[..], &file, "portal", "x86_64").unwrap_err();
        assert!(
            format!("{e:#}").contains("more than 100 bytes (repomd.xml's open-size)"),
            "{e:#}"
        );
        let file = MetadataFile {
            open_sha256: Some(SUM_A.to_string()),
            ..good
        };
        let e = read_primary(&stored[..], &file, "portal", "x86_64").unwrap_err();
        assert!(format!("{e:#}").contains("open-checksum"), "{e:#}");
    }

    #[test]
    fn unknown_compression_is_refused() {
        let file = entry("repodata/x-primary.xml.bz2", b"BZh9", b"");
        let e = read_primary(&b"BZh9"[..], &file, "portal", "x86_64").unwrap_err();
        assert!(
            format!("{e:#}").contains("unsupported compression \"bz2\""),
            "{e:#}"
        );
    }

    // -----------------------------------------------------------------------
    // Real repositories: rpmbuild + createrepo_c, read from disk and over
    // HTTP. Without those tools these tests fail.

    /// Runs `cmd`; panics (fails the test) when it cannot run or fails.
    fn run(cmd: &mut Command) -> std::process::Output {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?} (this test needs it installed): {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    const SPEC: &str = "Name: %{pkgname}
Version: %{pkgver}
Release: 1
Summary: upkeep test package & <friends>
License: MIT
BuildArch: noarch
%description
A package for upkeep's YUM tests.
%files
";

    /// Builds portal 1.0.0-1, portal 1.10.0-1 and other 9.0-1 (noarch, no
    /// files) with rpmbuild under `dir`; returns the packages.
    fn build_rpms(dir: &Path) -> Vec<PathBuf> {
        let spec = dir.join("test.spec");
        std::fs::write(&spec, SPEC).unwrap();
        let top = dir.join("rpmbuild");
        for (name, version) in [("portal", "1.0.0"), ("portal", "1.10.0"), ("other", "9.0")] {
            run(Command::new("rpmbuild")
                .arg("-bb")
                .arg("--quiet")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                // Debian's rpm keeps its database in ~/.rpmdb otherwise.
                .arg("--dbpath")
                .arg(dir.join("rpmdb"))
                .args(["--define", &format!("pkgname {name}")])
                .args(["--define", &format!("pkgver {version}")])
                .arg(&spec));
        }
        let mut rpms: Vec<PathBuf> = std::fs::read_dir(top.join("RPMS/noarch"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        rpms.sort();
        assert_eq!(rpms.len(), 3, "{rpms:?}");
        rpms
    }

    /// Makes a repository of `rpms` at `dir` with `createrepo_c args`;
    /// `false` when this createrepo_c does not know the compression asked.
    fn createrepo(dir: &Path, rpms: &[PathBuf], args: &[&str]) -> bool {
        std::fs::create_dir_all(dir).unwrap();
        for rpm in rpms {
            std::fs::copy(rpm, dir.join(rpm.file_name().unwrap())).unwrap();
        }
        let out = Command::new("createrepo_c")
            .args(args)
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("this test needs createrepo_c installed: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("Unsupported compression") {
            return false;
        }
        assert!(
            out.status.success(),
            "createrepo_c {args:?} failed: {stderr}"
        );
        true
    }

    fn file_sha256(path: &Path) -> String {
        hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
    }

    /// Reads the candidates of `package` from the repository at `dir` on
    /// disk the way `candidates` does over HTTP.
    fn candidates_on_disk(dir: &Path, package: &str) -> (MetadataFile, Vec<Candidate>) {
        let text = std::fs::read_to_string(dir.join("repodata/repomd.xml")).unwrap();
        let repomd = parse_repomd(&text).unwrap();
        let base = Url::from_directory_path(dir).unwrap();
        let file = repomd.primary;
        let path = dir.join(&file.href);
        let url = base.join(&file.href).unwrap();
        crate::download::check_sha256(&url, &std::fs::read(&path).unwrap(), &file.sha256).unwrap();
        assert_eq!(Some(std::fs::metadata(&path).unwrap().len()), file.size);
        let stored = BufReader::new(std::fs::File::open(&path).unwrap());
        let entries = read_primary(stored, &file, package, "x86_64").unwrap();
        let candidates = entries
            .into_iter()
            .map(|e| e.into_candidate(&base).unwrap())
            .collect();
        (file, super::super::newest_first(candidates))
    }

    /// The candidates of the test repository are the two portal packages,
    /// newest first.
    fn check_portal_candidates(candidates: &[Candidate], base: &Url) {
        assert_eq!(candidates.len(), 2, "{candidates:?}");
        for (c, upstream) in candidates.iter().zip(["1.10.0", "1.0.0"]) {
            assert_eq!(c.version, rpm(Some("0"), upstream, Some("1")));
            assert_eq!(c.package, "portal");
            assert_eq!(c.arch, "noarch");
            let name = format!("portal-{upstream}-1.noarch.rpm");
            assert_eq!(c.file_name, name);
            assert_eq!(c.url, base.join(&name).unwrap());
        }
    }

    #[test]
    fn createrepo_c_repositories_are_read_from_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let rpms = build_rpms(tmp.path());
        let mut seen = Vec::new();
        for (label, args, ext) in [
            ("default", &[][..], None),
            ("gz", &["--general-compress-type=gz"][..], Some(".xml.gz")),
            ("xz", &["--general-compress-type=xz"][..], Some(".xml.xz")),
            (
                "zstd",
                &["--general-compress-type=zstd"][..],
                Some(".xml.zst"),
            ),
        ] {
            let dir = tmp.path().join(label);
            if !createrepo(&dir, &rpms, args) {
                assert_eq!(label, "zstd", "createrepo_c cannot write {label}");
                eprintln!(
                    "createrepo_c here cannot write zstd metadata; zstd is covered by the other tests"
                );
                continue;
            }
            let (file, candidates) = candidates_on_disk(&dir, "portal");
            eprintln!(
                "createrepo_c {label}: primary {} ({:?} bytes, open-size {:?})",
                file.href, file.size, file.open_size
            );
            if let Some(ext) = ext {
                assert!(file.href.ends_with(ext), "{label}: {}", file.href);
            }
            assert!(
                file.open_sha256.is_some(),
                "createrepo_c writes open-checksum"
            );
            let base = Url::from_directory_path(&dir).unwrap();
            check_portal_candidates(&candidates, &base);
            for c in &candidates {
                let path = c.url.to_file_path().unwrap();
                assert_eq!(c.sha256, file_sha256(&path), "{}", c.file_name);
                assert_eq!(c.size, std::fs::metadata(&path).unwrap().len());
            }
            let (_, other) = candidates_on_disk(&dir, "other");
            assert_eq!(other.len(), 1);
            assert!(candidates_on_disk(&dir, "missing").1.is_empty());
            seen.push(label);
        }
        assert!(seen.starts_with(&["default", "gz", "xz"]), "{seen:?}");

        // A SHA-1 repository (createrepo_c --checksum=sha1) is refused.
        let dir = tmp.path().join("sha1");
        assert!(createrepo(&dir, &rpms, &["--checksum=sha1"]));
        let text = std::fs::read_to_string(dir.join("repodata/repomd.xml")).unwrap();
        let e = parse_repomd(&text).unwrap_err();
        assert!(format!("{e:#}").contains("SHA-256 is required"), "{e:#}");
    }

    /// Serves the files under `root` over HTTP on 127.0.0.1 for as long as
    /// the test's runtime runs (the APT tests use it too).
    pub(crate) async fn serve(root: PathBuf) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let root = root.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/");
                    let (status, body) =
                        match std::fs::read(root.join(path.trim_start_matches('/'))) {
                            Ok(body) => ("200 OK", body),
                            Err(_) => ("404 Not Found", Vec::new()),
                        };
                    let header = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(header.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Url::parse(&format!("http://{addr}/repo")).unwrap()
    }

    /// A throw-away GnuPG home with one signing key.
    pub(crate) struct Gpg {
        home: tempfile::TempDir,
    }

    impl Drop for Gpg {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(self.home.path())
                .args(["--kill", "gpg-agent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    impl Gpg {
        pub(crate) fn new(uid: &str) -> Gpg {
            use std::os::unix::fs::PermissionsExt;
            let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
            let gpg = Gpg { home };
            gpg.run(&["--quick-gen-key", uid, "ed25519", "sign", "never"]);
            gpg
        }

        fn run(&self, args: &[&str]) -> Vec<u8> {
            run(Command::new("gpg")
                .arg("--homedir")
                .arg(self.home.path())
                .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
                .args(["--passphrase", ""])
                .args(args))
            .stdout
        }

        pub(crate) fn keyring(&self) -> Keyring {
            Keyring::from_bytes(&self.run(&["--armor", "--export"])).unwrap()
        }

        /// Writes `out`, a clearsigned copy of `file` (an `InRelease`).
        pub(crate) fn clearsign(&self, file: &Path, out: &Path) {
            let _ = std::fs::remove_file(out);
            self.run(&[
                "--clearsign",
                "--output",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
        }

        /// Writes `out`, a detached signature of `file` (a `Release.gpg`).
        pub(crate) fn detach_sign(&self, file: &Path, out: &Path) {
            let _ = std::fs::remove_file(out);
            self.run(&[
                "--detach-sign",
                "--output",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
        }

        /// Writes `file.asc`, an armored detached signature of `file`.
        pub(crate) fn sign(&self, file: &Path) {
            let asc = PathBuf::from(format!("{}.asc", file.display()));
            let _ = std::fs::remove_file(&asc);
            self.run(&[
                "--armor",
                "--detach-sign",
                "--output",
                asc.to_str().unwrap(),
                file.to_str().unwrap(),
            ]);
        }
    }

    #[tokio::test]
    async fn candidates_over_http_signed_unsigned_and_tampered() {
        let tmp = tempfile::tempdir().unwrap();
        let rpms = build_rpms(tmp.path());
        let root = tmp.path().join("www");
        let dir = root.join("repo");
        assert!(createrepo(&dir, &rpms, &[]));
        let repomd_path = dir.join("repodata/repomd.xml");
        let base = serve(root).await;
        let http = Http::new(None).unwrap();
        let repo_base = base.join("repo/").unwrap();

        // Unsigned (allow_unsigned): read with a warning.
        let unsigned = YumRepository::new(&http, &base, None, "x86_64");
        let candidates = unsigned.candidates("portal").await.unwrap();
        check_portal_candidates(&candidates, &repo_base);
        // The downloader agrees with the size and SHA-256 of the metadata.
        let cache = tmp.path().join("cache");
        let c = &candidates[0];
        let path = http
            .download(&c.url, c.size, &c.sha256, &cache, "rpm")
            .await
            .unwrap();
        assert_eq!(file_sha256(&path), c.sha256);

        // Signed.
        let gpg = Gpg::new("Yum Test <yum@example.org>");
        gpg.sign(&repomd_path);
        let signed = YumRepository::new(&http, &base, Some(gpg.keyring()), "x86_64");
        assert_eq!(signed.candidates("portal").await.unwrap().len(), 2);
        assert_eq!(signed.candidates("other").await.unwrap().len(), 1);

        // Signed by another key.
        let stranger = Gpg::new("Stranger <x@example.org>");
        let wrong = YumRepository::new(&http, &base, Some(stranger.keyring()), "x86_64");
        let e = wrong.candidates("portal").await.unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("repomd.xml.asc: signature check"), "{msg}");

        // repomd.xml changed after signing.
        let original = std::fs::read(&repomd_path).unwrap();
        let tampered =
            String::from_utf8(original.clone())
                .unwrap()
                .replacen("<revision>", "<revision>1", 1);
        std::fs::write(&repomd_path, tampered).unwrap();
        let e = signed.candidates("portal").await.unwrap_err();
        assert!(format!("{e:#}").contains("signature check"), "{e:#}");
        std::fs::write(&repomd_path, &original).unwrap();

        // No signature although a keyring is configured.
        std::fs::remove_file(dir.join("repodata/repomd.xml.asc")).unwrap();
        let e = signed.candidates("portal").await.unwrap_err();
        let msg = format!("{e:#}");
        let asc_url = repo_base.join("repodata/repomd.xml.asc").unwrap();
        assert!(msg.contains(asc_url.as_str()), "{msg}");
        assert!(msg.contains("not signed"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");

        // A primary that does not match repomd.xml.
        gpg.sign(&repomd_path);
        let repomd = parse_repomd(std::str::from_utf8(&original).unwrap()).unwrap();
        let primary_path = dir.join(&repomd.primary.href);
        let mut bytes = std::fs::read(&primary_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&primary_path, &bytes).unwrap();
        let e = signed.candidates("portal").await.unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("SHA-256 mismatch"), "{msg}");
        assert!(
            msg.contains(repo_base.join(&repomd.primary.href).unwrap().as_str()),
            "{msg}"
        );
    }

    /// `xml` with the text of every `<tag>` element set to `value`.
    fn set_elements(xml: &str, tag: &str, value: &str) -> String {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = String::new();
        let mut rest = xml;
        while let Some(start) = rest.find(&open) {
            let inner = start + open.len();
            let end = inner + rest[inner..].find(&close).unwrap();
            out.push_str(&rest[..inner]);
            out.push_str(value);
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// A served, signed createrepo_c repository whose repomd.xml marks can
    /// be set (and signed again).
    struct Marked {
        tmp: tempfile::TempDir,
        repomd: PathBuf,
        original: String,
        base: Url,
        gpg: Gpg,
    }

    impl Marked {
        async fn new() -> Marked {
            let tmp = tempfile::tempdir().unwrap();
            let rpms = build_rpms(tmp.path());
            let root = tmp.path().join("www");
            let dir = root.join("repo");
            assert!(createrepo(&dir, &rpms, &[]));
            let repomd = dir.join("repodata/repomd.xml");
            let original = std::fs::read_to_string(&repomd).unwrap();
            assert!(original.contains("<timestamp>"), "{original}");
            let base = serve(root).await.join("repo/").unwrap();
            Marked {
                tmp,
                repomd,
                original,
                base,
                gpg: Gpg::new("Yum Test <yum@example.org>"),
            }
        }

        /// Writes repomd.xml with `revision` and every data `timestamp`,
        /// unsigned (repomd.xml.asc removed).
        fn unsigned(&self, revision: &str, timestamp: i64) {
            let text = set_elements(&self.original, "revision", revision);
            let text = set_elements(&text, "timestamp", &timestamp.to_string());
            std::fs::write(&self.repomd, text).unwrap();
            let _ = std::fs::remove_file(self.asc());
        }

        /// The same, signed.
        fn signed(&self, revision: &str, timestamp: i64) {
            self.unsigned(revision, timestamp);
            self.gpg.sign(&self.repomd);
        }

        fn asc(&self) -> PathBuf {
            self.repomd.with_extension("xml.asc")
        }

        fn repo<'h>(&self, http: &'h Http, keyring: Option<Keyring>) -> YumRepository<'h> {
            YumRepository::new(http, &self.base, keyring, "x86_64")
                .with_replay_guard(ReplayGuard::new(self.tmp.path().join("state")))
        }

        fn record(&self) -> PathBuf {
            ReplayGuard::new(self.tmp.path().join("state"))
                .record_path(self.base.join("repodata/repomd.xml").unwrap().as_str())
        }
    }

    #[test]
    fn repomd_revision_and_newest_data_timestamp_are_read() {
        let xml = repomd("repodata/p.xml.gz", &sha256_sums());
        let xml = set_elements(&xml, "revision", "1700000000");
        let r = parse_repomd(&xml).unwrap();
        let f = r.freshness();
        assert_eq!(f.marks["revision"].value, 1_700_000_000);
        let other = xml.replacen(
            "</repomd>",
            "<data type=\"filelists\"><location href=\"repodata/f.xml.gz\"/><timestamp>1800000000.25</timestamp></data>\n<data type=\"other\"><timestamp>1600000000</timestamp></data>\n</repomd>",
            1,
        );
        let r = parse_repomd(&other).unwrap();
        assert_eq!(r.timestamp, Some(1_800_000_000));
        assert_eq!(r.primary.href, "repodata/p.xml.gz");
        let words = set_elements(&other, "revision", "release-7");
        let f = parse_repomd(&words).unwrap().freshness();
        assert!(!f.marks.contains_key("revision"), "{f:?}");
        assert_eq!(f.marks["timestamp"].value, 1_800_000_000);
    }

    #[tokio::test]
    async fn a_replayed_older_repomd_is_refused_and_a_newer_one_recorded() {
        let m = Marked::new().await;
        let http = Http::new(None).unwrap();
        let repo = m.repo(&http, Some(m.gpg.keyring()));

        m.signed("200", 2_000_000_000);
        assert_eq!(repo.candidates("portal").await.unwrap().len(), 2);
        let record = std::fs::read_to_string(m.record()).unwrap();
        assert!(record.contains("\"200\""), "{record}");
        // The same metadata again.
        repo.candidates("portal").await.unwrap();

        // An older revision, validly signed: refused on one line.
        m.signed("100", 2_000_000_000);
        let e = repo.candidates("portal").await.unwrap_err();
        let msg = crate::error::one_line(&e);
        assert!(
            msg.contains(m.base.join("repodata/repomd.xml").unwrap().as_str()),
            "{msg}"
        );
        assert!(msg.contains("revision 100"), "{msg}");
        assert!(msg.contains("newest seen before 200"), "{msg}");
        assert!(
            msg.contains(&format!("remove {}", m.record().display())),
            "{msg}"
        );
        // A revision that is no number: the timestamps still guard.
        m.signed("snapshot", 1_900_000_000);
        let e = repo.candidates("portal").await.unwrap_err();
        assert!(format!("{e:#}").contains("timestamp 1900000000"), "{e:#}");

        // A "newer" repomd.xml whose signature fails does not move the record.
        m.signed("300", 2_100_000_000);
        let text = std::fs::read_to_string(&m.repomd).unwrap();
        std::fs::write(&m.repomd, text.replacen("300", "301", 1)).unwrap();
        let e = repo.candidates("portal").await.unwrap_err();
        assert!(format!("{e:#}").contains("signature check"), "{e:#}");
        assert!(
            std::fs::read_to_string(m.record())
                .unwrap()
                .contains("\"200\"")
        );

        // Newer, validly signed: accepted and recorded.
        m.signed("300", 2_100_000_000);
        repo.candidates("portal").await.unwrap();
        let record = std::fs::read_to_string(m.record()).unwrap();
        assert!(
            record.contains("\"300\"") && !record.contains("\"200\""),
            "{record}"
        );

        // A deliberate rollback: remove the record, as the message says.
        m.signed("100", 1_000_000_000);
        assert!(repo.candidates("portal").await.is_err());
        std::fs::remove_file(m.record()).unwrap();
        repo.candidates("portal").await.unwrap();
        assert!(
            std::fs::read_to_string(m.record())
                .unwrap()
                .contains("\"100\"")
        );
    }

    #[tokio::test]
    async fn allow_unsigned_with_a_keyring_reads_an_unsigned_repomd_with_a_warning_and_verifies_signed()
     {
        let m = Marked::new().await;
        let http = Http::new(None).unwrap();
        let lenient = m.repo(&http, Some(m.gpg.keyring())).allow_unsigned(true);
        let strict = m.repo(&http, Some(m.gpg.keyring()));
        let stranger = Gpg::new("Stranger <x@example.org>");
        let (log, _guard) = crate::repo::test_log::warnings();

        // No repomd.xml.asc: read, with a warning, and not recorded.
        m.unsigned("100", 1_000_000_000);
        assert_eq!(lenient.candidates("portal").await.unwrap().len(), 2);
        let warned = log.take();
        assert!(
            warned.contains("WARN") && warned.contains("UNSIGNED"),
            "{warned}"
        );
        assert!(warned.contains(m.base.as_str()), "{warned}");
        assert!(!m.record().exists());
        // Without allow_unsigned: refused, as before.
        let e = strict.candidates("portal").await.unwrap_err();
        assert!(format!("{e:#}").contains("not signed"), "{e:#}");

        // Signed with the keyring's key: verified, no warning, recorded.
        m.signed("100", 1_000_000_000);
        lenient.candidates("portal").await.unwrap();
        assert_eq!(log.take(), "");
        assert!(m.record().exists());

        // Signed by another key: refused.
        m.unsigned("200", 1_000_000_000);
        stranger.sign(&m.repomd);
        let e = lenient.candidates("portal").await.unwrap_err();
        assert!(
            format!("{e:#}").contains("repomd.xml.asc: signature check"),
            "{e:#}"
        );
        // Changed after signing: refused.
        m.signed("200", 1_000_000_000);
        let text = std::fs::read_to_string(&m.repomd).unwrap();
        std::fs::write(&m.repomd, text.replacen("200", "201", 1)).unwrap();
        let e = lenient.candidates("portal").await.unwrap_err();
        assert!(format!("{e:#}").contains("signature check"), "{e:#}");
    }

    // -----------------------------------------------------------------------
    // Offers for the resolver.

    /// A package with relation lists (`format` is the inside of <format>).
    fn rel_package(name: &str, arch: &str, version: &str, format: &str) -> String {
        format!(
            r#"<package type="rpm">
  <name>{name}</name>
  <arch>{arch}</arch>
  {version}
  <checksum type="sha256" pkgid="YES">{SUM_B}</checksum>
  <summary>s</summary>
  <description>d &lt;rpm:entry name="fake"/&gt;</description>
  <size package="10" installed="0" archive="124"/>
  <location href="{name}.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    {format}
    <file>/usr/bin/{name}</file>
  </format>
</package>
"#
        )
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    fn offers_primary() -> String {
        primary(&[
            rel_package(
                "app",
                "x86_64",
                &ver("0", "2.0", "1.el9"),
                r#"<rpm:provides>
      <rpm:entry name="app" flags="EQ" epoch="0" ver="2.0" rel="1.el9"/>
      <rpm:entry name="app(x86-64)" flags="EQ" epoch="0" ver="2.0" rel="1.el9"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="libfoo.so.1()(64bit)"/>
      <rpm:entry name="bar" flags="GE" epoch="1" ver="3.4"/>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="(baz or qux &gt;= 2)"/>
    </rpm:requires>
    <rpm:conflicts>
      <rpm:entry name="old" flags="LT" epoch="0" ver="2"/>
    </rpm:conflicts>
    <rpm:recommends>
      <rpm:entry name="weak"/>
    </rpm:recommends>
    <rpm:obsoletes>
      <rpm:entry name="ancient"/>
    </rpm:obsoletes>"#,
            ),
            rel_package(
                "libfoo",
                "x86_64",
                &ver("0", "1.0", "1"),
                r#"<rpm:provides>
      <rpm:entry name="libfoo.so.1()(64bit)"/>
    </rpm:provides>
    <rpm:requires/>"#,
            ),
            rel_package("libfoo", "aarch64", &ver("0", "1.0", "1"), ""),
            rel_package("weak", "noarch", &ver("0", "1", "1"), ""),
        ])
    }

    #[test]
    fn primary_offers_are_found_by_name_and_by_provides_with_their_relations() {
        let xml = offers_primary();
        let found = parse_primary_offers(xml.as_bytes(), &names(&["app"]), "x86_64").unwrap();
        assert_eq!(found.len(), 1);
        let app = &found[0].info;
        assert_eq!(app.version, rpm(None, "2.0", Some("1.el9")));
        let depends: Vec<String> = app
            .depends
            .iter()
            .map(|c| crate::resolve::clause_text(c))
            .collect();
        assert_eq!(
            depends,
            ["libfoo.so.1()(64bit)", "bar >= 1:3.4", "baz | qux >= 2"]
        );
        let provides: Vec<String> = app.provides.iter().map(Relation::to_string).collect();
        assert_eq!(provides, ["app = 2.0-1.el9", "app(x86-64) = 2.0-1.el9"]);
        assert_eq!(app.conflicts[0].to_string(), "old < 2");
        assert_eq!(found[0].entry.href, "app.rpm");

        // By a provided name, for the host's architecture only; a package
        // without provides gets its own.
        let found = parse_primary_offers(
            xml.as_bytes(),
            &names(&["libfoo.so.1()(64bit)", "weak", "fake"]),
            "x86_64",
        )
        .unwrap();
        let got: Vec<String> = found
            .iter()
            .map(|o| format!("{}.{}", o.info.name, o.info.arch))
            .collect();
        assert_eq!(got, ["libfoo.x86_64", "weak.noarch"]);
        assert_eq!(found[1].info.provides[0].to_string(), "weak = 1-1");
        // The candidate parser still reads the same primary.
        assert_eq!(
            parse_primary(xml.as_bytes(), "libfoo", "x86_64")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn broken_primary_relations_are_an_error_naming_the_package() {
        let xml = primary(&[rel_package(
            "app",
            "x86_64",
            &ver("0", "2.0", "1"),
            r#"<rpm:requires><rpm:entry name="bar" flags="XX" ver="1"/></rpm:requires>"#,
        )]);
        let e = parse_primary_offers(xml.as_bytes(), &names(&["app"]), "x86_64").unwrap_err();
        assert!(format!("{e:#}").contains("app-2.0-1.x86_64"), "{e:#}");
        assert!(
            parse_primary_offers(xml.as_bytes(), &names(&["other"]), "x86_64")
                .unwrap()
                .is_empty()
        );
    }

    const RELATED_SPEC: &str = "Name: tpkg
Version: 2.0
Release: 3
Epoch: 1
Summary: t
License: MIT
BuildArch: noarch
Requires: foo >= 1.2-1
Requires: bar
Requires: (baz or qux >= 2)
Requires(pre): /bin/sh
Provides: virt = 5
Conflicts: old < 1:0.5
Recommends: weak
%description
t
%files
";

    /// What rpm's database says about a package and what createrepo_c's
    /// primary says about the same package file give the resolver the same
    /// package.
    #[tokio::test]
    async fn rpm_database_and_primary_agree_on_relations() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = tmp.path().join("t.spec");
        std::fs::write(&spec, RELATED_SPEC).unwrap();
        let top = tmp.path().join("rpmbuild-tpkg");
        let db = tmp.path().join("rpmdb");
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--quiet")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--dbpath")
            .arg(&db)
            .arg(&spec));
        let mut rpms: Vec<PathBuf> = build_rpms(tmp.path());
        rpms.extend(
            std::fs::read_dir(top.join("RPMS/noarch"))
                .unwrap()
                .map(|e| e.unwrap().path()),
        );
        let dir = tmp.path().join("repo");
        assert!(createrepo(&dir, &rpms, &[]));
        let (file, _) = candidates_on_disk(&dir, "tpkg");
        let stored = BufReader::new(std::fs::File::open(dir.join(&file.href)).unwrap());
        let offered =
            read_primary_offers(stored, &file, &names(&["tpkg", "other"]), "x86_64").unwrap();

        let tpkg = rpms
            .iter()
            .find(|p| p.to_string_lossy().contains("tpkg"))
            .unwrap();
        let installed_db = tmp.path().join("installed-db");
        run(Command::new("rpm")
            .arg("--dbpath")
            .arg(&installed_db)
            .arg("--initdb"));
        run(Command::new("rpm")
            .arg("--dbpath")
            .arg(&installed_db)
            .args(["-i", "--justdb", "--nodeps", "--noscripts", "--"])
            .arg(tpkg)
            .arg(&rpms[0]));
        let rpm = crate::pkg::rpm::Rpm {
            db_path: Some(installed_db),
        };
        let installed = rpm.installed_packages().await.unwrap();
        let mut installed_names: Vec<String> = installed.iter().map(|p| p.name.clone()).collect();
        installed_names.sort();
        assert_eq!(installed_names, ["other", "tpkg"]);
        for p in &installed {
            let o = offered
                .iter()
                .find(|o| o.info.name == p.name && o.info.version == p.version)
                .unwrap_or_else(|| panic!("{} {} not offered", p.name, p.version));
            assert_eq!(&o.info, p, "rpmdb and primary differ for {}", p.name);
        }
        let t = installed.iter().find(|p| p.name == "tpkg").unwrap();
        assert_eq!(t.version, rpm_version("1:2.0-3"));
        let depends: Vec<String> = t
            .depends
            .iter()
            .map(|c| crate::resolve::clause_text(c))
            .collect();
        assert_eq!(depends, ["baz | qux >= 2", "bar", "foo >= 1.2-1"]);
    }

    fn rpm_version(text: &str) -> PkgVersion {
        PkgVersion::rpm(text).unwrap()
    }

    // -----------------------------------------------------------------------
    // A large primary, streamed.

    /// Packages in the generated primary.
    const BIG_PACKAGES: usize = 200_000;
    /// The environment variable that makes `big_primary_child` parse.
    const BIG_ENV: &str = "UPKEEP_TEST_YUM_BIG_PRIMARY";

    /// Writes package `i` of the generated primary: `pkg-i`, except four
    /// `portal` packages (one of them for aarch64).
    fn big_package(out: &mut impl Write, i: usize) -> io::Result<()> {
        let (name, arch, ver) = match i {
            0 => ("portal".to_string(), "x86_64", "1.0.0".to_string()),
            100_000 => ("portal".to_string(), "noarch", "2.0.0".to_string()),
            150_000 => ("portal".to_string(), "aarch64", "9.0.0".to_string()),
            199_999 => ("portal".to_string(), "x86_64", "3.0.0".to_string()),
            _ => (
                format!("pkg-{i}"),
                "x86_64",
                format!("{}.{}.0", i % 97, i % 13),
            ),
        };
        write!(
            out,
            r#"<package type="rpm">
  <name>{name}</name>
  <arch>{arch}</arch>
  <version epoch="0" ver="{ver}" rel="1.el9"/>
  <checksum type="sha256" pkgid="YES">{i:064x}</checksum>
  <summary>Generated package {i} &amp; friends</summary>
  <description>One of {BIG_PACKAGES} generated packages.</description>
  <packager></packager>
  <url></url>
  <time file="1795256983" build="1795256983"/>
  <size package="{}" installed="{}" archive="{}"/>
  <location href="Packages/{name}-{ver}-1.el9.{arch}.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:sourcerpm>{name}-{ver}-1.el9.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="5485"/>
    <rpm:provides>
      <rpm:entry name="{name}" flags="EQ" epoch="0" ver="{ver}" rel="1.el9"/>
    </rpm:provides>
    <file>/usr/bin/{name}</file>
  </format>
</package>
"#,
            10_000 + i,
            20_000 + i,
            30_000 + i
        )
    }

    /// Counts what is written through it.
    struct Counter<W> {
        inner: W,
        count: u64,
    }

    impl<W: Write> Write for Counter<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.count += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    /// Generates the primary through the `zstd` command (streamed: the
    /// text is never whole in memory); returns its repomd entry.
    fn generate_big_primary(dir: &Path) -> MetadataFile {
        let path = dir.join("primary.xml.zst");
        let mut zstd = Command::new("zstd")
            .args(["-q", "-f", "-o"])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("this test needs the zstd command: {e}"));
        let mut out = Counter {
            inner: io::BufWriter::new(zstd.stdin.take().unwrap()),
            count: 0,
        };
        write!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{BIG_PACKAGES}">
"#
        )
        .unwrap();
        for i in 0..BIG_PACKAGES {
            big_package(&mut out, i).unwrap();
        }
        out.write_all(b"</metadata>\n").unwrap();
        out.flush().unwrap();
        let count = out.count;
        drop(out);
        assert!(zstd.wait().unwrap().success(), "zstd failed");
        // The open-checksum, by the (optimised) command-line tools rather
        // than by this unoptimised test build.
        let mut unzstd = Command::new("zstd")
            .arg("-dcq")
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let sum = run(Command::new("sha256sum").stdin(unzstd.stdout.take().unwrap()));
        assert!(unzstd.wait().unwrap().success());
        let open_sha256 = String::from_utf8(sum.stdout).unwrap()[..64].to_string();
        let stored = std::fs::read(&path).unwrap();
        MetadataFile {
            href: "primary.xml.zst".to_string(),
            sha256: hex::encode(Sha256::digest(&stored)),
            size: Some(stored.len() as u64),
            open_size: Some(count),
            open_sha256: Some(open_sha256),
        }
    }

    /// A line of /proc/self/status, in kB.
    fn status_kb(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
    }

    /// Parses the generated primary named by `BIG_ENV` and prints what it
    /// took; run in its own process by `big_primary_is_streamed`, so that
    /// the process's peak memory is this parse's alone.
    #[test]
    #[ignore = "run by big_primary_is_streamed in a process of its own"]
    fn big_primary_child() {
        let Ok(spec) = std::env::var(BIG_ENV) else {
            return;
        };
        let mut parts = spec.split('|');
        let mut next = || parts.next().unwrap().to_string();
        let (path, open_size, open_sha256) = (next(), next(), next());
        let file = MetadataFile {
            href: path.clone(),
            sha256: String::new(),
            size: None,
            open_size: Some(open_size.parse().unwrap()),
            open_sha256: Some(open_sha256).filter(|s| !s.is_empty()),
        };
        let rss_before = status_kb("VmRSS:");
        let start = std::time::Instant::now();
        let stored = BufReader::new(std::fs::File::open(&path).unwrap());
        let entries = read_primary(stored, &file, "portal", "x86_64").unwrap();
        let secs = start.elapsed().as_secs_f64();
        let versions: Vec<String> = entries.iter().map(|e| e.version.to_string()).collect();
        println!(
            "BIG entries={} secs={secs:.2} rss_before_kb={rss_before} peak_kb={} versions={}",
            entries.len(),
            status_kb("VmHWM:"),
            versions.join(",")
        );
    }

    #[test]
    fn big_primary_is_streamed() {
        let tmp = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let file = generate_big_primary(tmp.path());
        let generated = start.elapsed().as_secs_f64();
        let open = file.open_size.unwrap();
        let spec = format!(
            "{}|{open}|{}",
            tmp.path().join(&file.href).display(),
            file.open_sha256.as_deref().unwrap()
        );
        let out = run(Command::new(std::env::current_exe().unwrap())
            .args([
                "repo::yum::tests::big_primary_child",
                "--exact",
                "--ignored",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(BIG_ENV, spec));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("BIG ").map(|(_, report)| report))
            .unwrap_or_else(|| panic!("no report from the child: {stdout}"));
        let field = |name: &str| -> &str {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap()
        };
        eprintln!(
            "{BIG_PACKAGES} packages: {} MB of XML, {} kB zstd, generated in {generated:.1}s; parse: {line}",
            open / 1_000_000,
            file.size.unwrap() / 1000
        );
        assert_eq!(field("entries="), "3");
        // The three wanted entries: x86_64 and noarch, not aarch64.
        assert_eq!(field("versions=").split(',').count(), 3);
        assert!(!field("versions=").contains("9.0.0"));
        // Growth of the parsing process's peak memory over its resident
        // size before: far below the decompressed size.
        let peak: u64 = field("peak_kb=").parse().unwrap();
        let before: u64 = field("rss_before_kb=").parse().unwrap();
        let growth_kb = peak.saturating_sub(before);
        assert!(open > 100_000_000, "the primary should be large: {open}");
        assert!(
            growth_kb < 32 * 1024,
            "parsing a {open}-byte primary grew the peak memory by {growth_kb} kB"
        );
    }
}
