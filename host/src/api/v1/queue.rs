//! The queue's status (the figures of `sluice status`) and the plugins this
//! host has loaded.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::V1;
use super::problem::Problem;
use crate::config::Scope;
use crate::runtime::Registry;
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

/// A plugin this host runs.
#[derive(Serialize, ToSchema)]
pub(crate) struct PluginInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    /// `batch` or `item`.
    pub(crate) mode: String,
    pub(crate) task_types: Vec<String>,
}

/// The plugins `registry` holds, as `/v1/plugins` and the dashboard show them.
pub(crate) fn plugin_infos(registry: &Registry) -> Vec<PluginInfo> {
    registry
        .plugins()
        .iter()
        .map(|plugin| PluginInfo {
            name: plugin.name.clone(),
            version: plugin.version.clone(),
            mode: plugin.mode.as_str().into(),
            task_types: plugin.task_types.clone(),
        })
        .collect()
}

/// The plugins this host has loaded.
#[utoipa::path(
    get, path = "/v1/plugins", tag = "queue",
    responses(
        (status = 200, body = Vec<PluginInfo>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn plugins(
    State(v1): State<V1>,
    headers: HeaderMap,
) -> Result<Json<Vec<PluginInfo>>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    Ok(Json(plugin_infos(&v1.registry)))
}
