//! Per-task-type settings: what `[defaults]` sets for every task type and what a
//! `[tasks.<type>]` section may override, plus the values handed to the plugin.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::outbound::{TaskHttpConfig, TaskLlmConfig};
use crate::store::{BatchLimits, Gate, RetryPolicy};

/// The longest call timeout, backoff or gate wait accepted: a week.
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest memory limit accepted: 64 GiB.
const MAX_MEMORY_MIB: u64 = 64 << 10;

/// Everything that decides how one task type's units run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// Deadline for one plugin call (one batch or one item), host calls included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before an item is dead-lettered; the first try counts.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each attempt.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Most items in one call of a batch-mode plugin (item-mode plugins get one).
    pub batch_max_items: u32,
    /// Most `tokens` in one batch; a batch always holds at least one item.
    pub batch_max_tokens: u64,
    /// Hold a unit back until this many tokens are pending (or `gate_max_wait` passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_min_tokens: Option<u64>,
    /// Hold a unit back until its oldest item has waited this long (or `gate_min_tokens` is reached).
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub gate_max_wait: Option<Duration>,
    /// Linear memory one call may use, in MiB.
    pub memory_mib: u64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            timeout: crate::runtime::limits::DEFAULT_TIMEOUT,
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            batch_max_items: 100,
            batch_max_tokens: 100_000,
            gate_min_tokens: None,
            gate_max_wait: None,
            memory_mib: crate::runtime::limits::DEFAULT_MEMORY_BYTES >> 20,
        }
    }
}

impl TaskSettings {
    pub(super) fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{section}.{name}");
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(ConfigError::invalid(
                key("timeout"),
                "must be positive and at most a week",
            ));
        }
        if self.backoff_max > MAX_TIMEOUT {
            return Err(ConfigError::invalid(
                key("backoff_max"),
                "must be at most a week",
            ));
        }
        if self.gate_max_wait.is_some_and(|wait| wait > MAX_TIMEOUT) {
            return Err(ConfigError::invalid(
                key("gate_max_wait"),
                "must be at most a week",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid(
                key("max_attempts"),
                "must be at least 1 (the first try counts)",
            ));
        }
        if self.backoff_base > self.backoff_max {
            return Err(ConfigError::invalid(
                key("backoff_base"),
                "must not exceed `backoff_max`",
            ));
        }
        if self.batch_max_items == 0 {
            return Err(ConfigError::invalid(
                key("batch_max_items"),
                "must be at least 1",
            ));
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.memory_mib) {
            return Err(ConfigError::invalid(
                key("memory_mib"),
                format!("must be between 1 and {MAX_MEMORY_MIB}"),
            ));
        }
        Ok(())
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }

    pub fn gate(&self) -> Gate {
        Gate {
            min_tokens: self.gate_min_tokens,
            max_wait: self.gate_max_wait,
        }
    }

    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_items: self.batch_max_items,
            max_tokens: self.batch_max_tokens,
        }
    }
}

/// A `[tasks.<type>]` section: overrides of [`TaskSettings`] (unset keys take
/// `[defaults]`) and the values the plugin reads through the `config` import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub backoff_base: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub backoff_max: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_max_items: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_min_tokens: Option<u64>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub gate_max_wait: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Values for the plugin's `config.get`, such as a webhook URL.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The LLM provider and models the plugin may use.
    pub llm: TaskLlmConfig,
    /// The hosts the plugin may reach with `http`.
    pub http: TaskHttpConfig,
    /// The task types this one may enqueue follow-up items for (`["*"]`: any).
    /// Unset: the task types of its own plugin. See docs/authoring.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub may_enqueue: Option<Vec<String>>,
}

impl TaskSection {
    /// The effective settings: this section's values over `defaults`.
    pub fn resolve(&self, defaults: &TaskSettings) -> TaskSettings {
        TaskSettings {
            timeout: self.timeout.unwrap_or(defaults.timeout),
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts),
            backoff_base: self.backoff_base.unwrap_or(defaults.backoff_base),
            backoff_max: self.backoff_max.unwrap_or(defaults.backoff_max),
            batch_max_items: self.batch_max_items.unwrap_or(defaults.batch_max_items),
            batch_max_tokens: self.batch_max_tokens.unwrap_or(defaults.batch_max_tokens),
            gate_min_tokens: self.gate_min_tokens.or(defaults.gate_min_tokens),
            gate_max_wait: self.gate_max_wait.or(defaults.gate_max_wait),
            memory_mib: self.memory_mib.unwrap_or(defaults.memory_mib),
        }
    }
}

impl TaskSection {
    pub(super) fn validate_may_enqueue(&self, section: &str) -> Result<(), ConfigError> {
        for (index, task_type) in self.may_enqueue.iter().flatten().enumerate() {
            if task_type.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{section}.may_enqueue[{index}]"),
                    "is empty: name a task type, or \"*\" for any",
                ));
            }
        }
        Ok(())
    }
}

/// Refuses a `[tasks.<type>.llm]` table written without any key. It reads as
/// "this task type uses an LLM" yet grants nothing, so every `llm` call would
/// be denied at run time; serde cannot tell it from an absent table, so the
/// merged sources are inspected before they are extracted.
pub(super) fn refuse_empty_llm(figment: &figment::Figment) -> Result<(), ConfigError> {
    use figment::value::Value;
    let Ok(Value::Dict(_, tasks)) = figment.find_value("tasks") else {
        return Ok(());
    };
    for (task_type, section) in &tasks {
        if let Value::Dict(_, section) = section
            && let Some(Value::Dict(_, llm)) = section.get("llm")
            && llm.is_empty()
        {
            return Err(ConfigError::invalid(
                format!("tasks.{task_type}.llm"),
                "is empty, so every `llm` call of this task type would be denied: set                  `provider` (a name under [llm.providers]) and `model`, or remove the section",
            ));
        }
    }
    Ok(())
}
