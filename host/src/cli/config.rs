//! `sluice config`: the effective configuration (defaults, file and
//! environment merged) as TOML, with secrets replaced by `***`. Exits 2 with
//! the offending key when the configuration is invalid. `sluice config
//! --example` prints the commented example instead (`deploy/sluice.toml`).

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;

#[derive(Debug, Args)]
pub struct ShowConfigArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print an example configuration with every key documented and its
    /// default shown, instead of reading the configuration.
    #[arg(long)]
    example: bool,
}

pub async fn run(args: ShowConfigArgs) -> anyhow::Result<ExitCode> {
    if args.example {
        print!("{}", crate::config::example());
        return Ok(ExitCode::SUCCESS);
    }
    let config = args.database.load_config()?;
    print!("{}", toml::to_string(&config.redacted())?);
    Ok(ExitCode::SUCCESS)
}
