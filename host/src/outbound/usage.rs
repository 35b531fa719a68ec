//! Accounting of outbound calls: per call in a [`UsageMeter`], per task type
//! in Prometheus metrics.
//!
//! A meter rides along with one plugin call (in `CallRequest` and
//! `CallContext`); the worker reads it after the call, logs it in the unit's
//! span and stores it with the output. Metrics go through the `metrics` facade,
//! so they cost nothing until the process installs an exporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one plugin call spent on outbound requests. Cheap to clone: clones
/// share the same counters.
#[derive(Debug, Clone, Default)]
pub struct UsageMeter(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    llm_calls: AtomicU64,
    llm_retries: AtomicU64,
    llm_latency_us: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    llm_usage_unknown: AtomicU64,
    http_requests: AtomicU64,
    /// Set once a provider's circuit breaker refused a request of this call.
    unavailable: AtomicBool,
    /// Set once an LLM request of this call timed out.
    timed_out: AtomicBool,
}

/// The tokens one `llm.complete` call used, as far as the provider said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LlmTokens {
    /// The provider reported them.
    Reported { input: u32, output: u32 },
    /// A reply came, but the provider did not say how many tokens it used
    /// (some servers send no usage in streams).
    Unknown,
    /// The call failed: no reply to count.
    NoReply,
}

/// A reading of a [`UsageMeter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// `llm.complete` calls, whatever their outcome.
    pub llm_calls: u64,
    /// Attempts beyond the first, over all LLM calls (fallbacks included).
    pub llm_retries: u64,
    /// Wall time spent in `llm.complete`, retries and backoff included.
    pub llm_latency_ms: u64,
    /// Tokens of the replies whose provider reported them.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Replies whose provider did not report their tokens: they are missing
    /// from `input_tokens` and `output_tokens`, not counted as zero.
    #[serde(default)]
    pub llm_usage_unknown: u64,
    /// `http.send` calls, whatever their outcome.
    pub http_requests: u64,
}

impl UsageMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters as they are now.
    pub fn snapshot(&self) -> Usage {
        let c = &self.0;
        Usage {
            llm_calls: c.llm_calls.load(Ordering::Relaxed),
            llm_retries: c.llm_retries.load(Ordering::Relaxed),
            llm_latency_ms: c.llm_latency_us.load(Ordering::Relaxed) / 1000,
            input_tokens: c.input_tokens.load(Ordering::Relaxed),
            output_tokens: c.output_tokens.load(Ordering::Relaxed),
            llm_usage_unknown: c.llm_usage_unknown.load(Ordering::Relaxed),
            http_requests: c.http_requests.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn record_llm(&self, latency: Duration, retries: u32, tokens: LlmTokens) {
        let c = &self.0;
        c.llm_calls.fetch_add(1, Ordering::Relaxed);
        c.llm_retries.fetch_add(retries.into(), Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        c.llm_latency_us.fetch_add(micros, Ordering::Relaxed);
        match tokens {
            LlmTokens::Reported { input, output } => {
                c.input_tokens.fetch_add(input.into(), Ordering::Relaxed);
                c.output_tokens.fetch_add(output.into(), Ordering::Relaxed);
            }
            LlmTokens::Unknown => {
                c.llm_usage_unknown.fetch_add(1, Ordering::Relaxed);
            }
            LlmTokens::NoReply => {}
        }
    }

    /// A provider's circuit breaker refused a request of this call: if the
    /// call fails, its unit is given back without counting an attempt.
    pub(crate) fn record_unavailable(&self) {
        self.0.unavailable.store(true, Ordering::Relaxed);
    }

    /// Whether a provider was unavailable to this call.
    pub fn unavailable(&self) -> bool {
        self.0.unavailable.load(Ordering::Relaxed)
    }

    /// An LLM request of this call timed out: if the call fails, its unit
    /// becomes a suspect (see `worker::suspects`).
    pub(crate) fn record_timeout(&self) {
        self.0.timed_out.store(true, Ordering::Relaxed);
    }

    /// Whether an LLM request of this call timed out.
    pub fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::Relaxed)
    }

    pub(crate) fn record_http(&self) {
        self.0.http_requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Metric names, for exporters and dashboards (described, with the host's
/// other metrics, in [`crate::api::metrics::METRICS`]).
pub mod metric {
    /// Counter: `llm.complete` calls by `task_type`, `provider`, `outcome`.
    pub const LLM_REQUESTS: &str = "sluice_llm_requests_total";
    /// Histogram (seconds): `llm.complete` latency by `task_type`, `provider`.
    pub const LLM_DURATION: &str = "sluice_llm_request_duration_seconds";
    /// Counter: tokens by `task_type`, `provider`, `direction` (`input` or `output`).
    pub const LLM_TOKENS: &str = "sluice_llm_tokens_total";
    /// Counter: replies without a token count by `task_type`, `provider`.
    pub const LLM_USAGE_UNKNOWN: &str = "sluice_llm_usage_unknown_total";
    /// Counter: `http.send` calls by `task_type`, `outcome`.
    pub const HTTP_REQUESTS: &str = "sluice_http_requests_total";
}

/// Records one finished `llm.complete` call.
pub(crate) fn llm_metrics(
    task_type: &str,
    provider: &str,
    outcome: &'static str,
    latency: Duration,
    tokens: LlmTokens,
) {
    let (task_type, provider) = (task_type.to_owned(), provider.to_owned());
    metrics::counter!(metric::LLM_REQUESTS, "task_type" => task_type.clone(), "provider" => provider.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(metric::LLM_DURATION, "task_type" => task_type.clone(), "provider" => provider.clone())
        .record(latency.as_secs_f64());
    match tokens {
        LlmTokens::Reported { input, output } => {
            metrics::counter!(metric::LLM_TOKENS, "task_type" => task_type.clone(), "provider" => provider.clone(), "direction" => "input")
                .increment(input.into());
            metrics::counter!(metric::LLM_TOKENS, "task_type" => task_type, "provider" => provider, "direction" => "output")
                .increment(output.into());
        }
        LlmTokens::Unknown => {
            metrics::counter!(metric::LLM_USAGE_UNKNOWN, "task_type" => task_type, "provider" => provider)
                .increment(1);
        }
        LlmTokens::NoReply => {}
    }
}

/// Records one finished `http.send` call.
pub(crate) fn http_metrics(task_type: &str, outcome: &'static str) {
    metrics::counter!(metric::HTTP_REQUESTS, "task_type" => task_type.to_owned(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counters() {
        let meter = UsageMeter::new();
        let clone = meter.clone();
        clone.record_llm(
            Duration::from_millis(1500),
            2,
            LlmTokens::Reported {
                input: 10,
                output: 4,
            },
        );
        clone.record_llm(Duration::from_millis(500), 0, LlmTokens::NoReply);
        clone.record_llm(Duration::from_millis(1000), 0, LlmTokens::Unknown);
        meter.record_http();
        assert_eq!(
            meter.snapshot(),
            Usage {
                llm_calls: 3,
                llm_retries: 2,
                llm_latency_ms: 3000,
                input_tokens: 10,
                output_tokens: 4,
                llm_usage_unknown: 1,
                http_requests: 1,
            }
        );
    }
}
