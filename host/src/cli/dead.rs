//! `sluice dead list|show|retry|purge`: the dead-letter queue. `list` prints
//! JSON lines; `show` prints one dead letter for a person (times in RFC 3339),
//! or with `--json` as JSON (times in epoch milliseconds).

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::database::DatabaseArgs;
use super::times::rfc3339;
use crate::store::{DeadFilter, DeadItem};

#[derive(Debug, Args)]
pub struct DeadArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: DeadCommand,
}

#[derive(Debug, Subcommand)]
enum DeadCommand {
    /// List dead letters (one JSON object a line).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one dead letter with its payload and error history.
    Show {
        id: i64,
        /// Print JSON, with times as epoch milliseconds.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back to pending, attempts reset.
    Retry {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Delete dead letters.
    Purge {
        #[command(flatten)]
        filter: FilterArgs,
    },
}

/// Which dead letters: `--id`, or `--task` with an optional `--key`.
#[derive(Debug, Args)]
struct FilterArgs {
    #[arg(long, conflicts_with_all = ["task", "key"])]
    id: Option<i64>,
    #[arg(long)]
    task: Option<String>,
    #[arg(long, requires = "task")]
    key: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> Option<DeadFilter> {
        match (self.id, &self.task, &self.key) {
            (Some(id), _, _) => Some(DeadFilter::Id(id)),
            (None, Some(task), Some(key)) => Some(DeadFilter::Key {
                task_type: task.clone(),
                work_unit_key: key.clone(),
            }),
            (None, Some(task), None) => Some(DeadFilter::TaskType(task.clone())),
            (None, None, _) => None,
        }
    }

    /// Retry and purge must say what they act on.
    fn required(&self, verb: &str) -> anyhow::Result<DeadFilter> {
        match self.filter() {
            Some(filter) => Ok(filter),
            None => bail!("say which dead letters to {verb}: --id ID, or --task TYPE [--key KEY]"),
        }
    }
}

pub async fn run(args: DeadArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open_existing().await?;
    match args.command {
        DeadCommand::List { filter, limit } => {
            for item in store.dead_list(filter.filter().as_ref(), limit).await? {
                println!("{}", serde_json::to_string(&item)?);
            }
        }
        DeadCommand::Show { id, json } => {
            match store.dead_list(Some(&DeadFilter::Id(id)), 1).await?.pop() {
                Some(item) if json => println!("{}", serde_json::to_string_pretty(&item)?),
                Some(item) => print!("{}", describe(&item)?),
                None => bail!("no dead letter with id {id}; `sluice dead list` shows the ids"),
            }
        }
        DeadCommand::Retry { filter } => {
            let n = store.dead_retry(&filter.required("retry")?).await?;
            println!("retried {n} dead letter(s)");
        }
        DeadCommand::Purge { filter } => {
            let n = store.dead_purge(&filter.required("purge")?).await?;
            println!("purged {n} dead letter(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One dead letter as `dead show` prints it for a person.
fn describe(item: &DeadItem) -> anyhow::Result<String> {
    let mut text = format!(
        "dead letter {}\ntask type:     {}\nwork unit key: {}\nattempts:      {}\ncreated:       {}\n",
        item.id,
        item.task_type,
        item.work_unit_key,
        item.attempts,
        rfc3339(item.created_at_ms)
    );
    if let Some(finished) = item.finished_at_ms {
        text += &format!("dead since:    {}\n", rfc3339(finished));
    }
    if let Some(error) = &item.last_error {
        text += &format!("last error:    {error}\n");
    }
    text += &format!(
        "payload:\n{}\n",
        serde_json::to_string_pretty(&item.payload)?
    );
    text += "errors:\n";
    for failure in item.errors.as_array().into_iter().flatten() {
        let at = failure["at_ms"].as_i64().map(rfc3339).unwrap_or_default();
        let error = failure["error"].as_str().unwrap_or_default();
        text += &format!("  attempt {} at {at}: {error}\n", failure["attempt"]);
    }
    Ok(text)
}
