//! The plugins in force, and the admin action that reloads them. A host
//! reloads its plugins folder on its own when a file changes and on `SIGHUP`;
//! `POST /v1/plugins/reload` is the same reload for an operator who has the
//! API but no shell on the host, and it answers with what changed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::V1;
use super::problem::Problem;
use crate::config::Scope;
use crate::runtime::Plugin;
use crate::worker::{Host, ReloadSummary};

/// Where the API and the dashboard read the plugins from: a running host's
/// plugins in force, which a reload replaces.
#[async_trait::async_trait]
pub trait Plugins: Send + Sync + 'static {
    /// The plugins in force now.
    fn loaded(&self) -> Vec<Arc<Plugin>>;

    /// Reloads the plugins folder; `None` when this server cannot.
    async fn reload(&self) -> Option<ReloadSummary>;
}

#[async_trait::async_trait]
impl Plugins for Host {
    fn loaded(&self) -> Vec<Arc<Plugin>> {
        self.plugins()
    }

    async fn reload(&self) -> Option<ReloadSummary> {
        self.reload_now().await
    }
}

/// A plugin this host runs.
#[derive(Serialize, ToSchema)]
pub(super) struct PluginInfo {
    name: String,
    version: String,
    /// `batch` or `item`.
    mode: String,
    task_types: Vec<String>,
    /// Hex SHA-256 of the `.wasm` file, which tells two builds apart.
    digest: String,
}

/// The plugins this host runs now, including what a reload swapped in.
#[utoipa::path(
    get, path = "/v1/plugins", tag = "plugins",
    responses(
        (status = 200, body = Vec<PluginInfo>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn list(
    State(v1): State<V1>,
    headers: HeaderMap,
) -> Result<Json<Vec<PluginInfo>>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    Ok(Json(v1.plugins.loaded().iter().map(info).collect()))
}

fn info(plugin: &Arc<Plugin>) -> PluginInfo {
    PluginInfo {
        name: plugin.name.clone(),
        version: plugin.version.clone(),
        mode: plugin.mode.as_str().into(),
        task_types: plugin.task_types.clone(),
        digest: plugin.digest.clone(),
    }
}

/// What a reload did. A refused file changes nothing: its previous version
/// (if any) keeps serving, and `refused` says why.
#[derive(Serialize, ToSchema)]
pub(super) struct ReloadReport {
    /// `name version (file)` of each plugin added.
    added: Vec<String>,
    /// `name old -> new (file)` of each plugin replaced.
    replaced: Vec<String>,
    /// `name version (file)` of each plugin removed.
    removed: Vec<String>,
    /// Why each refused file was refused.
    refused: Vec<String>,
    /// The plugins in force after the reload.
    plugins: Vec<PluginInfo>,
}

/// Reloads the plugins folder now, as `SIGHUP` does: changed files are
/// compiled, checked and swapped in; units already running finish on the
/// version they started with.
#[utoipa::path(
    post, path = "/v1/plugins/reload", tag = "plugins",
    responses(
        (status = 200, body = ReloadReport),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn reload(
    State(v1): State<V1>,
    headers: HeaderMap,
) -> Result<Json<ReloadReport>, Problem> {
    v1.tokens.check(&headers, Scope::Admin)?;
    let Some(summary) = v1.plugins.reload().await else {
        return Err(Problem::conflict(
            "this server does not run plugins, so it has none to reload; call the API of a `sluice run` host, or send it SIGHUP",
        ));
    };
    Ok(Json(ReloadReport {
        added: summary.added,
        replaced: summary.replaced,
        removed: summary.removed,
        refused: summary.refused,
        plugins: v1.plugins.loaded().iter().map(info).collect(),
    }))
}
