//! The outbound metrics, as a Prometheus exporter would see them: names,
//! labels and values after a few LLM and HTTP calls. Runs in its own process
//! (nextest), so installing the global recorder here affects no other test.

mod support;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use mock_llm::{MockLlm, Options};
use sluice::imports::Outbound;
use sluice::outbound::{ProviderKind, TaskHttpConfig, TaskOutbound};
use support::outbound::{ask, call, llm_config, llm_task, network};

/// The labels of a key, as sorted `name=value` pairs.
fn labels(key: &CompositeKey) -> Vec<String> {
    let mut labels: Vec<String> = key
        .key()
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    labels
}

#[tokio::test]
async fn calls_are_counted_by_task_type_provider_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");

    let mock = MockLlm::start(Options::default()).await.unwrap();
    let mut tasks = llm_task("summary", "m");
    tasks.get_mut("summary").unwrap().llm.allowed_models = vec!["fault:no-usage".into()];
    tasks.insert(
        "webhook".into(),
        TaskOutbound {
            http: TaskHttpConfig {
                allow_hosts: vec!["hooks.example.com".into()],
                ..TaskHttpConfig::default()
            },
            ..TaskOutbound::default()
        },
    );
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &tasks,
    );
    let ctx = call("summary", Duration::from_secs(30));
    net.llm(&ctx, ask("one two three")).await.unwrap();
    net.llm(&ctx, ask("four five")).await.unwrap();
    let mut unmetered = ask("six");
    unmetered.model = Some("fault:no-usage".into());
    net.llm(&ctx, unmetered).await.unwrap();
    let mut denied = ask("x");
    denied.model = Some("not-allowed".into());
    net.llm(&ctx, denied).await.unwrap_err();
    let request = sluice::runtime::bindings::http::Request {
        method: sluice::runtime::bindings::http::Method::Get,
        url: "https://elsewhere.example.com/".into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    };
    net.http(&call("webhook", Duration::from_secs(30)), request)
        .await
        .unwrap_err();

    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let value = match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => n.to_string(),
            (MetricKind::Histogram, DebugValue::Histogram(samples)) => {
                format!("{} samples", samples.len())
            }
            (_, other) => format!("{other:?}"),
        };
        seen.push(format!("{} {:?} {value}", key.key().name(), labels(&key)));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            r#"sluice_http_requests_total ["outcome=denied", "task_type=webhook"] 1"#,
            r#"sluice_llm_breaker_state ["provider=mock"] Gauge(0.0)"#,
            r#"sluice_llm_request_duration_seconds ["provider=mock", "task_type=summary"] 4 samples"#,
            r#"sluice_llm_requests_total ["outcome=denied", "provider=mock", "task_type=summary"] 1"#,
            r#"sluice_llm_requests_total ["outcome=ok", "provider=mock", "task_type=summary"] 3"#,
            r#"sluice_llm_tokens_total ["direction=input", "provider=mock", "task_type=summary"] 7"#,
            r#"sluice_llm_tokens_total ["direction=output", "provider=mock", "task_type=summary"] 13"#,
            r#"sluice_llm_usage_unknown_total ["provider=mock", "task_type=summary"] 1"#,
        ]
    );
}
