//! Log output for every verb: `tracing` to stderr, as text or JSON lines,
//! filtered by `SLUICE_LOG` (an `EnvFilter` directive, default `info`, with
//! sqlx's per-statement notices at `warn`).
//!
//! Text is coloured only when stderr is a terminal and `NO_COLOR` is unset
//! (<https://no-color.org>), so files, pipes and journald get plain lines.
//! JSON lines carry real numbers, booleans, arrays and objects (see [`json`]).

mod json;

use std::io::IsTerminal;

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
        Format::Text => builder.with_ansi(colour()).init(),
        Format::Json => builder
            .with_ansi(false)
            .fmt_fields(json::JsonFields)
            .event_format(json::JsonLines)
            .init(),
    }
}

/// Whether text logs may use colour: on a terminal, unless `NO_COLOR` is set
/// to anything but the empty string.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
