//! The SQLite store: the embedded default, one file beside the host.
//!
//! WAL mode lets readers run beside the one writer; every read-then-write
//! transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front so
//! two writers never deadlock upgrading their locks. Claiming is a single
//! `UPDATE … RETURNING`, atomic under that lock. One process owns the file:
//! several hosts sharing one queue is what the Postgres store is for.

pub(crate) mod errors;
mod items;
mod views;
mod writing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::failure::{self, Decision};
use super::group;
use super::{
    BatchLimits, Claim, Claimable, Claimed, ClaimedBatch, Commit, Committed, DeadFilter, DeadItem,
    Enqueued, FailResult, Failure, InsertRun, Item, ItemQuery, ItemRecord, NewItem, PausedTaskType,
    QueueDepth, RecentLeases, Result, RetryPolicies, RetryPolicy, RunAfter, Status, Store,
    StoreError, StoreOptions, StoredOutput, WorkSignal, WorkerInfo, WorkerStatus, insert_runs,
    validate,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/sqlite/migrations");

// Every query below runs to completion (`fetch_all`), never `fetch_one` or
// `fetch_optional`: sqlx stops a SQLite statement after the row those ask for
// and leaves it un-reset until the statement's next use. An un-reset statement
// keeps its connection's read snapshot, so checkpoints can never restart the
// WAL and it grows without bound (sqlx issue #3430 is one symptom).

/// Claims reaped per round; the reaper loops until none are left.
const REAP_BATCH: i64 = 100;

pub struct SqliteStore {
    /// The one connection every write goes through. SQLite admits one writer
    /// at a time anyway; funnelling writes through one connection makes them
    /// queue in the pool (woken in order) instead of sleeping in SQLite's busy
    /// handler, and keeps that connection's page cache valid: a connection
    /// drops its whole cache whenever another connection has written, so
    /// writers taking turns would each start cold.
    writer: SqlitePool,
    /// Connections for reads (status, listings), which WAL mode runs beside
    /// the writer.
    readers: SqlitePool,
    /// The task that checkpoints the write-ahead log; stopped on drop.
    checkpointer: tokio::task::AbortHandle,
    /// Leases this store wrote lately, which claims need not write again.
    recent_leases: RecentLeases,
    options: StoreOptions,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies the write-ahead log into the database file every
/// [`CHECKPOINT_EVERY`], on a reader connection. A checkpoint writes every page
/// the log holds and syncs the file; left to SQLite it runs inside whichever
/// write commits past the threshold, stalling that write and every write
/// queued behind it. A passive checkpoint never blocks the writer.
///
/// A log that stays long means something holds an old snapshot (an open
/// transaction in another process, say): that is logged, once a minute at most.
fn checkpoint_in_background(readers: SqlitePool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned: Option<tokio::time::Instant> = None;
        loop {
            every.tick().await;
            // One row: (busy, pages in the log, pages checkpointed).
            let outcome: sqlx::Result<Vec<(i64, i64, i64)>> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_all(&readers)
                    .await;
            match outcome.as_deref() {
                Ok([(_, log_pages, _), ..]) if *log_pages > LONG_LOG_PAGES => {
                    if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                        warned = Some(tokio::time::Instant::now());
                        tracing::warn!(
                            log_pages,
                            "the SQLite write-ahead log keeps growing: a connection holds an old snapshot (a long transaction in another process?), so it cannot start over"
                        );
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "checkpoint failed; retrying at the next interval")
                }
            }
        }
    })
}

/// Log pages at which the writer checkpoints on its own, if the background
/// checkpoints fall behind (64 MiB of 4 KiB pages).
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;
/// Log pages past which the write-ahead log is reported as stuck.
const LONG_LOG_PAGES: i64 = 4 * WRITER_CHECKPOINT_PAGES;

impl SqliteStore {
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|cause| StoreError::Connect {
                url: url.to_string(),
                cause,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // How long a write waits for another process's write lock before
            // failing as an outage (and being retried by its caller): long
            // enough for any short transaction, short enough that a write
            // stuck behind a lock held for minutes comes back to say so.
            .busy_timeout(Duration::from_secs(5))
            // 8 MiB of page cache per connection (SQLite's default is 2 MiB).
            // 2, 8 and 32 MiB measured the same on `sluice bench queue`, and
            // 8 and 32 MiB on `sluice bench e2e`, where 32 MiB cost a
            // draining host about 25 MiB more resident memory (BENCHMARKS.md).
            .pragma("cache_size", "-8192")
            // Checkpoints run beside the writer (see `checkpoint_in_background`);
            // the writer checkpoints on its own only if they fall far behind.
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string());
        // The writer first: it creates the file and switches it to WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(|cause| StoreError::Connect {
                url: url.to_string(),
                cause,
            })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(options.max_connections.saturating_sub(1).max(1))
            .connect_lazy_with(connect);
        let checkpointer = checkpoint_in_background(readers.clone()).abort_handle();
        Ok(Self {
            writer,
            readers,
            checkpointer,
            recent_leases: RecentLeases::default(),
            options,
        })
    }

    /// Opens a write transaction on the writer connection (see [`writing`]).
    /// One group commit's transaction ([`commit_one`] for each commit).
    async fn commit_together(&self, commits: &[Commit]) -> Result<Vec<Result<Committed>>> {
        let mut tx = self.immediate().await?;
        let written = commit_group(tx.conn(), commits, self.options.max_payload_bytes).await;
        tx.finish(written).await
    }

    /// Writes `worker`'s lease before a claim, unless this store wrote it a
    /// moment ago.
    async fn claim_lease(
        &self,
        conn: &mut SqliteConnection,
        worker: &str,
        lease: Duration,
    ) -> Result<()> {
        if !self.recent_leases.fresh(worker, lease) {
            let now = std::time::Instant::now();
            sqlx::query(include_str!("claim_lease.sql"))
                .bind(worker)
                .bind(ms(lease))
                .execute(&mut *conn)
                .await?;
            self.recent_leases.written(worker, now);
        }
        Ok(())
    }

    async fn immediate(&self) -> Result<writing::Writing> {
        writing::Writing::begin(&self.writer).await
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

/// Claims up to `max_units` ready units (see [`Store::claim_batches`]), each
/// with its unit's row id.
async fn claim(
    conn: &mut SqliteConnection,
    worker: &str,
    task_types: &[Claimable],
    max_units: u32,
    max_suspects: u32,
) -> Result<Vec<(i64, Claimed)>> {
    let gates: Vec<serde_json::Value> = task_types
        .iter()
        .map(|c| {
            serde_json::json!({
                "task_type": c.task_type,
                "min_tokens": c.gate.min_tokens,
                "max_wait_ms": c.gate.max_wait.map(ms),
            })
        })
        .collect();
    let rows = sqlx::query(include_str!("claim.sql"))
        .bind(worker)
        .bind(super::token_base())
        .bind(serde_json::Value::Array(gates).to_string())
        .bind(i64::from(max_units))
        .bind(i64::from(max_suspects))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let claimed = Claimed {
                claim: Claim {
                    task_type: row.get(1),
                    work_unit_key: row.get(2),
                    token: row.get(3),
                    worker: worker.to_string(),
                },
                suspect: row.get(4),
            };
            (row.get(0), claimed)
        })
        .collect())
}

/// Takes the first batch of every unit in `units` (row id, claim, limits),
/// claimed a moment ago in the same transaction, in one statement; answers
/// the batches in the order of `units`.
async fn first_batches(
    conn: &mut SqliteConnection,
    units: &[(i64, &Claim, BatchLimits)],
) -> Result<Vec<Vec<Item>>> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let wants: Vec<serde_json::Value> = units
        .iter()
        .map(|(id, _, limits)| {
            serde_json::json!([
                id,
                limits.max_items.max(1),
                i64::try_from(limits.max_tokens).unwrap_or(i64::MAX)
            ])
        })
        .collect();
    let most = units
        .iter()
        .map(|(_, _, limits)| i64::from(limits.max_items.max(1)))
        .max()
        .unwrap_or(1);
    let rows: Vec<(i64, String)> = sqlx::query_as(include_str!("first_batches.sql"))
        .bind(serde_json::Value::Array(wants).to_string())
        .bind(most)
        .fetch_all(&mut *conn)
        .await?;
    let mut batches: std::collections::HashMap<i64, String> = rows.into_iter().collect();
    units
        .iter()
        .map(|(id, claim, _)| match batches.remove(id) {
            Some(batch) => items_of(claim, &batch),
            None => Err(StoreError::claim_lost(claim)),
        })
        .collect()
}

/// Takes the unit's next batch in flight (see [`Store::fetch_batch`]).
async fn fetch(
    conn: &mut SqliteConnection,
    claim: &Claim,
    limits: BatchLimits,
) -> Result<Vec<Item>> {
    // One row whatever the batch size: sqlx hands each row across from
    // its SQLite thread separately, which cost more than the query.
    let batch: Option<String> = sqlx::query_scalar(include_str!("fetch_batch.sql"))
        .bind(&claim.task_type)
        .bind(&claim.work_unit_key)
        .bind(i64::from(limits.max_items.max(1)))
        .bind(claim.token)
        .bind(i64::try_from(limits.max_tokens).unwrap_or(i64::MAX))
        .bind(&claim.worker)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
    let batch = batch.ok_or_else(|| StoreError::claim_lost(claim))?;
    items_of(claim, &batch)
}

/// A batch as the fetch statements return it: a JSON array of
/// [id, payload, tokens, attempts, created_at_ms], put in id order.
fn items_of(claim: &Claim, batch: &str) -> Result<Vec<Item>> {
    let rows: Vec<(i64, String, u32, u32, i64)> =
        serde_json::from_str(batch).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let mut items: Vec<Item> = rows
        .into_iter()
        .map(|(id, payload, tokens, attempts, created_at_ms)| Item {
            id,
            task_type: claim.task_type.clone(),
            work_unit_key: claim.work_unit_key.clone(),
            payload,
            tokens,
            attempts,
            created_at_ms,
        })
        .collect();
    items.sort_by_key(|i| i.id);
    Ok(items)
}

async fn fenced(conn: &mut SqliteConnection, claim: &Claim) -> Result<()> {
    let held = sqlx::query(include_str!("fence.sql"))
        .bind(&claim.task_type)
        .bind(&claim.work_unit_key)
        .bind(claim.token)
        .bind(&claim.worker)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
    held.map(|_| ())
        .ok_or_else(|| StoreError::claim_lost(claim))
}

/// Writes a group of commits inside the group's transaction, a few
/// statements for the whole group (each statement is a trip to SQLite's
/// thread): one checks every claim and that every item is pending and in
/// flight under it, then the items of the commits that passed are marked
/// done, their outputs stored, their follow-ups enqueued and their units
/// released if drained. A commit that fails a check writes nothing. SQLite
/// has one writer, so nothing changes between the checks and the writes.
async fn commit_group(
    conn: &mut SqliteConnection,
    commits: &[Commit],
    max_payload_bytes: usize,
) -> Result<Vec<Result<Committed>>> {
    let checks: Vec<serde_json::Value> = commits
        .iter()
        .map(|commit| {
            let claim = &commit.claim;
            serde_json::json!([
                claim.task_type,
                claim.work_unit_key,
                claim.token,
                claim.worker,
                commit.item_ids().collect::<Vec<i64>>(),
            ])
        })
        .collect();
    let checked: Vec<(Option<i64>, i64)> = sqlx::query_as(include_str!("group_check.sql"))
        .bind(serde_json::Value::Array(checks).to_string())
        .fetch_all(&mut *conn)
        .await?;
    let mut results = Vec::with_capacity(commits.len());
    let mut passed = Vec::new();
    for (n, (commit, (unit, in_flight))) in commits.iter().zip(checked).enumerate() {
        let ids: Vec<i64> = commit.item_ids().collect();
        let result = if let Err(invalid) = commit
            .completions
            .iter()
            .try_for_each(|c| validate::items(&c.follow_up, max_payload_bytes))
        {
            Err(invalid)
        } else if let Some(unit) = unit {
            if in_flight == ids.len() as i64 {
                passed.push((n, unit));
                Ok(Committed::Done)
            } else {
                Err(StoreError::NotInFlight(ids))
            }
        } else {
            Err(StoreError::claim_lost(&commit.claim))
        };
        results.push(result);
    }
    if passed.is_empty() {
        return Ok(results);
    }
    let done: Vec<i64> = passed
        .iter()
        .flat_map(|&(n, _)| commits[n].item_ids())
        .collect();
    sqlx::query(include_str!("group_done.sql"))
        .bind(serde_json::to_string(&done).expect("ids serialize"))
        .execute(&mut *conn)
        .await?;
    let outputs: Vec<serde_json::Value> = passed
        .iter()
        .flat_map(|&(n, _)| {
            let commit = &commits[n];
            commit.completions.iter().map(move |completion| {
                // Stored in id order, as on Postgres.
                let mut ids = completion.item_ids.clone();
                ids.sort_unstable();
                serde_json::json!([
                    commit.claim.task_type,
                    commit.claim.work_unit_key,
                    serde_json::to_string(&ids).expect("ids serialize"),
                    completion.output,
                    completion.call,
                ])
            })
        })
        .collect();
    sqlx::query(include_str!("group_outputs.sql"))
        .bind(serde_json::Value::Array(outputs).to_string())
        .execute(&mut *conn)
        .await?;
    for &(n, _) in &passed {
        for completion in &commits[n].completions {
            insert_items(conn, &completion.follow_up).await?;
        }
    }
    let to_release: Vec<i64> = passed
        .iter()
        .filter(|&&(n, _)| commits[n].release_if_drained)
        .map(|&(_, unit)| unit)
        .collect();
    if !to_release.is_empty() {
        let released: Vec<i64> = sqlx::query_scalar(include_str!("group_release.sql"))
            .bind(serde_json::to_string(&to_release).expect("ids serialize"))
            .fetch_all(&mut *conn)
            .await?;
        for &(n, unit) in &passed {
            if released.contains(&unit) {
                results[n] = Ok(Committed::Released);
            }
        }
    }
    Ok(results)
}

/// Inserts items in input order (see [`InsertRun`]).
async fn insert_items(conn: &mut SqliteConnection, items: &[NewItem]) -> Result<Vec<Enqueued>> {
    let mut out = Vec::with_capacity(items.len());
    for run in insert_runs(items) {
        match run {
            InsertRun::Bulk(run) => out.extend(insert_bulk(conn, run).await?),
            InsertRun::Deduplicated(item) => out.push(insert_deduplicated(conn, item).await?),
        }
    }
    Ok(out)
}

/// One statement for the whole run: each statement costs a round trip to
/// sqlx's SQLite worker thread, which dominated enqueue time item by item.
async fn insert_bulk(conn: &mut SqliteConnection, items: &[NewItem]) -> Result<Vec<Enqueued>> {
    // Payloads travel as JSON strings so json_extract returns their exact text.
    let rows: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            let (run_after, delay) = RunAfter::columns(i.run_after);
            serde_json::json!([
                i.task_type,
                i.work_unit_key,
                i.payload,
                i.tokens,
                run_after,
                delay
            ])
        })
        .collect();
    let mut ids: Vec<i64> = sqlx::query_scalar(include_str!("enqueue_bulk.sql"))
        .bind(serde_json::Value::Array(rows).to_string())
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

async fn insert_deduplicated(conn: &mut SqliteConnection, item: &NewItem) -> Result<Enqueued> {
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
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .next();
        if let Some(id) = inserted {
            return Ok(Enqueued {
                id,
                duplicate: false,
            });
        }
        let original: Option<i64> = sqlx::query_scalar(include_str!("find_duplicate.sql"))
            .bind(&item.task_type)
            .bind(&item.dedupe_key)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .next();
        if let Some(id) = original {
            return Ok(Enqueued {
                id,
                duplicate: true,
            });
        }
    }
}

/// Applies [`failure::decide`] to the items in flight under `claim` and
/// releases the claim. The caller has checked the fence inside its transaction.
async fn record_failure(
    conn: &mut SqliteConnection,
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
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.get::<i64, _>(0), row.get::<i64, _>(1) as u32))
        .collect();
    let decision = failure::decide(&in_flight, failure, policy);
    if let Decision::Charge { id, dead, .. } = decision {
        sqlx::query(include_str!("record_failure.sql"))
            .bind(&claim.task_type)
            .bind(&claim.work_unit_key)
            .bind(id)
            .bind(message)
            .execute(&mut *conn)
            .await?;
        if dead {
            sqlx::query(include_str!("dead_letter.sql"))
                .bind(id)
                .execute(&mut *conn)
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
        .bind(narrow.map(|(batch, _)| i64::from(batch)))
        .bind(narrow.map(|(_, through)| through))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?
        .get(0);
    Ok(decision.result(available_at))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<usize> {
        let table: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_all(&self.readers)
        .await?
        .into_iter()
        .next();
        let applied: i64 = match table {
            Some(_) => sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.readers)
                .await?
                .into_iter()
                .next()
                .ok_or(sqlx::Error::RowNotFound)?,
            None => 0,
        };
        Ok(MIGRATOR.iter().count().saturating_sub(applied as usize))
    }

    async fn has_schema(&self) -> Result<bool> {
        Ok(sqlx::query_scalar(include_str!("has_schema.sql"))
            .fetch_one(&self.readers)
            .await?)
    }

    async fn enqueue(&self, items: &[NewItem]) -> Result<Vec<Enqueued>> {
        validate::items(items, self.options.max_payload_bytes)?;
        let mut tx = self.immediate().await?;
        let out = insert_items(tx.conn(), items).await;
        tx.finish(out).await
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
        // One transaction on the writer: the claim and every first fetch are
        // written (and land) together.
        let mut tx = self.immediate().await?;
        let taken = async {
            let conn = tx.conn();
            self.claim_lease(conn, worker, lease).await?;
            let claims = claim(conn, worker, task_types, max_units, max_suspects).await?;
            let limits: Vec<BatchLimits> = claims
                .iter()
                .map(|(_, claimed)| {
                    let n = task_types
                        .iter()
                        .position(|c| c.task_type == claimed.claim.task_type)
                        .expect("units are claimed only of the task types asked for");
                    batches[n]
                })
                .collect();
            let fetching: Vec<(i64, &Claim, BatchLimits)> = claims
                .iter()
                .zip(&limits)
                .filter(|&(_, &limits)| limits != BatchLimits::NONE)
                .map(|((id, claimed), &limits)| (*id, &claimed.claim, limits))
                .collect();
            let mut firsts = first_batches(conn, &fetching).await?.into_iter();
            let taken = claims
                .into_iter()
                .zip(limits)
                .map(|((_, claimed), limits)| {
                    let items = if limits == BatchLimits::NONE {
                        Vec::new()
                    } else {
                        firsts.next().expect("a batch for every unit fetched")
                    };
                    ClaimedBatch { claimed, items }
                })
                .collect::<Vec<_>>();
            Ok(taken)
        }
        .await;
        tx.finish(taken).await
    }

    async fn fetch_batch(&self, claim: &Claim, limits: BatchLimits) -> Result<Vec<Item>> {
        let mut conn = self.writer.acquire().await?;
        fetch(&mut conn, claim, limits).await
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Vec<Claim>> {
        let now = std::time::Instant::now();
        let mut tx = self.immediate().await?;
        let renewed = async {
            sqlx::query(include_str!("heartbeat.sql"))
                .bind(worker)
                .bind(ms(lease))
                .execute(tx.conn())
                .await?;
            sqlx::query(include_str!("worker_seen.sql"))
                .bind(worker)
                .execute(tx.conn())
                .await?;
            Ok(sqlx::query(include_str!("held_claims.sql"))
                .bind(worker)
                .fetch_all(tx.conn())
                .await?)
        }
        .await;
        let rows = tx.finish(renewed).await?;
        self.recent_leases.written(worker, now);
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
        let mut tx = self.immediate().await?;
        let failed = async {
            let conn = tx.conn();
            fenced(conn, claim).await?;
            record_failure(conn, claim, through, failure, policy).await
        }
        .await;
        tx.finish(failed).await
    }

    async fn set_suspect(&self, claim: &Claim, suspect: bool) -> Result<()> {
        let marked = sqlx::query(include_str!("set_suspect.sql"))
            .bind(&claim.task_type)
            .bind(&claim.work_unit_key)
            .bind(claim.token)
            .bind(&claim.worker)
            .bind(suspect)
            .fetch_all(&self.writer)
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
        let rows: Vec<serde_json::Value> = claims
            .iter()
            .map(|c| serde_json::json!([c.task_type, c.work_unit_key, c.token, c.worker]))
            .collect();
        let released: Vec<(String, String, i64)> = sqlx::query_as(include_str!("release_all.sql"))
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(&self.writer)
            .await?;
        Ok(super::released_of(claims, &released))
    }

    async fn reap(&self, policies: &RetryPolicies, except_worker: Option<&str>) -> Result<u64> {
        let task_types = policies.listed_only.then(|| {
            serde_json::to_string(&policies.by_task_type.keys().collect::<Vec<_>>())
                .expect("names serialize")
        });
        let mut reaped = 0;
        loop {
            let expired = sqlx::query(include_str!("expired.sql"))
                .bind(REAP_BATCH)
                .bind(except_worker)
                .bind(&task_types)
                .fetch_all(&self.writer)
                .await?;
            if expired.is_empty() {
                return Ok(reaped);
            }
            // A heartbeat may renew a lease between the two looks; a pass
            // that reaped none of what it saw must not spin.
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
                // renewed the lease first wins.
                let mut tx = self.immediate().await?;
                let done = async {
                    let conn = tx.conn();
                    let still_expired = sqlx::query(include_str!("still_expired.sql"))
                        .bind(&claim.task_type)
                        .bind(&claim.work_unit_key)
                        .bind(claim.token)
                        .bind(&claim.worker)
                        .fetch_all(&mut *conn)
                        .await?;
                    if still_expired.is_empty() {
                        return Ok(false);
                    }
                    let failure = Failure::Retryable(format!(
                        "claim expired: worker {} stopped renewing its lease",
                        claim.worker
                    ));
                    record_failure(conn, &claim, i64::MAX, &failure, policy).await?;
                    Ok(true)
                }
                .await;
                if tx.finish(done).await? {
                    reaped += 1;
                }
            }
            if reaped == before {
                return Ok(reaped);
            }
        }
    }

    async fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
        let mut tx = self.immediate().await?;
        let registered = async {
            sqlx::query(include_str!("register_worker.sql"))
                .bind(&worker.id)
                .bind(&worker.host_name)
                .bind(i64::from(worker.pid))
                .bind(&worker.version)
                .bind(serde_json::to_string(&worker.task_types).unwrap_or_default())
                .execute(tx.conn())
                .await?;
            sqlx::query(include_str!("abandon_claims.sql"))
                .bind(&worker.id)
                .execute(tx.conn())
                .await?;
            Ok(())
        }
        .await;
        tx.finish(registered).await
    }

    async fn dead_list(&self, filter: Option<&DeadFilter>, limit: u32) -> Result<Vec<DeadItem>> {
        let (id, task_type, key) = filter_binds(filter);
        let rows = sqlx::query(include_str!("dead_list.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DeadItem {
                    id: row.get(0),
                    task_type: row.get(1),
                    work_unit_key: row.get(2),
                    payload: serde_json::from_str(row.get::<&str, _>(3)).unwrap_or_default(),
                    attempts: row.get::<i64, _>(4) as u32,
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
        Ok(sqlx::query(include_str!("dead_retry.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn dead_purge(&self, filter: &DeadFilter) -> Result<u64> {
        let (id, task_type, key) = filter_binds(Some(filter));
        Ok(sqlx::query(include_str!("dead_purge.sql"))
            .bind(id)
            .bind(task_type)
            .bind(key)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn prune_idle(&self, idle: Duration, limit: u32) -> Result<u64> {
        let mut tx = self.immediate().await?;
        let deleted = async {
            Ok(sqlx::query(include_str!("prune_idle.sql"))
                .bind(ms(idle))
                .bind(i64::from(limit))
                .execute(tx.conn())
                .await?
                .rows_affected())
        }
        .await;
        tx.finish(deleted).await
    }

    async fn prune_done(&self, age: Duration, limit: u32) -> Result<u64> {
        Ok(sqlx::query(include_str!("prune_done.sql"))
            .bind(ms(age))
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn prune_outputs(&self, age: Duration, limit: u32) -> Result<u64> {
        Ok(sqlx::query(include_str!("prune_outputs.sql"))
            .bind(ms(age))
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn status(&self) -> Result<Status> {
        let now_ms: i64 = sqlx::query_scalar(include_str!("now.sql"))
            .fetch_all(&self.readers)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)?;
        let depths = sqlx::query(include_str!("status.sql"))
            .fetch_all(&self.readers)
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
            .fetch_all(&self.readers)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)?;
        let rows: Vec<(WorkerStatus, Option<String>)> = sqlx::query(include_str!("workers.sql"))
            .fetch_all(&self.readers)
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
            .fetch_all(&self.readers)
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
            .fetch_all(&self.writer)
            .await?;
        if !taken.is_empty() {
            return Ok(None);
        }
        let wait: Vec<i64> = sqlx::query_scalar(include_str!("pace_wait.sql"))
            .bind(key)
            .bind(burst_us)
            .fetch_all(&self.writer)
            .await?;
        let wait = wait.first().copied().unwrap_or(0).max(1);
        Ok(Some(Duration::from_micros(wait.unsigned_abs())))
    }

    async fn publish_flow(&self, worker: &str, report: &str) -> Result<()> {
        sqlx::query(include_str!("publish_flow.sql"))
            .bind(worker)
            .bind(report)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn adjust_pace(&self, key: &str, delta_us: i64) -> Result<()> {
        sqlx::query(include_str!("adjust_pace.sql"))
            .bind(key)
            .bind(delta_us)
            .execute(&self.writer)
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
            .fetch_all(&self.writer)
            .await?;
        Ok(!changed.is_empty())
    }

    /// SQLite has no cross-process notification: hosts poll.
    async fn work_signal(&self) -> Result<Option<Box<dyn WorkSignal>>> {
        Ok(None)
    }

    async fn outputs(&self, task_type: &str, work_unit_key: &str) -> Result<Vec<StoredOutput>> {
        let rows = sqlx::query(include_str!("outputs.sql"))
            .bind(task_type)
            .bind(work_unit_key)
            .fetch_all(&self.readers)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredOutput {
                item_ids: serde_json::from_str(row.get::<&str, _>(0)).unwrap_or_default(),
                output: row.get(1),
                created_at_ms: row.get(2),
                call: row.get(3),
            })
            .collect())
    }

    async fn item(&self, id: i64) -> Result<Option<ItemRecord>> {
        items::item(&self.readers, id).await
    }

    async fn items(&self, query: &ItemQuery) -> Result<Vec<ItemRecord>> {
        items::page(&self.readers, query).await
    }

    async fn unserved_task_types(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(include_str!("unserved.sql"))
            .bind(ms(super::RUNNING_HOST_SEEN_WITHIN))
            .fetch_all(&self.readers)
            .await?)
    }

    async fn cancel_pending(&self, task_type: &str, work_unit_key: &str) -> Result<u64> {
        items::cancel_pending(&self.writer, task_type, work_unit_key).await
    }

    async fn overview(&self, window: Duration) -> Result<super::views::Overview> {
        views::overview(&self.readers, window).await
    }

    async fn units(
        &self,
        task_type: &str,
        key_from: &str,
        limit: u32,
    ) -> Result<Vec<super::views::UnitRecord>> {
        views::units(&self.readers, task_type, key_from, limit).await
    }

    async fn mark_draining(&self, worker: &str) -> Result<()> {
        sqlx::query(include_str!("mark_draining.sql"))
            .bind(worker)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn hosts(&self) -> Result<super::views::Hosts> {
        views::hosts(&self.readers).await
    }
}
