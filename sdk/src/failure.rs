//! The standard mapping of a failed `llm` or `http` call, or of a reply that
//! cannot be used, to the contract's `task-error`.
//!
//! What a retry can fix (a timeout, a rate limit, a provider outage, a broken
//! connection) is retryable. What it cannot (a denied call, a rejected
//! request) is permanent. A reply that arrived but cannot be used is retried
//! once, since models are not deterministic, and is permanent from the second
//! attempt on, so a prompt the model cannot answer is dead-lettered with the
//! evidence instead of burning every attempt.

use crate::TaskError;
use crate::{http, llm};

/// How much of a broken reply an error message keeps.
const MAX_REPLY_EXCERPT_BYTES: usize = 4096;

/// Classifies an error from `llm.complete`; `attempt` is the item's
/// (`work-item.attempt`).
pub fn llm_error(error: &llm::Error, attempt: u32) -> TaskError {
    use llm::Error as E;
    match error {
        E::Timeout => TaskError::Retryable("the LLM call timed out".into()),
        E::RateLimited(Some(ms)) => TaskError::Retryable(format!(
            "the LLM provider is rate limiting (it asked to wait {ms} ms)"
        )),
        E::RateLimited(None) => TaskError::Retryable("the LLM provider is rate limiting".into()),
        E::Provider(p) if retryable_status(p.status) => TaskError::Retryable(format!(
            "the LLM provider failed with status {}: {}",
            p.status, p.message
        )),
        E::Provider(p) => TaskError::Permanent(format!(
            "the LLM provider rejected the request with status {}: {}",
            p.status, p.message
        )),
        E::Denied(why) => TaskError::Permanent(format!(
            "the LLM call was denied: {why} (the operator configures LLM access under \
             [tasks.<task_type>.llm])"
        )),
        E::InvalidRequest(why) => {
            TaskError::Permanent(format!("the LLM request was refused as invalid: {why}"))
        }
        E::ResponseTooLarge => once_then_permanent(
            attempt,
            "the LLM reply was larger than the host accepts".into(),
        ),
    }
}

/// Classifies an error from `http.send`. A response with any status is not an
/// error: classify statuses with [`http_status`].
pub fn http_error(error: &http::Error) -> TaskError {
    use http::Error as E;
    match error {
        E::Timeout => TaskError::Retryable("the HTTP request timed out".into()),
        E::Connection(c) => TaskError::Retryable(format!(
            "cannot reach the server ({:?}): {}",
            c.failure, c.message
        )),
        E::ResponseTooLarge => TaskError::Retryable(
            "the server's answer was larger than the host accepts, so the request's effect is \
             unconfirmed"
                .into(),
        ),
        E::Denied(why) => TaskError::Permanent(format!(
            "the HTTP request was denied: {why} (allow the host under \
             [tasks.<task_type>.http] allow_hosts)"
        )),
        E::InvalidRequest(why) => {
            TaskError::Permanent(format!("the HTTP request is invalid: {why}"))
        }
    }
}

/// Classifies an HTTP status: 2xx is success; 408, 429 and 5xx retryable;
/// anything else (redirects, which are not followed, and other 4xx)
/// permanent. `body` is quoted, cut short, in the message.
pub fn http_status(status: u16, body: &[u8]) -> Result<(), TaskError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let excerpt: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let message = format!("the server answered {status}: {excerpt:?}");
    Err(match status {
        s if retryable_status(s) => TaskError::Retryable(message),
        300..400 => TaskError::Permanent(format!(
            "{message}; redirects are not followed: configure the final URL"
        )),
        _ => TaskError::Permanent(message),
    })
}

/// An error for an LLM reply that arrived but cannot be used (`reason` says
/// why): retried once, then permanent, with the raw reply in the message.
pub fn broken_reply(reason: &str, response: &llm::Response, attempt: u32) -> TaskError {
    let hint = if response.finish_reason == llm::FinishReason::Length {
        "; the reply was cut at the token limit: raise the `max_tokens` config value"
    } else {
        ""
    };
    once_then_permanent(
        attempt,
        format!(
            "the LLM reply cannot be used: {reason} (model {}, finish reason {:?}{hint}); raw reply: {}",
            response.model,
            response.finish_reason,
            excerpt(&response.content, MAX_REPLY_EXCERPT_BYTES)
        ),
    )
}

/// Retryable on the first attempt, permanent afterwards.
pub fn once_then_permanent(attempt: u32, message: String) -> TaskError {
    if attempt <= 1 {
        TaskError::Retryable(format!("{message} (attempt {attempt}, will retry once)"))
    } else {
        TaskError::Permanent(format!("{message} (attempt {attempt}, giving up)"))
    }
}

fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// `text` quoted, cut to at most `max` bytes on a char boundary, saying how
/// much was left out.
fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return format!("{text:?}");
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} more bytes)", &text[..end], text.len() - end)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn response(content: &str, finish_reason: llm::FinishReason) -> llm::Response {
        llm::Response {
            content: content.into(),
            model: "m1".into(),
            usage: llm::Usage {
                input_tokens: 1,
                output_tokens: 1,
            },
            finish_reason,
        }
    }

    fn provider(status: u16) -> llm::Error {
        llm::Error::Provider(llm::ProviderError {
            status,
            message: "boom".into(),
        })
    }

    #[test]
    fn transient_llm_errors_are_retryable_and_refusals_permanent() {
        for error in [
            llm::Error::Timeout,
            llm::Error::RateLimited(Some(1500)),
            llm::Error::RateLimited(None),
            provider(500),
            provider(503),
            provider(429),
            provider(408),
        ] {
            assert!(
                matches!(llm_error(&error, 5), TaskError::Retryable(_)),
                "{error:?}"
            );
        }
        for error in [
            llm::Error::Denied("no provider".into()),
            llm::Error::InvalidRequest("bad schema".into()),
            provider(400),
            provider(401),
            provider(404),
        ] {
            assert!(
                matches!(llm_error(&error, 1), TaskError::Permanent(_)),
                "{error:?}"
            );
        }
        let TaskError::Retryable(m) = llm_error(&llm::Error::RateLimited(Some(1500)), 1) else {
            panic!()
        };
        assert!(m.contains("1500 ms"), "{m}");
        let TaskError::Permanent(m) = llm_error(&llm::Error::Denied("no provider".into()), 1)
        else {
            panic!()
        };
        assert!(m.contains("[tasks.<task_type>.llm]"), "{m}");
    }

    #[test]
    fn a_broken_reply_is_retried_once_then_permanent_and_keeps_the_raw_reply() {
        let reply = response("not json at all", llm::FinishReason::Stop);
        let TaskError::Retryable(first) = broken_reply("the reply is not JSON", &reply, 1) else {
            panic!("attempt 1 should be retryable");
        };
        assert!(first.contains("\"not json at all\"") && first.contains("model m1"));
        let TaskError::Permanent(second) = broken_reply("the reply is not JSON", &reply, 2) else {
            panic!("attempt 2 should be permanent");
        };
        assert!(second.contains("not JSON") && second.contains("attempt 2"));
        assert!(matches!(
            llm_error(&llm::Error::ResponseTooLarge, 2),
            TaskError::Permanent(_)
        ));
    }

    #[test]
    fn a_cut_reply_says_to_raise_the_token_limit() {
        let reply = response("{\"observations\":[", llm::FinishReason::Length);
        let TaskError::Retryable(m) = broken_reply("x", &reply, 1) else {
            panic!()
        };
        assert!(m.contains("max_tokens"), "{m}");
    }

    #[test]
    fn long_replies_are_cut_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let cut = excerpt(&long, 4095);
        assert!(
            cut.ends_with("... (5906 more bytes)"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(excerpt("short", 10), "\"short\"");
    }

    #[test]
    fn transport_failures_are_retryable_and_refusals_permanent() {
        let connection = http::Error::Connection(http::ConnectionError {
            failure: http::ConnectionFailure::Refused,
            message: "connection refused".into(),
        });
        for error in [
            http::Error::Timeout,
            connection,
            http::Error::ResponseTooLarge,
        ] {
            assert!(
                matches!(http_error(&error), TaskError::Retryable(_)),
                "{error:?}"
            );
        }
        let TaskError::Permanent(m) = http_error(&http::Error::Denied("not allowed".into())) else {
            panic!()
        };
        assert!(m.contains("allow_hosts"), "{m}");
        assert!(matches!(
            http_error(&http::Error::InvalidRequest("bad url".into())),
            TaskError::Permanent(_)
        ));
    }

    #[test]
    fn statuses_are_classified() {
        for status in [200, 201, 204, 299] {
            assert!(http_status(status, b"").is_ok(), "{status}");
        }
        for status in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(http_status(status, b""), Err(TaskError::Retryable(_))),
                "{status}"
            );
        }
        for status in [301, 400, 401, 403, 404, 410, 422, 100] {
            assert!(
                matches!(http_status(status, b""), Err(TaskError::Permanent(_))),
                "{status}"
            );
        }
        let Err(TaskError::Permanent(m)) = http_status(404, b"no such hook") else {
            panic!()
        };
        assert!(m.contains("404") && m.contains("no such hook"), "{m}");
    }
}
