//! The `webhook` task plugin (item mode): POSTs each item's payload (the
//! event) to the operator's URL, signed with HMAC-SHA256, through the `http`
//! import.
//!
//! This file is the WebAssembly glue, on the `sluice-sdk` crate; settings and
//! headers are in [`delivery`], the signature in [`signature`], both unit
//! tested natively (`cargo test -p sluice-plugin-webhook`). The receiver's
//! answer is classified by the SDK's standard mapping (2xx delivered; 408, 429
//! and 5xx retryable; other statuses permanent). The format is documented in
//! README.md.

mod delivery;
mod signature;

use sluice_sdk::config::Config;
use sluice_sdk::failure::{http_error, http_status};
use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem, http, log};

struct Webhook;

impl Guest for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            &["webhook"],
            Mode::Item,
        )
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = sluice_sdk::only(items)?;
        let settings = delivery::Settings::from_config(&Config::host())?;
        let body = item.payload.into_bytes();
        let envelope = delivery::Envelope {
            item_id: item.id,
            attempt: item.attempt,
            enqueued_at_ms: item.enqueued_at_ms,
            signature: signature::sign(settings.secret.as_bytes(), &body),
        };
        let response = http::send(&http::Request {
            method: http::Method::Post,
            url: settings.url,
            headers: delivery::headers(&envelope),
            body: Some(body),
            timeout_ms: settings.timeout_ms,
        })
        .map_err(|e| http_error(&e))?;
        http_status(response.status, &response.body)?;
        log::info(format!(
            "delivered item {} (attempt {}): {}",
            item.id, item.attempt, response.status
        ));
        Outcome::json(&serde_json::json!({
            "status": response.status,
            "item_id": item.id,
            "attempt": item.attempt,
        }))
    }
}

sluice_sdk::export!(Webhook);
