//! The replay guard end to end: an older InRelease of the same repository,
//! validly signed (what an attacker or a stale mirror would serve), is
//! refused by `upkeep check` and `upkeep upgrade` with exit 1 and one error
//! line, and the host is left as it was; removing the record the error
//! names accepts it.

use crate::rig::{self, show};
use crate::{host_with_repo, main_start};

/// Copies `dists/SUITE`'s Release, InRelease and Release.gpg from one
/// repository to another.
fn swap_release(from: &std::path::Path, to: &std::path::Path) {
    for name in ["Release", "InRelease", "Release.gpg"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn a_replayed_older_in_release_is_refused_by_check_and_upgrade_and_changes_nothing() {
    use rig::fixtures::{SUITE, sign_apt_release};
    let f = rig::fixtures::get().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let older = tmp.path().join("older");
    std::fs::create_dir_all(&older).unwrap();
    for dest in [&served, &older] {
        rig::cmd_ok(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(f.repo_root.join("debian"))
                .arg(dest),
        )
        .unwrap();
    }
    let dists = |d: &std::path::Path| d.join(format!("debian/dists/{SUITE}"));
    // The same repository as published earlier: the same indexes, an
    // older Date, signed by the repository's own key.
    let release = std::fs::read_to_string(dists(&older).join("Release")).unwrap();
    let dated: String = release
        .lines()
        .map(|l| {
            if l.starts_with("Date:") {
                "Date: Sat, 01 Jan 2000 00:00:00 UTC\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(dated, release, "the fixture's Release has a Date");
    std::fs::write(dists(&older).join("Release"), dated).unwrap();
    sign_apt_release(&older.join("debian"), &f.gnupg).unwrap();

    let h = host_with_repo(Some(served.clone()));
    h.install("1.0.0").unwrap();
    let before = main_start(&h);

    // The current metadata: an update is available, and its Date recorded.
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
    let records = h.c.path("/var/lib/upkeep/repositories");
    let recorded: Vec<_> = std::fs::read_dir(&records)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");

    // The older metadata served in its place: refused.
    swap_release(&dists(&older), &dists(&served));
    for cmd in [&["check"][..], &["upgrade", "--yes"][..]] {
        let out = h.upkeep(cmd).unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("upkeep: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{cmd:?}: one error line expected:\n{err}");
        for part in [
            "dists/",
            "Date Sat, 01 Jan 2000 00:00:00 UTC",
            "newest seen before",
            "remove /var/lib/upkeep/repositories/",
        ] {
            assert!(errors[0].contains(part), "{cmd:?}: {part:?} in:\n{err}");
        }
        println!("{cmd:?}\n    {}", errors[0]);
    }
    assert_eq!(main_start(&h), before, "the unit was touched");
    assert_eq!(h.dpkg_version().as_deref(), Some("1.0.0-1"));

    // A mirror rolled back on purpose: the record removed, as the error
    // says, the older metadata is accepted.
    std::fs::remove_file(&recorded[0]).unwrap();
    let out = h.upkeep(&["check"]).unwrap();
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
}
