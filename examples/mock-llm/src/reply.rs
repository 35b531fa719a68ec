//! Deterministic replies: the same request always gets the same answer.
//!
//! A request with a JSON schema gets a JSON document shaped by the schema,
//! with strings cut from the prompt and integer arrays filled with the numbers
//! the prompt mentions (or 1, 2, 3). A plain request gets a summary-like line
//! built from the prompt. Token counts are whitespace-separated words.

use serde_json::{Map, Value, json};

/// What the mock answers, before it is put in either API's wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub content: String,
    /// Whether the content was cut at the request's `max_tokens`.
    pub truncated: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What a reply is built from, the same for both APIs.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    /// Every message's text, in order.
    pub texts: Vec<String>,
    /// The last user message (the prompt faults match against).
    pub last_user: String,
    pub max_tokens: Option<u64>,
    pub schema: Option<Value>,
}

/// Words, as the mock counts tokens.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The reply to `prompt`.
pub fn reply(prompt: &Prompt) -> Reply {
    let input_tokens = prompt.texts.iter().map(|t| count_tokens(t) + 1).sum();
    if let Some(schema) = &prompt.schema {
        let mut pieces = Pieces::new(&prompt.last_user);
        let value = shape(schema, &mut pieces, 0);
        let content = value.to_string();
        return Reply {
            output_tokens: count_tokens(&content).max(1),
            content,
            truncated: false,
            input_tokens,
        };
    }
    let words: Vec<&str> = prompt.last_user.split_whitespace().collect();
    let head = words.iter().take(12).copied().collect::<Vec<_>>().join(" ");
    let mut content = format!("Summary of {} words: {head}", words.len());
    let mut truncated = false;
    if let Some(max) = prompt.max_tokens {
        let reply_words: Vec<&str> = content.split_whitespace().collect();
        if reply_words.len() as u64 > max {
            content = reply_words[..max as usize].join(" ");
            truncated = true;
        }
    }
    Reply {
        output_tokens: count_tokens(&content),
        content,
        truncated,
        input_tokens,
    }
}

/// Hands out sentences of the prompt in turn, and the numbers it mentions.
struct Pieces {
    sentences: Vec<String>,
    next: usize,
    numbers: Vec<i64>,
}

impl Pieces {
    /// A transcript in the representation plugin's format (`[N] ... | NAME
    /// (observed): TEXT`) gives the observed peer's messages and their
    /// numbers, so the demo's observations read like facts; any other prompt
    /// gives all its sentences and numbers.
    fn new(text: &str) -> Self {
        let observed: Vec<(Option<i64>, &str)> = text
            .lines()
            .filter_map(|line| {
                let (head, said) = line.split_once("(observed): ")?;
                let number = head
                    .strip_prefix('[')
                    .and_then(|rest| rest.split_once(']'))
                    .and_then(|(n, _)| n.parse().ok());
                Some((number, said))
            })
            .collect();
        let source = if observed.is_empty() {
            text.to_string()
        } else {
            observed
                .iter()
                .map(|(_, said)| *said)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let sentences: Vec<String> = source
            .split(['.', '!', '?', '\n'])
            .map(|s| s.trim().chars().take(200).collect::<String>())
            .filter(|s| !s.is_empty())
            .collect();
        let numbers = if observed.is_empty() {
            text.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect()
        } else {
            observed.iter().filter_map(|(n, _)| *n).collect()
        };
        Self {
            sentences,
            next: 0,
            numbers,
        }
    }

    fn sentence(&mut self) -> String {
        if self.sentences.is_empty() {
            return "nothing to say".into();
        }
        let s = self.sentences[self.next % self.sentences.len()].clone();
        self.next += 1;
        s
    }

    fn integers(&self, count: usize) -> Vec<Value> {
        if self.numbers.is_empty() {
            (1..=count as i64).map(Value::from).collect()
        } else {
            self.numbers.iter().take(count).map(|&n| n.into()).collect()
        }
    }
}

/// A value valid against `schema` (the common subset: type, properties,
/// required, items, min/maxItems, enum, const, anyOf/oneOf/allOf).
fn shape(schema: &Value, pieces: &mut Pieces, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        return json!("anything");
    };
    if let Some(value) = obj.get("const") {
        return value.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = obj
            .get(key)
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return shape(first, pieces, depth + 1);
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") => "array",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    out.insert(name.clone(), shape(prop, pieces, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1) as usize;
            let max = obj.get("maxItems").and_then(Value::as_u64).unwrap_or(3) as usize;
            let count = 3.clamp(min, max.max(min));
            let items = obj.get("items").cloned().unwrap_or(json!({}));
            if items.get("type").and_then(Value::as_str) == Some("integer") {
                let mut numbers = pieces.integers(count);
                numbers.resize(numbers.len().max(min), Value::from(0));
                return Value::Array(numbers);
            }
            Value::Array(
                (0..count)
                    .map(|_| shape(&items, pieces, depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let n = pieces
                .integers(1)
                .first()
                .cloned()
                .unwrap_or(Value::from(1));
            clamp_number(obj, n)
        }
        "number" => clamp_number(obj, json!(0.5)),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => {
            let mut s = pieces.sentence();
            if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
                s = s.chars().take(max as usize).collect();
            }
            if let Some(min) = obj.get("minLength").and_then(Value::as_u64) {
                while (s.chars().count() as u64) < min {
                    s.push('.');
                }
            }
            Value::String(s)
        }
    }
}

/// `n`, moved into the schema's minimum/maximum when it is outside.
fn clamp_number(obj: &Map<String, Value>, n: Value) -> Value {
    let v = n.as_f64().unwrap_or(0.0);
    let integer = n.is_i64() || n.is_u64();
    if let Some(min) = obj
        .get("minimum")
        .filter(|m| m.as_f64().is_some_and(|m| v < m))
    {
        return min.clone();
    }
    if let Some(max) = obj
        .get("maximum")
        .filter(|m| m.as_f64().is_some_and(|m| v > m))
    {
        return max.clone();
    }
    if integer { n } else { json!(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str, schema: Option<Value>) -> Prompt {
        Prompt {
            texts: vec![text.into()],
            last_user: text.into(),
            max_tokens: None,
            schema,
        }
    }

    #[test]
    fn plain_replies_are_deterministic_summaries() {
        let p = prompt("Alice met Bob. They talked about 42 cats.", None);
        let a = reply(&p);
        assert_eq!(a, reply(&p));
        assert!(a.content.starts_with("Summary of 8 words: Alice met Bob."));
        assert_eq!(a.input_tokens, 9);
        assert_eq!(a.output_tokens, count_tokens(&a.content));
    }

    #[test]
    fn max_tokens_cuts_the_reply() {
        let mut p = prompt("one two three four five six", None);
        p.max_tokens = Some(2);
        let r = reply(&p);
        assert_eq!(r.content, "Summary of");
        assert!(r.truncated);
    }

    #[test]
    fn schema_replies_follow_the_schema_and_the_input() {
        let schema = json!({
            "type": "object",
            "properties": {
                "facts": {"type": "array", "items": {"type": "string"}},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "kind": {"enum": ["a", "b"]},
                "score": {"type": "number", "minimum": 1}
            },
            "required": ["facts", "ids", "kind", "score"]
        });
        let r = reply(&prompt("Items 7 and 9 matter. Keep them!", Some(schema)));
        let v: Value = serde_json::from_str(&r.content).unwrap();
        assert_eq!(v["facts"][0], "Items 7 and 9 matter");
        assert_eq!(v["facts"][1], "Keep them");
        assert_eq!(v["ids"], json!([7, 9]));
        assert_eq!(v["kind"], "a");
        assert_eq!(v["score"], 1);
    }
}
