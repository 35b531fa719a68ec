//! The `sluice` binary; everything it does lives in [`sluice::cli`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sluice::cli::run().await
}
