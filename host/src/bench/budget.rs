//! `sluice bench budget`: what a provider budget adds to each LLM request,
//! measured on the budget alone (no HTTP): no limits, limits kept in this
//! process, and limits shared through SQLite and Postgres (one pace row
//! per rate, as several hosts would use them). The limits are set far above
//! the rate the loop reaches, so every request is let through at once and the
//! figure is the accounting itself, not waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::flow::{Budget, BudgetConfig};
use crate::store::Store;

/// The cost of one request's budget check, in microseconds.
#[derive(Debug, Serialize)]
pub struct BudgetCost {
    pub budget: String,
    pub requests: usize,
    pub median_us: f64,
    pub p90_us: f64,
}

/// Limits no loop reaches: requests and tokens per minute, both checked.
fn limits(shared: bool) -> BudgetConfig {
    BudgetConfig {
        max_concurrent: Some(1_000),
        requests_per_minute: Some(u32::MAX),
        tokens_per_minute: Some(u64::from(u32::MAX)),
        shared,
    }
}

/// Times `requests` budget checks of `budget`, each with its token correction.
async fn measure(name: &str, budget: Arc<Budget>, requests: usize) -> anyhow::Result<BudgetCost> {
    let far = Instant::now() + Duration::from_secs(3600);
    let mut micros = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let (spent, _) = budget
            .spend(100, far)
            .await
            .map_err(|over| anyhow::anyhow!("the budget made a request wait {:?}", over.wait))?;
        spent.used(90);
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    Ok(BudgetCost {
        budget: name.to_owned(),
        requests,
        median_us: micros[micros.len() / 2],
        p90_us: micros[micros.len() * 9 / 10],
    })
}

/// Every kind of budget, `requests` checks each; the shared ones in `stores`
/// (a name and a store each).
pub async fn run(
    requests: usize,
    stores: Vec<(String, Arc<dyn Store>)>,
) -> anyhow::Result<Vec<BudgetCost>> {
    let mut results = vec![
        measure(
            "none",
            Budget::new("bench", BudgetConfig::default()),
            requests,
        )
        .await?,
        measure("local", Budget::new("bench", limits(false)), requests).await?,
    ];
    for (name, store) in stores {
        let budget = Budget::new("bench", limits(true));
        budget.share_through(&store);
        results.push(measure(&format!("shared ({name})"), budget, requests).await?);
    }
    Ok(results)
}
