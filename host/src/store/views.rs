//! What the operator's dashboard reads ([`crate::ui`]) besides what the HTTP
//! API reads: per task type figures from the unit counters, units by key,
//! hosts with the claims they hold, and the last hour's completions. Each
//! answers from the unit rows, the workers and leases tables and the items'
//! partial indexes (dead, and done by finish time), never from a walk over
//! all items, so the pages stay fast with millions of pending items.

use serde::Serialize;

/// One task type at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TaskTypeOverview {
    pub task_type: String,
    /// Pending items: the sum of its units' counters.
    pub pending: i64,
    /// When its oldest pending item was enqueued (ms since the Unix epoch).
    pub oldest_pending_ms: Option<i64>,
    /// Units a host has claimed now.
    pub claimed_units: i64,
    /// Items completed within the window the overview was asked for.
    pub done_recently: i64,
    pub dead: i64,
}

/// Completions and dead letters in one minute, over all task types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MinuteCounts {
    /// The minute's start, in ms since the Unix epoch.
    pub minute_ms: i64,
    pub done: i64,
    pub dead: i64,
}

/// The queue at a glance, by the database's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub now_ms: i64,
    pub task_types: Vec<TaskTypeOverview>,
    /// Minutes of the window with any completion or dead letter, oldest first.
    pub minutes: Vec<MinuteCounts>,
    /// Per task type, over the latest [`RECENT_CALLS`] calls of any type.
    pub calls: Vec<CallStats>,
}

/// How many of the latest calls the overview's call figures cover: a walk
/// back along the outputs' primary key, bounded whatever the throughput.
pub const RECENT_CALLS: u32 = 1000;

/// Calls of one task type, from the hosts' records of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStats {
    pub task_type: String,
    pub calls: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub llm_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Figures per task type from `(task_type, call record JSON)` rows; records
/// that do not parse are skipped.
pub(crate) fn call_stats(rows: &[(String, String)]) -> Vec<CallStats> {
    let mut by_type: std::collections::BTreeMap<&str, (Vec<u64>, [u64; 3])> = Default::default();
    for (task_type, call) in rows {
        let Ok(call) = serde_json::from_str::<serde_json::Value>(call) else {
            continue;
        };
        let (durations, usage) = by_type.entry(task_type).or_default();
        durations.push(call["duration_ms"].as_u64().unwrap_or_default());
        for (slot, key) in usage
            .iter_mut()
            .zip(["llm_calls", "input_tokens", "output_tokens"])
        {
            *slot += call["usage"][key].as_u64().unwrap_or_default();
        }
    }
    by_type
        .into_iter()
        .map(
            |(task_type, (mut durations, [llm_calls, input_tokens, output_tokens]))| {
                durations.sort_unstable();
                let at = |q: f64| durations[((durations.len() - 1) as f64 * q).round() as usize];
                CallStats {
                    task_type: task_type.to_string(),
                    calls: durations.len() as u64,
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    llm_calls,
                    input_tokens,
                    output_tokens,
                }
            },
        )
        .collect()
}

/// A work unit's row: its counters and its claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnitRecord {
    pub task_type: String,
    pub work_unit_key: String,
    pub pending_count: i64,
    pub pending_tokens: i64,
    pub oldest_pending_ms: Option<i64>,
    /// Not claimed before this time (a backoff after a failure).
    pub available_at_ms: i64,
    /// The worker (host process) holding the claim.
    pub claimed_by: Option<String>,
    /// When that worker's lease runs out.
    pub lease_expires_ms: Option<i64>,
    /// Its last attempt timed out or trapped.
    pub suspect: bool,
}

/// A host process with what it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HostRecord {
    pub id: String,
    pub host_name: String,
    pub pid: i64,
    pub version: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    /// The task types its plugins serve, as it recorded them (a JSON array).
    pub task_types: Option<String>,
    /// When it began draining (a first SIGTERM or SIGINT); `None` while it runs.
    pub draining_since_ms: Option<i64>,
    /// Units it has claimed: the slots it uses.
    pub claimed_units: i64,
    pub lease_expires_ms: Option<i64>,
}

/// Every host process the database knows, by its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hosts {
    pub now_ms: i64,
    pub hosts: Vec<HostRecord>,
}
