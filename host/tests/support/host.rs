//! Running the real host in-process for end-to-end tests: a configuration with
//! short leases and intervals, the adversary plugin (or any built guest
//! plugins), the real outbound network against a mock LLM, ways to wait for
//! the queue to reach a state, to read what it stored, and to read the host's
//! HTTP endpoints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::config::{Config, TaskSection};
use sluice::imports::Outbound;
use sluice::outbound::{ProviderKind, TaskLlmConfig};
use sluice::runtime::{Registry, registry};
use sluice::store::{NewItem, Store, WorkerInfo};
use sluice::worker::{Host, HostParts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::stores::TestStore;

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
    start_plugins(store, config, outbound, &["sluice_test_adversary"]).await
}

/// Starts a host running the guest plugins `plugins` (crate file names, as
/// for [`super::guest_wasm`]) against `store`.
pub async fn start_plugins(
    store: Arc<dyn Store>,
    config: Config,
    outbound: Arc<dyn Outbound>,
    plugins: &[&str],
) -> Host {
    let id = format!("test-host-{}", std::process::id());
    start_as(&id, store, config, outbound, plugins).await
}

/// As [`start_plugins`], as the worker `id`: several hosts in one test
/// process need ids of their own.
pub async fn start_as(
    id: &str,
    store: Arc<dyn Store>,
    config: Config,
    outbound: Arc<dyn Outbound>,
    plugins: &[&str],
) -> Host {
    let runtime = super::runtime(config.slots);
    let mut loaded = Vec::new();
    for name in plugins {
        let plugin = registry::load_file(&runtime, &super::guest_wasm(name))
            .await
            .unwrap_or_else(|err| panic!("the plugin {name} loads: {err}"));
        loaded.push(Arc::new(plugin));
    }
    start_registry_as(id, store, config, outbound, Registry::from_plugins(loaded)).await
}

/// Starts a host running the plugins of `registry` against `store`.
pub async fn start_registry(
    store: Arc<dyn Store>,
    config: Config,
    outbound: Arc<dyn Outbound>,
    registry: Registry,
) -> Host {
    let id = format!("test-host-{}", std::process::id());
    start_registry_as(&id, store, config, outbound, registry).await
}

/// As [`start_registry`], as the worker `id`.
async fn start_registry_as(
    id: &str,
    store: Arc<dyn Store>,
    config: Config,
    outbound: Arc<dyn Outbound>,
    registry: Registry,
) -> Host {
    Host::start(HostParts {
        config: Arc::new(config),
        store,
        registry: Arc::new(registry),
        outbound,
        worker: WorkerInfo {
            id: id.to_owned(),
            host_name: "test".into(),
            pid: std::process::id(),
            version: "test".into(),
            task_types: Vec::new(),
        },
    })
    .await
    .expect("the host starts")
}

/// One item of `task_type` for unit `key`, enqueued now, with no tokens or
/// dedupe key.
pub fn new_item(task_type: &str, key: &str, payload: &str) -> NewItem {
    NewItem {
        task_type: task_type.into(),
        work_unit_key: key.into(),
        payload: payload.into(),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
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
            run_after: None,
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

/// Points `config`'s `[llm]` at a keyless OpenAI-style provider `mock` at
/// `base_url` (the in-process mock LLM server), with the short timeouts and
/// quick retries of [`super::outbound::llm_config`].
pub fn mock_llm(config: &mut Config, base_url: &str, stream: bool) {
    config.llm = super::outbound::llm_config(base_url, ProviderKind::OpenAi, stream);
    for provider in config.llm.providers.values_mut() {
        provider.api_key_env = None;
    }
}

/// `section` with `[llm] provider = "mock"` and `model`.
pub fn with_llm(section: TaskSection, model: &str) -> TaskSection {
    TaskSection {
        llm: TaskLlmConfig {
            provider: Some("mock".into()),
            model: Some(model.into()),
            ..TaskLlmConfig::default()
        },
        ..section
    }
}

/// The real `llm` and `http` imports, built from `config` as `sluice run` does.
pub fn network(config: &Config) -> Arc<dyn Outbound> {
    Arc::new(config.network().expect("a valid outbound configuration"))
}

/// One item's state, attempt count and error history, read with SQL.
#[derive(Debug)]
pub struct ItemRow {
    pub id: i64,
    pub state: String,
    pub attempts: u32,
    pub errors: Vec<serde_json::Value>,
}

/// Every item of `task_type`, in id order.
pub async fn items(db: &TestStore, task_type: &str) -> Vec<ItemRow> {
    db.text_rows(
        "SELECT CAST(id AS TEXT), task_type, state, CAST(attempts AS TEXT), CAST(errors AS TEXT) \
         FROM sluice_items ORDER BY id",
    )
    .await
    .into_iter()
    .filter(|row| row[1].as_deref() == Some(task_type))
    .map(|row| {
        let text = |i: usize| row[i].clone().expect("a non-null column");
        ItemRow {
            id: text(0).parse().expect("an id"),
            state: text(2),
            attempts: text(3).parse().expect("an attempt count"),
            errors: serde_json::from_str(&text(4)).expect("an error history"),
        }
    })
    .collect()
}

/// The call records stored beside `task_type`'s outputs (`sluice_outputs.call`), oldest first.
pub async fn call_records(db: &TestStore, task_type: &str) -> Vec<serde_json::Value> {
    db.text_rows("SELECT task_type, CAST(call AS TEXT) FROM sluice_outputs ORDER BY id")
        .await
        .into_iter()
        .filter(|row| row[0].as_deref() == Some(task_type))
        .map(|row| serde_json::from_str(row[1].as_deref().expect("a call record")).unwrap())
        .collect()
}

/// The outputs stored for one unit, parsed, with their item ids.
pub async fn outputs(
    store: &dyn Store,
    task_type: &str,
    key: &str,
) -> Vec<(Vec<i64>, serde_json::Value)> {
    store
        .outputs(task_type, key)
        .await
        .expect("outputs")
        .into_iter()
        .map(|stored| {
            let output = stored.output.expect("an output");
            (
                stored.item_ids,
                serde_json::from_str(&output).expect("JSON output"),
            )
        })
        .collect()
}

/// Waits until `expected` items of `task_type` are in `state` (a minute at
/// most: generous, since CI machines stall), then shuts `host` down.
pub async fn run_until(host: Host, store: &dyn Store, task_type: &str, state: &str, expected: i64) {
    wait_until(
        &format!("{expected} {task_type} items are {state}"),
        Duration::from_secs(60),
        || async { count(store, task_type, state).await == expected },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
}
