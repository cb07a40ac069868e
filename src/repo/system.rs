//! The repositories the host's own package manager already uses, for a
//! target whose repository is `type = "system"`: the operator configures a
//! repository once, for apt or dnf/yum, and upkeep reads the same files and
//! verifies the metadata itself.
//!
//! Nothing here runs a command or touches the network. Every path is read
//! under an injectable root (`/` in production, a temporary directory in
//! tests) and every path returned (keyrings) is joined to that root, so it is
//! the file to open. The one write is an inline `Signed-By` key, stored in a
//! directory the caller gives.
//!
//! [`host_family`] says which package manager the host uses. [`read_apt`] and
//! [`read_yum`] return the usable repositories ([`SystemRepos`]) with
//! [`Note`]s for what was left out and why, and fail with one line when not
//! one repository is usable. A malformed line is an error naming the file
//! and the line, as apt and dnf refuse to run with one.
//!
//! # APT
//!
//! `etc/apt/sources.list`, then `etc/apt/sources.list.d/*.list` (one-line
//! format) and `*.sources` (deb822) in name order; as apt does, only names of
//! `A-Za-z0-9_.-` are read (so `x.list.save` or `x.list.dpkg-old` are not).
//!
//! - Each URI × suite of an entry with type `deb` is one [`AptRepo`], with all
//!   its components; `deb-src` is skipped. A suite ending in `/` is a flat
//!   repository and takes no component; any other suite needs one (both
//!   malformed otherwise, as for apt).
//! - One-line options: `arch=`, `arch+=`, `arch-=`, `signed-by=` and
//!   `trusted=`; values are comma-separated; others (`lang`, `target`,
//!   `check-valid-until`...) are ignored. `#` starts a comment except inside
//!   `[...]`, as for apt. Words may be grouped by `[...]` or `"..."` (as in
//!   `cdrom:[Debian 12]/`).
//! - Architectures: `arch=` / `Architectures:` gives the only architectures
//!   ([`AptRepo::architectures`]); `arch-=` / `Architectures-Remove:` are kept
//!   in [`AptRepo::architectures_removed`]; `arch+=` / `Architectures-Add:`
//!   are ignored: they add to apt's default set, which always holds the
//!   native architecture already, the only one (with `all`) upkeep reads.
//!   [`AptRepo::serves_arch`] combines them.
//! - `Signed-By`: absolute paths (several, separated by spaces or commas)
//!   give [`AptKeyring::SignedBy`]; an inline armored key block (deb822 only)
//!   is written to `KEY_DIR/<sha256 of the key>.asc`, mode 0644, and gives
//!   [`AptKeyring::Inline`]; without `Signed-By` apt trusts every key in
//!   `etc/apt/trusted.gpg.d/*.{gpg,asc}` and `etc/apt/trusted.gpg`:
//!   [`AptKeyring::HostDefault`]. Key fingerprints in `Signed-By` (which apt
//!   uses to select keys from those keyrings) are not supported: the entry is
//!   skipped with a note.
//! - `trusted=yes` / `Trusted: yes` is kept in [`AptRepo::trusted`]. Upkeep
//!   verifies every repository, so [`AptRepo::refusal`] refuses one that is
//!   trusted without a `Signed-By` key (apt would read it unsigned), and one
//!   with no key at all.
//! - `Enabled: no` entries are counted in [`SystemRepos::disabled`].
//! - URIs: `http` and `https` only (as for `type = "apt"`); `file:`, `cdrom:`,
//!   `mirror+http:`, `tor+http:`... are skipped with a note. An entry using
//!   `$(ARCH)` (which apt replaces with the native architecture) is skipped
//!   with a note as well: this module does not know the architecture.
//!
//! deb822 fields are parsed by `deb822-fast`, one stanza at a time: this
//! module splits the file into stanzas itself, for two reasons the tests
//! show. `deb822-fast` gives no line numbers; and it takes a line of only
//! spaces for an (empty) continuation line, so two stanzas separated by such
//! a line become one, silently losing the second stanza's repositories
//! (deb822(5) allows such a line as a separator, so it is one here). Its
//! multi-line values are fine: continuation lines come back without their
//! leading space and a `.` line stays `.`, which this module turns back into
//! the blank line of the armored key.
//!
//! # YUM / DNF
//!
//! `etc/yum.repos.d/*.repo` in name order, after the repositories that
//! `etc/dnf/dnf.conf` (or, without it, `etc/yum.conf`) may define; that
//! file's `[main]` section gives the defaults of `gpgcheck` and
//! `repo_gpgcheck`. dnf.conf(5) documents both as False by default: the
//! distributions set `gpgcheck=1` in `[main]`, which is read here, but a host
//! without it has `gpgcheck` false, as for dnf. `reposdir` is not honoured.
//!
//! - The INI dialect is libdnf's: `[id]` sections (`[main]` in a `.repo`
//!   file is ignored, as dnf does), `key=value`, a line starting with a space
//!   or tab continues the previous value, `#` or `;` in the first column
//!   starts a comment (an indented `#` line continues a value), blank lines
//!   are skipped, even inside a value; the last of a repeated key wins. No
//!   crate of Cargo.toml reads it (the `toml` crate refuses continuation
//!   lines and bare values), hence the small reader here.
//! - `enabled` defaults to 1; booleans are `1/0`, `yes/no`, `true/false`,
//!   `on/off` (another value is an error, where dnf warns and takes the
//!   default). dnf5's `pkg_gpgcheck` is read as `gpgcheck`.
//! - `baseurl` and `gpgkey` are lists separated by spaces, commas or
//!   continuation lines, kept in order. A repository with only `mirrorlist`
//!   or `metalink` is skipped with a note (upkeep does not read them).
//! - `gpgkey`: `file://` URLs or absolute paths; an `http(s)` key is ignored
//!   with a note (upkeep never fetches a key over the network).
//! - Variables: `$name`, `${name}`, `${name:-word}`, `${name:+word}` and `\`
//!   escapes, as libdnf. `releasever`, `arch` and `basearch` come from the
//!   caller ([`YumVars`]), `releasever_major`/`_minor` from `releasever`;
//!   each file of `etc/dnf/vars/`, then `etc/yum/vars/`, sets the variable it
//!   names to its first line and wins over the caller's value, as in dnf. A
//!   URL with a variable that has no value is skipped with a note. The
//!   `DNF_VAR_*` environment variables are not read.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};
use url::Url;

use crate::orchestrator::configs::write_atomic;
use crate::version::Family;

/// Which package manager's repositories the host uses: apt when `etc/apt`
/// exists (checked first: a Debian host may carry dnf to build packages),
/// else dnf/yum when `etc/yum.repos.d` does.
///
/// # Errors
///
/// When neither directory exists under `root`.
pub fn host_family(root: &Path) -> anyhow::Result<Family> {
    let apt = at(root, "/etc/apt");
    let yum = at(root, "/etc/yum.repos.d");
    if apt.is_dir() {
        Ok(Family::Deb)
    } else if yum.is_dir() {
        Ok(Family::Rpm)
    } else {
        bail!(
            "type = \"system\": this host has neither {} nor {}, so no package manager's repositories to use; give the repository's type (\"apt\" or \"yum\") and url",
            apt.display(),
            yum.display()
        )
    }
}

/// The usable repositories of the host, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct SystemRepos {
    /// The repositories upkeep can read, in the package manager's order.
    pub repos: Vec<SystemRepo>,
    /// Entries (or parts of entries) left out, with the reason; for the
    /// caller to print.
    pub notes: Vec<Note>,
    /// How many entries are disabled (`Enabled: no`, `enabled=0`).
    pub disabled: usize,
}

/// Something of the host's configuration that upkeep does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based) of the entry.
    pub line: usize,
    /// Whether the whole entry was left out (else only part of it).
    pub skipped: bool,
    /// What was left out and why, one line.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// One repository of the host's package manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemRepo {
    /// An APT repository (one URI and one suite of a source entry).
    Apt(AptRepo),
    /// A YUM/DNF repository (one section of a `.repo` file).
    Yum(YumRepo),
}

impl SystemRepo {
    /// The file that defines it.
    #[must_use]
    pub fn source_file(&self) -> &Path {
        match self {
            SystemRepo::Apt(r) => &r.source_file,
            SystemRepo::Yum(r) => &r.source_file,
        }
    }

    /// The line (1-based) where its entry starts.
    #[must_use]
    pub fn line(&self) -> usize {
        match self {
            SystemRepo::Apt(r) => r.line,
            SystemRepo::Yum(r) => r.line,
        }
    }

    /// Why upkeep must not use it, one line naming the entry; `None` when it
    /// has a key to verify it with.
    #[must_use]
    pub fn refusal(&self) -> Option<String> {
        match self {
            SystemRepo::Apt(r) => r.refusal(),
            SystemRepo::Yum(r) => r.refusal(),
        }
    }
}

/// An APT repository from the host's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptRepo {
    /// The archive root; `http` or `https`, its path ending in `/`.
    pub url: Url,
    /// The suite (`dists/SUITE`), or a path ending in `/` (such as `./`) for
    /// a flat repository.
    pub suite: String,
    /// The components; empty exactly for a flat repository.
    pub components: Vec<String>,
    /// The keys apt verifies it with.
    pub keyring: AptKeyring,
    /// `trusted=yes`: apt reads it without verifying it.
    pub trusted: bool,
    /// `arch=` / `Architectures:`: the only architectures apt reads from it;
    /// `None` for apt's default set (which holds the native one).
    pub architectures: Option<Vec<String>>,
    /// `arch-=` / `Architectures-Remove:`: removed from apt's set.
    pub architectures_removed: Vec<String>,
    /// The sources file.
    pub source_file: PathBuf,
    /// The line (1-based) of the entry (a deb822 stanza's first line).
    pub line: usize,
}

/// The keys an APT repository is verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptKeyring {
    /// The keyring files `Signed-By` names (under the root).
    SignedBy(Vec<PathBuf>),
    /// The inline key of `Signed-By`, written to this file.
    Inline(PathBuf),
    /// No `Signed-By`: every keyring of `etc/apt/trusted.gpg.d` and
    /// `etc/apt/trusted.gpg` (possibly none).
    HostDefault(Vec<PathBuf>),
}

impl AptKeyring {
    /// The keyring files, in order.
    #[must_use]
    pub fn files(&self) -> &[PathBuf] {
        match self {
            AptKeyring::SignedBy(files) | AptKeyring::HostDefault(files) => files,
            AptKeyring::Inline(file) => std::slice::from_ref(file),
        }
    }
}

impl AptRepo {
    /// Whether it is a flat repository (suite ending in `/`, no component).
    #[must_use]
    pub fn is_flat(&self) -> bool {
        self.suite.ends_with('/')
    }

    /// Whether apt reads the indices of `arch` (the native architecture)
    /// from it.
    #[must_use]
    pub fn serves_arch(&self, arch: &str) -> bool {
        let listed = self
            .architectures
            .as_ref()
            .is_none_or(|only| only.iter().any(|a| a == arch));
        listed && !self.architectures_removed.iter().any(|a| a == arch)
    }

    /// Why upkeep must not read it: `trusted=yes` without a `Signed-By` key
    /// (apt reads it unverified, upkeep never does), or no key at all.
    #[must_use]
    pub fn refusal(&self) -> Option<String> {
        let AptKeyring::HostDefault(keys) = &self.keyring else {
            return None;
        };
        let what = format!(
            "{}:{}: {} {}",
            self.source_file.display(),
            self.line,
            display_url(&self.url),
            self.suite
        );
        if self.trusted {
            Some(format!(
                "{what}: trusted=yes without Signed-By: apt reads this repository unverified, upkeep verifies every repository; give the entry a Signed-By keyring"
            ))
        } else if keys.is_empty() {
            Some(format!(
                "{what}: no Signed-By and no key in etc/apt/trusted.gpg.d: nothing to verify the repository with; give the entry a Signed-By keyring"
            ))
        } else {
            None
        }
    }
}

/// A YUM/DNF repository from the host's `.repo` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YumRepo {
    /// The repository id (the section name).
    pub id: String,
    /// `name`, variables replaced; the id when absent.
    pub name: String,
    /// The `baseurl`s, variables replaced, in order; `http` or `https`, each
    /// path ending in `/`; never empty.
    pub baseurls: Vec<Url>,
    /// The `gpgkey` files (under the root), in order.
    pub keyring: Vec<PathBuf>,
    /// `gpgcheck`: dnf checks the packages' signatures.
    pub gpgcheck: bool,
    /// `repo_gpgcheck`: dnf checks the signature of `repomd.xml`.
    pub repo_gpgcheck: bool,
    /// The `.repo` file.
    pub source_file: PathBuf,
    /// The line (1-based) of the section header.
    pub line: usize,
}

impl YumRepo {
    /// Why upkeep must not read it: no `gpgkey` file to verify it with.
    #[must_use]
    pub fn refusal(&self) -> Option<String> {
        self.keyring.is_empty().then(|| {
            format!(
                "{}:{}: repository {:?}: no gpgkey file to verify it with; add gpgkey=file:///etc/pki/rpm-gpg/... to its section",
                self.source_file.display(),
                self.line,
                self.id
            )
        })
    }
}

/// The values dnf computes itself, which the caller passes (from
/// `/etc/os-release` or `rpm`); an empty value counts as unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YumVars {
    /// `$releasever` (such as `9` or `40`).
    pub releasever: String,
    /// `$arch` (such as `x86_64` or `i686`).
    pub arch: String,
    /// `$basearch` (such as `x86_64` or `i386`).
    pub basearch: String,
}

impl SystemRepos {
    /// The repositories, or one line saying there is none usable in `place`.
    fn usable(self, place: &str) -> anyhow::Result<SystemRepos> {
        if !self.repos.is_empty() {
            return Ok(self);
        }
        let skipped = self.notes.iter().filter(|n| n.skipped).count();
        let mut message = format!(
            "type = \"system\": no usable repository in {place} ({} disabled, {skipped} skipped)",
            self.disabled
        );
        if let Some(first) = self.notes.iter().find(|n| n.skipped) {
            message.push_str(&format!("; first skipped: {first}"));
        }
        bail!(message)
    }

    fn note(&mut self, file: &Path, line: usize, skipped: bool, message: String) {
        self.notes.push(Note {
            file: file.to_path_buf(),
            line,
            skipped,
            message,
        });
    }
}

/// `path` (absolute on the host) under `root`.
fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// The regular files of `dir` whose names are apt's (`A-Za-z0-9_.-`) and end
/// in one of `suffixes`, in name order; none when `dir` does not exist.
fn files_in(dir: &Path, suffixes: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if valid && suffixes.iter().any(|s| name.ends_with(s)) && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A URL without its password, for messages.
fn display_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// A URI as written, without the user information, for messages.
fn display_uri(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => uri.to_string(),
            }
        }
        None => uri.to_string(),
    }
}

/// The base URL of a repository, or why upkeep cannot read it (a note).
fn repo_url(uri: &str) -> Result<Url, String> {
    let scheme = uri.split_once(':').map_or("", |(s, _)| s);
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(format!(
            "{}: scheme {scheme:?} is not supported: upkeep reads http and https repositories",
            display_uri(uri)
        ));
    }
    let mut url = Url::parse(uri).map_err(|e| format!("{}: not a URL: {e}", display_uri(uri)))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{}: a repository URL has no query or fragment",
            display_uri(uri)
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

// ---------------------------------------------------------------- APT

/// The APT repositories of the host under `root`; inline `Signed-By` keys are
/// written to `key_dir` (created when missing).
///
/// # Errors
///
/// A malformed entry (naming the file and line), a file that cannot be read,
/// an inline key that cannot be written, or no usable repository at all.
pub fn read_apt(root: &Path, key_dir: &Path) -> anyhow::Result<SystemRepos> {
    let place = format!(
        "the host's apt sources ({}, {})",
        at(root, "/etc/apt/sources.list").display(),
        at(root, "/etc/apt/sources.list.d").display()
    );
    collect_apt(root, key_dir)?.usable(&place)
}

/// [`read_apt`] without the check that something is usable.
fn collect_apt(root: &Path, key_dir: &Path) -> anyhow::Result<SystemRepos> {
    let mut files = Vec::new();
    let main = at(root, "/etc/apt/sources.list");
    if main.is_file() {
        files.push(main);
    }
    files.extend(files_in(
        &at(root, "/etc/apt/sources.list.d"),
        &[".list", ".sources"],
    )?);
    let mut default_keys = files_in(&at(root, "/etc/apt/trusted.gpg.d"), &[".gpg", ".asc"])?;
    let legacy = at(root, "/etc/apt/trusted.gpg");
    if legacy.is_file() {
        default_keys.push(legacy);
    }
    let context = AptContext {
        root,
        key_dir,
        default_keys,
    };
    let mut out = SystemRepos::default();
    for file in files {
        let text = read_text(&file)?;
        let entries = if file.extension().is_some_and(|e| e == "sources") {
            parse_deb822(&file, &text)?
        } else {
            parse_one_line(&file, &text)?
        };
        for entry in entries {
            context.expand(&file, entry, &mut out)?;
        }
    }
    Ok(out)
}

struct AptContext<'a> {
    root: &'a Path,
    key_dir: &'a Path,
    default_keys: Vec<PathBuf>,
}

/// One source entry (a one-line entry or a deb822 stanza), before checks.
#[derive(Debug, Default)]
struct AptEntry {
    line: usize,
    types: Vec<String>,
    uris: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    enabled: bool,
    signed_by: Option<SignedBy>,
    trusted: bool,
    architectures: Option<Vec<String>>,
    architectures_removed: Vec<String>,
}

#[derive(Debug)]
enum SignedBy {
    /// Paths and fingerprints.
    List(Vec<String>),
    /// An armored key block, its blank lines restored.
    Inline(String),
}

impl AptContext<'_> {
    fn expand(&self, file: &Path, entry: AptEntry, out: &mut SystemRepos) -> anyhow::Result<()> {
        if !entry.enabled {
            out.disabled += 1;
            return Ok(());
        }
        let line = entry.line;
        let malformed =
            |what: String| anyhow!("{}:{line}: malformed entry: {what}", file.display());
        if entry.uris.is_empty() {
            return Err(malformed("no URI".into()));
        }
        if entry.suites.is_empty() {
            return Err(malformed("no suite".into()));
        }
        for suite in &entry.suites {
            if suite.ends_with('/') && !entry.components.is_empty() {
                return Err(malformed(format!(
                    "suite {suite:?} ends in '/' (a flat repository), which takes no component"
                )));
            }
            if !suite.ends_with('/') && entry.components.is_empty() {
                return Err(malformed(format!(
                    "suite {suite:?} needs a component (or a '/' at its end for a flat repository)"
                )));
            }
        }
        if !entry.types.iter().any(|t| t == "deb") {
            return Ok(());
        }
        let uses_arch_variable = entry
            .uris
            .iter()
            .chain(&entry.suites)
            .chain(&entry.components)
            .any(|w| w.contains("$(ARCH)"));
        if uses_arch_variable {
            out.note(
                file,
                line,
                true,
                "skipped: uses $(ARCH), which upkeep does not replace; write the architecture"
                    .into(),
            );
            return Ok(());
        }
        let keyring = match entry.signed_by {
            None => AptKeyring::HostDefault(self.default_keys.clone()),
            Some(SignedBy::List(values)) => {
                let fingerprints: Vec<&String> =
                    values.iter().filter(|v| !v.starts_with('/')).collect();
                if !fingerprints.is_empty() {
                    out.note(
                        file,
                        line,
                        true,
                        format!(
                            "skipped: Signed-By names key fingerprints ({}), which upkeep does not select keys by; name the keyring file instead",
                            fingerprints
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    return Ok(());
                }
                AptKeyring::SignedBy(values.iter().map(|p| at(self.root, p)).collect())
            }
            Some(SignedBy::Inline(armored)) => AptKeyring::Inline(
                write_inline_key(self.key_dir, &armored)
                    .with_context(|| format!("{}:{line}: inline Signed-By key", file.display()))?,
            ),
        };
        for uri in &entry.uris {
            let url = match repo_url(uri) {
                Ok(url) => url,
                Err(reason) => {
                    out.note(file, line, true, format!("skipped: {reason}"));
                    continue;
                }
            };
            for suite in &entry.suites {
                out.repos.push(SystemRepo::Apt(AptRepo {
                    url: url.clone(),
                    suite: suite.clone(),
                    components: entry.components.clone(),
                    keyring: keyring.clone(),
                    trusted: entry.trusted,
                    architectures: entry.architectures.clone(),
                    architectures_removed: entry.architectures_removed.clone(),
                    source_file: file.to_path_buf(),
                    line,
                }));
            }
        }
        Ok(())
    }
}

/// Writes an armored key to `key_dir/<sha256>.asc` (mode 0644) unless it is
/// there already, and returns that path.
fn write_inline_key(key_dir: &Path, armored: &str) -> anyhow::Result<PathBuf> {
    let digest = hex::encode(Sha256::digest(armored.as_bytes()));
    let path = key_dir.join(format!("{digest}.asc"));
    let present = std::fs::read(&path).is_ok_and(|data| data == armored.as_bytes());
    if !present {
        std::fs::create_dir_all(key_dir)
            .with_context(|| format!("{}: cannot create", key_dir.display()))?;
        write_atomic(&path, armored.as_bytes())?;
    }
    let mode = std::fs::metadata(&path)
        .with_context(|| format!("{}: cannot stat", path.display()))?
        .permissions()
        .mode();
    if mode & 0o7777 != 0o644 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("{}: permissions", path.display()))?;
    }
    Ok(path)
}

/// apt's booleans.
fn apt_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "with" | "on" | "enable" | "1" => Some(true),
        "no" | "false" | "without" | "off" | "disable" | "0" => Some(false),
        _ => None,
    }
}

/// Values separated by spaces or commas.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A one-line sources file (`sources.list`, `*.list`).
fn parse_one_line(file: &Path, text: &str) -> anyhow::Result<Vec<AptEntry>> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = strip_list_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let entry = parse_list_line(content, line)
            .map_err(|e| anyhow!("{}:{line}: malformed entry: {e}", file.display()))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// The line without its comment: from a `#` that is not inside `[...]`, as
/// apt cuts it.
fn strip_list_comment(line: &str) -> &str {
    let mut depth: i64 = 0;
    for (i, c) in line.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '#' if depth <= 0 => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_list_line(content: &str, line: usize) -> Result<AptEntry, String> {
    let (kind, rest) = content
        .split_once([' ', '\t'])
        .ok_or("a type, a URI and a suite are needed")?;
    if kind != "deb" && kind != "deb-src" {
        return Err(format!("type {kind:?} is not known (deb or deb-src)"));
    }
    let mut entry = AptEntry {
        line,
        types: vec![kind.to_string()],
        enabled: true,
        ..AptEntry::default()
    };
    let mut rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('[') {
        let end = inner.find(']').ok_or("the options' '[' has no ']'")?;
        for option in inner[..end].split_whitespace() {
            list_option(option, &mut entry)?;
        }
        rest = &inner[end + 1..];
    }
    let mut words = quote_words(rest)?.into_iter();
    entry.uris.push(words.next().ok_or("no URI")?);
    entry.suites.push(words.next().ok_or("no suite")?);
    entry.components = words.collect();
    Ok(entry)
}

fn list_option(option: &str, entry: &mut AptEntry) -> Result<(), String> {
    let (key, value) = option
        .split_once('=')
        .ok_or_else(|| format!("option {option:?} is not key=value"))?;
    if key.is_empty() || value.is_empty() {
        return Err(format!("option {option:?} needs a key and a value"));
    }
    match key {
        "arch" => entry.architectures = Some(split_list(value)),
        "arch-" => entry.architectures_removed.extend(split_list(value)),
        "signed-by" => entry.signed_by = Some(SignedBy::List(split_list(value))),
        "trusted" => {
            entry.trusted =
                apt_bool(value).ok_or_else(|| format!("trusted={value}: not yes or no"))?;
        }
        // arch+= adds to apt's default set, which holds the native
        // architecture already; the rest does not change what is read.
        _ => {}
    }
    Ok(())
}

/// Words separated by blanks, where `[...]` and `"..."` group (the quotes
/// are removed), as apt's ParseQuoteWord.
fn quote_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut bracket = false;
    for c in text.chars() {
        match c {
            '"' if !bracket => quoted = !quoted,
            '[' if !quoted => {
                bracket = true;
                word.push(c);
            }
            ']' if !quoted => {
                bracket = false;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted && !bracket => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if quoted || bracket {
        return Err("a '\"' or '[' is not closed".into());
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

/// A stanza of a deb822 file: its lines with their numbers.
struct Stanza<'a> {
    lines: Vec<(usize, &'a str)>,
}

/// Splits a deb822 file into stanzas: a line of only blanks separates them.
fn stanzas(text: &str) -> Vec<Stanza<'_>> {
    let mut stanzas = Vec::new();
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            if !lines.is_empty() {
                stanzas.push(Stanza {
                    lines: std::mem::take(&mut lines),
                });
            }
        } else {
            lines.push((index + 1, raw));
        }
    }
    if !lines.is_empty() {
        stanzas.push(Stanza { lines });
    }
    stanzas
}

/// A deb822 sources file (`*.sources`).
fn parse_deb822(file: &Path, text: &str) -> anyhow::Result<Vec<AptEntry>> {
    let mut entries = Vec::new();
    for stanza in stanzas(text) {
        if let Some(entry) = parse_stanza(file, &stanza)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

fn parse_stanza(file: &Path, stanza: &Stanza<'_>) -> anyhow::Result<Option<AptEntry>> {
    // The stanza's line: its first that is not a comment.
    let first = stanza
        .lines
        .iter()
        .find(|(_, l)| !l.starts_with('#'))
        .map_or(0, |(n, _)| *n);
    let mut field_lines: BTreeMap<String, usize> = BTreeMap::new();
    for (n, l) in &stanza.lines {
        if l.starts_with([' ', '\t', '#']) {
            continue;
        }
        if let Some((name, _)) = l.split_once(':') {
            // deb822(5): a field name has no blank (`URIs http://...` is
            // not the field URIs).
            if name.is_empty() || name.contains(char::is_whitespace) {
                bail!(
                    "{}:{n}: malformed stanza: {:?} is not a \"Field: value\" line",
                    file.display(),
                    l.trim()
                );
            }
            let name = name.to_ascii_lowercase();
            if let Some(earlier) = field_lines.insert(name, *n) {
                bail!(
                    "{}:{n}: malformed stanza: field {:?} given again (first on line {earlier})",
                    file.display(),
                    l.split_once(':').map_or("", |(name, _)| name.trim())
                );
            }
        }
    }
    let text: String = stanza
        .lines
        .iter()
        .map(|(_, l)| format!("{}\n", l.trim_end_matches('\r')))
        .collect();
    let paragraphs = deb822_fast::borrowed::parse_borrowed(&text).map_err(|e| {
        let line = match &e {
            deb822_fast::Error::UnexpectedToken(token) => stanza
                .lines
                .iter()
                .find(|(_, l)| l.trim() == token.trim())
                .map_or(first, |(n, _)| *n),
            _ => first,
        };
        anyhow!("{}:{line}: malformed stanza: {e}", file.display())
    })?;
    let paragraph = match paragraphs.as_slice() {
        [] => return Ok(None), // comments only
        [one] => one,
        _ => bail!(
            "{}:{first}: malformed stanza: read as several",
            file.display()
        ),
    };
    let line_of = |field: &str| field_lines.get(field).copied().unwrap_or(first);
    let error = |field: &str, what: String| {
        anyhow!(
            "{}:{}: malformed stanza: {what}",
            file.display(),
            line_of(field)
        )
    };
    let words = |field: &str| -> Vec<String> {
        paragraph.get(field).map_or_else(Vec::new, |lines| {
            lines
                .iter()
                .flat_map(|l| l.split_whitespace())
                .map(str::to_string)
                .collect()
        })
    };
    let boolean = |field: &str| -> anyhow::Result<Option<bool>> {
        match paragraph.get(field) {
            None => Ok(None),
            Some(lines) => {
                let value = lines.join(" ");
                apt_bool(value.trim()).map(Some).ok_or_else(|| {
                    error(
                        &field.to_ascii_lowercase(),
                        format!("{field}: {value:?} is not yes or no"),
                    )
                })
            }
        }
    };

    if paragraph.get("Types").is_none() {
        return Err(error("", "no Types field".into()));
    }
    let types = words("Types");
    if let Some(unknown) = types.iter().find(|t| *t != "deb" && *t != "deb-src") {
        return Err(error(
            "types",
            format!("type {unknown:?} is not known (deb or deb-src)"),
        ));
    }
    let enabled = boolean("Enabled")?.unwrap_or(true);
    let mut entry = AptEntry {
        line: first,
        types,
        enabled,
        ..AptEntry::default()
    };
    if !enabled {
        return Ok(Some(entry));
    }
    entry.uris = words("URIs");
    if entry.uris.is_empty() {
        return Err(error("", "no URIs".into()));
    }
    entry.suites = words("Suites");
    if entry.suites.is_empty() {
        return Err(error("", "no Suites".into()));
    }
    entry.components = words("Components");
    entry.trusted = boolean("Trusted")?.unwrap_or(false);
    if paragraph.get("Architectures").is_some() {
        entry.architectures = Some(words("Architectures"));
    }
    entry.architectures_removed = words("Architectures-Remove");
    if let Some(lines) = paragraph.get("Signed-By") {
        entry.signed_by = Some(if lines.iter().any(|l| l.contains(ARMOR_BEGIN)) {
            SignedBy::Inline(inline_key(lines).map_err(|e| error("signed-by", e))?)
        } else {
            SignedBy::List(lines.iter().flat_map(|l| split_list(l)).collect())
        });
    }
    Ok(Some(entry))
}

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// The armored key of a multi-line `Signed-By`, from the value's lines (as
/// `deb822-fast` gives them: without their leading blanks), with each `.`
/// line turned back into the blank line it stands for.
fn inline_key(lines: &[&str]) -> Result<String, String> {
    let mut body: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    if body.first() == Some(&"") {
        body.remove(0);
    }
    if body.first() != Some(&ARMOR_BEGIN) || body.last() != Some(&ARMOR_END) {
        return Err(format!(
            "Signed-By: an inline key must be one armored block, from {ARMOR_BEGIN} to {ARMOR_END}"
        ));
    }
    let mut armored = String::new();
    for l in body {
        armored.push_str(if l == "." { "" } else { l });
        armored.push('\n');
    }
    Ok(armored)
}

// ---------------------------------------------------------------- YUM

/// The YUM/DNF repositories of the host under `root`, variables replaced by
/// `vars` and the host's variable files.
///
/// # Errors
///
/// A malformed line (naming the file and line), a file that cannot be read,
/// or no usable repository at all.
pub fn read_yum(root: &Path, vars: &YumVars) -> anyhow::Result<SystemRepos> {
    let place = format!(
        "the host's dnf/yum repositories ({})",
        at(root, "/etc/yum.repos.d").display()
    );
    collect_yum(root, vars)?.usable(&place)
}

/// [`read_yum`] without the check that something is usable.
fn collect_yum(root: &Path, vars: &YumVars) -> anyhow::Result<SystemRepos> {
    let vars = yum_variables(root, vars)?;
    let mut defaults = YumDefaults::default();
    let mut files = Vec::new();
    let conf = [at(root, "/etc/dnf/dnf.conf"), at(root, "/etc/yum.conf")]
        .into_iter()
        .find(|p| p.is_file());
    if let Some(conf) = conf {
        let sections = parse_ini(&conf, &read_text(&conf)?)?;
        for main in sections.iter().filter(|s| s.name == "main") {
            defaults.gpgcheck = main
                .bool("gpgcheck", &conf)?
                .or(main.bool("pkg_gpgcheck", &conf)?)
                .unwrap_or(defaults.gpgcheck);
            defaults.repo_gpgcheck = main
                .bool("repo_gpgcheck", &conf)?
                .unwrap_or(defaults.repo_gpgcheck);
        }
        files.push((conf, sections));
    }
    for file in files_in(&at(root, "/etc/yum.repos.d"), &[".repo"])? {
        let sections = parse_ini(&file, &read_text(&file)?)?;
        files.push((file, sections));
    }
    let mut out = SystemRepos::default();
    let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for (file, sections) in &files {
        for section in sections.iter().filter(|s| s.name != "main") {
            if let Some((first_file, first_line)) = seen.get(&section.name) {
                out.note(
                    file,
                    section.line,
                    true,
                    format!(
                        "repository {:?} skipped: defined already at {}:{first_line}, which dnf uses",
                        section.name,
                        first_file.display()
                    ),
                );
                continue;
            }
            seen.insert(section.name.clone(), (file.clone(), section.line));
            yum_repo(root, file, section, &vars, &defaults, &mut out)?;
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct YumDefaults {
    gpgcheck: bool,
    repo_gpgcheck: bool,
}

/// The variables: the caller's, then those of the host's variable files.
fn yum_variables(root: &Path, given: &YumVars) -> anyhow::Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (name, value) in [
        ("releasever", &given.releasever),
        ("arch", &given.arch),
        ("basearch", &given.basearch),
    ] {
        if !value.is_empty() {
            vars.insert(name.to_string(), value.clone());
        }
    }
    for dir in ["/etc/dnf/vars", "/etc/yum/vars"] {
        let dir = at(root, dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let text = read_text(&path)?;
            let value = text.lines().next().unwrap_or("").trim_end().to_string();
            vars.insert(name.to_string(), value);
        }
    }
    if let Some(release) = vars.get("releasever").cloned() {
        let (major, minor) = release.split_once('.').unwrap_or((&release, ""));
        vars.entry("releasever_major".into())
            .or_insert_with(|| major.to_string());
        vars.entry("releasever_minor".into())
            .or_insert_with(|| minor.to_string());
    }
    Ok(vars)
}

fn yum_repo(
    root: &Path,
    file: &Path,
    section: &IniSection,
    vars: &BTreeMap<String, String>,
    defaults: &YumDefaults,
    out: &mut SystemRepos,
) -> anyhow::Result<()> {
    let id = &section.name;
    let line = section.line;
    let valid_id = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !valid_id {
        out.note(
            file,
            line,
            true,
            format!("repository {id:?} skipped: dnf allows only A-Z a-z 0-9 - _ . : in an id"),
        );
        return Ok(());
    }
    if !section.bool("enabled", file)?.unwrap_or(true) {
        out.disabled += 1;
        return Ok(());
    }
    let gpgcheck = section
        .bool("gpgcheck", file)?
        .or(section.bool("pkg_gpgcheck", file)?)
        .unwrap_or(defaults.gpgcheck);
    let repo_gpgcheck = section
        .bool("repo_gpgcheck", file)?
        .unwrap_or(defaults.repo_gpgcheck);
    let name = section
        .get("name")
        .map_or_else(|| id.clone(), |v| substitute(&v.value, vars).0);

    let mut baseurls = Vec::new();
    let mut dropped = Vec::new();
    for raw in section
        .get("baseurl")
        .map_or_else(Vec::new, |v| split_list(&v.value))
    {
        match yum_url(&raw, vars) {
            Ok(url) => baseurls.push(url),
            Err(reason) => dropped.push(reason),
        }
    }
    if baseurls.is_empty() {
        let reason = if !dropped.is_empty() {
            dropped.join("; ")
        } else if let Some(kind) = ["metalink", "mirrorlist"]
            .into_iter()
            .find(|k| section.get(k).is_some())
        {
            format!("it has a {kind} and no baseurl: upkeep reads no {kind}; give it a baseurl")
        } else {
            "no baseurl".to_string()
        };
        out.note(
            file,
            line,
            true,
            format!("repository {id:?} skipped: {reason}"),
        );
        return Ok(());
    }
    for reason in dropped {
        out.note(
            file,
            line,
            false,
            format!("repository {id:?}: baseurl ignored: {reason}"),
        );
    }

    let mut keyring = Vec::new();
    for raw in section
        .get("gpgkey")
        .map_or_else(Vec::new, |v| split_list(&v.value))
    {
        match key_path(root, &raw, vars) {
            Ok(path) => keyring.push(path),
            Err(reason) => out.note(
                file,
                line,
                false,
                format!("repository {id:?}: gpgkey ignored: {reason}"),
            ),
        }
    }
    out.repos.push(SystemRepo::Yum(YumRepo {
        id: id.clone(),
        name,
        baseurls,
        keyring,
        gpgcheck,
        repo_gpgcheck,
        source_file: file.to_path_buf(),
        line,
    }));
    Ok(())
}

/// A `baseurl`, variables replaced, or why it is not used.
fn yum_url(raw: &str, vars: &BTreeMap<String, String>) -> Result<Url, String> {
    let (text, unknown) = substitute(raw, vars);
    if !unknown.is_empty() {
        return Err(format!(
            "{}: no value for ${}",
            display_uri(raw),
            unknown.join(", $")
        ));
    }
    repo_url(&text)
}

/// A `gpgkey` file under `root`, or why it is not used.
fn key_path(root: &Path, raw: &str, vars: &BTreeMap<String, String>) -> Result<PathBuf, String> {
    let (text, unknown) = substitute(raw, vars);
    if !unknown.is_empty() {
        return Err(format!("{raw}: no value for ${}", unknown.join(", $")));
    }
    if text.starts_with('/') {
        return Ok(at(root, &text));
    }
    let url = Url::parse(&text).map_err(|e| format!("{}: not a URL: {e}", display_uri(&text)))?;
    if url.scheme() != "file" {
        return Err(format!(
            "{}: upkeep reads keys from files only (file://), never over the network; save the key and point gpgkey at it",
            display_uri(&text)
        ));
    }
    let path = url
        .to_file_path()
        .map_err(|()| format!("{text}: not a local file path"))?;
    Ok(at(root, &path.to_string_lossy()))
}

/// Replaces dnf variables in `text`; returns the result and the names of the
/// variables that have no value (left as written, as libdnf does).
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut unknown = Vec::new();
    let mut expander = Expander {
        text,
        pos: 0,
        vars,
        unknown: &mut unknown,
    };
    let out = expander.expand(0).unwrap_or_else(|| text.to_string());
    let mut seen = HashSet::new();
    unknown.retain(|name| seen.insert(name.clone()));
    (out, unknown)
}

/// Deepest `${a:-${b:-...}}` nesting expanded (libdnf's limit).
const MAX_DEPTH: usize = 32;

struct Expander<'a> {
    text: &'a str,
    pos: usize,
    vars: &'a BTreeMap<String, String>,
    unknown: &'a mut Vec<String>,
}

impl Expander<'_> {
    /// Expands from `pos` to the end or, at `depth > 0`, to the `}` that
    /// closes the enclosing `${name:-...}` (left at `pos`); `None` when such
    /// a `}` is missing.
    fn expand(&mut self, depth: usize) -> Option<String> {
        let mut out = String::new();
        while let Some(c) = self.text[self.pos..].chars().next() {
            match c {
                '}' if depth > 0 => return Some(out),
                '\\' => {
                    self.pos += 1;
                    if let Some(next) = self.text[self.pos..].chars().next() {
                        out.push(next);
                        self.pos += next.len_utf8();
                    } else {
                        out.push('\\');
                    }
                }
                '$' => out.push_str(&self.variable(depth)),
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        (depth == 0).then_some(out)
    }

    /// The expansion of the `$...` at `pos`; moves past it.
    fn variable(&mut self, depth: usize) -> String {
        let start = self.pos;
        let rest = &self.text[start + 1..];
        let braces = rest.starts_with('{');
        let name_start = start + 1 + usize::from(braces);
        let name_len = self.text[name_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = &self.text[name_start..name_start + name_len];
        let after = name_start + name_len;
        let value = self.vars.get(name).cloned();
        if name.is_empty() {
            self.pos = start + 1;
            return "$".into();
        }
        if !braces {
            self.pos = after;
            return value.unwrap_or_else(|| {
                self.unknown.push(name.to_string());
                self.text[start..after].to_string()
            });
        }
        let tail = &self.text[after..];
        if tail.starts_with('}') {
            self.pos = after + 1;
            return value.unwrap_or_else(|| {
                self.unknown.push(name.to_string());
                self.text[start..after + 1].to_string()
            });
        }
        let mode = tail.strip_prefix(':').and_then(|t| t.chars().next());
        if !matches!(mode, Some('-' | '+')) || depth >= MAX_DEPTH {
            // Not a variable expression: kept as written.
            self.pos = after;
            return self.text[start..after].to_string();
        }
        self.pos = after + 2;
        let word = self.expand(depth + 1);
        if word.is_none() || !self.text[self.pos..].starts_with('}') {
            // No closing brace: the rest is kept as written.
            self.pos = self.text.len();
            return self.text[start..].to_string();
        }
        self.pos += 1;
        let word = word.unwrap_or_default();
        let set = value.as_deref().is_some_and(|v| !v.is_empty());
        match (mode, set) {
            // ${name:-word}: the value, or the word when unset or empty.
            (Some('-'), true) => value.unwrap_or_default(),
            (Some('-'), false) => word,
            // ${name:+word}: the word when set and not empty, else nothing.
            (_, true) => word,
            (_, false) => String::new(),
        }
    }
}

/// One `[section]` of an INI file.
#[derive(Debug)]
struct IniSection {
    name: String,
    line: usize,
    values: Vec<IniValue>,
}

#[derive(Debug)]
struct IniValue {
    key: String,
    value: String,
    line: usize,
}

impl IniSection {
    /// The last value of `key`.
    fn get(&self, key: &str) -> Option<&IniValue> {
        self.values.iter().rev().find(|v| v.key == key)
    }

    /// A boolean value; an error names the file and line.
    fn bool(&self, key: &str, file: &Path) -> anyhow::Result<Option<bool>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.value.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(Some(true)),
            "0" | "no" | "false" | "off" => Ok(Some(false)),
            _ => bail!(
                "{}:{}: {key}={}: not a boolean (1 or 0, yes or no, true or false, on or off)",
                file.display(),
                v.line,
                v.value
            ),
        }
    }
}

/// Reads dnf's INI dialect (libdnf's IniParser).
fn parse_ini(file: &Path, text: &str) -> anyhow::Result<Vec<IniSection>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<IniSection> = Vec::new();
    let mut in_value = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |what: &str| anyhow!("{}:{line}: {what}", file.display());
        if raw.starts_with(['#', ';']) {
            continue;
        }
        let content = raw.trim_matches([' ', '\t', '\r']);
        if content.is_empty() {
            continue;
        }
        if let Some(header) = content.strip_prefix('[') {
            let end = header.find(']').ok_or_else(|| error("missing ']'"))?;
            let name = &header[..end];
            if name.is_empty() {
                return Err(error("empty section name"));
            }
            let after = header[end + 1..].trim_start();
            if !(after.is_empty() || after.starts_with(['#', ';'])) {
                return Err(error("text after the section name"));
            }
            sections.push(IniSection {
                name: name.to_string(),
                line,
                values: Vec::new(),
            });
            in_value = false;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(error(
                "a key before any [section] (a .repo file starts with [repository-id])",
            ));
        };
        if raw.starts_with([' ', '\t']) {
            match section.values.last_mut() {
                Some(last) if in_value => {
                    last.value.push('\n');
                    last.value.push_str(content);
                }
                _ => return Err(error("an indented line continues no key=value")),
            }
            continue;
        }
        let (key, value) = content
            .split_once('=')
            .ok_or_else(|| error("missing '=' (a line is key=value)"))?;
        let key = key.trim_end_matches([' ', '\t']);
        if key.is_empty() {
            return Err(error("missing key before '='"));
        }
        section.values.push(IniValue {
            key: key.to_string(),
            value: value.trim_start_matches([' ', '\t']).to_string(),
            line,
        });
        in_value = true;
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary root with files written into it.
    struct Root {
        dir: tempfile::TempDir,
    }

    impl Root {
        fn new() -> Root {
            Root {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn keys(&self) -> PathBuf {
            self.dir.path().join("var/lib/upkeep/keys")
        }

        fn write(&self, path: &str, text: &str) -> PathBuf {
            let path = at(self.path(), path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }

        fn apt(&self) -> SystemRepos {
            collect_apt(self.path(), &self.keys()).unwrap()
        }

        fn apt_error(&self) -> String {
            format!("{:#}", read_apt(self.path(), &self.keys()).unwrap_err())
        }

        fn yum(&self) -> SystemRepos {
            collect_yum(self.path(), &vars()).unwrap()
        }

        fn yum_error(&self) -> String {
            format!("{:#}", read_yum(self.path(), &vars()).unwrap_err())
        }
    }

    fn vars() -> YumVars {
        YumVars {
            releasever: "9.4".into(),
            arch: "x86_64".into(),
            basearch: "x86_64".into(),
        }
    }

    fn apt_repos(found: &SystemRepos) -> Vec<&AptRepo> {
        found
            .repos
            .iter()
            .map(|r| match r {
                SystemRepo::Apt(r) => r,
                SystemRepo::Yum(r) => panic!("not apt: {r:?}"),
            })
            .collect()
    }

    fn yum_repos(found: &SystemRepos) -> Vec<&YumRepo> {
        found
            .repos
            .iter()
            .map(|r| match r {
                SystemRepo::Yum(r) => r,
                SystemRepo::Apt(r) => panic!("not yum: {r:?}"),
            })
            .collect()
    }

    /// url, suite, components of each repository.
    fn coordinates(found: &SystemRepos) -> Vec<(String, String, Vec<String>)> {
        apt_repos(found)
            .iter()
            .map(|r| (r.url.to_string(), r.suite.clone(), r.components.clone()))
            .collect()
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    const DEBIAN_SOURCES: &str = "\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn debian_12_sources_give_one_repository_per_uri_and_suite() {
        let root = Root::new();
        let file = root.write("/etc/apt/sources.list.d/debian.sources", DEBIAN_SOURCES);
        let found = root.apt();
        assert_eq!(
            coordinates(&found),
            [
                ("http://mirror.example/debian/", "bookworm"),
                ("http://mirror.example/debian/", "bookworm-updates"),
                (
                    "http://mirror.example/debian-security/",
                    "bookworm-security"
                ),
            ]
            .map(|(u, s)| (u.to_string(), s.to_string(), strings(&["main"])))
        );
        let keyring = root
            .path()
            .join("usr/share/keyrings/debian-archive-keyring.gpg");
        let repos = apt_repos(&found);
        for r in &repos {
            assert_eq!(r.keyring, AptKeyring::SignedBy(vec![keyring.clone()]));
            assert!(!r.trusted && !r.is_flat() && r.refusal().is_none());
            assert_eq!(r.source_file, file);
            assert!(r.serves_arch("amd64"));
        }
        assert_eq!(repos.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 1, 7]);
        assert!(found.notes.is_empty() && found.disabled == 0);
    }

    #[test]
    fn one_line_entries_with_options_flat_repos_comments_and_deb_src() {
        let root = Root::new();
        let file = root.write(
            "/etc/apt/sources.list",
            "# a comment\n\
             \n\
             deb-src http://mirror.example/debian bookworm main\n\
             deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg,/etc/apt/keyrings/y.asc] https://repo.example/apt stable main contrib # trailing comment\n\
             \tdeb   [ arch-=i386 arch+=riscv64 lang=none ]   http://repo.example/more   trixie   main\r\n\
             deb [signed-by=/usr/share/keyrings/x.gpg] http://repo.example/flat ./\n\
             deb http://repo.example/sub dists/tools/\n\
             deb [trusted=yes] http://repo.example/plain bookworm main\n",
        );
        root.write("/etc/apt/trusted.gpg.d/debian.gpg", "k");
        let found = root.apt();
        let repos = apt_repos(&found);
        assert_eq!(
            coordinates(&found),
            vec![
                (
                    "https://repo.example/apt/".into(),
                    "stable".into(),
                    strings(&["main", "contrib"])
                ),
                (
                    "http://repo.example/more/".into(),
                    "trixie".into(),
                    strings(&["main"])
                ),
                ("http://repo.example/flat/".into(), "./".into(), vec![]),
                (
                    "http://repo.example/sub/".into(),
                    "dists/tools/".into(),
                    vec![]
                ),
                (
                    "http://repo.example/plain/".into(),
                    "bookworm".into(),
                    strings(&["main"])
                ),
            ]
        );
        assert_eq!(
            repos.iter().map(|r| r.line).collect::<Vec<_>>(),
            [4, 5, 6, 7, 8]
        );
        assert!(repos.iter().all(|r| r.source_file == file));

        let signed = repos[0];
        assert_eq!(
            signed.keyring,
            AptKeyring::SignedBy(vec![
                root.path().join("usr/share/keyrings/x.gpg"),
                root.path().join("etc/apt/keyrings/y.asc"),
            ])
        );
        assert_eq!(signed.architectures, Some(strings(&["amd64", "arm64"])));
        assert!(signed.serves_arch("arm64") && !signed.serves_arch("i386"));

        // arch-= is kept, arch+= (which adds to the default set) is not.
        let more = repos[1];
        assert_eq!(more.architectures, None);
        assert_eq!(more.architectures_removed, strings(&["i386"]));
        assert!(more.serves_arch("amd64") && !more.serves_arch("i386"));
        assert_eq!(
            more.keyring,
            AptKeyring::HostDefault(vec![root.path().join("etc/apt/trusted.gpg.d/debian.gpg")])
        );
        assert!(more.refusal().is_none());

        assert!(repos[2].is_flat() && repos[3].is_flat());

        // trusted=yes without Signed-By: returned, marked, refused by name.
        let plain = repos[4];
        assert!(plain.trusted);
        let refusal = SystemRepo::Apt(plain.clone()).refusal().unwrap();
        assert!(
            refusal.starts_with(&format!(
                "{}:8: http://repo.example/plain/ bookworm: trusted=yes without Signed-By",
                file.display()
            )),
            "{refusal}"
        );
        assert!(found.notes.is_empty());
    }

    #[test]
    fn without_signed_by_apt_trusts_the_host_keyrings() {
        let root = Root::new();
        root.write(
            "/etc/apt/sources.list",
            "deb http://mirror.example/debian bookworm main\n",
        );
        for name in ["b.asc", "a.gpg", "notes.txt", "c.gpg~", "bad name.gpg"] {
            root.write(&format!("/etc/apt/trusted.gpg.d/{name}"), "k");
        }
        root.write("/etc/apt/trusted.gpg", "k");
        let found = root.apt();
        assert_eq!(
            apt_repos(&found)[0].keyring,
            AptKeyring::HostDefault(vec![
                root.path().join("etc/apt/trusted.gpg.d/a.gpg"),
                root.path().join("etc/apt/trusted.gpg.d/b.asc"),
                root.path().join("etc/apt/trusted.gpg"),
            ])
        );

        // No key anywhere: nothing to verify with, refused.
        let bare = Root::new();
        bare.write(
            "/etc/apt/sources.list",
            "deb http://mirror.example/debian bookworm main\n",
        );
        let found = bare.apt();
        let refusal = found.repos[0].refusal().unwrap();
        assert!(refusal.contains("no Signed-By and no key"), "{refusal}");
    }

    /// An armored block as it stands in a `.sources` file: indented, its
    /// blank line written `.`.
    const INLINE_SOURCES: &str = "\
Types: deb
URIs: https://repo.example/vendor
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 Comment: vendor key
 .
 mDMEZRXqZBYJKwYBBAHaRw8BAQdAuVHpDnmb0lPRnrvFHiTo1Itb3D5YvlCJBR9V
 dGVzdCBrZXkgZm9yIHVwa2VlcA==
 =AbCd
 -----END PGP PUBLIC KEY BLOCK-----
Architectures: amd64
";

    const INLINE_ARMORED: &str = "\
-----BEGIN PGP PUBLIC KEY BLOCK-----
Comment: vendor key

mDMEZRXqZBYJKwYBBAHaRw8BAQdAuVHpDnmb0lPRnrvFHiTo1Itb3D5YvlCJBR9V
dGVzdCBrZXkgZm9yIHVwa2VlcA==
=AbCd
-----END PGP PUBLIC KEY BLOCK-----
";

    #[test]
    fn an_inline_key_is_written_under_its_sha256_mode_0644() {
        let root = Root::new();
        root.write("/etc/apt/sources.list.d/vendor.sources", INLINE_SOURCES);
        let found = root.apt();
        let repo = apt_repos(&found)[0].clone();
        let expected = root.keys().join(format!(
            "{}.asc",
            hex::encode(Sha256::digest(INLINE_ARMORED.as_bytes()))
        ));
        assert_eq!(repo.keyring, AptKeyring::Inline(expected.clone()));
        assert_eq!(repo.keyring.files(), std::slice::from_ref(&expected));
        assert_eq!(std::fs::read_to_string(&expected).unwrap(), INLINE_ARMORED);
        let mode = std::fs::metadata(&expected).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o644);
        assert_eq!(repo.architectures, Some(strings(&["amd64"])));
        assert!(repo.refusal().is_none());

        // Read again: the same file, its mode put back.
        std::fs::set_permissions(&expected, std::fs::Permissions::from_mode(0o600)).unwrap();
        let again = root.apt();
        assert_eq!(
            apt_repos(&again)[0].keyring,
            AptKeyring::Inline(expected.clone())
        );
        let mode = std::fs::metadata(&expected).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o644);
        assert_eq!(std::fs::read_dir(root.keys()).unwrap().count(), 1);
    }

    #[test]
    fn deb822_fast_keeps_dot_lines_which_become_blank_lines_of_the_key() {
        // What the crate gives for the field: the lines without their
        // leading space, the `.` kept as written.
        let paragraphs = deb822_fast::borrowed::parse_borrowed(INLINE_SOURCES).unwrap();
        let lines = paragraphs[0].get("Signed-By").unwrap();
        assert_eq!(lines[0], "");
        assert_eq!(lines[1], ARMOR_BEGIN);
        assert_eq!(lines[3], ".");
        assert_eq!(inline_key(lines).unwrap(), INLINE_ARMORED);
        assert!(inline_key(&["", ARMOR_BEGIN, "abc"]).is_err());
    }

    #[test]
    fn deb822_fast_merges_stanzas_split_by_a_line_of_spaces_this_reader_does_not() {
        let text = "Types: deb\nURIs: http://mirror.example/a\nSuites: one\nComponents: main\n   \n\
                    Types: deb\nURIs: http://mirror.example/b\nSuites: two\nComponents: main\n";
        let merged = deb822_fast::borrowed::parse_borrowed(text).unwrap();
        assert_eq!(merged.len(), 1, "the crate reads one paragraph");
        assert_eq!(
            merged[0].get("URIs"),
            Some(&["http://mirror.example/a"][..])
        );

        let root = Root::new();
        root.write("/etc/apt/sources.list.d/two.sources", text);
        let found = root.apt();
        assert_eq!(
            coordinates(&found)
                .into_iter()
                .map(|(u, s, _)| (u, s))
                .collect::<Vec<_>>(),
            [
                ("http://mirror.example/a/".to_string(), "one".to_string()),
                ("http://mirror.example/b/".to_string(), "two".to_string()),
            ]
        );
        assert_eq!(apt_repos(&found)[1].line, 6);
    }

    #[test]
    fn disabled_stanzas_deb_src_comments_and_several_uris() {
        let root = Root::new();
        root.write(
            "/etc/apt/sources.list.d/mixed.sources",
            "# Modernized from /etc/apt/sources.list\n\
             Types: deb deb-src\n\
             URIs: http://mirror.example/debian https://repo.example/debian\n\
             # a comment inside the stanza\n\
             Suites: bookworm\n\
             Components: main\n non-free-firmware\n\
             Signed-By: /usr/share/keyrings/a.gpg\n /usr/share/keyrings/b.gpg\n\
             X-Repolib-Name: Debian\n\
             \n\
             Types: deb-src\n\
             URIs: http://mirror.example/debian\n\
             Suites: bookworm\n\
             Components: main\n\
             \n\
             Enabled: no\n\
             Types: deb\n\
             URIs: http://mirror.example/disabled\n\
             Suites: bookworm\n\
             Components: main\n\
             \n\
             # only a comment\n\
             \n\
             types: deb\n\
             uris: http://repo.example/lower\n\
             suites: ./\n\
             trusted: yes\n\
             signed-by: /usr/share/keyrings/c.gpg\n",
        );
        let found = root.apt();
        let main_nf = strings(&["main", "non-free-firmware"]);
        assert_eq!(
            coordinates(&found),
            vec![
                (
                    "http://mirror.example/debian/".into(),
                    "bookworm".into(),
                    main_nf.clone()
                ),
                (
                    "https://repo.example/debian/".into(),
                    "bookworm".into(),
                    main_nf
                ),
                ("http://repo.example/lower/".into(), "./".into(), vec![]),
            ]
        );
        let repos = apt_repos(&found);
        assert_eq!(
            repos[0].keyring,
            AptKeyring::SignedBy(vec![
                root.path().join("usr/share/keyrings/a.gpg"),
                root.path().join("usr/share/keyrings/b.gpg"),
            ])
        );
        assert_eq!(repos[0].line, 2);
        // trusted with a key: upkeep verifies with that key.
        assert!(repos[2].trusted && repos[2].refusal().is_none());
        assert_eq!(found.disabled, 1);
        assert!(found.notes.is_empty());
    }

    #[test]
    fn unsupported_entries_are_skipped_with_a_note() {
        let root = Root::new();
        let file = root.write(
            "/etc/apt/sources.list",
            "deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD]/ bookworm contrib main\n\
             deb file:/srv/local ./\n\
             deb tor+http://user:secret@repo.example/debian bookworm main\n\
             deb [signed-by=0123456789ABCDEF0123456789ABCDEF01234567] http://repo.example/fpr bookworm main\n\
             deb http://repo.example/$(ARCH) ./\n\
             deb http://user:pw@repo.example/auth bookworm main\n",
        );
        let found = root.apt();
        assert_eq!(
            coordinates(&found),
            vec![(
                "http://user:pw@repo.example/auth/".into(),
                "bookworm".into(),
                strings(&["main"])
            )]
        );
        let notes: Vec<String> = found.notes.iter().map(ToString::to_string).collect();
        let f = file.display();
        assert_eq!(notes.len(), 5, "{notes:#?}");
        assert!(notes[0].starts_with(&format!("{f}:1: skipped: cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD]/: scheme \"cdrom\" is not supported")), "{}", notes[0]);
        assert!(
            notes[1].starts_with(&format!("{f}:2: skipped: file:/srv/local: scheme \"file\"")),
            "{}",
            notes[1]
        );
        assert!(
            notes[2].starts_with(&format!(
                "{f}:3: skipped: tor+http://***@repo.example/debian: scheme \"tor+http\""
            )),
            "{}",
            notes[2]
        );
        assert!(!notes[2].contains("secret"));
        assert!(notes[3].starts_with(&format!("{f}:4: skipped: Signed-By names key fingerprints (0123456789ABCDEF0123456789ABCDEF01234567)")), "{}", notes[3]);
        assert!(
            notes[4].starts_with(&format!("{f}:5: skipped: uses $(ARCH)")),
            "{}",
            notes[4]
        );
        assert!(found.notes.iter().all(|n| n.skipped));
    }

    #[test]
    fn only_apt_file_names_are_read_in_name_order() {
        let root = Root::new();
        for (name, suite) in [
            ("b.list", "b"),
            ("a.list", "a"),
            ("c.sources", "c"),
            ("a.list.save", "save"),
            ("a.list.dpkg-old", "old"),
            ("bad name.list", "bad"),
            ("x.disabled", "disabled"),
        ] {
            let text = if name.contains("sources") {
                format!(
                    "Types: deb\nURIs: http://mirror.example/\nSuites: {suite}\nComponents: main\n"
                )
            } else {
                format!("deb http://mirror.example/ {suite} main\n")
            };
            root.write(&format!("/etc/apt/sources.list.d/{name}"), &text);
        }
        root.write(
            "/etc/apt/sources.list",
            "deb http://mirror.example/ main-list main\n",
        );
        let suites: Vec<String> = apt_repos(&root.apt())
            .iter()
            .map(|r| r.suite.clone())
            .collect();
        assert_eq!(suites, ["main-list", "a", "b", "c"]);
    }

    #[test]
    fn malformed_apt_entries_name_the_file_and_line() {
        let cases = [
            (
                "x.list",
                "\n\ndeb http://mirror.example/debian\n",
                3,
                "no suite",
            ),
            ("x.list", "deb\n", 1, "a type, a URI and a suite are needed"),
            (
                "x.list",
                "rpm http://mirror.example/ x main\n",
                1,
                "type \"rpm\" is not known",
            ),
            (
                "x.list",
                "deb [arch=amd64 http://mirror.example/ x main\n",
                1,
                "'[' has no ']'",
            ),
            (
                "x.list",
                "deb [arch] http://mirror.example/ x main\n",
                1,
                "not key=value",
            ),
            (
                "x.list",
                "deb [trusted=maybe] http://mirror.example/ x main\n",
                1,
                "not yes or no",
            ),
            (
                "x.list",
                "# ok\ndeb http://mirror.example/ ./ main\n",
                2,
                "takes no component",
            ),
            (
                "x.list",
                "deb http://mirror.example/ bookworm\n",
                1,
                "needs a component",
            ),
            (
                "x.list",
                "deb http://mirror.example/ \"bookworm main\n",
                1,
                "not closed",
            ),
            (
                "x.sources",
                "Types: deb\nURIs: http://mirror.example/\nSuites: x\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/\nComponents: main\n",
                6,
                "no Suites",
            ),
            (
                "x.sources",
                "URIs: http://mirror.example/\nSuites: x\n",
                1,
                "no Types",
            ),
            (
                "x.sources",
                "Types: deb rpm\nURIs: http://mirror.example/\n",
                1,
                "type \"rpm\" is not known",
            ),
            (
                "x.sources",
                "Types: deb\nURIs http://mirror.example/\nSuites: x\n",
                2,
                "is not a \"Field: value\" line",
            ),
            (
                "x.sources",
                "Types: deb\nURIs: http://mirror.example/\nSuites x\n",
                3,
                "malformed stanza: Unexpected token: Suites x",
            ),
            (
                "x.sources",
                "# c\n  Types: deb\n",
                2,
                "malformed stanza: Unexpected token",
            ),
            (
                "x.sources",
                "Types: deb\nEnabled: perhaps\n",
                2,
                "\"perhaps\" is not yes or no",
            ),
            (
                "x.sources",
                "Types: deb\nURIs: http://mirror.example/\nSuites: x\nComponents: main\nSuites: y\n",
                5,
                "field \"Suites\" given again",
            ),
            (
                "x.sources",
                "Types: deb\nURIs: http://mirror.example/\nSuites: x\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n abc\n",
                5,
                "one armored block",
            ),
        ];
        for (name, text, line, what) in cases {
            let root = Root::new();
            let file = root.write(&format!("/etc/apt/sources.list.d/{name}"), text);
            let message = root.apt_error();
            let prefix = format!("{}:{line}: ", file.display());
            assert!(
                message.starts_with(&prefix) && message.contains(what),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn no_usable_apt_repository_is_one_line() {
        let root = Root::new();
        root.write(
            "/etc/apt/sources.list.d/off.sources",
            "Enabled: no\nTypes: deb\nURIs: http://mirror.example/\nSuites: x\nComponents: main\n",
        );
        root.write(
            "/etc/apt/sources.list",
            "deb file:/srv/repo ./\ndeb-src http://mirror.example/ x main\n",
        );
        let message = root.apt_error();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message
                .starts_with("type = \"system\": no usable repository in the host's apt sources (")
                && message.contains("(1 disabled, 1 skipped); first skipped: ")
                && message.contains("sources.list:1: skipped: file:/srv/repo"),
            "{message}"
        );
        // No sources at all.
        let empty = Root::new();
        std::fs::create_dir_all(empty.path().join("etc/apt")).unwrap();
        assert!(empty.apt_error().contains("(0 disabled, 0 skipped)"));
    }

    #[test]
    fn host_family_by_configuration_directory() {
        let root = Root::new();
        let message = format!("{:#}", host_family(root.path()).unwrap_err());
        assert!(
            message.contains("neither") && !message.contains('\n'),
            "{message}"
        );
        std::fs::create_dir_all(root.path().join("etc/yum.repos.d")).unwrap();
        assert_eq!(host_family(root.path()).unwrap(), Family::Rpm);
        std::fs::create_dir_all(root.path().join("etc/apt")).unwrap();
        assert_eq!(host_family(root.path()).unwrap(), Family::Deb);
    }

    // ------------------------------------------------------------ YUM

    const VENDOR_REPO: &str = "\
# Vendor repositories
[vendor]
name=Vendor $releasever - $basearch
baseurl=https://repo.example/vendor/el$releasever_major/$basearch/
        http://mirror.example/vendor/el${releasever_major}/$basearch
; a comment in the first column does not end the value

  https://repo.example/${contentdir}/$releasever/,http://mirror.example/$flavour/
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-vendor-$releasever_major
  https://repo.example/RPM-GPG-KEY-vendor
  /etc/pki/rpm-gpg/RPM-GPG-KEY-extra

[vendor-source]
name = Vendor sources
baseurl = https://repo.example/vendor/source/
enabled = 0

[vendor-mirrors]
mirrorlist=https://repo.example/mirrorlist?repo=vendor-$releasever
gpgcheck=0

[vendor-unsigned]
baseurl=https://repo.example/unsigned/$arch/
gpgcheck=0
";

    #[test]
    fn repo_file_sections_variables_baseurls_and_keys() {
        let root = Root::new();
        let file = root.write("/etc/yum.repos.d/vendor.repo", VENDOR_REPO);
        root.write("/etc/dnf/vars/contentdir", "centos\nignored second line\n");
        root.write("/etc/dnf/vars/flavour", "from-dnf\n");
        root.write("/etc/yum/vars/flavour", "from-yum\n");
        root.write(
            "/etc/dnf/dnf.conf",
            "[main]\ngpgcheck=1\ninstallonly_limit=3\n",
        );
        let found = root.yum();
        let repos = yum_repos(&found);
        assert_eq!(
            repos.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["vendor", "vendor-unsigned"]
        );
        let vendor = repos[0];
        assert_eq!(vendor.name, "Vendor 9.4 - x86_64");
        assert_eq!(
            vendor.baseurls.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://repo.example/vendor/el9/x86_64/",
                "http://mirror.example/vendor/el9/x86_64/",
                "https://repo.example/centos/9.4/",
                "http://mirror.example/from-yum/",
            ]
        );
        assert_eq!(
            vendor.keyring,
            [
                root.path().join("etc/pki/rpm-gpg/RPM-GPG-KEY-vendor-9"),
                root.path().join("etc/pki/rpm-gpg/RPM-GPG-KEY-extra"),
            ]
        );
        assert!(vendor.gpgcheck && vendor.repo_gpgcheck);
        assert_eq!(
            (vendor.source_file.as_path(), vendor.line),
            (file.as_path(), 2)
        );
        assert!(vendor.refusal().is_none());

        let unsigned = repos[1];
        assert_eq!(unsigned.name, "vendor-unsigned");
        assert_eq!(
            unsigned.baseurls[0].as_str(),
            "https://repo.example/unsigned/x86_64/"
        );
        assert!(!unsigned.gpgcheck && !unsigned.repo_gpgcheck);
        assert!(unsigned.keyring.is_empty());
        let refusal = SystemRepo::Yum(unsigned.clone()).refusal().unwrap();
        assert!(
            refusal.starts_with(&format!(
                "{}:25: repository \"vendor-unsigned\": no gpgkey",
                file.display()
            )),
            "{refusal}"
        );

        assert_eq!(found.disabled, 1);
        let notes: Vec<String> = found.notes.iter().map(ToString::to_string).collect();
        let f = file.display();
        assert_eq!(
            notes,
            [
                format!(
                    "{f}:2: repository \"vendor\": gpgkey ignored: https://repo.example/RPM-GPG-KEY-vendor: upkeep reads keys from files only (file://), never over the network; save the key and point gpgkey at it"
                ),
                format!(
                    "{f}:21: repository \"vendor-mirrors\" skipped: it has a mirrorlist and no baseurl: upkeep reads no mirrorlist; give it a baseurl"
                ),
            ]
        );
        assert_eq!(
            found.notes.iter().map(|n| n.skipped).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn gpgcheck_defaults_to_dnf_conf_main_then_false() {
        let repo = "[a]\nbaseurl=https://repo.example/a/\n[b]\nbaseurl=https://repo.example/b/\ngpgcheck=no\nrepo_gpgcheck=on\n";
        let root = Root::new();
        root.write("/etc/yum.repos.d/x.repo", repo);
        let checks = |found: &SystemRepos| -> Vec<(bool, bool)> {
            yum_repos(found)
                .iter()
                .map(|r| (r.gpgcheck, r.repo_gpgcheck))
                .collect()
        };
        // No dnf.conf: dnf.conf(5)'s defaults, False.
        assert_eq!(checks(&root.yum()), [(false, false), (false, true)]);
        // yum.conf without dnf.conf (EL7).
        root.write("/etc/yum.conf", "[main]\ngpgcheck=1\nrepo_gpgcheck=1\n");
        assert_eq!(checks(&root.yum()), [(true, true), (false, true)]);
        // dnf.conf wins over yum.conf, and may define repositories too.
        root.write(
            "/etc/dnf/dnf.conf",
            "[main]\ngpgcheck=True\n\n[in-conf]\nbaseurl=https://repo.example/c/\n",
        );
        let found = root.yum();
        assert_eq!(
            checks(&found),
            [(true, false), (true, false), (false, true)]
        );
        assert_eq!(yum_repos(&found)[0].id, "in-conf");
    }

    #[test]
    fn unknown_variables_duplicates_and_unsupported_urls_are_noted() {
        let root = Root::new();
        let first = root.write(
            "/etc/yum.repos.d/a.repo",
            "[main]\ngpgcheck=1\n\n[dup]\nbaseurl=https://repo.example/first/\ngpgkey=file:///k\n\n[partly]\nbaseurl=https://repo.example/$nosuch/ https://repo.example/ok/\ngpgkey=file:///k $nokey\n\n[local]\nbaseurl=file:///srv/repo/\n\n[meta]\nmetalink=https://repo.example/metalink\n\n[bad id]\nbaseurl=https://repo.example/x/\n\n[none]\nname=nothing\n",
        );
        let second = root.write(
            "/etc/yum.repos.d/b.repo",
            "[dup]\nbaseurl=https://repo.example/second/\n",
        );
        let found = root.yum();
        let repos = yum_repos(&found);
        assert_eq!(
            repos
                .iter()
                .map(|r| (r.id.as_str(), r.baseurls[0].as_str()))
                .collect::<Vec<_>>(),
            [
                ("dup", "https://repo.example/first/"),
                ("partly", "https://repo.example/ok/"),
            ]
        );
        // [main] in a .repo file is not a repository (dnf ignores it).
        assert!(!repos[0].gpgcheck);
        let notes: Vec<String> = found.notes.iter().map(ToString::to_string).collect();
        let (a, b) = (first.display(), second.display());
        assert_eq!(
            notes,
            [
                format!(
                    "{a}:8: repository \"partly\": baseurl ignored: https://repo.example/$nosuch/: no value for $nosuch"
                ),
                format!(
                    "{a}:8: repository \"partly\": gpgkey ignored: $nokey: no value for $nokey"
                ),
                format!(
                    "{a}:12: repository \"local\" skipped: file:///srv/repo/: scheme \"file\" is not supported: upkeep reads http and https repositories"
                ),
                format!(
                    "{a}:15: repository \"meta\" skipped: it has a metalink and no baseurl: upkeep reads no metalink; give it a baseurl"
                ),
                format!(
                    "{a}:18: repository \"bad id\" skipped: dnf allows only A-Z a-z 0-9 - _ . : in an id"
                ),
                format!("{a}:21: repository \"none\" skipped: no baseurl"),
                format!(
                    "{b}:1: repository \"dup\" skipped: defined already at {a}:4, which dnf uses"
                ),
            ]
        );
    }

    #[test]
    fn malformed_repo_files_name_the_file_and_line() {
        let cases = [
            (
                "baseurl=https://repo.example/\n",
                1,
                "a key before any [section]",
            ),
            (
                "# c\n[a]\nbaseurl https://repo.example/\n",
                3,
                "missing '='",
            ),
            ("[a]\n=x\n", 2, "missing key"),
            ("[a\nbaseurl=x\n", 1, "missing ']'"),
            ("[]\n", 1, "empty section name"),
            ("[a] b\n", 1, "text after the section name"),
            (
                "[a]\n  https://repo.example/\n",
                2,
                "continues no key=value",
            ),
            (
                "[a]\nbaseurl=https://repo.example/\nenabled=2\n",
                3,
                "enabled=2: not a boolean",
            ),
            (
                "[a]\nbaseurl=https://repo.example/\ngpgcheck=maybe\n",
                3,
                "gpgcheck=maybe: not a boolean",
            ),
        ];
        for (text, line, what) in cases {
            let root = Root::new();
            let file = root.write("/etc/yum.repos.d/x.repo", text);
            let message = root.yum_error();
            let prefix = format!("{}:{line}: ", file.display());
            assert!(
                message.starts_with(&prefix) && message.contains(what),
                "{text:?}: {message}"
            );
        }
        let root = Root::new();
        let conf = root.write("/etc/dnf/dnf.conf", "[main]\ngpgcheck=sure\n");
        assert!(
            root.yum_error()
                .starts_with(&format!("{}:2: gpgcheck=sure", conf.display()))
        );
    }

    #[test]
    fn no_usable_yum_repository_is_one_line() {
        let root = Root::new();
        root.write(
            "/etc/yum.repos.d/fedora.repo",
            "[fedora]\nmetalink=https://repo.example/metalink?repo=fedora-$releasever&arch=$basearch\n\n[fedora-source]\nbaseurl=https://repo.example/src/\nenabled=0\n",
        );
        let message = root.yum_error();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with(
                "type = \"system\": no usable repository in the host's dnf/yum repositories ("
            ) && message.contains("(1 disabled, 1 skipped); first skipped: ")
                && message
                    .contains("fedora.repo:1: repository \"fedora\" skipped: it has a metalink"),
            "{message}"
        );
    }

    #[test]
    fn ini_reader_follows_libdnf() {
        let text = "\u{feff}[a]\nkey = one\n\n  two\n# first-column comment\n  # an indented hash continues\n\tthree\nkey=last wins\nother=x\n[b] # comment after the header\n";
        let sections = parse_ini(Path::new("x.repo"), text).unwrap();
        assert_eq!(sections.len(), 2);
        let a = &sections[0];
        assert_eq!(
            a.values[0].value,
            "one\ntwo\n# an indented hash continues\nthree"
        );
        assert_eq!(a.get("key").unwrap().value, "last wins");
        assert_eq!(a.get("key").unwrap().line, 8);
        assert_eq!((sections[1].name.as_str(), sections[1].line), ("b", 10));
    }

    #[test]
    fn variables_are_replaced_as_libdnf_does() {
        let vars: BTreeMap<String, String> =
            [("releasever", "9"), ("basearch", "x86_64"), ("empty", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let sub = |text: &str| substitute(text, &vars);
        let ok = |text: &str| (text.to_string(), Vec::<String>::new());
        assert_eq!(sub("el$releasever/$basearch"), ok("el9/x86_64"));
        assert_eq!(sub("${releasever}x"), ok("9x"));
        assert_eq!(
            sub("$releaseverx"),
            ("$releaseverx".into(), vec!["releaseverx".into()])
        );
        assert_eq!(sub("${nosuch:-fallback}"), ok("fallback"));
        assert_eq!(sub("${empty:-$basearch}"), ok("x86_64"));
        assert_eq!(sub("${releasever:-fallback}"), ok("9"));
        assert_eq!(sub("${releasever:+set}"), ok("set"));
        assert_eq!(sub("${nosuch:+set}"), ok(""));
        assert_eq!(sub("${releasever:-${nosuch:-deep}}"), ok("9"));
        assert_eq!(sub("${nosuch:-${basearch:+deep}}/"), ok("deep/"));
        assert_eq!(sub("\\$releasever"), ok("$releasever"));
        assert_eq!(sub("cost$ 5 $"), ok("cost$ 5 $"));
        assert_eq!(
            sub("${nosuch}"),
            ("${nosuch}".into(), vec!["nosuch".into()])
        );
        assert_eq!(sub("${releasever:-open"), ok("${releasever:-open"));
        assert_eq!(sub("${releasever?x}"), ok("${releasever?x}"));
        assert_eq!(sub("é$basearch"), ok("éx86_64"));
    }
}
