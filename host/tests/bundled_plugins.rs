//! The bundled plugins, run through the real runtime against scripted
//! outbound stand-ins: a fake LLM that answers (or fails) as each test says,
//! and a fake webhook receiver that verifies the signature itself. These pin
//! the plugins' outputs and their error classification end to end.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sluice::imports::{CallContext, Outbound};
use sluice::runtime::bindings::types::WorkItem;
use sluice::runtime::bindings::{http, llm};
use sluice::runtime::limits::CallLimits;
use sluice::runtime::registry::{self, Plugin};
use sluice::runtime::{CallOutcome, CallRequest, Cancellation};
use support::{guest_wasm, hmac_sha256, runtime};

type LlmScript = Box<dyn Fn(&llm::Request) -> Result<llm::Response, llm::Error> + Send + Sync>;
type HttpScript = Box<dyn Fn(&http::Request) -> Result<http::Response, http::Error> + Send + Sync>;

/// Answers `llm` and `http` calls from scripts and keeps every request.
struct Scripted {
    llm: LlmScript,
    http: HttpScript,
    llm_requests: Mutex<Vec<llm::Request>>,
    http_requests: Mutex<Vec<http::Request>>,
}

impl Scripted {
    fn llm(
        script: impl Fn(&llm::Request) -> Result<llm::Response, llm::Error> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            llm: Box::new(script),
            http: Box::new(|_| panic!("no http call expected")),
            llm_requests: Mutex::default(),
            http_requests: Mutex::default(),
        })
    }

    fn http(
        script: impl Fn(&http::Request) -> Result<http::Response, http::Error> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            llm: Box::new(|_| panic!("no llm call expected")),
            http: Box::new(script),
            llm_requests: Mutex::default(),
            http_requests: Mutex::default(),
        })
    }
}

#[async_trait::async_trait]
impl Outbound for Scripted {
    async fn llm(
        &self,
        _: &CallContext,
        request: llm::Request,
    ) -> Result<llm::Response, llm::Error> {
        let reply = (self.llm)(&request);
        self.llm_requests.lock().unwrap().push(request);
        reply
    }

    async fn http(
        &self,
        _: &CallContext,
        request: http::Request,
    ) -> Result<http::Response, http::Error> {
        let reply = (self.http)(&request);
        self.http_requests.lock().unwrap().push(request);
        reply
    }
}

fn reply(content: &str) -> Result<llm::Response, llm::Error> {
    Ok(llm::Response {
        content: content.into(),
        model: "fake-model".into(),
        usage: llm::Usage {
            input_tokens: 120,
            output_tokens: 30,
        },
        finish_reason: llm::FinishReason::Stop,
    })
}

async fn plugin(name: &str) -> Plugin {
    registry::load_file(&runtime(1), &guest_wasm(name))
        .await
        .expect("plugin loads")
}

/// Calls `plugin` with items `(id, payload)` of task type `task_type`, all on
/// `attempt`, with the given config values and outbound stand-in.
async fn call(
    plugin: &Plugin,
    task_type: &str,
    items: &[(u64, Value)],
    attempt: u32,
    config: &[(&str, &str)],
    outbound: Arc<Scripted>,
) -> CallOutcome {
    let items = items
        .iter()
        .map(|(id, payload)| WorkItem {
            id: *id,
            task_type: task_type.into(),
            work_unit_key: "unit-1".into(),
            payload: payload.to_string(),
            attempt,
            enqueued_at_ms: 1_772_000_000_000,
        })
        .collect();
    let config: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plugin
        .call(CallRequest {
            items,
            limits: CallLimits {
                timeout: Duration::from_secs(20),
                ..CallLimits::default()
            },
            task_config: Arc::new(config),
            outbound,
            cancel: Cancellation::never(),
            usage: Default::default(),
        })
        .await
        .expect("call")
}

fn output(outcome: CallOutcome) -> Value {
    match outcome {
        CallOutcome::Ok(out) => serde_json::from_str(out.output.expect("an output").get()).unwrap(),
        other => panic!("expected ok, got {other:?}"),
    }
}

fn message(peer: &str, content: &str, created_at: &str) -> Value {
    json!({"session": "s1", "peer": peer, "content": content, "created_at": created_at, "observed": "alice"})
}

fn conversation() -> Vec<(u64, Value)> {
    vec![
        (
            101,
            message(
                "alice",
                "I handed in my notice yesterday.",
                "2026-03-02T09:12:00Z",
            ),
        ),
        (
            102,
            message("bob", "Where are you going?", "2026-03-02T09:13:00Z"),
        ),
        (
            103,
            message(
                "alice",
                "Acme Robotics. I start next Monday.",
                "2026-03-02T09:15:00Z",
            ),
        ),
    ]
}

#[tokio::test]
async fn representation_maps_cited_messages_to_item_ids() {
    let plugin = plugin("sluice_plugin_representation").await;
    let llm = Scripted::llm(|_| {
        reply(
            r#"{"observations":[
            {"content":"Alice resigned from her job on 2026-03-01.","source_ids":[1]},
            {"content":"Alice starts working at Acme Robotics on 2026-03-09.","source_ids":[3, 2]}
        ]}"#,
        )
    });
    let out = output(
        call(
            &plugin,
            "representation",
            &conversation(),
            1,
            &[],
            llm.clone(),
        )
        .await,
    );
    assert_eq!(
        out,
        json!({
            "observations": [
                {"observed": "alice", "content": "Alice resigned from her job on 2026-03-01.", "item_ids": [101], "attribution": "cited"},
                {"observed": "alice", "content": "Alice starts working at Acme Robotics on 2026-03-09.", "item_ids": [103], "attribution": "cited"},
            ],
            "models": ["fake-model"],
            "usage": {"llm_calls": 1, "input_tokens": 120, "output_tokens": 30},
            "skipped": [],
        })
    );
    let requests = llm.llm_requests.lock().unwrap();
    assert_eq!(requests.len(), 1, "one call for the whole batch");
    let schema: Value =
        serde_json::from_str(requests[0].json_schema.as_deref().expect("a schema")).unwrap();
    assert_eq!(schema["required"], json!(["observations"]));
    let user = &requests[0].messages[1].content;
    assert!(
        user.contains("[2] 2026-03-02T09:13:00Z | session s1 | bob (context only)"),
        "{user}"
    );
    assert!(
        user.contains("[3] 2026-03-02T09:15:00Z | session s1 | alice (observed)"),
        "{user}"
    );
}

/// What a schema-driven mock answers: the prompt echoed into strings and
/// arbitrary integers. Unknown ids are dropped and the fact is attributed to
/// the observed peer's messages, never to nothing.
#[tokio::test]
async fn representation_tolerates_a_mock_reply_with_arbitrary_ids() {
    let plugin = plugin("sluice_plugin_representation").await;
    let llm = Scripted::llm(|request| {
        let echoed = request.messages.last().unwrap().content.clone();
        reply(&json!({"observations": [{"content": echoed, "source_ids": [0, 42]}]}).to_string())
    });
    let out = output(call(&plugin, "representation", &conversation(), 1, &[], llm).await);
    let observation = &out["observations"][0];
    assert_eq!(observation["item_ids"], json!([101, 103]));
    assert_eq!(observation["attribution"], "batch");
}

#[tokio::test]
async fn representation_retries_a_broken_reply_once_then_gives_up_with_the_reply() {
    let plugin = plugin("sluice_plugin_representation").await;
    let broken = || Scripted::llm(|_| reply("Sure! Alice quit her job."));
    match call(&plugin, "representation", &conversation(), 1, &[], broken()).await {
        CallOutcome::Retryable { message } => {
            assert!(
                message.contains("not JSON") && message.contains("Sure! Alice quit her job."),
                "{message}"
            );
        }
        other => panic!("attempt 1 should be retryable, got {other:?}"),
    }
    match call(&plugin, "representation", &conversation(), 2, &[], broken()).await {
        CallOutcome::Permanent { message } => {
            assert!(
                message.contains("Sure! Alice quit her job.") && message.contains("attempt 2"),
                "{message}"
            );
        }
        other => panic!("attempt 2 should be permanent, got {other:?}"),
    }
    let empty_list = Scripted::llm(|_| reply(r#"{"facts": []}"#));
    assert!(matches!(
        call(
            &plugin,
            "representation",
            &conversation(),
            1,
            &[],
            empty_list
        )
        .await,
        CallOutcome::Retryable { .. }
    ));
}

#[tokio::test]
async fn representation_classifies_llm_errors() {
    let plugin = plugin("sluice_plugin_representation").await;
    let timeout = Scripted::llm(|_| Err(llm::Error::Timeout));
    assert!(matches!(
        call(&plugin, "representation", &conversation(), 3, &[], timeout).await,
        CallOutcome::Retryable { .. }
    ));
    let bad_request = Scripted::llm(|_| {
        Err(llm::Error::Provider(llm::ProviderError {
            status: 400,
            message: "unknown model".into(),
        }))
    });
    match call(
        &plugin,
        "representation",
        &conversation(),
        1,
        &[],
        bad_request,
    )
    .await
    {
        CallOutcome::Permanent { message } => {
            assert!(message.contains("400") && message.contains("unknown model"))
        }
        other => panic!("a 400 is permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn summary_summarizes_within_the_budget() {
    let plugin = plugin("sluice_plugin_summary").await;
    let llm = Scripted::llm(|_| reply("  Alice and Bob will ship the importer on Tuesday.  "));
    let payload = json!({"messages": [
        {"peer": "alice", "content": "Ship on Tuesday?"},
        {"peer": "bob", "content": "Yes, once the CSV bugs are fixed."},
    ], "max_tokens": 64});
    let out = output(
        call(
            &plugin,
            "summary",
            &[(7, payload)],
            1,
            &[("max_tokens", "500")],
            llm.clone(),
        )
        .await,
    );
    assert_eq!(
        out,
        json!({
            "summary": "Alice and Bob will ship the importer on Tuesday.",
            "model": "fake-model",
            "usage": {"input_tokens": 120, "output_tokens": 30},
            "finish_reason": "stop",
            "max_tokens": 64,
        })
    );
    {
        let requests = llm.llm_requests.lock().unwrap();
        assert_eq!(
            requests[0].max_tokens,
            Some(64),
            "the payload's budget wins"
        );
        assert_eq!(
            requests[0].messages[1].content,
            "alice: Ship on Tuesday?\nbob: Yes, once the CSV bugs are fixed."
        );
    }
    let llm = Scripted::llm(|_| reply("Short."));
    let out = output(
        call(
            &plugin,
            "summary",
            &[(8, json!({"text": "Long text."}))],
            1,
            &[("max_tokens", "100")],
            llm.clone(),
        )
        .await,
    );
    assert_eq!(out["max_tokens"], 100, "then the operator's");
    let bad = call(
        &plugin,
        "summary",
        &[(9, json!({"txt": "x"}))],
        1,
        &[],
        Scripted::llm(|_| reply("x")),
    )
    .await;
    assert!(matches!(bad, CallOutcome::Permanent { .. }), "{bad:?}");
}

fn header<'a>(request: &'a http::Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A receiver that checks the signature and answers `status`.
fn receiver(status: u16) -> Arc<Scripted> {
    Scripted::http(move |request| {
        let body = request.body.as_deref().unwrap_or_default();
        let expected = format!("sha256={}", hmac_sha256(b"s3cret", body));
        let status = if header(request, "X-Sluice-Signature") == Some(expected.as_str()) {
            status
        } else {
            401
        };
        Ok(http::Response {
            status,
            headers: Vec::new(),
            body: format!("answered {status}").into_bytes(),
        })
    })
}

const WEBHOOK_CONFIG: [(&str, &str); 2] = [
    ("url", "https://hooks.example/sluice"),
    ("secret", "s3cret"),
];

#[tokio::test]
async fn webhook_delivers_the_payload_signed_to_the_configured_url() {
    let plugin = plugin("sluice_plugin_webhook").await;
    let event = json!({"event": "summary.created", "summary": "Ship on Tuesday", "url": "https://evil.example/"});
    let http = receiver(204);
    let out = output(
        call(
            &plugin,
            "webhook",
            &[(42, event.clone())],
            2,
            &WEBHOOK_CONFIG,
            http.clone(),
        )
        .await,
    );
    assert_eq!(out, json!({"status": 204, "item_id": 42, "attempt": 2}));
    let requests = http.http_requests.lock().unwrap();
    let request = &requests[0];
    assert!(matches!(request.method, http::Method::Post));
    assert_eq!(
        request.url, "https://hooks.example/sluice",
        "never the payload's url"
    );
    assert_eq!(request.body.as_deref(), Some(event.to_string().as_bytes()));
    assert_eq!(header(request, "X-Sluice-Item-Id"), Some("42"));
    assert_eq!(header(request, "X-Sluice-Attempt"), Some("2"));
    assert_eq!(
        header(request, "X-Sluice-Enqueued-At"),
        Some("1772000000000")
    );
    assert_eq!(header(request, "Content-Type"), Some("application/json"));
}

#[tokio::test]
async fn webhook_retries_5xx_and_timeouts_and_gives_up_on_4xx() {
    let plugin = plugin("sluice_plugin_webhook").await;
    let event = || vec![(1, json!({"event": "x"}))];
    for status in [500, 503, 429] {
        let outcome = call(
            &plugin,
            "webhook",
            &event(),
            1,
            &WEBHOOK_CONFIG,
            receiver(status),
        )
        .await;
        assert!(
            matches!(outcome, CallOutcome::Retryable { .. }),
            "{status}: {outcome:?}"
        );
    }
    for status in [400, 404, 410] {
        match call(
            &plugin,
            "webhook",
            &event(),
            1,
            &WEBHOOK_CONFIG,
            receiver(status),
        )
        .await
        {
            CallOutcome::Permanent { message } => {
                assert!(message.contains(&format!("answered {status}")), "{message}")
            }
            other => panic!("{status} should be permanent, got {other:?}"),
        }
    }
    let timeout = Scripted::http(|_| Err(http::Error::Timeout));
    assert!(matches!(
        call(&plugin, "webhook", &event(), 1, &WEBHOOK_CONFIG, timeout).await,
        CallOutcome::Retryable { .. }
    ));
    // A wrong secret is a 401 from the receiver: permanent.
    let wrong_secret = [("url", "https://hooks.example/sluice"), ("secret", "guess")];
    assert!(matches!(
        call(
            &plugin,
            "webhook",
            &event(),
            1,
            &wrong_secret,
            receiver(204)
        )
        .await,
        CallOutcome::Permanent { .. }
    ));
    match call(
        &plugin,
        "webhook",
        &event(),
        1,
        &[("url", "https://hooks.example/")],
        receiver(204),
    )
    .await
    {
        CallOutcome::Permanent { message } => {
            assert!(message.contains("`secret` is not set"), "{message}")
        }
        other => panic!("a missing secret is permanent, got {other:?}"),
    }
}
