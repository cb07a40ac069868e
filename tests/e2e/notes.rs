//! The release notes upkeep reads from the fixture packages themselves:
//! both families carry the same entries, and 2.0.0's are marked breaking.

use upkeep::version::Family;

#[test]
fn both_families_carry_the_same_release_notes_with_2_0_0_breaking() {
    let f = super::rig::fixtures::get().unwrap();
    let newest = f.newest().version.clone();
    let i = f.releases.iter().position(|r| r.version == newest).unwrap();
    let deb = upkeep::package::read(f.deb(&newest)).unwrap();
    let rpm = upkeep::package::read(&f.rpms[i]).unwrap();
    assert_eq!(deb.conffiles, rpm.conffiles);
    assert_eq!(
        deb.conffiles,
        [std::path::PathBuf::from("/opt/portal/portal.conf")]
    );
    let summary = |p: &upkeep::package::PackageInfo| -> Vec<(String, bool)> {
        p.changelog
            .iter()
            .map(|e| (e.version.clone(), e.breaking))
            .collect()
    };
    assert_eq!(summary(&deb), summary(&rpm));
    for (family, info) in [(Family::Deb, &deb), (Family::Rpm, &rpm)] {
        let notes = upkeep::package::notes_between(&info.changelog, family, "1.0.0-1", "2.1.0-1");
        let versions: Vec<&str> = notes.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(
            versions,
            ["2.1.0-1", "2.0.1-1", "2.0.0-1", "1.1.0-1"],
            "{family:?}"
        );
        let breaking: Vec<&str> = notes
            .iter()
            .filter(|e| e.breaking)
            .map(|e| e.version.as_str())
            .collect();
        assert_eq!(breaking, ["2.0.0-1"], "{family:?}");
    }
}
