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
