//! An item-mode unit's run of items through the real host: one call per item,
//! in order, with the next calls made while the completions before them are
//! being written. What a user checks: every item is done once, in order, and
//! a poison item in the middle of the run is dead-lettered alone, with the
//! items before it done and the items after it done later, each called once.
//! An item's completion is written while the calls after it run: a slow call
//! does not hold back the items done before it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sluice::imports::DenyAll;
use sluice::store::NewItem;
use support::host::{
    call_records, count, fast_config, items, new_item, outputs, run_until, start, task, wait_until,
};
use support::stores;

/// Output depth the host refuses (its `max_output_depth` is far lower): the
/// call ends as an invalid output, which is dead-lettered at once.
const POISON_DEPTH: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_each_item_once_in_order_and_a_poison_item_alone() {
    for db in [stores::sqlite().await, stores::postgres().await] {
        // Forty items of one unit; the twenty-first is poison.
        let depths: Vec<usize> = (0..40)
            .map(|n| if n == 20 { POISON_DEPTH } else { n % 5 + 1 })
            .collect();
        let new: Vec<NewItem> = depths
            .iter()
            .map(|depth| NewItem {
                task_type: "deep-output".into(),
                work_unit_key: "run".into(),
                payload: depth.to_string(),
                tokens: 0,
                dedupe_key: None,
                run_after: None,
            })
            .collect();
        let ids: Vec<i64> = db
            .store
            .enqueue(&new)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        let mut config = fast_config(4);
        config
            .tasks
            .insert("deep-output".into(), task(Duration::from_secs(30), 3));
        let host = start(db.store.clone(), config, Arc::new(DenyAll)).await;
        run_until(host, db.store.as_ref(), "deep-output", "done", 39).await;

        let rows = items(&db, "deep-output").await;
        let mut states: Vec<(i64, &str, u32)> = rows
            .iter()
            .map(|row| (row.id, row.state.as_str(), row.attempts))
            .collect();
        states.sort();
        let expected: Vec<(i64, &str, u32)> = ids
            .iter()
            .enumerate()
            .map(|(n, &id)| {
                if n == 20 {
                    (id, "dead", 1)
                } else {
                    (id, "done", 0)
                }
            })
            .collect();
        assert_eq!(states, expected, "{}: only the poison item failed", db.url);

        let written = outputs(db.store.as_ref(), "deep-output", "run").await;
        let done_ids: Vec<i64> = ids
            .iter()
            .enumerate()
            .filter(|&(n, _)| n != 20)
            .map(|(_, &id)| id)
            .collect();
        assert_eq!(
            written
                .iter()
                .map(|(ids, _)| ids.clone())
                .collect::<Vec<_>>(),
            done_ids.iter().map(|&id| vec![id]).collect::<Vec<_>>(),
            "{}: one output per item, each written once, in the items' order",
            db.url
        );
        for ((_, output), &depth) in written.iter().zip(depths.iter().filter(|&&d| d < 100)) {
            assert_eq!(
                output.to_string(),
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
                "{}: each output is its own item's",
                db.url
            );
        }
        let attempts: Vec<u64> = call_records(&db, "deep-output")
            .await
            .iter()
            .map(|record| record["attempt"].as_u64().expect("an attempt"))
            .collect();
        assert_eq!(
            attempts,
            vec![1; 39],
            "{}: every item that is done was called once",
            db.url
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_item_is_written_while_the_next_call_still_runs() {
    for db in [stores::sqlite().await, stores::postgres().await] {
        let store = db.store.as_ref();
        store
            .enqueue(&[
                new_item("sleep", "run", r#"{"ms": 0}"#),
                new_item("sleep", "run", r#"{"ms": 6000}"#),
            ])
            .await
            .unwrap();
        let mut config = fast_config(1);
        config
            .tasks
            .insert("sleep".into(), task(Duration::from_secs(30), 3));
        let host = start(db.store.clone(), config, Arc::new(DenyAll)).await;
        wait_until(
            "the run's first item is done",
            Duration::from_secs(30),
            || async { count(store, "sleep", "done").await > 0 },
        )
        .await;
        assert_eq!(
            count(store, "sleep", "done").await,
            1,
            "{}: the first item is written while the six-second call after it runs",
            db.url
        );
        run_until(host, store, "sleep", "done", 2).await;
        assert_eq!(outputs(store, "sleep", "run").await.len(), 2, "{}", db.url);
    }
}
