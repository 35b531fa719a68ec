//! The queue's status: the figures of `sluice status`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use super::V1;
use super::problem::Problem;
use crate::config::Scope;
use crate::store::Status;

/// Depth and oldest age per task type and state, claimed units and hosts.
#[utoipa::path(
    get, path = "/v1/status", tag = "queue",
    responses(
        (status = 200, body = Status),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn status(
    State(v1): State<V1>,
    headers: HeaderMap,
) -> Result<Json<Status>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    Ok(Json(v1.store.status().await?))
}
