//! What a failed call does to its unit: the one rule both backends apply.
//!
//! A failure of a single item is that item's: it is charged an attempt, then
//! backed off, or dead-lettered once it is out of attempts (at once, for a
//! permanent error). A failure of a batch of several items says only that one
//! of them (or their combination) fails, so nobody is charged: the unit
//! *narrows* instead. Its next batches hold at most half as many items, up to
//! the last item of the failed batch; a narrowed batch that fails narrows
//! again, until the failing item is alone and only it spends attempts. Items
//! before and after it complete, in order. Once the unit is past the failed
//! batch's last item, batches are full-sized again.

use super::{FailResult, Failure, RetryPolicy};

/// An item in flight when the call failed: its id and failed attempts so far.
pub(crate) type InFlight = (i64, u32);

/// What to write for a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Several items failed together: the next batches hold at most `batch`
    /// items, none past `through`; nobody is charged. The unit waits
    /// `delay_ms` (the first attempt's backoff), so a failing provider is not
    /// hammered while the unit narrows.
    Narrow {
        batch: u32,
        through: i64,
        delay_ms: i64,
    },
    /// One item failed alone: it is charged an attempt, and dead-lettered
    /// when `dead`, else the unit waits `delay_ms`.
    Charge { id: i64, dead: bool, delay_ms: i64 },
    /// Nothing was in flight (the claim ended before fetching): the unit is
    /// simply given back.
    Release,
}

impl Decision {
    /// How long the unit waits once released, and the narrowing to record on
    /// it (`batch`, `through`), if any.
    pub(crate) fn release(&self) -> (i64, Option<(u32, i64)>) {
        match *self {
            Decision::Narrow {
                batch,
                through,
                delay_ms,
            } => (delay_ms, Some((batch, through))),
            Decision::Charge { delay_ms, .. } => (delay_ms, None),
            Decision::Release => (0, None),
        }
    }

    /// What [`super::Store::fail`] reports, once the unit is available again
    /// at `available_at_ms`.
    pub(crate) fn result(&self, available_at_ms: i64) -> FailResult {
        match *self {
            Decision::Charge { id, dead: true, .. } => FailResult::DeadLettered(id),
            Decision::Narrow { batch, .. } => FailResult::Narrowed {
                batch,
                retry_at_ms: available_at_ms,
            },
            _ => FailResult::RetryAt(available_at_ms),
        }
    }
}

/// The decision for a call that failed with `failure` on `in_flight`
/// (id order) under `policy`.
pub(crate) fn decide(in_flight: &[InFlight], failure: &Failure, policy: &RetryPolicy) -> Decision {
    match in_flight {
        [] => Decision::Release,
        [(id, attempts)] => {
            let attempts = attempts + 1;
            let dead = matches!(failure, Failure::Permanent(_)) || attempts >= policy.max_attempts;
            Decision::Charge {
                id: *id,
                dead,
                delay_ms: if dead {
                    0
                } else {
                    policy.backoff_ms(*id, attempts)
                },
            }
        }
        [(first, _), .., (last, _)] => Decision::Narrow {
            batch: u32::try_from(in_flight.len().div_ceil(2)).unwrap_or(u32::MAX),
            through: *last,
            delay_ms: policy.backoff_ms(*first, 1),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_batch_narrows_by_half_without_charging_anyone() {
        let retry = Failure::Retryable("boom".into());
        let six: Vec<InFlight> = (1..=6).map(|id| (id, 0)).collect();
        assert!(matches!(
            decide(&six, &retry, &policy(2)),
            Decision::Narrow {
                batch: 3,
                through: 6,
                ..
            }
        ));
        assert!(matches!(
            decide(&six[..3], &Failure::Permanent("bad".into()), &policy(2)),
            Decision::Narrow {
                batch: 2,
                through: 3,
                ..
            }
        ));
    }

    #[test]
    fn a_single_item_is_charged_then_dead_lettered() {
        let retry = Failure::Retryable("boom".into());
        assert!(matches!(
            decide(&[(3, 0)], &retry, &policy(2)),
            Decision::Charge { id: 3, dead: false, delay_ms } if delay_ms >= 100
        ));
        assert_eq!(
            decide(&[(3, 1)], &retry, &policy(2)),
            Decision::Charge {
                id: 3,
                dead: true,
                delay_ms: 0
            }
        );
        assert_eq!(
            decide(&[(3, 0)], &Failure::Permanent("bad".into()), &policy(5)),
            Decision::Charge {
                id: 3,
                dead: true,
                delay_ms: 0
            }
        );
        assert_eq!(decide(&[], &retry, &policy(2)), Decision::Release);
    }
}
