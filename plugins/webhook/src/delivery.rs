//! One delivery: the operator's settings, the request's headers, and how the
//! receiver's answer (or the failure to get one) is classified.
//!
//! The URL and the secret come only from the operator's configuration for the
//! task type, never from the payload, so a producer cannot send events (or the
//! secret's signatures) anywhere else.

use crate::TaskError;
use crate::sluice::task::http;

/// What the operator configured for the task type.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    pub secret: String,
    /// An upper bound for one delivery; the host clamps it further.
    pub timeout_ms: Option<u64>,
}

impl Settings {
    /// Reads the settings through `get` (the `config` import). A missing or
    /// bad value is a permanent error naming the key to set.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let missing = |key: &str, what: &str| {
            TaskError::Permanent(format!(
                "config value `{key}` is not set: set it to {what} under \
                 [tasks.<task_type>.config] in the Sluice configuration"
            ))
        };
        let url = get("url")
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| missing("url", "the receiver's http:// or https:// URL"))?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(TaskError::Permanent(format!(
                "config value `url` must be an http:// or https:// URL, got {url:?}"
            )));
        }
        let secret = get("secret")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("secret", "the signing secret shared with the receiver"))?;
        let timeout_ms = match get("timeout_ms") {
            None => None,
            Some(value) => Some(
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        TaskError::Permanent(format!(
                            "config value `timeout_ms` must be a positive integer, got {value:?}"
                        ))
                    })?,
            ),
        };
        Ok(Self {
            url,
            secret,
            timeout_ms,
        })
    }
}

/// What identifies a delivery to the receiver.
pub struct Envelope {
    pub item_id: u64,
    pub attempt: u32,
    pub enqueued_at_ms: u64,
    pub signature: String,
}

/// The request's headers. `X-Sluice-Item-Id` is the same on every attempt,
/// so receivers can use it to drop duplicate deliveries.
pub fn headers(envelope: &Envelope) -> Vec<http::Header> {
    [
        ("Content-Type", "application/json".to_string()),
        (
            "User-Agent",
            concat!("sluice-webhook/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
        (crate::signature::HEADER, envelope.signature.clone()),
        ("X-Sluice-Item-Id", envelope.item_id.to_string()),
        ("X-Sluice-Attempt", envelope.attempt.to_string()),
        ("X-Sluice-Enqueued-At", envelope.enqueued_at_ms.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| http::Header {
        name: name.to_string(),
        value,
    })
    .collect()
}

/// Classifies the receiver's status: 2xx delivered; 408, 429 and 5xx
/// retryable; other statuses (redirects, which are not followed, and 4xx)
/// permanent. `body` is quoted, cut short, in the message.
pub fn check_status(status: u16, body: &[u8]) -> Result<(), TaskError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let excerpt: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let message = format!("the receiver answered {status}: {excerpt:?}");
    Err(match status {
        408 | 429 | 500.. => TaskError::Retryable(message),
        300..400 => TaskError::Permanent(format!(
            "{message}; redirects are not followed: configure the final URL"
        )),
        _ => TaskError::Permanent(message),
    })
}

/// Classifies a failure to get an answer at all.
pub fn http_error(error: &http::Error) -> TaskError {
    use http::Error as E;
    match error {
        E::Timeout => TaskError::Retryable("the delivery timed out".into()),
        E::Connection(c) => TaskError::Retryable(format!(
            "cannot reach the receiver ({:?}): {}",
            c.failure, c.message
        )),
        E::ResponseTooLarge => TaskError::Retryable(
            "the receiver's answer was larger than the host accepts, so the delivery is unconfirmed"
                .into(),
        ),
        E::Denied(why) => TaskError::Permanent(format!(
            "the delivery was denied: {why} (allow the receiver's host under \
             [tasks.<task_type>.http] allow_hosts)"
        )),
        E::InvalidRequest(why) => {
            TaskError::Permanent(format!("the delivery request is invalid: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, TaskError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_config(|key| map.get(key).cloned())
    }

    fn permanent_message(result: Result<impl std::fmt::Debug, TaskError>) -> String {
        match result {
            Err(TaskError::Permanent(m)) => m,
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }

    #[test]
    fn settings_come_from_config_and_name_the_missing_key() {
        assert_eq!(
            settings(&[("url", " https://hooks.example/in "), ("secret", "s3")]).unwrap(),
            Settings {
                url: "https://hooks.example/in".into(),
                secret: "s3".into(),
                timeout_ms: None,
            }
        );
        let m = permanent_message(settings(&[("secret", "s3")]));
        assert!(m.contains("`url` is not set"), "{m}");
        let m = permanent_message(settings(&[("url", "https://h/")]));
        assert!(m.contains("`secret` is not set"), "{m}");
        let m = permanent_message(settings(&[("url", "ftp://h/"), ("secret", "s")]));
        assert!(m.contains("http:// or https://"), "{m}");
        let m = permanent_message(settings(&[
            ("url", "http://h/"),
            ("secret", "s"),
            ("timeout_ms", "soon"),
        ]));
        assert!(m.contains("`timeout_ms`"), "{m}");
        let ok = settings(&[
            ("url", "http://h/"),
            ("secret", "s"),
            ("timeout_ms", "2500"),
        ]);
        assert_eq!(ok.unwrap().timeout_ms, Some(2500));
    }

    #[test]
    fn statuses_are_classified() {
        for status in [200, 201, 204, 299] {
            assert!(check_status(status, b"").is_ok(), "{status}");
        }
        for status in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(check_status(status, b""), Err(TaskError::Retryable(_))),
                "{status}"
            );
        }
        for status in [301, 400, 401, 403, 404, 410, 422, 100] {
            assert!(
                matches!(check_status(status, b""), Err(TaskError::Permanent(_))),
                "{status}"
            );
        }
        let m = permanent_message(check_status(404, b"no such hook"));
        assert!(m.contains("404") && m.contains("no such hook"), "{m}");
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
        let m = permanent_message(Err::<(), _>(http_error(&http::Error::Denied(
            "not allowed".into(),
        ))));
        assert!(m.contains("allow_hosts"), "{m}");
        assert!(matches!(
            http_error(&http::Error::InvalidRequest("bad url".into())),
            TaskError::Permanent(_)
        ));
    }

    #[test]
    fn headers_identify_and_sign_the_delivery() {
        let headers = headers(&Envelope {
            item_id: 42,
            attempt: 2,
            enqueued_at_ms: 1_700_000_000_000,
            signature: "sha256=ab".into(),
        });
        let get = |name: &str| {
            headers
                .iter()
                .find(|h| h.name == name)
                .map(|h| h.value.as_str())
        };
        assert_eq!(get("X-Sluice-Signature"), Some("sha256=ab"));
        assert_eq!(get("X-Sluice-Item-Id"), Some("42"));
        assert_eq!(get("X-Sluice-Attempt"), Some("2"));
        assert_eq!(get("X-Sluice-Enqueued-At"), Some("1700000000000"));
        assert_eq!(get("Content-Type"), Some("application/json"));
    }
}
