//! Many claimers on one Postgres queue: tasks in this process and two more
//! processes, working 10,000 items over 500 keys with random failures and
//! stalls past the lease (so reaps happen). At the end every item is done or
//! dead exactly once, each key's items were done in id order, and no key was
//! ever held by two claimers at the same moment.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice::store::{
    BatchLimits, Claimable, Failure, Gate, NewItem, RetryPolicies, RetryPolicy, Store, StoreError,
    StoreOptions,
};

const ITEMS: usize = 10_000;
const KEYS: usize = 500;
const LEASE: Duration = Duration::from_millis(400);
const URL_VAR: &str = "SLUICE_STRESS_URL";
const WORKER_VAR: &str = "SLUICE_STRESS_WORKER";

fn policies() -> RetryPolicies {
    RetryPolicies {
        default: RetryPolicy {
            max_attempts: 4,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
        },
        ..Default::default()
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A tiny xorshift generator: deterministic per worker, no dependency.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100
    }
}

/// Claims and works units until the queue is drained. Each completion records
/// the worker and the moments it knew it held the claim. Returns how many
/// expired claims (of others) this worker reaped.
async fn work(store: Arc<dyn Store>, worker: String, seed: u64) -> u64 {
    let mut dice = Dice(seed | 1);
    let types = [Claimable {
        task_type: "stress".into(),
        gate: Gate::default(),
    }];
    let policies = policies();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut reaped = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "{worker}: the queue did not drain in time"
        );
        reaped += store.reap(&policies, None).await.unwrap();
        let claims = store.claim(&worker, &types, 3, LEASE).await.unwrap();
        if claims.is_empty() {
            let status = store.status().await.unwrap();
            let pending: i64 = status
                .depths
                .iter()
                .filter(|d| d.state == "pending")
                .map(|d| d.count)
                .sum();
            if pending == 0 {
                return reaped;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        for claim in claims {
            let held_from = now_ns();
            loop {
                let batch = match store
                    .fetch_batch(
                        &claim,
                        BatchLimits {
                            max_items: 5,
                            max_tokens: u64::MAX,
                        },
                    )
                    .await
                {
                    Ok(batch) => batch,
                    Err(StoreError::ClaimLost { .. }) => break,
                    Err(err) => panic!("{worker}: {err}"),
                };
                if batch.is_empty() {
                    match store.release(&claim).await {
                        Ok(()) | Err(StoreError::ClaimLost { .. }) => break,
                        Err(err) => panic!("{worker}: {err}"),
                    }
                }
                let roll = dice.roll();
                if roll < 8 {
                    match store
                        .fail(
                            &claim,
                            &Failure::Retryable("dice".into()),
                            policies.get("stress").expect("a default policy"),
                        )
                        .await
                    {
                        Ok(_) | Err(StoreError::ClaimLost { .. }) => break,
                        Err(err) => panic!("{worker}: {err}"),
                    }
                }
                if roll < 11 {
                    // Stall past the lease: the claim gets reaped under us.
                    tokio::time::sleep(LEASE * 2).await;
                }
                let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
                let held_until = now_ns();
                let output = serde_json::json!({
                    "worker": worker,
                    "held_from_ns": held_from.to_string(),
                    "held_until_ns": held_until.to_string(),
                })
                .to_string();
                // As the host does: a unit row another transaction holds (a
                // reaper taking this claim right now) is waited for, then the
                // write is tried again and lands or finds the claim lost.
                let completed = loop {
                    match store.complete(&claim, &ids, Some(&output), &[], None).await {
                        Err(StoreError::Contended(_)) => {
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                        completed => break completed,
                    }
                };
                match completed {
                    Ok(()) => {}
                    Err(StoreError::ClaimLost { .. }) => break,
                    Err(err) => panic!("{worker}: {err}"),
                }
            }
        }
    }
}

/// The entry point of the worker processes the stress test starts; does
/// nothing when run on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by postgres_stress_across_processes"]
async fn stress_child_worker() {
    let (Ok(url), Ok(worker)) = (std::env::var(URL_VAR), std::env::var(WORKER_VAR)) else {
        return;
    };
    let store = sluice::store::open(&url, StoreOptions::default())
        .await
        .unwrap();
    let seed = worker
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
    let reaped = work(store, worker, seed).await;
    println!("{REAPED_LINE}{reaped}");
}

/// How a worker process reports the claims it reaped, on its stdout.
const REAPED_LINE: &str = "stress worker reaped: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stress_across_processes() {
    let t = support::stores::postgres_with(StoreOptions {
        max_connections: 16,
        ..Default::default()
    })
    .await;
    let items: Vec<NewItem> = (0..ITEMS)
        .map(|n| NewItem {
            task_type: "stress".into(),
            work_unit_key: format!("key-{}", n % KEYS),
            payload: n.to_string(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    for chunk in items.chunks(2_000) {
        t.store.enqueue(chunk).await.unwrap();
    }

    let children: Vec<_> = ["proc-a", "proc-b"]
        .iter()
        .map(|name| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["stress_child_worker", "--exact", "--ignored", "--nocapture"])
                .env(URL_VAR, &t.url)
                .env(WORKER_VAR, name)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let tasks: Vec<_> = (0..4)
        .map(|n| tokio::spawn(work(t.store.clone(), format!("task-{n}"), 1000 + n)))
        .collect();
    let mut reaped = 0;
    for task in tasks {
        reaped += task.await.expect("worker task");
    }
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "a worker process failed: {}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        reaped += stdout
            .lines()
            .find_map(|line| line.strip_prefix(REAPED_LINE))
            .unwrap_or_else(|| panic!("a worker process did not report its reaps: {stdout}"))
            .trim()
            .parse::<u64>()
            .unwrap();
    }

    // Every item is done or dead, none still pending.
    let status = t.store.status().await.unwrap();
    let by_state: HashMap<&str, i64> = status
        .depths
        .iter()
        .map(|d| (d.state.as_str(), d.count))
        .collect();
    assert_eq!(by_state.get("pending"), None, "{status:?}");
    let done = by_state.get("done").copied().unwrap_or(0);
    let dead = by_state.get("dead").copied().unwrap_or(0);
    assert_eq!(done + dead, ITEMS as i64, "{status:?}");
    let dead_ids: std::collections::HashSet<i64> = t
        .store
        .dead_list(None, ITEMS as u32)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();

    let mut done_count: HashMap<i64, u32> = HashMap::new();
    let mut workers = std::collections::HashSet::new();
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let outputs = t.store.outputs("stress", &key).await.unwrap();
        let mut last_id = 0;
        let mut holds: Vec<(u128, u128)> = Vec::new();
        for sluice::store::StoredOutput {
            item_ids: ids,
            output,
            ..
        } in outputs
        {
            for id in &ids {
                *done_count.entry(*id).or_default() += 1;
                assert!(*id > last_id, "{key}: item {id} done after item {last_id}");
                last_id = *id;
            }
            let output: serde_json::Value = serde_json::from_str(&output.unwrap()).unwrap();
            workers.insert(output["worker"].as_str().unwrap().to_string());
            let from: u128 = output["held_from_ns"].as_str().unwrap().parse().unwrap();
            let until: u128 = output["held_until_ns"].as_str().unwrap().parse().unwrap();
            holds.push((from, until));
        }
        // Holds by different claims never overlap. (Holds of one claim share a
        // start, so merge those first.)
        holds.sort();
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (from, until) in holds {
            match merged.last_mut() {
                Some(last) if last.0 == from => last.1 = last.1.max(until),
                _ => merged.push((from, until)),
            }
        }
        for pair in merged.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{key}: two claims held at once: {pair:?}"
            );
        }
    }
    assert!(
        done_count.values().all(|&n| n == 1),
        "an item was completed twice"
    );
    assert_eq!(
        done_count.len() as i64,
        done,
        "outputs cover exactly the done items"
    );
    assert!(
        dead_ids.iter().all(|id| !done_count.contains_key(id)),
        "a dead item also has an output"
    );
    assert!(
        workers.iter().any(|w| w == "proc-a") && workers.iter().any(|w| w == "proc-b"),
        "both worker processes did work: {workers:?}"
    );
    // The run exercised what it claims to: retried failures and reaped claims.
    let pool = sqlx::PgPool::connect(&t.url).await.unwrap();
    let count = |pattern: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM sluice_items WHERE errors::text LIKE $1",
            )
            .bind(pattern)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert!(count("%dice%").await > 0, "no failures were injected");
    // A reaped batch of several items narrows the unit without charging an
    // item (so it leaves no error behind): count the reaps themselves.
    assert!(reaped > 0, "no claim was reaped");
}
