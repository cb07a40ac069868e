//! `[[targets.X.requires]]` and `[[targets.X.hook]]` on the rig: rules
//! checked against the container's real OS and the real database servers
//! (a failing rule is exit 3 before anything stops), and vendors' hooks run
//! by argv inside the steps (a failing one after the stop rolls back).

use std::time::Duration;

use super::rig::{Db, PortalHost, show};
use super::{host, json};

/// `ID VERSION_ID` of the container, as os-release says.
fn container_os(h: &PortalHost) -> (String, String) {
    let text = h.c.read("/etc/os-release").unwrap();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    };
    (get("ID"), get("VERSION_ID"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn requires_os_blocks_on_the_real_os_and_holds_when_it_matches() {
    let h = host();
    h.install("1.0.0").unwrap();
    let (id, version) = container_os(&h);
    assert_eq!(id, "debian", "the rig runs Debian");
    let before = h.unit_invocation();

    h.append_upkeep_toml("[[targets.portal.requires]]\nos = [\"rhel >= 8\"]\n")
        .unwrap();
    let found = format!("requires[0].os: found debian {version}, wanted rhel >= 8");
    let plan = h.upkeep(&["plan"]).unwrap();
    assert_eq!(plan.status.code(), Some(3), "{}", show(&plan));
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains(&found), "{}", show(&plan));
    assert!(stderr(&plan).contains(&found), "{}", show(&plan));

    let j = json(&h.upkeep(&["plan", "--json"]).unwrap());
    assert_eq!(j["blocked"], true, "{j:#}");
    let r = &j["requirements"][0];
    assert_eq!(r["rule"], "requires[0].os", "{j:#}");
    assert_eq!(r["found"], format!("debian {version}"), "{j:#}");
    assert_eq!(r["wanted"], "rhel >= 8", "{j:#}");
    assert_eq!(r["ok"], false, "{j:#}");

    // upgrade obeys it: exit 3, the unit never stopped.
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    assert!(stderr(&up).contains(&found), "{}", show(&up));
    assert_eq!(h.unit_invocation(), before, "the unit was never stopped");
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));

    // A rule the host meets: listed with what was found, and the plan passes.
    h.append_upkeep_toml(
        "[[targets.portal.requires]]\nversion = \">=2.0.0\"\nos = [\"rhel >= 8\", \"debian >= 11\"]\nmemory = \"64MiB\"\ndisk = \"1MiB\"\n\
         [[targets.portal.requires]]\nversion = \"<1.0.0\"\nos = [\"rhel >= 8\"]\n",
    )
    .unwrap();
    let plan = h.upkeep(&["plan", "--json"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let j = json(&plan);
    let rules: Vec<(&str, bool)> = j["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap(), r["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        rules,
        [
            ("requires[0].os", true),
            ("requires[0].memory", true),
            ("requires[0].disk", true),
        ],
        "the rule for <1.0.0 matches no hop: {j:#}"
    );
    assert_eq!(j["requirements"][0]["found"], format!("debian {version}"));
    assert!(
        j["requirements"][2]["found"]
            .as_str()
            .unwrap()
            .contains("free in /opt/portal"),
        "{j:#}"
    );
    assert_eq!(h.unit_invocation(), before);
}

/// A database rule on a real server: one that fails (exit 3, never
/// stopped), one that holds.
fn database_rule(db: Db, failing: &str, holding: &str, kind: &str) {
    let h = host();
    h.install("1.0.0").unwrap();
    h.use_database(db).unwrap();
    let before = h.unit_invocation();

    h.append_upkeep_toml(&format!(
        "[[targets.portal.requires]]\ndatabase = [\"{failing}\"]\n"
    ))
    .unwrap();
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(3), "{}", show(&up));
    let err = stderr(&up);
    assert!(
        err.contains(&format!("requires[0].database: found {kind} ")),
        "{}",
        show(&up)
    );
    assert!(err.contains(&format!("wanted {failing}")), "{}", show(&up));
    assert_eq!(h.unit_invocation(), before, "the unit was never stopped");

    h.append_upkeep_toml(&format!(
        "[[targets.portal.requires]]\ndatabase = [\"{holding}\", \"sqlite-is-not-a-server >= 1\"]\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    // An unknown database kind is a config error (exit 2) naming the key.
    let plan = h.upkeep(&["plan"]).unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", show(&plan));
    assert!(
        stderr(&plan).contains("targets.portal.requires[0].database[1]"),
        "{}",
        show(&plan)
    );

    h.append_upkeep_toml(&format!(
        "[[targets.portal.requires]]\ndatabase = [\"{holding}\"]\n"
    ))
    .unwrap();
    let plan = h.upkeep(&["plan", "--json"]).unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let j = json(&plan);
    let r = &j["requirements"][0];
    assert_eq!(r["ok"], true, "{j:#}");
    assert!(
        r["found"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{kind} ")),
        "{j:#}"
    );
    // The password never shows.
    assert!(!String::from_utf8_lossy(&plan.stdout).contains(super::rig::DB_PASSWORD));
    assert_eq!(h.unit_invocation(), before);
}

#[test]
fn requires_database_version_of_postgresql() {
    database_rule(
        Db::Postgres,
        "postgresql >= 99",
        "postgresql >= 12",
        "postgresql",
    );
}

#[test]
fn requires_database_version_of_mariadb() {
    database_rule(Db::Mariadb, "mariadb >= 99", "mariadb >= 10.3", "mariadb");
}

#[test]
fn requires_hook_after_install_gets_the_versions_by_argv() {
    let h = host();
    h.install("1.0.0").unwrap();
    let newest = h.f.newest().clone();
    // The vendor's tool may be a shell script; upkeep execs it by argv.
    h.c.write(
        "/usr/local/bin/record-hook",
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > /var/tmp/hook-argv\necho recorded \"$UPKEEP_HOOK\"\n",
        0o755,
    )
    .unwrap();
    h.append_upkeep_toml(
        "[[targets.portal.hook]]\nat = \"after-install\"\ncommand = [\"/usr/local/bin/record-hook\", \"--from\", \"{from}\", \"--to\", \"{to}\", \"$(id -u); x\"]\ntimeout = \"30s\"\n",
    )
    .unwrap();
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    assert_eq!(
        h.c.read("/var/tmp/hook-argv").unwrap(),
        format!("--from\n1.0.0\n--to\n{}\n$(id -u); x\n", newest.version),
        "substituted, no shell between upkeep and the hook"
    );
    let ready = h.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(ready["version"], newest.version.as_str());

    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let install = hist["runs"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "install")
        .unwrap();
    let hook = &install["detail"]["hooks"][0];
    assert_eq!(hook["hook"], "hook[0]", "{install:#}");
    assert_eq!(hook["at"], "after-install", "{install:#}");
    assert_eq!(hook["exit"], 0, "{install:#}");
    assert_eq!(hook["argv"][2], "1.0.0", "{install:#}");
    assert_eq!(hook["output"], "recorded after-install", "{install:#}");
}

#[test]
fn requires_a_failing_hook_after_start_rolls_the_upgrade_back() {
    let h = host();
    h.install("1.0.0").unwrap();
    h.c.write(
        "/usr/local/bin/smoke-test",
        "#!/bin/sh\necho \"smoke test of $2 failed\" >&2\nexit 1\n",
        0o755,
    )
    .unwrap();
    h.append_upkeep_toml(
        "[[targets.portal.hook]]\nat = \"after-start\"\ncommand = [\"/usr/local/bin/smoke-test\", \"--version\", \"{to}\"]\n",
    )
    .unwrap();
    let up = h.upkeep(&["upgrade", "--yes"]).unwrap();
    assert_eq!(up.status.code(), Some(4), "{}", show(&up));
    let err = stderr(&up);
    assert!(
        err.contains("start failed: hook[0] (after-start) /usr/local/bin/smoke-test failed: exit status 1: smoke test of"),
        "{}",
        show(&up)
    );
    assert!(err.contains("rolled back"), "{}", show(&up));
    let ready = h.wait_ready(Duration::from_secs(20)).unwrap();
    assert_eq!(ready["version"], "1.0.0", "{ready}");
    assert_eq!(h.installed_version().as_deref(), Some("1.0.0-1"));
    assert_eq!(h.unit_state(), "active");

    let hist = json(&h.upkeep(&["history", "--json"]).unwrap());
    let run = &hist["runs"][0];
    assert_eq!(run["outcome"], "rolled_back", "{hist:#}");
    let start = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "start")
        .unwrap();
    assert_eq!(start["status"], "failed", "{start:#}");
    assert_eq!(start["detail"]["hooks"][0]["exit"], 1, "{start:#}");
}
