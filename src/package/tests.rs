//! [`read`] and [`file_contents`] against real packages built in the test
//! with `dpkg-deb` (xz, gzip, zstd and uncompressed members) and
//! `rpmbuild` (gzip, xz, zstd and uncompressed payloads).

use std::path::{Path, PathBuf};

use super::testpkg::{Spec, build_deb, build_rpm};
use super::*;

const CONF: &[u8] = b"{\n  \"Listen\": \":8080\",\n  \"LicenseKey\": \"\"\n}\n";
const EXTRA: &[u8] = b"# extra settings\nlevel = 3\n";
const BIN: &[u8] = b"#!/bin/sh\necho demo\n";
const SHARED: &[u8] = b"one content, two names\n";

/// 512 KiB that do not compress to nothing, to make the streams span
/// several blocks.
fn big() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..512 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

const DEB_CHANGELOG: &str = "\
demo (1:2.1.0-1) stable; urgency=medium

  * Catalogues get a visibility setting.

 -- Demo Maintainers <demo@example.com>  Sat, 01 Nov 2025 12:00:00 +0000

demo (2.0.0-1) stable; urgency=medium

  * BREAKING: Database.Dialect must now be set
    explicitly in demo.conf.
  * API products.

 -- Demo Maintainers <demo@example.com>  Tue, 01 Jul 2025 12:00:00 +0000

demo (1.1.0-1) stable; urgency=high

  * Security fix.

 -- Demo Maintainers <demo@example.com>  Wed, 15 Jan 2025 12:00:00 +0000

demo (1.0.0-1) stable; urgency=low

  * Initial release.

 -- Demo Maintainers <demo@example.com>  Tue, 01 Oct 2024 12:00:00 +0000
";

const RPM_CHANGELOG: &str = "\
* Sat Nov 01 2025 Demo Maintainers <demo@example.com> - 1:2.1.0-1
- Catalogues get a visibility setting.

* Tue Jul 01 2025 Demo Maintainers <demo@example.com> - 2.0.0-1
- BREAKING: Database.Dialect must now be set
  explicitly in demo.conf.
- API products.

* Wed Jan 15 2025 Demo Maintainers <demo@example.com> - 1.1.0-1
- This is a breaking change for plugins.

* Tue Oct 01 2024 Demo Maintainers <demo@example.com> - 1.0.0-1
- Initial release.
";

fn with_spec<T>(
    changelog: &str,
    epoch: Option<u32>,
    version: &str,
    f: impl FnOnce(&Spec<'_>) -> T,
) -> T {
    let big = big();
    let files: [(&str, &[u8]); 5] = [
        ("/opt/demo/demo.conf", CONF),
        ("/etc/demo/extra.conf", EXTRA),
        ("/opt/demo/bin/demo", BIN),
        ("/opt/demo/big.dat", &big),
        ("/opt/demo/data/a.txt", SHARED),
    ];
    f(&Spec {
        name: "demo",
        version,
        epoch,
        files: &files,
        hard_links: &[("/opt/demo/data/b.txt", "/opt/demo/data/a.txt")],
        dirs: &["/opt/demo"],
        config: &["/opt/demo/demo.conf", "/etc/demo/extra.conf"],
        extra_conffiles: "remove-on-upgrade /etc/demo/old.conf\n",
        changelog,
    })
}

/// What both families must give for the demo package.
fn check_contents(pkg: &Path) {
    let get = |f: &str| file_contents(pkg, Path::new(f)).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(get("/opt/demo/demo.conf").as_deref(), Some(CONF));
    assert_eq!(get("etc/demo/extra.conf").as_deref(), Some(EXTRA));
    assert_eq!(get("./opt/demo/bin/demo").as_deref(), Some(BIN));
    assert_eq!(get("/opt/demo/big.dat"), Some(big()));
    assert_eq!(get("/opt/demo/data/a.txt").as_deref(), Some(SHARED));
    assert_eq!(get("/opt/demo/data/b.txt").as_deref(), Some(SHARED));
    assert_eq!(get("/opt/demo/missing.conf"), None);
    assert_eq!(get("/etc/demo/old.conf"), None);
    let e = file_contents(pkg, Path::new("/opt/demo")).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = file_contents(pkg, Path::new("/opt/demo/../../etc/shadow")).unwrap_err();
    assert!(e.to_string().contains(".."), "{e}");
    assert!(e.to_string().starts_with(&pkg.display().to_string()), "{e}");
}

fn check_deb(compression: &str) {
    let dir = tempfile::tempdir().unwrap();
    let deb = with_spec(DEB_CHANGELOG, None, "1:2.1.0-1", |s| {
        build_deb(dir.path(), s, compression)
    });
    // What dpkg-deb wrote: the compression asked for, and b.txt a hard link.
    let suffix = match compression {
        "gzip" => ".gz",
        "xz" => ".xz",
        "zstd" => ".zst",
        _ => "",
    };
    let mut members = Vec::new();
    let mut links = Vec::new();
    let mut archive = ar::Archive::new(std::fs::File::open(&deb).unwrap());
    while let Some(entry) = archive.next_entry() {
        members.push(String::from_utf8_lossy(entry.unwrap().header().identifier()).into_owned());
    }
    deb::walk(&deb, |kind, member| {
        if kind == deb::Member::Data {
            for entry in tar::Archive::new(member).entries()? {
                let entry = entry?;
                if entry.header().entry_type().is_hard_link() {
                    links.push(entry.path()?.into_owned());
                }
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        members,
        [
            "debian-binary".to_string(),
            format!("control.tar{suffix}"),
            format!("data.tar{suffix}")
        ]
    );
    assert_eq!(links, [PathBuf::from("./opt/demo/data/b.txt")]);
    let info = read(&deb).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(info.name, "demo");
    assert_eq!(info.version, "1:2.1.0-1");
    assert_eq!(
        info.conffiles,
        [
            PathBuf::from("/opt/demo/demo.conf"),
            PathBuf::from("/etc/demo/extra.conf")
        ]
    );
    let versions: Vec<_> = info.changelog.iter().map(|e| e.version.as_str()).collect();
    assert_eq!(versions, ["1:2.1.0-1", "2.0.0-1", "1.1.0-1", "1.0.0-1"]);
    let breaking: Vec<_> = info.changelog.iter().map(|e| e.breaking).collect();
    assert_eq!(breaking, [false, true, true, false]);
    let e = &info.changelog[1];
    assert_eq!(e.date.as_deref(), Some("2025-07-01T12:00:00+00:00"));
    assert_eq!(e.urgency.as_deref(), Some("medium"));
    assert_eq!(
        e.text,
        "* BREAKING: Database.Dialect must now be set\n  explicitly in demo.conf.\n* API products."
    );
    let notes = notes_between(&info.changelog, Family::Deb, "1.0.0-1", &info.version);
    assert_eq!(notes.len(), 3);
    check_contents(&deb);
}

#[test]
fn deb_xz() {
    check_deb("xz");
}

#[test]
fn deb_gzip() {
    check_deb("gzip");
}

#[test]
fn deb_zstd() {
    check_deb("zstd");
}

#[test]
fn deb_uncompressed() {
    check_deb("none");
}

fn check_rpm(payload: &str, compressor: ::rpm::CompressionType) {
    let dir = tempfile::tempdir().unwrap();
    let rpm = with_spec(RPM_CHANGELOG, Some(1), "2.1.0-1", |s| {
        build_rpm(dir.path(), s, payload)
    });
    // What rpmbuild wrote: the compression asked for, a.txt and b.txt one inode.
    let meta = ::rpm::PackageMetadata::open(&rpm).unwrap();
    assert_eq!(meta.get_payload_compressor().unwrap(), compressor);
    let inodes = meta
        .header
        .get_entry_data_as_u32_array(::rpm::IndexTag::RPMTAG_FILEINODES)
        .unwrap();
    let paths = meta.get_file_paths().unwrap();
    let inode = |p: &str| inodes[paths.iter().position(|x| x == Path::new(p)).unwrap()];
    assert_eq!(inode("/opt/demo/data/a.txt"), inode("/opt/demo/data/b.txt"));
    let info = read(&rpm).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(info.name, "demo");
    assert_eq!(info.version, "1:2.1.0-1");
    // Header order (sorted by path).
    assert_eq!(
        info.conffiles,
        [
            PathBuf::from("/etc/demo/extra.conf"),
            PathBuf::from("/opt/demo/demo.conf")
        ]
    );
    let versions: Vec<_> = info.changelog.iter().map(|e| e.version.as_str()).collect();
    assert_eq!(versions, ["1:2.1.0-1", "2.0.0-1", "1.1.0-1", "1.0.0-1"]);
    let breaking: Vec<_> = info.changelog.iter().map(|e| e.breaking).collect();
    assert_eq!(breaking, [false, true, true, false]);
    let e = &info.changelog[1];
    assert_eq!(
        e.author.as_deref(),
        Some("Demo Maintainers <demo@example.com>")
    );
    assert!(
        e.date
            .as_deref()
            .is_some_and(|d| d.starts_with("2025-07-01T")),
        "{:?}",
        e.date
    );
    assert_eq!(e.urgency, None);
    assert_eq!(
        e.text,
        "- BREAKING: Database.Dialect must now be set\n  explicitly in demo.conf.\n- API products."
    );
    let notes = notes_between(&info.changelog, Family::Rpm, "1.1.0-1", &info.version);
    let versions: Vec<_> = notes.iter().map(|e| e.version.as_str()).collect();
    assert_eq!(versions, ["1:2.1.0-1", "2.0.0-1"]);
    check_contents(&rpm);
}

#[test]
fn rpm_gzip() {
    check_rpm("w9.gzdio", ::rpm::CompressionType::Gzip);
}

#[test]
fn rpm_xz() {
    check_rpm("w2.xzdio", ::rpm::CompressionType::Xz);
}

#[test]
fn rpm_zstd() {
    check_rpm("w19.zstdio", ::rpm::CompressionType::Zstd);
}

#[test]
fn rpm_uncompressed() {
    check_rpm("w0.ufdio", ::rpm::CompressionType::None);
}

#[test]
fn kind_by_magic_when_the_extension_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let deb = with_spec(DEB_CHANGELOG, None, "2.1.0-1", |s| {
        build_deb(dir.path(), s, "xz")
    });
    let rpm = with_spec(RPM_CHANGELOG, None, "2.1.0-1", |s| {
        build_rpm(dir.path(), s, "w9.gzdio")
    });
    for (pkg, name) in [(deb, "a.pkg"), (rpm, "b")] {
        let copy = dir.path().join(name);
        std::fs::copy(&pkg, &copy).unwrap();
        let info = read(&copy).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(info.version, "2.1.0-1");
        assert_eq!(
            file_contents(&copy, Path::new("/opt/demo/demo.conf"))
                .unwrap()
                .as_deref(),
            Some(CONF)
        );
    }
}

#[test]
fn errors_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.deb");
    let garbage = dir.path().join("garbage.rpm");
    std::fs::write(&garbage, b"this is no rpm at all, just text\n").unwrap();
    let unknown = dir.path().join("notes.txt");
    std::fs::write(&unknown, b"hello").unwrap();
    let not_deb = dir.path().join("other.deb");
    std::fs::write(&not_deb, b"!<arch>\n").unwrap();
    for path in [&missing, &garbage, &unknown, &not_deb] {
        for e in [
            read(path).unwrap_err(),
            file_contents(path, Path::new("/etc/x")).unwrap_err(),
        ] {
            let (plain, alt) = (e.to_string(), format!("{e:#}"));
            assert!(plain.starts_with(&path.display().to_string()), "{plain}");
            assert!(!plain.contains('\n') && !alt.contains('\n'), "{alt}");
        }
    }
}

/// A tar member with raw name bytes (the `tar` crate refuses to set a
/// path with `..`, as it should).
fn raw_member(tar: &mut tar::Builder<Vec<u8>>, name: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

#[test]
fn deb_member_with_dot_dot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut control = tar::Builder::new(Vec::new());
    raw_member(
        &mut control,
        b"./control",
        b"Package: evil\nVersion: 1.0-1\n",
    );
    let control = control.into_inner().unwrap();
    let mut data = tar::Builder::new(Vec::new());
    raw_member(
        &mut data,
        b"./opt/../../etc/cron.d/evil",
        b"* * * * * root id\n",
    );
    let data = data.into_inner().unwrap();
    let deb = dir.path().join("evil.deb");
    let mut ar = ar::Builder::new(std::fs::File::create(&deb).unwrap());
    for (name, body) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar", &control),
        ("data.tar", &data),
    ] {
        ar.append(&ar::Header::new(name.into(), body.len() as u64), body)
            .unwrap();
    }
    drop(ar);
    let e = read(&deb).unwrap_err().to_string();
    assert!(
        e.contains("..") && e.starts_with(&deb.display().to_string()),
        "{e}"
    );
    let e = file_contents(&deb, Path::new("/etc/cron.d/evil"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(".."), "{e}");
}
