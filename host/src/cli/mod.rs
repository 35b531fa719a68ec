//! The `sluice` command line.
//!
//! Each verb lives in its own module. Exit codes are shared: 0 means success,
//! 1 means the command ran and found a problem (a bad plugin, a call that did
//! not succeed), 2 means the command could not run (bad arguments, bad input).

mod bench;
mod completions;
mod config;
mod database;
mod dead;
mod enqueue;
mod exec;
mod logging;
mod manpage;
mod migrate;
mod open_files;
mod outputs;
mod pause;
mod plugins;
mod preflight;
mod run;
mod status;
mod times;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice: a work-unit processing host that runs task handlers as sandboxed
/// WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, env = "SLUICE_LOG_FORMAT", value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: claim work units and process them with the plugins.
    Run(run::RunArgs),
    /// Print the effective configuration, secrets redacted.
    Config(config::ShowConfigArgs),
    /// Work with task plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Run one plugin call without a database and print its outcome as JSON.
    Exec(exec::ExecArgs),
    /// Apply pending database migrations.
    Migrate(migrate::MigrateArgs),
    /// Enqueue one item from flags, or many from JSON lines on stdin.
    Enqueue(enqueue::EnqueueArgs),
    /// Queue depth and oldest age per task type and state.
    Status(status::StatusArgs),
    /// What a unit's plugin returned, one JSON object per line.
    Outputs(outputs::OutputsArgs),
    /// Stop claiming a task type's units on every host, until `resume`.
    Pause(pause::PauseArgs),
    /// Claim a paused task type's units again.
    Resume(pause::PauseArgs),
    /// Inspect, retry and purge dead letters.
    Dead(dead::DeadArgs),
    /// Serve the dashboard (/ui) against the database, processing nothing.
    Ui(ui::UiArgs),
    /// Throughput benchmarks against the real stores.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write one page per command into a folder.
    Manpage(manpage::ManpageArgs),
}

/// Parses the command line, runs the verb and returns the process exit code.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Config(args) => config::run(args).await,
        Command::Plugins(command) => plugins::run(command).await,
        Command::Exec(args) => exec::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Enqueue(args) => enqueue::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Outputs(args) => outputs::run(args).await,
        Command::Pause(args) => pause::run(args, true).await,
        Command::Resume(args) => pause::run(args, false).await,
        Command::Dead(args) => dead::run(args).await,
        Command::Ui(args) => ui::run(args).await,
        Command::Bench(command) => bench::run(command).await,
        Command::Completions(args) => completions::run(args),
        Command::Manpage(args) => manpage::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
