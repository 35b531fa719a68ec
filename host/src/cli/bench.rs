//! `sluice bench queue`: the queue's throughput on each backend; `sluice bench
//! e2e`: items per second through the whole host; `sluice bench deadline`:
//! how soon a stuck unit's slot is free after its deadline; and `sluice bench
//! budget`: what an LLM provider budget adds per request (see BENCHMARKS.md
//! for the figures and how they were taken).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::bench::budget;
use crate::bench::deadline::{self, DeadlineBench};
use crate::bench::e2e::{self, E2eBench};
use crate::bench::queue::{self, QueueBench};
use crate::store::StoreOptions;

/// The queue benchmark's Postgres pool: room for its workers and claimers.
const QUEUE_BENCH_POSTGRES: StoreOptions = StoreOptions {
    max_payload_bytes: crate::store::DEFAULT_MAX_PAYLOAD_BYTES,
    max_connections: 16,
};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Enqueue, drain with no-op workers, and claim from growing backlogs.
    Queue(QueueArgs),
    /// Drain a full queue through the real host with a no-op plugin.
    E2e(E2eArgs),
    /// How long after its deadline a hung or spinning unit's slot is free again.
    Deadline(DeadlineArgs),
    /// What an LLM provider budget adds per request, local and shared.
    Budget(BudgetArgs),
}

#[derive(Debug, Args)]
pub struct BudgetArgs {
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    backend: Backend,
    /// The Postgres server to measure; each run uses a temporary schema in it.
    #[arg(
        long,
        env = "SLUICE_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Budget checks per kind of budget.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

async fn budget(args: BudgetArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    let mut opened = Vec::new();
    if matches!(args.backend, Backend::Sqlite | Backend::Both) {
        opened.push(("sqlite", queue::open_sqlite(StoreOptions::default()).await?));
    }
    if matches!(args.backend, Backend::Postgres | Backend::Both) {
        opened.push((
            "postgres",
            queue::open_postgres(&args.postgres_url, StoreOptions::default()).await?,
        ));
    }
    let stores = opened
        .iter()
        .map(|(name, (store, _))| (name.to_string(), store.clone()))
        .collect();
    let costs = budget::run(args.requests, stores).await;
    for (_, (_, cleanup)) in opened {
        cleanup.finish().await?;
    }
    for cost in costs? {
        if args.json {
            println!("{}", serde_json::to_string(&cost)?);
        } else {
            println!(
                "{:<20} per request: median {:>8.1} µs  p90 {:>8.1} µs  ({} requests)",
                cost.budget, cost.median_us, cost.p90_us, cost.requests
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct E2eArgs {
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    backend: Backend,
    /// The Postgres server to measure; each run uses a temporary schema in it.
    #[arg(
        long,
        env = "SLUICE_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// A plugin with the `echo` task type.
    #[arg(
        long,
        default_value = "target/wasm32-wasip2/plugin/sluice_test_adversary.wasm"
    )]
    plugin: PathBuf,
    /// Items per run.
    #[arg(long, default_value_t = 20_000)]
    items: usize,
    /// Units the items are spread over (a second shape gives every item its own).
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    /// Slot counts to run with (repeatable).
    #[arg(long = "slots", default_values_t = [1, 4, 16, 64])]
    slots: Vec<u32>,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

async fn e2e(args: E2eArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.items > 0 && args.keys > 0 && args.slots.iter().all(|s| *s > 0),
        "--items, --keys and every --slots must be at least 1"
    );
    let spec = E2eBench {
        plugin: args.plugin,
        items: args.items,
        keys: args.keys,
        slots: args.slots,
    };
    let mut results = Vec::new();
    if matches!(args.backend, Backend::Sqlite | Backend::Both) {
        results.extend(e2e::run("sqlite", queue::open_sqlite, &spec).await?);
    }
    if matches!(args.backend, Backend::Postgres | Backend::Both) {
        let url = args.postgres_url.clone();
        results.extend(
            e2e::run(
                "postgres",
                async |options| queue::open_postgres(&url, options).await,
                &spec,
            )
            .await?,
        );
    }
    for m in &results {
        if args.json {
            println!("{}", serde_json::to_string(m)?);
        } else {
            let cpu = match (m.cpu_us_per_item, m.host_cpu_us_per_item) {
                (Some(all), Some(host)) => format!(", CPU {all:.1} µs/item, host {host:.1}"),
                _ => String::new(),
            };
            println!(
                "{:<9} {:<30} {:>3} slots: {:>7} items in {:>7.2} s = {:>7.0} /s  (peak RSS {:.0} MiB{cpu})",
                m.backend, m.shape, m.slots, m.items, m.seconds, m.per_second, m.peak_rss_mib
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct DeadlineArgs {
    /// A plugin with the `hang-llm` and `spin` task types.
    #[arg(
        long,
        default_value = "target/wasm32-wasip2/plugin/sluice_test_adversary.wasm"
    )]
    plugin: PathBuf,
    /// Runs per way of being stuck.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The stuck calls' deadline, in milliseconds.
    #[arg(long, default_value_t = 200)]
    timeout_ms: u64,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

async fn deadline(args: DeadlineArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let spec = DeadlineBench {
        plugin: args.plugin,
        runs: args.runs,
        timeout: Duration::from_millis(args.timeout_ms),
    };
    for overrun in deadline::run(&spec).await? {
        if args.json {
            println!("{}", serde_json::to_string(&overrun)?);
        } else {
            println!(
                "{:<9} slot free after the deadline: median {:>6.1} ms  p90 {:>6.1} ms  max {:>6.1} ms  ({} runs)",
                overrun.stuck, overrun.median_ms, overrun.p90_ms, overrun.max_ms, overrun.runs
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[arg(long, value_enum, default_value_t = Backend::Both)]
    backend: Backend,
    /// The Postgres server to measure; each run uses a temporary schema in it.
    #[arg(
        long,
        env = "SLUICE_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Items to enqueue and drain.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Work units the items are spread over.
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    /// Concurrent no-op workers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Units claimed per round trip.
    #[arg(long, default_value_t = 10)]
    claim_batch: u32,
    /// Items per fetched batch.
    #[arg(long, default_value_t = 100)]
    batch_items: u32,
    /// Backlog sizes for the claim-throughput runs (repeatable).
    #[arg(long = "backlog", default_values_t = [10_000, 1_000_000])]
    backlogs: Vec<usize>,
    /// Units claimed in each round of a claim-throughput run.
    #[arg(long, default_value_t = 5_000)]
    claims: usize,
    /// Rounds per claim-throughput run (the claimed units are released
    /// between rounds); the median round is reported.
    #[arg(long, default_value_t = 5)]
    claim_rounds: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Queue(args) => queue(args).await,
        BenchCommand::E2e(args) => e2e(args).await,
        BenchCommand::Deadline(args) => deadline(args).await,
        BenchCommand::Budget(args) => budget(args).await,
    }
}

async fn queue(args: QueueArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.items > 0 && args.keys > 0 && args.workers > 0,
        "--items, --keys and --workers must be at least 1"
    );
    let spec = QueueBench {
        items: args.items,
        keys: args.keys,
        workers: args.workers,
        claim_batch: args.claim_batch.max(1),
        batch_items: args.batch_items.max(1),
        backlogs: args.backlogs.clone(),
        claims: args.claims,
        claim_rounds: args.claim_rounds,
    };
    let mut results = Vec::new();
    if matches!(args.backend, Backend::Sqlite | Backend::Both) {
        results.extend(
            queue::run(
                "sqlite",
                async || queue::open_sqlite(StoreOptions::default()).await,
                &spec,
            )
            .await?,
        );
    }
    if matches!(args.backend, Backend::Postgres | Backend::Both) {
        let url = args.postgres_url.clone();
        results.extend(
            queue::run(
                "postgres",
                async || queue::open_postgres(&url, QUEUE_BENCH_POSTGRES).await,
                &spec,
            )
            .await?,
        );
    }
    for m in &results {
        if args.json {
            println!("{}", serde_json::to_string(m)?);
        } else {
            println!(
                "{:<9} {:<44} {:>9} in {:>7.2} s = {:>9.0} /s",
                m.backend, m.what, m.count, m.seconds, m.per_second
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
