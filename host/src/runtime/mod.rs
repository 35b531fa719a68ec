//! The sandbox: one wasmtime [`Engine`](wasmtime::Engine) for the process, the
//! registry of loaded plugins, and the machinery that runs one plugin call under
//! hard limits and turns whatever happened into one classified [`CallOutcome`].
//!
//! The layers that bound a call are set up here: epoch interruption for a guest
//! that spins (see [`engine`]), a `tokio` timeout around the whole call including
//! host imports (see [`call`]), and per-store resource limits (see [`limits`]).

pub mod bindings;
mod cache;
pub mod call;
pub mod contract;
pub mod engine;
pub mod follow_up;
mod guest_output;
pub(crate) mod json_depth;
pub mod limits;
pub mod log_budget;
pub mod outcome;
pub mod registry;
pub(crate) mod sandbox;

pub use call::{CallError, CallRequest, Cancellation, Canceller, cancellation};
pub use engine::{Allocation, Runtime, RuntimeConfig};
pub use follow_up::EnqueuePolicy;
pub use json_depth::MAX_DEPTH_ACCEPTED;
pub use outcome::{CallOutcome, Output, TrapCause};
pub use registry::{LoadReport, Plugin, PluginError, PluginMode, Registry};
