//! The pool cannot wedge: eight spinning guests and eight guests hung in an
//! import run at once beside well-behaved calls. The well-behaved calls finish
//! while the others are stuck, and every stuck call is freed at its deadline.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::runtime::CallOutcome;
use support::{Hang, adversary, request, runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_calls_do_not_block_healthy_ones_and_all_are_freed() {
    const STUCK_EACH: usize = 8;
    const ECHOES: usize = 40;
    let deadline = Duration::from_secs(3);
    let rt = runtime((2 * STUCK_EACH + 2) as u32);
    let plugin = adversary(&rt).await;

    let started = Instant::now();
    let mut stuck = Vec::new();
    for n in 0..2 * STUCK_EACH {
        let plugin = plugin.clone();
        let (task, hang) = if n % 2 == 0 {
            ("spin", false)
        } else {
            ("hang-llm", true)
        };
        stuck.push(tokio::spawn(async move {
            let mut req = request(task, "{}", deadline);
            if hang {
                req.outbound = Arc::new(Hang);
            }
            let outcome = plugin.call(req).await.expect("stuck call runs");
            (task, outcome, started.elapsed())
        }));
    }
    // Let every stuck call get going before the healthy ones start.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut echoes_done_at = Vec::new();
    for _ in 0..ECHOES {
        let outcome = plugin
            .call(request("echo", r#"{"ok":1}"#, Duration::from_secs(30)))
            .await
            .expect("echo call runs");
        assert!(
            matches!(outcome, CallOutcome::Ok(_)),
            "echo failed: {outcome:?}"
        );
        echoes_done_at.push(started.elapsed());
    }
    let last_echo = *echoes_done_at.last().unwrap();
    assert!(
        last_echo < deadline,
        "all {ECHOES} echo calls should finish while the stuck calls are still stuck \
         (last finished at {last_echo:?}, stuck calls end at {deadline:?})"
    );

    for handle in stuck {
        let (task, outcome, ended) = handle.await.unwrap();
        assert!(
            matches!(outcome, CallOutcome::Timeout { .. }),
            "{task}: expected a timeout, got {outcome:?}"
        );
        assert!(
            ended >= deadline && ended < deadline + Duration::from_secs(5),
            "{task}: freed at {ended:?}, deadline {deadline:?}"
        );
    }
    // Every pool slot came back: a full round of concurrent calls still fits.
    let round: Vec<_> = (0..2 * STUCK_EACH + 2)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move {
                plugin
                    .call(request("echo", "{}", Duration::from_secs(30)))
                    .await
            })
        })
        .collect();
    for handle in round {
        let outcome = handle.await.unwrap().expect("a pool slot is free");
        assert!(matches!(outcome, CallOutcome::Ok(_)), "got {outcome:?}");
    }
}
