//! Test helpers: real `.deb` and `.rpm` files built with `dpkg-deb` and
//! `rpmbuild` in a temporary directory. A missing tool fails the test with
//! the Debian package that provides it; nothing is skipped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A package to build.
pub struct Spec<'a> {
    /// Package name.
    pub name: &'a str,
    /// Debian: the whole version (`1:2.0.0-1`). RPM: `version-release`,
    /// with the epoch in [`Spec::epoch`].
    pub version: &'a str,
    /// The RPM `Epoch:` (a deb puts it in the version).
    pub epoch: Option<u32>,
    /// Installed path → content.
    pub files: &'a [(&'a str, &'a [u8])],
    /// Hard links to create: link path → existing path (both in `files`' tree).
    pub hard_links: &'a [(&'a str, &'a str)],
    /// Directories the rpm owns (`%dir`); a deb owns all of its directories.
    pub dirs: &'a [&'a str],
    /// Conffiles (deb `conffiles`, rpm `%config(noreplace)`).
    pub config: &'a [&'a str],
    /// Extra lines for the deb `conffiles` (flags...).
    pub extra_conffiles: &'a str,
    /// Debian changelog text (gzip'd into `changelog.Debian.gz`), or the
    /// RPM `%changelog` section's body.
    pub changelog: &'a str,
}

/// Runs a build tool; a tool that is not installed fails the test with the
/// package to install.
fn run(cmd: &mut Command, tool: &str, package: &str) {
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{tool} is not installed: install the `{package}` package")
        }
        Err(e) => panic!("running {tool}: {e}"),
    };
    assert!(
        out.status.success(),
        "{tool} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lays out `files` and `hard_links` under `root`.
fn stage(root: &Path, spec: &Spec<'_>) {
    for (path, content) in spec.files {
        let at = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(at.parent().expect("file has a parent")).expect("stage dir");
        fs::write(&at, content).expect("stage file");
    }
    for (link, existing) in spec.hard_links {
        fs::hard_link(
            root.join(existing.trim_start_matches('/')),
            root.join(link.trim_start_matches('/')),
        )
        .expect("stage hard link");
    }
}

/// Builds `NAME.deb` in `dir` with `dpkg-deb -Z<compression>` (`gzip`,
/// `xz`, `zstd`, `none`).
pub fn build_deb(dir: &Path, spec: &Spec<'_>, compression: &str) -> PathBuf {
    let root = dir.join(format!("deb-root-{compression}"));
    stage(&root, spec);
    let doc = root.join("usr/share/doc").join(spec.name);
    fs::create_dir_all(&doc).expect("doc dir");
    let f = fs::File::create(doc.join("changelog.Debian.gz")).expect("changelog");
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    gz.write_all(spec.changelog.as_bytes()).expect("gzip");
    gz.finish().expect("gzip");
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian).expect("DEBIAN");
    fs::write(
        debian.join("control"),
        format!(
            "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: Test <test@example.com>\nDescription: test package\n a package built by upkeep's tests\n",
            spec.name, spec.version
        ),
    )
    .expect("control");
    let mut conffiles: String = spec.config.iter().map(|c| format!("{c}\n")).collect();
    conffiles.push_str(spec.extra_conffiles);
    fs::write(debian.join("conffiles"), conffiles).expect("conffiles");
    let out = dir.join(format!("{}-{compression}.deb", spec.name));
    run(
        Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .arg(format!("-Z{compression}"))
            .arg("--build")
            .arg(&root)
            .arg(&out),
        "dpkg-deb",
        "dpkg",
    );
    out
}

/// Builds an `.rpm` in `dir` with `rpmbuild -bb`, its payload written with
/// `_binary_payload` (`w9.gzdio`, `w2.xzdio`, `w19.zstdio`, `w0.ufdio`).
pub fn build_rpm(dir: &Path, spec: &Spec<'_>, payload: &str) -> PathBuf {
    let tag = payload.replace('.', "-");
    let top = dir.join(format!("rpm-top-{tag}"));
    let staging = dir.join(format!("rpm-staging-{tag}"));
    stage(&staging, spec);
    let (version, release) = spec.version.split_once('-').expect("rpm version-release");
    let mut files = String::new();
    let paths = spec
        .files
        .iter()
        .map(|(p, _)| *p)
        .chain(spec.hard_links.iter().map(|(l, _)| *l));
    for dir in spec.dirs {
        files.push_str(&format!("%dir {dir}\n"));
    }
    for path in paths {
        if spec.config.contains(&path) {
            files.push_str(&format!("%config(noreplace) {path}\n"));
        } else {
            files.push_str(&format!("{path}\n"));
        }
    }
    let epoch = spec
        .epoch
        .map(|e| format!("Epoch: {e}\n"))
        .unwrap_or_default();
    let text = format!(
        "Name: {name}\nVersion: {version}\nRelease: {release}\n{epoch}Summary: test package\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n\
         %description\nA package built by upkeep's tests.\n\
         %install\nmkdir -p %{{buildroot}}\ncp -a {staging}/. %{{buildroot}}/\n\
         %files\n{files}\
         %changelog\n{changelog}",
        name = spec.name,
        staging = staging.display(),
        changelog = spec.changelog,
    );
    let spec_path = dir.join(format!("{}-{tag}.spec", spec.name));
    fs::write(&spec_path, text).expect("spec");
    run(
        Command::new("rpmbuild")
            .arg("-bb")
            .arg("--quiet")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--define")
            .arg(format!("_dbpath {}", dir.join("db").display()))
            .arg("--define")
            .arg(format!("_binary_payload {payload}"))
            .arg("--define")
            .arg("_build_id_links none")
            .arg("--define")
            .arg("debug_package %{nil}")
            .arg(&spec_path),
        "rpmbuild",
        "rpm",
    );
    let built = top
        .join("RPMS/noarch")
        .join(format!("{}-{}.noarch.rpm", spec.name, spec.version));
    assert!(built.exists(), "rpmbuild made no {}", built.display());
    built
}
