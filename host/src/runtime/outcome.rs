//! The one classified result of every plugin call.
//!
//! Whatever a guest does (returns, errors, spins, allocates without end, recurses,
//! panics, prints a novel, or waits forever in an import) the call ends in exactly
//! one [`CallOutcome`]. The worker decides retries and dead letters from it, and
//! `sluice exec` prints it as JSON.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use super::bindings::types;
use super::json_depth::deeper_than;
use super::limits::{CallLimits, ENQUEUE_ITEM_OVERHEAD_BYTES};
use super::sandbox::HostState;
use crate::imports::log::truncate;

/// Longest task-error or trap message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// How a call ended. Serialized as `{"outcome": "<kind>", ...}`.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum CallOutcome {
    /// The plugin returned an outcome, and it passed validation.
    Ok(Output),
    /// The plugin returned `task-error.retryable`.
    Retryable { message: String },
    /// The plugin returned `task-error.permanent`.
    Permanent { message: String },
    /// The call was still running at its deadline and was stopped.
    Timeout { timeout_ms: u64 },
    /// The guest trapped; the store was discarded.
    Trap { cause: TrapCause, message: String },
    /// The plugin returned something the host refuses to commit.
    InvalidOutput { reason: String },
}

impl CallOutcome {
    /// The outcome's kind, as serialized (`ok`, `retryable`, `timeout`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ok(_) => "ok",
            Self::Retryable { .. } => "retryable",
            Self::Permanent { .. } => "permanent",
            Self::Timeout { .. } => "timeout",
            Self::Trap { .. } => "trap",
            Self::InvalidOutput { .. } => "invalid-output",
        }
    }
}

/// Why a guest trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapCause {
    /// The guest needed more linear memory than its limit allows.
    OutOfMemory,
    /// The guest exhausted its wasm stack (usually unbounded recursion).
    StackOverflow,
    /// The host stopped the call before its deadline (a lost claim, a shutdown).
    Interrupt,
    /// The guest hit `unreachable` (a Rust panic or abort).
    Unreachable,
    /// Anything else: out-of-bounds access, a failed host call, `exit`, ...
    Other,
}

/// A validated successful outcome: JSON documents only, within the size cap.
#[derive(Debug, Serialize)]
pub struct Output {
    pub output: Option<Box<RawValue>>,
    pub enqueue: Vec<NewItem>,
}

/// A follow-up item the plugin asked to enqueue.
#[derive(Debug, Serialize)]
pub struct NewItem {
    pub task_type: String,
    pub work_unit_key: String,
    pub payload: Box<RawValue>,
}

pub(crate) fn from_task_error(error: types::TaskError) -> CallOutcome {
    match error {
        types::TaskError::Retryable(m) => CallOutcome::Retryable {
            message: truncate(&m, MAX_MESSAGE_BYTES).to_string(),
        },
        types::TaskError::Permanent(m) => CallOutcome::Permanent {
            message: truncate(&m, MAX_MESSAGE_BYTES).to_string(),
        },
    }
}

/// Classifies a failed call from its error and what the store saw.
/// `timeout` is the call's budget, reported when the guest ran into its deadline.
pub(crate) fn from_trap(
    error: &wasmtime::Error,
    state: &HostState,
    timeout: Duration,
) -> CallOutcome {
    let trap = error.downcast_ref::<wasmtime::Trap>().copied();
    if trap == Some(wasmtime::Trap::Interrupt) && state.deadline_reached {
        return timed_out(timeout);
    }
    // wasmtime's error type for this is private; its message is the stable part.
    if trap.is_none()
        && format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted")
    {
        return invalid(format!(
            "the guest passed the host more than {} bytes in one call (the output cap is {} bytes)",
            state.hostcall_fuel, state.max_output_bytes
        ));
    }
    let cause = match trap {
        Some(wasmtime::Trap::StackOverflow) => TrapCause::StackOverflow,
        Some(wasmtime::Trap::Interrupt) => TrapCause::Interrupt,
        // Rust guests abort (`unreachable`) when an allocation fails.
        Some(_) if state.limiter.memory_refused => TrapCause::OutOfMemory,
        Some(wasmtime::Trap::UnreachableCodeReached) => TrapCause::Unreachable,
        _ if state.limiter.memory_refused => TrapCause::OutOfMemory,
        _ => TrapCause::Other,
    };
    let mut message = match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) => format!("guest called exit({})", exit.0),
        None => match trap {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        },
    };
    if cause == TrapCause::OutOfMemory {
        message.push_str(&format!(
            "; the guest asked for more than its memory limit of {} MiB",
            state.limiter.memory_limit_bytes() >> 20
        ));
    }
    let stderr = state.stderr.tail();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(&stderr);
    }
    CallOutcome::Trap {
        cause,
        message: truncate(&message, MAX_MESSAGE_BYTES).to_string(),
    }
}

pub(crate) fn interrupted(reason: &str) -> CallOutcome {
    CallOutcome::Trap {
        cause: TrapCause::Interrupt,
        message: format!("interrupted by the host: {reason}"),
    }
}

pub(crate) fn timed_out(timeout: Duration) -> CallOutcome {
    CallOutcome::Timeout {
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Who returned an outcome: the task type called and its plugin's task types,
/// for the follow-up policy.
pub(crate) struct Caller<'a> {
    pub(crate) task_type: &'a str,
    pub(crate) plugin_task_types: &'a [String],
}

/// Checks a returned outcome: JSON where JSON is required, no deeper than
/// `max_output_depth`, non-empty keys, at most `max_enqueue_items` follow-ups,
/// each for a task type the policy allows, and the total size within the cap.
pub(crate) fn validate(
    outcome: types::Outcome,
    limits: &CallLimits,
    caller: &Caller<'_>,
) -> CallOutcome {
    let max_bytes = limits.max_output_bytes;
    if outcome.enqueue.len() > limits.max_enqueue_items {
        return invalid(format!(
            "the outcome enqueues {} items, over the limit of {}",
            outcome.enqueue.len(),
            limits.max_enqueue_items
        ));
    }
    let size = outcome.output.as_ref().map_or(0, String::len)
        + outcome
            .enqueue
            .iter()
            .map(|i| {
                i.payload.len()
                    + i.task_type.len()
                    + i.work_unit_key.len()
                    + ENQUEUE_ITEM_OVERHEAD_BYTES
            })
            .sum::<usize>();
    if size > max_bytes {
        return invalid(format!(
            "the outcome is {size} bytes, over the cap of {max_bytes} bytes"
        ));
    }
    let output = match outcome.output.map(RawValue::from_string).transpose() {
        Ok(output) => output,
        Err(err) => return invalid(format!("`output` is not valid JSON: {err}")),
    };
    if let Some(output) = &output
        && deeper_than(output.get(), limits.max_output_depth)
    {
        return too_deep("`output`", limits.max_output_depth);
    }
    let mut enqueue = Vec::with_capacity(outcome.enqueue.len());
    for (index, item) in outcome.enqueue.into_iter().enumerate() {
        if item.task_type.trim().is_empty() || item.work_unit_key.trim().is_empty() {
            return invalid(format!(
                "`enqueue[{index}]` has an empty task-type or work-unit-key"
            ));
        }
        if let Some(refusal) =
            limits
                .may_enqueue
                .refusal(caller.task_type, caller.plugin_task_types, &item.task_type)
        {
            return invalid(format!("`enqueue[{index}]` is refused: {refusal}"));
        }
        let payload = match RawValue::from_string(item.payload) {
            Ok(payload) => payload,
            Err(err) => {
                return invalid(format!(
                    "`enqueue[{index}].payload` is not valid JSON: {err}"
                ));
            }
        };
        if deeper_than(payload.get(), limits.max_output_depth) {
            return too_deep(
                &format!("`enqueue[{index}].payload`"),
                limits.max_output_depth,
            );
        }
        enqueue.push(NewItem {
            task_type: item.task_type,
            work_unit_key: item.work_unit_key,
            payload,
        });
    }
    CallOutcome::Ok(Output { output, enqueue })
}

fn too_deep(what: &str, max: usize) -> CallOutcome {
    invalid(format!(
        "{what} nests arrays and objects more than {max} levels deep, over the limit \
         ([limits] max_output_depth); flatten it, or raise the limit (at most {})",
        super::json_depth::MAX_DEPTH_ACCEPTED
    ))
}

fn invalid(reason: String) -> CallOutcome {
    CallOutcome::InvalidOutput { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(output: Option<&str>, enqueue: Vec<(&str, &str, &str)>) -> types::Outcome {
        types::Outcome {
            output: output.map(str::to_string),
            enqueue: enqueue
                .into_iter()
                .map(|(t, k, p)| types::NewItem {
                    task_type: t.into(),
                    work_unit_key: k.into(),
                    payload: p.into(),
                })
                .collect(),
        }
    }

    fn cap(bytes: usize) -> CallLimits {
        CallLimits {
            max_output_bytes: bytes,
            may_enqueue: crate::runtime::EnqueuePolicy::Any,
            ..CallLimits::default()
        }
    }

    const CALLER: Caller<'static> = Caller {
        task_type: "t",
        plugin_task_types: &[],
    };

    fn validate(outcome: types::Outcome, limits: &CallLimits) -> CallOutcome {
        super::validate(outcome, limits, &CALLER)
    }

    fn reason(result: CallOutcome) -> String {
        match result {
            CallOutcome::InvalidOutput { reason } => reason,
            other => panic!("expected invalid-output, got {other:?}"),
        }
    }

    #[test]
    fn valid_outcomes_pass_through_unchanged() {
        let CallOutcome::Ok(out) = validate(
            outcome(
                Some(r#"{"a": [1, 2]}"#),
                vec![("summary", "k1", r#"{"x":1}"#)],
            ),
            &cap(1024),
        ) else {
            panic!("should be valid");
        };
        assert_eq!(out.output.unwrap().get(), r#"{"a": [1, 2]}"#);
        assert_eq!(out.enqueue[0].payload.get(), r#"{"x":1}"#);
        assert!(matches!(
            validate(outcome(None, vec![]), &cap(0)),
            CallOutcome::Ok(_)
        ));
    }

    #[test]
    fn enqueued_items_need_json_payloads_and_keys() {
        let r = reason(validate(
            outcome(None, vec![("t", "k", "{oops")]),
            &cap(1024),
        ));
        assert!(r.contains("enqueue[0].payload"), "{r}");
        let r = reason(validate(
            outcome(None, vec![("t", "k", "1"), ("t", " ", "1")]),
            &cap(1024),
        ));
        assert!(
            r.contains("enqueue[1]") && r.contains("work-unit-key"),
            "{r}"
        );
        let r = reason(validate(outcome(None, vec![("", "k", "1")]), &cap(1024)));
        assert!(r.contains("task-type"), "{r}");
    }

    #[test]
    fn the_size_cap_counts_output_and_enqueued_payloads() {
        let big = format!("\"{}\"", "x".repeat(600));
        assert!(matches!(
            validate(outcome(Some(&big), vec![]), &cap(1024)),
            CallOutcome::Ok(_)
        ));
        let r = reason(validate(
            outcome(Some(&big), vec![("t", "k", &big)]),
            &cap(1024),
        ));
        assert!(r.contains("over the cap of 1024 bytes"), "{r}");
    }

    #[test]
    fn deep_outputs_and_payloads_are_refused_at_the_depth_limit() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let limit = CallLimits::default().max_output_depth;
        assert!(matches!(
            validate(outcome(Some(&nested(limit)), vec![]), &cap(1 << 20)),
            CallOutcome::Ok(_)
        ));
        let r = reason(validate(
            outcome(Some(&nested(100_000)), vec![]),
            &cap(1 << 20),
        ));
        assert!(
            r.contains("`output` nests") && r.contains("max_output_depth"),
            "{r}"
        );
        let deep = nested(limit + 1);
        let r = reason(validate(
            outcome(None, vec![("t", "k", &deep)]),
            &cap(1 << 20),
        ));
        assert!(r.contains("`enqueue[0].payload` nests"), "{r}");
    }

    #[test]
    fn follow_ups_for_task_types_the_policy_refuses_are_invalid_output() {
        let limits = CallLimits::default();
        let own = ["t".to_string(), "u".to_string()];
        let caller = Caller {
            task_type: "t",
            plugin_task_types: &own,
        };
        let allowed = outcome(None, vec![("u", "k", "1")]);
        assert!(matches!(
            super::validate(allowed, &limits, &caller),
            CallOutcome::Ok(_)
        ));
        let refused = outcome(Some("1"), vec![("u", "k", "1"), ("webhook", "k", "1")]);
        let r = reason(super::validate(refused, &limits, &caller));
        assert!(r.starts_with("`enqueue[1]` is refused: task type `t` may not enqueue items for task type `webhook`"), "{r}");
    }

    #[test]
    fn long_task_error_messages_are_cut_on_a_char_boundary() {
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        let CallOutcome::Retryable { message } =
            from_task_error(types::TaskError::Retryable(message))
        else {
            panic!("retryable stays retryable");
        };
        assert!(message.len() <= MAX_MESSAGE_BYTES && message.chars().all(|c| c == 'é'));
    }
}
