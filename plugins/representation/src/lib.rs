//! The `representation` task plugin (batch mode): derives explicit, atomic,
//! self-contained facts about a conversation's observed peer from a batch of
//! its chat messages, with one LLM call per observed peer in the batch.
//!
//! This file is the WebAssembly glue, on the `sluice-sdk` crate: it reads the
//! config, calls `llm` and assembles the outcome. The logic lives in plain
//! modules that are unit tested natively
//! (`cargo test -p sluice-plugin-representation`). The payload, prompt and
//! output formats are documented in README.md. Failed calls are classified by
//! the SDK's standard mapping; an unusable reply is retried once, then
//! permanent, with the raw reply in the message.

mod messages;
mod output;
mod prompt;
mod reply;

use sluice_sdk::chat::Chat;
use sluice_sdk::config::Config;
use sluice_sdk::failure::broken_reply;
use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem, log};

/// The token budget for the reply unless the operator sets `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 2048;

struct Representation;

impl Guest for Representation {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "representation",
            env!("CARGO_PKG_VERSION"),
            &["representation"],
            Mode::Batch,
        )
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        // A batch is retried as a whole and its head item is the one that is
        // dead-lettered, so the head's attempt decides the retry policy.
        let attempt = items
            .first()
            .ok_or_else(|| TaskError::Permanent("no items".into()))?
            .attempt;
        let max_tokens = Config::host()
            .positive::<u32>("max_tokens")?
            .unwrap_or(DEFAULT_MAX_TOKENS);
        let batch = messages::group(items.iter().map(|i| (i.id, i.payload.as_str())))
            .map_err(TaskError::Permanent)?;
        for skipped in &batch.skipped {
            log::warn(format!(
                "skipping item {}: {}",
                skipped.item_id, skipped.error
            ));
        }
        let mut report = output::Report::default();
        for group in &batch.groups {
            let Some(prompt) = prompt::build(group) else {
                continue;
            };
            let response = Chat::new()
                .system(prompt.system)
                .user(prompt.user)
                .max_tokens(max_tokens)
                .temperature(0.0)
                .json_schema(prompt::REPLY_SCHEMA)
                .send(attempt)?;
            let observations = reply::parse(&response.content, &group.observed, &prompt.citable)
                .map_err(|reason| broken_reply(&reason, &response, attempt))?;
            log::info(format!(
                "{} observations about {} from {} messages",
                observations.len(),
                group.observed,
                group.messages.len()
            ));
            report.add_call(
                observations,
                &response.model,
                response.usage.input_tokens,
                response.usage.output_tokens,
            );
        }
        report.skipped = batch.skipped;
        Ok(Outcome {
            output: Some(report.to_json()),
            enqueue: Vec::new(),
        })
    }
}

sluice_sdk::export!(Representation);
