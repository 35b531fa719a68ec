//! A minimal Sluice task plugin (item mode, task type `template`): copy it to
//! start your own.
//!
//! It reads `{"text": "..."}`, and returns `{"text", "words", "shout"}`: the
//! text, its word count and, when the operator set the `shout` config value to
//! `true`, the text in capitals. It shows the parts every plugin has: the
//! bindings, `describe`, `process`, a log line, a config value, and the two
//! kinds of error.
//!
//! The logic is a plain function ([`transform`]) so `cargo test` can check it
//! natively; the glue around it only runs inside Sluice.

// Generates Rust bindings for the `handler` world of the contract. In a copy
// outside the Sluice repository, point `path` at your copy of `wit/`.
wit_bindgen::generate!({
    path: "../../wit",
    world: "handler",
});

use serde::Deserialize;
use sluice::task::types::Mode;
use sluice::task::{config, log};

/// The payload this plugin expects. Parsing into a struct gives a clear error
/// for free when a producer sends something else.
#[derive(Deserialize)]
struct Payload {
    text: String,
}

struct Template;

impl Guest for Template {
    /// Who the plugin is and which task types it handles. Called when Sluice
    /// loads the plugin.
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "template".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: vec!["template".into()],
            // `Item`: one item per call. Use `Mode::Batch` to receive several
            // items of one work unit at once.
            mode: Mode::Item,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        // Item mode: always exactly one item.
        let item = items
            .into_iter()
            .next()
            .ok_or_else(|| TaskError::Permanent("no item".into()))?;
        // Values the operator set under [tasks.template.config].
        let shout = config::get("shout").is_some_and(|v| v == "true");
        let output = transform(&item.payload, shout)?;
        log::log(
            log::Level::Info,
            &format!("item {} transformed (attempt {})", item.id, item.attempt),
        );
        Ok(Outcome {
            output: Some(output),
            // Follow-up items to enqueue, committed together with the output.
            enqueue: Vec::new(),
        })
    }
}

/// The plugin's logic: a payload in, an output JSON document out.
///
/// Errors: `Permanent` when retrying cannot help (this payload will never
/// parse), `Retryable` when a later attempt may succeed (a dependency that is
/// down). Here, a payload asking for `"text": "retry"` shows the second kind.
fn transform(payload: &str, shout: bool) -> Result<String, TaskError> {
    let payload: Payload = serde_json::from_str(payload).map_err(|e| {
        TaskError::Permanent(format!("expected {{\"text\": \"...\"}} as payload: {e}"))
    })?;
    if payload.text == "retry" {
        return Err(TaskError::Retryable("asked to be retried".into()));
    }
    let text = if shout {
        payload.text.to_uppercase()
    } else {
        payload.text.clone()
    };
    let output = serde_json::json!({
        "text": text,
        "words": payload.text.split_whitespace().count(),
        "shout": shout,
    });
    Ok(output.to_string())
}

export!(Template);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_shouts_when_configured() {
        let out: serde_json::Value =
            serde_json::from_str(&transform(r#"{"text":"hello plugin world"}"#, true).unwrap())
                .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"text": "HELLO PLUGIN WORLD", "words": 3, "shout": true})
        );
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(
            transform(r#"{"txt":"x"}"#, false),
            Err(TaskError::Permanent(_))
        ));
        assert!(matches!(
            transform(r#"{"text":"retry"}"#, false),
            Err(TaskError::Retryable(_))
        ));
    }
}
