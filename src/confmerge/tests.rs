//! Tests of the merge, the policies and the diff, on packaged `portal.conf`
//! files of the sample product as they were before its 2.0.0 renamed and
//! changed keys (`testdata/`, frozen so that these cases stay as written;
//! the current releases' files are merged on the rig by
//! `tests/e2e/configs.rs` and in `orchestrator::configs`).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

const VERSIONS: [&str; 5] = ["1.0.0", "1.1.0", "2.0.0", "2.0.1", "2.1.0"];

/// Planted secrets: none may show in any output.
const LICENSE: &str = "LIC-planted-7f3a9c1e";
const DB_PASSWORD: &str = "pg-planted-Pw0rd";
const SESSION_KEY: &str = "sess-planted-5b2d";

fn release_text(version: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/confmerge/testdata")
        .join(format!("{version}.conf"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn release(version: &str) -> Value {
    serde_json::from_str(&release_text(version)).expect("sample portal.conf is JSON")
}

/// 1.0.0's default as an operator edited it: a licence key and another port.
fn operator_file() -> Value {
    let mut ours = release("1.0.0");
    ours["LicenseKey"] = json!(LICENSE);
    ours["HostPort"] = json!(3002);
    ours
}

fn kinds(changes: &[Change]) -> Vec<(String, &'static str)> {
    changes
        .iter()
        .map(|c| (c.path().to_owned(), c.kind()))
        .collect()
}

fn assert_no_secret(text: &str) {
    for secret in [LICENSE, DB_PASSWORD, SESSION_KEY] {
        assert!(!text.contains(secret), "{secret} in clear in:\n{text}");
    }
}

#[test]
fn render_reproduces_the_packaged_files() {
    for version in VERSIONS {
        assert_eq!(
            render(&release(version)),
            release_text(version),
            "{version}"
        );
    }
}

#[test]
fn upgrade_1_0_to_2_0_keeps_operator_values_and_adds_new_keys() {
    let (base, ours, theirs) = (release("1.0.0"), operator_file(), release("2.0.0"));
    let out = merge_json(&base, &ours, &theirs);
    assert!(out.is_clean(), "{:?}", out.conflicts);
    assert_eq!(out.merged["LicenseKey"], json!(LICENSE));
    assert_eq!(out.merged["HostPort"], json!(3002));
    assert_eq!(out.merged["PortalAPISecret"], json!(""));
    assert_eq!(out.merged["CORS"], json!({"AllowedOrigins": []}));
    assert_eq!(out.merged["Database"], base["Database"]);
    assert_eq!(
        kinds(&out.changes),
        [
            ("HostPort".to_owned(), "kept_operator"),
            ("LicenseKey".to_owned(), "kept_operator"),
            ("PortalAPISecret".to_owned(), "added"),
            ("CORS".to_owned(), "added"),
        ]
    );
    // Written exactly like the vendor's file, with the operator's values.
    let expected = release_text("2.0.0")
        .replace("\"HostPort\": 3001", "\"HostPort\": 3002")
        .replace(
            "\"LicenseKey\": \"\"",
            &format!("\"LicenseKey\": \"{LICENSE}\""),
        );
    assert_eq!(render(&out.merged), expected);

    let mask = Masker::portal_default();
    let described: Vec<String> = out.changes.iter().map(|c| c.describe(&mask)).collect();
    assert_eq!(
        described,
        [
            "kept your HostPort = 3002",
            "kept your LicenseKey = \"********\"",
            "new key PortalAPISecret = \"\" (added by the new version)",
            "new key CORS = {\"AllowedOrigins\":[]} (added by the new version)",
        ]
    );
    // Masking a described line again changes nothing.
    for line in &described {
        assert_eq!(&mask.mask_text(line, &[]), line);
    }
    assert_no_secret(&out.to_json(&mask).to_string());
    assert_no_secret(&format!("{out:?}"));
}

#[test]
fn every_sample_upgrade_merges_cleanly() {
    for (i, from) in VERSIONS.iter().enumerate() {
        for to in &VERSIONS[i..] {
            let mut ours = operator_file();
            if *from != "1.0.0" {
                ours = merge_json(&release("1.0.0"), &ours, &release(from)).merged;
            }
            let out = merge_json(&release(from), &ours, &release(to));
            assert!(out.is_clean(), "{from} -> {to}: {:?}", out.conflicts);
            assert_eq!(out.merged["LicenseKey"], json!(LICENSE), "{from} -> {to}");
            assert_eq!(out.merged["HostPort"], json!(3002), "{from} -> {to}");
        }
    }
}

#[test]
fn planted_conflict_on_the_connection_string() {
    let base = release("1.0.0");
    let mut ours = operator_file();
    ours["Database"] = json!({
        "Dialect": "postgres",
        "ConnectionString": format!("postgres://portal:{DB_PASSWORD}@db:5432/portal"),
    });
    ours["Session"]["Key"] = json!(SESSION_KEY);
    let mut theirs = release("2.0.0");
    theirs["Database"]["ConnectionString"] = json!("");
    let out = merge_json(&base, &ours, &theirs);

    assert_eq!(out.conflicts.len(), 1, "{:?}", out.conflicts);
    let conflict = &out.conflicts[0];
    assert_eq!(conflict.path, "Database.ConnectionString");
    assert_eq!(conflict.base, Some(json!("/var/lib/portal/portal.db")));
    assert_eq!(conflict.theirs, Some(json!("")));
    // The merged document holds the operator's value there.
    assert_eq!(out.merged["Database"], ours["Database"]);

    let mask = Masker::portal_default();
    let line = conflict.describe(&mask);
    assert_eq!(
        line,
        "config conflict at Database.ConnectionString (installed default \
         \"/var/lib/portal/portal.db\", yours \"postgres://portal:********@db:5432/portal\", \
         new default \"\"); resolve: to take the new default, set Database.ConnectionString \
         to it in the live file; to keep the live file as it is, use config_merge = \"keep\" \
         (then apply the new version's other changes by hand)"
    );
    assert!(!line.contains('\n'));
    assert_no_secret(&line);
    let as_json = out.to_json(&mask).to_string();
    assert!(as_json.contains("postgres://portal:********@db:5432/portal"));
    assert_no_secret(&as_json);
    assert_no_secret(&format!("{out:?}"));
    for change in &out.changes {
        assert_no_secret(&change.describe(&mask));
    }
}

#[test]
fn rename_in_the_same_object_carries_the_operator_value() {
    let base = release("1.0.0");
    let mut ours = base.clone();
    ours["Theming"]["Path"] = json!("/srv/portal/themes");
    let mut theirs = base.clone();
    theirs["Theming"] = json!({"Theme": "default", "Directory": "/opt/portal/themes"});
    let out = merge_json(&base, &ours, &theirs);
    assert!(out.is_clean());
    assert_eq!(
        out.merged["Theming"],
        json!({"Theme": "default", "Directory": "/srv/portal/themes"})
    );
    assert_eq!(
        out.changes,
        [
            Change::Renamed {
                from: "Theming.Path".to_owned(),
                to: "Theming.Directory".to_owned(),
            },
            Change::KeptOperator {
                path: "Theming.Directory".to_owned(),
                value: json!("/srv/portal/themes"),
                vendor: None,
            },
        ]
    );

    // The renamed key takes the old one's place.
    let mut ours = base.clone();
    ours["Theming"] = json!({"Path": "/srv/t", "Theme": "dark"});
    let out = merge_json(&base, &ours, &theirs);
    let keys: Vec<&String> = out.merged["Theming"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["Directory", "Theme"]);

    // An operator who left the default sees only the rename.
    let out = merge_json(&base, &base, &theirs);
    assert_eq!(out.merged, theirs);
    assert_eq!(
        kinds(&out.changes),
        [("Theming.Directory".to_owned(), "renamed")]
    );

    // The live file already has the new name: it wins, the old one goes
    // (unchanged) or stays (changed).
    let mut ours = base.clone();
    ours["Theming"] = json!({"Theme": "default", "Path": "/opt/portal/themes", "Directory": "/a"});
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(
        out.merged["Theming"],
        json!({"Theme": "default", "Directory": "/a"})
    );
    ours["Theming"]["Path"] = json!("/b");
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(
        out.merged["Theming"],
        json!({"Theme": "default", "Path": "/b", "Directory": "/a"})
    );
    assert!(out.is_clean());
}

#[test]
fn moves_across_objects_and_weak_values() {
    let base = release("1.0.0");
    // HostPort moves into a new object, under the same name.
    let mut theirs = base.clone();
    if let Some(map) = theirs.as_object_mut() {
        map.remove("HostPort");
        map.insert(
            "Server".to_owned(),
            json!({"HostPort": 3001, "ReadTimeout": 30}),
        );
    }
    let out = merge_json(&base, &operator_file(), &theirs);
    assert!(out.is_clean());
    assert_eq!(
        out.merged["Server"],
        json!({"HostPort": 3002, "ReadTimeout": 30})
    );
    assert!(out.merged.get("HostPort").is_none());
    assert!(out.changes.contains(&Change::Renamed {
        from: "HostPort".to_owned(),
        to: "Server.HostPort".to_owned()
    }));
    assert!(out.changes.contains(&Change::Added {
        path: "Server.ReadTimeout".to_owned(),
        value: json!(30)
    }));

    // An empty default is weak: same object and related names only.
    let mut theirs = base.clone();
    theirs["Session"] = json!({"SessionKey": ""});
    let mut ours = base.clone();
    ours["Session"]["Key"] = json!(SESSION_KEY);
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(out.merged["Session"], json!({"SessionKey": SESSION_KEY}));

    // ...not across objects, even under the same name.
    let mut base2 = base.clone();
    base2["Legacy"] = json!({"Enabled": false});
    let mut ours2 = base2.clone();
    ours2["Legacy"]["Enabled"] = json!(true);
    let mut theirs2 = base.clone();
    theirs2["CORS"] = json!({"Enabled": false});
    let out = merge_json(&base2, &ours2, &theirs2);
    assert_eq!(out.merged["CORS"], json!({"Enabled": false}));
    assert_eq!(out.merged["Legacy"], json!({"Enabled": true}));
    assert_eq!(
        kinds(&out.changes),
        [
            ("CORS".to_owned(), "added"),
            ("Legacy".to_owned(), "kept_obsolete")
        ]
    );

    // Two candidates: no rename.
    let mut theirs = base.clone();
    theirs["Theming"] =
        json!({"Theme": "default", "Dir": "/opt/portal/themes", "Dir2": "/opt/portal/themes"});
    let mut ours = base.clone();
    ours["Theming"]["Path"] = json!("/srv/t");
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(
        out.merged["Theming"],
        json!({"Theme": "default", "Path": "/srv/t", "Dir": "/opt/portal/themes", "Dir2": "/opt/portal/themes"})
    );
    assert!(out.is_clean());

    // A whole object renamed.
    let mut theirs = base.clone();
    if let Some(map) = theirs.as_object_mut() {
        let theming = map.remove("Theming").unwrap_or_default();
        map.insert("Themes".to_owned(), theming);
    }
    let mut ours = base.clone();
    ours["Theming"]["Theme"] = json!("dark");
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(
        out.merged["Themes"],
        json!({"Theme": "dark", "Path": "/opt/portal/themes"})
    );
    assert!(out.merged.get("Theming").is_none());
    let keys: Vec<&String> = out
        .merged
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys[3], "Themes", "where Theming was: {keys:?}");
}

#[test]
fn removals_type_changes_and_arrays() {
    let base = json!({"A": 1, "Old": "x", "Storage": "fs", "Origins": [], "Obj": {"K": 1}});
    // Vendor removes Old and Obj, makes Storage an object, changes A.
    let theirs = json!({"A": 2, "Storage": {"Type": "fs"}, "Origins": []});
    let out = merge_json(&base, &base, &theirs);
    assert_eq!(out.merged, theirs);
    assert_eq!(
        kinds(&out.changes),
        [
            ("A".to_owned(), "vendor_changed"),
            ("Old".to_owned(), "removed"),
            ("Storage".to_owned(), "vendor_changed"),
            ("Obj".to_owned(), "removed"),
        ]
    );

    // The operator changed the removed ones: kept; the type change conflicts.
    let ours =
        json!({"A": 1, "Old": "y", "Storage": "s3", "Origins": ["https://a"], "Obj": {"K": 2}});
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(
        out.merged,
        json!({"A": 2, "Old": "y", "Storage": "s3", "Origins": ["https://a"], "Obj": {"K": 2}})
    );
    assert_eq!(
        out.conflicts,
        [Conflict {
            path: "Storage".to_owned(),
            base: Some(json!("fs")),
            ours: Some(json!("s3")),
            theirs: Some(json!({"Type": "fs"})),
        }]
    );
    assert_eq!(
        kinds(&out.changes),
        [
            ("A".to_owned(), "vendor_changed"),
            ("Old".to_owned(), "kept_obsolete"),
            ("Origins".to_owned(), "kept_operator"),
            ("Obj".to_owned(), "kept_obsolete"),
        ]
    );

    // Arrays are compared whole.
    let theirs = json!({"A": 1, "Origins": ["https://b"]});
    let out = merge_json(&base, &ours, &theirs);
    assert_eq!(out.conflicts.len(), 1);
    assert_eq!(out.conflicts[0].path, "Origins");

    // Integer to float is a type change.
    let out = merge_json(&json!({"N": 1}), &json!({"N": 1}), &json!({"N": 1.0}));
    assert_eq!(kinds(&out.changes), [("N".to_owned(), "vendor_changed")]);
}

#[test]
fn deleted_by_the_operator_and_added_on_both_sides() {
    let base = json!({"A": 1, "B": 1, "S": {"X": 1, "Y": 1}});
    let ours = json!({"C": "mine"});
    let theirs = json!({"A": 1, "B": 2, "S": {"X": 1, "Y": 2, "Z": 3}, "C": "vendor"});
    let out = merge_json(&base, &ours, &theirs);
    // A stays deleted, B conflicts, S.Y conflicts, S.Z arrives, C is ours.
    assert_eq!(out.merged, json!({"C": "mine", "S": {"Z": 3}}));
    let paths: Vec<&str> = out.conflicts.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["B", "S.Y"]);
    assert_eq!(out.conflicts[0].ours, None);
    let line = out.conflicts[0].describe(&Masker::portal_default());
    assert!(line.contains("yours (absent)"), "{line}");
    assert!(out.changes.contains(&Change::KeptOperator {
        path: "C".to_owned(),
        value: json!("mine"),
        vendor: Some(json!("vendor")),
    }));

    // The vendor removed a key the operator deleted too: gone, silently.
    let out = merge_json(&json!({"A": 1}), &json!({}), &json!({}));
    assert_eq!(out.merged, json!({}));
    assert!(out.changes.is_empty());

    // A vendor object emptied stays as {}.
    let out = merge_json(
        &json!({"O": {"A": 1}}),
        &json!({"O": {"A": 1}}),
        &json!({"O": {}}),
    );
    assert_eq!(out.merged, json!({"O": {}}));
}

#[test]
fn non_object_roots_follow_the_leaf_rule() {
    assert_eq!(merge_json(&json!(1), &json!(2), &json!(1)).merged, json!(2));
    assert_eq!(
        merge_json(&json!(1), &json!(1), &json!([3])).merged,
        json!([3])
    );
    let out = merge_json(&json!(1), &json!(2), &json!(3));
    assert_eq!(out.conflicts.len(), 1);
    assert_eq!(out.conflicts[0].path, "");
    assert!(
        out.conflicts[0]
            .describe(&Masker::portal_default())
            .starts_with("config conflict at the whole file (")
    );
}

/// A small deterministic generator, for the property-style tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap_or(0) % n.max(1)
    }
}

/// A few random edits anywhere in an object tree: change, delete, add,
/// change type, add an object.
fn mutate(doc: &Value, rng: &mut Lcg) -> Value {
    let mut doc = doc.clone();
    for _ in 0..=rng.next(4) {
        edit(&mut doc, rng, 0);
    }
    doc
}

fn edit(v: &mut Value, rng: &mut Lcg, depth: usize) {
    let Some(map) = v.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    let pick = keys.get(rng.next(keys.len())).cloned();
    match (rng.next(6), pick) {
        (0, Some(k)) if depth < 3 && map.get(&k).is_some_and(Value::is_object) => {
            if let Some(child) = map.get_mut(&k) {
                edit(child, rng, depth + 1);
            }
        }
        (1, Some(k)) => {
            map.remove(&k);
        }
        (2, Some(k)) => {
            map.insert(k, json!(format!("edited-{}", rng.next(1000))));
        }
        (3, Some(k)) => {
            map.insert(k, json!(rng.next(100)));
        }
        (4, _) => {
            map.insert(format!("New{}", rng.next(50)), json!({"X": rng.next(3)}));
        }
        (_, _) => {
            map.insert(format!("Key{}", rng.next(50)), json!([rng.next(3)]));
        }
    }
}

#[test]
fn merge_identities_hold() {
    let mut rng = Lcg(0x5eed);
    let mut docs: Vec<Value> = VERSIONS.iter().map(|v| release(v)).collect();
    docs.push(operator_file());
    let (mut clean, mut conflicting) = (0, 0);
    for round in 0..400 {
        let base = docs[rng.next(docs.len())].clone();
        let ours = mutate(&base, &mut rng);
        let theirs = mutate(&base, &mut rng);

        // Only the vendor changed anything: the vendor's file.
        let out = merge_json(&base, &base, &theirs);
        assert!(out.is_clean(), "round {round}: {:?}", out.conflicts);
        assert_eq!(out.merged, theirs, "round {round}");

        // Only the operator changed anything: the live file, byte for byte.
        let out = merge_json(&base, &ours, &base);
        assert!(out.is_clean(), "round {round}");
        assert_eq!(render(&out.merged), render(&ours), "round {round}");
        assert!(
            out.changes
                .iter()
                .all(|c| matches!(c, Change::KeptOperator { .. })),
            "round {round}: {:?}",
            out.changes
        );

        // Both made the same change: that change, nothing reported.
        let out = merge_json(&base, &theirs, &theirs);
        assert_eq!(render(&out.merged), render(&theirs), "round {round}");
        assert!(out.changes.is_empty() && out.is_clean(), "round {round}");

        // Nothing conflicts that both did not touch, and the merge is
        // stable: merging its own result again changes nothing.
        let out = merge_json(&base, &ours, &theirs);
        for conflict in &out.conflicts {
            assert_ne!(conflict.ours, conflict.theirs, "round {round}");
            assert_ne!(conflict.ours, conflict.base, "round {round}");
            assert_ne!(conflict.theirs, conflict.base, "round {round}");
        }
        if out.is_clean() {
            clean += 1;
            let again = merge_json(&base, &out.merged, &theirs);
            assert_eq!(again.merged, out.merged, "round {round}");
        } else {
            conflicting += 1;
        }
    }
    // The edits are random enough to give both.
    assert!(
        clean > 100 && conflicting > 20,
        "{clean} clean, {conflicting} conflicting"
    );
}

#[test]
fn policies() {
    let (base, ours, theirs) = (release("1.0.0"), operator_file(), release("2.0.0"));
    let mask = Masker::portal_default();

    let out = merge_with_policy(Policy::Merge, &base, &ours, &theirs);
    assert_eq!(out, merge_json(&base, &ours, &theirs));

    let out = merge_with_policy(Policy::Keep, &base, &ours, &theirs);
    assert_eq!(out.merged, ours);
    assert!(out.is_clean());
    assert_eq!(
        kinds(&out.changes),
        [
            ("PortalAPISecret".to_owned(), "not_applied"),
            ("CORS".to_owned(), "not_applied")
        ]
    );
    assert_eq!(
        out.changes[1].describe(&mask),
        "not applied (config_merge = \"keep\"): new key CORS = {\"AllowedOrigins\":[]} (added by the new version)"
    );

    let out = merge_with_policy(Policy::New, &base, &ours, &theirs);
    assert_eq!(out.merged, theirs);
    assert!(out.is_clean());
    assert_eq!(
        kinds(&out.changes),
        [
            ("PortalAPISecret".to_owned(), "added"),
            ("CORS".to_owned(), "added"),
            ("HostPort".to_owned(), "dropped"),
            ("LicenseKey".to_owned(), "dropped"),
        ]
    );
    let line = out.changes[3].describe(&mask);
    assert_eq!(
        line,
        "dropped your LicenseKey = \"********\" (config_merge = \"new\" takes the new version's file)"
    );

    // A conflict under `new` is a dropped value too.
    let mut ours2 = ours.clone();
    ours2["Database"]["ConnectionString"] = json!(format!("postgres://p:{DB_PASSWORD}@h/p"));
    let mut theirs2 = theirs.clone();
    theirs2["Database"]["ConnectionString"] = json!("");
    let out = merge_with_policy(Policy::New, &base, &ours2, &theirs2);
    assert!(
        out.changes
            .iter()
            .any(|c| c.path() == "Database.ConnectionString" && c.kind() == "dropped")
    );
    assert_no_secret(&out.to_json(&mask).to_string());

    for (text, policy) in [
        ("merge", Policy::Merge),
        ("keep", Policy::Keep),
        ("new", Policy::New),
    ] {
        assert_eq!(text.parse::<Policy>(), Ok(policy));
        assert_eq!(policy.to_string(), text);
        assert_eq!(serde_json::to_value(policy).ok(), Some(json!(text)));
        assert_eq!(
            serde_json::from_value::<Policy>(json!(text)).ok(),
            Some(policy)
        );
    }
    assert_eq!(Policy::default(), Policy::Merge);
    let err = "theirs".parse::<Policy>().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown config_merge \"theirs\": expected \"merge\", \"keep\" or \"new\"")
    );
}

#[test]
fn unified_diff_masks_licence_key_lines() {
    let mask = Masker::portal_default();
    let mut live = operator_file();
    live["Session"]["Key"] = json!(SESSION_KEY);
    live["Database"]["ConnectionString"] = json!(format!(
        "host=db user=portal password='{DB_PASSWORD}' dbname=portal"
    ));
    let old = render(&live);
    let new = render(&merge_json(&release("1.0.0"), &live, &release("2.0.0")).merged);
    let diff = unified_diff(&old, &new, "a/portal.conf", "b/portal.conf", &mask);
    assert_no_secret(&diff);
    assert!(
        diff.starts_with("--- a/portal.conf\n+++ b/portal.conf\n@@ "),
        "{diff}"
    );
    assert!(diff.contains("+  \"PortalAPISecret\": \"\",\n"), "{diff}");

    // The live file against the packaged default: the key lines show, masked.
    let diff = unified_diff(&release_text("1.0.0"), &old, "a", "b", &mask);
    assert_no_secret(&diff);
    assert!(diff.contains("-  \"LicenseKey\": \"\",\n"), "{diff}");
    assert!(
        diff.contains("+  \"LicenseKey\": \"********\",\n"),
        "{diff}"
    );
    assert!(diff.contains("+    \"Key\": \"********\"\n"), "{diff}");
    assert!(diff.contains("password='********' dbname=portal"), "{diff}");

    // A secret inside a multi-line array is caught through the parsed file.
    let with_array = format!("{{\n  \"Tokens\": [\n    \"{LICENSE}\"\n  ]\n}}\n");
    let diff = unified_diff("{}\n", &with_array, "a", "b", &mask);
    assert_no_secret(&diff);

    // A text (not JSON) config.
    let ini_old = "[db]\nhost = db\npassword = old-secret-pw\n";
    let ini_new = format!("[db]\nhost = db2\npassword = {DB_PASSWORD}\n");
    let diff = unified_diff(ini_old, &ini_new, "a", "b", &mask);
    assert_no_secret(&diff);
    assert!(!diff.contains("old-secret-pw"), "{diff}");
    assert!(diff.contains("+password = ********\n"), "{diff}");

    assert_eq!(unified_diff(&old, &old, "a", "b", &mask), "");
}
