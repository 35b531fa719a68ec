//! OpenAI-compatible chat completions: the request body, the reply, the stream.
//!
//! Covers OpenAI and the many servers that copy its API (Ollama, vLLM,
//! llama.cpp server, OpenRouter, Gemini's compatible endpoint). A JSON schema
//! is passed as `response_format: {type: "json_schema"}`; the reply is checked
//! against it on the host anyway, for servers that ignore it.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::stream::{self, SseEvent};
use super::{Completion, Failure, role_name, text};
use crate::runtime::bindings::llm::{Error, FinishReason, ProviderError, Request};

/// The JSON body of a chat completion request.
pub(super) fn body(model: &str, request: &Request, schema: Option<&Value>, stream: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": role_name(m.role), "content": m.content}))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    if let Some(max) = request.max_tokens {
        body.insert("max_tokens".into(), max.into());
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), super::temperature(t));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    if let Some(schema) = schema {
        body.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}),
        );
    }
    if stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

/// Adds the bearer token, when there is a key.
pub(super) fn authorize(
    request: reqwest::RequestBuilder,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn tokens(usage: Option<&Value>) -> Option<(u32, u32)> {
    let usage = usage?;
    let count = |key: &str| {
        usage
            .get(key)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Some((count("prompt_tokens")?, count("completion_tokens")?))
}

/// A non-streamed reply, answered with `status`.
pub(super) fn parse(status: StatusCode, body: &[u8]) -> Result<Completion, Failure> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|err| Failure::unparseable(status, err))?;
    let choice = reply
        .pointer("/choices/0")
        .ok_or_else(|| Failure::unparseable(status, "no choices"))?;
    let content = match choice.pointer("/message/content") {
        Some(Value::String(content)) => content.clone(),
        Some(Value::Null) | None => String::new(),
        Some(_) => {
            return Err(Failure::unparseable(
                status,
                "message content is not a string",
            ));
        }
    };
    Ok(Completion {
        content,
        model: text(&reply, "model"),
        finish: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map_or(FinishReason::Other, finish_reason),
        tokens: tokens(reply.get("usage")),
    })
}

/// Accumulates a streamed reply: content deltas, the finish reason, and the
/// usage chunk that `stream_options.include_usage` adds before `[DONE]` (some
/// servers never send it: the tokens are then unknown).
#[derive(Debug)]
pub(super) struct Fold {
    /// The status the stream was answered with.
    status: StatusCode,
    content: String,
    model: Option<String>,
    finish: Option<FinishReason>,
    tokens: Option<(u32, u32)>,
    chunks: usize,
}

impl Fold {
    pub(super) fn new(status: StatusCode) -> Self {
        Self {
            status,
            content: String::new(),
            model: None,
            finish: None,
            tokens: None,
            chunks: 0,
        }
    }
}

impl stream::Fold for Fold {
    fn event(&mut self, event: &SseEvent) -> Result<bool, Failure> {
        if event.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|err| Failure::unparseable(self.status, err))?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error in stream");
            return Err(Failure::fatal(Error::Provider(ProviderError {
                status: super::GATEWAY,
                message: message.to_owned(),
            })));
        }
        self.chunks += 1;
        if self.model.is_none() {
            self.model = text(&chunk, "model");
        }
        if let Some(choice) = chunk.pointer("/choices/0") {
            if let Some(piece) = choice.pointer("/delta/content").and_then(Value::as_str) {
                self.content.push_str(piece);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(finish_reason(reason));
            }
        }
        if let Some(tokens) = tokens(chunk.get("usage")) {
            self.tokens = Some(tokens);
        }
        Ok(false)
    }

    fn finish(self) -> Result<Completion, Failure> {
        if self.chunks == 0 {
            return Err(Failure::unparseable(
                self.status,
                "the stream ended before any chunk",
            ));
        }
        // A stream cut short (a proxy closing it, a crashed server) must not
        // pass as a complete reply.
        if self.finish.is_none() {
            return Err(Failure::unparseable(
                self.status,
                "the stream ended without a finish reason: the reply is incomplete",
            ));
        }
        Ok(Completion {
            content: self.content,
            model: self.model,
            finish: self.finish.unwrap_or(FinishReason::Other),
            tokens: self.tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::llm::stream::Fold as _;
    use crate::runtime::bindings::llm::{Message, Role};

    #[test]
    fn body_carries_every_request_field() {
        let request = Request {
            model: None,
            messages: vec![Message {
                role: Role::User,
                content: "hi".into(),
            }],
            max_tokens: Some(5),
            temperature: Some(0.5),
            stop: vec!["END".into()],
            json_schema: None,
        };
        let schema = json!({"type": "object"});
        let body = body("m", &request, Some(&schema), true);
        assert_eq!(body["model"], "m");
        assert_eq!(
            body["messages"][0],
            json!({"role": "user", "content": "hi"})
        );
        assert_eq!(body["max_tokens"], 5);
        assert_eq!(body["stop"], json!(["END"]));
        assert_eq!(body["response_format"]["json_schema"]["schema"], schema);
        assert_eq!(body["stream_options"]["include_usage"], true);
    }

    #[test]
    fn stream_folds_into_a_completion() {
        let mut fold = Fold::new(StatusCode::OK);
        for data in [
            r#"{"model":"m","choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"delta":{"content":"lo"},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
        ] {
            let done = fold
                .event(&SseEvent {
                    event: None,
                    data: data.into(),
                })
                .unwrap();
            assert!(!done);
        }
        assert!(
            fold.event(&SseEvent {
                event: None,
                data: "[DONE]".into()
            })
            .unwrap()
        );
        let completion = fold.finish().unwrap();
        assert_eq!(completion.content, "Hello");
        assert_eq!(completion.model.as_deref(), Some("m"));
        assert_eq!(completion.finish, FinishReason::Length);
        assert_eq!(completion.tokens, Some((3, 2)));
    }

    #[test]
    fn a_stream_cut_short_is_not_a_reply() {
        let mut fold = Fold::new(StatusCode::OK);
        for data in [
            r#"{"model":"m","choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"delta":{"content":"Half a sen"}}]}"#,
        ] {
            fold.event(&SseEvent {
                event: None,
                data: data.into(),
            })
            .unwrap();
        }
        assert!(
            fold.finish().is_err(),
            "partial content must not pass as complete"
        );
    }
}
