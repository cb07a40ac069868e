//! The journal of one run: each step is written to the history before it
//! runs and again when it ends — with its duration, what it produced and the
//! artifacts (packages, backups) it made, in one transaction. Each record is
//! also logged, with the run's target, id, kind and versions as structured
//! fields (`UPKEEP_TARGET`, `UPKEEP_RUN`, `UPKEEP_STEP`, ... in the journal).

use std::future::Future;
use std::time::Instant;

use crate::error::Error;
use crate::history::{History, NewArtifact};

/// What a step produced: a JSON detail for the history, and the artifacts
/// later runs may need.
#[derive(Debug, Default)]
pub struct Produced {
    /// Shown by `history show`.
    pub detail: serde_json::Value,
    /// Recorded in the same transaction as the step's end.
    pub artifacts: Vec<NewArtifact>,
}

impl From<serde_json::Value> for Produced {
    fn from(detail: serde_json::Value) -> Produced {
        Produced {
            detail,
            artifacts: Vec::new(),
        }
    }
}

/// An open run in the history.
pub struct Journal<'a> {
    history: &'a History,
    run: i64,
    span: tracing::Span,
}

impl<'a> Journal<'a> {
    /// Records the start of a run.
    pub fn begin(
        history: &'a History,
        target: &str,
        kind: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Journal<'a>, Error> {
        let run = history
            .begin_run(target, kind, from, to)
            .map_err(|e| Error::Failed(e.context("cannot record the run in the history")))?;
        let span = tracing::info_span!(
            "run",
            upkeep_target = target,
            upkeep_run = run,
            upkeep_kind = kind,
            upkeep_from = from.unwrap_or("none"),
            upkeep_to = to.unwrap_or("none"),
        );
        tracing::info!(parent: &span, "{kind} {} → {} started (run {run})", from.unwrap_or("none"), to.unwrap_or("none"));
        Ok(Journal { history, run, span })
    }

    /// An existing run (one `recover` finishes or undoes).
    pub fn resume(history: &'a History, run: i64) -> Journal<'a> {
        let found = history.run(run).ok().flatten();
        let field = |f: fn(&crate::history::Run) -> Option<&str>| {
            found.as_ref().and_then(f).unwrap_or("none").to_owned()
        };
        let span = tracing::info_span!(
            "run",
            upkeep_target = field(|r| Some(r.target.as_str())),
            upkeep_run = run,
            upkeep_kind = field(|r| Some(r.kind.as_str())),
            upkeep_from = field(|r| r.from.as_deref()),
            upkeep_to = field(|r| r.to.as_deref()),
        );
        Journal { history, run, span }
    }

    /// The run's id.
    pub fn run(&self) -> i64 {
        self.run
    }

    /// Runs one step between its two history records. A failure to write
    /// the history fails the step: a run that cannot be journaled must not
    /// go on.
    pub async fn record<F>(&self, name: &str, step: F) -> anyhow::Result<serde_json::Value>
    where
        F: Future<Output = anyhow::Result<Produced>>,
    {
        let seq = self.history.begin_step(self.run, name)?;
        tracing::debug!(parent: &self.span, upkeep_step = name, "step {name} started");
        let started = Instant::now();
        let result = step.await;
        let ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => {
                tracing::info!(parent: &self.span, upkeep_step = name, upkeep_ms = ms, "step {name} done in {ms} ms")
            }
            Err(e) => {
                tracing::warn!(parent: &self.span, upkeep_step = name, upkeep_ms = ms, "step {name} failed: {}", crate::error::one_line(e))
            }
        }
        match result {
            Ok(p) => {
                self.history.end_step_with(
                    self.run,
                    seq,
                    ms,
                    Some(&p.detail),
                    None,
                    &p.artifacts,
                )?;
                Ok(p.detail)
            }
            Err(e) => {
                self.history.end_step(
                    self.run,
                    seq,
                    ms,
                    None,
                    Some(&crate::error::one_line(&e)),
                )?;
                Err(e)
            }
        }
    }

    /// Records the run's outcome.
    pub fn finish(&self, outcome: &str, message: Option<&str>) -> Result<(), Error> {
        match outcome {
            "succeeded" => {
                tracing::info!(parent: &self.span, upkeep_outcome = outcome, "run {} {outcome}", self.run)
            }
            _ => {
                tracing::error!(parent: &self.span, upkeep_outcome = outcome, "run {} {outcome}: {}", self.run, message.unwrap_or(""))
            }
        }
        self.history
            .finish_run(self.run, outcome, message)
            .map_err(|e| {
                Error::NeedsAttention(e.context("cannot record the outcome in the history"))
            })
    }
}
