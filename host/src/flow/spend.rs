//! Spend accounting: what this host has spent with each provider, per task
//! type, since it started (calls, requests, tokens, failures by kind, time
//! waiting for budget).
//!
//! Metrics carry the same figures for Prometheus; this ledger exists so that
//! the host can publish them to the database with its heartbeat, where
//! `sluice status` reads them without reaching the host.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one task type spent with one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SpendReport {
    pub task_type: String,
    pub provider: String,
    /// `llm.complete` calls, whatever their outcome.
    pub calls: u64,
    /// HTTP requests sent to the provider (retries and fallbacks included).
    pub requests: u64,
    /// Tokens the provider reported using.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Failed calls by kind (`timeout`, `rate_limited`, `provider_error`,
    /// `unavailable`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Time calls spent waiting for the provider's budget, in milliseconds.
    pub budget_wait_ms: u64,
}

impl SpendReport {
    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &SpendReport) {
        self.calls += other.calls;
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        for (kind, n) in &other.failures {
            *self.failures.entry(kind.clone()).or_default() += n;
        }
        self.budget_wait_ms += other.budget_wait_ms;
    }
}

/// This host's spend, by (task type, provider).
#[derive(Debug, Default)]
pub struct Ledger(Mutex<BTreeMap<(String, String), SpendReport>>);

impl Ledger {
    fn with(&self, task_type: &str, provider: &str, change: impl FnOnce(&mut SpendReport)) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (task_type.to_owned(), provider.to_owned());
        let entry = entries.entry(key).or_insert_with(|| SpendReport {
            task_type: task_type.to_owned(),
            provider: provider.to_owned(),
            ..SpendReport::default()
        });
        change(entry);
    }

    /// One finished `llm.complete` call: `failure` is its outcome's kind if
    /// it failed; `tokens` what the provider reported, if it did.
    pub(crate) fn call(
        &self,
        task_type: &str,
        provider: &str,
        failure: Option<&str>,
        tokens: Option<(u32, u32)>,
    ) {
        self.with(task_type, provider, |entry| {
            entry.calls += 1;
            if let Some((input, output)) = tokens {
                entry.input_tokens += u64::from(input);
                entry.output_tokens += u64::from(output);
            }
            if let Some(kind) = failure {
                *entry.failures.entry(kind.to_owned()).or_default() += 1;
            }
        });
    }

    /// One HTTP request sent to the provider.
    pub(crate) fn request(&self, task_type: &str, provider: &str) {
        self.with(task_type, provider, |entry| entry.requests += 1);
    }

    /// A call waited `waited` for the provider's budget.
    pub(crate) fn waited(&self, task_type: &str, provider: &str, waited: Duration) {
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.with(task_type, provider, |entry| entry.budget_wait_ms += ms);
    }

    /// Every entry, by task type then provider.
    pub fn report(&self) -> Vec<SpendReport> {
        let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_requests_tokens_failures_and_waits_add_up_per_task_type_and_provider() {
        let ledger = Ledger::default();
        ledger.request("a", "p");
        ledger.request("a", "p");
        ledger.call("a", "p", None, Some((10, 3)));
        ledger.call("a", "p", Some("timeout"), None);
        ledger.waited("a", "p", Duration::from_millis(1500));
        ledger.call("b", "p", Some("unavailable"), None);
        let report = ledger.report();
        assert_eq!(report.len(), 2);
        assert_eq!(
            report[0],
            SpendReport {
                task_type: "a".into(),
                provider: "p".into(),
                calls: 2,
                requests: 2,
                input_tokens: 10,
                output_tokens: 3,
                failures: [("timeout".to_owned(), 1)].into(),
                budget_wait_ms: 1500,
            }
        );
        let mut total = report[0].clone();
        total.add(&report[1]);
        assert_eq!(total.calls, 3);
        assert_eq!(total.failures.len(), 2);
    }
}
