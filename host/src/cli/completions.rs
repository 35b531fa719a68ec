//! `sluice completions SHELL`: shell completions generated from the command
//! line's own definition, so they always match the binary that prints them.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    clap_complete::generate(args.shell, &mut command, "sluice", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
