//! The HTTP API under `/v1`, served on the host's listener: producers
//! enqueue and follow their items, operators read the queue and handle dead
//! letters. JSON in and out; errors are RFC 9457 problem documents
//! ([`problem`]); lists page by cursor ([`page`]); every route needs a bearer
//! token of a scope ([`auth`]) unless no token is configured, which the
//! configuration allows on a loopback address only. The OpenAPI 3.1
//! document at `/v1/openapi.json` is generated from the handlers themselves
//! (utoipa), so it cannot drift from what is served.

pub(crate) mod auth;
mod body;
mod dead;
mod items;
mod page;
mod pause;
mod plugins;
mod problem;
mod queue;
mod units;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::store::Store;

pub use plugins::Plugins;

/// What every handler needs.
#[derive(Clone)]
struct V1 {
    store: Arc<dyn Store>,
    plugins: Arc<dyn Plugins>,
    tokens: Arc<auth::Tokens>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Enqueue work items, follow them, and handle dead letters. Every route takes \
                       `Authorization: Bearer TOKEN` with a token of the scope it names \
                       (`enqueue`, `read` or `admin`; `admin` may do everything)."
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn routes_and_doc() -> (Router<V1>, utoipa::openapi::OpenApi) {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(items::enqueue))
        .routes(routes!(items::enqueue_many))
        .routes(routes!(items::show))
        .routes(routes!(units::items))
        .routes(routes!(units::cancel))
        .routes(routes!(queue::status))
        .routes(routes!(pause::pause))
        .routes(routes!(pause::resume))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::reload))
        .routes(routes!(dead::list))
        .routes(routes!(dead::show))
        .routes(routes!(dead::retry))
        .routes(routes!(dead::purge))
        .split_for_parts()
}

/// Checks what [`router`] would refuse (a token whose variable is unset), so
/// a host can refuse to start before it claims anything.
pub fn check(config: &Config) -> anyhow::Result<()> {
    auth::Tokens::from_config(&config.api).map(drop)
}

/// The `/v1` routes over `store`, for `plugins`, with the tokens and body
/// limit of `config.api`. Fails when a token's variable is unset.
pub fn router(
    store: Arc<dyn Store>,
    plugins: Arc<dyn Plugins>,
    config: &Config,
) -> anyhow::Result<Router> {
    let tokens = auth::Tokens::from_config(&config.api)?;
    if tokens.is_open() {
        tracing::warn!(
            "no [api.tokens]: the HTTP API under /v1 is open to every process on this machine (listen is a loopback address)"
        );
    }
    let open = tokens.is_open();
    let (routes, doc) = routes_and_doc();
    let doc = Arc::new(doc.to_json()?);
    let routes = routes
        .route(
            "/v1/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc.as_str().to_owned(),
                )
            }),
        )
        .layer(DefaultBodyLimit::max(config.api.max_body_bytes))
        .with_state(V1 {
            store,
            plugins,
            tokens: Arc::new(tokens),
        });
    Ok(if open {
        routes.layer(axum::middleware::from_fn(super::loopback_host::only))
    } else {
        routes
    })
}
