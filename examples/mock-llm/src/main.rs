//! `mock-llm`: the mock LLM server as a process, for the demo and manual runs.

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;
use mock_llm::{FaultRule, FaultSpec, MockLlm, Options};

/// A mock LLM server (OpenAI and Anthropic APIs) with deterministic replies and fault modes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// A fault for every request that picks none of its own: hang, stall,
    /// trickle, 429, 429:SECONDS, 429:date:SECONDS, 500, malformed, huge,
    /// reset or no-usage, optionally with *N to fault only the first N
    /// requests per prompt.
    #[arg(long, value_name = "MODE")]
    fault: Option<FaultSpec>,
    /// TEXT=MODE: requests whose last user message contains TEXT get MODE
    /// (repeatable; the first matching rule wins). `hang*1` hangs the first
    /// request the rule matches and answers every later one.
    #[arg(long = "fault-when", value_name = "TEXT=MODE")]
    rules: Vec<FaultRule>,
    /// An outage from start: every request is answered 500 for this many
    /// seconds, then served as usual.
    #[arg(long, value_name = "SECONDS")]
    outage_secs: Option<u64>,
    /// Milliseconds every API request waits before it is answered (a
    /// provider's thinking time).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Print the most requests handled at once, every second, while it changes.
    #[arg(long)]
    report_in_flight: bool,
}

/// Prints each webhook delivery as it arrives, one line each.
async fn print_deliveries(server: &MockLlm) {
    let mut shown = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let deliveries = server.deliveries();
        for delivery in &deliveries[shown..] {
            let signature = delivery
                .headers
                .get("x-sluice-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("unsigned");
            println!(
                "webhook /hooks/{} ({signature}): {}",
                delivery.path,
                String::from_utf8_lossy(&delivery.body)
            );
        }
        shown = deliveries.len();
        let _ = std::io::stdout().flush();
    }
}

/// Prints `peak in flight: N` each second in which the peak rose.
async fn print_peak(server: &MockLlm) {
    let mut shown = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let peak = server.peak_in_flight();
        if peak != shown {
            println!("peak in flight: {peak}");
            let _ = std::io::stdout().flush();
            shown = peak;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = MockLlm::start_on(
        args.listen,
        Options {
            rules: args.rules,
            fault: args.fault,
            latency: std::time::Duration::from_millis(args.latency_ms),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    if let Some(secs) = args.outage_secs {
        server.outage(std::time::Duration::from_secs(secs));
    }
    println!("mock-llm listening on http://{}", server.addr());
    std::io::stdout().flush()?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped?,
        () = print_deliveries(&server) => {}
        () = print_peak(&server), if args.report_in_flight => {}
    }
    server.shutdown().await;
    Ok(())
}
