//! What one call may use: memory, tables, instances, time and output size.
//!
//! [`CallLimits`] is what an operator configures per task type. [`Limiter`] is
//! the per-store enforcement; it also remembers that it refused a memory growth,
//! so that the trap a guest hits right after (Rust aborts on allocation failure)
//! is reported as `out-of-memory` rather than a bare `unreachable`.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Default linear-memory cap for one call: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default cap on a call's output (the output JSON plus enqueued payloads): 16 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Default deadline for one unit's call: 600 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Limits for one call, normally from the task type's configuration.
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// Linear memory the guest may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline for the whole call, host imports included.
    pub timeout: Duration,
    /// Largest accepted output (output JSON plus enqueued payloads), in bytes.
    pub max_output_bytes: usize,
    /// Elements per table.
    pub table_elements: usize,
    /// Core instances, tables and memories per store.
    pub instances: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            table_elements: 100_000,
            instances: 32,
        }
    }
}

/// Enforces [`CallLimits`] inside one store and records refusals.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    /// Set when a `memory.grow` was refused for exceeding the limit.
    pub(crate) memory_refused: bool,
}

impl Limiter {
    pub(crate) fn new(limits: &CallLimits) -> Self {
        Self {
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            table_elements: limits.table_elements,
            instances: limits.instances,
            memory_refused: false,
        }
    }
}

impl Limiter {
    pub(crate) fn memory_limit_bytes(&self) -> usize {
        self.memory_bytes
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}
