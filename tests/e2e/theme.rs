//! The operator's theme across an upgrade, on the real rig: the custom
//! theme (a copy of the packaged default, edited) is three-way merged with
//! the new version's default — the operator's edit stays, the vendor's
//! change and new file arrive — and `rollback` puts it back byte for byte;
//! an edit on the very line the vendor changed blocks `plan` and `upgrade`
//! (exit 3) before anything stops.

use super::json;
use super::rig::{Family, PortalHost, show};

const DEFAULT: &str = "/opt/portal/themes/default";
const CUSTOM: &str = "/opt/portal/themes/custom";

/// The operator's theme: a copy of the installed default, one line of
/// theme.css changed by `sed`; and the `[targets.portal.theme]` table.
fn customize(h: &PortalHost, sed: &str) {
    h.c.run(&["cp", "-a", DEFAULT, CUSTOM]).unwrap();
    h.c.run(&["sed", "-i", sed, &format!("{CUSTOM}/theme.css")])
        .unwrap();
    h.append_upkeep_toml(&format!(
        "[targets.portal.theme]\npath = \"{CUSTOM}\"\ndefault = \"{DEFAULT}\"\n"
    ))
    .unwrap();
}

/// `sha256sum` of every file of the custom theme, sorted by path.
fn digests(h: &PortalHost) -> String {
    let out =
        h.c.run(&[
            "sh",
            "-c",
            &format!("cd {CUSTOM} && find . -type f -print0 | sort -z | xargs -0 sha256sum"),
        ])
        .unwrap();
    assert!(!out.trim().is_empty(), "no files under {CUSTOM}");
    out
}

fn merge_upgrade_and_rollback(family: Family) {
    let h = crate::boot(family);
    h.install("1.0.0").unwrap();
    // The vendor changes the link colour (line 8) in 1.1.0; the operator
    // changes the background (line 4).
    customize(&h, "s/background: #fff;/background: #fafafa;/");
    let before = digests(&h);

    let plan = h.upkeep(&["plan", "--to", "1.1.0"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    for want in [
        "theme /opt/portal/themes/custom at 1.1.0",
        "merged    theme.css",
        "added     footer.html",
        "theme-merge",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    assert!(
        !text.contains("layout.html"),
        "untouched file listed:\n{text}"
    );
    let j = json(&h.upkeep(&["plan", "--to", "1.1.0", "--json"]).unwrap());
    let theme = &j["theme"];
    assert_eq!(theme["path"], CUSTOM, "{j:#}");
    assert_eq!(theme["blocked"], false, "{theme:#}");
    let files = &theme["hops"][0]["files"];
    let action = |p: &str| {
        files
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["action"].as_str().unwrap().to_string())
    };
    assert_eq!(action("theme.css").as_deref(), Some("merged"), "{theme:#}");
    assert_eq!(action("footer.html").as_deref(), Some("added"), "{theme:#}");
    assert_eq!(action("layout.html"), None, "{theme:#}");

    let up = h.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let css = h.c.read(&format!("{CUSTOM}/theme.css")).unwrap();
    assert!(
        css.contains("background: #fafafa;"),
        "the edit is lost:\n{css}"
    );
    assert!(
        css.contains("color: #0052a3;"),
        "the vendor's change is missing:\n{css}"
    );
    assert!(!css.contains("<<<<<<<"), "{css}");
    assert_eq!(
        h.c.read(&format!("{CUSTOM}/footer.html")).unwrap(),
        h.c.read(&format!("{DEFAULT}/footer.html")).unwrap(),
        "the vendor's new file arrives"
    );
    assert_eq!(
        h.c.read(&format!("{CUSTOM}/layout.html")).unwrap(),
        h.c.read(&format!("{DEFAULT}/layout.html")).unwrap()
    );
    assert_ne!(digests(&h), before);

    let back = h.upkeep(&["rollback", "--yes"]).unwrap();
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    assert_eq!(
        digests(&h),
        before,
        "rollback restores the custom theme byte for byte"
    );
}

#[test]
fn merge_keeps_the_edit_takes_the_vendor_s_and_rollback_restores_deb() {
    merge_upgrade_and_rollback(Family::Deb);
}

#[test]
fn merge_keeps_the_edit_takes_the_vendor_s_and_rollback_restores_rpm() {
    merge_upgrade_and_rollback(Family::Rpm);
}

#[test]
fn a_conflicting_edit_blocks_plan_and_upgrade_before_the_stop() {
    let h = crate::boot(Family::Deb);
    h.install("1.0.0").unwrap();
    // The very line 1.1.0 changes.
    customize(&h, "s/color: #0066cc;/color: #ff0000;/");
    let before = digests(&h);
    let invocation = h.unit_invocation();

    let plan = h.upkeep(&["plan", "--to", "1.1.0"]).unwrap();
    assert_eq!(plan.status.code(), Some(3), "{}", show(&plan));
    let text = show(&plan);
    for want in [
        "conflict  theme.css",
        "/opt/portal/themes/custom/theme.css: line 8 of the installed default",
        "theme-merge",
        "BLOCKED",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    let j = json(&h.upkeep(&["plan", "--to", "1.1.0", "--json"]).unwrap());
    assert_eq!(j["theme"]["blocked"], true, "{j:#}");
    assert_eq!(j["blocked"], true);

    let up = h.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    assert!(show(&up).contains("theme.css"), "{}", show(&up));
    assert_eq!(
        h.unit_invocation(),
        invocation,
        "the unit was never stopped"
    );
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(digests(&h), before, "the custom theme is untouched");
}
