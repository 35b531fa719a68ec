//! `sluice dead list|show|retry|purge`: the dead-letter queue.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::database::DatabaseArgs;
use crate::store::DeadFilter;

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
    Show { id: i64 },
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
    let store = args.database.open().await?;
    match args.command {
        DeadCommand::List { filter, limit } => {
            for item in store.dead_list(filter.filter().as_ref(), limit).await? {
                println!("{}", serde_json::to_string(&item)?);
            }
        }
        DeadCommand::Show { id } => {
            match store.dead_list(Some(&DeadFilter::Id(id)), 1).await?.pop() {
                Some(item) => println!("{}", serde_json::to_string_pretty(&item)?),
                None => bail!("no dead letter with id {id}"),
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
