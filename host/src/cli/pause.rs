//! `sluice pause TASK_TYPE` and `sluice resume TASK_TYPE`: stop and restart
//! the claiming of one task type on every host sharing the database, by hand
//! (a provider's circuit breaker does the same on its own). Units already
//! running finish their current work; nothing is lost or charged.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::database::DatabaseArgs;

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The task type to pause or resume.
    task_type: String,
}

/// Pauses (`paused`) or resumes the task type.
pub async fn run(args: PauseArgs, paused: bool) -> anyhow::Result<ExitCode> {
    let task_type = args.task_type.as_str();
    if let Err(reason) = crate::store::validate::task_type(task_type) {
        bail!("{reason}; name the task type to pause or resume as its items do");
    }
    let store = args.database.open_existing().await?;
    let changed = store.set_paused(task_type, paused).await?;
    match (paused, changed) {
        (true, true) => println!(
            "paused `{task_type}`: no host claims its units until `sluice resume {task_type}`"
        ),
        (true, false) => println!("`{task_type}` was already paused"),
        (false, true) => println!("resumed `{task_type}`: hosts claim its units again"),
        (false, false) => println!("`{task_type}` was not paused"),
    }
    Ok(ExitCode::SUCCESS)
}
