//! `sluice bench deadline`: how long after its deadline a stuck unit's slot is
//! free again, with the real host, for a guest hung in an LLM call and for a
//! guest spinning on the CPU.
//!
//! Each run enqueues one unit of the stuck task type into a one-slot host on a
//! fresh SQLite file, notes when the unit starts holding the slot and when it
//! lets go, and reports how far past `timeout` that was. The start is when the
//! host registered the claim, a little before the call itself begins, so the
//! figure is an upper bound: it includes fetching the item, the deadline
//! firing, discarding the store, and writing the failure fenced by the claim.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Config, TaskSection};
use crate::imports::{CallContext, Outbound};
use crate::runtime::bindings::{http, llm};
use crate::runtime::{Registry, Runtime, RuntimeConfig, registry};
use crate::store::{NewItem, WorkerInfo};
use crate::worker::{Host, HostParts};

/// What to measure.
pub struct DeadlineBench {
    /// A plugin with the task types `hang-llm` and `spin` (the test plugin).
    pub plugin: PathBuf,
    pub runs: usize,
    /// The stuck calls' deadline.
    pub timeout: Duration,
}

/// Overruns past the deadline for one way of being stuck, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Overrun {
    pub stuck: String,
    pub runs: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

/// An LLM provider that never answers.
struct NeverAnswers;

#[async_trait::async_trait]
impl Outbound for NeverAnswers {
    async fn llm(&self, _: &CallContext, _: llm::Request) -> Result<llm::Response, llm::Error> {
        std::future::pending().await
    }

    async fn http(&self, _: &CallContext, _: http::Request) -> Result<http::Response, http::Error> {
        std::future::pending().await
    }
}

pub async fn run(spec: &DeadlineBench) -> anyhow::Result<Vec<Overrun>> {
    let runtime = Runtime::new(RuntimeConfig {
        slots: 1,
        cache_dir: crate::runtime::engine::default_cache_dir(),
        ..RuntimeConfig::default()
    })?;
    let plugin = Arc::new(registry::load_file(&runtime, &spec.plugin).await?);
    let mut results = Vec::new();
    for stuck in ["hang-llm", "spin"] {
        anyhow::ensure!(
            plugin.task_types.iter().any(|t| t == stuck),
            "{} has no task type `{stuck}`: pass the test plugin (scripts/build-plugins builds it)",
            spec.plugin.display()
        );
        let mut overruns = Vec::with_capacity(spec.runs);
        for run in 0..spec.runs {
            overruns.push(one_run(&plugin, stuck, run, spec.timeout).await?);
        }
        results.push(summarize(stuck, overruns));
    }
    Ok(results)
}

async fn one_run(
    plugin: &Arc<crate::runtime::Plugin>,
    stuck: &str,
    run: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let (store, cleanup) = super::queue::open_sqlite(crate::store::StoreOptions::default()).await?;
    let mut config = Config {
        slots: 1,
        listen: "off".into(),
        ..Config::default()
    };
    config.tasks.insert(
        stuck.to_string(),
        TaskSection {
            timeout: Some(timeout),
            max_attempts: Some(1),
            ..TaskSection::default()
        },
    );
    let host = Host::start(HostParts {
        config: Arc::new(config),
        store: store.clone(),
        registry: Arc::new(Registry::from_plugins(vec![plugin.clone()])),
        outbound: Arc::new(NeverAnswers),
        worker: WorkerInfo {
            id: format!("bench-deadline-{}-{run}", std::process::id()),
            host_name: "bench".into(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: Vec::new(),
        },
    })
    .await?;
    let mut in_flight = host.watch_units_in_flight();
    store
        .enqueue(&[NewItem {
            task_type: stuck.to_string(),
            work_unit_key: format!("stuck-{run}"),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        }])
        .await?;
    in_flight.wait_for(|units| *units == 1).await?;
    let held = Instant::now();
    in_flight.wait_for(|units| *units == 0).await?;
    let freed = held.elapsed();
    host.shutdown(Duration::from_secs(5)).await;
    cleanup.finish().await?;
    Ok(freed.saturating_sub(timeout))
}

fn summarize(stuck: &str, mut overruns: Vec<Duration>) -> Overrun {
    overruns.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(overruns[((overruns.len() - 1) as f64 * q).round() as usize]);
    Overrun {
        stuck: stuck.to_string(),
        runs: overruns.len(),
        median_ms: at(0.5),
        p90_ms: at(0.9),
        max_ms: ms(*overruns.last().expect("at least one run")),
    }
}
