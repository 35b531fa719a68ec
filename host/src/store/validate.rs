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
    // Postgres cannot store NUL characters in text, and one backend must not
    // accept what the other refuses.
    for (field, value) in [
        ("task_type", Some(&item.task_type)),
        ("work_unit_key", Some(&item.work_unit_key)),
        ("dedupe_key", item.dedupe_key.as_ref()),
    ] {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(format!("{field} contains a NUL character"));
        }
    }
    if item.payload.contains("\\u0000") && holds_nul(&item.payload) {
        return Err("payload contains a NUL character (\\u0000), which cannot be stored".into());
    }
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

/// Whether a JSON document has a NUL character in any string or key (the
/// text `\u0000` may also be an escaped backslash followed by `u0000`).
fn holds_nul(json: &str) -> bool {
    fn walk(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    serde_json::from_str(json).is_ok_and(|value| walk(&value))
}

/// Deserializes `payload` from any JSON value into its compact text, so JSON
/// lines can carry payloads as objects rather than strings-of-JSON.
pub(crate) fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = Box::<serde_json::value::RawValue>::deserialize(d)?;
    Ok(value.get().to_string())
}
