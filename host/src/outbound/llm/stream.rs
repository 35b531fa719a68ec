//! Server-sent events, as both providers stream replies.
//!
//! [`SseParser`] turns body chunks into events, whatever the chunk boundaries;
//! [`read`] drives a provider's [`Fold`] over a streamed body under the idle
//! timeout (a stream that stops sending is cut), the deadline and the size cap.

use super::{Completion, Failure};
use crate::outbound::body::BodyReader;

/// One event: its `event:` name, if any, and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE parser (the subset providers use: `event`, `data`, comments).
#[derive(Debug, Default)]
pub(super) struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in chunk {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    events.push(SseEvent {
                        event: self.event.take(),
                        data,
                    });
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        events
    }
}

/// What a provider's stream parser does with each event.
pub(super) trait Fold {
    /// Takes one event; `Ok(true)` when the stream says it is complete.
    fn event(&mut self, event: &SseEvent) -> Result<bool, Failure>;
    /// The completion, once the stream is complete (or the body ended).
    fn finish(self) -> Result<Completion, Failure>;
}

/// Reads a streamed reply to its end with `fold`.
pub(super) async fn read<F: Fold>(
    mut body: BodyReader,
    mut fold: F,
) -> Result<Completion, Failure> {
    let mut parser = SseParser::default();
    while let Some(chunk) = body.chunk().await.map_err(Failure::from_body)? {
        for event in parser.push(&chunk) {
            if fold.event(&event)? {
                return fold.finish();
            }
        }
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let text = b"event: a\r\ndata: {\"x\":1}\r\n\r\n: comment\n\ndata: one\ndata: two\n\ndata:[DONE]\n\n";
        for size in 1..text.len() {
            let mut parser = SseParser::default();
            let events: Vec<SseEvent> = text
                .chunks(size)
                .flat_map(|chunk| parser.push(chunk))
                .collect();
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: Some("a".into()),
                        data: "{\"x\":1}".into()
                    },
                    SseEvent {
                        event: None,
                        data: "one\ntwo".into()
                    },
                    SseEvent {
                        event: None,
                        data: "[DONE]".into()
                    },
                ],
                "chunk size {size}"
            );
        }
    }
}
