//! The `webhook` task plugin (item mode): POSTs each item's payload (the
//! event) to the operator's URL, signed with HMAC-SHA256, through the `http`
//! import.
//!
//! This file is the WebAssembly glue; settings, headers and classification are
//! in [`delivery`], the signature in [`signature`], both unit tested natively
//! (`cargo test -p sluice-plugin-webhook`). The format is documented in
//! README.md.

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler",
});

mod delivery;
mod signature;

use sluice::task::types::Mode;
use sluice::task::{config, http, log};

struct Webhook;

impl Guest for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "webhook".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: vec!["webhook".into()],
            mode: Mode::Item,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = items
            .into_iter()
            .next()
            .ok_or_else(|| TaskError::Permanent("no item".into()))?;
        let settings = delivery::Settings::from_config(config::get)?;
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
        .map_err(|e| delivery::http_error(&e))?;
        delivery::check_status(response.status, &response.body)?;
        log::log(
            log::Level::Info,
            &format!(
                "delivered item {} (attempt {}): {}",
                item.id, item.attempt, response.status
            ),
        );
        let output = serde_json::json!({
            "status": response.status,
            "item_id": item.id,
            "attempt": item.attempt,
        });
        Ok(Outcome {
            output: Some(output.to_string()),
            enqueue: Vec::new(),
        })
    }
}

export!(Webhook);
