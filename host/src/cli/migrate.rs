//! `sluice migrate`: brings the database schema up to this binary's version.

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.open_unmigrated().await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    match pending {
        0 => println!("schema is up to date"),
        n => println!("applied {n} migration(s)"),
    }
    Ok(ExitCode::SUCCESS)
}
