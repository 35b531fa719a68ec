//! How much a guest may write to the host's logs: a budget per call and a
//! rate per host.
//!
//! Every guest line (the `log` import, stdout, stderr) costs its length plus a
//! fixed overhead, so a flood of empty lines costs too. A call spends from its
//! own budget and from one token bucket shared by the whole process. The
//! first line refused ends the call's logging: one "logs suppressed" line says
//! why, and the rest of the call's lines are dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::imports::log::{GuestLevel, emit};

/// What each guest line costs on top of its bytes (timestamp, span fields).
pub const LINE_OVERHEAD_BYTES: usize = 64;
/// Default budget of one call, in bytes: 1 MiB.
pub const DEFAULT_BYTES_PER_CALL: usize = 1 << 20;
/// Default rate for all guests of the process, in bytes per second: 2 MiB/s.
pub const DEFAULT_BYTES_PER_SECOND: u64 = 2 << 20;

/// The process-wide rate, set once at start by `sluice run` and `sluice exec`.
static HOST_RATE: AtomicU64 = AtomicU64::new(DEFAULT_BYTES_PER_SECOND);
/// The process-wide bucket: (bytes available, when it was last refilled).
static HOST_BUCKET: Mutex<Option<(f64, Instant)>> = Mutex::new(None);

/// Sets the rate all guests of this process share (`[limits] log_bytes_per_second`).
pub fn set_host_rate(bytes_per_second: u64) {
    HOST_RATE.store(bytes_per_second, Ordering::Relaxed);
}

/// Takes `cost` bytes from the host's bucket, which holds at most one
/// second's worth; `false` when it is empty.
fn take_from_host(cost: usize) -> bool {
    let rate = HOST_RATE.load(Ordering::Relaxed) as f64;
    let mut bucket = HOST_BUCKET.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let (available, last) = bucket.get_or_insert((rate, now));
    *available = (*available + now.duration_since(*last).as_secs_f64() * rate).min(rate);
    *last = now;
    if *available >= cost as f64 {
        *available -= cost as f64;
        true
    } else {
        false
    }
}

/// One call's log budget; clones share it (the `log` import, stdout, stderr).
#[derive(Clone)]
pub(crate) struct LogBudget {
    state: Arc<Mutex<State>>,
}

struct State {
    per_call: usize,
    spent: usize,
    suppressed: bool,
}

impl LogBudget {
    pub(crate) fn new(bytes_per_call: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                per_call: bytes_per_call,
                spent: 0,
                suppressed: false,
            })),
        }
    }

    /// Logs `message` as a guest line if the budgets allow, otherwise drops
    /// it (saying so once per call).
    pub(crate) fn emit(&self, level: GuestLevel, source: &'static str, message: &str) {
        let cost = message.len().saturating_add(LINE_OVERHEAD_BYTES);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.suppressed {
            return;
        }
        let why = if state.spent.saturating_add(cost) > state.per_call {
            format!(
                "the call's budget of {} bytes is spent ([limits] log_bytes_per_call)",
                state.per_call
            )
        } else if !take_from_host(cost) {
            format!(
                "guests of this host are logging more than {} bytes per second ([limits] log_bytes_per_second)",
                HOST_RATE.load(Ordering::Relaxed)
            )
        } else {
            state.spent += cost;
            drop(state);
            emit(level, source, message);
            return;
        };
        state.suppressed = true;
        drop(state);
        emit(
            GuestLevel::Warn,
            source,
            &format!("logs suppressed for the rest of this call: {why}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_stops_logging_once_its_budget_is_spent() {
        let budget = LogBudget::new(3 * (10 + LINE_OVERHEAD_BYTES));
        for _ in 0..5 {
            budget.emit(GuestLevel::Info, "log", "0123456789");
        }
        let state = budget.state.lock().unwrap();
        assert!(state.suppressed);
        assert_eq!(state.spent, 3 * (10 + LINE_OVERHEAD_BYTES));
    }
}
