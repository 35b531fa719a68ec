//! `sluice plugins check PATH [--samples FILE]`: load and validate every
//! plugin in a folder (or one `.wasm` file) and, given sample items, run them
//! as contract tests ([`crate::runtime::contract`]); and `sluice plugins wit`,
//! which hands authors the contract this host implements.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::runtime::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION, CONTRACT_WIT};
use crate::runtime::{Registry, Runtime, RuntimeConfig, contract, registry};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load, validate and list every plugin in PATH (a plugins folder or one
    /// .wasm file), then run the sample items of --samples through them;
    /// exits 1 if any plugin or sample call is bad.
    Check(CheckArgs),
    /// Print the WIT contract this host implements (package
    /// sluice:task@VERSION, world `handler`), or write it to --out DIR/task.wit,
    /// to build plugins against without a Sluice checkout.
    Wit {
        /// A folder to write `task.wit` into (created if missing), such as
        /// `wit` for componentize-py's `-d wit` or componentize-js's `--wit wit`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugins folder, or a single plugin `.wasm` file.
    #[arg(value_name = "PATH")]
    dir: PathBuf,
    /// Where compiled plugins are cached (default: ~/.cache/sluice/compiled).
    #[arg(long, env = "SLUICE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Sample items to run, one JSON object per line:
    /// {"task_type": "...", "work_unit_key": "...", "payload": {...}}.
    /// A call fails the check if it traps, times out or returns invalid output.
    #[arg(long, value_name = "FILE.jsonl")]
    samples: Option<PathBuf>,
    /// Deadline for each sample call, in seconds.
    #[arg(long, default_value_t = 10.0, requires = "samples")]
    timeout: f64,
}

pub async fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::Check(args) => check(args).await,
        PluginsCommand::Wit { out } => wit(out),
    }
}

fn wit(out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let Some(dir) = out else {
        print!("{CONTRACT_WIT}");
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    let path = dir.join("task.wit");
    std::fs::write(&path, CONTRACT_WIT)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "wrote {} ({CONTRACT_PACKAGE}@{CONTRACT_VERSION})",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // Check what the user typed before loading anything.
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "--timeout must be a positive number of seconds, got {}",
                args.timeout
            )
        })?;
    let samples = match &args.samples {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read samples file {}", path.display()))?;
            contract::parse_samples(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("bad samples file {}", path.display()))?
        }
        None => Vec::new(),
    };
    let runtime = Runtime::new(RuntimeConfig {
        slots: 1,
        cache_dir: args
            .cache_dir
            .or_else(crate::runtime::engine::default_cache_dir),
        ..RuntimeConfig::default()
    })?;
    let report = if args.dir.is_file() {
        match registry::load_file(&runtime, &args.dir).await {
            Ok(plugin) => registry::LoadReport {
                plugins: vec![Arc::new(plugin)],
                errors: Vec::new(),
            },
            Err(error) => registry::LoadReport {
                plugins: Vec::new(),
                errors: vec![error],
            },
        }
    } else if args.dir.is_dir() {
        registry::scan(&runtime, &args.dir).await?
    } else {
        anyhow::bail!(
            "{} does not exist: pass a plugins folder or one .wasm file, as in \
             `sluice plugins check target/wasm32-wasip2/release/my_task.wasm`",
            args.dir.display()
        );
    };
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
    let registry = Registry::from_plugins(report.plugins);
    let results = contract::run_samples(&registry, &samples, timeout).await;
    for result in &results {
        println!("{result}");
    }
    Ok(
        if report.errors.is_empty() && contract::all_passed(&results) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}
