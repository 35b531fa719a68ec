//! A mock LLM server that speaks the OpenAI and Anthropic APIs, answers
//! deterministically, and misbehaves on demand.
//!
//! Sluice's tests start it in-process with [`MockLlm::start`] on a real
//! loopback socket; the demo runs the `mock-llm` binary. See `README.md` beside
//! this crate for the endpoints and how a request picks a fault.

mod anthropic;
mod fault;
mod openai;
mod reply;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use fault::{Fault, FaultRule, FaultSpec, Limit};
pub use reply::{Prompt, Reply, count_tokens, reply};

/// The request header that picks a fault for one request.
pub const FAULT_HEADER: &str = "x-mock-fault";
/// Models named `fault:<spec>` pick a fault for the request.
pub const FAULT_MODEL_PREFIX: &str = "fault:";
/// Size of the `huge` fault's body.
pub const HUGE_BYTES: usize = 64 << 20;

/// How the server behaves when a request picks no fault of its own.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Requests whose prompt (last user message) contains a rule's text get
    /// its fault; the first matching rule wins.
    pub rules: Vec<FaultRule>,
    /// The fault for every other request.
    pub fault: Option<FaultSpec>,
    /// How long every API request waits before it is answered: a provider's
    /// thinking time, for benchmarks of many calls in flight.
    pub latency: Duration,
}

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
}

/// A request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub api: Api,
    pub model: String,
    pub stream: bool,
    /// The last user message.
    pub prompt: String,
    /// The fault it got, if any, as a spec string (`outage` during an outage).
    pub fault: Option<String>,
    /// When it arrived: rates are measured from these.
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A POST the webhook sink (`/hooks/...`) received.
#[derive(Debug, Clone)]
pub struct HookDelivery {
    /// The path after `/hooks/`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

struct Shared {
    options: Options,
    counters: fault::Counters,
    requests: Mutex<Vec<RecordedRequest>>,
    deliveries: Mutex<Vec<HookDelivery>>,
    /// Until when every request is answered 500, whatever it asked for.
    outage_until: Mutex<Option<Instant>>,
    in_flight: InFlight,
}

/// API requests being handled now, and the most there have been at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl InFlight {
    fn enter(&self) -> impl Drop + '_ {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Leave(self)
    }
}

struct Leave<'a>(&'a InFlight);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running mock server. Dropping it (or [`MockLlm::shutdown`]) stops it and
/// closes every connection, hung ones included.
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl MockLlm {
    /// Starts a server on `127.0.0.1` at a free port.
    pub async fn start(options: Options) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr, options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            counters: fault::Counters::default(),
            requests: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            outage_until: Mutex::new(None),
            in_flight: InFlight::default(),
        });
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|s, r, h, b| endpoint(Api::OpenAi, s, r, h, b)),
            )
            .route(
                "/v1/messages",
                post(|s, r, h, b| endpoint(Api::Anthropic, s, r, h, b)),
            )
            .route("/hooks/{*path}", post(hook))
            .with_state(shared.clone());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(accept_loop(listener, app, stopped));
        Ok(Self {
            addr,
            shared,
            stop,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure a provider with: `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// A provider outage: every request from now on, for `length`, is
    /// answered 500 (and recorded with the fault `outage`), whatever fault it
    /// picked; then requests are served as before.
    pub fn outage(&self, length: Duration) {
        *lock(&self.shared.outage_until) = Some(Instant::now() + length);
    }

    /// The most API requests that were being handled at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.in_flight.peak.load(Ordering::SeqCst)
    }

    /// Every POST the webhook sink received so far, in arrival order.
    pub fn deliveries(&self) -> Vec<HookDelivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// Stops the server and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        let _ = (&mut self.server).await;
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The webhook sink: a stand-in receiver for webhook plugins in the demo.
/// Records the delivery and answers 204.
async fn hook(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    lock(&shared.deliveries).push(HookDelivery {
        path,
        headers,
        body,
    });
    StatusCode::NO_CONTENT
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections until told to stop, then drops them all.
async fn accept_loop(listener: TcpListener, app: Router, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, app.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stop_requested(&mut stopped) => break,
        }
    }
    connections.shutdown().await;
}

/// Resolves once the server is told to stop (or its handle is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Lets a handler reset the TCP connection its request came on.
#[derive(Clone)]
struct ConnectionReset(Arc<Notify>);

/// Serves one connection with HTTP/1.1; a `reset` fault closes the socket
/// with `SO_LINGER` 0, so the client sees a real TCP reset.
async fn serve_connection(stream: TcpStream, app: Router) {
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    // A second handle on the socket outlives the connection task's, so the
    // reset path can set the linger option before the last close.
    let Ok(handle) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let reset = Arc::new(Notify::new());
    let service = TowerToHyperService::new(app.layer(Extension(ConnectionReset(reset.clone()))));
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = reset.notified() => {
            let _ = socket2::SockRef::from(&handle).set_linger(Some(Duration::ZERO));
        }
    }
    drop(handle);
}

/// The handler of one API's endpoint.
async fn endpoint(
    api: Api,
    State(shared): State<Arc<Shared>>,
    Extension(reset): Extension<ConnectionReset>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = shared.in_flight.enter();
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    handle(api, &shared, reset, headers, body).await
}

async fn handle(
    api: Api,
    shared: &Shared,
    reset: ConnectionReset,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return error(
                api,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON: {err}"),
            );
        }
    };
    let prompt = match api {
        Api::OpenAi => openai::prompt(&body),
        Api::Anthropic => anthropic::prompt(&body),
    };
    let prompt = match prompt {
        Ok(prompt) => prompt,
        Err(message) => return error(api, StatusCode::BAD_REQUEST, &message),
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_owned();
    let streamed = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let at = Instant::now();
    let down = lock(&shared.outage_until).is_some_and(|until| at < until);
    let fault = if down {
        None
    } else {
        match choose_fault(shared, &headers, &model, &prompt.last_user) {
            Ok(fault) => fault,
            Err(message) => return error(api, StatusCode::BAD_REQUEST, &message),
        }
    };
    lock(&shared.requests).push(RecordedRequest {
        api,
        model: model.clone(),
        stream: streamed,
        prompt: prompt.last_user.clone(),
        fault: if down {
            Some("outage".to_owned())
        } else {
            fault.as_ref().map(ToString::to_string)
        },
        at,
        headers,
        body: body.clone(),
    });
    if down {
        return error(
            api,
            StatusCode::INTERNAL_SERVER_ERROR,
            "provider outage (mock)",
        );
    }

    let mut with_usage = true;
    let mut exhausted = None;
    let delivery = match fault.map(|f| f.fault) {
        None => Delivery::Whole,
        Some(Fault::NoUsage) => {
            with_usage = false;
            Delivery::Whole
        }
        Some(Fault::Exhausted { limit, reset_secs }) => {
            exhausted = Some((limit, reset_secs));
            Delivery::Whole
        }
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Reset) => {
            reset.0.notify_one();
            std::future::pending().await
        }
        Some(Fault::RateLimited {
            retry_after_secs,
            http_date,
        }) => {
            let mut response = error(api, StatusCode::TOO_MANY_REQUESTS, "rate limited (mock)");
            let value = if http_date {
                let at = SystemTime::now() + Duration::from_secs(retry_after_secs);
                HeaderValue::from_str(&httpdate::fmt_http_date(at))
                    .expect("an HTTP date is a valid header value")
            } else {
                HeaderValue::from(retry_after_secs)
            };
            response.headers_mut().insert(header::RETRY_AFTER, value);
            return response;
        }
        Some(Fault::ServerError) => {
            return error(
                api,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (mock)",
            );
        }
        Some(Fault::Malformed) => return malformed(streamed),
        Some(Fault::Huge) => return huge(api, &model, streamed),
        Some(Fault::Stall) => Delivery::Stall,
        Some(Fault::Trickle) => Delivery::Trickle,
    };

    let answer = reply::reply(&prompt);
    let tool = match api {
        Api::Anthropic => anthropic::tool_name(&body),
        Api::OpenAi => None,
    };
    if streamed {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let frames = match api {
            Api::OpenAi => openai::stream(&model, &answer, include_usage && with_usage),
            Api::Anthropic => anthropic::stream(&model, &answer, tool.as_deref(), with_usage),
        };
        let mut response = respond(
            "text/event-stream",
            frames.into_iter().map(Bytes::from).collect(),
            delivery,
        );
        if let Some((limit, reset_secs)) = exhausted {
            rate_limit_headers(api, limit, reset_secs, response.headers_mut());
        }
        response
    } else {
        let mut json = match api {
            Api::OpenAi => openai::completion(&model, &answer),
            Api::Anthropic => anthropic::message(&model, &answer, tool.as_deref()),
        };
        if !with_usage && let Some(reply) = json.as_object_mut() {
            reply.remove("usage");
        }
        let mut response = respond(
            "application/json",
            vec![Bytes::from(json.to_string())],
            delivery,
        );
        if let Some((limit, reset_secs)) = exhausted {
            rate_limit_headers(api, limit, reset_secs, response.headers_mut());
        }
        response
    }
}

/// The headers of a provider whose `limit` has nothing left until it resets
/// in `reset_secs` seconds, as the API spells them: OpenAI's reset is a
/// duration (`1m5s`), Anthropic's an RFC 3339 time.
fn rate_limit_headers(api: Api, limit: Limit, reset_secs: u64, headers: &mut HeaderMap) {
    let name = limit.name();
    let pairs = match api {
        Api::OpenAi => {
            let (h, m, s) = (reset_secs / 3600, reset_secs / 60 % 60, reset_secs % 60);
            let reset = match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, _) => format!("{m}m{s}s"),
                _ => format!("{h}h{m}m{s}s"),
            };
            [
                (format!("x-ratelimit-limit-{name}"), "100".to_owned()),
                (format!("x-ratelimit-remaining-{name}"), "0".to_owned()),
                (format!("x-ratelimit-reset-{name}"), reset),
            ]
        }
        Api::Anthropic => {
            let at = SystemTime::now() + Duration::from_secs(reset_secs);
            [
                (
                    format!("anthropic-ratelimit-{name}-limit"),
                    "100".to_owned(),
                ),
                (
                    format!("anthropic-ratelimit-{name}-remaining"),
                    "0".to_owned(),
                ),
                (
                    format!("anthropic-ratelimit-{name}-reset"),
                    humantime::format_rfc3339_seconds(at).to_string(),
                ),
            ]
        }
    };
    for (name, value) in pairs {
        let name = header::HeaderName::try_from(name).expect("a valid header name");
        let value = HeaderValue::from_str(&value).expect("a valid header value");
        headers.insert(name, value);
    }
}

/// The fault a request gets, by precedence: header, model name, rules, server.
fn choose_fault(
    shared: &Shared,
    headers: &HeaderMap,
    model: &str,
    prompt: &str,
) -> Result<Option<FaultSpec>, String> {
    use fault::Source;
    let mut candidates: Vec<(Source, FaultSpec)> = Vec::new();
    if let Some(value) = headers.get(FAULT_HEADER) {
        let spec = value
            .to_str()
            .map_err(|_| "x-mock-fault is not text".to_owned())?;
        candidates.push((Source::Header, spec.parse()?));
    } else if let Some(spec) = model.strip_prefix(FAULT_MODEL_PREFIX) {
        candidates.push((Source::Model, spec.parse()?));
    } else {
        if let Some((i, rule)) = shared
            .options
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| prompt.contains(&rule.text))
        {
            candidates.push((Source::Rule(i), rule.fault.clone()));
        }
        if let Some(spec) = &shared.options.fault {
            candidates.push((Source::Server, spec.clone()));
        }
    }
    // The first candidate decides; a counted one that is used up lets the
    // request through without falling back to a later one.
    Ok(candidates
        .into_iter()
        .next()
        .filter(|(source, spec)| shared.counters.fires(*source, spec, prompt))
        .map(|(_, spec)| spec))
}

/// How a body is sent.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    Whole,
    /// A few chunks (two SSE frames, or ten bytes of JSON), then silence.
    Stall,
    /// One byte a second.
    Trickle,
}

fn respond(content_type: &'static str, chunks: Vec<Bytes>, delivery: Delivery) -> Response {
    let body = match delivery {
        Delivery::Whole => Body::from(chunks.concat()),
        Delivery::Stall => {
            let head: Vec<Bytes> = if chunks.len() > 1 {
                chunks.into_iter().take(2).collect()
            } else {
                let whole = chunks.concat();
                vec![Bytes::from(whole[..whole.len().min(10)].to_vec())]
            };
            let body = stream::iter(head.into_iter().map(Ok::<_, Infallible>))
                .chain(stream::once(std::future::pending()));
            Body::from_stream(body)
        }
        Delivery::Trickle => {
            let bytes = Bytes::from(chunks.concat());
            let body = stream::unfold(0usize, move |at| {
                let bytes = bytes.clone();
                async move {
                    if at >= bytes.len() {
                        return None;
                    }
                    if at > 0 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Some((Ok::<_, Infallible>(bytes.slice(at..at + 1)), at + 1))
                }
            });
            Body::from_stream(body)
        }
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn error(api: Api, status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        StatusCode::BAD_REQUEST => "invalid_request_error",
        _ => "api_error",
    };
    let body = match api {
        Api::OpenAi => openai::error(kind, message),
        Api::Anthropic => anthropic::error(kind, message),
    };
    (status, axum::Json(body)).into_response()
}

fn malformed(streamed: bool) -> Response {
    if streamed {
        let body = "data: {\"choices\": [{\"delta\": {\"content\": \"trunc\n\n";
        ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
    } else {
        let body = "{\"id\": \"chatcmpl-mock\", \"choices\": [{\"message\": {\"content\": \"trunc";
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A reply of [`HUGE_BYTES`], produced lazily so the mock itself stays small.
fn huge(api: Api, model: &str, streamed: bool) -> Response {
    const PIECE: usize = 64 << 10;
    let filler = "x".repeat(PIECE);
    let count = HUGE_BYTES / PIECE;
    let (content_type, head, piece, tail) = if streamed {
        let event = match api {
            Api::OpenAi => openai::huge_event(model, &filler),
            Api::Anthropic => anthropic::huge_event(&filler),
        };
        ("text/event-stream", String::new(), event, String::new())
    } else {
        let (head, tail) = match api {
            Api::OpenAi => openai::huge_frame(model),
            Api::Anthropic => anthropic::huge_frame(model),
        };
        ("application/json", head, filler, tail)
    };
    let piece = Bytes::from(piece);
    let body = stream::iter(
        std::iter::once(Bytes::from(head))
            .chain(std::iter::repeat_n(piece, count))
            .chain(std::iter::once(Bytes::from(tail)))
            .map(Ok::<_, Infallible>),
    );
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(body),
    )
        .into_response()
}

/// Splits a reply into the pieces a stream sends, at most 16 bytes each, on
/// character boundaries.
fn pieces(content: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let mut end = rest.len().min(16);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        out.push(piece);
        rest = tail;
    }
    out
}
