//! Payloads in and outputs out through serde: the part of every `process`
//! that turns the contract's JSON strings into the plugin's own types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Mode, NewItem, Outcome, PluginInfo, TaskError, WorkItem};

/// The one item of an item-mode call (the host always sends exactly one).
pub fn only(items: Vec<WorkItem>) -> Result<WorkItem, TaskError> {
    let count = items.len();
    let mut items = items.into_iter();
    match (items.next(), count) {
        (Some(item), 1) => Ok(item),
        _ => Err(TaskError::Permanent(format!(
            "expected exactly one item, got {count}: describe this plugin with `Mode::Item`"
        ))),
    }
}

impl WorkItem {
    /// The payload parsed into `T`. A payload of another shape is a permanent
    /// error naming the item and what serde found wrong, since retrying the
    /// same payload cannot help.
    pub fn parse_payload<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_str(&self.payload).map_err(|e| {
            TaskError::Permanent(format!(
                "item {}: the payload does not have the expected shape: {e}",
                self.id
            ))
        })
    }
}

impl Outcome {
    /// An outcome whose output is `value` as JSON, enqueueing nothing.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, TaskError> {
        Ok(Self {
            output: Some(to_json(value, "the output")?),
            enqueue: Vec::new(),
        })
    }

    /// An outcome without output: the items are simply marked done.
    pub fn done() -> Self {
        Self {
            output: None,
            enqueue: Vec::new(),
        }
    }

    /// Adds a follow-up item, enqueued in the same transaction as the outcome.
    pub fn and_enqueue(mut self, item: NewItem) -> Self {
        self.enqueue.push(item);
        self
    }
}

impl NewItem {
    /// A follow-up item whose payload is `payload` as JSON.
    pub fn json<T: Serialize + ?Sized>(
        task_type: impl Into<String>,
        work_unit_key: impl Into<String>,
        payload: &T,
    ) -> Result<Self, TaskError> {
        Ok(Self {
            task_type: task_type.into(),
            work_unit_key: work_unit_key.into(),
            payload: to_json(payload, "a follow-up payload")?,
        })
    }
}

impl PluginInfo {
    /// What `describe` returns: the plugin's name and version, the task types
    /// it handles and how it wants its items delivered.
    pub fn new(name: &str, version: &str, task_types: &[&str], mode: Mode) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            task_types: task_types.iter().map(|t| t.to_string()).collect(),
            mode,
        }
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, TaskError> {
    serde_json::to_string(value)
        .map_err(|e| TaskError::Permanent(format!("{what} cannot be written as JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn item(payload: &str) -> WorkItem {
        WorkItem {
            id: 7,
            task_type: "t".into(),
            work_unit_key: "k".into(),
            payload: payload.into(),
            attempt: 1,
            enqueued_at_ms: 0,
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Text {
        text: String,
    }

    #[test]
    fn payloads_parse_into_types_and_a_wrong_shape_is_permanent() {
        assert_eq!(
            item(r#"{"text":"hi"}"#).parse_payload::<Text>().unwrap(),
            Text { text: "hi".into() }
        );
        let Err(TaskError::Permanent(m)) = item(r#"{"txt":"hi"}"#).parse_payload::<Text>() else {
            panic!("a missing field should be permanent");
        };
        assert!(
            m.contains("item 7") && m.contains("missing field `text`"),
            "{m}"
        );
    }

    #[test]
    fn outputs_and_follow_ups_are_json() {
        let outcome = Outcome::json(&serde_json::json!({"n": 1}))
            .unwrap()
            .and_enqueue(NewItem::json("next", "k2", &[1, 2]).unwrap());
        assert_eq!(outcome.output.as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(outcome.enqueue[0].payload, "[1,2]");
        assert_eq!(outcome.enqueue[0].task_type, "next");
        assert!(Outcome::done().output.is_none());
    }

    #[test]
    fn item_mode_gets_exactly_one_item() {
        assert_eq!(only(vec![item("1")]).unwrap().payload, "1");
        for items in [vec![], vec![item("1"), item("2")]] {
            let Err(TaskError::Permanent(m)) = only(items) else {
                panic!("expected a permanent error");
            };
            assert!(m.contains("Mode::Item"), "{m}");
        }
    }
}
