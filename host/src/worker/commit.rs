//! Turning a call's outcome into the one fenced write it calls for, and
//! getting that write through a flaky database.
//!
//! | outcome | write |
//! |---|---|
//! | `ok` | complete: output, items done, follow-ups enqueued (group commit, [`super::group_commit`]) |
//! | `ok`, but the database refuses it | fail (retryable), with the database's error |
//! | `retryable`, `timeout`, `trap` | fail (retryable): an attempt, then backoff or dead letter |
//! | `permanent`, `invalid-output` | fail (permanent): the item is dead-lettered |
//! | `trap(interrupt)` at shutdown | release: no attempt is counted |
//! | `trap(interrupt)` after a lost claim | nothing: the claim belongs to someone else |
//!
//! A failure of a batch of several items charges nobody: the store narrows the
//! unit's next batches until the failing item is alone (`store::failure`).
//!
//! Writes are retried with backoff while the store says the database is
//! unavailable, until they land, the claim is known to be lost, or the unit is
//! cancelled; meanwhile the host claims nothing and is not ready. Every write
//! is fenced by the claim, so retrying can never overwrite another host. An
//! outcome is never dead-lettered because of a database error: the store
//! tells outages from refusals, and a refused outcome is retried as a failed
//! attempt.

use std::future::Future;
use std::time::Duration;

use super::backoff::Backoff;
use super::unit::{CallRecord, SHUTDOWN_REASON};
use super::{Shared, TaskPlan};
use crate::runtime::{CallOutcome, Cancellation, Output, TrapCause};
use crate::store::{
    Claim, Commit, Committed, Completion, FailResult, Failure, NewItem, StoreError,
};

/// Whether the unit task goes on with the unit's next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    Stop,
}

/// What a call's outcome calls for.
pub(crate) enum Judged {
    /// Write it (with others: see [`complete`]).
    Completed(Completion),
    /// Charge or narrow ([`fail`]).
    Failed(Failure),
    /// The call was cancelled ([`interrupted`]), with this message.
    Interrupted(String),
    /// The LLM provider is unavailable (its circuit breaker is open): give
    /// the unit back without an attempt ([`super::unavailable`]).
    GiveBack,
}

/// Sorts a call's outcome (counted in `sluice_outcomes_total`) into what to
/// write for it.
pub(crate) fn judge(
    claim: &Claim,
    ids: &[i64],
    outcome: Result<CallOutcome, String>,
    record: &CallRecord<'_>,
) -> Judged {
    let kind = match &outcome {
        Ok(outcome) => outcome.kind(),
        Err(_) => "call-error",
    };
    metrics::counter!("sluice_outcomes_total", "task_type" => claim.task_type.clone(), "outcome" => kind)
        .increment(1);
    let failure = match outcome {
        Ok(CallOutcome::Ok(output)) => {
            return Judged::Completed(completion(ids, output, record));
        }
        Ok(CallOutcome::Retryable { message }) => Failure::Retryable(message),
        Ok(CallOutcome::Permanent { message }) => Failure::Permanent(message),
        Ok(CallOutcome::Timeout { timeout_ms }) => Failure::Retryable(format!(
            "timed out: the call was still running at its {timeout_ms} ms deadline"
        )),
        Ok(CallOutcome::Trap {
            cause: TrapCause::Interrupt,
            message,
        }) => return Judged::Interrupted(message),
        Ok(CallOutcome::Trap { cause, message }) => {
            Failure::Retryable(format!("trap ({}): {message}", trap_name(cause)))
        }
        Ok(CallOutcome::InvalidOutput { reason }) => {
            Failure::Permanent(format!("invalid output: {reason}"))
        }
        Err(err) => Failure::Retryable(format!("the call could not be made: {err}")),
    };
    Judged::Failed(failure)
}

fn completion(ids: &[i64], output: Output, record: &CallRecord<'_>) -> Completion {
    Completion {
        item_ids: ids.to_vec(),
        output: output.output.as_ref().map(|raw| raw.get().to_string()),
        follow_up: output
            .enqueue
            .into_iter()
            .map(|item| NewItem {
                task_type: item.task_type,
                work_unit_key: item.work_unit_key,
                payload: item.payload.get().to_string(),
                tokens: 0,
                dedupe_key: None,
                run_after: None,
            })
            .collect(),
        call: Some(serde_json::to_string(record).expect("a call record serializes")),
    }
}

/// Writes `completions` (consecutive calls of one unit, in order) through
/// the group commit, all or none. With `release_if_drained` the unit is
/// given back in the same transaction if that leaves it nothing pending, and
/// the unit task stops. A completion the database refuses, or whose
/// follow-ups are invalid, is found by writing them one by one: the ones
/// before it land, and it counts as a failed call.
pub(crate) async fn complete(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    completions: Vec<Completion>,
    release_if_drained: bool,
    cancel: &Cancellation,
) -> Next {
    let commit = Commit {
        claim: claim.clone(),
        completions,
        release_if_drained,
    };
    if release_if_drained {
        shared.running.letting_go(claim);
    }
    let mut tries = 0;
    let written = persist(shared, cancel, || {
        tries += 1;
        shared.group_commit.commit(commit.clone())
    })
    .await;
    if release_if_drained && !matches!(written, Ok(Committed::Released)) {
        shared.running.keeping(claim);
    }
    let refusal = match written {
        Ok(committed) => {
            let calls = commit.completions.len() as u64;
            metrics::counter!("sluice_commits_total", "task_type" => claim.task_type.clone(), "result" => "ok")
                .increment(calls);
            let items: Vec<i64> = commit.item_ids().collect();
            tracing::info!(calls, ?items, "items done");
            if committed == Committed::Released {
                tracing::debug!("unit released with its last items");
                return Next::Stop;
            }
            return Next::Continue;
        }
        // A retry after a commit whose reply was lost finds the items done.
        Err(Stop::Store(StoreError::NotInFlight(_))) if tries > 1 => {
            committed(claim, "ok");
            return Next::Continue;
        }
        Err(Stop::Store(StoreError::InvalidItem { index, reason })) => Failure::Permanent(format!(
            "the plugin asked to enqueue an invalid follow-up item {index}: {reason}"
        )),
        // Not an outage: the database refused this outcome. The call did its
        // work, so it is not dead-lettered for it: it counts as a failed
        // attempt, with the database's reason in the item's history.
        Err(Stop::Store(StoreError::Refused(err))) => Failure::Retryable(format!(
            "the call succeeded but the database refused its outcome: {err}"
        )),
        Err(stop) => {
            give_up(shared, claim, &stop).await;
            return Next::Stop;
        }
    };
    let mut completions = commit.completions;
    if completions.len() > 1 {
        let last = completions.len() - 1;
        for (n, completion) in completions.into_iter().enumerate() {
            let one = vec![completion];
            let next = Box::pin(complete(
                shared,
                claim,
                plan,
                one,
                release_if_drained && n == last,
                cancel,
            ))
            .await;
            if next == Next::Stop {
                return Next::Stop;
            }
        }
        return Next::Continue;
    }
    let through = completions
        .pop()
        .and_then(|c| c.item_ids.last().copied())
        .unwrap_or(i64::MAX);
    fail(shared, claim, plan, through, refusal, cancel).await;
    Next::Stop
}

/// Writes a failed call on the in-flight items up to `through` (every item
/// of a batch; the one item called, in an item-mode run) and gives the unit
/// back.
pub(crate) async fn fail(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    through: i64,
    failure: Failure,
    cancel: &Cancellation,
) {
    // Postgres cannot store NUL characters in text; a guest's message may hold them.
    let failure = match failure {
        Failure::Retryable(m) => Failure::Retryable(m.replace('\0', "")),
        Failure::Permanent(m) => Failure::Permanent(m.replace('\0', "")),
    };
    shared.running.letting_go(claim);
    let written = persist(shared, cancel, || {
        shared
            .store
            .fail_through(claim, through, &failure, &plan.retry)
    })
    .await;
    let error = match &failure {
        Failure::Retryable(message) | Failure::Permanent(message) => message.as_str(),
    };
    match written {
        Ok(FailResult::RetryAt(at_ms)) => {
            committed(claim, "retry");
            tracing::warn!(
                error,
                retry_at_ms = at_ms,
                "attempt failed; the unit will be retried"
            );
        }
        Ok(FailResult::DeadLettered(id)) => {
            committed(claim, "dead");
            tracing::error!(error, item = id, "item dead-lettered");
        }
        Ok(FailResult::Narrowed { batch, retry_at_ms }) => {
            committed(claim, "narrowed");
            tracing::warn!(
                error,
                next_batch = batch,
                retry_at_ms,
                "a batch failed; narrowing the unit's batches to find the failing item"
            );
        }
        Err(stop) => give_up(shared, claim, &stop).await,
    }
}

/// The call was cancelled: by shutdown (give the unit back, no attempt) or
/// because the claim was lost (nothing of ours to write).
pub(crate) async fn interrupted(shared: &Shared, claim: &Claim, message: &str) {
    if shared.running.cancelled(claim).as_deref() == Some(SHUTDOWN_REASON) {
        tracing::info!("call cancelled at shutdown; releasing the unit without an attempt");
        release(shared, claim).await;
        return;
    }
    tracing::warn!(reason = message, "call cancelled: the claim was lost");
    committed(claim, "lost-claim");
    // If the claim is ours after all (the database came back before anyone
    // reaped it), give it back now rather than leave it to the reaper. The
    // fence makes this a no-op when it is not.
    release_if_ours(shared, claim).await;
}

/// One fenced release attempt, bounded by the heartbeat interval, whose
/// outcome does not matter: if the claim is still ours the unit goes back to
/// the pool, if not nothing changes (and the reaper or the owner has it).
async fn release_if_ours(shared: &Shared, claim: &Claim) {
    shared.running.letting_go(claim);
    let _ = tokio::time::timeout(
        shared.config.heartbeat_interval,
        shared.group_commit.release(claim.clone()),
    )
    .await;
}

/// Gives the unit back without counting an attempt, with whatever other
/// units are being given back ([`super::group_commit`]). Runs even after the unit
/// was cancelled (shutdown must not leave claims behind), bounded by the lease.
pub(crate) async fn release(shared: &Shared, claim: &Claim) {
    shared.running.letting_go(claim);
    let never = Cancellation::never();
    let released = tokio::time::timeout(
        shared.config.lease,
        persist(shared, &never, || {
            shared.group_commit.release(claim.clone())
        }),
    )
    .await;
    match released {
        Ok(Ok(())) => tracing::debug!("unit released"),
        Ok(Err(stop)) => stopped(claim, &stop),
        Err(_) => tracing::error!(
            "cannot release the unit: the database did not answer within the lease; the reaper will"
        ),
    }
}

/// A unit task that cannot go on: logs why and, unless the claim is known to
/// be someone else's, gives the unit back (fenced, so harmless if it is not
/// ours any more) rather than leave it held until the reaper.
pub(crate) async fn give_up(shared: &Shared, claim: &Claim, stop: &Stop) {
    stopped(claim, stop);
    if !matches!(stop, Stop::Store(StoreError::ClaimLost { .. })) {
        release_if_ours(shared, claim).await;
    }
}

/// Why a write did not land.
#[derive(Debug)]
pub(crate) enum Stop {
    Store(StoreError),
    /// The unit was cancelled (claim lost, lease expired, shutdown) while waiting.
    Cancelled(String),
}

/// A write that did not land: the claim is gone, or the unit was cancelled
/// while the database was unreachable. Either way the items stay as they were
/// and the claim's owner (or the reaper) deals with them.
pub(crate) fn stopped(claim: &Claim, stop: &Stop) {
    match stop {
        Stop::Store(StoreError::ClaimLost { .. }) => {
            committed(claim, "lost-claim");
            tracing::warn!(
                "the claim was lost before the outcome was written; nothing was written"
            );
        }
        Stop::Store(err) => {
            tracing::error!(error = %err, "cannot write the outcome; nothing was written");
        }
        Stop::Cancelled(reason) => {
            tracing::warn!(
                reason,
                "gave up writing the outcome; the items stay for whoever holds the unit"
            );
        }
    }
}

/// Runs a store write until it lands, retrying with backoff while the database
/// is unreachable. Gives up when the unit is cancelled.
pub(crate) async fn persist<T, F, Fut>(
    shared: &Shared,
    cancel: &Cancellation,
    mut write: F,
) -> Result<T, Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    // Set while this write keeps failing: the host claims nothing meanwhile.
    let mut stalled = None;
    loop {
        let attempt = tokio::select! {
            written = tokio::time::timeout(shared.config.lease, write()) => written,
            reason = cancel.clone().cancelled() => return Err(Stop::Cancelled(reason)),
        };
        // (what failed, whether the database itself is failing)
        let (err, outage) = match attempt {
            Ok(Ok(value)) => {
                shared.health.database(true);
                return Ok(value);
            }
            Ok(Err(StoreError::Unavailable(err))) => (err.to_string(), true),
            // One row is busy (a producer's transaction holds the unit): wait
            // for it, but the database is fine and other units go on.
            Ok(Err(StoreError::Contended(err))) => (err.to_string(), false),
            Ok(Err(err)) => return Err(Stop::Store(err)),
            Err(_) => (
                "the database did not answer within the lease".to_string(),
                true,
            ),
        };
        let wait = backoff.next_wait();
        if outage {
            shared.health.database(false);
        }
        if !outage {
            tracing::debug!(
                error = err,
                retry_in_ms = wait.as_millis() as u64,
                "the unit's row is busy; retrying"
            );
        } else if stalled.is_none() {
            stalled = Some(shared.health.stall_write());
            tracing::warn!(
                error = err,
                retry_in_ms = wait.as_millis() as u64,
                "database write failed; retrying"
            );
        } else {
            tracing::debug!(
                error = err,
                retry_in_ms = wait.as_millis() as u64,
                "database write failed again"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            reason = cancel.clone().cancelled() => return Err(Stop::Cancelled(reason)),
        }
    }
}

fn committed(claim: &Claim, result: &'static str) {
    metrics::counter!("sluice_commits_total", "task_type" => claim.task_type.clone(), "result" => result)
        .increment(1);
}

fn trap_name(cause: TrapCause) -> &'static str {
    match cause {
        TrapCause::OutOfMemory => "out-of-memory",
        TrapCause::StackOverflow => "stack-overflow",
        TrapCause::Interrupt => "interrupt",
        TrapCause::Unreachable => "unreachable",
        TrapCause::Other => "other",
    }
}
