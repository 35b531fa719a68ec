//! Flow control: what keeps an LLM provider's bad day from burning the
//! backlog. The outbound side ([`crate::outbound`]) owns one [`Breaker`] and
//! one [`Budget`] per provider and consults both on every request; the claim
//! loop asks [`Flow`] which task types may be claimed now, so units whose
//! provider is down stay queued (other task types keep flowing) instead of
//! spending attempts.

pub mod breaker;
pub mod budget;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::store::Store;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use budget::{Budget, BudgetConfig};

/// The breakers of every provider and which task types use which provider.
#[derive(Debug, Default)]
pub struct Flow {
    breakers: BTreeMap<String, Arc<Breaker>>,
    budgets: Vec<Arc<Budget>>,
    /// Task type → the provider its `llm` import uses.
    providers: BTreeMap<String, String>,
}

/// One provider's breaker, as reported by `/readyz` and `sluice status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerReport {
    pub provider: String,
    pub state: BreakerState,
}

impl Flow {
    pub fn new(
        breakers: BTreeMap<String, Arc<Breaker>>,
        budgets: Vec<Arc<Budget>>,
        providers: BTreeMap<String, String>,
    ) -> Self {
        Self {
            breakers,
            budgets,
            providers,
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
            .map(|breaker| BreakerReport {
                provider: breaker.provider().to_owned(),
                state: breaker.state(),
            })
            .collect()
    }
}
