//! `sluice outputs`: what a unit's plugin returned, oldest first, one JSON
//! object per line: `{"item_ids": [...], "output": ...}`.

use std::process::ExitCode;

use clap::Args;
use serde_json::value::RawValue;

use super::database::DatabaseArgs;

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
}

#[derive(serde::Serialize)]
struct Line<'a> {
    item_ids: &'a [i64],
    output: Option<&'a RawValue>,
}

pub async fn run(args: OutputsArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open().await?;
    for (item_ids, output) in store.outputs(&args.task, &args.key).await? {
        let output = output.as_deref().map(serde_json::from_str).transpose()?;
        println!(
            "{}",
            serde_json::to_string(&Line {
                item_ids: &item_ids,
                output,
            })?
        );
    }
    Ok(ExitCode::SUCCESS)
}
