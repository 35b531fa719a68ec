//! The units this process is working on, and the handles to stop each one.
//!
//! The heartbeat compares this set with the claims the store says we still
//! hold and cancels the difference; shutdown cancels everything and waits
//! until no unit task is left, which is when no claim of ours is left behind.
//!
//! The set holds at most one entry per unit. If the store hands this process a
//! new claim on a unit it is still running (possible only when the old claim
//! is gone, for example when the database lost its last commits in a crash),
//! the old task is cancelled and the new one waits until the old one has
//! ended: two tasks of this process never work on one unit at once.
//!
//! Each unit has two cancellations. The *call* one stops a running plugin call:
//! it fires at shutdown and when the claim is lost. The *write* one stops
//! waiting for the database to take the unit's outcome: it fires only when the
//! claim is lost, so a call that finished just as the grace period ended still
//! gets its result written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::runtime::{Cancellation, Canceller, cancellation};
use crate::store::Claim;

/// One running unit.
struct Entry {
    token: i64,
    /// Tells this entry from a later one on the same unit.
    registration: u64,
    /// When the claim was registered; a heartbeat that started earlier cannot
    /// know about it and must not cancel it.
    since: Instant,
    call: Canceller,
    write: Canceller,
    /// Why it was cancelled, once it was.
    cancelled: Option<String>,
    /// The unit task is giving the unit back (release or failure write): a
    /// heartbeat that no longer finds the claim has most likely seen that
    /// write land before the task left the set, which is no loss.
    letting_go: bool,
    /// Resolves (with an error) once the unit task has ended.
    ended: oneshot::Receiver<()>,
}

impl Entry {
    fn cancel(&mut self, reason: &str, writes: bool) {
        if self.cancelled.is_none() {
            self.cancelled = Some(reason.to_string());
            self.call.cancel(reason);
        }
        if writes {
            self.write.cancel(reason);
        }
    }
}

/// A unit: task type and key.
type UnitKey = (String, String);

fn unit(claim: &Claim) -> UnitKey {
    (claim.task_type.clone(), claim.work_unit_key.clone())
}

/// The cancellations a unit task holds.
pub(crate) struct UnitCancel {
    /// Stops the plugin call.
    pub(crate) call: Cancellation,
    /// Stops waiting to write the outcome.
    pub(crate) write: Cancellation,
}

/// A unit task of this process that must end before the new one starts.
pub(crate) struct Predecessor(oneshot::Receiver<()>);

impl Predecessor {
    /// Resolves once the earlier task on the unit has ended.
    pub(crate) async fn ended(self) {
        let _ = self.0.await;
    }
}

/// The set of running units.
pub(crate) struct Running {
    units: Mutex<Units>,
    /// How many unit tasks are alive (including ones winding down after a
    /// newer claim replaced them). Watchers are woken only when it reaches
    /// or leaves zero ([`Running::publish`]).
    count: watch::Sender<usize>,
}

#[derive(Default)]
struct Units {
    by_unit: HashMap<UnitKey, Entry>,
    next_registration: u64,
    alive: usize,
}

impl Default for Running {
    fn default() -> Self {
        Self {
            units: Mutex::new(Units::default()),
            count: watch::channel(0).0,
        }
    }
}

/// Takes its unit out of the running set when dropped, so a unit task that
/// ends in any way (a panic included) never stays counted.
pub(crate) struct Registered {
    running: Arc<Running>,
    unit: UnitKey,
    registration: u64,
    /// Dropped last: tells a successor on the same unit that this task ended.
    _ended: oneshot::Sender<()>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut units = self.running.lock();
        if units
            .by_unit
            .get(&self.unit)
            .is_some_and(|entry| entry.registration == self.registration)
        {
            units.by_unit.remove(&self.unit);
        }
        units.alive -= 1;
        self.running.publish(units.alive);
    }
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, Units> {
        self.units
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a freshly claimed unit; it leaves the set when the returned guard
    /// is dropped. If this process still runs the unit under an older claim,
    /// that task is cancelled (its claim is gone: the store just gave the unit
    /// out again) and returned as the predecessor to wait for.
    pub(crate) fn insert(
        self: &Arc<Self>,
        claim: &Claim,
        reason: &str,
    ) -> (UnitCancel, Registered, Option<Predecessor>) {
        let (call, call_cancel) = cancellation();
        let (write, write_cancel) = cancellation();
        let (ended_tx, ended_rx) = oneshot::channel();
        let mut units = self.lock();
        let registration = units.next_registration;
        units.next_registration += 1;
        units.alive += 1;
        let previous = units.by_unit.insert(
            unit(claim),
            Entry {
                token: claim.token,
                registration,
                since: Instant::now(),
                call,
                write,
                cancelled: None,
                letting_go: false,
                ended: ended_rx,
            },
        );
        self.publish(units.alive);
        drop(units);
        let predecessor = previous.map(|mut old| {
            tracing::warn!(
                task_type = %claim.task_type,
                work_unit_key = %claim.work_unit_key,
                "claimed a unit this host still runs under a lost claim: cancelling the old call first"
            );
            old.cancel(reason, true);
            Predecessor(old.ended)
        });
        (
            UnitCancel {
                call: call_cancel,
                write: write_cancel,
            },
            Registered {
                running: self.clone(),
                unit: unit(claim),
                registration,
                _ended: ended_tx,
            },
            predecessor,
        )
    }

    /// Records how many unit tasks are alive. Waiters only ever wait for the
    /// host to go idle or busy, so they are woken when the count reaches or
    /// leaves zero, not at every unit: a wake-up per unit would cost the host
    /// a thread wake-up (a syscall) per unit while anything watches.
    fn publish(&self, alive: usize) {
        self.count.send_if_modified(|count| {
            let crossed = (*count == 0) != (alive == 0);
            *count = alive;
            crossed
        });
    }

    /// How many unit tasks are alive.
    pub(crate) fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// The count of unit tasks alive, woken when it reaches or leaves zero.
    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Whether a claim is being worked on here.
    pub(crate) fn contains(&self, claim: &Claim) -> bool {
        self.lock()
            .by_unit
            .get(&unit(claim))
            .is_some_and(|entry| entry.token == claim.token)
    }

    /// Why the unit under `claim` was cancelled, if it was.
    pub(crate) fn cancelled(&self, claim: &Claim) -> Option<String> {
        self.lock()
            .by_unit
            .get(&unit(claim))
            .filter(|entry| entry.token == claim.token)
            .and_then(|entry| entry.cancelled.clone())
    }

    /// Marks the unit under `claim` as being given back: its task is about to
    /// write a release or a failure that ends the claim.
    pub(crate) fn letting_go(&self, claim: &Claim) {
        if let Some(entry) = self
            .lock()
            .by_unit
            .get_mut(&unit(claim))
            .filter(|entry| entry.token == claim.token)
        {
            entry.letting_go = true;
        }
    }

    /// Undoes [`Running::letting_go`]: the write that might have ended the
    /// claim (a completion that releases the unit if it is drained) kept it.
    pub(crate) fn keeping(&self, claim: &Claim) {
        if let Some(entry) = self
            .lock()
            .by_unit
            .get_mut(&unit(claim))
            .filter(|entry| entry.token == claim.token)
        {
            entry.letting_go = false;
        }
    }

    /// Cancels (call and write) units registered before `checked_at` whose
    /// claim is not in `held`. Returns how many claims were lost. Units that
    /// were being given back have their call cancelled but not their write,
    /// and are not counted or reported: their own write most likely ended
    /// the claim, and cancelling it would report a landed outcome as given
    /// up. Their write is fenced, so if the claim was truly lost it lands
    /// nothing and says so.
    pub(crate) fn cancel_lost(&self, held: &[Claim], checked_at: Instant, reason: &str) -> usize {
        let held: HashMap<UnitKey, i64> = held
            .iter()
            .map(|claim| (unit(claim), claim.token))
            .collect();
        let mut lost = 0;
        for ((task_type, key), entry) in self.lock().by_unit.iter_mut() {
            let still_held = held.get(&(task_type.clone(), key.clone())) == Some(&entry.token);
            if entry.since < checked_at && entry.cancelled.is_none() && !still_held {
                if entry.letting_go {
                    entry.cancel(reason, false);
                    continue;
                }
                tracing::warn!(
                    task_type,
                    work_unit_key = key,
                    "claim lost: cancelling the unit"
                );
                entry.cancel(reason, true);
                lost += 1;
            }
        }
        lost
    }

    /// Cancels every running unit's call with `reason`; with `writes`, their
    /// pending writes too (the claim can no longer be trusted).
    pub(crate) fn cancel_all(&self, reason: &str, writes: bool) {
        for entry in self.lock().by_unit.values_mut() {
            entry.cancel(reason, writes);
        }
    }

    /// Resolves once no unit task is alive.
    pub(crate) async fn wait_empty(&self) {
        let mut count = self.count.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = count.wait_for(|count| *count == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(key: &str, token: i64) -> Claim {
        Claim {
            task_type: "t".into(),
            work_unit_key: key.into(),
            worker: "w".into(),
            token,
        }
    }

    #[tokio::test]
    async fn a_claim_missing_from_the_heartbeat_is_lost_unless_its_task_was_giving_it_back() {
        let running = Arc::new(Running::default());
        let (calling, _kept, _) = running.insert(&claim("a", 1), "replaced");
        let (releasing, _released, _) = running.insert(&claim("b", 2), "replaced");
        running.letting_go(&claim("b", 2));
        // A letting-go mark for a claim this task does not hold changes nothing.
        running.letting_go(&claim("a", 9));
        let later = Instant::now() + std::time::Duration::from_millis(1);

        // Both are cancelled, but only the one that was not giving its claim
        // back counts (and is reported) as lost.
        assert_eq!(running.cancel_lost(&[], later, "gone"), 1);
        assert_eq!(running.cancelled(&claim("a", 1)).as_deref(), Some("gone"));
        assert_eq!(running.cancelled(&claim("b", 2)).as_deref(), Some("gone"));
        // The lost unit's write is cancelled; the one giving its claim back
        // keeps waiting for its own (fenced) write to answer.
        let now = std::time::Duration::ZERO;
        assert!(
            tokio::time::timeout(now, calling.write.cancelled())
                .await
                .is_ok()
        );
        assert!(
            tokio::time::timeout(now, releasing.write.cancelled())
                .await
                .is_err()
        );
    }

    #[test]
    fn watchers_hear_when_the_host_goes_busy_or_idle_and_not_at_every_unit() {
        let running = Arc::new(Running::default());
        let mut watcher = running.watch();
        let (_, first, _) = running.insert(&claim("a", 1), "replaced");
        assert!(watcher.has_changed().unwrap(), "leaving zero is told");
        assert_eq!(*watcher.borrow_and_update(), 1);

        let (_, second, _) = running.insert(&claim("b", 2), "replaced");
        drop(first);
        assert!(!watcher.has_changed().unwrap(), "1 -> 2 -> 1 is not told");
        assert_eq!(running.len(), 1, "but the count is kept all the same");

        drop(second);
        assert!(watcher.has_changed().unwrap(), "reaching zero is told");
        assert_eq!(*watcher.borrow_and_update(), 0);
    }
}
