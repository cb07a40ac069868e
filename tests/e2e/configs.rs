//! Plan before you touch, on the real rig, for both package families: the
//! config merge (the operator's edits survive, the vendor's new and renamed
//! keys arrive, nothing left in `.dpkg-dist`/`.rpmnew`), a conflict or a
//! missing required key blocking the upgrade with exit 3 and no change,
//! `plan` listing the release notes, the path and every check, and no
//! planted secret anywhere in upkeep's output or state.

use std::time::Duration;

use super::rig::{self, Family, PortalHost, show};
use super::{json, main_start};

const CONF: &str = "/opt/portal/portal.conf";

fn conf(h: &PortalHost) -> serde_json::Value {
    serde_json::from_str(&h.c.read(CONF).unwrap()).unwrap()
}

/// Edits portal.conf as an operator would, and restarts the portal.
fn edit(h: &PortalHost, f: impl FnOnce(&mut serde_json::Value)) {
    let mut doc = conf(h);
    f(&mut doc);
    h.c.write(CONF, serde_json::to_string_pretty(&doc).unwrap(), 0o640)
        .unwrap();
    // The failed starts of the unconfigured package right after its
    // install can leave the unit at its start rate limit for a few seconds.
    let mut tries = 0;
    while let Err(e) = h.c.run(&["systemctl", "restart", "portal.service"]) {
        tries += 1;
        assert!(tries < 15, "{e:?}");
        std::thread::sleep(Duration::from_secs(1));
        let _ = h.c.run(&["systemctl", "reset-failed", "portal.service"]);
    }
    h.wait_ready(Duration::from_secs(30)).unwrap();
}

/// Adds lines to upkeep's configuration.
fn with_config(h: &PortalHost, extra: &str) {
    let mut text = h.c.read("/etc/upkeep/upkeep.toml").unwrap();
    text.push_str(extra);
    h.c.write("/etc/upkeep/upkeep.toml", text, 0o644).unwrap();
}

/// The `.dpkg-*`/`.rpm*` files beside portal.conf.
fn leftovers(h: &PortalHost) -> Vec<String> {
    h.c.run(&["ls", "-a", "/opt/portal"])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("portal.conf."))
        .map(str::to_string)
        .collect()
}

/// Every planted secret: the licence key, and the database password when a
/// server database is in use.
fn secrets() -> [&'static str; 2] {
    [rig::LICENSE_KEY, rig::db::DB_PASSWORD]
}

/// No planted secret in `text`.
fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

/// Output of one command, both streams, checked for secrets.
fn run(h: &PortalHost, log: &mut String, args: &[&str]) -> std::process::Output {
    let out = h.upkeep(args).unwrap();
    let text = show(&out);
    assert_clean(&format!("upkeep {}", args.join(" ")), &text);
    log.push_str(&text);
    out
}

/// The whole story on one host: edits, plan (notes, path, checks),
/// diff-config, a two-hop upgrade that merges, and the secret search.
fn edits_survive_and_vendor_keys_arrive(family: Family, db: rig::db::Db) {
    let h = crate::boot(family);
    h.install("1.0.0").unwrap();
    h.use_database(db).unwrap();
    h.add_pages("before", 4).unwrap();
    edit(&h, |d| {
        d["Theming"]["Path"] = "/srv/portal/themes".into();
        d["Storage"] = "s3".into();
        d["Theming"]["Theme"] = "midnight".into();
    });
    with_config(
        &h,
        "\n[[targets.portal.upgrade_path]]\nfrom = \"<2.0.0\"\nvia = \"2.0.0\"\n",
    );
    let mut log = String::new();

    // plan: path with its stepping stone, notes with 2.0.0 breaking, checks.
    let out = run(&h, &mut log, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "path: 1.0.0-1 → 2.0.0-1 → 2.1.0-1",
        "stepping stone 2.0.0-1",
        "!! 2.0.0-1",
        "BREAKING",
        "renamed Theming.Path -> Theming.Directory",
        "new key CORS",
        "+  \"PortalAPISecret\"",
        "required-keys",
        "ready:",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    let plan = json(&run(&h, &mut log, &["plan", "--json"]));
    assert_eq!(plan["path"], serde_json::json!(["2.0.0-1", "2.1.0-1"]));
    let notes: Vec<(String, bool)> = plan["release_notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["version"].as_str().unwrap().to_string(),
                n["breaking"].as_bool().unwrap(),
            )
        })
        .collect();
    for (v, breaking) in [("2.1.0-1", false), ("2.0.0-1", true), ("1.1.0-1", false)] {
        assert!(
            notes.contains(&(v.to_string(), breaking)),
            "{v} breaking={breaking} not in {notes:?}"
        );
    }
    assert!(!notes.iter().any(|(v, _)| v == "1.0.0-1"), "{notes:?}");
    assert_eq!(plan["breaking"], true);
    assert_eq!(plan["blocked"], false);
    let checks: Vec<(&str, &str)> = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    for name in [
        "schema",
        "rollback-package",
        "disk-space",
        "package-database",
        "database",
        "pending-config",
        "config-merge",
        "required-keys",
    ] {
        assert!(
            checks.iter().any(|(n, _)| *n == name),
            "no {name} check in {checks:?}"
        );
    }
    assert!(
        checks.iter().all(|(_, s)| *s != "error"),
        "unexpected error in {checks:?}"
    );

    let out = run(&h, &mut log, &["diff-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+    \"Directory\": \"/srv/portal/themes\""),
        "{text}"
    );
    assert!(
        text.contains("-    \"Path\": \"/srv/portal/themes\""),
        "{text}"
    );

    // The upgrade: two hops, each merging.
    let up = run(&h, &mut log, &["upgrade", "--yes"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(
        h.wait_ready(Duration::from_secs(30)).unwrap()["version"],
        "2.1.0"
    );
    let after = conf(&h);
    assert_eq!(after["LicenseKey"], rig::LICENSE_KEY, "{after:#}");
    assert_eq!(after["Storage"], "s3");
    assert_eq!(after["Theming"]["Theme"], "midnight");
    assert_eq!(after["Theming"]["Directory"], "/srv/portal/themes");
    assert!(after["Theming"].get("Path").is_none(), "{after:#}");
    assert_eq!(
        after["Session"]["IdleTimeout"], 1800,
        "the vendor's new default"
    );
    assert_eq!(after["CORS"]["AllowedOrigins"], serde_json::json!([]));
    assert_eq!(after["PortalAPISecret"], "");
    let dialect = after["Database"]["Dialect"].as_str().unwrap().to_string();
    assert_ne!(dialect, "", "the operator's database kept: {after:#}");
    assert!(leftovers(&h).is_empty(), "left behind: {:?}", leftovers(&h));
    let mode = h.c.run(&["stat", "-c", "%a", CONF]).unwrap();
    assert_eq!(mode.trim(), "640");
    assert_eq!(h.page_titles().unwrap().len(), 4);

    // The history: each hop has its config step, masked; the previous
    // file is in the run's backup (0600).
    let hist = json(&run(&h, &mut log, &["history", "--json"]));
    let runs = hist["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{hist:#}");
    for r in runs {
        let id = r["id"].as_i64().unwrap().to_string();
        let shown = json(&run(&h, &mut log, &["history", "show", &id, "--json"]));
        let text = shown.to_string();
        assert!(text.contains("\"config\""), "{text}");
        let backup =
            h.c.run(&[
                "find",
                "/var/lib/upkeep/backups",
                "-path",
                &format!("*run-{id}/files.tar.gz"),
            ])
            .unwrap();
        let backup = backup.trim();
        assert!(!backup.is_empty(), "no files backup for run {id}");
        let mode = h.c.run(&["stat", "-c", "%a", backup]).unwrap();
        assert_eq!(mode.trim(), "600");
        let list = h.c.run(&["tar", "-tzf", backup]).unwrap();
        assert!(list.contains("opt/portal/portal.conf"), "{list}");
    }
    run(&h, &mut log, &["status"]);
    run(&h, &mut log, &["status", "--json"]);
    run(&h, &mut log, &["history"]);

    // The secret search: every output above, and upkeep's state and cache
    // (the backups hold the real files, 0600, and are left out).
    assert!(log.len() > 1000);
    let found =
        h.c.exec(&[
            "grep",
            "-rlaF",
            "--exclude-dir=backups",
            "-e",
            rig::LICENSE_KEY,
            "-e",
            rig::db::DB_PASSWORD,
            "/var/lib/upkeep",
            "/var/cache/upkeep",
        ])
        .unwrap();
    assert_eq!(
        found.status.code(),
        Some(1),
        "a planted secret is in upkeep's state:\n{}",
        show(&found)
    );
}

#[test]
fn deb_on_postgres_edits_survive_vendor_keys_arrive_and_no_secret_shows() {
    edits_survive_and_vendor_keys_arrive(Family::Deb, rig::db::Db::Postgres);
}

#[test]
fn rpm_on_sqlite_edits_survive_vendor_keys_arrive_and_no_secret_shows() {
    edits_survive_and_vendor_keys_arrive(Family::Rpm, rig::db::Db::Sqlite);
}

/// A conflict, then a missing required key: each blocks `upgrade` with
/// exit 3 and changes nothing.
fn blocked_upgrades_change_nothing(family: Family) {
    let h = crate::boot(family);
    h.install("1.1.0").unwrap();
    let before_start = main_start(&h);

    // Both changed Session.IdleTimeout: the vendor 3600 → 1800, the
    // operator 3600 → 7200.
    edit(&h, |d| d["Session"]["IdleTimeout"] = 7200.into());
    let started = main_start(&h);
    assert_ne!(started, before_start);
    let conf_before = h.c.read(CONF).unwrap();
    let out = h.upkeep(&["plan"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONFLICT"), "{text}");
    assert!(text.contains("Session.IdleTimeout"), "{text}");
    assert!(
        text.contains("7200") && text.contains("1800") && text.contains("3600"),
        "{text}"
    );
    assert!(text.contains("BLOCKED"), "{text}");
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    let err = String::from_utf8_lossy(&up.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{}", show(&up));
    assert!(
        err.contains("config-merge") && err.contains("resolve"),
        "{err}"
    );
    assert_eq!(h.installed_version().as_deref(), Some("1.1.0-1"));
    assert_eq!(main_start(&h), started, "the service was not touched");
    assert_eq!(h.c.read(CONF).unwrap(), conf_before);
    assert!(leftovers(&h).is_empty());
    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    assert_eq!(hist["runs"], serde_json::json!([]), "no run was started");
    let blocked = json(&h.upkeep(&["upgrade", "--yes", "--json"]).unwrap());
    assert_eq!(blocked["outcome"], "blocked");
    assert!(
        blocked["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "config-merge" && c["status"] == "error"),
        "{blocked:#}"
    );

    // Resolved by taking the new default: the merge goes through.
    edit(&h, |d| d["Session"]["IdleTimeout"] = 1800.into());
    // Now 2.0.0's required keys: without a Database section (1.x's
    // implicit SQLite) the merge brings empty values, and 2.x would not
    // start.
    edit(&h, |d| {
        d.as_object_mut().unwrap().remove("Database");
    });
    let conf_before = h.c.read(CONF).unwrap();
    let started = main_start(&h);
    let plan = json(&h.upkeep(&["plan", "--json"]).unwrap());
    assert_eq!(plan["blocked"], true, "{plan:#}");
    let errors: Vec<String> = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "error")
        .map(|c| format!("{}: {}", c["name"], c["message"]))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("required-keys") && errors[0].contains("Database.Dialect"),
        "{errors:?}"
    );
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("requires"),
        "{}",
        show(&up)
    );
    assert_eq!(h.installed_version().as_deref(), Some("1.1.0-1"));
    assert_eq!(main_start(&h), started);
    assert_eq!(h.c.read(CONF).unwrap(), conf_before);

    // With the database named, the upgrade goes through.
    edit(&h, |d| {
        d["Database"] = serde_json::json!({"Dialect": "sqlite3", "ConnectionString": "/var/lib/portal/portal.db"});
    });
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(conf(&h)["Session"]["IdleTimeout"], 1800);
    assert!(leftovers(&h).is_empty(), "{:?}", leftovers(&h));
}

#[test]
fn deb_conflict_or_missing_key_blocks_upgrade_with_exit_3_and_changes_nothing() {
    blocked_upgrades_change_nothing(Family::Deb);
}

#[test]
fn rpm_conflict_or_missing_key_blocks_upgrade_with_exit_3_and_changes_nothing() {
    blocked_upgrades_change_nothing(Family::Rpm);
}

#[test]
fn config_merge_keep_leaves_the_live_file_and_reports_the_new_default() {
    let h = crate::boot(Family::Deb);
    h.install("1.1.0").unwrap();
    edit(&h, |d| d["Session"]["IdleTimeout"] = 7200.into());
    h.c.run(&["mkdir", "-p", "/etc/upkeep/conf.d"]).unwrap();
    h.c.write(
        "/etc/upkeep/conf.d/50-keep.toml",
        "[targets.portal]\nconfig_merge = \"keep\"\n",
        0o644,
    )
    .unwrap();
    let before = h.c.read(CONF).unwrap();
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(h.c.read(CONF).unwrap(), before, "the live file is kept");
    assert_eq!(leftovers(&h), ["portal.conf.dpkg-dist"]);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(text.contains("portal.conf.dpkg-dist"), "reported: {text}");
    let status = json(&h.upkeep(&["status", "--json"]).unwrap());
    assert_eq!(
        status["pending_config"],
        serde_json::json!(["/opt/portal/portal.conf.dpkg-dist"])
    );
}
