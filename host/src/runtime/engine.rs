//! The process-wide wasmtime [`Engine`] and the [`Runtime`] that owns it.
//!
//! There is one engine per process: compiled plugins, the instance pool and the
//! epoch counter all hang off it. The pooling allocator is sized from the number
//! of concurrent calls the host will make (its slots), so instantiation is a
//! slot checkout rather than a round of `mmap`s; where the address space is too
//! small for the pool, the engine falls back to on-demand allocation with a
//! warning. [`Allocation`] lists the modes and BENCHMARKS.md what each costs.
//!
//! One ticker thread advances the epoch every [`RuntimeConfig::epoch_tick`]:
//! that is the clock that lets a spinning guest be interrupted at its deadline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::sandbox::HostState;

/// How the engine is built. Per-call limits live in [`super::limits::CallLimits`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many calls may run at once; the instance pool is sized from it.
    pub slots: u32,
    /// The largest linear memory any task type may be granted, in bytes. Each
    /// pool slot reserves this much; per-call limits can only be lower.
    pub max_memory_bytes: u64,
    /// Where compiled plugins are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// How often the epoch advances: the granularity of guest-CPU deadlines.
    pub epoch_tick: Duration,
    /// Use exactly this allocation mode instead of the best one available
    /// (for benchmarks, and for hosts that must not reserve a pool).
    pub allocation: Option<Allocation>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            slots: 8,
            max_memory_bytes: super::limits::DEFAULT_MEMORY_BYTES,
            cache_dir: default_cache_dir(),
            epoch_tick: Duration::from_millis(10),
            allocation: None,
        }
    }
}

/// `$XDG_CACHE_HOME/sluice` or `~/.cache/sluice`, when either is known.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("sluice").join("compiled"))
}

/// The engine, the linker every plugin is instantiated against, and the epoch
/// ticker. Cheap to clone; the ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    allocation: Allocation,
}

/// Concurrent calls the pool holds beyond the slot count: `describe` calls at
/// load and reload time, and `sluice exec`, must never find the pool full.
const POOL_HEADROOM: u32 = 4;

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(config.slots > 0, "slots must be at least 1");
        anyhow::ensure!(
            !config.epoch_tick.is_zero(),
            "the epoch tick must be longer than zero"
        );
        let (engine, allocation) = build_engine(&config)?;
        let linker = super::sandbox::linker(&engine)?;
        spawn_epoch_ticker(&engine, config.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                allocation,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// How instances are allocated; see [`Allocation`].
    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }
}

/// How the engine allocates instances, best first. The engine is built with
/// the first one this machine supports, unless [`RuntimeConfig::allocation`]
/// forces one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// The instance pool, resetting used memory by scanning for dirty pages
    /// (Linux 6.7+ `PAGEMAP_SCAN`) and rewriting only those: no page faults and
    /// no TLB shootdowns on the next call.
    PooledPagemap,
    /// The instance pool, resetting used memory with `madvise`.
    Pooled,
    /// A fresh `mmap` per instance: the fallback where the address space is too
    /// small to reserve the pool.
    OnDemand,
}

fn build_engine(config: &RuntimeConfig) -> anyhow::Result<(Engine, Allocation)> {
    let mut failures = Vec::new();
    let modes = match config.allocation {
        Some(forced) => vec![forced],
        None => vec![
            Allocation::PooledPagemap,
            Allocation::Pooled,
            Allocation::OnDemand,
        ],
    };
    for allocation in modes {
        match Engine::new(&engine_config(config, allocation)) {
            Ok(engine) => {
                if allocation == Allocation::OnDemand && !failures.is_empty() {
                    tracing::warn!(
                        reason = %failures.join("; "),
                        "cannot reserve address space for the instance pool; \
                         falling back to on-demand allocation (slower instantiation)"
                    );
                }
                tracing::debug!(?allocation, "WebAssembly engine ready");
                return Ok((engine, allocation));
            }
            Err(err) => failures.push(format!("{allocation:?}: {err:#}")),
        }
    }
    anyhow::bail!(
        "cannot create the WebAssembly engine: {}",
        failures.join("; ")
    )
}

fn engine_config(config: &RuntimeConfig, allocation: Allocation) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    // A guest's own stack; overflowing it is a classified `stack-overflow` trap.
    c.max_wasm_stack(1 << 20);
    c.async_stack_size(2 << 20);
    if allocation == Allocation::OnDemand {
        // Address space is scarce: reserve only what a memory may grow to, at
        // the cost of explicit bounds checks in compiled code.
        c.memory_reservation(config.max_memory_bytes);
    } else {
        let pool = pool_config(config, allocation == Allocation::PooledPagemap);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// A pool for `slots + POOL_HEADROOM` concurrent component instances. A Rust
/// `wasm32-wasip2` component is a handful of core instances (the program, the
/// WASI adapter and small shim modules), hence the per-component allowances.
fn pool_config(config: &RuntimeConfig, pagemap: bool) -> PoolingAllocationConfig {
    let instances = config.slots.saturating_add(POOL_HEADROOM);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(16))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
        .table_keep_resident(64 << 10);
    if pagemap {
        // Only dirty pages are rewritten, so a large window is cheap and covers
        // a Rust guest's stack, data and small heap: the slot never faults.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(4 << 20);
    } else {
        // Without a dirty-page scan the window is `memset` whole on every
        // reset: keep it small and let `madvise` do the rest.
        pool.linear_memory_keep_resident(64 << 10);
    }
    pool
}

/// Advances the engine's epoch every `tick` on a plain thread, so guest
/// deadlines keep firing even if every tokio worker is busy. The thread ends
/// when the engine does: as long as any plugin (which holds the engine) can
/// still run, its deadline clock keeps ticking.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
    Ok(())
}
