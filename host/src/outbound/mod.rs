//! The real outbound side of the `llm` and `http` imports.
//!
//! [`Network`] implements [`Outbound`] from the operator's configuration: each
//! task type gets the LLM provider and models and the HTTP hosts its
//! `[tasks.<task_type>]` section grants, and nothing else. A task type without
//! an `llm` provider or allowed hosts is denied, as with [`DenyAll`].
//!
//! - [`config`]: the `[llm]` and `[tasks.<t>.llm|http]` tables and their validation.
//! - `llm`: providers (OpenAI-compatible, Anthropic), streaming, retries.
//! - `http`: the allowlist, the address policy and its DNS resolver, redirects.
//! - `body`: response bodies read under idle timeouts and size caps.
//! - [`usage`]: per-call accounting and metrics.
//!
//! [`DenyAll`]: crate::imports::DenyAll

mod body;
pub mod config;
mod http;
mod llm;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use config::{
    LlmConfig, LlmTimeouts, ModelConfig, OutboundConfigError, ProviderConfig, ProviderKind,
    RetryConfig, TaskHttpConfig, TaskLlmConfig, TaskOutbound, TimeoutOverrides,
};
pub use llm::SchemaLimits;
pub use usage::{Usage, UsageMeter};

use crate::flow::{Flow, Ledger};
use crate::imports::{CallContext, Outbound};
use crate::runtime::bindings::{http as wit_http, llm as wit_llm};

/// What one task type may reach.
#[derive(Debug, Default)]
struct Grants {
    llm: Option<llm::TaskLlm>,
    http: Option<http::Gate>,
}

/// The configured outbound implementation: one HTTP client per provider and
/// per task type's HTTP grant, and the compiled JSON schemas, shared by every call.
pub struct Network {
    tasks: HashMap<String, Grants>,
    schemas: llm::Schemas,
    flow: Arc<Flow>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("tasks", &self.tasks)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Builds every provider and grant; API keys are read from the process
    /// environment. Fails on the first unusable value, naming its key.
    pub fn new(
        llm: &LlmConfig,
        tasks: &BTreeMap<String, TaskOutbound>,
    ) -> Result<Self, OutboundConfigError> {
        Self::with_env(llm, tasks, |name| std::env::var(name).ok())
    }

    /// As [`Network::new`], with API keys looked up by `env`.
    pub fn with_env(
        llm: &LlmConfig,
        tasks: &BTreeMap<String, TaskOutbound>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, OutboundConfigError> {
        // reqwest is built without a TLS crypto backend of its own: use ring.
        // Installing fails harmlessly when the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if llm.max_response_bytes == 0 {
            return Err(OutboundConfigError::new(
                "llm.max_response_bytes",
                "must be more than zero",
            ));
        }
        if llm.retry.base_backoff > llm.retry.max_backoff {
            return Err(OutboundConfigError::new(
                "llm.retry.base_backoff",
                "is longer than llm.retry.max_backoff",
            ));
        }
        let spend = Arc::new(Ledger::default());
        let mut providers = BTreeMap::new();
        for (name, provider) in &llm.providers {
            let provider = llm::Provider::new(name, provider, llm, &env, &spend)?;
            providers.insert(name.clone(), Arc::new(provider));
        }
        let mut grants = HashMap::new();
        let mut uses = BTreeMap::new();
        for (task_type, outbound) in tasks {
            if let Some(provider) = &outbound.llm.provider {
                uses.insert(task_type.clone(), provider.clone());
            }
            grants.insert(
                task_type.clone(),
                Grants {
                    llm: llm::TaskLlm::new(task_type, &outbound.llm, &providers)?,
                    http: http::Gate::new(task_type, &outbound.http)?,
                },
            );
        }
        let breakers = providers
            .iter()
            .map(|(name, provider)| (name.clone(), provider.breaker().clone()))
            .collect();
        let budgets = providers
            .values()
            .flat_map(|provider| provider.budgets())
            .cloned()
            .collect();
        Ok(Self {
            tasks: grants,
            schemas: llm::Schemas::new(SchemaLimits::default()),
            flow: Arc::new(Flow::new(breakers, budgets, uses, spend)),
        })
    }

    /// This network with `limits` on the `llm` import's JSON schemas
    /// (`[limits] schema_*`) instead of the defaults.
    pub fn with_schema_limits(self, limits: SchemaLimits) -> Self {
        Self {
            schemas: llm::Schemas::new(limits),
            ..self
        }
    }
}

#[async_trait::async_trait]
impl Outbound for Network {
    fn flow(&self) -> Option<Arc<Flow>> {
        Some(self.flow.clone())
    }

    async fn llm(
        &self,
        call: &CallContext,
        request: wit_llm::Request,
    ) -> Result<wit_llm::Response, wit_llm::Error> {
        match self.tasks.get(&call.task_type).and_then(|g| g.llm.as_ref()) {
            Some(llm) => llm.complete(call, request, &self.schemas).await,
            None => Err(wit_llm::Error::Denied(format!(
                "no LLM provider is configured for task type `{}`",
                call.task_type
            ))),
        }
    }

    async fn http(
        &self,
        call: &CallContext,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::Error> {
        match self
            .tasks
            .get(&call.task_type)
            .and_then(|g| g.http.as_ref())
        {
            Some(gate) => gate.send(call, request).await,
            None => Err(wit_http::Error::Denied(format!(
                "no outbound hosts are allowed for task type `{}`",
                call.task_type
            ))),
        }
    }
}
