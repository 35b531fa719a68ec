//! Contract tests for plugins: sample items run through each plugin exactly as
//! the host would run them, and every outcome checked against the contract.
//!
//! A plugin passes when each sample ends in one of the outcomes the contract
//! documents for a working plugin: `ok`, or a classified `retryable` or
//! `permanent` error (the classification is reported for the author to judge).
//! A `trap`, a `timeout` or an `invalid-output` fails it. Outbound calls are
//! denied ([`DenyAll`]), so a plugin that needs `llm` or `http` shows how it
//! classifies a refusal. `sluice plugins check DIR --samples FILE` is the
//! command-line face of this module.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::bindings::types::WorkItem;
use super::limits::CallLimits;
use super::outcome::CallOutcome;
use super::registry::{PluginMode, Registry};
use super::{CallRequest, Cancellation};
use crate::imports::{DenyAll, TaskConfig};
use crate::outbound::UsageMeter;

/// One sample item: a line of a samples file.
#[derive(Debug, Clone)]
pub struct Sample {
    /// 1-based line number in the file; also the item's id in the call.
    pub line: usize,
    pub task_type: String,
    pub work_unit_key: String,
    /// The JSON payload, as written.
    pub payload: String,
    /// The attempt the item is on (default 1), to exercise retry policies.
    pub attempt: u32,
}

/// A sample line as written: `{"task_type", "work_unit_key", "payload", "attempt"?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleLine {
    task_type: String,
    work_unit_key: String,
    payload: Box<RawValue>,
    #[serde(default = "first_attempt")]
    attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// Parses a samples file: one JSON object per line, blank lines ignored.
/// The error names the first bad line and what a good one looks like.
pub fn parse_samples(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed: SampleLine = serde_json::from_str(raw).map_err(|e| {
            format!(
                "line {line}: {e}; expected {{\"task_type\": \"...\", \"work_unit_key\": \"...\", \
                 \"payload\": {{...}}}} with an optional \"attempt\""
            )
        })?;
        if parsed.task_type.trim().is_empty() || parsed.work_unit_key.trim().is_empty() {
            return Err(format!(
                "line {line}: `task_type` and `work_unit_key` must not be empty"
            ));
        }
        if parsed.attempt == 0 {
            return Err(format!("line {line}: `attempt` starts at 1"));
        }
        samples.push(Sample {
            line,
            task_type: parsed.task_type,
            work_unit_key: parsed.work_unit_key,
            payload: parsed.payload.get().to_string(),
            attempt: parsed.attempt,
        });
    }
    Ok(samples)
}

/// What one sample call showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The outcome is one the contract allows.
    Pass,
    /// A trap, a timeout, an invalid output, or a call that could not be made.
    Fail,
    /// No loaded plugin handles the sample's task type.
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// The result of one call: a single sample, or for a batch plugin every
/// sample of one task type and work unit key, in file order.
#[derive(Debug)]
pub struct SampleResult {
    pub lines: Vec<usize>,
    pub task_type: String,
    pub work_unit_key: String,
    pub verdict: Verdict,
    /// The outcome's kind (`ok`, `permanent`, `trap`, ...) and what it said.
    pub detail: String,
}

impl fmt::Display for SampleResult {
    /// `pass   line 3 summary [key conv-1]: ok {"summary":...}`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.lines.iter().map(usize::to_string).collect();
        let noun = if self.lines.len() == 1 {
            "line"
        } else {
            "lines"
        };
        write!(
            f,
            "{:<6} {noun} {} {} [key {}]: {}",
            self.verdict.as_str(),
            lines.join(","),
            self.task_type,
            self.work_unit_key,
            self.detail
        )
    }
}

/// Runs every sample through the registry's plugins, one call at a time, each
/// under `timeout` and otherwise default limits, with outbound calls denied.
pub async fn run_samples(
    registry: &Registry,
    samples: &[Sample],
    timeout: Duration,
) -> Vec<SampleResult> {
    let mut results = Vec::new();
    for call in plan(registry, samples) {
        let first = call[0];
        let lines = call.iter().map(|s| s.line).collect();
        let Some(plugin) = registry.get(&first.task_type) else {
            results.push(SampleResult {
                lines,
                task_type: first.task_type.clone(),
                work_unit_key: first.work_unit_key.clone(),
                verdict: Verdict::Skip,
                detail: format!(
                    "no plugin handles task type `{}` (loaded: {})",
                    first.task_type,
                    registry.task_types().collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        };
        let items = call
            .iter()
            .map(|s| WorkItem {
                id: s.line as u64,
                task_type: s.task_type.clone(),
                work_unit_key: s.work_unit_key.clone(),
                payload: s.payload.clone(),
                attempt: s.attempt,
                enqueued_at_ms: 0,
            })
            .collect();
        let outcome = plugin
            .call(CallRequest {
                items,
                limits: CallLimits {
                    timeout,
                    ..CallLimits::default()
                },
                task_config: TaskConfig::default(),
                outbound: Arc::new(DenyAll),
                cancel: Cancellation::never(),
                usage: UsageMeter::default(),
            })
            .await;
        let (verdict, detail) = match outcome {
            Ok(outcome) => judge(&outcome),
            Err(err) => (Verdict::Fail, format!("the call could not be made: {err}")),
        };
        results.push(SampleResult {
            lines,
            task_type: first.task_type.clone(),
            work_unit_key: first.work_unit_key.clone(),
            verdict,
            detail,
        });
    }
    results
}

/// Whether every result passed or was skipped.
pub fn all_passed(results: &[SampleResult]) -> bool {
    results.iter().all(|r| r.verdict != Verdict::Fail)
}

/// Groups samples into calls: one per sample for item plugins (and unknown
/// task types), one per task type and key for batch plugins, in file order of
/// each call's first sample.
fn plan<'a>(registry: &Registry, samples: &'a [Sample]) -> Vec<Vec<&'a Sample>> {
    let mut calls: Vec<Vec<&Sample>> = Vec::new();
    let mut batches: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for sample in samples {
        let batch = registry
            .get(&sample.task_type)
            .is_some_and(|p| p.mode == PluginMode::Batch);
        if batch {
            let key = (sample.task_type.as_str(), sample.work_unit_key.as_str());
            if let Some(&index) = batches.get(&key) {
                calls[index].push(sample);
                continue;
            }
            batches.insert(key, calls.len());
        }
        calls.push(vec![sample]);
    }
    calls
}

/// Longest excerpt of an output or message shown in a result.
const MAX_DETAIL_CHARS: usize = 300;

fn judge(outcome: &CallOutcome) -> (Verdict, String) {
    let kind = outcome.kind();
    match outcome {
        CallOutcome::Ok(out) => {
            let output = out.output.as_ref().map_or("(no output)", |o| o.get());
            let enqueued = match out.enqueue.len() {
                0 => String::new(),
                n => format!(" (+{n} enqueued)"),
            };
            (Verdict::Pass, format!("{kind} {}{enqueued}", cut(output)))
        }
        CallOutcome::Retryable { message } | CallOutcome::Permanent { message } => {
            (Verdict::Pass, format!("{kind}: {}", cut(message)))
        }
        CallOutcome::Timeout { timeout_ms } => (
            Verdict::Fail,
            format!("{kind}: still running at its {timeout_ms} ms deadline"),
        ),
        CallOutcome::Trap { cause, message } => (
            Verdict::Fail,
            format!("{kind} ({cause:?}): {}", cut(message)),
        ),
        CallOutcome::InvalidOutput { reason } => (Verdict::Fail, format!("{kind}: {reason}")),
    }
}

fn cut(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_DETAIL_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines_are_parsed_and_blank_lines_skipped() {
        let samples = parse_samples(
            "{\"task_type\":\"t\",\"work_unit_key\":\"k\",\"payload\":{\"a\": 1}}\n\n\
             {\"task_type\":\"t\",\"work_unit_key\":\"k\",\"payload\":2,\"attempt\":3}\n",
        )
        .unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!((samples[0].line, samples[0].attempt), (1, 1));
        assert_eq!(samples[0].payload, "{\"a\": 1}");
        assert_eq!((samples[1].line, samples[1].attempt), (3, 3));
    }

    #[test]
    fn a_bad_line_is_named() {
        for (text, expected) in [
            ("\n{\"task_type\":\"t\"}", "line 2: missing field"),
            ("not json", "line 1:"),
            (
                "{\"task_type\":\" \",\"work_unit_key\":\"k\",\"payload\":1}",
                "must not be empty",
            ),
            (
                "{\"task_type\":\"t\",\"work_unit_key\":\"k\",\"payload\":1,\"attempt\":0}",
                "starts at 1",
            ),
            (
                "{\"task_type\":\"t\",\"work_unit_key\":\"k\",\"payload\":1,\"extra\":0}",
                "unknown field",
            ),
        ] {
            let error = parse_samples(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn long_details_are_cut() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_DETAIL_CHARS + 1);
        assert_eq!(cut(&long).chars().count(), MAX_DETAIL_CHARS + 3);
    }
}
