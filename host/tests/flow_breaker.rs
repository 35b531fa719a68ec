//! A provider outage through the whole host: the mock LLM answers every
//! request 500 for 20 s while 200 units of a task type that uses it
//! (`llm-call`) and 200 of one that does not (`echo`) are queued. The
//! provider's circuit breaker opens within seconds, `echo` drains during the
//! outage, no unit is charged more than the one attempt that was running when
//! the breaker opened, nothing is dead-lettered, and once the provider is back
//! a probe closes the breaker and every unit completes.

mod support;

use std::time::{Duration, Instant};

use mock_llm::{MockLlm, Options};
use sluice::flow::{BreakerConfig, BreakerState};
use support::host::{self, count};
use support::stores::{self, TestStore};

const LLM_TASK: &str = "llm-call";
const OTHER_TASK: &str = "echo";
const UNITS: usize = 200;
const OUTAGE: Duration = Duration::from_secs(20);
const MAX_ATTEMPTS: u32 = 3;

async fn outage_costs_no_attempts(db: TestStore) {
    let mock = MockLlm::start(Options::default())
        .await
        .expect("the mock LLM server starts");
    let mut config = host::fast_config(4);
    host::mock_llm(&mut config, &mock.base_url(), false);
    for provider in config.llm.providers.values_mut() {
        provider.breaker = BreakerConfig {
            failures: 5,
            cooldown: Duration::from_secs(2),
            probes: 1,
        };
    }
    let task = host::task(Duration::from_secs(20), MAX_ATTEMPTS);
    config
        .tasks
        .insert(LLM_TASK.into(), host::with_llm(task.clone(), "mock-model"));
    config.tasks.insert(OTHER_TASK.into(), task);
    db.store
        .enqueue(&host::units(LLM_TASK, "llm", UNITS))
        .await
        .unwrap();
    db.store
        .enqueue(&host::units(OTHER_TASK, "echo", UNITS))
        .await
        .unwrap();

    mock.outage(OUTAGE);
    let outage_started = Instant::now();
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;

    host::wait_until("the breaker opens", Duration::from_secs(15), || async {
        host.breakers()
            .iter()
            .any(|b| b.provider == "mock" && b.state == BreakerState::Open)
    })
    .await;
    let opened_after = outage_started.elapsed();

    host::wait_until(
        "every echo unit is done",
        Duration::from_secs(60),
        || async { count(db.store.as_ref(), OTHER_TASK, "done").await == UNITS as i64 },
    )
    .await;
    let echo_drained_after = outage_started.elapsed();
    assert!(
        echo_drained_after < OUTAGE,
        "the task type without an LLM drained during the outage (took {echo_drained_after:?})"
    );
    assert!(
        count(db.store.as_ref(), LLM_TASK, "done").await < UNITS as i64 / 2,
        "the outage held the LLM task type back"
    );
    let during = mock.requests().len();

    host::wait_until(
        "every llm-call unit is done after the outage",
        Duration::from_secs(120),
        || async { count(db.store.as_ref(), LLM_TASK, "done").await == UNITS as i64 },
    )
    .await;
    let drained_after = outage_started.elapsed();
    assert!(
        host.breakers()
            .iter()
            .all(|b| b.state == BreakerState::Closed),
        "a probe closed the breaker: {:?}",
        host.breakers()
    );
    host.shutdown(Duration::from_secs(5)).await;

    assert_eq!(count(db.store.as_ref(), LLM_TASK, "dead").await, 0);
    let items = host::items(&db, LLM_TASK).await;
    assert_eq!(items.len(), UNITS);
    let charged: Vec<_> = items.iter().filter(|item| item.attempts > 0).collect();
    assert!(
        items.iter().all(|item| item.attempts <= 1),
        "no unit is charged more than one attempt for the outage: {:?}",
        items
            .iter()
            .filter(|item| item.attempts > 1)
            .collect::<Vec<_>>()
    );
    let outage_requests = mock
        .requests()
        .iter()
        .filter(|request| request.fault.as_deref() == Some("outage"))
        .count();
    // Figures for BENCHMARKS.md (run with --no-capture).
    println!(
        "breaker opened after {opened_after:?}; echo drained after {echo_drained_after:?}; \
         {} units charged an attempt; {outage_requests} requests reached the provider during \
         the outage ({during} by the time echo drained); all done {:?} after the outage began \
         ({:?} after it ended)",
        charged.len(),
        drained_after,
        drained_after.saturating_sub(OUTAGE),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_the_breaker_and_costs_no_attempts_sqlite() {
    outage_costs_no_attempts(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_the_breaker_and_costs_no_attempts_postgres() {
    outage_costs_no_attempts(stores::postgres().await).await;
}
