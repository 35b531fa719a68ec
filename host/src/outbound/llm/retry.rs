//! When to try an LLM request again, and how long to wait first.
//!
//! Connection failures, 429 and 5xx answers are retried with exponential
//! backoff and jitter, up to `[llm.retry].max_retries`. A provider's
//! `Retry-After` (seconds or an HTTP date, or OpenAI's `retry-after-ms`)
//! replaces the backoff. The
//! caller never sleeps past the unit's deadline: a wait that would end after it
//! returns the last error at once.

use std::time::{Duration, SystemTime};

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

/// The longest wait a provider may ask for; longer asks are capped to it.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// How long the provider asked to wait: `retry-after-ms` (milliseconds), or
/// `Retry-After` as seconds or as an HTTP date (a date already past means
/// "now").
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] as seen at `now`.
fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| Some(headers.get(name)?.to_str().ok()?.trim());
    // A number of `unit`s, capped before it becomes a `Duration` (which
    // cannot hold 1e30 seconds).
    let number = |text: &str, unit: f64| -> Option<Duration> {
        let value: f64 = text.parse().ok()?;
        (value.is_finite() && value >= 0.0)
            .then(|| Duration::from_secs_f64((value * unit).min(LONGEST_WAIT.as_secs_f64())))
    };
    if let Some(wait) = text("retry-after-ms").and_then(|ms| number(ms, 0.001)) {
        return Some(wait);
    }
    let value = text("retry-after")?;
    if let Some(wait) = number(value, 1.0) {
        return Some(wait);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(LONGEST_WAIT))
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
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let date = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let before = date - Duration::from_secs(90);
        assert_eq!(
            retry_after_at(&headers, before),
            Some(Duration::from_secs(90))
        );
        // A date in the past: retry now, not never.
        let after = date + Duration::from_secs(5);
        assert_eq!(retry_after_at(&headers, after), Some(Duration::ZERO));
        let long_before = date - Duration::from_secs(30 * 86_400);
        assert_eq!(retry_after_at(&headers, long_before), Some(LONGEST_WAIT));
    }
}
