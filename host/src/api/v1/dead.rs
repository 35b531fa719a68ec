//! Dead letters: list, show, retry and purge (the last two need `admin`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{self, ItemPage};
use super::problem::Problem;
use super::{V1, body};
use crate::config::Scope;
use crate::store::{DeadFilter, ItemRecord};

/// Which dead letters to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeadParams {
    task_type: Option<String>,
    /// Only with `task_type`.
    work_unit_key: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page; none for the first.
    cursor: Option<String>,
}

/// Dead letters, oldest first.
#[utoipa::path(
    get, path = "/v1/dead", tag = "dead letters",
    params(DeadParams),
    responses(
        (status = 200, body = ItemPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn list(
    State(v1): State<V1>,
    headers: HeaderMap,
    params: Result<Query<DeadParams>, QueryRejection>,
) -> Result<Json<ItemPage>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    let params = body::query(params)?;
    if params.work_unit_key.is_some() && params.task_type.is_none() {
        return Err(Problem::invalid(
            Some("work_unit_key".into()),
            "work_unit_key needs task_type: a unit is a task type and a key",
        ));
    }
    let mut query = page::query(params.limit, params.cursor.as_deref())?;
    query.state = Some("dead".into());
    query.task_type = params.task_type;
    query.work_unit_key = params.work_unit_key;
    let items = v1.store.items(&query).await?;
    Ok(Json(ItemPage::new(items, query.limit)))
}

/// One dead letter with its error history.
#[utoipa::path(
    get, path = "/v1/dead/{id}", tag = "dead letters",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ItemRecord),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn show(
    State(v1): State<V1>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ItemRecord>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    let Path(id) = id.map_err(|r| Problem::invalid(Some("id".into()), r.body_text()))?;
    match v1.store.item(id).await? {
        Some(item) if item.state == "dead" => Ok(Json(item)),
        _ => Err(Problem::not_found(format!(
            "item {id} is not a dead letter"
        ))),
    }
}

/// Which dead letters to retry or purge: one by `id`, a unit's
/// (`task_type` and `work_unit_key`), or a task type's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeadSelector {
    id: Option<i64>,
    task_type: Option<String>,
    work_unit_key: Option<String>,
}

impl DeadSelector {
    fn filter(self) -> Result<DeadFilter, Problem> {
        match (self.id, self.task_type, self.work_unit_key) {
            (Some(id), None, None) => Ok(DeadFilter::Id(id)),
            (None, Some(task_type), Some(work_unit_key)) => Ok(DeadFilter::Key {
                task_type,
                work_unit_key,
            }),
            (None, Some(task_type), None) => Ok(DeadFilter::TaskType(task_type)),
            (None, None, Some(_)) => Err(Problem::invalid(
                Some("work_unit_key".into()),
                "work_unit_key needs task_type: a unit is a task type and a key",
            )),
            (Some(_), _, _) => Err(Problem::invalid(
                Some("id".into()),
                "give id alone, or task_type (and work_unit_key) without id",
            )),
            (None, None, None) => Err(Problem::invalid(
                None,
                "say which dead letters: id, or task_type (and work_unit_key)",
            )),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct Affected {
    /// How many dead letters were retried or purged.
    count: u64,
}

/// Put dead letters back to pending with their attempts reset.
#[utoipa::path(
    post, path = "/v1/dead/retry", tag = "dead letters",
    request_body = DeadSelector,
    responses(
        (status = 200, body = Affected),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn retry(
    State(v1): State<V1>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Affected>, Problem> {
    v1.tokens.check(&headers, Scope::Admin)?;
    let filter = body::json::<DeadSelector>(body)?.filter()?;
    let count = v1.store.dead_retry(&filter).await?;
    tracing::info!(?filter, count, "retried dead letters over the API");
    Ok(Json(Affected { count }))
}

/// Delete dead letters.
#[utoipa::path(
    post, path = "/v1/dead/purge", tag = "dead letters",
    request_body = DeadSelector,
    responses(
        (status = 200, body = Affected),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub(super) async fn purge(
    State(v1): State<V1>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Affected>, Problem> {
    v1.tokens.check(&headers, Scope::Admin)?;
    let filter = body::json::<DeadSelector>(body)?.filter()?;
    let count = v1.store.dead_purge(&filter).await?;
    tracing::info!(?filter, count, "purged dead letters over the API");
    Ok(Json(Affected { count }))
}
