//! The reaper: expires the leases of processes that stopped heartbeating,
//! counting an attempt on the items they had in flight, so a key that kills its
//! host is quarantined after `max_attempts` instead of being reclaimed forever.
//!
//! It also deletes done items older than `retain_done`, a batch at a time, so
//! the items table (and every status query over it) stays the size of the
//! retention window instead of the queue's whole history; and, when
//! `retain_outputs` is set, outputs older than that, the same way.
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

use tokio::time::Instant;

use super::Shared;
use crate::store::{DELETE_BATCH, Result};

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.reaper_interval;
    loop {
        shared.health.tick_reaper();
        match tokio::time::timeout(interval.max(shared.config.heartbeat_interval), async {
            shared
                .store
                .reap(shared.plans.current().policies(), Some(&shared.worker.id))
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
            Ok(Err(err)) => tracing::warn!(error = %err, "deleting old rows failed"),
            Err(_) => tracing::debug!("deleting old rows goes on at the next round"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Deletes done items past `retain_done`, then outputs past `retain_outputs`
/// when it is set, a batch at a time, for at most half a reaper interval: as
/// fast as the database deletes for half the time, while a long-neglected
/// history is worked off over several rounds.
async fn prune(shared: &Shared) -> Result<()> {
    let forgotten = shared
        .store
        .prune_idle(shared.config.retain_idle, DELETE_BATCH)
        .await?;
    if forgotten > 0 {
        tracing::debug!(forgotten, "deleted rows of idle hosts and empty units");
    }
    let until = Instant::now() + shared.config.reaper_interval / 2;
    let pruned_items = metrics::counter!("sluice_pruned_items_total");
    in_batches(until, "done items", pruned_items, || {
        shared
            .store
            .prune_done(shared.config.retain_done, DELETE_BATCH)
    })
    .await?;
    if let Some(age) = shared.config.retain_outputs {
        let pruned_outputs = metrics::counter!("sluice_pruned_outputs_total");
        in_batches(until, "outputs", pruned_outputs, || {
            shared.store.prune_outputs(age, DELETE_BATCH)
        })
        .await?;
    }
    Ok(())
}

/// Runs `delete` (one batch of `what`) until a batch comes back short or
/// `until` passes, and counts the deleted rows in `deleted_rows`. Always runs
/// one batch, so a long backlog of one kind never starves the other.
async fn in_batches<F, D>(
    until: Instant,
    what: &'static str,
    deleted_rows: metrics::Counter,
    mut delete: D,
) -> Result<()>
where
    D: FnMut() -> F,
    F: Future<Output = Result<u64>>,
{
    loop {
        let deleted = delete().await?;
        if deleted > 0 {
            tracing::debug!(deleted, "deleted {what} past their retention");
            deleted_rows.increment(deleted);
        }
        if deleted < u64::from(DELETE_BATCH) || Instant::now() >= until {
            return Ok(());
        }
    }
}
