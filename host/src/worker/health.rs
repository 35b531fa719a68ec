//! Liveness and readiness, as the host's own loops report them.
//!
//! Each loop ticks when it goes round, whether or not the database answered:
//! a loop that stopped going round is the failure that once went unseen for
//! hours (a live process whose worker loop was dead), so `/healthz` fails when
//! the claim loop or the heartbeat has not ticked recently. Whether the
//! database answers is readiness, not liveness.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Ticks and flags shared by the host's loops and the HTTP listener.
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` of each loop's last tick.
    last_poll_ms: AtomicU64,
    last_heartbeat_ms: AtomicU64,
    last_reap_ms: AtomicU64,
    poll_ticks: AtomicU64,
    heartbeat_ticks: AtomicU64,
    reaper_ticks: AtomicU64,
    /// Whether the last database round trip of a loop succeeded.
    database_ok: AtomicBool,
    /// Finished outcomes waiting for the database to take them.
    stalled_writes: AtomicUsize,
    /// Plugins loaded now (a reload changes it).
    plugins: AtomicUsize,
}

/// Counts one outcome as stalled while it lives (see [`Health::stall_write`]).
pub(crate) struct StalledWrite<'a>(&'a Health);

impl Drop for StalledWrite<'_> {
    fn drop(&mut self) {
        let left = self.0.stalled_writes.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("sluice_stalled_writes").set(left as f64);
    }
}

/// What `/healthz` and `/readyz` answer with.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub claim_loop_idle_ms: u64,
    pub heartbeat_idle_ms: u64,
    pub reaper_idle_ms: u64,
    pub poll_ticks: u64,
    pub heartbeat_ticks: u64,
    pub reaper_ticks: u64,
    pub database_ok: bool,
    pub stalled_writes: usize,
    pub plugins: usize,
}

impl Health {
    pub(crate) fn new(plugins: usize) -> Self {
        Self {
            started: Instant::now(),
            last_poll_ms: AtomicU64::new(0),
            last_heartbeat_ms: AtomicU64::new(0),
            last_reap_ms: AtomicU64::new(0),
            poll_ticks: AtomicU64::new(0),
            heartbeat_ticks: AtomicU64::new(0),
            reaper_ticks: AtomicU64::new(0),
            database_ok: AtomicBool::new(true),
            stalled_writes: AtomicUsize::new(0),
            plugins: AtomicUsize::new(plugins),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn tick_poll(&self) {
        self.last_poll_ms.store(self.now_ms(), Ordering::Relaxed);
        self.poll_ticks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_poll_ticks_total").increment(1);
        metrics::gauge!("sluice_last_poll_timestamp_seconds").set(unix_seconds());
    }

    pub(crate) fn tick_heartbeat(&self) {
        self.last_heartbeat_ms
            .store(self.now_ms(), Ordering::Relaxed);
        self.heartbeat_ticks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_heartbeat_ticks_total").increment(1);
    }

    pub(crate) fn tick_reaper(&self) {
        self.last_reap_ms.store(self.now_ms(), Ordering::Relaxed);
        self.reaper_ticks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_reaper_ticks_total").increment(1);
    }

    /// Records whether a database round trip just worked.
    pub(crate) fn database(&self, ok: bool) {
        let was = self.database_ok.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("the database is reachable again");
            } else {
                tracing::warn!("the database is unreachable; retrying with backoff");
            }
        }
        metrics::gauge!("sluice_database_up").set(if ok { 1.0 } else { 0.0 });
    }

    pub fn database_ok(&self) -> bool {
        self.database_ok.load(Ordering::Relaxed)
    }

    /// Marks a finished outcome as waiting for the database until the
    /// returned guard is dropped.
    pub(crate) fn stall_write(&self) -> StalledWrite<'_> {
        let now = self.stalled_writes.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("sluice_stalled_writes").set(now as f64);
        StalledWrite(self)
    }

    /// Finished outcomes the database has not taken yet.
    pub fn stalled_writes(&self) -> usize {
        self.stalled_writes.load(Ordering::Relaxed)
    }

    /// Whether the host can take more work: the database answers and takes
    /// writes. A host that cannot write stops claiming (its finished outcomes
    /// wait, and new work would only pile up behind them) and is not ready.
    pub fn can_write(&self) -> bool {
        self.database_ok() && self.stalled_writes() == 0
    }

    pub fn plugins(&self) -> usize {
        self.plugins.load(Ordering::Relaxed)
    }

    pub(crate) fn set_plugins(&self, plugins: usize) {
        self.plugins.store(plugins, Ordering::Relaxed);
    }

    /// Healthy when the claim loop and the heartbeat both ticked within `stall_after`.
    pub fn report(&self, stall_after: Duration) -> HealthReport {
        let now = self.now_ms();
        let idle = |last: &AtomicU64| now.saturating_sub(last.load(Ordering::Relaxed));
        let claim_loop_idle_ms = idle(&self.last_poll_ms);
        let heartbeat_idle_ms = idle(&self.last_heartbeat_ms);
        let limit = stall_after.as_millis() as u64;
        HealthReport {
            healthy: claim_loop_idle_ms <= limit && heartbeat_idle_ms <= limit,
            claim_loop_idle_ms,
            heartbeat_idle_ms,
            reaper_idle_ms: idle(&self.last_reap_ms),
            poll_ticks: self.poll_ticks.load(Ordering::Relaxed),
            heartbeat_ticks: self.heartbeat_ticks.load(Ordering::Relaxed),
            reaper_ticks: self.reaper_ticks.load(Ordering::Relaxed),
            database_ok: self.database_ok(),
            stalled_writes: self.stalled_writes(),
            plugins: self.plugins(),
        }
    }
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
