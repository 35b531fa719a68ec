//! Everything `sluice run` checks before it touches the database, in one
//! place, because `sluice config` runs the same checks: a configuration that
//! `config` accepts is one that `run` starts with (the database aside, which
//! `config` never opens). The checks: every value (done on load), the plugins
//! folder and each plugin in it, the listener address, the LLM providers and
//! their API key variables, the outbound grants, and each `[tasks.<type>]`
//! section against the task types the plugins handle.

use std::net::SocketAddr;

use crate::config::Config;
use crate::outbound::Network;
use crate::runtime::{Registry, Runtime, RuntimeConfig};
use crate::worker::TaskPlans;

/// What the checks built, for `run` to use rather than build twice.
pub struct Checked {
    pub listen: Option<SocketAddr>,
    pub network: Network,
    /// The engine the plugins were compiled with; it must outlive them.
    pub runtime: Runtime,
    pub registry: Registry,
}

/// Runs every start-up check `run` makes before opening the database.
pub async fn check(config: &Config) -> anyhow::Result<Checked> {
    config.check_plugins_dir()?;
    let listen = config.listen_addr()?;
    let network = config.network()?;
    let runtime = Runtime::new(RuntimeConfig {
        slots: config.slots,
        max_memory_bytes: config.max_memory_bytes(),
        cache_dir: config
            .cache_dir
            .clone()
            .or_else(crate::runtime::engine::default_cache_dir),
        ..RuntimeConfig::default()
    })?;
    let registry = Registry::load(&runtime, &config.plugins_dir)
        .await
        .map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!("cannot load the plugins:\n{}", lines.join("\n"))
        })?;
    if registry.plugins().is_empty() {
        anyhow::bail!(
            "no plugins in {}: build them for wasm32-wasip2 and copy the .wasm files there",
            config.plugins_dir.display()
        );
    }
    TaskPlans::new(config, &registry)?;
    Ok(Checked {
        listen,
        network,
        runtime,
        registry,
    })
}
