//! Sluice: a work-unit processing host.
//!
//! Producers enqueue items grouped by a `work_unit_key`; Sluice claims whole work
//! units and runs each task type's handler as a sandboxed WebAssembly component
//! that can never hold the host hostage. This crate is both the `sluice` binary and
//! the library the binary, the tests and the benchmarks are built on.
//!
//! - [`runtime`]: the wasmtime engine, the plugin registry and one sandboxed call.
//! - [`imports`]: everything a guest may call on the host.
//! - [`store`]: the durable queue, on SQLite or Postgres.
//! - [`worker`]: the running host: the pool, heartbeat, reaper and shutdown.
//! - [`api`]: `/healthz`, `/readyz`, `/metrics` and the HTTP API under `/v1`.
//! - [`ui`]: the operator's dashboard under `/ui`.
//! - [`config`]: one typed configuration from `sluice.toml` and `SLUICE_*`.
//! - [`outbound`]: the configured `llm` and `http` imports (providers, allowlists).
//! - [`flow`]: flow control of LLM providers (circuit breakers).
//! - [`cli`]: the `sluice` command line.

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod flow;
pub mod imports;
pub mod outbound;
pub mod runtime;
pub mod store;
pub mod ui;
pub mod worker;
