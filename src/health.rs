//! The health gate after a start: every unit active (not merely
//! "activating") and the health URL answering 2xx, within the timeout.

use std::time::{Duration, Instant};

use anyhow::bail;
use url::Url;

use crate::download::Http;
use crate::systemd::ServiceManager;

/// How often the gate looks again.
const POLL: Duration = Duration::from_millis(250);

/// What the gate checks.
pub struct Gate<'a> {
    /// Units that must be active.
    pub units: &'a [String],
    /// URL that must answer 2xx, if any.
    pub url: Option<&'a Url>,
    /// How long to wait for both.
    pub timeout: Duration,
    /// STUB
    pub log_errors: &'a [String],
    /// STUB
    pub since: Option<&'a Baseline>,
}

/// STUB
pub struct Baseline;

/// STUB
pub async fn baseline(
    _units: &[String],
    _systemd: &impl ServiceManager,
) -> anyhow::Result<Baseline> {
    Ok(Baseline)
}

/// What the gate saw when it passed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Passed {
    /// Milliseconds from the gate's start until it passed.
    pub waited_ms: u64,
    /// The health URL's body (first 200 characters), if a URL was checked.
    pub body: Option<String>,
}

/// Waits until every unit is active and the URL answers 2xx; fails with the
/// last thing seen when `timeout` passes.
pub async fn wait_healthy(
    gate: &Gate<'_>,
    systemd: &impl ServiceManager,
    http: &Http,
) -> anyhow::Result<Passed> {
    let start = Instant::now();
    loop {
        let problem = match check_once(gate, systemd, http).await {
            Ok(body) => {
                return Ok(Passed {
                    waited_ms: start.elapsed().as_millis() as u64,
                    body,
                });
            }
            Err(problem) => problem,
        };
        if start.elapsed() >= gate.timeout {
            bail!("not healthy after {:?}: {problem}", gate.timeout);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One look: Ok(body) when healthy, Err(what is wrong) otherwise.
async fn check_once(
    gate: &Gate<'_>,
    systemd: &impl ServiceManager,
    http: &Http,
) -> Result<Option<String>, String> {
    for unit in gate.units {
        let s = systemd.state(unit).await.map_err(|e| format!("{e:#}"))?;
        if s.active_state != "active" {
            return Err(format!("{unit} is {}/{}", s.active_state, s.sub_state));
        }
    }
    let Some(url) = gate.url else {
        return Ok(None);
    };
    match http.probe(url, Duration::from_secs(5)).await {
        Ok((status, body)) if (200..300).contains(&status) => Ok(Some(body)),
        Ok((status, _)) => Err(format!("{url} answers HTTP {status}")),
        Err(e) => Err(format!("{e:#}")),
    }
}
