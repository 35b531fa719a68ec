//! What an operator's probes and dashboards see: `/healthz` failing when the
//! claim loop stops, `/readyz` failing while the database is away (and the host
//! riding the outage out), and `/metrics` agreeing with the store, every
//! metric described (`# HELP`, `# TYPE`) and listed in the README.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mock_llm::MockLlm;
use sluice::imports::{DenyAll, Outbound};
use sluice::outbound::ProviderKind;
use sluice::store::{self, Store, StoreOptions};
use support::host::{self, count, http_get, wait_until};
use support::outbound;
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

/// The `# HELP` and `# TYPE` lines of Prometheus text: family -> (help, type).
fn families(text: &str) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut families: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.into()).or_default().0 = Some(help.into());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.into()).or_default().1 = Some(kind.into());
        }
    }
    families
}

fn kind_name(kind: sluice::api::metrics::Kind) -> &'static str {
    match kind {
        sluice::api::metrics::Kind::Counter => "counter",
        sluice::api::metrics::Kind::Gauge => "gauge",
        sluice::api::metrics::Kind::Histogram => "histogram",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_type_and_the_build_is_identified() {
    sluice::api::metrics::install();
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store.enqueue(&host::units("echo", "k", 3)).await.unwrap();
    store.enqueue(&host::units("fail", "f", 1)).await.unwrap();
    let mut config = host::fast_config(2);
    config.retain_outputs = Some(Duration::from_secs(3600));
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
    // Plugins' LLM and HTTP calls, as the imports record them.
    let mock = MockLlm::start(mock_llm::Options::default()).await.unwrap();
    let mut tasks = outbound::llm_task("summary", "m");
    let summary = tasks.get_mut("summary").unwrap();
    summary.llm.allowed_models = vec!["fault:no-usage".into()];
    summary.http.allow_hosts = vec!["hooks.example.com".into()];
    let net = outbound::network(
        &outbound::llm_config(&mock.base_url(), ProviderKind::OpenAi, true),
        &tasks,
    );
    let ctx = outbound::call("summary", Duration::from_secs(30));
    net.llm(&ctx, outbound::ask("one two")).await.unwrap();
    let mut unmetered = outbound::ask("three");
    unmetered.model = Some("fault:no-usage".into());
    net.llm(&ctx, unmetered).await.unwrap();
    let request = sluice::runtime::bindings::http::Request {
        method: sluice::runtime::bindings::http::Method::Get,
        url: "https://elsewhere.example.com/".into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    };
    net.http(&ctx, request).await.unwrap_err();
    wait_until(
        "the items are processed",
        Duration::from_secs(30),
        || async {
            count(store.as_ref(), "echo", "done").await == 3
                && count(store.as_ref(), "fail", "dead").await == 1
        },
    )
    .await;

    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let described = families(&text);
    let catalogue: BTreeMap<&str, &str> = sluice::api::metrics::METRICS
        .iter()
        .map(|m| (m.name, kind_name(m.kind)))
        .collect();
    let samples = parse_prometheus(&text);
    let mut seen = std::collections::BTreeSet::new();
    for series in samples.keys() {
        let name = &series[..series.find('{').unwrap_or(series.len())];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| catalogue.get(base) == Some(&"histogram"))
            })
            .unwrap_or(name);
        seen.insert(family.to_owned());
        let (help, kind) = described
            .get(family)
            .unwrap_or_else(|| panic!("{family} has neither # HELP nor # TYPE:\n{text}"));
        assert!(
            help.as_deref().is_some_and(|h| !h.is_empty()),
            "{family} has no # HELP:\n{text}"
        );
        assert_eq!(
            kind.as_deref(),
            catalogue.get(family).copied(),
            "{family}: # TYPE differs from the catalogue (or it is not in it)"
        );
    }
    for expected in [
        "sluice_build_info",
        "sluice_llm_requests_total",
        "sluice_llm_tokens_total",
        "sluice_llm_request_duration_seconds",
        "sluice_llm_usage_unknown_total",
        "sluice_http_requests_total",
        "sluice_pruned_outputs_total",
        "sluice_outcomes_total",
    ] {
        assert!(seen.contains(expected), "{expected} missing:\n{text}");
    }

    let info = samples
        .keys()
        .find(|series| series.starts_with("sluice_build_info{"))
        .unwrap();
    assert_eq!(samples[info], 1.0);
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    let wasmtime = info.split("wasmtime=\"").nth(1).unwrap();
    let wasmtime = &wasmtime[..wasmtime.find('"').unwrap()];
    assert!(
        !wasmtime.is_empty() && wasmtime.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "{info}"
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    if let Some(head) = head {
        assert!(info.contains(&format!("commit=\"{head}\"")), "{info}");
    }
    host.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn the_readme_lists_every_metric_with_its_kind() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut listed = BTreeMap::new();
    for row in readme.lines().filter(|l| l.starts_with("| `sluice_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for name in cells[1].split(',') {
            listed.insert(
                name.trim().trim_matches('`').to_owned(),
                cells[2].to_owned(),
            );
        }
    }
    let catalogue: BTreeMap<String, String> = sluice::api::metrics::METRICS
        .iter()
        .map(|m| (m.name.to_owned(), kind_name(m.kind).to_owned()))
        .collect();
    assert_eq!(
        listed, catalogue,
        "README's metrics table against the host's"
    );
}

#[test]
fn the_grafana_dashboard_charts_the_hosts_metrics_and_nothing_else() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana-dashboard.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let catalogue: BTreeMap<&str, sluice::api::metrics::Kind> = sluice::api::metrics::METRICS
        .iter()
        .map(|m| (m.name, m.kind))
        .collect();
    let mut charted = std::collections::BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("sluice_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = name
                    .strip_suffix("_bucket")
                    .filter(|base| {
                        catalogue.get(base) == Some(&sluice::api::metrics::Kind::Histogram)
                    })
                    .unwrap_or(&name)
                    .to_owned();
                assert!(
                    catalogue.contains_key(family.as_str()),
                    "panel {}: `{name}` is not a metric the host exports",
                    panel["title"]
                );
                charted.insert(family);
            }
        }
    }
    for name in catalogue.keys() {
        assert!(charted.contains(*name), "{name} is on no panel");
    }
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
                run_after: None,
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
