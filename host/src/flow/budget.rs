//! A provider's budget: how many requests may be open at once, and how many
//! requests and tokens per minute it may be sent, shared by every slot.
//!
//! A request over budget waits inside the `llm` import, never past the call's
//! deadline (a wait that would end after it fails at once as `rate-limited`).
//! Rates are paced evenly (a generic cell rate algorithm): each request (or
//! token) moves a "theoretical arrival time" forward by its share of a
//! minute, and a request may go once that time is at most one second of
//! budget ahead of now, so in no window does the provider see more than the
//! rate plus one second's burst. Tokens are estimated before the request (the
//! prompt's characters / 4 plus `max-tokens`) and corrected with the usage the
//! provider reports. A `Retry-After` from the provider, or its rate-limit
//! headers saying a limit is used up, holds every request to it until then,
//! not only the one that saw it.
//!
//! With `shared`, the rates are kept in the database instead (a pace row per
//! rate, `Store::take_pace`), so every host on it spends one budget: one short
//! write per request. Concurrency and those holds stay per host.
//!
//! A model may have a budget of its own (`[llm.providers.X.models.M.budget]`),
//! spent in addition to the provider's: a request to it waits for both.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{Store, StoreError};

/// The budget keys of `[llm.providers.<name>]`; unset means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Requests open at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Requests sent per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Input plus output tokens per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Share the rates with every host on the same database (one pace row
    /// per rate), so that N hosts do not each spend the whole budget.
    pub shared: bool,
}

impl BudgetConfig {
    /// Refuses a limit of zero, which would stop every request rather than
    /// limit them. On error: the key at fault and what is wrong with it.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let zero = "is 0, which would hold every request until its deadline; \
                    leave it unset for no limit";
        if self.max_concurrent == Some(0) {
            return Err(("max_concurrent", zero.into()));
        }
        if self.requests_per_minute == Some(0) {
            return Err(("requests_per_minute", zero.into()));
        }
        if self.tokens_per_minute == Some(0) {
            return Err(("tokens_per_minute", zero.into()));
        }
        Ok(())
    }
}

/// How far ahead of now a pace may run: one second of its budget.
const BURST: Duration = Duration::from_secs(1);

/// An even pace of `per_minute` units.
#[derive(Debug)]
struct Pace {
    /// Time one unit takes of the budget.
    interval: Duration,
    /// When the budget spent so far is paid off.
    paid_until: Instant,
}

impl Pace {
    fn new(per_minute: u64) -> Self {
        Self {
            interval: Duration::from_secs(60)
                / u32::try_from(per_minute.max(1)).unwrap_or(u32::MAX),
            paid_until: Instant::now(),
        }
    }

    /// When `cost` more units may go.
    fn ready_at(&self, now: Instant) -> Instant {
        let start = self.paid_until.max(now);
        start.checked_sub(BURST).unwrap_or(now).max(now)
    }

    fn spend(&mut self, now: Instant, cost: u64) {
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        self.paid_until = self.paid_until.max(now) + self.interval * cost;
    }

    /// A correction of an earlier spend: `delta` more (or fewer) units.
    fn adjust(&mut self, delta: i64) {
        let by = self.interval * u32::try_from(delta.unsigned_abs()).unwrap_or(u32::MAX);
        if delta >= 0 {
            self.paid_until += by;
        } else {
            self.paid_until = self.paid_until.checked_sub(by).unwrap_or(self.paid_until);
        }
    }
}

#[derive(Debug, Default)]
struct Paces {
    requests: Option<Pace>,
    tokens: Option<Pace>,
    /// The provider asked every request to wait until then.
    held_until: Option<Instant>,
}

/// One provider's budget, shared by every call to it.
pub struct Budget {
    provider: String,
    /// The model this budget is for; `None`: the whole provider.
    model: Option<String>,
    concurrent: Option<Arc<Semaphore>>,
    paces: Mutex<Paces>,
    /// Where shared rates are kept, once the host attached its store.
    shared: Option<OnceLock<Arc<dyn Store>>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("paces", &self.paces)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// The request would have to wait past the call's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// How long it would have had to wait.
    pub wait: Duration,
}

/// A request the budget let through: holds its place among the concurrent
/// requests until dropped.
#[derive(Debug)]
pub struct Spent {
    budget: Arc<Budget>,
    estimate: u64,
    _open: Option<OwnedSemaphorePermit>,
}

impl Spent {
    /// Corrects the token estimate with what the provider reported.
    pub fn used(&self, tokens: u64) {
        let delta = i64::try_from(tokens).unwrap_or(i64::MAX)
            - i64::try_from(self.estimate).unwrap_or(i64::MAX);
        if let Some(store) = self.budget.store() {
            let Some(interval) = self.budget.lock().tokens.as_ref().map(|p| p.interval) else {
                return;
            };
            let key = self.budget.key("tokens");
            let by = micros(interval).saturating_mul(delta);
            // Off the request's path: the correction only shapes later requests.
            tokio::spawn(async move {
                if let Err(err) = store.adjust_pace(&key, by).await {
                    tracing::debug!(error = %err, key, "cannot correct the shared token budget");
                }
            });
        } else if let Some(pace) = self.budget.lock().tokens.as_mut() {
            pace.adjust(delta);
        }
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl Budget {
    pub fn new(provider: &str, config: BudgetConfig) -> Arc<Self> {
        Self::build(provider, None, config)
    }

    /// The budget of one `model` of `provider`, spent besides the provider's.
    pub fn for_model(provider: &str, model: &str, config: BudgetConfig) -> Arc<Self> {
        Self::build(provider, Some(model), config)
    }

    fn build(provider: &str, model: Option<&str>, config: BudgetConfig) -> Arc<Self> {
        Arc::new(Self {
            provider: provider.to_owned(),
            model: model.map(str::to_owned),
            concurrent: config
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            paces: Mutex::new(Paces {
                requests: config.requests_per_minute.map(|n| Pace::new(n.into())),
                tokens: config.tokens_per_minute.map(Pace::new),
                held_until: None,
            }),
            shared: config.shared.then(OnceLock::new),
        })
    }

    /// Keeps this budget's rates in `store`, shared with every host there,
    /// if the operator asked for a shared budget.
    pub fn share_through(&self, store: &Arc<dyn Store>) {
        if let Some(shared) = &self.shared {
            let _ = shared.set(store.clone());
        }
    }

    fn store(&self) -> Option<Arc<dyn Store>> {
        self.shared.as_ref()?.get().cloned()
    }

    /// The shared pace row of one of this budget's rates.
    fn key(&self, rate: &str) -> String {
        match &self.model {
            None => format!("llm/{}/{rate}", self.provider),
            Some(model) => format!("llm/{}/models/{model}/{rate}", self.provider),
        }
    }

    /// Takes one request of `tokens` from the shared paces, or says how long
    /// to wait before trying again (then nothing is taken).
    async fn take_shared(
        &self,
        store: &dyn Store,
        tokens: u64,
    ) -> Result<Option<Duration>, StoreError> {
        let (requests, per_token) = {
            let paces = self.lock();
            (
                paces.requests.as_ref().map(|p| p.interval),
                paces.tokens.as_ref().map(|p| p.interval),
            )
        };
        let burst = micros(BURST);
        let token_cost = per_token.map(|interval| {
            micros(interval).saturating_mul(i64::try_from(tokens).unwrap_or(i64::MAX))
        });
        if let Some(cost) = token_cost
            && let Some(wait) = store.take_pace(&self.key("tokens"), cost, burst).await?
        {
            return Ok(Some(wait));
        }
        if let Some(interval) = requests
            && let Some(wait) = store
                .take_pace(&self.key("requests"), micros(interval), burst)
                .await?
        {
            if let Some(cost) = token_cost {
                store.adjust_pace(&self.key("tokens"), -cost).await?;
            }
            return Ok(Some(wait));
        }
        Ok(None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Paces> {
        self.paces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until one request of about `tokens` tokens fits the budget, at
    /// most until `deadline`. Returns the time waited with the place taken.
    pub async fn spend(
        self: &Arc<Self>,
        tokens: u64,
        deadline: Instant,
    ) -> Result<(Spent, Duration), OverBudget> {
        let started = Instant::now();
        // Whether the request had to wait at all (else it reports no wait).
        let mut waited = false;
        let open = match &self.concurrent {
            None => None,
            Some(semaphore) => match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    waited = true;
                    let acquired =
                        tokio::time::timeout_at(deadline.into(), semaphore.clone().acquire_owned())
                            .await;
                    match acquired {
                        Ok(Ok(permit)) => Some(permit),
                        // The semaphore is never closed; a timeout is over budget.
                        _ => {
                            return Err(OverBudget {
                                wait: started.elapsed(),
                            });
                        }
                    }
                }
            },
        };
        let store = self.store();
        loop {
            let now = Instant::now();
            let ready = match &store {
                Some(store) => self.ready_shared(store.as_ref(), now, tokens).await,
                None => self.ready_local(now, tokens),
            };
            if ready <= now {
                let waited = if waited {
                    started.elapsed()
                } else {
                    Duration::ZERO
                };
                return Ok((
                    Spent {
                        budget: self.clone(),
                        estimate: tokens,
                        _open: open,
                    },
                    waited,
                ));
            }
            if ready > deadline {
                return Err(OverBudget {
                    wait: ready - started,
                });
            }
            waited = true;
            tokio::time::sleep_until(ready.into()).await;
        }
    }

    /// When this host's paces let one more request of `tokens` go; if that is
    /// now, it is taken.
    fn ready_local(&self, now: Instant, tokens: u64) -> Instant {
        let mut paces = self.lock();
        let ready = [
            paces.requests.as_ref().map(|p| p.ready_at(now)),
            paces.tokens.as_ref().map(|p| p.ready_at(now)),
            paces.held_until,
        ]
        .into_iter()
        .flatten()
        .fold(now, Instant::max);
        if ready <= now {
            if let Some(pace) = paces.requests.as_mut() {
                pace.spend(now, 1);
            }
            if let Some(pace) = paces.tokens.as_mut() {
                pace.spend(now, tokens);
            }
        }
        ready
    }

    /// As [`Budget::ready_local`], with the rates kept in the database. A
    /// database that does not answer falls back to this host's paces for
    /// the request: a budget never stops calls the database cannot count.
    async fn ready_shared(&self, store: &dyn Store, now: Instant, tokens: u64) -> Instant {
        if let Some(held) = self.lock().held_until
            && held > now
        {
            return held;
        }
        match self.take_shared(store, tokens).await {
            Ok(None) => now,
            Ok(Some(wait)) => now + wait,
            Err(err) => {
                tracing::warn!(
                    provider = %self.provider,
                    model = self.model.as_deref(),
                    error = %err,
                    "cannot reach the shared LLM budget; pacing this request locally"
                );
                self.ready_local(now, tokens)
            }
        }
    }

    /// The provider asked to wait `wait` (a `Retry-After`, or rate-limit
    /// headers saying a limit is used up): every request to it waits that
    /// long, not only the one that was told.
    pub fn hold_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paces = self.lock();
        if paces.held_until.is_none_or(|held| held < until) {
            paces.held_until = Some(until);
            tracing::info!(
                provider = %self.provider,
                model = self.model.as_deref(),
                wait_ms = wait.as_millis() as u64,
                "the LLM provider asked to wait: holding every request to it"
            );
        }
    }
}

/// The tokens a request will likely use: its text's characters / 4 (a
/// common rule of thumb for English) plus the output it may produce.
pub fn estimate_tokens(text_chars: usize, max_output: Option<u32>) -> u64 {
    (text_chars as u64).div_ceil(4) + u64::from(max_output.unwrap_or(DEFAULT_OUTPUT_ESTIMATE))
}

/// The output estimated for a request without `max-tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u32 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// When each of `n` requests of `tokens` would go, from `start` on, if
    /// each went as soon as the budget let it (no sleeping: the paces are
    /// asked about instants).
    fn schedule(budget: &Budget, start: Instant, n: usize, tokens: u64) -> Vec<Duration> {
        let mut now = start;
        let mut times = Vec::new();
        while times.len() < n {
            let ready = budget.ready_local(now, tokens);
            if ready <= now {
                times.push(now - start);
            } else {
                now = ready;
            }
        }
        times
    }

    #[test]
    fn requests_are_paced_to_the_rate_with_one_second_of_burst() {
        let budget = Budget::new(
            "p",
            BudgetConfig {
                requests_per_minute: Some(120),
                ..BudgetConfig::default()
            },
        );
        let times = schedule(&budget, Instant::now(), 10, 0);
        // 2 a second: one second of burst (and the request at its edge) at
        // once, then one every 500 ms.
        assert_eq!(times[2], Duration::ZERO, "{times:?}");
        assert_eq!(times[3], Duration::from_millis(500), "{times:?}");
        assert_eq!(times[9], Duration::from_millis(3500), "{times:?}");
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_fails_at_once_and_retry_after_holds_everyone() {
        let budget = Budget::new("p", BudgetConfig::default());
        let start = Instant::now();
        budget.hold_for(Duration::from_secs(5));
        let err = budget
            .spend(10, start + Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.wait >= Duration::from_millis(4900), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(1), "it did not wait");
        let held = budget.ready_local(start, 10);
        assert!(held >= start + Duration::from_millis(4900));
    }

    #[tokio::test]
    async fn concurrency_is_capped_and_tokens_are_corrected_after() {
        let budget = Budget::new(
            "p",
            BudgetConfig {
                max_concurrent: Some(1),
                tokens_per_minute: Some(600),
                ..BudgetConfig::default()
            },
        );
        let far = Instant::now() + Duration::from_secs(3600);
        let (first, _) = budget.spend(10, far).await.unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(
            budget.spend(10, soon).await.is_err(),
            "one request at a time"
        );
        // The first request really used 100 tokens: ten seconds of budget
        // at 10 a second, one of which may be spent ahead.
        let start = Instant::now();
        first.used(100);
        drop(first);
        let times = schedule(&budget, start, 1, 10);
        assert!(times[0] >= Duration::from_millis(8800), "{times:?}");
    }
}
