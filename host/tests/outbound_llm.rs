//! The `llm` import against the mock LLM server: replies through both APIs,
//! streamed and not; every fault mode ends in its typed error within its
//! bound plus a margin, with the configured retries; models, fallbacks and
//! denials; and the API key never shows up in an error or a log line.

mod support;

use std::time::{Duration, Instant};

use mock_llm::{Api, MockLlm, Options};
use serde_json::{Value, json};
use sluice::imports::Outbound;
use sluice::outbound::{Network, OutboundConfigError, ProviderKind, TaskLlmConfig};
use sluice::runtime::bindings::llm::{Error, FinishReason, ProviderError, Response};
use support::outbound::{
    KEY_ENV, KEY_MARKER, MARGIN, ask, call, capture_logs, llm_config, llm_task, network,
};

const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

async fn mock() -> MockLlm {
    MockLlm::start(Options::default())
        .await
        .expect("mock starts")
}

/// One call of task type `t` with `model` (a `fault:` model picks a fault),
/// its elapsed time, and the mock's request count.
async fn complete(
    mock: &MockLlm,
    kind: ProviderKind,
    stream: bool,
    model: &str,
    timeout: Duration,
) -> (Result<Response, Error>, Duration, usize) {
    let net = network(
        &llm_config(&mock.base_url(), kind, stream),
        &llm_task("t", model),
    );
    let before = mock.requests().len();
    let started = Instant::now();
    let result = net
        .llm(&call("t", timeout), ask("Tell me about 3 ducks."))
        .await;
    (result, started.elapsed(), mock.requests().len() - before)
}

#[tokio::test]
async fn replies_through_both_apis_streamed_or_not() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [false, true] {
            let net = network(
                &llm_config(&mock.base_url(), kind, stream),
                &llm_task("t", "m1"),
            );
            let ctx = call("t", Duration::from_secs(30));
            let reply = net
                .llm(&ctx, ask("Alice met Bob. They talked."))
                .await
                .unwrap_or_else(|e| panic!("{kind:?} stream={stream}: {e:?}"));
            assert_eq!(
                reply.content, "Summary of 5 words: Alice met Bob. They talked.",
                "{kind:?} stream={stream}"
            );
            assert_eq!(reply.model, "m1");
            assert_eq!(reply.finish_reason, FinishReason::Stop);
            assert_eq!(reply.usage.input_tokens, 6);
            assert_eq!(reply.usage.output_tokens, 9);
            let usage = ctx.usage.snapshot();
            assert_eq!(
                (usage.llm_calls, usage.input_tokens, usage.output_tokens),
                (1, 6, 9)
            );
            let seen = mock.requests().pop().unwrap();
            assert_eq!(seen.stream, stream);
            match kind {
                ProviderKind::OpenAi => {
                    assert_eq!(seen.api, Api::OpenAi);
                    assert_eq!(
                        seen.headers["authorization"],
                        format!("Bearer {KEY_MARKER}").as_str()
                    );
                }
                ProviderKind::Anthropic => {
                    assert_eq!(seen.api, Api::Anthropic);
                    assert_eq!(seen.headers["x-api-key"], KEY_MARKER);
                    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
                }
            }
        }
    }
}

#[tokio::test]
async fn max_tokens_cut_is_reported_as_length() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [false, true] {
            let net = network(
                &llm_config(&mock.base_url(), kind, stream),
                &llm_task("t", "m"),
            );
            let mut request = ask("one two three four five");
            request.max_tokens = Some(2);
            let reply = net
                .llm(&call("t", Duration::from_secs(30)), request)
                .await
                .unwrap();
            assert_eq!(reply.content, "Summary of");
            assert_eq!(
                reply.finish_reason,
                FinishReason::Length,
                "{kind:?} {stream}"
            );
        }
    }
}

#[tokio::test]
async fn json_schema_replies_are_valid_json_shaped_by_the_schema() {
    let mock = mock().await;
    let schema = json!({
        "type": "object",
        "properties": {
            "facts": {"type": "array", "items": {"type": "string"}},
            "item_ids": {"type": "array", "items": {"type": "integer"}}
        },
        "required": ["facts", "item_ids"],
        "additionalProperties": false
    });
    for kind in KINDS {
        for stream in [false, true] {
            let net = network(
                &llm_config(&mock.base_url(), kind, stream),
                &llm_task("t", "m"),
            );
            let mut request = ask("Items 4 and 5 are done. Ship it.");
            request.json_schema = Some(schema.to_string());
            let reply = net
                .llm(&call("t", Duration::from_secs(30)), request)
                .await
                .unwrap_or_else(|e| panic!("{kind:?} stream={stream}: {e:?}"));
            let value: Value = serde_json::from_str(&reply.content).unwrap();
            assert_eq!(
                value["facts"][0], "Items 4 and 5 are done",
                "{kind:?} {stream}"
            );
            assert_eq!(value["item_ids"], json!([4, 5]));
        }
    }
    // The schema reaches each provider the way its API documents.
    let requests = mock.requests();
    let openai = requests.iter().find(|r| r.api == Api::OpenAi).unwrap();
    assert_eq!(
        openai.body["response_format"]["json_schema"]["schema"],
        schema
    );
    let anthropic = requests.iter().find(|r| r.api == Api::Anthropic).unwrap();
    assert_eq!(anthropic.body["tools"][0]["input_schema"], schema);
}

#[tokio::test]
async fn a_reply_that_breaks_the_schema_is_a_provider_error() {
    let mock = mock().await;
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &llm_task("t", "m"),
    );
    // The mock shapes replies by the schema; an unsatisfiable one cannot match.
    let mut request = ask("anything");
    request.json_schema =
        Some(json!({"type": "string", "minLength": 5, "maxLength": 2}).to_string());
    let err = net
        .llm(&call("t", Duration::from_secs(30)), request)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Provider(ProviderError { status: 502, message }) if message.contains("schema")),
        "{err:?}"
    );
    let mut request = ask("anything");
    request.json_schema = Some("{not json".into());
    let err = net
        .llm(&call("t", Duration::from_secs(30)), request)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let mut request = ask("anything");
    request.json_schema = Some(json!({"type": 12}).to_string());
    let err = net
        .llm(&call("t", Duration::from_secs(30)), request)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
}

#[tokio::test]
async fn hang_before_headers_times_out_at_the_total_timeout() {
    let mock = mock().await;
    for kind in KINDS {
        // Not streamed: bounded by `total` (3s).
        let (result, elapsed, requests) =
            complete(&mock, kind, false, "fault:hang", Duration::from_secs(60)).await;
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
        assert!(
            elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(3) + MARGIN,
            "{elapsed:?}"
        );
        assert_eq!(requests, 1, "a timeout is not retried");
        // Streamed: bounded by `first_byte` (2s).
        let (result, elapsed, _) =
            complete(&mock, kind, true, "fault:hang", Duration::from_secs(60)).await;
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(2) + MARGIN,
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn every_timeout_is_clamped_to_the_units_deadline() {
    let mock = mock().await;
    let mut config = llm_config(&mock.base_url(), ProviderKind::OpenAi, false);
    config.timeouts.total = Duration::from_secs(300);
    config.timeouts.first_byte = Duration::from_secs(300);
    let net = network(&config, &llm_task("t", "fault:hang"));
    let started = Instant::now();
    let result = net
        .llm(&call("t", Duration::from_millis(800)), ask("hi"))
        .await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_millis(800) + MARGIN,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stream_that_stalls_is_cut_by_the_idle_timeout() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [true, false] {
            let (result, elapsed, requests) =
                complete(&mock, kind, stream, "fault:stall", Duration::from_secs(60)).await;
            assert!(
                matches!(result, Err(Error::Timeout)),
                "{kind:?} {stream}: {result:?}"
            );
            // idle is 1s; nothing else would end it this soon.
            assert!(elapsed < Duration::from_secs(1) + MARGIN, "{elapsed:?}");
            assert_eq!(requests, 1);
        }
    }
}

#[tokio::test]
async fn a_trickling_reply_is_cut_by_the_total_timeout() {
    let mock = mock().await;
    let mut config = llm_config(&mock.base_url(), ProviderKind::OpenAi, false);
    config.timeouts.idle = Duration::from_secs(5);
    let net = network(&config, &llm_task("t", "fault:trickle"));
    let started = Instant::now();
    let result = net
        .llm(&call("t", Duration::from_secs(60)), ask("hi"))
        .await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(3) + MARGIN,
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn rate_limits_are_retried_then_reported_with_retry_after() {
    let mock = mock().await;
    for kind in KINDS {
        // Retry-After: 1s, twice, then the error: about 2s.
        let (result, elapsed, requests) =
            complete(&mock, kind, false, "fault:429", Duration::from_secs(60)).await;
        assert!(
            matches!(result, Err(Error::RateLimited(Some(1000)))),
            "{result:?}"
        );
        assert_eq!(requests, 3, "first attempt and 2 retries");
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(2) + MARGIN,
            "{elapsed:?}"
        );
    }
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_returns_at_once() {
    let mock = mock().await;
    let (result, elapsed, requests) = complete(
        &mock,
        ProviderKind::OpenAi,
        false,
        "fault:429:30",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(result, Err(Error::RateLimited(Some(30_000)))),
        "{result:?}"
    );
    assert_eq!(requests, 1);
    assert!(elapsed < MARGIN, "{elapsed:?}");
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let mock = mock().await;
    let mut config = llm_config(&mock.base_url(), ProviderKind::OpenAi, false);
    config.retry.max_retries = 1000;
    let net = network(&config, &llm_task("t", "fault:429"));
    let started = Instant::now();
    let result = net
        .llm(&call("t", Duration::from_millis(3500)), ask("hi"))
        .await;
    assert!(
        matches!(result, Err(Error::RateLimited(Some(1000)))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(3500) + MARGIN,
        "{elapsed:?}"
    );
    let requests = mock.requests().len();
    assert!(
        (2..=5).contains(&requests),
        "Retry-After 1s within 3.5s: {requests} requests"
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_reported_with_their_status() {
    let mock = mock().await;
    for kind in KINDS {
        let (result, _, requests) =
            complete(&mock, kind, false, "fault:500", Duration::from_secs(60)).await;
        match result {
            Err(Error::Provider(ProviderError {
                status: 500,
                message,
            })) => {
                assert!(message.contains("internal error (mock)"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(requests, 3);
    }
}

#[tokio::test]
async fn transient_errors_recover_within_the_retries() {
    let mock = mock().await;
    for fault in ["500*2", "429*1", "reset*2"] {
        let net = network(
            &llm_config(&mock.base_url(), ProviderKind::OpenAi, true),
            &llm_task("t", &format!("fault:{fault}")),
        );
        let ctx = call("t", Duration::from_secs(60));
        let reply = net.llm(&ctx, ask("Recover please.")).await;
        assert!(reply.is_ok(), "{fault}: {reply:?}");
        let retries = fault.rsplit('*').next().unwrap().parse::<u64>().unwrap();
        assert_eq!(ctx.usage.snapshot().llm_retries, retries, "{fault}");
    }
}

#[tokio::test]
async fn a_reset_connection_is_retried_then_reported_as_a_gateway_error() {
    let mock = mock().await;
    for stream in [false, true] {
        let (result, elapsed, requests) = complete(
            &mock,
            ProviderKind::OpenAi,
            stream,
            "fault:reset",
            Duration::from_secs(60),
        )
        .await;
        assert!(
            matches!(
                &result,
                Err(Error::Provider(ProviderError { status: 502, .. }))
            ),
            "{result:?}"
        );
        assert_eq!(requests, 3);
        assert!(elapsed < MARGIN, "{elapsed:?}");
    }
}

#[tokio::test]
async fn unparseable_replies_carry_the_providers_status_without_retries() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [false, true] {
            let (result, _, requests) = complete(
                &mock,
                kind,
                stream,
                "fault:malformed",
                Duration::from_secs(60),
            )
            .await;
            // The mock answered 200 with a body that is not JSON: that is
            // what the plugin hears, not an invented 502.
            match result {
                Err(Error::Provider(ProviderError {
                    status: 200,
                    message,
                })) => {
                    assert!(message.starts_with("unparseable reply: "), "{message}")
                }
                other => panic!("{kind:?} {stream}: {other:?}"),
            }
            assert_eq!(requests, 1);
        }
    }
}

#[tokio::test]
async fn an_http_date_retry_after_is_honoured() {
    for kind in KINDS {
        // A fresh mock: the counted fault fires once per prompt and server.
        let mock = mock().await;
        // Retry-After names the second 3 s from now: the wait is over 2 s
        // (the date has a one-second resolution), not the 50-200 ms backoff.
        let (result, elapsed, requests) = complete(
            &mock,
            kind,
            false,
            "fault:429:date:3*1",
            Duration::from_secs(60),
        )
        .await;
        assert!(result.is_ok(), "{kind:?}: {result:?}");
        assert_eq!(requests, 2, "the first attempt and one retry");
        assert!(
            elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(3) + MARGIN,
            "{kind:?}: {elapsed:?}"
        );
        // And the plugin hears how long the provider asked it to wait.
        let (result, _, _) = complete(
            &mock,
            kind,
            false,
            "fault:429:date:30",
            Duration::from_secs(10),
        )
        .await;
        match result {
            Err(Error::RateLimited(Some(ms))) => {
                assert!((28_000..=30_000).contains(&ms), "{kind:?}: {ms} ms")
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn replies_without_usage_are_accounted_as_unknown_not_zero() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [true, false] {
            let net = network(
                &llm_config(&mock.base_url(), kind, stream),
                &llm_task("t", "fault:no-usage"),
            );
            let ctx = call("t", Duration::from_secs(30));
            let reply = net
                .llm(&ctx, ask("Alice met Bob. They talked."))
                .await
                .unwrap_or_else(|e| panic!("{kind:?} stream={stream}: {e:?}"));
            assert_eq!(
                reply.content, "Summary of 5 words: Alice met Bob. They talked.",
                "{kind:?} stream={stream}"
            );
            let usage = ctx.usage.snapshot();
            assert_eq!(
                (
                    usage.llm_calls,
                    usage.llm_usage_unknown,
                    usage.input_tokens,
                    usage.output_tokens
                ),
                (1, 1, 0, 0),
                "{kind:?} stream={stream}"
            );
        }
    }
    // A reply with usage is counted, and is not unknown.
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, true),
        &llm_task("t", "m"),
    );
    let ctx = call("t", Duration::from_secs(30));
    net.llm(&ctx, ask("Alice met Bob. They talked."))
        .await
        .unwrap();
    let usage = ctx.usage.snapshot();
    assert_eq!(
        (
            usage.llm_usage_unknown,
            usage.input_tokens,
            usage.output_tokens
        ),
        (0, 6, 9)
    );
}

#[tokio::test]
async fn temperature_is_sent_as_the_decimal_the_plugin_gave() {
    let mock = mock().await;
    for kind in KINDS {
        for temperature in [0.2f32, 0.7, 1.3] {
            let net = network(
                &llm_config(&mock.base_url(), kind, false),
                &llm_task("t", "m"),
            );
            let mut request = ask("hi");
            request.temperature = Some(temperature);
            net.llm(&call("t", Duration::from_secs(30)), request)
                .await
                .unwrap();
            let sent = &mock.requests().pop().unwrap().body["temperature"];
            assert_eq!(
                sent.to_string(),
                temperature.to_string(),
                "{kind:?}: the wire carries {sent}"
            );
        }
    }
}

#[tokio::test]
async fn huge_replies_are_cut_at_the_cap() {
    let mock = mock().await;
    for kind in KINDS {
        for stream in [false, true] {
            let (result, elapsed, _) =
                complete(&mock, kind, stream, "fault:huge", Duration::from_secs(60)).await;
            assert!(
                matches!(result, Err(Error::ResponseTooLarge)),
                "{kind:?} {stream}: {result:?}"
            );
            assert!(elapsed < MARGIN, "{elapsed:?}");
        }
    }
}

#[tokio::test]
async fn the_fallback_model_answers_when_the_model_fails() {
    let mock = mock().await;
    let mut tasks = llm_task("t", "fault:500");
    tasks.get_mut("t").unwrap().llm.fallback_model = Some("backup".into());
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &tasks,
    );
    let ctx = call("t", Duration::from_secs(60));
    let reply = net.llm(&ctx, ask("hi")).await.unwrap();
    assert_eq!(reply.model, "backup");
    let models: Vec<String> = mock.requests().into_iter().map(|r| r.model).collect();
    assert_eq!(models, ["fault:500", "fault:500", "fault:500", "backup"]);
    assert_eq!(ctx.usage.snapshot().llm_retries, 3);
}

#[tokio::test]
async fn models_outside_the_allowlist_and_unconfigured_tasks_are_denied() {
    let mock = mock().await;
    let mut tasks = llm_task("t", "default-model");
    tasks.get_mut("t").unwrap().llm.allowed_models = vec!["big-model".into()];
    let net = network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &tasks,
    );
    let ctx = call("t", Duration::from_secs(30));
    for (model, allowed) in [
        ("big-model", true),
        ("default-model", true),
        ("other", false),
    ] {
        let mut request = ask("hi");
        request.model = Some(model.into());
        let result = net.llm(&ctx, request).await;
        match (allowed, &result) {
            (true, Ok(reply)) => assert_eq!(reply.model, model),
            (false, Err(Error::Denied(message))) => {
                assert!(message.contains("`other`"), "{message}")
            }
            _ => panic!("{model}: {result:?}"),
        }
    }
    let result = net
        .llm(&call("unknown", Duration::from_secs(30)), ask("hi"))
        .await;
    assert!(matches!(result, Err(Error::Denied(_))), "{result:?}");
    let mut request = ask("hi");
    request.messages.clear();
    let result = net.llm(&ctx, request).await;
    assert!(
        matches!(result, Err(Error::InvalidRequest(_))),
        "{result:?}"
    );
    assert_eq!(
        mock.requests().len(),
        2,
        "refused calls never reach the provider"
    );
}

#[tokio::test]
async fn configuration_errors_name_their_key() {
    let config = llm_config("http://127.0.0.1:9/v1", ProviderKind::OpenAi, false);
    let err = Network::with_env(&config, &llm_task("t", "m"), |_| None).unwrap_err();
    assert_eq!(
        err,
        OutboundConfigError {
            key: "llm.providers.mock.api_key_env".into(),
            message: format!("environment variable `{KEY_ENV}` is not set"),
        }
    );
    let mut tasks = llm_task("summary", "m");
    tasks.get_mut("summary").unwrap().llm.provider = Some("foo".into());
    let err = Network::with_env(&config, &tasks, |_| Some("k".into())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tasks.summary.llm.provider: no provider `foo` in [llm.providers]"
    );
    let mut tasks = llm_task("summary", "m");
    tasks.get_mut("summary").unwrap().llm = TaskLlmConfig {
        provider: Some("mock".into()),
        ..TaskLlmConfig::default()
    };
    let err = Network::with_env(&config, &tasks, |_| Some("k".into())).unwrap_err();
    assert_eq!(err.key, "tasks.summary.llm.model");
    let mut bad = config.clone();
    bad.providers.get_mut("mock").unwrap().base_url = Some("ftp://x".into());
    let err = Network::with_env(&bad, &tasks, |_| Some("k".into())).unwrap_err();
    assert_eq!(err.key, "llm.providers.mock.base_url");
}

#[tokio::test]
async fn config_round_trips_through_toml_with_human_durations() {
    let text = r#"
        max_response_bytes = 1048576
        [timeouts]
        connect = "500ms"
        idle = "30s"
        total = "10m"
        [retry]
        max_retries = 5
        base_backoff = "200ms"
        [providers.local]
        kind = "openai"
        base_url = "http://user:pw@127.0.0.1:8089/v1"
        stream = true
        [providers.local.timeouts]
        first_byte = "2s"
    "#;
    let config: sluice::outbound::LlmConfig = toml::from_str(text).unwrap();
    assert_eq!(config.timeouts.connect, Duration::from_millis(500));
    assert_eq!(config.timeouts.total, Duration::from_secs(600));
    assert_eq!(
        config.timeouts.first_byte,
        Duration::from_secs(60),
        "default kept"
    );
    assert_eq!(config.retry.max_retries, 5);
    assert_eq!(
        config.providers["local"].timeouts.first_byte,
        Some(Duration::from_secs(2))
    );
    // `sluice config` hides the password (config::tests covers it).
    let printed = toml::to_string(&config).unwrap();
    assert!(printed.contains("total = \"10m\""), "{printed}");
    let err =
        toml::from_str::<sluice::outbound::LlmConfig>("[timeouts]\nidel = \"1s\"").unwrap_err();
    assert!(err.to_string().contains("idel"), "{err}");
}

#[tokio::test]
async fn the_api_key_never_appears_in_logs_errors_or_replies() {
    let logs = capture_logs();
    let mock = mock().await;
    let mut seen = Vec::new();
    for kind in KINDS {
        for model in [
            "m",
            "fault:500",
            "fault:429:30",
            "fault:malformed",
            "fault:reset",
            "fault:stall",
        ] {
            let (result, _, _) = complete(&mock, kind, true, model, Duration::from_secs(30)).await;
            seen.push(format!("{result:?}"));
        }
    }
    let port = mock.addr().port().to_string();
    let logs = logs.text();
    // Every line, dependencies' traces included, is free of the key.
    for text in seen.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(KEY_MARKER), "the key leaked: {text}");
    }
    // Sluice's own lines and the errors guests see never name the provider's
    // address (the HTTP client's own traces do, at debug and trace level).
    let ours = logs.lines().filter(|line| {
        line.split_whitespace()
            .nth(2)
            .is_some_and(|t| t.starts_with("sluice"))
    });
    for text in seen.iter().map(String::as_str).chain(ours) {
        assert!(!text.contains(&port), "the provider URL leaked: {text}");
    }
    assert!(
        logs.contains("retrying LLM request"),
        "logs were captured: {logs}"
    );
    // The provider did receive it.
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.headers.get("x-api-key").is_some_and(|v| v == KEY_MARKER))
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_gateway_error_that_hides_its_address() {
    // Nothing listens on port 1 of the loopback address.
    let config = llm_config("http://127.0.0.1:1/v1", ProviderKind::OpenAi, false);
    let net = network(&config, &llm_task("t", "m"));
    let ctx = call("t", Duration::from_secs(30));
    let result = net.llm(&ctx, ask("hi")).await;
    match &result {
        Err(Error::Provider(ProviderError {
            status: 502,
            message,
        })) => {
            assert!(
                message.contains("could not reach provider `mock`"),
                "{message}"
            );
            assert!(!message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ctx.usage.snapshot().llm_retries,
        2,
        "connection errors are retried"
    );
}
