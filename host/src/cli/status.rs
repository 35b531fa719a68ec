//! `sluice status`: queue depth and oldest age per task type and state, and
//! the task types paused by `sluice pause`, and which waiting task types no
//! running host serves; then each running host's LLM circuit breakers and
//! spend (as it last published them with its heartbeat), and their sum.

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;
use crate::flow::{FlowStatus, SpendReport};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open_existing().await?;
    let status = store.status().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<8} {:>10} {:>12}",
        "TASK TYPE", "STATE", "ITEMS", "OLDEST"
    );
    for depth in &status.depths {
        let oldest = depth
            .oldest_created_at_ms
            .map(|t| format_age(status.now_ms - t))
            .unwrap_or_default();
        let note =
            if depth.state == "pending" && status.unserved_task_types.contains(&depth.task_type) {
                "  no running host serves this task type"
            } else {
                ""
            };
        println!(
            "{:<24} {:<8} {:>10} {:>12}{note}",
            depth.task_type, depth.state, depth.count, oldest
        );
    }
    let dead: i64 = status
        .depths
        .iter()
        .filter(|d| d.state == "dead")
        .map(|d| d.count)
        .sum();
    println!(
        "claimed units: {}   dead letters: {dead}",
        status.claimed_units
    );
    for paused in &status.paused {
        println!(
            "paused: {} (for {}; `sluice resume {}`)",
            paused.task_type,
            format_age(status.now_ms - paused.paused_at_ms),
            paused.task_type
        );
    }
    print_flow(&status.flow, status.now_ms);
    Ok(ExitCode::SUCCESS)
}

/// The live hosts' breakers and spend, each host's then the sum.
fn print_flow(flow: &FlowStatus, now_ms: i64) {
    if flow.breakers.is_empty() && flow.spend.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:<32} {:<10} {:>10}",
        "LLM PROVIDER", "HOST", "BREAKER", "SINCE"
    );
    for host in &flow.hosts {
        for breaker in &host.breakers {
            println!(
                "{:<24} {:<32} {:<10} {:>10}",
                breaker.provider,
                host.worker,
                breaker.state.name(),
                format_age(now_ms - breaker.since_ms)
            );
        }
    }
    for total in &flow.breakers {
        let mut states = Vec::new();
        for (n, state) in [
            (total.open, "open"),
            (total.half_open, "half-open"),
            (total.closed, "closed"),
        ] {
            if n > 0 {
                states.push(format!("{n} {state}"));
            }
        }
        println!(
            "{:<24} {:<32} {}",
            total.provider,
            format!("all {} hosts", flow.hosts.len()),
            states.join(", ")
        );
    }
    println!();
    println!(
        "{:<24} {:<16} {:<32} {:>8} {:>8} {:>12} {:>12} {:>11}  FAILURES",
        "TASK TYPE",
        "PROVIDER",
        "HOST",
        "CALLS",
        "REQUESTS",
        "IN TOKENS",
        "OUT TOKENS",
        "BUDGET WAIT"
    );
    for host in &flow.hosts {
        for spend in &host.spend {
            print_spend(spend, &host.worker);
        }
    }
    let all = format!("all {} hosts", flow.hosts.len());
    for spend in &flow.spend {
        print_spend(spend, &all);
    }
}

fn print_spend(spend: &SpendReport, host: &str) {
    let failures: Vec<String> = spend
        .failures
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    println!(
        "{:<24} {:<16} {:<32} {:>8} {:>8} {:>12} {:>12} {:>11}  {}",
        spend.task_type,
        spend.provider,
        host,
        spend.calls,
        spend.requests,
        spend.input_tokens,
        spend.output_tokens,
        format!("{:.1}s", spend.budget_wait_ms as f64 / 1000.0),
        failures.join(" ")
    );
}

fn format_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}
