//! The `llm` import: forwards a guest's chat completion to the host's [`Outbound`].
//!
//! [`Outbound`]: super::Outbound

use crate::runtime::bindings::llm::{Error, Host, Request, Response};
use crate::runtime::sandbox::HostState;

impl Host for HostState {
    async fn complete(&mut self, request: Request) -> Result<Response, Error> {
        let (outbound, call) = (self.outbound.clone(), self.call.clone());
        outbound.llm(&call, request).await
    }
}
