//! The `representation` task plugin (batch mode): derives explicit, atomic,
//! self-contained facts about a conversation's observed peer from a batch of
//! its chat messages, with one LLM call per observed peer in the batch.
//!
//! This file is the WebAssembly glue: it reads the config, calls `llm` and
//! assembles the outcome. The logic lives in plain modules that are unit
//! tested natively (`cargo test -p sluice-plugin-representation`). The
//! payload, prompt and output formats are documented in README.md.

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler",
});

mod failure;
mod messages;
mod output;
mod prompt;
mod reply;

use sluice::task::types::Mode;
use sluice::task::{config, llm, log};

/// The token budget for the reply unless the operator sets `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 2048;

struct Representation;

impl Guest for Representation {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "representation".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: vec!["representation".into()],
            mode: Mode::Batch,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        // A batch is retried as a whole and its head item is the one that is
        // dead-lettered, so the head's attempt decides the retry policy.
        let attempt = items
            .first()
            .ok_or_else(|| TaskError::Permanent("no items".into()))?
            .attempt;
        let max_tokens = max_tokens()?;
        let batch = messages::group(items.iter().map(|i| (i.id, i.payload.as_str())))
            .map_err(TaskError::Permanent)?;
        for skipped in &batch.skipped {
            log::log(
                log::Level::Warn,
                &format!("skipping item {}: {}", skipped.item_id, skipped.error),
            );
        }
        let mut report = output::Report::default();
        for group in &batch.groups {
            let Some(prompt) = prompt::build(group) else {
                continue;
            };
            let response = llm::complete(&llm::Request {
                model: None,
                messages: vec![
                    llm::Message {
                        role: llm::Role::System,
                        content: prompt.system,
                    },
                    llm::Message {
                        role: llm::Role::User,
                        content: prompt.user,
                    },
                ],
                max_tokens: Some(max_tokens),
                temperature: Some(0.0),
                stop: Vec::new(),
                json_schema: Some(prompt::REPLY_SCHEMA.into()),
            })
            .map_err(|e| failure::llm_error(&e, attempt))?;
            let observations = reply::parse(&response.content, &group.observed, &prompt.citable)
                .map_err(|reason| failure::broken_reply(&reason, &response, attempt))?;
            log::log(
                log::Level::Info,
                &format!(
                    "{} observations about {} from {} messages",
                    observations.len(),
                    group.observed,
                    group.messages.len()
                ),
            );
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

/// The operator's `max_tokens`, if set; a bad value is a permanent error
/// that names the key.
fn max_tokens() -> Result<u32, TaskError> {
    match config::get("max_tokens") {
        None => Ok(DEFAULT_MAX_TOKENS),
        Some(value) => value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                TaskError::Permanent(format!(
                    "config value `max_tokens` must be a positive integer, got {value:?}"
                ))
            }),
    }
}

export!(Representation);
