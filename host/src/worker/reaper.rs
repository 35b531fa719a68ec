//! The reaper: expires the leases of processes that stopped heartbeating,
//! counting an attempt on the items they had in flight, so a key that kills its
//! host is quarantined after `max_attempts` instead of being reclaimed forever.
//!
//! It also deletes done items older than `retain_done`, a batch at a time, so
//! the items table (and every status query over it) stays the size of the
//! retention window instead of the queue's whole history.
//!
//! And it forgets what nobody needs: the rows of hosts that stopped long ago
//! and of units with nothing pending, older than `retain_idle`.
//!
//! It reaps only units of task types this host runs, with their own retry
//! policies; units of other task types are left to hosts that run them. It
//! never reaps this host's own claims: the heartbeat looks after those.
//!
//! Every process runs one; the store makes concurrent reaping and pruning
//! safe. It runs on its own task and never waits for a slot: when every slot
//! is stuck is exactly when the reaper must keep going.

use std::sync::Arc;

use super::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.reaper_interval;
    loop {
        shared.health.tick_reaper();
        match tokio::time::timeout(interval.max(shared.config.heartbeat_interval), async {
            shared
                .store
                .reap(shared.plans.policies(), Some(&shared.worker.id))
                .await
        })
        .await
        {
            Ok(Ok(reaped)) => {
                shared.health.database(true);
                if reaped > 0 {
                    tracing::warn!(
                        reaped,
                        "expired the claims of hosts that stopped heartbeating"
                    );
                    metrics::counter!("sluice_reaped_claims_total").increment(reaped);
                }
            }
            Ok(Err(err)) => {
                shared.health.database(false);
                tracing::warn!(error = %err, "reaping failed");
            }
            Err(_) => tracing::warn!("reaping did not finish in time"),
        }
        match tokio::time::timeout(
            interval.max(shared.config.heartbeat_interval),
            prune(&shared),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "deleting old done items failed"),
            Err(_) => tracing::debug!("deleting old done items goes on at the next round"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Done items deleted per statement: small enough that each delete is a short
/// transaction beside the hosts' own writes.
const PRUNE_BATCH: u32 = 1_000;

/// Deletes done items past `retain_done` a batch at a time, for at most half a
/// reaper interval: as fast as the database deletes for half the time, while
/// a long-neglected history is worked off over several rounds.
async fn prune(shared: &Shared) -> crate::store::Result<()> {
    let forgotten = shared
        .store
        .prune_idle(shared.config.retain_idle, PRUNE_BATCH)
        .await?;
    if forgotten > 0 {
        tracing::debug!(forgotten, "deleted rows of idle hosts and empty units");
    }
    let until = tokio::time::Instant::now() + shared.config.reaper_interval / 2;
    while tokio::time::Instant::now() < until {
        let deleted = shared
            .store
            .prune_done(shared.config.retain_done, PRUNE_BATCH)
            .await?;
        if deleted > 0 {
            tracing::debug!(deleted, "deleted done items past `retain_done`");
            metrics::counter!("sluice_pruned_items_total").increment(deleted);
        }
        if deleted < u64::from(PRUNE_BATCH) {
            break;
        }
    }
    Ok(())
}
