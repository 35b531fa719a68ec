//! The `summary` task plugin (item mode): summarizes an item's text or
//! conversation within a token budget through the `llm` import.
//!
//! This file is the WebAssembly glue, on the `sluice-sdk` crate; payload
//! parsing, the budget and the prompt are in [`input`], unit tested natively
//! (`cargo test -p sluice-plugin-summary`). Errors are classified by the SDK's
//! standard mapping; an empty reply is retried once, then permanent.
//!
//! Payload: `{"text": "..."}` or `{"messages": [{"peer"|"role": "...",
//! "content": "..."}]}`, optionally with `"max_tokens": N`. Output:
//! `{"summary", "model", "usage": {"input_tokens", "output_tokens"},
//! "finish_reason", "max_tokens"}`.

mod input;

use serde::Serialize;
use sluice_sdk::chat::{Chat, finish_reason_name};
use sluice_sdk::config::Config;
use sluice_sdk::failure::broken_reply;
use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem};

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
        PluginInfo::new(
            "summary",
            env!("CARGO_PKG_VERSION"),
            &["summary"],
            Mode::Item,
        )
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let item = sluice_sdk::only(items)?;
        let input = input::parse(&item.payload).map_err(TaskError::Permanent)?;
        let configured = Config::host().positive::<u32>("max_tokens")?;
        let max_tokens = input::max_tokens(&input, configured);
        let (system, user) = input::prompt(&input, max_tokens);
        let response = Chat::new()
            .system(system)
            .user(user)
            .max_tokens(max_tokens)
            .temperature(0.2)
            .send(item.attempt)?;
        let summary = response.content.trim();
        if summary.is_empty() {
            return Err(broken_reply("it is empty", &response, item.attempt));
        }
        Outcome::json(&Report {
            summary,
            model: &response.model,
            usage: Usage {
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
            },
            finish_reason: finish_reason_name(response.finish_reason),
            max_tokens,
        })
    }
}

sluice_sdk::export!(Summary);
