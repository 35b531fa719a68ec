//! Who may look and who may act. The dashboard takes the API's tokens
//! ([`crate::api::v1::auth`]): a sign-in form takes a token and, when it is
//! one of `[api.tokens]` with scope `read` or `admin`, keeps it in an
//! HTTP-only, `SameSite=Strict` cookie scoped to `/ui`, which every request
//! presents again and which is checked like a bearer token. `read` sees the
//! pages; `admin` may also act. Without tokens the dashboard is open, as the
//! API is, and the configuration allows that on a loopback address only.
//!
//! Every action is a POST carrying a CSRF token in a hidden field: the
//! SHA-256 of a secret drawn at start and the session's token, so another
//! site can neither read nor forge it, and it changes when the process
//! restarts (a form from before then is refused, and reloading fixes it).

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::v1::auth::Tokens;
use crate::config::Scope;

/// The cookie holding a signed-in token.
pub(super) const COOKIE: &str = "sluice_ui";

/// The tokens and this process's CSRF secret.
pub(super) struct Access {
    tokens: Tokens,
    secret: [u8; 32],
}

/// Someone allowed to see the dashboard.
pub(super) struct Viewer {
    /// The token's name; `None` when no token is configured.
    pub(super) name: Option<String>,
    pub(super) scope: Scope,
    /// The CSRF token every action of this session must carry.
    pub(super) csrf: String,
}

impl Viewer {
    pub(super) fn may_act(&self) -> bool {
        self.scope == Scope::Admin
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub(super) fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// Why a request may not see the dashboard.
pub(super) enum Denied {
    /// No cookie, or one that is not a configured token: sign in.
    SignIn,
    /// A token of scope `enqueue`.
    Scope(String),
}

impl Access {
    /// With a fresh secret from the system's random source.
    pub(super) fn new(tokens: Tokens) -> anyhow::Result<Self> {
        let mut secret = [0u8; 32];
        getrandom(&mut secret)?;
        Ok(Self { tokens, secret })
    }

    pub(super) fn is_open(&self) -> bool {
        self.tokens.is_open()
    }

    /// The viewer whose token `presented` is, if it may see the dashboard.
    pub(super) fn sign_in(&self, presented: &str) -> Result<Viewer, Denied> {
        let token = self.tokens.identify(presented).ok_or(Denied::SignIn)?;
        if !token.scope.allows(Scope::Read) {
            return Err(Denied::Scope(format!(
                "the token `{}` has scope `{}`; the dashboard needs `read` (to look) or `admin` (to act)",
                token.name,
                token.scope.as_str()
            )));
        }
        Ok(Viewer {
            name: Some(token.name.clone()),
            scope: token.scope,
            csrf: self.csrf(presented),
        })
    }

    /// The viewer of a request: anyone when no token is configured, else
    /// the one whose token the cookie holds.
    pub(super) fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, Denied> {
        if self.is_open() {
            return Ok(Viewer {
                name: None,
                scope: Scope::Admin,
                csrf: self.csrf(""),
            });
        }
        let token = cookie(headers, COOKIE).ok_or(Denied::SignIn)?;
        self.sign_in(&token)
    }

    fn csrf(&self, token: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(self.secret);
        hash.update(token.as_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| {
            url::form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
}

/// The `Set-Cookie` value that keeps `token` for this browser session.
pub(super) fn set_cookie(token: &str) -> String {
    let value: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that forgets it.
pub(super) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Fills `out` from the kernel's random source.
fn getrandom(out: &mut [u8]) -> anyhow::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(out))
        .map_err(|err| {
            anyhow::anyhow!("cannot read /dev/urandom for the dashboard's CSRF secret: {err}")
        })
}
