//! `[limits]`: the bounds on work a guest can make the host do for it, on the
//! host's own CPU and memory, outside the guest's deadline and memory limit.
//!
//! Each bound has a default that every bundled plugin stays well within. Per
//! call, the deadline and `memory_mib` are set per task type; these are the
//! same for every task type of the host.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::outbound::SchemaLimits;
use crate::runtime::MAX_DEPTH_ACCEPTED;
use crate::runtime::limits::{
    DEFAULT_MAX_ENQUEUE_ITEMS, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_DEPTH,
};
use crate::runtime::log_budget::{DEFAULT_BYTES_PER_CALL, DEFAULT_BYTES_PER_SECOND};

/// Every host-side bound a guest runs into. Field docs are the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest outcome (output JSON plus follow-up items), in bytes.
    pub max_output_bytes: usize,
    /// Deepest nesting of arrays and objects in an output or follow-up payload.
    pub max_output_depth: usize,
    /// Most follow-up items one outcome may enqueue.
    pub max_enqueue_items: usize,
    /// Bytes of guest log lines (`log` import, stdout, stderr; 64 bytes per
    /// line on top) one call may write before its logs are suppressed.
    pub log_bytes_per_call: usize,
    /// Bytes of guest log lines per second for all calls of this process.
    pub log_bytes_per_second: u64,
    /// Largest `json-schema` an `llm` request may carry, in bytes.
    pub schema_max_bytes: usize,
    /// Most `pattern`s and `patternProperties` keys in one schema.
    pub schema_max_patterns: usize,
    /// Most bytes of all the patterns of one schema together.
    pub schema_max_pattern_bytes: usize,
    /// Largest compiled form of one pattern, in bytes: the regex-complexity
    /// bound (`\p{L}{100}` alone is several MiB).
    pub schema_regex_bytes: usize,
    /// The longest a schema may take to compile (and a reply to be checked
    /// against it); the call's deadline bounds it too.
    #[serde(with = "humantime_serde")]
    pub schema_timeout: Duration,
    /// Compiled schemas kept per plugin, so a plugin that sends the same
    /// schema on every call compiles it once. Together they hold at most
    /// `schema_max_patterns` compiled patterns (the newest schema is kept).
    pub schema_cache_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let schema = SchemaLimits::default();
        Self {
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_output_depth: DEFAULT_MAX_OUTPUT_DEPTH,
            max_enqueue_items: DEFAULT_MAX_ENQUEUE_ITEMS,
            log_bytes_per_call: DEFAULT_BYTES_PER_CALL,
            log_bytes_per_second: DEFAULT_BYTES_PER_SECOND,
            schema_max_bytes: schema.max_bytes,
            schema_max_patterns: schema.max_patterns,
            schema_max_pattern_bytes: schema.max_pattern_bytes,
            schema_regex_bytes: schema.regex_bytes,
            schema_timeout: schema.timeout,
            schema_cache_entries: schema.cache_entries,
        }
    }
}

impl Limits {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let key = |name: &str| format!("limits.{name}");
        for (name, value) in [
            ("max_output_bytes", self.max_output_bytes),
            ("max_output_depth", self.max_output_depth),
            ("log_bytes_per_call", self.log_bytes_per_call),
            ("schema_max_bytes", self.schema_max_bytes),
            ("schema_regex_bytes", self.schema_regex_bytes),
            ("schema_cache_entries", self.schema_cache_entries),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key(name), "must be positive"));
            }
        }
        if self.log_bytes_per_second == 0 {
            return Err(ConfigError::invalid(
                key("log_bytes_per_second"),
                "must be positive",
            ));
        }
        if self.max_output_depth > MAX_DEPTH_ACCEPTED {
            return Err(ConfigError::invalid(
                key("max_output_depth"),
                format!(
                    "must be at most {MAX_DEPTH_ACCEPTED}: host tools (`sluice outputs`) could not read outputs nested deeper"
                ),
            ));
        }
        if self.schema_timeout.is_zero() {
            return Err(ConfigError::invalid(
                key("schema_timeout"),
                "must be positive",
            ));
        }
        Ok(())
    }

    /// The bounds on the `llm` import's JSON schemas.
    pub fn schema(&self) -> SchemaLimits {
        SchemaLimits {
            max_bytes: self.schema_max_bytes,
            max_patterns: self.schema_max_patterns,
            max_pattern_bytes: self.schema_max_pattern_bytes,
            regex_bytes: self.schema_regex_bytes,
            timeout: self.schema_timeout,
            cache_entries: self.schema_cache_entries,
        }
    }
}
