//! Keeps a held slot's lease alive from a thread of its own, so that a long
//! blocking step (an archive, a dump) cannot starve it, with its own etcd
//! client on its own runtime.
//!
//! A keepalive goes out every third of the lease's TTL. When etcd is
//! unreachable it tries again at that pace; when etcd says the lease is gone
//! the run is told through [`Keepalive::lost`] and the thread ends: the run
//! itself decides (it never stops a unit after that, and finishes or rolls
//! back what it began).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::etcd::{self, Client, EtcdError};

/// The thread keeping one lease alive.
pub struct Keepalive {
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keepalive {
    /// Starts keeping `lease` (TTL `ttl`) alive.
    pub fn start(settings: etcd::Settings, lease: i64, ttl: Duration) -> Keepalive {
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let flag = lost.clone();
        let every = (ttl / 3).max(Duration::from_millis(500));
        let thread = std::thread::Builder::new()
            .name("fleet-keepalive".into())
            .spawn(move || run(settings, lease, every, &flag, &rx));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!("fleet: cannot start the keepalive thread: {e}");
                lost.store(true, Ordering::SeqCst);
                None
            }
        };
        Keepalive {
            lost,
            stop: Some(tx),
            thread,
        }
    }

    /// True once etcd said the lease is gone.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops the thread (the lease is then revoked or left to expire by the
    /// caller).
    pub fn stop(&self) {
        if let Some(tx) = &self.stop {
            let _ = tx.send(());
        }
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    settings: etcd::Settings,
    lease: i64,
    every: Duration,
    lost: &AtomicBool,
    stop: &mpsc::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("fleet: keepalive runtime: {e}");
            lost.store(true, Ordering::SeqCst);
            return;
        }
    };
    let mut client: Option<Client> = None;
    let mut failing = false;
    loop {
        match stop.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Told to stop, or the run is gone.
            _ => return,
        }
        let result = rt.block_on(async {
            if client.is_none() {
                client = Some(Client::connect(&settings).await?);
            }
            match &client {
                Some(c) => c.lease_keepalive(lease).await,
                None => Err(EtcdError::Protocol("no client".into())),
            }
        });
        match result {
            Ok(_) => {
                if failing {
                    tracing::info!("fleet: etcd answers again; the slot's lease is kept alive");
                }
                failing = false;
            }
            Err(EtcdError::LeaseNotFound(_)) => {
                tracing::warn!(
                    "fleet: the slot's lease {lease:x} expired: other nodes now see this run as dead and halt the group"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("fleet: cannot keep the slot's lease alive: {e}");
                }
                failing = true;
                client = None;
            }
        }
    }
}
