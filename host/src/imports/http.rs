//! The `http` import: forwards a guest's request to the host's [`Outbound`].
//!
//! [`Outbound`]: super::Outbound

use crate::runtime::bindings::http::{Error, Host, Request, Response};
use crate::runtime::sandbox::HostState;

impl Host for HostState {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        let (outbound, call) = (self.outbound.clone(), self.call.clone());
        outbound.http(&call, request).await
    }
}
