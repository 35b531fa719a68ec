//! `sluice outputs`: what a unit's plugin returned, oldest first, one line per
//! call: when it was stored (RFC 3339), the items it completed and the output
//! JSON. With `--json`, one JSON object per line instead:
//! `{"item_ids": [...], "created_at_ms": ..., "output": ...}`.

use std::process::ExitCode;

use clap::Args;
use serde_json::value::RawValue;

use super::database::DatabaseArgs;
use super::times::rfc3339;

#[derive(Debug, Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The task type.
    #[arg(long)]
    task: String,
    /// The work unit key.
    #[arg(long)]
    key: String,
    /// Print JSON lines, with times as epoch milliseconds.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    item_ids: &'a [i64],
    created_at_ms: i64,
    output: Option<&'a RawValue>,
}

pub async fn run(args: OutputsArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open_existing().await?;
    for stored in store.outputs(&args.task, &args.key).await? {
        let output: Option<&RawValue> = stored
            .output
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        if args.json {
            let line = Line {
                item_ids: &stored.item_ids,
                created_at_ms: stored.created_at_ms,
                output,
            };
            println!("{}", serde_json::to_string(&line)?);
        } else {
            let items: Vec<String> = stored.item_ids.iter().map(i64::to_string).collect();
            println!(
                "{}  items {}  {}",
                rfc3339(stored.created_at_ms),
                items.join(","),
                output.map_or("null", RawValue::get)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
