//! When to try an LLM request again, and how long to wait first.
//!
//! Connection failures, 429 and 5xx answers are retried with exponential
//! backoff and jitter, up to `[llm.retry].max_retries`. A provider's
//! `Retry-After` (or OpenAI's `retry-after-ms`) replaces the backoff. The
//! caller never sleeps past the unit's deadline: a wait that would end after it
//! returns the last error at once.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::outbound::config::RetryConfig;

/// The wait before retry number `retry` (0 for the first retry).
pub(super) fn backoff(config: &RetryConfig, retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after;
    }
    let exponential = config
        .base_backoff
        .saturating_mul(1u32 << retry.min(20))
        .min(config.max_backoff);
    // Equal jitter: half the backoff for sure, the other half at random, so
    // many callers that failed together do not come back together.
    let half = exponential / 2;
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=spread))
}

/// How long the provider asked to wait: `retry-after-ms` (milliseconds) or
/// `Retry-After` (seconds; HTTP dates are ignored).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0));
    }
    number("retry-after").map(|secs| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn an_absurd_retry_after_is_capped_at_a_day() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after-ms", HeaderValue::from_static("1e30"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let config = RetryConfig {
            max_retries: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for retry in 0..10 {
            let full = (Duration::from_millis(100) * 2u32.pow(retry)).min(Duration::from_secs(1));
            let wait = backoff(&config, retry, None);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
        }
        assert_eq!(
            backoff(&config, 3, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn retry_after_reads_both_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.clear();
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
