//! The operator's outbound configuration, as it appears in `sluice.toml`.
//!
//! [`LlmConfig`] is the top-level `[llm]` table (providers, timeouts, retries);
//! [`TaskLlmConfig`] and [`TaskHttpConfig`] are the `llm` and `http` sections of
//! each `[tasks.<task_type>]`. These types only describe and validate; the
//! clients are built from them by [`super::Network::new`]. No secret ever lives
//! here: API keys are read from the environment variable a provider names.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flow::{BreakerConfig, BudgetConfig};

/// The `[llm]` table: the providers tasks may use, and the defaults for calls.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// `[llm.providers.<name>]`, referred to by `tasks.<task_type>.llm.provider`.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[llm.timeouts]`: the time budgets of one request, for every provider.
    pub timeouts: LlmTimeouts,
    /// `[llm.retry]`: retries of connection errors, 429 and 5xx answers.
    pub retry: RetryConfig,
    /// The largest reply body accepted, in bytes (default 8 MiB).
    pub max_response_bytes: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            providers: BTreeMap::new(),
            timeouts: LlmTimeouts::default(),
            retry: RetryConfig::default(),
            max_response_bytes: 8 << 20,
        }
    }
}

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions: OpenAI, Ollama, vLLM, llama.cpp
    /// server, OpenRouter, Gemini's compatible endpoint.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages.
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl ProviderKind {
    /// The API root used when `base_url` is not set.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com/v1",
        }
    }
}

/// `[llm.providers.<name>]`: one endpoint and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// The API root, version included: requests go to `<base_url>/chat/completions`
    /// (openai) or `<base_url>/messages` (anthropic). Defaults to the vendor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable that holds the API key; none for keyless
    /// endpoints such as a local Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Stream replies (SSE), so that a long generation is bounded by the idle
    /// timeout between chunks rather than by `total`.
    #[serde(default)]
    pub stream: bool,
    /// Overrides of `[llm.timeouts]` for this provider.
    #[serde(default)]
    pub timeouts: TimeoutOverrides,
    /// When to stop sending this provider work, and for how long.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// How much this host may send the provider: concurrency, requests and
    /// tokens per minute.
    #[serde(default)]
    pub budget: BudgetConfig,
    /// `[llm.providers.<name>.models.<model>]`: settings of single models.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelConfig>,
}

/// `[llm.providers.<name>.models.<model>]`: one model of a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A budget for this model alone, spent in addition to the provider's.
    pub budget: BudgetConfig,
}

/// The time budgets of one LLM request. Each is clamped to the unit's
/// remaining time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmTimeouts {
    /// Establishing the connection (TCP and TLS). Default 10s.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// Streamed requests: until the response headers arrive. Default 60s.
    #[serde(with = "humantime_serde")]
    pub first_byte: Duration,
    /// Between two chunks of the body, streamed or not. Default 30s.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
    /// Non-streamed requests: the whole request, headers and body. A streamed
    /// request is bounded by `first_byte`, `idle` and the unit's deadline
    /// instead. Default 300s.
    #[serde(with = "humantime_serde")]
    pub total: Duration,
}

impl Default for LlmTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(300),
        }
    }
}

/// Per-provider overrides of [`LlmTimeouts`]; unset ones keep the global value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutOverrides {
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub total: Option<Duration>,
}

impl TimeoutOverrides {
    /// `global` with these overrides applied.
    pub fn apply(&self, global: &LlmTimeouts) -> LlmTimeouts {
        LlmTimeouts {
            connect: self.connect.unwrap_or(global.connect),
            first_byte: self.first_byte.unwrap_or(global.first_byte),
            idle: self.idle.unwrap_or(global.idle),
            total: self.total.unwrap_or(global.total),
        }
    }
}

/// `[llm.retry]`: exponential backoff with jitter, never past the unit's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first attempt (0 disables retries). Default 3.
    pub max_retries: u32,
    /// The first backoff; it doubles with every retry. Default 500ms.
    #[serde(with = "humantime_serde")]
    pub base_backoff: Duration,
    /// The longest backoff between two attempts (a provider's `Retry-After`
    /// may ask for longer and is honoured). Default 10s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// `[tasks.<task_type>.llm]`: which provider and models a task type may use.
/// Without a `provider`, every `llm` call of the task type is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskLlmConfig {
    /// A name in `[llm.providers]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model used when a request names none; required with `provider`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tried once when the model's request fails with a provider error,
    /// connection failure or rate limit, if time remains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_model: Option<String>,
    /// Further models a plugin may pick by `request.model` (the default model
    /// is always allowed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
}

/// `[tasks.<task_type>.http]`: where the task type's plugin may send requests.
/// Deny by default: an empty `allow_hosts` refuses everything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskHttpConfig {
    /// Hosts that may be reached: `api.example.com` (default ports 80 and 443
    /// only), `api.example.com:8443`, `api.example.com:*` (any port),
    /// `*.example.com` (any subdomain, not `example.com` itself), IP
    /// addresses (`[::1]:8080` for IPv6 with a port).
    pub allow_hosts: Vec<String>,
    /// Addresses that are private, loopback, link-local or otherwise special
    /// but may still be reached: IPs (`127.0.0.1`) or CIDR ranges
    /// (`10.0.0.0/8`). Every other such address is refused, whether it is
    /// written in the URL or a name resolves to it, on every redirect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_private: Vec<String>,
    /// The largest response body accepted, in bytes (default 4 MiB).
    pub max_response_bytes: u64,
    /// The longest one request may take, redirects included (default 30s); a
    /// plugin may ask for less, and the unit's deadline may cut it shorter.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Redirects followed per request (default 5; 0 returns 3xx answers as they are).
    pub max_redirects: u32,
}

impl Default for TaskHttpConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_private: Vec::new(),
            max_response_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            max_redirects: 5,
        }
    }
}

/// The outbound sections of one `[tasks.<task_type>]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskOutbound {
    pub llm: TaskLlmConfig,
    pub http: TaskHttpConfig,
}

/// A configuration value that cannot be used, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct OutboundConfigError {
    /// Where the value is, such as `tasks.webhook.http.allow_hosts[1]`.
    pub key: String,
    pub message: String,
}

impl OutboundConfigError {
    pub(crate) fn new(key: impl fmt::Display, message: impl fmt::Display) -> Self {
        Self {
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

/// Checks that a duration is usable as a timeout.
pub(crate) fn positive(key: &str, value: Duration) -> Result<(), OutboundConfigError> {
    if value.is_zero() {
        Err(OutboundConfigError::new(key, "must be more than zero"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let global = LlmTimeouts::default();
        let overrides = TimeoutOverrides {
            idle: Some(Duration::from_secs(1)),
            ..TimeoutOverrides::default()
        };
        let applied = overrides.apply(&global);
        assert_eq!(applied.idle, Duration::from_secs(1));
        assert_eq!(applied.total, global.total);
    }
}
