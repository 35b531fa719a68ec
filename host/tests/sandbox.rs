//! One test per adversarial behaviour: each call ends in the documented
//! classified outcome, within its deadline plus a generous margin, and the host
//! keeps serving calls afterwards.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::runtime::{CallOutcome, TrapCause};
use support::{Hang, adversary, assert_echo_works, request, runtime};

/// Slack allowed past a deadline: generous, since CI machines stall.
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn echo_returns_its_payload_and_follow_up_items() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let outcome = plugin
        .call(request(
            "echo",
            r#"{"follow-up": true}"#,
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    let CallOutcome::Ok(out) = outcome else {
        panic!("echo should succeed, got {outcome:?}");
    };
    assert_eq!(out.output.unwrap().get(), r#"{"follow-up": true}"#);
    assert_eq!(out.enqueue.len(), 1);
    assert_eq!(out.enqueue[0].task_type, "echo");
    assert_eq!(out.enqueue[0].work_unit_key, "test-key");
    assert_eq!(out.enqueue[0].payload.get(), r#"{"from":"echo"}"#);
}

#[tokio::test]
async fn spinning_guest_times_out_at_its_deadline() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let outcome = plugin.call(request("spin", "{}", timeout)).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(outcome, CallOutcome::Timeout { timeout_ms: 500 }),
        "got {outcome:?}"
    );
    assert!(
        elapsed >= timeout,
        "stopped before its deadline: {elapsed:?}"
    );
    assert!(elapsed < timeout + MARGIN, "freed too late: {elapsed:?}");
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn memory_bomb_traps_out_of_memory_at_its_limit() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let mut req = request("memory-bomb", "{}", Duration::from_secs(30));
    req.limits.memory_bytes = 64 << 20;
    let started = Instant::now();
    let outcome = plugin.call(req).await.unwrap();
    match &outcome {
        CallOutcome::Trap {
            cause: TrapCause::OutOfMemory,
            message,
        } => assert!(
            message.contains("64 MiB"),
            "message should name the limit: {message}"
        ),
        other => panic!("expected an out-of-memory trap, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30) + MARGIN);
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_with_stack_overflow() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let started = Instant::now();
    let outcome = plugin
        .call(request("recursion", "{}", Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            CallOutcome::Trap {
                cause: TrapCause::StackOverflow,
                ..
            }
        ),
        "got {outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30) + MARGIN);
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn huge_output_is_refused_as_invalid_output() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    // 20 MiB against the default 16 MiB cap.
    let outcome = plugin
        .call(request("huge-output", "20", Duration::from_secs(30)))
        .await
        .unwrap();
    match &outcome {
        CallOutcome::InvalidOutput { reason } => {
            assert!(
                reason.contains("the output cap is 16777216 bytes"),
                "refused while copied out of the guest: {reason}"
            )
        }
        other => panic!("expected invalid-output, got {other:?}"),
    }
    // Small enough to copy, still over a lower cap: refused by the size check.
    let mut req = request("huge-output", "3", Duration::from_secs(30));
    req.limits.max_output_bytes = 2 << 20;
    let outcome = plugin.call(req).await.unwrap();
    assert!(
        matches!(&outcome, CallOutcome::InvalidOutput { reason } if reason.contains("over the cap of 2097152 bytes")),
        "got {outcome:?}"
    );
    // Under the cap, the same task succeeds: the cap is what refused it.
    let mut req = request("huge-output", "1", Duration::from_secs(30));
    req.limits.max_output_bytes = 2 << 20;
    assert!(matches!(
        plugin.call(req).await.unwrap(),
        CallOutcome::Ok(_)
    ));
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn output_that_is_not_json_is_invalid_output() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let outcome = plugin
        .call(request("not-json", "{}", Duration::from_secs(30)))
        .await
        .unwrap();
    match &outcome {
        CallOutcome::InvalidOutput { reason } => {
            assert!(reason.contains("not valid JSON"), "{reason}")
        }
        other => panic!("expected invalid-output, got {other:?}"),
    }
}

#[tokio::test]
async fn panic_traps_as_unreachable_with_the_panic_message() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let outcome = plugin
        .call(request("panic", "{}", Duration::from_secs(30)))
        .await
        .unwrap();
    match &outcome {
        CallOutcome::Trap {
            cause: TrapCause::Unreachable,
            message,
        } => assert!(
            message.contains("adversary panicked on purpose for item 1"),
            "the trap should carry the guest's panic message: {message}"
        ),
        other => panic!("expected an unreachable trap, got {other:?}"),
    }
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn call_hung_in_the_llm_import_is_freed_at_its_deadline() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let timeout = Duration::from_millis(500);
    let mut req = request("hang-llm", "{}", timeout);
    req.outbound = Arc::new(Hang);
    let started = Instant::now();
    let outcome = plugin.call(req).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(outcome, CallOutcome::Timeout { .. }),
        "got {outcome:?}"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + MARGIN,
        "{elapsed:?}"
    );
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn call_hung_in_the_http_import_is_freed_at_its_deadline() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let timeout = Duration::from_millis(500);
    let mut req = request("hang-http", "{}", timeout);
    req.outbound = Arc::new(Hang);
    let started = Instant::now();
    let outcome = plugin.call(req).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(outcome, CallOutcome::Timeout { .. }),
        "got {outcome:?}"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + MARGIN,
        "{elapsed:?}"
    );
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn outbound_calls_are_denied_by_default_as_a_typed_error() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    for task in ["hang-llm", "hang-http"] {
        let outcome = plugin
            .call(request(task, "{}", Duration::from_secs(30)))
            .await
            .unwrap();
        // The guest received `error.denied` as a value and chose to retry.
        match &outcome {
            CallOutcome::Retryable { message } => {
                assert!(message.contains("Denied"), "{task}: {message}")
            }
            other => panic!("{task}: expected the guest to see a denied error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn escape_attempts_fail_inside_the_guest() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let outcome = plugin
        .call(request("escape", "{}", Duration::from_secs(30)))
        .await
        .unwrap();
    let CallOutcome::Ok(out) = outcome else {
        panic!("the escape plugin reports its attempts, got {outcome:?}");
    };
    let report: serde_json::Value = serde_json::from_str(out.output.unwrap().get()).unwrap();
    for attempt in ["file", "env", "socket"] {
        let result = report[attempt].as_str().unwrap();
        assert!(
            result.starts_with("error:"),
            "{attempt} should fail inside the guest, got {result:?}"
        );
    }
    // Refused by the host's policy, not merely unsupported by the guest's libc.
    let socket = report["socket"].as_str().unwrap();
    assert!(socket.contains("Permission denied"), "{socket}");
    assert_eq!(
        report["vars"], 0,
        "the guest must see no environment variables"
    );
    assert_eq!(report["args"], 0, "the guest must see no arguments");
}

#[tokio::test]
async fn task_errors_are_classified_retryable_or_permanent() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let retryable = plugin
        .call(request(
            "fail",
            r#"{"kind":"retryable"}"#,
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert!(
        matches!(&retryable, CallOutcome::Retryable { message } if message == "asked to fail, try again"),
        "got {retryable:?}"
    );
    let permanent = plugin
        .call(request(
            "fail",
            r#"{"kind":"permanent"}"#,
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert!(
        matches!(&permanent, CallOutcome::Permanent { message } if message == "asked to fail permanently"),
        "got {permanent:?}"
    );
}

#[tokio::test]
async fn config_import_returns_only_the_operators_values() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let mut req = request("config", r#""webhook-secret""#, Duration::from_secs(30));
    req.task_config = Arc::new(BTreeMap::from([(
        "webhook-secret".to_string(),
        "s3cr3t".to_string(),
    )]));
    let CallOutcome::Ok(out) = plugin.call(req).await.unwrap() else {
        panic!("config call should succeed");
    };
    assert_eq!(out.output.unwrap().get(), r#""s3cr3t""#);
    let CallOutcome::Ok(out) = plugin
        .call(request(
            "config",
            r#""webhook-secret""#,
            Duration::from_secs(30),
        ))
        .await
        .unwrap()
    else {
        panic!("config call should succeed");
    };
    assert_eq!(out.output.unwrap().get(), "null", "unset keys read as none");
}

#[tokio::test]
async fn a_flood_of_follow_up_items_is_invalid_output() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    let outcome = plugin
        .call(request("enqueue-flood", "20000", Duration::from_secs(30)))
        .await
        .unwrap();
    match &outcome {
        CallOutcome::InvalidOutput { reason } => {
            assert!(reason.contains("over the limit of 10000"), "{reason}")
        }
        other => panic!("expected invalid-output, got {other:?}"),
    }
    // A million tiny items is refused while being copied, before the host
    // materializes them.
    let mut req = request("enqueue-flood", "1000000", Duration::from_secs(60));
    req.limits.memory_bytes = 1 << 30;
    let outcome = plugin.call(req).await.unwrap();
    assert!(
        matches!(&outcome, CallOutcome::InvalidOutput { reason } if reason.contains("in one call")),
        "got {outcome:?}"
    );
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn a_cancelled_call_ends_as_an_interrupt_trap() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    for (task, outbound) in [
        ("spin", None),
        (
            "hang-llm",
            Some(Arc::new(Hang) as Arc<dyn sluice::imports::Outbound>),
        ),
    ] {
        let (canceller, cancel) = sluice::runtime::cancellation();
        let mut req = request(task, "{}", Duration::from_secs(60));
        req.cancel = cancel;
        if let Some(outbound) = outbound {
            req.outbound = outbound;
        }
        let started = Instant::now();
        let call = tokio::spawn({
            let plugin = plugin.clone();
            async move { plugin.call(req).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel("claim lost");
        let outcome = call.await.unwrap().unwrap();
        match &outcome {
            CallOutcome::Trap {
                cause: TrapCause::Interrupt,
                message,
            } => assert!(message.contains("claim lost"), "{task}: {message}"),
            other => panic!("{task}: expected an interrupt trap, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{task}: stopped long before its deadline"
        );
    }
    assert_echo_works(&plugin).await;
}

#[tokio::test]
async fn deadlines_still_fire_after_the_runtime_handle_is_dropped() {
    let rt = runtime(2);
    let plugin = adversary(&rt).await;
    drop(rt);
    let started = Instant::now();
    let outcome = plugin
        .call(request("spin", "{}", Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(
        matches!(outcome, CallOutcome::Timeout { .. }),
        "got {outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(300) + MARGIN);
}
