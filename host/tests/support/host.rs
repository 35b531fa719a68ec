//! Running the real host in-process for end-to-end tests: a configuration with
//! short leases and intervals, the adversary plugin, and ways to wait for the
//! queue to reach a state and to read the host's HTTP endpoints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::config::{Config, TaskSection};
use sluice::imports::Outbound;
use sluice::runtime::Registry;
use sluice::store::{NewItem, Store, WorkerInfo};
use sluice::worker::{Host, HostParts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A configuration for tests: fast leases, heartbeats and reaping, no listener.
pub fn fast_config(slots: u32) -> Config {
    Config {
        slots,
        lease: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(300),
        reaper_interval: Duration::from_millis(300),
        poll_interval: Duration::from_millis(200),
        listen: "off".into(),
        ..Config::default()
    }
}

/// A task section with a timeout, attempts and a short backoff.
pub fn task(timeout: Duration, max_attempts: u32) -> TaskSection {
    TaskSection {
        timeout: Some(timeout),
        max_attempts: Some(max_attempts),
        backoff_base: Some(Duration::from_millis(50)),
        backoff_max: Some(Duration::from_millis(200)),
        ..TaskSection::default()
    }
}

/// Starts a host running the adversary plugin against `store`.
pub async fn start(store: Arc<dyn Store>, config: Config, outbound: Arc<dyn Outbound>) -> Host {
    let runtime = super::runtime(config.slots);
    let plugin = super::adversary(&runtime).await;
    Host::start(HostParts {
        config: Arc::new(config),
        store,
        registry: Arc::new(Registry::from_plugins(vec![plugin])),
        outbound,
        worker: WorkerInfo {
            id: format!("test-host-{}", std::process::id()),
            host_name: "test".into(),
            pid: std::process::id(),
            version: "test".into(),
        },
    })
    .await
    .expect("the host starts")
}

/// `count` items of `task_type`, one per key `{prefix}-{n}`.
pub fn units(task_type: &str, prefix: &str, count: usize) -> Vec<NewItem> {
    (0..count)
        .map(|n| NewItem {
            task_type: task_type.into(),
            work_unit_key: format!("{prefix}-{n}"),
            payload: format!(r#"{{"n":{n}}}"#),
            tokens: 0,
            dedupe_key: None,
        })
        .collect()
}

/// Item counts by (task type, state).
pub async fn counts(store: &dyn Store) -> BTreeMap<(String, String), i64> {
    store
        .status()
        .await
        .expect("status")
        .depths
        .into_iter()
        .map(|d| ((d.task_type, d.state), d.count))
        .collect()
}

pub async fn count(store: &dyn Store, task_type: &str, state: &str) -> i64 {
    counts(store)
        .await
        .get(&(task_type.to_string(), state.to_string()))
        .copied()
        .unwrap_or(0)
}

/// Polls `check` every 50 ms until it returns true; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP/1.0 GET: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}
