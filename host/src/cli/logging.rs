//! Log output for every verb: `tracing` to stderr, as text or JSON lines,
//! filtered by `SLUICE_LOG` (an `EnvFilter` directive, default `info`, with
//! sqlx's per-statement notices at `warn`).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn init(format: Format) {
    let filter =
        EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        Format::Text => builder.init(),
        Format::Json => builder.json().init(),
    }
}
