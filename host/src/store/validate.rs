//! Checks on items before anything is written: the same rules for the CLI, the
//! API and follow-up items returned by plugins.

use serde::Deserialize;

use super::{NewItem, StoreError};

/// Checks every item; the first bad one is reported with its index.
pub(crate) fn items(items: &[NewItem], max_payload_bytes: usize) -> Result<(), StoreError> {
    for (index, item) in items.iter().enumerate() {
        one(item, max_payload_bytes).map_err(|reason| StoreError::InvalidItem { index, reason })?;
    }
    Ok(())
}

fn one(item: &NewItem, max_payload_bytes: usize) -> Result<(), String> {
    if item.task_type.trim().is_empty() {
        return Err("task_type is empty".into());
    }
    if item.work_unit_key.trim().is_empty() {
        return Err("work_unit_key is empty".into());
    }
    if item
        .dedupe_key
        .as_deref()
        .is_some_and(|k| k.trim().is_empty())
    {
        return Err("dedupe_key is empty; omit it instead".into());
    }
    if item.payload.len() > max_payload_bytes {
        return Err(format!(
            "payload is {} bytes, over the limit of {max_payload_bytes} bytes",
            item.payload.len()
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&item.payload)
        .map_err(|err| format!("payload is not valid JSON: {err}"))?;
    Ok(())
}

/// Deserializes `payload` from any JSON value into its compact text, so JSON
/// lines can carry payloads as objects rather than strings-of-JSON.
pub(crate) fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = Box::<serde_json::value::RawValue>::deserialize(d)?;
    Ok(value.get().to_string())
}
