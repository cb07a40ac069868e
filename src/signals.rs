//! SIGINT and SIGTERM during a run: remembered, never obeyed in the middle
//! of a step. The orchestrator looks at the flag between steps and ends the
//! run there (rolling back when the service was already stopped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Which signal asked the run to end, if any.
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    signal: Arc<AtomicU8>,
}

const NONE: u8 = 0;
const SIGINT: u8 = 1;
const SIGTERM: u8 = 2;

impl Interrupt {
    /// A flag nobody sets.
    #[cfg(test)]
    pub fn none() -> Interrupt {
        Interrupt::default()
    }

    /// Catches SIGINT and SIGTERM from now on: the process no longer dies of
    /// them, the flag is set instead. Must be called inside the runtime.
    pub fn catch() -> anyhow::Result<Interrupt> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let flag = Interrupt::default();
        let set = flag.clone();
        tokio::spawn(async move {
            loop {
                let which = tokio::select! {
                    _ = int.recv() => SIGINT,
                    _ = term.recv() => SIGTERM,
                };
                set.signal.store(which, Ordering::SeqCst);
                tracing::warn!(
                    "received {}: finishing the current step first (a run is never cut in the middle of a step)",
                    name(which)
                );
            }
        });
        Ok(flag)
    }

    /// Sets the flag as a signal would.
    #[cfg(test)]
    pub fn raise_sigterm(&self) {
        self.signal.store(SIGTERM, Ordering::SeqCst);
    }

    /// The signal received, if any.
    pub fn requested(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::SeqCst) {
            NONE => None,
            s => Some(name(s)),
        }
    }
}

fn name(s: u8) -> &'static str {
    match s {
        SIGINT => "SIGINT",
        _ => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_shared_between_clones() {
        let a = Interrupt::none();
        let b = a.clone();
        assert_eq!(b.requested(), None);
        a.raise_sigterm();
        assert_eq!(b.requested(), Some("SIGTERM"));
    }
}
