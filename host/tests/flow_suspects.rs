//! Suspect units never crowd out healthy work: with 4 slots, 8 units whose
//! LLM call hangs (the mock never answers) and 200 healthy units queued
//! behind them, the healthy items' p95 latency stays within twice that of the
//! same 200 units without the poison, because units whose last attempt timed
//! out may hold only a quarter of the slots. The poisoned units still end
//! dead after exactly `max_attempts`.

mod support;

use std::time::Duration;

use mock_llm::{MockLlm, Options};
use support::host::{self, count};
use support::stores::{self, TestStore};

const POISON: &str = "hang-llm";
const HEALTHY: &str = "echo";
const POISONED_UNITS: usize = 8;
const HEALTHY_UNITS: usize = 200;
const MAX_ATTEMPTS: u32 = 3;

/// The p95 of the latency (enqueue to done, ms) of the done `echo` items
/// whose key starts with `prefix`.
async fn p95_ms(db: &TestStore, prefix: &str) -> i64 {
    let rows = db
        .text_rows(
            "SELECT work_unit_key, CAST(finished_at_ms - created_at_ms AS TEXT) \
             FROM sluice_items WHERE task_type = 'echo' AND state = 'done'",
        )
        .await;
    let mut latencies: Vec<i64> = rows
        .into_iter()
        .filter(|row| row[0].as_deref().is_some_and(|key| key.starts_with(prefix)))
        .map(|row| row[1].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(latencies.len(), HEALTHY_UNITS, "{prefix}");
    latencies.sort_unstable();
    latencies[latencies.len() * 95 / 100]
}

async fn wait_healthy_done(db: &TestStore, expected: usize) {
    host::wait_until(
        &format!("{expected} echo items are done"),
        Duration::from_secs(120),
        || async { count(db.store.as_ref(), HEALTHY, "done").await == expected as i64 },
    )
    .await;
}

async fn suspects_get_a_bounded_share(db: TestStore) {
    let mock = MockLlm::start(Options {
        rules: Vec::new(),
        fault: Some("hang".parse().unwrap()),
        ..Options::default()
    })
    .await
    .expect("the mock LLM server starts");
    let mut config = host::fast_config(4);
    host::mock_llm(&mut config, &mock.base_url(), false);
    config.tasks.insert(
        POISON.into(),
        host::with_llm(host::task(Duration::from_secs(2), MAX_ATTEMPTS), "mock"),
    );
    config
        .tasks
        .insert(HEALTHY.into(), host::task(Duration::from_secs(20), 3));
    assert_eq!(config.suspect_slots(), 1, "a quarter of 4 slots");
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;

    // Without poison.
    db.store
        .enqueue(&host::units(HEALTHY, "clean", HEALTHY_UNITS))
        .await
        .unwrap();
    wait_healthy_done(&db, HEALTHY_UNITS).await;
    let clean = p95_ms(&db, "clean-").await;

    // The poisoned units hang once each (fresh units are not suspects) and
    // are suspects from then on.
    db.store
        .enqueue(&host::units(POISON, "poison", POISONED_UNITS))
        .await
        .unwrap();
    host::wait_until(
        "every poisoned unit has failed once",
        Duration::from_secs(60),
        || async {
            host::items(&db, POISON)
                .await
                .iter()
                .all(|item| item.attempts >= 1)
        },
    )
    .await;
    db.store
        .enqueue(&host::units(HEALTHY, "mixed", HEALTHY_UNITS))
        .await
        .unwrap();
    wait_healthy_done(&db, 2 * HEALTHY_UNITS).await;
    let mixed = p95_ms(&db, "mixed-").await;

    host::wait_until(
        "every poisoned unit is dead",
        Duration::from_secs(120),
        || async { count(db.store.as_ref(), POISON, "dead").await == POISONED_UNITS as i64 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    let poisoned = host::items(&db, POISON).await;
    assert!(
        poisoned
            .iter()
            .all(|item| item.attempts == MAX_ATTEMPTS && item.state == "dead"),
        "the poisoned units end dead after exactly max_attempts: {poisoned:?}"
    );
    println!("healthy p95: {clean} ms without poison, {mixed} ms beside 8 hanging units");
    // Twice the clean run, and a little room for a busy machine's
    // scheduling when both are small.
    assert!(
        mixed <= 2 * clean + 500,
        "healthy p95 {mixed} ms beside the poison, {clean} ms without"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspect_units_hold_a_bounded_share_of_slots_sqlite() {
    suspects_get_a_bounded_share(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspect_units_hold_a_bounded_share_of_slots_postgres() {
    suspects_get_a_bounded_share(stores::postgres().await).await;
}
