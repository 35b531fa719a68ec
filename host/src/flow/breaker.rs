//! A circuit breaker per LLM provider: when the provider keeps failing, stop
//! sending it work rather than spend every unit's attempts on an outage.
//!
//! Closed, it counts consecutive failed requests (connection errors, timeouts,
//! 5xx, 429); at `failures` it opens. Open, it refuses every request (the
//! import answers `unavailable`, and the worker gives the unit back without
//! counting an attempt) and the claim loop stops claiming the task types that
//! use the provider. After `cooldown` it is half-open: `probes` requests go
//! through; a probe that succeeds closes it, one that fails opens it again.
//! Each transition is one log line, a gauge and a counter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// `[llm.providers.<name>.breaker]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failed requests that open the breaker; 0 turns it off.
    pub failures: u32,
    /// How long it stays open before letting probes through.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Requests let through at once while half-open.
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(30),
            probes: 1,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half-open",
            Self::Open => "open",
        }
    }

    /// The value of the `sluice_llm_breaker_state` gauge.
    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: u32 },
}

impl State {
    fn public(&self) -> BreakerState {
        match self {
            Self::Closed { .. } => BreakerState::Closed,
            Self::Open { .. } => BreakerState::Open,
            Self::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// One provider's breaker. Shared by every call to the provider.
#[derive(Debug)]
pub struct Breaker {
    provider: String,
    config: BreakerConfig,
    state: Mutex<State>,
    /// When it entered its current state.
    since: Mutex<SystemTime>,
}

/// The breaker refused a request: the provider is considered down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// How one admitted request ended, as far as the provider's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The provider answered as it should (a 4xx about the request included).
    Healthy,
    /// A connection error, timeout, 5xx or 429.
    Failing,
}

/// A request the breaker let through. Report how it ended with
/// [`Admitted::ended`]; dropped unreported (the call was cancelled), it
/// says nothing about the provider and frees its probe.
pub struct Admitted {
    breaker: Arc<Breaker>,
    probe: bool,
    reported: bool,
}

impl Admitted {
    /// Records the request's end. Returns whether the breaker is now open
    /// (this request was the one too many, or a probe failed).
    pub fn ended(mut self, health: Health) -> bool {
        self.reported = true;
        self.breaker.record(self.probe, Some(health))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(self.probe, None);
        }
    }
}

impl Breaker {
    pub fn new(provider: &str, config: BreakerConfig) -> Arc<Self> {
        let breaker = Arc::new(Self {
            provider: provider.to_owned(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            since: Mutex::new(SystemTime::now()),
        });
        breaker.publish(BreakerState::Closed);
        breaker
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the breaker is now (an open breaker past its cool-down reads as
    /// half-open).
    pub fn state(&self) -> BreakerState {
        let mut state = self.lock();
        self.cool(&mut state);
        state.public()
    }

    /// Where the breaker is now, and since when.
    pub fn state_since(&self) -> (BreakerState, SystemTime) {
        let mut state = self.lock();
        self.cool(&mut state);
        // Transitions set `since` under the state's lock: the two agree.
        let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
        (state.public(), since)
    }

    /// Whether units that use the provider may be claimed now: closed, or
    /// half-open with a probe to spare.
    pub fn claimable(&self) -> bool {
        let mut state = self.lock();
        self.cool(&mut state);
        match *state {
            State::Closed { .. } => true,
            State::Open { .. } => false,
            State::HalfOpen { probing } => probing < self.config.probes,
        }
    }

    /// Lets one request through, or refuses it while the provider is down.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, Unavailable> {
        let mut state = self.lock();
        self.cool(&mut state);
        let probe = match &mut *state {
            State::Closed { .. } => false,
            State::Open { .. } => return Err(Unavailable),
            State::HalfOpen { probing } if *probing < self.config.probes => {
                *probing += 1;
                true
            }
            State::HalfOpen { .. } => return Err(Unavailable),
        };
        Ok(Admitted {
            breaker: self.clone(),
            probe,
            reported: false,
        })
    }

    /// Open past its cool-down: half-open.
    fn cool(&self, state: &mut State) {
        if let State::Open { until } = *state
            && Instant::now() >= until
        {
            *state = State::HalfOpen { probing: 0 };
            // It became half-open when the cool-down ended, not when asked.
            let at = SystemTime::now()
                .checked_sub(until.elapsed())
                .unwrap_or_else(SystemTime::now);
            self.transition_at(
                at,
                BreakerState::HalfOpen,
                "cool-down over: letting probes through",
            );
        }
    }

    /// One admitted request ended (`None`: it was abandoned). Returns whether
    /// the breaker is open afterwards.
    fn record(&self, probe: bool, health: Option<Health>) -> bool {
        let mut state = self.lock();
        match (&mut *state, health) {
            (State::HalfOpen { probing }, None) if probe => {
                *probing = probing.saturating_sub(1);
            }
            (State::HalfOpen { .. }, Some(Health::Healthy)) if probe => {
                *state = State::Closed { failures: 0 };
                self.transition(
                    BreakerState::Closed,
                    "a probe succeeded: the provider is back",
                );
            }
            (State::HalfOpen { .. }, Some(Health::Failing)) if probe => {
                self.open(&mut state, "a probe failed: open again");
            }
            (State::Closed { failures }, Some(Health::Healthy)) => *failures = 0,
            (State::Closed { failures }, Some(Health::Failing)) if self.config.failures > 0 => {
                *failures += 1;
                if *failures >= self.config.failures {
                    let reason = format!("{failures} requests in a row failed");
                    self.open(&mut state, &reason);
                }
            }
            // Requests admitted before the breaker opened (or before it went
            // half-open) say nothing about the probe's verdict.
            _ => {}
        }
        matches!(*state, State::Open { .. })
    }

    fn open(&self, state: &mut State, reason: &str) {
        *state = State::Open {
            until: Instant::now() + self.config.cooldown,
        };
        self.transition(BreakerState::Open, reason);
    }

    fn transition(&self, to: BreakerState, reason: &str) {
        self.transition_at(SystemTime::now(), to, reason);
    }

    fn transition_at(&self, at: SystemTime, to: BreakerState, reason: &str) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = at;
        match to {
            BreakerState::Open => tracing::warn!(
                provider = %self.provider,
                state = to.name(),
                cooldown_ms = self.config.cooldown.as_millis() as u64,
                reason,
                "LLM provider circuit breaker opened: its task types are not claimed until it recovers"
            ),
            _ => tracing::info!(
                provider = %self.provider,
                state = to.name(),
                reason,
                "LLM provider circuit breaker changed state"
            ),
        }
        metrics::counter!("sluice_llm_breaker_transitions_total", "provider" => self.provider.clone(), "state" => to.name())
            .increment(1);
        self.publish(to);
    }

    fn publish(&self, state: BreakerState) {
        metrics::gauge!("sluice_llm_breaker_state", "provider" => self.provider.clone())
            .set(state.gauge());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown: Duration) -> Arc<Breaker> {
        Breaker::new(
            "p",
            BreakerConfig {
                failures: 3,
                cooldown,
                probes: 1,
            },
        )
    }

    fn fail(breaker: &Arc<Breaker>) -> bool {
        breaker.admit().unwrap().ended(Health::Failing)
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let b = breaker(Duration::from_secs(60));
        assert!(!fail(&b));
        assert!(!fail(&b));
        assert!(!b.admit().unwrap().ended(Health::Healthy));
        assert!(!fail(&b));
        assert!(!fail(&b));
        assert!(fail(&b), "the third failure in a row opens it");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.claimable());
        assert!(b.admit().is_err());
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_verdict_decides() {
        let b = breaker(Duration::ZERO);
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.admit().expect("one probe goes through");
        assert!(!b.claimable(), "the probe is taken");
        assert!(b.admit().is_err(), "a second request waits for the verdict");
        drop(probe);
        assert!(b.claimable(), "an abandoned probe frees its place");
        assert!(
            b.admit().unwrap().ended(Health::Failing),
            "a failed probe opens it again"
        );
        // Zero cool-down: at once half-open again; this probe succeeds.
        assert!(!b.admit().unwrap().ended(Health::Healthy));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let b = Breaker::new(
            "p",
            BreakerConfig {
                failures: 0,
                ..BreakerConfig::default()
            },
        );
        for _ in 0..100 {
            assert!(!fail(&b));
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
