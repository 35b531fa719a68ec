//! How long a failed unit waits before its next attempt.
//!
//! Exponential in the attempt number, capped, with up to 25 % jitter so units
//! that failed together do not all come back together. The jitter is derived
//! from the item id and attempt rather than a random generator: spread across
//! items, repeatable for one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

/// Attempts and backoff for one task type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before an item is dead-lettered (the first try counts).
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub backoff_base: Duration,
    /// The longest wait.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based) of item `id`.
    pub fn backoff(&self, id: i64, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        let base = self
            .backoff_base
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.backoff_max);
        let mut hasher = DefaultHasher::new();
        (id, attempts).hash(&mut hasher);
        let jitter_permille = hasher.finish() % 251; // 0 ..= 25 %
        base + base.mul_f64(jitter_permille as f64 / 1000.0)
    }

    pub(crate) fn backoff_ms(&self, id: i64, attempts: u32) -> i64 {
        i64::try_from(self.backoff(id, attempts).as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter_and_a_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        for (attempt, base_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let wait = policy.backoff(42, attempt).as_millis();
            assert!(
                wait >= base_ms && wait <= base_ms * 125 / 100,
                "attempt {attempt}: {wait} ms not within [{base_ms}, {base_ms}×1.25]"
            );
        }
        assert_eq!(policy.backoff(7, 3), policy.backoff(7, 3), "repeatable");
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|id| policy.backoff(id, 2)).collect();
        assert!(spread.len() > 10, "jitter spreads items apart");
    }
}
