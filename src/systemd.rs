//! systemd over D-Bus (the system bus): stop, start and reload units, and
//! wait for their real state.
//!
//! A job is waited for by subscribing first, then queueing the job, then
//! waiting for its `JobRemoved` signal: systemd only emits signals to
//! subscribed clients, and listening before queueing means the signal cannot
//! be missed. The unit's `ActiveState` is then read without caching.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus_systemd::systemd1::{ManagerProxy, UnitProxy};

/// The observable state of a unit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnitState {
    /// Unit name.
    pub unit: String,
    /// `ActiveState` (`active`, `inactive`, `failed`, `activating`...).
    pub active_state: String,
    /// `SubState` (`running`, `dead`, `auto-restart`...).
    pub sub_state: String,
}

/// A service manager.
#[allow(async_fn_in_trait)]
pub trait ServiceManager {
    /// Stops a unit and waits until it is inactive (or failed).
    async fn stop(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// Starts a unit and waits until its start job is done.
    async fn start(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// Reloads unit files (`systemctl daemon-reload`).
    async fn daemon_reload(&self) -> anyhow::Result<()>;
    /// The unit's current state.
    async fn state(&self, unit: &str) -> anyhow::Result<UnitState>;
}

/// The host's systemd, on the system bus.
pub struct Systemd {
    conn: zbus::Connection,
    manager: ManagerProxy<'static>,
}

impl Systemd {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).
    pub async fn connect() -> anyhow::Result<Systemd> {
        let conn = zbus::Connection::system()
            .await
            .context("cannot connect to the D-Bus system bus (is systemd running?)")?;
        let manager = ManagerProxy::new(&conn)
            .await
            .context("cannot reach systemd on the system bus")?;
        manager
            .subscribe()
            .await
            .context("cannot subscribe to systemd signals")?;
        Ok(Systemd { conn, manager })
    }

    /// Queues a job with `queue` and waits for its JobRemoved; returns the result.
    async fn run_job<F, Fut>(
        &self,
        what: &str,
        unit: &str,
        timeout: Duration,
        queue: F,
    ) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = zbus::Result<zbus::OwnedObjectPath>>,
    {
        let mut removed = self
            .manager
            .receive_job_removed()
            .await
            .context("cannot listen for systemd job signals")?;
        let job = queue()
            .await
            .with_context(|| format!("systemd refused to {what} {unit}"))?;
        let wait = async {
            while let Some(signal) = removed.next().await {
                let args = signal.args()?;
                if *args.job() == job {
                    return Ok::<String, zbus::Error>(args.result().to_string());
                }
            }
            Err(zbus::Error::Failure("signal stream ended".into()))
        };
        let result = tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow!("{what} {unit}: job not finished after {timeout:?}"))?
            .with_context(|| format!("{what} {unit}: lost the systemd job"))?;
        if result != "done" {
            let state = self.state(unit).await.ok();
            bail!(
                "{what} {unit}: job {result}{}",
                state
                    .map(|s| format!(" (unit {}/{})", s.active_state, s.sub_state))
                    .unwrap_or_default()
            );
        }
        Ok(())
    }

    async fn unit(&self, unit: &str) -> anyhow::Result<UnitProxy<'static>> {
        let path = self
            .manager
            .load_unit(unit.to_string())
            .await
            .with_context(|| format!("systemd cannot load {unit}"))?;
        UnitProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .with_context(|| format!("cannot reach {unit} on D-Bus"))
    }
}

impl ServiceManager for Systemd {
    async fn stop(&self, unit: &str, timeout: Duration) -> anyhow::Result<()> {
        self.run_job("stop", unit, timeout, || {
            self.manager.stop_unit(unit.to_string(), "replace".into())
        })
        .await?;
        let s = self.state(unit).await?;
        if !matches!(s.active_state.as_str(), "inactive" | "failed") {
            bail!("stop {unit}: still {}/{}", s.active_state, s.sub_state);
        }
        Ok(())
    }

    async fn start(&self, unit: &str, timeout: Duration) -> anyhow::Result<()> {
        self.run_job("start", unit, timeout, || {
            self.manager.start_unit(unit.to_string(), "replace".into())
        })
        .await
    }

    async fn daemon_reload(&self) -> anyhow::Result<()> {
        // Reload() returns once the reload is complete.
        self.manager
            .reload()
            .await
            .context("systemd daemon-reload failed")
    }

    async fn state(&self, unit: &str) -> anyhow::Result<UnitState> {
        let p = self.unit(unit).await?;
        Ok(UnitState {
            unit: unit.to_string(),
            active_state: p.active_state().await?,
            sub_state: p.sub_state().await?,
        })
    }
}
