//! How a failed LLM call or an empty reply becomes a `task-error`: what a
//! retry can fix is retryable, what it cannot is permanent, and an empty reply
//! is retried once and permanent after that (the same policy as the
//! representation plugin, whose README explains it).

use crate::TaskError;
use crate::sluice::task::llm;

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

/// An error for a reply without a summary in it.
pub fn empty_reply(response: &llm::Response, attempt: u32) -> TaskError {
    once_then_permanent(
        attempt,
        format!(
            "the LLM reply is empty (model {}, finish reason {:?})",
            response.model, response.finish_reason
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

#[cfg(test)]
mod tests {
    use super::*;

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
            llm::Error::RateLimited(None),
            provider(502),
            provider(429),
        ] {
            assert!(
                matches!(llm_error(&error, 3), TaskError::Retryable(_)),
                "{error:?}"
            );
        }
        for error in [
            llm::Error::Denied("no provider".into()),
            llm::Error::InvalidRequest("empty".into()),
            provider(403),
        ] {
            assert!(
                matches!(llm_error(&error, 1), TaskError::Permanent(_)),
                "{error:?}"
            );
        }
    }

    #[test]
    fn an_empty_reply_is_retried_once() {
        let response = llm::Response {
            content: " ".into(),
            model: "m1".into(),
            usage: llm::Usage {
                input_tokens: 3,
                output_tokens: 0,
            },
            finish_reason: llm::FinishReason::ContentFilter,
        };
        assert!(matches!(empty_reply(&response, 1), TaskError::Retryable(_)));
        let TaskError::Permanent(m) = empty_reply(&response, 2) else {
            panic!()
        };
        assert!(m.contains("ContentFilter") && m.contains("m1"), "{m}");
    }
}
