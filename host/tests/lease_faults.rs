//! The lease protocol under the faults that used to break it, each through
//! the real host:
//!
//! - a claim rewound as a database crash that lost its last commits would
//!   rewind it, then claimed again by the same host: the unit never runs
//!   twice at once and the old task writes nothing;
//! - a producer's transaction left open on one unit for longer than the lease:
//!   every other unit flows and nobody is charged an attempt;
//! - an outage error while an outcome is written: the outcome lands once the
//!   database answers, and nothing is dead-lettered;
//! - a follow-up item the database could never store (a NUL in its key): the
//!   item is dead-lettered at once and the unit moves on;
//! - a batch with a poison item in the middle: only that item is charged and
//!   dead-lettered, and its neighbours complete in order.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sluice::imports::{CallContext, Outbound};
use sluice::runtime::bindings::{http, llm};
use sluice::store::{
    BatchLimits, Claim, Claimable, ClaimedBatch, Commit, Committed, DeadFilter, DeadItem, Enqueued,
    FailResult, Failure, Item, NewItem, RetryPolicies, RetryPolicy, Status, Store, StoreError,
    StoredOutput, WorkSignal, WorkerInfo,
};
use support::host::{self, count, wait_until};
use support::stores::{self, TestStore};

/// An LLM that answers after `delay`, counting how many calls are running at
/// once: the audit of "never two tasks on one unit".
struct Audit {
    delay: Duration,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Audit {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        })
    }
}

/// Counts a call as over when dropped, so a cancelled call is closed too.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Outbound for Audit {
    async fn llm(&self, _: &CallContext, _: llm::Request) -> Result<llm::Response, llm::Error> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(&self.running);
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(llm::Response {
            content: "audited".into(),
            model: "audit".into(),
            usage: llm::Usage {
                input_tokens: 1,
                output_tokens: 1,
            },
            finish_reason: llm::FinishReason::Stop,
        })
    }

    async fn http(&self, _: &CallContext, _: http::Request) -> Result<http::Response, http::Error> {
        Err(http::Error::Denied("no HTTP in this test".into()))
    }
}

fn items(task_type: &str, key: &str, payloads: &[&str]) -> Vec<NewItem> {
    payloads
        .iter()
        .map(|payload| NewItem {
            task_type: task_type.into(),
            work_unit_key: key.into(),
            payload: payload.to_string(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect()
}

/// How many outputs name each item, and the most any item has.
async fn outputs_per_item(db: &TestStore, task_type: &str, key: &str) -> (usize, usize) {
    let outputs = db.store.outputs(task_type, key).await.unwrap();
    let mut ids: Vec<i64> = outputs.into_iter().flat_map(|o| o.item_ids).collect();
    let total = ids.len();
    ids.sort_unstable();
    let distinct = {
        let mut d = ids.clone();
        d.dedup();
        d.len()
    };
    (distinct, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewound_claim_reclaimed_by_the_same_host_never_runs_the_unit_twice() {
    let db = stores::postgres().await;
    let store = db.store.clone();
    let call = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    store
        .enqueue(&items("llm-call", "rewound", &[call, call, call]))
        .await
        .unwrap();
    let audit = Audit::new(Duration::from_millis(1500));
    let mut config = host::fast_config(2);
    config
        .tasks
        .insert("llm-call".into(), host::task(Duration::from_secs(30), 5));
    let host = host::start(store.clone(), config, audit.clone()).await;
    wait_until("the first call runs", Duration::from_secs(20), || async {
        audit.running.load(Ordering::SeqCst) == 1
    })
    .await;

    // The database crashes and comes back without the claim or its batch
    // (they committed asynchronously), and says so to the idle claim loop.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "UPDATE sluice_units SET claimed_by = NULL, claim_token = 0,
                in_flight_from = NULL, in_flight_through = NULL
          WHERE work_unit_key = 'rewound'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('sluice_items', 'llm-call')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    wait_until("every item is done", Duration::from_secs(60), || async {
        count(&*store, "llm-call", "done").await == 3
    })
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        audit.most.load(Ordering::SeqCst),
        1,
        "two tasks ran the unit at the same moment"
    );
    let (distinct, total) = outputs_per_item(&db, "llm-call", "rewound").await;
    assert_eq!(
        (distinct, total),
        (3, 3),
        "each item has exactly one output: the old task wrote nothing"
    );
}

/// Units B..F keep flowing while a producer holds unit A's row in an open
/// transaction for longer than the lease, and nobody is charged an attempt.
async fn a_producer_holding_one_unit_open(db: TestStore, open_producer: &'static str) {
    let store = db.store.clone();
    let slow = r#"{"ms": 1500}"#;
    // Long enough that B..F are still running when the lease runs out: a
    // host whose renewal waits behind the producer loses them then.
    let quick = r#"{"ms": 300}"#;
    store
        .enqueue(&items("sleep", "A", &[slow, slow]))
        .await
        .unwrap();
    for key in ["B", "C", "D", "E", "F"] {
        store
            .enqueue(&items("sleep", key, &[quick; 8]))
            .await
            .unwrap();
    }
    let mut config = host::fast_config(4);
    config
        .tasks
        .insert("sleep".into(), host::task(Duration::from_secs(30), 3));
    let lease = config.lease;
    let host = host::start(store.clone(), config, Arc::new(support::Hang)).await;
    // Wait until A is claimed and running.
    wait_until("unit A runs", Duration::from_secs(20), || async {
        db.text_rows(
            "SELECT work_unit_key FROM sluice_units WHERE claimed_by IS NOT NULL AND work_unit_key = 'A'",
        )
        .await
        .len()
            == 1
    })
    .await;

    // The producer opens its transaction on A and keeps it past the lease.
    let insert = "INSERT INTO sluice_items (task_type, work_unit_key, payload) VALUES ('sleep', 'A', '{\"ms\": 10}')";
    let held_for = lease + Duration::from_secs(8);
    let opened = Instant::now();
    let producer = if db.url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(insert).execute(&mut *tx).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(held_for).await;
            tx.commit().await.unwrap();
        })
    } else {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let mut tx = pool.begin_with(open_producer).await.unwrap();
        sqlx::query(insert).execute(&mut *tx).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(held_for).await;
            tx.commit().await.unwrap();
        })
    };
    if db.url.starts_with("postgres") {
        wait_until(
            "units B..F finish while the producer holds A",
            Duration::from_secs(60),
            || async { count(&*store, "sleep", "done").await >= 40 },
        )
        .await;
        assert!(
            opened.elapsed() < held_for,
            "B..F must finish while the producer's transaction is still open"
        );
    }
    producer.await.unwrap();
    wait_until(
        "every item, A's new one included, is done",
        Duration::from_secs(60),
        || async { count(&*store, "sleep", "done").await == 43 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    let charged: Vec<_> = host::items(&db, "sleep")
        .await
        .into_iter()
        .filter(|item| item.attempts > 0)
        .collect();
    assert!(charged.is_empty(), "nobody was charged: {charged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_producer_transaction_open_past_the_lease_stalls_only_its_own_unit() {
    a_producer_holding_one_unit_open(stores::postgres().await, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_producer_holding_the_write_lock_past_the_lease_costs_no_attempts() {
    a_producer_holding_one_unit_open(stores::sqlite().await, "BEGIN IMMEDIATE").await;
}

/// A store whose first `failures` completions fail with a real outage error
/// (a statement cancelled by its timeout, SQLSTATE 57014), then work.
struct FlakyCompletions {
    inner: Arc<dyn Store>,
    pool: sqlx::PgPool,
    failures: AtomicUsize,
}

impl FlakyCompletions {
    async fn outage(&self) -> StoreError {
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL statement_timeout = '1ms'")
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query("SELECT pg_sleep(1)")
            .execute(&mut *tx)
            .await
            .expect_err("the statement times out");
        StoreError::from(err)
    }
}

#[async_trait::async_trait]
impl Store for FlakyCompletions {
    async fn migrate(&self) -> sluice::store::Result<()> {
        self.inner.migrate().await
    }
    async fn pending_migrations(&self) -> sluice::store::Result<usize> {
        self.inner.pending_migrations().await
    }
    async fn has_schema(&self) -> sluice::store::Result<bool> {
        self.inner.has_schema().await
    }
    async fn enqueue(&self, items: &[NewItem]) -> sluice::store::Result<Vec<Enqueued>> {
        self.inner.enqueue(items).await
    }
    async fn claim_batches(
        &self,
        worker: &str,
        task_types: &[Claimable],
        batches: &[BatchLimits],
        max_units: u32,
        max_suspects: u32,
        lease: Duration,
    ) -> sluice::store::Result<Vec<ClaimedBatch>> {
        self.inner
            .claim_batches(worker, task_types, batches, max_units, max_suspects, lease)
            .await
    }
    async fn set_suspect(&self, claim: &Claim, suspect: bool) -> sluice::store::Result<()> {
        self.inner.set_suspect(claim, suspect).await
    }
    async fn set_paused(&self, task_type: &str, paused: bool) -> sluice::store::Result<bool> {
        self.inner.set_paused(task_type, paused).await
    }
    async fn take_pace(
        &self,
        key: &str,
        cost_us: i64,
        burst_us: i64,
    ) -> sluice::store::Result<Option<Duration>> {
        self.inner.take_pace(key, cost_us, burst_us).await
    }
    async fn adjust_pace(&self, key: &str, delta_us: i64) -> sluice::store::Result<()> {
        self.inner.adjust_pace(key, delta_us).await
    }
    async fn fetch_batch(
        &self,
        claim: &Claim,
        limits: BatchLimits,
    ) -> sluice::store::Result<Vec<Item>> {
        self.inner.fetch_batch(claim, limits).await
    }
    async fn heartbeat(&self, worker: &str, lease: Duration) -> sluice::store::Result<Vec<Claim>> {
        self.inner.heartbeat(worker, lease).await
    }
    async fn publish_flow(&self, worker: &str, report: &str) -> sluice::store::Result<()> {
        self.inner.publish_flow(worker, report).await
    }
    async fn commit(
        &self,
        commits: &[Commit],
    ) -> sluice::store::Result<Vec<sluice::store::Result<Committed>>> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(self.outage().await);
        }
        self.inner.commit(commits).await
    }
    async fn fail_through(
        &self,
        claim: &Claim,
        through: i64,
        failure: &Failure,
        policy: &RetryPolicy,
    ) -> sluice::store::Result<FailResult> {
        self.inner
            .fail_through(claim, through, failure, policy)
            .await
    }
    async fn release_all(
        &self,
        claims: &[Claim],
    ) -> sluice::store::Result<Vec<sluice::store::Result<()>>> {
        self.inner.release_all(claims).await
    }
    async fn reap(
        &self,
        policies: &RetryPolicies,
        except_worker: Option<&str>,
    ) -> sluice::store::Result<u64> {
        self.inner.reap(policies, except_worker).await
    }
    async fn register_worker(&self, worker: &WorkerInfo) -> sluice::store::Result<()> {
        self.inner.register_worker(worker).await
    }
    async fn prune_idle(&self, idle: Duration, limit: u32) -> sluice::store::Result<u64> {
        self.inner.prune_idle(idle, limit).await
    }
    async fn dead_list(
        &self,
        filter: Option<&DeadFilter>,
        limit: u32,
    ) -> sluice::store::Result<Vec<DeadItem>> {
        self.inner.dead_list(filter, limit).await
    }
    async fn dead_retry(&self, filter: &DeadFilter) -> sluice::store::Result<u64> {
        self.inner.dead_retry(filter).await
    }
    async fn dead_purge(&self, filter: &DeadFilter) -> sluice::store::Result<u64> {
        self.inner.dead_purge(filter).await
    }
    async fn prune_done(&self, age: Duration, limit: u32) -> sluice::store::Result<u64> {
        self.inner.prune_done(age, limit).await
    }
    async fn prune_outputs(&self, age: Duration, limit: u32) -> sluice::store::Result<u64> {
        self.inner.prune_outputs(age, limit).await
    }
    async fn status(&self) -> sluice::store::Result<Status> {
        self.inner.status().await
    }
    async fn work_signal(&self) -> sluice::store::Result<Option<Box<dyn WorkSignal>>> {
        self.inner.work_signal().await
    }
    async fn outputs(
        &self,
        task_type: &str,
        work_unit_key: &str,
    ) -> sluice::store::Result<Vec<StoredOutput>> {
        self.inner.outputs(task_type, work_unit_key).await
    }
    async fn item(&self, id: i64) -> sluice::store::Result<Option<sluice::store::ItemRecord>> {
        self.inner.item(id).await
    }
    async fn items(
        &self,
        query: &sluice::store::ItemQuery,
    ) -> sluice::store::Result<Vec<sluice::store::ItemRecord>> {
        self.inner.items(query).await
    }
    async fn cancel_pending(&self, task_type: &str, key: &str) -> sluice::store::Result<u64> {
        self.inner.cancel_pending(task_type, key).await
    }
    async fn unserved_task_types(&self) -> sluice::store::Result<Vec<String>> {
        self.inner.unserved_task_types().await
    }
    async fn overview(
        &self,
        window: Duration,
    ) -> sluice::store::Result<sluice::store::views::Overview> {
        self.inner.overview(window).await
    }
    async fn units(
        &self,
        task_type: &str,
        key_from: &str,
        limit: u32,
    ) -> sluice::store::Result<Vec<sluice::store::views::UnitRecord>> {
        self.inner.units(task_type, key_from, limit).await
    }
    async fn hosts(&self) -> sluice::store::Result<sluice::store::views::Hosts> {
        self.inner.hosts().await
    }
    async fn mark_draining(&self, worker: &str) -> sluice::store::Result<()> {
        self.inner.mark_draining(worker).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_while_writing_an_outcome_delays_it_and_dead_letters_nothing() {
    let db = stores::postgres().await;
    let flaky: Arc<dyn Store> = Arc::new(FlakyCompletions {
        inner: db.store.clone(),
        pool: sqlx::PgPool::connect(&db.url).await.unwrap(),
        failures: AtomicUsize::new(4),
    });
    flaky
        .enqueue(&items(
            "echo",
            "k",
            &[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#],
        ))
        .await
        .unwrap();
    let host = host::start(flaky.clone(), host::fast_config(1), Arc::new(support::Hang)).await;
    host::run_until(host, &*flaky, "echo", "done", 3).await;
    assert_eq!(count(&*flaky, "echo", "dead").await, 0);
    let (distinct, total) = outputs_per_item(&db, "echo", "k").await;
    assert_eq!((distinct, total), (3, 3), "each output landed once");
    let charged: Vec<_> = host::items(&db, "echo")
        .await
        .into_iter()
        .filter(|item| item.attempts > 0)
        .collect();
    assert!(
        charged.is_empty(),
        "an outage costs no attempt: {charged:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_the_database_cannot_store_is_dead_lettered_and_the_unit_moves_on() {
    let db = stores::postgres().await;
    let store = db.store.clone();
    store
        .enqueue(&items(
            "echo",
            "nul",
            &[r#"{"follow-up-nul":true}"#, r#"{"n":2}"#],
        ))
        .await
        .unwrap();
    store
        .enqueue(&host::units("echo", "other", 10))
        .await
        .unwrap();
    let mut config = host::fast_config(2);
    config
        .tasks
        .insert("echo".into(), host::task(Duration::from_secs(10), 3));
    let host = host::start(store.clone(), config, Arc::new(support::Hang)).await;
    wait_until(
        "the other items and the NUL item's neighbour are done",
        Duration::from_secs(60),
        || async { count(&*store, "echo", "done").await == 11 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    let dead = store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("NUL"),
        "the error says what was wrong: {error}"
    );
    assert_eq!(dead[0].attempts, 1, "dead-lettered at once");
    assert_eq!(store.status().await.unwrap().claimed_units, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_in_a_batch_is_isolated_and_its_neighbours_complete_in_order() {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    let payloads: Vec<String> = (1..=6)
        .map(|n| {
            if n == 3 {
                r#"{"n":3,"poison":true}"#.to_string()
            } else {
                format!(r#"{{"n":{n}}}"#)
            }
        })
        .collect();
    let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
    let ids: Vec<i64> = store
        .enqueue(&items("batch-echo", "conversation", &payloads))
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let mut config = host::fast_config(2);
    config
        .tasks
        .insert("batch-echo".into(), host::task(Duration::from_secs(10), 2));
    let host = host::start_plugins(
        store.clone(),
        config,
        Arc::new(support::Hang),
        &["sluice_test_batcher"],
    )
    .await;
    wait_until(
        "the unit is worked off",
        Duration::from_secs(60),
        || async { count(&*store, "batch-echo", "pending").await == 0 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;

    let outputs = host::outputs(&*store, "batch-echo", "conversation").await;
    let done: Vec<i64> = outputs.iter().flat_map(|(ids, _)| ids.clone()).collect();
    let expected: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[2]).collect();
    assert_eq!(done, expected, "the neighbours complete, in order");
    let numbers: Vec<u64> = outputs
        .iter()
        .flat_map(|(_, output)| output.as_array().unwrap().clone())
        .map(|payload| payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 4, 5, 6]);
    let rows = host::items(&db, "batch-echo").await;
    for row in &rows {
        if row.id == ids[2] {
            assert_eq!((row.state.as_str(), row.attempts), ("dead", 2), "{row:?}");
        } else {
            assert_eq!((row.state.as_str(), row.attempts), ("done", 0), "{row:?}");
        }
    }
}
