//! `fleet status` and `fleet resume`, and how the other commands reach the
//! fleet: connecting (with the wait shown on a terminal), recording a
//! node's plan and installed version.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use serde_json::json;

use super::{CmdResult, print_json};
use crate::cli::Global;
use crate::config::Settings;
use crate::error::{Error, exit};
use crate::fleet::{self, Fleet};

/// This node in its group, or `None` without `[fleet]`. An etcd that does
/// not answer is exit 1: nothing was changed.
pub(super) async fn connect(g: &Global, settings: &Settings) -> Result<Option<Fleet>, Error> {
    let Some(f) = &settings.fleet else {
        return Ok(None);
    };
    let node = fleet::node_name(f, Path::new("/")).map_err(Error::Failed)?;
    let fleet = Fleet::connect(f, node)
        .await
        .map_err(|e| Error::Failed(anyhow!(e)))?;
    // On a terminal the wait for a slot is one line that keeps changing;
    // the journal gets a line when the reason changes (fleet::Fleet::take).
    let fleet = if std::io::stderr().is_terminal() && !g.quiet && !g.json {
        fleet.with_notifier(Arc::new(|line: &str| {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r  {line}\x1b[K");
            let _ = err.flush();
        }))
    } else {
        fleet
    };
    Ok(Some(fleet))
}

/// Records this node's installed version, and a plan's outcome, in the
/// group (when there is one). etcd not answering is a warning here: the
/// command itself did its job.
pub(super) async fn note(
    g: &Global,
    settings: &Settings,
    target: &str,
    installed: Option<&str>,
    plan: Option<(&str, bool)>,
) {
    if settings.fleet.is_none() {
        return;
    }
    let result = match connect(g, settings).await {
        Ok(Some(f)) => f
            .record(target, installed, plan)
            .await
            .map_err(|e| anyhow!(e)),
        Ok(None) => return,
        Err(e) => Err(anyhow!(e)),
    };
    if let Err(e) = result {
        tracing::warn!(
            "this node's {} was not recorded in the fleet: {}",
            if plan.is_some() { "plan" } else { "version" },
            crate::error::one_line(&e)
        );
    }
}

/// After `recover` (or when it found nothing to do): lifts the halt this
/// node caused and settles its canary mark.
pub(super) async fn recovered(
    g: &Global,
    settings: &Settings,
    target: &str,
    installed: Option<&str>,
) -> Result<(), Error> {
    let Some(f) = connect(g, settings).await? else {
        return Ok(());
    };
    let lifted = f
        .recovered(target, installed)
        .await
        .map_err(|e| Error::Failed(anyhow!(e)))?;
    if let Some(h) = lifted
        && !g.quiet
        && !g.json
    {
        outln!(
            "fleet {}: the halt this node caused is lifted ({})",
            f.group(),
            h.reason
        );
    }
    Ok(())
}

/// The group, for `fleet status` and `fleet resume`: a configuration
/// without `[fleet]` is a usage error.
async fn group(g: &Global, settings: &Settings) -> Result<Fleet, Error> {
    connect(g, settings).await?.ok_or_else(|| {
        Error::Usage(format!(
            "{}: no [fleet] table: this node is in no fleet",
            settings
                .sources
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))
    })
}

/// `fleet status [--json]`.
pub(super) async fn status(g: &Global, settings: &Settings) -> CmdResult {
    let f = group(g, settings).await?;
    let st = f.status().await.map_err(|e| Error::Failed(anyhow!(e)))?;
    if g.json {
        print_json(&st)?;
        return Ok(exit::OK);
    }
    outln!(
        "fleet {} ({} slot{}; this node: {})",
        st.group,
        st.slots,
        if st.slots == 1 { "" } else { "s" },
        f.node()
    );
    match &st.halted {
        Some(h) => outln!(
            "  HALTED since {} by node {}: {}\n  next: `upkeep recover` on {} (or, after a look, `upkeep fleet resume`)",
            h.since,
            h.node,
            h.reason,
            h.node
        ),
        None => outln!("  not halted"),
    }
    if st.holders.is_empty() {
        outln!("  slots: all free");
    }
    for h in &st.holders {
        outln!(
            "  slot held by node {}: {} {} {} → {} (run #{}) {}",
            h.node,
            h.kind,
            h.target,
            h.from.as_deref().unwrap_or("nothing"),
            h.to,
            h.run,
            fleet::held_for(&h.since)
        );
    }
    for h in &st.orphans {
        outln!(
            "  DEAD run: node {} run #{} ({} → {}) lost its slot's lease",
            h.node,
            h.run,
            h.from.as_deref().unwrap_or("nothing"),
            h.to
        );
    }
    for n in &st.nodes {
        outln!(
            "  node {}: {} {} installed; planned {}; last run {}",
            n.node,
            n.target,
            n.installed.as_deref().unwrap_or("nothing"),
            n.planned.as_deref().unwrap_or("-"),
            n.last_outcome.as_deref().unwrap_or("-")
        );
    }
    for v in &st.versions {
        outln!(
            "  version {}: {} (canary {}, {})",
            v.version,
            match v.state {
                fleet::VersionState::Canary => "canary running",
                fleet::VersionState::Good => "good",
                fleet::VersionState::Bad => "BAD: refused until `upkeep fleet resume`",
            },
            v.node,
            v.since
        );
    }
    Ok(exit::OK)
}

/// `fleet resume`.
pub(super) async fn resume(g: &Global, settings: &Settings) -> CmdResult {
    let f = group(g, settings).await?;
    let done = f.resume().await.map_err(|e| Error::Failed(anyhow!(e)))?;
    if g.json {
        print_json(&json!({"group": f.group(), "resumed": done}))?;
    } else if !g.quiet {
        if done.halt.is_none() && done.versions.is_empty() && done.orphans.is_empty() {
            outln!(
                "fleet {}: not halted, no bad version: nothing to resume",
                f.group()
            );
        }
        if let Some(h) = &done.halt {
            outln!("fleet {}: halt lifted (was: {})", f.group(), h.reason);
        }
        for v in &done.versions {
            outln!("fleet {}: version {v} is no longer marked bad", f.group());
        }
        for h in &done.orphans {
            outln!(
                "fleet {}: forgot node {}'s dead run #{}",
                f.group(),
                h.node,
                h.run
            );
        }
    }
    Ok(exit::OK)
}
