//! How a failed LLM call or an unusable reply becomes a `task-error`.
//!
//! What a retry can fix (a timeout, a rate limit, a provider outage) is
//! retryable. What it cannot (a denied call, a rejected request) is permanent.
//! A reply that cannot be read is retried once, since models are not
//! deterministic, and is permanent from the second attempt on, so a prompt the
//! model cannot answer is dead-lettered with the evidence instead of burning
//! every attempt. The raw reply, cut to a readable size, is kept in the message.

use crate::TaskError;
use crate::sluice::task::llm;

/// How much of a broken reply the error message keeps.
const MAX_REPLY_EXCERPT_BYTES: usize = 4096;

/// Classifies an error from `llm.complete`.
pub fn llm_error(error: &llm::Error, attempt: u32) -> TaskError {
    use llm::Error as E;
    match error {
        E::Timeout => TaskError::Retryable("the LLM call timed out".into()),
        E::RateLimited(Some(ms)) => TaskError::Retryable(format!(
            "the LLM provider is rate limiting (it asked to wait {ms} ms)"
        )),
        E::RateLimited(None) => TaskError::Retryable("the LLM provider is rate limiting".into()),
        E::Provider(p) if p.status == 408 || p.status == 429 || p.status >= 500 => {
            TaskError::Retryable(format!(
                "the LLM provider failed with status {}: {}",
                p.status, p.message
            ))
        }
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

/// An error for a reply that arrived but cannot be used (`reason` says why).
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
fn once_then_permanent(attempt: u32, message: String) -> TaskError {
    if attempt <= 1 {
        TaskError::Retryable(format!("{message} (attempt {attempt}, will retry once)"))
    } else {
        TaskError::Permanent(format!("{message} (attempt {attempt}, giving up)"))
    }
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
mod tests {
    use super::*;

    fn response(content: &str, finish_reason: llm::FinishReason) -> llm::Response {
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
}
