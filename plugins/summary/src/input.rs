//! What to summarize: the item's payload parsed into text, the token budget
//! chosen, and the prompt built from them.

use serde::Deserialize;

/// The budget when neither the payload nor the operator sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// The payload: `text`, or `messages`, and an optional `max_tokens`. Other
/// fields are ignored, so producers may carry their own metadata along.
#[derive(Debug, Deserialize)]
struct Payload {
    text: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    max_tokens: Option<u32>,
}

/// One message of a conversation; `peer` (or `role`) names the speaker.
#[derive(Debug, Deserialize)]
struct ChatMessage {
    peer: Option<String>,
    role: Option<String>,
    content: String,
}

/// A parsed payload: the text to summarize and the payload's own budget.
#[derive(Debug, PartialEq, Eq)]
pub struct Input {
    /// The text, or the conversation as `speaker: content` lines.
    pub text: String,
    /// Whether `text` is a conversation transcript.
    pub conversation: bool,
    pub max_tokens: Option<u32>,
}

/// Parses a payload; the error says what a valid one looks like.
pub fn parse(payload: &str) -> Result<Input, String> {
    const SHAPE: &str = "expected {\"text\": \"...\"} or {\"messages\": [{\"peer\": \"...\", \
                         \"content\": \"...\"}]}, with an optional \"max_tokens\"";
    let payload: Payload =
        serde_json::from_str(payload).map_err(|e| format!("bad payload ({e}); {SHAPE}"))?;
    if payload.max_tokens == Some(0) {
        return Err("`max_tokens` must be at least 1".into());
    }
    let (text, conversation) = match (payload.text, payload.messages) {
        (Some(text), None) => (text.trim().to_string(), false),
        (None, Some(messages)) => (transcript(&messages), true),
        (Some(_), Some(_)) => return Err(format!("give `text` or `messages`, not both; {SHAPE}")),
        (None, None) => return Err(format!("nothing to summarize; {SHAPE}")),
    };
    if text.is_empty() {
        return Err("nothing to summarize: the text or messages are empty".into());
    }
    Ok(Input {
        text,
        conversation,
        max_tokens: payload.max_tokens,
    })
}

fn transcript(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .filter(|m| !m.content.trim().is_empty())
        .map(|m| match m.peer.as_deref().or(m.role.as_deref()) {
            Some(speaker) => format!("{}: {}", speaker.trim(), m.content.trim()),
            None => m.content.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The budget: the payload's, else the operator's `max_tokens` config value
/// (already checked by the SDK), else [`DEFAULT_MAX_TOKENS`].
pub fn max_tokens(input: &Input, configured: Option<u32>) -> u32 {
    input
        .max_tokens
        .or(configured)
        .unwrap_or(DEFAULT_MAX_TOKENS)
}

/// The system and user messages asking for a summary of at most `max_tokens`.
pub fn prompt(input: &Input, max_tokens: u32) -> (String, String) {
    // About three quarters of a word per token in English prose; asking for
    // fewer words than the hard limit keeps the summary from being cut.
    let words = (max_tokens.saturating_mul(3) / 4 * 4 / 5).max(1);
    let what = if input.conversation {
        "conversation"
    } else {
        "text"
    };
    let system = format!(
        "You write faithful, concise summaries. Summarize the {what} the user sends in at \
         most {words} words. Keep names, numbers, dates and decisions; add nothing that is \
         not in the {what}. Reply with the summary only, without a preamble."
    );
    (system, input.text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_messages_payloads_are_read() {
        let input = parse(r#"{"text":"  The meeting moved to Friday. ","max_tokens":64}"#).unwrap();
        assert_eq!(
            input,
            Input {
                text: "The meeting moved to Friday.".into(),
                conversation: false,
                max_tokens: Some(64),
            }
        );
        let input = parse(
            r#"{"messages":[{"peer":"alice","content":"Lunch?"},{"role":"assistant","content":"Sure"},{"content":"noted"},{"peer":"bob","content":"  "}]}"#,
        )
        .unwrap();
        assert_eq!(input.text, "alice: Lunch?\nassistant: Sure\nnoted");
        assert!(input.conversation);
    }

    #[test]
    fn bad_payloads_say_what_is_expected() {
        for (payload, expected) in [
            ("{}", "nothing to summarize"),
            (r#"{"text":"a","messages":[]}"#, "not both"),
            (r#"{"text":"   "}"#, "empty"),
            (r#"{"messages":[]}"#, "empty"),
            (r#"{"messages":[{"peer":"a"}]}"#, "content"),
            (r#"{"text":"a","max_tokens":0}"#, "at least 1"),
            (r#"{"text":"a","max_tokens":-5}"#, "expected"),
            (r#"{"txt":"a"}"#, "nothing to summarize"),
            ("\"just a string\"", "expected"),
        ] {
            let error = parse(payload).unwrap_err();
            assert!(error.contains(expected), "{payload}: {error}");
        }
    }

    #[test]
    fn the_budget_comes_from_the_payload_then_the_config_then_the_default() {
        let mut input = parse(r#"{"text":"a"}"#).unwrap();
        assert_eq!(max_tokens(&input, None), DEFAULT_MAX_TOKENS);
        assert_eq!(max_tokens(&input, Some(100)), 100);
        input.max_tokens = Some(32);
        assert_eq!(max_tokens(&input, Some(100)), 32);
    }

    #[test]
    fn the_prompt_states_the_budget_in_words() {
        let input = parse(r#"{"messages":[{"peer":"alice","content":"hi"}]}"#).unwrap();
        let (system, user) = prompt(&input, 100);
        assert!(system.contains("at most 60 words"), "{system}");
        assert!(system.contains("conversation"));
        assert_eq!(user, "alice: hi");
        assert!(prompt(&input, 1).0.contains("at most 1 words"));
    }
}
