//! The queue benchmark: how fast items go in, how fast a pool of no-op
//! workers drains them, and whether claiming stays fast as the backlog grows.
//!
//! Each run uses a fresh database (a temporary SQLite file, or a temporary
//! Postgres schema that is dropped afterwards), so figures never depend on
//! what an earlier run left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::{BatchLimits, Claimable, Gate, NewItem, Store, StoreOptions};

/// What to measure.
#[derive(Debug, Clone)]
pub struct QueueBench {
    /// Items enqueued and drained.
    pub items: usize,
    /// Work units they are spread over.
    pub keys: usize,
    /// Concurrent no-op workers.
    pub workers: usize,
    /// Units each worker claims per round trip.
    pub claim_batch: u32,
    /// Items per fetched batch.
    pub batch_items: u32,
    /// Backlog sizes (one item per unit) for the claim-throughput runs.
    pub backlogs: Vec<usize>,
    /// Units claimed in each round of a claim-throughput run.
    pub claims: usize,
    /// Rounds per claim-throughput run; the median round is reported.
    pub claim_rounds: usize,
}

/// One line of results.
#[derive(Debug, Serialize)]
pub struct Measurement {
    pub backend: String,
    pub what: String,
    pub count: usize,
    pub seconds: f64,
    pub per_second: f64,
}

impl Measurement {
    fn new(backend: &str, what: String, count: usize, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            backend: backend.into(),
            what,
            count,
            seconds,
            per_second: count as f64 / seconds.max(1e-9),
        }
    }
}

const TASK_TYPE: &str = "bench";
const LEASE: Duration = Duration::from_secs(300);
/// Items per enqueue call.
const ENQUEUE_CHUNK: usize = 5_000;

fn claimable() -> Vec<Claimable> {
    vec![Claimable {
        task_type: TASK_TYPE.into(),
        gate: Gate::default(),
    }]
}

/// Enqueues `items` over `keys` units; returns the time it took.
async fn fill(store: &dyn Store, items: usize, keys: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut n = 0;
    while n < items {
        let chunk: Vec<NewItem> = (n..(n + ENQUEUE_CHUNK).min(items))
            .map(|i| NewItem {
                task_type: TASK_TYPE.into(),
                work_unit_key: format!("unit-{}", i % keys),
                payload: "{}".into(),
                tokens: 1,
                dedupe_key: None,
                run_after: None,
            })
            .collect();
        n += chunk.len();
        store.enqueue(&chunk).await?;
    }
    Ok(started.elapsed())
}

/// One no-op worker: claim, fetch, complete, until nothing is claimable.
async fn drain(store: Arc<dyn Store>, worker: String, spec: QueueBench) -> anyhow::Result<usize> {
    let types = claimable();
    let limits = BatchLimits {
        max_items: spec.batch_items,
        max_tokens: u64::MAX,
    };
    let mut done = 0;
    loop {
        let claims = store
            .claim(&worker, &types, spec.claim_batch, LEASE)
            .await?;
        if claims.is_empty() {
            return Ok(done);
        }
        for claim in claims {
            loop {
                let batch = store.fetch_batch(&claim, limits).await?;
                if batch.is_empty() {
                    store.release(&claim).await?;
                    break;
                }
                let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
                store.complete(&claim, &ids, None, &[], None).await?;
                done += ids.len();
                // A short batch drained the unit: give it back without
                // another round trip to find it empty.
                if ids.len() < spec.batch_items as usize {
                    store.release(&claim).await?;
                    break;
                }
            }
        }
    }
}

/// Runs every measurement against one store and returns the results.
pub async fn run(
    backend: &str,
    open: impl AsyncFn() -> anyhow::Result<(Arc<dyn Store>, Cleanup)>,
    spec: &QueueBench,
) -> anyhow::Result<Vec<Measurement>> {
    let mut results = Vec::new();
    {
        let (store, cleanup) = open().await?;
        let took = fill(&*store, spec.items, spec.keys).await?;
        results.push(Measurement::new(
            backend,
            format!("enqueue ({} keys)", spec.keys),
            spec.items,
            took,
        ));
        let started = Instant::now();
        let workers: Vec<_> = (0..spec.workers)
            .map(|w| tokio::spawn(drain(store.clone(), format!("bench-{w}"), spec.clone())))
            .collect();
        let mut done = 0;
        for worker in workers {
            done += worker.await??;
        }
        anyhow::ensure!(done == spec.items, "drained {done} of {} items", spec.items);
        results.push(Measurement::new(
            backend,
            format!("drain ({} workers, no-op handler)", spec.workers),
            done,
            started.elapsed(),
        ));
        cleanup.finish().await?;
    }
    for &backlog in &spec.backlogs {
        let (store, cleanup) = open().await?;
        fill(&*store, backlog, backlog).await?;
        let rates = claim_rounds(&*store, backlog, spec).await?;
        results.push(Measurement::new(
            backend,
            format!("claim units from a backlog of {backlog}"),
            rates.claims,
            rates.median,
        ));
        results.push(Measurement::new(
            backend,
            format!("claim units right after loading {backlog} (first round)"),
            rates.claims,
            rates.first,
        ));
        cleanup.finish().await?;
    }
    Ok(results)
}

/// The time one round of claims took: the first round, and the median round.
struct RoundTimes {
    claims: usize,
    first: Duration,
    median: Duration,
}

/// Claims `spec.claims` units `spec.claim_rounds` times from a backlog of
/// `backlog` one-item units. Only the claims are timed; between rounds the
/// claimed units are released, so every round sees the same backlog (released
/// units go to the back of the ready order).
async fn claim_rounds(
    store: &dyn Store,
    backlog: usize,
    spec: &QueueBench,
) -> anyhow::Result<RoundTimes> {
    let claims = spec.claims.min(backlog);
    let types = claimable();
    let mut times = Vec::with_capacity(spec.claim_rounds);
    for _ in 0..spec.claim_rounds.max(1) {
        let mut held = Vec::with_capacity(claims);
        let started = Instant::now();
        while held.len() < claims {
            let left = u32::try_from(claims - held.len()).unwrap_or(u32::MAX);
            let want = spec.claim_batch.min(left);
            let got = store.claim("bench", &types, want, LEASE).await?;
            anyhow::ensure!(
                !got.is_empty(),
                "the backlog ran dry after {} claims",
                held.len()
            );
            held.extend(got);
        }
        times.push(started.elapsed());
        for released in store.release_all(&held).await? {
            released?;
        }
    }
    let first = times[0];
    times.sort_unstable();
    Ok(RoundTimes {
        claims,
        first,
        median: times[times.len() / 2],
    })
}

/// What [`run`]'s opener created, removed when the measurement is over.
pub enum Cleanup {
    Dir(tempfile::TempDir),
    PostgresSchema { admin_url: String, schema: String },
}

impl Cleanup {
    pub async fn finish(self) -> anyhow::Result<()> {
        if let Cleanup::PostgresSchema { admin_url, schema } = self {
            let pool = sqlx::PgPool::connect(&admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&pool)
            .await?;
        }
        Ok(())
    }
}

/// A fresh SQLite file in a temporary folder.
pub async fn open_sqlite(options: StoreOptions) -> anyhow::Result<(Arc<dyn Store>, Cleanup)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = crate::store::open(&url, options).await?;
    store.migrate().await?;
    Ok((store, Cleanup::Dir(dir)))
}

/// A fresh schema in the Postgres at `url`.
pub async fn open_postgres(
    url: &str,
    options: StoreOptions,
) -> anyhow::Result<(Arc<dyn Store>, Cleanup)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let schema = format!("sluice_bench_{}_{nanos}", std::process::id());
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let store = crate::store::open(&schema_url, options).await?;
    store.migrate().await?;
    Ok((
        store,
        Cleanup::PostgresSchema {
            admin_url: url.to_string(),
            schema,
        },
    ))
}
