//! The units this process is working on, and the handles to stop each one.
//!
//! The heartbeat compares this set with the claims the store says we still
//! hold and cancels the difference; shutdown cancels everything and waits
//! until the set is empty, which is when no claim of ours is left behind.
//!
//! Each unit has two cancellations. The *call* one stops a running plugin call:
//! it fires at shutdown and when the claim is lost. The *write* one stops
//! waiting for the database to take the unit's outcome: it fires only when the
//! claim is lost, so a call that finished just as the grace period ended still
//! gets its result written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::runtime::{Cancellation, Canceller, cancellation};
use crate::store::Claim;

/// One running unit.
struct Entry {
    /// When the claim was registered; a heartbeat that started earlier cannot
    /// know about it and must not cancel it.
    since: Instant,
    call: Canceller,
    write: Canceller,
    /// Why it was cancelled, once it was.
    cancelled: Option<String>,
}

/// A claim, as the key of the running set (a unit may be claimed again under a
/// new claim number while an older task still winds down).
type Key = (String, String, i64);

fn key(claim: &Claim) -> Key {
    (
        claim.task_type.clone(),
        claim.work_unit_key.clone(),
        claim.claim_seq,
    )
}

/// The cancellations a unit task holds.
pub(crate) struct UnitCancel {
    /// Stops the plugin call.
    pub(crate) call: Cancellation,
    /// Stops waiting to write the outcome.
    pub(crate) write: Cancellation,
}

/// The set of running units.
pub(crate) struct Running {
    units: Mutex<HashMap<Key, Entry>>,
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

/// Removes its unit from the running set when dropped, so a unit task that
/// ends in any way (a panic included) never stays counted.
pub(crate) struct Registered {
    running: Arc<Running>,
    claim: Claim,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut units = self.running.lock();
        units.remove(&key(&self.claim));
        self.running.count.send_replace(units.len());
    }
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.units
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a freshly claimed unit; it leaves the set when the returned guard
    /// is dropped.
    pub(crate) fn insert(self: &Arc<Self>, claim: &Claim) -> (UnitCancel, Registered) {
        let (call, call_cancel) = cancellation();
        let (write, write_cancel) = cancellation();
        let mut units = self.lock();
        units.insert(
            key(claim),
            Entry {
                since: Instant::now(),
                call,
                write,
                cancelled: None,
            },
        );
        self.count.send_replace(units.len());
        (
            UnitCancel {
                call: call_cancel,
                write: write_cancel,
            },
            Registered {
                running: self.clone(),
                claim: claim.clone(),
            },
        )
    }

    pub(crate) fn len(&self) -> usize {
        *self.count.borrow()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Whether a claim is being worked on here.
    pub(crate) fn contains(&self, claim: &Claim) -> bool {
        self.lock().contains_key(&key(claim))
    }

    /// Why the unit under `claim` was cancelled, if it was.
    pub(crate) fn cancelled(&self, claim: &Claim) -> Option<String> {
        self.lock()
            .get(&key(claim))
            .and_then(|entry| entry.cancelled.clone())
    }

    /// Cancels (call and write) units registered before `checked_at` whose
    /// claim is not in `held`. Returns how many were cancelled.
    pub(crate) fn cancel_lost(&self, held: &[Claim], checked_at: Instant, reason: &str) -> usize {
        let held: std::collections::HashSet<Key> = held.iter().map(key).collect();
        let mut lost = 0;
        for (claim, entry) in self.lock().iter_mut() {
            let (task_type, unit, _) = claim;
            if entry.since < checked_at && entry.cancelled.is_none() && !held.contains(claim) {
                tracing::warn!(
                    task_type,
                    work_unit_key = unit,
                    "claim lost: cancelling the unit"
                );
                entry.cancelled = Some(reason.to_string());
                entry.call.cancel(reason);
                entry.write.cancel(reason);
                lost += 1;
            }
        }
        lost
    }

    /// Cancels every running unit's call with `reason`; with `writes`, their
    /// pending writes too (the claim can no longer be trusted).
    pub(crate) fn cancel_all(&self, reason: &str, writes: bool) {
        for entry in self.lock().values_mut() {
            if entry.cancelled.is_none() {
                entry.cancelled = Some(reason.to_string());
                entry.call.cancel(reason);
            }
            if writes {
                entry.write.cancel(reason);
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
