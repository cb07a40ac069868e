//! The command line from the outside, without the rig: configuration errors,
//! usage errors, with their exit codes, and the JSON document `--json`
//! prints on every outcome.

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
    let expected =
        serde_json::to_string_pretty(&serde_json::json!({ "schema_version": 1, "runs": runs }))
            .unwrap();
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
        "{\n  \"schema_version\": 1,\n  \"runs\": []\n}\n"
    );
    let out = upkeep(&main, &["history"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "no runs recorded\n");
}

/// stdout of a `--json` run: exactly one JSON document.
fn one_document(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text:?}"))
}

/// The error document of a failed `--json` run, checked against its exit
/// code and the one line stderr shows.
fn error_document(out: &Output, code: i32, kind: &str) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    let doc = one_document(out);
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(doc["error"]["code"], code, "{doc}");
    assert_eq!(doc["error"]["kind"], kind, "{doc}");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("upkeep: error: "))
        .unwrap_or_else(|| panic!("no error line on stderr: {err}"));
    assert_eq!(doc["error"]["message"], line, "{doc}");
    doc
}

#[test]
fn config_error_under_json_prints_an_error_document() {
    // A configuration error under --json used to print nothing on stdout.
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("upkeep.toml");
    std::fs::write(&main, VALID).unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let dropin = dir.path().join("conf.d/50-bad.toml");
    std::fs::write(&dropin, "[targets.portal.repository]\ntype = \"zypper\"\n").unwrap();
    for args in [
        &["--json", "status"][..],
        &["check", "--json"],
        &["--json", "history"],
    ] {
        let doc = error_document(&upkeep(&main, args), 2, "config");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains("targets.portal.repository.type"), "{doc}");
        assert!(message.contains(&dropin.display().to_string()), "{doc}");
    }
    let doc = error_document(
        &upkeep(
            Path::new("/nonexistent/upkeep.toml"),
            &["--json", "versions"],
        ),
        2,
        "config",
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/upkeep.toml")
    );
}

#[test]
fn usage_error_under_json_prints_an_error_document() {
    let out = upkeep(Path::new("/nonexistent"), &["--json", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let doc = one_document(&out);
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(doc["error"]["code"], 2, "{doc}");
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frobnicate"),
        "{doc}"
    );
    // Without --json, stdout stays empty; --help is no error.
    let out = upkeep(Path::new("/nonexistent"), &["frobnicate"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = upkeep(Path::new("/nonexistent"), &["--json", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err());
}

#[test]
fn mutating_command_by_a_non_root_user_under_json_prints_an_error_document() {
    let dir = tempfile::tempdir().unwrap();
    let main = config_in(dir.path());
    let args = ["--config", main.to_str().unwrap(), "--json", "rollback"];
    let out = if nix::unistd::geteuid().is_root() {
        // As `nobody`: the refusal comes before the configuration is read,
        // so the unreadable temporary directory does not matter.
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env_remove("UPKEEP_CONFIG")
            .output()
            .expect("run setpriv (util-linux)")
    } else {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env_remove("UPKEEP_CONFIG")
            .output()
            .expect("run upkeep")
    };
    let doc = error_document(&out, 1, "not_root");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sudo upkeep rollback"),
        "{doc}"
    );
}

#[test]
fn success_documents_carry_the_schema_version_first() {
    let dir = tempfile::tempdir().unwrap();
    let main = config_in(dir.path());
    for args in [&["--json", "history"][..], &["--json", "status"]] {
        let out = upkeep(&main, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("{\n  \"schema_version\": 1,\n"),
            "{args:?}: {text}"
        );
        assert_eq!(one_document(&out)["schema_version"], 1);
    }
}
