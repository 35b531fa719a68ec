//! `sluice outputs`: what a unit's plugin returned, oldest first, one line per
//! call: when it was stored (RFC 3339), the items it completed and the output
//! JSON. With `--json`, one JSON object per line instead:
//! `{"item_ids": [...], "created_at_ms": ..., "output": ...}`. And
//! `sluice outputs purge --older-than AGE`, which deletes old outputs a batch
//! at a time (the reaper does the same by itself when `retain_outputs` is set).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::value::RawValue;

use super::database::DatabaseArgs;
use super::times::rfc3339;
use crate::config::MAX_RETENTION;
use crate::store::DELETE_BATCH;

#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true)]
pub struct OutputsArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The task type.
    #[arg(long, required = true)]
    task: Option<String>,
    /// The work unit key.
    #[arg(long, required = true)]
    key: Option<String>,
    /// Print JSON lines, with times as epoch milliseconds.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Option<OutputsCommand>,
}

#[derive(Debug, Subcommand)]
enum OutputsCommand {
    /// Delete outputs stored longer ago than --older-than, a batch at a time.
    Purge {
        /// How old an output must be to go: `90days`, `12h`, `0s` (all of them).
        #[arg(long, value_name = "AGE", value_parser = age)]
        older_than: Duration,
    },
}

#[derive(serde::Serialize)]
struct Line<'a> {
    item_ids: &'a [i64],
    created_at_ms: i64,
    output: Option<&'a RawValue>,
}

/// Reads `--older-than`.
fn age(text: &str) -> Result<Duration, String> {
    let age = humantime::parse_duration(text)
        .map_err(|err| format!("{err}; write a duration like 90days, 12h or 30m"))?;
    if age > MAX_RETENTION {
        return Err(format!(
            "must be at most {}",
            humantime::format_duration(MAX_RETENTION)
        ));
    }
    Ok(age)
}

pub async fn run(args: OutputsArgs) -> anyhow::Result<ExitCode> {
    match (args.command, args.task, args.key) {
        (Some(OutputsCommand::Purge { older_than }), None, None) => {
            purge(&args.database, older_than).await
        }
        (Some(_), _, _) => bail!("`outputs purge` deletes by age alone: drop --task and --key"),
        (None, Some(task), Some(key)) => show(&args.database, &task, &key, args.json).await,
        (None, _, _) => bail!("say which unit's outputs to show: --task TYPE --key KEY"),
    }
}

async fn show(
    database: &DatabaseArgs,
    task: &str,
    key: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = database.open_existing().await?;
    for stored in store.outputs(task, key).await? {
        let output: Option<&RawValue> = stored
            .output
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        if json {
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

/// Deletes in batches, each its own short transaction, so hosts keep
/// committing while a large purge runs.
async fn purge(database: &DatabaseArgs, older_than: Duration) -> anyhow::Result<ExitCode> {
    let store = database.open_existing().await?;
    let mut purged = 0;
    loop {
        let deleted = store.prune_outputs(older_than, DELETE_BATCH).await?;
        purged += deleted;
        if deleted < u64::from(DELETE_BATCH) {
            break;
        }
    }
    println!(
        "purged {purged} output(s) older than {}",
        humantime::format_duration(older_than)
    );
    Ok(ExitCode::SUCCESS)
}
