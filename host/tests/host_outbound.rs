//! LLM calls through the whole host: the real pool, the real `llm` import
//! built from the configuration (`Config::network`, as `sluice run` does) and
//! an in-process mock LLM server that misbehaves on demand. Proves that a
//! streamed reply that stalls is cut by the between-bytes timeout and the unit
//! retried to completion; that a provider that always answers 429 is retried
//! within each attempt until the unit's deadline, and the item dead-lettered
//! after `max_attempts` with a rate-limit error; and that a successful call's
//! usage is stored beside its output. The adversary plugin's `llm-call` task
//! type makes the requests.

mod support;

use std::time::Duration;

use mock_llm::{MockLlm, Options};
use serde_json::json;
use sluice::config::Config;
use sluice::store::NewItem;
use support::host::{self, count};
use support::stores::{self, TestStore};

const TASK: &str = "llm-call";
const KEY: &str = "unit";

async fn mock(rules: &[&str]) -> MockLlm {
    MockLlm::start(Options {
        rules: rules.iter().map(|rule| rule.parse().unwrap()).collect(),
        fault: None,
        ..Options::default()
    })
    .await
    .expect("the mock LLM server starts")
}

/// A host configuration whose `llm-call` task type may use the mock.
fn config(mock: &MockLlm, stream: bool, timeout: Duration, max_attempts: u32) -> Config {
    let mut config = host::fast_config(2);
    host::mock_llm(&mut config, &mock.base_url(), stream);
    // Only the idle timeout (1 s) is short: a busy machine must not time out
    // the answers that should succeed.
    config.llm.timeouts.first_byte = Duration::from_secs(20);
    config.llm.timeouts.total = Duration::from_secs(30);
    config.tasks.insert(
        TASK.into(),
        host::with_llm(host::task(timeout, max_attempts), "mock-model"),
    );
    config
}

/// Runs one `llm-call` item on unit `KEY`, asking the mock `prompt`, through
/// a host configured by `config` until the item is in `state`.
async fn run_one(db: &TestStore, config: Config, prompt: &str, state: &str) {
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    let payload = json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 32});
    db.store
        .enqueue(&[NewItem {
            task_type: TASK.into(),
            work_unit_key: KEY.into(),
            payload: payload.to_string(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        }])
        .await
        .unwrap();
    host::run_until(host, db.store.as_ref(), TASK, state, 1).await;
}

fn requests_for(mock: &MockLlm, text: &str) -> Vec<mock_llm::RecordedRequest> {
    mock.requests()
        .into_iter()
        .filter(|request| request.prompt.contains(text))
        .collect()
}

async fn stalled_stream_is_retried_to_completion(db: TestStore) {
    let mock = mock(&["stall-me=stall*1"]).await;
    // The unit's deadline is far off: only the idle timeout (1 s) can end
    // the stalled stream in time for the item to be done within a minute.
    let config = config(&mock, true, Duration::from_secs(120), 3);
    run_one(&db, config, "stall-me: what did I say?", "done").await;

    let items = host::items(&db, TASK).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item.state, "done");
    assert_eq!(item.attempts, 1, "one failed attempt was counted: {item:?}");
    assert_eq!(item.errors.len(), 1, "{item:?}");
    let error = item.errors[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Timeout"), "the stall timed out: {item:?}");
    assert_eq!(count(db.store.as_ref(), TASK, "dead").await, 0);

    let requests = requests_for(&mock, "stall-me");
    assert_eq!(requests.len(), 2, "one stalled request, one answered");
    assert!(requests.iter().all(|request| request.stream));
    let faults: Vec<_> = requests.iter().map(|r| r.fault.as_deref()).collect();
    assert_eq!(faults, [Some("stall*1"), None], "{faults:?}");

    let records = host::call_records(&db, TASK).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["attempt"], 2, "{records:?}");
    assert_eq!(records[0]["usage"]["llm_calls"], 1, "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_cut_by_the_idle_timeout_and_retried_sqlite() {
    stalled_stream_is_retried_to_completion(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_cut_by_the_idle_timeout_and_retried_postgres() {
    stalled_stream_is_retried_to_completion(stores::postgres().await).await;
}

async fn rate_limited_until_dead(db: TestStore) {
    const MAX_ATTEMPTS: u32 = 2;
    // Every request is refused with `Retry-After: 1`.
    let mock = mock(&["limited=429:1"]).await;
    let mut config = config(&mock, false, Duration::from_secs(4), MAX_ATTEMPTS);
    // Enough retries that only the unit's deadline stops them.
    config.llm.retry.max_retries = 100;
    run_one(&db, config, "limited: please answer", "dead").await;

    let dead = db.store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let item = &dead[0];
    assert_eq!(item.attempts, MAX_ATTEMPTS, "{item:?}");
    let errors = item.errors.as_array().expect("an error history");
    assert_eq!(errors.len(), MAX_ATTEMPTS as usize, "{item:?}");
    for error in errors {
        let error = error["error"].as_str().unwrap_or_default();
        // The import gave up before the deadline and the plugin said
        // "retryable": not the host's own timeout of the whole call.
        assert!(error.contains("RateLimited"), "{item:?}");
        assert!(!error.contains("timed out"), "{item:?}");
    }
    assert!(
        item.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("RateLimited"),
        "{item:?}"
    );
    let requests = requests_for(&mock, "limited").len();
    assert!(
        requests >= 2 * MAX_ATTEMPTS as usize,
        "each attempt retried the 429 within its deadline: {requests} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_always_rate_limits_dead_letters_the_item_sqlite() {
    rate_limited_until_dead(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_always_rate_limits_dead_letters_the_item_postgres() {
    rate_limited_until_dead(stores::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_call_stores_its_usage_beside_the_output() {
    let db = stores::sqlite().await;
    let mock = mock(&[]).await;
    let config = config(&mock, false, Duration::from_secs(30), 3);
    run_one(&db, config, "count the words of this short prompt", "done").await;

    let outputs = host::outputs(db.store.as_ref(), TASK, KEY).await;
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let output = &outputs[0].1;
    let records = host::call_records(&db, TASK).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["plugin"], "adversary", "{record}");
    assert_eq!(record["attempt"], 1, "{record}");
    let usage = &record["usage"];
    assert!(usage["llm_calls"].as_u64() >= Some(1), "{record}");
    assert!(usage["input_tokens"].as_u64() > Some(0), "{record}");
    assert!(usage["output_tokens"].as_u64() > Some(0), "{record}");
    // The host's tally agrees with what the plugin was told.
    assert_eq!(
        usage["input_tokens"], output["input_tokens"],
        "{record} {output}"
    );
    assert_eq!(
        usage["output_tokens"], output["output_tokens"],
        "{record} {output}"
    );
}
