//! A slot bounds a host's calls, not its writes: a unit whose last call is
//! over lets its slot go while its completion is written. What a user checks:
//! with one slot, a unit whose last write cannot land yet (a producer's open
//! transaction holds its unit row) does not keep other units from running, and
//! its own item is done once the row is free, written once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sluice::imports::DenyAll;
use support::host::{
    count, fast_config, new_item as item, outputs, run_until, start, task, wait_until,
};
use support::stores;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_waiting_for_its_last_write_leaves_its_slot_to_others() {
    let db = stores::postgres().await;
    let store = db.store.as_ref();
    // Long enough to take the unit row's lock while the call runs.
    store
        .enqueue(&[item("sleep", "held", r#"{"ms": 1500}"#)])
        .await
        .unwrap();
    let mut config = fast_config(1);
    config
        .tasks
        .insert("sleep".into(), task(Duration::from_secs(30), 3));
    config
        .tasks
        .insert("echo".into(), task(Duration::from_secs(30), 3));
    let host = start(db.store.clone(), config, Arc::new(DenyAll)).await;

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let claimed = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT claimed_by IS NOT NULL FROM sluice_units \
             WHERE task_type = 'sleep' AND work_unit_key = 'held'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    wait_until(
        "the sleeping unit is claimed",
        Duration::from_secs(30),
        claimed,
    )
    .await;
    // A producer's transaction locks the unit row while the call sleeps: the
    // unit's completion cannot be written until it ends.
    let mut producer = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM sluice_units WHERE task_type = 'sleep' AND work_unit_key = 'held' \
         FOR UPDATE",
    )
    .execute(&mut *producer)
    .await
    .unwrap();
    store
        .enqueue(&[item("echo", "free", r#"{"n": 1}"#)])
        .await
        .unwrap();

    // The host's only slot runs the other unit meanwhile.
    wait_until(
        "the other unit's item is done while the first unit's write waits",
        Duration::from_secs(30),
        || async { count(store, "echo", "done").await == 1 },
    )
    .await;
    assert_eq!(
        count(store, "sleep", "done").await,
        0,
        "the held unit's completion cannot have been written yet"
    );

    producer.commit().await.unwrap();
    run_until(host, store, "sleep", "done", 1).await;
    assert_eq!(
        outputs(store, "sleep", "held").await.len(),
        1,
        "the held unit's completion is written once"
    );
    assert_eq!(count(store, "sleep", "dead").await, 0);
}
