//! The journal of one run: each step is written to the history before it
//! runs and again when it ends — with its duration, what it produced and the
//! artifacts (packages, backups) it made, in one transaction.

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
        Ok(Journal { history, run })
    }

    /// An existing run (one `recover` finishes or undoes).
    pub fn resume(history: &'a History, run: i64) -> Journal<'a> {
        Journal { history, run }
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
        let started = Instant::now();
        let result = step.await;
        let ms = started.elapsed().as_millis() as u64;
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
        self.history
            .finish_run(self.run, outcome, message)
            .map_err(|e| {
                Error::NeedsAttention(e.context("cannot record the outcome in the history"))
            })
    }
}
