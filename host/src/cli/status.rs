//! `sluice status`: queue depth and oldest age per task type and state, and
//! the task types paused by `sluice pause`, and which waiting task types no
//! running host serves.

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;

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
    Ok(ExitCode::SUCCESS)
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
