//! Everything a guest may call on the host, and nothing else.
//!
//! `log` and `config` are answered from the call's own state. `llm` and `http`
//! reach the outside world, so they go through the [`Outbound`] trait: the host
//! chooses the implementation (the default [`DenyAll`] refuses every request with
//! the contract's `denied` error), and every implementation is bounded by the
//! call's deadline from outside, by the `tokio` timeout around the whole call.

pub mod config;
pub mod http;
pub mod llm;
pub mod log;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::flow::Flow;
use crate::outbound::UsageMeter;
use crate::runtime::bindings::{http as wit_http, llm as wit_llm};

/// What an outbound implementation knows about the call it serves.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The plugin's name, as it described itself.
    pub plugin: String,
    /// The task type being processed.
    pub task_type: String,
    /// When the whole call must be over; outbound timeouts are clamped to it.
    pub deadline: Instant,
    /// Where outbound calls account for what they spent (the call's meter).
    pub usage: UsageMeter,
}

/// Values the operator set for a task type, handed to guests by `config.get`.
pub type TaskConfig = Arc<BTreeMap<String, String>>;

/// The outbound side of the `llm` and `http` imports. Errors are values the
/// guest sees; an implementation never traps the guest.
#[async_trait::async_trait]
pub trait Outbound: Send + Sync + 'static {
    /// The providers' circuit breakers, which the claim loop consults; none
    /// for implementations without providers.
    fn flow(&self) -> Option<Arc<Flow>> {
        None
    }

    async fn llm(
        &self,
        call: &CallContext,
        request: wit_llm::Request,
    ) -> Result<wit_llm::Response, wit_llm::Error>;

    async fn http(
        &self,
        call: &CallContext,
        request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::Error>;
}

/// Refuses every outbound call: the default until an operator configures providers.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

#[async_trait::async_trait]
impl Outbound for DenyAll {
    async fn llm(
        &self,
        call: &CallContext,
        _request: wit_llm::Request,
    ) -> Result<wit_llm::Response, wit_llm::Error> {
        Err(wit_llm::Error::Denied(format!(
            "no LLM provider is configured for task type `{}`",
            call.task_type
        )))
    }

    async fn http(
        &self,
        call: &CallContext,
        _request: wit_http::Request,
    ) -> Result<wit_http::Response, wit_http::Error> {
        Err(wit_http::Error::Denied(format!(
            "no outbound hosts are allowed for task type `{}`",
            call.task_type
        )))
    }
}
