//! The OpenAI chat completions wire format (`POST /v1/chat/completions`).
//!
//! Structured output arrives as `response_format: {type: "json_schema",
//! json_schema: {schema}}`; streamed replies are `chat.completion.chunk` events
//! ending in `data: [DONE]`, with a usage chunk when `stream_options.include_usage`.

use serde_json::{Value, json};

use crate::reply::{Prompt, Reply};

/// The prompt inside a request body.
pub fn prompt(body: &Value) -> Result<Prompt, String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("`messages` must be a non-empty array")?;
    let mut prompt = Prompt::default();
    for message in messages {
        let text = message
            .get("content")
            .and_then(Value::as_str)
            .ok_or("every message needs a string `content`")?;
        if message.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = text.to_owned();
        }
        prompt.texts.push(text.to_owned());
    }
    prompt.max_tokens = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    prompt.schema = body.pointer("/response_format/json_schema/schema").cloned();
    Ok(prompt)
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.truncated { "length" } else { "stop" }
}

fn usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    })
}

/// A non-streamed reply.
pub fn completion(model: &str, reply: &Reply) -> Value {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content},
            "finish_reason": finish_reason(reply),
        }],
        "usage": usage(reply),
    })
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let event = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {event}\n\n")
}

/// A streamed reply, one SSE frame per element.
pub fn stream(model: &str, reply: &Reply, include_usage: bool) -> Vec<String> {
    let mut frames = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in crate::pieces(&reply.content) {
        frames.push(chunk(model, json!({"content": piece}), None));
    }
    frames.push(chunk(model, json!({}), Some(finish_reason(reply))));
    if include_usage {
        let event = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage(reply),
        });
        frames.push(format!("data: {event}\n\n"));
    }
    frames.push("data: [DONE]\n\n".into());
    frames
}

/// An error body as OpenAI sends it.
pub fn error(kind: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": null}})
}

/// The start and end of a non-streamed reply whose content is filler, for `huge`.
pub fn huge_frame(model: &str) -> (String, String) {
    let head = format!(
        "{{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"model\":{},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"",
        Value::from(model)
    );
    (head, "\"},\"finish_reason\":\"stop\"}]}".into())
}

/// One streamed event carrying `filler` as content, for `huge`.
pub fn huge_event(model: &str, filler: &str) -> String {
    chunk(model, json!({"content": filler}), None)
}
