//! `sluice bench`: throughput measurements that run against the real stores.
//! Criterion covers the micro-benchmarks (`host/benches/`); these are the
//! end-to-end figures quoted in BENCHMARKS.md.

pub mod budget;
pub mod deadline;
pub mod e2e;
pub mod queue;
