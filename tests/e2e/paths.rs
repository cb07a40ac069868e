//! Upgrade paths on the rig: stepping stones from `upgrade_path` rules are
//! shown by `plan` and taken one by one by `upgrade`, each its own
//! journaled, health-gated run, stopping at the first failure.

use std::time::Duration;

use super::rig::show;
use super::{host, json};

/// Adds an `upgrade_path` rule to the container's upkeep configuration.
fn with_rule(h: &super::rig::PortalHost, from: &str, via: &str) {
    let mut conf = h.c.read("/etc/upkeep/upkeep.toml").unwrap();
    conf.push_str(&format!(
        "\n[[targets.portal.upgrade_path]]\nfrom = \"{from}\"\nvia = \"{via}\"\n"
    ));
    h.c.write("/etc/upkeep/upkeep.toml", conf, 0o644).unwrap();
}

#[test]
fn upgrade_takes_the_stepping_stone_then_the_target_each_as_its_own_run() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.add_pages("p", 3).unwrap();
    with_rule(&h, "<2.0.0", "2.0.0");

    let plan = json(&h.upkeep(&["plan", "--json"]).unwrap());
    assert_eq!(
        plan["path"],
        serde_json::json!(["2.0.0-1", "2.1.0-1"]),
        "{plan:#}"
    );

    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(
        text.contains("hop 1 of 2") && text.contains("hop 2 of 2"),
        "{text}"
    );
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "2.1.0");
    assert_eq!(h.page_titles().unwrap().len(), 3);

    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let runs: Vec<(String, String, String)> = hist["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap_or_default().to_string(),
                r["to"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("2.0.0-1".into(), "2.1.0-1".into(), "succeeded".into()),
            ("1.0.0-1".into(), "2.0.0-1".into(), "succeeded".into()),
        ]
    );
}

#[test]
fn a_failing_hop_stops_the_path_on_the_last_good_version() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.add_pages("p", 2).unwrap();
    // 1.1.0 is good, 2.0.1 never becomes ready.
    with_rule(&h, "<1.1.0", "1.1.0");
    with_rule(&h, ">=1.1.0, <2.0.1", "2.0.1");

    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(4), "{}", show(&up));
    let err = String::from_utf8_lossy(&up.stderr);
    assert!(err.contains("hop 2 of 3"), "{}", show(&up));
    assert!(err.contains("the host stays on 1.1.0-1"), "{}", show(&up));
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.1.0");
    assert_eq!(ready["schema"], 3);
    assert_eq!(h.page_titles().unwrap().len(), 2);
}

#[test]
fn a_stepping_stone_the_repository_lacks_blocks_the_upgrade_with_the_path() {
    let h = host();
    h.install("1.0.0").unwrap();
    with_rule(&h, "<1.5.0", "1.5.0");
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    let err = String::from_utf8_lossy(&up.stderr);
    assert!(err.contains("must go through 1.5.0"), "{}", show(&up));
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
}
