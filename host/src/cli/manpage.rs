//! `sluice manpage`: manual pages generated from the command line's own
//! definition: `sluice.1` on stdout, or one page per command in a folder
//! (`sluice.1`, `sluice-run.1`, `sluice-dead-list.1`, ...) for packagers.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_mangen::Man;

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write one page per command into this folder (created if missing) and
    /// print their paths, instead of printing `sluice.1`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: ManpageArgs) -> anyhow::Result<ExitCode> {
    // Built, so that subcommands know their full names (`sluice-run`).
    let mut command = super::Cli::command().disable_help_subcommand(true);
    command.build();
    match args.dir {
        None => {
            let mut page = Vec::new();
            Man::new(command).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the folder {}", dir.display()))?;
            write_pages(&command, &dir)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `command` and of each of its subcommands, depth first.
fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    let path = Man::new(command.clone())
        .generate_to(dir)
        .with_context(|| format!("cannot write a manual page into {}", dir.display()))?;
    println!("{}", path.display());
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}
