//! The `summary` task plugin (item mode): summarizes an item's text or
//! conversation within a token budget through the `llm` import.
//!
//! This file is the WebAssembly glue; payload parsing, the budget and the
//! prompt are in [`input`], error classification in [`failure`], both unit
//! tested natively (`cargo test -p sluice-plugin-summary`).
//!
//! Payload: `{"text": "..."}` or `{"messages": [{"peer"|"role": "...",
//! "content": "..."}]}`, optionally with `"max_tokens": N`. Output:
//! `{"summary", "model", "usage": {"input_tokens", "output_tokens"},
//! "finish_reason", "max_tokens"}`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler",
});

mod failure;
mod input;

use serde::Serialize;
use sluice::task::types::Mode;
use sluice::task::{config, llm};

struct Summary;

/// The output document.
#[derive(Serialize)]
struct Report<'a> {
    summary: &'a str,
    model: &'a str,
    usage: Usage,
    /// `stop`, or `length` when the summary was cut at the budget.
    finish_reason: &'static str,
    max_tokens: u32,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    output_tokens: u32,
}

impl Guest for Summary {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "summary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: vec!["summary".into()],
            mode: Mode::Item,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = items
            .into_iter()
            .next()
            .ok_or_else(|| TaskError::Permanent("no item".into()))?;
        let input = input::parse(&item.payload).map_err(TaskError::Permanent)?;
        let max_tokens = input::max_tokens(&input, config::get("max_tokens").as_deref())
            .map_err(TaskError::Permanent)?;
        let (system, user) = input::prompt(&input, max_tokens);
        let response = llm::complete(&llm::Request {
            model: None,
            messages: vec![
                llm::Message {
                    role: llm::Role::System,
                    content: system,
                },
                llm::Message {
                    role: llm::Role::User,
                    content: user,
                },
            ],
            max_tokens: Some(max_tokens),
            temperature: Some(0.2),
            stop: Vec::new(),
            json_schema: None,
        })
        .map_err(|e| failure::llm_error(&e, item.attempt))?;
        let summary = response.content.trim();
        if summary.is_empty() {
            return Err(failure::empty_reply(&response, item.attempt));
        }
        let report = Report {
            summary,
            model: &response.model,
            usage: Usage {
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
            },
            finish_reason: match response.finish_reason {
                llm::FinishReason::Stop => "stop",
                llm::FinishReason::Length => "length",
                llm::FinishReason::ContentFilter => "content-filter",
                llm::FinishReason::Other => "other",
            },
            max_tokens,
        };
        Ok(Outcome {
            output: Some(
                serde_json::to_string(&report).expect("a report of strings and numbers serializes"),
            ),
            enqueue: Vec::new(),
        })
    }
}

export!(Summary);
