//! Prometheus metrics, all prefixed `sluice_`.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` facade; this module installs the Prometheus recorder once per
//! process, describes every metric in [`METRICS`] (so each one has `# HELP`
//! and `# TYPE`), sets `sluice_build_info`, and, at each scrape, refreshes the
//! queue gauges from the store so `/metrics` agrees with `sluice status`.
//!
//! [`METRICS`] is the catalogue: a metric recorded anywhere in the host is
//! listed there, and the README's metrics table lists exactly those (tests
//! hold both in step).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::outbound::usage::metric as outbound;
use crate::store::Store;

/// What a metric is, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric: its name, kind and `# HELP` text (which names its
/// labels).
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn metric(name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

/// Every metric the host exports.
pub const METRICS: &[Metric] = &[
    metric(
        "sluice_build_info",
        Kind::Gauge,
        "Always 1; labels: version, commit and wasmtime of this binary",
    ),
    metric(
        "sluice_queue_depth",
        Kind::Gauge,
        "Items by task_type and state (pending, done, dead), read from the store at each scrape",
    ),
    metric(
        "sluice_queue_oldest_age_seconds",
        Kind::Gauge,
        "Age of the oldest item by task_type and state, read from the store at each scrape",
    ),
    metric(
        "sluice_claimed_units",
        Kind::Gauge,
        "Units claimed by any host, read from the store at each scrape",
    ),
    metric(
        "sluice_units_in_flight",
        Kind::Gauge,
        "Units this process is working on",
    ),
    metric(
        "sluice_unit_duration_seconds",
        Kind::Histogram,
        "Time a unit held its slot, from claim to release, by task_type",
    ),
    metric(
        "sluice_call_duration_seconds",
        Kind::Histogram,
        "Duration of one plugin call (a batch or an item), host calls included, by task_type",
    ),
    metric(
        "sluice_outcomes_total",
        Kind::Counter,
        "Plugin calls by task_type and outcome (ok, retryable, permanent, timeout, trap, invalid-output, call-error, unavailable: failed while its LLM provider's breaker was open, released without an attempt)",
    ),
    metric(
        "sluice_commits_total",
        Kind::Counter,
        "Outcomes written to the store by task_type and result (ok, retry, dead, narrowed, lost-claim)",
    ),
    metric(
        "sluice_group_commit_size",
        Kind::Histogram,
        "Commits (one per unit, each of one or more calls) written together in one transaction",
    ),
    metric(
        "sluice_claims_total",
        Kind::Counter,
        "Units claimed by this process",
    ),
    metric(
        "sluice_reaped_claims_total",
        Kind::Counter,
        "Claims of hosts that stopped heartbeating, expired by this process's reaper",
    ),
    metric(
        "sluice_lost_claims_total",
        Kind::Counter,
        "Claims this process found taken away (reaped or taken over) while it ran them",
    ),
    metric(
        "sluice_pruned_items_total",
        Kind::Counter,
        "Done items deleted by the reaper past retain_done",
    ),
    metric(
        "sluice_pruned_outputs_total",
        Kind::Counter,
        "Outputs deleted by the reaper past retain_outputs",
    ),
    metric(
        "sluice_poll_ticks_total",
        Kind::Counter,
        "Rounds of the claim loop",
    ),
    metric(
        "sluice_heartbeat_ticks_total",
        Kind::Counter,
        "Rounds of the heartbeat",
    ),
    metric(
        "sluice_reaper_ticks_total",
        Kind::Counter,
        "Rounds of the reaper",
    ),
    metric(
        "sluice_last_poll_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the claim loop's last round",
    ),
    metric(
        "sluice_database_up",
        Kind::Gauge,
        "1 while the database takes this host's writes, 0 while it fails",
    ),
    metric(
        "sluice_stalled_writes",
        Kind::Gauge,
        "Finished outcomes waiting for the database",
    ),
    metric(
        "sluice_unserved_task_type",
        Kind::Gauge,
        "1 while items of task_type wait and no running host serves it (checked every minute)",
    ),
    metric(
        outbound::LLM_REQUESTS,
        Kind::Counter,
        "LLM calls made by plugins, by task_type, provider and outcome",
    ),
    metric(
        outbound::LLM_DURATION,
        Kind::Histogram,
        "Latency of LLM calls made by plugins, retries included, by task_type and provider",
    ),
    metric(
        outbound::LLM_TOKENS,
        Kind::Counter,
        "LLM tokens used by plugins as providers reported them, by task_type, provider and direction (input, output)",
    ),
    metric(
        outbound::LLM_USAGE_UNKNOWN,
        Kind::Counter,
        "LLM replies whose provider reported no token usage (not in sluice_llm_tokens_total), by task_type and provider",
    ),
    metric(
        "sluice_llm_budget_wait_seconds",
        Kind::Histogram,
        "Time LLM requests waited for their provider's budget (concurrency, requests and tokens per minute, Retry-After), by task_type and provider",
    ),
    metric(
        "sluice_llm_breaker_state",
        Kind::Gauge,
        "An LLM provider's circuit breaker by provider: 0 closed, 1 half-open, 2 open (its task types are not claimed)",
    ),
    metric(
        "sluice_llm_breaker_transitions_total",
        Kind::Counter,
        "Circuit breaker transitions by provider and the state entered (open, half-open, closed)",
    ),
    metric(
        outbound::HTTP_REQUESTS,
        Kind::Counter,
        "HTTP requests made by plugins, by task_type and outcome",
    ),
];

/// The labels of `sluice_build_info`: this binary's version, the commit it
/// was built from, and the wasmtime it embeds (`unknown` when the build could
/// not tell; see `build.rs`).
pub fn build_info() -> [(&'static str, &'static str); 3] {
    [
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", env!("SLUICE_BUILD_COMMIT")),
        ("wasmtime", env!("SLUICE_BUILD_WASMTIME")),
    ]
}

/// Describes every metric to the installed recorder and sets `sluice_build_info`.
fn describe() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
    metrics::gauge!("sluice_build_info", &build_info()).set(1.0);
}

/// Buckets for every `*_duration_seconds` histogram: 5 ms to 20 min.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1200.0,
];

/// Buckets for `sluice_group_commit_size`: up to the largest group.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How long a scrape waits for the store's status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as this process's `metrics` recorder, once.
/// Returns false if another recorder was installed first.
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full("sluice_group_commit_size".into()),
                    GROUP_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(Matcher::Suffix("wait_seconds".into()), DURATION_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .is_some()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(handle)) => handle.render(),
        _ => String::new(),
    }
}

pub(crate) fn set_units_in_flight(units: usize) {
    metrics::gauge!("sluice_units_in_flight").set(units as f64);
}

/// The queue gauges, and which label sets were reported before so a state
/// that emptied is reported as 0 rather than left at its last value.
#[derive(Clone, Default)]
pub(crate) struct QueueGauges {
    seen: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl QueueGauges {
    /// Sets the queue gauges from the store; keeps the last values if the
    /// store does not answer in time.
    pub(crate) async fn refresh(&self, store: &dyn Store) {
        let status = match tokio::time::timeout(STATUS_TIMEOUT, store.status()).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot read the queue for /metrics");
                return;
            }
            Err(_) => {
                tracing::warn!("the queue status did not answer in time for /metrics");
                return;
            }
        };
        let mut seen = self.seen.lock().expect("queue gauges lock");
        let mut current = BTreeSet::new();
        for depth in &status.depths {
            let labels = [
                ("task_type", depth.task_type.clone()),
                ("state", depth.state.clone()),
            ];
            metrics::gauge!("sluice_queue_depth", &labels).set(depth.count as f64);
            let age = depth
                .oldest_created_at_ms
                .map(|oldest| (status.now_ms - oldest).max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!("sluice_queue_oldest_age_seconds", &labels).set(age);
            current.insert((depth.task_type.clone(), depth.state.clone()));
        }
        for (task_type, state) in seen.difference(&current) {
            let labels = [("task_type", task_type.clone()), ("state", state.clone())];
            metrics::gauge!("sluice_queue_depth", &labels).set(0.0);
            metrics::gauge!("sluice_queue_oldest_age_seconds", &labels).set(0.0);
        }
        seen.extend(current);
        metrics::gauge!("sluice_claimed_units").set(status.claimed_units as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::METRICS;

    /// The `.rs` files under `dir`, recursively.
    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// Names of the `metric::X` constants in `outbound/usage.rs`.
    fn outbound_names(src: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(src.join("outbound/usage.rs")).unwrap();
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|rest| {
                let (name, value) = rest.split_once(": &str = ")?;
                Some((
                    name.to_owned(),
                    value.trim_end_matches(';').trim_matches('"').to_owned(),
                ))
            })
            .collect()
    }

    #[test]
    fn every_metric_the_host_records_is_in_the_catalogue() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let constants = outbound_names(&src);
        let catalogue: BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut recorded = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests record nothing an exporter sees (and this one names
            // the macros in strings).
            let text = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in text.match_indices(macro_name) {
                    if text[..at].ends_with("describe_") {
                        continue;
                    }
                    let args = text[at + macro_name.len()..].trim_start();
                    let first = args.split([',', ')']).next().unwrap_or_default().trim();
                    let name = match first.strip_prefix("metric::") {
                        Some(constant) => constants
                            .iter()
                            .find(|(c, _)| c == constant)
                            .map(|(_, name)| name.clone()),
                        None => first
                            .strip_prefix('"')
                            .and_then(|n| n.strip_suffix('"'))
                            .map(str::to_owned),
                    };
                    let name = name.unwrap_or_else(|| {
                        panic!(
                            "{}: `{macro_name}{first}`: name metrics with a literal or a \
                             usage::metric constant, so this test can find them",
                            file.display()
                        )
                    });
                    recorded.insert(name);
                }
            }
        }
        assert!(recorded.len() > 20, "found only {recorded:?}");
        let missing: Vec<&String> = recorded
            .iter()
            .filter(|n| !catalogue.contains(n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "recorded but not in METRICS: {missing:?}"
        );
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = BTreeSet::new();
        for m in METRICS {
            assert!(m.name.starts_with("sluice_"), "{}", m.name);
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(!m.help.is_empty(), "{} has no help", m.name);
        }
    }
}
