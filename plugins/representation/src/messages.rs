//! The chat messages a representation batch is made of: parsing each item's
//! payload, and grouping a batch by the peer it observes.
//!
//! A batch is committed (or failed) as a whole, and a permanent error
//! dead-letters only the unit's head item. So a malformed head item fails the
//! call permanently (it is the one dead-lettered), while a malformed later
//! item is skipped and reported in the output instead of failing, and so
//! dead-lettering, the good head item.

use serde::Deserialize;

/// One item's payload, exactly as producers enqueue it. Unknown fields are
/// ignored, so producers may carry their own ids along.
#[derive(Debug, Deserialize)]
struct Payload {
    /// The conversation (or session) the message belongs to.
    session: String,
    /// Who wrote the message.
    peer: String,
    /// The message text.
    content: String,
    /// When the message was written, RFC 3339 (`2026-03-02T10:15:00Z`).
    created_at: String,
    /// The peer whose facts are wanted; other peers' messages are context.
    observed: String,
}

/// A validated message, tied to the queue item it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub item_id: u64,
    pub session: String,
    pub peer: String,
    pub content: String,
    pub created_at: String,
}

/// The messages of a batch that observe one peer, in id order.
#[derive(Debug, PartialEq, Eq)]
pub struct Group {
    pub observed: String,
    pub messages: Vec<Message>,
}

/// A later item of the batch whose payload is malformed.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub item_id: u64,
    pub error: String,
}

/// A batch, grouped by observed peer in order of first appearance.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    pub groups: Vec<Group>,
    pub skipped: Vec<Skipped>,
}

/// Parses and groups `(item id, payload)` pairs. Fails, naming the item and
/// the field, only when the first item is malformed.
pub fn group<'a>(items: impl IntoIterator<Item = (u64, &'a str)>) -> Result<Batch, String> {
    let mut batch = Batch {
        groups: Vec::new(),
        skipped: Vec::new(),
    };
    for (index, (item_id, payload)) in items.into_iter().enumerate() {
        let (observed, message) = match parse(item_id, payload) {
            Ok(parsed) => parsed,
            Err(error) if index == 0 => return Err(format!("item {item_id}: {error}")),
            Err(error) => {
                batch.skipped.push(Skipped { item_id, error });
                continue;
            }
        };
        match batch.groups.iter_mut().find(|g| g.observed == observed) {
            Some(group) => group.messages.push(message),
            None => batch.groups.push(Group {
                observed,
                messages: vec![message],
            }),
        }
    }
    Ok(batch)
}

/// One payload: the observed peer and the message.
fn parse(item_id: u64, payload: &str) -> Result<(String, Message), String> {
    let payload: Payload = serde_json::from_str(payload).map_err(|e| {
        format!(
            "the payload is not a message object ({e}); expected \
             {{\"session\",\"peer\",\"content\",\"created_at\",\"observed\"}}"
        )
    })?;
    for (field, value) in [
        ("session", &payload.session),
        ("peer", &payload.peer),
        ("observed", &payload.observed),
    ] {
        if value.trim().is_empty() {
            return Err(format!("`{field}` must not be empty"));
        }
    }
    if !is_rfc3339(&payload.created_at) {
        return Err(format!(
            "`created_at` must be an RFC 3339 timestamp such as 2026-03-02T10:15:00Z, got {:?}",
            payload.created_at
        ));
    }
    Ok((
        payload.observed.trim().to_string(),
        Message {
            item_id,
            session: payload.session,
            peer: payload.peer.trim().to_string(),
            content: payload.content,
            created_at: payload.created_at,
        },
    ))
}

/// Whether `s` is an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`, optional
/// fractional seconds, then `Z` or a `±HH:MM` offset. Only the shape and the
/// field ranges are checked (not days per month): the timestamp is there to
/// anchor relative dates in the prompt, not for arithmetic.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0u32, |n, d| Some(n * 10 + u32::from(d - b'0')))
    };
    let in_range = |range, low, high| digits(range).is_some_and(|n| (low..=high).contains(&n));
    let date_time = digits(0..4).is_some()
        && b.get(4) == Some(&b'-')
        && in_range(5..7, 1, 12)
        && b.get(7) == Some(&b'-')
        && in_range(8..10, 1, 31)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && in_range(11..13, 0, 23)
        && b.get(13) == Some(&b':')
        && in_range(14..16, 0, 59)
        && b.get(16) == Some(&b':')
        && in_range(17..19, 0, 60);
    if !date_time {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return false;
        }
        rest = &fraction[len..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            };
            two(*h1, *h2).is_some_and(|h| h <= 23) && two(*m1, *m2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(peer: &str, observed: &str, content: &str) -> String {
        serde_json::json!({
            "session": "s1",
            "peer": peer,
            "content": content,
            "created_at": "2026-03-02T10:15:00Z",
            "observed": observed,
        })
        .to_string()
    }

    #[test]
    fn groups_by_observed_peer_in_order_of_first_appearance() {
        let payloads = [
            message("alice", "alice", "hi"),
            message("bob", "bob", "hello"),
            message("bob", "alice", "how are you?"),
        ];
        let batch = group([
            (7, payloads[0].as_str()),
            (8, payloads[1].as_str()),
            (9, payloads[2].as_str()),
        ])
        .unwrap();
        assert!(batch.skipped.is_empty());
        let summary: Vec<(&str, Vec<u64>)> = batch
            .groups
            .iter()
            .map(|g| {
                (
                    g.observed.as_str(),
                    g.messages.iter().map(|m| m.item_id).collect(),
                )
            })
            .collect();
        assert_eq!(summary, [("alice", vec![7, 9]), ("bob", vec![8])]);
        assert_eq!(batch.groups[0].messages[1].peer, "bob");
    }

    #[test]
    fn a_malformed_head_item_fails_the_batch_naming_the_item_and_field() {
        let good = message("alice", "alice", "hi");
        let error = group([(3, r#"{"peer":"alice"}"#), (4, good.as_str())]).unwrap_err();
        assert!(
            error.starts_with("item 3:") && error.contains("session"),
            "{error}"
        );
        let error = group([(3, "[1,2]")]).unwrap_err();
        assert!(error.contains("expected"), "{error}");
    }

    #[test]
    fn malformed_later_items_are_skipped_and_reported() {
        let good = message("alice", "alice", "hi");
        let blank_observed = message("alice", " ", "hi");
        let bad_date = message("alice", "alice", "hi").replace("2026-03-02T10:15:00Z", "yesterday");
        let batch = group([
            (1, good.as_str()),
            (2, blank_observed.as_str()),
            (3, bad_date.as_str()),
            (4, "not json"),
        ])
        .unwrap();
        assert_eq!(batch.groups.len(), 1);
        let skipped: Vec<u64> = batch.skipped.iter().map(|s| s.item_id).collect();
        assert_eq!(skipped, [2, 3, 4]);
        assert!(batch.skipped[0].error.contains("`observed`"));
        assert!(batch.skipped[1].error.contains("created_at"));
    }

    #[test]
    fn rfc3339_timestamps_are_recognized() {
        for ok in [
            "2026-03-02T10:15:00Z",
            "2026-03-02T10:15:00.123456Z",
            "2026-03-02t10:15:00+02:00",
            "2026-12-31 23:59:60-11:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-03-02",
            "2026-13-02T10:15:00Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T10:15:00",
            "2026-03-02T10:15:00.Z",
            "2026-03-02T10:15:00+0200",
            "2026-03-02T10:15:00Zjunk",
            "２026-03-02T10:15:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
