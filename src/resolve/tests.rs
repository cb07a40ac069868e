//! The resolver and the relation parsers, on fixtures written as Packages
//! paragraphs (deb) or built from rpm requirement entries.

use std::collections::BTreeSet;

use super::*;
use crate::version::{Family, PkgVersion};

/// Every paragraph of `text` as a package.
fn debs(text: &str) -> Vec<PackageInfo> {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| PackageInfo::from_deb_paragraph(p.trim_matches('\n')).unwrap())
        .collect()
}

fn dv(text: &str) -> PkgVersion {
    PkgVersion::deb(text).unwrap()
}

fn rv(text: &str) -> PkgVersion {
    PkgVersion::rpm(text).unwrap()
}

/// The outcome of resolving `request` against `repo`, with the batches of
/// names asked; fails if a name is asked twice or a batch is empty.
struct Run {
    result: Result<Resolution, ResolveError>,
    batches: Vec<BTreeSet<String>>,
}

fn resolve(
    family: Family,
    arch: &str,
    installed: Vec<PackageInfo>,
    request: &[(&str, PkgVersion)],
    repo: &[PackageInfo],
) -> Run {
    let request = request
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    let mut resolver = Resolver::new(family, arch, installed, request);
    let mut batches: Vec<BTreeSet<String>> = Vec::new();
    let mut seen = BTreeSet::new();
    loop {
        match resolver.run() {
            Ok(Outcome::Need(names)) => {
                assert!(!names.is_empty());
                for n in &names {
                    assert!(seen.insert(n.clone()), "{n} asked twice");
                }
                // As a streaming index reader answers: by name or by a
                // provided name.
                let answer: Vec<PackageInfo> = repo
                    .iter()
                    .filter(|p| {
                        names.contains(&p.name)
                            || p.provides.iter().any(|pr| names.contains(&pr.name))
                    })
                    .cloned()
                    .collect();
                resolver.add(answer);
                batches.push(names);
                assert!(batches.len() < 50, "the loop does not end");
            }
            Ok(Outcome::Done(r)) => {
                return Run {
                    result: Ok(r),
                    batches,
                };
            }
            Err(e) => {
                return Run {
                    result: Err(e),
                    batches,
                };
            }
        }
    }
}

fn deb_run(installed: &str, request: &[(&str, &str)], repo: &str) -> Run {
    let request: Vec<(&str, PkgVersion)> = request.iter().map(|(n, v)| (*n, dv(v))).collect();
    resolve(Family::Deb, "amd64", debs(installed), &request, &debs(repo))
}

/// `name version` of each choice.
fn names(r: &Resolution) -> Vec<String> {
    r.install
        .iter()
        .map(|c| format!("{} {}", c.name, c.version))
        .collect()
}

fn reasons(r: &Resolution) -> Vec<&str> {
    r.install.iter().map(|c| c.reason.as_str()).collect()
}

fn batch(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

const V: &str = "1.22.1-9+deb12u1";

/// A host with nginx 1.22.1-9 and what it needs.
const HOST: &str = "
Package: libc6
Version: 2.36-9+deb12u4
Architecture: amd64
Multi-Arch: same
Provides: libc6-x (= 2.36)

Package: libssl3
Version: 3.0.8-1
Architecture: amd64
Depends: libc6 (>= 2.34)

Package: nginx-common
Version: 1.22.1-9
Architecture: all
Depends: lsb-base

Package: lsb-base
Version: 11.6
Architecture: all

Package: nginx
Version: 1.22.1-9
Architecture: amd64
Depends: nginx-common (= 1.22.1-9), libc6 (>= 2.34), libssl3 (>= 3.0.0)
Provides: httpd, nginx-abi-1.22.1-9
";

fn repo_nginx(extra_depends: &str) -> String {
    format!(
        "
Package: nginx-common
Version: {V}
Architecture: all
Depends: lsb-base

Package: nginx-common
Version: 1.22.1-9
Architecture: all
Depends: lsb-base

Package: nginx
Version: {V}
Architecture: amd64
Depends: nginx-common (= {V}), libc6 (>= 2.34){extra_depends}
Provides: httpd, nginx-abi-1.22.1-9

Package: libssl3
Version: 3.0.11-1~deb12u2
Architecture: amd64
Depends: libc6 (>= 2.34)

Package: libssl3
Version: 3.0.9-1
Architecture: amd64
Depends: libc6 (>= 2.34)

Package: libpcre2-8-0
Version: 10.42-1
Architecture: amd64
Depends: libc6 (>= 2.34)
"
    )
}

#[test]
fn the_products_packages_move_together_at_one_version() {
    let run = deb_run(HOST, &[("nginx", V), ("nginx-common", V)], &repo_nginx(""));
    let r = run.result.unwrap();
    assert_eq!(
        names(&r),
        [format!("nginx {V}"), format!("nginx-common {V}")]
    );
    assert_eq!(reasons(&r), ["requested", "requested"]);
    assert_eq!(r.install[0].installed, Some(dv("1.22.1-9")));
    // Requesting nginx alone brings nginx-common along for its `=` bound.
    let run = deb_run(HOST, &[("nginx", V)], &repo_nginx(""));
    let r = run.result.unwrap();
    assert_eq!(
        names(&r),
        [format!("nginx {V}"), format!("nginx-common {V}")]
    );
    assert_eq!(
        r.install[1].reason,
        format!("nginx-common (= {V}) needed by nginx; installed 1.22.1-9")
    );
}

#[test]
fn a_missing_library_is_pulled_in_and_an_old_one_upgraded() {
    let run = deb_run(
        HOST,
        &[("nginx", V), ("nginx-common", V)],
        &repo_nginx(", libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.9)"),
    );
    let r = run.result.unwrap();
    assert_eq!(
        names(&r),
        [
            format!("nginx {V}"),
            format!("nginx-common {V}"),
            "libpcre2-8-0 10.42-1".to_string(),
            "libssl3 3.0.11-1~deb12u2".to_string(),
        ]
    );
    assert_eq!(
        reasons(&r)[2..],
        [
            "nginx depends on libpcre2-8-0 (>= 10.22)",
            "libssl3 (>= 3.0.9) needed by nginx; installed 3.0.8-1"
        ]
    );
    assert_eq!(r.install[2].installed, None);
    assert_eq!(r.install[3].installed, Some(dv("3.0.8-1")));
}

#[test]
fn names_are_asked_in_batches_and_never_twice() {
    let run = deb_run(
        HOST,
        &[("nginx", V), ("nginx-common", V)],
        &repo_nginx(", libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.9), libfoo | libbar, libnew"),
    );
    // libnew is offered, and needs libc6 (installed, new enough): nothing
    // more to ask.
    let repo = format!(
        "{}\nPackage: libnew\nVersion: 1-1\nArchitecture: amd64\nDepends: libc6 (>= 2.30), libdeep\n\nPackage: libdeep\nVersion: 1-1\nArchitecture: amd64\n\nPackage: libbar\nVersion: 2-1\nArchitecture: amd64\n",
        repo_nginx(", libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.9), libfoo | libbar, libnew")
    );
    drop(run);
    let run = deb_run(HOST, &[("nginx", V), ("nginx-common", V)], &repo);
    assert_eq!(
        run.batches,
        [
            batch(&["nginx", "nginx-common"]),
            // What nginx lacks; libc6 is met by the installed one, and both
            // alternatives of `libfoo | libbar` are asked at once.
            batch(&["libbar", "libfoo", "libnew", "libpcre2-8-0", "libssl3"]),
            // What the chosen packages lack in turn.
            batch(&["libdeep"]),
        ]
    );
    let r = run.result.unwrap();
    assert_eq!(
        names(&r)[2..],
        [
            "libpcre2-8-0 10.42-1",
            "libssl3 3.0.11-1~deb12u2",
            "libbar 2-1",
            "libnew 1-1",
            "libdeep 1-1"
        ]
    );
    assert_eq!(r.install[4].reason, "nginx depends on libbar");
}

#[test]
fn an_unmet_dependency_is_an_error_naming_it() {
    let repo = "
Package: nginx
Version: 1.22.1-9+deb12u1
Architecture: amd64
Depends: nginx-common (= 1.22.1-9+deb12u1)
";
    let e = deb_run(HOST, &[("nginx", V)], repo).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "nginx 1.22.1-9+deb12u1 depends on nginx-common (= 1.22.1-9+deb12u1), which no configured repository offers"
    );
    assert!(
        matches!(e, ResolveError::Unmet { ref package, .. } if package == "nginx 1.22.1-9+deb12u1")
    );
    // Offered, but not at a version that fits.
    let repo = format!("{repo}\nPackage: nginx-common\nVersion: 1.22.1-8\nArchitecture: all\n");
    let e = deb_run(HOST, &[("nginx", V)], &repo).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "nginx 1.22.1-9+deb12u1 depends on nginx-common (= 1.22.1-9+deb12u1), but the repositories offer nginx-common 1.22.1-8"
    );
    // A requested version nobody offers.
    let e = deb_run(HOST, &[("nginx", "9.9-1")], &repo)
        .result
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "nginx 9.9-1 is requested, but the repositories offer nginx 1.22.1-9+deb12u1"
    );
    // A dependency of a dependency.
    let repo = "
Package: app
Version: 2-1
Architecture: amd64
Depends: libx

Package: libx
Version: 1-1
Architecture: amd64
Depends: libgone (>= 3)
";
    let e = deb_run("", &[("app", "2-1")], repo).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "libx 1-1 depends on libgone (>= 3), which no configured repository offers"
    );
}

#[test]
fn alternatives_take_the_first_that_can_be_met_or_keep_an_installed_one() {
    let repo = "
Package: app
Version: 2-1
Architecture: amd64
Depends: default-mta | mail-transport-agent, first | second, gone | also-gone | second

Package: exim4-daemon-light
Version: 4.96-15
Architecture: amd64
Provides: mail-transport-agent

Package: first
Version: 1-1
Architecture: all

Package: second
Version: 1-1
Architecture: all
";
    let r = deb_run("", &[("app", "2-1")], repo).result.unwrap();
    assert_eq!(
        names(&r),
        [
            "app 2-1",
            "exim4-daemon-light 4.96-15",
            "first 1-1",
            "second 1-1"
        ]
    );
    assert_eq!(
        reasons(&r)[1..],
        [
            "app depends on mail-transport-agent, provided by exim4-daemon-light",
            "app depends on first",
            "app depends on second",
        ]
    );
    // An installed alternative keeps it: nothing else is chosen.
    let installed = "
Package: postfix
Version: 3.7.10-0+deb12u1
Architecture: amd64
Provides: mail-transport-agent

Package: second
Version: 1-1
Architecture: all
";
    let r = deb_run(installed, &[("app", "2-1")], repo).result.unwrap();
    assert_eq!(names(&r), ["app 2-1"]);
    // No alternative at all.
    let repo = "Package: app\nVersion: 2-1\nArchitecture: amd64\nDepends: gone | also-gone\n";
    let e = deb_run("", &[("app", "2-1")], repo).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "app 2-1 depends on gone | also-gone, none of which any configured repository offers"
    );
}

#[test]
fn provides_versioned_and_not() {
    let repo = "
Package: app
Version: 2-1
Architecture: amd64
Depends: httpd (>= 2.0), webserver

Package: a-plain-httpd
Version: 1-1
Architecture: amd64
Provides: httpd

Package: b-versioned-httpd
Version: 2.4.57-2
Architecture: amd64
Provides: httpd (= 2.4.57)

Package: c-webserver
Version: 1-1
Architecture: amd64
Provides: webserver
";
    // The unversioned provider does not meet `httpd (>= 2.0)`; it would
    // come first by name.
    let r = deb_run("", &[("app", "2-1")], repo).result.unwrap();
    assert_eq!(
        names(&r),
        ["app 2-1", "b-versioned-httpd 2.4.57-2", "c-webserver 1-1"]
    );
    // Installed providers count the same way.
    let installed = "
Package: a-plain-httpd
Version: 1-1
Architecture: amd64
Provides: httpd, webserver
";
    let r = deb_run(installed, &[("app", "2-1")], repo).result.unwrap();
    assert_eq!(names(&r), ["app 2-1", "b-versioned-httpd 2.4.57-2"]);
    let installed = "
Package: old-httpd
Version: 1-1
Architecture: amd64
Provides: httpd (= 2.2), webserver
";
    let r = deb_run(installed, &[("app", "2-1")], repo).result.unwrap();
    assert_eq!(names(&r), ["app 2-1"]);
}

/// nginx 1.22.1-9 installed with a dynamic module bound to its ABI.
const MODULE_HOST: &str = "
Package: nginx
Version: 1.22.1-9
Architecture: amd64
Provides: httpd, nginx-abi-1.22.1-9

Package: libnginx-mod-http-geoip
Version: 1.22.1-9
Architecture: amd64
Depends: nginx-abi-1.22.1-9

Package: libnginx-mod-mail
Version: 1.22.1-9
Architecture: amd64
Depends: nginx (= 1.22.1-9)
";

#[test]
fn reverse_dependencies_are_upgraded_or_named() {
    let repo = "
Package: nginx
Version: 1.24.0-2
Architecture: amd64
Provides: httpd, nginx-abi-1.24.0-2

Package: libnginx-mod-http-geoip
Version: 1.24.0-2
Architecture: amd64
Depends: nginx-abi-1.24.0-2

Package: libnginx-mod-http-geoip
Version: 1.22.1-9
Architecture: amd64
Depends: nginx-abi-1.22.1-9

Package: libnginx-mod-mail
Version: 1.24.0-2
Architecture: amd64
Depends: nginx (= 1.24.0-2)
";
    let run = deb_run(MODULE_HOST, &[("nginx", "1.24.0-2")], repo);
    let r = run.result.unwrap();
    assert_eq!(
        names(&r),
        [
            "nginx 1.24.0-2",
            "libnginx-mod-http-geoip 1.24.0-2",
            "libnginx-mod-mail 1.24.0-2"
        ]
    );
    assert_eq!(
        r.install[1].reason,
        "installed libnginx-mod-http-geoip 1.22.1-9 depends on nginx-abi-1.22.1-9, which nginx 1.24.0-2 does not meet"
    );
    assert_eq!(
        run.batches,
        [
            batch(&["nginx"]),
            batch(&["libnginx-mod-http-geoip", "libnginx-mod-mail"])
        ]
    );
    // Without a fixed module in the repositories: an error naming both.
    let repo = "
Package: nginx
Version: 1.24.0-2
Architecture: amd64
Provides: httpd, nginx-abi-1.24.0-2

Package: libnginx-mod-mail
Version: 1.24.0-2
Architecture: amd64
Depends: nginx (= 1.24.0-2)
";
    let e = deb_run(MODULE_HOST, &[("nginx", "1.24.0-2")], repo)
        .result
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "libnginx-mod-http-geoip 1.22.1-9 (installed) depends on nginx-abi-1.22.1-9, which nginx 1.24.0-2 does not meet, and no configured repository offers a version of libnginx-mod-http-geoip that works with it"
    );
}

#[test]
fn breaks_force_an_upgrade_in_either_direction() {
    let installed = "
Package: nginx-common
Version: 1.22.1-9
Architecture: all

Package: nginx-extras
Version: 1.22.1-9
Architecture: amd64

Package: old-tool
Version: 1.0-1
Architecture: all
Breaks: nginx-common (>= 1.24)
";
    let repo = "
Package: nginx-common
Version: 1.24.0-2
Architecture: all
Breaks: nginx-extras (<< 1.24)

Package: nginx-extras
Version: 1.24.0-2
Architecture: amd64
Depends: nginx-common (>= 1.24)

Package: old-tool
Version: 2.0-1
Architecture: all
Breaks: nginx-common (<< 1.20)
";
    let r = deb_run(installed, &[("nginx-common", "1.24.0-2")], repo)
        .result
        .unwrap();
    assert_eq!(
        names(&r),
        [
            "nginx-common 1.24.0-2",
            "nginx-extras 1.24.0-2",
            "old-tool 2.0-1"
        ]
    );
    assert_eq!(
        reasons(&r)[1..],
        [
            "nginx-common breaks nginx-extras (<< 1.24); installed 1.22.1-9",
            "installed old-tool 1.0-1 breaks nginx-common (>= 1.24), which nginx-common 1.24.0-2 matches"
        ]
    );
    // No fixed version: an error.
    let repo = "
Package: nginx-common
Version: 1.24.0-2
Architecture: all
Breaks: nginx-extras (<< 1.24)
";
    let e = deb_run(installed, &[("nginx-common", "1.24.0-2")], repo)
        .result
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "nginx-common 1.24.0-2 breaks nginx-extras (<< 1.24), which nginx-extras 1.22.1-9 (installed) matches, and no configured repository offers a version of nginx-extras that it does not break"
    );
    // A package that conflicts with what it provides does not conflict
    // with itself, nor with the version it replaces.
    let installed = "Package: exim4\nVersion: 4.94-1\nArchitecture: amd64\nProvides: mail-transport-agent\nConflicts: mail-transport-agent\n";
    let repo = "Package: exim4\nVersion: 4.96-1\nArchitecture: amd64\nProvides: mail-transport-agent\nConflicts: mail-transport-agent\n";
    let r = deb_run(installed, &[("exim4", "4.96-1")], repo)
        .result
        .unwrap();
    assert_eq!(names(&r), ["exim4 4.96-1"]);
    // Two packages to install that conflict: an error.
    let repo = "
Package: app
Version: 1-1
Architecture: amd64
Depends: helper
Conflicts: helper (<< 2)

Package: helper
Version: 1-1
Architecture: amd64
";
    let e = deb_run("", &[("app", "1-1")], repo).result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "app 1-1 conflicts with helper (<< 2), which helper 1-1 matches, and both are to be installed"
    );
}

#[test]
fn a_dependency_is_not_downgraded_and_later_upgrades_are_checked() {
    let installed = "Package: libx\nVersion: 3-1\nArchitecture: amd64\n";
    let repo = "
Package: app
Version: 1-1
Architecture: amd64
Depends: libx (<< 3)

Package: libx
Version: 2-1
Architecture: amd64
";
    let e = deb_run(installed, &[("app", "1-1")], repo)
        .result
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "app 1-1 depends on libx (<< 3), but installed libx 3-1 is newer than what fits, and upkeep does not downgrade a dependency"
    );
    // app's bound is met by the installed libx until b's need upgrades it.
    let installed = "Package: libx\nVersion: 1-1\nArchitecture: amd64\n";
    let repo = "
Package: app
Version: 1-1
Architecture: amd64
Depends: libx (<< 2), b

Package: b
Version: 1-1
Architecture: amd64
Depends: libx (>= 2)

Package: libx
Version: 2-1
Architecture: amd64
";
    let e = deb_run(installed, &[("app", "1-1")], repo)
        .result
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "app 1-1 depends on libx (<< 2), but libx 2-1 is to be installed"
    );
}

#[test]
fn deb_epochs_and_tildes_order_as_dpkg() {
    let repo = "
Package: app
Version: 1-1
Architecture: amd64
Depends: liba (>= 1:1.0), libb (>= 2.0)

Package: liba
Version: 5.0-1
Architecture: amd64

Package: liba
Version: 1:1.0~rc1-1
Architecture: amd64

Package: liba
Version: 1:0.9-1
Architecture: amd64

Package: libb
Version: 2.0~rc1-1
Architecture: amd64
";
    // 1:1.0~rc1 sorts before 1:1.0, and 5.0 (epoch 0) before both.
    let e = deb_run("", &[("app", "1-1")], repo).result.unwrap_err();
    assert!(
        e.to_string().contains(
            "liba (>= 1:1.0), but the repositories offer liba 1:1.0~rc1-1, 1:0.9-1, 5.0-1"
        ),
        "{e}"
    );
    let repo = format!("{repo}\nPackage: liba\nVersion: 1:1.0-1\nArchitecture: amd64\n");
    let e = deb_run("", &[("app", "1-1")], &repo).result.unwrap_err();
    // 2.0~rc1 sorts before 2.0.
    assert!(
        e.to_string()
            .contains("libb (>= 2.0), but the repositories offer libb 2.0~rc1-1"),
        "{e}"
    );
    let repo = format!("{repo}\nPackage: libb\nVersion: 2.0-0.1\nArchitecture: amd64\n");
    let r = deb_run("", &[("app", "1-1")], &repo).result.unwrap();
    assert_eq!(names(&r), ["app 1-1", "liba 1:1.0-1", "libb 2.0-0.1"]);
}

#[test]
fn architectures_and_multi_arch() {
    let installed = "
Package: python3
Version: 3.11.2-1
Architecture: amd64
Multi-Arch: allowed

Package: perl-base
Version: 5.36.0-7
Architecture: amd64
Multi-Arch: foreign

Package: libfoo
Version: 1-1
Architecture: i386
Multi-Arch: same
";
    let repo = "
Package: app
Version: 1-1
Architecture: amd64
Depends: python3:any, perl-base, libfoo

Package: libfoo
Version: 1-1
Architecture: amd64

Package: libfoo
Version: 2-1
Architecture: i386
";
    let r = deb_run(installed, &[("app", "1-1")], repo).result.unwrap();
    // The i386 libfoo does not meet amd64 app's `libfoo`; the i386 one
    // offered is not for this host.
    assert_eq!(names(&r), ["app 1-1", "libfoo 1-1"]);
    assert_eq!(r.install[1].installed, None, "the i386 instance stays");
    // `:any` needs a Multi-Arch: allowed target.
    let installed = "Package: tool\nVersion: 1-1\nArchitecture: amd64\n";
    let repo = "Package: app\nVersion: 1-1\nArchitecture: amd64\nDepends: tool:any\n";
    let e = deb_run(installed, &[("app", "1-1")], repo)
        .result
        .unwrap_err();
    assert!(
        e.to_string().starts_with("app 1-1 depends on tool:any"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// rpm

/// An rpm package: requirements as `(name, flags, evr)`.
fn rpm_pkg(
    name: &str,
    evr: &str,
    requires: &[(&str, &str, &str)],
    provides: &[(&str, &str, &str)],
    conflicts: &[(&str, &str, &str)],
) -> PackageInfo {
    let bound = |flags: &str, evr: &str| {
        (!flags.is_empty()).then(|| (Op::from_rpm(flags).unwrap(), rv(evr)))
    };
    let mut provides: Vec<Relation> = provides
        .iter()
        .map(|(n, f, v)| rpm_relation(n, bound(f, v)))
        .collect();
    provides.insert(0, rpm_relation(name, Some((Op::Eq, rv(evr)))));
    PackageInfo {
        name: name.to_string(),
        version: rv(evr),
        arch: "x86_64".to_string(),
        multi_arch: MultiArch::No,
        depends: requires
            .iter()
            .flat_map(|(n, f, v)| rpm_requirement(n, bound(f, v)).unwrap())
            .collect(),
        provides,
        breaks: Vec::new(),
        conflicts: conflicts
            .iter()
            .map(|(n, f, v)| rpm_relation(n, bound(f, v)))
            .collect(),
        priority: None,
        essential: false,
        protected: false,
    }
}

#[test]
fn rpm_requires_with_and_without_release_provides_and_ignored_ones() {
    let installed = vec![
        rpm_pkg("foo", "1.0-5", &[], &[], &[]),
        rpm_pkg("bar", "2:3.4-1.el9", &[], &[], &[]),
        rpm_pkg(
            "glibc",
            "2.34-60.el9",
            &[],
            &[("libc.so.6()(64bit)", "", "")],
            &[],
        ),
    ];
    let repo = vec![
        rpm_pkg(
            "app",
            "2.0-1.el9",
            &[
                // No release: met by the installed foo-1.0-5.
                ("foo", "EQ", "1.0"),
                ("bar", ">=", "2:3.4"),
                ("libc.so.6()(64bit)", "", ""),
                ("rpmlib(PayloadIsZstd)", "<=", "5.4.18-1"),
                ("/bin/sh", "", ""),
                ("/usr/bin/python3", "", ""),
                ("(webserver >= 2 or httpd)", "", ""),
                ("(libz and (libq if libr))", "", ""),
            ],
            &[],
            &[],
        ),
        rpm_pkg("web", "1.0-1", &[], &[("webserver", "EQ", "2.4")], &[]),
        rpm_pkg("libz", "1.2-1", &[], &[], &[]),
    ];
    let run = resolve(
        Family::Rpm,
        "x86_64",
        installed.clone(),
        &[("app", rv("2.0-1.el9"))],
        &repo,
    );
    let r = run.result.unwrap();
    assert_eq!(names(&r), ["app 2.0-1.el9", "web 1.0-1", "libz 1.2-1"]);
    assert_eq!(
        r.install[1].reason,
        "app requires webserver >= 2, provided by web"
    );
    // Neither rpmlib() nor files nor the conditional part were asked for.
    assert_eq!(
        run.batches,
        [batch(&["app"]), batch(&["httpd", "libz", "webserver"])]
    );
    // With a release, the release counts.
    let repo = vec![
        rpm_pkg("app", "2.0-1", &[("foo", "=", "1.0-6")], &[], &[]),
        rpm_pkg("foo", "1.0-6", &[], &[], &[]),
        rpm_pkg("foo", "1.0-7", &[], &[], &[]),
    ];
    let r = resolve(
        Family::Rpm,
        "x86_64",
        installed.clone(),
        &[("app", rv("2.0-1"))],
        &repo,
    )
    .result
    .unwrap();
    assert_eq!(names(&r), ["app 2.0-1", "foo 1.0-6"]);
    assert_eq!(
        r.install[1].reason,
        "foo = 1.0-6 needed by app; installed 1.0-5"
    );
    // An unversioned Provide meets a versioned Requires in rpm.
    let repo = vec![
        rpm_pkg("app", "2.0-1", &[("mta", ">=", "3")], &[], &[]),
        rpm_pkg("postfix", "3.5-1", &[], &[("mta", "", "")], &[]),
    ];
    let r = resolve(
        Family::Rpm,
        "x86_64",
        installed.clone(),
        &[("app", rv("2.0-1"))],
        &repo,
    )
    .result
    .unwrap();
    assert_eq!(names(&r), ["app 2.0-1", "postfix 3.5-1"]);
    // Conflicts with an installed package, fixed by upgrading it.
    let repo = vec![
        rpm_pkg("app", "2.0-1", &[], &[], &[("foo", "<", "1.0-7")]),
        rpm_pkg("foo", "1.0-7", &[], &[], &[]),
    ];
    let r = resolve(
        Family::Rpm,
        "x86_64",
        installed,
        &[("app", rv("2.0-1"))],
        &repo,
    )
    .result
    .unwrap();
    assert_eq!(names(&r), ["app 2.0-1", "foo 1.0-7"]);
    assert_eq!(
        r.install[1].reason,
        "app conflicts with foo < 1.0-7; installed 1.0-5"
    );
}

// ---------------------------------------------------------------------------
// relations

#[test]
fn deb_relation_fields_parse() {
    let clauses = parse_deb_relations(
        "libc6 (>= 2.34), nginx-common (= 1.22.1-9+deb12u1), default-mta | mail-transport-agent, foo:any,\n bar:amd64 (<< 1:2~rc1), baz (<2), qux(>3) ,",
    )
    .unwrap();
    let text: Vec<String> = clauses.iter().map(|c| clause_text(c)).collect();
    assert_eq!(
        text,
        [
            "libc6 (>= 2.34)",
            "nginx-common (= 1.22.1-9+deb12u1)",
            "default-mta | mail-transport-agent",
            "foo:any",
            "bar:amd64 (<< 1:2~rc1)",
            // The obsolete `<` and `>` mean `<=` and `>=`.
            "baz (<= 2)",
            "qux (>= 3)",
        ]
    );
    assert_eq!(clauses[3][0].arch.as_deref(), Some("any"));
    assert!(parse_deb_relations("").unwrap().is_empty());
    for bad in [
        "foo (>= )",
        "foo (~ 1)",
        "foo (>= 1",
        "foo [amd64]",
        "foo <!nocheck>",
        "foo | | bar",
        "Foo_bar",
        "foo (>= a1)",
        "foo: (>= 1)",
    ] {
        assert!(parse_deb_relations(bad).is_err(), "{bad}");
    }
}

#[test]
fn deb_versions_against_relations_and_provides() {
    let rel = |t: &str| parse_deb_relations(t).unwrap().remove(0).remove(0);
    assert!(rel("a (>= 1:1.0)").satisfied_by(&dv("1:1.0-1")));
    assert!(!rel("a (>= 1:1.0)").satisfied_by(&dv("9.0-1")));
    assert!(!rel("a (>= 1.0)").satisfied_by(&dv("1.0~rc1-1")));
    assert!(rel("a (<< 1.0)").satisfied_by(&dv("1.0~rc1-1")));
    assert!(rel("a (= 1.0-1)").satisfied_by(&dv("0:1.0-1")));
    assert!(!rel("a (>> 1.0-1)").satisfied_by(&dv("1.0-1")));
    assert!(rel("a (<= 1.0-1)").satisfied_by(&dv("1.0-1")));
    assert!(rel("a").satisfied_by(&dv("0.1")));
    let provide = |t: &str| rel(t);
    assert!(rel("a").satisfied_by_provide(&provide("a")));
    assert!(!rel("a (>= 1)").satisfied_by_provide(&provide("a")));
    assert!(rel("a (>= 1)").satisfied_by_provide(&provide("a (= 1.5)")));
    assert!(!rel("a (>= 2)").satisfied_by_provide(&provide("a (= 1.5)")));
    assert!(!rel("a").satisfied_by_provide(&provide("b")));
}

#[test]
fn rpm_ranges_overlap_as_rpm_decides() {
    let req = |name: &str, flags: &str, evr: &str| {
        rpm_relation(name, Op::from_rpm(flags).map(|o| (o, rv(evr))))
    };
    // Without a release only epoch:version is compared.
    assert!(req("foo", "EQ", "1.0").satisfied_by(&rv("1.0-5")));
    assert!(!req("foo", "GT", "1.0").satisfied_by(&rv("1.0-5")));
    assert!(req("foo", "GE", "1.0").satisfied_by(&rv("1.0-5")));
    assert!(!req("foo", "EQ", "1.0-6").satisfied_by(&rv("1.0-5")));
    assert!(req("foo", "LT", "1.0-6").satisfied_by(&rv("1.0-5")));
    // A missing epoch is 0.
    assert!(!req("foo", "GE", "1.0").satisfied_by(&rv("0:0.9-1")));
    assert!(req("foo", "GE", "1.0").satisfied_by(&rv("1:0.9-1")));
    assert!(req("foo", "LE", "1:0.9").satisfied_by(&rv("1:0.9-3")));
    // Provides: an unversioned one meets everything; ranges overlap.
    assert!(req("foo", "GE", "3").satisfied_by_provide(&req("foo", "", "")));
    assert!(req("foo", "GE", "3").satisfied_by_provide(&req("foo", "EQ", "3.1")));
    assert!(!req("foo", "GE", "3").satisfied_by_provide(&req("foo", "EQ", "2.9")));
    assert!(req("foo", "LT", "3").satisfied_by_provide(&req("foo", "LE", "5")));
    assert!(!req("foo", "GT", "3").satisfied_by_provide(&req("foo", "LE", "3")));
    assert!(req("foo", "", "").satisfied_by_provide(&req("foo", "EQ", "1")));
    assert_eq!(req("foo", "GE", "1:2.0-3").to_string(), "foo >= 1:2.0-3");
}

#[test]
fn rpm_requirements_rich_and_ignored() {
    let clauses = |name: &str| -> Vec<String> {
        rpm_requirement(name, None)
            .unwrap()
            .iter()
            .map(|c| clause_text(c))
            .collect()
    };
    assert!(clauses("rpmlib(CompressedFileNames)").is_empty());
    assert!(clauses("/bin/sh").is_empty());
    assert_eq!(clauses("perl(Foo::Bar)"), ["perl(Foo::Bar)"]);
    assert_eq!(clauses("(baz or qux >= 2)"), ["baz | qux >= 2"]);
    assert_eq!(
        clauses("(pkgconfig(gtk+-3.0) and (a or b) and (c if d))"),
        ["pkgconfig(gtk+-3.0)", "a | b"]
    );
    // An `or` that a file may meet is rpm's to check.
    assert!(clauses("(/usr/bin/python3 or python3)").is_empty());
    assert!(clauses("(a with b)").is_empty());
    assert_eq!(clauses("((a or b) or c)"), ["a | b | c"]);
    for bad in ["(a or", "(a >= )", "(a xor b)", "(a) b", "()"] {
        assert!(rpm_requirement(bad, None).is_err(), "{bad}");
    }
}

#[test]
fn deb_paragraph_fields_fold_and_any_case() {
    let p = PackageInfo::from_deb_paragraph(
        "Package: app\nversion: 1:2.0-1\nARCHITECTURE: amd64\nMulti-Arch: foreign\nPre-Depends: init-system-helpers (>= 1.54~)\nDepends: libc6 (>= 2.34),\n libssl3 (>= 3.0.0)\nDescription: x\n Depends: not a field\nProvides: httpd (= 2.0)\nBreaks: old (<< 1)\nConflicts: other\n",
    )
    .unwrap();
    assert_eq!(p.version, dv("1:2.0-1"));
    assert_eq!(p.multi_arch, MultiArch::Foreign);
    let depends: Vec<String> = p.depends.iter().map(|c| clause_text(c)).collect();
    assert_eq!(
        depends,
        [
            "init-system-helpers (>= 1.54~)",
            "libc6 (>= 2.34)",
            "libssl3 (>= 3.0.0)"
        ]
    );
    assert_eq!(p.provides[0].to_string(), "httpd (= 2.0)");
    assert_eq!(p.breaks[0].to_string(), "old (<< 1)");
    assert_eq!(p.conflicts[0].to_string(), "other");
    let e = PackageInfo::from_deb_paragraph(
        "Package: app\nVersion: 1\nArchitecture: all\nDepends: a (>= )\n",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("app 1: Depends field"), "{e:#}");
}

#[test]
fn the_driver_hands_back_each_choice_with_the_offer_it_came_from() {
    let offer = |paragraph: &str, repo: &str| {
        let info = PackageInfo::from_deb_paragraph(paragraph).unwrap();
        Offer {
            candidate: crate::repo::Candidate {
                package: info.name.clone(),
                version: info.version.clone(),
                arch: info.arch.clone(),
                url: url::Url::parse(&format!("http://{repo}/{}.deb", info.name)).unwrap(),
                file_name: format!("{}.deb", info.name),
                size: 1,
                sha256: "ab".repeat(32),
            },
            info,
        }
    };
    let app = "Package: app\nVersion: 2-1\nArchitecture: amd64\nDepends: lib\n";
    let lib = "Package: lib\nVersion: 1-1\nArchitecture: amd64\n";
    let mut batches = Vec::new();
    let offers = |names: BTreeSet<String>| {
        batches.push(names.clone());
        // Two repositories offer lib 1-1: the first one's is used.
        let mut out = Vec::new();
        for (repo, text) in [("one", app), ("one", lib), ("two", lib)] {
            let o = offer(text, repo);
            if names.contains(&o.info.name) {
                out.push(o);
            }
        }
        async move { anyhow::Ok(out) }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (resolution, chosen) = runtime
        .block_on(super::resolve(
            Family::Deb,
            "amd64",
            Vec::new(),
            vec![("app".to_string(), dv("2-1"))],
            offers,
        ))
        .unwrap();
    assert_eq!(names(&resolution), ["app 2-1", "lib 1-1"]);
    let urls: Vec<&str> = chosen.iter().map(|o| o.candidate.url.as_str()).collect();
    assert_eq!(urls, ["http://one/app.deb", "http://one/lib.deb"]);
    assert_eq!(batches, [batch(&["app"]), batch(&["lib"])]);

    // A resolver error and an error of the offers are the driver's.
    let e = runtime
        .block_on(super::resolve(
            Family::Deb,
            "amd64",
            Vec::new(),
            vec![("app".to_string(), dv("3-1"))],
            |_| async { anyhow::Ok(vec![offer(app, "one")]) },
        ))
        .unwrap_err();
    assert!(e.to_string().starts_with("app 3-1 is requested"), "{e}");
    let e = runtime
        .block_on(super::resolve(
            Family::Deb,
            "amd64",
            Vec::new(),
            vec![("app".to_string(), dv("2-1"))],
            |_| async { anyhow::bail!("repository down") },
        ))
        .unwrap_err();
    assert_eq!(e.to_string(), "repository down");
}
