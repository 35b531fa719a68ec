//! `sluice exec`: one plugin call, no database. The plugin author's inner loop.
//!
//! The payloads become work items of one unit (ids 1, 2, ... in order), the
//! plugin runs under the same sandbox and deadlines as in the host, and the
//! classified outcome is printed on stdout as one JSON object, with what the
//! call spent on outbound requests. Outbound `llm` and `http` calls are granted
//! as in the host, by the configuration's `[llm]` and `[tasks.<type>.llm]` /
//! `[tasks.<type>.http]` sections; without a configuration they are denied.
//! `config` values come from `[tasks.<type>.config]`, then `--set`. Outputs,
//! follow-up items and logs are held to the same `[limits]` and `may_enqueue`
//! policy as in the host, so a call `exec` accepts is one `run` can commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use super::database::ConfigArgs;
use crate::outbound::{Usage, UsageMeter};
use crate::runtime::bindings::types::WorkItem;
use crate::runtime::limits::CallLimits;
use crate::runtime::{
    CallOutcome, CallRequest, Registry, Runtime, RuntimeConfig, cancellation, registry,
};

/// The largest memory limit `exec` accepts: 64 GiB.
const MAX_MEMORY_MIB: u64 = 64 << 10;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The plugins folder, or a single plugin `.wasm` file.
    #[arg(long, default_value = "plugins", env = "SLUICE_PLUGINS")]
    plugins: PathBuf,
    /// The task type to run.
    #[arg(long)]
    task: String,
    /// The item's JSON payload, or `@FILE` to read it from a file. Repeat for a
    /// batch (batch-mode plugins only).
    #[arg(long, required = true)]
    payload: Vec<String>,
    /// The work unit key of the items.
    #[arg(long, default_value = "exec")]
    key: String,
    /// Deadline for the call, in seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Memory limit for the guest, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// A value for the `config` import, as KEY=VALUE. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    values: Vec<String>,
    /// Where compiled plugins are cached (default: ~/.cache/sluice/compiled).
    #[arg(long, env = "SLUICE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    settings: ConfigArgs,
}

/// What `exec` prints: the outcome plus where and how long.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    outcome: &'a CallOutcome,
    plugin: &'a str,
    plugin_version: &'a str,
    task_type: &'a str,
    elapsed_ms: u64,
    usage: Usage,
}

pub async fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    // Check everything the user typed before loading anything.
    let items = work_items(&args)?;
    let settings = args.settings.load()?;
    let mut config = settings
        .tasks
        .get(&args.task)
        .map(|section| section.config.clone())
        .unwrap_or_default();
    config.extend(task_config(&args.values)?);
    let network = settings.network()?;
    crate::runtime::log_budget::set_host_rate(settings.limits.log_bytes_per_second);
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "--timeout must be a positive number of seconds, got {}",
                args.timeout
            )
        })?;
    let memory_bytes = args
        .memory_mib
        .checked_mul(1 << 20)
        .filter(|_| (1..=MAX_MEMORY_MIB).contains(&args.memory_mib))
        .with_context(|| {
            format!(
                "--memory-mib must be between 1 and {MAX_MEMORY_MIB}, got {}",
                args.memory_mib
            )
        })?;
    let runtime = Runtime::new(RuntimeConfig {
        slots: 1,
        max_memory_bytes: memory_bytes.max(RuntimeConfig::default().max_memory_bytes),
        cache_dir: args
            .cache_dir
            .clone()
            .or_else(crate::runtime::engine::default_cache_dir),
        ..RuntimeConfig::default()
    })?;
    let registry = load(&runtime, &args.plugins).await?;
    let Some(plugin) = registry.get(&args.task) else {
        bail!(
            "no plugin in {} handles task type `{}`; available: {}",
            args.plugins.display(),
            args.task,
            registry.task_types().collect::<Vec<_>>().join(", ")
        );
    };
    // Ctrl-C stops the call (as an `interrupt` trap) and still prints it.
    let (canceller, cancel) = cancellation();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            canceller.cancel("Ctrl-C");
        }
    });
    let started = Instant::now();
    let usage = UsageMeter::default();
    let outcome = plugin
        .call(CallRequest {
            items,
            // As `sluice run` would call it, but for the deadline and memory given here.
            limits: CallLimits {
                memory_bytes,
                timeout,
                ..settings.call_limits(&args.task)
            },
            task_config: Arc::new(config),
            outbound: Arc::new(network),
            cancel,
            usage: usage.clone(),
        })
        .await?;
    let report = Report {
        outcome: &outcome,
        plugin: &plugin.name,
        plugin_version: &plugin.version,
        task_type: &args.task,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        usage: usage.snapshot(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(if matches!(outcome, CallOutcome::Ok(_)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads a plugins folder (bad plugins are reported but do not stop `exec`),
/// or the single plugin file given.
async fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<Registry> {
    if path.is_file() {
        let plugin = registry::load_file(runtime, path).await?;
        return Ok(Registry::from_plugins(vec![Arc::new(plugin)]));
    }
    let report = registry::scan(runtime, path).await?;
    for error in &report.errors {
        tracing::warn!("skipping plugin: {error}");
    }
    Ok(Registry::from_plugins(report.plugins))
}

fn work_items(args: &ExecArgs) -> anyhow::Result<Vec<WorkItem>> {
    if args.key.trim().is_empty() {
        bail!("--key must not be empty");
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    args.payload
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let payload = match raw.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read payload file {file}"))?,
                None => raw.clone(),
            };
            serde_json::from_str::<serde::de::IgnoredAny>(&payload).with_context(|| {
                format!("payload {} is not valid JSON; pass a JSON document such as '{{\"text\":\"hi\"}}' or @file.json", index + 1)
            })?;
            Ok(WorkItem {
                id: index as u64 + 1,
                task_type: args.task.clone(),
                work_unit_key: args.key.clone(),
                payload,
                attempt: 1,
                enqueued_at_ms: now_ms,
            })
        })
        .collect()
}

fn task_config(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("--set expects KEY=VALUE, got `{pair}`"),
        })
        .collect()
}
