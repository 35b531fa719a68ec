//! Many slots over few database connections. A call holds no connection
//! while it waits on the LLM, so a host whose slots far outnumber its
//! connections still has every slot's call in flight at once, and calls
//! longer than the lease finish on their first attempt, without a reap.

mod support;

use std::time::Duration;

use mock_llm::{MockLlm, Options};
use sluice::store::StoreOptions;
use support::host::{self, count};
use support::stores::{self, TestStore};

const TASK: &str = "llm-call";
const SLOTS: u32 = 200;
const CONNECTIONS: u32 = 4;
/// Longer than the lease (2 s in `fast_config`).
const LLM_LATENCY: Duration = Duration::from_secs(3);

fn few_connections() -> StoreOptions {
    StoreOptions {
        max_connections: CONNECTIONS,
        ..StoreOptions::default()
    }
}

async fn slots_outnumbering_connections_all_call_at_once(db: TestStore) {
    let mock = MockLlm::start(Options {
        latency: LLM_LATENCY,
        ..Options::default()
    })
    .await
    .expect("the mock LLM server starts");
    let mut config = host::fast_config(SLOTS);
    config.max_connections = CONNECTIONS;
    host::mock_llm(&mut config, &mock.base_url(), false);
    config.llm.timeouts.first_byte = Duration::from_secs(30);
    config.llm.timeouts.total = Duration::from_secs(40);
    config.tasks.insert(
        TASK.into(),
        host::with_llm(host::task(Duration::from_secs(60), 1), "mock-model"),
    );
    let units = 2 * SLOTS as usize;
    db.store
        .enqueue(&host::units(TASK, "conv", units))
        .await
        .unwrap();
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    host::wait_until(
        &format!("{units} {TASK} items are done or dead"),
        Duration::from_secs(120),
        || async {
            count(&*db.store, TASK, "done").await + count(&*db.store, TASK, "dead").await
                == units as i64
        },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;

    let items = host::items(&db, TASK).await;
    let failed: Vec<_> = items.iter().filter(|item| item.state != "done").collect();
    assert!(
        failed.is_empty(),
        "every call succeeds on its first attempt, none is reaped; {} did not, such as {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        items.iter().all(|item| item.errors.is_empty()),
        "no lease expired under a running call"
    );
    let peak = mock.peak_in_flight();
    assert!(
        peak >= SLOTS as usize * 3 / 4,
        "{SLOTS} slots over {CONNECTIONS} connections had only {peak} LLM calls in flight at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_outnumbering_connections_all_call_at_once_sqlite() {
    slots_outnumbering_connections_all_call_at_once(stores::sqlite_with(few_connections()).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_outnumbering_connections_all_call_at_once_postgres() {
    slots_outnumbering_connections_all_call_at_once(stores::postgres_with(few_connections()).await)
        .await;
}
