//! A unit's pending and dead items, and cancelling its pending items.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{self, ItemPage};
use super::problem::Problem;
use super::{V1, body};
use crate::config::Scope;

/// Which of the unit's items.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UnitItemsParams {
    /// `pending` or `dead`; both when absent. Done items are not listed:
    /// read them by id, or their outputs.
    #[param(inline)]
    state: Option<ItemState>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page; none for the first.
    cursor: Option<String>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum ItemState {
    Pending,
    Dead,
}

/// The unit's pending and dead items, in the order it runs them.
#[utoipa::path(
    get, path = "/v1/units/{task_type}/{work_unit_key}/items", tag = "units",
    params(
        ("task_type" = String, Path),
        ("work_unit_key" = String, Path),
        UnitItemsParams,
    ),
    responses(
        (status = 200, body = ItemPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn items(
    State(v1): State<V1>,
    headers: HeaderMap,
    Path((task_type, work_unit_key)): Path<(String, String)>,
    params: Result<Query<UnitItemsParams>, QueryRejection>,
) -> Result<Json<ItemPage>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    let params = body::query(params)?;
    let mut query = page::query(params.limit, params.cursor.as_deref())?;
    query.task_type = Some(task_type);
    query.work_unit_key = Some(work_unit_key);
    query.state = params.state.map(|state| match state {
        ItemState::Pending => "pending".to_string(),
        ItemState::Dead => "dead".to_string(),
    });
    let items = v1.store.items(&query).await?;
    Ok(Json(ItemPage::new(items, query.limit)))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Cancelled {
    /// Pending items deleted. Items a host is running now are not: they
    /// finish or fail as usual.
    cancelled: u64,
}

/// Cancel the unit's pending items.
#[utoipa::path(
    post, path = "/v1/units/{task_type}/{work_unit_key}/cancel", tag = "units",
    params(("task_type" = String, Path), ("work_unit_key" = String, Path)),
    responses(
        (status = 200, body = Cancelled),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn cancel(
    State(v1): State<V1>,
    headers: HeaderMap,
    Path((task_type, work_unit_key)): Path<(String, String)>,
) -> Result<Json<Cancelled>, Problem> {
    v1.tokens.check(&headers, Scope::Admin)?;
    let cancelled = v1.store.cancel_pending(&task_type, &work_unit_key).await?;
    tracing::info!(%task_type, %work_unit_key, cancelled, "cancelled pending items over the API");
    Ok(Json(Cancelled { cancelled }))
}
