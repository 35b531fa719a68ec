//! A provider's breaker and spend as an operator reads them away from the
//! host: `sluice status --json` (the real binary, reading only the database)
//! shows the running host's breaker open while the mock LLM is down and
//! closed once it is back, and spend figures that match what the mock saw and
//! what the outputs record; `/readyz` lists the breaker in its detail, open
//! then closed, without the host ever becoming unready for it.

mod support;

use std::process::Command;
use std::time::Duration;

use mock_llm::{MockLlm, Options};
use serde_json::Value;
use sluice::flow::BreakerConfig;
use support::host::{self, count, http_get, wait_until};
use support::stores::{self, TestStore};

const TASK: &str = "llm-call";
const UNITS: usize = 20;

/// `sluice status --json` against `url`.
async fn status(url: &str) -> Value {
    let out = status_text(url, true).await;
    serde_json::from_str(&out).expect("sluice status --json prints JSON")
}

/// `sluice status` against `url`, run as a separate process with no
/// configuration file and no `SLUICE_*` variables; its output.
async fn status_text(url: &str, json: bool) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .current_dir(dir.path())
            .args(["status", "--database-url", &url]);
        if json {
            command.arg("--json");
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("SLUICE_") {
                command.env_remove(key);
            }
        }
        let out = command.output().expect("sluice status runs");
        assert!(
            out.status.success(),
            "sluice status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    })
    .await
    .unwrap()
}

/// The breaker state `status` shows for provider `mock` on the only host,
/// and in the sum over hosts.
fn breaker(status: &Value) -> Option<(String, Value)> {
    let hosts = status["flow"]["hosts"].as_array()?;
    let [host] = hosts.as_slice() else {
        return None;
    };
    let state = host["breakers"]
        .as_array()?
        .iter()
        .find(|b| b["provider"] == "mock")?["state"]
        .as_str()?
        .to_owned();
    let total = status["flow"]["breakers"]
        .as_array()?
        .iter()
        .find(|b| b["provider"] == "mock")?
        .clone();
    Some((state, total))
}

/// The readyz detail's state of provider `mock`.
async fn readyz_breaker(addr: std::net::SocketAddr) -> (u16, String) {
    let (code, body) = http_get(addr, "/readyz").await;
    let body: Value = serde_json::from_str(&body).expect("/readyz answers JSON");
    let state = body["llm_providers"]
        .as_array()
        .and_then(|providers| providers.iter().find(|p| p["provider"] == "mock"))
        .and_then(|p| p["state"].as_str())
        .unwrap_or("missing")
        .to_owned();
    (code, state)
}

async fn breaker_and_spend_reach_status(db: TestStore) {
    let mock = MockLlm::start(Options::default()).await.unwrap();
    let mut config = host::fast_config(2);
    host::mock_llm(&mut config, &mock.base_url(), false);
    for provider in config.llm.providers.values_mut() {
        provider.breaker = BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(1),
            probes: 1,
        };
    }
    config.tasks.insert(
        TASK.into(),
        host::with_llm(host::task(Duration::from_secs(20), 3), "mock-model"),
    );
    let stall_after = config.stall_after;
    mock.outage(Duration::from_secs(6));
    let outbound = host::network(&config);
    let host = host::start(db.store.clone(), config, outbound).await;
    let addr = sluice::api::bind("127.0.0.1:0".parse().unwrap(), host.clone(), stall_after)
        .await
        .unwrap();
    db.store
        .enqueue(&host::units(TASK, "llm", UNITS))
        .await
        .unwrap();

    wait_until(
        "sluice status shows the breaker open",
        Duration::from_secs(20),
        || async {
            match breaker(&status(&db.url).await) {
                Some((state, total)) => state == "open" && total["open"] == 1,
                None => false,
            }
        },
    )
    .await;
    let text = status_text(&db.url, false).await;
    let line = |starts: &str, holds: &[&str]| {
        text.lines()
            .any(|l| l.starts_with(starts) && holds.iter().all(|h| l.contains(h)))
    };
    assert!(
        line("mock", &["all 1 hosts", "open"]) && line(TASK, &["mock", "all 1 hosts"]),
        "the table shows the breaker and the spend over all hosts:\n{text}"
    );
    wait_until(
        "/readyz lists the open breaker, and stays ready",
        Duration::from_secs(20),
        || async { readyz_breaker(addr).await == (200, "open".into()) },
    )
    .await;

    wait_until(
        "every unit is done after the outage",
        Duration::from_secs(90),
        || async { count(db.store.as_ref(), TASK, "done").await == UNITS as i64 },
    )
    .await;
    assert_eq!(readyz_breaker(addr).await, (200, "closed".into()));

    // The figures: HTTP requests as the mock counted them, tokens as the
    // stored call records report them, one successful call per unit.
    let records = host::call_records(&db, TASK).await;
    let tokens = |direction: &str| -> u64 {
        records
            .iter()
            .map(|r| r["usage"][direction].as_u64().unwrap())
            .sum()
    };
    let (input, output) = (tokens("input_tokens"), tokens("output_tokens"));
    let requests = mock.requests().len() as u64;
    let mut last = Value::Null;
    let matched = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            last = status(&db.url).await;
            let closed = breaker(&last).is_some_and(|(state, _)| state == "closed");
            let spend = &last["flow"]["spend"][0];
            let failures: u64 = spend["failures"]
                .as_object()
                .map(|f| f.values().filter_map(Value::as_u64).sum())
                .unwrap_or(0);
            if closed
                && spend["task_type"] == TASK
                && spend["requests"] == requests
                && spend["input_tokens"] == input
                && spend["output_tokens"] == output
                && spend["calls"].as_u64() == Some(UNITS as u64 + failures)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        matched.is_ok(),
        "sluice status shows the breaker closed and spend matching {requests} requests, \
         {input} input and {output} output tokens and {UNITS} successful calls: {last:#}"
    );
    let spend = &last["flow"]["spend"][0];
    assert!(
        spend["failures"]["unavailable"].as_u64().unwrap_or(0) > 0,
        "calls refused by the open breaker are counted: {spend}"
    );
    assert_eq!(spend, &last["flow"]["hosts"][0]["spend"][0], "one host");
    assert!(input > 0 && output > 0);
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_and_spend_reach_sluice_status_sqlite() {
    breaker_and_spend_reach_status(stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_and_spend_reach_sluice_status_postgres() {
    breaker_and_spend_reach_status(stores::postgres().await).await;
}
