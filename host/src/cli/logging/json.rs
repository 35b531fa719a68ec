//! JSON log lines whose values keep their types.
//!
//! `tracing-subscriber`'s own JSON output writes every field recorded with
//! `?` or `%` as a string, so a span's `items = ?ids` arrives as the string
//! `"[1, 2, 3]"`. These lines have the same shape (`timestamp`, `level`,
//! `fields`, `target`, `span`, `spans`), but integers, floats and booleans
//! are JSON numbers and booleans, and a value whose text is a JSON array or
//! object (a list or map recorded with `?`) is written as that array or
//! object. The event's `message` always stays a string.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields as a JSON object; spans keep theirs in this form between events.
#[derive(Debug, Clone, Copy)]
pub struct JsonFields;

/// One JSON object per event, on its own line.
#[derive(Debug, Clone, Copy)]
pub struct JsonLines;

/// Collects fields into a JSON object.
#[derive(Default)]
struct Values(Map<String, Value>);

impl Values {
    fn insert(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for Values {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let value = match field.name() {
            "message" => None,
            _ => structured(&text),
        };
        self.insert(field, value.unwrap_or(Value::String(text)));
    }
}

/// `text` as JSON when it is a JSON array or object.
fn structured(text: &str) -> Option<Value> {
    if !(text.starts_with('[') || text.starts_with('{')) {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|value| value.is_array() || value.is_object())
}

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut values = Values::default();
        fields.record(&mut values);
        write!(writer, "{}", Value::Object(values.0))
    }

    /// Fields recorded on a span after it was created join its object.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut values = Values(serde_json::from_str(&current.fields).unwrap_or_default());
        fields.record(&mut values);
        current.fields = Value::Object(values.0).to_string();
        Ok(())
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let mut fields = Values::default();
        event.record(&mut fields);

        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("fields".into(), Value::Object(fields.0));
        line.insert("target".into(), Value::from(meta.target()));
        let spans: Vec<Value> = ctx
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
            .map(|span| {
                let mut object: Map<String, Value> = span
                    .extensions()
                    .get::<FormattedFields<JsonFields>>()
                    .and_then(|stored| serde_json::from_str(&stored.fields).ok())
                    .unwrap_or_default();
                object.insert("name".into(), Value::from(span.name()));
                Value::Object(object)
            })
            .collect();
        if let Some(current) = spans.last() {
            line.insert("span".into(), current.clone());
            line.insert("spans".into(), Value::Array(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::structured;
    use serde_json::json;

    #[test]
    fn lists_and_maps_recorded_with_debug_become_json() {
        assert_eq!(
            structured(&format!("{:?}", vec![1, 2, 3])),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            structured(&format!("{:?}", vec!["a", "b"])),
            Some(json!(["a", "b"]))
        );
        assert_eq!(structured("[::1]:9464"), None);
        assert_eq!(structured("Some(3)"), None);
        assert_eq!(
            structured("12"),
            None,
            "a number-like string stays a string"
        );
    }
}
