//! SQLite on a disk that fills up mid-run and is then freed (issue 11, hole 6).
//!
//! A host that cannot write must stop claiming and say so: `/readyz` not
//! ready while writes fail, no new claims, finished outcomes kept until they
//! can be written, and the writer connection clean again once space is back.
//! Today the first `database or disk is full` inside a transaction leaves
//! sqlx's transaction depth on the store's one writer connection at 1 for
//! good (SQLite rolled the transaction back itself, so sqlx's queued
//! `ROLLBACK` fails and the depth is never decremented); every later
//! `BEGIN IMMEDIATE` then fails with "attempted to call begin_with at
//! non-zero transaction depth" while autocommit claims still succeed, so the
//! host claims, runs and throws away outcomes forever.
//!
//! The database lives on a small tmpfs the test mounts ([`support::tmpfs`]);
//! a filler file fills it and deleting the filler frees it. The test cannot
//! see inside the host, so it measures from outside:
//!
//! - when writes fail: a probe connection of the test's own inserts a small
//!   row now and then (SQLite can still append into the write-ahead log's
//!   spare room for a moment after the disk is full, so "the disk filled" is
//!   the moment the probe first fails, not the moment the filler was written);
//! - claims: every item's plugin call makes one audited `llm` call
//!   ([`support::audit`]); a call that begins means a unit was claimed and
//!   its batch fetched;
//! - side effects per item: the audited calls, against the outputs stored.

mod support;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::store::{self, NewItem, Store, StoreOptions};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use support::audit::{self, AuditLog};
use support::host::{self, http_get};
use support::tmpfs::Tmpfs;

const TASK: &str = "llm-call";

fn item(key: &str, payload: String) -> NewItem {
    NewItem {
        task_type: TASK.into(),
        work_unit_key: key.into(),
        payload,
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
}

async fn open_on(disk: &Tmpfs) -> (String, Arc<dyn Store>) {
    let url = format!("sqlite://{}", disk.path().join("queue.db").display());
    let store = store::open(&url, StoreOptions::default())
        .await
        .expect("open the store on the tmpfs");
    store.migrate().await.expect("migrate");
    (url, store)
}

/// The store alone: a transactional write that fails because the disk is
/// full must leave the writer clean, so writes succeed again as soon as
/// there is space, and a failed write changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_writer_comes_back_clean_after_the_disk_fills() {
    let disk = Tmpfs::mount("16m");
    let (_url, store) = open_on(&disk).await;
    store.enqueue(&[item("k", "{}".into())]).await.unwrap();
    let mut enqueued = 1;

    disk.fill();
    // Each enqueue adds about 256 KiB: the write-ahead log's spare room runs
    // out within a few of them.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(64 * 1024));
    let mut failure = None;
    for _ in 0..200 {
        match store.enqueue(&vec![item("k", big.clone()); 4]).await {
            Ok(_) => enqueued += 4,
            Err(err) => {
                failure = Some(err.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("setup: with the disk full an enqueue of 256 KiB must fail");

    disk.free();
    let mut after = Vec::new();
    for _ in 0..10 {
        match store.enqueue(&[item("k", "{}".into())]).await {
            Ok(_) => {
                enqueued += 1;
                break;
            }
            Err(err) => after.push(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        after.len() < 10,
        "after the disk filled ({failure}) and space came back, the writer never recovered: \
         10 enqueues in a row failed, the first with: {}; the last with: {}",
        after[0],
        after[9]
    );
    assert_eq!(
        host::count(store.as_ref(), TASK, "pending").await,
        enqueued,
        "the enqueues that failed must have changed nothing, the others are all there"
    );
}

/// A connection of the test's own that tells whether a small write lands now.
struct Probe(SqliteConnection);

impl Probe {
    async fn open(url: &str) -> Self {
        let options = SqliteConnectOptions::from_str(url)
            .unwrap()
            .busy_timeout(Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .expect("the probe connects");
        sqlx::query("CREATE TABLE IF NOT EXISTS fault_probe (b BLOB)")
            .execute(&mut conn)
            .await
            .expect("create the probe table");
        Self(conn)
    }

    /// Whether a row of 2 KB (less than any commit of an outcome writes) lands.
    async fn writes(&mut self) -> bool {
        sqlx::query("INSERT INTO fault_probe VALUES (randomblob(2000))")
            .execute(&mut self.0)
            .await
            .is_ok()
    }
}

const UNITS: usize = 30;
const PER_UNIT: usize = 4;
const SLOTS: u32 = 4;
/// How long each plugin call's side effect takes.
const CALL: Duration = Duration::from_millis(300);
/// How long the disk stays full once writes fail.
const FULL_FOR: Duration = Duration::from_secs(6);
/// After writes start failing, this long for the host to notice (its running
/// calls end and their commits fail) before it must have stopped claiming
/// and reporting ready.
const GRACE: Duration = Duration::from_secs(2);

/// The host and its probes: while the disk is full, no claims and not
/// ready; once space is back, every item done with one output, no finished
/// outcome thrown away, and each item's side effect at most once more than
/// the calls in flight when the writes began to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_claims_and_loses_no_finished_outcome() {
    let disk = Tmpfs::mount("24m");
    let (url, store) = open_on(&disk).await;
    let mut items = Vec::new();
    for n in 0..PER_UNIT {
        for unit in 0..UNITS {
            let key = format!("unit-{unit}");
            items.push(item(&key, audit::payload(&key, n)));
        }
    }
    let total = items.len();
    let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (item, enqueued) in items.iter().zip(store.enqueue(&items).await.unwrap()) {
        ids.entry(item.work_unit_key.clone())
            .or_default()
            .push(enqueued.id);
    }
    let mut probe = Probe::open(&url).await;

    let audit = AuditLog::new(CALL);
    let mut config = host::fast_config(SLOTS);
    // Far longer than the outage (the full period, then the recovery): the
    // test is about the full disk, not about leases expiring during it.
    config.lease = Duration::from_secs(20);
    config
        .tasks
        .insert(TASK.into(), host::task(Duration::from_secs(30), 10));
    let host = host::start(store.clone(), config, audit.outbound("host")).await;
    let addr = sluice::api::bind(
        "127.0.0.1:0".parse().unwrap(),
        host.clone(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    host::wait_until("work is under way", Duration::from_secs(60), || async {
        host::count(store.as_ref(), TASK, "done").await >= 20
    })
    .await;
    assert_eq!(
        http_get(addr, "/readyz").await.0,
        200,
        "ready before the fault"
    );

    // Fill the disk, then find when writes really fail.
    let filled_at = Instant::now();
    disk.fill();
    let mut failing_since = None;
    while filled_at.elapsed() < Duration::from_secs(30) {
        if !probe.writes().await {
            failing_since = Some(Instant::now());
            break;
        }
    }
    let first_failure =
        failing_since.expect("setup: with the disk full, the probe's writes must start failing");
    // Items whose call ran at some point between the fill and the failure.
    let in_flight: Vec<(String, usize)> = audit
        .calls()
        .into_iter()
        .filter(|c| c.start <= first_failure && c.end.is_none_or(|end| end >= filled_at))
        .map(|c| (c.key, c.n))
        .collect();

    // Watch the host while the disk stays full.
    let mut readyz = Vec::new();
    let mut probe_recoveries = 0;
    while first_failure.elapsed() < FULL_FOR {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let status = http_get(addr, "/readyz").await.0;
        readyz.push((Instant::now(), status));
        if probe.writes().await {
            // A write landed in the log's spare room: the full period starts over.
            probe_recoveries += 1;
            failing_since = None;
        } else if failing_since.is_none() {
            failing_since = Some(Instant::now());
        }
    }
    let window_end = Instant::now();
    let mut problems = Vec::new();
    match failing_since {
        None => problems.push(
            "setup: the probe's last write during the full period landed; the disk was not full"
                .to_string(),
        ),
        Some(since) => {
            let checked_from = since + GRACE;
            let claimed: Vec<String> = audit
                .started_since(checked_from)
                .into_iter()
                .filter(|c| c.start < window_end)
                .map(|c| format!("{}/{}", c.key, c.n))
                .collect();
            if !claimed.is_empty() {
                problems.push(format!(
                    "while writes failed (from {:.1}s, checked from {:.1}s to {:.1}s) the host kept \
                     claiming: {} calls began: {:?}",
                    audit.at(since),
                    audit.at(checked_from),
                    audit.at(window_end),
                    claimed.len(),
                    claimed.iter().take(12).collect::<Vec<_>>()
                ));
            }
            let ready: Vec<String> = readyz
                .iter()
                .filter(|(at, status)| *at >= checked_from && *status == 200)
                .map(|(at, _)| format!("{:.1}s", audit.at(*at)))
                .collect();
            let checked = readyz.iter().filter(|(at, _)| *at >= checked_from).count();
            if checked == 0 || !ready.is_empty() {
                problems.push(format!(
                    "/readyz answered 200 in {} of {checked} probes while writes failed (at {:?})",
                    ready.len(),
                    ready
                ));
            }
        }
    }

    // Space is back: the host must finish the queue, ready again.
    disk.free();
    let freed_at = Instant::now();
    let limit = if problems.is_empty() { 60 } else { 20 };
    let mut finished = false;
    while freed_at.elapsed() < Duration::from_secs(limit) {
        if host::count(store.as_ref(), TASK, "done").await == total as i64 {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if finished {
        let ready = http_get(addr, "/readyz").await;
        if ready.0 != 200 {
            problems.push(format!("/readyz after the queue finished: {ready:?}"));
        }
    } else {
        problems.push(format!(
            "{limit} s after space came back only {} of {total} items were done ({} dead); \
             /readyz: {:?}",
            host::count(store.as_ref(), TASK, "done").await,
            host::count(store.as_ref(), TASK, "dead").await,
            http_get(addr, "/readyz").await
        ));
    }
    host.shutdown(Duration::from_secs(10)).await;

    // Outputs: exactly one per item, in order; which call each one came from.
    let mut committed = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for (key, expected) in &ids {
        let outputs = store.outputs(TASK, key).await.expect("outputs");
        let written: Vec<i64> = outputs.iter().flat_map(|o| o.item_ids.clone()).collect();
        if &written != expected {
            wrong.push(format!("{key}: {written:?} for {expected:?}"));
        }
        committed.extend(
            outputs
                .iter()
                .filter_map(|o| audit::call_of(o.output.as_deref())),
        );
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{} units' outputs are not one per item in order (written for expected): {}",
            wrong.len(),
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    let calls = audit.calls();
    // Calls begun per second of the run, and how many of them were written.
    let mut timeline: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for call in &calls {
        let second = timeline.entry(audit.at(call.start) as u64).or_default();
        second.0 += 1;
        second.1 += usize::from(committed.contains(&call.seq));
    }
    let discarded = audit.thrown_away(&committed).len();
    if discarded > 0 {
        problems.push(format!(
            "{discarded} finished calls' outcomes were thrown away (answered, never written)"
        ));
    }
    // Side effects: once per item, plus one for an item whose call was in
    // flight when writes began to fail.
    let mut repeated: Vec<(usize, String)> = audit
        .per_item()
        .into_iter()
        .filter_map(|((key, n), calls)| {
            let allowed = 1 + usize::from(in_flight.contains(&(key.clone(), n)));
            (calls.len() > allowed).then(|| (calls.len(), format!("{key}/{n}")))
        })
        .collect();
    repeated.sort_by(|a, b| b.cmp(a));
    if !repeated.is_empty() {
        problems.push(format!(
            "{} items' side effect happened more often than allowed (once, twice if in flight \
             at the failure); most: {:?}",
            repeated.len(),
            repeated.iter().take(10).collect::<Vec<_>>()
        ));
    }

    assert!(
        problems.is_empty(),
        "{} problems (disk filled at {:.1}s, writes failing from {:.1}s, {} probe writes landed \
         later, freed at {:.1}s; {} calls for {total} items, {} in flight at the failure):\n- {}\n\
         calls begun per second of the run (begun, written): {timeline:?}",
        problems.len(),
        audit.at(filled_at),
        audit.at(first_failure),
        probe_recoveries,
        audit.at(freed_at),
        calls.len(),
        in_flight.len(),
        problems.join("\n- ")
    );
}
