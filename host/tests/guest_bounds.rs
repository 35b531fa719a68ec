//! Work a guest can make the host do for it, on the host's own CPU and memory,
//! is bounded: JSON schemas sent with `llm` requests, log lines, the depth of
//! outputs, and the task types follow-up items may be enqueued for.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_llm::{MockLlm, Options};
use serde_json::{Value, json};
use sluice::imports::DenyAll;
use sluice::outbound::ProviderKind;
use sluice::runtime::CallOutcome;
use sluice::runtime::log_budget::set_host_rate;
use sluice::store::NewItem;
use support::host::{count, fast_config, start, task, units, wait_until};
use support::outbound::{MARGIN, capture_logs, llm_config, llm_task, network};
use support::{adversary, adversary_wasm, assert_echo_works, request, runtime, stores};

/// An `llm-call` payload whose schema has `count` distinct patterns that each
/// compile to megabytes (`\p{L}{100}[0-9]` and a distinct suffix).
fn schema_bomb(count: usize) -> String {
    let properties: serde_json::Map<String, Value> = (0..count)
        .map(|i| {
            let pattern = format!("\\p{{L}}{{100}}[0-9]{i}");
            (
                format!("f{i}"),
                json!({"type": "string", "pattern": pattern}),
            )
        })
        .collect();
    json!({"json_schema": {"type": "object", "properties": properties}}).to_string()
}

/// This process's peak resident memory since the last reset, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kib << 10
}

fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a number")
        << 10
}

#[tokio::test]
async fn a_schema_bomb_is_refused_by_its_deadline_within_the_memory_limit() {
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let net = Arc::new(network(
        &llm_config(&mock.base_url(), ProviderKind::OpenAi, false),
        &llm_task("llm-call", "m"),
    ));
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    assert_echo_works(&plugin).await;
    let memory_limit: u64 = 64 << 20;
    // Linux resets the peak when "5" is written to clear_refs.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = resident();
    let timeout = Duration::from_secs(3);

    for (count, limit) in [(400, "schema_max_patterns"), (40, "schema_regex_bytes")] {
        let mut req = request("llm-call", &schema_bomb(count), timeout);
        req.outbound = net.clone();
        req.limits.memory_bytes = memory_limit;
        let started = Instant::now();
        let outcome = plugin.call(req).await.unwrap();
        let elapsed = started.elapsed();
        match &outcome {
            CallOutcome::Permanent { message } => {
                assert!(
                    message.starts_with("llm: Error::InvalidRequest(\"json-schema"),
                    "{message}"
                );
                assert!(message.contains(limit), "{message}");
            }
            other => panic!("expected a permanent invalid-request, got {other:?}"),
        }
        assert!(
            elapsed < timeout + MARGIN,
            "{count} patterns took {elapsed:?}"
        );
    }
    let grown = peak_rss().saturating_sub(before);
    let allowance: u64 = 256 << 20;
    assert!(
        grown < memory_limit + allowance,
        "the host grew by {} MiB",
        grown >> 20
    );
    assert!(
        mock.requests().is_empty(),
        "nothing was sent to the provider"
    );
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn schema_bombs_do_not_hold_up_other_units() {
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let db = stores::sqlite().await;
    let mut config = fast_config(2);
    support::host::mock_llm(&mut config, &mock.base_url(), false);
    config.tasks.insert(
        "llm-call".into(),
        support::host::with_llm(task(Duration::from_secs(60), 1), "m"),
    );
    let outbound = support::host::network(&config);
    let bombs: Vec<NewItem> = (0..2)
        .map(|n| NewItem {
            task_type: "llm-call".into(),
            work_unit_key: format!("bomb-{n}"),
            payload: schema_bomb(400),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        })
        .collect();
    db.store.enqueue(&bombs).await.unwrap();
    db.store
        .enqueue(&units("echo", "normal", 40))
        .await
        .unwrap();
    let started = Instant::now();
    let host = start(db.store.clone(), config, outbound).await;
    wait_until(
        "40 echo units are done",
        Duration::from_secs(60),
        || async { count(db.store.as_ref(), "echo", "done").await == 40 },
    )
    .await;
    let elapsed = started.elapsed();
    wait_until("both bombs are dead", Duration::from_secs(60), || async {
        count(db.store.as_ref(), "llm-call", "dead").await == 2
    })
    .await;
    host.shutdown(Duration::from_secs(5)).await;
    // Before schemas were bounded, two bombs held both guest threads for ~8 s.
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    let dead = db.store.dead_list(None, 10).await.unwrap();
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("schema_max_patterns"), "{error}");
}

/// The guests' lines among everything logged (wasmtime's own traces are
/// captured too, at trace level).
fn guest_lines(text: &str) -> String {
    text.lines()
        .filter(|line| line.contains("sluice::guest"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_log_flood_stays_within_the_calls_budget_with_one_suppressed_line() {
    let logs = capture_logs();
    let rt = runtime(1);
    let plugin = adversary(&rt).await;
    // 10,000 lines of 8 KiB: 80 MB of log before logs were budgeted.
    let outcome = plugin
        .call(request("log-flood", "10000", Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(matches!(outcome, CallOutcome::Ok(_)), "{outcome:?}");
    let text = guest_lines(&logs.text());
    let budget = 1 << 20;
    assert!(
        text.len() < budget + (256 << 10),
        "{} bytes logged",
        text.len()
    );
    assert_eq!(
        text.matches("logs suppressed").count(),
        1,
        "one line says so"
    );
    assert!(text.contains("log_bytes_per_call"), "it names the limit");
}

#[tokio::test]
async fn guests_together_are_held_to_the_hosts_log_rate() {
    let logs = capture_logs();
    set_host_rate(256 << 10);
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    for _ in 0..2 {
        let mut req = request("log-flood", "2000", Duration::from_secs(60));
        req.limits.log_bytes_per_call = 64 << 20;
        let outcome = plugin.call(req).await.unwrap();
        assert!(matches!(outcome, CallOutcome::Ok(_)), "{outcome:?}");
    }
    let text = guest_lines(&logs.text());
    // One second's worth, refilled at most for the seconds the calls took.
    assert!(text.len() < 2 << 20, "{} bytes logged", text.len());
    assert_eq!(text.matches("logs suppressed").count(), 2, "one per call");
    assert!(text.contains("log_bytes_per_second"), "it names the limit");
}

/// What `sluice exec` says of a `deep-output` call `depth` levels deep.
fn exec_deep(depth: usize) -> Value {
    let wasm = adversary_wasm();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["exec", "--plugins", wasm.to_str().unwrap()])
        .args(["--task", "deep-output", "--payload", &depth.to_string()])
        .env(
            "SLUICE_CACHE_DIR",
            support::target_dir().join("sluice-test-cache"),
        )
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("run sluice");
    serde_json::from_slice(&out.stdout).expect("exec prints its outcome as JSON")
}

#[tokio::test]
async fn exec_and_run_agree_on_deeply_nested_outputs() {
    let deep = exec_deep(100_000);
    assert_eq!(deep["outcome"], "invalid-output", "{deep}");
    let reason = deep["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("max_output_depth"), "{reason}");
    let at_limit = exec_deep(64);
    assert_eq!(at_limit["outcome"], "ok", "{at_limit}");

    for db in [stores::sqlite().await, stores::postgres().await] {
        let item = |key: &str, depth: usize| NewItem {
            task_type: "deep-output".into(),
            work_unit_key: key.into(),
            payload: depth.to_string(),
            tokens: 0,
            dedupe_key: None,
            run_after: None,
        };
        db.store
            .enqueue(&[item("deep", 100_000), item("at-limit", 64)])
            .await
            .unwrap();
        let mut config = fast_config(2);
        config
            .tasks
            .insert("deep-output".into(), task(Duration::from_secs(30), 3));
        let host = start(db.store.clone(), config, Arc::new(DenyAll)).await;
        wait_until(
            "both items are finished",
            Duration::from_secs(60),
            || async {
                count(db.store.as_ref(), "deep-output", "done").await == 1
                    && count(db.store.as_ref(), "deep-output", "dead").await == 1
            },
        )
        .await;
        host.shutdown(Duration::from_secs(5)).await;
        let dead = db.store.dead_list(None, 10).await.unwrap();
        assert_eq!(dead[0].work_unit_key, "deep");
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some(format!("invalid output: {reason}").as_str()),
            "{}: run dead-letters it for exec's reason, on the first attempt",
            db.url
        );
        let stored = db.store.outputs("deep-output", "at-limit").await.unwrap();
        assert_eq!(
            stored.len(),
            1,
            "{}: the output at the limit is stored",
            db.url
        );
    }
}

#[tokio::test]
async fn a_follow_up_the_policy_refuses_is_dead_lettered_and_nothing_is_committed() {
    let db = stores::sqlite().await;
    let mut config = fast_config(2);
    config
        .tasks
        .insert("enqueue-to".into(), task(Duration::from_secs(30), 3));
    let item = |key: &str, target: &str| NewItem {
        task_type: "enqueue-to".into(),
        work_unit_key: key.into(),
        payload: format!("\"{target}\""),
        tokens: 0,
        dedupe_key: None,
        run_after: None,
    };
    // The adversary (no grants) feeding the webhook plugin (an HTTP grant).
    db.store
        .enqueue(&[item("to-webhook", "webhook"), item("to-echo", "echo")])
        .await
        .unwrap();
    let host = start(db.store.clone(), config, Arc::new(DenyAll)).await;
    wait_until(
        "both items are finished",
        Duration::from_secs(60),
        || async {
            count(db.store.as_ref(), "enqueue-to", "dead").await == 1
                && count(db.store.as_ref(), "enqueue-to", "done").await == 1
        },
    )
    .await;
    wait_until(
        "the allowed follow-up ran",
        Duration::from_secs(60),
        || async { count(db.store.as_ref(), "echo", "done").await == 1 },
    )
    .await;
    host.shutdown(Duration::from_secs(5)).await;

    let dead = db.store.dead_list(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].work_unit_key, "to-webhook");
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("task type `enqueue-to` may not enqueue items for task type `webhook`")
            && error.contains("[tasks.enqueue-to] may_enqueue"),
        "{error}"
    );
    assert_eq!(dead[0].attempts, 1, "refused once, not retried: {dead:?}");
    assert_eq!(count(db.store.as_ref(), "webhook", "pending").await, 0);
    let outputs = db.store.outputs("enqueue-to", "to-webhook").await.unwrap();
    assert!(outputs.is_empty(), "its output was not committed either");
}
