//! How an item is written in JSON, for every door that reads JSON (JSON
//! lines on stdin, the HTTP API): the payload as any JSON value, and the
//! optional start as `run_after` (an RFC 3339 time) or `delay` (a duration
//! such as "90s" or "2h 30m"), never both. The Postgres SQL functions read
//! the same two fields the same way (migration 0006).

use std::time::Duration;

use serde::Deserialize;

use super::{NewItem, RunAfter};

/// An item as read from JSON, before it becomes a [`NewItem`]. Fields are
/// read as JSON values and checked here, so that an error names the field
/// (serde's own type errors do not).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an item: a JSON object with task_type, work_unit_key and payload"
)]
#[schema(as = Item)]
pub(crate) struct ItemInput {
    /// Which plugin runs it: 1 to 128 bytes, no control characters.
    #[schema(value_type = String, min_length = 1, max_length = 128)]
    task_type: serde_json::Value,
    /// Its work unit: 1 to 1,024 bytes.
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    work_unit_key: serde_json::Value,
    /// Any JSON, at most `max_payload_bytes` and 64 levels deep.
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
    /// A size hint for batching, 0 to 4294967295.
    #[serde(default)]
    #[schema(value_type = Option<u32>)]
    tokens: Option<serde_json::Value>,
    /// Not enqueued while a pending item of the task type has this key: 1 to 1,024 bytes.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    dedupe_key: Option<serde_json::Value>,
    /// Not run before this RFC 3339 time; the unit's later items wait behind it.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    run_after: Option<serde_json::Value>,
    /// Not run before this long from now ("90s", "1h 30m"); not with run_after.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    delay: Option<serde_json::Value>,
}

impl TryFrom<ItemInput> for NewItem {
    type Error = String;

    fn try_from(input: ItemInput) -> Result<Self, String> {
        let run_after = match (
            optional_string("run_after", input.run_after)?,
            optional_string("delay", input.delay)?,
        ) {
            (Some(_), Some(_)) => return Err("give run_after or delay, not both".into()),
            (Some(at), None) => Some(RunAfter::At(parse_time(&at)?)),
            (None, Some(delay)) => Some(RunAfter::Delay(parse_delay(&delay)?)),
            (None, None) => None,
        };
        let tokens = match input.tokens {
            None | Some(serde_json::Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("tokens must be a whole number from 0 to 4294967295")?,
        };
        Ok(NewItem {
            task_type: string("task_type", input.task_type)?,
            work_unit_key: string("work_unit_key", input.work_unit_key)?,
            payload: input.payload.get().to_string(),
            tokens,
            dedupe_key: optional_string("dedupe_key", input.dedupe_key)?,
            run_after,
        })
    }
}

fn string(field: &str, value: serde_json::Value) -> Result<String, String> {
    match value {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(format!("{field} must be a string")),
    }
}

fn optional_string(
    field: &str,
    value: Option<serde_json::Value>,
) -> Result<Option<String>, String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => string(field, value).map(Some),
    }
}

/// An RFC 3339 time ("2026-12-01T09:30:00Z", "2026-12-01T10:30:00+01:00")
/// in ms since the Unix epoch.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let bad = |why: String| {
        format!("run_after `{text}` is not an RFC 3339 time such as 2026-12-01T09:30:00Z ({why})")
    };
    // humantime reads UTC only: take a numeric offset off and apply it.
    let (utc, offset_s) = match split_offset(text) {
        Some((time, offset_s)) => (format!("{time}Z"), offset_s),
        None => (text.to_string(), 0),
    };
    let at = humantime::parse_rfc3339(&utc).map_err(|err| bad(err.to_string()))?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad("before 1970".into()))?
        .as_millis();
    i64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_sub(offset_s * 1000))
        .ok_or_else(|| bad("out of range".into()))
}

/// `2026-12-01T10:30:00+01:00` into the time and the offset in seconds.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    let at = text.len().checked_sub(6)?;
    let (time, offset) = (text.get(..at)?, text.get(at..)?.as_bytes());
    let sign = match offset[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if offset[3] != b':' || !time.contains('T') {
        return None;
    }
    let digits = |d: &[u8]| std::str::from_utf8(d).ok()?.parse::<i64>().ok();
    let (hours, minutes) = (digits(&offset[1..3])?, digits(&offset[4..6])?);
    Some((time, sign * (hours * 3600 + minutes * 60)))
}

/// A duration such as "90s", "15m", "1h 30m" or "500ms": whole numbers of
/// `ms`, `s`, `m`, `h` or `d`. Deliberately narrow, so that the Postgres SQL
/// functions (which hand it to `interval`) read it the same way.
pub(crate) fn parse_delay(text: &str) -> Result<Duration, String> {
    let bad = || format!("delay `{text}` is not a duration such as 90s, 15m, 1h 30m or 500ms");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let count: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..letters] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = rest[letters..].trim_start();
        let ms = count.checked_mul(unit_ms).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(bad)?;
    }
    Ok(total)
}
