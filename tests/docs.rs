//! upkeep's man pages, completions, systemd units and packaged default
//! configuration against the code: the checked-in generated files are
//! current, the man pages render without a warning, every configuration
//! key is documented, the default configuration parses, and the units run
//! commands the CLI accepts.
//!
//! Needs `groff` and `man` (Debian: `groff-base` and `man-db`); without
//! them the rendering test fails.

#[path = "../examples/gen_docs/docs.rs"]
mod docs;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use upkeep::cli::Cli;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn generated_files_are_current() {
    let out = tempfile::tempdir().expect("tempdir");
    let written = docs::write_all(root(), out.path()).expect("generate");
    assert_eq!(written.len(), 5, "{written:?}");
    let mut stale = Vec::new();
    for path in &written {
        let rel = path.strip_prefix(out.path()).expect("under out");
        let fresh = fs::read(path).expect("read generated");
        match fs::read(root().join(rel)) {
            Ok(checked_in) if checked_in == fresh => {}
            Ok(_) => stale.push(format!("{} is stale", rel.display())),
            Err(e) => stale.push(format!("{} is missing ({e})", rel.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}: run `{}` and commit the result",
        stale.join(", "),
        docs::REGENERATE
    );
}

/// Runs a renderer; its standard error must be empty.
fn render_clean(page: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); install groff-base and man-db"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{program} {} {}: {}\n{stderr}",
        args.join(" "),
        page.display(),
        output.status
    );
    if program == "man" {
        assert!(
            output.stdout.len() > 1000,
            "{program} rendered next to nothing"
        );
    }
}

#[test]
fn man_pages_render_without_warnings() {
    for page in ["man/upkeep.8", "man/upkeep.toml.5"] {
        let page = root().join(page);
        // Every groff warning, as errors would be.
        render_clean(&page, "groff", &["-man", "-ww", "-z", "-Kutf8"]);
        // As man(1) renders it on a UTF-8 terminal.
        render_clean(&page, "man", &["--warnings=w", "-Tutf8", "-l"]);
    }
}

/// The keys of the configuration schema: the fields of the `Raw*` structs
/// in src/config.rs (with their serde renames).
fn config_keys() -> BTreeSet<String> {
    let source = read("src/config.rs");
    let mut keys = BTreeSet::new();
    let mut in_raw = false;
    let mut rename: Option<String> = None;
    for line in source.lines() {
        let line = line.trim();
        if line.starts_with("struct Raw") && line.ends_with('{') {
            in_raw = true;
        } else if in_raw && line == "}" {
            in_raw = false;
        } else if in_raw {
            if let Some(rest) = line.strip_prefix("#[serde(rename = \"") {
                rename = rest.split('"').next().map(str::to_owned);
            } else if let Some((field, _)) = line.split_once(':')
                && !field.is_empty()
                && field.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                keys.insert(rename.take().unwrap_or_else(|| field.to_owned()));
            }
        }
    }
    keys
}

#[test]
fn every_config_key_is_documented() {
    let keys = config_keys();
    // The parser above still understands src/config.rs.
    for known in ["state_dir", "targets", "package", "type", "keyring", "via"] {
        assert!(keys.contains(known), "{known} not found in {keys:?}");
    }
    let page = read("man/upkeep.toml.5");
    let undocumented: Vec<_> = keys
        .iter()
        .filter(|key| {
            let term = format!(".B {key}");
            !(page.lines().any(|l| l == term)
                || page.contains(&format!(".{key}]"))
                || page.contains(&format!("[{key}.")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "config keys without a `.B KEY` entry in man/upkeep.toml.5.in: {undocumented:?} (then run `{}`)",
        docs::REGENERATE
    );
}

/// packaging/upkeep.toml with its commented-out settings (`#key`, `#[table]`)
/// switched on; prose comments (`# ...`) stay.
fn uncommented_default_config() -> String {
    read("packaging/upkeep.toml")
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => line,
        })
        .flat_map(|l| [l, "\n"])
        .collect()
}

#[test]
fn packaged_default_config_is_inert_and_its_example_is_valid() {
    let path = PathBuf::from(upkeep::config::DEFAULT_CONFIG);
    // As installed: valid TOML that configures nothing, so every command
    // says what to do rather than acting.
    let as_shipped = read("packaging/upkeep.toml");
    let table: toml::Table = toml::from_str(&as_shipped).expect("valid TOML");
    assert!(table.is_empty(), "{table:?}");
    let inert = upkeep::config::Settings::from_sources(&[(path.clone(), as_shipped)])
        .expect("the packaged default loads");
    assert!(inert.targets.is_empty());
    let e = inert.target(None).expect_err("no targets");
    assert!(e.to_string().contains("no targets defined"), "{e}");
    // Uncommented: the portal example the comments promise.
    let settings = upkeep::config::Settings::from_sources(&[(path, uncommented_default_config())])
        .unwrap_or_else(|e| panic!("packaging/upkeep.toml, uncommented: {e}"));
    let portal = settings.target(Some("portal")).expect("portal");
    assert_eq!(portal.package, "portal");
    assert_eq!(portal.services, ["portal.service"]);
    assert_eq!(portal.upgrade_path.len(), 1);
    assert_eq!(portal.required_keys.len(), 1);
}

/// The `ExecStart=` command lines of a unit in systemd/.
fn exec_starts(unit: &str) -> Vec<Vec<String>> {
    read(&format!("systemd/{unit}"))
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .map(|cmd| cmd.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn assert_unit_runs_upkeep(unit: &str, command: &str) {
    let starts = exec_starts(unit);
    assert_eq!(starts.len(), 1, "{unit}: {starts:?}");
    let argv = &starts[0];
    assert_eq!(argv[0], "/usr/bin/upkeep", "{unit}");
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{unit}: {argv:?}: {e}"));
    assert_eq!(cli.command.name(), command, "{unit}");
}

#[test]
fn check_unit_runs_a_check_and_takes_100_for_success() {
    assert_unit_runs_upkeep("upkeep-check.service", "check");
    let unit = read("systemd/upkeep-check.service");
    for line in [
        "Type=oneshot",
        "SuccessExitStatus=100",
        "IOSchedulingClass=idle",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
    let timer = read("systemd/upkeep-check.timer");
    for line in ["OnCalendar=daily", "Persistent=true"] {
        assert!(timer.lines().any(|l| l == line), "{line}");
    }
}

#[test]
fn upgrade_unit_runs_an_unattended_upgrade() {
    assert_unit_runs_upkeep("upkeep-upgrade.service", "upgrade");
    let unit = read("systemd/upkeep-upgrade.service");
    assert!(unit.lines().any(|l| l == "KillMode=mixed"));
    assert!(!unit.lines().any(|l| l.starts_with("ProtectSystem=")));
}

#[test]
fn config_examples_in_the_man_page_are_valid() {
    let page = read("man/upkeep.toml.5");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (line, current.as_mut()) {
            (".EX", None) => current = Some(String::new()),
            (".EE", Some(_)) => examples.extend(current.take()),
            (text, Some(example)) => {
                example.push_str(&text.replace("\\-", "-").replace("\\e", "\\"));
                example.push('\n');
            }
            _ => {}
        }
    }
    assert_eq!(examples.len(), 3, "the fleet, the portal and the shop");
    for example in examples {
        let path = PathBuf::from(upkeep::config::DEFAULT_CONFIG);
        upkeep::config::Settings::from_sources(&[(path, example.clone())])
            .unwrap_or_else(|e| panic!("man/upkeep.toml.5 example: {e}\n{example}"));
    }
}
