//! The dashboard's static files, embedded in the binary: its style sheet,
//! the chart script, and the vendored htmx and uPlot (see `vendor/README.md`
//! for their versions and licenses).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: &[(&str, &str, &str)] = &[
    ("sluice.css", "text/css", include_str!("sluice.css")),
    ("chart.js", "text/javascript", include_str!("chart.js")),
    (
        "htmx.min.js",
        "text/javascript",
        include_str!("vendor/htmx-2.0.4.min.js"),
    ),
    (
        "uPlot.min.js",
        "text/javascript",
        include_str!("vendor/uPlot-1.6.31.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_str!("vendor/uPlot-1.6.31.min.css"),
    ),
];

pub(super) async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
