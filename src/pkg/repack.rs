//! A verified copy of an installed Debian package, rebuilt from the host, so
//! that a rollback never depends on a repository still serving the installed
//! version. This is what `dpkg-repack` does, except that every file is
//! checked against what dpkg recorded when it unpacked the package: a copy
//! that is not that version is refused, never written.
//!
//! # Sources
//! Everything is read from dpkg's database (`ADMIN`, normally
//! `/var/lib/dpkg`) and from the files under `ROOT` (normally `/`):
//! - `ADMIN/status`: the package's paragraph. It must say `ok installed`
//!   (any selection: `install`, `hold`...) at the version asked for. The
//!   rebuilt `control` is that paragraph verbatim, minus the fields dpkg adds
//!   at install (`Status`, `Conffiles`, `Config-Version`, `Triggers-Pending`,
//!   `Triggers-Awaited`). dpkg has already normalised it (field order,
//!   relation fields), so the fields are the original's in meaning, not
//!   always byte for byte.
//! - `ADMIN/info/PKG.{list,md5sums,conffiles}` and the control members dpkg
//!   keeps (`preinst`, `postinst`, `prerm`, `postrm`, `config` with mode
//!   0755; `templates`, `triggers`, `shlibs`, `symbols` with 0644). A
//!   `Multi-Arch: same` package's files are named `PKG:ARCH.*`.
//! - `ADMIN/diversions`, see below.
//!
//! An unmerged dpkg journal (`ADMIN/updates/`) makes `status` stale: the
//! rebuild is refused. The caller holds the dpkg lock
//! ([`PkgLock`](super::PkgLock)) while it rebuilds, so that nothing changes
//! underneath; a file that changes while it is read is caught all the same
//! (its size or digest no longer matches) and fails the rebuild.
//!
//! # Verification
//! Every path of the `.list` goes into the data archive, in the `.list`'s
//! order (the original archive's). A regular file must have an MD5 sum in
//! `md5sums` and match it; it is hashed while it is written into the archive,
//! so what is shipped is exactly what was verified. A file that is missing,
//! differs, has no sum, or is no longer a regular file fails the rebuild in
//! one line naming it. Directories and symlinks carry no digest: they are
//! shipped as they are. A directory that is now a symlink to a directory
//! (merged `/usr`: `/bin -> usr/bin`) is shipped as a directory, with the
//! mode and owner of what it points to, as dpkg would leave it. Modes
//! (setuid bits included), numeric owners and mtimes are the files' own,
//! which is also where a `dpkg-statoverride` put them.
//!
//! # Conffiles
//! The original content of an edited conffile is gone; only its MD5 sum is
//! left (the status file's `Conffiles:`). Each conffile is therefore one of
//! [`Conffile`]:
//! - unchanged: shipped as is, which is the package's own file;
//! - edited, with a copy of the original beside it (`NAME.dpkg-dist`, or
//!   `NAME.dpkg-old`, whose MD5 sum is the original's, as dpkg leaves one
//!   when an upgrade kept the operator's file): the original is shipped,
//!   with the live file's mode and owner. The copy is then exactly the
//!   version, and after reinstalling it dpkg still sees the operator's file
//!   as modified;
//! - edited, with no such copy: the live content is shipped, listed in
//!   `conffiles` (and in `md5sums` with its own digest when the original
//!   `md5sums` listed it). Reinstalling with `--force-confdef
//!   --force-confold` keeps the operator's file in every case: it is either
//!   identical to the shipped one or a modified conffile that confold keeps.
//!   What is lost: dpkg records the shipped digest, so it no longer knows the
//!   file as modified, and a later upgrade whose conffile changed would
//!   replace it without a prompt. The caller learns which conffiles are in
//!   this state ([`Rebuilt::conffiles`]) and keeps their content itself (the
//!   config backup);
//! - deleted by the operator: left out of the data and of `conffiles`.
//!   dpkg then keeps the old package's entry as obsolete, and the file stays
//!   deleted (as dpkg keeps a deleted conffile).
//!
//! A conffile that is not a regular file fails the rebuild. Lines of
//! `conffiles` flagged `remove-on-upgrade` are kept verbatim.
//!
//! # Diversions
//! A path of the package diverted by another package (or locally,
//! `dpkg-divert --local`) is listed by dpkg under its own name, while its
//! content lives at the diversion's target. The rebuild reads it from there
//! and ships it under the package's own name, as the original did: dpkg
//! diverts it again when it reinstalls the copy. A diversion made by the
//! package itself does not apply to its own files (dpkg's rule), so those are
//! read in place.
//!
//! # Replaced files
//! When another package took a file over (`Replaces:`), dpkg removed it from
//! this package's `.list`, but not from `md5sums`: such a sum is ignored,
//! and the file is neither verified nor shipped. A conffile taken over the
//! same way (in `conffiles` but not in the `.list`) is left out likewise.
//!
//! # Format
//! An `ar` archive of `debian-binary` (`2.0\n`), `control.tar.gz` and
//! `data.tar.gz`, as `dpkg-deb --build` writes it: GNU tar, member names
//! `./path` (`./path/` for directories), long names as GNU long-name
//! entries, owners numeric only (no user or group names, so dpkg keeps the
//! ids of this host), hard links as tar hard links. It is written to
//! `OUT/PKG_VERSION_ARCH.deb.partial` with mode 0600, fsynced, renamed to
//! `OUT/PKG_VERSION_ARCH.deb` (the epoch's colon written `%3a`, as in apt's
//! cache), and the directory fsynced.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use flate2::{Compression, write::GzEncoder};
use md5::{Digest as _, Md5};
use tar::EntryType;

use crate::fsutil::durable::{Options, Pending};
use crate::fsutil::hash::hash_file;
use crate::version::PkgVersion;

/// A package file written by [`rebuild`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// Where it is: `OUT/PKG_VERSION_ARCH.deb`.
    pub path: PathBuf,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Every conffile of the package (its absolute path) and what the copy
    /// holds for it, in the `.list`'s order.
    pub conffiles: Vec<(PathBuf, Conffile)>,
}

/// What a rebuilt package holds for one conffile (see the module's
/// "Conffiles" section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conffile {
    /// Unchanged since the install: shipped as the package shipped it.
    Pristine,
    /// Edited; the package's original was found in `from` (its MD5 sum is
    /// the original's) and is what the copy ships.
    Recovered {
        /// The file the original was read from (`NAME.dpkg-dist`...).
        from: PathBuf,
    },
    /// Edited, and no copy of the original left: the copy ships the live
    /// content, which dpkg will take for the package's own from then on.
    Edited,
    /// Deleted on the host: left out of the copy.
    Deleted,
}

/// Rebuilds the installed `package` at `version` from the files under `root`
/// and dpkg's database in `admin_dir`, verified against dpkg's records,
/// into a `.deb` in `out_dir` (see the module documentation). `arch` picks
/// the instance of a `Multi-Arch: same` package installed for several
/// architectures (an `Architecture: all` package matches any); `None` takes
/// the only one installed.
///
/// Fails in one line when the package is not installed at that version
/// (naming its state or version), or when the copy would not be that
/// version (naming the file).
pub fn rebuild(
    admin_dir: &Path,
    root: &Path,
    package: &str,
    version: &str,
    arch: Option<&str>,
    out_dir: &Path,
) -> anyhow::Result<Rebuilt> {
    rebuild_checked(admin_dir, root, package, version, arch, out_dir).map_err(|e| {
        anyhow!(
            "cannot rebuild {package} {version} from the host: {}",
            crate::error::one_line(&e)
        )
    })
}

/// [`rebuild`] with errors as they come.
fn rebuild_checked(
    admin_dir: &Path,
    root: &Path,
    package: &str,
    version: &str,
    arch: Option<&str>,
    out_dir: &Path,
) -> anyhow::Result<Rebuilt> {
    check_token("package name", package, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b)
    })?;
    check_token("version", version, |b| {
        b.is_ascii_alphanumeric() || b"+-.~:".contains(&b)
    })?;
    let wanted = PkgVersion::deb(version).map_err(|e| anyhow!("version {version:?}: {e}"))?;
    if let Some(a) = arch {
        check_token("architecture", a, is_arch_byte)?;
    }
    if super::dpkg::pending_updates(&admin_dir.join("updates")) {
        bail!(
            "dpkg's journal ({}) holds updates not merged into its status file: run `dpkg --configure -a` first",
            admin_dir.join("updates").display()
        );
    }

    let status_path = admin_dir.join("status");
    let status = fs::read(&status_path).with_context(|| format!("{}", status_path.display()))?;
    let paragraphs = paragraphs(&status).with_context(|| format!("{}", status_path.display()))?;
    let paragraph = select(&paragraphs, package, arch)?;
    let state = text(paragraph.value("Status").unwrap_or(b""));
    let words: Vec<&str> = state.split_whitespace().collect();
    if !matches!(words.as_slice(), [_, "ok", "installed"]) {
        bail!("{package} is not installed (dpkg status: {state:?})");
    }
    let installed = text(paragraph.value("Version").unwrap_or(b""));
    let same = PkgVersion::deb(&installed).is_ok_and(|v| v == wanted);
    if !same {
        bail!("{package} is installed at version {installed}, not {version}");
    }
    let arch = text(
        paragraph
            .value("Architecture")
            .ok_or_else(|| anyhow!("{package}: no Architecture in the status file"))?,
    );
    check_token("architecture", &arch, is_arch_byte)?;
    let multi_arch_same = paragraph.value("Multi-Arch") == Some(b"same".as_slice());
    let base = if multi_arch_same {
        format!("{package}:{arch}")
    } else {
        package.to_string()
    };

    let info = admin_dir.join("info");
    let list_path = info.join(format!("{base}.list"));
    let list =
        parse_list(&fs::read(&list_path).with_context(|| format!("{}", list_path.display()))?)
            .with_context(|| format!("{}", list_path.display()))?;
    let md5sums_path = info.join(format!("{base}.md5sums"));
    let md5sums = match read_optional(&md5sums_path)? {
        Some(t) => parse_md5sums(&t).with_context(|| format!("{}", md5sums_path.display()))?,
        None => HashMap::new(),
    };
    let conffiles_path = info.join(format!("{base}.conffiles"));
    let conffiles_text = match read_optional(&conffiles_path)? {
        Some(t) => {
            String::from_utf8(t).map_err(|_| anyhow!("{}: not UTF-8", conffiles_path.display()))?
        }
        None => String::new(),
    };
    let conffile_list = crate::package::deb::parse_conffiles(&conffiles_text)
        .with_context(|| format!("{}", conffiles_path.display()))?;
    let recorded = parse_status_conffiles(paragraph);
    let diversions_path = admin_dir.join("diversions");
    let diversions = match read_optional(&diversions_path)? {
        Some(t) => {
            parse_diversions(&t).with_context(|| format!("{}", diversions_path.display()))?
        }
        None => HashMap::new(),
    };

    let host = Host {
        root,
        package,
        diversions: &diversions,
    };
    let plan = plan(&host, &list, &md5sums, &conffile_list, &recorded)?;

    // The control archive's members.
    let mut control: Vec<(&str, Vec<u8>, u32)> = vec![("control", control_text(paragraph), 0o644)];
    let md5_lines = plan.md5sums();
    if !md5_lines.is_empty() {
        control.push(("md5sums", md5_lines, 0o644));
    }
    let conffiles_out = conffiles_text_out(&conffiles_text, &plan);
    if !conffiles_out.is_empty() {
        control.push(("conffiles", conffiles_out.into_bytes(), 0o644));
    }
    for (member, mode) in CONTROL_MEMBERS {
        let path = info.join(format!("{base}.{member}"));
        if let Some(content) = read_optional(&path)? {
            control.push((member, content, *mode));
        }
    }
    // Generated members take the time of the install (the .list's mtime),
    // so that the same host state always gives the same bytes.
    let mtime = fs::metadata(&list_path)
        .map(|m| clamp_time(m.mtime()))
        .with_context(|| format!("{}", list_path.display()))?;

    let name = format!("{package}_{}_{arch}.deb", version.replace(':', "%3a"));
    let dest = out_dir.join(name);
    let (size, sha256) = write_atomically(&dest, &control, &plan, mtime)?;
    Ok(Rebuilt {
        path: dest,
        sha256,
        size,
        conffiles: plan.conffiles,
    })
}

/// The control members dpkg keeps in `info/` besides the file list, the
/// sums and the conffiles, with their modes in the rebuilt package.
const CONTROL_MEMBERS: &[(&str, u32)] = &[
    ("preinst", 0o755),
    ("postinst", 0o755),
    ("prerm", 0o755),
    ("postrm", 0o755),
    ("config", 0o755),
    ("templates", 0o644),
    ("triggers", 0o644),
    ("shlibs", 0o644),
    ("symbols", 0o644),
];

/// Status fields that dpkg adds at install; everything else is the
/// package's control file.
const INSTALL_FIELDS: &[&str] = &[
    "Status",
    "Conffiles",
    "Config-Version",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Where the package's original of an edited conffile may still be: what
/// dpkg leaves beside a conffile when the operator's version was kept
/// (`.dpkg-dist`) or replaced (`.dpkg-old`).
const ORIGINAL_COPIES: &[&str] = &[".dpkg-dist", ".dpkg-old"];

fn is_arch_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// Refuses an empty `value` or one with a byte `ok` rejects (these go into
/// a file name).
fn check_token(what: &str, value: &str, ok: impl Fn(u8) -> bool) -> anyhow::Result<()> {
    if value.is_empty() || !value.bytes().all(ok) {
        bail!("{what} {value:?} is not valid");
    }
    Ok(())
}

/// The content of `path`, or `None` when there is no such file.
fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}", path.display())),
    }
}

/// Bytes as text, for messages and plain fields.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

fn clamp_time(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// dpkg's database
// ---------------------------------------------------------------------------

/// One field of a deb822 paragraph, as raw bytes.
#[derive(Debug)]
struct Field<'a> {
    /// Its name.
    name: &'a [u8],
    /// The whole field: the first line and its continuation lines, each
    /// with its newline (the file's last may lack it).
    raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The value on the field's first line, trimmed.
    fn value(&self) -> &'a [u8] {
        let first = self.raw.split(|&b| b == b'\n').next().unwrap_or(b"");
        first.get(self.name.len() + 1..).unwrap_or(b"").trim_ascii()
    }

    /// The continuation lines, trimmed.
    fn continuation(&self) -> impl Iterator<Item = &'a [u8]> {
        self.raw
            .split(|&b| b == b'\n')
            .skip(1)
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
    }
}

/// A paragraph of the status file.
#[derive(Debug)]
struct Paragraph<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    fn value(&self, name: &str) -> Option<&'a [u8]> {
        self.field(name).map(Field::value)
    }
}

/// The paragraphs of a deb822 file such as dpkg's status file, fields kept
/// as raw bytes. A line that is neither a field, a continuation nor blank is
/// an error (dpkg never writes one).
fn paragraphs(text: &[u8]) -> anyhow::Result<Vec<Paragraph<'_>>> {
    let mut out = Vec::new();
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut start_of_field = 0;
    let mut pos = 0;
    let mut line_no = 0usize;
    while pos < text.len() {
        let end = text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        line_no += 1;
        if line.trim_ascii().is_empty() {
            if !fields.is_empty() {
                out.push(Paragraph {
                    fields: std::mem::take(&mut fields),
                });
            }
        } else if line[0] == b' ' || line[0] == b'\t' {
            let Some(last) = fields.last_mut() else {
                bail!("line {line_no}: a continuation line outside a field");
            };
            last.raw = &text[start_of_field..end];
        } else {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| anyhow!("line {line_no}: not a field"))?;
            start_of_field = pos;
            fields.push(Field {
                name: &line[..colon],
                raw: line,
            });
        }
        pos = end;
    }
    if !fields.is_empty() {
        out.push(Paragraph { fields });
    }
    Ok(out)
}

/// The paragraph of `package` (for `arch` when given), refusing a choice
/// between architectures.
fn select<'p, 'a>(
    paragraphs: &'p [Paragraph<'a>],
    package: &str,
    arch: Option<&str>,
) -> anyhow::Result<&'p Paragraph<'a>> {
    let instances: Vec<&Paragraph<'a>> = paragraphs
        .iter()
        .filter(|p| p.value("Package") == Some(package.as_bytes()))
        .collect();
    let archs = || {
        instances
            .iter()
            .map(|p| text(p.value("Architecture").unwrap_or(b"?")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match arch {
        Some(a) => match instances
            .iter()
            .find(|p| p.value("Architecture") == Some(a.as_bytes()))
        {
            Some(p) => Ok(p),
            // An `Architecture: all` package serves every architecture.
            None if instances.len() == 1
                && instances[0].value("Architecture") == Some(b"all".as_slice()) =>
            {
                Ok(instances[0])
            }
            None if instances.is_empty() => {
                bail!("{package} is not installed (dpkg knows no such package)")
            }
            None => bail!("{package} is not installed for {a} (only for {})", archs()),
        },
        None => match instances.as_slice() {
            [] => bail!("{package} is not installed (dpkg knows no such package)"),
            [one] => Ok(one),
            _ => bail!(
                "{package} is known for several architectures ({}): name one",
                archs()
            ),
        },
    }
}

/// The control file: the status paragraph without the install's fields.
fn control_text(paragraph: &Paragraph<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &paragraph.fields {
        if INSTALL_FIELDS
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()))
        {
            continue;
        }
        out.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// The MD5 sums the status file's `Conffiles:` records for the package's
/// current conffiles (entries flagged `obsolete` belong to older versions
/// and are left out): ` /etc/x 0123... [obsolete] [remove-on-upgrade]`.
fn parse_status_conffiles(paragraph: &Paragraph<'_>) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    let Some(field) = paragraph.field("Conffiles") else {
        return out;
    };
    for line in field.continuation() {
        let mut rest = line;
        let mut obsolete = false;
        while let Some(at) = rest.iter().rposition(|&b| b == b' ' || b == b'\t') {
            match &rest[at + 1..] {
                b"obsolete" => obsolete = true,
                b"remove-on-upgrade" => {}
                _ => break,
            }
            rest = rest[..at].trim_ascii_end();
        }
        let Some(at) = rest.iter().rposition(|&b| b == b' ' || b == b'\t') else {
            continue;
        };
        if !obsolete {
            out.insert(
                path_of(rest[..at].trim_ascii_end()),
                text(&rest[at + 1..]).to_ascii_lowercase(),
            );
        }
    }
    out
}

/// The paths of a `.list` file, absolute, in order (`/.` is the root).
fn parse_list(bytes: &[u8]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let path = if line == b"/." {
            PathBuf::from("/")
        } else {
            path_of(line)
        };
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            bail!("{:?} is not an absolute path", path.display());
        }
        out.push(path);
    }
    Ok(out)
}

/// An `md5sums` file (`HASH  path`, the path relative to the root) as
/// absolute path → lowercase hex digest.
fn parse_md5sums(bytes: &[u8]) -> anyhow::Result<HashMap<PathBuf, String>> {
    let mut out = HashMap::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let ok = line.len() > 34
            && line[..32].iter().all(u8::is_ascii_hexdigit)
            && line[32] == b' '
            && (line[33] == b' ' || line[33] == b'*');
        if !ok {
            bail!("line {}: not `MD5SUM  PATH`", n + 1);
        }
        let rel = &line[34..];
        let rel = rel.strip_prefix(b"./").unwrap_or(rel);
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        let mut path = b"/".to_vec();
        path.extend_from_slice(rel);
        out.insert(path_of(&path), text(&line[..32]).to_ascii_lowercase());
    }
    Ok(out)
}

/// A diversion: where the diverted file's content lives, and who diverts
/// it (`:` for a local diversion).
#[derive(Debug, PartialEq, Eq)]
struct Diversion {
    to: PathBuf,
    by: String,
}

/// dpkg's `diversions` file: three lines per diversion (the diverted path,
/// where it goes, the diverting package or `:`).
fn parse_diversions(bytes: &[u8]) -> anyhow::Result<HashMap<PathBuf, Diversion>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(HashMap::new());
    }
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if !lines.len().is_multiple_of(3) {
        bail!("{} lines, not a multiple of three", lines.len());
    }
    Ok(lines
        .chunks_exact(3)
        .map(|c| {
            (
                path_of(c[0]),
                Diversion {
                    to: path_of(c[1]),
                    by: text(c[2]),
                },
            )
        })
        .collect())
}

/// The non-`remove-on-upgrade` lines of the original `conffiles` whose
/// file the copy ships, and every `remove-on-upgrade` line verbatim.
fn conffiles_text_out(original: &str, plan: &Plan) -> String {
    let shipped: HashSet<&Path> = plan.shipped_conffiles().collect();
    let mut out = String::new();
    for line in original.lines() {
        let t = line.trim();
        let keep = if t.starts_with('/') {
            shipped.contains(Path::new(t))
        } else {
            t.starts_with("remove-on-upgrade")
        };
        if keep {
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

// ---------------------------------------------------------------------------
// What goes into the data archive
// ---------------------------------------------------------------------------

/// The host: where the package's paths are, and the diversions that move
/// some of them.
struct Host<'a> {
    root: &'a Path,
    package: &'a str,
    diversions: &'a HashMap<PathBuf, Diversion>,
}

impl Host<'_> {
    /// Where the content of the package's `path` is on the host: the
    /// diversion's target when another package (or the admin) diverts it.
    fn source(&self, path: &Path) -> PathBuf {
        let true_path = match self.diversions.get(path) {
            Some(d) if d.by != self.package => d.to.as_path(),
            _ => path,
        };
        self.root
            .join(true_path.strip_prefix("/").unwrap_or(true_path))
    }
}

/// Mode, owner and time of an archive member.
#[derive(Clone, Copy, Debug)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl From<&Metadata> for Meta {
    fn from(m: &Metadata) -> Meta {
        Meta {
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            mtime: clamp_time(m.mtime()),
        }
    }
}

/// One member of the data archive.
#[derive(Debug)]
struct Entry {
    /// The package's path, absolute.
    path: PathBuf,
    /// The member's name: `./path`, `./path/` for a directory.
    name: Vec<u8>,
    meta: Meta,
    item: Item,
}

#[derive(Debug)]
enum Item {
    Dir,
    /// A regular file read from `source`, whose content must have `md5`.
    File {
        source: PathBuf,
        size: u64,
        md5: String,
        /// Listed in the rebuilt `md5sums`.
        summed: bool,
        conffile: bool,
    },
    Symlink(Vec<u8>),
    /// A hard link to the member named `to`, written before it.
    HardLink {
        to: Vec<u8>,
        md5: String,
    },
}

/// The data archive's members and the conffiles' outcomes.
#[derive(Debug)]
struct Plan {
    entries: Vec<Entry>,
    conffiles: Vec<(PathBuf, Conffile)>,
}

impl Plan {
    /// The rebuilt `md5sums`.
    fn md5sums(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            let md5 = match &e.item {
                Item::File {
                    md5, summed: true, ..
                }
                | Item::HardLink { md5, .. } => md5,
                _ => continue,
            };
            out.extend_from_slice(md5.as_bytes());
            out.extend_from_slice(b"  ");
            out.extend_from_slice(e.name.strip_prefix(b"./").unwrap_or(&e.name));
            out.push(b'\n');
        }
        out
    }

    /// The conffiles the data archive holds.
    fn shipped_conffiles(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().filter_map(|e| match e.item {
            Item::File { conffile: true, .. } => Some(e.path.as_path()),
            _ => None,
        })
    }
}

/// The member name of the package's `path`.
fn member_name(path: &Path, dir: bool) -> Vec<u8> {
    let rel = path.as_os_str().as_bytes();
    let rel = rel.strip_prefix(b"/").unwrap_or(rel);
    let mut name = b"./".to_vec();
    name.extend_from_slice(rel);
    if dir && !rel.is_empty() {
        name.push(b'/');
    }
    name
}

/// The MD5 sum and metadata of the regular file at `path`, `None` if there
/// is nothing there; anything else there is an error.
fn md5_of_regular(path: &Path) -> anyhow::Result<Option<(String, Metadata)>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut reader = Hashing {
        inner: open_regular(path, &meta)?,
        md5: Md5::new(),
        left: u64::MAX,
    };
    io::copy(&mut reader, &mut io::sink()).with_context(|| format!("{}", path.display()))?;
    Ok(Some((hex::encode(reader.md5.finalize()), meta)))
}

/// Opens the regular file at `path` without following a symlink, and
/// checks it is the file `meta` describes.
fn open_regular(path: &Path, meta: &Metadata) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    let now = file
        .metadata()
        .with_context(|| format!("{}", path.display()))?;
    if !now.is_file() || now.ino() != meta.ino() || now.dev() != meta.dev() {
        bail!("{} changed while being read", path.display());
    }
    Ok(file)
}

/// What the data archive holds for each path of the `.list`, checked
/// against dpkg's records (regular files are hashed later, as they are
/// written; conffiles now, to choose what to ship). Sums and conffiles of
/// paths not in the `.list` (taken over by another package) are not used.
fn plan(
    host: &Host<'_>,
    list: &[PathBuf],
    md5sums: &HashMap<PathBuf, String>,
    conffiles: &[PathBuf],
    recorded: &HashMap<PathBuf, String>,
) -> anyhow::Result<Plan> {
    let conffiles: HashSet<&Path> = conffiles.iter().map(PathBuf::as_path).collect();
    let parents: HashSet<&Path> = list.iter().filter_map(|p| p.parent()).collect();
    let mut inodes: HashMap<(u64, u64), (Vec<u8>, String)> = HashMap::new();
    let mut plan = Plan {
        entries: Vec::new(),
        conffiles: Vec::new(),
    };
    for path in list {
        let shown = path.display();
        let source = host.source(path);
        if conffiles.contains(path.as_path()) {
            let expected = recorded
                .get(path)
                .ok_or_else(|| anyhow!("conffile {shown} has no MD5 sum in the status file"))?;
            let (outcome, entry) =
                plan_conffile(path, &source, expected, md5sums.contains_key(path))?;
            plan.conffiles.push((path.clone(), outcome));
            plan.entries.extend(entry);
            continue;
        }
        let meta = match fs::symlink_metadata(&source) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("{shown} is missing ({} does not exist)", source.display())
            }
            Err(e) => return Err(e).with_context(|| format!("{}", source.display())),
        };
        let kind = meta.file_type();
        let expected = md5sums.get(path);
        if expected.is_some() && !kind.is_file() {
            bail!("{shown} is no longer a regular file (dpkg installed one)");
        }
        let (meta, item) = if kind.is_dir() {
            (Meta::from(&meta), Item::Dir)
        } else if kind.is_symlink() && parents.contains(path.as_path()) {
            // A directory of the package that the host turned into a link
            // to one (merged /usr): still a directory in the package.
            let target = fs::metadata(&source).with_context(|| format!("{}", source.display()))?;
            if !target.is_dir() {
                bail!("{shown} holds files of the package but is not a directory");
            }
            (Meta::from(&target), Item::Dir)
        } else if kind.is_symlink() {
            let target = fs::read_link(&source).with_context(|| format!("{}", source.display()))?;
            (
                Meta::from(&meta),
                Item::Symlink(target.into_os_string().into_vec()),
            )
        } else if kind.is_file() {
            let md5 = expected
                .ok_or_else(|| {
                    anyhow!("dpkg recorded no MD5 sum for {shown}: it cannot be verified")
                })?
                .clone();
            let name = member_name(path, false);
            let item = match inodes.get(&(meta.dev(), meta.ino())) {
                Some((to, first_md5)) if meta.nlink() > 1 => {
                    if *first_md5 != md5 {
                        bail!(
                            "{shown} differs from the MD5 sum dpkg recorded for it: it is not the installed version's file"
                        );
                    }
                    Item::HardLink {
                        to: to.clone(),
                        md5,
                    }
                }
                _ => {
                    if meta.nlink() > 1 {
                        inodes.insert((meta.dev(), meta.ino()), (name, md5.clone()));
                    }
                    Item::File {
                        source,
                        size: meta.len(),
                        md5,
                        summed: true,
                        conffile: false,
                    }
                }
            };
            (Meta::from(&meta), item)
        } else {
            bail!("{shown} is neither a directory, a regular file nor a symlink: not supported");
        };
        let dir = matches!(item, Item::Dir);
        plan.entries.push(Entry {
            path: path.clone(),
            name: member_name(path, dir),
            meta,
            item,
        });
    }
    Ok(plan)
}

/// What to ship for the conffile `path` whose content is at `source` and
/// whose original MD5 sum is `expected` (see the module's "Conffiles").
fn plan_conffile(
    path: &Path,
    source: &Path,
    expected: &str,
    summed: bool,
) -> anyhow::Result<(Conffile, Option<Entry>)> {
    let entry = |from: PathBuf, meta: Meta, size: u64, md5: String| Entry {
        path: path.to_path_buf(),
        name: member_name(path, false),
        meta,
        item: Item::File {
            source: from,
            size,
            md5,
            summed,
            conffile: true,
        },
    };
    let live = md5_of_regular(source).with_context(|| format!("conffile {}", path.display()))?;
    if let Some((md5, meta)) = &live
        && md5 == expected
    {
        let e = entry(source.to_path_buf(), meta.into(), meta.len(), md5.clone());
        return Ok((Conffile::Pristine, Some(e)));
    }
    for suffix in ORIGINAL_COPIES {
        let mut copy = source.as_os_str().to_owned();
        copy.push(suffix);
        let copy = PathBuf::from(copy);
        if let Ok(Some((md5, copy_meta))) = md5_of_regular(&copy)
            && md5 == expected
        {
            let mut meta = Meta::from(&copy_meta);
            if let Some((_, live_meta)) = &live {
                let l = Meta::from(live_meta);
                (meta.mode, meta.uid, meta.gid) = (l.mode, l.uid, l.gid);
            }
            let e = entry(copy.clone(), meta, copy_meta.len(), md5);
            return Ok((Conffile::Recovered { from: copy }, Some(e)));
        }
    }
    Ok(match live {
        Some((md5, meta)) => (
            Conffile::Edited,
            Some(entry(source.to_path_buf(), (&meta).into(), meta.len(), md5)),
        ),
        None => (Conffile::Deleted, None),
    })
}

// ---------------------------------------------------------------------------
// Writing the .deb
// ---------------------------------------------------------------------------

/// Writes the `.deb` by the one durable write (`DEST.partial`, mode 0600,
/// fsynced), reads its size and SHA-256 back, and renames it to `dest`;
/// the partial file is removed on failure.
fn write_atomically(
    dest: &Path,
    control: &[(&str, Vec<u8>, u32)],
    plan: &Plan,
    mtime: u64,
) -> anyhow::Result<(u64, String)> {
    let mut pending = Pending::create(dest, Options::private())
        .with_context(|| format!("{}", crate::fsutil::durable::partial_path(dest).display()))?;
    let partial = pending.path().to_path_buf();
    write_deb(pending.file(), control, plan, mtime)
        .and_then(|()| Ok(pending.sync()?))
        .map_err(|e| {
            // A bare I/O error is the output's; the others name their file.
            if e.is::<io::Error>() {
                e.context(format!("writing {}", partial.display()))
            } else {
                e
            }
        })?;
    let hashed =
        hash_file(&partial).with_context(|| format!("{}: read back", partial.display()))?;
    pending
        .commit()
        .with_context(|| format!("{}: rename", dest.display()))?;
    Ok((hashed.size, hashed.sha256()))
}

/// A 60-byte `ar` member header as `dpkg-deb` writes it.
fn ar_header(name: &str, mtime: u64, size: u64) -> anyhow::Result<Vec<u8>> {
    if size >= 10_000_000_000 {
        bail!("{name} is {size} bytes, more than an ar member can hold");
    }
    let header = format!(
        "{name:<16}{mtime:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
        0, 0, "100644"
    );
    if header.len() != 60 {
        bail!("ar header for {name} is {} bytes", header.len());
    }
    Ok(header.into_bytes())
}

/// Writes the whole `.deb` into `file`: the data member's size is written
/// once its compressed stream is complete.
fn write_deb(
    file: &File,
    control: &[(&str, Vec<u8>, u32)],
    plan: &Plan,
    mtime: u64,
) -> anyhow::Result<()> {
    let control_tar = control_archive(control, mtime)?;
    let mut out = BufWriter::new(file);
    out.write_all(b"!<arch>\n")?;
    out.write_all(&ar_header("debian-binary", mtime, 4)?)?;
    out.write_all(b"2.0\n")?;
    out.write_all(&ar_header(
        "control.tar.gz",
        mtime,
        control_tar.len() as u64,
    )?)?;
    out.write_all(&control_tar)?;
    if control_tar.len() % 2 == 1 {
        out.write_all(b"\n")?;
    }
    let header_at = out.stream_position()?;
    out.write_all(&ar_header("data.tar.gz", mtime, 0)?)?;
    let data_at = header_at + 60;
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    for entry in &plan.entries {
        write_entry(&mut tar, entry)?;
    }
    let mut out = tar.into_inner()?.finish()?;
    let size = out.stream_position()? - data_at;
    if size % 2 == 1 {
        out.write_all(b"\n")?;
    }
    out.seek(SeekFrom::Start(header_at))?;
    out.write_all(&ar_header("data.tar.gz", mtime, size)?)?;
    out.flush()?;
    Ok(())
}

/// The gzip'd control archive: `./` and each member, owned by root.
fn control_archive(members: &[(&str, Vec<u8>, u32)], mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let root = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime,
    };
    append(
        &mut tar,
        b"./",
        None,
        root,
        EntryType::Directory,
        0,
        io::empty(),
    )?;
    for (name, content, mode) in members {
        let meta = Meta {
            mode: *mode,
            ..root
        };
        let name = format!("./{name}");
        append(
            &mut tar,
            name.as_bytes(),
            None,
            meta,
            EntryType::Regular,
            content.len() as u64,
            content.as_slice(),
        )?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// Writes one data member; a regular file is hashed as it is copied and
/// must match its recorded MD5 sum.
fn write_entry<W: Write>(tar: &mut tar::Builder<W>, e: &Entry) -> anyhow::Result<()> {
    let shown = e.path.display();
    match &e.item {
        Item::Dir => append(
            tar,
            &e.name,
            None,
            e.meta,
            EntryType::Directory,
            0,
            io::empty(),
        ),
        Item::Symlink(target) => append(
            tar,
            &e.name,
            Some(target),
            e.meta,
            EntryType::Symlink,
            0,
            io::empty(),
        ),
        Item::HardLink { to, .. } => append(
            tar,
            &e.name,
            Some(to),
            e.meta,
            EntryType::Link,
            0,
            io::empty(),
        ),
        Item::File {
            source, size, md5, ..
        } => {
            let meta = fs::symlink_metadata(source).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => anyhow!("{shown} is missing"),
                _ => anyhow!("{}: {e}", source.display()),
            })?;
            if !meta.is_file() || meta.len() != *size {
                bail!("{shown} changed while being read");
            }
            let file = open_regular(source, &meta)?;
            let mut reader = Hashing {
                inner: file,
                md5: Md5::new(),
                left: *size,
            };
            append(
                tar,
                &e.name,
                None,
                e.meta,
                EntryType::Regular,
                *size,
                &mut reader,
            )
            .with_context(|| format!("{}", source.display()))?;
            let mut more = [0u8; 1];
            if reader.left != 0 || reader.inner.read(&mut more)? != 0 {
                bail!("{shown} changed while being read");
            }
            if hex::encode(reader.md5.finalize()) != *md5 {
                bail!(
                    "{shown} differs from the MD5 sum dpkg recorded for it: it is not the installed version's file"
                );
            }
            Ok(())
        }
    }
}

/// A reader of at most `left` bytes that hashes what it reads.
struct Hashing {
    inner: File,
    md5: Md5,
    left: u64,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if max == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.md5.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Appends a tar member named `name` verbatim (GNU long-name entries for
/// a name or link target over 100 bytes), owners numeric only.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &[u8],
    link: Option<&[u8]>,
    meta: Meta,
    kind: EntryType,
    size: u64,
    data: impl Read,
) -> anyhow::Result<()> {
    if name.len() > 100 {
        long_name(tar, EntryType::GNULongName, name)?;
    }
    if let Some(link) = link
        && link.len() > 100
    {
        long_name(tar, EntryType::GNULongLink, link)?;
    }
    let mut header = tar::Header::new_gnu();
    let n = name.len().min(100);
    header.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    if let Some(link) = link {
        let n = link.len().min(100);
        header.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
    }
    header.set_mode(meta.mode);
    header.set_uid(meta.uid);
    header.set_gid(meta.gid);
    header.set_mtime(meta.mtime);
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_cksum();
    tar.append(&header, data)?;
    Ok(())
}

/// A GNU `././@LongLink` entry carrying `value` (NUL-terminated).
fn long_name<W: Write>(
    tar: &mut tar::Builder<W>,
    kind: EntryType,
    value: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    let tag = b"././@LongLink";
    header.as_old_mut().name[..tag.len()].copy_from_slice(tag);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(value.len() as u64 + 1);
    header.set_entry_type(kind);
    header.set_cksum();
    tar.append(&header, value.chain(&b"\0"[..]))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Against the real dpkg: packages built with `dpkg-deb --build`,
    //! installed into sandboxes (`dpkg --root`), rebuilt, inspected with
    //! `dpkg-deb` and installed again.

    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    /// Runs a command that must succeed; its stdout.
    fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn host_arch() -> String {
        String::from_utf8(run(Command::new("dpkg").arg("--print-architecture")))
            .unwrap()
            .trim()
            .to_string()
    }

    const LONG_DIR: &str =
        "usr/share/demo/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    const LONG_FILE: &str =
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// A test package: `demo` at `version`, with a binary (0755, with a
    /// hard link), a symlink, an empty directory owned by uid/gid 1 (mode
    /// 0750), a file and a symlink target with names over 100 bytes, a
    /// conffile, postinst and prerm scripts, and a Depends field.
    struct Pkg<'a> {
        version: &'a str,
        binary: &'a [u8],
        conf: &'a [u8],
        multi_arch_same: bool,
    }

    const V1: Pkg<'static> = Pkg {
        version: "1:1.0-1",
        binary: b"\x7fELF v1 \x00\x01\x02\xff",
        conf: b"a=1\n",
        multi_arch_same: false,
    };

    const V2: Pkg<'static> = Pkg {
        version: "1:2.0-1",
        binary: b"\x7fELF v2 is longer \x00\x01\x02\xff",
        conf: b"a=2\nb=2\n",
        multi_arch_same: false,
    };

    /// Builds `NAME.deb` in `dir` with `dpkg-deb --build`.
    fn build(dir: &Path, name: &str, p: &Pkg<'_>) -> PathBuf {
        let b = dir.join(format!("build-{name}"));
        let mk = |rel: &str| {
            let d = b.join(rel);
            fs::create_dir_all(&d).unwrap();
            d
        };
        mk("usr/bin");
        fs::write(b.join("usr/bin/demo"), p.binary).unwrap();
        fs::set_permissions(b.join("usr/bin/demo"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("demo", b.join("usr/bin/demo-link")).unwrap();
        let empty = mk("usr/share/demo/empty");
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&empty, Some(1), Some(1)).unwrap();
        fs::hard_link(b.join("usr/bin/demo"), b.join("usr/share/demo/hard")).unwrap();
        mk(LONG_DIR);
        fs::write(b.join(LONG_DIR).join(LONG_FILE), b"long name\n").unwrap();
        let target = format!(
            "{}/{LONG_FILE}",
            LONG_DIR.trim_start_matches("usr/share/demo/")
        );
        std::os::unix::fs::symlink(target, b.join("usr/share/demo/long-link")).unwrap();
        mk("etc/demo");
        fs::write(b.join("etc/demo/demo.conf"), p.conf).unwrap();
        let debian = mk("DEBIAN");
        let multi = if p.multi_arch_same {
            format!("Architecture: {}\nMulti-Arch: same\n", host_arch())
        } else {
            "Architecture: all\n".to_string()
        };
        fs::write(
            debian.join("control"),
            format!(
                "Package: demo\nVersion: {}\n{multi}Maintainer: Test <test@example.com>\nDepends: libc6 (>= 2.36), base-files | nothing\nDescription: a test package\n built by upkeep's tests\n .\n   indented\n",
                p.version
            ),
        )
        .unwrap();
        fs::write(debian.join("conffiles"), "/etc/demo/demo.conf\n").unwrap();
        for script in ["postinst", "prerm"] {
            fs::write(
                debian.join(script),
                format!("#!/bin/sh\n# {script}\nexit 0\n"),
            )
            .unwrap();
            fs::set_permissions(debian.join(script), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = dir.join(format!("{name}.deb"));
        run(Command::new("dpkg-deb").arg("--build").arg(&b).arg(&out));
        out
    }

    /// A fresh dpkg sandbox: `S/var/lib/dpkg/{info,updates,triggers}` and an
    /// empty status file.
    fn sandbox(dir: &Path, name: &str) -> PathBuf {
        let s = dir.join(name);
        for sub in ["info", "updates", "triggers"] {
            fs::create_dir_all(s.join("var/lib/dpkg").join(sub)).unwrap();
        }
        fs::write(s.join("var/lib/dpkg/status"), "").unwrap();
        fs::set_permissions(&s, fs::Permissions::from_mode(0o755)).unwrap();
        s
    }

    fn dpkg(s: &Path) -> Command {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", s.display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn install(s: &Path, deb: &Path) {
        run(dpkg(s)
            .args(["--force-confdef", "--force-confold", "-i"])
            .arg(deb));
    }

    fn admin(s: &Path) -> PathBuf {
        s.join("var/lib/dpkg")
    }

    fn rebuild_in(s: &Path, out: &Path, version: &str) -> anyhow::Result<Rebuilt> {
        fs::create_dir_all(out).unwrap();
        rebuild(&admin(s), s, "demo", version, None, out)
    }

    /// A file tree below `s` (dpkg's own `var/` left out): type, mode,
    /// owner, and a file's content and mtime or a symlink's target.
    fn tree(s: &Path) -> BTreeMap<PathBuf, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                if rel == Path::new("var") {
                    continue;
                }
                let m = fs::symlink_metadata(&p).unwrap();
                let who = format!("{:o} {}:{}", m.mode(), m.uid(), m.gid());
                let what = if m.is_dir() {
                    walk(base, &p, out);
                    "dir".to_string()
                } else if m.file_type().is_symlink() {
                    format!("-> {}", fs::read_link(&p).unwrap().display())
                } else {
                    format!("{:?} at {}", fs::read(&p).unwrap(), m.mtime())
                };
                out.insert(rel, format!("{who} {what}"));
            }
        }
        let mut out = BTreeMap::new();
        walk(s, s, &mut out);
        out
    }

    /// The data archive's members in order: name, type, mode, owner, size,
    /// link target; and a regular file's mtime.
    fn members(deb: &Path) -> Vec<String> {
        let data = run(Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb));
        let mut archive = tar::Archive::new(data.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let kind = h.entry_type();
                let mtime = if kind.is_file() {
                    h.mtime().unwrap()
                } else {
                    0
                };
                format!(
                    "{} {:?} {:o} {}:{} {} {:?} {mtime}",
                    String::from_utf8_lossy(&e.path_bytes()),
                    kind,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.size().unwrap(),
                    e.link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned()),
                )
            })
            .collect()
    }

    fn fields(deb: &Path) -> Vec<(String, String)> {
        let out = run(Command::new("dpkg-deb").arg("--field").arg(deb));
        let mut f = crate::package::deb::control_fields(&String::from_utf8(out).unwrap());
        f.sort();
        f
    }

    /// The control archive extracted (`dpkg-deb -e`): member → mode, content.
    fn control_members(deb: &Path, dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
        run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(dir));
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let mode = fs::metadata(&p).unwrap().mode() & 0o7777;
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    (mode, fs::read(&p).unwrap()),
                )
            })
            .collect()
    }

    /// The package's paragraph of a sandbox's status file, fields sorted.
    fn status_fields(s: &Path) -> Vec<(String, String)> {
        let text = fs::read_to_string(admin(s).join("status")).unwrap();
        let mut f = crate::package::deb::control_fields(&text);
        f.sort();
        f
    }

    fn extract(deb: &Path, dir: &Path) {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir));
    }

    const CONF: &str = "etc/demo/demo.conf";

    #[test]
    fn rebuilt_package_equals_the_original_and_installs_the_same_files() {
        let tmp = tempfile::tempdir().unwrap();
        let original = build(tmp.path(), "v1", &V1);
        let s1 = sandbox(tmp.path(), "s1");
        install(&s1, &original);
        let out = tmp.path().join("out");
        let r = rebuild_in(&s1, &out, "1:1.0-1").unwrap();

        assert_eq!(r.path, out.join("demo_1%3a1.0-1_all.deb"));
        let meta = fs::metadata(&r.path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(r.size, meta.len());
        assert_eq!(r.sha256, hash_file(&r.path).unwrap().sha256());
        assert_eq!(
            r.conffiles,
            vec![(PathBuf::from("/etc/demo/demo.conf"), Conffile::Pristine)]
        );
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1, "no partial left");
        run(Command::new("dpkg-deb").arg("--info").arg(&r.path));
        run(Command::new("dpkg-deb").arg("--contents").arg(&r.path));

        // Control fields, scripts and conffiles are the original's; the
        // md5sums are those dpkg generated at install (the original had none).
        assert_eq!(fields(&r.path), fields(&original));
        let theirs = control_members(&original, &tmp.path().join("c-original"));
        let mut ours = control_members(&r.path, &tmp.path().join("c-rebuilt"));
        let md5sums = ours.remove("md5sums").expect("md5sums shipped");
        assert_eq!(
            md5sums.1,
            fs::read(admin(&s1).join("info/demo.md5sums")).unwrap()
        );
        let ours_control = ours.remove("control").unwrap();
        let theirs_control = theirs.get("control").unwrap();
        assert_eq!(ours_control.0, 0o644);
        assert_eq!(
            ours.remove("conffiles"),
            Some((0o644, b"/etc/demo/demo.conf\n".to_vec()))
        );
        for script in ["postinst", "prerm"] {
            assert_eq!(ours.get(script), theirs.get(script), "{script}");
            assert_eq!(ours[script].0, 0o755);
        }
        assert_eq!(ours.len(), 2, "{:?}", ours.keys());
        assert!(!theirs_control.1.is_empty());

        // The same members in the same order, hard link and long names included.
        let original_members = members(&original);
        assert!(
            original_members
                .iter()
                .any(|m| m.contains("Link") && m.starts_with("./usr/share/demo/hard"))
        );
        assert!(
            original_members
                .iter()
                .any(|m| m.starts_with(&format!("./{LONG_DIR}/{LONG_FILE} ")))
        );
        assert_eq!(members(&r.path), original_members);

        // Installed into a fresh sandbox, it lays down the same files and
        // the same records.
        let s2 = sandbox(tmp.path(), "s2");
        install(&s2, &r.path);
        assert_eq!(tree(&s2), tree(&s1));
        let ino = |s: &Path, p: &str| fs::metadata(s.join(p)).unwrap().ino();
        assert_eq!(ino(&s2, "usr/bin/demo"), ino(&s2, "usr/share/demo/hard"));
        assert_eq!(status_fields(&s2), status_fields(&s1));
        for info in ["list", "md5sums", "conffiles", "postinst", "prerm"] {
            let f = format!("info/demo.{info}");
            assert_eq!(
                fs::read(admin(&s2).join(&f)).unwrap(),
                fs::read(admin(&s1).join(&f)).unwrap(),
                "{f}"
            );
        }

        // The same host state gives the same bytes.
        let again = rebuild_in(&s1, &tmp.path().join("out2"), "1:1.0-1").unwrap();
        assert_eq!(again.sha256, r.sha256);
    }

    #[test]
    fn an_edited_conffile_is_shipped_live_and_kept_across_upgrade_and_rollback() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = build(tmp.path(), "v1", &V1);
        let v2 = build(tmp.path(), "v2", &V2);
        let s = sandbox(tmp.path(), "s");
        install(&s, &v1);
        let edited = b"a=1\nlocal=yes\n";
        fs::write(s.join(CONF), edited).unwrap();

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        assert_eq!(
            r.conffiles,
            vec![(PathBuf::from("/etc/demo/demo.conf"), Conffile::Edited)]
        );
        let x = tmp.path().join("x");
        extract(&r.path, &x);
        assert_eq!(fs::read(x.join(CONF)).unwrap(), edited);

        // Upgrade (the edit is kept), then roll back with the copy.
        install(&s, &v2);
        assert_eq!(fs::read(s.join("usr/bin/demo")).unwrap(), V2.binary);
        assert_eq!(fs::read(s.join(CONF)).unwrap(), edited);
        install(&s, &r.path);
        assert_eq!(fs::read(s.join("usr/bin/demo")).unwrap(), V1.binary);
        assert_eq!(fs::read(s.join(CONF)).unwrap(), edited);
        let status = status_fields(&s);
        assert!(
            status.contains(&("Version".into(), "1:1.0-1".into())),
            "{status:?}"
        );
        assert!(status.contains(&("Status".into(), "install ok installed".into())));
    }

    #[test]
    fn an_edited_conffile_ships_the_original_when_dpkg_left_a_copy_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = build(tmp.path(), "v1", &V1);
        let s = sandbox(tmp.path(), "s");
        install(&s, &v1);
        let edited = b"a=1\nlocal=yes\n";
        fs::write(s.join(CONF), edited).unwrap();
        fs::write(s.join("etc/demo/demo.conf.dpkg-old"), b"not it\n").unwrap();
        fs::write(s.join("etc/demo/demo.conf.dpkg-dist"), V1.conf).unwrap();

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        let from = s.join("etc/demo/demo.conf.dpkg-dist");
        assert_eq!(
            r.conffiles,
            vec![(
                PathBuf::from("/etc/demo/demo.conf"),
                Conffile::Recovered { from }
            )]
        );
        let x = tmp.path().join("x");
        extract(&r.path, &x);
        assert_eq!(fs::read(x.join(CONF)).unwrap(), V1.conf);

        // Reinstalled, the operator's file stays, and dpkg still knows it
        // as modified: its recorded sum is the original's.
        install(&s, &r.path);
        assert_eq!(fs::read(s.join(CONF)).unwrap(), edited);
        let status = fs::read_to_string(admin(&s).join("status")).unwrap();
        let original_md5 = hex::encode(Md5::digest(V1.conf));
        assert!(
            status.contains(&format!("/etc/demo/demo.conf {original_md5}")),
            "{status}"
        );
    }

    #[test]
    fn a_deleted_conffile_is_left_out_and_stays_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sandbox(tmp.path(), "s");
        install(&s, &build(tmp.path(), "v1", &V1));
        fs::remove_file(s.join(CONF)).unwrap();

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        assert_eq!(
            r.conffiles,
            vec![(PathBuf::from("/etc/demo/demo.conf"), Conffile::Deleted)]
        );
        let control = control_members(&r.path, &tmp.path().join("c"));
        assert!(!control.contains_key("conffiles"), "{:?}", control.keys());
        let md5sums = String::from_utf8(control["md5sums"].1.clone()).unwrap();
        assert!(!md5sums.contains("demo.conf"), "{md5sums}");
        assert!(!members(&r.path).iter().any(|m| m.contains("demo.conf")));
        install(&s, &r.path);
        assert!(!s.join(CONF).exists());
    }

    #[test]
    fn a_modified_or_missing_file_refuses_the_rebuild_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let deb = build(tmp.path(), "v1", &V1);
        let out = tmp.path().join("out");

        let s = sandbox(tmp.path(), "modified");
        install(&s, &deb);
        // Same size, other bytes: only the digest tells.
        let mut changed = V1.binary.to_vec();
        changed[0] ^= 1;
        fs::write(s.join("usr/share/demo/hard"), &changed).unwrap();
        let e = rebuild_in(&s, &out, "1:1.0-1").unwrap_err().to_string();
        assert!(
            e.contains("/usr/bin/demo differs from the MD5 sum dpkg recorded"),
            "{e}"
        );
        assert!(!e.contains('\n') && !e.contains("partial"), "{e}");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "nothing left behind"
        );

        let s = sandbox(tmp.path(), "missing");
        install(&s, &deb);
        let long = format!("{LONG_DIR}/{LONG_FILE}");
        fs::remove_file(s.join(&long)).unwrap();
        let e = rebuild_in(&s, &out, "1:1.0-1").unwrap_err().to_string();
        assert!(e.contains(&format!("/{long} is missing")), "{e}");
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn a_package_not_installed_at_that_version_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sandbox(tmp.path(), "s");
        install(&s, &build(tmp.path(), "v1", &V1));
        let out = tmp.path().join("out");
        fs::create_dir_all(&out).unwrap();

        let e = rebuild(&admin(&s), &s, "nope", "1.0", None, &out).unwrap_err();
        assert!(e.to_string().contains("nope is not installed"), "{e}");
        let e = rebuild_in(&s, &out, "1:2.0-1").unwrap_err();
        assert!(
            e.to_string()
                .contains("installed at version 1:1.0-1, not 1:2.0-1"),
            "{e}"
        );
        let e = rebuild_in(&s, &out, "1.0-1").unwrap_err();
        assert!(e.to_string().contains("not 1.0-1"), "{e}");

        run(dpkg(&s).args(["--remove", "demo"]));
        let e = rebuild_in(&s, &out, "1:1.0-1").unwrap_err();
        assert!(
            e.to_string()
                .contains("demo is not installed (dpkg status: \"deinstall ok config-files\")"),
            "{e}"
        );
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    }

    /// Regression: a `Multi-Arch: same` package's info files are named
    /// `PKG:ARCH.*`; reading `PKG.list` found nothing.
    #[test]
    fn multi_arch_same_reads_the_info_files_named_with_the_architecture() {
        let tmp = tempfile::tempdir().unwrap();
        let arch = host_arch();
        let original = build(
            tmp.path(),
            "ma",
            &Pkg {
                multi_arch_same: true,
                ..V1
            },
        );
        let s1 = sandbox(tmp.path(), "s1");
        install(&s1, &original);
        let info = admin(&s1).join("info");
        assert!(info.join(format!("demo:{arch}.list")).exists());
        assert!(!info.join("demo.list").exists());

        let out = tmp.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let r = rebuild(&admin(&s1), &s1, "demo", "1:1.0-1", Some(&arch), &out).unwrap();
        assert_eq!(r.path, out.join(format!("demo_1%3a1.0-1_{arch}.deb")));
        let r2 = rebuild(&admin(&s1), &s1, "demo", "1:1.0-1", None, &out).unwrap();
        assert_eq!(r2.sha256, r.sha256);
        assert_eq!(fields(&r.path), fields(&original));
        assert_eq!(members(&r.path), members(&original));
        let control = control_members(&r.path, &tmp.path().join("c"));
        for member in ["postinst", "prerm", "conffiles", "md5sums"] {
            assert!(
                control.contains_key(member),
                "{member}: {:?}",
                control.keys()
            );
        }
        let other = if arch == "i386" { "amd64" } else { "i386" };
        let e = rebuild(&admin(&s1), &s1, "demo", "1:1.0-1", Some(other), &out).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("not installed for {other}")),
            "{e}"
        );

        let s2 = sandbox(tmp.path(), "s2");
        install(&s2, &r.path);
        assert_eq!(tree(&s2), tree(&s1));
    }

    #[test]
    fn a_file_diverted_by_another_package_is_read_where_the_diversion_put_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sandbox(tmp.path(), "s");
        run(Command::new("dpkg-divert")
            .arg(format!("--root={}", s.display()))
            .args(["--package", "other", "--no-rename", "--divert"])
            .args(["/usr/bin/demo.distrib", "--add", "/usr/bin/demo"]));
        install(&s, &build(tmp.path(), "v1", &V1));
        assert!(!s.join("usr/bin/demo").exists());
        assert_eq!(fs::read(s.join("usr/bin/demo.distrib")).unwrap(), V1.binary);

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        let x = tmp.path().join("x");
        extract(&r.path, &x);
        assert_eq!(fs::read(x.join("usr/bin/demo")).unwrap(), V1.binary);
        assert!(!x.join("usr/bin/demo.distrib").exists());
    }

    #[test]
    fn a_directory_the_host_turned_into_a_symlink_is_shipped_as_a_directory() {
        // As merged /usr does to /bin: the package's directory is now a
        // link to a directory elsewhere, and its files are found through it.
        let tmp = tempfile::tempdir().unwrap();
        let original = build(tmp.path(), "v1", &V1);
        let s = sandbox(tmp.path(), "s");
        install(&s, &original);
        fs::rename(s.join("usr/share/demo"), s.join("usr/share/demo-moved")).unwrap();
        std::os::unix::fs::symlink("demo-moved", s.join("usr/share/demo")).unwrap();

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        assert_eq!(members(&r.path), members(&original));
    }

    #[test]
    fn a_file_another_package_took_over_is_left_out() {
        // dpkg takes a replaced file off the .list, not off md5sums.
        let tmp = tempfile::tempdir().unwrap();
        let s = sandbox(tmp.path(), "s");
        install(&s, &build(tmp.path(), "v1", &V1));
        let list = admin(&s).join("info/demo.list");
        let text = fs::read_to_string(&list).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| *l != "/usr/share/demo/hard")
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(kept, text);
        fs::write(&list, kept).unwrap();
        fs::remove_file(s.join("usr/share/demo/hard")).unwrap();
        fs::write(s.join("usr/share/demo/hard"), b"the other package's").unwrap();

        let r = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap();
        assert!(!members(&r.path).iter().any(|m| m.contains("/hard")));
        let control = control_members(&r.path, &tmp.path().join("c"));
        let md5sums = String::from_utf8(control["md5sums"].1.clone()).unwrap();
        assert!(md5sums.contains("usr/bin/demo"), "{md5sums}");
        assert!(!md5sums.contains("hard"), "{md5sums}");
    }

    #[test]
    fn an_unmerged_dpkg_journal_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sandbox(tmp.path(), "s");
        install(&s, &build(tmp.path(), "v1", &V1));
        fs::write(admin(&s).join("updates/0000"), "").unwrap();
        let e = rebuild_in(&s, &tmp.path().join("out"), "1:1.0-1").unwrap_err();
        assert!(e.to_string().contains("dpkg --configure -a"), "{e}");
    }

    #[test]
    fn status_paragraphs_keep_fields_verbatim() {
        let text = b"Package: a\nStatus: install ok installed\nConffiles:\n /etc/a 0123456789abcdef0123456789abcdef\n /etc/old path ffffffffffffffffffffffffffffffff obsolete\n /etc/r 00000000000000000000000000000000 remove-on-upgrade\nDescription: x\n y\n .\n   z\n\nPackage: b\nVersion: 1";
        let ps = paragraphs(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[1].value("version"), Some(&b"1"[..]));
        assert_eq!(
            control_text(&ps[0]),
            b"Package: a\nDescription: x\n y\n .\n   z\n".to_vec()
        );
        let c = parse_status_conffiles(&ps[0]);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[Path::new("/etc/a")], "0123456789abcdef0123456789abcdef");
        assert!(c.contains_key(Path::new("/etc/r")));
        assert!(paragraphs(b" continuation first\n").is_err());
        assert!(paragraphs(b"Package: a\nno colon\n").is_err());
    }

    #[test]
    fn several_architectures_need_one_named() {
        let text = b"Package: a\nArchitecture: amd64\n\nPackage: a\nArchitecture: i386\n";
        let ps = paragraphs(text).unwrap();
        let e = select(&ps, "a", None).unwrap_err().to_string();
        assert!(e.contains("several architectures (amd64, i386)"), "{e}");
        let p = select(&ps, "a", Some("i386")).unwrap();
        assert_eq!(p.value("Architecture"), Some(&b"i386"[..]));
        let all = paragraphs(b"Package: a\nArchitecture: all\n").unwrap();
        assert!(select(&all, "a", Some("amd64")).is_ok());
    }

    #[test]
    fn md5sums_lists_and_diversions_parse() {
        let sums = parse_md5sums(
            b"0123456789ABCDEF0123456789abcdef  usr/a b\n00000000000000000000000000000000 *./c\n",
        )
        .unwrap();
        assert_eq!(
            sums[Path::new("/usr/a b")],
            "0123456789abcdef0123456789abcdef"
        );
        assert!(sums.contains_key(Path::new("/c")));
        assert!(parse_md5sums(b"0123 usr/a\n").is_err());

        assert_eq!(
            parse_list(b"/.\n/usr\n/usr/a b\n").unwrap(),
            vec![PathBuf::from("/"), "/usr".into(), "/usr/a b".into()]
        );
        assert!(parse_list(b"/usr/../etc\n").is_err());
        assert!(parse_list(b"usr\n").is_err());

        let d = parse_diversions(b"/a\n/a.distrib\nother\n/b\n/b.local\n:\n").unwrap();
        assert_eq!(d[Path::new("/b")].by, ":");
        assert!(parse_diversions(b"/a\n/a.distrib\n").is_err());
        assert!(parse_diversions(b"").unwrap().is_empty());
        let host = Host {
            root: Path::new("/r"),
            package: "other",
            diversions: &d,
        };
        assert_eq!(host.source(Path::new("/a")), Path::new("/r/a"));
        assert_eq!(host.source(Path::new("/b")), Path::new("/r/b.local"));
    }

    #[test]
    fn names_and_headers_are_those_of_dpkg_deb() {
        assert_eq!(member_name(Path::new("/"), true), b"./");
        assert_eq!(member_name(Path::new("/usr"), true), b"./usr/");
        assert_eq!(member_name(Path::new("/usr/a"), false), b"./usr/a");
        let h = ar_header("debian-binary", 1_700_000_000, 4).unwrap();
        assert_eq!(
            h,
            b"debian-binary   1700000000  0     0     100644  4         `\n".to_vec()
        );
        assert!(ar_header("data.tar.gz", 0, 10_000_000_000).is_err());
        assert!(
            rebuild(
                Path::new("/nonexistent"),
                Path::new("/"),
                "a/b",
                "1",
                None,
                Path::new("/tmp")
            )
            .is_err()
        );
    }
}
