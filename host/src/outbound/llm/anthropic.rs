//! Anthropic Messages: the request body, the reply, the stream.
//!
//! System messages go to the top-level `system` field. A JSON schema is asked
//! for as a forced tool call (a tool named `reply` whose `input_schema` is the
//! schema, chosen by `tool_choice`), and the tool's input becomes the reply's
//! content, so the schema must describe an object. `max_tokens` is required by
//! this API; when the plugin sets none, [`DEFAULT_MAX_TOKENS`] is sent.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::stream::{self, SseEvent};
use super::{Completion, Failure, role_name, text};
use crate::runtime::bindings::llm::{Error, FinishReason, ProviderError, Request, Role};

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";
/// Sent when a request sets no `max-tokens`.
pub(super) const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The forced tool that carries structured output.
const TOOL: &str = "reply";

/// The JSON body of a Messages request.
pub(super) fn body(model: &str, request: &Request, schema: Option<&Value>, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"role": role_name(m.role), "content": m.content}))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert(
        "max_tokens".into(),
        request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into(),
    );
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), super::temperature(t));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    if let Some(schema) = schema {
        body.insert(
            "tools".into(),
            json!([{"name": TOOL, "description": "Give the reply as JSON matching this schema.", "input_schema": schema}]),
        );
        body.insert("tool_choice".into(), json!({"type": "tool", "name": TOOL}));
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    Value::Object(body)
}

/// Adds the `x-api-key` and version headers.
pub(super) fn authorize(
    request: reqwest::RequestBuilder,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let request = request.header("anthropic-version", API_VERSION);
    match key {
        Some(key) => request.header("x-api-key", key),
        None => request,
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" | "tool_use" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn count(usage: Option<&Value>, key: &str) -> Option<u32> {
    usage?
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// A non-streamed reply, answered with `status`: text blocks joined, or the
/// forced tool's input.
pub(super) fn parse(status: StatusCode, body: &[u8]) -> Result<Completion, Failure> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|err| Failure::unparseable(status, err))?;
    let blocks = reply
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::unparseable(status, "no content"))?;
    let mut content = String::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                content.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(TOOL) => {
                content = block
                    .get("input")
                    .cloned()
                    .unwrap_or(Value::Null)
                    .to_string();
                break;
            }
            _ => {}
        }
    }
    let usage = reply.get("usage");
    Ok(Completion {
        content,
        model: text(&reply, "model"),
        finish: reply
            .get("stop_reason")
            .and_then(Value::as_str)
            .map_or(FinishReason::Other, finish_reason),
        tokens: count(usage, "input_tokens").zip(count(usage, "output_tokens")),
    })
}

/// Accumulates a streamed reply from `message_start` to `message_stop`.
#[derive(Debug)]
pub(super) struct Fold {
    /// The status the stream was answered with.
    status: StatusCode,
    text: String,
    tool_json: Option<String>,
    model: Option<String>,
    finish: Option<FinishReason>,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    started: bool,
}

impl Fold {
    pub(super) fn new(status: StatusCode) -> Self {
        Self {
            status,
            text: String::new(),
            tool_json: None,
            model: None,
            finish: None,
            input_tokens: None,
            output_tokens: None,
            started: false,
        }
    }
}

impl stream::Fold for Fold {
    fn event(&mut self, event: &SseEvent) -> Result<bool, Failure> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|err| Failure::unparseable(self.status, err))?;
        let kind = event
            .event
            .as_deref()
            .or_else(|| data.get("type").and_then(Value::as_str))
            .unwrap_or("");
        match kind {
            "message_start" => {
                self.started = true;
                let message = data.get("message");
                self.model = message
                    .and_then(|m| m.get("model"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let usage = message.and_then(|m| m.get("usage"));
                self.input_tokens = count(usage, "input_tokens");
                self.output_tokens = count(usage, "output_tokens");
            }
            "content_block_start" => {
                let block = data.get("content_block");
                if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("tool_use")
                    && block.and_then(|b| b.get("name")).and_then(Value::as_str) == Some(TOOL)
                {
                    self.tool_json = Some(String::new());
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") => self.text.push_str(
                        delta
                            .and_then(|d| d.get("text"))
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                    ),
                    Some("input_json_delta") => {
                        if let Some(json) = &mut self.tool_json {
                            json.push_str(
                                delta
                                    .and_then(|d| d.get("partial_json"))
                                    .and_then(Value::as_str)
                                    .unwrap_or(""),
                            );
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = Some(finish_reason(reason));
                }
                if let Some(n) = count(data.get("usage"), "output_tokens") {
                    self.output_tokens = Some(n);
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let status = match data.pointer("/error/type").and_then(Value::as_str) {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => {
                        return Err(Failure::fatal(Error::RateLimited(None)));
                    }
                    _ => super::GATEWAY,
                };
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error in stream");
                return Err(Failure::fatal(Error::Provider(ProviderError {
                    status,
                    message: message.to_owned(),
                })));
            }
            _ => {}
        }
        Ok(false)
    }

    fn finish(self) -> Result<Completion, Failure> {
        if !self.started {
            return Err(Failure::unparseable(
                self.status,
                "the stream ended before message_start",
            ));
        }
        if self.finish.is_none() {
            return Err(Failure::unparseable(
                self.status,
                "the stream ended without a stop reason: the reply is incomplete",
            ));
        }
        let content = match self.tool_json {
            Some(json) if json.trim().is_empty() => "{}".to_owned(),
            Some(json) => json,
            None => self.text,
        };
        Ok(Completion {
            content,
            model: self.model,
            finish: self.finish.unwrap_or(FinishReason::Other),
            tokens: self.input_tokens.zip(self.output_tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::llm::stream::Fold as _;
    use crate::runtime::bindings::llm::Message;

    #[test]
    fn system_messages_move_to_the_system_field() {
        let request = Request {
            model: None,
            messages: vec![
                Message {
                    role: Role::System,
                    content: "be brief".into(),
                },
                Message {
                    role: Role::User,
                    content: "hi".into(),
                },
            ],
            max_tokens: None,
            temperature: None,
            stop: vec![],
            json_schema: None,
        };
        let schema = json!({"type": "object"});
        let body = body("m", &request, Some(&schema), false);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["tools"][0]["input_schema"], schema);
        assert_eq!(body["tool_choice"]["name"], TOOL);
    }

    #[test]
    fn tool_input_becomes_the_content() {
        let reply = json!({
            "model": "claude",
            "content": [{"type": "tool_use", "name": TOOL, "input": {"a": 1}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 4, "output_tokens": 2}
        });
        let completion = parse(StatusCode::OK, reply.to_string().as_bytes()).unwrap();
        assert_eq!(completion.content, r#"{"a":1}"#);
        assert_eq!(completion.finish, FinishReason::Stop);
        assert_eq!(completion.tokens, Some((4, 2)));
    }

    #[test]
    fn stream_folds_into_a_completion() {
        let mut fold = Fold::new(StatusCode::OK);
        let events = [
            (
                "message_start",
                r#"{"message":{"model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"delta":{"type":"text_delta","text":"Hi "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"delta":{"type":"text_delta","text":"there"}}"#,
            ),
            (
                "message_delta",
                r#"{"delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":2}}"#,
            ),
        ];
        for (name, data) in events {
            let event = SseEvent {
                event: Some(name.into()),
                data: data.into(),
            };
            assert!(!fold.event(&event).unwrap());
        }
        let stop = SseEvent {
            event: Some("message_stop".into()),
            data: "{}".into(),
        };
        assert!(fold.event(&stop).unwrap());
        let completion = fold.finish().unwrap();
        assert_eq!(completion.content, "Hi there");
        assert_eq!(completion.finish, FinishReason::Length);
        assert_eq!(completion.tokens, Some((7, 2)));
    }
}
