//! What each command does and prints. Text goes to stdout for people; with
//! `--json`, exactly one JSON document goes to stdout. Logs and errors go to
//! stderr.

use std::io::{IsTerminal, Write};

use anyhow::anyhow;
use serde::Serialize;
use serde_json::json;

mod fleet;
mod preview;

use crate::cli::{Cli, Command, FleetCommand, Global, HistoryCommand};
use crate::config::{Settings, Target};
use crate::download::Http;
use crate::error::{CmdResult, Error, exit};
use crate::history::{History, Run};
use crate::lock::Lock;
use crate::orchestrator::product::Situation;
use crate::orchestrator::recover;
use crate::orchestrator::{self, Dirs, StepEvent, Systems, Transition, plan};
use crate::pkg::{Installed, Manager, PackageManager};
use crate::repo::Candidate;
use crate::signals::Interrupt;
use crate::systemd::{ServiceManager, Systemd, UnitState};
use crate::version::PkgVersion;

/// Sets up logging. Under systemd (a timer's service, or the transient unit
/// of an interactive run) the log goes to the journal with structured fields
/// (`UPKEEP_TARGET`, `UPKEEP_RUN`, `UPKEEP_STEP`, ...), at `info` and up
/// (`-v`: `debug`). Otherwise, and also for the transient unit of a run
/// started from a terminal, readable lines go to stderr: warnings by
/// default, more with `-v`.
pub fn init_logging(g: &Global) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = |level: &str| {
        EnvFilter::try_from_env("UPKEEP_LOG")
            .unwrap_or_else(|_| EnvFilter::new(format!("upkeep={level},warn")))
    };
    let journald = crate::detach::under_systemd()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|l| {
            l.with_field_prefix(None)
                .with_syslog_identifier("upkeep".into())
                .with_filter(filter(if g.verbose > 0 { "debug" } else { "info" }))
        });
    // Under a timer's service, stderr is the journal too: one copy is enough.
    let stderr = (journald.is_none() || crate::detach::is_detached()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .with_filter(filter(level))
    });
    let _ = tracing_subscriber::registry()
        .with(journald)
        .with(stderr)
        .try_init();
}

/// Runs the command and returns its exit code.
pub async fn run(cli: Cli) -> CmdResult {
    let g = &cli.global;
    if cli.command.mutates() && !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot {
            command: cli.command.name(),
        });
    }
    let settings = Settings::load(&g.config)?;
    match &cli.command {
        Command::Check(t) => check(g, &settings, t.target.as_deref()).await,
        Command::Versions(t) => versions(g, &settings, t.target.as_deref()).await,
        Command::Upgrade(u) if u.unattended => {
            unattended(g, &settings, u.to.target.as_deref()).await
        }
        Command::Upgrade(u) => {
            let run = upgrade(
                g,
                &settings,
                u.to.target.as_deref(),
                u.to.to.as_deref(),
                u.dry_run,
            );
            if u.dry_run {
                run.await
            } else {
                notified(&settings, u.to.target.as_deref(), "upgrade", run).await
            }
        }
        Command::Plan(p) => {
            preview::plan_cmd(g, &settings, p.target.as_deref(), p.to.as_deref()).await
        }
        Command::DiffConfig(p) => {
            preview::diff_config(g, &settings, p.target.as_deref(), p.to.as_deref()).await
        }
        Command::Status(t) => status(g, &settings, t.target.as_deref()).await,
        Command::History(h) => match &h.show {
            Some(HistoryCommand::Show { run }) => history_show(g, &settings, *run),
            None => history(g, &settings, h.target.as_deref(), h.limit),
        },
        Command::Rollback(t) => {
            let run = rollback(g, &settings, t.target.as_deref());
            notified(&settings, t.target.as_deref(), "rollback", run).await
        }
        Command::Downgrade(d) => {
            let run = downgrade(g, &settings, d.target.as_deref(), &d.to);
            notified(&settings, d.target.as_deref(), "downgrade", run).await
        }
        Command::Recover(t) => recover_cmd(g, &settings, t.target.as_deref()).await,
        Command::Clean => clean(g, &settings).await,
        Command::Fleet(f) => match f.command {
            FleetCommand::Status => fleet::status(g, &settings).await,
            FleetCommand::Resume => fleet::resume(g, &settings).await,
        },
    }
}

/// Re-executes an interactive upgrade, rollback or downgrade inside a
/// transient systemd unit (see [`crate::detach`]) and returns its exit code;
/// `None` when the command runs in this process.
pub fn maybe_detach(cli: &Cli) -> Option<std::process::ExitCode> {
    if !cli.command.detaches() || cli.global.no_detach || !nix::unistd::geteuid().is_root() {
        return None;
    }
    let systemd_run = crate::detach::which("systemd-run");
    if let Some(why) = crate::detach::stay_reason(
        std::path::Path::new("/run/systemd/system"),
        systemd_run.as_deref(),
    ) {
        tracing::debug!("running in this process: {why}");
        return None;
    }
    let systemd_run = systemd_run?;
    let quiet = cli.global.quiet || cli.global.json;
    match crate::detach::reexec(&systemd_run, cli.command.name(), quiet) {
        Ok(code) => Some(code),
        Err(e) => {
            tracing::warn!("cannot run in a transient systemd unit ({e}); running here");
            None
        }
    }
}

/// The id of the target's newest run in the history, 0 when there is none.
fn last_run_id(settings: &Settings, target: &Target) -> i64 {
    History::open_existing(&settings.state_dir)
        .ok()
        .flatten()
        .and_then(|h| h.last_run(&target.name).ok().flatten())
        .map_or(0, |r| r.id)
}

/// Runs an upgrade, rollback or downgrade, then its target's notify hook
/// with the result: the run as the history has it (when one started), the
/// exit code and the error. Nothing is sent when nothing was attempted (up
/// to date, declined, lock held). The hook never changes the exit code.
async fn notified(
    settings: &Settings,
    name: Option<&str>,
    event: &str,
    run: impl std::future::Future<Output = CmdResult>,
) -> CmdResult {
    let Ok(target) = settings.target(name) else {
        return run.await;
    };
    if target.notify.is_empty() {
        return run.await;
    }
    let before = last_run_id(settings, target);
    let result = run.await;
    let new_run = History::open_existing(&settings.state_dir)
        .ok()
        .flatten()
        .and_then(|h| h.last_run(&target.name).ok().flatten())
        .filter(|r| r.id > before);
    let (code, error) = match &result {
        Ok(code) => (*code, None),
        Err(e) => (e.exit_code(), Some(crate::error::one_line(&anyhow!("{e}")))),
    };
    let quiet = matches!(result, Err(Error::Declined(_)) | Err(Error::Locked(_)));
    if new_run.is_none() && (code == exit::OK || quiet) {
        return result;
    }
    let outcome = match (&new_run, &result) {
        (Some(r), _) => r.outcome.clone().unwrap_or_else(|| "interrupted".into()),
        (None, Err(Error::Preflight(_))) => "blocked".into(),
        (None, _) => "failed_unchanged".into(),
    };
    let payload = crate::notify::payload(
        event,
        &target.name,
        code,
        json!({"outcome": outcome, "error": error, "run": new_run}),
    );
    crate::notify::run(&target.notify, &payload, crate::notify::TIMEOUT).await;
    result
}

/// `upgrade --unattended`: for each target (or the one named), what its
/// `auto_upgrade` allows — nothing (`off`), download the update into the
/// cache (`download`), or upgrade inside a maintenance window (`apply`).
/// Never asks. Quiet when there is nothing to do. The exit code is the
/// worst of the targets'.
async fn unattended(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let targets: Vec<&Target> = match name {
        Some(n) => vec![settings.target(Some(n))?],
        None => settings.targets.values().collect(),
    };
    let yes = Global {
        yes: true,
        no_progress: true,
        ..g.clone()
    };
    let mut worst = exit::OK;
    let mut docs = Vec::new();
    for target in targets {
        let (code, doc) = unattended_one(&yes, settings, target).await;
        worst = worse(worst, code);
        docs.push(doc);
    }
    if g.json {
        print_json(&json!({"targets": docs}))?;
    }
    Ok(worst)
}

/// The more serious of two exit codes (for a run over several targets).
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::OK => 0,
        exit::LOCKED => 1,
        exit::PREFLIGHT => 2,
        exit::FAILED => 3,
        exit::ROLLED_BACK => 4,
        exit::NEEDS_ATTENTION => 5,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

async fn unattended_one(
    g: &Global,
    settings: &Settings,
    target: &Target,
) -> (u8, serde_json::Value) {
    use crate::config::AutoUpgrade;
    let now = jiff::Timestamp::now();
    let mode = target.auto_upgrade;
    let window = crate::window::next_after(&target.windows, now);
    let doc = |action: &str, code: u8, extra: serde_json::Value| {
        let mut d = json!({
            "target": target.name,
            "auto_upgrade": mode,
            "action": action,
            "exit_code": code,
            "next_window": window.as_ref().map(|w| w.start.timestamp().to_string()),
        });
        if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), extra) {
            d.extend(extra);
        }
        d
    };
    match mode {
        AutoUpgrade::Off => {
            tracing::info!(upkeep_target = %target.name, "auto_upgrade is off: nothing to do");
            return (
                exit::OK,
                doc("none", exit::OK, json!({"reason": "auto_upgrade is off"})),
            );
        }
        AutoUpgrade::Apply if !window.as_ref().is_some_and(|w| w.contains(now)) => {
            let next = window.as_ref().map_or("none".into(), |w| w.to_string());
            tracing::info!(upkeep_target = %target.name, "outside the maintenance window: nothing to do; next window {next}");
            return (
                exit::OK,
                doc(
                    "none",
                    exit::OK,
                    json!({"reason": "outside the maintenance window"}),
                ),
            );
        }
        _ => {}
    }
    let quiet_json = Global {
        json: false,
        quiet: true,
        ..g.clone()
    };
    if mode == AutoUpgrade::Download {
        let result = download_update(g, settings, target).await;
        let (code, extra) = match &result {
            Ok(Some(v)) => (exit::OK, json!({"version": v})),
            Ok(None) => (exit::OK, json!({"reason": "up to date"})),
            Err(e) => (e.exit_code(), json!({"error": e.to_string()})),
        };
        match &result {
            Ok(Some(v)) if !g.quiet && !g.json => outln!(
                "{}: {v} downloaded and verified; `upkeep upgrade {}` applies it",
                target.name,
                target.name
            ),
            Err(e) => errln!("upkeep: error: {}: {e}", target.name),
            _ => {}
        }
        // A download done or failed is news; an update not there is not.
        if !matches!(result, Ok(None)) {
            let payload = crate::notify::payload("download", &target.name, code, extra.clone());
            crate::notify::run(&target.notify, &payload, crate::notify::TIMEOUT).await;
        }
        let mut extra = extra;
        if let Err(e) = &result {
            extra["error"] = error_json(e);
        }
        return (
            code,
            doc(
                if matches!(result, Ok(Some(_))) {
                    "downloaded"
                } else {
                    "none"
                },
                code,
                extra,
            ),
        );
    }
    // apply, inside the window: the interactive upgrade, answered yes.
    let run = upgrade(
        if g.json { &quiet_json } else { g },
        settings,
        Some(&target.name),
        None,
        false,
    );
    let result = notified(settings, Some(&target.name), "upgrade", run).await;
    let code = match &result {
        Ok(c) => *c,
        Err(e) => {
            errln!("upkeep: error: {}: {e}", target.name);
            e.exit_code()
        }
    };
    let extra = match &result {
        Err(e) => json!({"error": error_json(e)}),
        Ok(_) => json!({}),
    };
    (code, doc("upgrade", code, extra))
}

/// `auto_upgrade = "download"`: the newest version's packages (every hop,
/// and the installed version's for a rollback) downloaded and verified into
/// the cache, as `plan` does. The version, or `None` when up to date.
async fn download_update(
    g: &Global,
    settings: &Settings,
    target: &Target,
) -> Result<Option<String>, Error> {
    let http = http_for(g, settings, target)?;
    let s = situation(target, &http, &settings.cache_dir).await?;
    let Some(candidate) = orchestrator::choose(&s.candidates, s.installed.as_ref(), None)? else {
        return Ok(None);
    };
    if !is_newer(&candidate, s.installed.as_ref()) {
        return Ok(None);
    }
    preview::prepare(settings, target, &http, &s, &candidate).await?;
    Ok(Some(candidate.version.to_string()))
}

/// The version of every JSON document upkeep prints (`"schema_version"`,
/// its first field). Bumped when a field changes meaning or goes away;
/// new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// Set once a JSON document went to stdout: an error after that prints no
/// second one.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a JSON document on stdout, `"schema_version"` first.
fn print_json(value: &impl Serialize) -> Result<(), Error> {
    let value = serde_json::to_value(value).map_err(|e| Error::Failed(e.into()))?;
    let value = match value {
        serde_json::Value::Object(fields) => {
            let mut doc = serde_json::Map::with_capacity(fields.len() + 1);
            doc.insert("schema_version".into(), json!(SCHEMA_VERSION));
            doc.extend(fields.into_iter().filter(|(k, _)| k != "schema_version"));
            serde_json::Value::Object(doc)
        }
        other => other,
    };
    let text = serde_json::to_string_pretty(&value).map_err(|e| Error::Failed(e.into()))?;
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    outln!("{text}");
    Ok(())
}

/// An error as JSON: `{"code": EXIT CODE, "kind", "message"}`, the message
/// the one line stderr shows, secrets masked.
pub fn error_json(e: &Error) -> serde_json::Value {
    let kind = match e {
        Error::Config(_) => "config",
        Error::Usage(_) => "usage",
        Error::NotRoot { .. } => "not_root",
        Error::Locked(_) => "locked",
        Error::Declined(_) => "declined",
        Error::Failed(_) => "failed",
        Error::Preflight(_) => "preflight",
        Error::RolledBack(_) => "rolled_back",
        Error::NeedsAttention(_) => "needs_attention",
    };
    let message = crate::confmerge::Masker::portal_default().mask_text(&e.to_string(), &[]);
    json!({"code": e.exit_code(), "kind": kind, "message": message})
}

/// With `--json`, the document of a command that ended in `e` before it
/// printed one of its own: `{"schema_version", "error": {...}}` (see
/// [`error_json`]). Nothing when the command already printed its document.
pub fn print_error_document(e: &Error) {
    if !JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = print_json(&json!({"error": error_json(e)}));
    }
}

/// The HTTP client for a target's repositories: progress bars only for a
/// person at a terminal.
fn http_for(g: &Global, settings: &Settings, target: &Target) -> Result<Http, Error> {
    orchestrator::sources::http_for(
        target,
        &settings.cache_dir,
        !(g.no_progress || g.quiet || g.json),
    )
}

/// Everything an upgrade to `hop` moves besides the target's first
/// package: the product's other packages at that version, then what their
/// new versions need that the host lacks or has too old, as apt/dnf would
/// choose it (exit 3 when it cannot be met).
pub(super) async fn moved_along(
    target: &Target,
    http: &Http,
    cache_dir: &std::path::Path,
    s: &Situation,
    hop: &Candidate,
) -> Result<Vec<orchestrator::plan::OtherPackage>, Error> {
    let mut own = orchestrator::product::others_for(target, s, hop)?;
    let pkg = Manager::for_family(target.family);
    let (arch, universe) = tokio::join!(pkg.architecture(), pkg.installed_packages());
    let arch = arch?;
    let universe = universe.map_err(Error::Failed)?;
    let sources = orchestrator::sources::Sources::open(
        target,
        http,
        &arch,
        cache_dir,
        std::path::Path::new("/"),
    )?;
    let deps =
        orchestrator::product::dependencies(target, hop, &own, universe, &arch, &sources, &pkg)
            .await?;
    own.extend(deps);
    Ok(own)
}

/// What a host has of the target's product and what its repositories offer.
async fn situation(
    target: &Target,
    http: &Http,
    cache_dir: &std::path::Path,
) -> Result<Situation, Error> {
    let pkg = Manager::for_family(target.family);
    // The architecture is asked while the first package's installed state
    // is read (with rpm these are two processes, ~10 ms each on a warm
    // check, which no longer wait for each other).
    let (arch, first) = tokio::join!(pkg.architecture(), pkg.installed(&target.package));
    let arch = arch?;
    let _ = first?;
    let sources = orchestrator::sources::Sources::open(
        target,
        http,
        &arch,
        cache_dir,
        std::path::Path::new("/"),
    )?;
    orchestrator::product::situation(target, &pkg, &sources).await
}

fn is_newer(candidate: &Candidate, installed: Option<&Installed>) -> bool {
    match installed {
        None => true,
        Some(i) => candidate.is_newer_than(&i.version),
    }
}

/// `check`: the named target, or every target. One line per target with an
/// update (breaking release notes flagged), nothing when all are up to date
/// unless a person is watching, exit 100 when any has an update. A target
/// whose check fails is reported on stderr; the others are still checked.
async fn check(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let targets: Vec<&Target> = match name {
        Some(_) => vec![settings.target(name)?],
        None => settings.targets.values().collect(),
    };
    if targets.is_empty() {
        tracing::info!(
            "no targets defined in {}: nothing to check",
            g.config.display()
        );
    }
    let mut docs = Vec::new();
    let mut failed = None;
    let mut any_update = false;
    for target in &targets {
        match check_one(g, settings, target).await {
            Ok(doc) => {
                any_update |= doc["update_available"] == true;
                docs.push(doc);
            }
            Err(e) if targets.len() == 1 => {
                notify_check_failure(target, &e).await;
                return Err(e);
            }
            Err(e) => {
                errln!("upkeep: error: {}: {e}", target.name);
                notify_check_failure(target, &e).await;
                failed = Some(failed.map_or(e.exit_code(), |c| worse(c, e.exit_code())));
            }
        }
    }
    if g.json {
        match docs.as_slice() {
            [one] if targets.len() == 1 => print_json(one)?,
            _ => print_json(&json!({"targets": docs}))?,
        }
    }
    Ok(match failed {
        Some(code) => code,
        None if any_update => exit::UPDATE_AVAILABLE,
        None => exit::OK,
    })
}

/// A failed check, for the notify hook.
async fn notify_check_failure(target: &Target, e: &Error) {
    let payload = crate::notify::payload(
        "check",
        &target.name,
        e.exit_code(),
        json!({"outcome": "failed", "error": e.to_string()}),
    );
    crate::notify::run(&target.notify, &payload, crate::notify::TIMEOUT).await;
}

/// One target's check: its JSON document; prints its line.
async fn check_one(
    g: &Global,
    settings: &Settings,
    target: &Target,
) -> Result<serde_json::Value, Error> {
    let http = http_for(g, settings, target)?;
    let s = situation(target, &http, &settings.cache_dir).await?;
    let installed = s.installed.as_ref().map(|i| i.version.clone());
    // The fleet learns of this node and its version from its checks (the
    // timers run them), so `require_plan = "all"` knows every node.
    fleet::note(g, settings, &target.name, installed.as_deref(), None).await;
    let latest = s.candidates.first();
    let update = latest.is_some_and(|l| is_newer(l, s.installed.as_ref()));
    let breaking = match (latest, &installed) {
        (Some(l), Some(i)) if update => breaking_news(settings, target, i, l),
        _ => None,
    };
    let doc = json!({
        "target": target.name,
        "installed": installed,
        "latest": latest.map(|c| c.version.to_string()),
        "update_available": update,
        "breaking": breaking,
        "versions": s.candidates.iter().map(|c| c.version.to_string()).collect::<Vec<_>>(),
        "packages": s.packages(target, latest),
    });
    tracing::info!(
        upkeep_target = %target.name,
        upkeep_installed = installed.as_deref().unwrap_or("none"),
        upkeep_latest = latest.map(|c| c.version.as_str()).unwrap_or("none"),
        upkeep_update_available = update,
        upkeep_breaking = breaking.is_some(),
        "check: {}",
        if update {
            format!("{} available (installed: {})", latest.map(|c| c.version.as_str()).unwrap_or("?"), installed.as_deref().unwrap_or("none"))
        } else {
            "up to date".to_string()
        }
    );
    if update {
        let payload =
            crate::notify::payload("check", &target.name, exit::UPDATE_AVAILABLE, doc.clone());
        crate::notify::run(&target.notify, &payload, crate::notify::TIMEOUT).await;
    }
    if g.json {
        return Ok(doc);
    }
    if update {
        // Printed even with --quiet: cron mails it.
        outln!(
            "{}: {} available (installed: {}){}",
            target.name,
            latest.map(|c| c.version.as_str()).unwrap_or("?"),
            installed.as_deref().unwrap_or("none"),
            breaking
                .as_deref()
                .map(|b| format!(" !! {b}"))
                .unwrap_or_default()
        );
    } else if !g.quiet && std::io::stdout().is_terminal() {
        // Only for a person: under cron, up to date prints nothing.
        outln!(
            "{}: up to date ({})",
            target.name,
            installed.as_deref().unwrap_or("none installed")
        );
    }
    Ok(doc)
}

/// What an operator must know before the update from `installed` to
/// `latest`: its breaking release notes when the package is already in the
/// cache (verified when it was downloaded), else a change of major version.
/// `check` downloads nothing.
fn breaking_news(
    settings: &Settings,
    target: &Target,
    installed: &str,
    latest: &Candidate,
) -> Option<String> {
    let cached = orchestrator::cached_path(&settings.cache_dir, &target.name, latest);
    if let Ok(info) = crate::package::read(&cached) {
        let notes = crate::package::notes_between(
            &info.changelog,
            plan::family(target),
            installed,
            latest.version.as_str(),
        );
        let breaking: Vec<_> = notes.iter().filter(|n| n.breaking).collect();
        return breaking.first().map(|n| {
            let first = n
                .text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .trim_start_matches(['*', '-', ' ']);
            format!(
                "BREAKING in {}: {first} (`upkeep plan {}` shows all notes)",
                n.version, target.name
            )
        });
    }
    let major = |v: &str| {
        PkgVersion::parse(plan::family(target), v)
            .ok()
            .and_then(|p| p.product())
            .map(|p| p.major)
    };
    match (major(installed), latest.version.product().map(|p| p.major)) {
        (Some(a), Some(b)) if b > a => Some(format!(
            "major version {a} → {b}: may break; read the release notes first (`upkeep plan {}`)",
            target.name
        )),
        _ => None,
    }
}

async fn versions(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let target = settings.target(name)?;
    let http = http_for(g, settings, target)?;
    let s = situation(target, &http, &settings.cache_dir).await?;
    let installed = s.installed.as_ref().map(|i| i.version.as_str());
    let rows: Vec<serde_json::Value> = s
        .candidates
        .iter()
        .map(|c| {
            json!({
                "version": c.version.to_string(),
                "installed": installed.is_some_and(|i| c.is_version(i)),
                "cached": orchestrator::cached_path(&settings.cache_dir, &target.name, c).exists(),
            })
        })
        .collect();
    if g.json {
        print_json(&json!({"target": target.name, "installed": installed, "versions": rows}))?;
    } else {
        for r in &rows {
            let mut marks = Vec::new();
            if r["installed"] == true {
                marks.push("installed");
            }
            if r["cached"] == true {
                marks.push("cached");
            }
            outln!(
                "{:<20} {}",
                r["version"].as_str().unwrap_or_default(),
                if marks.is_empty() {
                    String::new()
                } else {
                    format!("[{}]", marks.join(", "))
                }
            );
        }
    }
    Ok(exit::OK)
}

/// What every mutating run holds: upkeep's lock, the history, and no
/// interrupted run in the way.
fn open_for_change(settings: &Settings, target: &Target) -> Result<Lock, Error> {
    let lock = Lock::acquire(&settings.lock_file)?;
    // Only read here: a run that changes nothing creates no state.
    let Some(history) = History::open_existing(&settings.state_dir)? else {
        return Ok(lock);
    };
    if let Some(r) = recover::needs_recovery(&history, &target.name)? {
        return Err(Error::Failed(anyhow!(
            "run #{} ({} {} → {}) {} at {}; nothing was done: run `upkeep recover {}` first",
            r.id,
            r.kind,
            r.from.as_deref().unwrap_or("none"),
            r.to.as_deref().unwrap_or("?"),
            if r.outcome.is_none() {
                "was interrupted"
            } else {
                "failed while rolling back"
            },
            recover::stopped_at(&r),
            target.name
        )));
    }
    Ok(lock)
}

/// What a rollback or downgrade starts from: the lock, the history, the
/// package manager and the installed version (each must exist).
async fn going_back(
    settings: &Settings,
    target: &Target,
    what: &str,
) -> Result<(Lock, History, Manager, Installed), Error> {
    let lock = open_for_change(settings, target)?;
    let history = existing_history(settings, what)?;
    let pkg = Manager::for_family(target.family);
    let installed = pkg.installed(&target.package).await?.ok_or_else(|| {
        Error::Failed(anyhow!(
            "{} is not installed: nothing to {what}",
            target.package
        ))
    })?;
    Ok((lock, history, pkg, installed))
}

/// The installed version of every package the target's recent runs
/// changed (and of the product's own packages), for a rollback or a
/// downgrade to put each back.
async fn installed_now(
    history: &History,
    target: &Target,
    pkg: &Manager,
) -> Result<std::collections::BTreeMap<String, Option<String>>, Error> {
    let mut names: Vec<String> = target.packages.clone();
    for run in history.runs(Some(&target.name), 200)? {
        for p in run.packages {
            if !names.contains(&p.name) {
                names.push(p.name);
            }
        }
    }
    let mut now = std::collections::BTreeMap::new();
    for name in names {
        let v = pkg.installed(&name).await?.map(|i| i.version);
        now.insert(name, v);
    }
    Ok(now)
}

/// The installed version of the target's package (None when it is not
/// installed or cannot be read), for the fleet's records.
async fn installed_version(target: &Target) -> Option<String> {
    Manager::for_family(target.family)
        .installed(&target.package)
        .await
        .ok()
        .flatten()
        .map(|i| i.version)
}

/// The history of a host where a rollback or downgrade needs one.
fn existing_history(settings: &Settings, what: &str) -> Result<History, Error> {
    History::open_existing(&settings.state_dir)?.ok_or_else(|| {
        Error::Failed(anyhow!(
            "no history in {}: upkeep has not upgraded anything here, so there is nothing to {what}",
            settings.state_dir.display()
        ))
    })
}

/// Prints each step as it runs (for a person; nothing with --json/--quiet).
fn progress(show: bool) -> impl FnMut(StepEvent<'_>) {
    move |ev: StepEvent<'_>| {
        if !show {
            return;
        }
        match ev {
            StepEvent::Started(step) => {
                out!("  {step:<24}");
                let _ = std::io::stdout().flush();
            }
            StepEvent::Succeeded(_, d) => outln!(" ok     {:>8.3} s", d.as_secs_f64()),
            StepEvent::Failed(_, d, e) => outln!(
                " FAILED {:>8.3} s  {}",
                d.as_secs_f64(),
                crate::error::one_line(e)
            ),
        }
    }
}

/// The real systems a mutating run drives (systemd, dpkg/rpm) and the
/// signal flag, from the moment the run may change the host.
struct Live {
    systemd: Systemd,
    pkg: Manager,
    interrupt: Interrupt,
}

impl Live {
    async fn connect(target: &Target) -> Result<Live, Error> {
        Ok(Live {
            systemd: Systemd::connect().await?,
            pkg: Manager::for_family(target.family),
            interrupt: Interrupt::catch().map_err(Error::Failed)?,
        })
    }

    fn systems<'a>(
        &'a self,
        http: &'a Http,
        history: &'a History,
        fleet: Option<&'a crate::fleet::Fleet>,
        settings: &Settings,
    ) -> Systems<'a, Systemd, Manager> {
        Systems {
            systemd: &self.systemd,
            pkg: &self.pkg,
            http,
            history,
            interrupt: &self.interrupt,
            journal: crate::health::JournalSource::default(),
            fleet,
            db_lock_wait: settings
                .fleet
                .as_ref()
                .map_or(crate::config::DEFAULT_FLEET_WAIT, |f| f.wait),
        }
    }
}

/// Runs a transition with the real systems and prints its report.
async fn run_transition(
    g: &Global,
    settings: &Settings,
    target: &Target,
    history: &History,
    http: &Http,
    t: &Transition,
    summary: &str,
) -> CmdResult {
    let report = apply_transition(g, settings, target, history, http, t, summary).await?;
    if g.json {
        print_json(&report)?;
    } else {
        print_report(g, &report);
    }
    Ok(exit::OK)
}

/// Runs a transition with the real systems; prints its steps (not its
/// report).
async fn apply_transition(
    g: &Global,
    settings: &Settings,
    target: &Target,
    history: &History,
    http: &Http,
    t: &Transition,
    summary: &str,
) -> Result<orchestrator::Report, Error> {
    let fleet = fleet::connect(g, settings).await?;
    let live = Live::connect(target).await?;
    let sys = live.systems(http, history, fleet.as_ref(), settings);
    let show = !g.json && !g.quiet;
    if show {
        outln!("{summary}");
    }
    let dirs = Dirs {
        cache: &settings.cache_dir,
        state: &settings.state_dir,
    };
    orchestrator::apply(target, dirs, t, &sys, &mut progress(show))
        .await
        .map_err(|e| {
            let verify = match &e {
                Error::RolledBack(_) | Error::NeedsAttention(_) => recorded_verify(history, target),
                _ => None,
            };
            json_failure_with(g, target, t.kind.name(), e, verify)
        })
}

/// A finished run, for a person.
fn print_report(g: &Global, report: &orchestrator::Report) {
    if g.quiet {
        return;
    }
    outln!(
        "{}: {} {} → {} (run {}, service down {:.2} s)",
        report.target,
        report.kind,
        report.from.as_deref().unwrap_or("none"),
        report.to,
        report.run,
        report.downtime_ms as f64 / 1000.0
    );
    for b in &report.backups {
        outln!("backup: {} ({} bytes)", b.path.display(), b.size);
    }
    for c in &report.config {
        let changes = c["changes"].as_array().map_or(0, Vec::len);
        outln!(
            "config: {} {} ({} change{}; the previous file is in the files backup)",
            c["path"].as_str().unwrap_or("?"),
            match c["action"].as_str() {
                Some("merge") => "merged",
                Some("new") => "replaced by the new default",
                Some("keep") => "kept as it was",
                other => other.unwrap_or("?"),
            },
            changes,
            if changes == 1 { "" } else { "s" }
        );
    }
    for v in &report.verify {
        let mut line = format!(
            "verify: {} ({}) {} in {} ms",
            v.name,
            v.kind,
            v.outcome.name(),
            v.duration_ms
        );
        if let Some(m) = &v.message {
            line.push_str(&format!(": {m}"));
        }
        if v.outcome == crate::verify::Outcome::Warning && !v.excerpt.is_empty() {
            line.push_str(&format!(" ({})", v.excerpt));
        }
        outln!("{line}");
    }
    for p in &report.pending_config {
        let name = p.to_string_lossy();
        let what = if name.ends_with(".dpkg-old") || name.ends_with(".rpmsave") {
            "holds your previous file, which the package manager replaced (compare and merge it)"
        } else {
            "holds the new packaged default, not applied: your file was kept (compare and merge it)"
        };
        outln!("config: {} {what}", p.display());
    }
}

/// The candidates to install in turn to reach `candidate`: the stepping
/// stones of the target's `upgrade_path` rules, then `candidate` itself.
fn upgrade_path(
    target: &Target,
    installed: Option<&Installed>,
    candidate: &Candidate,
    candidates: &[Candidate],
) -> Result<Vec<Candidate>, Error> {
    let from = installed
        .and_then(|i| PkgVersion::parse(plan::family(target), &i.version).ok())
        .and_then(|v| v.product());
    let (Some(from), Some(to)) = (from, candidate.version.product()) else {
        return Ok(vec![candidate.clone()]);
    };
    let hops = orchestrator::path::hops(&from, &to, &target.upgrade_path);
    let mut out = Vec::new();
    for v in &hops[..hops.len() - 1] {
        let c = orchestrator::path::candidate_for(candidates, v).ok_or_else(|| {
            Error::Preflight(anyhow!(
                "preflight: the upgrade from {from} to {to} must go through {v} (upgrade_path), which the repository does not offer; nothing was changed"
            ))
        })?;
        out.push(c.clone());
    }
    out.push(candidate.clone());
    Ok(out)
}

/// An error of hop `n` of `of`, saying where the host stays.
fn in_hop(e: Error, n: usize, of: usize, stays: &str) -> Error {
    if of < 2 {
        return e;
    }
    let context = format!("hop {n} of {of}");
    match e {
        Error::RolledBack(a) => Error::RolledBack(a.context(format!(
            "{context} failed and was rolled back; the host stays on {stays}"
        ))),
        Error::NeedsAttention(a) => Error::NeedsAttention(a.context(context)),
        Error::Failed(a) if n > 1 => Error::Failed(a.context(format!(
            "{context} failed before its stop; the host stays on {stays}"
        ))),
        Error::Failed(a) => Error::Failed(a.context(context)),
        Error::Preflight(a) => Error::Preflight(a.context(context)),
        other => other,
    }
}

/// With --json, a failed run still prints one JSON document saying what
/// happened; the error itself goes to stderr as always.
fn json_failure(g: &Global, target: &Target, kind: &str, e: Error) -> Error {
    json_failure_with(g, target, kind, e, None)
}

/// [`json_failure`] with the run's verify results (`"verify"`), when its
/// health step ran them.
fn json_failure_with(
    g: &Global,
    target: &Target,
    kind: &str,
    e: Error,
    verify: Option<serde_json::Value>,
) -> Error {
    if g.json {
        let outcome = match &e {
            Error::RolledBack(_) => "rolled_back",
            Error::NeedsAttention(_) => "failed",
            Error::Preflight(_) => "blocked",
            _ => "failed_unchanged",
        };
        let mut doc = json!({
            "target": target.name, "kind": kind, "outcome": outcome, "error": error_json(&e),
        });
        if let Some(v) = verify {
            doc["verify"] = v;
        }
        let _ = print_json(&doc);
    }
    e
}

/// The verify results the health step of the target's newest run recorded
/// (a failed run keeps them as the step's detail).
fn recorded_verify(history: &History, target: &Target) -> Option<serde_json::Value> {
    let run = history.last_run(&target.name).ok().flatten()?;
    run.steps
        .iter()
        .rev()
        .filter(|s| s.name == "health")
        .find_map(|s| s.detail.as_ref().map(|d| d["verify"].clone()))
        .filter(|v| v.is_array())
}

async fn upgrade(
    g: &Global,
    settings: &Settings,
    name: Option<&str>,
    to: Option<&str>,
    dry_run: bool,
) -> CmdResult {
    let target = settings.target(name)?;
    let opened = if dry_run {
        None
    } else {
        Some(open_for_change(settings, target)?)
    };
    let http = http_for(g, settings, target)?;
    let mut s = situation(target, &http, &settings.cache_dir).await?;
    let installed_text = s.installed.as_ref().map(|i| i.version.clone());
    let Some(candidate) = orchestrator::choose(&s.candidates, s.installed.as_ref(), to)? else {
        if g.json {
            print_json(&json!({
                "target": target.name, "outcome": "up_to_date", "installed": installed_text,
            }))?;
        } else if !g.quiet {
            outln!(
                "{}: {} is already installed and is the newest version; nothing to do",
                target.name,
                installed_text.as_deref().unwrap_or("?")
            );
        }
        return Ok(exit::OK);
    };
    if let Some(i) = &s.installed
        && i.configured
        && !candidate.is_newer_than(&i.version)
    {
        let check = orchestrator::review::schema_check(
            target,
            Some(&i.version),
            candidate.version.as_str(),
        );
        return Err(json_failure(
            g,
            target,
            "upgrade",
            Error::Preflight(anyhow!(
                "preflight: schema: {}; nothing was changed",
                check.message
            )),
        ));
    }
    let prepared = preview::prepare(settings, target, &http, &s, &candidate)
        .await
        .map_err(|e| json_failure(g, target, "upgrade", e))?;
    if !g.json && !g.quiet {
        for c in &prepared.review.checks {
            if c.status != orchestrator::review::Status::Ok {
                let mark = match c.status {
                    orchestrator::review::Status::Error => "ERROR",
                    _ => "WARNING",
                };
                outln!("preflight {mark} {}: {}", c.name, c.message);
            }
        }
        for n in prepared.review.notes.iter().filter(|n| n.breaking) {
            outln!(
                "release notes: {} has BREAKING changes (`upkeep plan {}` shows them)",
                n.version,
                target.name
            );
        }
    }
    if let Err(e) = prepared.review.gate(&target.name) {
        if g.json {
            // The whole review, so that a script sees every failed check.
            let mut doc = prepared
                .review
                .to_json(&crate::confmerge::Masker::portal_default());
            doc["target"] = json!(target.name);
            doc["kind"] = json!("upgrade");
            doc["outcome"] = json!("blocked");
            doc["error"] = error_json(&e);
            print_json(&doc)?;
        }
        return Err(e);
    }
    let path = prepared.hops;
    let rebuilt = prepared.rebuilt;
    let route = std::iter::once(
        installed_text
            .as_deref()
            .unwrap_or("not installed")
            .to_string(),
    )
    .chain(path.iter().map(|c| c.version.to_string()))
    .collect::<Vec<_>>()
    .join(" → ");
    let summary = if path.len() > 1 {
        format!(
            "upgrade {} ({}): {route} ({} hops, each backed up and health-gated; upgrade_path)",
            target.name,
            target.package,
            path.len()
        )
    } else {
        format!(
            "upgrade {} ({}): {route} ({}, {} bytes)",
            target.name, target.package, candidate.file_name, candidate.size
        )
    };
    let Some(_lock) = opened else {
        if g.json {
            print_json(&json!({
                "target": target.name, "outcome": "dry_run",
                "from": installed_text, "to": candidate.version.to_string(),
                "path": path.iter().map(|c| c.version.to_string()).collect::<Vec<_>>(),
            }))?;
        } else {
            outln!("would {summary}");
        }
        return Ok(exit::OK);
    };
    let history = History::open(&settings.state_dir)?;
    let pkg = Manager::for_family(target.family);
    confirm(g, &summary)?;
    let mut reports = Vec::new();
    let mut stays = installed_text.clone().unwrap_or_else(|| "nothing".into());
    for (i, hop) in path.iter().enumerate() {
        let (n, of) = (i + 1, path.len());
        let installed = pkg.installed(&target.package).await?;
        for sib in &mut s.siblings {
            sib.installed = pkg.installed(&sib.name).await?;
        }
        let t = moved_along(target, &http, &settings.cache_dir, &s, hop)
            .await
            .and_then(|mut others| {
                for o in &mut others {
                    if let Some(i) = &o.installed {
                        o.rebuilt = rebuilt.get(&(o.name.clone(), i.version.clone())).cloned();
                    }
                }
                plan::upgrade(
                    &history,
                    target,
                    installed.as_ref(),
                    hop,
                    &s.candidates,
                    installed
                        .as_ref()
                        .and_then(|i| rebuilt.get(&(target.package.clone(), i.version.clone()))),
                    &others,
                )
            })
            .map_err(|e| in_hop(json_failure(g, target, "upgrade", e), n, of, &stays))?;
        let title = if of > 1 {
            format!(
                "hop {n} of {of}: {} → {}",
                installed
                    .as_ref()
                    .map(|i| i.version.as_str())
                    .unwrap_or("none"),
                hop.version
            )
        } else {
            summary.clone()
        };
        let report = apply_transition(g, settings, target, &history, &http, &t, &title)
            .await
            .map_err(|e| in_hop(e, n, of, &stays))?;
        if !g.json {
            print_report(g, &report);
        }
        stays = report.to.clone();
        reports.push(report);
    }
    if g.json {
        match reports.as_slice() {
            [one] => print_json(one)?,
            hops => print_json(&json!({
                "target": target.name, "kind": "upgrade", "outcome": "succeeded",
                "from": installed_text, "to": candidate.version.to_string(), "hops": hops,
            }))?,
        }
    }
    Ok(exit::OK)
}

/// What a restore will cost, for the confirmation: when the backup was taken.
fn restore_note(t: &Transition) -> String {
    let Some(r) = &t.restore else {
        return String::new();
    };
    let age = jiff::Timestamp::now()
        .since(
            r.taken_at
                .parse::<jiff::Timestamp>()
                .unwrap_or_else(|_| jiff::Timestamp::now()),
        )
        .ok()
        .and_then(|span| span.total(jiff::Unit::Second).ok())
        .map(|s| {
            humantime::format_duration(std::time::Duration::from_secs(s.max(0.0) as u64))
                .to_string()
        })
        .unwrap_or_else(|| "?".into());
    match &r.database {
        Some(_) => format!(
            "\nthe database will be restored from the backup taken at {} ({age} ago, run #{}): anything written to it since is LOST",
            r.taken_at, r.run
        ),
        None => format!(
            "\nthe config files will be restored from the backup taken at {} ({age} ago, run #{})",
            r.taken_at, r.run
        ),
    }
}

async fn rollback(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let target = settings.target(name)?;
    let (_lock, history, pkg, installed) = going_back(settings, target, "roll back").await?;
    let now = installed_now(&history, target, &pkg).await?;
    let t = plan::rollback(&history, target, &installed, &now)
        .map_err(|e| json_failure(g, target, "rollback", e))?;
    let summary = format!(
        "rollback {} ({}): {} → {} (package from the local cache){}",
        target.name,
        target.package,
        installed.version,
        t.to.version,
        restore_note(&t)
    );
    confirm(g, &summary)?;
    let http = http_for(g, settings, target)?;
    run_transition(g, settings, target, &history, &http, &t, &summary).await
}

async fn downgrade(g: &Global, settings: &Settings, name: Option<&str>, to: &str) -> CmdResult {
    let target = settings.target(name)?;
    let (_lock, history, pkg, installed) = going_back(settings, target, "downgrade").await?;
    let http = http_for(g, settings, target)?;
    let t = async {
        let version = plan::downgrade_version(&history, target, &installed, to)?;
        // The repository is asked only when the cache lacks the package.
        let candidates = match plan::cached_package(&history, target, &target.package, &version)? {
            Some(_) => Vec::new(),
            None => {
                let arch = pkg.architecture().await?;
                orchestrator::sources::Sources::open(
                    target,
                    &http,
                    &arch,
                    &settings.cache_dir,
                    std::path::Path::new("/"),
                )?
                .candidates(&target.package)
                .await?
            }
        };
        let now = installed_now(&history, target, &pkg).await?;
        plan::downgrade(&history, target, &installed, &version, &candidates, &now)
    }
    .await
    .map_err(|e| json_failure(g, target, "downgrade", e))?;
    let summary = format!(
        "downgrade {} ({}): {} → {} ({}){}",
        target.name,
        target.package,
        installed.version,
        t.to.version,
        match &t.to.source {
            orchestrator::Source::Cached(_) => "package from the local cache",
            orchestrator::Source::Remote(_) => "package from the repository",
        },
        restore_note(&t)
    );
    confirm(g, &summary)?;
    run_transition(g, settings, target, &history, &http, &t, &summary).await
}

async fn recover_cmd(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let target = settings.target(name)?;
    let _lock = Lock::acquire(&settings.lock_file)?;
    let history = History::open(&settings.state_dir)?;
    let Some(subject) = recover::needs_recovery(&history, &target.name)? else {
        let installed = installed_version(target).await;
        fleet::recovered(g, settings, &target.name, installed.as_deref()).await?;
        if g.json {
            print_json(
                &json!({"target": target.name, "kind": "recover", "outcome": "nothing_to_do"}),
            )?;
        } else if !g.quiet {
            outln!("{}: no interrupted run; nothing to recover", target.name);
        }
        return Ok(exit::OK);
    };
    let http = http_for(g, settings, target)?;
    let live = Live::connect(target).await?;
    let sys = live.systems(&http, &history, None, settings);
    let show = !g.json && !g.quiet;
    if show {
        outln!(
            "recover {}: run #{} ({} {} → {}) stopped at {}",
            target.name,
            subject.id,
            subject.kind,
            subject.from.as_deref().unwrap_or("none"),
            subject.to.as_deref().unwrap_or("?"),
            recover::stopped_at(&subject)
        );
    }
    let result = orchestrator::recover(target, &subject, &sys, &mut progress(show)).await;
    // The run is finished or undone (the host runs a version with its
    // data): the halt it caused in the fleet goes. A host that needs
    // attention keeps the group halted.
    if matches!(&result, Ok(_) | Err(Error::RolledBack(_))) {
        let installed = installed_version(target).await;
        fleet::recovered(g, settings, &target.name, installed.as_deref()).await?;
    }
    let report = result.map_err(|e| json_failure(g, target, "recover", e))?;
    if g.json {
        print_json(&report)?;
    } else if !g.quiet {
        outln!(
            "{}: run #{} {} (recover run {})",
            target.name,
            subject.id,
            match report.outcome.as_str() {
                "completed" => "was completed: the new version is installed and healthy",
                _ => "had changed nothing; it is closed",
            },
            report.run
        );
    }
    Ok(exit::OK)
}

/// `clean`: every target's packages and backups beyond `keep_versions`,
/// keeping what a rollback of the installed version or the recovery of an
/// interrupted run needs.
async fn clean(g: &Global, settings: &Settings) -> CmdResult {
    use orchestrator::clean;
    let _lock = Lock::acquire(&settings.lock_file)?;
    let Some(history) = History::open_existing(&settings.state_dir)? else {
        if g.json {
            print_json(&json!({"targets": [], "freed_bytes": 0}))?;
        } else if !g.quiet {
            outln!(
                "nothing to clean: no history in {}",
                settings.state_dir.display()
            );
        }
        return Ok(exit::OK);
    };
    let mut out = Vec::new();
    let mut freed = 0u64;
    for target in settings.targets.values() {
        let installed = Manager::for_family(target.family)
            .installed(&target.package)
            .await?;
        let mut protected = clean::Protected::default();
        if let Some(i) = &installed {
            protected.versions.push(i.version.clone());
        }
        // What `rollback` would use: the last completed upgrade's run.
        if let Some(last) = history.last_run_where(
            &target.name,
            &["upgrade", "rollback", "downgrade"],
            "succeeded",
        )? && last.kind == "upgrade"
        {
            protected.runs.push(last.id);
            protected.versions.extend(last.from.clone());
        }
        if let Some(run) = recover::needs_recovery(&history, &target.name)? {
            protected.runs.push(run.id);
        }
        let records = clean::records(&history, &target.name)?;
        let selected = clean::select(&records, settings.keep_versions as usize, &protected);
        let removed = clean::prune(selected).map_err(Error::Failed)?;
        let bytes: u64 = removed.iter().map(|r| r.size).sum();
        freed += bytes;
        if !g.json && !g.quiet {
            for r in &removed {
                outln!(
                    "{}: removed {} {} (run #{}, {} bytes)",
                    target.name,
                    r.role,
                    r.path.display(),
                    r.run,
                    r.size
                );
            }
            outln!(
                "{}: {} file{} removed, {} freed; kept the newest {} versions and what `rollback`{} needs",
                target.name,
                removed.len(),
                if removed.len() == 1 { "" } else { "s" },
                orchestrator::review::human(bytes),
                settings.keep_versions,
                if protected.runs.len() > 1 {
                    " and `recover`"
                } else {
                    ""
                }
            );
        }
        out.push(json!({"target": target.name, "removed": removed, "freed_bytes": bytes}));
    }
    if g.json {
        print_json(&json!({"targets": out, "freed_bytes": freed}))?;
    }
    Ok(exit::OK)
}

/// Asks on a terminal; `--yes` answers yes; without a terminal, declines.
fn confirm(g: &Global, summary: &str) -> Result<(), Error> {
    if g.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Declined(format!(
            "not confirmed: {summary}; no terminal to ask on, pass --yes to go ahead"
        )));
    }
    out!("{summary}\nProceed? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::Failed(e.into()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::Declined("not confirmed; nothing was changed".into()))
    }
}

/// A run as the contract shows it: an unfinished run whose process no
/// longer holds the lock is `interrupted`.
fn public_run(mut run: Run, lock_held: bool) -> Run {
    if run.outcome.is_none() && !lock_held {
        run.outcome = Some("interrupted".into());
    }
    run
}

async fn status(g: &Global, settings: &Settings, name: Option<&str>) -> CmdResult {
    let target = settings.target(name)?;
    let installed = Manager::for_family(target.family)
        .installed(&target.package)
        .await?;
    let mut services = Vec::new();
    let systemd = Systemd::connect().await;
    for unit in &target.services {
        let state = match &systemd {
            Ok(s) => s.state(unit).await.unwrap_or_else(|e| unknown(unit, &e)),
            Err(e) => unknown(unit, e),
        };
        services.push(state);
    }
    let lock_held = Lock::is_held(&settings.lock_file);
    let history = History::open_existing(&settings.state_dir)?;
    let (last, unfinished) = match &history {
        Some(h) => (
            h.last_run(&target.name)?,
            recover::needs_recovery(h, &target.name)?,
        ),
        None => (None, None),
    };
    let last = last.map(|r| public_run(r, lock_held));
    let interrupted = unfinished
        .filter(|_| !lock_held)
        .map(|r| public_run(r, false));
    // What broke: the failed step of a run that failed while rolling back.
    let broken = interrupted.as_ref().and_then(|r| {
        r.steps
            .iter()
            .rev()
            .find(|s| s.status == "failed")
            .map(|s| json!({"step": s.name, "error": s.error}))
    });
    let next_step = next_step(
        target,
        installed.as_ref(),
        &services,
        last.as_ref(),
        interrupted.as_ref(),
        lock_held,
    );
    let pending = orchestrator::pending_config_files(&target.config_files);
    let now = jiff::Timestamp::now();
    let window = crate::window::next_after(&target.windows, now);
    if g.json {
        print_json(&json!({
            "target": target.name,
            "installed": installed.as_ref().map(|i| &i.version),
            "services": services,
            "last_run": last,
            "interrupted_run": interrupted,
            "broken": broken,
            "next_step": next_step,
            "pending_config": pending,
            "auto_upgrade": target.auto_upgrade,
            "next_window": window.as_ref().map(|w| json!({
                "start": w.start.timestamp().to_string(),
                "end": w.end.timestamp().to_string(),
                "open": w.contains(now),
            })),
        }))?;
        return Ok(exit::OK);
    }
    outln!("target:    {} (package {})", target.name, target.package);
    match &installed {
        Some(i) if i.configured => outln!("installed: {}", i.version),
        Some(i) => outln!(
            "installed: {} — {} (not fully installed)",
            i.version,
            i.status
        ),
        None => outln!("installed: nothing"),
    }
    for s in &services {
        outln!("unit:      {} {}/{}", s.unit, s.active_state, s.sub_state);
    }
    for p in &pending {
        outln!(
            "config:    {} is pending: compare it with the live file, then remove it",
            p.display()
        );
    }
    match &last {
        Some(r) => outln!(
            "last run:  #{} {} {} → {}: {} ({}){}",
            r.id,
            r.kind,
            r.from.as_deref().unwrap_or("none"),
            r.to.as_deref().unwrap_or("?"),
            r.outcome.as_deref().unwrap_or("running"),
            r.finished_at.as_deref().unwrap_or(&r.started_at),
            r.message
                .as_deref()
                .map(|m| format!("\n           {m}"))
                .unwrap_or_default()
        ),
        None => outln!("last run:  none"),
    }
    let auto = target.auto_upgrade.name();
    match &window {
        Some(w) if w.contains(now) => {
            outln!("unattended: {auto}; a maintenance window is open now: {w}")
        }
        Some(w) => outln!("unattended: {auto}; next maintenance window {w}"),
        None => outln!("unattended: {auto}; no maintenance window"),
    }
    if let Some(r) = &interrupted {
        let at = r
            .steps
            .last()
            .map(|s| format!("{} ({})", s.name, s.status))
            .unwrap_or_else(|| "before its first step".into());
        outln!(
            "interrupted: run #{} {} → {}, stopped at {}",
            r.id,
            r.kind,
            r.to.as_deref().unwrap_or("?"),
            at
        );
    }
    if let Some(b) = &broken {
        outln!(
            "broken:    {} failed: {}",
            b["step"].as_str().unwrap_or("?"),
            b["error"].as_str().unwrap_or("no error recorded")
        );
    }
    outln!(
        "next step: {}",
        next_step
            .as_deref()
            .unwrap_or("none: the host is in a known-good state")
    );
    Ok(exit::OK)
}

fn unknown(unit: &str, e: &anyhow::Error) -> UnitState {
    tracing::warn!("cannot read the state of {unit}: {e:#}");
    UnitState {
        unit: unit.to_string(),
        active_state: "unknown".into(),
        sub_state: "unknown".into(),
    }
}

/// What an operator should run next, if anything.
fn next_step(
    target: &Target,
    installed: Option<&Installed>,
    services: &[UnitState],
    last: Option<&Run>,
    interrupted: Option<&Run>,
    lock_held: bool,
) -> Option<String> {
    if lock_held {
        return Some("wait: an upkeep run is in progress".into());
    }
    if let Some(r) = interrupted {
        return Some(format!(
            "upkeep recover {}  (run #{} {} at {}; recover completes it if its commit was recorded, else rolls it back with its backups)",
            target.name,
            r.id,
            if r.outcome.as_deref() == Some("failed") {
                "failed while rolling back"
            } else {
                "was interrupted"
            },
            recover::stopped_at(r)
        ));
    }
    if let Some(i) = installed
        && !i.configured
    {
        return Some(format!(
            "the package is {}; run `dpkg --configure -a`, then `upkeep status {}`",
            i.status, target.name
        ));
    }
    if let Some(s) = services.iter().find(|s| s.active_state != "active") {
        let failed_run = last.is_some_and(|r| r.outcome.as_deref() == Some("failed"));
        return Some(format!(
            "{} is {}: inspect with `journalctl -u {}`{}",
            s.unit,
            s.active_state,
            s.unit,
            if failed_run {
                " (the last run failed; see `upkeep history`)"
            } else {
                ""
            }
        ));
    }
    None
}

fn history(g: &Global, settings: &Settings, name: Option<&str>, limit: u32) -> CmdResult {
    if let Some(n) = name {
        settings.target(Some(n))?;
    }
    let lock_held = Lock::is_held(&settings.lock_file);
    let history = History::open_existing(&settings.state_dir)?;
    // One run at a time, from the database to stdout: a listing of every
    // run of a long history holds no more memory than one of 20. (A
    // database error halfway leaves the document unfinished, and fails.)
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = if g.json {
        history_json(history.as_ref(), name, limit, lock_held, out)
    } else {
        history_text(history.as_ref(), name, limit, lock_held, out)
    };
    match written {
        Ok(()) => Ok(exit::OK),
        // A reader that has seen enough (`| head`) is no failure.
        Err(e) if is_broken_pipe(&e) => Ok(exit::OK),
        Err(e) => Err(Error::Failed(e)),
    }
}

/// `history --json`: `{"schema_version", "runs": [...]}`, exactly as [`print_json`] prints
/// it, written run by run.
fn history_json(
    history: Option<&History>,
    name: Option<&str>,
    limit: u32,
    lock_held: bool,
    out: impl Write,
) -> anyhow::Result<()> {
    let mut head = serde_json::Map::new();
    head.insert("schema_version".into(), json!(SCHEMA_VERSION));
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut list = crate::history::PrettyList::begin_after(out, &head, "runs")?;
    if let Some(h) = history {
        h.each_run(name, limit, true, |r| {
            list.push(&public_run(r, lock_held))?;
            Ok(())
        })?;
    }
    list.finish()?;
    Ok(())
}

/// `history`: every run with its steps, as text, written run by run.
fn history_text(
    history: Option<&History>,
    name: Option<&str>,
    limit: u32,
    lock_held: bool,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let mut any = false;
    if let Some(h) = history {
        // The text shows no step details: they are not even parsed.
        h.each_run(name, limit, false, |r| {
            any = true;
            write_run(&mut out, &public_run(r, lock_held))?;
            Ok(())
        })?;
    }
    if !any {
        writeln!(out, "no runs recorded")?;
    }
    out.flush()?;
    Ok(())
}

/// Whether writing stopped because stdout's reader went away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn history_show(g: &Global, settings: &Settings, id: i64) -> CmdResult {
    let lock_held = Lock::is_held(&settings.lock_file);
    let run = History::open_existing(&settings.state_dir)?
        .map(|h| h.run(id))
        .transpose()?
        .flatten()
        .map(|r| public_run(r, lock_held))
        .ok_or_else(|| Error::Failed(anyhow!("no run #{id} in the history")))?;
    if g.json {
        print_json(&run)?;
    } else {
        let mut out = std::io::stdout().lock();
        match write_run(&mut out, &run) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Failed(e.into()));
            }
            _ => {}
        }
    }
    Ok(exit::OK)
}

/// A run and its steps, as `history` and `history show` print them.
fn write_run(out: &mut impl Write, r: &Run) -> std::io::Result<()> {
    writeln!(
        out,
        "#{} {} {} {} → {}: {}  started {}{}",
        r.id,
        r.target,
        r.kind,
        r.from.as_deref().unwrap_or("none"),
        r.to.as_deref().unwrap_or("?"),
        r.outcome.as_deref().unwrap_or("running"),
        r.started_at,
        r.finished_at
            .as_deref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    )?;
    if let Some(m) = &r.message {
        writeln!(out, "    {m}")?;
    }
    for s in &r.steps {
        writeln!(
            out,
            "    {:>2}. {:<10} {:<9} {:>9}{}",
            s.seq,
            s.name,
            s.status,
            s.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            s.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_over_several_targets_exits_with_the_worst_outcome() {
        let all = |codes: &[u8]| codes.iter().fold(exit::OK, |w, &c| worse(w, c));
        assert_eq!(all(&[]), exit::OK);
        assert_eq!(all(&[exit::OK, exit::LOCKED]), exit::LOCKED);
        assert_eq!(all(&[exit::PREFLIGHT, exit::OK]), exit::PREFLIGHT);
        assert_eq!(all(&[exit::ROLLED_BACK, exit::FAILED]), exit::ROLLED_BACK);
        assert_eq!(
            all(&[exit::NEEDS_ATTENTION, exit::ROLLED_BACK, exit::OK]),
            exit::NEEDS_ATTENTION
        );
        assert_eq!(all(&[exit::FAILED, exit::PREFLIGHT]), exit::FAILED);
    }
}
