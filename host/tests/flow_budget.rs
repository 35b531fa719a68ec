//! Provider budgets through the whole host, measured at the mock LLM: with a
//! requests-per-minute or a tokens-per-minute budget the rate the mock sees
//! stays within it (plus the one second of burst the pacing allows) while
//! every unit completes, and a 429 with `Retry-After: 5` holds every slot's
//! requests to the provider, not only the one that was told; so do
//! rate-limit headers saying a limit is used up (OpenAI's and Anthropic's).
//! A model's own budget paces that model's requests and no other's, and is
//! shared through Postgres like the provider's.

mod support;

use std::time::{Duration, Instant};

use mock_llm::{MockLlm, Options, RecordedRequest};
use serde_json::json;
use sluice::config::Config;
use sluice::flow::BudgetConfig;
use sluice::outbound::{ModelConfig, ProviderKind};
use sluice::store::NewItem;
use support::host::{self, count};
use support::stores::{self, TestStore};

const TASK: &str = "llm-call";
const SLOTS: u32 = 4;

fn item(key: &str, prompt: &str) -> NewItem {
    let payload = json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 4});
    NewItem {
        task_type: TASK.into(),
        work_unit_key: key.into(),
        payload: payload.to_string(),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
}

fn config(mock: &MockLlm, budget: BudgetConfig) -> Config {
    let mut config = host::fast_config(SLOTS);
    host::mock_llm(&mut config, &mock.base_url(), false);
    config.llm.retry.max_retries = 5;
    for provider in config.llm.providers.values_mut() {
        provider.budget = budget;
    }
    config.tasks.insert(
        TASK.into(),
        host::with_llm(host::task(Duration::from_secs(60), 3), "mock-model"),
    );
    config
}

/// The most requests the mock received within any `window`.
fn busiest(requests: &[RecordedRequest], window: Duration) -> usize {
    let times: Vec<Instant> = requests.iter().map(|r| r.at).collect();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Runs `units` units through a host with `budget` until all are done.
async fn run(db: &TestStore, mock: &MockLlm, budget: BudgetConfig, units: usize) {
    let config = config(mock, budget);
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    let items: Vec<NewItem> = (0..units)
        .map(|n| item(&format!("u-{n}"), &format!("question {n}")))
        .collect();
    db.store.enqueue(&items).await.unwrap();
    host::run_until(host, db.store.as_ref(), TASK, "done", units as i64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_per_minute_budget_holds_at_the_provider() {
    let db = stores::sqlite().await;
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let budget = BudgetConfig {
        requests_per_minute: Some(60),
        ..BudgetConfig::default()
    };
    run(&db, &mock, budget, 12).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 12, "one request per unit");
    // One a second, plus one second's burst (and the request at its edge).
    let most = busiest(&requests, Duration::from_secs(5));
    assert!(
        most <= 5 + 2,
        "{most} requests within 5 s under a budget of 60 a minute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_per_minute_budget_holds_at_the_provider() {
    let db = stores::sqlite().await;
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let budget = BudgetConfig {
        tokens_per_minute: Some(360),
        ..BudgetConfig::default()
    };
    run(&db, &mock, budget, 12).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 12, "one request per unit");
    // Every request uses about the same tokens, as the provider reported them.
    let records = host::call_records(&db, TASK).await;
    let tokens: Vec<u64> = records
        .iter()
        .map(|r| {
            r["usage"]["input_tokens"].as_u64().unwrap()
                + r["usage"]["output_tokens"].as_u64().unwrap()
        })
        .collect();
    let per_request = *tokens.iter().max().unwrap();
    assert!(per_request > 0, "{records:?}");
    let window = Duration::from_secs(5);
    let most = busiest(&requests, window) as u64 * per_request;
    // 6 tokens a second over the window, one second's burst, and what the
    // requests in flight used beyond their estimate.
    let bound = 6 * (5 + 1) + u64::from(SLOTS) * per_request;
    assert!(
        most <= bound,
        "{most} tokens within 5 s under a budget of 360 a minute (bound {bound})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_slows_every_slot_using_the_provider() {
    let (db, requests) = one_told_then_three_others("429:5*1", ProviderKind::OpenAi).await;
    assert_eq!(requests.len(), 5, "one 429, then one request per unit");
    let told = requests[0].at;
    for request in &requests[1..] {
        let after = request.at - told;
        assert!(
            after >= Duration::from_millis(4900),
            "`{}` reached the provider {after:?} after it asked everyone to wait 5 s",
            request.prompt
        );
    }
    assert_eq!(count(db.store.as_ref(), TASK, "dead").await, 0);
}

/// Runs one unit whose prompt meets the mock's `fault` (a rule), then, once
/// the mock has answered it, three more units; returns the store and every
/// request the mock saw, the first one's first, after all four are done.
async fn one_told_then_three_others(
    fault: &str,
    kind: ProviderKind,
) -> (TestStore, Vec<RecordedRequest>) {
    let db = stores::sqlite().await;
    let mock = MockLlm::start(Options {
        rules: vec![format!("told={fault}").parse().unwrap()],
        fault: None,
        ..Options::default()
    })
    .await
    .unwrap();
    let mut config = config(&mock, BudgetConfig::default());
    for provider in config.llm.providers.values_mut() {
        provider.kind = kind;
    }
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    db.store.enqueue(&[item("first", "told")]).await.unwrap();
    host::wait_until("the mock answered", Duration::from_secs(30), || async {
        !mock.requests().is_empty()
    })
    .await;
    let others: Vec<NewItem> = (0..3)
        .map(|n| item(&format!("other-{n}"), &format!("other {n}")))
        .collect();
    db.store.enqueue(&others).await.unwrap();
    host::run_until(host, db.store.as_ref(), TASK, "done", 4).await;
    (db, mock.requests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_share_one_budget_through_postgres() {
    let budget = BudgetConfig {
        requests_per_minute: Some(60),
        shared: true,
        ..BudgetConfig::default()
    };
    three_hosts_share(budget, BudgetConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_share_one_model_budget_through_postgres() {
    let budget = BudgetConfig {
        requests_per_minute: Some(60),
        shared: true,
        ..BudgetConfig::default()
    };
    three_hosts_share(BudgetConfig::default(), budget).await;
}

/// Three hosts, each with `provider` as the provider's budget and `model` as
/// the budget of the model their units use, on one Postgres.
async fn three_hosts_share(provider: BudgetConfig, model: BudgetConfig) {
    let db = stores::postgres().await;
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let mut hosts = Vec::new();
    for n in 0..3 {
        let mut config = config(&mock, provider);
        for provider in config.llm.providers.values_mut() {
            provider
                .models
                .insert("mock-model".into(), ModelConfig { budget: model });
        }
        let outbound = host::network(&config);
        // Each host with its own connections, as separate processes would be.
        let store = sluice::store::open(&db.url, Default::default())
            .await
            .unwrap();
        let id = format!("budget-host-{n}-{}", std::process::id());
        hosts.push(host::start_as(&id, store, config, outbound, &["sluice_test_adversary"]).await);
    }
    let items: Vec<NewItem> = (0..15)
        .map(|n| item(&format!("u-{n}"), &format!("question {n}")))
        .collect();
    db.store.enqueue(&items).await.unwrap();
    host::wait_until("every unit is done", Duration::from_secs(90), || async {
        count(db.store.as_ref(), TASK, "done").await == 15
    })
    .await;
    for host in hosts {
        host.shutdown(Duration::from_secs(5)).await;
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 15, "one request per unit");
    // The same bound as for one host: the three spend one budget.
    let most = busiest(&requests, Duration::from_secs(5));
    assert!(
        most <= 5 + 2,
        "{most} requests within 5 s from three hosts sharing 60 a minute"
    );
}

/// A unit whose reply says the provider's `limit` is used up for a while
/// (`fault`, a mock rule on its prompt): the requests of three units enqueued
/// after it wait until the reset (at least `held`).
async fn rate_limit_headers_hold_every_slot(kind: ProviderKind, fault: &str, held: Duration) {
    let (_db, requests) = one_told_then_three_others(fault, kind).await;
    assert_eq!(requests.len(), 4, "one request per unit: {requests:?}");
    assert_eq!(requests[0].fault.as_deref(), Some(fault));
    let told = requests[0].at;
    for request in &requests[1..] {
        let after = request.at - told;
        assert!(
            after >= held,
            "`{}` reached the provider {after:?} after its headers said `{fault}`",
            request.prompt
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_rate_limit_headers_hold_every_slot_until_the_reset() {
    rate_limit_headers_hold_every_slot(
        ProviderKind::OpenAi,
        "exhausted:requests:3*1",
        Duration::from_millis(2900),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_rate_limit_headers_hold_every_slot_until_the_reset() {
    // Anthropic's reset is a time to the second: 3 s from now, less up to 1 s.
    rate_limit_headers_hold_every_slot(
        ProviderKind::Anthropic,
        "exhausted:tokens:3*1",
        Duration::from_millis(1900),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_budget_paces_that_model_only() {
    let db = stores::sqlite().await;
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let mut config = config(&mock, BudgetConfig::default());
    for provider in config.llm.providers.values_mut() {
        provider.models.insert(
            "mock-model".into(),
            ModelConfig {
                budget: BudgetConfig {
                    requests_per_minute: Some(60),
                    ..BudgetConfig::default()
                },
            },
        );
    }
    let section = config.tasks.get_mut(TASK).unwrap();
    section.llm.allowed_models = vec!["free-model".into()];
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    // The free model's units first, so they are claimed first.
    let free: Vec<NewItem> = (0..10)
        .map(|n| {
            let payload = json!({"model": "free-model", "messages": [{"role": "user", "content": format!("free {n}")}], "max_tokens": 4});
            NewItem {
                payload: payload.to_string(),
                ..item(&format!("free-{n}"), "")
            }
        })
        .collect();
    db.store.enqueue(&free).await.unwrap();
    let paced: Vec<NewItem> = (0..10)
        .map(|n| item(&format!("paced-{n}"), &format!("paced {n}")))
        .collect();
    db.store.enqueue(&paced).await.unwrap();
    host::run_until(host, db.store.as_ref(), TASK, "done", 20).await;

    let requests = mock.requests();
    let (free, paced): (Vec<_>, Vec<_>) =
        requests.into_iter().partition(|r| r.model == "free-model");
    assert_eq!((free.len(), paced.len()), (10, 10), "one request per unit");
    let most = busiest(&paced, Duration::from_secs(5));
    assert!(
        most <= 5 + 2,
        "{most} requests to mock-model within 5 s under its budget of 60 a minute"
    );
    // Paced at one a second, ten requests would span at least 7 s.
    assert_eq!(
        busiest(&free, Duration::from_secs(5)),
        10,
        "the other model is not held to mock-model's budget"
    );
}
