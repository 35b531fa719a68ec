//! The store conformance suite: every case runs against SQLite and against the
//! real PostgreSQL, each on a database (or schema) of its own.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sluice::store::{
    BatchLimits, Claim, Claimable, Commit, Committed, Completion, DeadFilter, FailResult, Failure,
    Gate, NewItem, RetryPolicies, RetryPolicy, RunAfter, Store, StoreError, StoreOptions,
    StoredOutput,
};
use support::host::new_item as item;
use support::stores::TestStore;

const LEASE: Duration = Duration::from_secs(60);
const ALL: BatchLimits = BatchLimits {
    max_items: 1000,
    max_tokens: u64::MAX,
};
const ONE: BatchLimits = BatchLimits {
    max_items: 1,
    max_tokens: u64::MAX,
};

fn claimable(task_type: &str) -> Vec<Claimable> {
    vec![Claimable {
        task_type: task_type.into(),
        gate: Gate::default(),
    }]
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
    }
}

/// Claims one unit of `task_type`, polling through backoff (up to 10 s).
async fn claim_one(store: &dyn Store, worker: &str, task_type: &str) -> Claim {
    for _ in 0..1000 {
        let mut claims = store
            .claim(worker, &claimable(task_type), 1, LEASE)
            .await
            .unwrap();
        if let Some(claim) = claims.pop() {
            return claim;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no unit of {task_type} became claimable within 10 s");
}

/// Enqueues `items` and returns their ids, in order.
async fn enqueued_ids(store: &dyn Store, items: &[NewItem]) -> Vec<i64> {
    store
        .enqueue(items)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect()
}

/// Enqueues one `{}` echo item per entry of `keys` and returns their ids.
async fn enqueue_echo(store: &dyn Store, keys: &[&str]) -> Vec<i64> {
    let items: Vec<NewItem> = keys.iter().map(|k| item("echo", k, "{}")).collect();
    enqueued_ids(store, &items).await
}

/// Claims up to `most` echo units for worker `w` and fetches each one's whole
/// backlog; the claims by key.
async fn claim_and_fetch_all(
    store: &dyn Store,
    most: u32,
) -> std::collections::BTreeMap<String, Claim> {
    let mut claims = std::collections::BTreeMap::new();
    for claim in store
        .claim("w", &claimable("echo"), most, LEASE)
        .await
        .unwrap()
    {
        store.fetch_batch(&claim, ALL).await.unwrap();
        claims.insert(claim.work_unit_key.clone(), claim);
    }
    claims
}

/// The keys of the units worker `w` holds, as its heartbeat reports them.
async fn held_keys(store: &dyn Store) -> HashSet<String> {
    store
        .heartbeat("w", LEASE)
        .await
        .unwrap()
        .into_iter()
        .map(|claim| claim.work_unit_key)
        .collect()
}

/// The echo unit `key`'s outputs in order: the items each covered, and what
/// it returned.
async fn outputs_of(store: &dyn Store, key: &str) -> Vec<(Vec<i64>, Option<String>)> {
    store
        .outputs("echo", key)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.item_ids, o.output))
        .collect()
}

/// Each unit's stored pending count, pending tokens and oldest pending time,
/// by key.
type UnitCounts = Vec<(String, i64, i64, Option<i64>)>;

async fn unit_counts(url: &str) -> UnitCounts {
    unit_rows(
        url,
        "SELECT work_unit_key, pending_count, pending_tokens, oldest_pending_ms
           FROM sluice_units ORDER BY work_unit_key",
    )
    .await
}

/// [`unit_counts`] as the items say they should be.
async fn recounted(url: &str) -> UnitCounts {
    unit_rows(
        url,
        "SELECT u.work_unit_key,
                (SELECT count(*) FROM sluice_items i
                  WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                    AND i.state = 'pending'),
                (SELECT CAST(coalesce(sum(i.tokens), 0) AS bigint) FROM sluice_items i
                  WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                    AND i.state = 'pending'),
                (SELECT i.created_at_ms FROM sluice_items i
                  WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                    AND i.state = 'pending' ORDER BY i.id LIMIT 1)
           FROM sluice_units u ORDER BY u.work_unit_key",
    )
    .await
}

async fn unit_rows(url: &str, sql: &'static str) -> UnitCounts {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&pool).await.unwrap()
    }
}

/// Runs `sql` as a producer would, on a connection of its own.
async fn raw_sql(url: &str, sql: &'static str) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
}

fn count(status: &sluice::store::Status, task_type: &str, state: &str) -> i64 {
    status
        .depths
        .iter()
        .find(|d| d.task_type == task_type && d.state == state)
        .map_or(0, |d| d.count)
}

mod cases {
    use super::*;

    pub async fn enqueue_returns_ids_in_order_and_items_are_pending(t: TestStore) {
        let store = &*t.store;
        let ids = store
            .enqueue(&[
                item("echo", "a", "{}"),
                item("echo", "a", "[1]"),
                item("echo", "b", "2"),
            ])
            .await
            .unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0].id < w[1].id));
        assert!(ids.iter().all(|e| !e.duplicate));
        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "pending"), 3);
        assert_eq!(status.claimed_units, 0);
    }

    pub async fn a_dedupe_hit_returns_the_original_id(t: TestStore) {
        let store = &*t.store;
        let mut first = item("echo", "a", r#"{"n":1}"#);
        first.dedupe_key = Some("msg-1".into());
        let mut second = item("echo", "b", r#"{"n":2}"#);
        second.dedupe_key = Some("msg-1".into());
        let a = store.enqueue(std::slice::from_ref(&first)).await.unwrap()[0];
        let b = store.enqueue(std::slice::from_ref(&second)).await.unwrap()[0];
        assert_eq!(b.id, a.id);
        assert!(b.duplicate && !a.duplicate);
        assert_eq!(count(&store.status().await.unwrap(), "echo", "pending"), 1);
        // Once the first is done, the key is free again.
        let claim = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        store
            .complete(&claim, &[batch[0].id], None, &[], None)
            .await
            .unwrap();
        let c = store.enqueue(&[second]).await.unwrap()[0];
        assert!(!c.duplicate && c.id != a.id);
    }

    pub async fn mixed_batches_keep_input_order_and_dedupe_within_the_batch(t: TestStore) {
        let store = &*t.store;
        let deduped = |payload: &str| NewItem {
            dedupe_key: Some("d1".into()),
            ..item("echo", "k", payload)
        };
        let out = store
            .enqueue(&[
                item("echo", "k", "1"),
                deduped("2"),
                item("echo", "k", "3"),
                item("echo", "k", "4"),
                deduped("5"),
            ])
            .await
            .unwrap();
        assert!(out[0].id < out[1].id && out[1].id < out[2].id && out[2].id < out[3].id);
        assert_eq!((out[4].id, out[4].duplicate), (out[1].id, true));
        let claim = claim_one(store, "w", "echo").await;
        let payloads: Vec<String> = store
            .fetch_batch(&claim, ALL)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.payload)
            .collect();
        assert_eq!(
            payloads,
            ["1", "2", "3", "4"],
            "handed out in enqueue order"
        );
    }

    pub async fn bad_input_is_refused_and_writes_nothing(t: TestStore) {
        let store = &*t.store;
        let too_big = format!("\"{}\"", "x".repeat(2 << 20));
        let cases: Vec<(NewItem, &str)> = vec![
            (item("echo", "k", "{not json"), "not valid JSON"),
            (item("", "k", "{}"), "task_type is empty"),
            (item("echo", "  ", "{}"), "work_unit_key is empty"),
            (
                item("echo", "k", &too_big),
                "over the limit of 1048576 bytes",
            ),
        ];
        for (bad, expected) in cases {
            let err = store
                .enqueue(&[item("echo", "k", "{}"), bad])
                .await
                .expect_err("a bad item fails the whole enqueue");
            let message = err.to_string();
            assert!(
                matches!(err, StoreError::InvalidItem { index: 1, .. }),
                "{message}"
            );
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("nothing was enqueued"), "{message}");
        }
        assert!(
            store.status().await.unwrap().depths.is_empty(),
            "nothing was written"
        );
    }

    pub async fn concurrent_claimers_never_hold_the_same_unit(t: TestStore) {
        let store = t.store.clone();
        let items: Vec<NewItem> = (0..60)
            .map(|k| item("echo", &format!("k{k}"), "{}"))
            .collect();
        store.enqueue(&items).await.unwrap();
        let claimers: Vec<_> = (0..6)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = store
                            .claim(&format!("w{w}"), &claimable("echo"), 4, LEASE)
                            .await
                            .unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got);
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for claimer in claimers {
            for claim in claimer.await.unwrap() {
                assert!(
                    seen.insert(claim.work_unit_key.clone()),
                    "{claim:?} claimed twice"
                );
            }
        }
        assert_eq!(seen.len(), 60, "every unit was claimed exactly once");
        assert_eq!(store.status().await.unwrap().claimed_units, 60);
    }

    pub async fn units_are_claimed_oldest_first_and_only_for_known_task_types(t: TestStore) {
        let store = &*t.store;
        for key in ["first", "second", "third"] {
            store.enqueue(&[item("echo", key, "{}")]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        store.enqueue(&[item("other", "x", "{}")]).await.unwrap();
        let claims = store
            .claim("w", &claimable("echo"), 2, LEASE)
            .await
            .unwrap();
        let keys: Vec<_> = claims.iter().map(|c| c.work_unit_key.as_str()).collect();
        assert_eq!(keys, ["first", "second"]);
        let rest = store
            .claim("w", &claimable("echo"), 10, LEASE)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].work_unit_key, "third");
        assert!(store.claim("w", &[], 10, LEASE).await.unwrap().is_empty());
    }

    pub async fn batches_follow_id_order_and_budgets_but_always_take_one(t: TestStore) {
        let store = &*t.store;
        let items: Vec<NewItem> = (0..5)
            .map(|n| NewItem {
                tokens: 3,
                ..item("echo", "conv", &n.to_string())
            })
            .collect();
        let ids: Vec<i64> = enqueued_ids(store, &items).await;
        let claim = claim_one(store, "w", "echo").await;
        let budget = BatchLimits {
            max_items: 10,
            max_tokens: 7,
        };
        let batch = store.fetch_batch(&claim, budget).await.unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), ids[..2]);
        assert_eq!(batch[0].payload, "0");
        store
            .complete(&claim, &[batch[0].id, batch[1].id], Some("{}"), &[], None)
            .await
            .unwrap();
        let tiny = BatchLimits {
            max_items: 10,
            max_tokens: 1,
        };
        let batch = store.fetch_batch(&claim, tiny).await.unwrap();
        assert_eq!(
            batch.len(),
            1,
            "at least one item even over the token budget"
        );
        assert_eq!(batch[0].id, ids[2]);
        let count_capped = BatchLimits {
            max_items: 1,
            max_tokens: u64::MAX,
        };
        store
            .complete(&claim, &[ids[2]], None, &[], None)
            .await
            .unwrap();
        let batch = store.fetch_batch(&claim, count_capped).await.unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[3]]);
    }

    pub async fn an_outputs_items_are_stored_in_id_order(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["conv", "conv", "conv"]).await;
        let claim = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim, ALL).await.unwrap();
        store
            .complete(&claim, &[ids[2], ids[0], ids[1]], Some("1"), &[], None)
            .await
            .unwrap();
        assert_eq!(
            outputs_of(store, "conv").await,
            [(ids.clone(), Some("1".to_string()))],
            "the output names its items in id order, whatever order the call gave"
        );
    }

    pub async fn complete_stores_output_and_follow_ups_in_one_transaction(t: TestStore) {
        let store = &*t.store;
        let id = store.enqueue(&[item("echo", "conv", "{}")]).await.unwrap()[0].id;
        let claim = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim, ALL).await.unwrap();
        store
            .complete(
                &claim,
                &[id],
                Some(r#"{"facts":["a"]}"#),
                &[item("summary", "conv", r#"{"from":1}"#)],
                None,
            )
            .await
            .unwrap();
        let outputs = store.outputs("echo", "conv").await.unwrap();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].item_ids, [id]);
        let output: serde_json::Value =
            serde_json::from_str(outputs[0].output.as_deref().unwrap()).unwrap();
        assert_eq!(output["facts"][0], "a");
        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "done"), 1);
        assert_eq!(count(&status, "summary", "pending"), 1);
        // A follow-up that is not JSON fails the whole completion.
        let id2 = store.enqueue(&[item("echo", "conv2", "{}")]).await.unwrap()[0].id;
        let claim2 = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim2, ALL).await.unwrap();
        let err = store
            .complete(
                &claim2,
                &[id2],
                None,
                &[item("summary", "conv2", "nope")],
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidItem { .. }), "{err}");
        assert_eq!(count(&store.status().await.unwrap(), "echo", "pending"), 1);
    }

    pub async fn only_items_fetched_under_the_claim_can_be_completed(t: TestStore) {
        let store = &*t.store;
        let ids: Vec<i64> =
            enqueued_ids(store, &[item("echo", "k", "1"), item("echo", "k", "2")]).await;
        let claim = claim_one(store, "w", "echo").await;
        store
            .fetch_batch(
                &claim,
                BatchLimits {
                    max_items: 1,
                    max_tokens: u64::MAX,
                },
            )
            .await
            .unwrap();
        let err = store
            .complete(&claim, &[ids[0], ids[1]], Some("{}"), &[], None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotInFlight(_)), "{err}");
        assert!(
            store.outputs("echo", "k").await.unwrap().is_empty(),
            "nothing was written"
        );
        store
            .complete(&claim, &[ids[0]], Some("{}"), &[], None)
            .await
            .unwrap();
    }

    pub async fn a_claim_takes_each_units_first_batch_as_a_fetch_would(t: TestStore) {
        let store = &*t.store;
        let tokens = |n: u32, item: NewItem| NewItem { tokens: n, ..item };
        let later = |item: NewItem| NewItem {
            run_after: Some(RunAfter::Delay(Duration::from_secs(3600))),
            ..item
        };
        let ids: Vec<i64> = enqueued_ids(
            store,
            &[
                tokens(10, item("echo", "a", r#"{"n":0}"#)),
                tokens(10, item("echo", "a", r#"{"n":1}"#)),
                tokens(10, item("echo", "a", r#"{"n":2}"#)),
                tokens(10, item("echo", "a", r#"{"n":3}"#)),
                item("echo", "b", r#"{"n":4}"#),
                later(item("echo", "b", r#"{"n":5}"#)),
                item("echo", "b", r#"{"n":6}"#),
                item("other", "c", r#"{"n":7}"#),
            ],
        )
        .await;
        let task_types = [claimable("echo"), claimable("other")].concat();
        let echo_limits = BatchLimits {
            max_items: 3,
            max_tokens: 25,
        };
        let taken = store
            .claim_batches("w", &task_types, &[echo_limits, ALL], 10, 10, LEASE)
            .await
            .unwrap();
        let by_key: std::collections::BTreeMap<String, (Claim, Vec<i64>)> = taken
            .into_iter()
            .map(|t| {
                let ids = t.items.iter().map(|i| i.id).collect();
                (
                    t.claimed.claim.work_unit_key.clone(),
                    (t.claimed.claim, ids),
                )
            })
            .collect();
        assert_eq!(by_key.len(), 3, "every ready unit is claimed: {by_key:?}");
        assert_eq!(by_key["a"].1, [ids[0], ids[1]], "within the token budget");
        assert_eq!(by_key["b"].1, [ids[4]], "stops before an item not yet due");
        assert_eq!(by_key["c"].1, [ids[7]], "another task type's limits");
        // Not taken: another claim's fetch, or a commit of them, fails.
        let a = &by_key["a"].0;
        let early = store
            .commit(&[Commit {
                claim: a.clone(),
                completions: vec![Completion {
                    item_ids: vec![ids[2]],
                    output: None,
                    follow_up: vec![],
                    call: None,
                }],
                release_if_drained: false,
            }])
            .await
            .unwrap();
        assert!(
            matches!(early[0], Err(StoreError::NotInFlight(_))),
            "{early:?}"
        );
        // Taken: they are in flight under the claim and complete.
        let commits: Vec<Commit> = ["a", "b", "c"]
            .iter()
            .map(|key| Commit {
                claim: by_key[*key].0.clone(),
                completions: vec![Completion {
                    item_ids: by_key[*key].1.clone(),
                    output: Some("{}".into()),
                    follow_up: vec![],
                    call: None,
                }],
                release_if_drained: true,
            })
            .collect();
        let results = store.commit(&commits).await.unwrap();
        assert!(matches!(results[0], Ok(Committed::Done)), "{results:?}");
        assert!(matches!(results[1], Ok(Committed::Done)), "{results:?}");
        assert!(matches!(results[2], Ok(Committed::Released)), "{results:?}");
        // The unit's next fetch goes on after the claim's batch.
        let next = store.fetch_batch(a, echo_limits).await.unwrap();
        assert_eq!(
            next.iter().map(|i| i.id).collect::<Vec<_>>(),
            [ids[2], ids[3]]
        );
        let again = store
            .claim_batches("w2", &task_types, &[echo_limits, ALL], 10, 10, LEASE)
            .await
            .unwrap();
        assert!(again.is_empty(), "held and waiting units: {again:?}");
    }

    pub async fn a_narrowed_units_first_batch_is_narrowed_too(t: TestStore) {
        let store = &*t.store;
        let items: Vec<NewItem> = (0..4)
            .map(|n| item("echo", "k", &format!(r#"{{"n":{n}}}"#)))
            .collect();
        let ids: Vec<i64> = enqueued_ids(store, &items).await;
        let take = || async {
            for _ in 0..1000 {
                let mut taken = store
                    .claim_batches("w", &claimable("echo"), &[ALL], 1, 1, LEASE)
                    .await
                    .unwrap();
                if let Some(taken) = taken.pop() {
                    return taken;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the unit did not come back within 10 s");
        };
        let first = take().await;
        assert_eq!(first.items.len(), 4, "the whole unit at first");
        store
            .fail(
                &first.claimed.claim,
                &Failure::Retryable("trap".into()),
                &fast_policy(5),
            )
            .await
            .unwrap();
        let second = take().await;
        let second_ids: Vec<i64> = second.items.iter().map(|i| i.id).collect();
        assert!(
            !second_ids.is_empty() && second_ids.len() < 4 && second_ids[0] == ids[0],
            "a failed batch narrows the next one, claimed or fetched: {second_ids:?}"
        );
    }

    pub async fn a_group_commit_lands_each_claims_completions_on_their_own(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["a", "a", "b", "c", "d", "e"]).await;
        let claims = claim_and_fetch_all(store, 5).await;
        assert_eq!(claims.len(), 5);
        let done = |ids: &[i64], follow_up: Vec<NewItem>| Completion {
            item_ids: ids.to_vec(),
            output: Some(format!(r#"{{"items":{ids:?}}}"#)),
            follow_up,
            call: Some(r#"{"plugin":"test"}"#.into()),
        };
        let commit = |key: &str, completions: Vec<Completion>, release_if_drained: bool| Commit {
            claim: claims[key].clone(),
            completions,
            release_if_drained,
        };
        let lost = Commit {
            claim: Claim {
                token: claims["c"].token ^ 1,
                ..claims["c"].clone()
            },
            ..commit("c", vec![done(&[ids[3]], vec![])], false)
        };
        let results = store
            .commit(&[
                // Two calls of one unit, which they leave empty: released.
                commit(
                    "a",
                    vec![done(&[ids[0]], vec![]), done(&[ids[1]], vec![])],
                    true,
                ),
                // Kept: the claim holds, and its follow-up is enqueued.
                commit(
                    "b",
                    vec![done(&[ids[2]], vec![item("echo", "f", "{}")])],
                    false,
                ),
                lost,
                // Items of another unit are not in flight under d's claim.
                commit("d", vec![done(&[ids[0]], vec![])], true),
                commit("e", vec![done(&[ids[5]], vec![item("", "f", "{}")])], true),
            ])
            .await
            .unwrap();
        assert!(matches!(results[0], Ok(Committed::Released)), "{results:?}");
        assert!(matches!(results[1], Ok(Committed::Done)), "{results:?}");
        assert!(
            matches!(results[2], Err(StoreError::ClaimLost { .. })),
            "{results:?}"
        );
        assert!(
            matches!(results[3], Err(StoreError::NotInFlight(_))),
            "{results:?}"
        );
        assert!(
            matches!(results[4], Err(StoreError::InvalidItem { .. })),
            "{results:?}"
        );

        let outputs = |key: &'static str| outputs_of(store, key);
        let a: Vec<(Vec<i64>, serde_json::Value)> = outputs("a")
            .await
            .into_iter()
            .map(|(ids, output)| (ids, serde_json::from_str(&output.unwrap()).unwrap()))
            .collect();
        assert_eq!(
            a,
            vec![
                (vec![ids[0]], serde_json::json!({ "items": [ids[0]] })),
                (vec![ids[1]], serde_json::json!({ "items": [ids[1]] })),
            ],
            "one output per call, in order"
        );
        assert_eq!(outputs("b").await.len(), 1);
        for key in ["c", "d", "e"] {
            assert!(outputs(key).await.is_empty(), "nothing written for {key}");
        }
        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "done"), 3, "a's two items and b's");
        // c, d and e are pending still, and f is b's follow-up.
        assert_eq!(count(&status, "echo", "pending"), 4);
        let held = held_keys(store).await;
        assert_eq!(
            held,
            ["b", "c", "d", "e"].map(String::from).into(),
            "a was released with its last items; every other claim is still held"
        );
        // A commit that failed changed nothing: d and e can still complete.
        for key in ["d", "e"] {
            let id = if key == "d" { ids[4] } else { ids[5] };
            let result = store
                .commit(&[commit(key, vec![done(&[id], vec![])], true)])
                .await
                .unwrap();
            assert!(
                matches!(result[0], Ok(Committed::Released)),
                "{key}: {result:?}"
            );
        }
    }

    pub async fn an_item_mode_failure_charges_only_the_item_called(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["k", "k", "k", "k"]).await;
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(store.fetch_batch(&claim, ALL).await.unwrap().len(), 4);
        store
            .complete(&claim, &[ids[0]], Some("{}"), &[], None)
            .await
            .unwrap();
        let failed = store
            .fail_through(
                &claim,
                ids[1],
                &Failure::Retryable("boom".into()),
                &fast_policy(3),
            )
            .await
            .unwrap();
        assert!(matches!(failed, FailResult::RetryAt(_)), "{failed:?}");
        assert_eq!(store.status().await.unwrap().claimed_units, 0, "released");
        let claim = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        let attempts: Vec<(i64, u32)> = batch.iter().map(|i| (i.id, i.attempts)).collect();
        assert_eq!(
            attempts,
            vec![(ids[1], 1), (ids[2], 0), (ids[3], 0)],
            "the item called was charged alone; the items after it were never called"
        );
    }

    pub async fn a_fenced_write_after_a_reap_changes_nothing(t: TestStore) {
        let store = &*t.store;
        let id = store.enqueue(&[item("echo", "k", "{}")]).await.unwrap()[0].id;
        let claim = store
            .claim(
                "dead-worker",
                &claimable("echo"),
                1,
                Duration::from_millis(50),
            )
            .await
            .unwrap()
            .remove(0);
        store.fetch_batch(&claim, ALL).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let policies = RetryPolicies {
            default: fast_policy(5),
            ..Default::default()
        };
        assert_eq!(store.reap(&policies, None).await.unwrap(), 1);
        assert_eq!(
            store.reap(&policies, None).await.unwrap(),
            0,
            "reaping is idempotent"
        );
        for err in [
            store
                .complete(&claim, &[id], Some("{}"), &[], None)
                .await
                .unwrap_err(),
            store.release(&claim).await.unwrap_err(),
            store
                .fail(&claim, &Failure::Retryable("late".into()), &fast_policy(5))
                .await
                .unwrap_err(),
            store.fetch_batch(&claim, ALL).await.unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::ClaimLost { .. }), "{err}");
        }
        assert!(
            store.outputs("echo", "k").await.unwrap().is_empty(),
            "nothing was written"
        );
        // The item is pending again with the reap counted as an attempt.
        let next = claim_one(store, "w2", "echo").await;
        assert!(next.token != claim.token);
        let batch = store.fetch_batch(&next, ALL).await.unwrap();
        assert_eq!((batch[0].id, batch[0].attempts), (id, 1));
    }

    pub async fn heartbeats_extend_leases_and_reveal_lost_claims(t: TestStore) {
        let store = &*t.store;
        store
            .register_worker(&sluice::store::WorkerInfo {
                id: "w".into(),
                host_name: "host-a".into(),
                pid: 4242,
                version: "0.1.0".into(),
                task_types: Vec::new(),
            })
            .await
            .unwrap();
        let registered = store.status().await.unwrap().workers;
        assert_eq!(registered.len(), 1);
        assert_eq!(
            (registered[0].host_name.as_str(), registered[0].pid),
            ("host-a", 4242)
        );
        store
            .enqueue(&[item("echo", "a", "{}"), item("echo", "b", "{}")])
            .await
            .unwrap();
        let claims = store
            .claim("w", &claimable("echo"), 2, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(claims.len(), 2);
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let held = store
                .heartbeat("w", Duration::from_millis(100))
                .await
                .unwrap();
            assert_eq!(held.len(), 2, "heartbeats keep both leases alive");
        }
        assert_eq!(
            store.reap(&RetryPolicies::default(), None).await.unwrap(),
            0
        );
        store.release(&claims[0]).await.unwrap();
        let held = store.heartbeat("w", LEASE).await.unwrap();
        assert_eq!(held, [claims[1].clone()], "the released claim is gone");
        let seen = &store.status().await.unwrap().workers[0];
        assert!(
            seen.last_seen_ms >= registered[0].last_seen_ms + 150,
            "heartbeats keep the worker's last-seen time current: {seen:?}"
        );
    }

    pub async fn retryable_failures_back_off_then_dead_letter_the_head(t: TestStore) {
        let store = &*t.store;
        let ids: Vec<i64> = enqueued_ids(
            store,
            &[
                item("echo", "k", r#"{"n":1}"#),
                item("echo", "k", r#"{"n":2}"#),
            ],
        )
        .await;
        // Backoffs long enough that a loaded machine claims again within them.
        let policy = RetryPolicy {
            backoff_base: Duration::from_millis(300),
            backoff_max: Duration::from_millis(600),
            ..fast_policy(3)
        };
        for attempt in 1..=3 {
            let claim = claim_one(store, "w", "echo").await;
            let batch = store
                .fetch_batch(
                    &claim,
                    BatchLimits {
                        max_items: 1,
                        max_tokens: u64::MAX,
                    },
                )
                .await
                .unwrap();
            assert_eq!(batch[0].id, ids[0]);
            assert_eq!(batch[0].attempts, attempt - 1);
            let result = store
                .fail(
                    &claim,
                    &Failure::Retryable(format!("boom {attempt}")),
                    &policy,
                )
                .await
                .unwrap();
            if attempt < 3 {
                assert!(matches!(result, FailResult::RetryAt(_)), "{result:?}");
                // Backing off: not claimable at once.
                let again = store
                    .claim("w", &claimable("echo"), 1, LEASE)
                    .await
                    .unwrap();
                assert!(
                    again.is_empty(),
                    "attempt {attempt}: the unit should be backing off"
                );
            } else {
                assert_eq!(result, FailResult::DeadLettered(ids[0]));
            }
        }
        let dead = store.dead_list(None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, ids[0]);
        assert_eq!(dead[0].attempts, 3);
        assert_eq!(dead[0].last_error.as_deref(), Some("boom 3"));
        assert_eq!(
            dead[0].errors.as_array().unwrap().len(),
            3,
            "the error history is kept"
        );
        assert_eq!(dead[0].payload["n"], 1);
        // The unit goes on with its next item.
        let claim = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[1]]);
    }

    pub async fn a_failing_batch_narrows_until_only_the_poison_item_is_charged(t: TestStore) {
        let store = &*t.store;
        let payloads: Vec<String> = (1..=6)
            .map(|n| {
                if n == 3 {
                    r#"{"poison":true}"#.to_string()
                } else {
                    format!(r#"{{"n":{n}}}"#)
                }
            })
            .collect();
        let items: Vec<NewItem> = payloads.iter().map(|p| item("echo", "k", p)).collect();
        let ids: Vec<i64> = enqueued_ids(store, &items).await;
        let policy = fast_policy(2);
        let mut completed = Vec::new();
        let mut batches = Vec::new();
        for _ in 0..30 {
            let status = store.status().await.unwrap();
            if count(&status, "echo", "pending") == 0 {
                break;
            }
            let claim = claim_one(store, "w", "echo").await;
            let batch = store.fetch_batch(&claim, ALL).await.unwrap();
            let batch_ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
            batches.push(batch_ids.clone());
            if batch.iter().any(|i| i.payload.contains("poison")) {
                store
                    .fail(&claim, &Failure::Retryable("trap".into()), &policy)
                    .await
                    .unwrap();
            } else {
                store
                    .complete(&claim, &batch_ids, Some("{}"), &[], None)
                    .await
                    .unwrap();
                completed.extend(batch_ids);
                store.release(&claim).await.unwrap();
            }
        }
        let good: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[2]).collect();
        assert_eq!(
            completed, good,
            "the others complete, in order: {batches:?}"
        );
        let dead = store.dead_list(None, 10).await.unwrap();
        assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [ids[2]]);
        assert_eq!(dead[0].attempts, 2, "only the poison item spent attempts");
        assert_eq!(batches[0].len(), 6, "the first batch is whole: {batches:?}");
        assert_eq!(
            batches.last().map(Vec::len),
            Some(3),
            "once past the failed batch, batches are whole again: {batches:?}"
        );
    }

    pub async fn a_permanent_failure_dead_letters_at_once(t: TestStore) {
        let store = &*t.store;
        let id = store.enqueue(&[item("echo", "k", "{}")]).await.unwrap()[0].id;
        let claim = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim, ALL).await.unwrap();
        let result = store
            .fail(
                &claim,
                &Failure::Permanent("bad payload".into()),
                &fast_policy(10),
            )
            .await
            .unwrap();
        assert_eq!(result, FailResult::DeadLettered(id));
        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "dead"), 1);
        assert_eq!(count(&status, "echo", "pending"), 0);
    }

    pub async fn a_key_that_keeps_losing_its_claim_is_quarantined(t: TestStore) {
        let store = &*t.store;
        let id = store
            .enqueue(&[item("echo", "poison", "{}")])
            .await
            .unwrap()[0]
            .id;
        let policies = RetryPolicies {
            default: fast_policy(2),
            ..Default::default()
        };
        for _ in 0..2 {
            // A host claims it, starts it, and dies.
            let claim = loop {
                let mut c = store
                    .claim("crashy", &claimable("echo"), 1, Duration::from_millis(30))
                    .await
                    .unwrap();
                if let Some(c) = c.pop() {
                    break c;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            store.fetch_batch(&claim, ALL).await.unwrap();
            tokio::time::sleep(Duration::from_millis(80)).await;
            assert_eq!(store.reap(&policies, None).await.unwrap(), 1);
        }
        let dead = store
            .dead_list(Some(&DeadFilter::Id(id)), 10)
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "dead-lettered after max attempts of reaps");
        assert!(dead[0].last_error.as_deref().unwrap().contains("crashy"));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            store
                .claim("w", &claimable("echo"), 1, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn release_gives_the_unit_back_without_an_attempt(t: TestStore) {
        let store = &*t.store;
        store.enqueue(&[item("echo", "k", "{}")]).await.unwrap();
        let claim = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim, ALL).await.unwrap();
        store.release(&claim).await.unwrap();
        let again = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&again, ALL).await.unwrap();
        assert_eq!(batch[0].attempts, 0);
    }

    /// A bulk release gives back every unit whose claim is still held, and
    /// leaves a unit claimed again since (by another worker) with its owner.
    pub async fn release_all_releases_only_the_claims_still_held(t: TestStore) {
        let store = &*t.store;
        for key in ["a", "b", "c"] {
            store.enqueue(&[item("echo", key, "{}")]).await.unwrap();
        }
        let first = claim_one(store, "w", "echo").await;
        let second = claim_one(store, "w", "echo").await;
        let stale = claim_one(store, "w", "echo").await;
        store.release(&stale).await.unwrap();
        let taken = claim_one(store, "w2", "echo").await;
        assert_eq!(taken.work_unit_key, stale.work_unit_key);

        let released = store
            .release_all(&[first.clone(), stale.clone(), second.clone()])
            .await
            .unwrap();
        assert!(released[0].is_ok(), "{released:?}");
        assert!(
            matches!(&released[1], Err(StoreError::ClaimLost { .. })),
            "{released:?}"
        );
        assert!(released[2].is_ok(), "{released:?}");
        assert_eq!(released.len(), 3);
        assert_eq!(store.status().await.unwrap().claimed_units, 1);
        assert!(matches!(
            store.release(&stale).await,
            Err(StoreError::ClaimLost { .. })
        ));
        let mut again = Vec::new();
        for _ in 0..2 {
            let claim = claim_one(store, "w", "echo").await;
            let batch = store.fetch_batch(&claim, ALL).await.unwrap();
            assert_eq!(batch[0].attempts, 0);
            again.push(claim.work_unit_key);
        }
        again.sort();
        let mut expected = vec![first.work_unit_key, second.work_unit_key];
        expected.sort();
        assert_eq!(again, expected);
        store.release(&taken).await.unwrap();
    }

    /// Another process (a second `sluice status`, a producer) sees each write
    /// as soon as the call returns: nothing waits for the store's next use to
    /// be committed.
    pub async fn writes_are_visible_elsewhere_as_soon_as_they_return(t: TestStore) {
        let store = &*t.store;
        let elsewhere = sluice::store::open(&t.url, Default::default())
            .await
            .unwrap();
        store
            .enqueue(&[item("echo", "k", "{}"), item("echo", "k", "{}")])
            .await
            .unwrap();
        assert_eq!(
            count(&elsewhere.status().await.unwrap(), "echo", "pending"),
            2
        );
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(elsewhere.status().await.unwrap().claimed_units, 1);
        store.release(&claim).await.unwrap();
        assert_eq!(elsewhere.status().await.unwrap().claimed_units, 0);
        let claim = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&claim, ONE).await.unwrap();
        store
            .complete(&claim, &[batch[0].id], Some("{}"), &[], None)
            .await
            .unwrap();
        assert_eq!(count(&elsewhere.status().await.unwrap(), "echo", "done"), 1);
        store.fetch_batch(&claim, ONE).await.unwrap();
        store
            .fail(&claim, &Failure::Permanent("no".into()), &fast_policy(3))
            .await
            .unwrap();
        let seen = elsewhere.status().await.unwrap();
        assert_eq!(count(&seen, "echo", "dead"), 1);
        assert_eq!(seen.claimed_units, 0);
    }

    pub async fn done_items_past_the_retention_are_deleted_and_nothing_else(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["a", "a", "a", "b", "c"]).await;
        // a: three items done in one call; b: dead; c: still pending.
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(claim.work_unit_key, "a");
        store.fetch_batch(&claim, ALL).await.unwrap();
        store
            .complete(&claim, &ids[..3], Some("true"), &[], None)
            .await
            .unwrap();
        store.release(&claim).await.unwrap();
        let claim = claim_one(store, "w", "echo").await;
        store.fetch_batch(&claim, ALL).await.unwrap();
        store
            .fail(&claim, &Failure::Permanent("no".into()), &fast_policy(3))
            .await
            .unwrap();

        // Nothing is old enough for a day's retention.
        let day = Duration::from_secs(86_400);
        assert_eq!(store.prune_done(day, 100).await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        // With no retention, done items go, a batch at a time.
        assert_eq!(store.prune_done(Duration::ZERO, 2).await.unwrap(), 2);
        assert_eq!(store.prune_done(Duration::ZERO, 2).await.unwrap(), 1);
        assert_eq!(store.prune_done(Duration::ZERO, 2).await.unwrap(), 0);

        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "done"), 0);
        assert_eq!(count(&status, "echo", "dead"), 1);
        assert_eq!(count(&status, "echo", "pending"), 1);
        // The output stays, and the pending unit is still claimable.
        let outputs = store.outputs("echo", "a").await.unwrap();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].item_ids, ids[..3]);
        assert_eq!(outputs[0].output.as_deref(), Some("true"));
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(claim.work_unit_key, "c");
        assert_eq!(store.fetch_batch(&claim, ALL).await.unwrap()[0].id, ids[4]);
    }

    pub async fn outputs_past_their_retention_are_deleted_oldest_first_in_batches(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["a", "a", "a", "a"]).await;
        // One output per call, the last one stored well after the others.
        for (n, id) in ids.iter().enumerate() {
            if n == 3 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let claim = claim_one(store, "w", "echo").await;
            assert_eq!(store.fetch_batch(&claim, ONE).await.unwrap()[0].id, *id);
            store
                .complete(&claim, &[*id], Some(&n.to_string()), &[], None)
                .await
                .unwrap();
            store.release(&claim).await.unwrap();
        }

        assert_eq!(
            store
                .prune_outputs(Duration::from_secs(86_400), 100)
                .await
                .unwrap(),
            0
        );
        // Older than a second: the first three go, two at a time, oldest first.
        let second = Duration::from_secs(1);
        assert_eq!(store.prune_outputs(second, 2).await.unwrap(), 2);
        let left = |outputs: Vec<StoredOutput>| -> Vec<(Vec<i64>, Option<String>)> {
            outputs
                .into_iter()
                .map(|o| (o.item_ids, o.output))
                .collect()
        };
        assert_eq!(
            left(store.outputs("echo", "a").await.unwrap()),
            [
                (vec![ids[2]], Some("2".to_string())),
                (vec![ids[3]], Some("3".to_string()))
            ]
        );
        assert_eq!(store.prune_outputs(second, 2).await.unwrap(), 1);
        assert_eq!(store.prune_outputs(second, 2).await.unwrap(), 0);
        assert_eq!(
            left(store.outputs("echo", "a").await.unwrap()),
            [(vec![ids[3]], Some("3".to_string()))]
        );
        // The items themselves are item retention's business.
        assert_eq!(count(&store.status().await.unwrap(), "echo", "done"), 4);
    }

    pub async fn a_dead_letter_retried_during_a_claim_is_not_in_that_claims_batch(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["k", "k", "k"]).await;
        let first = claim_one(store, "w", "echo").await;
        store.fetch_batch(&first, ONE).await.unwrap();
        store
            .fail(&first, &Failure::Permanent("no".into()), &fast_policy(3))
            .await
            .unwrap();
        let second = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&second, ALL).await.unwrap();
        assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), ids[1..]);

        // The operator retries the dead head while the rest is being worked.
        assert_eq!(store.dead_retry(&DeadFilter::Id(ids[0])).await.unwrap(), 1);
        assert!(matches!(
            store.complete(&second, &[ids[0]], None, &[], None).await,
            Err(StoreError::NotInFlight(_))
        ));
        // A failure of this batch of two narrows the unit and charges nobody,
        // the retried item included.
        let result = store
            .fail(
                &second,
                &Failure::Retryable("later".into()),
                &fast_policy(3),
            )
            .await
            .unwrap();
        assert!(
            matches!(result, FailResult::Narrowed { batch: 1, .. }),
            "{result:?}"
        );
        let third = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&third, ALL).await.unwrap();
        let attempts: Vec<(i64, u32)> = batch.iter().map(|i| (i.id, i.attempts)).collect();
        assert_eq!(attempts, [(ids[0], 0)]);
    }

    pub async fn a_dead_letter_retried_below_a_claims_batch_joins_its_next_batch(t: TestStore) {
        let store = &*t.store;
        let ids = enqueue_echo(store, &["k", "k", "k"]).await;
        let first = claim_one(store, "w", "echo").await;
        store.fetch_batch(&first, ONE).await.unwrap();
        store
            .fail(&first, &Failure::Permanent("no".into()), &fast_policy(3))
            .await
            .unwrap();
        let second = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&second, ONE).await.unwrap();
        assert_eq!(batch[0].id, ids[1]);
        // The operator retries the dead head, below the batch in flight.
        assert_eq!(store.dead_retry(&DeadFilter::Id(ids[0])).await.unwrap(), 1);
        store
            .complete(&second, &[ids[1]], None, &[], None)
            .await
            .unwrap();
        // One fetch further: the retried item is the unit's first pending
        // item again, and it is in flight like any other.
        let batch = store.fetch_batch(&second, ONE).await.unwrap();
        assert_eq!(batch[0].id, ids[0]);
        store
            .complete(&second, &[ids[0]], None, &[], None)
            .await
            .unwrap();
        // A failure of the next batch charges its own item, nobody else.
        let batch = store.fetch_batch(&second, ONE).await.unwrap();
        assert_eq!(batch[0].id, ids[2]);
        store
            .fail(
                &second,
                &Failure::Retryable("later".into()),
                &fast_policy(3),
            )
            .await
            .unwrap();
        let third = claim_one(store, "w", "echo").await;
        let batch = store.fetch_batch(&third, ALL).await.unwrap();
        let attempts: Vec<(i64, u32)> = batch.iter().map(|i| (i.id, i.attempts)).collect();
        assert_eq!(attempts, [(ids[2], 1)]);
        let status = store.status().await.unwrap();
        assert_eq!(count(&status, "echo", "done"), 2);
        assert_eq!(count(&status, "echo", "dead"), 0);
    }

    pub async fn dead_letters_can_be_retried_and_purged_by_id_key_or_task_type(t: TestStore) {
        let store = &*t.store;
        let mut dead_ids = Vec::new();
        for (task_type, key) in [("echo", "a"), ("echo", "b"), ("summary", "c")] {
            let id = store.enqueue(&[item(task_type, key, "{}")]).await.unwrap()[0].id;
            let claim = claim_one(store, "w", task_type).await;
            store.fetch_batch(&claim, ALL).await.unwrap();
            store
                .fail(&claim, &Failure::Permanent("no".into()), &fast_policy(3))
                .await
                .unwrap();
            dead_ids.push(id);
        }
        let by_key = DeadFilter::Key {
            task_type: "echo".into(),
            work_unit_key: "a".into(),
        };
        assert_eq!(store.dead_list(Some(&by_key), 10).await.unwrap().len(), 1);
        assert_eq!(
            store
                .dead_list(Some(&DeadFilter::TaskType("echo".into())), 10)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.dead_retry(&by_key).await.unwrap(), 1);
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(claim.work_unit_key, "a");
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        assert_eq!(
            (batch[0].id, batch[0].attempts),
            (dead_ids[0], 0),
            "attempts reset"
        );
        assert_eq!(
            store
                .dead_retry(&DeadFilter::Id(dead_ids[1]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .dead_purge(&DeadFilter::TaskType("summary".into()))
                .await
                .unwrap(),
            1
        );
        assert!(store.dead_list(None, 10).await.unwrap().is_empty());
        assert_eq!(
            store
                .dead_purge(&DeadFilter::Id(dead_ids[2]))
                .await
                .unwrap(),
            0
        );
    }

    pub async fn gates_hold_units_until_enough_tokens_or_long_enough(t: TestStore) {
        let store = &*t.store;
        let by_tokens = [Claimable {
            task_type: "batch".into(),
            gate: Gate {
                min_tokens: Some(10),
                max_wait: None,
            },
        }];
        store
            .enqueue(&[NewItem {
                tokens: 6,
                ..item("batch", "k", "{}")
            }])
            .await
            .unwrap();
        assert!(
            store
                .claim("w", &by_tokens, 1, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .enqueue(&[NewItem {
                tokens: 4,
                ..item("batch", "k", "{}")
            }])
            .await
            .unwrap();
        assert_eq!(
            store.claim("w", &by_tokens, 1, LEASE).await.unwrap().len(),
            1
        );

        let by_wait = [Claimable {
            task_type: "slow".into(),
            gate: Gate {
                min_tokens: Some(1_000_000),
                max_wait: Some(Duration::from_millis(300)),
            },
        }];
        store.enqueue(&[item("slow", "k", "{}")]).await.unwrap();
        assert!(
            store
                .claim("w", &by_wait, 1, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.claim("w", &by_wait, 1, LEASE).await.unwrap().len(), 1);
    }

    pub async fn producers_can_enqueue_with_plain_sql(t: TestStore) {
        let sql = "INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens) \
                   VALUES ('echo', 'from-sql', '{\"text\":\"hi\"}', 2)";
        if t.url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        } else {
            let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        let claim = claim_one(&*t.store, "w", "echo").await;
        assert_eq!(claim.work_unit_key, "from-sql");
        let batch = t.store.fetch_batch(&claim, ALL).await.unwrap();
        let payload: serde_json::Value = serde_json::from_str(&batch[0].payload).unwrap();
        assert_eq!(payload["text"], "hi");
        assert_eq!(batch[0].tokens, 2);
    }

    pub async fn units_stay_in_step_when_producers_delete_or_try_to_edit_items(t: TestStore) {
        let store = &*t.store;
        let gate = [Claimable {
            task_type: "batch".into(),
            gate: Gate {
                min_tokens: Some(10),
                max_wait: None,
            },
        }];
        let ids: Vec<i64> = enqueued_ids(
            store,
            &[
                NewItem {
                    tokens: 6,
                    ..item("batch", "k", "1")
                },
                NewItem {
                    tokens: 6,
                    ..item("batch", "k", "2")
                },
            ],
        )
        .await;
        let delete = format!("DELETE FROM sluice_items WHERE id = {}", ids[1]);
        let edit = format!("UPDATE sluice_items SET tokens = 50 WHERE id = {}", ids[0]);
        let edit_error = if t.url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(delete))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(edit))
                .execute(&pool)
                .await
                .unwrap_err()
        } else {
            let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(delete))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(edit))
                .execute(&pool)
                .await
                .unwrap_err()
        };
        assert!(
            edit_error
                .to_string()
                .contains("cannot change once enqueued"),
            "{edit_error}"
        );
        // 6 tokens remain: below the gate, so not claimable; 4 more make 10.
        assert!(store.claim("w", &gate, 1, LEASE).await.unwrap().is_empty());
        store
            .enqueue(&[NewItem {
                tokens: 4,
                ..item("batch", "k", "3")
            }])
            .await
            .unwrap();
        let claim = store.claim("w", &gate, 1, LEASE).await.unwrap().remove(0);
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        assert_eq!(
            batch.iter().map(|i| i.payload.as_str()).collect::<Vec<_>>(),
            ["1", "3"]
        );
        store
            .complete(&claim, &[batch[0].id, batch[1].id], None, &[], None)
            .await
            .unwrap();
        store.release(&claim).await.unwrap();
        assert!(
            store
                .claim("w", &claimable("batch"), 1, LEASE)
                .await
                .unwrap()
                .is_empty(),
            "an emptied unit is not claimable"
        );
    }

    pub async fn a_restarted_worker_does_not_renew_its_previous_runs_claims(t: TestStore) {
        let store = &*t.store;
        let worker = sluice::store::WorkerInfo {
            id: "host-1".into(),
            host_name: "host".into(),
            pid: 1,
            version: "0.1.0".into(),
            task_types: Vec::new(),
        };
        store.register_worker(&worker).await.unwrap();
        store.enqueue(&[item("echo", "k", "{}")]).await.unwrap();
        let old = claim_one(store, "host-1", "echo").await;
        store.fetch_batch(&old, ALL).await.unwrap();
        // The process dies and comes back under the same id.
        store.register_worker(&worker).await.unwrap();
        assert!(store.heartbeat("host-1", LEASE).await.unwrap().is_empty());
        assert_eq!(
            store.reap(&RetryPolicies::default(), None).await.unwrap(),
            1
        );
        let new = claim_one(store, "host-1", "echo").await;
        assert!(new.token != old.token);
        assert_eq!(store.fetch_batch(&new, ALL).await.unwrap()[0].attempts, 1);
    }

    pub async fn unit_rows_count_what_is_pending_through_commits_failures_and_plain_sql(
        t: TestStore,
    ) {
        let store = &*t.store;
        let with_tokens = |key: &str, tokens: u32| NewItem {
            tokens,
            ..item("echo", key, "{}")
        };
        let ids: Vec<i64> = enqueued_ids(
            store,
            &[
                with_tokens("a", 5),
                with_tokens("a", 7),
                with_tokens("a", 11),
                with_tokens("b", 1),
                with_tokens("b", 2),
                with_tokens("c", 4),
            ],
        )
        .await;
        assert_eq!(unit_counts(&t.url).await, recounted(&t.url).await);
        let claims = claim_and_fetch_all(store, 3).await;
        let done = |ids: &[i64], follow_up: Vec<NewItem>| Completion {
            item_ids: ids.to_vec(),
            output: None,
            follow_up,
            call: None,
        };
        let results = store
            .commit(&[
                // Part of a: a keeps its claim and the rest of its items.
                Commit {
                    claim: claims["a"].clone(),
                    completions: vec![done(&[ids[0]], vec![])],
                    release_if_drained: true,
                },
                // All of b, released.
                Commit {
                    claim: claims["b"].clone(),
                    completions: vec![done(&[ids[3]], vec![]), done(&[ids[4]], vec![])],
                    release_if_drained: true,
                },
                // c, with a follow-up for a new unit d in the same transaction.
                Commit {
                    claim: claims["c"].clone(),
                    completions: vec![done(&[ids[5]], vec![with_tokens("d", 13)])],
                    release_if_drained: false,
                },
            ])
            .await
            .unwrap();
        assert!(matches!(results[0], Ok(Committed::Done)), "{results:?}");
        assert!(matches!(results[1], Ok(Committed::Released)), "{results:?}");
        assert!(matches!(results[2], Ok(Committed::Done)), "{results:?}");
        let after_commit = unit_counts(&t.url).await;
        assert_eq!(
            after_commit,
            recounted(&t.url).await,
            "after a group commit"
        );
        assert_eq!(
            after_commit
                .iter()
                .map(|(key, count, tokens, _)| (key.as_str(), *count, *tokens))
                .collect::<Vec<_>>(),
            [("a", 2, 18), ("b", 0, 0), ("c", 0, 0), ("d", 1, 13)],
        );

        // A failure that dead-letters a's head item goes through the other path.
        let dead = store
            .fail_through(
                &claims["a"],
                ids[1],
                &Failure::Permanent("boom".into()),
                &fast_policy(5),
            )
            .await
            .unwrap();
        assert_eq!(dead, FailResult::DeadLettered(ids[1]));
        assert_eq!(
            unit_counts(&t.url).await,
            recounted(&t.url).await,
            "after a failure"
        );

        // A producer finishing c's follow-up with plain SQL is counted too.
        raw_sql(
            &t.url,
            "UPDATE sluice_items SET state = 'done' WHERE work_unit_key = 'd' AND state = 'pending'",
        )
        .await;
        let after_sql = unit_counts(&t.url).await;
        assert_eq!(after_sql, recounted(&t.url).await, "after plain SQL");
        assert_eq!(
            after_sql
                .iter()
                .map(|(key, count, tokens, _)| (key.as_str(), *count, *tokens))
                .collect::<Vec<_>>(),
            [("a", 1, 11), ("b", 0, 0), ("c", 0, 0), ("d", 0, 0)],
        );
    }

    pub async fn a_group_of_batch_commits_counts_and_records_each_units_own_items(t: TestStore) {
        let store = &*t.store;
        let with_tokens = |key: &str, tokens: u32| NewItem {
            tokens,
            ..item("echo", key, "{}")
        };
        let tokens = [
            ("a", 1),
            ("a", 2),
            ("a", 3),
            ("a", 4),
            ("b", 10),
            ("b", 20),
            ("b", 30),
            ("c", 100),
            ("c", 200),
            ("d", 1000),
        ];
        let items: Vec<NewItem> = tokens.iter().map(|&(k, n)| with_tokens(k, n)).collect();
        let ids: Vec<i64> = enqueued_ids(store, &items).await;
        let claims = claim_and_fetch_all(store, 4).await;
        assert_eq!(claims.len(), 4);
        let done = |ids: &[i64]| Completion {
            item_ids: ids.to_vec(),
            output: Some(format!("{}", ids.len())),
            follow_up: vec![],
            call: None,
        };
        let commit = |key: &str, completions: Vec<Completion>| Commit {
            claim: claims[key].clone(),
            completions,
            release_if_drained: true,
        };
        let results = store
            .commit(&[
                // Two batches of a; a's last item stays pending, so a keeps
                // its claim.
                commit("a", vec![done(&[ids[0], ids[1]]), done(&[ids[2]])]),
                // One of b's batches takes an item of c: nothing of b is written.
                commit("b", vec![done(&[ids[4]]), done(&[ids[5], ids[7]])]),
                // All of c in one batch: released.
                commit("c", vec![done(&[ids[7], ids[8]])]),
                // d's claim is gone.
                Commit {
                    claim: Claim {
                        token: claims["d"].token ^ 1,
                        ..claims["d"].clone()
                    },
                    ..commit("d", vec![done(&[ids[9]])])
                },
            ])
            .await
            .unwrap();
        assert!(matches!(results[0], Ok(Committed::Done)), "{results:?}");
        assert!(
            matches!(results[1], Err(StoreError::NotInFlight(_))),
            "{results:?}"
        );
        assert!(matches!(results[2], Ok(Committed::Released)), "{results:?}");
        assert!(
            matches!(results[3], Err(StoreError::ClaimLost { .. })),
            "{results:?}"
        );

        let outputs = |key: &'static str| outputs_of(store, key);
        assert_eq!(
            outputs("a").await,
            [
                (vec![ids[0], ids[1]], Some("2".to_string())),
                (vec![ids[2]], Some("1".to_string()))
            ],
            "one output per batch, in order"
        );
        assert!(outputs("b").await.is_empty());
        assert_eq!(
            outputs("c").await,
            [(vec![ids[7], ids[8]], Some("2".to_string()))]
        );
        assert!(outputs("d").await.is_empty());

        let counts = unit_counts(&t.url).await;
        assert_eq!(counts, recounted(&t.url).await);
        assert_eq!(
            counts
                .iter()
                .map(|(key, count, tokens, _)| (key.as_str(), *count, *tokens))
                .collect::<Vec<_>>(),
            [("a", 1, 4), ("b", 3, 60), ("c", 0, 0), ("d", 1, 1000)],
        );
        let held = held_keys(store).await;
        assert_eq!(held, ["a", "b", "d"].map(String::from).into());
    }

    pub async fn a_unit_that_lost_its_oldest_pending_time_still_passes_a_max_wait_gate(
        t: TestStore,
    ) {
        let store = &*t.store;
        store.enqueue(&[item("slow", "k", "{}")]).await.unwrap();
        // What a trigger racing a concurrent `dead retry` could leave behind.
        match t.url.starts_with("postgres") {
            true => {
                let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
                sqlx::query("UPDATE sluice_units SET oldest_pending_ms = NULL")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            false => {
                let pool = sqlx::SqlitePool::connect(&t.url).await.unwrap();
                sqlx::query("UPDATE sluice_units SET oldest_pending_ms = NULL")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        let by_wait = [Claimable {
            task_type: "slow".into(),
            gate: Gate {
                min_tokens: Some(1_000_000),
                max_wait: Some(Duration::from_millis(300)),
            },
        }];
        assert_eq!(
            store.claim("w", &by_wait, 1, LEASE).await.unwrap().len(),
            1,
            "a pending unit with no known oldest time is not held back forever"
        );
    }

    pub async fn the_reaper_leaves_task_types_it_has_no_policy_for(t: TestStore) {
        let store = &*t.store;
        enqueue_echo(store, &["k"]).await;
        let claim = store
            .claim(
                "dead-host",
                &claimable("echo"),
                1,
                Duration::from_millis(30),
            )
            .await
            .unwrap()
            .remove(0);
        store.fetch_batch(&claim, ALL).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let mut policies = RetryPolicies {
            listed_only: true,
            ..Default::default()
        };
        policies
            .by_task_type
            .insert("summary".into(), fast_policy(5));
        assert_eq!(
            store.reap(&policies, None).await.unwrap(),
            0,
            "echo is another host's task type, with a policy this host does not know"
        );
        policies.by_task_type.insert("echo".into(), fast_policy(1));
        assert_eq!(
            store.reap(&policies, Some("dead-host")).await.unwrap(),
            0,
            "a reaper never takes its own process's claims"
        );
        assert_eq!(store.reap(&policies, None).await.unwrap(), 1);
        // Echo's own policy applied: one attempt was its last.
        assert_eq!(store.dead_list(None, 10).await.unwrap().len(), 1);
    }

    pub async fn idle_workers_and_empty_units_are_forgotten(t: TestStore) {
        let store = &*t.store;
        let worker = |id: &str| sluice::store::WorkerInfo {
            id: id.into(),
            host_name: "host".into(),
            pid: 1,
            version: "0.1.0".into(),
            task_types: Vec::new(),
        };
        store.register_worker(&worker("gone")).await.unwrap();
        store.register_worker(&worker("busy")).await.unwrap();
        let ids = enqueue_echo(store, &["drained"]).await;
        let drained = claim_one(store, "gone", "echo").await;
        store.fetch_batch(&drained, ALL).await.unwrap();
        store
            .complete(&drained, &ids, None, &[], None)
            .await
            .unwrap();
        store.release(&drained).await.unwrap();
        enqueue_echo(store, &["held"]).await;
        let held = claim_one(store, "busy", "echo").await;
        enqueue_echo(store, &["waiting"]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;

        let deleted = store
            .prune_idle(Duration::from_millis(10), 100)
            .await
            .unwrap();
        assert!(
            deleted >= 2,
            "the idle worker and the drained unit: {deleted}"
        );
        let workers: Vec<String> = store
            .status()
            .await
            .unwrap()
            .workers
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(workers, ["busy"], "a worker holding a claim stays");
        // The held and the waiting units are untouched; the drained one comes
        // back with its next item.
        store.release(&held).await.unwrap();
        store
            .enqueue(&[item("echo", "drained", "{}")])
            .await
            .unwrap();
        let mut keys: Vec<String> = store
            .claim("w", &claimable("echo"), 10, LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.work_unit_key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["drained", "held", "waiting"]);
    }

    pub async fn migrations_are_embedded_and_idempotent(t: TestStore) {
        assert_eq!(t.store.pending_migrations().await.unwrap(), 0);
        t.store.migrate().await.unwrap();
        assert_eq!(t.store.pending_migrations().await.unwrap(), 0);
    }
}

macro_rules! conformance {
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
        conformance!(sqlite, crate::support::stores::sqlite; $($case),*);
        conformance!(postgres, crate::support::stores::postgres; $($case),*);
    };
}

both_backends!(
    enqueue_returns_ids_in_order_and_items_are_pending,
    a_dedupe_hit_returns_the_original_id,
    mixed_batches_keep_input_order_and_dedupe_within_the_batch,
    bad_input_is_refused_and_writes_nothing,
    concurrent_claimers_never_hold_the_same_unit,
    units_are_claimed_oldest_first_and_only_for_known_task_types,
    batches_follow_id_order_and_budgets_but_always_take_one,
    complete_stores_output_and_follow_ups_in_one_transaction,
    an_outputs_items_are_stored_in_id_order,
    a_group_commit_lands_each_claims_completions_on_their_own,
    a_claim_takes_each_units_first_batch_as_a_fetch_would,
    a_narrowed_units_first_batch_is_narrowed_too,
    an_item_mode_failure_charges_only_the_item_called,
    only_items_fetched_under_the_claim_can_be_completed,
    a_fenced_write_after_a_reap_changes_nothing,
    heartbeats_extend_leases_and_reveal_lost_claims,
    retryable_failures_back_off_then_dead_letter_the_head,
    a_failing_batch_narrows_until_only_the_poison_item_is_charged,
    a_permanent_failure_dead_letters_at_once,
    a_key_that_keeps_losing_its_claim_is_quarantined,
    release_gives_the_unit_back_without_an_attempt,
    release_all_releases_only_the_claims_still_held,
    writes_are_visible_elsewhere_as_soon_as_they_return,
    done_items_past_the_retention_are_deleted_and_nothing_else,
    outputs_past_their_retention_are_deleted_oldest_first_in_batches,
    a_dead_letter_retried_during_a_claim_is_not_in_that_claims_batch,
    a_dead_letter_retried_below_a_claims_batch_joins_its_next_batch,
    dead_letters_can_be_retried_and_purged_by_id_key_or_task_type,
    gates_hold_units_until_enough_tokens_or_long_enough,
    producers_can_enqueue_with_plain_sql,
    units_stay_in_step_when_producers_delete_or_try_to_edit_items,
    a_restarted_worker_does_not_renew_its_previous_runs_claims,
    idle_workers_and_empty_units_are_forgotten,
    a_unit_that_lost_its_oldest_pending_time_still_passes_a_max_wait_gate,
    unit_rows_count_what_is_pending_through_commits_failures_and_plain_sql,
    a_group_of_batch_commits_counts_and_records_each_units_own_items,
    the_reaper_leaves_task_types_it_has_no_policy_for,
    migrations_are_embedded_and_idempotent,
);

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let err = sluice::store::open(
        "postgres://postgres@127.0.0.1:1/nowhere",
        StoreOptions::default(),
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    let message = err.to_string();
    assert!(
        message
            .contains("cannot connect to the database at postgres://postgres@127.0.0.1:1/nowhere"),
        "{message}"
    );
    let err = sluice::store::open("mysql://x", StoreOptions::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("not supported"), "{err}");
    let err = sluice::store::open(
        "sqlite:///nonexistent-dir/queue.db",
        StoreOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn passwords_never_appear_in_connection_errors() {
    let err = sluice::store::open(
        "postgres://app:hunter2@127.0.0.1:1/db",
        StoreOptions::default(),
    )
    .await
    .err()
    .unwrap();
    let message = err.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("app:***@127.0.0.1:1"), "{message}");
}

#[allow(dead_code)]
fn _store_is_object_safe(store: Arc<dyn Store>) -> Arc<dyn Store> {
    store
}

#[tokio::test]
async fn postgres_wakes_listeners_when_work_is_enqueued_from_another_connection() {
    let t = support::stores::postgres().await;
    let mut signal = t
        .store
        .work_signal()
        .await
        .unwrap()
        .expect("postgres has LISTEN/NOTIFY");
    // A producer in its own transaction, on its own connection.
    let url = t.url.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO sluice_items (task_type, work_unit_key, payload) VALUES ('summary', 'k', '{}')")
            .execute(&pool)
            .await
            .unwrap();
    });
    // Notifications are database-wide: other tests' schemas wake us too,
    // which is harmless (every wake-up only means "look for work").
    let woken = tokio::time::timeout(Duration::from_secs(10), async {
        while signal.next().await.unwrap() != "summary" {}
    })
    .await;
    assert!(woken.is_ok(), "woken well within the polling interval");
}

#[tokio::test]
async fn sqlite_has_no_work_signal_so_hosts_poll() {
    let t = support::stores::sqlite().await;
    assert!(t.store.work_signal().await.unwrap().is_none());
}

/// Upgrading a SQLite queue whose host was stopped mid-batch: the rebuilt
/// unit table keeps every count, and the claim keeps exactly the items it had
/// in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_keeps_units_and_the_batch_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    // The schema as the previous release left it: migrations 0001 and 0002.
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for name in ["0001_queue.sql", "0002_output_call.sql"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/store/sqlite/migrations")
                .join(name),
            old.join(name),
        )
        .unwrap();
    }
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for key in ["k", "k", "k", "j"] {
        sqlx::query(
            "INSERT INTO sluice_items (task_type, work_unit_key, payload) VALUES ('echo', ?, '{}')",
        )
        .bind(key)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Unit k is claimed by worker w (claim 1) with its first two items in flight.
    sqlx::query(
        "UPDATE sluice_units SET claimed_by = 'w', claim_seq = 1, lease_expires_ms = 9e15
          WHERE work_unit_key = 'k'",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE sluice_items SET claim_seq = 1 WHERE id IN (1, 2)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = sluice::store::open(&url, Default::default()).await.unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), 8);
    store.migrate().await.unwrap();
    let claim = Claim {
        task_type: "echo".into(),
        work_unit_key: "k".into(),
        token: 1,
        worker: "w".into(),
    };
    assert!(matches!(
        store.complete(&claim, &[3], None, &[], None).await,
        Err(StoreError::NotInFlight(_))
    ));
    store
        .complete(&claim, &[1, 2], None, &[], None)
        .await
        .unwrap();
    store.release(&claim).await.unwrap();
    // The triggers still keep the units in step.
    store.enqueue(&[item("echo", "j", "{}")]).await.unwrap();
    let status = store.status().await.unwrap();
    assert_eq!(count(&status, "echo", "done"), 2);
    assert_eq!(count(&status, "echo", "pending"), 3);
    let mut claimed = store
        .claim("w2", &claimable("echo"), 10, LEASE)
        .await
        .unwrap();
    claimed.sort_by(|a, b| a.work_unit_key.cmp(&b.work_unit_key));
    let keys: Vec<_> = claimed.iter().map(|c| c.work_unit_key.as_str()).collect();
    assert_eq!(keys, ["j", "k"]);
    assert_ne!(claimed[1].token, 1, "a new claim has a new token");
    let batch = store.fetch_batch(&claimed[0], ALL).await.unwrap();
    assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), [4, 5]);
    let batch = store.fetch_batch(&claimed[1], ALL).await.unwrap();
    assert_eq!(batch.iter().map(|i| i.id).collect::<Vec<_>>(), [3]);
}

/// One commit per unit of `keys`, completing the item its claim fetched.
async fn claim_and_commit_one_each(store: &dyn Store, keys: &[&str]) -> Vec<Commit> {
    enqueue_echo(store, keys).await;
    let mut commits = Vec::new();
    for key in keys {
        let claim = claim_one(store, "w", "echo").await;
        assert_eq!(&claim.work_unit_key, key, "units are claimed oldest first");
        let batch = store.fetch_batch(&claim, ALL).await.unwrap();
        commits.push(Commit {
            claim,
            completions: vec![Completion {
                item_ids: batch.iter().map(|item| item.id).collect(),
                output: Some("{}".into()),
                follow_up: Vec::new(),
                call: None,
            }],
            release_if_drained: true,
        });
    }
    commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refused_completion_fails_only_its_own_commit() {
    let t = support::stores::postgres().await;
    let store = &*t.store;
    let mut commits = claim_and_commit_one_each(store, &["a", "b", "c"]).await;
    // Postgres cannot store a NUL character in jsonb.
    commits[1].completions[0].output = Some(r#"{"text":"\u0000"}"#.into());
    let results = store.commit(&commits).await.unwrap();
    assert!(matches!(results[0], Ok(Committed::Released)), "{results:?}");
    assert!(
        matches!(results[1], Err(StoreError::Refused(_))),
        "{results:?}"
    );
    assert!(matches!(results[2], Ok(Committed::Released)), "{results:?}");
    assert!(store.outputs("echo", "b").await.unwrap().is_empty());
    assert_eq!(count(&store.status().await.unwrap(), "echo", "done"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_group_commit_passes_a_unit_a_producer_holds_instead_of_waiting() {
    let t = support::stores::postgres().await;
    let store = &*t.store;
    let commits = claim_and_commit_one_each(store, &["a", "b"]).await;
    // A producer's open transaction enqueues into unit a: the trigger holds
    // a's unit row until the producer commits.
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    let mut producer = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO sluice_items (task_type, work_unit_key, payload) VALUES ('echo', 'a', '{}')",
    )
    .execute(&mut *producer)
    .await
    .unwrap();
    let results = store.commit(&commits).await.unwrap();
    assert!(
        matches!(results[0], Err(StoreError::Contended(_))),
        "{results:?}"
    );
    assert!(matches!(results[1], Ok(Committed::Released)), "{results:?}");
    producer.commit().await.unwrap();
    // Once the producer is done, a's commit lands; the producer's new item
    // keeps the unit claimed.
    let again = store.commit(&commits[..1]).await.unwrap();
    assert!(matches!(again[0], Ok(Committed::Done)), "{again:?}");
}
