//! The per-call sandbox: a fresh [`Store`] with its own limits, WASI context
//! and deadline, built for one call and dropped after it.
//!
//! The WASI context grants nothing: no preopened directories, no environment, no
//! arguments, no stdin, no sockets and no name lookups. Clocks and randomness
//! are allowed. stdout and stderr become log lines ([`super::guest_output`]).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{Handler, types};
use super::guest_output::GuestOutput;
use super::limits::{CallLimits, Limiter};
use super::log_budget::LogBudget;
use crate::imports::{CallContext, Outbound, TaskConfig};

/// Everything one store holds. Dropped, with the store, after every call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) call: Arc<CallContext>,
    pub(crate) outbound: Arc<dyn Outbound>,
    pub(crate) task_config: TaskConfig,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
    /// Bytes the guest may pass the host per call, and the output cap, for
    /// reporting a refused copy.
    pub(crate) hostcall_fuel: usize,
    pub(crate) max_output_bytes: usize,
    /// Set by the epoch callback when it interrupted the guest at its deadline.
    pub(crate) deadline_reached: bool,
    /// What the guest may still write to the host's logs.
    pub(crate) log_budget: LogBudget,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

/// The linker every plugin is instantiated against: WASI preview 2 (whose
/// capabilities each store's context then withholds) and the `sluice:task` imports.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Handler::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// What a new store is built from.
pub(crate) struct StoreSpec<'a> {
    pub(crate) call: Arc<CallContext>,
    pub(crate) outbound: Arc<dyn Outbound>,
    pub(crate) task_config: TaskConfig,
    pub(crate) limits: &'a CallLimits,
}

/// A fresh store whose guest is interrupted at `spec.call.deadline`.
pub(crate) fn new_store(engine: &Engine, spec: StoreSpec<'_>) -> Store<HostState> {
    let log_budget = LogBudget::new(spec.limits.log_bytes_per_call);
    let stdout = GuestOutput::stdout(log_budget.clone());
    let stderr = GuestOutput::stderr(log_budget.clone());
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let deadline = spec.call.deadline;
    let fuel = spec.limits.hostcall_fuel();
    let mut store = Store::new(
        engine,
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(spec.limits),
            call: spec.call,
            outbound: spec.outbound,
            task_config: spec.task_config,
            stdout,
            stderr,
            hostcall_fuel: fuel,
            max_output_bytes: spec.limits.max_output_bytes,
            deadline_reached: false,
            log_budget,
        },
    );
    store.limiter(|state| &mut state.limiter);
    store.set_hostcall_fuel(fuel);
    // Check the deadline on every epoch tick, yielding to tokio in between so a
    // spinning guest never starves the executor or the call's own timeout.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        if Instant::now() >= deadline {
            cx.data_mut().deadline_reached = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}
