//! A Sluice task plugin to copy when writing your own (item mode, task type
//! `headline`), on the `sluice-sdk` crate. The same plugin exists in Python
//! (`examples/python-plugin`) and JavaScript (`examples/js-plugin`).
//!
//! It reads `{"text": "..."}`, asks the operator's LLM for a headline and the
//! text's mood as a JSON document valid against [`REPLY_SCHEMA`], and returns
//! `{"headline", "mood", "audience", "model"}`. It shows the parts every
//! plugin has: `describe`, `process`, a typed payload, config values, an LLM
//! call, a log line, and errors classified as `retryable` or `permanent`.
//!
//! The logic that needs no host (the prompt, the output) is in plain
//! functions, so `cargo test` checks it natively.

use serde::{Deserialize, Serialize};
use sluice_sdk::chat::Chat;
use sluice_sdk::config::Config;
use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem, log};

/// The reply the LLM must give: the host asks the provider for a document
/// valid against it, and the SDK parses it into [`Reply`].
pub const REPLY_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "headline": {"type": "string", "minLength": 1, "maxLength": 200},
    "mood": {"enum": ["positive", "neutral", "negative"]}
  },
  "required": ["headline", "mood"],
  "additionalProperties": false
}"#;

/// The payload. Parsing into a struct gives a clear, permanent error when a
/// producer sends something else.
#[derive(Deserialize)]
struct Article {
    text: String,
}

#[derive(Deserialize)]
struct Reply {
    headline: String,
    mood: String,
}

/// The output document.
#[derive(Serialize, Debug, PartialEq)]
struct Headline {
    headline: String,
    mood: String,
    audience: String,
    model: String,
}

struct Plugin;

impl Guest for Plugin {
    /// Who the plugin is and which task types it handles. `Mode::Item`: one
    /// item per call; `Mode::Batch` receives several items of a unit at once.
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "headline",
            env!("CARGO_PKG_VERSION"),
            &["headline"],
            Mode::Item,
        )
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = sluice_sdk::only(items)?;
        let article: Article = item.parse_payload()?;
        // Values the operator set under [tasks.headline.config]; a malformed
        // one is a permanent error naming the key.
        let config = Config::host();
        let audience = config
            .get("audience")
            .unwrap_or_else(|| "general readers".into());
        let max_words = config.positive::<u32>("max_words")?.unwrap_or(12);
        // Through the operator's provider ([tasks.headline.llm]). A timeout,
        // rate limit or 5xx is retryable, a denied call permanent; a reply
        // that does not parse is retried once, then permanent.
        let reply = Chat::new()
            .system(instructions(&audience, max_words))
            .user(article.text)
            .max_tokens(200)
            .temperature(0.0)
            .send_json::<Reply>(REPLY_SCHEMA, item.attempt)?;
        log::info(format!("item {}: {:?}", item.id, reply.value.headline));
        Outcome::json(&Headline {
            headline: reply.value.headline,
            mood: reply.value.mood,
            audience,
            model: reply.response.model,
        })
    }
}

/// The system prompt.
fn instructions(audience: &str, max_words: u32) -> String {
    format!(
        "Write a headline of at most {max_words} words for {audience} about the user's text, \
         and say whether its mood is positive, neutral or negative."
    )
}

sluice_sdk::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_carries_the_config_values() {
        let prompt = instructions("commuters", 8);
        assert!(prompt.contains("at most 8 words for commuters"), "{prompt}");
    }

    #[test]
    fn the_schema_is_json_that_requires_both_fields() {
        let schema: serde_json::Value = serde_json::from_str(REPLY_SCHEMA).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["headline", "mood"]));
    }
}
