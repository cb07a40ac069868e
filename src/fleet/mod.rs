//! Fleets: nodes that share one database take turns, coordinated by slots
//! in etcd (the contract's `[fleet]`).
//!
//! Every key of a group lives under `/upkeep/fleet/GROUP/`:
//!
//! ```text
//!  slots/I          the holder of slot I (0 ≤ I < slots), on the run's lease
//!  inflight/NODE    the same holder, on NO lease: written and deleted in the
//!                   same transactions as its slot
//!  halted           {node, reason, since}: no run starts while it exists
//!  versions/V       {state: canary|good|bad, node, target, since}
//!  nodes/NODE       {node, target, installed, planned, plan, last_outcome}
//! ```
//!
//! A run takes a free slot and writes `inflight/NODE` in ONE transaction
//! that also requires `halted` to be absent, and gives both back in one
//! transaction. A slot only disappears without its `inflight` twin when its
//! lease expired: the run that held it died (or lost etcd for longer than
//! the lease). The first node that sees such an orphan halts the group: a
//! half-migrated database must never get a second node. The halt is lifted
//! when that node's run ends after all (its `recover`, or a run that
//! outlived its lease), or by `upkeep fleet resume`.
//!
//! No decision depends on a node's clock: leases expire on etcd's clock,
//! and the `since` times (RFC 3339, UTC, the writer's clock) are only shown.
//! A holder whose `since` lies in the waiter's future is shown as such.

mod keepalive;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::config;
use crate::etcd::{self, Client, Compare, EtcdError, Kv, Op};

pub use keepalive::Keepalive;

/// How often a waiting run looks at the group again.
const POLL: Duration = Duration::from_millis(500);

/// Why a fleet operation failed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// etcd did not answer, or answered with an error: nothing was changed
    /// (exit 1).
    #[error("fleet {group}: etcd: {source}")]
    Etcd {
        /// The group.
        group: String,
        /// What etcd (or the way to it) said.
        source: EtcdError,
    },
    /// No slot within `wait` (exit 6): names who holds the slots, or the
    /// halt.
    #[error("fleet {group}: {what} — gave up after waiting {waited}")]
    Busy {
        /// The group.
        group: String,
        /// Who holds the slots, or why the group is halted.
        what: String,
        /// How long the run waited.
        waited: String,
    },
    /// The version was marked bad by its canary (exit 3).
    #[error(
        "fleet {group}: version {version} was marked bad: its canary {node} rolled back ({since}); nothing was stopped; after a look, `upkeep fleet resume` clears the mark"
    )]
    BadVersion {
        /// The group.
        group: String,
        /// The refused version.
        version: String,
        /// The canary node.
        node: String,
        /// When it was marked.
        since: String,
    },
}

impl FleetError {
    fn etcd(group: &str, source: EtcdError) -> FleetError {
        FleetError::Etcd {
            group: group.to_owned(),
            source,
        }
    }
}

/// A run holding (or asking for) a slot: visible to every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The node.
    pub node: String,
    /// Its target.
    pub target: String,
    /// The run's id in that node's history.
    pub run: i64,
    /// `upgrade`, `rollback`, `downgrade`.
    #[serde(default)]
    pub kind: String,
    /// Version before.
    pub from: Option<String>,
    /// Version after.
    pub to: String,
    /// When the slot was taken (RFC 3339, the holder's clock).
    pub since: String,
}

/// Why the group is halted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// The node whose run must end (its `recover`) before the group goes on.
    pub node: String,
    /// What happened.
    pub reason: String,
    /// When it was noticed (RFC 3339, the noticing node's clock).
    pub since: String,
    /// The run on that node, when known.
    #[serde(default)]
    pub run: Option<i64>,
}

/// A version's canary state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Its first node is trying it; the others wait.
    Canary,
    /// Its canary committed: the others follow.
    Good,
    /// Its canary rolled back: the others refuse it.
    Bad,
}

/// A version's mark in the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMark {
    /// The version.
    pub version: String,
    /// Its state.
    pub state: VersionState,
    /// The canary node.
    pub node: String,
    /// The canary's target.
    pub target: String,
    /// When the state was set.
    pub since: String,
}

/// The last `plan` a node recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The version planned.
    pub version: String,
    /// Whether the plan passed (exit 0).
    pub passed: bool,
    /// When.
    pub at: String,
}

/// What a node last said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: String,
    /// Its target.
    pub target: String,
    /// The version installed there.
    pub installed: Option<String>,
    /// The version of its last passing plan.
    pub planned: Option<String>,
    /// Its last plan, passing or not.
    #[serde(default)]
    pub plan: Option<PlanRecord>,
    /// The outcome of its last run.
    pub last_outcome: Option<String>,
    /// When this record was written.
    #[serde(default)]
    pub updated: String,
}

/// The group as `fleet status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The group.
    pub group: String,
    /// Its number of slots (this node's setting).
    pub slots: u32,
    /// Who holds slots now.
    pub holders: Vec<Holder>,
    /// Why the group is halted, if it is.
    pub halted: Option<Halt>,
    /// Every node that recorded itself.
    pub nodes: Vec<NodeRecord>,
    /// Every version with a canary state.
    pub versions: Vec<VersionMark>,
    /// Runs whose slot expired without being given back (they halt the
    /// group when a run next looks).
    pub orphans: Vec<Holder>,
}

/// What a run asks a slot for.
#[derive(Clone, Debug)]
pub struct Request {
    /// Target name.
    pub target: String,
    /// The run's id in this node's history.
    pub run: i64,
    /// `upgrade`, `rollback`, `downgrade`.
    pub kind: crate::orchestrator::RunKind,
    /// Version before.
    pub from: Option<String>,
    /// Version after.
    pub to: String,
}

/// How a run ended, as its slot is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed.
    Succeeded,
    /// Failed before the stop: nothing changed.
    Abandoned,
    /// Failed after the stop and rolled back.
    RolledBack,
    /// Failed and the rollback failed too: the host needs attention.
    NeedsAttention,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Abandoned => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::NeedsAttention => "needs_attention",
        }
    }
}

/// Tells a person (or the journal) why a run is waiting.
pub type Notifier = Arc<dyn Fn(&str) + Send + Sync>;

/// This node in its group.
pub struct Fleet {
    client: Client,
    settings: config::Fleet,
    node: String,
    notify: Option<Notifier>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("group", &self.settings.group)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The etcd client settings of a `[fleet]` table.
pub fn etcd_settings(f: &config::Fleet) -> etcd::Settings {
    etcd::Settings {
        endpoints: f.etcd.clone(),
        ca_file: f.ca_file.clone(),
        cert_file: f.cert_file.clone(),
        key_file: f.key_file.clone(),
        user: f.user.clone(),
        password_file: f.password_file.clone(),
        timeout: Duration::from_secs(5),
    }
}

/// This node's name: `fleet.node`, else the host's machine id (under `root`).
pub fn node_name(f: &config::Fleet, root: &Path) -> anyhow::Result<String> {
    if let Some(n) = &f.node {
        return Ok(n.clone());
    }
    let path = root.join("etc/machine-id");
    let id = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "fleet.node is not set and {} cannot be read: {e}",
            path.display()
        )
    })?;
    let id = id.trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(anyhow!(
            "fleet.node is not set and {} holds no machine id",
            path.display()
        ));
    }
    Ok(id.to_owned())
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// "for 1m 5s" from an RFC 3339 `since`, on this node's clock; says so when
/// `since` is in this node's future (clock skew).
pub fn held_for(since: &str) -> String {
    let Ok(t) = since.parse::<jiff::Timestamp>() else {
        return format!("since {since}");
    };
    let now = jiff::Timestamp::now();
    let secs = now.as_second() - t.as_second();
    if secs < 0 {
        return format!(
            "since {since} (its clock is {}s ahead of this node's)",
            -secs
        );
    }
    format!(
        "for {}",
        humantime::format_duration(Duration::from_secs(secs as u64))
    )
}

impl Holder {
    fn line(&self) -> String {
        format!(
            "node {} ({} {} {} → {}, run #{}) {}",
            self.node,
            self.kind,
            self.target,
            self.from.as_deref().unwrap_or("nothing"),
            self.to,
            self.run,
            held_for(&self.since)
        )
    }
}

impl Halt {
    fn line(&self) -> String {
        format!(
            "the group is halted since {}: {} — run `upkeep recover` on {} (or, after a look, `upkeep fleet resume`)",
            self.since, self.reason, self.node
        )
    }
}

/// A slot held by this run. Give it back with [`Fleet::give_back`]; if the
/// process dies instead, its lease expires and the group halts.
pub struct Held {
    slot: u32,
    lease: i64,
    holder: Holder,
    canary: bool,
    keepalive: Keepalive,
    waited: Duration,
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("slot", &self.slot)
            .field("lease", &self.lease)
            .field("canary", &self.canary)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// True once etcd said the lease is gone: another node may see this run
    /// as dead and halt the group.
    pub fn lost(&self) -> bool {
        self.keepalive.lost()
    }

    /// Whether this run is its version's canary.
    pub fn canary(&self) -> bool {
        self.canary
    }

    /// What the journal records about the slot.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "slot": self.slot,
            "lease": format!("{:x}", self.lease),
            "canary": self.canary,
            "waited_ms": self.waited.as_millis() as u64,
        })
    }
}

/// What `fleet resume` cleared.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resumed {
    /// The halt lifted.
    pub halt: Option<Halt>,
    /// Versions whose bad mark was cleared.
    pub versions: Vec<String>,
    /// Runs whose expired slot was forgotten.
    pub orphans: Vec<Holder>,
}

/// The group's keys, read at one revision.
#[derive(Default)]
struct View {
    slots: Vec<(u32, Kv, Holder)>,
    inflight: Vec<(Kv, Holder)>,
    halted: Option<(Kv, Halt)>,
    versions: Vec<(Kv, VersionMark)>,
    nodes: Vec<NodeRecord>,
}

impl View {
    fn orphans(&self) -> Vec<&(Kv, Holder)> {
        self.inflight
            .iter()
            .filter(|(_, h)| {
                !self
                    .slots
                    .iter()
                    .any(|(_, _, s)| s.node == h.node && s.run == h.run)
            })
            .collect()
    }

    fn version(&self, v: &str) -> Option<&(Kv, VersionMark)> {
        self.versions.iter().find(|(_, m)| m.version == v)
    }
}

impl Fleet {
    /// Connects to the group's etcd (authenticating when configured).
    pub async fn connect(settings: &config::Fleet, node: String) -> Result<Fleet, FleetError> {
        let client = Client::connect(&etcd_settings(settings))
            .await
            .map_err(|e| FleetError::etcd(&settings.group, e))?;
        Ok(Fleet {
            client,
            settings: settings.clone(),
            node,
            notify: None,
        })
    }

    /// Where waiting runs say why they wait.
    pub fn with_notifier(mut self, notify: Notifier) -> Fleet {
        self.notify = Some(notify);
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.settings.group
    }

    fn prefix(&self) -> String {
        format!("/upkeep/fleet/{}/", self.settings.group)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix())
    }

    fn err(&self, e: EtcdError) -> FleetError {
        FleetError::etcd(&self.settings.group, e)
    }

    async fn view(&self) -> Result<View, FleetError> {
        let prefix = self.prefix();
        let kvs = self
            .client
            .range_prefix(&prefix)
            .await
            .map_err(|e| self.err(e))?;
        let mut v = View::default();
        for kv in kvs {
            let Some(rest) = kv.key.strip_prefix(&prefix) else {
                continue;
            };
            let rest = rest.to_owned();
            // A value this version cannot read is skipped with a warning:
            // it must not make the whole group unreadable.
            let bad = |e: serde_json::Error| {
                tracing::warn!("fleet: ignoring unreadable key {}: {e}", kv.key);
            };
            if let Some(i) = rest.strip_prefix("slots/") {
                match (
                    i.parse::<u32>(),
                    serde_json::from_slice::<Holder>(&kv.value),
                ) {
                    (Ok(i), Ok(h)) => v.slots.push((i, kv, h)),
                    (_, Err(e)) => bad(e),
                    (Err(_), _) => {}
                }
            } else if rest.starts_with("inflight/") {
                match serde_json::from_slice::<Holder>(&kv.value) {
                    Ok(h) => v.inflight.push((kv, h)),
                    Err(e) => bad(e),
                }
            } else if rest == "halted" {
                match serde_json::from_slice::<Halt>(&kv.value) {
                    Ok(h) => v.halted = Some((kv, h)),
                    Err(e) => bad(e),
                }
            } else if rest.starts_with("versions/") {
                match serde_json::from_slice::<VersionMark>(&kv.value) {
                    Ok(m) => v.versions.push((kv, m)),
                    Err(e) => bad(e),
                }
            } else if rest.starts_with("nodes/") {
                match serde_json::from_slice::<NodeRecord>(&kv.value) {
                    Ok(n) => v.nodes.push(n),
                    Err(e) => bad(e),
                }
            }
        }
        v.slots.sort_by_key(|(i, _, _)| *i);
        Ok(v)
    }

    /// The group's state (`fleet status`).
    pub async fn status(&self) -> Result<Status, FleetError> {
        let v = self.view().await?;
        let orphans = v.orphans().into_iter().map(|(_, h)| h.clone()).collect();
        Ok(Status {
            group: self.settings.group.clone(),
            slots: self.settings.slots,
            holders: v.slots.into_iter().map(|(_, _, h)| h).collect(),
            halted: v.halted.map(|(_, h)| h),
            nodes: v.nodes,
            versions: v.versions.into_iter().map(|(_, m)| m).collect(),
            orphans,
        })
    }

    /// Halts the group for `orphan` unless it is halted already.
    async fn halt_for(&self, kv: &Kv, orphan: &Holder) -> Result<(), FleetError> {
        let halt = Halt {
            node: orphan.node.clone(),
            reason: format!(
                "the slot of node {}'s run #{} ({} {} → {}) expired while the run held it: the run died or lost etcd",
                orphan.node,
                orphan.run,
                orphan.target,
                orphan.from.as_deref().unwrap_or("nothing"),
                orphan.to
            ),
            since: now(),
            run: Some(orphan.run),
        };
        let value =
            serde_json::to_vec(&halt).map_err(|e| self.err(EtcdError::Protocol(e.to_string())))?;
        let r = self
            .client
            .txn(
                &[
                    Compare::Absent(self.key("halted")),
                    Compare::ModRevision(kv.key.clone(), kv.mod_revision),
                ],
                &[Op::Put {
                    key: self.key("halted"),
                    value,
                    lease: None,
                }],
                &[],
            )
            .await
            .map_err(|e| self.err(e))?;
        if r.succeeded {
            tracing::warn!("fleet {}: halted: {}", self.settings.group, halt.reason);
        }
        Ok(())
    }

    /// Takes a slot for `req`, waiting up to `fleet.wait` while the slots
    /// are taken, the group is halted, the version's canary runs, or (with
    /// `require_plan = "all"`) a known node has no passing plan for it.
    pub async fn take(&self, req: &Request) -> Result<Held, FleetError> {
        let started = Instant::now();
        let upgrade = req.kind == crate::orchestrator::RunKind::Upgrade;
        let mut said = String::new();
        let mut last_said = Instant::now();
        loop {
            let v = self.view().await?;
            // Why this run cannot go yet, or the transaction that takes a slot.
            let why: String = 'why: {
                for (kv, h) in v.orphans() {
                    if v.halted.is_none() {
                        self.halt_for(kv, h).await?;
                    }
                }
                if let Some((_, h)) = &v.halted {
                    break 'why h.line();
                }
                if !v.orphans().is_empty() {
                    // Halted a moment ago by this or another node: look again.
                    break 'why "the group is being halted".to_owned();
                }
                let mut compares = vec![Compare::Absent(self.key("halted"))];
                let mut puts = Vec::new();
                let mut canary = false;
                if upgrade && self.settings.canary {
                    match v.version(&req.to) {
                        Some((_, m)) if m.state == VersionState::Bad => {
                            return Err(FleetError::BadVersion {
                                group: self.settings.group.clone(),
                                version: req.to.clone(),
                                node: m.node.clone(),
                                since: m.since.clone(),
                            });
                        }
                        Some((_, m)) if m.state == VersionState::Canary && m.node != self.node => {
                            break 'why format!(
                                "version {} is being tried by its canary, node {} ({})",
                                req.to,
                                m.node,
                                held_for(&m.since)
                            );
                        }
                        Some((kv, m)) => {
                            canary = m.state == VersionState::Canary;
                            compares.push(Compare::ModRevision(kv.key.clone(), kv.mod_revision));
                        }
                        None => {
                            // The first node of this version: the canary. It
                            // runs alone — no other node may hold a slot.
                            if let Some((_, _, h)) = v.slots.first() {
                                break 'why format!(
                                    "version {} needs a canary that runs alone; slots held by {}",
                                    req.to,
                                    h.line()
                                );
                            }
                            canary = true;
                            let mark = VersionMark {
                                version: req.to.clone(),
                                state: VersionState::Canary,
                                node: self.node.clone(),
                                target: req.target.clone(),
                                since: now(),
                            };
                            let key = self.key(&format!("versions/{}", req.to));
                            compares.push(Compare::Absent(key.clone()));
                            puts.push(Op::Put {
                                key,
                                value: to_json(&mark),
                                lease: None,
                            });
                        }
                    }
                    // While a canary runs, no one else may start (slots > 1).
                    if let Some((_, _, h)) = v.slots.iter().find(|(_, _, h)| h.node != self.node)
                        && canary
                    {
                        break 'why format!("the canary of {} waits for {}", req.to, h.line());
                    }
                }
                if upgrade && self.settings.require_plan_all {
                    let missing: Vec<String> = v
                        .nodes
                        .iter()
                        .filter(|n| {
                            n.node != self.node && n.planned.as_deref() != Some(req.to.as_str())
                        })
                        .map(|n| n.node.clone())
                        .collect();
                    if !missing.is_empty() {
                        break 'why format!(
                            "require_plan = \"all\": no passing plan for {} yet from {}",
                            req.to,
                            missing.join(", ")
                        );
                    }
                }
                let taken: Vec<u32> = v.slots.iter().map(|(i, _, _)| *i).collect();
                let Some(free) = (0..self.settings.slots).find(|i| !taken.contains(i)) else {
                    let who: Vec<String> = v.slots.iter().map(|(_, _, h)| h.line()).collect();
                    break 'why format!(
                        "all {} slot(s) are held: {}",
                        self.settings.slots,
                        who.join("; ")
                    );
                };
                let lease = self
                    .client
                    .lease_grant(self.settings.lease)
                    .await
                    .map_err(|e| self.err(e))?;
                let holder = Holder {
                    node: self.node.clone(),
                    target: req.target.clone(),
                    run: req.run,
                    kind: req.kind.name().to_owned(),
                    from: req.from.clone(),
                    to: req.to.clone(),
                    since: now(),
                };
                let slot_key = self.key(&format!("slots/{free}"));
                compares.push(Compare::Absent(slot_key.clone()));
                // Every slot seen held must still be held as seen: one whose
                // lease expired since is a dead run, which halts the group.
                for (_, kv, _) in &v.slots {
                    compares.push(Compare::ModRevision(kv.key.clone(), kv.mod_revision));
                }
                puts.push(Op::Put {
                    key: slot_key,
                    value: to_json(&holder),
                    lease: Some(lease),
                });
                puts.push(Op::Put {
                    key: self.key(&format!("inflight/{}", self.node)),
                    value: to_json(&holder),
                    lease: None,
                });
                let r = self
                    .client
                    .txn(&compares, &puts, &[])
                    .await
                    .map_err(|e| self.err(e));
                match r {
                    Ok(r) if r.succeeded => {
                        let keepalive = Keepalive::start(
                            etcd_settings(&self.settings),
                            lease,
                            self.settings.lease,
                        );
                        let waited = started.elapsed();
                        tracing::info!(
                            "fleet {}: slot {free} taken by node {} run #{}{} after {:.1} s",
                            self.settings.group,
                            self.node,
                            req.run,
                            if canary { " (canary)" } else { "" },
                            waited.as_secs_f64()
                        );
                        return Ok(Held {
                            slot: free,
                            lease,
                            holder,
                            canary,
                            keepalive,
                            waited,
                        });
                    }
                    other => {
                        let _ = self.client.lease_revoke(lease).await;
                        other?;
                        // Another node was quicker: look again at once.
                        String::new()
                    }
                }
            };
            if why.is_empty() {
                continue;
            }
            let waited = started.elapsed();
            if waited >= self.settings.wait {
                return Err(FleetError::Busy {
                    group: self.settings.group.clone(),
                    what: why,
                    waited: humantime::format_duration(Duration::from_secs(waited.as_secs()))
                        .to_string(),
                });
            }
            if why != said || last_said.elapsed() >= Duration::from_secs(60) {
                tracing::info!("fleet {}: waiting: {why}", self.settings.group);
                last_said = Instant::now();
            }
            if let Some(n) = &self.notify {
                n(&format!(
                    "waiting {}s for a fleet slot: {why}",
                    waited.as_secs()
                ));
            }
            said = why;
            tokio::time::sleep(POLL.min(self.settings.wait.saturating_sub(waited))).await;
        }
    }

    /// Gives the slot back as the run ends: marks a canary's version good or
    /// bad, halts the group when the host needs attention, lifts a halt
    /// this node's run caused (it ended after all), and records the node.
    ///
    /// When etcd does not answer it tries again for up to one lease's time
    /// (the lease is kept alive meanwhile).
    pub async fn give_back(
        &self,
        held: Held,
        outcome: Outcome,
        installed: Option<&str>,
    ) -> Result<(), FleetError> {
        let started = Instant::now();
        loop {
            match self.try_give_back(&held, outcome, installed).await {
                Ok(()) => break,
                Err(e) if started.elapsed() + Duration::from_secs(1) < self.settings.lease => {
                    tracing::warn!("{e}; trying again to give the slot back");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
        held.keepalive.stop();
        let _ = self.client.lease_revoke(held.lease).await;
        tracing::info!(
            "fleet {}: slot {} given back by node {} run #{} ({})",
            self.settings.group,
            held.slot,
            self.node,
            held.holder.run,
            outcome.name()
        );
        Ok(())
    }

    async fn try_give_back(
        &self,
        held: &Held,
        outcome: Outcome,
        installed: Option<&str>,
    ) -> Result<(), FleetError> {
        let h = &held.holder;
        let mut ops = vec![
            Op::Delete(self.key(&format!("slots/{}", held.slot))),
            Op::Delete(self.key(&format!("inflight/{}", self.node))),
        ];
        if held.canary {
            let state = match outcome {
                Outcome::Succeeded => Some(VersionState::Good),
                Outcome::RolledBack | Outcome::NeedsAttention => Some(VersionState::Bad),
                // Nothing was tried: the next node may be the canary.
                Outcome::Abandoned => None,
            };
            let key = self.key(&format!("versions/{}", h.to));
            match state {
                Some(state) => ops.push(Op::Put {
                    key,
                    value: to_json(&VersionMark {
                        version: h.to.clone(),
                        state,
                        node: self.node.clone(),
                        target: h.target.clone(),
                        since: now(),
                    }),
                    lease: None,
                }),
                None => ops.push(Op::Delete(key)),
            }
        }
        let v = self.view().await?;
        let mine = v.halted.as_ref().is_some_and(|(_, x)| x.node == self.node);
        if outcome == Outcome::NeedsAttention {
            ops.push(Op::Put {
                key: self.key("halted"),
                value: to_json(&Halt {
                    node: self.node.clone(),
                    reason: format!(
                        "node {}'s run #{} ({} → {}) failed and its rollback failed too: the host needs attention",
                        self.node, h.run, h.from.as_deref().unwrap_or("nothing"), h.to
                    ),
                    since: now(),
                    run: Some(h.run),
                }),
                lease: None,
            });
        } else if mine {
            ops.push(Op::Delete(self.key("halted")));
        }
        let mut record = v
            .nodes
            .iter()
            .find(|n| n.node == self.node)
            .cloned()
            .unwrap_or_default();
        record.node = self.node.clone();
        record.target = h.target.clone();
        record.installed = installed.map(str::to_owned);
        record.last_outcome = Some(outcome.name().to_owned());
        record.updated = now();
        ops.push(Op::Put {
            key: self.key(&format!("nodes/{}", self.node)),
            value: to_json(&record),
            lease: None,
        });
        self.client
            .txn(&[], &ops, &[])
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records this node's installed version (and, with `plan`, the outcome
    /// of a `plan` for a version).
    pub async fn record(
        &self,
        target: &str,
        installed: Option<&str>,
        plan: Option<(&str, bool)>,
    ) -> Result<(), FleetError> {
        let key = self.key(&format!("nodes/{}", self.node));
        let old = self.client.get(&key).await.map_err(|e| self.err(e))?;
        let mut record: NodeRecord = old
            .and_then(|kv| serde_json::from_slice(&kv.value).ok())
            .unwrap_or_default();
        record.node = self.node.clone();
        record.target = target.to_owned();
        record.installed = installed.map(str::to_owned);
        if let Some((version, passed)) = plan {
            record.plan = Some(PlanRecord {
                version: version.to_owned(),
                passed,
                at: now(),
            });
            record.planned = passed.then(|| version.to_owned());
        }
        record.updated = now();
        self.client
            .put(&key, &to_json(&record), None)
            .await
            .map_err(|e| self.err(e))
    }

    /// After this node's `recover` ended (or found nothing to do): forgets
    /// its expired slot, settles a canary mark it left (good when the
    /// version it tried is installed now, else bad) and lifts the halt it
    /// caused. Returns the halt lifted.
    pub async fn recovered(
        &self,
        target: &str,
        installed: Option<&str>,
    ) -> Result<Option<Halt>, FleetError> {
        let v = self.view().await?;
        let mut ops = Vec::new();
        for (kv, m) in &v.versions {
            if m.state == VersionState::Canary && m.node == self.node {
                let mut m = m.clone();
                m.state = if installed == Some(m.version.as_str()) {
                    VersionState::Good
                } else {
                    VersionState::Bad
                };
                m.since = now();
                ops.push(Op::Put {
                    key: kv.key.clone(),
                    value: to_json(&m),
                    lease: None,
                });
            }
        }
        for (kv, h) in v.orphans() {
            if h.node == self.node {
                ops.push(Op::Delete(kv.key.clone()));
            }
        }
        let lifted = match &v.halted {
            Some((kv, h)) if h.node == self.node => {
                ops.push(Op::Delete(kv.key.clone()));
                Some(h.clone())
            }
            _ => None,
        };
        if !ops.is_empty() {
            self.client
                .txn(&[], &ops, &[])
                .await
                .map_err(|e| self.err(e))?;
        }
        self.record(target, installed, None).await?;
        if let Some(h) = &lifted {
            tracing::info!(
                "fleet {}: halt lifted by node {}'s recover: {}",
                self.settings.group,
                self.node,
                h.reason
            );
        }
        Ok(lifted)
    }

    /// `fleet resume`: lifts the halt, clears every bad-version mark and
    /// forgets expired slots (after an operator's look).
    pub async fn resume(&self) -> Result<Resumed, FleetError> {
        let v = self.view().await?;
        let mut ops = Vec::new();
        let mut done = Resumed::default();
        if let Some((kv, h)) = &v.halted {
            ops.push(Op::Delete(kv.key.clone()));
            done.halt = Some(h.clone());
        }
        for (kv, m) in &v.versions {
            if m.state == VersionState::Bad {
                ops.push(Op::Delete(kv.key.clone()));
                done.versions.push(m.version.clone());
            }
        }
        for (kv, h) in v.orphans() {
            ops.push(Op::Delete(kv.key.clone()));
            done.orphans.push(h.clone());
        }
        if !ops.is_empty() {
            self.client
                .txn(&[], &ops, &[])
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(done)
    }
}

fn to_json(v: &impl Serialize) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}
