//! The units this process is working on, and the handle to stop each one.
//!
//! The heartbeat compares this set with the claims the store says we still
//! hold and cancels the difference; shutdown cancels everything and waits
//! until the set is empty, which is when no claim of ours is left behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::watch;

use crate::runtime::{Cancellation, Canceller, cancellation};
use crate::store::Claim;

/// One running unit.
struct Entry {
    claim_seq: i64,
    /// When the claim was registered; a heartbeat that started earlier cannot
    /// know about it and must not cancel it.
    since: Instant,
    canceller: Canceller,
    /// Why it was cancelled, once it was.
    cancelled: Option<String>,
}

/// The set of running units, keyed by (task type, work unit key).
pub(crate) struct Running {
    units: Mutex<HashMap<(String, String), Entry>>,
    /// How many units are running, for waiters.
    count: watch::Sender<usize>,
}

impl Default for Running {
    fn default() -> Self {
        Self {
            units: Mutex::new(HashMap::new()),
            count: watch::channel(0).0,
        }
    }
}

impl Running {
    /// Adds a freshly claimed unit; its calls stop when the returned
    /// cancellation fires.
    pub(crate) fn insert(&self, claim: &Claim) -> Cancellation {
        let (canceller, cancel) = cancellation();
        let mut units = self.units.lock().expect("running units lock");
        units.insert(
            key(claim),
            Entry {
                claim_seq: claim.claim_seq,
                since: Instant::now(),
                canceller,
                cancelled: None,
            },
        );
        self.count.send_replace(units.len());
        cancel
    }

    pub(crate) fn remove(&self, claim: &Claim) {
        let mut units = self.units.lock().expect("running units lock");
        if units
            .get(&key(claim))
            .is_some_and(|entry| entry.claim_seq == claim.claim_seq)
        {
            units.remove(&key(claim));
        }
        self.count.send_replace(units.len());
    }

    pub(crate) fn len(&self) -> usize {
        *self.count.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Why the unit under `claim` was cancelled, if it was.
    pub(crate) fn cancelled(&self, claim: &Claim) -> Option<String> {
        let units = self.units.lock().expect("running units lock");
        units
            .get(&key(claim))
            .filter(|entry| entry.claim_seq == claim.claim_seq)
            .and_then(|entry| entry.cancelled.clone())
    }

    /// Cancels units registered before `checked_at` whose claim is not in
    /// `held`. Returns how many were cancelled.
    pub(crate) fn cancel_lost(&self, held: &[Claim], checked_at: Instant, reason: &str) -> usize {
        let mut units = self.units.lock().expect("running units lock");
        let mut lost = 0;
        for ((task_type, key), entry) in units.iter_mut() {
            let still_held = held.iter().any(|claim| {
                claim.claim_seq == entry.claim_seq
                    && &claim.task_type == task_type
                    && &claim.work_unit_key == key
            });
            if !still_held && entry.since < checked_at && entry.cancelled.is_none() {
                tracing::warn!(
                    task_type,
                    work_unit_key = key,
                    "claim lost: cancelling the unit"
                );
                entry.cancelled = Some(reason.to_string());
                entry.canceller.cancel(reason);
                lost += 1;
            }
        }
        lost
    }

    /// Cancels every running unit with `reason`.
    pub(crate) fn cancel_all(&self, reason: &str) {
        let mut units = self.units.lock().expect("running units lock");
        for entry in units.values_mut() {
            if entry.cancelled.is_none() {
                entry.cancelled = Some(reason.to_string());
                entry.canceller.cancel(reason);
            }
        }
    }

    /// Resolves once no unit is running.
    pub(crate) async fn wait_empty(&self) {
        let mut count = self.count.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = count.wait_for(|count| *count == 0).await;
    }
}

fn key(claim: &Claim) -> (String, String) {
    (claim.task_type.clone(), claim.work_unit_key.clone())
}
