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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::clause_text;

    fn names(list: &[PackageInfo]) -> Vec<String> {
        list.iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect()
    }

    #[test]
    fn dpkg_status_entries_count_as_apt_counts_them() {
        let status = "Package: libc6
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4
Provides: libc6-x (= 2.36)
Description: GNU C Library
 folded text
 Depends: not-a-field

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: never
Status: purge ok not-installed
Architecture: amd64

Package: half
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1

Package: unpacked
Status: install ok unpacked
Architecture: all
Version: 3.0-1
Depends: libc6 (>= 2.34) | libc6-x

Package: held
Status: hold ok installed
Architecture: amd64
Version: 1:4.0~rc1-1
Essential: yes
Breaks: old (<< 2)
Conflicts: other

Package: leaving
Status: deinstall ok installed
Architecture: amd64
Version: 5.0-1

Package: triggered
Status: install ok triggers-pending
Architecture: amd64
Version: 6.0-1
Triggers-Pending: x
";
        let found = installed_deb(status).unwrap();
        assert_eq!(
            names(&found),
            [
                "libc6 2.36-9+deb12u4",
                "half 2.0-1",
                "unpacked 3.0-1",
                "held 1:4.0~rc1-1",
                "leaving 5.0-1",
                "triggered 6.0-1"
            ]
        );
        assert_eq!(found[0].multi_arch, MultiArch::Same);
        assert_eq!(found[0].provides[0].to_string(), "libc6-x (= 2.36)");
        assert!(
            found[0].depends.is_empty(),
            "a Depends inside a description is text"
        );
        assert_eq!(
            clause_text(&found[2].depends[0]),
            "libc6 (>= 2.34) | libc6-x"
        );
        assert!(found[3].essential);
        assert_eq!(found[3].breaks[0].to_string(), "old (<< 2)");
        assert_eq!(found[3].conflicts[0].to_string(), "other");
        // CRLF, whitespace-only separator lines, no final newline.
        let text = "Package: a\r\nStatus: install ok installed\r\nArchitecture: all\r\nVersion: 1\r\n \r\nPackage: b\nStatus: install ok installed\nArchitecture: all\nVersion: 2";
        assert_eq!(names(&installed_deb(text).unwrap()), ["a 1", "b 2"]);
        assert!(installed_deb("").unwrap().is_empty());
    }

    #[test]
    fn a_broken_installed_dpkg_entry_is_an_error_naming_it() {
        let e =
            installed_deb("Package: x\nStatus: install ok installed\nVersion: 1.0\n").unwrap_err();
        assert!(format!("{e:#}").contains("dpkg status: x"), "{e:#}");
        let e = installed_deb(
            "Package: y\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\nDepends: z (>= )\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("y 1.0: Depends field"), "{e:#}");
    }

    /// `rpm -qa --qf RPM_QUERY_FORMAT` as rpm 4.18 prints it for two
    /// packages built with rpmbuild, and the key pseudo-package.
    const RPM_QA: &str = "P\ttpkg\t1\t2.0\t3\tnoarch
R\t(baz or qux >= 2)\t\t
R\t/bin/sh\t\t
R\tbar\t\t
R\tfoo\t>=\t1.2-1
R\trpmlib(CompressedFileNames)\t<=\t3.0.4-1
R\trpmlib(RichDependencies)\t<=\t4.12.0-1
V\ttpkg\t=\t1:2.0-3
V\tvirt\t=\t5
C\told\t<\t1:0.5
P\tgpg-pubkey\t(none)\t3a7bd3be\t5ad5a0e0\t(none)
V\tgpg(Fedora)\t=\t4:3a7bd3be-5ad5a0e0
P\tupkg\t(none)\t1.0\t1\tx86_64
R\trpmlib(FileDigests)\t<=\t4.6.0-1
";

    #[test]
    fn rpm_query_output_is_read() {
        let found = installed_rpm(RPM_QA).unwrap();
        assert_eq!(names(&found), ["tpkg 1:2.0-3", "upkg 1.0-1"]);
        let t = &found[0];
        assert_eq!(t.arch, "noarch");
        let depends: Vec<String> = t.depends.iter().map(|c| clause_text(c)).collect();
        assert_eq!(depends, ["baz | qux >= 2", "bar", "foo >= 1.2-1"]);
        let provides: Vec<String> = t.provides.iter().map(Relation::to_string).collect();
        assert_eq!(provides, ["tpkg = 1:2.0-3", "virt = 5"]);
        assert_eq!(t.conflicts[0].to_string(), "old < 1:0.5");
        // The own provide is added when rpm did not list it.
        let u = &found[1];
        assert_eq!(u.provides[0].to_string(), "upkg = 1.0-1");
        assert!(u.depends.is_empty());
        assert!(installed_rpm("").unwrap().is_empty());
    }

    #[test]
    fn unexpected_rpm_query_output_is_an_error() {
        for bad in [
            "R\tfoo\t\t\n",
            "P\tx\t(none)\t1.0\n",
            "P\tx\t(none)\t1.0\t1\tx86_64\nR\tfoo\t~=\t1\n",
            "P\tx\tE\t1.0\t1\tx86_64\n",
            "garbage\n",
        ] {
            assert!(installed_rpm(bad).is_err(), "{bad:?}");
        }
    }
}
