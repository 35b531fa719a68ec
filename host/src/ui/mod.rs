//! The operator's dashboard under `/ui`: the queue per task type, units and
//! their items, dead letters (with retry and purge), hosts and plugins.
//! `sluice run` serves it on its listener beside `/v1`, and `sluice ui`
//! serves it alone against a database ([`crate::cli`]).
//!
//! It reads through the same [`Store`] methods the HTTP API reads through
//! (`items`, `item`, `dead_retry`, `dead_purge`), `outputs` as `sluice
//! outputs` does, and the views in [`crate::store::views`], which answer
//! from the unit counters and the items' indexes: no page walks the items
//! table.
//!
//! Pages are rendered on the server with `format!` and one escaping helper
//! ([`html`]) rather than a template crate: the pages are few and small,
//! the markup stays next to the code that fills it, and the binary gains
//! no dependency or build step. The browser gets two vendored libraries,
//! embedded in the binary ([`assets`]): htmx, which refreshes the overview
//! every few seconds (short polling), and uPlot, which draws the last
//! hour's completions and dead letters per minute.
//!
//! Access is the API's tokens, through a sign-in form and a cookie; every
//! action carries a CSRF token ([`access`]).

mod access;
mod assets;
mod dead;
mod hosts;
mod html;
mod overview;
mod units;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::v1::Plugins;
use crate::api::v1::auth::Tokens;
use crate::config::Config;
use crate::store::{Store, StoreError};
use access::{Access, Denied, Viewer};

/// What every page needs.
#[derive(Clone)]
struct Ui {
    store: Arc<dyn Store>,
    /// The plugins this process runs (those in force, after any reload);
    /// `None` for `sluice ui`, which runs none.
    plugins: Option<Arc<dyn Plugins>>,
    config: Arc<Config>,
    access: Arc<Access>,
}

/// The `/ui` routes over `store`, with the tokens of `config.api`. Fails
/// when a token's variable is unset.
pub fn router(
    store: Arc<dyn Store>,
    plugins: Option<Arc<dyn Plugins>>,
    config: &Config,
) -> anyhow::Result<Router> {
    let access = Access::new(Tokens::from_config(&config.api)?)?;
    if access.is_open() {
        tracing::warn!(
            "no [api.tokens]: the dashboard under /ui is open to every process on this machine, actions included (listen is a loopback address)"
        );
    }
    let open = access.is_open();
    let routes = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/overview/table", get(overview::table))
        .route("/ui/overview/minutes", get(overview::minutes))
        .route("/ui/units", get(units::search))
        .route("/ui/unit", get(units::unit))
        .route("/ui/item/{id}", get(units::item))
        .route("/ui/dead", get(dead::list))
        .route("/ui/dead/confirm", post(dead::confirm))
        .route("/ui/dead/act", post(dead::act))
        .route("/ui/hosts", get(hosts::page))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/static/{file}", get(assets::serve))
        .with_state(Ui {
            store,
            plugins,
            config: Arc::new(config.clone()),
            access: Arc::new(access),
        })
        .layer(axum::middleware::map_response(not_framed));
    Ok(if open {
        routes.layer(axum::middleware::from_fn(crate::api::loopback_host::only))
    } else {
        routes
    })
}

/// No other site may show a page of the dashboard in a frame (where a click
/// meant for it could land on an action).
async fn not_framed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// Why a page could not be shown, as the page that says so.
enum Failure {
    Denied(Denied),
    /// The viewer may look but not act (a `read` token): 403.
    ReadOnly,
    /// An action without this session's CSRF token: 403.
    Csrf,
    /// A request the dashboard cannot take as it is: 400.
    Invalid(String),
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<Denied> for Failure {
    fn from(denied: Denied) -> Self {
        Self::Denied(denied)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, title, detail) = match self {
            Failure::Denied(Denied::SignIn) => {
                let mut response = Redirect::to("/ui/login").into_response();
                // htmx follows a redirect inside the fragment; this makes it
                // load the sign-in page instead.
                response
                    .headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/ui/login"));
                return response;
            }
            Failure::Denied(Denied::Scope(detail)) => (StatusCode::FORBIDDEN, "Forbidden", detail),
            Failure::ReadOnly => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "this token has scope `read`: it may look but not act; sign in with an `admin` token to retry or purge".into(),
            ),
            Failure::Csrf => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the form's CSRF token is missing or stale (the host may have restarted); reload the page and try again".into(),
            ),
            Failure::Invalid(detail) => (StatusCode::BAD_REQUEST, "Invalid request", detail),
            Failure::NotFound(detail) => (StatusCode::NOT_FOUND, "Not found", detail),
            Failure::Store(err) => {
                let status = match err {
                    StoreError::Unavailable(_)
                    | StoreError::Contended(_)
                    | StoreError::Connect { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, "Database error", err.to_string())
            }
        };
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Sluice</title>\
             <link rel=\"stylesheet\" href=\"/ui/static/sluice.css\"></head><body><main>\
             <h1>{title}</h1><p class=\"problem\">{}</p><p><a href=\"/ui\">Back to the overview</a></p></main></body></html>",
            html::esc(&detail)
        );
        (status, Html(body)).into_response()
    }
}

type Page = Result<Html<String>, Failure>;

impl Ui {
    /// The viewer of a request that only looks.
    fn look(&self, headers: &HeaderMap) -> Result<Viewer, Failure> {
        Ok(self.access.viewer(headers)?)
    }

    /// The viewer of an action: an `admin` token (or none configured), and
    /// the session's CSRF token in the form.
    fn act(&self, headers: &HeaderMap, form: &Form) -> Result<Viewer, Failure> {
        let viewer = self.look(headers)?;
        if !viewer.may_act() {
            return Err(Failure::ReadOnly);
        }
        if !viewer.csrf_ok(form.get("csrf")) {
            return Err(Failure::Csrf);
        }
        Ok(viewer)
    }

    /// The page frame for `viewer`.
    fn frame<'a>(&self, viewer: &'a Viewer) -> html::Frame<'a> {
        html::Frame {
            who: viewer.name.as_deref().map(|name| (name, viewer.scope)),
            csrf: &viewer.csrf,
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`), fields in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, when not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn login_form(State(ui): State<Ui>) -> Response {
    if ui.access.is_open() {
        return Redirect::to("/ui").into_response();
    }
    Html(login_page(None)).into_response()
}

fn login_page(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"problem\">{}</p>", html::esc(p)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Sluice</title>\
         <link rel=\"stylesheet\" href=\"/ui/static/sluice.css\"></head><body><main class=\"login\">\
         <h1>Sluice</h1>{problem}<form method=\"post\" action=\"/ui/login\">\
         <label>API token (scope <code>read</code> or <code>admin</code>)\
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label>\
         <button>Sign in</button></form></main></body></html>"
    )
}

async fn login(State(ui): State<Ui>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let token = form.get("token").unwrap_or_default();
    match ui.access.sign_in(token) {
        Ok(viewer) => {
            tracing::info!(
                token = viewer.name.as_deref().unwrap_or_default(),
                "signed in to the dashboard"
            );
            let mut response = Redirect::to("/ui").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&access::set_cookie(token)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(Denied::SignIn) => (
            StatusCode::UNAUTHORIZED,
            Html(login_page(Some(
                "That token is not one of [api.tokens]; check it and try again.",
            ))),
        )
            .into_response(),
        Err(Denied::Scope(detail)) => {
            (StatusCode::FORBIDDEN, Html(login_page(Some(&detail)))).into_response()
        }
    }
}

async fn logout(State(ui): State<Ui>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    match ui.look(&headers) {
        Ok(viewer) if viewer.csrf_ok(form.get("csrf")) => {}
        Ok(_) => return Failure::Csrf.into_response(),
        Err(failure) => return failure.into_response(),
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&access::clear_cookie()).expect("a valid header"),
    );
    response
}
