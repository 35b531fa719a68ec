//! The Postgres store: how several hosts share one queue.
//!
//! Claims take unit rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
//! on any number of hosts pass each other instead of queueing, and never hold
//! the same unit. Fenced writes lock their unit row first, so a reaper and a
//! late worker can never both act on one claim. Leases live in their own
//! table (one row per host process) that producers never lock, and a
//! heartbeat only reads the unit rows, so an open producer transaction can
//! delay the unit it writes to and nothing else. Leases and backoff
//! are judged by the database's clock (`sluice_now_ms()`), the one clock every
//! host shares. Enqueues `NOTIFY sluice_items` so idle hosts wake at once.

pub(crate) mod errors;
mod items;
mod views;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};

use super::failure::{self, Decision};
use super::group;
use super::{
    BatchLimits, Claim, Claimable, Claimed, ClaimedBatch, Commit, Committed, DeadFilter, DeadItem,
    Enqueued, FailResult, Failure, InsertRun, Item, ItemQuery, ItemRecord, NewItem, PausedTaskType,
    QueueDepth, RecentLeases, Result, RetryPolicies, RetryPolicy, RunAfter, Status, Store,
    StoreError, StoreOptions, StoredOutput, WorkSignal, WorkerInfo, WorkerStatus, insert_runs,
    validate,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres/migrations");

/// Claims reaped per round; the reaper loops until none are left.
const REAP_BATCH: i64 = 100;

/// Claims, heartbeats, releases, failures, reaps, pruning and the shared LLM
/// budget's paces commit without waiting for the WAL flush (they go through
/// [`PostgresStore::lease_traffic`]). A lost pace write only lets a request
/// or two through early after a database crash.
/// A database crash can lose only the last few of them, and the lease
/// machinery absorbs each loss: a lost claim leaves its host a token the
/// database never saw, so every write under it is refused; a lost heartbeat is
/// renewed by the next; a lost release leaves a claim the heartbeat finds
/// orphaned and releases again; a lost failure loses its attempt count, so a
/// poison item gets one more try. Everything a call depends on commits
/// durably before the call starts: fetching its batch waits for the WAL
/// flush, which also flushes the claim before it, so a crash never takes a
/// claim from under a running call (whose outcome could then not be
/// written). Completions and what producers were promised (enqueues,
/// dead-letter retries) are durable too.
const ASYNC_COMMIT: (&str, &str) = ("synchronous_commit", "off");

/// How long any statement of Sluice's waits for a row lock before it fails
/// as an outage (and its caller retries): a producer's transaction left open
/// on a unit can hold up that unit's writes, but never leaves a connection
/// waiting on the server after its caller gave up.
const LOCK_TIMEOUT: (&str, &str) = ("lock_timeout", "1s");

/// No bitmap scans in Sluice's sessions. Right after a bulk enqueue, before
/// autovacuum has analyzed `sluice_units`, the planner believes the ready
/// index holds a handful of rows and prefers a bitmap scan plus a sort — of
/// all million ready units, 450 ms per claim — over the ordered index walk
/// that stops after ten. Every statement Sluice runs is a point lookup or an
/// ordered range scan, so nothing else loses by it.
const NO_BITMAP_SCANS: (&str, &str) = ("enable_bitmapscan", "off");

/// The claim's own session ([`PostgresStore::claims`]) runs one statement,
/// `claim_batches.sql`, always on its generic plan, and rules out the plan
/// shapes that make a generic plan of it slow. Planning the claim for its
/// parameters cost more than running it (with 20,000 ready units, 2.7 ms
/// planned against 1.6 ms run for 16 units; with a million, up to 6 ms),
/// and it runs hundreds of times a second. Its generic plan cannot see the
/// `LIMIT` and guesses a tenth of the table: it would then hash-join the
/// claimed units against a seq scan of every unit (5 ms at 20,000 units,
/// 400 ms at a million) and, past `jit_above_cost`, compile itself (70 ms).
/// Without hash and merge joins and seq scans, the generic plan is the walk
/// the custom plan was: the ready index in order, the pending items' index,
/// and the primary key for each claimed unit (0.7 ms for 16 units at 20,000
/// or a million ready units).
const GENERIC_CLAIM_PLAN: [(&str, &str); 5] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("enable_seqscan", "off"),
    ("jit", "off"),
];

/// A statement planned afresh for its parameters at every run. sqlx keeps
/// statements prepared, and after five runs Postgres may switch a prepared
/// statement to a generic plan that cannot see its `LIMIT` (see
/// [`GENERIC_CLAIM_PLAN`]). The reaper's and the pruners' walks, and the
/// dashboard's pages, run rarely enough to be planned each time; every
/// other statement, and the SQL inside the triggers, keeps its cached plan
/// (planning was a third of Postgres's CPU when every statement was
/// re-planned).
fn custom_plan(sql: &'static str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sql).persistent(false)
}

/// The channel enqueues notify, with the task type as payload.
pub const NOTIFY_CHANNEL: &str = "sluice_items";

pub struct PostgresStore {
    /// Durable commits: fetches, completions, enqueues, reads.
    pool: PgPool,
    /// Asynchronous commits: claims, releases, failures, reaps, pruning
    /// (see [`ASYNC_COMMIT`]).
    lease_traffic: PgPool,
    /// The heartbeat's own connection: it renews every lease of this process
    /// on time however many slots are queued for the other pools.
    heartbeats: PgPool,
    /// The claim loop's own connection, whose session plans only the claim
    /// ([`GENERIC_CLAIM_PLAN`]). Durable, as a fetch: calls start on the
    /// batches a claim takes.
    claims: PgPool,
    /// Runs migrations, without the lock timeout of the others.
    migrations: PgPool,
    /// Leases this store wrote lately, which claims need not write again.
    recent_leases: RecentLeases,
    options: StoreOptions,
}

impl PostgresStore {
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let connect_error = |cause| StoreError::Connect {
            url: crate::config::redact_url(url),
            cause,
        };
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(connect_error)?
            .options([NO_BITMAP_SCANS]);
        // So that `pg_stat_activity` tells which process a session is of
        // (unless the URL names the application itself).
        if connect.get_application_name().is_none() {
            connect = connect.application_name(&format!("sluice {}", std::process::id()));
        }
        // Migrations wait for other hosts' migrations and for DDL locks as
        // long as they must; every other session gives up on a lock.
        let migrations = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(connect.clone());
        let connect = connect.options([LOCK_TIMEOUT]);
        // One direct attempt first: a refused or misaddressed server fails at
        // once instead of after the pool's acquire timeout.
        PgConnection::connect_with(&connect)
            .await
            .map_err(connect_error)?
            .close()
            .await
            .map_err(connect_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await
            .map_err(connect_error)?;
        let lease_traffic = PgPoolOptions::new()
            .max_connections((options.max_connections / 4).max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(connect.clone().options([ASYNC_COMMIT]));
        let heartbeats = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(connect.clone().options([ASYNC_COMMIT]));
        // One claim at a time: a host's claim loop waits for each, and
        // callers sharing one store (the queue benchmark's workers) take turns.
        let claims = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(connect.options(GENERIC_CLAIM_PLAN));
        Ok(Self {
            pool,
            lease_traffic,
            heartbeats,
            claims,
            migrations,
            recent_leases: RecentLeases::default(),
            options,
        })
    }

    /// One group commit's transaction: the commits whose follow-ups are
    /// valid go into one statement ([`commit.sql`]); the follow-ups of those
    /// that landed are enqueued after it, in order. Without follow-ups the
    /// statement is the whole transaction.
    async fn commit_together(&self, commits: &[Commit]) -> Result<Vec<Result<Committed>>> {
        let mut results: Vec<Option<Result<Committed>>> = commits
            .iter()
            .map(|commit| {
                commit
                    .completions
                    .iter()
                    .try_for_each(|c| validate::items(&c.follow_up, self.options.max_payload_bytes))
                    .err()
                    .map(Err)
            })
            .collect();
        let valid: Vec<usize> = (0..commits.len())
            .filter(|&n| results[n].is_none())
            .collect();
        if valid.is_empty() {
            return Ok(results.into_iter().flatten().collect());
        }
        let arrays = GroupArrays::new(valid.iter().map(|&n| &commits[n]));
        let follow_ups = valid.iter().any(|&n| {
            commits[n]
                .completions
                .iter()
                .any(|c| !c.follow_up.is_empty())
        });
        if follow_ups {
            let mut tx = self.pool.begin().await?;
            let written = write_group(&mut tx, commits, &valid, arrays, &mut results).await;
            // Roll back at once on failure: a transaction merely dropped is
            // rolled back when its connection is next used, and until then it
            // holds its unit rows, which the commits' retries would find busy.
            match written {
                Ok(()) => tx.commit().await?,
                Err(err) => {
                    let _ = tx.rollback().await;
                    return Err(err);
                }
            }
        } else {
            // One statement is a transaction of its own: no BEGIN and COMMIT
            // round trips, two thirds of a group's.
            let mut conn = self.pool.acquire().await?;
            let written = write_group(&mut conn, commits, &valid, arrays, &mut results).await;
            if written.is_err() {
                // The error reaches us before the server has finished aborting
                // the statement's transaction (sqlx reads the rest of the
                // reply on the connection's next use), and until it has, that
                // transaction holds its unit rows: the retry of each commit
                // alone, on another connection, would find them busy. A round
                // trip on this connection waits for the abort.
                let _ = sqlx::Connection::ping(&mut *conn).await;
            }
            written?;
        }
        Ok(results
            .into_iter()
            .map(|result| result.expect("a row for every commit written"))
            .collect())
    }

    /// Writes `worker`'s lease before a claim, unless this store wrote it a
    /// moment ago.
    async fn claim_lease(&self, worker: &str, lease: Duration) -> Result<()> {
        if !self.recent_leases.fresh(worker, lease) {
            let sent = std::time::Instant::now();
            sqlx::query(include_str!("claim_lease.sql"))
                .bind(worker)
                .bind(ms(lease))
                .execute(&self.lease_traffic)
                .await?;
            self.recent_leases.written(worker, sent);
        }
        Ok(())
    }

    /// A listener for new work: each notification carries a task type.
    pub async fn listener(&self) -> Result<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }
}

/// `LISTEN sluice_items`, as a [`WorkSignal`].
struct Notifications(PgListener);

#[async_trait::async_trait]
impl WorkSignal for Notifications {
    async fn next(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn filter_binds(filter: Option<&DeadFilter>) -> (Option<i64>, Option<String>, Option<String>) {
    match filter {
        None => (None, None, None),
        Some(DeadFilter::Id(id)) => (Some(*id), None, None),
        Some(DeadFilter::TaskType(t)) => (None, Some(t.clone()), None),
        Some(DeadFilter::Key {
            task_type,
            work_unit_key,
        }) => (None, Some(task_type.clone()), Some(work_unit_key.clone())),
    }
}

async fn fenced(tx: &mut Transaction<'static, Postgres>, claim: &Claim) -> Result<()> {
    let held = sqlx::query(include_str!("fence.sql"))
        .bind(&claim.task_type)
        .bind(&claim.work_unit_key)
        .bind(claim.token)
        .bind(&claim.worker)
        .fetch_optional(&mut **tx)
        .await?;
    held.map(|_| ())
        .ok_or_else(|| StoreError::claim_lost(claim))
}

/// Runs [`commit.sql`] for the `valid` commits and enqueues the follow-ups of
/// those that landed, recording each commit's result.
async fn write_group(
    conn: &mut PgConnection,
    commits: &[Commit],
    valid: &[usize],
    arrays: GroupArrays<'_>,
    results: &mut [Option<Result<Committed>>],
) -> Result<()> {
    let rows = sqlx::query(include_str!("commit.sql"))
        .bind(arrays.task_types)
        .bind(arrays.keys)
        .bind(arrays.tokens)
        .bind(arrays.workers)
        .bind(arrays.release_if_drained)
        .bind(arrays.commit_first)
        .bind(arrays.commit_last)
        .bind(arrays.completion_commit)
        .bind(arrays.outputs)
        .bind(arrays.calls)
        .bind(arrays.item_ids)
        .bind(arrays.completion_first)
        .bind(arrays.completion_last)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let n = valid[usize::try_from(row.get::<i64, _>(0) - 1).expect("1-based")];
        let commit = &commits[n];
        let status: &str = row.get(1);
        let result = match status {
            "done" => Ok(Committed::Done),
            "released" => Ok(Committed::Released),
            "not-in-flight" => Err(StoreError::NotInFlight(commit.item_ids().collect())),
            "busy" => Err(StoreError::Contended(sqlx::Error::Protocol(format!(
                "unit {}/{} is locked by another transaction",
                commit.claim.task_type, commit.claim.work_unit_key
            )))),
            _ => Err(StoreError::claim_lost(&commit.claim)),
        };
        if result.is_ok() {
            for completion in &commit.completions {
                insert_items(conn, &completion.follow_up).await?;
            }
        }
        results[n] = Some(result);
    }
    Ok(())
}

/// A group of commits as the parallel arrays [`commit.sql`] takes. Every
/// item id is in `item_ids`, commit by commit and completion by completion,
/// so each commit's and each completion's items are one slice of it,
/// `first..=last` (1-based, as Postgres counts).
#[derive(Default)]
struct GroupArrays<'a> {
    task_types: Vec<&'a str>,
    keys: Vec<&'a str>,
    tokens: Vec<i64>,
    workers: Vec<&'a str>,
    release_if_drained: Vec<bool>,
    commit_first: Vec<i32>,
    commit_last: Vec<i32>,
    completion_commit: Vec<i64>,
    outputs: Vec<Option<&'a str>>,
    calls: Vec<Option<&'a str>>,
    completion_first: Vec<i32>,
    completion_last: Vec<i32>,
    item_ids: Vec<i64>,
}

impl<'a> GroupArrays<'a> {
    fn new(commits: impl Iterator<Item = &'a Commit>) -> Self {
        let mut arrays = Self::default();
        for (c, commit) in (1..).zip(commits) {
            arrays.task_types.push(&commit.claim.task_type);
            arrays.keys.push(&commit.claim.work_unit_key);
            arrays.tokens.push(commit.claim.token);
            arrays.workers.push(&commit.claim.worker);
            arrays.release_if_drained.push(commit.release_if_drained);
            arrays.commit_first.push(arrays.next_item());
            for completion in &commit.completions {
                arrays.completion_commit.push(c);
                arrays.outputs.push(completion.output.as_deref());
                arrays.calls.push(completion.call.as_deref());
                arrays.completion_first.push(arrays.next_item());
                let first = arrays.item_ids.len();
                arrays.item_ids.extend_from_slice(&completion.item_ids);
                // An output's item ids are stored in id order; sorted here,
                // each output's are a plain slice of the array.
                arrays.item_ids[first..].sort_unstable();
                arrays.completion_last.push(arrays.last_item());
            }
            arrays.commit_last.push(arrays.last_item());
        }
        arrays
    }

    /// The 1-based position the next item id will take.
    fn next_item(&self) -> i32 {
        self.last_item() + 1
    }

    /// The 1-based position of the last item id so far (0: none yet).
    fn last_item(&self) -> i32 {
        i32::try_from(self.item_ids.len()).expect("a group commit holds far fewer than 2^31 items")
    }
}

/// Inserts items in input order (see [`InsertRun`]).
async fn insert_items(conn: &mut PgConnection, items: &[NewItem]) -> Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(items.len());
    for run in insert_runs(items) {
        match run {
            InsertRun::Bulk(run) => out.extend(insert_bulk(conn, run).await?),
            InsertRun::Deduplicated(item) => out.push(insert_deduplicated(conn, item).await?),
        }
    }
    Ok(out)
}

async fn insert_bulk(conn: &mut PgConnection, items: &[NewItem]) -> Result<Vec<Enqueued>> {
    let column = |f: fn(&NewItem) -> &str| items.iter().map(f).collect::<Vec<_>>();
    let tokens: Vec<i64> = items.iter().map(|i| i64::from(i.tokens)).collect();
    let (run_after, delay): (Vec<_>, Vec<_>) =
        items.iter().map(|i| RunAfter::columns(i.run_after)).unzip();
    let mut ids: Vec<i64> = sqlx::query_scalar(include_str!("enqueue_bulk.sql"))
        .bind(column(|i| &i.task_type))
        .bind(column(|i| &i.work_unit_key))
        .bind(column(|i| &i.payload))
        .bind(tokens)
        .bind(run_after)
        .bind(delay)
        .fetch_all(&mut *conn)
        .await?;
    // Ids were assigned in input order; RETURNING's order is not promised.
    ids.sort_unstable();
    Ok(ids
        .into_iter()
        .map(|id| Enqueued {
            id,
            duplicate: false,
        })
        .collect())
}

async fn insert_deduplicated(conn: &mut PgConnection, item: &NewItem) -> Result<Enqueued> {
    // The pending original can finish between the insert that found it and
    // the lookup of its id; then the key is free and the insert is retried.
    loop {
        let inserted: Option<i64> = sqlx::query_scalar(include_str!("enqueue.sql"))
            .bind(&item.task_type)
            .bind(&item.work_unit_key)
            .bind(&item.payload)
            .bind(i64::from(item.tokens))
            .bind(&item.dedupe_key)
            .bind(RunAfter::columns(item.run_after).0)
            .bind(RunAfter::columns(item.run_after).1)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(id) = inserted {
            return Ok(Enqueued {
                id,
                duplicate: false,
            });
        }
        let original: Option<i64> = sqlx::query_scalar(include_str!("find_duplicate.sql"))
            .bind(&item.task_type)
            .bind(&item.dedupe_key)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(id) = original {
            return Ok(Enqueued {
                id,
                duplicate: true,
            });
        }
    }
}

/// Applies [`failure::decide`] to the items in flight under `claim` and
/// releases the claim. The caller holds the unit row locked inside `tx`.
async fn record_failure(
    tx: &mut Transaction<'static, Postgres>,
    claim: &Claim,
    through: i64,
    failure: &Failure,
    policy: &RetryPolicy,
) -> Result<FailResult> {
    let message = match failure {
        Failure::Retryable(m) | Failure::Permanent(m) => m,
    };
    let in_flight: Vec<failure::InFlight> = sqlx::query(include_str!("in_flight.sql"))
        .bind(&claim.task_type)
        .bind(&claim.work_unit_key)
        .bind(claim.token)
        .bind(through)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|row| (row.get::<i64, _>(0), row.get::<i32, _>(1) as u32))
        .collect();
    let decision = failure::decide(&in_flight, failure, policy);
    if let Decision::Charge { id, dead, .. } = decision {
        sqlx::query(include_str!("record_failure.sql"))
            .bind(&claim.task_type)
            .bind(&claim.work_unit_key)
            .bind(id)
            .bind(message)
            .execute(&mut **tx)
            .await?;
        if dead {
            sqlx::query(include_str!("dead_letter.sql"))
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    let (delay_ms, narrow) = decision.release();
    let available_at: i64 = sqlx::query(include_str!("release.sql"))
        .bind(&claim.task_type)
        .bind(&claim.work_unit_key)
        .bind(claim.token)
        .bind(&claim.worker)
        .bind(delay_ms)
        .bind(narrow.map(|(batch, _)| batch as i32))
        .bind(narrow.map(|(_, through)| through))
        .fetch_one(&mut **tx)
        .await?
        .get(0);
    Ok(decision.result(available_at))
}

/// Items as [`fetch_batch.sql`] returns them: one JSON array of
/// `[id, payload, tokens, attempts, created_at_ms]`.
type BatchRow = (i64, String, i64, i32, i64);

/// A batch's items from the JSON array the fetch and the claim return.
fn batch_items(claim: &Claim, batch: &str) -> Result<Vec<Item>> {
    let rows: Vec<BatchRow> =
        serde_json::from_str(batch).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(rows
        .into_iter()
        .map(|(id, payload, tokens, attempts, created_at_ms)| Item {
            id,
            task_type: claim.task_type.clone(),
            work_unit_key: claim.work_unit_key.clone(),
            payload,
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
            attempts: attempts as u32,
            created_at_ms,
        })
        .collect())
}

/// A claim row's first four columns: task type, key, token, suspect.
fn claimed(worker: &str, row: &PgRow) -> Claimed {
    Claimed {
        claim: Claim {
            task_type: row.get(0),
            work_unit_key: row.get(1),
            token: row.get(2),
            worker: worker.to_string(),
        },
        suspect: row.get(3),
    }
}

/// The claim statements' per-task-type gate parameters, as arrays.
struct GateArrays<'a> {
    names: Vec<&'a str>,
    min_tokens: Vec<Option<i64>>,
    max_wait: Vec<Option<i64>>,
}

impl<'a> GateArrays<'a> {
    fn new(task_types: &'a [Claimable]) -> Self {
        Self {
            names: task_types.iter().map(|c| c.task_type.as_str()).collect(),
            min_tokens: task_types
                .iter()
                .map(|c| {
                    c.gate
                        .min_tokens
                        .map(|t| i64::try_from(t).unwrap_or(i64::MAX))
                })
                .collect(),
            max_wait: task_types.iter().map(|c| c.gate.max_wait.map(ms)).collect(),
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.migrations).await?;
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<usize> {
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await?;
        let applied: i64 = match table {
            Some(_) => {
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await?
            }
            None => 0,
        };
        Ok(MIGRATOR.iter().count().saturating_sub(applied as usize))
    }

    async fn has_schema(&self) -> Result<bool> {
        Ok(sqlx::query_scalar(include_str!("has_schema.sql"))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn enqueue(&self, items: &[NewItem]) -> Result<Vec<Enqueued>> {
        validate::items(items, self.options.max_payload_bytes)?;
        let mut tx = self.pool.begin().await?;
        let out = insert_items(&mut tx, items).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_batches(
        &self,
        worker: &str,
        task_types: &[Claimable],
        batches: &[BatchLimits],
        max_units: u32,
        max_suspects: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedBatch>> {
        if task_types.is_empty() || max_units == 0 {
            return Ok(Vec::new());
        }
        let gates = GateArrays::new(task_types);
        let max_items: Vec<i64> = batches.iter().map(|b| i64::from(b.max_items)).collect();
        let max_tokens: Vec<i64> = batches
            .iter()
            .map(|b| i64::try_from(b.max_tokens).unwrap_or(i64::MAX))
            .collect();
        self.claim_lease(worker, lease).await?;
        let rows = sqlx::query(include_str!("claim_batches.sql"))
            .bind(worker)
            .bind(gates.names)
            .bind(gates.min_tokens)
            .bind(gates.max_wait)
            .bind(i64::from(max_units))
            .bind(super::token_base())
            .bind(i64::from(max_suspects))
            .bind(max_items)
            .bind(max_tokens)
            .fetch_all(&self.claims)
            .await?;
        rows.iter()
            .map(|row| {
                let claimed = claimed(worker, row);
                let batch: Option<String> = row.get(4);
                let items = match batch {
                    Some(batch) => batch_items(&claimed.claim, &batch)?,
                    None => Vec::new(),
                };
                Ok(ClaimedBatch { claimed, items })
            })
            .collect()
    }

    async fn fetch_batch(&self, claim: &Claim, limits: BatchLimits) -> Result<Vec<Item>> {
        // One row whatever the batch size, and no row when the claim is gone.
        let batch: Option<Option<String>> = sqlx::query_scalar(include_str!("fetch_batch.sql"))
            .bind(&claim.task_type)
            .bind(&claim.work_unit_key)
            .bind(i64::from(limits.max_items.max(1)))
            .bind(claim.token)
            .bind(i64::try_from(limits.max_tokens).unwrap_or(i64::MAX))
            .bind(&claim.worker)
            .fetch_optional(&self.pool)
            .await?;
        let Some(batch) = batch.ok_or_else(|| StoreError::claim_lost(claim))? else {
            return Ok(Vec::new());
        };
        batch_items(claim, &batch)
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Vec<Claim>> {
        let sent = std::time::Instant::now();
        let rows = sqlx::query(include_str!("heartbeat.sql"))
            .bind(worker)
            .bind(ms(lease))
            .fetch_all(&self.heartbeats)
            .await?;
        self.recent_leases.written(worker, sent);
        Ok(rows
            .into_iter()
            .map(|row| Claim {
                task_type: row.get(0),
                work_unit_key: row.get(1),
                token: row.get(2),
                worker: worker.to_string(),
            })
            .collect())
    }

    async fn commit(&self, commits: &[Commit]) -> Result<Vec<Result<Committed>>> {
        group::split_on_refusal(commits, |group| Box::pin(self.commit_together(group))).await
    }

    async fn fail_through(
        &self,
        claim: &Claim,
        through: i64,
        failure: &Failure,
        policy: &RetryPolicy,
    ) -> Result<FailResult> {
        let mut tx = self.lease_traffic.begin().await?;
        fenced(&mut tx, claim).await?;
        let result = record_failure(&mut tx, claim, through, failure, policy).await?;
        tx.commit().await?;
        Ok(result)
    }

    async fn set_suspect(&self, claim: &Claim, suspect: bool) -> Result<()> {
        let marked = sqlx::query(include_str!("set_suspect.sql"))
            .bind(&claim.task_type)
            .bind(&claim.work_unit_key)
            .bind(claim.token)
            .bind(&claim.worker)
            .bind(suspect)
            .fetch_all(&self.lease_traffic)
            .await?;
        if marked.is_empty() {
            return Err(StoreError::claim_lost(claim));
        }
        Ok(())
    }

    async fn release_all(&self, claims: &[Claim]) -> Result<Vec<Result<()>>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&Claim) -> &str| claims.iter().map(f).collect::<Vec<&str>>();
        let released: Vec<(String, String, i64)> = sqlx::query_as(include_str!("release_all.sql"))
            .bind(column(|c| &c.task_type))
            .bind(column(|c| &c.work_unit_key))
            .bind(claims.iter().map(|c| c.token).collect::<Vec<i64>>())
            .bind(column(|c| &c.worker))
            .fetch_all(&self.lease_traffic)
            .await?;
        Ok(super::released_of(claims, &released))
    }

    async fn reap(&self, policies: &RetryPolicies, except_worker: Option<&str>) -> Result<u64> {
        let task_types: Option<Vec<&str>> = policies
            .listed_only
            .then(|| policies.by_task_type.keys().map(String::as_str).collect());
        let mut reaped = 0;
        loop {
            let expired = custom_plan(include_str!("expired.sql"))
                .bind(REAP_BATCH)
                .bind(except_worker)
                .bind(&task_types)
                .fetch_all(&self.lease_traffic)
                .await?;
            if expired.is_empty() {
                return Ok(reaped);
            }
            // Rows another reaper or a fenced write holds are skipped; a pass
            // that reaped none of what it saw must not spin on them.
            let before = reaped;
            for row in expired {
                let claim = Claim {
                    task_type: row.get(0),
                    work_unit_key: row.get(1),
                    token: row.get(2),
                    worker: row.get(3),
                };
                let Some(policy) = policies.get(&claim.task_type) else {
                    continue;
                };
                // Each reap is its own short transaction; a heartbeat that
                // renewed the lease first, or another reaper, wins.
                let mut tx = self.lease_traffic.begin().await?;
                let still_expired = sqlx::query(include_str!("still_expired.sql"))
                    .bind(&claim.task_type)
                    .bind(&claim.work_unit_key)
                    .bind(claim.token)
                    .bind(&claim.worker)
                    .fetch_optional(&mut *tx)
                    .await?;
                if still_expired.is_none() {
                    continue;
                }
                let failure = Failure::Retryable(format!(
                    "claim expired: worker {} stopped renewing its lease",
                    claim.worker
                ));
                record_failure(&mut tx, &claim, i64::MAX, &failure, policy).await?;
                tx.commit().await?;
                reaped += 1;
            }
            if reaped == before {
                return Ok(reaped);
            }
        }
    }

    async fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(include_str!("register_worker.sql"))
            .bind(&worker.id)
            .bind(&worker.host_name)
            .bind(i64::from(worker.pid))
            .bind(&worker.version)
            .bind(serde_json::to_string(&worker.task_types).unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        sqlx::query(include_str!("abandon_claims.sql"))
            .bind(&worker.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_list(&self, filter: Option<&DeadFilter>, limit: u32) -> Result<Vec<DeadItem>> {
        let (id, task_type, key) = filter_binds(filter);
        let rows = sqlx::query(include_str!("dead_list.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DeadItem {
                    id: row.get(0),
                    task_type: row.get(1),
                    work_unit_key: row.get(2),
                    payload: serde_json::from_str(row.get::<&str, _>(3)).unwrap_or_default(),
                    attempts: row.get::<i32, _>(4) as u32,
                    last_error: row.get(5),
                    errors: serde_json::from_str(row.get::<&str, _>(6)).unwrap_or_default(),
                    created_at_ms: row.get(7),
                    finished_at_ms: row.get(8),
                })
            })
            .collect()
    }

    async fn dead_retry(&self, filter: &DeadFilter) -> Result<u64> {
        let (id, task_type, key) = filter_binds(Some(filter));
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(include_str!("dead_retry.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn dead_purge(&self, filter: &DeadFilter) -> Result<u64> {
        let (id, task_type, key) = filter_binds(Some(filter));
        Ok(sqlx::query(include_str!("dead_purge.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn prune_idle(&self, idle: Duration, limit: u32) -> Result<u64> {
        let deleted: i64 = sqlx::query_scalar(include_str!("prune_idle.sql"))
            .bind(ms(idle))
            .bind(i64::from(limit))
            .fetch_one(&self.lease_traffic)
            .await?;
        Ok(deleted as u64)
    }

    async fn prune_done(&self, age: Duration, limit: u32) -> Result<u64> {
        Ok(custom_plan(include_str!("prune_done.sql"))
            .bind(ms(age))
            .bind(i64::from(limit))
            .execute(&self.lease_traffic)
            .await?
            .rows_affected())
    }

    async fn prune_outputs(&self, age: Duration, limit: u32) -> Result<u64> {
        Ok(custom_plan(include_str!("prune_outputs.sql"))
            .bind(ms(age))
            .bind(i64::from(limit))
            .execute(&self.lease_traffic)
            .await?
            .rows_affected())
    }

    async fn status(&self) -> Result<Status> {
        let now_ms: i64 = sqlx::query_scalar(include_str!("now.sql"))
            .fetch_one(&self.pool)
            .await?;
        let depths = sqlx::query(include_str!("status.sql"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| QueueDepth {
                task_type: row.get(0),
                state: row.get(1),
                count: row.get(2),
                oldest_created_at_ms: row.get(3),
            })
            .collect();
        let claimed_units = sqlx::query_scalar(include_str!("claimed_units.sql"))
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<(WorkerStatus, Option<String>)> = sqlx::query(include_str!("workers.sql"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| {
                let worker = WorkerStatus {
                    id: row.get(0),
                    host_name: row.get(1),
                    pid: row.get(2),
                    version: row.get(3),
                    started_at_ms: row.get(4),
                    last_seen_ms: row.get(5),
                };
                (worker, row.get(6))
            })
            .collect();
        let flow = crate::flow::status::summarize(
            now_ms,
            rows.iter().map(|(worker, flow)| (worker, flow.as_deref())),
        );
        let workers = rows.into_iter().map(|(worker, _)| worker).collect();
        let paused = sqlx::query(include_str!("paused.sql"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| PausedTaskType {
                task_type: row.get(0),
                paused_at_ms: row.get(1),
            })
            .collect();
        Ok(Status {
            now_ms,
            depths,
            claimed_units,
            workers,
            paused,
            unserved_task_types: self.unserved_task_types().await?,
            flow,
        })
    }

    async fn take_pace(&self, key: &str, cost_us: i64, burst_us: i64) -> Result<Option<Duration>> {
        let taken = sqlx::query(include_str!("take_pace.sql"))
            .bind(key)
            .bind(cost_us)
            .bind(burst_us)
            .fetch_all(&self.lease_traffic)
            .await?;
        if !taken.is_empty() {
            return Ok(None);
        }
        let wait: Vec<i64> = sqlx::query_scalar(include_str!("pace_wait.sql"))
            .bind(key)
            .bind(burst_us)
            .fetch_all(&self.lease_traffic)
            .await?;
        let wait = wait.first().copied().unwrap_or(0).max(1);
        Ok(Some(Duration::from_micros(wait.unsigned_abs())))
    }

    async fn publish_flow(&self, worker: &str, report: &str) -> Result<()> {
        sqlx::query(include_str!("publish_flow.sql"))
            .bind(worker)
            .bind(report)
            .execute(&self.lease_traffic)
            .await?;
        Ok(())
    }

    async fn adjust_pace(&self, key: &str, delta_us: i64) -> Result<()> {
        sqlx::query(include_str!("adjust_pace.sql"))
            .bind(key)
            .bind(delta_us)
            .execute(&self.lease_traffic)
            .await?;
        Ok(())
    }

    async fn set_paused(&self, task_type: &str, paused: bool) -> Result<bool> {
        let statement = if paused {
            include_str!("pause.sql")
        } else {
            include_str!("resume.sql")
        };
        let changed = sqlx::query(statement)
            .bind(task_type)
            .fetch_all(&self.pool)
            .await?;
        Ok(!changed.is_empty())
    }

    async fn work_signal(&self) -> Result<Option<Box<dyn WorkSignal>>> {
        Ok(Some(Box::new(Notifications(self.listener().await?))))
    }

    async fn outputs(&self, task_type: &str, work_unit_key: &str) -> Result<Vec<StoredOutput>> {
        let rows = sqlx::query(include_str!("outputs.sql"))
            .bind(task_type)
            .bind(work_unit_key)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredOutput {
                item_ids: row.get(0),
                output: row.get(1),
                created_at_ms: row.get(2),
                call: row.get(3),
            })
            .collect())
    }

    async fn item(&self, id: i64) -> Result<Option<ItemRecord>> {
        items::item(&self.pool, id).await
    }

    async fn items(&self, query: &ItemQuery) -> Result<Vec<ItemRecord>> {
        items::page(&self.pool, query).await
    }

    async fn unserved_task_types(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(include_str!("unserved.sql"))
            .bind(ms(super::RUNNING_HOST_SEEN_WITHIN))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn cancel_pending(&self, task_type: &str, work_unit_key: &str) -> Result<u64> {
        items::cancel_pending(&self.pool, task_type, work_unit_key).await
    }

    async fn overview(&self, window: Duration) -> Result<super::views::Overview> {
        views::overview(&self.pool, window).await
    }

    async fn units(
        &self,
        task_type: &str,
        key_from: &str,
        limit: u32,
    ) -> Result<Vec<super::views::UnitRecord>> {
        views::units(&self.pool, task_type, key_from, limit).await
    }

    async fn mark_draining(&self, worker: &str) -> Result<()> {
        sqlx::query(include_str!("mark_draining.sql"))
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn hosts(&self) -> Result<super::views::Hosts> {
        views::hosts(&self.pool).await
    }
}
