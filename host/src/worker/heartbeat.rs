//! The heartbeat: one short write per interval extends this process's lease
//! (which covers every unit it holds), records that the process is alive, and
//! tells which claims are gone.
//!
//! A running unit whose claim is not among those returned was reaped or taken
//! over by someone else: it is cancelled at once, and its commit would be
//! refused by the fence anyway. When the database cannot be reached for longer
//! than the lease, this process can no longer know that it holds anything, so
//! every running unit is cancelled (another host may already be running it).
//!
//! During an outage the heartbeat retries with backoff, and says so once: the
//! first failure is a warning, the retries are debug lines, and recovery is
//! one line with how long it took.
//!
//! After each heartbeat that changed it, the host's flow report (its LLM
//! providers' breakers and spend) is written to its worker row, where
//! `sluice status` reads it. That write does not delay the next heartbeat,
//! which is due an interval after the previous one began.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use super::backoff::Backoff;
use crate::store::Claim;

/// Why a unit was cancelled because its claim went away.
pub(crate) const CLAIM_LOST: &str = "the claim was lost (reaped or taken over)";
/// Why every unit was cancelled because heartbeats could not reach the database.
pub(crate) const LEASE_EXPIRED: &str =
    "the lease expired while the database was unreachable; another host may own the unit now";

/// The shortest wait for a heartbeat, so a lease about to run out still gets
/// one last try.
const MIN_WAIT: Duration = Duration::from_millis(50);

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    let lease = shared.config.lease;
    let mut last_renewed = Instant::now();
    let mut backoff = Backoff::new(interval / 8, interval);
    // Claims held in the store that no unit task works on, seen last time.
    let mut suspects: Vec<Claim> = Vec::new();
    // When the current run of failed heartbeats began, and how many failed.
    let mut failing: Option<(Instant, u32)> = None;
    // The flow report last written, so an unchanged one is not written again.
    let mut published = String::new();
    loop {
        shared.health.tick_heartbeat();
        let started = Instant::now();
        // Never wait for the database past the lease still held.
        let left = lease.saturating_sub(last_renewed.elapsed());
        let renewed = tokio::time::timeout(
            interval.min(left).max(MIN_WAIT),
            shared.store.heartbeat(&shared.worker.id, lease),
        )
        .await;
        let wait = match renewed {
            Ok(Ok(held)) => {
                shared.health.database(true);
                if let Some((since, failures)) = failing.take() {
                    tracing::info!(
                        failures,
                        after_ms = since.elapsed().as_millis() as u64,
                        "heartbeat renewed the lease again"
                    );
                }
                last_renewed = started;
                backoff.reset();
                let lost = shared.running.cancel_lost(&held, started, CLAIM_LOST);
                if lost > 0 {
                    metrics::counter!("sluice_lost_claims_total").increment(lost as u64);
                }
                suspects = release_orphans(&shared, held, &suspects).await;
                publish_flow(&shared, interval, &mut published).await;
                // The next heartbeat is due an interval after this one
                // began, whatever the writes after it took.
                interval.saturating_sub(started.elapsed()).max(MIN_WAIT)
            }
            failed => {
                shared.health.database(false);
                let error = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => "no answer in time".to_string(),
                };
                match &mut failing {
                    None => {
                        failing = Some((started, 1));
                        tracing::warn!(error, "heartbeat failed; retrying with backoff");
                    }
                    Some((_, failures)) => {
                        *failures += 1;
                        tracing::debug!(error, failures, "heartbeat failed again");
                    }
                }
                let left = lease.saturating_sub(last_renewed.elapsed());
                if left.is_zero() && shared.running.len() > 0 {
                    tracing::error!(
                        units = shared.running.len(),
                        "no heartbeat for longer than the lease: cancelling running units"
                    );
                    shared.running.cancel_all(LEASE_EXPIRED, true);
                }
                // Try again no later than when the lease runs out.
                backoff.next_wait().min(left).max(MIN_WAIT)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Writes the host's flow report if it changed since `published`. A failed
/// write is tried again at the next heartbeat.
async fn publish_flow(shared: &Shared, within: Duration, published: &mut String) {
    let Some(flow) = &shared.flow else { return };
    let report = match serde_json::to_string(&flow.report()) {
        Ok(report) => report,
        Err(err) => {
            tracing::debug!(error = %err, "cannot serialize the flow report");
            return;
        }
    };
    if report == *published {
        return;
    }
    match tokio::time::timeout(
        within,
        shared.store.publish_flow(&shared.worker.id, &report),
    )
    .await
    {
        Ok(Ok(())) => *published = report,
        Ok(Err(err)) => tracing::debug!(error = %err, "cannot publish the flow report"),
        Err(_) => tracing::debug!("publishing the flow report took too long"),
    }
}

/// Claims the store says this process holds but no unit task works on (a
/// claim whose reply never arrived, a unit task that ended without releasing)
/// would be renewed forever. Each is released once two heartbeats in a row
/// have seen it orphaned; the first sighting may be a claim its unit task has
/// not registered yet. Returns this heartbeat's orphans, for the next one.
async fn release_orphans(shared: &Shared, held: Vec<Claim>, suspects: &[Claim]) -> Vec<Claim> {
    let (confirmed, orphans): (Vec<Claim>, Vec<Claim>) = held
        .into_iter()
        .filter(|claim| !shared.running.contains(claim))
        .partition(|claim| suspects.contains(claim));
    for claim in &confirmed {
        tracing::warn!(
            task_type = %claim.task_type,
            work_unit_key = %claim.work_unit_key,
            "releasing a claim no unit task works on"
        );
    }
    if !confirmed.is_empty() {
        // A claim lost meanwhile needs no release; the next heartbeat retries
        // a failed write.
        let _ = shared.store.release_all(&confirmed).await;
    }
    orphans
}
