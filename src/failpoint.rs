//! Fault injection for the crash matrix: named failpoints at every step
//! boundary, active only in builds with the `failpoints` cargo feature.
//!
//! They are set with the `FAILPOINTS` environment variable (the `fail`
//! crate's syntax), e.g. `FAILPOINTS='before-install=return(kill)'`:
//! `return(kill)` kills the process with SIGKILL at that point (a crash or a
//! power loss as far as the host can tell), `return` or `return(error)` makes
//! the step fail there. In a normal build [`hit`] does nothing.

/// Sets the failpoints up from the environment; the guard keeps them set.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// A failpoint named `name`: kills the process or returns an error when
/// configured to, does nothing otherwise.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> anyhow::Result<()> {
    fail::fail_point!(name, |arg: Option<String>| {
        if arg.as_deref() == Some("kill") {
            tracing::warn!("failpoint {name}: killing upkeep (SIGKILL)");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
            std::process::abort();
        }
        Err(anyhow::anyhow!("failpoint {name} triggered"))
    });
    Ok(())
}

/// A failpoint: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> anyhow::Result<()> {
    Ok(())
}
