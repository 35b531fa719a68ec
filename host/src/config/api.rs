//! `[api]`: the HTTP API under `/v1` on the host's listener, and the bearer
//! tokens that may call it. A token is configured by its SHA-256 (`sha256`,
//! hex) or by the environment variable that holds it (`token_env`); the
//! configuration never holds a token itself, and the host keeps only hashes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve `/v1` on the listener.
    pub enabled: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Bearer tokens, by a name that appears in logs.
    pub tokens: BTreeMap<String, ApiToken>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_body_bytes: 16 << 20,
            tokens: BTreeMap::new(),
        }
    }
}

/// One bearer token: what it may do, and how to recognise it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub scope: Scope,
    /// The token's SHA-256, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// What a token may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Enqueue items.
    Enqueue,
    /// Read items, units, dead letters, the queue's status and the plugins.
    Read,
    /// Everything, including retrying and purging dead letters and
    /// cancelling a unit's pending items.
    Admin,
}

impl Scope {
    /// Whether a token of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Enqueue => "enqueue",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl ApiConfig {
    /// Checks each token's shape, and that an API without tokens listens on
    /// a loopback address only.
    pub(super) fn validate(&self, listen: Option<SocketAddr>) -> Result<(), ConfigError> {
        for (name, token) in &self.tokens {
            let key = format!("api.tokens.{name}");
            match (&token.sha256, &token.token_env) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(ConfigError::invalid(
                        key,
                        "give exactly one of `sha256` (the token's SHA-256, hex) and `token_env` (the variable holding the token)",
                    ));
                }
                (Some(hash), None)
                    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    return Err(ConfigError::invalid(
                        format!("{key}.sha256"),
                        "must be 64 hex digits: the SHA-256 of the token (`printf %s TOKEN | sha256sum`)",
                    ));
                }
                _ => {}
            }
        }
        match listen {
            Some(addr) if self.enabled && self.tokens.is_empty() && !addr.ip().is_loopback() => {
                Err(ConfigError::invalid(
                    "listen",
                    format!(
                        "{addr} is not a loopback address and [api.tokens] is empty, so the HTTP API would be open to the network; add a token ([api.tokens.NAME] with `scope` and `sha256` or `token_env`), listen on 127.0.0.1, or set api.enabled = false"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}
