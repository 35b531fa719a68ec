//! `sluice bench e2e`: items per second through the whole host, from a full
//! queue to an empty one.
//!
//! The queue benchmark times the store alone and the sandbox benchmark one
//! call alone; users see neither. This runs the real host (`Host::start`,
//! as `sluice run` does, without the HTTP listener) with the test plugin's
//! no-op `echo` task on a fresh database per run: claims, fetches, one
//! sandboxed call per item, fenced commits and releases, with heartbeats and
//! the reaper running beside them. The clock starts when the host starts and
//! stops when nothing is pending or claimed. Besides items/s it reports the
//! CPU time spent per item in that window, by the whole machine and by the
//! host: this machine's speed drifts by more than a small change is worth,
//! and CPU per item drifts far less.

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
    /// CPU time the whole machine spent during the drain, per item, in µs:
    /// the host, the database server and anything else running. Steadier
    /// than items/s on a machine whose speed drifts from run to run. `None`
    /// where `/proc/stat` cannot be read.
    pub cpu_us_per_item: Option<f64>,
    /// This process's share of it (the host, with its guests), in µs per item.
    pub host_cpu_us_per_item: Option<f64>,
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
            let drained = drain(store, plugin.clone(), slots).await?;
            cleanup.finish().await?;
            let seconds = drained.elapsed.as_secs_f64();
            let per_item =
                |cpu: Option<Duration>| cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / spec.items as f64);
            results.push(E2eMeasurement {
                backend: backend.to_string(),
                shape: shape.clone(),
                slots,
                items: spec.items,
                seconds,
                per_second: spec.items as f64 / seconds.max(1e-9),
                peak_rss_mib: peak_rss_mib(),
                cpu_us_per_item: per_item(drained.machine_cpu),
                host_cpu_us_per_item: per_item(drained.host_cpu),
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

/// What one drain took.
struct Drained {
    elapsed: Duration,
    /// Busy CPU time of the whole machine, and of this process.
    machine_cpu: Option<Duration>,
    host_cpu: Option<Duration>,
}

/// Starts a host with `slots` slots and waits until the queue is empty.
async fn drain(
    store: Arc<dyn Store>,
    plugin: Arc<crate::runtime::Plugin>,
    slots: u32,
) -> anyhow::Result<Drained> {
    let config = Config {
        slots,
        listen: "off".into(),
        ..Config::default()
    };
    let cpu_at_start = CpuTimes::now();
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
        // Read here, not after the checks below: the store's status is a
        // heavy query that the drain did not need.
        let cpu_at_idle = CpuTimes::now();
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
            break (idle_since, cpu_at_idle);
        }
    };
    let (finished, cpu_at_end) = finished;
    host.shutdown(Duration::from_secs(10)).await;
    Ok(Drained {
        elapsed: finished.duration_since(started),
        machine_cpu: cpu_at_end
            .machine
            .zip(cpu_at_start.machine)
            .map(|(b, a)| b - a),
        host_cpu: Some(cpu_at_end.host - cpu_at_start.host),
    })
}

/// Busy CPU time so far: the whole machine's (user, nice, system, irq and
/// softirq time of every CPU, from `/proc/stat`) and this process's.
struct CpuTimes {
    machine: Option<Duration>,
    host: Duration,
}

impl CpuTimes {
    fn now() -> Self {
        let host = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Self {
            machine: machine_busy(),
            host: Duration::new(host.tv_sec as u64, host.tv_nsec as u32),
        }
    }
}

fn machine_busy() -> Option<Duration> {
    let busy = busy_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let per_second = rustix::param::clock_ticks_per_second();
    Some(Duration::from_secs_f64(busy as f64 / per_second as f64))
}

/// The busy ticks of all CPUs together in `/proc/stat`'s text: user, nice,
/// system, irq and softirq (not idle, iowait or time stolen by the
/// hypervisor).
fn busy_ticks(stat: &str) -> Option<u64> {
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal ...
    [0, 1, 2, 5, 6].iter().map(|&n| ticks.get(n)).sum()
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

#[cfg(test)]
mod tests {
    use super::busy_ticks;

    #[test]
    fn busy_ticks_count_user_nice_system_irq_and_softirq_only() {
        let stat = "cpu  100 20 30 5000 400 6 7 800 0 0\ncpu0 50 10 15 2500 200 3 3 400 0 0\n";
        assert_eq!(busy_ticks(stat), Some(100 + 20 + 30 + 6 + 7));
    }

    #[test]
    fn an_unreadable_stat_gives_no_figure() {
        assert_eq!(busy_ticks(""), None);
        assert_eq!(busy_ticks("intr 1 2 3\n"), None);
        assert_eq!(busy_ticks("cpu  1 2 three\n"), None);
        assert_eq!(busy_ticks("cpu  1 2 3\n"), None, "too few fields");
    }
}
