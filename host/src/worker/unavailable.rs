//! Calls that failed because an LLM provider was down: their units go back to
//! the queue without counting an attempt.
//!
//! A provider's circuit breaker ([`crate::flow`]) answers `unavailable` to the
//! requests it refuses and marks the call's meter. If the call then fails (the
//! plugin turned the error into a failure, or timed out waiting), the failure
//! is the provider's, not the unit's: the unit is released as at shutdown
//! ([`super::commit::release`]), so an outage of any length costs no unit more
//! than the attempt that was running when the breaker opened. A plugin that
//! copes (a cached answer, a fallback) and succeeds commits as usual.

use crate::outbound::UsageMeter;
use crate::runtime::{CallOutcome, TrapCause};
use crate::store::Claim;

/// Whether the call's outcome is to be given back rather than committed.
pub(crate) fn gives_back(
    claim: &Claim,
    outcome: &Result<CallOutcome, String>,
    usage: &UsageMeter,
) -> bool {
    let failed = match outcome {
        Ok(CallOutcome::Ok(_)) => false,
        // Shutdown or a lost claim: the commit path knows what to do.
        Ok(CallOutcome::Trap {
            cause: TrapCause::Interrupt,
            ..
        }) => false,
        Ok(_) => true,
        // The call could not be made at all: nothing the provider did.
        Err(_) => false,
    };
    if !failed || !usage.unavailable() {
        return false;
    }
    metrics::counter!("sluice_outcomes_total", "task_type" => claim.task_type.clone(), "outcome" => "unavailable")
        .increment(1);
    tracing::warn!(
        "the call failed while its LLM provider was unavailable (circuit breaker open): \
         releasing the unit without counting an attempt"
    );
    true
}
