//! One claimed work unit, from its first batch to its release.
//!
//! The unit task fetches the unit's next batch (or item, for item-mode
//! plugins), runs the plugin under the task type's deadline, commits the
//! outcome fenced by the claim ([`super::commit`]) and goes round again until
//! the unit has nothing ready, has used its fair share of time, or the host is
//! shutting down; then it releases the claim. While the host's writes fail it
//! starts no new call, holding the claim until they land again. Its slot is freed when it ends,
//! whatever happened, and the claim loop is woken to fill it.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::commit::{self, Next};
use super::running::{Predecessor, Registered, UnitCancel};
use super::{Phase, Shared, TaskPlan};
use super::{suspects, unavailable};
use crate::outbound::{Usage, UsageMeter};
use crate::runtime::CallRequest;
use crate::runtime::bindings::types::WorkItem;
use crate::store::{Claim, Item};

/// Why running calls are cancelled at the end of the grace period.
pub(crate) const SHUTDOWN_REASON: &str = "the host is shutting down";

pub(crate) async fn run(
    shared: Arc<Shared>,
    claim: Claim,
    cancel: UnitCancel,
    registered: Registered,
    predecessor: Option<Predecessor>,
    permit: OwnedSemaphorePermit,
) {
    if let Some(predecessor) = predecessor {
        // An older task of ours on this unit lost its claim and was
        // cancelled; it ends within moments. Never run a unit twice at once.
        predecessor.ended().await;
    }
    let started = Instant::now();
    match shared.plans.get(&claim.task_type) {
        Some(plan) => {
            let span = tracing::info_span!(
                "unit",
                task_type = %claim.task_type,
                key = %claim.work_unit_key,
                claim = claim.token,
                plugin = %plan.plugin.name,
                plugin_version = %plan.plugin.version,
            );
            process(&shared, &claim, plan, &cancel, started)
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
    // Leave the running set and free the slot before waking the claim loop,
    // so it sees the slot free.
    drop(registered);
    drop(permit);
    shared.wake.notify_one();
}

async fn process(
    shared: &Shared,
    claim: &Claim,
    plan: &TaskPlan,
    cancel: &UnitCancel,
    started: Instant,
) {
    loop {
        if !shared.health.can_write() && !writes_resume(shared, cancel).await {
            // The claim was lost while waiting; whoever holds the unit now
            // (or the reaper) has it.
            return;
        }
        if shared.phase() != Phase::Running || started.elapsed() >= shared.config.fair_share {
            commit::release(shared, claim).await;
            return;
        }
        let items = match commit::persist(shared, &cancel.write, || {
            shared.store.fetch_batch(claim, plan.batch)
        })
        .await
        {
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
            duration_ms: duration.as_millis() as u64,
            usage: spent,
        };
        suspects::record(shared, claim, &outcome, &usage).await;
        if unavailable::gives_back(claim, &outcome, &usage) {
            commit::release(shared, claim).await;
            return;
        }
        let next = commit::outcome(shared, claim, plan, &ids, outcome, &record, &cancel.write)
            .instrument(call_span)
            .await;
        if next == Next::Stop {
            return;
        }
    }
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
