//! `sluice plugins check DIR`: load and validate every plugin in a folder.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::runtime::{Runtime, RuntimeConfig, registry};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load, validate and list every plugin in DIR; exits 1 if any is bad.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugins folder.
    dir: PathBuf,
    /// Where compiled plugins are cached (default: ~/.cache/sluice/compiled).
    #[arg(long, env = "SLUICE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub async fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let PluginsCommand::Check(args) = command;
    let runtime = Runtime::new(RuntimeConfig {
        slots: 1,
        cache_dir: args
            .cache_dir
            .or_else(crate::runtime::engine::default_cache_dir),
        ..RuntimeConfig::default()
    })?;
    let report = registry::scan(&runtime, &args.dir).await?;
    for plugin in &report.plugins {
        println!(
            "ok     {} {} ({} mode) task types: {}  [{}]",
            plugin.name,
            plugin.version,
            plugin.mode.as_str(),
            plugin.task_types.join(", "),
            plugin.path.display()
        );
    }
    for error in &report.errors {
        println!("error  {error}");
    }
    if report.plugins.is_empty() && report.errors.is_empty() {
        println!(
            "error  no .wasm files in {}: build plugins with `cargo build --target wasm32-wasip2` and copy them there",
            args.dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
