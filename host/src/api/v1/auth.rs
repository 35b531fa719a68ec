//! Bearer tokens and their scopes. The host keeps each token's SHA-256 only
//! (from `sha256` in the configuration, or hashed at start from the variable
//! `token_env` names) and compares a presented token's hash with every
//! configured one in constant time.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::config::{ApiConfig, Scope};

pub(crate) struct Token {
    pub(crate) name: String,
    pub(crate) scope: Scope,
    sha256: [u8; 32],
}

/// The configured tokens; none means the API is open (loopback only).
pub(crate) struct Tokens(Vec<Token>);

impl Tokens {
    /// Reads the tokens of `[api.tokens]`; a `token_env` variable that is
    /// unset or empty is an error naming it.
    pub(crate) fn from_config(api: &ApiConfig) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        for (name, token) in &api.tokens {
            let sha256 = match (&token.sha256, &token.token_env) {
                (Some(hex), _) => from_hex(hex).ok_or_else(|| {
                    anyhow::anyhow!("api.tokens.{name}.sha256 is not 64 hex digits")
                })?,
                (None, Some(var)) => {
                    let value = std::env::var(var).unwrap_or_default();
                    if value.is_empty() {
                        anyhow::bail!(
                            "api.tokens.{name}.token_env names {var}, which is unset or empty; set it to the token"
                        );
                    }
                    Sha256::digest(value.as_bytes()).into()
                }
                (None, None) => anyhow::bail!("api.tokens.{name} has neither sha256 nor token_env"),
            };
            tokens.push(Token {
                name: name.clone(),
                scope: token.scope,
                sha256,
            });
        }
        Ok(Self(tokens))
    }

    pub(crate) fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured token `presented` is, if any: its hash is compared with
    /// every configured one, matched or not. The dashboard's sign-in uses
    /// this too ([`crate::ui`]).
    pub(crate) fn identify(&self, presented: &str) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&Token> = None;
        for token in &self.0 {
            if bool::from(token.sha256.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }

    /// Whether the request's bearer token may do what `needed` allows.
    pub(crate) fn check(&self, headers: &HeaderMap, needed: Scope) -> Result<(), Problem> {
        if self.is_open() {
            return Ok(());
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                Problem::unauthorized(
                    "send `Authorization: Bearer TOKEN` with a token of [api.tokens]",
                )
            })?;
        let token = self
            .identify(presented)
            .ok_or_else(|| Problem::unauthorized("the bearer token is not one of [api.tokens]"))?;
        if token.scope.allows(needed) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "the token `{}` has scope `{}`; this needs `{}` (or `admin`)",
                token.name,
                token.scope.as_str(),
                needed.as_str()
            )))
        }
    }
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
