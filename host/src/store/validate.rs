//! Checks on items before anything is written: one set of rules for every
//! door (the CLI, the API, the SQL functions on Postgres, follow-up items
//! returned by plugins) and both backends, so no backend ever refuses an item
//! the other accepts, and the error names the field at fault.
//!
//! The limits are what both backends store and index without complaint:
//! Postgres refuses index rows over about 2,700 bytes (a long key) and
//! `NOTIFY` payloads of 8,000 bytes (a long task type), and cannot hold NUL
//! characters or lone surrogates in text or `jsonb`. The Postgres SQL
//! functions (migration 0006) check the same limits; a test holds the two
//! in step.

use std::time::Duration;

use super::{NewItem, RunAfter, StoreError};

/// Longest task type, in bytes.
pub const MAX_TASK_TYPE_BYTES: usize = 128;
/// Longest work unit key or dedupe key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Deepest nesting of arrays and objects in a payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;
/// Latest `run_after`: the last millisecond of the year 9999.
const MAX_RUN_AFTER_MS: i64 = 253_402_300_799_999;
/// Longest `delay`: ten years.
const MAX_DELAY: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Checks every item; the first bad one is reported with its index.
pub(crate) fn items(items: &[NewItem], max_payload_bytes: usize) -> Result<(), StoreError> {
    for (index, item) in items.iter().enumerate() {
        one(item, max_payload_bytes).map_err(|reason| StoreError::InvalidItem { index, reason })?;
    }
    Ok(())
}

/// Checks a task type as every door takes it: not blank, within
/// [`MAX_TASK_TYPE_BYTES`], no control characters.
pub(crate) fn task_type(value: &str) -> Result<(), String> {
    text("task_type", value, MAX_TASK_TYPE_BYTES)?;
    if value.chars().any(char::is_control) {
        return Err("task_type contains a control character".into());
    }
    Ok(())
}

fn one(item: &NewItem, max_payload_bytes: usize) -> Result<(), String> {
    task_type(&item.task_type)?;
    text("work_unit_key", &item.work_unit_key, MAX_KEY_BYTES)?;
    if let Some(key) = &item.dedupe_key {
        text("dedupe_key", key, MAX_KEY_BYTES)
            .map_err(|reason| format!("{reason} (omit dedupe_key for none)"))?;
    }
    if item.payload.len() > max_payload_bytes {
        return Err(format!(
            "payload is {} bytes, over the limit of {max_payload_bytes} bytes",
            item.payload.len()
        ));
    }
    let too_deep = || {
        crate::runtime::json_depth::deeper_than(&item.payload, MAX_PAYLOAD_DEPTH)
            .then(|| format!("payload nests deeper than {MAX_PAYLOAD_DEPTH} levels"))
    };
    // Parsing into values (not skipping over them) refuses lone surrogates
    // and numbers out of range.
    let payload: serde_json::Value = serde_json::from_str(&item.payload)
        .map_err(|err| too_deep().unwrap_or_else(|| format!("payload is not valid JSON: {err}")))?;
    if let Some(reason) = too_deep() {
        return Err(reason);
    }
    if holds_nul(&payload) {
        return Err("payload contains a NUL character (\\u0000), which cannot be stored".into());
    }
    match item.run_after {
        Some(RunAfter::At(ms)) if !(0..=MAX_RUN_AFTER_MS).contains(&ms) => {
            Err("run_after is outside the years 1970 to 9999".into())
        }
        Some(RunAfter::Delay(delay)) if delay > MAX_DELAY => Err(format!(
            "delay is {}, over the limit of ten years; use run_after for a fixed time",
            humantime::format_duration(delay)
        )),
        _ => Ok(()),
    }
}

/// A task type or key: not blank, within `max` bytes, no NUL characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.len() > max {
        return Err(format!(
            "{field} is {} bytes, over the limit of {max} bytes",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    Ok(())
}

/// Whether a JSON value has a NUL character in any string or key.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}
