//! Leases, not trust: a unit whose claim is taken away (reaped while this host
//! still ran it) is cancelled by the next heartbeat, long before its own
//! deadline, and the slot goes back to the pool. And the reaper's other duty:
//! deleting done items once they are older than `retain_done`, and outputs
//! once they are older than `retain_outputs` (only when it is set).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::store::RetryPolicies;
use support::host::{self, wait_until};
use support::stores;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_cancels_the_running_unit_at_the_next_heartbeat() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store
        .enqueue(&host::units("hang-llm", "held", 1))
        .await
        .unwrap();
    let mut config = host::fast_config(1);
    // The call itself would hang for a minute.
    config
        .tasks
        .insert("hang-llm".into(), host::task(Duration::from_secs(60), 5));
    let host = host::start(store.clone(), config, Arc::new(support::Hang)).await;
    wait_until("the unit is running", Duration::from_secs(20), || async {
        host.units_in_flight() == 1
    })
    .await;

    // Another host's reaper sees the lease as expired (as after a long pause).
    // The running host's heartbeat may renew it between the two statements;
    // then the reaper finds nothing and looks again.
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mut reaped = 0;
    for _ in 0..20 {
        sqlx::query("UPDATE sluice_leases SET expires_ms = 0")
            .execute(&pool)
            .await
            .unwrap();
        reaped = store.reap(&RetryPolicies::default(), None).await.unwrap();
        if reaped > 0 {
            break;
        }
    }
    assert_eq!(reaped, 1);
    let taken = Instant::now();

    wait_until(
        "the heartbeat cancels the unit",
        Duration::from_secs(20),
        || async { host.units_in_flight() == 0 },
    )
    .await;
    assert!(
        taken.elapsed() < Duration::from_secs(30),
        "the slot must be freed by the heartbeat, not by the call's 60 s deadline"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM sluice_items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "the reaped claim counted one attempt");
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_done_items_past_retain_done_and_keeps_outputs_and_dead_letters() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store
        .enqueue(&host::units("echo", "conv", 20))
        .await
        .unwrap();
    store
        .enqueue(&host::units("panic", "bad", 1))
        .await
        .unwrap();
    let mut config = host::fast_config(2);
    config.retain_done = Duration::from_secs(2);
    config
        .tasks
        .insert("panic".into(), host::task(Duration::from_secs(10), 1));
    let host = host::start(store.clone(), config, Arc::new(support::Hang)).await;

    wait_until("the items are worked", Duration::from_secs(30), || async {
        host::count(&*store, "echo", "done").await + host::count(&*store, "panic", "dead").await
            == 21
    })
    .await;
    wait_until(
        "done items past retain_done are deleted",
        Duration::from_secs(30),
        || async { host::count(&*store, "echo", "done").await == 0 },
    )
    .await;
    assert_eq!(host::count(&*store, "panic", "dead").await, 1);
    for n in 0..20 {
        let outputs = store.outputs("echo", &format!("conv-{n}")).await.unwrap();
        assert_eq!(outputs.len(), 1, "conv-{n} keeps its output");
    }
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_outputs_past_retain_outputs_and_keeps_the_items() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    store
        .enqueue(&host::units("echo", "conv", 10))
        .await
        .unwrap();
    let mut config = host::fast_config(2);
    config.retain_outputs = Some(Duration::from_secs(2));
    let host = host::start(store.clone(), config, Arc::new(support::Hang)).await;

    wait_until("the items are worked", Duration::from_secs(30), || async {
        host::count(&*store, "echo", "done").await == 10
    })
    .await;
    wait_until(
        "outputs past retain_outputs are deleted",
        Duration::from_secs(30),
        || async {
            for n in 0..10 {
                if !store
                    .outputs("echo", &format!("conv-{n}"))
                    .await
                    .unwrap()
                    .is_empty()
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert_eq!(
        host::count(&*store, "echo", "done").await,
        10,
        "done items follow retain_done (a day), not retain_outputs"
    );
    host.shutdown(Duration::from_secs(5)).await;
}
