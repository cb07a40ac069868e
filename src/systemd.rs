//! systemd over D-Bus (the system bus): stop, start and reload units, and
//! wait for their real state.
//!
//! A job is waited for by subscribing first, then queueing the job, then
//! waiting for its `JobRemoved` signal: systemd only emits signals to
//! subscribed clients, and listening before queueing means the signal cannot
//! be missed. The unit's `ActiveState` is then read without caching.
//!
//! [`ServiceManager::service_info`] reads what the health gate judges a
//! service by: its state, its `Result`, its `InvocationID` (new for every
//! start) and `NRestarts` (automatic restarts; systemd resets it when the
//! unit is stopped or started by hand).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus_systemd::systemd1::{ManagerProxy, ServiceProxy, UnitProxy};

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

/// What the health gate reads of a unit, in one look.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceInfo {
    /// Unit name.
    pub unit: String,
    /// `ActiveState` (`active`, `failed`, `activating`...).
    pub active_state: String,
    /// `SubState` (`running`, `auto-restart`...).
    pub sub_state: String,
    /// The service's `Result` (`success`, `exit-code`, `signal`,
    /// `start-limit-hit`...); empty for units that are not services.
    pub result: String,
    /// `InvocationID` in hex: changes with every start, empty while inactive.
    pub invocation_id: String,
    /// `NRestarts`: automatic restarts since the unit was last started or
    /// stopped by hand (0 for units that are not services).
    pub n_restarts: u32,
    /// `MainPID` (0 when none).
    pub main_pid: u32,
    /// `ExecMainStatus`: the main process's exit status or signal number.
    pub exec_main_status: i32,
    /// `UnitFileState` (`enabled`, `disabled`, `static`, `masked`,
    /// `masked-runtime`...).
    pub unit_file_state: String,
}

/// A service manager.
#[allow(async_fn_in_trait)]
pub trait ServiceManager {
    /// Stops a unit and waits until it is inactive (or failed).
    async fn stop(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// Starts a unit and waits until its start job is done.
    async fn start(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// Restarts a unit (job mode "replace") and waits until the job is done.
    async fn restart(&self, unit: &str, timeout: Duration) -> anyhow::Result<()>;
    /// Reloads unit files (`systemctl daemon-reload`).
    async fn daemon_reload(&self) -> anyhow::Result<()>;
    /// Masks `units` until the next boot or [`ServiceManager::unmask_runtime`]
    /// (`systemctl mask --runtime`): while a package installs, its
    /// maintainer scripts then cannot start them behind upkeep's back
    /// (`systemctl restart x || :`, `deb-systemd-invoke`, `try-restart`).
    async fn mask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        let _ = units;
        Ok(())
    }
    /// Lifts a runtime mask (`systemctl unmask --runtime`); a unit that is
    /// not masked is left as it is.
    async fn unmask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        let _ = units;
        Ok(())
    }
    /// The unit's current state.
    async fn state(&self, unit: &str) -> anyhow::Result<UnitState>;
    /// The unit's state, result, invocation and restart count, read now.
    async fn service_info(&self, unit: &str) -> anyhow::Result<ServiceInfo>;
}

/// How long [`Systemd::connect`] waits for the system bus.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's systemd, on the system bus.
pub struct Systemd {
    conn: zbus::Connection,
    manager: ManagerProxy<'static>,
}

impl Systemd {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).
    /// Gives up after [`CONNECT_TIMEOUT`] (a bus daemon that is stopped
    /// accepts the connection and never answers).
    pub async fn connect() -> anyhow::Result<Systemd> {
        let connect = async {
            let conn = zbus::Connection::system()
                .await
                .context("cannot connect to the D-Bus system bus (is systemd running?)")?;
            Systemd::on(conn).await
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| {
                Err(anyhow!(
                    "the D-Bus system bus did not answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })
    }

    /// Connects to the system bus at a D-Bus `address`
    /// (`unix:path=/proc/PID/root/run/dbus/system_bus_socket` reaches a
    /// container's systemd from the host).
    pub async fn connect_to(address: &str) -> anyhow::Result<Systemd> {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .with_context(|| format!("cannot connect to the D-Bus system bus at {address}"))?;
        Systemd::on(conn).await
    }

    async fn on(conn: zbus::Connection) -> anyhow::Result<Systemd> {
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

    async fn unit_path(&self, unit: &str) -> anyhow::Result<zbus::OwnedObjectPath> {
        self.manager
            .load_unit(unit.to_string())
            .await
            .with_context(|| format!("systemd cannot load {unit}"))
    }

    async fn unit(&self, unit: &str) -> anyhow::Result<UnitProxy<'static>> {
        let path = self.unit_path(unit).await?;
        self.unit_at(unit, path).await
    }

    async fn unit_at(
        &self,
        unit: &str,
        path: zbus::OwnedObjectPath,
    ) -> anyhow::Result<UnitProxy<'static>> {
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

    async fn restart(&self, unit: &str, timeout: Duration) -> anyhow::Result<()> {
        self.run_job("restart", unit, timeout, || {
            self.manager
                .restart_unit(unit.to_string(), "replace".into())
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

    async fn mask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        let changes = self
            .manager
            .mask_unit_files(units.to_vec(), true, false)
            .await
            .with_context(|| format!("systemd cannot mask {} for the install", units.join(" ")))?;
        // The manager sees a changed unit file only after a reload.
        if !changes.is_empty() {
            self.daemon_reload().await?;
        }
        Ok(())
    }

    async fn unmask_runtime(&self, units: &[String]) -> anyhow::Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        let changes = self
            .manager
            .unmask_unit_files(units.to_vec(), true)
            .await
            .with_context(|| format!("systemd cannot unmask {}", units.join(" ")))?;
        if !changes.is_empty() {
            self.daemon_reload().await?;
        }
        Ok(())
    }

    async fn state(&self, unit: &str) -> anyhow::Result<UnitState> {
        let p = self.unit(unit).await?;
        Ok(UnitState {
            unit: unit.to_string(),
            active_state: p.active_state().await?,
            sub_state: p.sub_state().await?,
        })
    }

    async fn service_info(&self, unit: &str) -> anyhow::Result<ServiceInfo> {
        let path = self.unit_path(unit).await?;
        let u = self.unit_at(unit, path.clone()).await?;
        let read = |e: zbus::Error| anyhow!("cannot read the state of {unit}: {e}");
        let mut info = ServiceInfo {
            unit: unit.to_string(),
            active_state: u.active_state().await.map_err(read)?,
            sub_state: u.sub_state().await.map_err(read)?,
            invocation_id: hex::encode(u.invocation_id().await.map_err(read)?),
            unit_file_state: u.unit_file_state().await.map_err(read)?,
            ..ServiceInfo::default()
        };
        if unit.ends_with(".service") {
            let s = ServiceProxy::builder(&self.conn)
                .path(path)
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .with_context(|| format!("cannot reach {unit} on D-Bus"))?;
            info.result = s.result().await.map_err(read)?;
            info.n_restarts = s.n_restarts().await.map_err(read)?;
            info.main_pid = s.main_pid().await.map_err(read)?;
            info.exec_main_status = s.exec_main_status().await.map_err(read)?;
        }
        Ok(info)
    }
}
