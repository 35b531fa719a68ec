//! One call to the echo plugin: fresh store, instantiate from the `InstancePre`,
//! call `process`, validate the output, drop the store. The figure that bounds
//! how cheap a unit of work can be; recorded in BENCHMARKS.md.
//!
//! Run with `cargo bench --bench sandbox` after `scripts/build-plugins`.
//! `SLUICE_BENCH_ALLOCATION` forces an allocation mode (see BENCHMARKS.md).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice::runtime::{Allocation, CallOutcome, Runtime, RuntimeConfig};

/// `SLUICE_BENCH_ALLOCATION=pooled-pagemap|pooled|on-demand` measures one
/// allocation mode; unset, the engine picks the best available, as in production.
fn forced_allocation() -> Option<Allocation> {
    let mode = std::env::var("SLUICE_BENCH_ALLOCATION").ok()?;
    Some(match mode.as_str() {
        "pooled-pagemap" => Allocation::PooledPagemap,
        "pooled" => Allocation::Pooled,
        "on-demand" => Allocation::OnDemand,
        other => panic!("unknown SLUICE_BENCH_ALLOCATION {other:?}"),
    })
}

fn echo_call(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        slots: 8,
        cache_dir: Some(support::target_dir().join("sluice-test-cache")),
        allocation: forced_allocation(),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    eprintln!("instance allocation: {:?}", runtime.allocation());
    let plugin = tokio.block_on(support::adversary(&runtime));
    let payload = r#"{"text":"hello from the benchmark"}"#;
    c.bench_function("sandbox/echo_call", |b| {
        b.iter(|| {
            let outcome = tokio
                .block_on(plugin.call(support::request("echo", payload, Duration::from_secs(30))))
                .unwrap();
            assert!(matches!(outcome, CallOutcome::Ok(_)));
        })
    });
}

criterion_group!(benches, echo_call);
criterion_main!(benches);
