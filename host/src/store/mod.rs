//! The durable queue: where Sluice keeps its promise that nothing is lost and
//! nothing is done twice.
//!
//! [`Store`] is the one interface the rest of the host uses; [`sqlite`] (the
//! embedded default) and [`postgres`] (several hosts sharing one queue)
//! implement it and must pass the same conformance suite
//! (`host/tests/store_*.rs`). Each backend keeps its SQL in `.sql` files beside
//! its code and its schema in embedded migrations.
//!
//! The model: items are grouped into *work units* (one task type plus one
//! `work_unit_key`). A unit row keeps the unit's pending count, tokens and next
//! available time, and its claim: owner, lease expiry and `claim_seq`, a
//! counter every claim increments. Every write a worker makes after claiming is
//! *fenced* by its `claim_seq`: once the claim was reaped or taken over, the
//! write changes nothing and reports [`StoreError::ClaimLost`].

mod backoff;
pub mod postgres;

pub mod sqlite;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use backoff::RetryPolicy;

/// Largest payload accepted by default: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// An item to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub task_type: String,
    pub work_unit_key: String,
    /// A JSON document, as text.
    #[serde(deserialize_with = "validate::json_text")]
    pub payload: String,
    /// A size hint for batching (such as an LLM token count).
    #[serde(default)]
    pub tokens: u32,
    /// A second pending item with the same task type and dedupe key is not
    /// enqueued; its enqueue returns the first one's id.
    #[serde(default)]
    pub dedupe_key: Option<String>,
}

/// What enqueueing one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: i64,
    /// True when a pending item with the same dedupe key already existed; `id` is its id.
    pub duplicate: bool,
}

/// A claim on one work unit: the fencing token for every write about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim {
    pub task_type: String,
    pub work_unit_key: String,
    pub claim_seq: i64,
    pub worker: String,
}

/// A queued item, as handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: i64,
    pub task_type: String,
    pub work_unit_key: String,
    pub payload: String,
    pub tokens: u32,
    /// Failed attempts so far (0 on the first try).
    pub attempts: u32,
    pub created_at_ms: i64,
}

/// When a task type's units are worth claiming. Both `None`: always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gate {
    /// Ready once the unit's pending tokens reach this many.
    pub min_tokens: Option<u64>,
    /// Ready once the unit's oldest pending item has waited this long.
    pub max_wait: Option<Duration>,
}

/// A task type this host can run, and its gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimable {
    pub task_type: String,
    pub gate: Gate,
}

/// How much of a unit one batch may take: at most `max_items` items and
/// `max_tokens` tokens, but always at least one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_items: u32,
    pub max_tokens: u64,
}

/// Why the items in flight failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again after a backoff, until the task type's max attempts.
    Retryable(String),
    /// Dead-letter the head item now.
    Permanent(String),
}

/// What [`Store::fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailResult {
    /// The unit is available again at this time (ms since the epoch).
    RetryAt(i64),
    /// The head item was dead-lettered; the unit goes on with the next item.
    DeadLettered(i64),
}

/// Per-task-type retry policies, with a default for the rest.
#[derive(Debug, Clone, Default)]
pub struct RetryPolicies {
    pub default: RetryPolicy,
    pub by_task_type: BTreeMap<String, RetryPolicy>,
}

impl RetryPolicies {
    pub fn get(&self, task_type: &str) -> &RetryPolicy {
        self.by_task_type.get(task_type).unwrap_or(&self.default)
    }
}

/// Which dead letters a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadFilter {
    Id(i64),
    Key {
        task_type: String,
        work_unit_key: String,
    },
    TaskType(String),
}

/// A dead-lettered item and its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadItem {
    pub id: i64,
    pub task_type: String,
    pub work_unit_key: String,
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Every failure, oldest first: `{"attempt", "at_ms", "error"}`.
    pub errors: serde_json::Value,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// Depth and oldest age of items for one task type and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub task_type: String,
    pub state: String,
    pub count: i64,
    pub oldest_created_at_ms: Option<i64>,
}

/// A snapshot of the queue for `sluice status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub now_ms: i64,
    pub depths: Vec<QueueDepth>,
    pub claimed_units: i64,
    pub workers: Vec<WorkerStatus>,
}

/// A registered host process and when it was last heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    pub id: String,
    pub host_name: String,
    pub pid: i64,
    pub version: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
}

/// A host process, as recorded in the workers table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub id: String,
    pub host_name: String,
    pub pid: u32,
    pub version: String,
}

/// Everything that can go wrong in the store, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("item {index}: {reason}; nothing was enqueued")]
    InvalidItem { index: usize, reason: String },
    #[error(
        "the claim on unit {task_type}/{work_unit_key} is no longer held (reaped or taken over); nothing was written"
    )]
    ClaimLost {
        task_type: String,
        work_unit_key: String,
    },
    #[error("items {0:?} are not in flight under this claim; complete only items fetched with it")]
    NotInFlight(Vec<i64>),
    #[error(
        "cannot connect to the database at {url} ({cause}); check the URL and that the server is running"
    )]
    Connect { url: String, cause: sqlx::Error },
    #[error("the database URL `{0}` is not supported: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database schema is behind this Sluice version ({0} pending migrations); run `sluice migrate`"
    )]
    PendingMigrations(usize),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn claim_lost(claim: &Claim) -> Self {
        Self::ClaimLost {
            task_type: claim.task_type.clone(),
            work_unit_key: claim.work_unit_key.clone(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The durable queue. Every method is safe to call from any number of tasks
/// and (on Postgres) processes at once.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// How many migrations this binary has that the database lacks.
    async fn pending_migrations(&self) -> Result<usize>;

    /// Enqueues `items` in one transaction, after checking all of them: one bad
    /// item and nothing is written. Returns one result per item, in order.
    async fn enqueue(&self, items: &[NewItem]) -> Result<Vec<Enqueued>>;

    /// Claims up to `max_units` ready units of the given task types for
    /// `worker`, oldest ready first, with a lease of `lease`.
    async fn claim(
        &self,
        worker: &str,
        task_types: &[Claimable],
        max_units: u32,
        lease: Duration,
    ) -> Result<Vec<Claim>>;

    /// The unit's next pending items in id order within `limits`, marked as in
    /// flight under `claim`. Empty when the unit has nothing pending.
    async fn fetch_batch(&self, claim: &Claim, limits: BatchLimits) -> Result<Vec<Item>>;

    /// Extends the lease of every claim `worker` holds, in one statement, and
    /// records that the worker is alive. Returns the claims it still holds:
    /// any running unit not among them has lost its claim.
    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Vec<Claim>>;

    /// Marks `item_ids` done, stores `output` against them and enqueues
    /// `follow_up`, in one transaction fenced by `claim`. `call` is the host's
    /// JSON record of the call (plugin, attempt, duration, outbound usage),
    /// stored beside the output.
    async fn complete(
        &self,
        claim: &Claim,
        item_ids: &[i64],
        output: Option<&str>,
        follow_up: &[NewItem],
        call: Option<&str>,
    ) -> Result<()>;

    /// Records a failed attempt on the items in flight under `claim`, then
    /// backs the unit off or dead-letters its head item, and releases the claim.
    async fn fail(
        &self,
        claim: &Claim,
        failure: &Failure,
        policy: &RetryPolicy,
    ) -> Result<FailResult>;

    /// Gives the unit back without counting an attempt.
    async fn release(&self, claim: &Claim) -> Result<()>;

    /// Expires claims whose lease ran out: each counts as a failed attempt on
    /// the items it had in flight. Returns how many claims were reaped.
    async fn reap(&self, policies: &RetryPolicies) -> Result<u64>;

    /// Records a host process; its heartbeats then keep `last_seen` current.
    /// Claims still held under the same id (an earlier run that died) are
    /// expired for the reaper, so a restart never renews its own stale claims.
    async fn register_worker(&self, worker: &WorkerInfo) -> Result<()>;

    async fn dead_list(&self, filter: Option<&DeadFilter>, limit: u32) -> Result<Vec<DeadItem>>;

    /// Puts matching dead letters back to pending with their attempts reset.
    async fn dead_retry(&self, filter: &DeadFilter) -> Result<u64>;

    /// Deletes matching dead letters.
    async fn dead_purge(&self, filter: &DeadFilter) -> Result<u64>;

    /// Deletes up to `limit` done items that finished more than `age` ago,
    /// oldest first; their outputs stay. Returns how many were deleted.
    async fn prune_done(&self, age: Duration, limit: u32) -> Result<u64>;

    async fn status(&self) -> Result<Status>;

    /// A signal that fires when new work is enqueued, if the backend has one
    /// (Postgres `LISTEN/NOTIFY`); `None` means the caller must poll.
    async fn work_signal(&self) -> Result<Option<Box<dyn WorkSignal>>>;

    /// The outputs stored for a unit, oldest first, as (item ids, output JSON).
    async fn outputs(
        &self,
        task_type: &str,
        work_unit_key: &str,
    ) -> Result<Vec<(Vec<i64>, Option<String>)>>;
}

/// Wakes an idle host when items are enqueued, from any process.
#[async_trait::async_trait]
pub trait WorkSignal: Send {
    /// Waits for the next enqueue and returns its task type. Notifications
    /// are a hint, not a promise: they are database-wide (another deployment
    /// in another schema wakes this one too) and those sent while the listener
    /// was reconnecting are lost, so callers treat every return as "look for
    /// work now" and keep polling as the fallback.
    async fn next(&mut self) -> Result<String>;
}

/// How a backend inserts a batch of items: runs without dedupe keys in bulk
/// (one statement each), items with a dedupe key one at a time (each may hit
/// an existing item). Keeps input order, which is the units' processing order.
pub(crate) enum InsertRun<'a> {
    Bulk(&'a [NewItem]),
    Deduplicated(&'a NewItem),
}

pub(crate) fn insert_runs(mut items: &[NewItem]) -> impl Iterator<Item = InsertRun<'_>> {
    std::iter::from_fn(move || {
        let first = items.first()?;
        if first.dedupe_key.is_some() {
            items = &items[1..];
            return Some(InsertRun::Deduplicated(first));
        }
        let len = items
            .iter()
            .position(|i| i.dedupe_key.is_some())
            .unwrap_or(items.len());
        let (run, rest) = items.split_at(len);
        items = rest;
        Some(InsertRun::Bulk(run))
    })
}

/// Options shared by both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_payload_bytes: usize,
    /// Connections in the pool.
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_connections: 8,
        }
    }
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or
/// `postgres://...`.
pub async fn open(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PostgresStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact(url)))
    }
}

/// A database URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
