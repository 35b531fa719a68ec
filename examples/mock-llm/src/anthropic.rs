//! The Anthropic Messages wire format (`POST /v1/messages`).
//!
//! Structured output is asked for the way Anthropic documents tool use: a tool
//! whose `input_schema` is the schema, forced by `tool_choice`. The mock answers
//! such a request with a `tool_use` block whose `input` is the shaped JSON.
//! Streamed replies are the documented `message_start` … `message_stop` events.

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
    if let Some(system) = body.get("system").and_then(Value::as_str) {
        prompt.texts.push(system.to_owned());
    }
    for message in messages {
        let text = match message.get("content") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => return Err("every message needs a `content`".into()),
        };
        if message.get("role").and_then(Value::as_str) == Some("user") {
            prompt.last_user = text.clone();
        }
        prompt.texts.push(text);
    }
    prompt.max_tokens = Some(
        body.get("max_tokens")
            .and_then(Value::as_u64)
            .ok_or("`max_tokens` is required")?,
    );
    prompt.schema = forced_tool(body).and_then(|tool| tool.get("input_schema").cloned());
    Ok(prompt)
}

/// The tool `tool_choice` forces, if any.
fn forced_tool(body: &Value) -> Option<&Value> {
    let name = body.pointer("/tool_choice/name")?.as_str()?;
    body.get("tools")?
        .as_array()?
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
}

/// The forced tool's name, when the request asked for structured output.
pub fn tool_name(body: &Value) -> Option<String> {
    forced_tool(body)?
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn stop_reason(reply: &Reply, tool: Option<&str>) -> &'static str {
    match (tool, reply.truncated) {
        (Some(_), _) => "tool_use",
        (None, true) => "max_tokens",
        (None, false) => "end_turn",
    }
}

fn usage(reply: &Reply) -> Value {
    json!({"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens})
}

fn content_block(reply: &Reply, tool: Option<&str>) -> Value {
    match tool {
        Some(name) => json!({
            "type": "tool_use",
            "id": "toolu_mock",
            "name": name,
            "input": serde_json::from_str::<Value>(&reply.content).unwrap_or(Value::Null),
        }),
        None => json!({"type": "text", "text": reply.content}),
    }
}

/// A non-streamed reply.
pub fn message(model: &str, reply: &Reply, tool: Option<&str>) -> Value {
    json!({
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [content_block(reply, tool)],
        "stop_reason": stop_reason(reply, tool),
        "stop_sequence": null,
        "usage": usage(reply),
    })
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A streamed reply, one SSE frame per element; without `with_usage`, no
/// event reports token counts.
pub fn stream(model: &str, reply: &Reply, tool: Option<&str>, with_usage: bool) -> Vec<String> {
    let mut message = json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
    });
    let mut delta = json!({"type": "message_delta",
           "delta": {"stop_reason": stop_reason(reply, tool), "stop_sequence": null},
           "usage": {"output_tokens": reply.output_tokens}});
    if !with_usage {
        for frame in [&mut message, &mut delta] {
            if let Some(fields) = frame.as_object_mut() {
                fields.remove("usage");
            }
        }
    }
    let mut frames = vec![event(
        "message_start",
        json!({"type": "message_start", "message": message}),
    )];
    let start = match tool {
        Some(name) => json!({"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    frames.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": start}),
    ));
    frames.push(event("ping", json!({"type": "ping"})));
    for piece in crate::pieces(&reply.content) {
        let delta = match tool {
            Some(_) => json!({"type": "input_json_delta", "partial_json": piece}),
            None => json!({"type": "text_delta", "text": piece}),
        };
        frames.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ));
    }
    frames.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(event("message_delta", delta));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    frames
}

/// An error body as Anthropic sends it.
pub fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The start and end of a non-streamed reply whose text is filler, for `huge`.
pub fn huge_frame(model: &str) -> (String, String) {
    let head = format!(
        "{{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[{{\"type\":\"text\",\"text\":\"",
        Value::from(model)
    );
    (
        head,
        "\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}"
            .into(),
    )
}

/// One streamed event carrying `filler` as text, for `huge`.
pub fn huge_event(filler: &str) -> String {
    event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": filler}}),
    )
}
