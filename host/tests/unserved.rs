//! An item whose task type no loaded plugin serves is accepted (another host
//! may serve it), but never waits in silence: the host logs one warning for
//! its task type, and `sluice status` and the store's status mark it.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use sluice::store::NewItem;
use support::process::HostDir;
use support::stores;

fn item(task_type: &str) -> NewItem {
    NewItem {
        task_type: task_type.into(),
        work_unit_key: "k".into(),
        payload: "{}".into(),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_type_no_host_serves_is_reported_not_silent() {
    let t = stores::sqlite().await;
    t.store
        .enqueue(&[item("no-such-plugin"), item("no-such-plugin"), item("echo")])
        .await
        .unwrap();
    // No host has run yet: both task types are unserved.
    let status = t.store.status().await.unwrap();
    assert_eq!(status.unserved_task_types, ["echo", "no-such-plugin"]);

    let dir = HostDir::new(&t.url, "");
    let host = dir.start("unserved");
    let started = Instant::now();
    let warning = "items of task type \"no-such-plugin\" are waiting and no running host serves it";
    while !host.log_text().contains(warning) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no warning; log:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        host.log_text().matches(warning).count(),
        1,
        "one warning per task type"
    );
    assert!(!host.log_text().contains("\"echo\" are waiting"));

    let status = t.store.status().await.unwrap();
    assert_eq!(
        status.unserved_task_types,
        ["no-such-plugin"],
        "the host serves echo"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["status", "--database-url", &t.url])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("no-such-plugin"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("no running host serves this task type"),
        "{table}"
    );
    host.terminate(Duration::from_secs(30));
}
