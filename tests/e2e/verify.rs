//! `[[targets.portal.verify]]` on the rig: an upgrade 1.0.0 → 1.1.0 (and
//! its rollback) where an http, a command and a journal check pass (the
//! journal one with a warning), each in the output, `--json` and `history
//! --json`; then each kind failing into a rollback (exit 4, the portal back
//! on 1.0.0).

use std::time::Duration;

use super::rig::{PortalHost, show};
use super::{host, json};

/// The verify checks that pass on 1.1.0 and, after a rollback, on 1.0.0:
/// the portal's `/ready` answers the product version being installed, a
/// command compares `{to}` and `{from}`, and the portal's start line is a
/// warning.
fn passing(h: &PortalHost) -> String {
    format!(
        r#"[[targets.portal.verify]]
name = "ready version"
http = "{ready}"
status = [200]
body_contains = "ready"
json = {{ "/version" = "{{version}}", "/status" = "ready" }}

[[targets.portal.verify]]
name = "package version"
command = ["/usr/bin/test", "{{to}}", "!=", "{{from}}"]
timeout = "20s"

[[targets.portal.verify]]
name = "logs"
journal_fail = ["failed to migrate"]
journal_warn = ["listening on"]
"#,
        ready = h.ready_url()
    )
}

/// The run's health step in `history --json` (the newest run).
fn history_health(h: &PortalHost) -> (serde_json::Value, serde_json::Value) {
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let run = hist["runs"][0].clone();
    let health = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "health")
        .cloned()
        .unwrap_or_else(|| panic!("no health step: {run:#}"));
    (run, health)
}

#[test]
fn every_kind_of_check_passes_and_is_reported() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.append_upkeep_toml(&passing(&h)).unwrap();

    // One line per check in the human output.
    let out = h.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "verify: ready version (http) passed in ",
        "verify: package version (command) passed in ",
        "verify: logs (journal) warning in ",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{}", show(&out));
    }
    assert_eq!(h.ready_version().as_deref(), Some("1.1.0"));
    let (run, health) = history_health(&h);
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    let verify = health["detail"]["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("{health:#}"));
    assert_eq!(verify.len(), 3, "{health:#}");
    assert!(
        verify[0]["excerpt"].as_str().unwrap().contains("\"1.1.0\""),
        "{health:#}"
    );

    // The rollback runs them too ({version} is 1.0.0 now), in --json.
    let out = h.upkeep(&["--json", "rollback", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report = json(&out);
    let verify = report["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"));
    let outcomes: Vec<(&str, &str, &str)> = verify
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["kind"].as_str().unwrap(),
                v["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ready version", "http", "passed"),
            ("package version", "command", "passed"),
            ("logs", "journal", "warning"),
        ],
        "{report:#}"
    );
    assert!(
        verify[0]["excerpt"].as_str().unwrap().contains("\"1.0.0\""),
        "{report:#}"
    );
    assert!(
        verify[2]["excerpt"]
            .as_str()
            .unwrap()
            .starts_with("portal.service: dev-portal: listening on"),
        "{report:#}"
    );
    assert!(verify.iter().all(|v| v["duration_ms"].is_u64()));
    assert_eq!(h.ready_version().as_deref(), Some("1.0.0"));
    let (run, health) = history_health(&h);
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(health["detail"]["verify"], report["verify"], "{health:#}");
}

/// Upgrades to 1.1.0 with `check` appended; asserts the rollback to 1.0.0
/// and that the error names the check; returns the failed result from the
/// history.
fn fails_into_a_rollback(h: &PortalHost, check: &str, name: &str, why: &str) -> serde_json::Value {
    h.append_upkeep_toml(check).unwrap();
    let out = h.upkeep(&["upgrade", "--to", "1.1.0", "--yes"]).unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let wanted = format!("health failed: verify \"{name}\": {why}");
    assert!(err.contains(&wanted), "{wanted:?} missing:\n{}", show(&out));
    assert!(err.contains("rolled back"), "{}", show(&out));
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0", "{ready}");
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(h.unit_state(), "active");

    let (run, health) = history_health(h);
    assert_eq!(run["outcome"], "rolled_back", "{run:#}");
    assert_eq!(health["status"], "failed", "{health:#}");
    let results = health["detail"]["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("no verify results: {health:#}"));
    let failed = results
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing: {health:#}"));
    assert_eq!(failed["outcome"], "failed", "{failed:#}");
    failed
}

#[test]
fn each_kind_of_check_failing_rolls_the_upgrade_back() {
    let h = host();
    h.install("1.0.0").unwrap();

    let url = h.ready_url().replace("/ready", "/no-such-page");
    let failed = fails_into_a_rollback(
        &h,
        &format!("[[targets.portal.verify]]\nname = \"admin page\"\nhttp = \"{url}\"\n"),
        "admin page",
        &format!("GET {url} answered 404, wanted 2xx"),
    );
    assert_eq!(failed["kind"], "http");
    assert!(
        failed["excerpt"].as_str().unwrap().contains("not found"),
        "{failed:#}"
    );

    let failed = fails_into_a_rollback(
        &h,
        "[[targets.portal.verify]]\nname = \"sync\"\ncommand = [\"/bin/false\", \"{version}\"]\n",
        "sync",
        "/bin/false 1.1.0 exited with status 1",
    );
    assert_eq!(failed["kind"], "command");

    let failed = fails_into_a_rollback(
        &h,
        "[[targets.portal.verify]]\nname = \"logs\"\njournal_fail = [\"listening on\"]\n",
        "logs",
        "portal.service logged since the start: dev-portal: listening on",
    );
    assert_eq!(failed["kind"], "journal");
}

/// The README's checks of Tyk's post-upgrade list that the sample portal
/// answers: its admin page, the version that answers, its catalog, logs
/// free of ERROR (and WARN reported).
#[test]
fn the_readme_s_post_upgrade_list_passes_on_the_portal() {
    let h = host();
    h.install("1.0.0").unwrap();
    let base = h.ready_url().trim_end_matches("/ready").to_string();
    h.append_upkeep_toml(&format!(
        r#"[[targets.portal.verify]]
name = "admin portal"
http = "{base}/admin"
status = [200]
body_contains = "Portal Admin"

[[targets.portal.verify]]
name = "version"
http = "{base}/version"
json = {{ "/version" = "{{version}}" }}

[[targets.portal.verify]]
name = "catalog"
http = "{base}/api/pages"
body_contains = "titles"

[[targets.portal.verify]]
name = "logs"
journal_fail = ["ERROR", "failed to migrate"]
journal_warn = ["WARN"]
"#
    ))
    .unwrap();
    let out = h
        .upkeep(&["--json", "upgrade", "--to", "1.1.0", "--yes"])
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report = json(&out);
    let outcomes: Vec<(&str, &str)> = report["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("admin portal", "passed"),
            ("version", "passed"),
            ("catalog", "passed"),
            ("logs", "passed"),
        ],
        "{report:#}"
    );
    assert!(
        report["verify"][0]["excerpt"]
            .as_str()
            .unwrap()
            .contains("Portal Admin"),
        "{report:#}"
    );
}

#[test]
fn a_failed_check_is_in_the_json_of_the_rolled_back_run() {
    let h = host();
    h.install("1.0.0").unwrap();
    let base = h.ready_url().trim_end_matches("/ready").to_string();
    h.append_upkeep_toml(&format!(
        "[[targets.portal.verify]]\nname = \"version\"\nhttp = \"{base}/version\"\n\n[[targets.portal.verify]]\nname = \"admin page\"\nhttp = \"{base}/no-such-page\"\n"
    ))
    .unwrap();
    let out = h
        .upkeep(&["--json", "upgrade", "--to", "1.1.0", "--yes"])
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["outcome"], "rolled_back", "{doc:#}");
    let outcomes: Vec<(&str, &str)> = doc["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"))
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("version", "passed"), ("admin page", "failed")],
        "{doc:#}"
    );
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
}
