//! What is installed, as the resolver reads it: dpkg's status file, and the
//! output of `rpm -qa --qf` [`RPM_QUERY_FORMAT`]. Pure parsers; the
//! commands are run by `pkg::dpkg::Dpkg::installed_packages` and
//! `pkg::rpm::Rpm::installed_packages`.

use anyhow::{Context, anyhow, bail};

use super::relation::{Op, Relation, rpm_relation, rpm_requirement};
use super::{MultiArch, PackageInfo, deb_field};
use crate::version::PkgVersion;

/// The installed packages in the text of a dpkg status file
/// (`ADMINDIR/status`, or `dpkg-query --status`), with their relations.
///
/// An entry counts as installed when the third word of its `Status` is
/// anything but `not-installed` or `config-files`: `installed`, and also
/// `half-installed`, `unpacked`, `half-configured`, `triggers-awaited` and
/// `triggers-pending`. This is apt's rule: its cache gives such a package a
/// current version, which meets dependencies and is replaced by an upgrade
/// (apt only adds that a half-installed one needs reinstalling). The
/// selection (`install`, `hold`, `deinstall`...) does not matter. Entries
/// without a `Status` (an `available` file) are skipped; an installed entry
/// without `Version` or `Architecture` (dpkg always writes both) is an
/// error naming it.
pub fn installed_deb(status_text: &str) -> anyhow::Result<Vec<PackageInfo>> {
    let mut out = Vec::new();
    for paragraph in paragraphs(status_text) {
        let Some(status) = deb_field(paragraph, "Status") else {
            continue;
        };
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if state.is_empty() || state == "not-installed" || state == "config-files" {
            continue;
        }
        let name = deb_field(paragraph, "Package").unwrap_or("?");
        let info = PackageInfo::from_deb_paragraph(paragraph)
            .with_context(|| format!("dpkg status: {name} ({status})"))?;
        out.push(info);
    }
    Ok(out)
}

/// The paragraphs of a deb822 text: separated by lines that are empty or
/// hold only whitespace.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut end = 0;
            let mut next = rest.len();
            for line in rest.split_inclusive('\n') {
                if line.trim().is_empty() {
                    next = end + line.len();
                    break;
                }
                end += line.len();
            }
            if end == rest.len() {
                next = end;
            }
            let paragraph = &rest[..end];
            rest = &rest[next..];
            if !paragraph.trim().is_empty() {
                return Some(paragraph);
            }
        }
    })
}

/// The `rpm -qa --qf` format [`installed_rpm`] reads: per package a `P`
/// line (name, epoch or `(none)`, version, release, architecture), then one
/// line per Requires (`R`), Provides (`V`) and Conflicts (`C`) entry with
/// its operator (`%{...FLAGS:depflags}`: `<`, `<=`, `=`, `>=`, `>` or
/// nothing) and version, fields separated by tabs. Array tags are iterated
/// with `[...]`; an empty array prints nothing.
pub const RPM_QUERY_FORMAT: &str = concat!(
    "P\\t%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n",
    "[R\\t%{REQUIRENAME}\\t%{REQUIREFLAGS:depflags}\\t%{REQUIREVERSION}\\n]",
    "[V\\t%{PROVIDENAME}\\t%{PROVIDEFLAGS:depflags}\\t%{PROVIDEVERSION}\\n]",
    "[C\\t%{CONFLICTNAME}\\t%{CONFLICTFLAGS:depflags}\\t%{CONFLICTVERSION}\\n]",
);

/// The installed packages in the output of `rpm -qa --qf`
/// [`RPM_QUERY_FORMAT`]. Requires go through [`rpm_requirement`] (so
/// `rpmlib(...)` and file requirements are left out, rich dependencies
/// split); every package provides its own `name = EVR` (rpm writes it
/// into the header itself; it is added when missing). The `gpg-pubkey`
/// pseudo-packages rpm keeps for imported keys (architecture `(none)`) are
/// skipped. A line that does not fit is an error naming it.
pub fn installed_rpm(text: &str) -> anyhow::Result<Vec<PackageInfo>> {
    let mut out: Vec<PackageInfo> = Vec::new();
    // Whether the package being read is skipped (gpg-pubkey).
    let mut skipping = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let bad = || anyhow!("rpm -qa line {}: unexpected {line:?}", n + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["P", name, epoch, version, release, arch] => {
                finish_rpm(out.last_mut());
                skipping = *arch == "(none)";
                if skipping {
                    continue;
                }
                let epoch = (*epoch != "(none)").then_some(*epoch);
                let release = (*release != "(none)").then_some(*release);
                let version = PkgVersion::rpm_parts(epoch, version, release)
                    .with_context(|| format!("rpm -qa: {name}"))?;
                out.push(PackageInfo {
                    name: name.to_string(),
                    version,
                    arch: arch.to_string(),
                    multi_arch: MultiArch::No,
                    depends: Vec::new(),
                    provides: Vec::new(),
                    breaks: Vec::new(),
                    conflicts: Vec::new(),
                    priority: None,
                    essential: false,
                    protected: false,
                });
            }
            [kind @ ("R" | "V" | "C"), name, flags, version] => {
                if skipping {
                    continue;
                }
                let p = out.last_mut().ok_or_else(bad)?;
                let constraint = rpm_bound(flags, version)
                    .with_context(|| format!("rpm -qa: {} {}: {name}", p.name, p.version))?;
                match *kind {
                    "R" => p.depends.extend(
                        rpm_requirement(name, constraint)
                            .with_context(|| format!("rpm -qa: {} {}", p.name, p.version))?,
                    ),
                    "V" => p.provides.push(rpm_relation(name, constraint)),
                    _ => p.conflicts.push(rpm_relation(name, constraint)),
                }
            }
            _ => return Err(bad()),
        }
    }
    finish_rpm(out.last_mut());
    Ok(out)
}

/// An rpm relation's bound from its `depflags` text and EVR: none when
/// there is no operator (or no version).
pub(super) fn rpm_bound(flags: &str, evr: &str) -> anyhow::Result<Option<(Op, PkgVersion)>> {
    let flags = flags.trim();
    let evr = evr.trim();
    if flags.is_empty() || evr.is_empty() {
        return Ok(None);
    }
    let Some(op) = Op::from_rpm(flags) else {
        bail!("unknown operator {flags:?}");
    };
    Ok(Some((op, PkgVersion::rpm(evr)?)))
}

/// Adds a package's own `name = EVR` to its Provides when rpm did not list
/// it.
fn finish_rpm(p: Option<&mut PackageInfo>) {
    if let Some(p) = p
        && !p.provides.iter().any(|pr| pr.name == p.name)
    {
        p.provides.insert(
            0,
            Relation {
                name: p.name.clone(),
                arch: None,
                constraint: Some((Op::Eq, p.version.clone())),
            },
        );
    }
}
