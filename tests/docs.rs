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

/// Markdown text with fenced code blocks and inline code spans blanked
/// out, so that what they quote is not taken for a link.
fn without_code(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced {
            // Every other backtick closes a span.
            for (i, part) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    out.push_str(part);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of a Markdown file's links: inline `[text](target)` and
/// `![alt](target)` (the text may span lines), and reference definitions
/// `[label]: target`; without a title or angle brackets.
fn link_targets(markdown: &str) -> Vec<String> {
    let text = without_code(markdown);
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let inner = rest[..end].trim();
        let target = inner.split_whitespace().next().unwrap_or("");
        targets.push(
            target
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned(),
        );
        rest = &rest[end..];
    }
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(label_end) = line.find("]: ")
            && line.starts_with('[')
            && !line[..label_end].contains('(')
        {
            let target = line[label_end + 3..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            targets.push(target.to_owned());
        }
    }
    targets
}

/// The anchors GitHub gives a Markdown file's headings: lower case, every
/// character but letters, digits, `-`, `_` and spaces dropped, spaces as
/// `-`; a repeated one gets `-1`, `-2`, ...
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        if fenced {
            continue;
        }
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .chars()
            .flat_map(char::to_lowercase)
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while anchors.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        anchors.insert(unique);
    }
    anchors
}

/// What is wrong with one link of `file` (a path relative to the
/// repository), if anything: it must be relative, stay inside the
/// repository, name a file or directory that exists, and an anchor must
/// name a heading of the Markdown file it points to.
fn link_problem(root: &Path, file: &str, target: &str) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link".into());
    }
    if target.contains("://") || target.starts_with("mailto:") || target.starts_with('/') {
        return Some(format!("{target} points outside the repository"));
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let linked = if path.is_empty() {
        PathBuf::from(file)
    } else {
        // Resolved by the text of the path: `..` may not climb above the
        // repository, whatever is on the disk.
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        let joined = base.join(path);
        for c in joined.components() {
            match c {
                std::path::Component::Normal(p) => parts.push(p),
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Some(format!("{target} points outside the repository"));
                    }
                }
                _ => return Some(format!("{target} points outside the repository")),
            }
        }
        parts.iter().collect()
    };
    let on_disk = root.join(&linked);
    if !on_disk.exists() {
        return Some(format!("{target}: {} does not exist", linked.display()));
    }
    if let Some(anchor) = anchor
        && linked.extension().is_some_and(|e| e == "md")
    {
        let text = fs::read_to_string(&on_disk).unwrap_or_default();
        if !heading_anchors(&text).contains(anchor) {
            return Some(format!(
                "{target}: no heading #{anchor} in {}",
                linked.display()
            ));
        }
    }
    None
}

/// README.md, BENCHMARKS.md, docs/*.md and the READMEs of packaging/,
/// man/ and systemd/.
fn markdown_files() -> Vec<String> {
    let mut files: Vec<String> = ["README.md", "BENCHMARKS.md"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut docs: Vec<String> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    for dir in ["packaging", "man", "systemd"] {
        if root().join(dir).join("README.md").is_file() {
            files.push(format!("{dir}/README.md"));
        }
    }
    files
}

#[test]
fn every_link_of_the_markdown_files_resolves_inside_the_repository() {
    let files = markdown_files();
    assert!(files.iter().any(|f| f == "docs/README.md"), "{files:?}");
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        for target in link_targets(&read(file)) {
            checked += 1;
            if let Some(p) = link_problem(root(), file, &target) {
                problems.push(format!("{file}: {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked >= 10,
        "only {checked} links found: the parser is broken"
    );
    // The README points at the interface inside the repository.
    let readme = link_targets(&read("README.md"));
    for page in ["docs/configuration.md", "docs/commands.md", "docs/json.md"] {
        assert!(
            readme.iter().any(|t| t == page),
            "README.md links no {page}"
        );
    }
}

#[test]
fn the_link_check_catches_what_it_must() {
    let md = "[a](docs/README.md) ![b](docs/json.md#errors)\n[multi\nline](docs/commands.md#exit-codes)\n`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n[ref]: docs/configuration.md#fleets\n";
    let targets = link_targets(md);
    assert_eq!(
        targets,
        [
            "docs/README.md",
            "docs/json.md#errors",
            "docs/commands.md#exit-codes",
            "docs/configuration.md#fleets"
        ]
    );
    for t in &targets {
        assert_eq!(link_problem(root(), "README.md", t), None, "{t}");
    }
    for bad in [
        "../shared/notes/contract.md",
        "docs/../../x.md",
        "/etc/passwd",
        "https://example.org/",
        "docs/missing.md",
        "docs/json.md#no-such-heading",
        "#nowhere",
    ] {
        assert!(link_problem(root(), "README.md", bad).is_some(), "{bad}");
    }
    let anchors = heading_anchors("# A `b` (c)!\n## A b c\n```\n# not a heading\n```\n");
    assert_eq!(
        anchors.into_iter().collect::<Vec<_>>(),
        ["a-b-c", "a-b-c-1"]
    );
}

/// The tables of docs/configuration.md name every key of the schema, as
/// the man page does.
#[test]
fn every_config_key_is_in_the_configuration_doc() {
    let doc = read("docs/configuration.md");
    let missing: Vec<_> = config_keys()
        .into_iter()
        .filter(|key| {
            ![format!("`{key}`"), format!(".{key}`"), format!(".{key}]")]
                .iter()
                .any(|form| doc.contains(form.as_str()))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys not in docs/configuration.md: {missing:?}"
    );
}

/// The TOML examples of docs/*.md are valid configurations.
#[test]
fn config_examples_in_the_docs_are_valid() {
    let mut found = 0;
    for file in markdown_files().iter().filter(|f| f.starts_with("docs/")) {
        let text = read(file);
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (line.trim_end(), block.as_mut()) {
                ("```toml", None) => block = Some(String::new()),
                ("```", Some(_)) => {
                    let example = block.take().unwrap_or_default();
                    found += 1;
                    let path = PathBuf::from(upkeep::config::DEFAULT_CONFIG);
                    upkeep::config::Settings::from_sources(&[(path, example.clone())])
                        .unwrap_or_else(|e| panic!("{file}: {e}\n{example}"));
                }
                (text, Some(b)) => {
                    b.push_str(text);
                    b.push('\n');
                }
                _ => {}
            }
        }
    }
    assert!(found >= 1, "no TOML example in docs/");
}

/// The packagers' versions are pinned in tests/setup, which installs them;
/// the rig (tests/rig/own.rs) names the same ones in its messages.
#[test]
fn the_rig_names_the_packager_versions_tests_setup_installs() {
    let setup = read("tests/setup");
    let pin = |var: &str| {
        setup
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .unwrap_or_else(|| panic!("no {var}= in tests/setup"))
            .to_owned()
    };
    let own = read("tests/rig/own.rs");
    for (tool, var) in [
        ("cargo-deb", "CARGO_DEB_VERSION"),
        ("cargo-generate-rpm", "CARGO_GENERATE_RPM_VERSION"),
    ] {
        let version = pin(var);
        assert!(
            own.contains(&format!("(\"{tool}\", \"{version}\")")),
            "tests/rig/own.rs does not pin {tool} {version} as tests/setup does"
        );
    }
}
