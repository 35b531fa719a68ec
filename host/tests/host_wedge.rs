//! The wedge scenario Sluice exists to prevent: every slot held by a unit that
//! never finishes (a hung LLM call, a spinning guest). The heartbeat and the
//! reaper must keep ticking, the stuck units must time out at their deadline,
//! be retried and then dead-lettered, and every healthy unit must complete.
//! Run against SQLite and Postgres, with the real host in-process.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sluice::imports::Outbound;
use support::host::{self, count, wait_until};
use support::stores::{self, TestStore};

const SLOTS: u32 = 4;
const HEALTHY: usize = 100;
/// The stuck units' deadline: long enough to watch the pool while it is full.
const STUCK_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_ATTEMPTS: u32 = 2;

async fn wedge(db: TestStore, stuck_task: &str) {
    let store = db.store.clone();
    store
        .enqueue(&host::units(stuck_task, "stuck", SLOTS as usize))
        .await
        .unwrap();
    let mut config = host::fast_config(SLOTS);
    config
        .tasks
        .insert(stuck_task.into(), host::task(STUCK_TIMEOUT, MAX_ATTEMPTS));
    let hang: Arc<dyn Outbound> = Arc::new(support::Hang);
    let host = host::start(store.clone(), config, hang).await;

    wait_until(
        "all four slots hold stuck units",
        Duration::from_secs(20),
        || async { host.units_in_flight() == SLOTS as usize },
    )
    .await;
    // Only now does the healthy work arrive: the pool is full of stuck units.
    store
        .enqueue(&host::units("echo", "healthy", HEALTHY))
        .await
        .unwrap();
    let before = host.health().report(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = host.health().report(Duration::from_secs(60));
    assert!(
        during.heartbeat_ticks > before.heartbeat_ticks,
        "the heartbeat stopped while the pool was full: {before:?} -> {during:?}"
    );
    assert!(
        during.reaper_ticks > before.reaper_ticks,
        "the reaper stopped while the pool was full: {before:?} -> {during:?}"
    );
    assert!(
        during.poll_ticks > before.poll_ticks,
        "the claim loop stopped ticking while the pool was full"
    );
    assert!(
        during.healthy,
        "a full pool is not an unhealthy host: {during:?}"
    );
    // Nothing is claimed ahead while no slot frees up: the healthy units stay
    // in the queue, where another host could take every one of them.
    assert_eq!(
        store.status().await.unwrap().claimed_units,
        i64::from(SLOTS),
        "units claimed behind the stuck ones"
    );

    wait_until(
        "the healthy units are done and the stuck ones dead",
        Duration::from_secs(90),
        || async {
            count(store.as_ref(), "echo", "done").await == HEALTHY as i64
                && count(store.as_ref(), stuck_task, "dead").await == SLOTS as i64
        },
    )
    .await;
    let dead = store.dead_list(None, 100).await.unwrap();
    assert_eq!(dead.len(), SLOTS as usize);
    for item in &dead {
        assert_eq!(item.task_type, stuck_task);
        assert_eq!(item.attempts, MAX_ATTEMPTS, "{item:?}");
        let errors = item.errors.as_array().expect("an error history");
        assert_eq!(errors.len(), MAX_ATTEMPTS as usize, "{item:?}");
        assert!(
            item.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("timed out"),
            "{item:?}"
        );
    }
    host.shutdown(Duration::from_secs(5)).await;
    let status = store.status().await.unwrap();
    assert_eq!(status.claimed_units, 0, "nothing is left claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_llm_calls_do_not_wedge_the_pool_sqlite() {
    wedge(stores::sqlite().await, "hang-llm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_llm_calls_do_not_wedge_the_pool_postgres() {
    wedge(stores::postgres().await, "hang-llm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spinning_guests_do_not_wedge_the_pool_sqlite() {
    wedge(stores::sqlite().await, "spin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spinning_guests_do_not_wedge_the_pool_postgres() {
    wedge(stores::postgres().await, "spin").await;
}

/// Units claimed ahead of free slots while slots were turning over, then
/// stuck behind calls that hang: they give their claims back instead of
/// waiting out the hung calls' deadline.
async fn claimed_ahead_units_go_back_when_slots_stop_freeing(db: TestStore) {
    const SLOTS: u32 = 2;
    let store = db.store.clone();
    // In this order (the claim takes the oldest first): quick units that
    // start the slots turning over, the stuck ones, then healthy ones that
    // get claimed ahead behind them.
    let batches = [
        host::units("echo", "quick", SLOTS as usize),
        host::units("hang-llm", "stuck", SLOTS as usize),
        host::units("echo", "behind", 10),
    ];
    for batch in batches {
        store.enqueue(&batch).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut config = host::fast_config(SLOTS);
    config.lease = Duration::from_secs(5);
    config
        .tasks
        .insert("hang-llm".into(), host::task(Duration::from_secs(60), 1));
    let hang: Arc<dyn Outbound> = Arc::new(support::Hang);
    let host = host::start(store.clone(), config, hang).await;

    wait_until(
        "the quick units are done",
        Duration::from_secs(30),
        || async { count(store.as_ref(), "echo", "done").await >= i64::from(SLOTS) },
    )
    .await;
    wait_until(
        "only the stuck units are held, by running calls",
        Duration::from_secs(30),
        || async {
            store.status().await.unwrap().claimed_units == i64::from(SLOTS)
                && host.units_in_flight() == SLOTS as usize
        },
    )
    .await;
    // The stuck calls are still running: it was the waiting units that gave
    // their claims back, not a deadline that ended the stuck ones.
    assert_eq!(
        count(store.as_ref(), "hang-llm", "pending").await,
        i64::from(SLOTS)
    );
    let behind = count(store.as_ref(), "echo", "pending").await;
    assert!(
        behind > 0,
        "the units behind the stuck ones wait in the queue"
    );
    host.shutdown(Duration::from_secs(5)).await;
    assert_eq!(store.status().await.unwrap().claimed_units, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimed_ahead_units_go_back_when_slots_stop_freeing_sqlite() {
    claimed_ahead_units_go_back_when_slots_stop_freeing(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimed_ahead_units_go_back_when_slots_stop_freeing_postgres() {
    claimed_ahead_units_go_back_when_slots_stop_freeing(stores::postgres().await).await;
}
