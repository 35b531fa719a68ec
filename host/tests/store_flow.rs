//! The store's side of flow control, on both backends: suspect marks are
//! fenced by the claim and cap how many suspects one claim takes, and a
//! paused task type is claimed by nobody until it is resumed.

mod support;

use std::time::Duration;

use sluice::store::{Claimable, Gate, NewItem, Store, StoreError};
use support::stores::{self, TestStore};

const LEASE: Duration = Duration::from_secs(60);

fn claimable(task_types: &[&str]) -> Vec<Claimable> {
    task_types
        .iter()
        .map(|task_type| Claimable {
            task_type: (*task_type).into(),
            gate: Gate::default(),
        })
        .collect()
}

async fn enqueue(store: &dyn Store, task_type: &str, keys: &[&str]) {
    let items: Vec<NewItem> = keys
        .iter()
        .map(|key| NewItem {
            task_type: task_type.into(),
            work_unit_key: (*key).into(),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    store.enqueue(&items).await.unwrap();
}

async fn suspects_are_capped_per_claim(db: TestStore) {
    let store = db.store.as_ref();
    enqueue(store, "t", &["a", "b", "c", "d"]).await;
    // Mark three of them as suspects: claim them, mark, release.
    let claimed = store
        .claim_units("w", &claimable(&["t"]), 3, 3, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(
        claimed.iter().all(|c| !c.suspect),
        "fresh units are healthy"
    );
    for c in &claimed {
        store.set_suspect(&c.claim, true).await.unwrap();
        store.release(&c.claim).await.unwrap();
    }
    // A mark under a claim that is gone changes nothing.
    assert!(matches!(
        store.set_suspect(&claimed[0].claim, false).await,
        Err(StoreError::ClaimLost { .. })
    ));

    // Four units ready, three of them suspects: one suspect at most.
    let round = store
        .claim_units("w", &claimable(&["t"]), 4, 1, LEASE)
        .await
        .unwrap();
    let suspects: Vec<_> = round.iter().filter(|c| c.suspect).collect();
    let healthy: Vec<_> = round.iter().filter(|c| !c.suspect).collect();
    assert_eq!(suspects.len(), 1, "{round:?}");
    assert_eq!(healthy.len(), 1, "{round:?}");
    assert!(
        claimed
            .iter()
            .all(|c| c.claim.work_unit_key != healthy[0].claim.work_unit_key),
        "the healthy one is the unit never marked: {round:?}"
    );
    // No allowance left: the other suspects are passed over.
    let none = store
        .claim_units("w", &claimable(&["t"]), 4, 0, LEASE)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // Clearing the mark makes a unit healthy again for the next claim.
    store.set_suspect(&suspects[0].claim, false).await.unwrap();
    store.release(&suspects[0].claim).await.unwrap();
    let again = store
        .claim_units("w", &claimable(&["t"]), 4, 0, LEASE)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(
        again[0].claim.work_unit_key,
        suspects[0].claim.work_unit_key
    );
    assert!(!again[0].suspect);
}

async fn paused_task_types_are_not_claimed(db: TestStore) {
    let store = db.store.as_ref();
    enqueue(store, "paused", &["a", "b"]).await;
    enqueue(store, "flowing", &["c"]).await;
    assert!(store.set_paused("paused", true).await.unwrap());
    assert!(
        !store.set_paused("paused", true).await.unwrap(),
        "already paused"
    );

    let claimed = store
        .claim("w", &claimable(&["paused", "flowing"]), 10, LEASE)
        .await
        .unwrap();
    let types: Vec<_> = claimed.iter().map(|c| c.task_type.as_str()).collect();
    assert_eq!(types, ["flowing"]);
    let status = store.status().await.unwrap();
    let paused: Vec<_> = status.paused.iter().map(|p| p.task_type.as_str()).collect();
    assert_eq!(paused, ["paused"]);

    assert!(store.set_paused("paused", false).await.unwrap());
    assert!(
        !store.set_paused("paused", false).await.unwrap(),
        "not paused"
    );
    let claimed = store
        .claim("w", &claimable(&["paused", "flowing"]), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert!(store.status().await.unwrap().paused.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspects_are_capped_per_claim_sqlite() {
    suspects_are_capped_per_claim(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspects_are_capped_per_claim_postgres() {
    suspects_are_capped_per_claim(stores::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_task_types_are_not_claimed_sqlite() {
    paused_task_types_are_not_claimed(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_task_types_are_not_claimed_postgres() {
    paused_task_types_are_not_claimed(stores::postgres().await).await;
}
