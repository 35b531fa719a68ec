//! The prompt that turns one group of messages into observations, and the
//! JSON schema the reply must follow.
//!
//! Messages are numbered 1, 2, ... in the transcript rather than shown with
//! their queue ids: small numbers are what models cite reliably, and the
//! numbering maps back to item ids exactly ([`Prompt::citable`]). Only the
//! observed peer's messages can be cited; the rest are context.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::messages::Group;

/// The schema passed as the request's `json-schema`.
pub const REPLY_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "observations": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "content": {"type": "string"},
          "source_ids": {"type": "array", "items": {"type": "integer"}}
        },
        "required": ["content", "source_ids"],
        "additionalProperties": false
      }
    }
  },
  "required": ["observations"],
  "additionalProperties": false
}"#;

/// One LLM request's text, and how to read its citations back.
#[derive(Debug)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// Transcript number → item id, for the observed peer's messages only.
    pub citable: BTreeMap<u64, u64>,
}

/// Builds the prompt for `group`, or `None` when the observed peer wrote none
/// of its messages: there is then nothing of theirs to derive facts from, and
/// no LLM call is made.
pub fn build(group: &Group) -> Option<Prompt> {
    let observed = &group.observed;
    let mut transcript = String::new();
    let mut citable = BTreeMap::new();
    for (number, message) in (1u64..).zip(&group.messages) {
        let by_observed = message.peer == *observed;
        if by_observed {
            citable.insert(number, message.item_id);
        }
        let role = if by_observed {
            "observed"
        } else {
            "context only"
        };
        // Newlines inside a message stay, indented, so one message cannot
        // pass itself off as several.
        let content = message.content.trim().replace('\n', "\n    ");
        let _ = writeln!(
            transcript,
            "[{number}] {} | session {} | {} ({role}): {content}",
            message.created_at, message.session, message.peer
        );
    }
    if citable.is_empty() {
        return None;
    }
    Some(Prompt {
        system: system_prompt(observed),
        user: format!(
            "Observed peer: {observed}\n\nTranscript (one message per number, \
             each with the time it was written):\n{transcript}\n\
             Reply with the JSON object only."
        ),
        citable,
    })
}

fn system_prompt(observed: &str) -> String {
    format!(
        "You record what a conversation reveals about one participant, the observed \
peer \"{observed}\". Read the transcript and list facts about {observed}.\n\
\n\
Rules:\n\
1. Explicit only: keep what {observed}'s own messages state or unambiguously imply. \
Do not guess, generalize or judge.\n\
2. Other peers' messages are context for understanding {observed}'s messages. Never \
report something only another peer says.\n\
3. Atomic: one fact per observation. Split sentences that hold two facts.\n\
4. Self-contained: each observation must make sense on its own, months later, to \
someone who never saw the transcript. Name {observed} instead of using pronouns, and \
say what \"it\", \"there\" or \"the project\" refers to.\n\
5. Absolute dates: turn relative times (\"yesterday\", \"next Monday\", \"in two \
weeks\") into calendar dates (YYYY-MM-DD), counting from the time of the message that \
says them. Leave times that cannot be resolved as stated.\n\
6. source_ids: the numbers of {observed}'s messages the fact comes from (the numbers \
in brackets). Cite only messages marked (observed).\n\
7. If the transcript reveals nothing about {observed}, return an empty list.\n\
\n\
Reply with a JSON object {{\"observations\": [{{\"content\": string, \"source_ids\": \
[integer]}}]}} and nothing else."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    fn message(item_id: u64, peer: &str, content: &str) -> Message {
        Message {
            item_id,
            session: "s1".into(),
            peer: peer.into(),
            content: content.into(),
            created_at: format!("2026-03-0{item_id}T10:00:00Z"),
        }
    }

    fn group(messages: Vec<Message>) -> Group {
        Group {
            observed: "alice".into(),
            messages,
        }
    }

    #[test]
    fn numbers_messages_and_only_the_observed_peers_are_citable() {
        let prompt = build(&group(vec![
            message(4, "bob", "Where do you work now?"),
            message(5, "alice", "I start at Acme\nnext Monday."),
        ]))
        .unwrap();
        assert_eq!(prompt.citable, BTreeMap::from([(2, 5)]));
        assert!(prompt.user.contains(
            "[1] 2026-03-04T10:00:00Z | session s1 | bob (context only): Where do you work now?"
        ));
        assert!(
            prompt
                .user
                .contains("[2] 2026-03-05T10:00:00Z | session s1 | alice (observed): I start at Acme\n    next Monday."),
            "{}",
            prompt.user
        );
        assert!(prompt.user.starts_with("Observed peer: alice"));
        for rule in [
            "Explicit only",
            "context",
            "Atomic",
            "Self-contained",
            "YYYY-MM-DD",
        ] {
            assert!(prompt.system.contains(rule), "missing {rule}");
        }
    }

    #[test]
    fn a_group_without_the_observed_peers_messages_needs_no_call() {
        assert!(build(&group(vec![message(1, "bob", "hi")])).is_none());
    }

    #[test]
    fn the_schema_is_valid_json_requiring_observations() {
        let schema: serde_json::Value = serde_json::from_str(REPLY_SCHEMA).unwrap();
        assert_eq!(schema["required"][0], "observations");
        assert_eq!(
            schema["properties"]["observations"]["items"]["properties"]["source_ids"]["items"]["type"],
            "integer"
        );
    }
}
