//! Reading the model's reply back into observations, strictly.
//!
//! A reply either yields a well-formed list of observations (possibly empty,
//! when the transcript reveals nothing) or an error saying what is wrong with
//! it: a broken reply must never pass as "no observations".
//!
//! Citations are lenient where leniency loses nothing: numbers that are not
//! one of the observed peer's messages in the prompt (a context message, an
//! invented number, a non-integer) are dropped, and an observation left
//! without a valid citation is attributed to all of the observed peer's
//! messages in the prompt, which is where it came from (its `attribution` is
//! then `batch` instead of `cited`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// One fact about the observed peer.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    pub observed: String,
    pub content: String,
    /// Queue ids of the messages the fact comes from, ascending.
    pub item_ids: Vec<u64>,
    pub attribution: Attribution,
}

/// Where an observation's `item_ids` come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attribution {
    /// The model cited these messages.
    Cited,
    /// The model cited none of the observed peer's messages; the observation
    /// is attributed to all of them in the prompt.
    Batch,
}

/// Parses `reply` against the prompt's `citable` map (transcript number →
/// item id). The error says what is wrong, without the reply itself.
pub fn parse(
    reply: &str,
    observed: &str,
    citable: &BTreeMap<u64, u64>,
) -> Result<Vec<Observation>, String> {
    let value: Value = serde_json::from_str(strip_code_fence(reply))
        .map_err(|e| format!("the reply is not JSON ({e})"))?;
    let entries = value
        .as_object()
        .ok_or("the reply is not a JSON object")?
        .get("observations")
        .ok_or("the reply has no `observations` field")?
        .as_array()
        .ok_or("`observations` is not a list")?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("`observations[{index}]` is not an object"))?;
            let content = entry
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!("`observations[{index}].content` is missing or not a string")
                })?
                .trim();
            if content.is_empty() {
                return Err(format!("`observations[{index}].content` is empty"));
            }
            let cited: BTreeSet<u64> = match entry.get("source_ids") {
                None | Some(Value::Null) => BTreeSet::new(),
                Some(Value::Array(ids)) => ids
                    .iter()
                    .filter_map(|id| citable.get(&id.as_u64()?).copied())
                    .collect(),
                Some(_) => {
                    return Err(format!("`observations[{index}].source_ids` is not a list"));
                }
            };
            let (item_ids, attribution) = if cited.is_empty() {
                (citable.values().copied().collect(), Attribution::Batch)
            } else {
                (cited.into_iter().collect(), Attribution::Cited)
            };
            Ok(Observation {
                observed: observed.to_string(),
                content: content.to_string(),
                item_ids,
                attribution,
            })
        })
        .collect()
}

/// The JSON inside a Markdown code fence, for models that add one anyway.
fn strip_code_fence(reply: &str) -> &str {
    let reply = reply.trim();
    let Some(fenced) = reply.strip_prefix("```") else {
        return reply;
    };
    let body = fenced.split_once('\n').map_or("", |(_language, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transcript numbers 1 and 3 are the observed peer's (items 10 and 12).
    fn citable() -> BTreeMap<u64, u64> {
        BTreeMap::from([(1, 10), (3, 12)])
    }

    fn parse_ok(reply: &str) -> Vec<Observation> {
        parse(reply, "alice", &citable()).unwrap()
    }

    #[test]
    fn cited_numbers_map_to_item_ids() {
        let obs = parse_ok(
            r#"{"observations":[{"content":" Alice works at Acme. ","source_ids":[3,1,3]}]}"#,
        );
        assert_eq!(
            obs,
            [Observation {
                observed: "alice".into(),
                content: "Alice works at Acme.".into(),
                item_ids: vec![10, 12],
                attribution: Attribution::Cited,
            }]
        );
    }

    #[test]
    fn unknown_citations_are_dropped_and_uncited_facts_go_to_the_batch() {
        let obs = parse_ok(
            r#"{"observations":[
                {"content":"a","source_ids":[2, 99, -1, 1.5, "1", 3]},
                {"content":"b","source_ids":[2, 7]},
                {"content":"c","source_ids":[]},
                {"content":"d"}
            ]}"#,
        );
        let ids: Vec<(&[u64], Attribution)> = obs
            .iter()
            .map(|o| (o.item_ids.as_slice(), o.attribution))
            .collect();
        assert_eq!(
            ids,
            [
                (&[12][..], Attribution::Cited),
                (&[10, 12][..], Attribution::Batch),
                (&[10, 12][..], Attribution::Batch),
                (&[10, 12][..], Attribution::Batch),
            ]
        );
    }

    #[test]
    fn an_empty_list_is_a_valid_answer() {
        assert!(parse_ok(r#"{"observations":[]}"#).is_empty());
    }

    #[test]
    fn a_code_fence_is_tolerated() {
        let fenced = "```json\n{\"observations\":[{\"content\":\"x\",\"source_ids\":[1]}]}\n```";
        assert_eq!(parse_ok(fenced).len(), 1);
        assert_eq!(parse_ok("```\n{\"observations\":[]}```").len(), 0);
    }

    #[test]
    fn broken_replies_are_errors_never_empty_successes() {
        for (reply, expected) in [
            ("", "not JSON"),
            ("Sure! Here are the facts:", "not JSON"),
            (r#"{"observations":[{"content":"cut"#, "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"facts":[]}"#, "no `observations`"),
            (r#"{"observations":"none"}"#, "not a list"),
            (
                r#"{"observations":["fact"]}"#,
                "`observations[0]` is not an object",
            ),
            (
                r#"{"observations":[{"content":"a"},{"text":"b"}]}"#,
                "`observations[1].content` is missing",
            ),
            (r#"{"observations":[{"content":"  "}]}"#, "is empty"),
            (
                r#"{"observations":[{"content":"a","source_ids":1}]}"#,
                "source_ids` is not a list",
            ),
        ] {
            let error = parse(reply, "alice", &citable()).unwrap_err();
            assert!(error.contains(expected), "{reply:?}: {error}");
        }
    }
}
