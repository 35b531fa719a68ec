//! `sluice config`: the effective configuration (defaults, file and
//! environment merged) as TOML, with secrets replaced by `***`. Exits 2 with
//! the offending key when the configuration is invalid.

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;

#[derive(Debug, Args)]
pub struct ShowConfigArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

pub async fn run(args: ShowConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.database.load_config()?;
    print!("{}", toml::to_string(&config.redacted())?);
    Ok(ExitCode::SUCCESS)
}
