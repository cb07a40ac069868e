//! Archives of the product's files and directories, and their exact restore.
//!
//! An archive is a gzip tar whose first member, [`MANIFEST_NAME`], is a JSON
//! manifest listing the archived absolute paths and whether each existed.
//! The other members are named after the absolute paths without their leading
//! `/`, in depth-first order (a directory before its children), and carry the
//! mode, numeric owner and mtime (nanoseconds in a pax `mtime` record when not
//! a whole second). Symlinks are kept as links, never followed.
//!
//! Restoring puts each archived path back exactly as it was: files are
//! replaced atomically (a temporary file in the same directory, renamed over
//! the old one), entries of an archived directory that the archive does not
//! hold are removed, and paths recorded as absent are removed. A member name
//! that is absolute, holds `.` or `..`, or is not the archived path itself or
//! inside an archived directory restored before it, is refused, so nothing is
//! ever written outside the root.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use tar::{Archive, Builder, EntryType, Header};

use super::{Artifact, HashingWriter, Kind, one_line, remove_quietly};
use crate::fsutil::durable::{self, Durability, Options, Pending, partial_path, sync_parent};

/// Name of the manifest, the first member of every archive.
pub const MANIFEST_NAME: &str = ".upkeep-manifest.json";

/// Version of the manifest format written.
const MANIFEST_FORMAT: u32 = 1;

/// Largest manifest accepted when reading.
const MANIFEST_MAX: u64 = 16 * 1024 * 1024;

/// Archives `paths` (absolute; files or directories, recursively; symlinks kept as links;
/// a path that does not exist is recorded as absent so restore removes it) into `dest`
/// as a gzip tar, created with mode 0600 (never wider, even briefly: create with mode, not chmod after),
/// written to `dest.partial`, fsynced, renamed; returns the verified Artifact (kind Files).
///
/// Duplicates and paths inside another given path are archived once. Only
/// regular files, directories and symlinks can be archived.
///
/// # Errors
///
/// A path that is not absolute and normalized (or is not UTF-8), an
/// unreadable file, a socket, FIFO or device inside an archived directory, or
/// a failure to write `dest`; one line, naming the path.
pub fn archive(paths: &[PathBuf], dest: &Path) -> anyhow::Result<Artifact> {
    let tops = normalize_paths(paths)
        .map_err(|e| anyhow!(one_line(&format!("archive {}: {e}", dest.display()))))?;
    let partial = partial_path(dest);
    let mut pending = Pending::create(dest, Options::private())
        .map_err(|e| anyhow!("{}: cannot create: {e}", partial.display()))?;
    let skip = [partial.as_path(), dest];
    // On an error the pending file is dropped, which removes it.
    let written = write_archive(pending.file(), &tops, &skip).and_then(|hashed| {
        pending
            .sync()
            .map_err(|e| anyhow!("cannot write the archive: {e}"))?;
        pending
            .commit()
            .map_err(|e| anyhow!("{}: cannot rename into place: {e}", dest.display()))?;
        Ok(hashed)
    });
    let (size, sha256) = written.map_err(|e| anyhow!(one_line(&format!("{e:#}"))))?;
    let artifact = Artifact {
        kind: Kind::Files,
        path: dest.to_path_buf(),
        size,
        sha256,
    };
    artifact.verify()?;
    Ok(artifact)
}

/// Verifies the artifact, then puts every archived path back exactly: file contents, modes,
/// owners (uid/gid), mtimes; files inside an archived directory that did not exist at
/// archive time are removed; a path recorded as absent is removed. Each file is replaced
/// atomically (temp file in the same directory + rename). Returns the paths restored.
///
/// The paths returned are all archived paths (present or absent), in the
/// manifest's order.
///
/// # Errors
///
/// The artifact fails [`Artifact::verify`], holds a refused member name, or
/// a file cannot be written; one line.
pub fn restore(artifact: &Artifact) -> anyhow::Result<Vec<PathBuf>> {
    restore_into(artifact, Path::new("/"))
}

/// Same as restore but into `root` instead of `/` (tests use it; restore(a) == restore_into(a, Path::new("/"))).
///
/// The paths returned are the archived paths under `root`.
///
/// # Errors
///
/// As [`restore`].
pub fn restore_into(artifact: &Artifact, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if artifact.kind != Kind::Files {
        bail!(
            "{}: not a files backup (kind {})",
            artifact.path.display(),
            artifact.kind
        );
    }
    artifact.verify()?;
    let restorer = Restorer {
        root,
        archive_path: &artifact.path,
        members: HashSet::new(),
        dirs: HashSet::new(),
        deferred: Vec::new(),
    };
    restorer.run().map_err(|e| {
        anyhow!(one_line(&format!(
            "restore from {}: {e:#}",
            artifact.path.display()
        )))
    })
}

// ---------------------------------------------------------------------------
// Manifest and names (pure)
// ---------------------------------------------------------------------------

/// The archive's first member: what was archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// [`MANIFEST_FORMAT`].
    format: u32,
    /// The archived paths, in the order given to [`archive`].
    paths: Vec<ManifestPath>,
}

/// One archived path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestPath {
    /// Absolute, normalized path.
    path: String,
    /// Whether it existed (and so is in the archive).
    present: bool,
}

impl ManifestPath {
    /// The member name: the path without its leading `/`.
    fn member(&self) -> PathBuf {
        PathBuf::from(&self.path[1..])
    }
}

impl Manifest {
    fn to_json(&self) -> Vec<u8> {
        // Serializing strings and booleans cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and validates a manifest.
    fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid manifest: {e}"))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not supported (expected {MANIFEST_FORMAT})",
                manifest.format
            ));
        }
        for (i, p) in manifest.paths.iter().enumerate() {
            check_abs_path(&p.path).map_err(|e| format!("manifest: {e}"))?;
            for other in &manifest.paths[..i] {
                if is_within(&p.path, &other.path) || is_within(&other.path, &p.path) {
                    return Err(format!(
                        "manifest: {:?} and {:?} overlap",
                        other.path, p.path
                    ));
                }
            }
        }
        Ok(manifest)
    }
}

/// Checks that `path` is absolute and normalized: no empty, `.` or `..`
/// component, no trailing `/`, not `/` itself.
fn check_abs_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{path:?} is not an absolute path"));
    };
    if rest.is_empty() {
        return Err("the root directory cannot be archived".to_owned());
    }
    if path.contains('\0') {
        return Err(format!("{path:?} contains a NUL byte"));
    }
    for part in rest.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!(
                "{path:?} is not normalized (empty, \".\" or \"..\" component)"
            ));
        }
    }
    Ok(())
}

/// Whether `child` is `parent` or inside it (both normalized absolute).
fn is_within(child: &str, parent: &str) -> bool {
    child == parent
        || (child.starts_with(parent) && child.as_bytes().get(parent.len()) == Some(&b'/'))
}

/// Checks the paths given to [`archive`], drops duplicates and paths inside
/// another one, keeps the order otherwise.
fn normalize_paths(paths: &[PathBuf]) -> Result<Vec<String>, String> {
    if paths.is_empty() {
        return Err("no paths to archive".to_owned());
    }
    let mut checked = Vec::with_capacity(paths.len());
    for path in paths {
        let text = path
            .to_str()
            .ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
        check_abs_path(text)?;
        checked.push(text.to_owned());
    }
    let mut out: Vec<String> = Vec::with_capacity(checked.len());
    for (i, p) in checked.iter().enumerate() {
        let covered = checked.iter().enumerate().any(|(j, q)| {
            // Inside another path, or a duplicate of an earlier one.
            (p != q && is_within(p, q)) || (p == q && j < i)
        });
        if !covered {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Checks a member name read from an archive: relative, and no empty, `.` or
/// `..` component (one trailing `/` is allowed, as tar writes for
/// directories).
fn check_member(name: &[u8]) -> Result<PathBuf, String> {
    let shown = String::from_utf8_lossy(name).into_owned();
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty member name".to_owned());
    }
    if trimmed.first() == Some(&b'/') {
        return Err(format!("member {shown:?} is an absolute path"));
    }
    if trimmed.contains(&0) {
        return Err(format!("member {shown:?} contains a NUL byte"));
    }
    for part in trimmed.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." || part == b".." {
            return Err(format!(
                "member {shown:?} has an empty, \".\" or \"..\" component"
            ));
        }
    }
    Ok(PathBuf::from(OsString::from_vec(trimmed.to_vec())))
}

/// A pax `mtime` value: seconds and nanoseconds since the epoch (`sec` may be
/// negative, `nsec` is in 0..1e9 as `stat` gives them).
fn format_mtime(sec: i64, nsec: u32) -> String {
    if sec >= 0 || nsec == 0 {
        format!("{sec}.{nsec:09}")
    } else {
        // sec + nsec/1e9 is negative: write its magnitude.
        let whole = -(sec + 1);
        let frac = 1_000_000_000 - nsec;
        format!("-{whole}.{frac:09}")
    }
}

/// Parses a pax `mtime` value (decimal seconds, optional fraction).
fn parse_mtime(text: &str) -> Option<(i64, u32)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut nsec: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    if !negative {
        Some((whole, nsec))
    } else if nsec == 0 {
        Some((-whole, 0))
    } else {
        Some((-whole - 1, 1_000_000_000 - nsec))
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes the archive of `tops` into `file`; returns its size and SHA-256.
/// Writes the archive to `file` (fsynced by the caller).
fn write_archive(file: &File, tops: &[String], skip: &[&Path]) -> anyhow::Result<(u64, String)> {
    let out = HashingWriter::new(BufWriter::new(file));
    let mut tar = Builder::new(GzEncoder::new(out, Compression::default()));
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT,
        paths: Vec::with_capacity(tops.len()),
    };
    for top in tops {
        let present = match fs::symlink_metadata(top) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => bail!("cannot archive {top}: {e}"),
        };
        manifest.paths.push(ManifestPath {
            path: top.clone(),
            present,
        });
    }
    let json = manifest.to_json();
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    tar.append_data(&mut header, MANIFEST_NAME, json.as_slice())
        .map_err(|e| anyhow!("cannot write the archive: {e}"))?;
    for top in manifest.paths.iter().filter(|p| p.present) {
        add_tree(&mut tar, Path::new(&top.path), &top.member(), skip)?;
    }
    let write_err = |e: io::Error| anyhow!("cannot write the archive: {e}");
    let gz = tar.into_inner().map_err(write_err)?;
    let out = gz.finish().map_err(write_err)?;
    let (buffered, size, sha256) = out.finish();
    buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    Ok((size, sha256))
}

/// The header fields every member carries.
fn set_common(header: &mut Header, meta: &fs::Metadata) {
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
}

/// Adds a pax `mtime` record for the next member when the header's whole
/// seconds cannot hold the mtime.
fn add_mtime<W: Write>(tar: &mut Builder<W>, meta: &fs::Metadata) -> io::Result<()> {
    let sec = meta.mtime();
    let nsec = u32::try_from(meta.mtime_nsec()).unwrap_or(0);
    if sec >= 0 && nsec == 0 {
        return Ok(());
    }
    let value = format_mtime(sec, nsec);
    tar.append_pax_extensions([("mtime", value.as_bytes())])
}

/// Adds `path` (and, for a directory, everything in it) as member `name`.
fn add_tree<W: Write>(
    tar: &mut Builder<W>,
    path: &Path,
    name: &Path,
    skip: &[&Path],
) -> anyhow::Result<()> {
    let fail = |e: io::Error| anyhow!("cannot archive {}: {e}", path.display());
    let meta = fs::symlink_metadata(path).map_err(fail)?;
    let file_type = meta.file_type();
    let mut header = Header::new_gnu();
    if file_type.is_symlink() {
        let target = fs::read_link(path).map_err(fail)?;
        set_common(&mut header, &meta);
        header.set_entry_type(EntryType::Symlink);
        header.set_size(0);
        add_mtime(tar, &meta).map_err(fail)?;
        tar.append_link(&mut header, name, &target).map_err(fail)?;
    } else if file_type.is_dir() {
        set_common(&mut header, &meta);
        header.set_entry_type(EntryType::Directory);
        header.set_size(0);
        add_mtime(tar, &meta).map_err(fail)?;
        tar.append_data(&mut header, name, io::empty())
            .map_err(fail)?;
        let mut children = fs::read_dir(path)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        children.sort();
        for child in children {
            let child_path = path.join(&child);
            if skip.contains(&child_path.as_path()) {
                continue;
            }
            add_tree(tar, &child_path, &name.join(&child), skip)?;
        }
    } else if file_type.is_file() {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NOFOLLOW.bits())
            .open(path)
            .map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if !meta.is_file() {
            bail!(
                "cannot archive {}: changed while being read",
                path.display()
            );
        }
        set_common(&mut header, &meta);
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        add_mtime(tar, &meta).map_err(fail)?;
        let reader = ExactReader {
            inner: file,
            remaining: meta.len(),
        };
        tar.append_data(&mut header, name, reader).map_err(fail)?;
    } else {
        bail!(
            "cannot archive {}: not a regular file, directory or symlink",
            path.display()
        );
    }
    Ok(())
}

/// Reads exactly `remaining` bytes: a file that shrinks while it is archived
/// is an error (tar would otherwise write a short, corrupt member); bytes
/// added after its size was taken are left out.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being archived",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

type Entries<'a> = tar::Entries<'a, GzDecoder<BufReader<File>>>;

fn open_archive(path: &Path) -> anyhow::Result<Archive<GzDecoder<BufReader<File>>>> {
    let file = File::open(path).map_err(|e| anyhow!("cannot open: {e}"))?;
    Ok(Archive::new(GzDecoder::new(BufReader::new(file))))
}

fn bad_archive(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("not a readable gzip tar archive: {e}")
}

/// Reads the first member, which must be the manifest.
fn read_manifest(entries: &mut Entries<'_>) -> anyhow::Result<Manifest> {
    let mut entry = match entries.next() {
        Some(entry) => entry.map_err(bad_archive)?,
        None => bail!("the archive is empty (no {MANIFEST_NAME})"),
    };
    if entry.path_bytes().as_ref() != MANIFEST_NAME.as_bytes()
        || entry.header().entry_type() != EntryType::Regular
    {
        bail!("the first member is not {MANIFEST_NAME}");
    }
    if entry.size() > MANIFEST_MAX {
        bail!("{MANIFEST_NAME} is too large");
    }
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(bad_archive)?;
    Manifest::parse(&bytes).map_err(|e| anyhow!(e))
}

/// Reads the whole archive through: the manifest, every member name and
/// content, and the gzip trailer. Used by [`Artifact::verify`].
pub(super) fn check_archive(path: &Path) -> anyhow::Result<()> {
    let mut archive = open_archive(path)?;
    {
        let mut entries = archive.entries().map_err(bad_archive)?;
        read_manifest(&mut entries)?;
        for entry in entries {
            let mut entry = entry.map_err(bad_archive)?;
            check_member(&entry.path_bytes()).map_err(|e| anyhow!(e))?;
            io::copy(&mut entry, &mut io::sink()).map_err(bad_archive)?;
        }
    }
    // Read to the end so that the gzip trailer (CRC, length) is checked too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(bad_archive)?;
    Ok(())
}

/// Metadata of a member, as restored.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, u32),
}

impl Meta {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> anyhow::Result<Meta> {
        let header = entry.header();
        let mode = header.mode().map_err(bad_archive)? & 0o7777;
        let uid = header.uid().map_err(bad_archive)?;
        let gid = header.gid().map_err(bad_archive)?;
        let mut mtime = (
            i64::try_from(header.mtime().map_err(bad_archive)?).unwrap_or(i64::MAX),
            0,
        );
        if let Some(pax) = entry.pax_extensions().map_err(bad_archive)? {
            for ext in pax {
                let ext = ext.map_err(bad_archive)?;
                if ext.key_bytes() == b"mtime" {
                    let value = ext.value().ok().and_then(parse_mtime);
                    mtime = value.ok_or_else(|| anyhow!("invalid pax mtime"))?;
                }
            }
        }
        let id = |v: u64| u32::try_from(v).map_err(|_| anyhow!("owner id {v} out of range"));
        Ok(Meta {
            mode,
            uid: id(uid)?,
            gid: id(gid)?,
            mtime,
        })
    }

    fn modified(&self) -> SystemTime {
        let (sec, nsec) = self.mtime;
        let nanos = Duration::from_nanos(u64::from(nsec));
        if sec >= 0 {
            UNIX_EPOCH + Duration::from_secs(sec.unsigned_abs()) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + nanos
        }
    }
}

/// Removes whatever is at `path` (a directory recursively, never following
/// a symlink); nothing there is fine.
fn remove_path(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

struct Restorer<'a> {
    root: &'a Path,
    archive_path: &'a Path,
    /// Every member name seen.
    members: HashSet<PathBuf>,
    /// Member names of the directories restored.
    dirs: HashSet<PathBuf>,
    /// Directories whose metadata is set last (children change mtimes).
    deferred: Vec<(PathBuf, Meta)>,
}

impl Restorer<'_> {
    fn run(mut self) -> anyhow::Result<Vec<PathBuf>> {
        let mut archive = open_archive(self.archive_path)?;
        let mut entries = archive.entries().map_err(bad_archive)?;
        let manifest = read_manifest(&mut entries)?;
        let present: HashSet<PathBuf> = manifest
            .paths
            .iter()
            .filter(|p| p.present)
            .map(ManifestPath::member)
            .collect();
        for entry in entries {
            let mut entry = entry.map_err(bad_archive)?;
            let name = check_member(&entry.path_bytes()).map_err(|e| anyhow!(e))?;
            self.restore_member(&mut entry, name, &present)?;
        }
        for top in &present {
            if !self.members.contains(top) {
                bail!("the archive lacks /{}", top.display());
            }
        }
        for top in manifest.paths.iter().filter(|p| p.present) {
            let member = top.member();
            if self.dirs.contains(&member) {
                self.remove_extras(&member)?;
            }
        }
        for top in manifest.paths.iter().filter(|p| !p.present) {
            let dest = self.root.join(top.member());
            remove_path(&dest).map_err(|e| anyhow!("cannot remove {}: {e}", dest.display()))?;
            if let Some(parent) = dest.parent()
                && parent.exists()
            {
                sync_parent(&dest).map_err(|e| anyhow!("cannot sync {}: {e}", parent.display()))?;
            }
        }
        for (dest, meta) in self.deferred.iter().rev() {
            set_dir_meta(dest, meta)
                .map_err(|e| anyhow!("cannot restore {}: {e}", dest.display()))?;
        }
        for top in manifest.paths.iter().filter(|p| p.present) {
            let dest = self.root.join(top.member());
            sync_parent(&dest).map_err(|e| anyhow!("cannot sync {}: {e}", dest.display()))?;
        }
        Ok(manifest
            .paths
            .iter()
            .map(|p| self.root.join(p.member()))
            .collect())
    }

    fn restore_member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: PathBuf,
        present: &HashSet<PathBuf>,
    ) -> anyhow::Result<()> {
        if !self.members.insert(name.clone()) {
            bail!("member {} appears twice", name.display());
        }
        let is_top = present.contains(&name);
        if !is_top && !name.parent().is_some_and(|p| self.dirs.contains(p)) {
            bail!(
                "member {} is not inside an archived directory",
                name.display()
            );
        }
        let meta = Meta::of(entry)?;
        let dest = self.root.join(&name);
        let fail = |e: io::Error| anyhow!("cannot restore {}: {e}", dest.display());
        if is_top && let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(fail)?;
        }
        match entry.header().entry_type() {
            EntryType::Regular => restore_file(&dest, entry, &meta).map_err(fail)?,
            EntryType::Directory => {
                restore_dir(&dest).map_err(fail)?;
                self.dirs.insert(name);
                self.deferred.push((dest, meta));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        anyhow!("member {} is a symlink without a target", name.display())
                    })?
                    .into_owned();
                restore_symlink(&dest, &target, &meta).map_err(fail)?;
            }
            other => bail!(
                "member {} has an unsupported type ({other:?})",
                name.display()
            ),
        }
        Ok(())
    }

    /// Removes what lives inside the restored directory `member` but is not
    /// in the archive, recursively through restored subdirectories.
    fn remove_extras(&self, member: &Path) -> anyhow::Result<()> {
        let dir = self.root.join(member);
        let fail = |e: io::Error| anyhow!("cannot clean {}: {e}", dir.display());
        for entry in fs::read_dir(&dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let child = member.join(entry.file_name());
            let path = entry.path();
            if path == self.archive_path {
                // Never delete the backup being restored.
                continue;
            }
            if !self.members.contains(&child) {
                remove_path(&path).map_err(|e| anyhow!("cannot remove {}: {e}", path.display()))?;
            } else if self.dirs.contains(&child) && entry.file_type().map_err(fail)?.is_dir() {
                self.remove_extras(&child)?;
            }
        }
        Ok(())
    }
}

/// Puts a file back: the one durable write with the archived mode, owner
/// and mtime, replacing a directory the new version made there. Its
/// directory is fsynced once, at the end of the restore ([`Restorer::run`]),
/// not after each file; the temporary name is unique, since the archived
/// directory may hold a `NAME.partial` of its own.
fn restore_file(dest: &Path, content: &mut impl Read, meta: &Meta) -> io::Result<()> {
    let options = Options::unique()
        .mode(meta.mode)
        .owner(meta.uid, meta.gid)
        .mtime(meta.modified())
        .durability(Durability::DeferDir)
        .over_directory();
    let pending = Pending::create(dest, options)?;
    io::copy(content, &mut pending.file())?;
    pending.commit()
}

/// Puts a symlink back: made under a temporary name and renamed into place
/// as [`restore_file`] does (a symlink has no content to fsync; its
/// directory is fsynced at the end of the restore).
fn restore_symlink(dest: &Path, target: &[u8], meta: &Meta) -> io::Result<()> {
    let tmp = durable::unique_temp_path(dest)?;
    let result = (|| {
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &tmp)?;
        std::os::unix::fs::lchown(&tmp, Some(meta.uid), Some(meta.gid))?;
        let (sec, nsec) = meta.mtime;
        let mtime = nix::sys::time::TimeSpec::new(sec, i64::from(nsec));
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &tmp,
            &nix::sys::time::TimeSpec::UTIME_OMIT,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io::Error::from)?;
        durable::clear_directory(dest)?;
        durable::rename_into_place(&tmp, dest, Durability::DeferDir)
    })();
    if result.is_err() {
        remove_quietly(&tmp);
    }
    result
}

/// Makes `dest` a directory (its metadata is set later, by [`set_dir_meta`]).
fn restore_dir(dest: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(dest)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    DirBuilder::new().mode(0o700).create(dest)
}

/// Sets a restored directory's owner, mode and mtime, then fsyncs it: the
/// directory fsync the files restored into it deferred
/// ([`Durability::DeferDir`]), through the no-follow handle that set its
/// metadata rather than [`durable::sync_dir`], which opens by name.
fn set_dir_meta(dest: &Path, meta: &Meta) -> io::Result<()> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(dest)?;
    std::os::unix::fs::fchown(&dir, Some(meta.uid), Some(meta.gid))?;
    dir.set_permissions(Permissions::from_mode(meta.mode))?;
    dir.set_times(FileTimes::new().set_modified(meta.modified()))?;
    dir.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write_mode(path: &Path, content: &str, mode: u32) {
        fs::write(path, content).unwrap();
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn mtime_of(path: &Path) -> (i64, i64) {
        let m = fs::symlink_metadata(path).unwrap();
        (m.mtime(), m.mtime_nsec())
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn abs_path_rules() {
        assert!(check_abs_path("/opt/portal/themes").is_ok());
        for bad in [
            "opt/x",
            "/",
            "/opt//x",
            "/opt/./x",
            "/opt/../x",
            "/opt/x/",
            "",
        ] {
            assert!(check_abs_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalize_drops_duplicates_and_nested() {
        let paths: Vec<PathBuf> = [
            "/opt/portal",
            "/etc/a.conf",
            "/opt/portal/portal.conf",
            "/etc/a.conf",
            "/opt/portalx",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            normalize_paths(&paths).unwrap(),
            vec!["/opt/portal", "/etc/a.conf", "/opt/portalx"]
        );
        assert!(normalize_paths(&[PathBuf::from("relative")]).is_err());
        assert!(normalize_paths(&[]).is_err());
    }

    #[test]
    fn member_name_rules() {
        assert_eq!(
            check_member(b"opt/portal/x").unwrap(),
            PathBuf::from("opt/portal/x")
        );
        assert_eq!(
            check_member(b"opt/portal/").unwrap(),
            PathBuf::from("opt/portal")
        );
        for bad in [
            &b"../etc/passwd"[..],
            b"opt/../../etc",
            b"/etc/passwd",
            b"opt/./x",
            b"opt//x",
            b"",
            b"/",
            b"..",
        ] {
            assert!(
                check_member(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn manifest_round_trip_and_validation() {
        let m = Manifest {
            format: MANIFEST_FORMAT,
            paths: vec![
                ManifestPath {
                    path: "/opt/portal/themes".into(),
                    present: true,
                },
                ManifestPath {
                    path: "/opt/portal/portal.conf".into(),
                    present: false,
                },
            ],
        };
        assert_eq!(Manifest::parse(&m.to_json()).unwrap(), m);
        assert!(Manifest::parse(br#"{"format":2,"paths":[]}"#).is_err());
        assert!(
            Manifest::parse(br#"{"format":1,"paths":[{"path":"rel","present":true}]}"#).is_err()
        );
        assert!(
            Manifest::parse(br#"{"format":1,"paths":[{"path":"/a/../b","present":true}]}"#)
                .is_err()
        );
        assert!(
            Manifest::parse(
                br#"{"format":1,"paths":[{"path":"/a","present":true},{"path":"/a/b","present":true}]}"#
            )
            .is_err()
        );
        assert!(Manifest::parse(br#"{"format":1,"paths":[],"x":1}"#).is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }

    #[test]
    fn mtime_format_round_trip() {
        for (s, n) in [
            (0, 0),
            (1_700_000_000, 123_456_789),
            (5, 1),
            (-1, 500_000_000),
            (-10, 0),
            (-3, 999_999_999),
        ] {
            let text = format_mtime(s, n);
            assert_eq!(parse_mtime(&text), Some((s, n)), "{text}");
        }
        assert_eq!(format_mtime(-1, 500_000_000), "-0.500000000");
        assert_eq!(parse_mtime("12"), Some((12, 0)));
        assert_eq!(parse_mtime("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_mtime("12.1234567891"), Some((12, 123_456_789)));
        assert_eq!(parse_mtime("x"), None);
        assert_eq!(parse_mtime(".5"), None);
        assert_eq!(parse_mtime("1.x"), None);
    }

    /// Builds the tree used by the round-trip test under `base`.
    fn build_tree(base: &Path) {
        let themes = base.join("opt/portal/themes");
        fs::create_dir_all(themes.join("default/css")).unwrap();
        write_mode(
            &themes.join("default/index.html"),
            "<html>index</html>",
            0o640,
        );
        write_mode(&themes.join("default/css/site.css"), "body{}", 0o644);
        write_mode(&themes.join("run.sh"), "#!/bin/sh\n", 0o750);
        fs::write(themes.join("empty"), "").unwrap();
        symlink("default/index.html", themes.join("link")).unwrap();
        symlink("/nonexistent/target", themes.join("dangling")).unwrap();
        fs::set_permissions(themes.join("default"), Permissions::from_mode(0o750)).unwrap();
        write_mode(
            &base.join("opt/portal/portal.conf"),
            "{\"HostPort\":3001}",
            0o600,
        );
        // Sub-second mtimes must come back exactly.
        let t = UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
        File::options()
            .write(true)
            .open(themes.join("default/index.html"))
            .unwrap()
            .set_times(FileTimes::new().set_modified(t))
            .unwrap();
    }

    #[test]
    fn archive_and_restore_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("live");
        build_tree(&base);
        let themes = base.join("opt/portal/themes");
        let conf = base.join("opt/portal/portal.conf");
        let absent = base.join("opt/portal/later.conf");
        if is_root() {
            std::os::unix::fs::chown(themes.join("run.sh"), Some(12345), Some(54321)).unwrap();
            std::os::unix::fs::lchown(themes.join("link"), Some(4242), Some(4343)).unwrap();
        }
        let before: Vec<(PathBuf, u32, (i64, i64))> = [
            themes.join("default/index.html"),
            themes.join("default/css/site.css"),
            themes.join("run.sh"),
            themes.join("link"),
            themes.join("default"),
            themes.clone(),
            conf.clone(),
        ]
        .into_iter()
        .map(|p| {
            let (m, t) = (mode_of(&p), mtime_of(&p));
            (p, m, t)
        })
        .collect();
        let run_owner = fs::symlink_metadata(themes.join("run.sh")).unwrap();

        let dest = tmp.path().join("backups/files.tar.gz");
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let artifact = archive(&[themes.clone(), conf.clone(), absent.clone()], &dest).unwrap();
        assert_eq!(artifact.kind, Kind::Files);
        assert_eq!(artifact.path, dest);
        assert_eq!(mode_of(&dest), 0o600);
        assert!(!partial_path(&dest).exists());
        assert_eq!(artifact.size, fs::metadata(&dest).unwrap().len());

        // The "failed upgrade": change, add, remove, replace things.
        fs::write(themes.join("default/index.html"), "<html>NEW</html>").unwrap();
        fs::set_permissions(
            themes.join("default/index.html"),
            Permissions::from_mode(0o666),
        )
        .unwrap();
        fs::write(themes.join("default/added.html"), "added later").unwrap();
        fs::create_dir_all(themes.join("newdir/sub")).unwrap();
        fs::write(themes.join("newdir/sub/f"), "x").unwrap();
        fs::remove_file(themes.join("run.sh")).unwrap();
        fs::remove_dir_all(themes.join("default/css")).unwrap();
        fs::write(themes.join("default/css"), "now a file").unwrap();
        fs::remove_file(themes.join("link")).unwrap();
        fs::create_dir(themes.join("link")).unwrap();
        fs::write(&conf, "{\"HostPort\":9}").unwrap();
        fs::write(&absent, "created by the new version").unwrap();

        // Restoring into the live tree puts it back exactly.
        let restored = restore_into(&artifact, Path::new("/")).unwrap();
        assert_eq!(restored, vec![themes.clone(), conf.clone(), absent.clone()]);
        assert_eq!(
            fs::read_to_string(themes.join("default/index.html")).unwrap(),
            "<html>index</html>"
        );
        assert_eq!(
            fs::read_to_string(themes.join("default/css/site.css")).unwrap(),
            "body{}"
        );
        assert_eq!(
            fs::read_to_string(themes.join("run.sh")).unwrap(),
            "#!/bin/sh\n"
        );
        assert_eq!(fs::read(themes.join("empty")).unwrap(), b"");
        assert_eq!(
            fs::read_link(themes.join("link")).unwrap(),
            PathBuf::from("default/index.html")
        );
        assert_eq!(
            fs::read_link(themes.join("dangling")).unwrap(),
            PathBuf::from("/nonexistent/target")
        );
        assert_eq!(fs::read_to_string(&conf).unwrap(), "{\"HostPort\":3001}");
        assert!(!themes.join("default/added.html").exists());
        assert!(!themes.join("newdir").exists());
        assert!(fs::symlink_metadata(&absent).is_err());
        for (p, mode, mtime) in &before {
            assert_eq!(mode_of(p), *mode, "mode of {}", p.display());
            assert_eq!(mtime_of(p), *mtime, "mtime of {}", p.display());
        }
        assert_eq!(mode_of(&themes.join("default/index.html")), 0o640);
        let owner = fs::symlink_metadata(themes.join("run.sh")).unwrap();
        assert_eq!(
            (owner.uid(), owner.gid()),
            (run_owner.uid(), run_owner.gid())
        );
        if is_root() {
            assert_eq!((owner.uid(), owner.gid()), (12345, 54321));
            let link = fs::symlink_metadata(themes.join("link")).unwrap();
            assert_eq!((link.uid(), link.gid()), (4242, 4343));
        }
        // No temporary files left behind.
        for dir in [
            themes.clone(),
            themes.join("default"),
            base.join("opt/portal"),
        ] {
            for e in fs::read_dir(dir).unwrap() {
                let name = e.unwrap().file_name();
                let name = name.to_string_lossy();
                assert!(
                    !(name.contains(".upkeep-") && name.ends_with(".tmp")),
                    "{name:?}"
                );
            }
        }

        // Into another root: the same tree appears under it.
        let other = tmp.path().join("other");
        let restored = restore_into(&artifact, &other).unwrap();
        let moved = other.join(themes.strip_prefix("/").unwrap());
        assert_eq!(restored[0], moved);
        assert_eq!(
            fs::read_to_string(moved.join("default/index.html")).unwrap(),
            "<html>index</html>"
        );
        assert_eq!(mode_of(&moved.join("default/index.html")), 0o640);
        assert_eq!(mode_of(&moved.join("default")), 0o750);
    }

    #[test]
    fn missing_top_path_is_recorded_absent_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let dest = tmp.path().join("b.tar.gz");
        let artifact = archive(std::slice::from_ref(&dir), &dest).unwrap();
        fs::create_dir_all(dir.join("x/y")).unwrap();
        fs::write(dir.join("x/y/z"), "new").unwrap();
        restore_into(&artifact, Path::new("/")).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn a_restored_file_beside_its_own_partial_namesake_leaves_both() {
        // Why a restore writes under a unique temporary name, not the
        // backups' `NAME.partial`: the directory may hold that name itself.
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("a"), "a").unwrap();
        fs::write(src.join("a.partial"), "the operator's own").unwrap();
        let dest = tmp.path().join("b.tar.gz");
        let artifact = archive(std::slice::from_ref(&src), &dest).unwrap();
        fs::write(src.join("a"), "changed").unwrap();
        fs::write(src.join("a.partial"), "changed too").unwrap();
        let root = tmp.path().join("root");
        for root in [Path::new("/"), root.as_path()] {
            restore_into(&artifact, root).unwrap();
            let at = root.join(src.strip_prefix("/").unwrap());
            assert_eq!(fs::read(at.join("a")).unwrap(), b"a");
            assert_eq!(
                fs::read(at.join("a.partial")).unwrap(),
                b"the operator's own"
            );
        }
    }

    #[test]
    fn corrupted_or_truncated_archive_fails_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        // Incompressible content so that a truncation cuts into the data.
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(src.join("noise"), &noise).unwrap();
        let dest = tmp.path().join("b.tar.gz");
        let artifact = archive(std::slice::from_ref(&src), &dest).unwrap();

        // Truncated: the recorded size no longer matches.
        let bytes = fs::read(&dest).unwrap();
        fs::write(&dest, &bytes[..bytes.len() / 2]).unwrap();
        let err = artifact.verify().unwrap_err().to_string();
        assert!(err.contains("b.tar.gz") && err.contains("bytes"), "{err}");
        assert!(!err.contains('\n'));
        let err = restore_into(&artifact, tmp.path()).unwrap_err().to_string();
        assert!(err.contains("b.tar.gz"), "{err}");

        // Truncated and re-hashed (as if the history were wrong too): the
        // tar/gzip reading itself fails.
        let rehashed = Artifact::of_file(Kind::Files, &dest).unwrap();
        let err = rehashed.verify().unwrap_err().to_string();
        assert!(
            err.contains("b.tar.gz") && err.contains("not a readable gzip tar"),
            "{err}"
        );
        assert!(!err.contains('\n'));

        // A flipped byte in the middle.
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        fs::write(&dest, &flipped).unwrap();
        let err = artifact.verify().unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
        let rehashed = Artifact::of_file(Kind::Files, &dest).unwrap();
        let err = rehashed.verify().unwrap_err().to_string();
        assert!(err.contains("b.tar.gz"), "{err}");
        assert!(!err.contains('\n'));

        // Not an archive at all.
        fs::write(&dest, "hello").unwrap();
        let err = Artifact::of_file(Kind::Files, &dest)
            .unwrap()
            .verify()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a readable gzip tar"), "{err}");
    }

    /// A raw tar header for `name` (bypassing the tar crate's own checks on
    /// names, as a hostile archive would).
    fn raw_member(out: &mut Vec<u8>, name: &[u8], content: &[u8]) {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(content);
        out.resize(out.len().next_multiple_of(512), 0);
    }

    fn hostile_archive(dest: &Path, manifest_path: &str, member: &[u8]) -> Artifact {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            paths: vec![ManifestPath {
                path: manifest_path.into(),
                present: true,
            }],
        };
        let mut tar_bytes = Vec::new();
        raw_member(
            &mut tar_bytes,
            MANIFEST_NAME.as_bytes(),
            &manifest.to_json(),
        );
        raw_member(&mut tar_bytes, member, b"pwned\n");
        tar_bytes.extend_from_slice(&[0u8; 1024]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&tar_bytes).unwrap();
        fs::write(dest, gz.finish().unwrap()).unwrap();
        Artifact::of_file(Kind::Files, dest).unwrap()
    }

    #[test]
    fn member_with_dotdot_or_absolute_name_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        for member in [&b"opt/../../escape"[..], b"../escape", b"/escape"] {
            let dest = tmp.path().join("evil.tar.gz");
            let artifact = hostile_archive(&dest, "/opt", member);
            let err = restore_into(&artifact, &root).unwrap_err().to_string();
            assert!(err.contains("evil.tar.gz"), "{err}");
            assert!(!err.contains('\n'));
            assert!(!tmp.path().join("escape").exists());
            assert!(!Path::new("/escape").exists());
        }
        // A member outside every archived path is refused as well.
        let dest = tmp.path().join("evil2.tar.gz");
        let artifact = hostile_archive(&dest, "/opt/portal", b"etc/cron.d/evil");
        let err = restore_into(&artifact, &root).unwrap_err().to_string();
        assert!(err.contains("not inside an archived directory"), "{err}");
        assert!(!root.join("etc").exists());
    }

    #[test]
    fn long_names_and_link_targets_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let deep = dir.join("a".repeat(80)).join("b".repeat(80));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("c".repeat(90)), "deep").unwrap();
        symlink("t".repeat(150), dir.join("longlink")).unwrap();
        let dest = tmp.path().join("b.tar.gz");
        let artifact = archive(std::slice::from_ref(&dir), &dest).unwrap();
        let root = tmp.path().join("r");
        restore_into(&artifact, &root).unwrap();
        let moved = root.join(dir.strip_prefix("/").unwrap());
        let deep_moved = moved.join("a".repeat(80)).join("b".repeat(80));
        assert_eq!(
            fs::read_to_string(deep_moved.join("c".repeat(90))).unwrap(),
            "deep"
        );
        assert_eq!(
            fs::read_link(moved.join("longlink")).unwrap(),
            PathBuf::from("t".repeat(150))
        );
    }

    #[test]
    fn special_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        nix::unistd::mkfifo(
            &dir.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let dest = tmp.path().join("b.tar.gz");
        let err = archive(std::slice::from_ref(&dir), &dest)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fifo") && err.contains("not a regular file"),
            "{err}"
        );
        assert!(!dest.exists());
        assert!(!partial_path(&dest).exists());
    }

    #[test]
    fn wrong_kind_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x");
        fs::write(&path, "PGDMP").unwrap();
        let artifact = Artifact::of_file(Kind::Postgres, &path).unwrap();
        assert!(
            restore_into(&artifact, tmp.path())
                .unwrap_err()
                .to_string()
                .contains("not a files backup")
        );
    }
}
