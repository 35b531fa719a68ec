//! `sluice config`: the effective configuration (defaults, file and
//! environment merged) as TOML, with secrets replaced by `***`. It checks
//! exactly what `sluice run` checks before opening the database
//! ([`preflight`]), plugins included, and exits 2 naming what is wrong.
//! `sluice config --example` prints the commented example instead
//! (`deploy/sluice.toml`).

use std::process::ExitCode;

use clap::Args;

use super::database::DatabaseArgs;
use super::preflight;

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
    preflight::check(&config).await?;
    print!("{}", toml::to_string(&config.redacted()?)?);
    Ok(ExitCode::SUCCESS)
}
