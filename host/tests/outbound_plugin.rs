//! The real imports through a real plugin: the adversary's `llm-call` and
//! `http-call` task types against the mock LLM server. A stalled stream and a
//! provider that only rate-limits both end the call as retryable, in time,
//! with the slot free for the next call.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_llm::{MockLlm, Options};
use serde_json::{Value, json};
use sluice::outbound::{ProviderKind, TaskHttpConfig, UsageMeter};
use sluice::runtime::CallOutcome;
use support::outbound::{KEY_MARKER, MARGIN, http_task, llm_config, llm_task, network};
use support::{adversary, assert_echo_works, request, runtime};

#[tokio::test]
async fn a_stalled_stream_fails_the_call_as_retryable_and_the_retry_completes() {
    let mock = MockLlm::start(Options {
        rules: vec!["conversation 7=stall*1".parse().unwrap()],
        fault: None,
        ..Options::default()
    })
    .await
    .unwrap();
    let net = Arc::new(network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, true),
        &llm_task("llm-call", "m"),
    ));
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    let payload = json!({"messages": [{"role": "user", "content": "Summarise conversation 7."}]});

    let mut first = request("llm-call", &payload.to_string(), Duration::from_secs(30));
    first.outbound = net.clone();
    let started = Instant::now();
    let outcome = plugin.call(first).await.unwrap();
    let elapsed = started.elapsed();
    match &outcome {
        CallOutcome::Retryable { message } => assert_eq!(message, "llm: Error::Timeout"),
        other => panic!("expected retryable, got {other:?}"),
    }
    // The idle timeout (1s) ended it, not the call's 30s deadline.
    assert!(elapsed < Duration::from_secs(1) + MARGIN, "{elapsed:?}");

    // The retry of the same item gets through.
    let mut retry = request("llm-call", &payload.to_string(), Duration::from_secs(30));
    retry.items[0].attempt = 2;
    retry.outbound = net.clone();
    let usage = UsageMeter::default();
    retry.usage = usage.clone();
    let CallOutcome::Ok(out) = plugin.call(retry).await.unwrap() else {
        panic!("the retry should succeed");
    };
    let reply: Value = serde_json::from_str(out.output.unwrap().get()).unwrap();
    assert_eq!(
        reply["content"],
        "Summary of 3 words: Summarise conversation 7."
    );
    assert_eq!(reply["finish"], "FinishReason::Stop");
    let usage = usage.snapshot();
    assert_eq!(
        (usage.llm_calls, usage.input_tokens, usage.output_tokens),
        (1, 4, 7)
    );
    assert_eq!(mock.requests().len(), 2);
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn a_provider_that_always_rate_limits_is_retried_until_the_deadline() {
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let mut config = llm_config(&mock.base_url(), ProviderKind::Anthropic, false);
    config.retry.max_retries = 1000;
    let net = Arc::new(network(&config, &llm_task("llm-call", "fault:429")));
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    let timeout = Duration::from_millis(3500);
    let mut req = request("llm-call", "{}", timeout);
    req.outbound = net;
    let usage = UsageMeter::default();
    req.usage = usage.clone();
    let started = Instant::now();
    let outcome = plugin.call(req).await.unwrap();
    let elapsed = started.elapsed();
    match &outcome {
        CallOutcome::Retryable { message } => {
            assert_eq!(message, "llm: Error::RateLimited(Some(1000))")
        }
        other => panic!("expected retryable, got {other:?}"),
    }
    assert!(elapsed < timeout + MARGIN, "{elapsed:?}");
    let usage = usage.snapshot();
    assert_eq!(usage.llm_calls, 1);
    assert!(
        usage.llm_retries >= 2,
        "retried with Retry-After 1s: {usage:?}"
    );
    assert_eq!(mock.requests().len() as u64, usage.llm_retries + 1);
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn structured_output_reaches_the_plugin_and_nothing_secret_does() {
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let net = Arc::new(network(
        &llm_config(&mock.base_url(), ProviderKind::Anthropic, true),
        &llm_task("llm-call", "claude-mock"),
    ));
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    let payload = json!({
        "messages": [
            {"role": "system", "content": "Extract facts."},
            {"role": "user", "content": "Ann likes tea. Bob has 2 cats."}
        ],
        "json_schema": {
            "type": "object",
            "properties": {"facts": {"type": "array", "items": {"type": "string"}}},
            "required": ["facts"]
        }
    });
    let mut req = request("llm-call", &payload.to_string(), Duration::from_secs(30));
    req.outbound = net;
    let outcome = plugin.call(req).await.unwrap();
    let text = format!("{outcome:?}");
    assert!(!text.contains(KEY_MARKER) && !text.contains(&mock.addr().port().to_string()));
    let CallOutcome::Ok(out) = outcome else {
        panic!("{text}");
    };
    let reply: Value = serde_json::from_str(out.output.unwrap().get()).unwrap();
    let facts: Value = serde_json::from_str(reply["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        facts,
        json!({"facts": ["Ann likes tea", "Bob has 2 cats", "Ann likes tea"]})
    );
    assert_eq!(reply["model"], "claude-mock");
}

#[tokio::test]
async fn http_refusals_reach_the_plugin_as_typed_errors() {
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    let net = Arc::new(network(
        &llm_config("http://127.0.0.1:9/v1", ProviderKind::OpenAi, false),
        &http_task(
            "http-call",
            TaskHttpConfig {
                allow_hosts: vec!["169.254.169.254".into()],
                ..TaskHttpConfig::default()
            },
        ),
    ));
    for (url, expected) in [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://example.com/", "allowed hosts"),
    ] {
        let mut req = request(
            "http-call",
            &json!({"url": url}).to_string(),
            Duration::from_secs(30),
        );
        req.outbound = net.clone();
        match plugin.call(req).await.unwrap() {
            CallOutcome::Permanent { message } => {
                assert!(message.starts_with("http: Error::Denied"), "{message}");
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // The adversary's original hang-http call is denied the same way now.
    let mut req = request("hang-http", "{}", Duration::from_secs(30));
    req.outbound = net;
    assert!(
        matches!(plugin.call(req).await.unwrap(), CallOutcome::Retryable { message } if message.contains("Denied"))
    );
}
