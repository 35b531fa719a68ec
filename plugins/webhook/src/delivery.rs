//! One delivery: the operator's settings and the request's headers. The
//! receiver's answer (or the failure to get one) is classified by the SDK's
//! standard mapping (`sluice_sdk::failure`).
//!
//! The URL and the secret come only from the operator's configuration for the
//! task type, never from the payload, so a producer cannot send events (or the
//! secret's signatures) anywhere else.

use sluice_sdk::config::Config;
use sluice_sdk::{TaskError, http};

/// What the operator configured for the task type.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    pub secret: String,
    /// An upper bound for one delivery; the host clamps it further.
    pub timeout_ms: Option<u64>,
}

impl Settings {
    /// Reads the settings from `config`. A missing or bad value is a
    /// permanent error naming the key to set.
    pub fn from_config(
        config: &Config<impl Fn(&str) -> Option<String>>,
    ) -> Result<Self, TaskError> {
        let url = config.required("url", "the receiver's http:// or https:// URL")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(TaskError::Permanent(format!(
                "config value `url` must be an http:// or https:// URL, got {url:?}"
            )));
        }
        let secret = config.required("secret", "the signing secret shared with the receiver")?;
        Ok(Self {
            url,
            secret,
            timeout_ms: config.positive("timeout_ms")?,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, TaskError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_config(&Config::with(|key| map.get(key).cloned()))
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
