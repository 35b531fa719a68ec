//! The `llm` import for real: a task type's provider, model choice, retries,
//! timeouts, structured output and accounting.
//!
//! A [`Provider`] is one configured endpoint with its own HTTP client; a
//! [`TaskLlm`] is what one task type may do with it. Every failure becomes one
//! of the contract's typed errors. A reply the host cannot parse is a
//! `provider` error with the status the provider answered with and the message
//! "unparseable reply: …". Failures with no answer to report (the provider
//! could not be reached, the connection broke mid-reply) are `provider` errors
//! with status 502, the status a gateway gives when its upstream misbehaves.
//! Provider URLs and API keys never appear in an error, and a key is scrubbed
//! from any provider message that echoes it.
//!
//! A reply whose provider did not say how many tokens it used is accounted as
//! such ([`LlmTokens::Unknown`]), never as zero tokens; the plugin still sees
//! zeros, as the contract's `usage` record has no "unknown".

mod anthropic;
mod openai;
mod ratelimit;
mod retry;
mod schema;
mod stream;

pub use schema::SchemaLimits;
pub(crate) use schema::Schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::body::{BodyError, BodyLimits, BodyReader};
use super::config::{
    LlmConfig, LlmTimeouts, OutboundConfigError, ProviderConfig, ProviderKind, RetryConfig,
    TaskLlmConfig,
};
use super::usage::{self, LlmTokens};
use crate::flow::breaker::{self, Breaker};
use crate::flow::budget::{self, Budget};
use crate::flow::spend::Ledger;
use crate::imports::CallContext;
use crate::runtime::bindings::llm::{
    Error, FinishReason, ProviderError, Request, Response, Role, Usage,
};

/// The status reported when the provider could not be reached or the
/// connection broke before its reply was whole.
const GATEWAY: u16 = 502;
/// The status of the `provider` error a call gets while the provider's
/// circuit breaker is open.
const UNAVAILABLE: u16 = 503;
/// Most of an error body read for its message.
const ERROR_BODY_BYTES: u64 = 64 << 10;
/// Longest provider message passed on.
const MESSAGE_CHARS: usize = 500;

/// A reply, as either API's parser reads it.
#[derive(Debug, Clone, PartialEq)]
struct Completion {
    content: String,
    model: Option<String>,
    finish: FinishReason,
    /// (input, output) tokens, when the provider said.
    tokens: Option<(u32, u32)>,
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
struct Failure {
    error: Error,
    retryable: bool,
    /// How long the provider asked to wait before the next attempt.
    retry_after: Option<Duration>,
}

impl Failure {
    /// What this failure says about the provider's health: connection
    /// errors, timeouts, 5xx and 429 count against it; a refusal of the
    /// request itself (4xx, an unparseable or oversized reply) says nothing.
    fn health(&self) -> Option<breaker::Health> {
        (self.retryable || matches!(self.error, Error::Timeout)).then_some(breaker::Health::Failing)
    }

    fn fatal(error: Error) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    /// The provider answered `status` with a reply that is not what its API
    /// promises.
    fn unparseable(status: StatusCode, what: impl std::fmt::Display) -> Self {
        Self::fatal(Error::Provider(ProviderError {
            status: status.as_u16(),
            message: format!("unparseable reply: {what}"),
        }))
    }

    fn from_body(err: BodyError) -> Self {
        match err {
            BodyError::Timeout => Self::fatal(Error::Timeout),
            BodyError::TooLarge => Self::fatal(Error::ResponseTooLarge),
            BodyError::Broken(err) => Self {
                error: gateway(format!(
                    "the connection to the provider broke mid-reply: {}",
                    describe(&err)
                )),
                retryable: true,
                retry_after: None,
            },
        }
    }
}

fn gateway(message: String) -> Error {
    Error::Provider(ProviderError {
        status: GATEWAY,
        message,
    })
}

/// A reqwest error without its URL, with its causes.
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::new();
    let mut source = err.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.is_empty() {
        "unknown error".into()
    } else {
        text
    }
}

/// An API key; never printed.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

/// One configured LLM endpoint with its own connection pool.
#[derive(Debug)]
pub(crate) struct Provider {
    name: String,
    kind: ProviderKind,
    endpoint: reqwest::Url,
    key: Option<ApiKey>,
    stream: bool,
    timeouts: LlmTimeouts,
    retry: RetryConfig,
    max_response_bytes: u64,
    client: reqwest::Client,
    breaker: Arc<Breaker>,
    budget: Arc<Budget>,
    /// The budgets of single models, spent besides the provider's.
    model_budgets: BTreeMap<String, Arc<Budget>>,
    spend: Arc<Ledger>,
}

impl Provider {
    /// Builds `[llm.providers.<name>]`; `env` looks up the API key variable;
    /// what calls spend is counted in `spend`.
    pub(crate) fn new(
        name: &str,
        config: &ProviderConfig,
        llm: &LlmConfig,
        env: &dyn Fn(&str) -> Option<String>,
        spend: &Arc<Ledger>,
    ) -> Result<Self, OutboundConfigError> {
        let key_path = format!("llm.providers.{name}");
        let model_budgets = budgets(name, config)?;
        let base = config
            .base_url
            .as_deref()
            .unwrap_or(config.kind.default_base_url());
        let mut endpoint = reqwest::Url::parse(base).map_err(|err| {
            OutboundConfigError::new(format!("{key_path}.base_url"), format!("not a URL: {err}"))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(OutboundConfigError::new(
                format!("{key_path}.base_url"),
                "must be an http:// or https:// URL with a host",
            ));
        }
        if let Ok(mut path) = endpoint.path_segments_mut() {
            path.pop_if_empty();
            match config.kind {
                ProviderKind::OpenAi => path.extend(["chat", "completions"]),
                ProviderKind::Anthropic => path.extend(["messages"]),
            };
        }
        let key = match &config.api_key_env {
            None => None,
            Some(var) if var.is_empty() => {
                return Err(OutboundConfigError::new(
                    format!("{key_path}.api_key_env"),
                    "names no environment variable",
                ));
            }
            Some(var) => match env(var) {
                Some(value) if !value.trim().is_empty() => Some(ApiKey(value.trim().to_owned())),
                Some(_) => {
                    return Err(OutboundConfigError::new(
                        format!("{key_path}.api_key_env"),
                        format!("environment variable `{var}` is empty"),
                    ));
                }
                None => {
                    return Err(OutboundConfigError::new(
                        format!("{key_path}.api_key_env"),
                        format!("environment variable `{var}` is not set"),
                    ));
                }
            },
        };
        let timeouts = config.timeouts.apply(&llm.timeouts);
        let overrides = &config.timeouts;
        for (field, value, overridden) in [
            ("connect", timeouts.connect, overrides.connect.is_some()),
            (
                "first_byte",
                timeouts.first_byte,
                overrides.first_byte.is_some(),
            ),
            ("idle", timeouts.idle, overrides.idle.is_some()),
            ("total", timeouts.total, overrides.total.is_some()),
        ] {
            let key = if overridden {
                format!("{key_path}.timeouts.{field}")
            } else {
                format!("llm.timeouts.{field}")
            };
            super::config::positive(&key, value)?;
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                OutboundConfigError::new(&key_path, format!("cannot build an HTTP client: {err}"))
            })?;
        Ok(Self {
            name: name.to_owned(),
            kind: config.kind,
            endpoint,
            key,
            stream: config.stream,
            timeouts,
            retry: llm.retry,
            max_response_bytes: llm.max_response_bytes,
            client,
            breaker: Breaker::new(name, config.breaker),
            budget: Budget::new(name, config.budget),
            model_budgets,
            spend: spend.clone(),
        })
    }

    pub(crate) fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// The provider's budget and its models'.
    pub(crate) fn budgets(&self) -> impl Iterator<Item = &Arc<Budget>> {
        std::iter::once(&self.budget).chain(self.model_budgets.values())
    }

    /// The error a call gets while the provider's breaker is open: the
    /// worker gives its unit back without counting an attempt.
    fn unavailable(&self, call: &CallContext) -> Error {
        call.usage.record_unavailable();
        Error::Provider(ProviderError {
            status: UNAVAILABLE,
            message: format!(
                "provider `{}` is unavailable: its circuit breaker is open after repeated \
                 failures; the unit will be retried without counting an attempt",
                self.name
            ),
        })
    }

    /// `text` with the API key taken out, cut to a sensible length.
    fn scrub(&self, text: &str) -> String {
        // Replace first: a key cut in half by the length limit would leak.
        let text = match &self.key {
            Some(ApiKey(key)) => text.replace(key.as_str(), "[redacted]"),
            None => text.to_string(),
        };
        text.chars().take(MESSAGE_CHARS).collect()
    }

    /// One chat completion with `model`, retried as configured. Adds the
    /// retries it made to `retries`.
    async fn complete(
        &self,
        call: &CallContext,
        model: &str,
        request: &Request,
        schema: Option<&Value>,
        retries: &mut u32,
    ) -> Result<Completion, Error> {
        let body = match self.kind {
            ProviderKind::OpenAi => openai::body(model, request, schema, self.stream),
            ProviderKind::Anthropic => anthropic::body(model, request, schema, self.stream),
        };
        let body = Bytes::from(body.to_string());
        let text: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let estimate = budget::estimate_tokens(text, request.max_tokens);
        let mut retry = 0;
        loop {
            let spent = self.spend_budget(call, model, estimate).await?;
            let admitted = self.breaker.admit().map_err(|_| self.unavailable(call))?;
            self.spend.request(&call.task_type, &self.name);
            let failure = match self.attempt(call, body.clone()).await {
                Ok(completion) => {
                    admitted.ended(breaker::Health::Healthy);
                    if let Some((input, output)) = completion.tokens {
                        for place in &spent {
                            place.used(u64::from(input) + u64::from(output));
                        }
                    }
                    return Ok(completion);
                }
                Err(failure) => failure,
            };
            drop(spent);
            if let (Error::RateLimited(_), Some(wait)) = (&failure.error, failure.retry_after) {
                self.budget.hold_for(wait);
            }
            if let Some(health) = failure.health()
                && admitted.ended(health)
            {
                return Err(self.unavailable(call));
            }
            if !failure.retryable || retry >= self.retry.max_retries {
                return Err(failure.error);
            }
            let wait = retry::backoff(&self.retry, retry, failure.retry_after);
            if Instant::now() + wait >= call.deadline {
                tracing::debug!(
                    provider = %self.name, retry, wait_ms = wait.as_millis() as u64,
                    "not retrying: the wait would end past the unit's deadline"
                );
                return Err(failure.error);
            }
            tracing::debug!(
                provider = %self.name, retry, wait_ms = wait.as_millis() as u64,
                error = ?failure.error, "retrying LLM request"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
            *retries += 1;
        }
    }

    /// Waits for the budget of `model` (if it has one), then the provider's,
    /// to take one more request of about `estimate` tokens; a wait past the
    /// call's deadline is `rate-limited`.
    async fn spend_budget(
        &self,
        call: &CallContext,
        model: &str,
        estimate: u64,
    ) -> Result<Vec<budget::Spent>, Error> {
        let mut places = Vec::with_capacity(2);
        let mut waited = Duration::ZERO;
        let mut over_budget = None;
        for budget in self
            .model_budgets
            .get(model)
            .into_iter()
            .chain([&self.budget])
        {
            match budget.spend(estimate, call.deadline).await {
                Ok((place, wait)) => {
                    places.push(place);
                    waited += wait;
                }
                Err(over) => {
                    waited += over
                        .wait
                        .min(call.deadline.saturating_duration_since(Instant::now()));
                    over_budget = Some(over);
                    break;
                }
            }
        }
        if !waited.is_zero() {
            metrics::histogram!("sluice_llm_budget_wait_seconds", "task_type" => call.task_type.clone(), "provider" => self.name.clone())
                .record(waited.as_secs_f64());
            self.spend.waited(&call.task_type, &self.name, waited);
        }
        match over_budget {
            None => Ok(places),
            Some(over) => {
                tracing::debug!(
                    provider = %self.name,
                    wait_ms = over.wait.as_millis() as u64,
                    "over the provider's budget until past the call's deadline"
                );
                Err(Error::RateLimited(Some(over.wait.as_millis() as u64)))
            }
        }
    }

    /// One HTTP request to the provider, under the configured timeouts
    /// clamped to the unit's deadline.
    async fn attempt(&self, call: &CallContext, body: Bytes) -> Result<Completion, Failure> {
        let now = Instant::now();
        if now >= call.deadline {
            return Err(Failure::fatal(Error::Timeout));
        }
        let total = call.deadline.min(now + self.timeouts.total);
        let (headers_by, body_by) = if self.stream {
            (
                call.deadline.min(now + self.timeouts.first_byte),
                call.deadline,
            )
        } else {
            (total, total)
        };
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        request = match self.kind {
            ProviderKind::OpenAi => openai::authorize(request, self.key.as_ref().map(|k| &*k.0)),
            ProviderKind::Anthropic => {
                anthropic::authorize(request, self.key.as_ref().map(|k| &*k.0))
            }
        };
        let response = match tokio::time::timeout_at(headers_by.into(), request.send()).await {
            Err(_) => return Err(Failure::fatal(Error::Timeout)),
            Ok(Err(err)) if err.is_timeout() => return Err(Failure::fatal(Error::Timeout)),
            Ok(Err(err)) => {
                return Err(Failure {
                    error: gateway(format!(
                        "could not reach provider `{}`: {}",
                        self.name,
                        describe(&err)
                    )),
                    retryable: true,
                    retry_after: None,
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if let Some(wait) = ratelimit::exhausted(response.headers()) {
            self.budget.hold_for(wait);
        }
        let limits = BodyLimits {
            idle: self.timeouts.idle,
            deadline: body_by,
            max_bytes: self.max_response_bytes,
        };
        if !status.is_success() {
            return Err(self.error_reply(status, response, limits).await);
        }
        let event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let reader = BodyReader::new(response, limits).map_err(Failure::from_body)?;
        let completion = if event_stream {
            match self.kind {
                ProviderKind::OpenAi => stream::read(reader, openai::Fold::new(status)).await,
                ProviderKind::Anthropic => stream::read(reader, anthropic::Fold::new(status)).await,
            }
        } else {
            let bytes = reader.read_all().await.map_err(Failure::from_body)?;
            match self.kind {
                ProviderKind::OpenAi => openai::parse(status, &bytes),
                ProviderKind::Anthropic => anthropic::parse(status, &bytes),
            }
        };
        completion.map_err(|mut failure| {
            if let Error::Provider(e) = &mut failure.error {
                e.message = self.scrub(&e.message);
            }
            failure
        })
    }

    /// The failure for an error status: 429 and 5xx may be retried.
    async fn error_reply(
        &self,
        status: StatusCode,
        response: reqwest::Response,
        limits: BodyLimits,
    ) -> Failure {
        let retry_after = retry::retry_after(response.headers());
        let limits = BodyLimits {
            max_bytes: ERROR_BODY_BYTES,
            ..limits
        };
        let body = match BodyReader::new(response, limits) {
            Ok(reader) => reader.read_all().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let message = error_message(&body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        let message = self.scrub(&message);
        tracing::debug!(provider = %self.name, status = status.as_u16(), %message, "LLM provider answered with an error");
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Failure {
                error: Error::RateLimited(retry_after.map(|d| d.as_millis() as u64)),
                retryable: true,
                retry_after,
            };
        }
        Failure {
            error: Error::Provider(ProviderError {
                status: status.as_u16(),
                message,
            }),
            retryable: status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT,
            retry_after,
        }
    }
}

/// The budgets of provider `name`'s models, checked with the provider's.
fn budgets(
    name: &str,
    config: &ProviderConfig,
) -> Result<BTreeMap<String, Arc<Budget>>, OutboundConfigError> {
    let key_path = format!("llm.providers.{name}");
    config.budget.check().map_err(|(field, message)| {
        OutboundConfigError::new(format!("{key_path}.budget.{field}"), message)
    })?;
    let mut budgets = BTreeMap::new();
    for (model, model_config) in &config.models {
        let model_path = format!("{key_path}.models.{model}");
        if model.trim().is_empty() {
            return Err(OutboundConfigError::new(
                format!("{key_path}.models"),
                "a model name is empty: name the model as requests name it",
            ));
        }
        model_config.budget.check().map_err(|(field, message)| {
            OutboundConfigError::new(format!("{model_path}.budget.{field}"), message)
        })?;
        budgets.insert(
            model.clone(),
            Budget::for_model(name, model, model_config.budget),
        );
    }
    Ok(budgets)
}

/// The message in an error body of either API (`{"error": {"message": …}}`),
/// or the start of the body when it is not JSON.
fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let message = value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .and_then(Value::as_str);
        if let Some(message) = message {
            return Some(message.to_owned());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// What one task type may do with its provider.
#[derive(Debug)]
pub(crate) struct TaskLlm {
    provider: Arc<Provider>,
    model: String,
    fallback_model: Option<String>,
    allowed_models: BTreeSet<String>,
}

impl TaskLlm {
    /// Builds `[tasks.<task_type>.llm]`; `None` when it names no provider.
    pub(crate) fn new(
        task_type: &str,
        config: &TaskLlmConfig,
        providers: &BTreeMap<String, Arc<Provider>>,
    ) -> Result<Option<Self>, OutboundConfigError> {
        let key = |field: &str| format!("tasks.{task_type}.llm.{field}");
        let Some(name) = &config.provider else {
            if config.model.is_some()
                || config.fallback_model.is_some()
                || !config.allowed_models.is_empty()
            {
                return Err(OutboundConfigError::new(
                    key("provider"),
                    "is required when models are set",
                ));
            }
            return Ok(None);
        };
        let provider = providers.get(name).ok_or_else(|| {
            OutboundConfigError::new(
                key("provider"),
                format!("no provider `{name}` in [llm.providers]"),
            )
        })?;
        let model = match &config.model {
            Some(model) if !model.trim().is_empty() => model.clone(),
            Some(_) => return Err(OutboundConfigError::new(key("model"), "is empty")),
            None => {
                return Err(OutboundConfigError::new(
                    key("model"),
                    "is required when a provider is set",
                ));
            }
        };
        if config
            .fallback_model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err(OutboundConfigError::new(key("fallback_model"), "is empty"));
        }
        for (i, allowed) in config.allowed_models.iter().enumerate() {
            if allowed.trim().is_empty() {
                return Err(OutboundConfigError::new(
                    format!("{}[{i}]", key("allowed_models")),
                    "is empty",
                ));
            }
        }
        Ok(Some(Self {
            provider: provider.clone(),
            model,
            fallback_model: config.fallback_model.clone(),
            allowed_models: config.allowed_models.iter().cloned().collect(),
        }))
    }

    /// Serves one `llm.complete` call and accounts for it; `schemas` compiles
    /// and caches the request's JSON schema.
    pub(crate) async fn complete(
        &self,
        call: &CallContext,
        request: Request,
        schemas: &Schemas,
    ) -> Result<Response, Error> {
        let started = Instant::now();
        let mut retries = 0;
        let result = self.run(call, request, schemas, &mut retries).await;
        let latency = started.elapsed();
        let tokens = match &result {
            Ok((_, Some((input, output)))) => LlmTokens::Reported {
                input: *input,
                output: *output,
            },
            Ok((_, None)) => LlmTokens::Unknown,
            Err(_) => LlmTokens::NoReply,
        };
        let result = result.map(|(response, _)| response);
        if matches!(result, Err(Error::Timeout)) {
            call.usage.record_timeout();
        }
        let outcome = if result.is_err() && call.usage.unavailable() {
            "unavailable"
        } else {
            outcome(&result)
        };
        call.usage.record_llm(latency, retries, tokens);
        let reported = match tokens {
            LlmTokens::Reported { input, output } => Some((input, output)),
            LlmTokens::Unknown | LlmTokens::NoReply => None,
        };
        self.provider.spend.call(
            &call.task_type,
            &self.provider.name,
            (outcome != "ok").then_some(outcome),
            reported,
        );
        usage::llm_metrics(
            &call.task_type,
            &self.provider.name,
            outcome,
            latency,
            tokens,
        );
        let (input_tokens, output_tokens) = reported.unzip();
        tracing::debug!(
            provider = %self.provider.name,
            outcome,
            retries,
            latency_ms = latency.as_millis() as u64,
            input_tokens,
            output_tokens,
            usage_unknown = tokens == LlmTokens::Unknown,
            "LLM call"
        );
        result
    }

    /// The call, and the (input, output) tokens when the provider said.
    async fn run(
        &self,
        call: &CallContext,
        request: Request,
        schemas: &Schemas,
        retries: &mut u32,
    ) -> Result<(Response, Option<(u32, u32)>), Error> {
        let model = self.pick_model(call, request.model.as_deref())?;
        check_request(&request)?;
        let schema = match request.json_schema.as_deref() {
            Some(text) => Some(schemas.get(call, text).await?),
            None => None,
        };
        let schema_value = schema.as_ref().map(|s| &s.value);
        let mut used = model.to_owned();
        let mut result = self
            .provider
            .complete(call, model, &request, schema_value, retries)
            .await;
        if let (Err(err), Some(fallback)) = (&result, &self.fallback_model)
            && fallback != model
            && falls_back(err)
            && !call.usage.unavailable()
            && Instant::now() < call.deadline
        {
            tracing::warn!(provider = %self.provider.name, %model, %fallback, error = ?err, "LLM model failed; trying the fallback model");
            *retries += 1;
            used = fallback.clone();
            result = self
                .provider
                .complete(call, fallback, &request, schema_value, retries)
                .await;
        }
        let mut completion = result?;
        if let Some(schema) = schema {
            completion.content = schemas.check(call, schema, completion.content).await?;
        }
        // The contract has no "unknown": the plugin sees zeros, the
        // accounting knows better.
        let (input_tokens, output_tokens) = completion.tokens.unwrap_or((0, 0));
        let response = Response {
            content: completion.content,
            model: completion.model.unwrap_or(used),
            usage: Usage {
                input_tokens,
                output_tokens,
            },
            finish_reason: completion.finish,
        };
        Ok((response, completion.tokens))
    }

    fn pick_model<'a>(
        &'a self,
        call: &CallContext,
        asked: Option<&'a str>,
    ) -> Result<&'a str, Error> {
        match asked {
            None => Ok(&self.model),
            Some(model) if model == self.model || self.allowed_models.contains(model) => Ok(model),
            Some(model) => Err(Error::Denied(format!(
                "model `{model}` is not allowed for task type `{}`",
                call.task_type
            ))),
        }
    }
}

/// Whether a failed model is worth replacing by the fallback model.
fn falls_back(err: &Error) -> bool {
    match err {
        Error::RateLimited(_) => true,
        Error::Provider(e) => e.status >= 500 || e.status == 404,
        _ => false,
    }
}

/// Refuses requests no provider could serve.
fn check_request(request: &Request) -> Result<(), Error> {
    if request.messages.is_empty() {
        return Err(Error::InvalidRequest("messages is empty".into()));
    }
    if !request.messages.iter().any(|m| m.role != Role::System) {
        return Err(Error::InvalidRequest(
            "messages has no user or assistant message".into(),
        ));
    }
    if request.max_tokens == Some(0) {
        return Err(Error::InvalidRequest("max-tokens is 0".into()));
    }
    if let Some(t) = request.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        return Err(Error::InvalidRequest(format!(
            "temperature {t} is outside 0..=2"
        )));
    }
    if request.stop.iter().any(String::is_empty) {
        return Err(Error::InvalidRequest("a stop sequence is empty".into()));
    }
    Ok(())
}

/// The `outcome` label of a finished call.
fn outcome(result: &Result<Response, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Timeout) => "timeout",
        Err(Error::RateLimited(_)) => "rate_limited",
        Err(Error::Denied(_)) => "denied",
        Err(Error::Provider(_)) => "provider_error",
        Err(Error::InvalidRequest(_)) => "invalid_request",
        Err(Error::ResponseTooLarge) => "response_too_large",
    }
}

/// A plugin's temperature as the decimal it wrote (0.2), not as the `f64`
/// nearest to its `f32` (0.20000000298023224).
fn temperature(t: f32) -> Value {
    // `f32`'s Display is the shortest decimal that reads back as the same f32.
    let decimal = t.to_string().parse::<f64>().unwrap_or(f64::from(t));
    Value::from(decimal)
}

/// The string at `key` of a JSON object, if it is one.
fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The role as both APIs spell it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::config::TimeoutOverrides;

    #[test]
    fn provider_messages_never_carry_the_key() {
        let config = ProviderConfig {
            kind: ProviderKind::OpenAi,
            base_url: None,
            api_key_env: Some("KEY".into()),
            stream: false,
            timeouts: TimeoutOverrides::default(),
            breaker: crate::flow::BreakerConfig::default(),
            budget: crate::flow::BudgetConfig::default(),
            models: BTreeMap::new(),
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = Provider::new(
            "p",
            &config,
            &LlmConfig::default(),
            &|_| Some("sk-secret".into()),
            &Arc::default(),
        )
        .unwrap();
        assert_eq!(
            provider.scrub("Incorrect API key provided: sk-secret."),
            "Incorrect API key provided: [redacted]."
        );
        assert!(!format!("{provider:?}").contains("sk-secret"));
        assert_eq!(
            provider.endpoint.as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
    }

    #[test]
    fn error_messages_come_from_either_api_or_the_raw_body() {
        let openai = br#"{"error": {"message": "bad model", "type": "invalid_request_error"}}"#;
        assert_eq!(error_message(openai).as_deref(), Some("bad model"));
        let anthropic = br#"{"type": "error", "error": {"type": "x", "message": "overloaded"}}"#;
        assert_eq!(error_message(anthropic).as_deref(), Some("overloaded"));
        assert_eq!(
            error_message(b" upstream down ").as_deref(),
            Some("upstream down")
        );
        assert_eq!(error_message(b""), None);
    }

    #[test]
    fn temperatures_are_sent_as_the_plugin_wrote_them() {
        for (t, text) in [(0.2, "0.2"), (0.7, "0.7"), (1.0, "1.0"), (0.0, "0.0")] {
            assert_eq!(temperature(t).to_string(), text);
        }
    }
}
