//! The `http` import for real: one request to a host the operator allowed.
//!
//! Every hop (the request and each redirect, followed here by hand) must match
//! the task type's `allow_hosts`, and must connect to an address the
//! [`address`] policy allows, checked after DNS resolution. The request,
//! redirects and body together are bounded by the task type's timeout, the
//! plugin's `timeout-ms` and the unit's deadline; the body by a size cap.

pub(crate) mod address;
pub(crate) mod allowlist;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method as HttpMethod, StatusCode, Url};

use self::address::{AddressPolicy, GuardedResolver, Refused, Unresolved};
use self::allowlist::HostPattern;
use super::body::{BodyError, BodyLimits, BodyReader};
use super::config::{OutboundConfigError, TaskHttpConfig};
use super::usage;
use crate::imports::CallContext;
use crate::runtime::bindings::http::{
    ConnectionError, ConnectionFailure, Error, Header, Method, Request, Response,
};

/// Headers a plugin may not set: the client owns framing and routing.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];
/// Headers dropped when a redirect leaves the original origin.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];
/// Time allowed to establish a connection, within the request's budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one task type's plugin may reach, with its own connection pool.
#[derive(Debug)]
pub(crate) struct Gate {
    hosts: Vec<HostPattern>,
    policy: Arc<AddressPolicy>,
    timeout: Duration,
    max_response_bytes: u64,
    max_redirects: u32,
    client: reqwest::Client,
}

impl Gate {
    /// Builds `[tasks.<task_type>.http]`; `None` when it allows no host.
    pub(crate) fn new(
        task_type: &str,
        config: &TaskHttpConfig,
    ) -> Result<Option<Self>, OutboundConfigError> {
        let key = |field: &str| format!("tasks.{task_type}.http.{field}");
        let hosts = config
            .allow_hosts
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                HostPattern::parse(pattern).map_err(|message| {
                    OutboundConfigError::new(format!("{}[{i}]", key("allow_hosts")), message)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = AddressPolicy::new(&config.allow_private).map_err(|(i, message)| {
            OutboundConfigError::new(format!("{}[{i}]", key("allow_private")), message)
        })?;
        super::config::positive(&key("timeout"), config.timeout)?;
        if config.max_response_bytes == 0 {
            return Err(OutboundConfigError::new(
                key("max_response_bytes"),
                "must be more than zero",
            ));
        }
        if hosts.is_empty() {
            return Ok(None);
        }
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                OutboundConfigError::new(
                    format!("tasks.{task_type}.http"),
                    format!("cannot build an HTTP client: {err}"),
                )
            })?;
        Ok(Some(Self {
            hosts,
            policy,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            max_redirects: config.max_redirects,
            client,
        }))
    }

    /// Serves one `http.send` call and accounts for it.
    pub(crate) async fn send(
        &self,
        call: &CallContext,
        request: Request,
    ) -> Result<Response, Error> {
        let result = self.run(call, request).await;
        call.usage.record_http();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::Timeout) => "timeout",
            Err(Error::Denied(_)) => "denied",
            Err(Error::InvalidRequest(_)) => "invalid_request",
            Err(Error::Connection(_)) => "connection_error",
            Err(Error::ResponseTooLarge) => "response_too_large",
        };
        usage::http_metrics(&call.task_type, outcome);
        if let Err(err) = &result {
            tracing::debug!(outcome, error = ?err, "HTTP request failed");
        }
        result
    }

    async fn run(&self, call: &CallContext, request: Request) -> Result<Response, Error> {
        let now = Instant::now();
        let mut budget = self.timeout;
        if let Some(ms) = request.timeout_ms {
            budget = budget.min(Duration::from_millis(ms));
        }
        let deadline = call.deadline.min(now + budget);
        let mut url = Url::parse(&request.url).map_err(|err| {
            Error::InvalidRequest(format!("`{}` is not a URL: {err}", request.url))
        })?;
        let mut method = method(request.method);
        let mut headers = headers(&request.headers)?;
        let mut body = request.body.map(Bytes::from);
        let mut redirects = 0;
        loop {
            self.check(&url)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = match tokio::time::timeout_at(deadline.into(), builder.send()).await {
                Err(_) => return Err(Error::Timeout),
                Ok(Err(err)) => return Err(classify(&err)),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let (true, Some(location)) = (status.is_redirection(), location)
                && redirects < self.max_redirects
                && status != StatusCode::NOT_MODIFIED
            {
                let next = url.join(&location).map_err(|err| {
                    Error::Connection(ConnectionError {
                        failure: ConnectionFailure::Other,
                        message: format!("redirect to an invalid location `{location}`: {err}"),
                    })
                })?;
                if next.origin() != url.origin() {
                    for name in CREDENTIAL_HEADERS {
                        headers.remove(*name);
                    }
                }
                let keeps_method = matches!(
                    status,
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                );
                if !keeps_method && method != HttpMethod::HEAD {
                    method = HttpMethod::GET;
                    body = None;
                    headers.remove(reqwest::header::CONTENT_TYPE);
                }
                url = next;
                redirects += 1;
                continue;
            }
            return self.read(response, &method, deadline).await;
        }
    }

    /// Refuses a URL whose scheme, host or port is not allowed, or whose host
    /// is an IP literal the address policy refuses.
    fn check(&self, url: &Url) -> Result<(), Error> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!(
                "scheme `{}` is not supported (use http or https)",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidRequest(
                "credentials in the URL are not supported; send an Authorization header".into(),
            ));
        }
        let Some(host) = url.host() else {
            return Err(Error::InvalidRequest(format!("`{url}` has no host")));
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        if !self.hosts.iter().any(|pattern| pattern.matches(url)) {
            return Err(Error::Denied(format!(
                "`{authority}` is not in this task type's allowed hosts"
            )));
        }
        let ip = match host {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = ip
            && let Err(reason) = self.policy.check(ip)
        {
            return Err(Error::Denied(format!("`{authority}` is {reason}")));
        }
        Ok(())
    }

    /// The response, its body read under the cap and the deadline.
    async fn read(
        &self,
        response: reqwest::Response,
        method: &HttpMethod,
        deadline: Instant,
    ) -> Result<Response, Error> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        if method == HttpMethod::HEAD {
            // Its Content-Length describes a body that is not sent.
            return Ok(Response {
                status,
                headers,
                body: Vec::new(),
            });
        }
        let limits = BodyLimits {
            idle: deadline.saturating_duration_since(Instant::now()),
            deadline,
            max_bytes: self.max_response_bytes,
        };
        let body = BodyReader::new(response, limits)
            .map_err(body_error)?
            .read_all()
            .await
            .map_err(body_error)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::GET,
        Method::Head => HttpMethod::HEAD,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Patch => HttpMethod::PATCH,
        Method::Delete => HttpMethod::DELETE,
    }
}

/// The plugin's headers, refusing invalid and reserved ones.
fn headers(list: &[Header]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for header in list {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            Error::InvalidRequest(format!("`{}` is not a valid header name", header.name))
        })?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "header `{name}` is set by the host, not by plugins"
            )));
        }
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            Error::InvalidRequest(format!("the value of header `{name}` is not valid"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

fn body_error(err: BodyError) -> Error {
    match err {
        BodyError::Timeout => Error::Timeout,
        BodyError::TooLarge => Error::ResponseTooLarge,
        BodyError::Broken(err) => classify(&err),
    }
}

/// The contract's error for a failed request, found in the error's causes.
fn classify(err: &reqwest::Error) -> Error {
    if err.is_timeout() {
        return Error::Timeout;
    }
    let mut message = String::new();
    let mut failure = ConnectionFailure::Other;
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return Error::Denied(refused.to_string());
        }
        if cause.downcast_ref::<Unresolved>().is_some() {
            failure = ConnectionFailure::Dns;
        } else if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => failure = ConnectionFailure::Refused,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    failure = ConnectionFailure::Reset
                }
                TimedOut => return Error::Timeout,
                _ => {}
            }
        }
        let text = cause.to_string();
        if text.contains("connection closed before message completed") {
            failure = ConnectionFailure::Reset;
        }
        if matches!(failure, ConnectionFailure::Other)
            && (text.contains("certificate") || text.to_ascii_lowercase().contains("tls"))
        {
            failure = ConnectionFailure::Tls;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
        source = cause.source();
    }
    if message.is_empty() {
        message = err.to_string();
    }
    Error::Connection(ConnectionError { failure, message })
}
