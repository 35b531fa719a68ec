//! The `log` import, and the one place guest log lines become `tracing` events.
//!
//! Guest lines land in the current span (the unit being processed) under the
//! `sluice::guest` target, so operators can filter them apart from host logs.
//! Lines are capped in length, and spend from the call's log budget
//! ([`crate::runtime::log_budget`]).

use crate::runtime::bindings::log::{Host, Level};
use crate::runtime::sandbox::HostState;

/// Longest accepted line, in bytes; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 8 << 10;

/// A guest log level, shared by the `log` import and captured stdout/stderr.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GuestLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for GuestLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Emits one guest line; `source` is `log`, `stdout` or `stderr`.
pub(crate) fn emit(level: GuestLevel, source: &'static str, message: &str) {
    let message = truncate(message, MAX_MESSAGE_BYTES);
    match level {
        GuestLevel::Trace => tracing::trace!(target: "sluice::guest", source, "{message}"),
        GuestLevel::Debug => tracing::debug!(target: "sluice::guest", source, "{message}"),
        GuestLevel::Info => tracing::info!(target: "sluice::guest", source, "{message}"),
        GuestLevel::Warn => tracing::warn!(target: "sluice::guest", source, "{message}"),
        GuestLevel::Error => tracing::error!(target: "sluice::guest", source, "{message}"),
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log_budget
            .emit(level.into(), "log", truncate(&message, MAX_MESSAGE_BYTES));
    }
}
