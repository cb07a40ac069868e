//! Tests of the verify checks: their config, the http check against the
//! download tests' scripted server, the command check, journal matching
//! on fixture lines, and masking.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::Settings;
use crate::download::test_server::{Reply, Server};

/// The minimal target, with `tables` after it.
fn settings(tables: &str) -> Result<Settings, crate::config::ConfigError> {
    let toml = format!(
        "[targets.portal]\npackage = \"portal\"\nservices = [\"portal.service\"]\n\
         [targets.portal.repository]\ntype = \"apt\"\nurl = \"http://r/debian\"\n\
         suite = \"stable\"\ncomponent = \"main\"\nallow_unsigned = true\n{tables}\n"
    );
    Settings::from_sources(&[(PathBuf::from("/t/upkeep.toml"), toml)])
}

fn checks(tables: &str) -> Vec<Check> {
    settings(tables).expect("valid config").targets["portal"]
        .verify
        .clone()
}

/// The error for `tables`: (key, message).
fn error(tables: &str) -> (String, String) {
    let e = settings(tables).expect_err("an invalid config");
    assert_eq!(e.file, PathBuf::from("/t/upkeep.toml"));
    (e.key.unwrap_or_default(), e.message)
}

const CONTRACT: &str = r#"
[[targets.portal.verify]]
name = "admin portal"
http = "http://127.0.0.1:3001/admin"
status = [200, 302]
body_contains = "Admin"
json = { "/version" = "{version}" }
[[targets.portal.verify]]
name = "provider sync"
command = ["/opt/portal/dev-portal", "check-sync"]
timeout = "90s"
[[targets.portal.verify]]
name = "logs"
journal_fail = ["ERROR", "failed to migrate"]
journal_warn = ["WARN"]
"#;

#[test]
fn config_parses_the_three_kinds() {
    let c = checks(CONTRACT);
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].name, "admin portal");
    assert_eq!(c[0].timeout, DEFAULT_TIMEOUT);
    assert_eq!(
        c[0].kind,
        CheckKind::Http {
            url: "http://127.0.0.1:3001/admin".parse().unwrap(),
            status: vec![200, 302],
            body_contains: Some("Admin".into()),
            json: vec![("/version".into(), "{version}".into())],
        }
    );
    assert_eq!(c[1].timeout, Duration::from_secs(90));
    assert_eq!(
        c[1].kind,
        CheckKind::Command {
            argv: vec!["/opt/portal/dev-portal".into(), "check-sync".into()]
        }
    );
    assert_eq!(
        c[2].kind,
        CheckKind::Journal {
            fail: vec!["ERROR".into(), "failed to migrate".into()],
            warn: vec!["WARN".into()],
        }
    );
    assert_eq!(c[2].kind.name(), "journal");
    // None by default.
    assert!(checks("").is_empty());
}

#[test]
fn config_errors_name_the_key() {
    let v = "[[targets.portal.verify]]\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "http = \"http://h/\"\n",
            "targets.portal.verify[0].name",
            "missing required key",
        ),
        (
            "name = \"a\"\n",
            "targets.portal.verify[0].http",
            "needs one of http, command, journal_fail or journal_warn",
        ),
        (
            "name = \"a\"\nhttp = \"http://h/\"\ncommand = [\"/bin/true\"]\n",
            "targets.portal.verify[0].command",
            "http is set too",
        ),
        (
            "name = \"a\"\ncommand = [\"/bin/true\"]\njournal_warn = [\"W\"]\n",
            "targets.portal.verify[0].journal_warn",
            "command is set too",
        ),
        (
            "name = \"a\"\ncommand = [\"/bin/true\"]\nstatus = [200]\n",
            "targets.portal.verify[0].status",
            "only for http checks",
        ),
        (
            "name = \"a\"\njournal_fail = [\"E\"]\ntimeout = \"5s\"\n",
            "targets.portal.verify[0].timeout",
            "only for http and command checks",
        ),
        (
            "name = \"a\"\nhttp = \"ftp://h/\"\n",
            "targets.portal.verify[0].http",
            "unsupported URL scheme",
        ),
        (
            "name = \"a\"\nhttp = \"http://h/\"\nstatus = [200, 700]\n",
            "targets.portal.verify[0].status[1]",
            "not an HTTP status",
        ),
        (
            "name = \"a\"\nhttp = \"http://h/\"\njson = { version = \"1\" }\n",
            "targets.portal.verify[0].json.version",
            "JSON pointer",
        ),
        (
            "name = \"a\"\nhttp = \"http://h/\"\ntimeout = \"0s\"\n",
            "targets.portal.verify[0].timeout",
            "greater than zero",
        ),
        (
            "name = \"a\"\ncommand = [\"check-sync\"]\n",
            "targets.portal.verify[0].command[0]",
            "absolute path",
        ),
        (
            "name = \"a\"\ncommand = []\n",
            "targets.portal.verify[0].command",
            "must name a program",
        ),
        (
            "name = \"a\"\njournal_fail = [\"E\", \"\"]\n",
            "targets.portal.verify[0].journal_fail[1]",
            "must not be empty",
        ),
        (
            "name = \"a\"\njournal_warn = []\n",
            "targets.portal.verify[0].journal_warn",
            "at least one pattern",
        ),
        (
            "name = \" \"\ncommand = [\"/bin/true\"]\n",
            "targets.portal.verify[0].name",
            "must not be empty",
        ),
    ];
    for (body, key, message) in cases {
        let (k, m) = error(&format!("{v}{body}"));
        assert_eq!(&k, key, "{body}");
        assert!(m.contains(message), "{body}: {m}");
    }
    // Unknown keys are refused, with their path.
    let e = settings(&format!(
        "{v}name = \"a\"\ncommand = [\"/bin/true\"]\nshell = true\n"
    ))
    .expect_err("unknown key");
    assert!(e.to_string().contains("shell"), "{e}");
    // Names are unique.
    let (k, m) = error(&format!(
        "{v}name = \"a\"\ncommand = [\"/bin/true\"]\n{v}name = \"a\"\njournal_warn = [\"W\"]\n"
    ));
    assert_eq!(k, "targets.portal.verify[1].name");
    assert!(m.contains("targets.portal.verify[0]"), "{m}");
}

#[test]
fn vars_use_the_product_version() {
    let v = Vars::new(crate::version::Family::Deb, Some("1.0.0-1"), "1.1.0-1");
    assert_eq!(v.version, "1.1.0");
    assert_eq!(v.apply("{version} {from} {to}"), "1.1.0 1.0.0-1 1.1.0-1");
    let v = Vars::new(crate::version::Family::Deb, None, "2:2.1.0~rc1-3");
    assert_eq!(v.version, "2.1.0-rc1");
    assert_eq!(v.from, "");
    let v = Vars::new(crate::version::Family::Rpm, None, "20240101-1");
    assert_eq!(v.version, "20240101");
}

fn vars() -> Vars {
    Vars::new(crate::version::Family::Deb, Some("1.0.0-1"), "1.1.0-1")
}

fn http_check(url: Url, status: &[u16], body: Option<&str>, json: &[(&str, &str)]) -> Check {
    Check {
        name: "page".into(),
        timeout: Duration::from_secs(5),
        kind: CheckKind::Http {
            url,
            status: status.to_vec(),
            body_contains: body.map(str::to_string),
            json: json
                .iter()
                .map(|(p, v)| (p.to_string(), v.to_string()))
                .collect(),
        },
    }
}

/// Runs `check` with a client that ignores proxies.
async fn run_one(check: &Check) -> CheckResult {
    let http = Http::new(None).unwrap().without_env_proxy();
    let journal = JournalSource::default();
    let vars = vars();
    let env = Env {
        http: &http,
        journal: &journal,
        since: None,
        units: &[],
        vars: &vars,
    };
    run(check, &env).await
}

#[tokio::test]
async fn http_status_set_and_default_2xx() {
    let server = Server::start(|_, r| match r.target.as_str() {
        "/ok" => Reply::ok("fine"),
        "/created" => Reply::ok("made").with_status(201),
        "/moved" => Reply::status(302).header("Location", "/ok"),
        _ => Reply::ok("boom").with_status(500),
    })
    .await;
    let r = run_one(&http_check(server.url("/ok"), &[], None, &[])).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    assert_eq!(r.excerpt, "fine");
    assert_eq!(r.kind, "http");
    assert_eq!(r.message, None);
    let r = run_one(&http_check(server.url("/created"), &[], None, &[])).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    // A redirect is an answer, not followed.
    let r = run_one(&http_check(server.url("/moved"), &[200, 302], None, &[])).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    let r = run_one(&http_check(server.url("/moved"), &[], None, &[])).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let r = run_one(&http_check(server.url("/admin"), &[200, 302], None, &[])).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some(
            format!(
                "GET {} answered 500, wanted 200 or 302",
                server.url("/admin")
            )
            .as_str()
        )
    );
    assert_eq!(r.excerpt, "boom");
    let e = verdict(vec![r]).unwrap_err().to_string();
    assert!(
        e.starts_with("verify \"page\": GET http://") && e.ends_with("wanted 200 or 302"),
        "{e}"
    );
    assert_eq!(wanted(&[200, 201, 204]), "200, 201 or 204");
}

#[tokio::test]
async fn http_body_contains_and_json_pointer_with_version() {
    let server = Server::start(|_, r| match r.target.as_str() {
        "/ready" => Reply::ok(r#"{"status":"ready","version":"1.1.0","build":{"n":7}}"#),
        "/old" => Reply::ok(r#"{"status":"ready","version":"1.0.0"}"#),
        _ => Reply::ok("<html>Admin</html>"),
    })
    .await;
    let ready = server.url("/ready");
    let r = run_one(&http_check(
        ready.clone(),
        &[],
        Some("ready"),
        &[("/version", "{version}"), ("/build/n", "7")],
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    let r = run_one(&http_check(
        server.url("/old"),
        &[],
        None,
        &[("/version", "{version}")],
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some(
            format!(
                "GET {}: /version is \"1.0.0\", wanted \"1.1.0\"",
                server.url("/old")
            )
            .as_str()
        )
    );
    let r = run_one(&http_check(ready.clone(), &[], None, &[("/nope", "x")])).await;
    assert!(r.message.unwrap().ends_with("the JSON body has no /nope"));
    let r = run_one(&http_check(ready, &[], Some("Admin"), &[])).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.message.unwrap().contains("without \"Admin\" in the body"));
    let admin = server.url("/admin");
    let r = run_one(&http_check(admin.clone(), &[], Some("Admin"), &[])).await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    let r = run_one(&http_check(admin, &[], None, &[("/version", "1")])).await;
    assert!(r.message.unwrap().ends_with("with a body that is not JSON"));
}

#[tokio::test]
async fn http_time_out_and_refused() {
    let server =
        Server::start(|_, _| Reply::ok("slow body").trickle(Duration::from_millis(400))).await;
    let mut c = http_check(server.url("/slow"), &[], None, &[]);
    c.timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let r = run_one(&c).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .contains("no answer within 300ms"),
        "{r:?}"
    );
    // Nothing listens.
    let addr = server.addr;
    drop(server);
    let _ = addr;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = http_check(
        format!("http://127.0.0.1:{port}/").parse().unwrap(),
        &[],
        None,
        &[],
    );
    let r = run_one(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.message.unwrap().starts_with("GET http://127.0.0.1:"));
}

#[tokio::test]
async fn http_excerpt_and_message_are_masked() {
    let server = Server::start(|_, r| match r.target.as_str() {
        "/json" => Reply::ok(r#"{"Database":{"ConnectionString":"postgres://portal:planted-pw-1@db/portal"},"Secret":"planted-pw-2","version":"1.0.0"}"#),
        _ => Reply::ok("status ok; password=planted-pw-3 and more").with_status(500),
    })
    .await;
    let r = run_one(&http_check(
        server.url("/json"),
        &[],
        None,
        &[("/Secret", "x")],
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Failed);
    let all = format!("{} {}", r.excerpt, r.message.clone().unwrap());
    assert!(!all.contains("planted-pw"), "{all}");
    assert!(r.excerpt.contains(crate::confmerge::MASK), "{r:?}");
    let r = run_one(&http_check(server.url("/text"), &[], None, &[])).await;
    assert!(!r.excerpt.contains("planted-pw"), "{r:?}");
    assert!(r.excerpt.starts_with("status ok; password="), "{r:?}");
    // Long bodies are clipped.
    let long = clip(&"x".repeat(500));
    assert_eq!(long.chars().count(), EXCERPT_MAX + 1);
}

fn command(argv: &[&str], timeout: Duration) -> Check {
    Check {
        name: "cmd".into(),
        timeout,
        kind: CheckKind::Command {
            argv: argv.iter().map(|a| a.to_string()).collect(),
        },
    }
}

#[tokio::test]
async fn command_exit_zero_passes_with_substituted_arguments() {
    let r = run_one(&command(
        &["/bin/echo", "v={version}", "from={from}", "to={to}"],
        DEFAULT_TIMEOUT,
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    assert_eq!(r.kind, "command");
    assert_eq!(r.excerpt, "v=1.1.0 from=1.0.0-1 to=1.1.0-1");
}

#[tokio::test]
async fn command_runs_without_a_shell() {
    let r = run_one(&command(
        &["/bin/echo", "$HOME; exit 3 | `id` > /tmp/x"],
        DEFAULT_TIMEOUT,
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Passed, "{r:?}");
    assert_eq!(r.excerpt, "$HOME; exit 3 | `id` > /tmp/x");
}

#[tokio::test]
async fn command_non_zero_missing_and_time_out_fail() {
    let r = run_one(&command(&["/bin/false"], DEFAULT_TIMEOUT)).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some("/bin/false exited with status 1")
    );
    // The vendor's tool is a script file, run by its path: no shell is
    // started by upkeep.
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("check-sync");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho out; echo 'no sync: token=planted-pw-4' >&2; exit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tool = tool.display().to_string();
    let r = run_one(&command(&[&tool], DEFAULT_TIMEOUT)).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.excerpt.starts_with("out\nno sync: token="), "{r:?}");
    assert!(!r.excerpt.contains("planted-pw"), "{r:?}");
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .contains("exited with status 2: out"),
        "{r:?}"
    );
    let r = run_one(&command(&["/nonexistent/check"], DEFAULT_TIMEOUT)).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        r.message
            .unwrap()
            .starts_with("cannot run /nonexistent/check: ")
    );
    let started = std::time::Instant::now();
    let r = run_one(&command(&["/bin/sleep", "5"], Duration::from_millis(300))).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        r.message.as_deref(),
        Some("/bin/sleep 5 did not finish within 300ms (killed)")
    );
}

/// Fixture journal: the portal's lines and systemd's about it.
const JOURNAL: &str = r#"{"__CURSOR":"c1","UNIT":"portal.service","_PID":"1","MESSAGE":"Started portal.service: ERROR is not ours","_SYSTEMD_UNIT":"init.scope"}
{"__CURSOR":"c2","_SYSTEMD_UNIT":"portal.service","_PID":"70","MESSAGE":"listening on 127.0.0.1:3001"}
{"__CURSOR":"c3","_SYSTEMD_UNIT":"portal.service","_PID":"70","MESSAGE":"WARN cache cold"}
{"__CURSOR":"c4","_SYSTEMD_UNIT":"other.service","_PID":"71","MESSAGE":"ERROR elsewhere"}
{"__CURSOR":"c5","_SYSTEMD_UNIT":"portal.service","_PID":"70","MESSAGE":"WARN slow query"}
"#;

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn journal_lines_fail_warn_or_pass() {
    let entries = crate::health::parse_journal(JOURNAL).unwrap();
    let units = strings(&["portal.service"]);
    // systemd's and other units' lines do not count.
    let f = judge_journal(&entries, &units, &strings(&["ERROR"]), &[]);
    assert_eq!(f.outcome, Outcome::Passed);
    let f = judge_journal(&entries, &units, &strings(&["ERROR"]), &strings(&["WARN"]));
    assert_eq!(f.outcome, Outcome::Warning);
    assert_eq!(f.excerpt, "portal.service: WARN cache cold");
    assert_eq!(f.message.as_deref(), Some("2 lines matched journal_warn"));
    let f = judge_journal(
        &entries,
        &units,
        &strings(&["slow query"]),
        &strings(&["WARN"]),
    );
    assert_eq!(f.outcome, Outcome::Failed);
    assert_eq!(f.excerpt, "portal.service: WARN slow query");
    assert_eq!(
        f.message.as_deref(),
        Some("portal.service logged since the start: WARN slow query")
    );
}

#[test]
fn journal_lines_are_masked() {
    let line = r#"{"__CURSOR":"c1","_SYSTEMD_UNIT":"portal.service","MESSAGE":"ERROR cannot connect to postgres://portal:planted-pw-5@db/portal"}"#;
    let entries = crate::health::parse_journal(line).unwrap();
    let f = judge_journal(
        &entries,
        &strings(&["portal.service"]),
        &strings(&["ERROR"]),
        &[],
    );
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(!f.excerpt.contains("planted-pw"), "{}", f.excerpt);
    assert!(!f.message.unwrap().contains("planted-pw"));
}

#[tokio::test]
async fn a_journal_check_without_a_position_warns() {
    let c = Check {
        name: "logs".into(),
        timeout: DEFAULT_TIMEOUT,
        kind: CheckKind::Journal {
            fail: strings(&["ERROR"]),
            warn: vec![],
        },
    };
    let r = run_one(&c).await;
    assert_eq!(r.outcome, Outcome::Warning);
    assert!(r.message.unwrap().starts_with("not checked"));
}

#[test]
fn results_serialize_as_the_report_shows_them() {
    let r = CheckResult {
        name: "logs".into(),
        kind: "journal".into(),
        outcome: Outcome::Warning,
        duration_ms: 3,
        excerpt: "portal.service: WARN x".into(),
        message: Some("1 line matched journal_warn".into()),
    };
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["outcome"], "warning");
    assert_eq!(v["duration_ms"], 3);
    let passed = CheckResult {
        outcome: Outcome::Passed,
        message: None,
        ..r
    };
    let v = serde_json::to_value(&passed).unwrap();
    assert_eq!(v["outcome"], "passed");
    assert!(v.get("message").is_none());
    assert!(verdict(vec![passed]).is_ok());
}
