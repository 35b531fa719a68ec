//! The bundled plugins through the whole host: the real pool and store, the
//! real `llm` and `http` imports built from the configuration, an in-process
//! mock LLM server and a local webhook receiver. Proves that `representation`
//! turns a unit's conversation into observations tied to that unit's items,
//! that `summary` summarizes, that `webhook` delivers signed payloads and that
//! its receiver's answers decide the outcome (2xx done, 4xx dead at once, 5xx
//! retried then dead), and that a failing LLM provider gets representation
//! items retried and then dead-lettered.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use mock_llm::{MockLlm, Options};
use serde_json::{Value, json};
use sluice::config::{Config, TaskSection};
use sluice::outbound::TaskHttpConfig;
use sluice::store::NewItem;
use sluice::worker::Host;
use support::hmac_sha256;
use support::host;
use support::stores::{self, TestStore};

const MAX_ATTEMPTS: u32 = 3;
const SECRET: &str = "s3cret";

async fn mock(fault: Option<&str>) -> MockLlm {
    MockLlm::start(Options {
        rules: Vec::new(),
        fault: fault.map(|fault| fault.parse().unwrap()),
        ..Options::default()
    })
    .await
    .expect("the mock LLM server starts")
}

/// A host configuration whose `task_type` may use the mock LLM.
fn llm_config(mock: &MockLlm, task_type: &str) -> Config {
    let mut config = host::fast_config(2);
    host::mock_llm(&mut config, &mock.base_url(), false);
    config.llm.timeouts.total = Duration::from_secs(20);
    config.tasks.insert(
        task_type.into(),
        host::with_llm(
            host::task(Duration::from_secs(30), MAX_ATTEMPTS),
            "mock-model",
        ),
    );
    config
}

/// Starts a host with the bundled plugin `plugin` and the configured network.
async fn start(db: &TestStore, config: Config, plugin: &str) -> Host {
    let outbound = host::network(&config);
    host::start_plugins(db.store.clone(), config, outbound, &[plugin]).await
}

fn item(task_type: &str, key: &str, payload: &Value) -> NewItem {
    NewItem {
        task_type: task_type.into(),
        work_unit_key: key.into(),
        payload: payload.to_string(),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
}

/// Two peers over two sessions, observed from alice's side.
fn conversation() -> Vec<Value> {
    let message = |session: &str, peer: &str, content: &str, at: &str| json!({"session": session, "peer": peer, "content": content, "created_at": at, "observed": "alice"});
    vec![
        message(
            "s-1",
            "alice",
            "I handed in my notice yesterday.",
            "2026-03-02T09:12:00Z",
        ),
        message(
            "s-1",
            "bob",
            "Where are you going next?",
            "2026-03-02T09:13:00Z",
        ),
        message(
            "s-1",
            "alice",
            "Acme Robotics. I start next Monday.",
            "2026-03-02T09:15:00Z",
        ),
        message(
            "s-2",
            "bob",
            "How was the first week?",
            "2026-03-13T18:00:00Z",
        ),
        message(
            "s-2",
            "alice",
            "Great. I lead the firmware team now.",
            "2026-03-13T18:05:00Z",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representation_derives_observations_of_the_units_items() {
    let db = stores::sqlite().await;
    let mock = mock(None).await;
    let host = start(
        &db,
        llm_config(&mock, "representation"),
        "sluice_plugin_representation",
    )
    .await;
    // Items of another unit first, so that this unit's item ids (101...) are
    // not the transcript numbers (1...) the model cites.
    let other: Vec<NewItem> = (0..100)
        .map(|n| item("unhandled", "elsewhere", &json!({"n": n})))
        .collect();
    db.store.enqueue(&other).await.unwrap();
    let messages = conversation();
    let items: Vec<NewItem> = messages
        .iter()
        .map(|payload| item("representation", "conv/alice", payload))
        .collect();
    let enqueued = db.store.enqueue(&items).await.unwrap();
    let unit_ids: Vec<i64> = enqueued.iter().map(|e| e.id).collect();
    let alice_ids: Vec<i64> = unit_ids
        .iter()
        .zip(&messages)
        .filter(|(_, message)| message["peer"] == "alice")
        .map(|(id, _)| *id)
        .collect();

    host::run_until(
        host,
        db.store.as_ref(),
        "representation",
        "done",
        messages.len() as i64,
    )
    .await;

    let outputs = host::outputs(db.store.as_ref(), "representation", "conv/alice").await;
    assert!(!outputs.is_empty());
    let mut observations = Vec::new();
    for (ids, output) in &outputs {
        assert!(ids.iter().all(|id| unit_ids.contains(id)), "{ids:?}");
        observations.extend(output["observations"].as_array().expect("observations"));
    }
    assert!(!observations.is_empty(), "{outputs:?}");
    for observation in observations {
        assert_eq!(observation["observed"], "alice", "{observation}");
        assert!(
            !observation["content"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{observation}"
        );
        let cited: Vec<i64> = observation["item_ids"]
            .as_array()
            .expect("item_ids")
            .iter()
            .map(|id| id.as_i64().expect("an item id"))
            .collect();
        assert!(!cited.is_empty(), "{observation}");
        assert!(
            cited.iter().all(|id| alice_ids.contains(id)),
            "observations cite alice's messages of this unit only: {observation} (alice: {alice_ids:?})"
        );
    }
    assert!(!mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representation_retries_a_failing_provider_then_dead_letters() {
    let db = stores::sqlite().await;
    let mock = mock(Some("500")).await;
    let host = start(
        &db,
        llm_config(&mock, "representation"),
        "sluice_plugin_representation",
    )
    .await;
    // Two of alice's messages: the batch's head is dead-lettered first, then
    // the next one, now the head.
    let items: Vec<NewItem> = conversation()
        .iter()
        .filter(|message| message["peer"] == "alice")
        .take(2)
        .map(|payload| item("representation", "conv/alice", payload))
        .collect();
    db.store.enqueue(&items).await.unwrap();

    host::run_until(host, db.store.as_ref(), "representation", "dead", 2).await;

    let dead = db.store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for item in &dead {
        // Each item gets its own max_attempts as the head; the second item's
        // history also keeps the failures it shared with the first.
        assert_eq!(item.attempts, MAX_ATTEMPTS, "{item:?}");
        let errors = item.errors.as_array().expect("an error history");
        assert!(errors.len() >= item.attempts as usize, "{item:?}");
        assert!(
            item.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("status 500"),
            "retryable provider failures: {item:?}"
        );
    }
    let head = dead.iter().min_by_key(|item| item.id).unwrap();
    assert_eq!(head.attempts, MAX_ATTEMPTS, "{head:?}");
    assert!(
        mock.requests().len() >= MAX_ATTEMPTS as usize,
        "one call (at least) per attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_summarizes_a_text() {
    let db = stores::sqlite().await;
    let mock = mock(None).await;
    let host = start(&db, llm_config(&mock, "summary"), "sluice_plugin_summary").await;
    let text = "The quarterly review moved from Thursday to Friday because finance needs \
                another day. Revenue grew 12% over last quarter.";
    db.store
        .enqueue(&[item("summary", "doc-1", &json!({"text": text}))])
        .await
        .unwrap();

    host::run_until(host, db.store.as_ref(), "summary", "done", 1).await;

    let outputs = host::outputs(db.store.as_ref(), "summary", "doc-1").await;
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let summary = outputs[0].1["summary"].as_str().unwrap_or_default();
    assert!(!summary.trim().is_empty(), "{outputs:?}");
    let records = host::call_records(&db, "summary").await;
    assert!(records[0]["usage"]["llm_calls"].as_u64() >= Some(1));
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    body: Vec<u8>,
    /// Whether `X-Sluice-Signature` matched the body and the secret.
    signed: bool,
    attempt: Option<String>,
}

/// A webhook receiver on 127.0.0.1 that checks each delivery's signature,
/// keeps it, and answers `status` (401 to a bad signature).
struct Receiver {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let seen = deliveries.clone();
        let hook = move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned)
                };
                let expected = format!("sha256={}", hmac_sha256(SECRET.as_bytes(), &body));
                let signed = header("x-sluice-signature") == Some(expected);
                seen.lock().unwrap().push(Delivery {
                    body: body.to_vec(),
                    signed,
                    attempt: header("x-sluice-attempt"),
                });
                let status = if signed { status } else { 401 };
                (StatusCode::from_u16(status).unwrap(), "answered")
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(hook));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver runs");
        });
        Self {
            addr,
            deliveries,
            task,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }
}

/// Delivers one event through a host running the webhook plugin to a
/// receiver that answers `status`, until the item is in `state`.
async fn deliver(status: u16, state: &str) -> (TestStore, Receiver) {
    let db = stores::sqlite().await;
    let receiver = Receiver::start(status).await;
    let mut config = host::fast_config(2);
    let section = TaskSection {
        config: BTreeMap::from([
            ("url".into(), format!("http://{}/hook", receiver.addr)),
            ("secret".into(), SECRET.into()),
        ]),
        http: TaskHttpConfig {
            allow_hosts: vec![format!("127.0.0.1:{}", receiver.addr.port())],
            allow_private: vec!["127.0.0.1".into()],
            ..TaskHttpConfig::default()
        },
        ..host::task(Duration::from_secs(30), MAX_ATTEMPTS)
    };
    config.tasks.insert("webhook".into(), section);
    let host = start(&db, config, "sluice_plugin_webhook").await;
    db.store
        .enqueue(&[item("webhook", "tenant-7", &event())])
        .await
        .unwrap();
    host::run_until(host, db.store.as_ref(), "webhook", state, 1).await;
    (db, receiver)
}

fn event() -> Value {
    json!({"event": "summary.created", "key": "conv-42", "summary": "Ship on Tuesday."})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivers_a_signed_payload() {
    let (db, receiver) = deliver(200, "done").await;

    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert!(delivery.signed, "the signature matches: {delivery:?}");
    assert_eq!(delivery.attempt.as_deref(), Some("1"));
    let body: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(body, event());
    let outputs = host::outputs(db.store.as_ref(), "webhook", "tenant-7").await;
    assert_eq!(outputs[0].1["status"], 200, "{outputs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_dead_letters_at_once_on_a_4xx_answer() {
    let (db, receiver) = deliver(400, "dead").await;

    let dead = db.store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead[0].attempts, 1, "permanent: no retry: {dead:?}");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("400"),
        "{dead:?}"
    );
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert!(deliveries[0].signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_a_5xx_answer_then_dead_letters() {
    let (db, receiver) = deliver(503, "dead").await;

    let dead = db.store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead[0].attempts, MAX_ATTEMPTS, "{dead:?}");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{dead:?}"
    );
    let deliveries = receiver.deliveries();
    let attempts: Vec<_> = deliveries.iter().map(|d| d.attempt.as_deref()).collect();
    assert_eq!(
        attempts,
        [Some("1"), Some("2"), Some("3")],
        "{deliveries:?}"
    );
    assert!(deliveries.iter().all(|d| d.signed), "{deliveries:?}");
}
