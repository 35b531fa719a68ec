//! Errors as RFC 9457 problem documents (`application/problem+json`): a
//! type, a title, the HTTP status, a detail that says what was wrong and
//! what to do, and, when one field is at fault, its name (`field`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// A problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// What kind of problem: `urn:sluice:problem:<kind>`.
    #[serde(rename = "type")]
    kind: String,
    /// The kind, in words.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What was wrong with this request, and what to do.
    detail: String,
    /// The field at fault (`work_unit_key`, `items[3].payload`, `cursor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip)]
    retry_after_s: Option<u32>,
    #[serde(skip)]
    challenge: bool,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:sluice:problem:{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after_s: None,
            challenge: false,
        }
    }

    /// A request the API cannot take as it is: 400.
    pub fn invalid(field: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            field,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "Invalid request",
                detail,
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
            )
        }
    }

    /// A request this server cannot carry out in its present state: 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// A body the listener would not read: too large (413) or unreadable.
    pub fn body(status: StatusCode, detail: impl Into<String>) -> Self {
        let (kind, title) = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ("body-too-large", "Request body too large")
        } else {
            ("unreadable-body", "Unreadable request body")
        };
        Self::new(status, kind, title, detail)
    }

    /// An item a store refused: the field its reason starts with, under
    /// `prefix` (`items[3].`) when the request held several.
    pub fn item(index_prefix: Option<usize>, reason: &str) -> Self {
        const FIELDS: &[&str] = &[
            "task_type",
            "work_unit_key",
            "payload",
            "tokens",
            "dedupe_key",
            "run_after",
            "delay",
        ];
        let field = FIELDS
            .iter()
            .find(|f| reason.starts_with(*f) && reason[f.len()..].starts_with(' '))
            .map(|f| match index_prefix {
                Some(index) => format!("items[{index}].{f}"),
                None => (*f).to_string(),
            })
            .or(index_prefix.map(|index| format!("items[{index}]")));
        Self {
            field,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-item",
                "Invalid item",
                format!("{reason}; nothing was enqueued"),
            )
        }
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidItem { index, reason } => Problem::item(Some(index), &reason),
            StoreError::Unavailable(_) | StoreError::Contended(_) | StoreError::Connect { .. } => {
                Self {
                    retry_after_s: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database-unavailable",
                        "Database unavailable",
                        err.to_string(),
                    )
                }
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database-error",
                "Database error",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_s;
        let challenge = self.challenge;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
