//! Flow control: what keeps an LLM provider's bad day from burning the
//! backlog. The outbound side ([`crate::outbound`]) owns one [`Breaker`] and
//! one [`Budget`] per provider (and one per model that has its own) and
//! consults them on every request; the claim
//! loop asks [`Flow`] which task types may be claimed now, so units whose
//! provider is down stay queued (other task types keep flowing) instead of
//! spending attempts. The [`spend::Ledger`] counts what was spent; the host
//! publishes a [`FlowReport`] with its heartbeat, and [`status`] sums the
//! live hosts' reports for `sluice status`.

pub mod breaker;
pub mod budget;
pub mod spend;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::Store;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use budget::{Budget, BudgetConfig};
pub use spend::{Ledger, SpendReport};
pub use status::FlowStatus;

/// The breakers of every provider and which task types use which provider.
#[derive(Debug, Default)]
pub struct Flow {
    breakers: BTreeMap<String, Arc<Breaker>>,
    budgets: Vec<Arc<Budget>>,
    /// Task type → the provider its `llm` import uses.
    providers: BTreeMap<String, String>,
    spend: Arc<Ledger>,
}

/// One provider's breaker, as reported by `/readyz` and `sluice status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BreakerReport {
    pub provider: String,
    pub state: BreakerState,
    /// When it entered that state (ms since the Unix epoch, this host's clock).
    pub since_ms: i64,
}

/// What a host publishes about its providers with its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FlowReport {
    pub breakers: Vec<BreakerReport>,
    /// Since the host started.
    pub spend: Vec<SpendReport>,
}

impl Flow {
    pub fn new(
        breakers: BTreeMap<String, Arc<Breaker>>,
        budgets: Vec<Arc<Budget>>,
        providers: BTreeMap<String, String>,
        spend: Arc<Ledger>,
    ) -> Self {
        Self {
            breakers,
            budgets,
            providers,
            spend,
        }
    }

    /// Keeps the shared budgets (`budget.shared`) in `store`, with every
    /// other host on the same database.
    pub fn share_budgets(&self, store: &Arc<dyn Store>) {
        for budget in &self.budgets {
            budget.share_through(store);
        }
    }

    /// Whether units of `task_type` may be claimed now: false while the
    /// breaker of the provider it uses is open (or half-open with its probes
    /// out).
    pub fn claimable(&self, task_type: &str) -> bool {
        self.providers
            .get(task_type)
            .and_then(|provider| self.breakers.get(provider))
            .is_none_or(|breaker| breaker.claimable())
    }

    /// Every provider's breaker state.
    pub fn breakers(&self) -> Vec<BreakerReport> {
        self.breakers
            .values()
            .map(|breaker| {
                let (state, since) = breaker.state_since();
                BreakerReport {
                    provider: breaker.provider().to_owned(),
                    state,
                    since_ms: unix_ms(since),
                }
            })
            .collect()
    }

    /// Every provider's breaker and this host's spend, to publish.
    pub fn report(&self) -> FlowReport {
        FlowReport {
            breakers: self.breakers(),
            spend: self.spend.report(),
        }
    }
}

/// `at` in ms since the Unix epoch.
fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
