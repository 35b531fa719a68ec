//! `sluice enqueue`: one item from flags, or many from JSON lines on stdin.
//!
//! Every line is parsed and every item checked before anything is written: a
//! bad line 900 of 1,000 enqueues nothing and names line 900.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::database::DatabaseArgs;
use crate::store::{NewItem, RunAfter, StoreError};

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The task type. Without it, items are read from stdin as JSON lines:
    /// {"task_type", "work_unit_key", "payload"[, "tokens", "dedupe_key",
    /// "run_after" | "delay"]}.
    #[arg(long, requires_all = ["key", "payload"])]
    task: Option<String>,
    /// The work unit key.
    #[arg(long, requires = "task")]
    key: Option<String>,
    /// The JSON payload.
    #[arg(long, requires = "task")]
    payload: Option<String>,
    /// A size hint for batching.
    #[arg(long, default_value_t = 0)]
    tokens: u32,
    /// Skip the item if a pending one with this key (and task type) exists.
    #[arg(long)]
    dedupe_key: Option<String>,
    /// Not before this RFC 3339 time (2026-12-01T09:30:00Z); the unit's
    /// later items wait behind it.
    #[arg(long, requires = "task", conflicts_with = "delay", value_parser = parse_time)]
    run_after: Option<i64>,
    /// Not before this long from now (90s, 15m, 2h); the unit's later items
    /// wait behind it.
    #[arg(long, requires = "task", value_parser = parse_delay)]
    delay: Option<std::time::Duration>,
}

fn parse_time(text: &str) -> Result<i64, String> {
    crate::store::parse_time(text)
}

fn parse_delay(text: &str) -> Result<std::time::Duration, String> {
    crate::store::parse_delay(text)
}

pub async fn run(args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    // Where each item came from, for error messages: its stdin line number.
    let (items, line_numbers) = match &args.task {
        Some(task) => (
            vec![NewItem {
                task_type: task.clone(),
                work_unit_key: args.key.clone().unwrap_or_default(),
                payload: args.payload.clone().unwrap_or_default(),
                tokens: args.tokens,
                dedupe_key: args.dedupe_key.clone(),
                run_after: args
                    .run_after
                    .map(RunAfter::At)
                    .or(args.delay.map(RunAfter::Delay)),
            }],
            None,
        ),
        None => {
            let (items, lines) = read_lines(std::io::stdin().lock())?;
            (items, Some(lines))
        }
    };
    if items.is_empty() {
        bail!("no items on stdin; pass JSON lines, or use --task, --key and --payload");
    }
    let store = args.database.open().await?;
    let enqueued = store
        .enqueue(&items)
        .await
        .map_err(|err| match (err, &line_numbers) {
            // Name the line, not the index, when the items came from stdin.
            (StoreError::InvalidItem { index, reason }, Some(lines)) => {
                anyhow::anyhow!("line {}: {reason}; nothing was enqueued", lines[index])
            }
            (other, _) => other.into(),
        })?;
    for e in &enqueued {
        println!("{}", serde_json::to_string(e)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses JSON lines (blank lines skipped) into items and their line
/// numbers; the first bad line is an error.
fn read_lines(input: impl BufRead) -> anyhow::Result<(Vec<NewItem>, Vec<usize>)> {
    let (mut items, mut line_numbers) = (Vec::new(), Vec::new());
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.context("cannot read stdin")?;
        let line = std::str::from_utf8(&line).map_err(|err| {
            anyhow::anyhow!(
                "line {}: not UTF-8 (byte {} is not valid UTF-8); nothing was enqueued",
                n + 1,
                err.valid_up_to() + 1
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let item: NewItem = serde_json::from_str(line)
            .with_context(|| format!("line {}: not a valid item; nothing was enqueued", n + 1))?;
        items.push(item);
        line_numbers.push(n + 1);
    }
    Ok((items, line_numbers))
}
