//! The reaper: expires the leases of processes that stopped heartbeating,
//! counting an attempt on the items they had in flight, so a key that kills its
//! host is quarantined after `max_attempts` instead of being reclaimed forever.
//!
//! Every process runs one; the store makes concurrent reaping safe. It runs on
//! its own task and never waits for a slot: when every slot is stuck is exactly
//! when the reaper must keep going.

use std::sync::Arc;

use super::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.reaper_interval;
    loop {
        shared.health.tick_reaper();
        match tokio::time::timeout(interval.max(shared.config.heartbeat_interval), async {
            shared.store.reap(shared.plans.policies()).await
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
        tokio::time::sleep(interval).await;
    }
}
