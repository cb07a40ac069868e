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
    /// Target, kind, from and to, for the log's structured fields.
    about: [String; 4],
}

/// Logs an event of a run with its structured fields (every event carries
/// them itself: the journald layer reads fields of entered spans only).
macro_rules! run_event {
    ($level:ident, $j:expr, $($rest:tt)*) => {
        tracing::$level!(
            upkeep_target = %$j.about[0],
            upkeep_run = $j.run,
            upkeep_kind = %$j.about[1],
            upkeep_from = %$j.about[2],
            upkeep_to = %$j.about[3],
            $($rest)*
        )
    };
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
        let j = Journal {
            history,
            run,
            about: [
                target.to_owned(),
                kind.to_owned(),
                from.unwrap_or("none").to_owned(),
                to.unwrap_or("none").to_owned(),
            ],
        };
        run_event!(
            info,
            j,
            "{kind} {} → {} started (run {run})",
            j.about[2],
            j.about[3]
        );
        Ok(j)
    }

    /// An existing run (one `recover` finishes or undoes).
    pub fn resume(history: &'a History, run: i64) -> Journal<'a> {
        let found = history.run(run).ok().flatten();
        let field = |f: fn(&crate::history::Run) -> Option<&str>| {
            found.as_ref().and_then(f).unwrap_or("none").to_owned()
        };
        let about = [
            field(|r| Some(r.target.as_str())),
            field(|r| Some(r.kind.as_str())),
            field(|r| r.from.as_deref()),
            field(|r| r.to.as_deref()),
        ];
        Journal {
            history,
            run,
            about,
        }
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
        run_event!(debug, self, upkeep_step = name, "step {name} started");
        let started = Instant::now();
        let result = step.await;
        let ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => {
                run_event!(
                    info,
                    self,
                    upkeep_step = name,
                    upkeep_ms = ms,
                    "step {name} done in {ms} ms"
                )
            }
            Err(e) => {
                run_event!(
                    warn,
                    self,
                    upkeep_step = name,
                    upkeep_ms = ms,
                    "step {name} failed: {}",
                    crate::error::one_line(e)
                )
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
                // A failed hook leaves what the hooks did as the detail; a
                // step that failed its verification keeps every check's result.
                let detail = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<crate::hooks::HookFailed>())
                    .map(|h| serde_json::json!({"hooks": h.runs}))
                    .or_else(|| {
                        e.chain()
                            .find_map(|c| c.downcast_ref::<crate::verify::Failed>())
                            .map(|f| serde_json::json!({"verify": f.results}))
                    });
                self.history.end_step(
                    self.run,
                    seq,
                    ms,
                    detail.as_ref(),
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
                run_event!(
                    info,
                    self,
                    upkeep_outcome = outcome,
                    "run {} {outcome}",
                    self.run
                )
            }
            _ => {
                run_event!(
                    error,
                    self,
                    upkeep_outcome = outcome,
                    "run {} {outcome}: {}",
                    self.run,
                    message.unwrap_or("")
                )
            }
        }
        self.history
            .finish_run(self.run, outcome, message)
            .map_err(|e| {
                Error::NeedsAttention(e.context("cannot record the outcome in the history"))
            })
    }
}
