//! `sluice ui`: the dashboard alone, against the configured database, for
//! fleets where no single host is special. It claims nothing and loads no
//! plugins; it takes the same `[api.tokens]` as `sluice run`, and refuses a
//! non-loopback address without them.

use std::future::IntoFuture;
use std::process::ExitCode;

use anyhow::Context;
use axum::response::Redirect;
use axum::routing::get;
use clap::Args;

use super::database::DatabaseArgs;
use crate::worker::shutdown::Signals;

#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The address to serve on (default: the configuration's `listen`).
    #[arg(long, env = "SLUICE_UI_LISTEN")]
    listen: Option<String>,
}

pub async fn run(args: UiArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::watch().context("cannot watch for SIGTERM and SIGINT")?;
    let mut config = args.database.load_config()?;
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
    }
    // The API's rule for tokens and addresses holds for the dashboard alone.
    config.api.enabled = true;
    config.validate().context(
        "`sluice ui` follows the API's rules (api.enabled does not apply to it; give it [api.tokens] or a loopback --listen)",
    )?;
    let addr = config.listen_addr()?.context(
        "`listen` is \"off\": give the dashboard an address with --listen 127.0.0.1:9464",
    )?;
    let store = args.database.open_existing().await?;
    let app =
        crate::ui::router(store, None, &config)?.route("/", get(|| async { Redirect::to("/ui") }));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the dashboard; give a free address with --listen")
    })?;
    tracing::info!(%addr, "serving the dashboard at http://{addr}/ui");
    tokio::select! {
        served = axum::serve(listener, app).into_future() => served.context("the dashboard's listener stopped")?,
        which = signals.next() => tracing::info!("{which} received"),
    }
    Ok(ExitCode::SUCCESS)
}
