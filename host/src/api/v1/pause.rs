//! Pausing and resuming a task type on every host sharing the database, as
//! `sluice pause` and `sluice resume` do, for an operator who has the API but
//! no shell. Hosts stop claiming the task type's units; units already running
//! finish their current work; nothing is lost or charged. `GET /v1/status`
//! lists what is paused.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::V1;
use super::problem::Problem;
use crate::config::Scope;

/// A task type's state after a pause or a resume.
#[derive(Serialize, ToSchema)]
pub(super) struct Paused {
    task_type: String,
    /// Whether hosts leave its units unclaimed now.
    paused: bool,
    /// False when it already was as asked.
    changed: bool,
}

/// Stop every host from claiming the task type's units.
#[utoipa::path(
    post, path = "/v1/task-types/{task_type}/pause", tag = "queue",
    params(("task_type" = String, Path)),
    responses(
        (status = 200, body = Paused),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn pause(
    State(v1): State<V1>,
    headers: HeaderMap,
    Path(task_type): Path<String>,
) -> Result<Json<Paused>, Problem> {
    set(&v1, &headers, task_type, true).await
}

/// Let hosts claim the task type's units again.
#[utoipa::path(
    post, path = "/v1/task-types/{task_type}/resume", tag = "queue",
    params(("task_type" = String, Path)),
    responses(
        (status = 200, body = Paused),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn resume(
    State(v1): State<V1>,
    headers: HeaderMap,
    Path(task_type): Path<String>,
) -> Result<Json<Paused>, Problem> {
    set(&v1, &headers, task_type, false).await
}

async fn set(
    v1: &V1,
    headers: &HeaderMap,
    task_type: String,
    paused: bool,
) -> Result<Json<Paused>, Problem> {
    v1.tokens.check(headers, Scope::Admin)?;
    crate::store::validate::task_type(&task_type)
        .map_err(|reason| Problem::invalid(Some("task_type".into()), reason))?;
    let changed = v1.store.set_paused(&task_type, paused).await?;
    if changed {
        let what = if paused { "paused" } else { "resumed" };
        tracing::info!(%task_type, "{what} over the API");
    }
    Ok(Json(Paused {
        task_type,
        paused,
        changed,
    }))
}
