//! `sluice bench e2e`: items per second through the whole host, from a full
//! queue to an empty one.
//!
//! The queue benchmark times the store alone and the sandbox benchmark one
//! call alone; users see neither. This runs the real host (`Host::start`,
//! as `sluice run` does, without the HTTP listener) with the test plugin's
//! no-op `echo` task on a fresh database per run: claims, fetches, one
//! sandboxed call per item, fenced commits and releases, with heartbeats and
//! the reaper running beside them. The clock starts when the host starts and
//! stops when nothing is pending or claimed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::imports::DenyAll;
use crate::runtime::{Registry, Runtime, RuntimeConfig, registry};
use crate::store::{NewItem, Store, StoreOptions, WorkerInfo};
use crate::worker::{Host, HostParts};

/// What to measure.
pub struct E2eBench {
    /// A plugin with the `echo` task type (the test plugin).
    pub plugin: PathBuf,
    /// Items per run.
    pub items: usize,
    /// Units the items are spread over in the first shape; the second shape
    /// puts every item in a unit of its own.
    pub keys: usize,
    /// Slot counts to run with.
    pub slots: Vec<u32>,
}

/// One run's result.
#[derive(Debug, Serialize)]
pub struct E2eMeasurement {
    pub backend: String,
    pub shape: String,
    pub slots: u32,
    pub items: usize,
    pub seconds: f64,
    pub per_second: f64,
    /// The process's peak resident memory so far, in MiB.
    pub peak_rss_mib: f64,
}

const TASK_TYPE: &str = "echo";

/// Runs every shape and slot count on the backend `open` makes databases for.
pub async fn run(
    backend: &str,
    open: impl AsyncFn(StoreOptions) -> anyhow::Result<(Arc<dyn Store>, super::queue::Cleanup)>,
    spec: &E2eBench,
) -> anyhow::Result<Vec<E2eMeasurement>> {
    let most_slots = spec.slots.iter().copied().max().unwrap_or(1);
    let runtime = Runtime::new(RuntimeConfig {
        slots: most_slots,
        cache_dir: crate::runtime::engine::default_cache_dir(),
        ..RuntimeConfig::default()
    })?;
    let plugin = Arc::new(registry::load_file(&runtime, &spec.plugin).await?);
    anyhow::ensure!(
        plugin.task_types.iter().any(|t| t == TASK_TYPE),
        "{} has no task type `{TASK_TYPE}`: pass the test plugin (scripts/build-plugins builds it)",
        spec.plugin.display()
    );
    let shapes = [
        (
            format!("{} items over {} units", spec.items, spec.keys),
            spec.keys,
        ),
        ("one item per unit".to_string(), spec.items),
    ];
    let mut results = Vec::new();
    for (shape, keys) in &shapes {
        for &slots in &spec.slots {
            let options = StoreOptions {
                max_connections: slots + 4,
                ..StoreOptions::default()
            };
            let (store, cleanup) = open(options).await?;
            fill(&*store, spec.items, *keys).await?;
            let elapsed = drain(store, plugin.clone(), slots).await?;
            cleanup.finish().await?;
            let seconds = elapsed.as_secs_f64();
            results.push(E2eMeasurement {
                backend: backend.to_string(),
                shape: shape.clone(),
                slots,
                items: spec.items,
                seconds,
                per_second: spec.items as f64 / seconds.max(1e-9),
                peak_rss_mib: peak_rss_mib(),
            });
        }
    }
    Ok(results)
}

/// Enqueues `items` no-op items round-robin over `keys` units.
async fn fill(store: &dyn Store, items: usize, keys: usize) -> anyhow::Result<()> {
    let all: Vec<NewItem> = (0..items)
        .map(|n| NewItem {
            task_type: TASK_TYPE.into(),
            work_unit_key: format!("unit-{}", n % keys),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    for chunk in all.chunks(5_000) {
        store.enqueue(chunk).await?;
    }
    Ok(())
}

/// How long the host must hold no unit before the store is asked whether the
/// queue is empty.
const QUIET: Duration = Duration::from_millis(50);

/// Starts a host with `slots` slots and waits until the queue is empty.
async fn drain(
    store: Arc<dyn Store>,
    plugin: Arc<crate::runtime::Plugin>,
    slots: u32,
) -> anyhow::Result<Duration> {
    let config = Config {
        slots,
        listen: "off".into(),
        ..Config::default()
    };
    let started = Instant::now();
    let host = Host::start(HostParts {
        config: Arc::new(config),
        store: store.clone(),
        registry: Arc::new(Registry::from_plugins(vec![plugin])),
        outbound: Arc::new(DenyAll),
        worker: WorkerInfo {
            id: format!("bench-e2e-{}-{slots}", std::process::id()),
            host_name: "bench".into(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: Vec::new(),
        },
    })
    .await?;
    // The store's status reads every item, which would load the store being
    // measured if it were polled throughout, so it only confirms what the
    // host's own count of units in flight suggests: that the work is done.
    // Between a burst of units ending and the next claim landing the count
    // touches zero for a moment, many times a second with one item per
    // unit; only a pause that lasts is worth asking the store about. The
    // clock stops when the last unit ended, not when the store confirmed it.
    let mut in_flight = host.watch_units_in_flight();
    let finished = loop {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3_600),
            "the queue did not drain within an hour"
        );
        let idle = in_flight.wait_for(|units| *units == 0);
        match tokio::time::timeout(Duration::from_millis(250), idle).await {
            Err(_) => continue,
            Ok(Err(_)) => anyhow::bail!("the host stopped before the queue drained"),
            Ok(Ok(_)) => {}
        }
        let idle_since = Instant::now();
        let busy_again = in_flight.wait_for(|units| *units > 0);
        match tokio::time::timeout(QUIET, busy_again).await {
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => anyhow::bail!("the host stopped before the queue drained"),
            Err(_) => {}
        }
        let status = store.status().await?;
        let pending: i64 = status
            .depths
            .iter()
            .filter(|d| d.state == "pending")
            .map(|d| d.count)
            .sum();
        if pending == 0 && status.claimed_units == 0 {
            break idle_since;
        }
    };
    let elapsed = finished.duration_since(started);
    host.shutdown(Duration::from_secs(10)).await;
    Ok(elapsed)
}

/// `VmHWM` from `/proc/self/status`, in MiB (0 where it cannot be read).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
