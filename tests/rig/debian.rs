//! A faithful local mirror of Debian's real, signed bookworm archive, and a
//! rig host whose apt installs from it ([`DebianHost`]).
//!
//! # The mirror
//!
//! Two archive roots, as on Debian's servers: `debian/` (suite `bookworm`, the
//! point release) and `debian-security/` (suite `bookworm-security`). Each
//! has its `dists/SUITE/InRelease` and the indexes it lists among
//! `main/binary-amd64/Packages.{xz,gz}` and `main/i18n/Translation-en.xz`,
//! downloaded **verbatim** with `apt-helper download-file`, so Debian's real
//! signatures and hashes hold: every InRelease is checked with `gpgv` against
//! the Debian archive keyring, every index against the InRelease's SHA256
//! list, and each index is also linked at its `by-hash/SHA256/` path (the
//! InReleases say `Acquire-By-Hash: yes`, so apt asks for those first).
//! Translation-en is there because a stock apt asks for it and fails the
//! whole `apt-get update` on a 404.
//!
//! The pool holds only the .debs of [`PRODUCT_PACKAGES`], each at its
//! bookworm version and at its bookworm-security version (read from the
//! mirrored indexes, never written down here), plus their dependency closure:
//! what real apt, pointed at the mirror's own indexes (`file:` URIs) and at
//! the rig's root filesystem's dpkg status, would install for each product
//! group at the old versions and at the new ones (`apt-get -s`; the union of
//! both covers the upgrade too, as the old install only adds packages). The
//! .debs are fetched with `apt-get download NAME=VERSION` from the real
//! archive and each is placed at its index `Filename:` under every root
//! whose index lists it, after its sha256 and size were checked against that
//! index.
//!
//! The archive's URIs are read at run time from the host's own apt sources
//! (`/etc/apt/sources.list.d/*.sources`, deb822, or the one-line
//! `/etc/apt/sources.list`): no mirror host is written in the project.
//!
//! # The cache
//!
//! Built once per machine under `debian-mirror` in the rig's cache directory
//! ([`host::cache_dir`], `/var/tmp/upkeep-rig` by default), under a lock file
//! so parallel tests and processes never build it twice. A build goes to
//! `debian-mirror.partial` and is renamed into place; the `COMPLETE` marker,
//! written last, lists every file with its size. The whole mirror is
//! downloaded again when the marker is missing, stale (another format or
//! package list) or names a missing file, or when the bookworm-security
//! InRelease's `Valid-Until` (a week after its `Date`) is less than a day
//! away, so a container's apt never sees it expired. The mirror it replaces
//! is kept as `debian-mirror.previous` until the next refresh, for processes
//! that still serve it.
//!
//! Measured here (2 cores, other builds running, 2026-12-07, debug test
//! build): a cold build took 13–20 s (indexes fetched, checked and read
//! ~2 s; the dependency closure, one `apt-get update` over `file:` and six
//! `apt-get -s`, ~7 s; the .debs, an `apt-get update` from the real archive
//! and one `apt-get download`, ~4 s), 35 MB on disk; a warm check with both
//! indexes read took 1.3 s, 0.7 s of it decompressing the 50 MB bookworm
//! `Packages.xz` (the `xz` program takes as long).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Bind, Container, Fail, cmd_stdout, host, own};

/// The point release's suite (archive root `debian/`).
pub const SUITE: &str = "bookworm";
/// The security suite (archive root `debian-security/`).
pub const SECURITY_SUITE: &str = "bookworm-security";
/// The packages the pool holds at both versions, with their dependencies.
pub const PRODUCT_PACKAGES: &[&str] = &[
    "nginx",
    "nginx-common",
    "redis-server",
    "redis-tools",
    "haproxy",
];
/// The products, each as installed together: the dependency closure is
/// computed per group.
const PRODUCT_GROUPS: &[&[&str]] = &[
    &["nginx", "nginx-common"],
    &["redis-server", "redis-tools"],
    &["haproxy"],
];
/// Bump when the mirror's layout or contents change: a new format rebuilds it.
const FORMAT: &str = "debian mirror v1";
/// The keyring the archive is checked with, on the host.
const HOST_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Its copy's name in the mirror's root.
pub const KEYRING_NAME: &str = "debian-archive-keyring.gpg";
/// Written last: its absence means a half-built mirror.
const MARKER: &str = "COMPLETE";
/// A mirror whose security InRelease expires sooner than this is refreshed.
const MIN_VALIDITY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// Where [`DebianHost`] binds the mirror inside its container.
pub const GUEST_DIR: &str = "/srv/debian-mirror";
/// Where [`DebianHost`] serves the mirror inside its container.
pub const MIRROR_URL: &str = "http://127.0.0.1:8081";
/// [`MIRROR_URL`]'s port.
const MIRROR_PORT: &str = "8081";
/// The container's apt sources, written by [`DebianHost::boot`].
pub const GUEST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// One archive root of the mirror.
struct Archive {
    /// Its directory under the mirror's root (and path on the servers).
    dir: &'static str,
    /// Its suite.
    suite: &'static str,
}

const ARCHIVES: [Archive; 2] = [
    Archive {
        dir: "debian",
        suite: SUITE,
    },
    Archive {
        dir: "debian-security",
        suite: SECURITY_SUITE,
    },
];

/// Index files mirrored per suite (paths under `dists/SUITE/`), and whether
/// the InRelease must list them.
const INDEXES: &[(&str, bool)] = &[
    ("main/binary-amd64/Packages.xz", true),
    ("main/binary-amd64/Packages.gz", false),
    ("main/i18n/Translation-en.xz", false),
];
/// The index the versions are read from.
const PACKAGES_XZ: &str = "main/binary-amd64/Packages.xz";

/// The local mirror (see the module doc).
#[derive(Debug)]
pub struct DebianMirror {
    /// The mirror's root: `debian/` and `debian-security/` below it.
    pub root: PathBuf,
    /// The Debian archive keyring the mirror was checked with (a copy in
    /// [`DebianMirror::root`], so containers that bind the root have it).
    pub keyring: PathBuf,
    /// When the bookworm-security InRelease expires.
    pub valid_until: jiff::Timestamp,
    /// Every .deb in the pool.
    pub pool: Vec<PoolEntry>,
    /// The parsed `Packages` index of each suite.
    indexes: BTreeMap<&'static str, Index>,
}

/// One .deb in the mirror's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEntry {
    /// The suite whose index lists it.
    pub suite: String,
    /// Package name.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The index's `Filename:`, relative to the suite's archive root.
    pub filename: String,
}

/// One stanza of a `Packages` index, the fields the rig uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Filename:`, relative to the archive root.
    pub filename: String,
    /// `SHA256:`.
    pub sha256: String,
    /// `Size:`.
    pub size: u64,
}

/// A `Packages` index: the entries of each package name.
#[derive(Debug, Default)]
struct Index(BTreeMap<String, Vec<IndexEntry>>);

impl Index {
    fn entry(&self, package: &str, version: &str) -> Option<&IndexEntry> {
        self.0.get(package)?.iter().find(|e| e.version == version)
    }

    /// The newest version of `package` (Debian's archive lists one per
    /// suite; more are compared with dpkg).
    fn newest(&self, package: &str) -> Option<String> {
        let entries = self.0.get(package)?;
        let mut best = &entries.first()?.version;
        for e in &entries[1..] {
            if dpkg_newer(&e.version, best) {
                best = &e.version;
            }
        }
        Some(best.clone())
    }
}

impl DebianMirror {
    /// The newest version of `package` in `suite`'s mirrored index (`suite`
    /// is [`SUITE`] or [`SECURITY_SUITE`]); None when the index has none.
    pub fn version(&self, suite: &str, package: &str) -> Option<String> {
        self.indexes.get(suite)?.newest(package)
    }

    /// `package` at `version` in `suite`'s mirrored index, if listed.
    pub fn entry(&self, suite: &str, package: &str, version: &str) -> Option<&IndexEntry> {
        self.indexes.get(suite)?.entry(package, version)
    }

    /// The archive root of `suite` on the host (`ROOT/debian` or
    /// `ROOT/debian-security`).
    pub fn archive_root(&self, suite: &str) -> Option<PathBuf> {
        archive_dir(suite).map(|d| self.root.join(d))
    }

    /// Whether the pool holds `package` at `version` (from either suite).
    pub fn pooled(&self, package: &str, version: &str) -> bool {
        self.pool
            .iter()
            .any(|p| p.package == package && p.version == version)
    }
}

/// The archive directory of `suite`.
fn archive_dir(suite: &str) -> Option<&'static str> {
    ARCHIVES.iter().find(|a| a.suite == suite).map(|a| a.dir)
}

/// The mirror, checked (and built or refreshed when needed) once per process.
pub fn mirror() -> Result<&'static DebianMirror, Fail> {
    static ONCE: OnceLock<Result<DebianMirror, Fail>> = OnceLock::new();
    ONCE.get_or_init(mirror_uncached)
        .as_ref()
        .map_err(Clone::clone)
}

fn mirror_uncached() -> Result<DebianMirror, Fail> {
    let started = Instant::now();
    let cache = host::cache_dir();
    let root = cache.join("debian-mirror");
    let _lock = host::lock_file(&cache.join("debian-mirror.lock"))?;
    if let Err(why) = check_cached(&root) {
        eprintln!("rig: building the local Debian mirror ({why})");
        build(&cache, &root)?;
        eprintln!(
            "rig: Debian mirror built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        check_cached(&root).map_err(|why| Fail(format!("the new Debian mirror: {why}")))?;
    }
    let m = load(&root)?;
    eprintln!(
        "rig: Debian mirror ready in {:.1} s (bookworm-security valid until {})",
        started.elapsed().as_secs_f64(),
        m.valid_until
    );
    Ok(m)
}

/// Ok when the cached mirror is complete, current and valid for at least
/// [`MIN_VALIDITY`]; otherwise why not.
fn check_cached(root: &Path) -> Result<(), String> {
    let marker = fs::read_to_string(root.join(MARKER)).map_err(|_| "no complete mirror yet")?;
    let mut lines = marker.lines();
    if lines.next() != Some(marker_header().as_str()) {
        return Err("the cached one is of another format or package list".into());
    }
    for line in lines {
        let Some(("file", rest)) = line.split_once(' ') else {
            continue;
        };
        let (size, rel) = rest
            .split_once(' ')
            .ok_or_else(|| format!("bad marker line {line:?}"))?;
        let size: u64 = size
            .parse()
            .map_err(|_| format!("bad marker line {line:?}"))?;
        let on_disk = fs::metadata(root.join(rel)).map(|m| m.len()).ok();
        if on_disk != Some(size) {
            return Err(format!("the cached one lacks {rel} or it changed"));
        }
    }
    let until = valid_until(root)?;
    if expires_soon(until, jiff::Timestamp::now()) {
        return Err(format!(
            "its {SECURITY_SUITE} InRelease expires at {until}, in less than a day"
        ));
    }
    Ok(())
}

/// True when a mirror valid until `until` must be refreshed at `now`: its
/// InRelease would expire in less than [`MIN_VALIDITY`].
fn expires_soon(until: jiff::Timestamp, now: jiff::Timestamp) -> bool {
    until.duration_since(now) < MIN_VALIDITY
}

/// The bookworm-security InRelease's `Valid-Until`, as the cached mirror has it.
fn valid_until(root: &Path) -> Result<jiff::Timestamp, String> {
    let path = in_release(root, &ARCHIVES[1]);
    let text = gpgv(&path, Path::new(HOST_KEYRING)).map_err(|e| e.0)?;
    let release = parse_release(&text);
    let raw = release
        .valid_until
        .ok_or_else(|| format!("{} has no Valid-Until", path.display()))?;
    parse_release_date(&raw)
}

/// A Release file's date (`Sun, 13 Dec 2026 02:54:29 UTC`).
pub fn parse_release_date(text: &str) -> Result<jiff::Timestamp, String> {
    jiff::fmt::rfc2822::parse(text)
        .map(|z| z.timestamp())
        .map_err(|e| format!("unreadable Release date {text:?}: {e}"))
}

fn marker_header() -> String {
    format!(
        "{FORMAT}; packages {}; indexes {}",
        PRODUCT_PACKAGES.join(","),
        INDEXES
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// `ROOT/ARCHIVE/dists/SUITE`.
fn dists(root: &Path, a: &Archive) -> PathBuf {
    root.join(a.dir).join("dists").join(a.suite)
}

fn in_release(root: &Path, a: &Archive) -> PathBuf {
    dists(root, a).join("InRelease")
}

/// The `Packages` index of each suite under `root`.
fn read_indexes(root: &Path) -> Result<BTreeMap<&'static str, Index>, Fail> {
    let mut indexes = BTreeMap::new();
    for a in &ARCHIVES {
        indexes.insert(
            a.suite,
            read_packages_xz(&dists(root, a).join(PACKAGES_XZ))?,
        );
    }
    Ok(indexes)
}

/// Reads a complete mirror: its marker's pool and the suites' indexes.
fn load(root: &Path) -> Result<DebianMirror, Fail> {
    let marker = fs::read_to_string(root.join(MARKER)).map_err(Fail::io("mirror marker"))?;
    let mut pool = Vec::new();
    for line in marker.lines() {
        if let Some(rest) = line.strip_prefix("pool ") {
            let f: Vec<&str> = rest.split(' ').collect();
            let [suite, package, version, filename] = f[..] else {
                return Err(Fail(format!("bad mirror marker line {line:?}")));
            };
            pool.push(PoolEntry {
                suite: suite.into(),
                package: package.into(),
                version: version.into(),
                filename: filename.into(),
            });
        }
    }
    let indexes = read_indexes(root)?;
    Ok(DebianMirror {
        root: root.to_path_buf(),
        keyring: root.join(KEYRING_NAME),
        valid_until: valid_until(root).map_err(Fail)?,
        pool,
        indexes,
    })
}

/// Downloads the whole mirror into `debian-mirror.partial` and renames it
/// into place, keeping the one it replaces as `debian-mirror.previous`.
fn build(cache: &Path, root: &Path) -> Result<(), Fail> {
    let sources = HostSources::read()?;
    let mut uris = BTreeMap::new();
    for a in &ARCHIVES {
        let uri = sources.uri_for(a.suite).ok_or_else(|| {
            Fail(format!(
                "the host's apt sources name no archive for suite {}",
                a.suite
            ))
        })?;
        uris.insert(a.suite, uri);
    }
    let tmp = cache.join("debian-mirror.partial");
    let work = cache.join("debian-mirror.work");
    for d in [&tmp, &work] {
        if d.exists() {
            fs::remove_dir_all(d).map_err(Fail::io("stale mirror build"))?;
        }
        fs::create_dir_all(d).map_err(Fail::io("mirror build dir"))?;
    }
    let started = Instant::now();
    let mut files = Vec::new();
    for a in &ARCHIVES {
        files.extend(fetch_suite(&tmp, a, &uris[a.suite])?);
    }
    fs::copy(HOST_KEYRING, tmp.join(KEYRING_NAME)).map_err(Fail::io("copy the keyring"))?;
    files.push(KEYRING_NAME.to_string());
    let indexes = read_indexes(&tmp)?;
    let fetched = started.elapsed();
    let wanted = closure(&tmp, &work.join("simulate"), &indexes)?;
    let closed = started.elapsed();
    let pool = fetch_debs(&tmp, &work.join("download"), &uris, &indexes, &wanted)?;
    eprintln!(
        "rig: Debian mirror: indexes fetched, checked and read in {:.1} s, \
         dependency closure ({} packages) in {:.1} s, .debs in {:.1} s",
        fetched.as_secs_f64(),
        wanted.len(),
        (closed - fetched).as_secs_f64(),
        (started.elapsed() - closed).as_secs_f64()
    );
    files.extend(pool.iter().map(|(_, rel)| rel.clone()));
    let pool: Vec<PoolEntry> = pool.into_iter().map(|(p, _)| p).collect();
    write_marker(&tmp, &files, &pool)?;
    let previous = cache.join("debian-mirror.previous");
    if root.exists() {
        if previous.exists() {
            fs::remove_dir_all(&previous).map_err(Fail::io("remove the previous mirror"))?;
        }
        fs::rename(root, &previous).map_err(Fail::io("set the old mirror aside"))?;
    }
    fs::rename(&tmp, root).map_err(Fail::io("mirror rename"))?;
    fs::remove_dir_all(&work).map_err(Fail::io("remove the mirror's work dir"))?;
    Ok(())
}

/// Downloads a suite's InRelease and indexes into `tmp`, verified; returns
/// the files written (relative to `tmp`).
fn fetch_suite(tmp: &Path, a: &Archive, uri: &str) -> Result<Vec<String>, Fail> {
    let dists = format!("{}/dists/{}", a.dir, a.suite);
    let in_release_path = in_release(tmp, a);
    download_file(
        &format!("{uri}/dists/{}/InRelease", a.suite),
        &in_release_path,
    )?;
    let release = parse_release(&gpgv(&in_release_path, Path::new(HOST_KEYRING))?);
    let mut files = vec![format!("{dists}/InRelease")];
    for (index, required) in INDEXES {
        let Some((sha256, size)) = release.sha256.get(*index) else {
            if *required {
                return Err(Fail(format!(
                    "{uri}/dists/{}/InRelease lists no {index}",
                    a.suite
                )));
            }
            continue;
        };
        let dest = tmp.join(&dists).join(index);
        download_file(&format!("{uri}/dists/{}/{index}", a.suite), &dest)?;
        check_file(&dest, sha256, *size)?;
        // apt asks for `by-hash/SHA256/<sha256>` first (Acquire-By-Hash).
        let dir = Path::new(index).parent().unwrap_or(Path::new(""));
        let by_hash = tmp.join(&dists).join(dir).join("by-hash/SHA256");
        fs::create_dir_all(&by_hash).map_err(Fail::io("by-hash dir"))?;
        fs::hard_link(&dest, by_hash.join(sha256)).map_err(Fail::io("by-hash link"))?;
        files.push(format!("{dists}/{index}"));
        files.push(format!("{dists}/{}/by-hash/SHA256/{sha256}", dir.display()));
    }
    Ok(files)
}

/// `apt-helper download-file URI DEST`, with the host's apt configuration
/// (how the host reaches the archive).
fn download_file(uri: &str, dest: &Path) -> Result<(), Fail> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(Fail::io("mirror dir"))?;
    }
    cmd_stdout(
        Command::new("/usr/lib/apt/apt-helper")
            .args(["-o", "APT::Sandbox::User=root", "download-file", uri])
            .arg(dest),
    )
    .map(|_| ())
}

/// Checks a file's size and sha256.
fn check_file(path: &Path, sha256: &str, size: u64) -> Result<(), Fail> {
    let data = fs::read(path).map_err(|e| Fail(format!("read {}: {e}", path.display())))?;
    let got = sha256_hex(&data);
    if data.len() as u64 != size || got != sha256 {
        return Err(Fail(format!(
            "{}: {} bytes with sha256 {got}, the signed index says {size} bytes with sha256 {sha256}",
            path.display(),
            data.len()
        )));
    }
    Ok(())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// Verifies a clearsigned file with `gpgv` against `keyring`; returns the
/// signed text.
fn gpgv(path: &Path, keyring: &Path) -> Result<String, Fail> {
    cmd_stdout(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(keyring)
            .args(["--output", "-"])
            .arg(path),
    )
}

/// The fields of a Release file the mirror uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Release {
    /// `Valid-Until`, as written.
    pub valid_until: Option<String>,
    /// The `SHA256:` list: path → (sha256, size).
    pub sha256: BTreeMap<String, (String, u64)>,
}

/// Parses a (verified, unarmoured) Release file.
pub fn parse_release(text: &str) -> Release {
    let mut r = Release::default();
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(entry) = line.strip_prefix(' ') {
            if in_sha256 {
                let f: Vec<&str> = entry.split_whitespace().collect();
                if let [sha, size, path] = f[..]
                    && let Ok(size) = size.parse()
                {
                    r.sha256.insert(path.into(), (sha.into(), size));
                }
            }
            continue;
        }
        in_sha256 = false;
        match line.split_once(':') {
            Some(("SHA256", "")) => in_sha256 = true,
            Some(("Valid-Until", v)) => r.valid_until = Some(v.trim().into()),
            _ => {}
        }
    }
    r
}

/// Reads a `Packages.xz` index.
fn read_packages_xz(path: &Path) -> Result<Index, Fail> {
    let file = fs::File::open(path).map_err(|e| Fail(format!("open {}: {e}", path.display())))?;
    let mut text = String::new();
    liblzma::read::XzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| Fail(format!("decompress {}: {e}", path.display())))?;
    let mut index = Index::default();
    for e in parse_packages(&text) {
        index.0.entry(e.package.clone()).or_default().push(e);
    }
    Ok(index)
}

/// The complete stanzas of a `Packages` index (those with every field
/// [`IndexEntry`] has).
pub fn parse_packages(text: &str) -> Vec<IndexEntry> {
    #[derive(Default)]
    struct Fields<'a> {
        package: Option<&'a str>,
        version: Option<&'a str>,
        filename: Option<&'a str>,
        sha256: Option<&'a str>,
        size: Option<u64>,
    }
    fn finish(f: Fields<'_>, out: &mut Vec<IndexEntry>) {
        if let (Some(p), Some(v), Some(name), Some(s), Some(n)) =
            (f.package, f.version, f.filename, f.sha256, f.size)
        {
            out.push(IndexEntry {
                package: p.into(),
                version: v.into(),
                filename: name.into(),
                sha256: s.into(),
                size: n,
            });
        }
    }
    let mut out = Vec::new();
    let mut f = Fields::default();
    // One pass, looking only at the lines that can matter: the bookworm
    // index is 50 MB, read in every test process (a debug build).
    for line in text.split('\n') {
        match line.as_bytes().first() {
            None => finish(std::mem::take(&mut f), &mut out),
            Some(b'P') => f.package = line.strip_prefix("Package: ").or(f.package),
            Some(b'V') => f.version = line.strip_prefix("Version: ").or(f.version),
            Some(b'F') => f.filename = line.strip_prefix("Filename: ").or(f.filename),
            Some(b'S') => {
                if let Some(v) = line.strip_prefix("SHA256: ") {
                    f.sha256 = Some(v);
                } else if let Some(v) = line.strip_prefix("Size: ") {
                    f.size = v.parse().ok();
                }
            }
            Some(_) => {}
        }
    }
    finish(f, &mut out);
    out
}

/// True when Debian version `a` is newer than `b` (`dpkg --compare-versions`).
fn dpkg_newer(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .is_ok_and(|s| s.success())
}

/// The host's apt sources: deb822 stanzas and one-line entries.
struct HostSources {
    deb822: Vec<String>,
    one_line: Option<String>,
}

impl HostSources {
    fn read() -> Result<HostSources, Fail> {
        let mut deb822 = Vec::new();
        if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sources"))
                .collect();
            paths.sort();
            for p in paths {
                deb822.push(
                    fs::read_to_string(&p)
                        .map_err(|e| Fail(format!("read {}: {e}", p.display())))?,
                );
            }
        }
        let one_line = fs::read_to_string("/etc/apt/sources.list").ok();
        Ok(HostSources { deb822, one_line })
    }

    fn uri_for(&self, suite: &str) -> Option<String> {
        archive_uri(&self.deb822, self.one_line.as_deref(), suite)
    }
}

/// The URI of the `deb` source for `suite`: from the deb822 `.sources`
/// files first, then from the one-line `sources.list`; without a trailing `/`.
pub fn archive_uri(deb822: &[String], one_line: Option<&str>, suite: &str) -> Option<String> {
    let from_deb822 = deb822.iter().find_map(|text| {
        deb822_stanzas(text).into_iter().find_map(|fields| {
            let field = |k: &str| {
                fields
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
            };
            let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
            let deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
            let has_suite =
                field("Suites").is_some_and(|s| s.split_whitespace().any(|s| s == suite));
            (enabled && deb && has_suite)
                .then(|| field("URIs")?.split_whitespace().next().map(str::to_string))
                .flatten()
        })
    });
    let from_one_line = || {
        one_line?.lines().find_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("deb") {
                return None;
            }
            let mut uri = words.next()?;
            if uri.starts_with('[') {
                // Options: `[arch=amd64 signed-by=...]`, up to the `]`.
                while !uri.ends_with(']') {
                    uri = words.next()?;
                }
                uri = words.next()?;
            }
            (words.next() == Some(suite)).then(|| uri.to_string())
        })
    };
    from_deb822
        .or_else(from_one_line)
        .map(|u| u.trim_end_matches('/').to_string())
}

/// The stanzas of a deb822 file, each as (field, value) pairs; comments
/// skipped, continuation lines joined with a space.
fn deb822_stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stanzas = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            current.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// A private apt: its own configuration file (`APT_CONFIG`), sources, lists,
/// cache and dpkg status, nothing of the host's apt state.
struct PrivateApt {
    config: PathBuf,
    dir: PathBuf,
}

impl PrivateApt {
    /// Sets up `dir` with `sources` (one-line format) and `settings`
    /// (apt.conf lines) on top of the directories it owns.
    fn new(dir: &Path, sources: &str, settings: &[String]) -> Result<PrivateApt, Fail> {
        for d in ["lists/partial", "cache/archives/partial", "state", "empty"] {
            fs::create_dir_all(dir.join(d)).map_err(Fail::io("private apt dir"))?;
        }
        fs::write(dir.join("sources.list"), sources).map_err(Fail::io("private sources"))?;
        let d = dir.display();
        let mut conf = vec![
            format!("Dir::Etc::SourceList \"{d}/sources.list\";"),
            format!("Dir::Etc::SourceParts \"{d}/empty\";"),
            "Dir::Etc::Preferences \"/dev/null\";".to_string(),
            format!("Dir::Etc::PreferencesParts \"{d}/empty\";"),
            format!("Dir::State \"{d}/state\";"),
            format!("Dir::State::Lists \"{d}/lists\";"),
            format!("Dir::Cache \"{d}/cache\";"),
            "APT::Sandbox::User \"root\";".to_string(),
        ];
        conf.extend_from_slice(settings);
        let config = dir.join("apt.conf");
        fs::write(&config, conf.join("\n") + "\n").map_err(Fail::io("private apt.conf"))?;
        Ok(PrivateApt {
            config,
            dir: dir.to_path_buf(),
        })
    }

    /// `apt-get ARGS` under this configuration, in `cwd` (or its directory).
    fn apt_get(&self, args: &[&str], cwd: Option<&Path>) -> Result<String, Fail> {
        cmd_stdout(
            Command::new("apt-get")
                .env("APT_CONFIG", &self.config)
                .env("LC_ALL", "C")
                .current_dir(cwd.unwrap_or(&self.dir))
                .args(args),
        )
    }
}

/// The (package, version) pairs the pool needs: for each product group, what
/// real apt installs on the rig's root filesystem at the bookworm versions
/// and at the newest ones, from the mirror's own indexes.
fn closure(
    tmp: &Path,
    work: &Path,
    indexes: &BTreeMap<&'static str, Index>,
) -> Result<BTreeSet<(String, String)>, Fail> {
    let rootfs = host::rootfs()?;
    let sources: String = ARCHIVES
        .iter()
        .map(|a| {
            format!(
                "deb [signed-by={HOST_KEYRING}] file:{}/{} {} main\n",
                tmp.display(),
                a.dir,
                a.suite
            )
        })
        .collect();
    // The container's own apt configuration and dpkg status.
    let apt = PrivateApt::new(
        work,
        &sources,
        &[
            "Dir::Etc::Main \"/dev/null\";".to_string(),
            format!(
                "Dir::Etc::Parts \"{}/etc/apt/apt.conf.d\";",
                rootfs.display()
            ),
            format!(
                "Dir::State::status \"{}/var/lib/dpkg/status\";",
                rootfs.display()
            ),
        ],
    )?;
    apt.apt_get(&["update", "-q"], None)?;
    let mut wanted = BTreeSet::new();
    for group in PRODUCT_GROUPS {
        for suite in [SUITE, SECURITY_SUITE] {
            let mut pins = Vec::new();
            for p in *group {
                let v = indexes[suite]
                    .newest(p)
                    .or_else(|| indexes[SUITE].newest(p))
                    .ok_or_else(|| Fail(format!("{SUITE} has no package {p}")))?;
                wanted.insert((p.to_string(), v.clone()));
                pins.push(format!("{p}={v}"));
            }
            let mut args = vec!["-s", "-q", "--no-install-recommends", "install"];
            args.extend(pins.iter().map(String::as_str));
            wanted.extend(parse_inst_lines(&apt.apt_get(&args, None)?));
        }
    }
    Ok(wanted)
}

/// Fetches each wanted .deb with `apt-get download NAME=VERSION` from the
/// real archive and places it, checked, at its `Filename:` under each root
/// whose index lists it; returns each placed with its path under `tmp`.
fn fetch_debs(
    tmp: &Path,
    work: &Path,
    uris: &BTreeMap<&'static str, String>,
    indexes: &BTreeMap<&'static str, Index>,
    wanted: &BTreeSet<(String, String)>,
) -> Result<Vec<(PoolEntry, String)>, Fail> {
    let sources: String = ARCHIVES
        .iter()
        .map(|a| {
            format!(
                "deb [signed-by={HOST_KEYRING}] {} {} main\n",
                uris[a.suite], a.suite
            )
        })
        .collect();
    fs::create_dir_all(work).map_err(Fail::io("download dir"))?;
    let status = work.join("status");
    fs::write(&status, "").map_err(Fail::io("empty dpkg status"))?;
    // The host's apt configuration stays (it says how to reach the archive);
    // its sources, lists, cache and status do not.
    let apt = PrivateApt::new(
        work,
        &sources,
        &[format!("Dir::State::status \"{}\";", status.display())],
    )?;
    apt.apt_get(&["update", "-q"], None)?;
    let debs = work.join("debs");
    fs::create_dir_all(&debs).map_err(Fail::io("debs dir"))?;
    let pins: Vec<String> = wanted.iter().map(|(p, v)| format!("{p}={v}")).collect();
    let mut args = vec!["download", "-q"];
    args.extend(pins.iter().map(String::as_str));
    apt.apt_get(&args, Some(&debs))?;
    // apt-get download names files its own way (epochs as `%3a`): find them
    // by content.
    let mut by_sha = BTreeMap::new();
    for e in fs::read_dir(&debs).map_err(Fail::io("read debs dir"))? {
        let path = e.map_err(Fail::io("read debs dir"))?.path();
        let data = fs::read(&path).map_err(Fail::io("read a downloaded deb"))?;
        by_sha.insert(sha256_hex(&data), path);
    }
    let mut pool = Vec::new();
    for (package, version) in wanted {
        let mut listed = false;
        for a in &ARCHIVES {
            let Some(entry) = indexes[a.suite].entry(package, version) else {
                continue;
            };
            listed = true;
            let file = by_sha.get(&entry.sha256).ok_or_else(|| {
                Fail(format!(
                    "apt-get download {package}={version} gave no file with the sha256 {} that {}'s index lists",
                    entry.sha256, a.suite
                ))
            })?;
            let inside = Path::new(&entry.filename)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(Fail(format!(
                    "{}'s index puts {package}={version} outside the archive: {:?}",
                    a.suite, entry.filename
                )));
            }
            let rel = format!("{}/{}", a.dir, entry.filename);
            let dest = tmp.join(&rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(Fail::io("pool dir"))?;
            }
            fs::copy(file, &dest).map_err(Fail::io("place a deb in the pool"))?;
            check_file(&dest, &entry.sha256, entry.size)?;
            let placed = PoolEntry {
                suite: a.suite.to_string(),
                package: package.clone(),
                version: version.clone(),
                filename: entry.filename.clone(),
            };
            pool.push((placed, rel));
        }
        if !listed {
            return Err(Fail(format!(
                "apt chose {package}={version}, which no mirrored index lists"
            )));
        }
    }
    Ok(pool)
}

/// Writes the marker: the header, every file with its size, the pool.
fn write_marker(tmp: &Path, files: &[String], pool: &[PoolEntry]) -> Result<(), Fail> {
    let mut text = marker_header() + "\n";
    for rel in files {
        let size = fs::metadata(tmp.join(rel))
            .map_err(|e| Fail(format!("{rel}: {e}")))?
            .len();
        text.push_str(&format!("file {size} {rel}\n"));
    }
    for p in pool {
        text.push_str(&format!(
            "pool {} {} {} {}\n",
            p.suite, p.package, p.version, p.filename
        ));
    }
    let part = tmp.join(format!("{MARKER}.part"));
    fs::write(&part, text).map_err(Fail::io("write the mirror marker"))?;
    fs::rename(&part, tmp.join(MARKER)).map_err(Fail::io("mirror marker rename"))
}

/// The (package, new version) of every `Inst` line of `apt-get -s` output:
/// `Inst nginx-common [1.22.1-9] (1.22.1-9+deb12u1 Debian-Security:12/stable-security [all])`
/// (an upgrade) or `Inst libfoo (1.0-1 Debian:12.8/stable [amd64])` (a new
/// install).
pub fn parse_inst_lines(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(parse_inst_line).collect()
}

fn parse_inst_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("Inst ")?;
    let (name, rest) = rest.split_once(' ')?;
    let mut rest = rest.trim_start();
    if let Some(installed) = rest.strip_prefix('[') {
        rest = installed.split_once(']')?.1.trim_start();
    }
    let version = rest.strip_prefix('(')?.split_whitespace().next()?;
    Some((name.to_string(), version.to_string()))
}

/// A rig container whose apt knows only the local Debian mirror, served
/// inside it on [`MIRROR_URL`], with upkeep installed from its own package.
pub struct DebianHost {
    /// The container.
    pub c: Container,
    /// The mirror it installs from.
    pub mirror: &'static DebianMirror,
    /// upkeep's own packages (the .deb is installed).
    pub own: own::OwnPackages,
}

impl DebianHost {
    /// Boots a container with the mirror bound read-only at [`GUEST_DIR`] and
    /// served on [`MIRROR_URL`], replaces every apt source of the root
    /// filesystem with the mirror's two suites (`Signed-By` the Debian
    /// keyring), runs `apt-get update` (which must fetch everything without
    /// a warning) and installs upkeep's own .deb.
    pub fn boot(upkeep: &Path) -> Result<DebianHost, Fail> {
        let mirror = mirror()?;
        let own = own::get(upkeep)?;
        let c = Container::boot(&[
            Bind {
                host: mirror.root.clone(),
                guest: GUEST_DIR.into(),
                read_only: true,
            },
            Bind {
                host: own::host_dir(),
                guest: own::GUEST_DIR.into(),
                read_only: true,
            },
        ])?;
        c.run(&[
            "systemd-run",
            "--unit=debian-mirror",
            "--quiet",
            "python3",
            "-m",
            "http.server",
            MIRROR_PORT,
            "--bind",
            "127.0.0.1",
            "--directory",
            GUEST_DIR,
        ])?;
        c.wait_for(
            &[
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                &format!("{MIRROR_URL}/debian/dists/{SUITE}/InRelease"),
            ],
            Duration::from_secs(10),
        )?;
        let host = DebianHost { c, mirror, own };
        host.use_only_the_mirror()?;
        host.c.run(&["dpkg", "-i", &host.own.guest_deb()])?;
        Ok(host)
    }

    /// Removes every apt source of the root filesystem, writes
    /// [`GUEST_SOURCES`] and runs `apt-get update`.
    fn use_only_the_mirror(&self) -> Result<(), Fail> {
        let classic = self.c.path("/etc/apt/sources.list");
        if classic.exists() {
            fs::remove_file(&classic).map_err(Fail::io("remove sources.list"))?;
        }
        let parts = self.c.path("/etc/apt/sources.list.d");
        if let Ok(entries) = fs::read_dir(&parts) {
            for e in entries.flatten() {
                fs::remove_file(e.path()).map_err(Fail::io("remove an apt source"))?;
            }
        }
        let keyring = format!("{GUEST_DIR}/{KEYRING_NAME}");
        let stanzas: Vec<String> = ARCHIVES
            .iter()
            .map(|a| {
                format!(
                    "Types: deb\nURIs: {MIRROR_URL}/{}\nSuites: {}\nComponents: main\nSigned-By: {keyring}\n",
                    a.dir, a.suite
                )
            })
            .collect();
        self.c.write(GUEST_SOURCES, stanzas.join("\n"), 0o644)?;
        let out = self.c.exec(&["apt-get", "update", "-q"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.lines().any(|l| l.starts_with("W:")) {
            return Err(Fail(format!(
                "apt-get update from the local Debian mirror:\n{}",
                super::show(&out)
            )));
        }
        Ok(())
    }

    /// `apt-get install -y --no-install-recommends` of each package at its
    /// bookworm version (as an operator did long before upkeep), then waits
    /// until every enabled service unit the packages ship is active.
    pub fn install_point_release(&self, packages: &[&str]) -> Result<(), Fail> {
        let mut pins = Vec::new();
        for p in packages {
            let v = self
                .mirror
                .version(SUITE, p)
                .ok_or_else(|| Fail(format!("the mirror's {SUITE} index has no {p}")))?;
            pins.push(format!("{p}={v}"));
        }
        let mut argv = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
        argv.extend(pins.iter().map(String::as_str));
        let out = self
            .c
            .command(&argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| Fail(format!("nsenter {argv:?}: {e}")))?;
        if !out.status.success() {
            return Err(Fail(format!("{argv:?}:\n{}", super::show(&out))));
        }
        for unit in self.service_units(packages)? {
            let enabled = self.c.exec(&["systemctl", "is-enabled", &unit])?;
            if String::from_utf8_lossy(&enabled.stdout).trim() != "enabled" {
                continue;
            }
            self.c
                .wait_for(
                    &["systemctl", "is-active", "--quiet", &unit],
                    Duration::from_secs(30),
                )
                .map_err(|e| {
                    let status = self
                        .c
                        .exec(&["systemctl", "status", "--no-pager", &unit])
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    Fail(format!(
                        "{unit} did not come up after {pins:?}: {e}\n{status}"
                    ))
                })?;
        }
        Ok(())
    }

    /// The service units (not templates) the packages ship.
    fn service_units(&self, packages: &[&str]) -> Result<Vec<String>, Fail> {
        let mut units = BTreeSet::new();
        for p in packages {
            let listing = self.c.run(&["dpkg-query", "-L", p])?;
            for path in listing.lines() {
                let in_unit_dir = path.starts_with("/lib/systemd/system/")
                    || path.starts_with("/usr/lib/systemd/system/");
                let name = path.rsplit('/').next().unwrap_or("");
                if in_unit_dir && name.ends_with(".service") && !name.contains('@') {
                    units.insert(name.to_string());
                }
            }
        }
        Ok(units.into_iter().collect())
    }

    /// The version of `package` dpkg has fully installed, if any.
    pub fn dpkg_version(&self, package: &str) -> Option<String> {
        let out = self
            .c
            .exec(&["dpkg-query", "-W", "-f=${Status} ${Version}", package])
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .strip_prefix("install ok installed ")
            .map(str::to_string)
    }

    /// `apt-get -s --no-install-recommends install ARGS` in the container:
    /// the (package, new version) apt would install or upgrade.
    pub fn apt_simulate(&self, args: &[&str]) -> Result<Vec<(String, String)>, Fail> {
        let mut argv = vec!["apt-get", "-s", "--no-install-recommends", "install"];
        argv.extend_from_slice(args);
        Ok(parse_inst_lines(&self.c.run(&argv)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_served_on_its_url_s_port() {
        assert!(MIRROR_URL.ends_with(&format!(":{MIRROR_PORT}")));
    }

    #[test]
    fn inst_lines_give_each_package_and_its_new_version() {
        let out = "\
NOTE: This is only a simulation!
Reading package lists...
The following packages will be upgraded:
  nginx nginx-common
Inst nginx-common [1.22.1-9] (1.22.1-9+deb12u1 Debian-Security:12/stable-security [all])
Inst nginx [1.22.1-9] (1.22.1-9+deb12u1 Debian-Security:12/stable-security [amd64])
Inst libfoo (1.0-1 Debian:12.8/stable [amd64])
Inst redis-tools [5:7.0.15-1~deb12u1] (5:7.0.15-1~deb12u3 Debian-Security:12/stable-security [amd64]) []
Conf nginx-common (1.22.1-9+deb12u1 Debian-Security:12/stable-security [all])
Conf libfoo (1.0-1 Debian:12.8/stable [amd64])
";
        assert_eq!(
            parse_inst_lines(out),
            [
                ("nginx-common", "1.22.1-9+deb12u1"),
                ("nginx", "1.22.1-9+deb12u1"),
                ("libfoo", "1.0-1"),
                ("redis-tools", "5:7.0.15-1~deb12u3"),
            ]
            .map(|(p, v)| (p.to_string(), v.to_string()))
        );
    }

    #[test]
    fn the_archive_uri_of_a_suite_comes_from_deb822_then_one_line_sources() {
        let deb822 = ["\
Types: deb
# a comment
URIs: http://archive.example/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb-src
URIs: http://src.example/debian-security
Suites: bookworm-security

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
        .to_string()];
        assert_eq!(
            archive_uri(&deb822, None, "bookworm").as_deref(),
            Some("http://archive.example/debian")
        );
        assert_eq!(
            archive_uri(&deb822, None, "bookworm-security").as_deref(),
            Some("http://archive.example/debian-security")
        );
        assert_eq!(archive_uri(&deb822, None, "trixie"), None);
        let one_line = "\
# deb http://old.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://archive.example/debian bookworm main
deb http://archive.example/debian-security bookworm-security main
";
        assert_eq!(
            archive_uri(&[], Some(one_line), "bookworm").as_deref(),
            Some("http://archive.example/debian")
        );
        assert_eq!(
            archive_uri(&[], Some(one_line), "bookworm-security").as_deref(),
            Some("http://archive.example/debian-security")
        );
    }

    #[test]
    fn release_files_give_valid_until_and_the_sha256_list() {
        let text = "\
Origin: Debian
Codename: bookworm-security
Date: Sun, 06 Dec 2026 02:54:29 UTC
Valid-Until: Sun, 13 Dec 2026 02:54:29 UTC
MD5Sum:
 0123 388024 main/binary-amd64/Packages.xz
SHA256:
 47d7 388024 main/binary-amd64/Packages.xz
 a15a 243484 main/i18n/Translation-en.xz
";
        let r = parse_release(text);
        assert_eq!(
            r.valid_until.as_deref(),
            Some("Sun, 13 Dec 2026 02:54:29 UTC")
        );
        assert_eq!(
            r.sha256.get("main/binary-amd64/Packages.xz"),
            Some(&("47d7".to_string(), 388024))
        );
        assert_eq!(r.sha256.len(), 2);
        let until = parse_release_date("Sun, 13 Dec 2026 02:54:29 UTC").unwrap();
        assert_eq!(until.to_string(), "2026-12-13T02:54:29Z");
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        assert!(!expires_soon(until, at("2026-12-07T11:48:00Z")));
        assert!(!expires_soon(until, at("2026-12-12T02:54:29Z")));
        assert!(expires_soon(until, at("2026-12-12T02:54:30Z")));
        assert!(expires_soon(until, at("2026-12-14T00:00:00Z")));
    }

    #[test]
    fn packages_stanzas_give_the_fields_the_pool_needs() {
        let text = "\
Package: redis-server
Version: 5:7.0.15-1~deb12u1
Architecture: amd64
Depends: redis-tools (= 5:7.0.15-1~deb12u1)
Description: Persistent key-value database
 with a continuation line
Filename: pool/main/r/redis/redis-server_7.0.15-1~deb12u1_amd64.deb
Size: 72948
SHA256: 3f1d

Package: incomplete
Version: 1
";
        assert_eq!(
            parse_packages(text),
            [IndexEntry {
                package: "redis-server".into(),
                version: "5:7.0.15-1~deb12u1".into(),
                filename: "pool/main/r/redis/redis-server_7.0.15-1~deb12u1_amd64.deb".into(),
                sha256: "3f1d".into(),
                size: 72948,
            }]
        );
    }
}
