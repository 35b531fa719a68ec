//! Suspect units get a bounded share of the slots, so poison being retried
//! never crowds out healthy work.
//!
//! A unit is a *suspect* when its last attempt timed out, trapped, or failed
//! after one of its LLM requests timed out: the kind of unit that holds a slot
//! for a whole deadline and then fails again. The mark lives on the unit's row
//! (every host sees it) and is cleared when the unit completes an item. The
//! claim loop asks the store for at most [`Suspects::allowance`] suspects:
//! `suspect_share` of the slots (at least one) minus the suspects this host
//! already runs. Fresh units are never suspects, so without the mark the
//! oldest poisoned units would take every slot for one timeout per attempt.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::Shared;
use crate::outbound::UsageMeter;
use crate::runtime::{CallOutcome, TrapCause};
use crate::store::Claim;

/// The suspect units this host runs, by claim token.
pub(crate) struct Suspects {
    limit: u32,
    held: Mutex<HashSet<i64>>,
}

/// Counts one suspect unit against the share while it runs.
pub(crate) struct Held {
    suspects: Arc<Suspects>,
    token: i64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.suspects.lock().remove(&self.token);
    }
}

impl Suspects {
    pub(crate) fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(HashSet::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many more suspects this host may claim now.
    pub(crate) fn allowance(&self) -> u32 {
        let held = u32::try_from(self.lock().len()).unwrap_or(u32::MAX);
        self.limit.saturating_sub(held)
    }

    /// Counts the suspect unit under `claim` until the guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>, claim: &Claim) -> Held {
        self.lock().insert(claim.token);
        Held {
            suspects: self.clone(),
            token: claim.token,
        }
    }

    /// Whether the unit under `claim` was claimed as a suspect and is one still.
    fn is_held(&self, claim: &Claim) -> bool {
        self.lock().contains(&claim.token)
    }

    fn forget(&self, claim: &Claim) {
        self.lock().remove(&claim.token);
    }
}

/// Updates the unit's suspect mark from the outcome of its call, before the
/// outcome's write (which may end the claim): set after a timeout or trap,
/// cleared after a success. Best effort: a mark that cannot be written only
/// changes how the unit is scheduled, never what happens to its items.
pub(crate) async fn record(
    shared: &Shared,
    claim: &Claim,
    outcome: &Result<CallOutcome, String>,
    usage: &UsageMeter,
) {
    let suspect = match outcome {
        Ok(CallOutcome::Ok(_)) => false,
        Ok(CallOutcome::Timeout { .. }) => true,
        Ok(CallOutcome::Trap { cause, .. }) => *cause != TrapCause::Interrupt,
        Ok(_) => usage.timed_out(),
        Err(_) => false,
    };
    let was = shared.suspects.is_held(claim);
    if suspect == was {
        return;
    }
    let marked = tokio::time::timeout(
        shared.config.heartbeat_interval,
        shared.store.set_suspect(claim, suspect),
    )
    .await;
    match marked {
        Ok(Ok(())) if suspect => {
            tracing::info!("the attempt timed out or trapped: the unit is a suspect now")
        }
        Ok(Ok(())) => {
            shared.suspects.forget(claim);
            tracing::info!("the suspect unit completed an item: it is healthy again");
        }
        Ok(Err(err)) => tracing::debug!(error = %err, "cannot update the unit's suspect mark"),
        Err(_) => tracing::debug!("the database did not take the unit's suspect mark in time"),
    }
}
