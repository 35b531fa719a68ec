//! Sluice: a work-unit processing host.
//!
//! Producers enqueue items grouped by a `work_unit_key`; Sluice claims whole work
//! units and runs each task type's handler as a sandboxed WebAssembly component
//! that can never hold the host hostage. This crate is both the `sluice` binary and
//! the library the binary, the tests and the benchmarks are built on.
//!
//! - [`runtime`]: the wasmtime engine, the plugin registry and one sandboxed call.
//! - [`imports`]: everything a guest may call on the host.
//! - [`outbound`]: the configured `llm` and `http` imports (providers, allowlists).
//! - [`cli`]: the `sluice` command line.

pub mod bench;
pub mod cli;
pub mod imports;
pub mod outbound;
pub mod runtime;
pub mod store;
