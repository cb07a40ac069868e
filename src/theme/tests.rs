//! The theme merge on fixtures: trees built in memory, and on disk in
//! temporary directories for reading and writing.

use std::path::{Path, PathBuf};

use super::*;

fn tree(files: &[(&str, &[u8])]) -> Files {
    files
        .iter()
        .map(|(p, c)| (PathBuf::from(p), c.to_vec()))
        .collect()
}

fn theme(policy: Policy) -> Theme {
    Theme {
        path: "/opt/portal/themes/custom".into(),
        default: "/opt/portal/themes/default".into(),
        merge: policy,
    }
}

fn one<'a>(files: &'a [FileMerge], path: &str) -> &'a FileMerge {
    files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} not in {files:?}"))
}

const CSS_BASE: &str =
    "body {\n  color: black;\n}\na {\n  color: blue;\n}\nh1 {\n  font-size: 2em;\n}\n";

#[test]
fn clean_merge_keeps_the_operator_edit_and_takes_the_vendor_change() {
    let ours_css = CSS_BASE.replace("color: black", "color: #333");
    let theirs_css = CSS_BASE.replace("2em", "2.5em");
    let base = tree(&[("theme.css", CSS_BASE.as_bytes())]);
    let ours = tree(&[("theme.css", ours_css.as_bytes())]);
    let theirs = tree(&[("theme.css", theirs_css.as_bytes())]);
    let files = merge(&base, &ours, &theirs);
    let f = one(&files, "theme.css");
    assert_eq!(f.action, Action::Merged);
    let merged = String::from_utf8(f.content.clone().unwrap()).unwrap();
    assert!(merged.contains("color: #333"), "{merged}");
    assert!(merged.contains("2.5em"), "{merged}");
    assert!(!merged.contains("<<<<<<<"), "{merged}");
    let m = review(&theme(Policy::Merge), &base, Some(&ours), &theirs);
    assert!(m.applies() && !m.blocks());
    assert_eq!(m.after(&ours)[Path::new("theme.css")], merged.as_bytes());
}

#[test]
fn overlapping_edits_conflict_naming_file_and_hunks() {
    let ours_css = CSS_BASE.replace("2em", "3em");
    let theirs_css = CSS_BASE.replace("2em", "2.5em");
    let base = tree(&[("theme.css", CSS_BASE.as_bytes())]);
    let ours = tree(&[("theme.css", ours_css.as_bytes())]);
    let theirs = tree(&[("theme.css", theirs_css.as_bytes())]);
    let m = review(&theme(Policy::Merge), &base, Some(&ours), &theirs);
    let f = one(&m.files, "theme.css");
    assert_eq!(f.action, Action::Conflict);
    assert!(f.content.is_none());
    assert_eq!(
        f.hunks,
        ["line 8 of the installed default: here line 8, new default line 8"]
    );
    let markers = f.markers.as_deref().unwrap();
    assert!(markers.contains("<<<<<<<") && markers.contains("3em") && markers.contains("2.5em"));
    assert!(m.blocks() && !m.applies());
    let lines = m.conflicts();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("/opt/portal/themes/custom/theme.css: line 8"),
        "{}",
        lines[0]
    );
    // Nothing written for a conflicting merge.
    assert_eq!(m.after(&ours), ours);
    let j = m.to_json();
    assert_eq!(j["blocked"], true);
    assert_eq!(j["files"][0]["action"], "conflict");
    // keep and report never block.
    assert!(!review(&theme(Policy::Keep), &base, Some(&ours), &theirs).blocks());
    assert!(!review(&theme(Policy::Report), &base, Some(&ours), &theirs).blocks());
}

#[test]
fn binary_one_side_changed_is_taken_both_is_a_conflict() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-old".as_slice();
    let vendor = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-new".as_slice();
    let mine = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-mine".as_slice();
    assert!(is_binary(png) && !is_binary(b"plain text\n"));
    // The vendor changed it: taken.
    let f = merge_file(Path::new("logo.png"), Some(png), Some(png), Some(vendor)).unwrap();
    assert_eq!((f.action, f.binary), (Action::Updated, true));
    assert_eq!(f.content.as_deref(), Some(vendor));
    // The operator changed it: kept.
    let f = merge_file(Path::new("logo.png"), Some(png), Some(mine), Some(png)).unwrap();
    assert_eq!((f.action, f.content.as_deref()), (Action::Kept, None));
    // Both: a conflict.
    let f = merge_file(Path::new("logo.png"), Some(png), Some(mine), Some(vendor)).unwrap();
    assert_eq!((f.action, f.binary), (Action::Conflict, true));
    assert!(f.hunks[0].contains("binary"), "{:?}", f.hunks);
    // Invalid UTF-8 without a NUL is binary too.
    assert!(is_binary(b"caf\xe9\n"));
}

#[test]
fn a_deleted_file_goes_when_untouched_and_conflicts_when_edited() {
    let base = tree(&[("old.html", b"<p>old</p>\n"), ("theme.css", b"a{}\n")]);
    let theirs = tree(&[("theme.css", b"a{}\n")]);
    let untouched = base.clone();
    let m = review(&theme(Policy::Merge), &base, Some(&untouched), &theirs);
    assert_eq!(one(&m.files, "old.html").action, Action::Removed);
    assert!(!m.after(&untouched).contains_key(Path::new("old.html")));
    let edited = tree(&[("old.html", b"<p>mine</p>\n"), ("theme.css", b"a{}\n")]);
    let m = review(&theme(Policy::Merge), &base, Some(&edited), &theirs);
    let f = one(&m.files, "old.html");
    assert_eq!(f.action, Action::Conflict);
    assert!(f.hunks[0].contains("deletes it"), "{:?}", f.hunks);
    assert!(m.blocks());
    // Deleted by the operator, unchanged by the vendor: stays deleted.
    let gone = tree(&[("theme.css", b"a{}\n")]);
    let same = merge(&base, &gone, &base);
    assert_eq!(one(&same, "old.html").action, Action::Kept);
    // Deleted by the operator, changed by the vendor: a conflict.
    let changed = tree(&[("old.html", b"<p>new</p>\n"), ("theme.css", b"a{}\n")]);
    assert_eq!(
        one(&merge(&base, &gone, &changed), "old.html").action,
        Action::Conflict
    );
}

#[test]
fn a_renamed_file_is_a_deletion_plus_an_addition() {
    let base = tree(&[("header.html", b"<h1>Portal</h1>\n")]);
    let theirs = tree(&[("partials/header.html", b"<h1>Portal</h1>\n")]);
    // Untouched: the old name goes, the new one arrives.
    let m = merge(&base, &base, &theirs);
    assert_eq!(one(&m, "header.html").action, Action::Removed);
    let added = one(&m, "partials/header.html");
    assert_eq!(added.action, Action::Added);
    assert_eq!(added.content.as_deref(), Some(&b"<h1>Portal</h1>\n"[..]));
    // Edited under the old name: the deletion conflicts, the addition
    // still arrives.
    let ours = tree(&[("header.html", b"<h1>My portal</h1>\n")]);
    let m = merge(&base, &ours, &theirs);
    assert_eq!(one(&m, "header.html").action, Action::Conflict);
    assert_eq!(one(&m, "partials/header.html").action, Action::Added);
}

#[test]
fn vendor_added_and_untouched_files() {
    let base = tree(&[("layout.html", b"<main/>\n"), ("theme.css", b"a{}\n")]);
    let ours = tree(&[
        ("layout.html", b"<main/>\n"),
        ("theme.css", b"a{}\n"),
        ("mine.css", b"b{}\n"),
    ]);
    let theirs = tree(&[
        ("layout.html", b"<main/>\n"),
        ("theme.css", b"a{color:red}\n"),
        ("footer.html", b"<footer/>\n"),
    ]);
    let m = merge(&base, &ours, &theirs);
    assert_eq!(one(&m, "footer.html").action, Action::Added);
    let css = one(&m, "theme.css");
    assert_eq!(css.action, Action::Updated);
    assert_eq!(css.content.as_deref(), Some(&b"a{color:red}\n"[..]));
    // The operator's own file stays; the untouched one is not listed.
    assert_eq!(one(&m, "mine.css").action, Action::Kept);
    assert!(!m.iter().any(|f| f.path == Path::new("layout.html")));
    // A file both added with the same content is nothing to do; with
    // different texts, the line merge from an empty base conflicts.
    let both = tree(&[("footer.html", b"<footer>mine</footer>\n")]);
    let f = merge_file(
        Path::new("footer.html"),
        None,
        both.get(Path::new("footer.html")).map(Vec::as_slice),
        Some(b"<footer/>\n"),
    )
    .unwrap();
    assert_eq!(f.action, Action::Conflict);
}

#[test]
fn no_custom_theme_or_no_new_default_merges_nothing() {
    let base = tree(&[("theme.css", b"a{}\n")]);
    let m = review(&theme(Policy::Merge), &base, None, &base);
    assert!(m.files.is_empty() && m.note.is_some());
    let m = review(&theme(Policy::Merge), &base, Some(&base), &Files::new());
    assert!(m.files.is_empty());
    assert!(m.note.as_deref().unwrap().contains("no default theme"));
}

#[test]
fn policies_parse_and_keep_writes_nothing() {
    for p in [Policy::Merge, Policy::Keep, Policy::Report] {
        assert_eq!(p.as_str().parse::<Policy>().unwrap(), p);
        assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
    }
    assert!("theirs".parse::<Policy>().is_err());
    let base = tree(&[("theme.css", b"a{}\n")]);
    let theirs = tree(&[("theme.css", b"a{color:red}\n")]);
    for p in [Policy::Keep, Policy::Report] {
        let m = review(&theme(p), &base, Some(&base), &theirs);
        assert_eq!(m.files[0].action, Action::Updated);
        assert!(!m.applies());
        assert_eq!(m.after(&base), base);
        assert!(write(&m).unwrap().is_empty());
    }
}

#[test]
fn live_reads_and_write_applies_on_disk() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("custom");
    assert_eq!(live(&custom).unwrap(), None);
    std::fs::create_dir_all(custom.join("img")).unwrap();
    let css = CSS_BASE.replace("color: black", "color: #333");
    std::fs::write(custom.join("theme.css"), &css).unwrap();
    std::fs::set_permissions(
        custom.join("theme.css"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(custom.join("old.html"), "<p>old</p>\n").unwrap();
    std::fs::write(custom.join("img/logo.svg"), "<svg/>\n").unwrap();
    std::os::unix::fs::symlink("theme.css", custom.join("link.css")).unwrap();
    let ours = live(&custom).unwrap().unwrap();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        [
            Path::new("img/logo.svg"),
            Path::new("old.html"),
            Path::new("theme.css")
        ]
    );
    let base = tree(&[
        ("theme.css", CSS_BASE.as_bytes()),
        ("old.html", b"<p>old</p>\n"),
        ("img/logo.svg", b"<svg/>\n"),
    ]);
    let theirs_css = CSS_BASE.replace("2em", "2.5em");
    let theirs = tree(&[
        ("theme.css", theirs_css.as_bytes()),
        ("img/logo.svg", b"<svg/>\n"),
        ("parts/footer.html", b"<footer/>\n"),
    ]);
    let t = Theme {
        path: custom.clone(),
        default: dir.path().join("default"),
        merge: Policy::Merge,
    };
    let m = review(&t, &base, Some(&ours), &theirs);
    let mut changed = write(&m).unwrap();
    changed.sort();
    assert_eq!(
        changed,
        [
            custom.join("old.html"),
            custom.join("parts/footer.html"),
            custom.join("theme.css")
        ]
    );
    let after = live(&custom).unwrap().unwrap();
    assert_eq!(after, m.after(&ours));
    let written = std::fs::read_to_string(custom.join("theme.css")).unwrap();
    assert!(written.contains("#333") && written.contains("2.5em"));
    let mode = std::fs::metadata(custom.join("theme.css"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640, "the live file's mode is kept");
    // No temporary file left behind.
    let names: Vec<_> = std::fs::read_dir(&custom)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn a_package_s_default_theme_is_read_from_deb_and_rpm() {
    use crate::package::testpkg::{Spec, build_deb, build_rpm};
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        name: "demo",
        version: "1.0-1",
        epoch: None,
        files: &[
            ("/opt/demo/themes/default/theme.css", b"a{}\n"),
            ("/opt/demo/themes/default/img/logo.svg", b"<svg/>\n"),
            ("/opt/demo/themes/defaults.txt", b"not in the theme\n"),
            ("/opt/demo/demo.conf", b"{}"),
        ],
        hard_links: &[],
        dirs: &[],
        config: &[],
        extra_conffiles: "",
        changelog: "",
    };
    let want = tree(&[("img/logo.svg", b"<svg/>\n"), ("theme.css", b"a{}\n")]);
    let deb = build_deb(dir.path(), &spec, "gzip");
    let default = Path::new("/opt/demo/themes/default");
    assert_eq!(packaged(&deb, default).unwrap(), want);
    let rpm = build_rpm(dir.path(), &spec, "gzip");
    assert_eq!(packaged(&rpm, default).unwrap(), want);
    assert!(packaged(&deb, Path::new("/opt/none")).unwrap().is_empty());
}
