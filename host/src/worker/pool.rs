//! The claim loop: claims as many units as there are free slots plus, while
//! units are ending, a short queue of units that wait for the next free slot,
//! each with its first batch ([`crate::store::Store::claim_batches`]); starts
//! one unit task per claim; and sleeps with backoff and jitter when there is
//! nothing to do, woken at once when work arrives or a unit ends.
//!
//! A unit claimed ahead is work no other host can take, so the queue is only
//! kept while slots turn over: with every slot held by a long call (a hung
//! LLM, a slow provider) nothing is claimed ahead, and a unit already waiting
//! gives its claim back once no slot has freed up for [`PATIENCE`]
//! ([`Turnover`]). Healthy work never sits claimed behind stuck units.
//!
//! The loop ticks the health clock every time it goes round, including while
//! every slot is busy (it then waits at most `poll_interval` for room),
//! so `/healthz` tells a full pool from a dead loop. It claims nothing while
//! the database is not taking writes (see [`super::Health::can_write`]): the
//! heartbeat keeps probing, and claiming resumes once writes land again.
//! Task types whose LLM provider's circuit breaker is open are left out of
//! the claim until it lets probes through ([`crate::flow`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::{Phase, Shared, heartbeat, unit};
use crate::store::{Claimable, Claimed, ClaimedBatch};

/// The shortest idle sleep; idle sleeps double from here up to `poll_interval`.
const MIN_IDLE_SLEEP: Duration = Duration::from_millis(20);

/// How often a loop that waits for writes to land looks again.
const MAX_WRITE_PROBE_WAIT: Duration = Duration::from_millis(500);

pub(crate) async fn run(shared: Arc<Shared>) {
    let poll = shared.config.poll_interval;
    let mut idle = Backoff::new(MIN_IDLE_SLEEP, poll);
    let mut failing = Backoff::new(Duration::from_millis(100), poll.max(Duration::from_secs(5)));
    let mut paused = shared.paused.subscribe();
    let mut phase = shared.phase.subscribe();
    loop {
        if *phase.borrow() != Phase::Running {
            tracing::info!("claim loop stopped: shutting down");
            return;
        }
        if *paused.borrow() {
            tokio::select! {
                _ = paused.changed() => {}
                _ = phase.changed() => {}
            }
            continue;
        }
        shared.health.tick_poll();
        let room = room(&shared);
        if room == 0 || !shared.health.can_write() {
            wait(&shared, poll.min(MAX_WRITE_PROBE_WAIT)).await;
            continue;
        }
        let plans = shared.plans.current();
        let claimables = claimable_now(&shared, plans.claimables());
        if claimables.is_empty() {
            // Every task type waits for its provider to recover.
            wait(&shared, poll).await;
            continue;
        }
        let batches = plans.batches(&claimables);
        let claimed = tokio::time::timeout(
            shared.config.lease,
            shared.store.claim_batches(
                &shared.worker.id,
                &claimables,
                &batches,
                room as u32,
                shared.suspects.allowance(),
                shared.config.lease,
            ),
        )
        .await;
        match claimed {
            Ok(Ok(claims)) => {
                shared.health.database(true);
                failing.reset();
                if claims.is_empty() {
                    wait(&shared, idle.next_wait()).await;
                } else {
                    idle.reset();
                    metrics::counter!("sluice_claims_total").increment(claims.len() as u64);
                    for claim in claims {
                        start_unit(&shared, claim);
                    }
                }
            }
            failed => {
                shared.health.database(false);
                match failed {
                    Ok(Err(err)) => tracing::warn!(error = %err, "claiming failed"),
                    _ => tracing::warn!("claiming did not finish within the lease"),
                }
                wait(&shared, failing.next_wait()).await;
            }
        }
    }
}

/// The task types worth claiming now: all of them, but those whose LLM
/// provider's circuit breaker is open (their units would only fail).
fn claimable_now<'a>(shared: &Shared, all: &'a [Claimable]) -> Cow<'a, [Claimable]> {
    match &shared.flow {
        Some(flow) if all.iter().any(|c| !flow.claimable(&c.task_type)) => Cow::Owned(
            all.iter()
                .filter(|c| flow.claimable(&c.task_type))
                .cloned()
                .collect(),
        ),
        _ => Cow::Borrowed(all),
    }
}

/// Sleeps for `at_most`, or less if woken.
async fn wait(shared: &Shared, at_most: Duration) {
    let _ = tokio::time::timeout(at_most, shared.wake.notified()).await;
}

/// How many more units to claim: enough for every free slot plus, while
/// slots turn over, a few units waiting for a slot, so a slot that frees up
/// starts its next unit at once, without a claim's round trip
/// ([`CLAIM_AHEAD`]). While every slot is busy the waiting queue is topped
/// up only once a quarter of it has gone: one claim for several units
/// instead of a claim per unit that ends.
///
/// Units that let their slot go to wait for their last write
/// ([`Finishing`]) do not count, up to one per slot: their slots are calling
/// for other units, and their writes land within a group commit's round trip.
fn room(shared: &Shared) -> usize {
    let slots = shared.config.slots as usize;
    let finishing = shared.finishing.count().min(slots);
    let held = shared.running.len().saturating_sub(finishing);
    if !shared.turnover.ended_within(PATIENCE) {
        return slots.saturating_sub(held);
    }
    let ahead = slots.min(CLAIM_AHEAD);
    let room = (slots + ahead).saturating_sub(held);
    if held < slots || room >= (ahead / 4).max(1) {
        room
    } else {
        0
    }
}

/// At most this many units wait for a slot (fewer with fewer slots). Their
/// claims are held by the heartbeat like running ones; waiting, they keep
/// the units from other hosts, so the queue stays short.
const CLAIM_AHEAD: usize = 64;

/// How long slots may go without one freeing up before units stop being
/// claimed ahead and those waiting give their claims back: far longer than
/// a queue of [`CLAIM_AHEAD`] units waits while calls end at any useful rate,
/// far shorter than any call deadline.
pub(crate) const PATIENCE: Duration = Duration::from_secs(1);

/// When a unit last ended (and freed its slot), for the claim-ahead queue.
pub(crate) struct Turnover {
    origin: Instant,
    /// Milliseconds from `origin` to the last end, plus one (0: none yet).
    last_end: AtomicU64,
}

impl Default for Turnover {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last_end: AtomicU64::new(0),
        }
    }
}

impl Turnover {
    pub(crate) fn unit_ended(&self) {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        self.last_end.store(now, Ordering::Relaxed);
    }

    /// Whether a unit ended within `within` of now.
    pub(crate) fn ended_within(&self, within: Duration) -> bool {
        match self.last_end.load(Ordering::Relaxed) {
            0 => false,
            last => {
                let since = (self.origin.elapsed().as_millis() as u64 + 1).saturating_sub(last);
                since <= within.as_millis() as u64
            }
        }
    }
}

/// How many units have let their slot go and only wait for the write that
/// may end them (see `Slot` in [`unit`]).
#[derive(Default)]
pub(crate) struct Finishing(AtomicUsize);

impl Finishing {
    pub(crate) fn enter(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

fn start_unit(shared: &Arc<Shared>, claimed: ClaimedBatch) {
    let ClaimedBatch {
        claimed: Claimed { claim, suspect },
        items,
    } = claimed;
    let (cancel, registered, predecessor) = shared.running.insert(&claim, heartbeat::CLAIM_LOST);
    // A suspect counts against the share until its unit task ends.
    let held = suspect.then(|| shared.suspects.hold(&claim));
    let run = unit::run(
        shared.clone(),
        claim,
        items,
        cancel,
        registered,
        predecessor,
    );
    tokio::spawn(async move {
        run.await;
        drop(held);
    });
}

/// Wakes the claim loop when another process (or this one) enqueues work, on
/// backends that can say so; the loop's polling is the fallback.
pub(crate) async fn listen_for_work(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match shared.store.work_signal().await {
            Ok(None) => return,
            Ok(Some(mut signal)) => {
                backoff.reset();
                loop {
                    match signal.next().await {
                        Ok(task_type) => {
                            if shared.plans.current().get(&task_type).is_some() {
                                shared.wake.notify_one();
                            }
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "lost the work notification listener; polling until it is back");
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for work notifications; polling")
            }
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}
