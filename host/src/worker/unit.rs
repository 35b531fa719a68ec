//! One claimed work unit, from its first batch to its release.
//!
//! The unit task starts on the batch the claim took with it, then fetches the
//! unit's next batches (or runs of items, called one at a time, for
//! item-mode plugins); for each it runs the plugin under the task type's
//! deadline, commits the outcome fenced by the claim ([`super::commit`],
//! completions through [`super::group_commit`]) and goes round again until
//! the unit has nothing ready, has used its fair share of time, or the host is
//! shutting down; then it releases the claim. While the host's writes fail it
//! starts no new call, holding the claim until they land again. Its slot
//! ([`Slot`]) is freed when it ends, whatever happened, or earlier, once its
//! last call is over and only the write that may end it is left; the claim
//! loop is woken at either. A unit claimed ahead of need waits here for a
//! slot; the fair-share clock starts when it has one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::commit::{self, Judged, Next};
use super::running::{Predecessor, Registered, UnitCancel};
use super::{Phase, Shared, TaskPlan};
use super::{pool, suspects, unavailable};
use crate::outbound::{Usage, UsageMeter};
use crate::runtime::bindings::types::WorkItem;
use crate::runtime::{CallRequest, PluginMode};
use crate::store::{Claim, Completion, Item};

/// Why running calls are cancelled at the end of the grace period.
pub(crate) const SHUTDOWN_REASON: &str = "the host is shutting down";

pub(crate) async fn run(
    shared: Arc<Shared>,
    claim: Claim,
    first: Vec<Item>,
    cancel: UnitCancel,
    registered: Registered,
    predecessor: Option<Predecessor>,
) {
    if let Some(predecessor) = predecessor {
        // An older task of ours on this unit lost its claim and was
        // cancelled; it ends within moments. Never run a unit twice at once.
        predecessor.ended().await;
    }
    let mut slot = Slot::new(&shared);
    if !slot.take(&claim, &cancel).await {
        drop(registered);
        shared.wake.notify_one();
        return;
    }
    let started = Instant::now();
    let plans = shared.plans.current();
    match plans.get(&claim.task_type) {
        Some(plan) => {
            let span = tracing::info_span!(
                "unit",
                task_type = %claim.task_type,
                key = %claim.work_unit_key,
                claim = claim.token,
                plugin = %plan.plugin.name,
                plugin_version = %plan.plugin.version,
            );
            process(&shared, &claim, plan, first, &cancel, started, &mut slot)
                .instrument(span)
                .await;
        }
        None => {
            // Claims are only made for task types with a plan; be safe anyway.
            commit::release(&shared, &claim).await;
        }
    }
    metrics::histogram!("sluice_unit_duration_seconds", "task_type" => claim.task_type.clone())
        .record(started.elapsed().as_secs_f64());
    // Free the slot, then leave the running set, before waking the claim
    // loop, so that it sees the room.
    drop(slot);
    drop(registered);
    shared.wake.notify_one();
}

/// A unit task's hold on one of the host's slots, which bound how many calls
/// run at once. A unit lets its slot go once its last call is over and only
/// the write that may end it is left (its last completions, which give the
/// unit back if they leave it nothing pending): a group commit's round trip
/// was most of a short unit's life, and the slot can serve a unit waiting for
/// one meanwhile. The unit stays registered, so its claim is still held,
/// heartbeated and fenced; the claim loop does not count it against its room
/// while it waits ([`pool::Finishing`]), so that units are there to take the
/// slots it let go. A unit the write leaves with work takes a slot again
/// before its next call, as a unit claimed ahead does.
struct Slot<'a> {
    shared: &'a Shared,
    permit: Option<OwnedSemaphorePermit>,
    /// Counted in [`Shared::finishing`].
    finishing: bool,
}

impl<'a> Slot<'a> {
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            permit: None,
            finishing: false,
        }
    }

    /// Waits for a slot unless one is held. On false the unit must end: the
    /// host is shutting down, the claim was lost, or no slot came free for a
    /// while; the claim has been given back where it still was ours.
    async fn take(&mut self, claim: &Claim, cancel: &UnitCancel) -> bool {
        if self.permit.is_some() {
            return true;
        }
        self.not_finishing();
        match wait_for_slot(self.shared, cancel).await {
            Ok(permit) => {
                self.permit = Some(permit);
                true
            }
            Err(no_slot) => {
                let stalled = no_slot == NoSlot::Stalled;
                if stalled || self.shared.phase() != Phase::Running {
                    if stalled {
                        tracing::debug!(
                            task_type = %claim.task_type,
                            key = %claim.work_unit_key,
                            "no slot came free; giving back a unit waiting for one"
                        );
                    }
                    commit::release(self.shared, claim).await;
                }
                false
            }
        }
    }

    /// Lets the slot go before the write that may end the unit, when the
    /// calls before it took fewer items than the task type's batch (or run)
    /// may: a full one most likely leaves more to do, so the unit keeps its
    /// slot for it.
    fn before_last_write(&mut self, plan: &TaskPlan, items: usize) {
        if items >= plan.batch.max_items as usize {
            return;
        }
        self.free();
        if !self.finishing {
            self.finishing = true;
            self.shared.finishing.enter();
            // The claim loop has room for one more unit.
            self.shared.wake.notify_one();
        }
    }

    /// Frees the slot, if held, for a unit waiting for one.
    fn free(&mut self) {
        if self.permit.take().is_some() {
            self.shared.turnover.unit_ended();
        }
    }

    fn not_finishing(&mut self) {
        if self.finishing {
            self.finishing = false;
            self.shared.finishing.leave();
        }
    }
}

impl Drop for Slot<'_> {
    /// The unit task ended (or panicked): nothing of it is left waiting.
    fn drop(&mut self) {
        self.not_finishing();
        self.free();
    }
}

/// Waits for a free slot: a unit claimed ahead (see [`super::pool`]) starts
/// the moment one frees up.
async fn wait_for_slot(
    shared: &Shared,
    cancel: &UnitCancel,
) -> Result<OwnedSemaphorePermit, NoSlot> {
    let mut phase = shared.phase.subscribe();
    let acquire = shared.slots.clone().acquire_owned();
    tokio::pin!(acquire);
    loop {
        tokio::select! {
            biased;
            _ = phase.wait_for(|phase| *phase != Phase::Running) => return Err(NoSlot::Stopped),
            _ = cancel.write.clone().cancelled() => return Err(NoSlot::Stopped),
            permit = &mut acquire => return permit.map_err(|_| NoSlot::Stopped),
            _ = tokio::time::sleep(pool::PATIENCE) => {
                if !shared.turnover.ended_within(pool::PATIENCE) {
                    return Err(NoSlot::Stalled);
                }
            }
        }
    }
}

/// Why a unit claimed ahead did not get a slot.
#[derive(Debug, PartialEq, Eq)]
enum NoSlot {
    /// The host started shutting down, or the claim was lost.
    Stopped,
    /// No slot of this host freed up for [`pool::PATIENCE`]: the slots are
    /// held by long calls, and the unit is better off back in the queue.
    Stalled,
}

/// Runs the unit's batches, starting with `first` (taken with the claim).
async fn process(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    first: Vec<Item>,
    cancel: &UnitCancel,
    started: Instant,
    slot: &mut Slot<'_>,
) {
    let mut first = Some(first);
    loop {
        if !slot.take(claim, cancel).await {
            return;
        }
        if !shared.health.can_write() && !writes_resume(shared, cancel).await {
            // The claim was lost while waiting; whoever holds the unit now
            // (or the reaper) has it.
            return;
        }
        if !may_go_on(shared, started) {
            commit::release(shared, claim).await;
            return;
        }
        let fetched = match first.take() {
            Some(items) => Ok(items),
            None => {
                commit::persist(shared, &cancel.write, || {
                    shared.store.fetch_batch(claim, plan.batch)
                })
                .await
            }
        };
        let items = match fetched {
            Ok(items) => items,
            Err(stop) => {
                commit::give_up(shared, claim, &stop).await;
                return;
            }
        };
        if items.is_empty() {
            commit::release(shared, claim).await;
            return;
        }
        let next = match plan.plugin.mode {
            PluginMode::Batch => run_batch(shared, claim, plan, cancel, items, slot).await,
            PluginMode::Item => run_items(shared, claim, plan, cancel, started, items, slot).await,
        };
        if next == Next::Stop {
            return;
        }
    }
}

/// Whether the unit task may start another call: the host is not shutting
/// down and the unit has not used up its fair share of time.
fn may_go_on(shared: &Shared, started: Instant) -> bool {
    shared.phase() == Phase::Running && started.elapsed() < shared.config.fair_share
}

/// One call on the whole batch, then its one write.
async fn run_batch(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    cancel: &UnitCancel,
    items: Vec<Item>,
    slot: &mut Slot<'_>,
) -> Next {
    let ids: Vec<i64> = items.iter().map(|item| item.id).collect();
    match call(shared, claim, plan, cancel, items).await {
        Judged::Completed(completion) => {
            slot.before_last_write(plan, ids.len());
            commit::complete(shared, claim, plan, vec![completion], true, &cancel.write).await
        }
        Judged::Failed(failure) => {
            let through = ids.last().copied().unwrap_or(i64::MAX);
            commit::fail(shared, claim, plan, through, failure, &cancel.write).await;
            Next::Stop
        }
        Judged::Interrupted(message) => {
            commit::interrupted(shared, claim, &message).await;
            Next::Stop
        }
        Judged::GiveBack => {
            commit::release(shared, claim).await;
            Next::Stop
        }
    }
}

/// An item-mode unit's run of items: one call per item, in order. Calls go on
/// while the completions before them are being written: each write takes
/// whatever completed since the last one was sent, and is sent once that one
/// has landed, so a fast plugin's run costs a few commits and never waits on
/// them between calls, and a slow one's items each land as soon as they are
/// done. A failed item has the completions before it written first, then is
/// failed alone: the items after it were never called, are not charged, and
/// wait for the next claim. Calls made while a write turns out to have lost
/// the claim are not written; the unit's next holder calls those items again.
async fn run_items(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    cancel: &UnitCancel,
    started: Instant,
    items: Vec<Item>,
    slot: &mut Slot<'_>,
) -> Next {
    let count = items.len();
    let mut done: Vec<Completion> = Vec::new();
    let mut writing = Writing::default();
    for (n, item) in items.into_iter().enumerate() {
        if n > 0 && !may_go_on(shared, started) {
            break;
        }
        let id = item.id;
        let judged = call(shared, claim, plan, cancel, vec![item]).await;
        if writing.landed().await == Some(Next::Stop) {
            return Next::Stop;
        }
        match judged {
            Judged::Completed(completion) => {
                done.push(completion);
                if n + 1 == count {
                    // The last item: its write may give the unit back.
                    slot.before_last_write(plan, count);
                    return write_all(shared, claim, plan, cancel, &mut writing, done, true).await;
                }
                if writing.is_idle() {
                    let completions = std::mem::take(&mut done);
                    let write =
                        commit::complete(shared, claim, plan, completions, false, &cancel.write);
                    writing.start(Box::pin(write)).await;
                }
            }
            Judged::Failed(failure) => {
                if write_all(shared, claim, plan, cancel, &mut writing, done, false).await
                    == Next::Stop
                {
                    return Next::Stop;
                }
                commit::fail(shared, claim, plan, id, failure, &cancel.write).await;
                return Next::Stop;
            }
            Judged::Interrupted(message) => {
                write_all(shared, claim, plan, cancel, &mut writing, done, false).await;
                commit::interrupted(shared, claim, &message).await;
                return Next::Stop;
            }
            Judged::GiveBack => {
                if write_all(shared, claim, plan, cancel, &mut writing, done, false).await
                    == Next::Stop
                {
                    return Next::Stop;
                }
                commit::release(shared, claim).await;
                return Next::Stop;
            }
        }
    }
    write_all(shared, claim, plan, cancel, &mut writing, done, false).await
}

/// Waits for the write in flight, then writes `done` (if any; releasing the
/// unit if it is left with nothing pending, when `release_if_drained`) and
/// waits for that too.
async fn write_all<'a>(
    shared: &'a Shared,
    claim: &'a Claim,
    plan: &'a TaskPlan,
    cancel: &'a UnitCancel,
    writing: &mut Writing<'a>,
    done: Vec<Completion>,
    release_if_drained: bool,
) -> Next {
    if writing.finish().await == Next::Stop {
        return Next::Stop;
    }
    if done.is_empty() {
        return Next::Continue;
    }
    commit::complete(shared, claim, plan, done, release_if_drained, &cancel.write).await
}

/// An item-mode run's write: [`commit::complete`] of the completions sent
/// last, in flight or landed and not yet looked at.
#[derive(Default)]
struct Writing<'a> {
    in_flight: Option<Pin<Box<dyn Future<Output = Next> + Send + 'a>>>,
    landed: Option<Next>,
}

impl<'a> Writing<'a> {
    /// Whether the next write may be sent: none is in flight.
    fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// Sends `write` on its way (its first poll queues it with the group
    /// committer) without waiting for it to land.
    async fn start(&mut self, write: Pin<Box<dyn Future<Output = Next> + Send + 'a>>) {
        self.in_flight = Some(write);
        self.poll_once().await;
    }

    /// What the last write came to, once it has landed; `None` while it is
    /// in flight, or when there is nothing new to say.
    async fn landed(&mut self) -> Option<Next> {
        self.poll_once().await;
        self.landed.take()
    }

    /// Waits for the write in flight, if any, and says what the last write
    /// came to (`Continue` when there was none).
    async fn finish(&mut self) -> Next {
        let next = match self.in_flight.take() {
            Some(write) => write.await,
            None => Next::Continue,
        };
        match self.landed.take() {
            Some(Next::Stop) => Next::Stop,
            _ => next,
        }
    }

    /// Polls the write in flight once, which also lets it make progress (a
    /// retry after contention), and keeps its result if it landed.
    async fn poll_once(&mut self) {
        let Some(write) = self.in_flight.as_mut() else {
            return;
        };
        let polled = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        if let Poll::Ready(next) = polled {
            self.in_flight = None;
            self.landed = Some(next);
        }
    }
}

/// Runs the plugin on `items` under the task type's limits and sorts out
/// what its outcome calls for.
async fn call(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    cancel: &UnitCancel,
    items: Vec<Item>,
) -> Judged {
    let ids: Vec<i64> = items.iter().map(|item| item.id).collect();
    let attempt = items[0].attempts + 1;
    let call_span = tracing::info_span!(
        "call",
        items = ?ids,
        attempt,
        llm_calls = tracing::field::Empty,
        input_tokens = tracing::field::Empty,
        output_tokens = tracing::field::Empty,
        llm_usage_unknown = tracing::field::Empty,
    );
    let call_started = Instant::now();
    let started_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let usage = UsageMeter::default();
    let plugin = plan.plugin.clone();
    let request = CallRequest {
        items: items.into_iter().map(work_item).collect(),
        limits: plan.limits.clone(),
        task_config: plan.task_config.clone(),
        outbound: shared.outbound.clone(),
        cancel: cancel.call.clone(),
        usage: usage.clone(),
    };
    let outcome = shared
        .guests
        .run(async move { plugin.call(request).await }.instrument(call_span.clone()))
        .await
        .and_then(|called| called.map_err(|err| err.to_string()));
    let duration = call_started.elapsed();
    metrics::histogram!("sluice_call_duration_seconds", "task_type" => claim.task_type.clone())
        .record(duration.as_secs_f64());
    let spent = usage.snapshot();
    call_span.record("llm_calls", spent.llm_calls);
    call_span.record("input_tokens", spent.input_tokens);
    call_span.record("output_tokens", spent.output_tokens);
    if spent.llm_usage_unknown > 0 {
        call_span.record("llm_usage_unknown", spent.llm_usage_unknown);
    }
    let record = CallRecord {
        plugin: &plan.plugin.name,
        plugin_version: &plan.plugin.version,
        attempt,
        started_at_ms,
        duration_ms: duration.as_millis() as u64,
        usage: spent,
    };
    suspects::record(shared, claim, &outcome, &usage).await;
    if unavailable::gives_back(claim, &outcome, &usage) {
        return Judged::GiveBack;
    }
    let _entered = call_span.enter();
    commit::judge(claim, &ids, outcome, &record)
}

/// Waits while the host's writes fail: a call started now could not have its
/// outcome written either, and would run again later. The claim stays held
/// (the heartbeat keeps it). Returns false if the claim was lost meanwhile;
/// true once writes land again or the host is shutting down.
async fn writes_resume(shared: &Shared, cancel: &UnitCancel) -> bool {
    while !shared.health.can_write() && shared.phase() == Phase::Running {
        tokio::select! {
            _ = tokio::time::sleep(WRITE_PROBE) => {}
            _ = cancel.write.clone().cancelled() => return false,
        }
    }
    true
}

/// How often a unit waiting for writes to land looks again.
const WRITE_PROBE: std::time::Duration = std::time::Duration::from_millis(100);

/// The host's record of one call, stored beside its output.
#[derive(serde::Serialize)]
pub(crate) struct CallRecord<'a> {
    plugin: &'a str,
    plugin_version: &'a str,
    attempt: u32,
    /// When the call started, host wall clock, epoch ms: with the item's
    /// `created_at_ms`, how long it waited to run.
    started_at_ms: u64,
    duration_ms: u64,
    usage: Usage,
}

fn work_item(item: Item) -> WorkItem {
    WorkItem {
        id: item.id as u64,
        task_type: item.task_type,
        work_unit_key: item.work_unit_key,
        payload: item.payload,
        attempt: item.attempts + 1,
        enqueued_at_ms: item.created_at_ms as u64,
    }
}
