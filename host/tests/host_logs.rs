//! What an operator's log pipeline gets from the real `sluice run` binary with
//! its stderr in a file: plain text without colour codes, and JSON lines
//! whose numbers are numbers and whose lists are arrays.

mod support;

use std::time::Duration;

use serde_json::Value;
use sluice::store::NewItem;
use support::host::{count, wait_until};
use support::process::HostDir;
use support::stores;

const FAST: &str = r#"
lease = "2s"
heartbeat_interval = "300ms"
reaper_interval = "300ms"
poll_interval = "200ms"
"#;

/// Runs a host on two `chatty` items (each logs a line from inside the
/// plugin) with `args` and `env`, and returns its stderr and the item ids.
async fn run_chatty(args: &[&str], env: &[(&str, &str)]) -> (String, Vec<i64>) {
    let db = stores::sqlite().await;
    let store = db.store.clone();
    let items: Vec<NewItem> = (0..2)
        .map(|n| NewItem {
            task_type: "chatty".into(),
            work_unit_key: format!("talk-{n}"),
            payload: "{}".into(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    let ids = store
        .enqueue(&items)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let dir = HostDir::new(&db.url, FAST);
    let host = dir.start_with("host", args, env);
    wait_until("the items are done", Duration::from_secs(30), || async {
        count(store.as_ref(), "chatty", "done").await == 2
    })
    .await;
    let log = host.log.clone();
    let status = host.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    (std::fs::read_to_string(log).unwrap(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let (log, _) = run_chatty(&[], &[]).await;
    assert!(log.contains("plugin loaded"), "{log}");
    assert!(log.contains("log import line for item"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_numbers_and_arrays_not_strings_holding_them() {
    let (log, ids) = run_chatty(&["--log-format", "json"], &[]).await;
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let event = |message: &str| -> &Value {
        lines
            .iter()
            .find(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(message))
            })
            .unwrap_or_else(|| panic!("no `{message}` line in:\n{log}"))
    };

    let loaded = event("plugin loaded");
    assert!(
        loaded["fields"]["task_types"]
            .as_array()
            .is_some_and(|types| types.contains(&Value::from("chatty"))),
        "task_types is a list of strings: {loaded}"
    );
    let started = event("host started");
    assert!(started["fields"]["slots"].is_u64(), "{started}");
    assert!(started["fields"]["task_types"].is_array(), "{started}");

    // A plugin's line carries its unit's and call's spans, typed.
    let guest = event(&format!("log import line for item {}", ids[0]));
    assert_eq!(guest["level"], "WARN");
    assert_eq!(guest["target"], "sluice::guest");
    assert_eq!(guest["span"]["name"], "call");
    assert_eq!(
        guest["span"]["items"],
        serde_json::json!([ids[0]]),
        "{guest}"
    );
    assert_eq!(guest["span"]["attempt"], 1, "{guest}");
    let unit = &guest["spans"][0];
    assert_eq!(unit["name"], "unit", "{guest}");
    assert_eq!(unit["task_type"], "chatty");
    assert!(
        unit["claim"].is_i64(),
        "the claim token is a number: {guest}"
    );
}
