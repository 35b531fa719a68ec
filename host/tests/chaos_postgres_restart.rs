//! Three hosts share one Postgres queue while Postgres itself crashes and
//! restarts twice mid-run. Afterwards every item is done or dead exactly once,
//! with exactly one output per done item in the unit's order, and no unit was
//! ever held by two tasks at the same moment. And since each outage is far
//! shorter than a lease, every claim must live through it: no finished call's
//! outcome may be thrown away (issue 11: leases that nothing can fool,
//! outcomes never lost).
//!
//! The last two are checked from an audit log the test writes itself
//! ([`support::audit`]), not from the final state: every item's plugin call
//! makes one audited `llm` call that records which host made it, for which
//! unit, and when it began and ended (a drop guard closes calls the host
//! cancels). Two calls for one unit that overlap in time mean two live tasks
//! held that unit at once, even if the fence later kept one of them from
//! writing. The final state alone cannot show that: a second holder whose
//! writes were refused leaves no trace in the database, and its side effects
//! (the LLM call a real plugin pays for, the webhook it sends) happened.
//!
//! Postgres runs as a private cluster the test starts with `initdb`/`pg_ctl`
//! on a free port ([`support::pg_cluster`]), so crashing it does not disturb
//! the other tests using the machine's Postgres. Each crash is
//! `pg_ctl stop -m immediate` (no checkpoint, WAL still in memory is lost),
//! then a restart with crash recovery. The first comes as soon as every slot
//! of every host runs its first call (every claim so far is in memory only),
//! the second right after the last fresh unit was claimed, when hosts that
//! finish a unit have free slots and nothing else to claim: moments when a
//! lost claim is likely to be taken by a second host while its first holder
//! still runs it. The cluster's WAL writer flushes asynchronously committed
//! transactions only every 10 s (`wal_writer_delay`, within what Postgres
//! promises for `synchronous_commit = off`), so a crash loses whatever was
//! committed asynchronously since the last durable commit, as a failover to
//! an asynchronous replica can. A store whose claims and leases commit
//! durably is unaffected; one that commits claims asynchronously sees a unit
//! come back at an old claim number while its first holder still runs it
//! (issue 11, hole 1): a second holder runs it at the same time, or the first
//! holder's finished outcome is refused and the item runs again.
//!
//! The hosts renew their leases at different paces (as a mixed fleet does),
//! so after an outage they do not all come back in step.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::imports::Outbound;
use sluice::runtime::{Registry, registry};
use sluice::store::{self, NewItem, Store, StoreOptions, WorkerInfo};
use sluice::worker::{Host, HostParts};
use support::audit::{self, AuditLog};
use support::host;
use support::pg_cluster::PgCluster;

const HOSTS: usize = 3;
const SLOTS: u32 = 4;
const UNITS: usize = 36;
/// How long each audited call takes: long enough that a call running when
/// Postgres crashes is still running when the server is back.
const CALL: Duration = Duration::from_millis(1500);
/// How long Postgres stays down at each crash.
const DOWN: Duration = Duration::from_millis(200);
const TASK: &str = "llm-call";

/// Two to five items per unit.
fn items_in(unit: usize) -> usize {
    2 + unit % 4
}

/// The items of units `units`, interleaved by position as producers enqueue
/// them, so that per-unit order is a real check.
fn units_items(units: std::ops::Range<usize>) -> Vec<NewItem> {
    let mut items = Vec::new();
    for n in 0..5 {
        for unit in units.clone() {
            if n < items_in(unit) {
                let key = format!("unit-{unit}");
                items.push(NewItem {
                    task_type: TASK.into(),
                    payload: audit::payload(&key, n),
                    work_unit_key: key,
                    tokens: 0,
                    dedupe_key: None,
                    run_after: None,
                });
            }
        }
    }
    items
}

/// Extra `postgresql.conf` lines: the WAL writer flushes asynchronous commits
/// only every 10 s, so a crash loses all of them since the last durable commit.
const SETTINGS: &str = "wal_writer_delay = '10s'\nwal_writer_flush_after = '64MB'\n";

/// A host with its own store (its own pool, as a separate process would
/// have), the adversary plugin, and the audited outbound.
async fn start_host(url: &str, n: usize, outbound: Arc<dyn Outbound>) -> Host {
    let store = store::open(
        url,
        StoreOptions {
            max_connections: 6,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("open the store");
    let mut config = host::fast_config(SLOTS);
    // Longer than an outage, so leases of live hosts survive each crash.
    config.lease = Duration::from_secs(4);
    // Hosts renew at different paces (1.5 s, 0.9 s, 0.3 s: all well within
    // the lease), so after an outage they do not all come back in step.
    config.heartbeat_interval = Duration::from_millis(1500 - 600 * n as u64);
    config
        .tasks
        .insert(TASK.into(), host::task(Duration::from_secs(30), 10));
    let runtime = support::runtime(SLOTS);
    let plugin = registry::load_file(&runtime, &support::adversary_wasm())
        .await
        .expect("the adversary plugin loads");
    Host::start(HostParts {
        config: Arc::new(config),
        store,
        registry: Arc::new(Registry::from_plugins(vec![Arc::new(plugin)])),
        outbound,
        worker: WorkerInfo {
            id: format!("chaos-host-{n}-{}", std::process::id()),
            host_name: format!("host-{n}"),
            pid: std::process::id(),
            version: "test".into(),
            task_types: Vec::new(),
        },
    })
    .await
    .expect("the host starts")
}

/// Item counts by state, or `None` while the database does not answer.
async fn states(store: &dyn Store) -> Option<BTreeMap<String, i64>> {
    let status = store.status().await.ok()?;
    Some(
        status
            .depths
            .into_iter()
            .filter(|d| d.task_type == TASK)
            .map(|d| (d.state, d.count))
            .collect(),
    )
}

/// Polls `check` every 10 ms until it holds or `limit` passes; whether it held.
async fn holds_within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_ride_out_two_postgres_crashes_and_never_hold_a_unit_twice() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(|| PgCluster::start(SETTINGS))
            .await
            .unwrap(),
    );
    let url = cluster.url();
    let admin = store::open(&url, StoreOptions::default())
        .await
        .expect("open the private cluster");
    admin.migrate().await.expect("migrate");

    let audit = AuditLog::new(CALL);
    let mut hosts = Vec::new();
    for n in 0..HOSTS {
        hosts.push(start_host(&url, n, audit.outbound(&format!("host-{n}"))).await);
    }

    let items = units_items(0..UNITS);
    let total = items.len();
    let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (item, enqueued) in items.iter().zip(admin.enqueue(&items).await.unwrap()) {
        ids.entry(item.work_unit_key.clone())
            .or_default()
            .push(enqueued.id);
    }

    let mut problems: Vec<String> = Vec::new();
    let mut crashes = Vec::new();
    let slots = HOSTS * SLOTS as usize;
    for crash in 0..2 {
        let ready = if crash == 0 {
            // First crash: every slot of every host has just begun its first
            // call, so every claim so far exists only in memory.
            holds_within(Duration::from_secs(60), || async {
                audit.open().len() >= slots
            })
            .await
        } else {
            // Second crash: right after the last fresh unit was claimed (its
            // first call just began), when hosts that finish a unit have
            // free slots and nothing else to claim.
            holds_within(Duration::from_secs(60), || async {
                let calls = audit.calls();
                let begun: BTreeSet<&str> = calls.iter().map(|c| c.key.as_str()).collect();
                begun.len() == UNITS
            })
            .await
        };
        assert!(
            ready,
            "setup: the moment for crash {} never came ({} calls so far, {} running)",
            crash + 1,
            audit.calls().len(),
            audit.open().len()
        );
        let crashed_at = Instant::now();
        let restarting = cluster.clone();
        tokio::task::spawn_blocking(move || restarting.crash_and_restart(DOWN))
            .await
            .unwrap();
        crashes.push(format!(
            "crash at {:.3}s, back at {:.3}s",
            audit.at(crashed_at),
            audit.at(Instant::now())
        ));
    }

    let finished = holds_within(Duration::from_secs(90), || async {
        states(admin.as_ref()).await.is_some_and(|s| {
            s.get("done").copied().unwrap_or(0) + s.get("dead").copied().unwrap_or(0)
                == total as i64
        })
    })
    .await;
    if !finished {
        problems.push(format!(
            "the queue did not finish within 90 s of the second restart: {:?}",
            states(admin.as_ref()).await
        ));
    }
    for host in &hosts {
        host.shutdown(Duration::from_secs(10)).await;
    }

    // No unit held twice at the same moment.
    let overlaps = audit.overlaps();
    if !overlaps.is_empty() {
        problems.push(format!(
            "{} pairs of calls for one unit overlapped in time (a unit held twice at once):\n  {}",
            overlaps.len(),
            overlaps
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    let open = audit.open();
    if !open.is_empty() {
        problems.push(format!(
            "{} calls were still running after every host shut down: {open:?}",
            open.len()
        ));
    }

    // Every item done or dead exactly once; one output per done item, in order.
    let state = states(admin.as_ref()).await.expect("the database answers");
    let dead: BTreeSet<i64> = admin
        .dead_list(None, 100_000)
        .await
        .expect("dead list")
        .into_iter()
        .filter(|d| d.task_type == TASK)
        .map(|d| d.id)
        .collect();
    let done = state.get("done").copied().unwrap_or(0);
    if done + dead.len() as i64 != total as i64 || state.len() > 2 {
        problems.push(format!(
            "items by state {state:?} ({} dead letters): every one of the {total} items must be done or dead",
            dead.len()
        ));
    }
    let mut written_calls = BTreeSet::new();
    for (key, expected) in &ids {
        let outputs = admin.outputs(TASK, key).await.expect("outputs");
        written_calls.extend(
            outputs
                .iter()
                .filter_map(|o| audit::call_of(o.output.as_deref())),
        );
        let written: Vec<i64> = outputs.into_iter().flat_map(|o| o.item_ids).collect();
        let expected: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|id| !dead.contains(id))
            .collect();
        if written != expected {
            problems.push(format!(
                "{key}: outputs for items {written:?}, expected each done item once in order: {expected:?}"
            ));
        }
    }
    // Each outage is far shorter than a lease, so every claim lives through
    // it and every finished call's outcome can be written once the database
    // is back: an answered call whose outcome is not the one written was
    // thrown away, and its item ran again.
    let thrown_away = audit.thrown_away(&written_calls);
    if !thrown_away.is_empty() {
        problems.push(format!(
            "{} finished calls' outcomes were thrown away (answered, never written; the item ran again): {}",
            thrown_away.len(),
            thrown_away
                .iter()
                .take(12)
                .map(|c| audit.describe(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The workload has no poison and ten attempts: a dead letter here is a
    // finished call's outcome thrown away because of the outage.
    if !dead.is_empty() {
        let letters = admin.dead_list(None, 20).await.unwrap_or_default();
        problems.push(format!(
            "{} items were dead-lettered though every call succeeded: {:?}",
            dead.len(),
            letters
                .iter()
                .map(|d| (d.id, d.work_unit_key.clone(), d.last_error.clone()))
                .collect::<Vec<_>>()
        ));
    }

    let calls = audit.calls();
    assert!(
        problems.is_empty(),
        "{} problems ({}; {} calls for {total} items, {} answered):\n- {}",
        problems.len(),
        crashes.join(", "),
        calls.len(),
        calls.iter().filter(|c| c.answered).count(),
        problems.join("\n- ")
    );
}
