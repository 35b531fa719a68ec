//! Enqueueing (one item, or many in one transaction) and reading one item.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use super::{V1, body};
use crate::config::Scope;
use crate::store::{Enqueued, ItemInput, ItemRecord, NewItem, StoreError};

/// The most items one request may enqueue.
const MAX_BATCH: usize = 10_000;

/// Enqueue one item.
#[utoipa::path(
    post, path = "/v1/items", tag = "items",
    request_body = ItemInput,
    responses(
        (status = 201, description = "Enqueued (or, with a dedupe key a pending item holds, that item)", body = Enqueued),
        (status = 400, description = "The item is invalid; nothing was enqueued", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["enqueue"]))
)]
pub(super) async fn enqueue(
    State(v1): State<V1>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Enqueued>), Problem> {
    v1.tokens.check(&headers, Scope::Enqueue)?;
    let item: NewItem = body::json(body)?;
    let mut enqueued = v1.store.enqueue(&[item]).await.map_err(|err| match err {
        StoreError::InvalidItem { reason, .. } => Problem::item(None, &reason),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(enqueued.remove(0))))
}

/// Several items, enqueued in one transaction.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Batch {
    /// At most 10,000 items, in the order their units will run them.
    #[schema(value_type = Vec<ItemInput>)]
    items: Vec<Box<serde_json::value::RawValue>>,
}

/// What a batch enqueue did, per item, in order.
#[derive(Serialize, ToSchema)]
pub(super) struct BatchEnqueued {
    items: Vec<Enqueued>,
}

/// Enqueue many items in one transaction: all of them, or none.
#[utoipa::path(
    post, path = "/v1/items/batch", tag = "items",
    request_body = Batch,
    responses(
        (status = 201, description = "All enqueued, one result per item in order", body = BatchEnqueued),
        (status = 400, description = "An item is invalid (`field` names it); nothing was enqueued", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["enqueue"]))
)]
pub(super) async fn enqueue_many(
    State(v1): State<V1>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchEnqueued>), Problem> {
    v1.tokens.check(&headers, Scope::Enqueue)?;
    let batch: Batch = body::json(body)?;
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH {
        return Err(Problem::invalid(
            Some("items".into()),
            format!(
                "items holds {} items; send 1 to {MAX_BATCH} per request",
                batch.items.len()
            ),
        ));
    }
    let items = batch
        .items
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            body::parse::<NewItem>(raw.get().as_bytes(), Some(format!("items[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let enqueued = v1.store.enqueue(&items).await?;
    Ok((StatusCode::CREATED, Json(BatchEnqueued { items: enqueued })))
}

/// One item in any state: attempts, error history, and the output of the
/// call that completed it.
#[utoipa::path(
    get, path = "/v1/items/{id}", tag = "items",
    params(("id" = i64, Path, description = "The item's id, as enqueue returned it")),
    responses(
        (status = 200, body = ItemRecord),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item: never enqueued, cancelled, or done and past `retain_done`", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub(super) async fn show(
    State(v1): State<V1>,
    headers: HeaderMap,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<ItemRecord>, Problem> {
    v1.tokens.check(&headers, Scope::Read)?;
    let Path(id) = id.map_err(|r| Problem::invalid(Some("id".into()), r.body_text()))?;
    v1.store.item(id).await?.map(Json).ok_or_else(|| {
        Problem::not_found(format!(
            "no item {id}: never enqueued, cancelled, or done and deleted after `retain_done`"
        ))
    })
}
