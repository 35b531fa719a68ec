//! `sluice run`: the host. Loads and checks the configuration and the plugins
//! ([`preflight`], the checks `sluice config` makes too), then the database
//! (any problem stops it before it claims anything), then runs the pool and
//! the health listener (with the API under `/v1` and the dashboard under
//! `/ui`) until SIGTERM or SIGINT. Changed plugins are reloaded
//! while it runs (a file watch and `SIGHUP`, [`crate::worker::Host::watch_plugins`]).
//!
//! The first signal drains: no new claims, running units get
//! `shutdown_grace` to finish, then are cancelled and released without an
//! attempt. A second signal exits at once (the leases then expire and the
//! reaper, here or on another host, counts an attempt).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::database::{self, DatabaseArgs};
use super::open_files;
use super::preflight::{self, Checked};
use crate::api;
use crate::store::WorkerInfo;
use crate::ui;
use crate::worker::shutdown::Signals;
use crate::worker::{Host, HostParts};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::watch().context("cannot watch for SIGTERM and SIGINT")?;
    let config = args.database.load_config()?;
    open_files::ensure(&config)?;
    let Checked {
        listen,
        network,
        runtime,
        registry,
    } = preflight::check(&config).await?;
    crate::runtime::log_budget::set_host_rate(config.limits.log_bytes_per_second);
    api::metrics::install();

    let store = database::open(&config).await?;
    for plugin in registry.plugins() {
        tracing::info!(
            plugin = %plugin.name,
            version = %plugin.version,
            mode = plugin.mode.as_str(),
            task_types = ?plugin.task_types,
            "plugin loaded"
        );
    }

    let listener = match listen {
        Some(addr) => Some(api::listen(addr).await?),
        None => None,
    };
    let stall_after = config.stall_after;
    let plugins_dir = config.plugins_dir.clone();
    let grace = config.shutdown_grace;
    let serve_v1 = listener.is_some() && config.api.enabled;
    if serve_v1 {
        api::v1::check(&config)?;
    }
    let config = Arc::new(config);
    let host = Host::start(HostParts {
        config: config.clone(),
        store: store.clone(),
        registry: Arc::new(registry),
        outbound: Arc::new(network),
        worker: this_process(),
    })
    .await?;
    host.watch_plugins(runtime, plugins_dir).await;
    if let Some(listener) = listener {
        let v1 = if serve_v1 {
            let plugins: Arc<dyn api::v1::Plugins> = Arc::new(host.clone());
            api::v1::router(store.clone(), plugins.clone(), &config)?.merge(ui::router(
                store,
                Some(plugins),
                &config,
            )?)
        } else {
            axum::Router::new()
        };
        api::serve_with(listener, host.clone(), stall_after, v1)?;
    }

    let which = signals.next().await;
    tracing::info!("{which} received");
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing running units (signal again to exit at once)"
    );
    tokio::select! {
        () = host.shutdown(grace) => Ok(ExitCode::SUCCESS),
        _ = signals.next() => {
            tracing::warn!("second signal: exiting now; the leases of running units will expire");
            Ok(ExitCode::from(130))
        }
    }
}

/// This process, for the workers table. The id is unique per run, so a
/// restarted host never mistakes an earlier run's claims for its own.
fn this_process() -> WorkerInfo {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    let pid = std::process::id();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    WorkerInfo {
        id: format!("{host_name}:{pid}:{started}"),
        host_name,
        pid,
        version: env!("CARGO_PKG_VERSION").into(),
        task_types: Vec::new(),
    }
}
