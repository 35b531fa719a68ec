//! The host's small HTTP listener: `/healthz`, `/readyz` and `/metrics`.
//!
//! - `/healthz` is liveness: 200 while the claim loop and the heartbeat keep
//!   ticking, 503 when either has stalled for `stall_after` (restart me).
//! - `/readyz` is readiness: 200 when the database answers with a current
//!   schema and takes this host's writes, plugins are loaded and the host is
//!   not shutting down. A host that already knows the database is failing
//!   answers 503 at once, so a probe with a short timeout sees 503, not a
//!   timeout. Its detail lists each LLM provider's circuit breaker (its
//!   state and since when): an open one stops its task types, not the host,
//!   so it does not make it unready.
//! - `/metrics` is Prometheus text ([`metrics`]).
//!
//! Each answers with a small JSON body saying why, for the human reading it.
//!
//! `sluice run` adds the HTTP API under `/v1` ([`v1`]) to the same listener.

pub mod loopback_host;
pub mod metrics;
pub mod v1;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use crate::worker::{Host, Phase};

/// How long `/readyz` waits for the database: well under the one-second
/// timeouts probes commonly use.
const READY_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Clone)]
struct Api {
    host: Host,
    stall_after: Duration,
    queue: metrics::QueueGauges,
}

/// Binds `addr`, so that a taken port fails at start (before anything is
/// claimed) with the address in the error.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        anyhow::anyhow!("cannot listen on {addr} for /healthz and /metrics: {err}; set `listen` to a free address or \"off\"")
    })
}

/// Serves the endpoints on `listener` until the process ends; returns the
/// address it serves on.
pub fn serve(
    listener: TcpListener,
    host: Host,
    stall_after: Duration,
) -> anyhow::Result<SocketAddr> {
    serve_with(listener, host, stall_after, Router::new())
}

/// [`serve`], with the routes of `more` (the `/v1` API) beside them.
pub fn serve_with(
    listener: TcpListener,
    host: Host,
    stall_after: Duration,
    more: Router,
) -> anyhow::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(serve_metrics))
        .with_state(Api {
            host,
            stall_after,
            queue: metrics::QueueGauges::default(),
        })
        .merge(more);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the health and metrics listener stopped");
        }
    });
    tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    Ok(bound)
}

/// [`listen`] then [`serve`].
pub async fn bind(
    addr: SocketAddr,
    host: Host,
    stall_after: Duration,
) -> anyhow::Result<SocketAddr> {
    serve(listen(addr).await?, host, stall_after)
}

async fn healthz(State(api): State<Api>) -> Response {
    let report = api.host.health().report(api.stall_after);
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn readyz(State(api): State<Api>) -> Response {
    let health = api.host.health();
    let database = if health.stalled_writes() > 0 {
        Err(format!(
            "{} finished outcomes are waiting for the database to take them",
            health.stalled_writes()
        ))
    } else if !health.database_ok() {
        Err("the host's last database round trip failed; retrying".to_string())
    } else {
        match tokio::time::timeout(READY_TIMEOUT, api.host.store().pending_migrations()).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(pending)) => Err(format!(
                "{pending} migrations pending; run `sluice migrate`"
            )),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
        }
    };
    let phase = api.host.phase();
    let ready = database.is_ok() && health.plugins() > 0 && phase == Phase::Running;
    let body = json!({
        "ready": ready,
        "database": database.err().unwrap_or_else(|| "ok".into()),
        "plugins": health.plugins(),
        "shutting_down": phase != Phase::Running,
        // A provider that is down stops its task types, not the host: detail only.
        "llm_providers": api.host.breakers(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn serve_metrics(State(api): State<Api>) -> Response {
    api.queue.refresh(api.host.store().as_ref()).await;
    metrics::set_units_in_flight(api.host.units_in_flight());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(),
    )
        .into_response()
}
