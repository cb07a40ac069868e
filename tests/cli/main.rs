//! The command line from the outside, without the rig: configuration errors,
//! usage errors, with their exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn upkeep(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("UPKEEP_CONFIG")
        .output()
        .expect("run upkeep")
}

const VALID: &str = r#"
[targets.portal]
package = "portal"
services = ["portal.service"]
[targets.portal.repository]
type = "apt"
url = "http://127.0.0.1:9/debian"
suite = "stable"
component = "main"
keyring = "/etc/upkeep/keys/portal.asc"
"#;

#[test]
fn invalid_config_is_one_line_naming_file_and_key_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("upkeep.toml");
    std::fs::write(&main, VALID).unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let dropin = dir.path().join("conf.d/50-bad.toml");
    std::fs::write(&dropin, "[targets.portal.repository]\ntype = \"zypper\"\n").unwrap();
    let out = upkeep(&main, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&dropin.display().to_string()), "{err}");
    assert!(err.contains("targets.portal.repository.type"), "{err}");
}

#[test]
fn missing_config_file_is_exit_2() {
    let out = upkeep(Path::new("/nonexistent/upkeep.toml"), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/upkeep.toml"));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = upkeep(Path::new("/nonexistent"), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn clean_without_history_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("upkeep.toml");
    let state = dir.path().join("state");
    std::fs::write(
        &main,
        format!(
            "state_dir = \"{}\"\ncache_dir = \"{}\"\nlock_file = \"{}\"\n{VALID}",
            state.display(),
            dir.path().join("cache").display(),
            dir.path().join("upkeep.lock").display()
        ),
    )
    .unwrap();
    let out = upkeep(&main, &["clean"]);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to clean"));
        assert!(!state.exists(), "clean creates no state");
    } else {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
    }
}

#[test]
fn unreachable_repository_is_a_one_line_error_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("upkeep.toml");
    let key = dir.path().join("key.asc");
    std::fs::write(&key, "").unwrap();
    std::fs::write(
        &main,
        VALID
            .replace("/etc/upkeep/keys/portal.asc", &key.display().to_string())
            .replace("keyring", "allow_unsigned = true\n# keyring"),
    )
    .unwrap();
    let out = upkeep(&main, &["check"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("127.0.0.1:9"), "{err}");
}

/// A configuration whose state, cache and lock live in `dir`.
fn config_in(dir: &Path) -> std::path::PathBuf {
    let main = dir.join("upkeep.toml");
    std::fs::write(
        &main,
        format!(
            "state_dir = \"{}\"\ncache_dir = \"{}\"\nlock_file = \"{}\"\n{VALID}",
            dir.join("state").display(),
            dir.join("cache").display(),
            dir.join("upkeep.lock").display()
        ),
    )
    .unwrap();
    main
}

#[test]
fn listing_every_run_of_a_long_history_prints_the_same_json_and_text() {
    // `history --limit N` once read every run into memory before printing
    // (4.5 GB for 100,000 runs as JSON); it now streams them, and what it
    // prints must not change.
    use upkeep::history::History;
    let dir = tempfile::tempdir().unwrap();
    let main = config_in(dir.path());
    let h = History::open(&dir.path().join("state")).unwrap();
    let n = 250;
    for i in 0..n {
        let run = h
            .begin_run(
                "portal",
                "upgrade",
                Some("1.0.0-1"),
                Some(&format!("2.{i}.0-1")),
            )
            .unwrap();
        for name in ["download", "install", "health"] {
            let seq = h.begin_step(run, name).unwrap();
            let detail = serde_json::json!({"run": i, "step": name, "list": [1, {"a": "b\nc"}], "empty": {}});
            let error = (name == "health" && i % 5 == 0).then_some("unit failed");
            h.end_step(run, seq, 3, Some(&detail), error).unwrap();
        }
        // The newest run stays unfinished: listed as interrupted.
        if i + 1 < n {
            h.finish_run(run, "succeeded", Some("healthy")).unwrap();
        }
    }
    let mut runs = h.runs(None, 10_000).unwrap();
    drop(h);
    runs[0].outcome = Some("interrupted".into());
    let out = upkeep(&main, &["--json", "history", "--limit", "10000"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let expected = serde_json::to_string_pretty(&serde_json::json!({ "runs": runs })).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{expected}\n")
    );

    let out = upkeep(&main, &["history", "--limit", "10000"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(heads.len(), n);
    assert!(
        heads[0].starts_with(&format!(
            "#{n} portal upgrade 1.0.0-1 → 2.{}.0-1: interrupted  started ",
            n - 1
        )),
        "{}",
        heads[0]
    );
    assert!(heads[n - 1].starts_with("#1 portal upgrade 1.0.0-1 → 2.0.0-1: succeeded  started "));
    assert_eq!(
        text.lines().filter(|l| l.trim() == "healthy").count(),
        n - 1
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with("  unit failed"))
            .count(),
        n / 5
    );
    assert!(
        text.contains("     1. download   succeeded      3 ms\n"),
        "{text}"
    );

    // The default listing is the newest 20; an empty history says so.
    let out = upkeep(&main, &["--json", "history"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 20);
    let empty = tempfile::tempdir().unwrap();
    let main = config_in(empty.path());
    let out = upkeep(&main, &["--json", "history"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\n  \"runs\": []\n}\n"
    );
    let out = upkeep(&main, &["history"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "no runs recorded\n");
}
