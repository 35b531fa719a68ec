//! An `llm` call built step by step, with the contract's error mapping
//! applied, and a reply parsed into the plugin's own type against a JSON
//! schema.

use serde::de::DeserializeOwned;

use crate::failure::{broken_reply, llm_error};
use crate::{TaskError, llm};

/// One chat completion request. Every call is bounded by the unit's deadline
/// on the host's side; the plugin never sees provider URLs or keys.
#[derive(Debug, Clone)]
pub struct Chat {
    request: llm::Request,
}

/// A reply parsed into `T`, with the response it came from (model, usage,
/// finish reason) for the output.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub value: T,
    pub response: llm::Response,
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl Chat {
    /// An empty request for the task type's default model.
    pub fn new() -> Self {
        Self {
            request: llm::Request {
                model: None,
                messages: Vec::new(),
                max_tokens: None,
                temperature: None,
                stop: Vec::new(),
                json_schema: None,
            },
        }
    }

    /// Adds a system message.
    pub fn system(self, content: impl Into<String>) -> Self {
        self.message(llm::Role::System, content)
    }

    /// Adds a user message.
    pub fn user(self, content: impl Into<String>) -> Self {
        self.message(llm::Role::User, content)
    }

    /// Adds an assistant message (an earlier turn of the model).
    pub fn assistant(self, content: impl Into<String>) -> Self {
        self.message(llm::Role::Assistant, content)
    }

    fn message(mut self, role: llm::Role, content: impl Into<String>) -> Self {
        self.request.messages.push(llm::Message {
            role,
            content: content.into(),
        });
        self
    }

    /// A model the operator allows for the task type (`allowed_models`);
    /// without it the task type's default model answers.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.request.model = Some(model.into());
        self
    }

    /// The reply's token budget.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.request.max_tokens = Some(max_tokens);
        self
    }

    pub fn temperature(mut self, temperature: f32) -> Self {
        self.request.temperature = Some(temperature);
        self
    }

    /// A sequence that ends the reply.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.request.stop.push(stop.into());
        self
    }

    /// Asks for a reply that is a JSON document valid against `schema` (a
    /// JSON Schema, as text). Send the same text on every call: the host
    /// compiles each schema once.
    pub fn json_schema(mut self, schema: impl Into<String>) -> Self {
        self.request.json_schema = Some(schema.into());
        self
    }

    /// The request as it will be sent.
    pub fn request(&self) -> &llm::Request {
        &self.request
    }

    /// Sends the request. A failed call becomes a `task-error` through
    /// [`llm_error`]; `attempt` is the item's (`work-item.attempt`).
    pub fn send(self, attempt: u32) -> Result<llm::Response, TaskError> {
        llm::complete(&self.request).map_err(|e| llm_error(&e, attempt))
    }

    /// Sends the request with `schema` and parses the reply into `T`. A reply
    /// that is not such a document is retried once, then permanent, with the
    /// raw reply in the message ([`broken_reply`]).
    pub fn send_json<T: DeserializeOwned>(
        self,
        schema: impl Into<String>,
        attempt: u32,
    ) -> Result<Reply<T>, TaskError> {
        let response = self.json_schema(schema).send(attempt)?;
        let value = parse_reply(&response, attempt)?;
        Ok(Reply { value, response })
    }
}

/// Parses a reply's content into `T`, classifying a reply that does not parse
/// as [`broken_reply`] does.
pub fn parse_reply<T: DeserializeOwned>(
    response: &llm::Response,
    attempt: u32,
) -> Result<T, TaskError> {
    serde_json::from_str(&response.content).map_err(|e| {
        broken_reply(
            &format!("it is not the JSON document asked for: {e}"),
            response,
            attempt,
        )
    })
}

/// The finish reason as the outputs of the bundled plugins spell it.
pub fn finish_reason_name(reason: llm::FinishReason) -> &'static str {
    match reason {
        llm::FinishReason::Stop => "stop",
        llm::FinishReason::Length => "length",
        llm::FinishReason::ContentFilter => "content-filter",
        llm::FinishReason::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Verdict {
        label: String,
    }

    fn response(content: &str) -> llm::Response {
        crate::failure::tests::response(content, llm::FinishReason::Stop)
    }

    #[test]
    fn the_request_carries_every_step() {
        let chat = Chat::new()
            .system("be brief")
            .user("hi")
            .max_tokens(64)
            .temperature(0.5)
            .model("small")
            .json_schema("{}");
        let request = chat.request();
        assert_eq!(request.messages.len(), 2);
        assert_eq!(request.messages[0].role, llm::Role::System);
        assert_eq!(request.messages[1].content, "hi");
        assert_eq!(request.max_tokens, Some(64));
        assert_eq!(request.model.as_deref(), Some("small"));
        assert_eq!(request.json_schema.as_deref(), Some("{}"));
    }

    #[test]
    fn replies_parse_into_types_and_a_broken_one_is_retried_once() {
        assert_eq!(
            parse_reply::<Verdict>(&response(r#"{"label":"spam"}"#), 1).unwrap(),
            Verdict {
                label: "spam".into()
            }
        );
        let Err(TaskError::Retryable(m)) = parse_reply::<Verdict>(&response("nope"), 1) else {
            panic!("a broken reply is retried on attempt 1");
        };
        assert!(
            m.contains("\"nope\"") && m.contains("not the JSON document"),
            "{m}"
        );
        assert!(matches!(
            parse_reply::<Verdict>(&response("{}"), 2),
            Err(TaskError::Permanent(_))
        ));
    }
}
