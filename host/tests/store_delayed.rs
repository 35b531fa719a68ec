//! Delayed items (`run_after`, `delay`) on both backends: an item is not
//! fetched before its time, its unit's later items wait behind it, and
//! claims, batches, dead-letter retries and deletes keep unit order.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice::store::{
    BatchLimits, Claim, Claimable, DeadFilter, Failure, Gate, NewItem, RunAfter, Store,
};
use support::stores::TestStore;

const LEASE: Duration = Duration::from_secs(60);
const ALL: BatchLimits = BatchLimits {
    max_items: 1000,
    max_tokens: u64::MAX,
};

fn item(key: &str, payload: &str, run_after: Option<RunAfter>) -> NewItem {
    NewItem {
        task_type: "echo".into(),
        work_unit_key: key.into(),
        payload: payload.into(),
        tokens: 0,
        dedupe_key: None,
        run_after,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn echo() -> Vec<Claimable> {
    vec![Claimable {
        task_type: "echo".into(),
        gate: Gate::default(),
    }]
}

async fn claim_now(store: &dyn Store) -> Vec<Claim> {
    store.claim("w", &echo(), 10, LEASE).await.unwrap()
}

/// Polls until a unit is claimable (up to 20 s).
async fn claim_eventually(store: &dyn Store) -> Claim {
    for _ in 0..2000 {
        if let Some(claim) = claim_now(store).await.pop() {
            return claim;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no unit became claimable within 20 s");
}

async fn payloads(store: &dyn Store, claim: &Claim) -> Vec<String> {
    let batch = store.fetch_batch(claim, ALL).await.unwrap();
    batch.into_iter().map(|i| i.payload).collect()
}

mod cases {
    use super::*;

    pub async fn a_delayed_item_waits_and_holds_its_units_later_items(t: TestStore) {
        let store = &*t.store;
        let due = now_ms() + 1_500;
        store
            .enqueue(&[
                item("k", "1", Some(RunAfter::At(due))),
                item("k", "2", None),
                item("j", "3", None),
            ])
            .await
            .unwrap();
        let claims = claim_now(store).await;
        let keys: Vec<_> = claims.iter().map(|c| c.work_unit_key.as_str()).collect();
        assert_eq!(keys, ["j"], "unit k waits for its first item");
        assert_eq!(payloads(store, &claims[0]).await, ["3"]);

        let claim = claim_eventually(store).await;
        assert!(now_ms() >= due, "claimed before the item's run_after");
        assert_eq!(claim.work_unit_key, "k");
        assert_eq!(
            payloads(store, &claim).await,
            ["1", "2"],
            "unit order holds"
        );
    }

    pub async fn a_batch_stops_before_a_delayed_item_and_the_unit_waits_for_it(t: TestStore) {
        let store = &*t.store;
        let enqueued = now_ms();
        let ids = store
            .enqueue(&[
                item("k", "1", None),
                item(
                    "k",
                    "2",
                    Some(RunAfter::Delay(Duration::from_millis(1_500))),
                ),
                item("k", "3", None),
            ])
            .await
            .unwrap();
        let claim = claim_eventually(store).await;
        assert_eq!(payloads(store, &claim).await, ["1"], "stops at item 2");
        store
            .complete(&claim, &[ids[0].id], None, &[], None)
            .await
            .unwrap();
        assert!(
            payloads(store, &claim).await.is_empty(),
            "nothing is due now"
        );
        store.release(&claim).await.unwrap();
        assert!(
            claim_now(store).await.is_empty(),
            "released, the unit waits for item 2"
        );
        let claim = claim_eventually(store).await;
        assert!(now_ms() >= enqueued + 1_500, "claimed before the delay");
        assert_eq!(payloads(store, &claim).await, ["2", "3"]);
    }

    pub async fn backoff_does_not_release_a_unit_before_its_delayed_head(t: TestStore) {
        let store = &*t.store;
        store
            .enqueue(&[
                item("k", "1", None),
                item("k", "2", Some(RunAfter::Delay(Duration::from_secs(3600)))),
            ])
            .await
            .unwrap();
        let claim = claim_eventually(store).await;
        assert_eq!(payloads(store, &claim).await, ["1"]);
        // Item 1 is dead-lettered; item 2, an hour away, is the unit's head.
        let policy = sluice::store::RetryPolicy {
            max_attempts: 1,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
        };
        store
            .fail(&claim, &Failure::Permanent("bad".into()), &policy)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let claim = claim_eventually_or_none(store).await;
        if let Some(claim) = claim {
            // One claim may find the delayed head first; it takes nothing.
            assert!(payloads(store, &claim).await.is_empty());
            store.release(&claim).await.unwrap();
        }
        assert!(
            claim_now(store).await.is_empty(),
            "the unit waits for its delayed head, not for the backoff"
        );
        // Retrying the dead letter puts it ahead of the delayed item: the
        // unit is available again at once, for that item alone.
        let retried = store
            .dead_retry(&DeadFilter::Key {
                task_type: "echo".into(),
                work_unit_key: "k".into(),
            })
            .await
            .unwrap();
        assert_eq!(retried, 1);
        let claim = claim_eventually(store).await;
        assert_eq!(payloads(store, &claim).await, ["1"]);
    }

    pub async fn deleting_a_delayed_head_frees_the_items_behind_it(t: TestStore) {
        let store = &*t.store;
        let ids = store
            .enqueue(&[
                item("k", "1", Some(RunAfter::Delay(Duration::from_secs(3600)))),
                item("k", "2", None),
            ])
            .await
            .unwrap();
        assert!(claim_now(store).await.is_empty());
        let sql = format!("DELETE FROM sluice_items WHERE id = {}", ids[0].id);
        if t.url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        } else {
            let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        let claim = claim_eventually(store).await;
        assert_eq!(payloads(store, &claim).await, ["2"]);
    }

    pub async fn a_run_after_in_the_past_runs_at_once(t: TestStore) {
        let store = &*t.store;
        store
            .enqueue(&[item("k", "1", Some(RunAfter::At(now_ms() - 60_000)))])
            .await
            .unwrap();
        let claims = claim_now(store).await;
        assert_eq!(claims.len(), 1);
        assert_eq!(payloads(store, &claims[0]).await, ["1"]);
    }

    /// Polls briefly (1 s) for a claim that may or may not come.
    async fn claim_eventually_or_none(store: &dyn Store) -> Option<Claim> {
        for _ in 0..20 {
            if let Some(claim) = claim_now(store).await.pop() {
                return Some(claim);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

macro_rules! backend {
    ($backend:ident, $open:path; $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case($open().await).await;
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        backend!(sqlite, crate::support::stores::sqlite; $($case),*);
        backend!(postgres, crate::support::stores::postgres; $($case),*);
    };
}

both_backends!(
    a_delayed_item_waits_and_holds_its_units_later_items,
    a_batch_stops_before_a_delayed_item_and_the_unit_waits_for_it,
    backoff_does_not_release_a_unit_before_its_delayed_head,
    deleting_a_delayed_head_frees_the_items_behind_it,
    a_run_after_in_the_past_runs_at_once,
);
