//! What one call may use: memory, tables, instances, time, output size and
//! depth, follow-up items and log lines.
//!
//! [`CallLimits`] is what an operator configures per task type. [`Limiter`] is
//! the per-store enforcement; it also remembers that it refused a memory growth,
//! so that the trap a guest hits right after (Rust aborts on allocation failure)
//! is reported as `out-of-memory` rather than a bare `unreachable`.

use std::time::Duration;

use wasmtime::ResourceLimiter;

use super::follow_up::EnqueuePolicy;

/// Default linear-memory cap for one call: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default cap on a call's output (the output JSON plus enqueued payloads): 16 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 << 20;
/// What the host accounts per enqueued item on top of its strings, so a flood
/// of tiny items cannot slip under the byte cap.
pub const ENQUEUE_ITEM_OVERHEAD_BYTES: usize = 64;
/// Default nesting depth of an output or payload: well under serde_json's
/// limit of 128, so host tools that parse an output, or wrap it in a report
/// (`sluice exec`, `sluice outputs`), can read every stored one.
pub const DEFAULT_MAX_OUTPUT_DEPTH: usize = 64;
/// Default number of follow-up items one outcome may enqueue.
pub const DEFAULT_MAX_ENQUEUE_ITEMS: usize = 10_000;
/// Default deadline for one unit's call: 600 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Limits for one call, normally from the task type's configuration.
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// Linear memory the guest may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline for the whole call, host imports included.
    pub timeout: Duration,
    /// Largest accepted output (output JSON plus enqueued items), in bytes.
    pub max_output_bytes: usize,
    /// Deepest nesting of arrays and objects in the output and in payloads.
    pub max_output_depth: usize,
    /// Most follow-up items one outcome may enqueue.
    pub max_enqueue_items: usize,
    /// The task types the outcome may enqueue items for.
    pub may_enqueue: EnqueuePolicy,
    /// Bytes of guest log lines (plus a per-line overhead) the call may write.
    pub log_bytes_per_call: usize,
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
            max_output_depth: DEFAULT_MAX_OUTPUT_DEPTH,
            max_enqueue_items: DEFAULT_MAX_ENQUEUE_ITEMS,
            may_enqueue: EnqueuePolicy::default(),
            log_bytes_per_call: super::log_budget::DEFAULT_BYTES_PER_CALL,
            table_elements: 100_000,
            instances: 32,
        }
    }
}

/// Enforces [`CallLimits`] inside one store and records refusals. The memory
/// limit is for the whole store, summed over all its linear memories.
pub(crate) struct Limiter {
    memory_bytes: usize,
    /// Bytes granted so far, over all memories.
    memory_used: usize,
    table_elements: usize,
    instances: usize,
    /// Set when a `memory.grow` was refused for exceeding the limit.
    pub(crate) memory_refused: bool,
}

impl Limiter {
    pub(crate) fn new(limits: &CallLimits) -> Self {
        Self {
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            memory_used: 0,
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

impl CallLimits {
    /// How many bytes the guest may pass the host in one call (wasmtime's
    /// "hostcall fuel"): the output cap, and never less than 16 MiB so large
    /// LLM prompts pass, plus room for the call's other arguments. A return
    /// value over it is refused while it is being copied, before it costs
    /// host memory.
    pub(crate) fn hostcall_fuel(&self) -> usize {
        self.max_output_bytes.max(16 << 20).saturating_add(1 << 20)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self
            .memory_used
            .saturating_add(desired.saturating_sub(current));
        if after > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_used = after;
        Ok(true)
    }

    /// The engine refused a growth this limiter allowed (the pool's slot is
    /// smaller than the task type's limit): still the guest running out.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused = true;
        Ok(())
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
