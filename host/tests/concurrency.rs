//! The pool cannot wedge: eight spinning guests and eight guests hung in an
//! import run at once beside well-behaved calls. The well-behaved calls finish
//! while the others are stuck, and every stuck call is freed at its deadline.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::imports::{CallContext, Outbound};
use sluice::runtime::CallOutcome;
use sluice::runtime::bindings::{http, llm};
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
    // Every pool slot came back: the whole pool (slots plus headroom) can be
    // held at once again. Each call parks in an import until all have arrived,
    // so a single leaked slot would make one of them fail to instantiate.
    let whole_pool = 2 * STUCK_EACH + 2 + 4;
    let barrier = Arc::new(tokio::sync::Barrier::new(whole_pool));
    let round: Vec<_> = (0..whole_pool)
        .map(|_| {
            let plugin = plugin.clone();
            let outbound = Arc::new(WaitForAll(barrier.clone()));
            tokio::spawn(async move {
                let mut req = request("hang-llm", "{}", Duration::from_secs(30));
                req.outbound = outbound;
                plugin.call(req).await
            })
        })
        .collect();
    for handle in round {
        let outcome = handle.await.unwrap().expect("a pool slot is free");
        assert!(
            matches!(&outcome, CallOutcome::Retryable { message } if message.contains("everyone arrived")),
            "got {outcome:?}"
        );
    }
}

/// Answers an import only once every caller is inside one.
struct WaitForAll(Arc<tokio::sync::Barrier>);

#[async_trait::async_trait]
impl Outbound for WaitForAll {
    async fn llm(&self, _: &CallContext, _: llm::Request) -> Result<llm::Response, llm::Error> {
        self.0.wait().await;
        Err(llm::Error::Denied("everyone arrived".into()))
    }

    async fn http(&self, _: &CallContext, _: http::Request) -> Result<http::Response, http::Error> {
        self.0.wait().await;
        Err(http::Error::Denied("everyone arrived".into()))
    }
}
