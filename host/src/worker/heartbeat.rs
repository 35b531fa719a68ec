//! The heartbeat: one statement per interval extends every lease this process
//! holds, records that the process is alive, and tells which claims are gone.
//!
//! A running unit whose claim is not among those returned was reaped or taken
//! over by someone else: it is cancelled at once, and its commit would be
//! refused by the fence anyway. When the database cannot be reached for longer
//! than the lease, this process can no longer know that it holds anything, so
//! every running unit is cancelled (another host may already be running it).

use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::backoff::Backoff;

/// Why a unit was cancelled because its claim went away.
pub(crate) const CLAIM_LOST: &str = "the claim was lost (reaped or taken over)";
/// Why every unit was cancelled because heartbeats could not reach the database.
pub(crate) const LEASE_EXPIRED: &str =
    "the lease expired while the database was unreachable; another host may own the unit now";

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    let lease = shared.config.lease;
    let mut last_renewed = Instant::now();
    let mut backoff = Backoff::new(interval / 8, interval);
    loop {
        shared.health.tick_heartbeat();
        let started = Instant::now();
        let renewed =
            tokio::time::timeout(interval, shared.store.heartbeat(&shared.worker.id, lease)).await;
        let wait = match renewed {
            Ok(Ok(held)) => {
                shared.health.database(true);
                last_renewed = started;
                backoff.reset();
                let lost = shared.running.cancel_lost(&held, started, CLAIM_LOST);
                if lost > 0 {
                    metrics::counter!("sluice_lost_claims_total").increment(lost as u64);
                }
                interval
            }
            failed => {
                shared.health.database(false);
                match failed {
                    Ok(Err(err)) => tracing::warn!(error = %err, "heartbeat failed"),
                    _ => tracing::warn!(timeout = ?interval, "heartbeat did not finish in time"),
                }
                if last_renewed.elapsed() >= lease && shared.running.len() > 0 {
                    tracing::error!(
                        units = shared.running.len(),
                        "no heartbeat for longer than the lease: cancelling running units"
                    );
                    shared.running.cancel_all(LEASE_EXPIRED);
                }
                backoff.next_wait()
            }
        };
        tokio::time::sleep(wait).await;
    }
}
