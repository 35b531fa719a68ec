//! Prometheus metrics, all prefixed `sluice_`.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` facade; this module installs the Prometheus recorder once per
//! process and, at each scrape, refreshes the queue gauges from the store so
//! `/metrics` agrees with `sluice status`.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `sluice_queue_depth` | gauge | `task_type`, `state` |
//! | `sluice_queue_oldest_age_seconds` | gauge | `task_type`, `state` |
//! | `sluice_claimed_units` | gauge | |
//! | `sluice_units_in_flight` | gauge | (this process) |
//! | `sluice_unit_duration_seconds`, `sluice_call_duration_seconds` | histogram | `task_type` |
//! | `sluice_outcomes_total` | counter | `task_type`, `outcome` (ok, retryable, permanent, timeout, trap, invalid-output, call-error) |
//! | `sluice_commits_total` | counter | `task_type`, `result` (ok, retry, dead, lost-claim) |
//! | `sluice_claims_total`, `sluice_reaped_claims_total`, `sluice_lost_claims_total` | counter | |
//! | `sluice_poll_ticks_total`, `sluice_heartbeat_ticks_total`, `sluice_reaper_ticks_total` | counter | |
//! | `sluice_last_poll_timestamp_seconds`, `sluice_database_up` | gauge | |

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

/// Buckets for every `*_duration_seconds` histogram: 5 ms to 20 min.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1200.0,
];

/// How long a scrape waits for the store's status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as this process's `metrics` recorder, once.
/// Returns false if another recorder was installed first.
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .is_some()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(handle)) => handle.render(),
        _ => String::new(),
    }
}

pub(crate) fn set_units_in_flight(units: usize) {
    metrics::gauge!("sluice_units_in_flight").set(units as f64);
}

/// The queue gauges, and which label sets were reported before so a state
/// that emptied is reported as 0 rather than left at its last value.
#[derive(Clone, Default)]
pub(crate) struct QueueGauges {
    seen: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl QueueGauges {
    /// Sets the queue gauges from the store; keeps the last values if the
    /// store does not answer in time.
    pub(crate) async fn refresh(&self, store: &dyn Store) {
        let status = match tokio::time::timeout(STATUS_TIMEOUT, store.status()).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot read the queue for /metrics");
                return;
            }
            Err(_) => {
                tracing::warn!("the queue status did not answer in time for /metrics");
                return;
            }
        };
        let mut seen = self.seen.lock().expect("queue gauges lock");
        let mut current = BTreeSet::new();
        for depth in &status.depths {
            let labels = [
                ("task_type", depth.task_type.clone()),
                ("state", depth.state.clone()),
            ];
            metrics::gauge!("sluice_queue_depth", &labels).set(depth.count as f64);
            let age = depth
                .oldest_created_at_ms
                .map(|oldest| (status.now_ms - oldest).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!("sluice_queue_oldest_age_seconds", &labels).set(age);
            current.insert((depth.task_type.clone(), depth.state.clone()));
        }
        for (task_type, state) in seen.difference(&current) {
            let labels = [("task_type", task_type.clone()), ("state", state.clone())];
            metrics::gauge!("sluice_queue_depth", &labels).set(0.0);
            metrics::gauge!("sluice_queue_oldest_age_seconds", &labels).set(0.0);
        }
        seen.extend(current);
        metrics::gauge!("sluice_claimed_units").set(status.claimed_units as f64);
    }
}
