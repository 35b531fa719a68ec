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
//! available time, and its claim: the owner and a `claim_token`, a random
//! number drawn afresh for every claim. Every write a worker makes after
//! claiming is *fenced* by that token: once the claim was reaped or taken
//! over, the write changes nothing and reports [`StoreError::ClaimLost`].
//! Tokens are random rather than counted so that a database that lost its
//! last commits in a crash can never hand the same token out twice.
//!
//! Leases belong to host processes, not to units: one row per worker in
//! `sluice_leases`, which no producer's transaction ever touches, so a
//! heartbeat is one short write that cannot wait behind a producer. A unit's
//! claim lives while its owner's lease does; the reaper takes the units of
//! owners whose lease ran out.
//!
//! The items a claim has in flight are recorded on its unit as an id range
//! (`in_flight_from ..= in_flight_through`), on both backends: a batch is
//! always a unit's first pending items, so the pending items in that range are
//! exactly the batch. After a batch of several items fails, the unit *narrows*
//! ([`failure`]): its next batches are smaller until the failing item is
//! alone, and only that item is charged attempts.

mod backoff;
mod error;
mod failure;
mod group;
mod item_input;
pub mod postgres;

pub mod sqlite;
pub(crate) mod validate;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::redact_url;

pub use backoff::RetryPolicy;
pub(crate) use item_input::{ItemInput, parse_delay, parse_time};
pub use validate::{MAX_KEY_BYTES, MAX_PAYLOAD_DEPTH, MAX_TASK_TYPE_BYTES};

/// Largest payload accepted by default: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Rows deleted per statement by retention and purges: small enough that each
/// delete is a short transaction beside the hosts' own writes.
pub const DELETE_BATCH: u32 = 1_000;

/// An item to enqueue. Read from JSON through [`item_input`], which takes
/// `run_after` as an RFC 3339 time and `delay` as a duration ("90s").
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "item_input::ItemInput")]
pub struct NewItem {
    pub task_type: String,
    pub work_unit_key: String,
    /// A JSON document, as text.
    pub payload: String,
    /// A size hint for batching (such as an LLM token count).
    pub tokens: u32,
    /// A second pending item with the same task type and dedupe key is not
    /// enqueued; its enqueue returns the first one's id.
    pub dedupe_key: Option<String>,
    /// Not fetched before then; the unit's later items wait behind it.
    pub run_after: Option<RunAfter>,
}

/// When a delayed item may first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAfter {
    /// At this time, in ms since the Unix epoch.
    At(i64),
    /// This long after the database's clock at the enqueue.
    Delay(Duration),
}

impl RunAfter {
    /// The two columns a backend binds: an absolute time and a delay in ms,
    /// of which at most one is set (the SQL adds the delay to its own clock).
    pub(crate) fn columns(run_after: Option<Self>) -> (Option<i64>, Option<i64>) {
        match run_after {
            None => (None, None),
            Some(Self::At(ms)) => (Some(ms), None),
            Some(Self::Delay(delay)) => (None, Some(delay.as_millis() as i64)),
        }
    }
}

/// What enqueueing one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// Random, drawn for this claim alone: no other claim on this unit, before
    /// or after, carries the same token.
    pub token: i64,
    pub worker: String,
}

/// A claim, and whether its unit is a suspect: its last attempt timed out or
/// trapped, so the host lets such units hold only a share of its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub claim: Claim,
    pub suspect: bool,
}

/// A claim taken together with its unit's first batch (see
/// [`Store::claim_batches`]): the batch's items are already in flight under
/// the claim, as if [`Store::fetch_batch`] had taken them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedBatch {
    pub claimed: Claimed,
    /// Empty when the unit's first pending item is not due yet.
    pub items: Vec<Item>,
}

/// When a store last wrote each worker's lease (a claim or a heartbeat), so
/// that claims between heartbeats need not write it again: the heartbeat
/// renews it long before it runs out.
#[derive(Default)]
pub(crate) struct RecentLeases(
    std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
);

impl RecentLeases {
    /// Whether `worker`'s lease of `lease` was written so recently that most
    /// of it is left.
    pub(crate) fn fresh(&self, worker: &str, lease: Duration) -> bool {
        self.lock()
            .get(worker)
            .is_some_and(|written| written.elapsed() < lease / 4)
    }

    /// Records that `worker`'s lease was written by a statement sent at `at`.
    pub(crate) fn written(&self, worker: &str, at: std::time::Instant) {
        self.lock().insert(worker.to_string(), at);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::time::Instant>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What became of each of `claims` in a bulk release, given the units and
/// tokens its statement returned: released, or [`StoreError::ClaimLost`].
pub(crate) fn released_of(claims: &[Claim], released: &[(String, String, i64)]) -> Vec<Result<()>> {
    claims
        .iter()
        .map(|claim| {
            let held = released.iter().any(|(task_type, key, token)| {
                *token == claim.token
                    && *task_type == claim.task_type
                    && *key == claim.work_unit_key
            });
            held.then_some(())
                .ok_or_else(|| StoreError::claim_lost(claim))
        })
        .collect()
}

/// A fresh base for the claim tokens of one claim round trip: each unit the
/// round claims gets the base plus a small number that differs between the
/// round's units (its position, or its row id). A random 62-bit base leaves
/// room for that number without overflow.
pub(crate) fn token_base() -> i64 {
    fastrand::i64(1..(1 << 62))
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
/// `max_tokens` tokens, but always at least one item. A claim
/// ([`Store::claim_batches`]) with [`BatchLimits::NONE`] takes no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_items: u32,
    pub max_tokens: u64,
}

impl BatchLimits {
    /// No batch at all: a claim alone.
    pub const NONE: BatchLimits = BatchLimits {
        max_items: 0,
        max_tokens: 0,
    };
}

/// One successful call's outcome: the items it completed, its output, the
/// items it asked to enqueue and the host's record of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub item_ids: Vec<i64>,
    pub output: Option<String>,
    pub follow_up: Vec<NewItem>,
    /// The host's JSON record of the call (plugin, attempt, duration,
    /// outbound usage), stored beside the output.
    pub call: Option<String>,
}

/// A claim's completions to write, in order, all or none, fenced by the
/// claim. With `release_if_drained`, the same transaction gives the unit back
/// when these completions leave it nothing pending, which saves the unit
/// task a fetch that would find nothing and a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub claim: Claim,
    pub completions: Vec<Completion>,
    pub release_if_drained: bool,
}

impl Commit {
    /// Every item the commit completes, in its completions' order.
    pub fn item_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.completions
            .iter()
            .flat_map(|c| c.item_ids.iter().copied())
    }
}

/// What writing one [`Commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The items are done; the claim is still held.
    Done,
    /// The items are done and the unit, left with nothing pending, was
    /// released with them.
    Released,
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
    /// The item failed alone and is out of attempts (or the failure was
    /// permanent): it was dead-lettered; the unit goes on with the next item.
    DeadLettered(i64),
    /// A batch of several items failed: nobody was charged an attempt, and
    /// the unit's next batches hold at most `batch` items until the failing
    /// one is found. The unit is available again at `retry_at_ms`.
    Narrowed { batch: u32, retry_at_ms: i64 },
}

/// Per-task-type retry policies, with a default for the rest.
#[derive(Debug, Clone, Default)]
pub struct RetryPolicies {
    pub default: RetryPolicy,
    pub by_task_type: BTreeMap<String, RetryPolicy>,
    /// Only the listed task types have a policy: the reaper leaves units of
    /// other task types to a host that runs them (and knows their policy).
    pub listed_only: bool,
}

impl RetryPolicies {
    /// The policy for `task_type`; `None` when only listed types have one.
    pub fn get(&self, task_type: &str) -> Option<&RetryPolicy> {
        match self.by_task_type.get(task_type) {
            Some(policy) => Some(policy),
            None if self.listed_only => None,
            None => Some(&self.default),
        }
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

/// What one call returned for a unit, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutput {
    /// The items the call completed.
    pub item_ids: Vec<i64>,
    /// The output JSON, if the call returned one.
    pub output: Option<String>,
    pub created_at_ms: i64,
    /// The host's JSON record of the call (plugin and version, attempt,
    /// duration, outbound usage); `None` for outputs stored before it.
    pub call: Option<String>,
}

/// Depth and oldest age of items for one task type and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueDepth {
    pub task_type: String,
    pub state: String,
    pub count: i64,
    pub oldest_created_at_ms: Option<i64>,
}

/// A snapshot of the queue for `sluice status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub now_ms: i64,
    pub depths: Vec<QueueDepth>,
    pub claimed_units: i64,
    pub workers: Vec<WorkerStatus>,
    /// Task types no host claims until they are resumed.
    pub paused: Vec<PausedTaskType>,
    /// Task types with pending items that no running host serves
    /// ([`Store::unserved_task_types`]).
    pub unserved_task_types: Vec<String>,
    /// LLM providers' circuit breakers and spend, as the running hosts
    /// published them ([`Store::publish_flow`]).
    pub flow: crate::flow::FlowStatus,
}

/// A task type an operator paused (`sluice pause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PausedTaskType {
    pub task_type: String,
    pub paused_at_ms: i64,
}

/// How recently a host must have been seen (its heartbeat writes
/// `last_seen`) to count as running, for [`Store::unserved_task_types`].
pub const RUNNING_HOST_SEEN_WITHIN: Duration = Duration::from_secs(60);

/// A registered host process and when it was last heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// The task types its plugins serve ([`crate::worker::Host::start`]
    /// records its registry's).
    pub task_types: Vec<String>,
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
    /// The database cannot take the write now (connection lost, server
    /// restarting, disk full, locked, out of resources): nothing was written,
    /// and the same write may succeed later.
    #[error("the database is unavailable ({0}); nothing was written, and the write can be retried")]
    Unavailable(#[source] sqlx::Error),
    /// Another transaction holds a row this write needs (a producer's open
    /// transaction on the unit, say): nothing was written, the write can be
    /// retried, and the rest of the database is fine.
    #[error(
        "a row this write needs is held by another transaction ({0}); nothing was written, and the write can be retried"
    )]
    Contended(#[source] sqlx::Error),
    /// The database refused the write itself (a constraint, a value it cannot
    /// store): nothing was written, and the same write will be refused again.
    #[error("the database refused the write ({0}); nothing was written")]
    Refused(#[source] sqlx::Error),
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
}

impl From<sqlx::Error> for StoreError {
    /// Sorts a database error into [`StoreError::Unavailable`] (an outage to
    /// wait out), [`StoreError::Contended`] (one row is busy) or
    /// [`StoreError::Refused`] (a refusal that will recur), by the backend
    /// that raised it ([`error`]).
    fn from(err: sqlx::Error) -> Self {
        match error::kind(&err) {
            error::Kind::Outage => Self::Unavailable(err),
            error::Kind::Contention => Self::Contended(err),
            error::Kind::Refusal => Self::Refused(err),
        }
    }
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

    /// Whether Sluice's tables exist here at all (`migrate` ran once): what
    /// tells a database with a pending migration from the wrong database.
    async fn has_schema(&self) -> Result<bool>;

    /// Enqueues `items` in one transaction, after checking all of them: one bad
    /// item and nothing is written. Returns one result per item, in order.
    async fn enqueue(&self, items: &[NewItem]) -> Result<Vec<Enqueued>>;

    /// Claims up to `max_units` ready units of the given task types for
    /// `worker`, oldest ready first, and makes sure the worker's lease runs at
    /// least `lease` from now.
    async fn claim(
        &self,
        worker: &str,
        task_types: &[Claimable],
        max_units: u32,
        lease: Duration,
    ) -> Result<Vec<Claim>> {
        let claimed = self
            .claim_units(worker, task_types, max_units, max_units, lease)
            .await?;
        Ok(claimed.into_iter().map(|c| c.claim).collect())
    }

    /// As [`Store::claim`], but at most `max_suspects` of the units claimed
    /// may be suspects (see [`Store::set_suspect`]); says which ones are.
    async fn claim_units(
        &self,
        worker: &str,
        task_types: &[Claimable],
        max_units: u32,
        max_suspects: u32,
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let none = vec![BatchLimits::NONE; task_types.len()];
        let claimed = self
            .claim_batches(worker, task_types, &none, max_units, max_suspects, lease)
            .await?;
        Ok(claimed.into_iter().map(|c| c.claimed).collect())
    }

    /// As [`Store::claim_units`], and takes each claimed unit's first batch
    /// (within `batches[i]` for a unit of `task_types[i]`; none for
    /// [`BatchLimits::NONE`]) in the same durable write, so a unit costs no
    /// fetch of its own before its first call. `batches` is as long as
    /// `task_types`.
    async fn claim_batches(
        &self,
        worker: &str,
        task_types: &[Claimable],
        batches: &[BatchLimits],
        max_units: u32,
        max_suspects: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedBatch>>;

    /// Marks the unit under `claim` as a suspect (its last attempt timed out
    /// or trapped) or clears the mark; fenced by the claim. Call it before the
    /// write that releases the claim.
    async fn set_suspect(&self, claim: &Claim, suspect: bool) -> Result<()>;

    /// The unit's next pending items in id order within `limits`, marked as in
    /// flight under `claim`. Empty when the unit has nothing pending.
    async fn fetch_batch(&self, claim: &Claim, limits: BatchLimits) -> Result<Vec<Item>>;

    /// Extends `worker`'s lease to `lease` from now (even if it had run out:
    /// claims the reaper has not taken yet are still the worker's) and records
    /// that it is alive. Never waits long on a lock. Returns the claims the
    /// worker holds: any running unit not among them has lost its claim.
    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Vec<Claim>>;

    /// Records `worker`'s flow report (a JSON [`crate::flow::FlowReport`]:
    /// its breakers and spend) in its worker row, for `sluice status`.
    async fn publish_flow(&self, worker: &str, report: &str) -> Result<()>;

    /// Writes several claims' completions in one transaction (group commit):
    /// for each [`Commit`], in order, marks its items done, stores each
    /// completion's output and enqueues its follow-ups, fenced by its claim.
    /// Each commit lands whole or not at all, and on its own: one whose claim
    /// is lost ([`StoreError::ClaimLost`]), whose items are not in flight
    /// ([`StoreError::NotInFlight`]), whose unit row another transaction
    /// holds ([`StoreError::Contended`]) or whose follow-ups are invalid
    /// ([`StoreError::InvalidItem`]) changes nothing and does not hold up
    /// the others. A write the database refuses is retried commit by commit,
    /// so only the commit it belongs to reports [`StoreError::Refused`]. The
    /// outer error means nothing was written (the database is unavailable).
    /// A claim appears in at most one of `commits` (its completions go in
    /// one [`Commit`]); a unit task waits for its commit before the next.
    async fn commit(&self, commits: &[Commit]) -> Result<Vec<Result<Committed>>>;

    /// Marks `item_ids` done, stores `output` against them and enqueues
    /// `follow_up`, in one transaction fenced by `claim` (a [`Store::commit`]
    /// of one completion).
    async fn complete(
        &self,
        claim: &Claim,
        item_ids: &[i64],
        output: Option<&str>,
        follow_up: &[NewItem],
        call: Option<&str>,
    ) -> Result<()> {
        let commit = Commit {
            claim: claim.clone(),
            completions: vec![Completion {
                item_ids: item_ids.to_vec(),
                output: output.map(str::to_string),
                follow_up: follow_up.to_vec(),
                call: call.map(str::to_string),
            }],
            release_if_drained: false,
        };
        let mut results = self.commit(std::slice::from_ref(&commit)).await?;
        results.pop().expect("one result per commit").map(|_| ())
    }

    /// Handles a failed call on the items in flight under `claim` and
    /// releases the claim: a single item is charged an attempt, then backed
    /// off or dead-lettered; a batch of several narrows the unit (see
    /// [`FailResult::Narrowed`]) without charging anyone.
    async fn fail(
        &self,
        claim: &Claim,
        failure: &Failure,
        policy: &RetryPolicy,
    ) -> Result<FailResult> {
        self.fail_through(claim, i64::MAX, failure, policy).await
    }

    /// [`Store::fail`] for a call on the in-flight items up to item
    /// `through` only: an item-mode unit fetches a run of items and calls
    /// them one at a time, so when one fails, the items after it were never
    /// called and are neither charged nor counted as part of the failure.
    async fn fail_through(
        &self,
        claim: &Claim,
        through: i64,
        failure: &Failure,
        policy: &RetryPolicy,
    ) -> Result<FailResult>;

    /// Gives the unit back without counting an attempt
    /// ([`StoreError::ClaimLost`] if the claim is not held).
    async fn release(&self, claim: &Claim) -> Result<()> {
        self.release_all(std::slice::from_ref(claim))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::claim_lost(claim)))
    }

    /// Gives the units of `claims` back without counting an attempt, in one
    /// write. Each release is fenced by its own claim: one whose claim is not
    /// held changes nothing and is answered [`StoreError::ClaimLost`]. The
    /// answers are in the order of `claims`.
    async fn release_all(&self, claims: &[Claim]) -> Result<Vec<Result<()>>>;

    /// Takes the claims of workers whose lease ran out: each counts as a
    /// failed call on the items it had in flight. Units of task types without
    /// a policy, and claims of `except_worker` (the reaper's own process,
    /// whose heartbeat looks after them), are left alone. Returns how many
    /// claims were reaped.
    async fn reap(&self, policies: &RetryPolicies, except_worker: Option<&str>) -> Result<u64>;

    /// Records a host process; its heartbeats then keep `last_seen` current.
    /// Claims still held under the same id (an earlier run that died) are
    /// handed to the reaper, so a restart never renews its own stale claims.
    async fn register_worker(&self, worker: &WorkerInfo) -> Result<()>;

    /// Deletes what nobody needs any more: workers not seen for `idle` that
    /// hold no claims (and their leases), and unit rows with nothing pending
    /// and no claim, last released more than `idle` ago (the next enqueue
    /// creates the row again). Up to `limit` rows of each; returns how many
    /// rows were deleted.
    async fn prune_idle(&self, idle: Duration, limit: u32) -> Result<u64>;

    async fn dead_list(&self, filter: Option<&DeadFilter>, limit: u32) -> Result<Vec<DeadItem>>;

    /// Puts matching dead letters back to pending with their attempts reset.
    async fn dead_retry(&self, filter: &DeadFilter) -> Result<u64>;

    /// Deletes matching dead letters.
    async fn dead_purge(&self, filter: &DeadFilter) -> Result<u64>;

    /// Deletes up to `limit` done items that finished more than `age` ago,
    /// oldest first; their outputs stay. Returns how many were deleted.
    async fn prune_done(&self, age: Duration, limit: u32) -> Result<u64>;

    /// Deletes up to `limit` outputs stored more than `age` ago, oldest
    /// first; rows another process is deleting are skipped. Returns how many
    /// were deleted.
    async fn prune_outputs(&self, age: Duration, limit: u32) -> Result<u64>;

    async fn status(&self) -> Result<Status>;

    /// Takes `cost_us` µs of the shared pace `key` (a rate every host on this
    /// database spends together) if it is paid off to within `burst_us` of
    /// now. Returns `None` when taken, or how long to wait before trying
    /// again (nothing is taken then).
    async fn take_pace(&self, key: &str, cost_us: i64, burst_us: i64) -> Result<Option<Duration>>;

    /// Moves the shared pace `key` by `delta_us` µs (a correction or a refund).
    async fn adjust_pace(&self, key: &str, delta_us: i64) -> Result<()>;

    /// Pauses (or with `paused` false, resumes) `task_type` on every host
    /// sharing this database: no host claims its units meanwhile. Returns
    /// whether anything changed (false: it was paused, or running, already).
    async fn set_paused(&self, task_type: &str, paused: bool) -> Result<bool>;

    /// A signal that fires when new work is enqueued, if the backend has one
    /// (Postgres `LISTEN/NOTIFY`); `None` means the caller must poll.
    async fn work_signal(&self) -> Result<Option<Box<dyn WorkSignal>>>;

    /// The outputs stored for a unit, oldest first.
    async fn outputs(&self, task_type: &str, work_unit_key: &str) -> Result<Vec<StoredOutput>>;

    // What producers ask about their items (the HTTP API): by primary key
    // and through the pending and dead indexes, never a scan of all items.

    /// One item in any state, with the output of the call that completed it
    /// (while outputs are kept); `None` when there is no such item (never
    /// enqueued, cancelled, or done and past `retain_done`).
    async fn item(&self, id: i64) -> Result<Option<ItemRecord>>;

    /// Pending and dead items matching `query`, in id order.
    async fn items(&self, query: &ItemQuery) -> Result<Vec<ItemRecord>>;

    /// Deletes a unit's pending items, except those a claim has in flight
    /// (they finish or fail as usual). Returns how many were cancelled.
    async fn cancel_pending(&self, task_type: &str, work_unit_key: &str) -> Result<u64>;

    /// Task types with pending items that no host seen within
    /// [`RUNNING_HOST_SEEN_WITHIN`] serves (hosts that did not record their
    /// task types count as serving all): items nobody will run until a host
    /// with a plugin for them starts.
    async fn unserved_task_types(&self) -> Result<Vec<String>>;

    // What the dashboard reads besides the above ([`views`]): from the unit
    // counters, the workers and leases, and the dead and done indexes.

    /// Per task type figures, and the items done and dead-lettered per
    /// minute within `window` of now.
    async fn overview(&self, window: Duration) -> Result<views::Overview>;

    /// Up to `limit` units of `task_type` whose key is `key_from` or sorts
    /// after it, in key order, with their claims.
    async fn units(
        &self,
        task_type: &str,
        key_from: &str,
        limit: u32,
    ) -> Result<Vec<views::UnitRecord>>;

    /// Every host process the database knows, with the units it holds.
    async fn hosts(&self) -> Result<views::Hosts>;

    /// Records that `worker` began draining (it claims nothing more), for
    /// [`Store::hosts`]; the first mark stands.
    async fn mark_draining(&self, worker: &str) -> Result<()>;
}

/// An item as producers see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ItemRecord {
    pub id: i64,
    pub task_type: String,
    pub work_unit_key: String,
    /// `pending`, `done` or `dead`.
    pub state: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub tokens: u32,
    pub dedupe_key: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Every failure, oldest first: `{"attempt", "at_ms", "error"}`.
    #[schema(value_type = Vec<Object>)]
    pub errors: serde_json::Value,
    pub created_at_ms: i64,
    /// Not fetched before this time (ms since the Unix epoch), if delayed.
    pub run_after_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// What the call that completed it returned (only from [`Store::item`]).
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
}

/// Which pending and dead items [`Store::items`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemQuery {
    pub task_type: Option<String>,
    pub work_unit_key: Option<String>,
    /// `pending` or `dead`; `None` for both.
    pub state: Option<String>,
    /// Only items with a larger id (the cursor of the previous page).
    pub after_id: i64,
    pub limit: u32,
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
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}
