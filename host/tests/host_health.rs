//! What an operator's probes and dashboards see: `/healthz` failing when the
//! claim loop stops, `/readyz` failing while the database is away (and the host
//! riding the outage out), and `/metrics` agreeing with the store.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice::imports::DenyAll;
use sluice::store::{self, Store, StoreOptions};
use support::host::{self, count, http_get, wait_until};
use support::proxy::Proxy;
use support::stores;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_when_the_claim_loop_stops_and_recovers_when_it_resumes() {
    let db = stores::sqlite().await;
    let mut config = host::fast_config(2);
    config.stall_after = Duration::from_secs(1);
    let stall_after = config.stall_after;
    let host = host::start(db.store.clone(), config, Arc::new(DenyAll)).await;
    let addr = sluice::api::bind("127.0.0.1:0".parse().unwrap(), host.clone(), stall_after)
        .await
        .unwrap();
    assert_eq!(http_get(addr, "/healthz").await.0, 200);

    host.pause_claim_loop(true);
    wait_until(
        "/healthz reports the stalled loop",
        Duration::from_secs(20),
        || async {
            let (status, body) = http_get(addr, "/healthz").await;
            status == 503 && body.contains("claim_loop_idle_ms")
        },
    )
    .await;
    host.pause_claim_loop(false);
    wait_until(
        "/healthz is healthy again",
        Duration::from_secs(20),
        || async { http_get(addr, "/healthz").await.0 == 200 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
}

/// `name{labels} value` lines of Prometheus text, keyed by `name{labels}`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(series.to_string(), value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_match_the_store() {
    sluice::api::metrics::install();
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store.enqueue(&host::units("echo", "k", 12)).await.unwrap();
    store.enqueue(&host::units("fail", "f", 1)).await.unwrap();
    let mut config = host::fast_config(2);
    config
        .tasks
        .insert("fail".into(), host::task(Duration::from_secs(5), 1));
    let host = host::start(store.clone(), config, Arc::new(DenyAll)).await;
    let addr = sluice::api::bind(
        "127.0.0.1:0".parse().unwrap(),
        host.clone(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    wait_until(
        "the items are processed",
        Duration::from_secs(30),
        || async {
            count(store.as_ref(), "echo", "done").await == 12
                && count(store.as_ref(), "fail", "dead").await == 1
        },
    )
    .await;

    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text);
    let get = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from /metrics:\n{text}"))
    };
    for ((task_type, state), items) in host::counts(store.as_ref()).await {
        assert_eq!(
            get(&format!(
                "sluice_queue_depth{{task_type=\"{task_type}\",state=\"{state}\"}}"
            )),
            items as f64
        );
    }
    assert_eq!(
        get("sluice_commits_total{task_type=\"echo\",result=\"ok\"}"),
        12.0
    );
    assert_eq!(
        get("sluice_commits_total{task_type=\"fail\",result=\"dead\"}"),
        1.0
    );
    assert_eq!(
        get("sluice_outcomes_total{task_type=\"echo\",outcome=\"ok\"}"),
        12.0
    );
    assert_eq!(get("sluice_claimed_units"), 0.0);
    assert_eq!(get("sluice_units_in_flight"), 0.0);
    assert!(get("sluice_heartbeat_ticks_total") >= 1.0);
    assert!(get("sluice_poll_ticks_total") >= 1.0);
    assert_eq!(
        get("sluice_unit_duration_seconds_count{task_type=\"echo\"}"),
        12.0,
        "one unit per echo key"
    );
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_ridden_out_with_nothing_lost_or_doubled() {
    let db = stores::postgres().await;
    let store = db.store.clone();
    let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let items: Vec<_> = (0..10)
        .flat_map(|n| {
            (0..30).map(move |k| store::NewItem {
                task_type: "sleep".into(),
                work_unit_key: format!("key-{k}"),
                payload: format!(r#"{{"ms":20,"n":{n}}}"#),
                tokens: 0,
                dedupe_key: None,
            })
        })
        .collect();
    for (item, enqueued) in items.iter().zip(store.enqueue(&items).await.unwrap()) {
        ids.entry(item.work_unit_key.clone())
            .or_default()
            .push(enqueued.id);
    }

    let proxy = Proxy::start("127.0.0.1:5432").await;
    let through_proxy = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let host_store: Arc<dyn Store> = store::open(&through_proxy, StoreOptions::default())
        .await
        .unwrap();
    let mut config = host::fast_config(4);
    config.lease = Duration::from_secs(5);
    let host = host::start(host_store, config, Arc::new(DenyAll)).await;
    let addr = sluice::api::bind(
        "127.0.0.1:0".parse().unwrap(),
        host.clone(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    wait_until("work is under way", Duration::from_secs(30), || async {
        count(store.as_ref(), "sleep", "done").await >= 50
    })
    .await;
    assert_eq!(http_get(addr, "/readyz").await.0, 200);

    proxy.cut();
    wait_until(
        "/readyz reports the outage",
        Duration::from_secs(20),
        || async { http_get(addr, "/readyz").await.0 == 503 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        http_get(addr, "/healthz").await.0,
        200,
        "an unreachable database is not a dead process: the loops keep ticking"
    );
    assert!(!host.health().database_ok());
    proxy.restore();

    wait_until(
        "the queue completes after the outage",
        Duration::from_secs(90),
        || async { count(store.as_ref(), "sleep", "done").await == 300 },
    )
    .await;
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    for (key, expected) in &ids {
        let written: Vec<i64> = store
            .outputs("sleep", key)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|o| o.item_ids)
            .collect();
        assert_eq!(&written, expected, "key {key}: exactly once, in order");
    }
    host.shutdown(Duration::from_secs(10)).await;
    assert_eq!(store.status().await.unwrap().claimed_units, 0);
}
