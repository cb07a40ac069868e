//! The resolver against the real apt of this machine: for each scenario, a
//! flat repository (a generated `Packages` file and its `Release`, served
//! as `deb [trusted=yes] file:DIR ./`) and a generated dpkg status file are
//! given to `apt-get -s --no-install-recommends install NAME=VERSION...`
//! (after `apt-get update`, everything under a temporary `Dir`, no network),
//! and the same texts to `upkeep::resolve::resolve` through
//! `repo::apt::parse_offers` and `resolve::installed_deb`. The sets of
//! `(name, version)` installed must be equal, or both must fail; where the
//! resolver deliberately departs from apt (see the `resolve` module
//! documentation), the test asserts the documented difference.
//!
//! Needs `apt-get` (it fails, never skips, without it).
//! `UPKEEP_TEST_VERBOSE=1` prints what both did in every scenario.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use upkeep::repo::Candidate;
use upkeep::repo::apt::parse_offers;
use upkeep::resolve::{Offer, installed_deb, resolve};
use upkeep::version::{Family, PkgVersion};

/// `(name, version)` pairs, ordered.
type Set = BTreeSet<(String, String)>;

/// The `(name, version)` of each `Inst` line of `apt-get -s` output:
/// `Inst NAME [OLD] (NEW ORIGIN [ARCH])`. A `NAME:ARCH` keeps its
/// qualifier.
pub fn apt_simulate_inst_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let open = rest.find('(')?;
            let version = rest[open + 1..].split_whitespace().next()?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// The names of `Remv NAME [OLD]` lines.
fn apt_simulate_removals(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Remv "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The paragraphs of `text` (blank-line separated, leading spaces of each
/// line trimmed so that fixtures can be indented).
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn field<'p>(paragraph: &'p str, name: &str) -> &'p str {
    paragraph
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("fixture paragraph without {name}: {paragraph}"))
}

/// A Packages file: each paragraph with the `Filename`, `Size`, `SHA256`
/// (a made-up one: nothing is downloaded), `Maintainer` and `Description`
/// an archive gives.
fn packages_text(fixture: &str) -> String {
    paragraphs(fixture)
        .iter()
        .map(|p| {
            let name = field(p, "Package");
            let version = field(p, "Version").replace(':', "%3a");
            let arch = field(p, "Architecture");
            format!(
                "{p}Maintainer: upkeep tests <t@example.org>\nFilename: pool/{name}_{version}_{arch}.deb\nSize: 1000\nSHA256: {}\nDescription: {name}\n fixture\n\n",
                "ab".repeat(32)
            )
        })
        .collect()
}

/// A dpkg status file: `Status: install ok installed` unless the fixture
/// gives one, and the fields dpkg writes.
fn status_text(fixture: &str) -> String {
    paragraphs(fixture)
        .iter()
        .map(|p| {
            let mut out = String::new();
            let mut lines = p.lines();
            let first = lines.next().unwrap_or_default();
            out.push_str(first);
            out.push('\n');
            if !p.contains("\nStatus: ") {
                out.push_str("Status: install ok installed\n");
            }
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("Priority: optional\nMaintainer: upkeep tests <t@example.org>\nDescription: fixture\n\n");
            out
        })
        .collect()
}

/// What apt did.
struct Apt {
    ok: bool,
    install: Set,
    removed: Vec<String>,
    output: String,
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Runs real apt on the scenario, in `dir`.
fn run_apt(dir: &Path, status: &str, packages: &str, request: &[(&str, &str)]) -> Apt {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("Packages"), packages).unwrap();
    std::fs::write(
        repo.join("Release"),
        format!(
            "Origin: upkeep-tests\nLabel: upkeep-tests\nSuite: ./\nDate: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures: amd64 all\nSHA256:\n {} {} Packages\n",
            sha256_hex(packages.as_bytes()),
            packages.len()
        ),
    )
    .unwrap();
    let root = dir.join("apt");
    for d in [
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let status_file = dir.join("status");
    std::fs::write(&status_file, status).unwrap();
    let list = dir.join("sources.list");
    std::fs::write(
        &list,
        format!("deb [trusted=yes] file:{} ./\n", repo.display()),
    )
    .unwrap();
    let options = [
        format!("Dir={}", root.display()),
        format!("Dir::State::status={}", status_file.display()),
        format!("Dir::Etc::SourceList={}", list.display()),
        // Empty directories: nothing of the host's.
        format!(
            "Dir::Etc::SourceParts={}",
            root.join("etc/apt/sources.list.d").display()
        ),
        format!(
            "Dir::Etc::Parts={}",
            root.join("etc/apt/apt.conf.d").display()
        ),
        format!(
            "Dir::Etc::Preferences={}",
            root.join("etc/apt/preferences").display()
        ),
        format!(
            "Dir::Etc::PreferencesParts={}",
            root.join("etc/apt/preferences.d").display()
        ),
        "Dir::Cache::pkgcache=".to_string(),
        "Dir::Cache::srcpkgcache=".to_string(),
        "APT::Architecture=amd64".to_string(),
        "APT::Architectures=amd64".to_string(),
        "APT::Sandbox::User=root".to_string(),
        "Acquire::Languages=none".to_string(),
        "Debug::NoLocking=1".to_string(),
    ];
    // No apt.conf of the host.
    let config = dir.join("apt.conf");
    std::fs::write(&config, "").unwrap();
    let apt_get = |args: &[String]| {
        let mut cmd = Command::new("apt-get");
        cmd.env("APT_CONFIG", &config).env("LC_ALL", "C");
        for o in &options {
            cmd.arg("-o").arg(o);
        }
        cmd.args(args);
        cmd.output()
            .unwrap_or_else(|e| panic!("this test needs apt-get: {e}"))
    };
    let update = apt_get(&["update".to_string()]);
    let update_text = format!(
        "{}{}",
        String::from_utf8_lossy(&update.stdout),
        String::from_utf8_lossy(&update.stderr)
    );
    assert!(
        update.status.success() && !update_text.contains("\nW: ") && !update_text.contains("E: "),
        "apt-get update failed: {update_text}"
    );
    let mut args: Vec<String> = ["-s", "-q", "--no-install-recommends", "install"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(request.iter().map(|(n, v)| format!("{n}={v}")));
    let out = apt_get(&args);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Apt {
        ok: out.status.success(),
        install: apt_simulate_inst_lines(&output).into_iter().collect(),
        removed: apt_simulate_removals(&output),
        output,
    }
}

/// Runs the resolver on the same texts.
fn run_upkeep(status: &str, packages: &str, request: &[(&str, &str)]) -> Result<Set, String> {
    let installed = installed_deb(status).map_err(|e| format!("status: {e:#}"))?;
    let request = request
        .iter()
        .map(|(n, v)| (n.to_string(), PkgVersion::deb(v).unwrap()))
        .collect();
    let base = url::Url::parse("file:///repo/").unwrap();
    let offers = |names: BTreeSet<String>| {
        let found = parse_offers(packages.as_bytes(), &names, "amd64").map(|entries| {
            entries
                .into_iter()
                .map(|o| Offer {
                    candidate: Candidate {
                        url: base.join(&o.entry.filename).unwrap(),
                        file_name: o.entry.filename.rsplit('/').next().unwrap().to_string(),
                        package: o.entry.package,
                        version: o.entry.version,
                        arch: o.entry.arch,
                        size: o.entry.size,
                        sha256: o.entry.sha256,
                    },
                    info: o.info,
                })
                .collect::<Vec<_>>()
        });
        async move { found }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (resolution, chosen) = runtime
        .block_on(resolve(Family::Deb, "amd64", installed, request, offers))
        .map_err(|e| format!("{e:#}"))?;
    assert_eq!(resolution.install.len(), chosen.len());
    for (c, o) in resolution.install.iter().zip(&chosen) {
        assert_eq!(
            (&c.name, &c.version),
            (&o.candidate.package, &o.candidate.version)
        );
    }
    Ok(resolution
        .install
        .iter()
        .map(|c| (c.name.clone(), c.version.to_string()))
        .collect())
}

/// What a scenario expects of the two.
enum Expect {
    /// The same set installed.
    Same,
    /// Both fail.
    BothFail,
    /// A documented difference: apt does `apt`, upkeep does `upkeep`
    /// (`Err` with a piece of its message when it fails).
    Differ {
        apt: AptDoes,
        upkeep: Result<&'static [(&'static str, &'static str)], &'static str>,
    },
}

/// What apt does in a documented difference.
enum AptDoes {
    /// Fails.
    Fails,
    /// Installs these and removes those.
    Plan(
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    ),
}

fn set(pairs: &[(&str, &str)]) -> Set {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Runs a scenario on both and checks `expect`; `want` is the set both
/// should install when they agree (checked too, so that a scenario tests
/// what it says).
fn scenario(
    name: &str,
    installed: &str,
    repo: &str,
    request: &[(&str, &str)],
    expect: Expect,
    want: &[(&str, &str)],
) {
    let dir = tempfile::Builder::new()
        .prefix("resolve-apt")
        .tempdir()
        .unwrap();
    let status = status_text(installed);
    let packages = packages_text(repo);
    let apt = run_apt(dir.path(), &status, &packages, request);
    let ours = run_upkeep(&status, &packages, request);
    let report = format!(
        "scenario {name:?}\n--- apt ({}):\n{}\n--- upkeep: {ours:?}",
        if apt.ok { "ok" } else { "failed" },
        apt.output.trim_end()
    );
    if std::env::var_os("UPKEEP_TEST_VERBOSE").is_some() {
        println!("{report}");
    }
    match expect {
        Expect::Same => {
            assert!(apt.ok, "apt failed: {report}");
            assert!(apt.removed.is_empty(), "apt removes: {report}");
            let ours = ours
                .as_ref()
                .unwrap_or_else(|e| panic!("upkeep failed: {e}\n{report}"));
            assert_eq!(&apt.install, ours, "apt and upkeep differ: {report}");
            assert_eq!(
                apt.install,
                set(want),
                "not what the scenario means: {report}"
            );
        }
        Expect::BothFail => {
            assert!(!apt.ok, "apt succeeded: {report}");
            let e = ours.as_ref().expect_err(&report);
            // Both messages, for the log.
            println!(
                "{name}: apt says:\n{}\nupkeep says: {e}",
                apt.output.trim_end()
            );
            assert!(!e.contains('\n'), "one line: {e}");
        }
        Expect::Differ {
            apt: apt_does,
            upkeep,
        } => {
            match apt_does {
                AptDoes::Fails => assert!(!apt.ok, "apt succeeded: {report}"),
                AptDoes::Plan(inst, removed) => {
                    assert!(apt.ok, "apt failed: {report}");
                    assert_eq!(apt.install, set(inst), "{report}");
                    let removed: Vec<String> = removed.iter().map(|r| r.to_string()).collect();
                    assert_eq!(apt.removed, removed, "{report}");
                }
            }
            match upkeep {
                Ok(pairs) => assert_eq!(ours.as_ref().ok(), Some(&set(pairs)), "{report}"),
                Err(piece) => {
                    let e = ours.as_ref().expect_err(&report);
                    assert!(e.contains(piece), "{e}: {report}");
                    println!(
                        "{name}: apt says:\n{}\nupkeep says: {e}",
                        apt.output.trim_end()
                    );
                }
            }
        }
    }
}

/// The host every scenario starts from.
const BASE: &str = "
    Package: libc6
    Version: 2.36-9
    Architecture: amd64
    Multi-Arch: same
";

fn host(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn siblings_at_an_exact_version_move_together() {
    let installed = host(
        "
        Package: nginx
        Version: 1.0-1
        Architecture: amd64
        Depends: nginx-common (= 1.0-1), libc6 (>= 2.34)

        Package: nginx-common
        Version: 1.0-1
        Architecture: all
        ",
    );
    let repo = "
        Package: nginx
        Version: 1.0-1
        Architecture: amd64
        Depends: nginx-common (= 1.0-1), libc6 (>= 2.34)

        Package: nginx
        Version: 1.2-1
        Architecture: amd64
        Depends: nginx-common (= 1.2-1), libc6 (>= 2.34)

        Package: nginx-common
        Version: 1.0-1
        Architecture: all

        Package: nginx-common
        Version: 1.2-1
        Architecture: all
    ";
    let want = [("nginx", "1.2-1"), ("nginx-common", "1.2-1")];
    scenario(
        "both requested",
        &installed,
        repo,
        &[("nginx", "1.2-1"), ("nginx-common", "1.2-1")],
        Expect::Same,
        &want,
    );
    scenario(
        "one requested, its sibling follows",
        &installed,
        repo,
        &[("nginx", "1.2-1")],
        Expect::Same,
        &want,
    );
}

#[test]
fn a_new_library_the_host_lacks_is_installed() {
    scenario(
        "new library",
        &host(
            "
            Package: app
            Version: 1.0-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libnew1 (>= 1.0), libc6

        Package: libnew1
        Version: 1.0-1
        Architecture: amd64
        Depends: libc6 (>= 2.30)

        Package: libnew1
        Version: 1.1-1
        Architecture: amd64
        Depends: libc6 (>= 2.30)
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("libnew1", "1.1-1")],
    );
}

#[test]
fn alternatives_take_the_first_installable_one() {
    let repo = "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-a | mta-b

        Package: mta-a
        Version: 1-1
        Architecture: amd64

        Package: mta-b
        Version: 1-1
        Architecture: amd64

        Package: app2
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-missing | mta-b
    ";
    scenario(
        "first alternative installable",
        &host(""),
        repo,
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("mta-a", "1-1")],
    );
    scenario(
        "first alternative not available",
        &host(""),
        repo,
        &[("app2", "1.2-1")],
        Expect::Same,
        &[("app2", "1.2-1"), ("mta-b", "1-1")],
    );
    scenario(
        "second alternative installed",
        &host(
            "
            Package: mta-b
            Version: 1-1
            Architecture: amd64
            ",
        ),
        repo,
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1")],
    );
}

#[test]
fn a_virtual_package_is_met_through_provides() {
    scenario(
        "one provider",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mail-transport-agent

        Package: exim4
        Version: 4.96-1
        Architecture: amd64
        Provides: mail-transport-agent
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("exim4", "4.96-1")],
    );
    scenario(
        "versioned provide",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libapi (>= 2)

        Package: libapi-impl
        Version: 7-1
        Architecture: amd64
        Provides: libapi (= 3)
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("libapi-impl", "7-1")],
    );
}

#[test]
fn a_versioned_dependency_upgrades_an_installed_library() {
    scenario(
        ">= upgrades the library",
        &host(
            "
            Package: libssl3
            Version: 3.0.8-1
            Architecture: amd64
            Depends: libc6 (>= 2.34)

            Package: app
            Version: 1.0-1
            Architecture: amd64
            Depends: libssl3 (>= 3.0.0)
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libssl3 (>= 3.0.9)

        Package: libssl3
        Version: 3.0.8-1
        Architecture: amd64
        Depends: libc6 (>= 2.34)

        Package: libssl3
        Version: 3.0.11-1
        Architecture: amd64
        Depends: libc6 (>= 2.34)
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("libssl3", "3.0.11-1")],
    );
    scenario(
        "an installed library that fits stays",
        &host(
            "
            Package: libssl3
            Version: 3.0.11-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libssl3 (>= 3.0.9)

        Package: libssl3
        Version: 3.0.13-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1")],
    );
}

#[test]
fn pre_depends_are_met_like_depends() {
    scenario(
        "Pre-Depends",
        &host(
            "
            Package: init-helpers
            Version: 1.4-1
            Architecture: all
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Pre-Depends: init-helpers (>= 1.5~)
        Depends: libc6

        Package: init-helpers
        Version: 1.5-1
        Architecture: all
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("init-helpers", "1.5-1")],
    );
}

#[test]
fn an_installed_reverse_dependency_at_the_old_version_is_upgraded() {
    scenario(
        "reverse dependency (= old)",
        &host(
            "
            Package: nginx
            Version: 1.0-1
            Architecture: amd64

            Package: libnginx-mod-mail
            Version: 1.0-1
            Architecture: amd64
            Depends: nginx (= 1.0-1)
            ",
        ),
        "
        Package: nginx
        Version: 1.2-1
        Architecture: amd64

        Package: libnginx-mod-mail
        Version: 1.0-1
        Architecture: amd64
        Depends: nginx (= 1.0-1)

        Package: libnginx-mod-mail
        Version: 1.2-1
        Architecture: amd64
        Depends: nginx (= 1.2-1)
        ",
        &[("nginx", "1.2-1")],
        Expect::Same,
        &[("nginx", "1.2-1"), ("libnginx-mod-mail", "1.2-1")],
    );
}

#[test]
fn breaks_force_the_broken_package_up() {
    scenario(
        "Breaks: y (<< 2)",
        &host(
            "
            Package: y
            Version: 1.0-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Breaks: y (<< 2)

        Package: y
        Version: 2.0-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("y", "2.0-1")],
    );
    scenario(
        "an installed package breaks the new version",
        &host(
            "
            Package: plugin
            Version: 1.0-1
            Architecture: amd64
            Breaks: app (>= 1.1)

            Package: app
            Version: 1.0-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64

        Package: plugin
        Version: 1.1-1
        Architecture: amd64
        Breaks: app (>= 1.3)
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("plugin", "1.1-1")],
    );
}

#[test]
fn an_architecture_all_multi_arch_foreign_dependency_is_installed() {
    scenario(
        "Architecture: all, Multi-Arch: foreign",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: app-data (= 1.2-1), helper

        Package: app-data
        Version: 1.2-1
        Architecture: all
        Multi-Arch: foreign

        Package: helper
        Version: 3-1
        Architecture: amd64
        Multi-Arch: foreign
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("app-data", "1.2-1"), ("helper", "3-1")],
    );
}

#[test]
fn epochs_and_tildes_order_as_dpkg() {
    scenario(
        "epochs and ~",
        &host(
            "
            Package: app
            Version: 1:1.9-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1:2.0~beta1-1
        Architecture: amd64
        Depends: libx (>= 1:1.0~rc1)

        Package: app
        Version: 2.5-1
        Architecture: amd64

        Package: libx
        Version: 1.5-1
        Architecture: amd64

        Package: libx
        Version: 1:1.0~rc1-1
        Architecture: amd64

        Package: libx
        Version: 1:1.0~rc2-1
        Architecture: amd64
        ",
        &[("app", "1:2.0~beta1-1")],
        Expect::Same,
        &[("app", "1:2.0~beta1-1"), ("libx", "1:1.0~rc2-1")],
    );
}

#[test]
fn installed_states_count_as_apt_counts_them() {
    let repo = "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libfoo (>= 1)

        Package: libfoo
        Version: 1.1-1
        Architecture: amd64
    ";
    for state in ["unpacked", "half-configured", "triggers-pending"] {
        scenario(
            &format!("libfoo {state}"),
            &host(&format!(
                "
                Package: libfoo
                Status: install ok {state}
                Version: 1.0-1
                Architecture: amd64
                "
            )),
            repo,
            &[("app", "1.2-1")],
            Expect::Same,
            &[("app", "1.2-1")],
        );
    }
    scenario(
        "libfoo config-files",
        &host(
            "
            Package: libfoo
            Status: deinstall ok config-files
            Version: 1.0-1
            Architecture: amd64
            ",
        ),
        repo,
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("libfoo", "1.1-1")],
    );
}

#[test]
fn an_unmeetable_dependency_fails_both() {
    scenario(
        "unmeetable",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libmissing (>= 2)

        Package: libmissing
        Version: 1.0-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::BothFail,
        &[],
    );
    scenario(
        "not offered at all",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libnowhere
        ",
        &[("app", "1.2-1")],
        Expect::BothFail,
        &[],
    );
}

#[test]
fn a_virtual_package_with_two_providers() {
    scenario(
        "two providers",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mail-transport-agent

        Package: zz-mta
        Version: 1-1
        Architecture: amd64
        Provides: mail-transport-agent

        Package: aa-mta
        Version: 1-1
        Architecture: amd64
        Provides: mail-transport-agent
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("aa-mta", "1-1")],
    );
    scenario(
        "two providers, the second by name more important",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mail-transport-agent

        Package: zz-mta
        Version: 1-1
        Architecture: amd64
        Priority: important
        Provides: mail-transport-agent

        Package: aa-mta
        Version: 1-1
        Architecture: amd64
        Priority: extra
        Provides: mail-transport-agent
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("zz-mta", "1-1")],
    );
    scenario(
        "two providers, an essential one",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mail-transport-agent

        Package: aa-mta
        Version: 1-1
        Architecture: amd64
        Priority: required
        Provides: mail-transport-agent

        Package: zz-mta
        Version: 1-1
        Architecture: amd64
        Priority: optional
        Essential: yes
        Provides: mail-transport-agent
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("zz-mta", "1-1")],
    );
}

#[test]
fn alternatives_prefer_what_is_installed_and_pass_over_uninstallable_ones() {
    scenario(
        "a later alternative is installed, but too old",
        &host(
            "
            Package: mta-b
            Version: 1-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-a | mta-b (>= 2)

        Package: mta-a
        Version: 1-1
        Architecture: amd64

        Package: mta-b
        Version: 2-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("mta-b", "2-1")],
    );
    scenario(
        "the first alternative cannot be installed",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-a | mta-b

        Package: mta-a
        Version: 1-1
        Architecture: amd64
        Depends: libgone

        Package: mta-b
        Version: 1-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("mta-b", "1-1")],
    );
    scenario(
        "the first alternative cannot be installed, two levels down",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-a | mta-b

        Package: mta-a
        Version: 1-1
        Architecture: amd64
        Depends: liba

        Package: liba
        Version: 1-1
        Architecture: amd64
        Depends: libgone (>= 2)

        Package: libgone
        Version: 1-1
        Architecture: amd64

        Package: mta-b
        Version: 1-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("mta-b", "1-1")],
    );
    scenario(
        "the first alternative conflicts with a requested package",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mta-a | mta-b

        Package: app-extra
        Version: 1.2-1
        Architecture: amd64
        Conflicts: mta-a

        Package: mta-a
        Version: 1-1
        Architecture: amd64

        Package: mta-b
        Version: 1-1
        Architecture: amd64
        ",
        &[("app", "1.2-1"), ("app-extra", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("app-extra", "1.2-1"), ("mta-b", "1-1")],
    );
    scenario(
        "a real package before a provider",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: awk

        Package: aaa-awk
        Version: 1-1
        Architecture: amd64
        Priority: required
        Provides: awk

        Package: awk
        Version: 1-1
        Architecture: amd64
        Priority: extra
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[("app", "1.2-1"), ("awk", "1-1")],
    );
}

#[test]
fn a_chain_of_dependencies_is_followed_batch_by_batch() {
    scenario(
        "chain",
        &host(
            "
            Package: libb
            Version: 1-1
            Architecture: amd64

            Package: other
            Version: 1-1
            Architecture: amd64
            Depends: libb (<< 2)
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: liba

        Package: liba
        Version: 1-1
        Architecture: amd64
        Depends: libb (>= 2)

        Package: libb
        Version: 2-1
        Architecture: amd64
        Depends: libc6 (>= 2.30)

        Package: other
        Version: 2-1
        Architecture: amd64
        Depends: libb (>= 2)
        ",
        &[("app", "1.2-1")],
        Expect::Same,
        &[
            ("app", "1.2-1"),
            ("liba", "1-1"),
            ("libb", "2-1"),
            ("other", "2-1"),
        ],
    );
}

#[test]
fn a_requested_version_nobody_offers_fails_both() {
    scenario(
        "requested version not offered",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        ",
        &[("app", "9-1")],
        Expect::BothFail,
        &[],
    );
}

#[test]
fn documented_differences_from_apt() {
    // apt considers only the candidate (newest) version of a dependency;
    // upkeep also takes an older offered version that fits.
    scenario(
        "an older version fits, the newest does not",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: libx (<< 2)

        Package: libx
        Version: 1.5-1
        Architecture: amd64

        Package: libx
        Version: 2.1-1
        Architecture: amd64
        ",
        &[("app", "1.2-1")],
        Expect::Differ {
            apt: AptDoes::Fails,
            upkeep: Ok(&[("app", "1.2-1"), ("libx", "1.5-1")]),
        },
        &[],
    );
    // Between providers apt cannot rank (same standing, same priority),
    // apt takes the one its cache met last; upkeep the first by name.
    scenario(
        "two providers of equal rank",
        &host(""),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Depends: mail-transport-agent

        Package: aa-mta
        Version: 1-1
        Architecture: amd64
        Priority: optional
        Provides: mail-transport-agent

        Package: zz-mta
        Version: 1-1
        Architecture: amd64
        Priority: optional
        Provides: mail-transport-agent
        ",
        &[("app", "1.2-1")],
        Expect::Differ {
            apt: AptDoes::Plan(&[("app", "1.2-1"), ("zz-mta", "1-1")], &[]),
            upkeep: Ok(&[("app", "1.2-1"), ("aa-mta", "1-1")]),
        },
        &[],
    );
    // apt removes an installed reverse dependency that the upgrade breaks
    // and no offered version fixes; upkeep never removes packages.
    scenario(
        "a reverse dependency no version fixes",
        &host(
            "
            Package: nginx
            Version: 1.0-1
            Architecture: amd64

            Package: libnginx-mod-mail
            Version: 1.0-1
            Architecture: amd64
            Depends: nginx (= 1.0-1)
            ",
        ),
        "
        Package: nginx
        Version: 1.2-1
        Architecture: amd64

        Package: libnginx-mod-mail
        Version: 1.0-1
        Architecture: amd64
        Depends: nginx (= 1.0-1)
        ",
        &[("nginx", "1.2-1")],
        Expect::Differ {
            apt: AptDoes::Plan(&[("nginx", "1.2-1")], &["libnginx-mod-mail"]),
            upkeep: Err(
                "libnginx-mod-mail 1.0-1 (installed) depends on nginx (= 1.0-1), which nginx 1.2-1 does not meet",
            ),
        },
        &[],
    );
    // apt removes an installed package that conflicts and cannot be
    // upgraded; upkeep never removes packages.
    scenario(
        "a conflict no upgrade fixes",
        &host(
            "
            Package: old-tool
            Version: 1.0-1
            Architecture: amd64
            ",
        ),
        "
        Package: app
        Version: 1.2-1
        Architecture: amd64
        Conflicts: old-tool
        ",
        &[("app", "1.2-1")],
        Expect::Differ {
            apt: AptDoes::Plan(&[("app", "1.2-1")], &["old-tool"]),
            upkeep: Err(
                "app 1.2-1 conflicts with old-tool, which old-tool 1.0-1 (installed) matches",
            ),
        },
        &[],
    );
}

#[test]
fn inst_lines_are_parsed() {
    let text = "NOTE: This is only a simulation!\nInst libssl3 [3.0.8-1] (3.0.11-1 upkeep-tests:./ [amd64])\nInst app (1:2.0~beta1-1 upkeep-tests:./ [amd64])\nConf app (1:2.0~beta1-1 upkeep-tests:./ [amd64])\nRemv old [1.0-1]\n";
    assert_eq!(
        apt_simulate_inst_lines(text),
        [
            ("libssl3".to_string(), "3.0.11-1".to_string()),
            ("app".to_string(), "1:2.0~beta1-1".to_string())
        ]
    );
    assert_eq!(apt_simulate_removals(text), ["old"]);
}
