//! Request bodies and query strings read into problem documents instead of
//! axum's plain-text rejections: a body over `api.max_body_bytes` is 413,
//! JSON that does not parse names where it broke.

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// The body as `T`; `field` names it in errors (`items[3]`), if it is part.
pub(super) fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, Problem> {
    let body =
        body.map_err(|rejection| Problem::body(rejection.status(), rejection.body_text()))?;
    parse(&body, None)
}

/// `bytes` as `T`, or a 400 naming `field` and what serde found.
pub(super) fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    field: Option<String>,
) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|err| {
        let what = field.as_deref().unwrap_or("the request body");
        Problem::invalid(field.clone(), format!("{what} is not valid: {err}"))
    })
}

/// The query string as `T`.
pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| Problem::invalid(None, rejection.body_text()))
}
