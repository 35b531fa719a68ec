//! Hot reload: a host processing a steady stream of items while its plugins
//! folder changes under it. Version 1 of a plugin is replaced by version 2,
//! then by a broken file, then removed. No call fails because of a swap, each
//! unit's outputs switch from v1 to v2 at one point in its order, the broken
//! file changes nothing, and a removed plugin's task type stops being claimed
//! while other task types keep flowing.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sluice::runtime::Registry;
use sluice::store::{NewItem, Store};
use support::host::{self, count, fast_config, wait_until};
use support::process::HostDir;
use support::stores;

const KEYS: usize = 4;

/// Replaces `name` in `dir` with `bytes` the way a deploy should: write
/// beside it, then rename over it, so the host never reads half a file.
fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let staging = dir.join(format!(".{name}"));
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, dir.join(name)).unwrap();
}

fn reload_item(n: u64) -> NewItem {
    NewItem {
        task_type: "reload".into(),
        work_unit_key: format!("k{}", n % KEYS as u64),
        payload: format!(r#"{{"n":{n},"busy_ms":5}}"#),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
}

/// The version that produced each output of every unit, in item order.
async fn versions_by_unit(store: &dyn Store) -> BTreeMap<String, Vec<String>> {
    let mut units = BTreeMap::new();
    for k in 0..KEYS {
        let key = format!("k{k}");
        let mut outputs = host::outputs(store, "reload", &key).await;
        outputs.sort_by_key(|(ids, _)| ids[0]);
        let versions = outputs
            .into_iter()
            .map(|(_, output)| output["version"].as_str().unwrap().to_string())
            .collect();
        units.insert(key, versions);
    }
    units
}

async fn outputs_of(store: &dyn Store, version: &str) -> usize {
    versions_by_unit(store)
        .await
        .values()
        .flatten()
        .filter(|v| *v == version)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugins_are_swapped_under_a_steady_stream_without_a_failed_call() {
    let db = stores::sqlite().await;
    let store: Arc<dyn Store> = db.store.clone();
    let v1 = std::fs::read(support::guest_wasm("sluice_test_reload_v1")).unwrap();
    let v2 = std::fs::read(support::guest_wasm("sluice_test_reload_v2")).unwrap();
    let dir = support::plugin_dir(&[
        ("reload.wasm", v1),
        (
            "adversary.wasm",
            std::fs::read(support::adversary_wasm()).unwrap(),
        ),
    ]);
    let config = fast_config(4);
    let runtime = support::runtime(config.slots);
    let registry = Registry::load(&runtime, dir.path())
        .await
        .unwrap_or_else(|errors| panic!("the plugins load: {errors:?}"));
    let outbound = host::network(&config);
    let host = host::start_registry(store.clone(), config, outbound, registry).await;
    host.watch_plugins(runtime.clone(), dir.path().to_path_buf())
        .await;

    // The steady stream: one item every 10 ms, round robin over the units.
    let producing = Arc::new(AtomicBool::new(true));
    let produced = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn({
        let (store, producing, produced) = (store.clone(), producing.clone(), produced.clone());
        async move {
            while producing.load(Ordering::Relaxed) {
                let n = produced.fetch_add(1, Ordering::Relaxed);
                store.enqueue(&[reload_item(n)]).await.expect("enqueue");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let limit = Duration::from_secs(60);
    wait_until("version 1 produced outputs", limit, || async {
        outputs_of(&*store, "1.0.0").await >= 20
    })
    .await;

    deploy(dir.path(), "reload.wasm", &v2);
    wait_until("version 2 took over", limit, || async {
        outputs_of(&*store, "2.0.0").await >= 20
    })
    .await;

    // A broken file changes nothing: version 2 keeps serving new items.
    deploy(
        dir.path(),
        "reload.wasm",
        b"\0asm\x0d\0\x01\0 a truncated upload",
    );
    tokio::time::sleep(watcher_settles()).await;
    let before_broken = outputs_of(&*store, "2.0.0").await;
    wait_until(
        "version 2 kept serving after the broken file",
        limit,
        || async { outputs_of(&*store, "2.0.0").await >= before_broken + 20 },
    )
    .await;

    // Removal: the stream stops, everything enqueued so far completes...
    std::fs::remove_file(dir.path().join("reload.wasm")).unwrap();
    tokio::time::sleep(watcher_settles()).await;
    producing.store(false, Ordering::Relaxed);
    producer.await.unwrap();
    let enqueued = produced.load(Ordering::Relaxed) as i64;
    // ...except what was still waiting when the plugin went: it stays
    // pending, unclaimed, while other task types flow.
    let left = count(&*store, "reload", "pending").await;
    let late: Vec<NewItem> = (0..8).map(|n| reload_item(1_000_000 + n)).collect();
    store.enqueue(&late).await.unwrap();
    store
        .enqueue(&host::units("echo", "other", 5))
        .await
        .unwrap();
    wait_until("the other plugin's items are done", limit, || async {
        count(&*store, "echo", "done").await == 5
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(&*store, "reload", "pending").await,
        left + 8,
        "a removed plugin's task type is not claimed"
    );
    host.shutdown(Duration::from_secs(5)).await;

    // No call failed because of a swap: nothing dead, no error recorded.
    assert_eq!(count(&*store, "reload", "dead").await, 0);
    assert_eq!(
        count(&*store, "reload", "done").await + left,
        enqueued,
        "every item enqueued before the removal is done or still pending"
    );
    for item in host::items(&db, "reload").await {
        assert!(
            item.errors.is_empty() && item.attempts == 0,
            "item {} failed during a reload: {:?}",
            item.id,
            item.errors
        );
    }
    // Each unit switched from v1 to v2 once, and never back.
    let units = versions_by_unit(&*store).await;
    for (key, versions) in &units {
        let switch = versions
            .iter()
            .position(|v| v == "2.0.0")
            .unwrap_or(versions.len());
        assert!(
            versions[..switch].iter().all(|v| v == "1.0.0")
                && versions[switch..].iter().all(|v| v == "2.0.0"),
            "unit {key} did not switch at one point: {versions:?}"
        );
    }
    // And the call records say the same as the outputs.
    let records = host::call_records(&db, "reload").await;
    let by_record: usize = records
        .iter()
        .filter(|r| r["plugin_version"] == "1.0.0")
        .count();
    assert_eq!(by_record, outputs_of(&*store, "1.0.0").await);
}

#[tokio::test]
async fn sluice_run_reloads_on_sighup_and_refuses_a_broken_file_in_one_line() {
    let db = stores::sqlite().await;
    let dir = HostDir::new(&db.url, "lease = \"2s\"\nheartbeat_interval = \"300ms\"\n");
    let plugins = dir.path().join("plugins");
    let mut host = dir.start("host");
    let log_has = |host: &support::process::HostProcess, what: &str| host.log_text().contains(what);
    let limit = Duration::from_secs(30);
    wait_until("the host started", limit, || async {
        log_has(&host, "host started")
    })
    .await;

    deploy(
        &plugins,
        "reload.wasm",
        &std::fs::read(support::guest_wasm("sluice_test_reload_v1")).unwrap(),
    );
    host.signal("-HUP");
    wait_until("SIGHUP added the plugin", limit, || async {
        log_has(&host, "SIGHUP: reloading plugins") && log_has(&host, "plugin added")
    })
    .await;
    db.store.enqueue(&[reload_item(1)]).await.unwrap();
    wait_until("the added plugin serves", limit, || async {
        count(&*db.store, "reload", "done").await == 1
    })
    .await;

    deploy(&plugins, "broken.wasm", b"not a plugin");
    host.signal("-HUP");
    wait_until("the broken file was refused", limit, || async {
        log_has(&host, "broken.wasm")
    })
    .await;
    tokio::time::sleep(watcher_settles()).await;
    let log = host.log_text();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("broken.wasm")).collect();
    assert_eq!(refusals.len(), 1, "one line for the broken file:\n{log}");
    assert!(
        refusals[0].contains("plugin refused") && refusals[0].contains("not a WebAssembly file"),
        "{}",
        refusals[0]
    );
    db.store.enqueue(&[reload_item(2)]).await.unwrap();
    wait_until("the loaded plugin still serves", limit, || async {
        count(&*db.store, "reload", "done").await == 2
    })
    .await;
    assert!(host.is_running(), "SIGHUP does not stop the host");
    assert!(host.terminate(limit).success());
}

/// Long enough for the watcher to see a change hold still and act on it.
fn watcher_settles() -> Duration {
    Duration::from_secs(3)
}
